"""The catalog file: a DuckDB database holding the views over a store, for the DuckDB CLI, DBeaver
or a notebook, and beside it the init script that locks a session on it down to reading the store.

    metricstore catalog            ->  <store>/catalog.duckdb and <store>/catalog.duckdb.init.sql
    duckdb -readonly -init <store>/catalog.duckdb.init.sql <store>/catalog.duckdb

The views read the store's Parquet files at query time, so new commits show without a rebuild;
``growth`` reads the projections where they describe an entity (:mod:`queries.catalog_views`).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import duckdb

from queries.errors import BadArgument
from queries.catalog_views import growth_view
from queries.live import Reading, list_live, local_root, read_listed
from queries.projector import project
from queries.sandbox import lockdown_sql
from queries.views import install
from store import Store
from store.backends import ObjectPath
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
    target.parent.mkdir(parents=True, exist_ok=True)
    project(store)          # its growth view reads the projections (none on an object store: computed)
    tmp = target.with_name(target.name + ".tmp")
    # creating the views reads the live files' schemas: one a compaction deletes meanwhile is listed again
    read_listed(store, lambda: list_live(store, TABLES), lambda live: _write_views(tmp, store, live))
    tmp.replace(target)
    _write_init_script(target, store.root)
    return target


#: The storage format the file is written in: the oldest that holds the views, so that DuckDB 1.4 and
#: newer (the 1.x command line teams have) open it; DuckDB 2.x's own format is refused by every 1.x
STORAGE_VERSION = "v1.4.0"


def _write_views(tmp: Path, store: Store, live: Reading) -> None:
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS catalog (STORAGE_VERSION ?)", [str(tmp), STORAGE_VERSION])
        con.execute("USE catalog")
        install(con, store, live)
        if local_root(store) is not None:
            con.execute(growth_view(store, formulas=bool(con.sql("SELECT ms_formula_metrics()").fetchall()[0][0])))
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
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(
        "-- Locks a DuckDB session on the metricstore catalog down to reading the store.\n"
        f"-- Open with:  {' '.join(open_command(catalog).splitlines())}\n" + lockdown_sql(store_root),
        encoding="utf-8",
    )
    tmp.replace(target)
    return target
