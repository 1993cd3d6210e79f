"""Installs the SQL views and macros of ``queries/sql/*.sql`` on a DuckDB connection.

The ``.sql`` files are the one source of truth for the CLI, the Python helper and the catalog
file handed to data teams. They refer to the store's files through placeholders filled here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import cast

import duckdb

from queries.errors import BadArgument
from store import Store
from store.backends import ObjectPath, attach
from store.compaction import live_files
from store.log import TABLES

#: Views a user queries; the rest (event_log, *_at macros) are building blocks.
VIEWS = ("events", "facts", "growth", "share", "entities", "metrics", "ingest_runs")


def sql_sources() -> list[tuple[str, str]]:
    """(file name, text) of every ``.sql`` file, in the order they must run."""
    folder = resources.files("queries") / "sql"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in names]


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


def render(text: str, store: Store) -> str:
    """Fill a ``.sql`` file's placeholders with the store's files."""
    return (
        text.replace("__EVENTS__", _files(store, "events"))
        .replace("__ENTITIES__", _files(store, "entities"))
        .replace("__METRICS__", _files(store, "metrics"))
        .replace("__RUNS__", f"read_parquet({_files(store, 'runs')}, union_by_name = true)"
                 if store.files("runs") else "run_log_empty")
    )


def install(con: duckdb.DuckDBPyConnection, store: Store, live: dict[str, list[Path]] | None = None) -> None:
    """Create every view and macro on ``con`` over ``store``.

    Creating a view binds it, which reads the schema of every file it names: the views are bound
    over the live files (pinned for the creation only; ``live`` when the caller listed them), not
    the glob, which may hold thousands of merged sources waiting out their grace period (each
    file's footer read, for every view)."""
    attach(con, store.root)  # an object store's s3:// globs read through fsspec
    live = live if live is not None else {t: live_files(store, t) for t in TABLES}
    pinned = [t for t in TABLES if pin(con, t, live.get(t, []))]
    for _name, text in sql_sources():
        con.execute(render(text, store))
    for table in pinned:
        con.execute(f"RESET VARIABLE {files_variable(table)}")


def pin(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> bool:
    """Point ``con``'s views at ``files`` for ``table`` (none: the glob); whether it did."""
    if not files:
        return False
    con.execute(f"SET VARIABLE {files_variable(table)} = ?", [[str(p) for p in files]]).fetchall()
    return True


def write_catalog(store: Store, path: str | Path | None = None) -> Path:
    """Write a DuckDB database file holding the views over ``store``.

    A data team opens it with ``duckdb PATH`` (or DBeaver, a notebook) and queries ``growth``;
    the views read the store's Parquet files at query time, so new commits show without a rebuild.
    ``SET VARIABLE as_of = DATE '2024-06-30'`` turns every view to that point in time.

    Returns:
        The path written (default ``<store>/catalog.duckdb``).

    Raises:
        BadArgument: no ``path`` for an object-store root (a DuckDB file is written locally).
    """
    if path is None and isinstance(store.root, ObjectPath):
        raise BadArgument("path", None, f"is required for an object store ({store.root}): the catalog "
                                        "is a local DuckDB file")
    target = Path(path) if path else cast(Path, store.root / "catalog.duckdb")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        install(con, store)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.replace(target)
    from queries.sandbox import write_init_script  # noqa: PLC0415 (sandbox imports this module)

    write_init_script(target, store.root)  # `duckdb -readonly -init <it> <target>`: the locked session
    return target
