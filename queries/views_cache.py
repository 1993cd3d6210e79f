"""The views' database file of a query session, built once and copied for every later session.

A session (``MetricStore``, ``metricstore sql``, ``series`` and every other command that reads)
opens a DuckDB file of its own holding the views and macros, read-only and locked down
(:mod:`queries.sandbox`). Creating them binds each view, about a second for the whole set, at
every session. What the file holds depends only on:

- the ``.sql`` files, with the store's paths filled in (:func:`queries.views.render`);
- the store's formula definitions, compiled to macros: its ``metrics`` log, named by its files
  (a committed file never changes under its name);
- the code that installs and compiles them, and DuckDB's version.

So the first session builds the file and keeps a copy under a key of those in the user's cache
folder (``$METRICSTORE_CACHE_DIR``, default ``$XDG_CACHE_HOME/metricstore``, that is
``~/.cache/metricstore``), and the sessions after it copy that (a few hundred kB). The file holds no
data and no listing: DuckDB binds a view again at every query, over the files there are then. A
new metric definition, a new version of the views or of DuckDB, is a new key. The folder keeps
the :data:`KEPT` most recently used files. Where it cannot be written, each session builds its own,
as without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import duckdb

from queries import formula_sql, formulas, views
from store import Store
from store.backends import user_folder

#: Overrides the user's cache folder (the views' files are kept in its ``views/``).
CACHE_ENV = "METRICSTORE_CACHE_DIR"
#: Files kept, the least recently used removed first.
KEPT = 64
#: Age of a copy in flight (``.views-*.tmp``) after which it was left by a killed session.
STALE_S = 3600
#: Changes when a kept file from an earlier version of this module must not be read.
FORMAT = "1"


def cache_folder() -> Path:
    """Where the views' files are kept."""
    return user_folder(CACHE_ENV, "XDG_CACHE_HOME", ".cache") / "views"


def open_views(store: Store, dest: Path, build: Callable[[Path], None],
               open_: Callable[[Path], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
    """``open_(dest)``, ``dest`` being the views' file of a session on ``store``: a copy of the
    kept one, else written by ``build(dest)`` (which raises when the views cannot be created) and
    a copy of it kept. A kept file DuckDB cannot open (damaged on disk) is built again."""
    kept = cache_folder() / f"views-{key(store)}.duckdb"
    try:
        shutil.copyfile(kept, dest)
        con = open_(dest)
    except OSError:             # not kept (yet), or the folder cannot be read
        pass
    except duckdb.Error:
        dest.unlink()
    else:
        _touch(kept)            # recently used: pruned last
        return con
    build(dest)
    keep(dest, kept)
    return open_(dest)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:             # pruned meanwhile by another session
        pass


def key(store: Store) -> str:
    """What the views' file of ``store`` is made of, hashed (see the module's docstring)."""
    h = hashlib.sha256(f"{FORMAT}\n{duckdb.__version__}\n{_code()}\n".encode())
    filled = views.placeholders(store)
    for name, text in views.sql_sources():
        h.update(f"{name}\n{views.render(text, store, filled)}\n".encode())
    h.update("\n".join(store.names("metrics")).encode())
    return h.hexdigest()[:32]


@cache
def _code() -> str:
    """The code that writes the views' file, hashed: a changed installer or compiler is a new key."""
    h = hashlib.sha256()
    for module in (views, formula_sql, formulas):
        h.update(Path(str(module.__file__)).read_bytes())
    return h.hexdigest()


def keep(built: Path, kept: Path) -> None:
    """Keep a copy of ``built`` at ``kept`` (whole or not at all), then prune the folder. A folder
    that cannot be written keeps nothing: the session has its file either way."""
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".views-", suffix=".tmp", dir=kept.parent)
        os.close(fd)
        try:
            shutil.copyfile(built, tmp)
            os.replace(tmp, kept)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        prune(kept.parent)
    except OSError:
        pass


def prune(folder: Path, kept: int = KEPT) -> None:
    """Remove all but the ``kept`` most recently used views' files of ``folder``, and the copies
    in flight of sessions killed an hour or more ago."""
    files, now = [], time.time()
    for p in folder.iterdir():
        try:
            used = p.stat().st_mtime
        except OSError:         # removed meanwhile by another session's prune
            continue
        if p.name.startswith("views-") and p.name.endswith(".duckdb"):
            files.append((used, p))
        elif p.name.startswith(".views-") and now - used > STALE_S:
            p.unlink(missing_ok=True)
    for _, p in sorted(files, reverse=True)[kept:]:
        p.unlink(missing_ok=True)
