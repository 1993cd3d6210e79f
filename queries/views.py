"""Installs the SQL views and macros of ``queries/sql/*.sql`` on a DuckDB connection.

The ``.sql`` files are the one source of truth for the CLI, the Python helper and the catalog
file handed to data teams (``queries/catalog.py``). They refer to the store's files through placeholders filled here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path

import duckdb

from queries.formula_sql import install as install_formulas
from queries.live import Reading, list_live
from store import Store
from store.log import TABLES

#: Views a user queries; the rest (event_log, *_at macros) are building blocks.
VIEWS = ("events", "facts", "growth", "share", "entities", "metrics", "ingest_runs", "checks")


@functools.cache
def sql_sources() -> tuple[tuple[str, str], ...]:
    """(file name, text) of every ``.sql`` file, in the order they must run (read once: every
    session's views-file key hashes them)."""
    folder = resources.files("queries") / "sql"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return tuple((name, (folder / name).read_text(encoding="utf-8")) for name in names)


def sql_literal(text: str | Path) -> str:
    """A SQL string literal of ``text`` (a path the store chose; user values are bound as parameters)."""
    return "'" + str(text).replace("'", "''") + "'"


def files_variable(table: str) -> str:
    """The session variable that, when set, pins a log to a list of files instead of its glob."""
    return f"metricstore_{table}_files"


def _files(store: Store, table: str) -> str:
    """A log's files: the pinned list when the session set one, else the glob.

    The Python helper pins each query to the live files (merged compaction sources left out), so
    a source deleted after its grace period is never in a listing of a query that starts later.
    A session with nothing pinned (the DuckDB CLI on the catalog) reads the glob and dedupes.
    """
    return f"coalesce(getvariable('{files_variable(table)}'), {sql_literal(store.glob(table))})"


def placeholders(store: Store) -> dict[str, str]:
    """What each placeholder of the ``.sql`` files stands for in ``store``."""
    return {
        "__EVENTS__": _files(store, "events"),
        "__ENTITIES__": _files(store, "entities"),
        "__METRICS__": _files(store, "metrics"),
        "__RUNS__": f"read_parquet({_files(store, 'runs')}, union_by_name = true)"
                    if store.files("runs") else "run_log_empty",
    }


def render(text: str, store: Store, filled: dict[str, str] | None = None) -> str:
    """Fill a ``.sql`` file's placeholders with the store's files (``filled``: :func:`placeholders`)."""
    for name, value in (filled if filled is not None else placeholders(store)).items():
        text = text.replace(name, value)
    return text


def install(con: duckdb.DuckDBPyConnection, store: Store, live: Reading | None = None,
            only: Collection[str] | None = None, without: Collection[str] = ()) -> None:
    """Create every view and macro on ``con`` over ``store`` (``only``: those of these ``.sql``
    files, which must hold everything they use; ``without``: not these views and macros, which
    nothing the caller runs reads).

    Creating a view binds it, which reads the schema of every file it names: the views are bound
    over the live files (pinned for the creation only; ``live`` when the caller listed them), not
    the glob, which may hold thousands of merged sources waiting out their grace period (each
    file's footer read, for every view)."""
    store.backend.attach(con)  # an object store's s3:// globs read through fsspec
    live = live if live is not None else list_live(store, TABLES)
    pinned = [t for t in TABLES if pin(con, t, live.get(t, []))]
    filled = placeholders(store)
    for name, text in sql_sources():
        if only is None or name in only:
            _run(con, render(text, store, filled), without)
    if only is None:
        install_formulas(con, store)    # the store's formula metrics, compiled (queries/formula_sql.py)
    for table in pinned:
        con.execute(f"RESET VARIABLE {files_variable(table)}")


#: The name a ``CREATE [OR REPLACE] VIEW|MACRO`` statement creates.
_CREATED = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|MACRO)\s+(\w+)", re.IGNORECASE | re.MULTILINE)


def _run(con: duckdb.DuckDBPyConnection, script: str, without: Collection[str]) -> None:
    """Run a ``.sql`` file's statements, but those creating a view or macro named in ``without``
    (creating a view binds it: the growth view's query costs about 9 ms to bind)."""
    if not without:
        con.execute(script)
        return
    for statement in duckdb.extract_statements(script):
        created = _CREATED.search(statement.query)
        if created is None or created.group(1) not in without:
            con.execute(statement.query)


def pin(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> bool:
    """Point ``con``'s views at ``files`` for ``table`` (none: the glob); whether it did."""
    if not files:
        return False
    con.execute(f"SET VARIABLE {files_variable(table)} = ?", [[str(p) for p in files]]).fetchall()
    return True
