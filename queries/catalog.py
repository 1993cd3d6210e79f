"""The catalog file: a DuckDB database holding the views over a store, for the DuckDB CLI, DBeaver
or a notebook, and beside it the init script that locks a session on it down to reading the store.

    metricstore catalog            ->  <store>/catalog.duckdb and <store>/catalog.duckdb.init.sql
    duckdb -readonly -init <store>/catalog.duckdb.init.sql <store>/catalog.duckdb

The views read the store's Parquet files at query time, so new commits show without a rebuild;
``growth`` reads the projections where they describe an entity (:mod:`queries.catalog_views`).
What a file cannot follow by itself is compiled into it when written: the formula metrics'
definitions and the views' code. A writer's last step (:func:`follow`) therefore writes the file
at its default place again when either changed, so a session opened after it sees them.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shlex
import time
import uuid
from pathlib import Path

import duckdb

from queries.errors import BadArgument
from queries.catalog_views import growth_view
from queries.live import Reading, list_live, local_root, read_listed
from queries.projector import follow as follow_projections
from queries.projector import project
from queries.sandbox import lockdown_sql
from queries.views import install
from queries.views_cache import key as views_key
from store import MetricStoreError, Store
from store.backends import ObjectPath
from store.locks import LockHeld
from store.log import TABLES

#: The default file name, in the store's folder.
DEFAULT_NAME = "catalog.duckdb"


def write_catalog(store: Store, path: str | os.PathLike[str] | None = None) -> Path:
    """Write a DuckDB database file holding the views over ``store``, and its init script.

    A data team opens it with ``duckdb -readonly -init <path>.init.sql <path>`` (or DBeaver, a
    notebook) and queries ``growth``; ``SET VARIABLE as_of = DATE '2024-06-30'`` turns every view
    to that point in time. The file is written beside, then renamed over ``path``: a session open
    on the previous one keeps it.

    Args:
        store: the store the views read.
        path: where to write it (default ``<store>/catalog.duckdb``; required for an object store).

    Returns:
        The path written; the init script is :func:`init_script_of` it.

    Raises:
        BadArgument: no ``path`` for an object-store root (a DuckDB file is written locally).

    Example:
        >>> write_catalog(Store("data/store"))                  # doctest: +SKIP
        PosixPath('/.../data/store/catalog.duckdb')
    """
    folder = local_root(store)
    if path is None and folder is None:
        raise BadArgument("path", None, f"is required for an object store ({store.root}): give a local PATH for "
                                        "the catalog file (a DuckDB session reads its views' s3:// paths "
                                        "through the httpfs extension and your S3 credentials)")
    target = Path(path) if path is not None else Path(str(folder)) / DEFAULT_NAME
    project(store)          # its growth view reads the projections (none on an object store: computed)
    return _write(store, target, catalog_key(store))


def _write(store: Store, target: Path, made_of: str) -> Path:
    """Write the catalog file of ``store`` at ``target``, recording ``made_of`` (its
    :func:`catalog_key`, taken before the listing: a definition recorded meanwhile is written again)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")     # writers may write it at once
    try:
        # creating the views reads the live files' schemas: one a compaction deletes meanwhile is listed again
        read_listed(store, lambda: list_live(store, TABLES),
                    lambda live: _write_views(tmp, target, store, live, made_of))
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_init_script(target, store.root)
    _clear_stale(target)
    return target


#: Age of a temporary file beside a catalog file after which it was left by a killed writer.
STALE_S = 3600


def _clear_stale(target: Path) -> None:
    """Remove the temporary files of ``target`` (and of its init script) writers killed an hour ago left."""
    now = time.time()
    for p in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            if now - p.stat().st_mtime > STALE_S:
                p.unlink()
        except OSError:         # removed meanwhile by another writer
            pass


def follow(store: Store) -> None:
    """A writer's last step after a commit: the growth projections brought up to date
    (:func:`queries.projector.follow`), then the catalog file at its default place, if there is
    one, written again when what it compiled changed (:func:`catalog_key`: a formula metric
    defined or redefined, a new version of the views or of DuckDB). A session open on the old file
    keeps it; the next one opened sees the new. A failure is logged, never raised."""
    follow_projections(store)
    folder = local_root(store)
    target = None if folder is None else Path(str(folder)) / DEFAULT_NAME
    try:
        if target is not None and target.exists():
            made_of = catalog_key(store)
            if written_key(target) != made_of:
                _write(store, target, made_of)      # (the projections are brought up to date above)
    except (MetricStoreError, LockHeld, OSError, duckdb.Error) as exc:
        logging.getLogger("metricstore.catalog").warning("the catalog file %s was not written again: %s",
                                                         target, str(exc).splitlines()[0])


#: The macro a catalog file answers :func:`catalog_key` with.
KEY_MACRO = "ms_catalog_key"


def catalog_key(store: Store) -> str:
    """What a catalog file of ``store`` is made of, hashed: the views' file (its SQL with the store's
    paths, the metric definitions, the code, DuckDB's version: :func:`queries.views_cache.key`),
    the ``growth`` view over the projections, the lock-down and the storage version."""
    h = hashlib.sha256(views_key(store).encode())
    for part in (growth_view(store) if local_root(store) is not None else "", lockdown_sql(store.root),
                 STORAGE_VERSION):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def written_key(catalog: Path) -> str | None:
    """The :func:`catalog_key` a catalog file was written with (None for one written without it)."""
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return str(con.sql(f"SELECT {KEY_MACRO}()").fetchall()[0][0])
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


#: The storage format the file is written in: the oldest that holds the views, so that DuckDB 1.4 and
#: newer (the 1.x command line teams have) open it; DuckDB 2.x's own format is refused by every 1.x
STORAGE_VERSION = "v1.4.0"


def _write_views(tmp: Path, target: Path, store: Store, live: Reading, made_of: str) -> None:
    """Write the views of ``store`` over ``live`` to ``tmp``, the file that becomes ``target``."""
    con = duckdb.connect()
    try:
        try:
            con.execute("ATTACH ? AS catalog (STORAGE_VERSION ?)", [str(tmp), STORAGE_VERSION])
        except duckdb.IOException as exc:
            raise BadArgument("path", str(target), f"cannot be written: {str(exc).splitlines()[0]}") from None
        con.execute("USE catalog")
        install(con, store, live)
        if local_root(store) is not None:
            con.execute(growth_view(store, formulas=bool(con.sql("SELECT ms_formula_metrics()").fetchall()[0][0])))
        con.execute(f"CREATE MACRO {KEY_MACRO}() AS '{made_of}'")
        con.execute("CHECKPOINT catalog")
        con.execute("USE memory")
        con.execute("DETACH catalog")
    finally:
        con.close()


def init_script_of(catalog: Path) -> Path:
    """The init script written beside a catalog file (``<catalog>.init.sql``)."""
    return catalog.with_name(catalog.name + ".init.sql")


def open_command(catalog: Path) -> str:
    """The shell command that opens ``catalog`` locked down: ``duckdb -readonly -init <script> <catalog>``
    (paths quoted for the shell where they need it)."""
    return shlex.join(["duckdb", "-readonly", "-init", str(init_script_of(catalog)), str(catalog)])


def _write_init_script(catalog: Path, store_root: Path | ObjectPath) -> Path:
    """Write the statements ``duckdb -readonly -init`` runs before a data team's SQL."""
    target = init_script_of(catalog)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(
        "-- Locks a DuckDB session on the metricstore catalog down to reading the store.\n"
        f"-- Open with:  {' '.join(open_command(catalog).splitlines())}\n" + lockdown_sql(store_root),
        encoding="utf-8",
    )
    tmp.replace(target)
    return target
