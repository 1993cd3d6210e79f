"""The read-only SQL surface: a DuckDB connection that can read the store and nothing else.

Every query a user types (``metricstore sql``, ``MetricStore.sql()``) and every session opened on
the catalog file runs on a connection closed by DuckDB's own controls, in this order:

1. the views live in a database file opened ``read_only``: ``CREATE``, ``INSERT``, ``DROP`` and
   ``ALTER`` on it are refused by DuckDB;
2. ``allowed_directories`` is the store's folder, then ``enable_external_access`` goes off: no
   file outside the store can be read (``read_csv('/etc/passwd')``), nothing can be attached or
   installed, no extension loaded, no network reached. For an object store (``s3://bucket/prefix``)
   the store's S3 filesystem is registered first (fsspec, :func:`store.backends.attach`) and the
   allowed directory is ``s3://bucket/prefix/``: DuckDB checks fsspec paths against the list like
   local ones, so another prefix or bucket, a local file and any URL are refused the same way;
3. extension auto-install/auto-load and Python replacement scans are off;
4. ``lock_configuration`` goes on: no ``SET`` can give any of it back (``SET VARIABLE`` still works,
   which is how ``as_of`` turns every view to a date).

DuckDB's file controls do not tell reading from writing: inside an allowed directory ``COPY ... TO``
and ``EXPORT DATABASE`` would still write. So :func:`check_read_only` asks DuckDB's own parser for the
statement type and lets exactly one ``SELECT`` through (``FROM``, ``WITH``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE`` and ``VALUES`` are all ``SELECT`` to DuckDB). No SQL text is parsed here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from queries.errors import SqlError, SqlRefused
from queries.live import Reading, list_live
from queries.views import install, sql_literal
from queries.views_cache import open_views
from store import Store
from store.backends import ObjectPath, attach, object_root
from store.integrity import ChecksumGuard
from store.log import TABLES

#: Statement types a user may run: one SELECT (DuckDB's classification, not ours).
ALLOWED = frozenset({duckdb.StatementType.SELECT})

#: Set before external access goes off; locked afterwards.
BASE_CONFIG: dict[str, str | bool] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
}


def _dir_literal(path: Path | ObjectPath) -> str:
    return sql_literal(str(path).rstrip("/") + "/")


def lockdown_sql(store_root: Path | ObjectPath) -> str:
    """The statements that close a DuckDB session over ``store_root`` (also the catalog's init file)."""
    return (
        "SET autoinstall_known_extensions = false;\n"
        "SET autoload_known_extensions = false;\n"
        "SET parquet_metadata_cache = true;\n"
        f"SET allowed_directories = [{_dir_literal(store_root)}];\n"
        "SET enable_external_access = false;\n"
        "SET lock_configuration = true;\n"
    )


def lock_down(con: duckdb.DuckDBPyConnection, store_root: Path | ObjectPath) -> None:
    """Close ``con`` over ``store_root``: reads there only, no extension, settings locked.

    An object-store root (``s3://bucket/prefix``) gets its filesystem registered before the lock:
    afterwards nothing can be registered, attached or set."""
    attach(con, store_root)
    limit_memory(con)
    # a committed file (and a snapshot) never changes under its name (its checksum is in it), so
    # its Parquet footer is parsed once, not once per query
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    con.execute("SET allowed_directories = ?", [[str(store_root).rstrip("/") + "/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


#: The environment variable that caps a query session's memory (DuckDB's syntax: ``2GB``, ``50%``).
MEMORY_ENV = "METRICSTORE_MEMORY_LIMIT"


def limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Give the session a private spill folder, so a query larger than its memory limit spills to
    disk instead of failing, and the limit of ``$METRICSTORE_MEMORY_LIMIT`` (default: DuckDB's,
    80 % of the machine's memory). DuckDB creates the folder when it first spills and removes it
    when the session closes.

    Raises:
        SqlError: the variable is not a memory size DuckDB understands.
    """
    spill = Path(tempfile.gettempdir()) / f"metricstore-spill-{os.getpid()}-{os.urandom(4).hex()}"
    con.execute("SET temp_directory = ?", [str(spill)])
    limit = os.environ.get(MEMORY_ENV, "").strip()
    if limit:
        set_memory_limit(con, limit)


def set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Cap the session's memory at ``limit`` (DuckDB's syntax).

    Raises:
        SqlError: ``limit`` (from ``$METRICSTORE_MEMORY_LIMIT``) is not a memory size.
        duckdb.OutOfMemoryException: the session already holds more than ``limit``.
    """
    try:
        con.execute("SET memory_limit = ?", [limit])
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error:
        raise SqlError(f"{MEMORY_ENV}={limit!r} is not a memory size (say 2GB, 512MB or 50%)") from None


def connect(store: Store, guard: ChecksumGuard | None = None, live: Reading | None = None) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only connection with the views of ``store`` installed.

    The views are in a private database file (outside the store), which is opened ``read_only``
    and removed at once (the open connection keeps it): a copy of the one kept for the store
    (:mod:`queries.views_cache`), built first where none is. Creating a view reads the live files'
    schemas (``live``, when the caller listed them), so they are proven whole first (``guard``): a
    damaged one is named.

    Raises:
        CorruptFile: a committed file fails its checksum.
        SqlError: DuckDB could not create the views.
    """
    live = live if live is not None else list_live(store, TABLES)
    (guard or ChecksumGuard(store)).check(files=[p for files in live.values() for p in files])
    folder = Path(tempfile.mkdtemp(prefix="metricstore-views-"))
    path = folder / "views.duckdb"
    try:
        con = open_views(store, path, lambda dest: _build(dest, store, live),
                         lambda dest: duckdb.connect(str(dest), read_only=True, config=dict(BASE_CONFIG)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lock_down(con, store.root)
    return con


def _build(path: Path, store: Store, live: Reading) -> None:
    """Create the views of ``store`` in a new database file at ``path``.

    Raises:
        SqlError: DuckDB could not create them.
    """
    build = duckdb.connect(str(path))
    try:
        install(build, store, live)   # the files just proven
        build.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise SqlError(f"cannot create the views over {store.root}: {str(exc).splitlines()[0]}") from None
    finally:
        build.close()


def connect_catalog(path: str | os.PathLike[str], store_root: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """Open a catalog file (see :func:`queries.catalog.write_catalog`) as the sandbox opens it."""
    con = duckdb.connect(str(path), read_only=True, config=dict(BASE_CONFIG))
    lock_down(con, object_root(store_root) or Path(store_root).absolute())
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but one SELECT, by DuckDB's own reading of the statement.

    Raises:
        SqlRefused: several statements, or a statement that is not a SELECT.
        duckdb.Error: the text does not parse (the caller turns it into ``SqlError``).
    """
    statements = con.extract_statements(query)
    if len(statements) != 1:
        raise SqlRefused(f"give exactly one SELECT statement, not {len(statements)}")
    try:
        kind = statements[0].type
    except ValueError:  # a statement type the Python API has no name for (UPDATE EXTENSIONS)
        raise SqlRefused("this statement is not allowed: the SQL surface is read-only") from None
    if kind not in ALLOWED:
        raise SqlRefused(f"{kind.name} statements are not allowed: the SQL surface is read-only "
                         "(SELECT over the store's views only)")
