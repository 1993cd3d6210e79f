"""The append-only log: one Parquet file per commit, published atomically.

Layout of a store root::

    metricstore.json          marker: format version, creation time
    events/                   metric events, one file per commit (or per compaction)
    entities/                 entity records (name, CIK, fiscal year end)
    metrics/                  metric definitions (aggregation kind)
    _tmp/                     files being written; never read as data
    _lock/                    the writers' lock

A commit file is named ``<recorded_at>-<commit_id>-<sha256 prefix>.parquet``: the checksum of its
bytes travels in the name, which the same atomic rename publishes, so ``verify`` can prove a file
is whole without a sidecar. Readers glob ``<table>/*.parquet`` and dedupe by id, which is what makes
a doubled write or a compaction running beside them harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from store.errors import SchemaMismatch, StoreBusy, StoreNotFound
from store.schema import (
    DEFAULTS,
    ENTITY_SCHEMA,
    ENUMS,
    EVENT_SCHEMA,
    IDENTITY_COLUMNS,
    METRIC_SCHEMA,
    REQUIRED_INPUT,
    SCHEMA_VERSION,
    STORE_SET,
)

FORMAT_VERSION = 1
MARKER = "metricstore.json"
LOCK_TIMEOUT_S = 120.0

#: table name -> (schema, id column, identity columns hashed into the id)
TABLES: dict[str, tuple[pa.Schema, str, tuple[str, ...]]] = {
    "events": (EVENT_SCHEMA, "event_id", IDENTITY_COLUMNS),
    "entities": (
        ENTITY_SCHEMA,
        "record_id",
        ("entity", "name", "cik", "ticker", "fiscal_year_end_month", "fiscal_year_end", "source"),
    ),
    "metrics": (METRIC_SCHEMA, "record_id", ("metric", "aggregation", "description", "inferred")),
}

COMMIT_NAME = re.compile(r"^(?P<ts>\d{8}T\d{12})Z-(?P<commit>[0-9a-f]{32})-(?P<sha>[0-9a-f]{16})\.parquet$")


@dataclass(frozen=True)
class AppendResult:
    """What an append did.

    Attributes:
        table: the log appended to.
        commit_id: the commit's id, or None when nothing new was written.
        added: rows written.
        already_present: rows whose id the store (or the batch itself) already held.
        path: the committed file, or None.
    """

    table: str
    commit_id: str | None
    added: int
    already_present: int
    path: Path | None

    def __str__(self) -> str:
        return f"{self.added} added, {self.already_present} already present"


def register_table(name: str, schema: pa.Schema, id_column: str, identity: tuple[str, ...]) -> None:
    """Declare another append-only log (the ingest run log, for one) with its own schema."""
    TABLES[name] = (schema, id_column, identity)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def content_ids(table: pa.Table, identity: Iterable[str]) -> pa.Array:
    """The content-derived id of every row: md5 over the identity columns' canonical text.

    Vectorised in DuckDB. NULL and '' hash differently; dates hash as ISO text, floats as their
    shortest round-trip text, so the same content yields the same id on every run.
    """
    cols = list(identity)
    parts = ", ".join(
        f"CASE WHEN \"{c}\" IS NULL THEN '\\N' ELSE 'v' || CAST(\"{c}\" AS VARCHAR) END" for c in cols
    )
    con = duckdb.connect()
    try:
        con.register("batch", table.select(cols))
        out = con.sql(f"SELECT md5(concat_ws(chr(31), {parts})) AS id FROM batch").to_arrow_table()
    finally:
        con.close()
    return out.column("id").combine_chunks().cast(pa.string())


class Store:
    """An append-only metric store rooted at a local folder.

    Example:
        >>> s = Store.create(tmp_path / "store")            # doctest: +SKIP
        >>> s.append(batch)                                  # doctest: +SKIP
        AppendResult(table='events', commit_id='…', added=3, already_present=0, path=…)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        if not (self.root / MARKER).is_file():
            raise StoreNotFound(self.root)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> Store:
        """Open the store at ``root``, creating it (and an empty file per table) if absent."""
        path = Path(root).absolute()
        if not (path / MARKER).is_file():
            for sub in ("_tmp", "_lock", *TABLES):
                (path / sub).mkdir(parents=True, exist_ok=True)
            marker = {"format": FORMAT_VERSION, "created_at": _now().isoformat()}
            tmp = path / "_tmp" / f"{MARKER}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(marker, indent=2) + "\n")
            os.replace(tmp, path / MARKER)
            _fsync_dir(path)
        store = cls(path)
        for name in TABLES:
            (path / name).mkdir(exist_ok=True)
            if not store.files(name):
                store._commit_empty(name)
        return store

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, create: bool = False) -> Store:
        """Open an existing store, or create it when ``create`` is true."""
        return cls.create(root) if create else cls(root)

    # -- reading ---------------------------------------------------------------------------
    def files(self, table: str = "events") -> list[Path]:
        """The committed files of one log, oldest first."""
        folder = self.root / table
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))

    def glob(self, table: str = "events") -> str:
        """The glob pattern a reader (DuckDB, polars, Spark) uses for one log."""
        return str(self.root / table / "*.parquet")

    def read(self, table: str = "events") -> pa.Table:
        """Every row of one log once (deduplicated by id, earliest recording kept)."""
        schema, id_col, _ = TABLES[table]
        con = duckdb.connect()
        try:
            return con.sql(
                f"SELECT * FROM read_parquet(?, union_by_name=true) "
                f"QUALIFY row_number() OVER (PARTITION BY {id_col} ORDER BY recorded_at, commit_id) = 1",
                params=[self.glob(table)],
            ).to_arrow_table()
        finally:
            con.close()

    # -- writing ---------------------------------------------------------------------------
    def lock(self, timeout_s: float = LOCK_TIMEOUT_S) -> FileLock:
        """The writers' lock (a file lock), for a caller that must hold it across several steps."""
        return FileLock(str(self.root / "_lock" / "append.lock"), timeout=timeout_s)

    def append(self, batch: pa.Table, *, table: str = "events", run_id: str | None = None) -> AppendResult:
        """Append a batch as one atomic commit; rows already present are not written again.

        Args:
            batch: rows in the table's schema, without the columns the store sets (ids,
                ``recorded_at``, ``commit_id``). Missing optional columns take their defaults.
            table: which log.
            run_id: the ingest run writing the batch (events only).

        Returns:
            An :class:`AppendResult`; ``added == 0`` when every row was already present.

        Raises:
            SchemaMismatch: a required column is missing or a value breaks the schema.
            StoreBusy: another writer held the lock past the timeout.
        """
        prepared = self.prepare(batch, table=table, run_id=run_id)
        id_col = TABLES[table][1]
        ids = prepared.column(id_col)
        unique_idx = pc.unique(ids)
        n_in = prepared.num_rows
        if len(unique_idx) != n_in:
            prepared = _first_of_each(prepared, id_col)
        try:
            with self.lock():
                self._clean_tmp()
                present = self.existing_ids(prepared.column(id_col), table=table)
                if len(present):
                    keep = pc.invert(pc.is_in(prepared.column(id_col), value_set=present))
                    prepared = prepared.filter(keep)
                if prepared.num_rows == 0:
                    return AppendResult(table, None, 0, n_in, None)
                commit_id, path = self._commit(prepared, table)
        except Timeout as exc:
            raise StoreBusy(self.root, LOCK_TIMEOUT_S) from exc
        return AppendResult(table, commit_id, prepared.num_rows, n_in - prepared.num_rows, path)

    def prepare(self, batch: pa.Table, *, table: str = "events", run_id: str | None = None) -> pa.Table:
        """Check a batch against the schema, fill defaults and compute ids (no ``recorded_at`` yet)."""
        schema, id_col, identity = TABLES[table]
        names = set(batch.column_names)
        forbidden = names & {*STORE_SET, id_col, "recorded_at", "commit_id"}
        if forbidden:
            raise SchemaMismatch(sorted(forbidden)[0], "is set by the store at commit, not by the caller")
        unknown = names - set(schema.names)
        if unknown:
            raise SchemaMismatch(sorted(unknown)[0], f"is not a column of {table}")
        required = REQUIRED_INPUT if table == "events" else tuple(
            f.name for f in schema if not f.nullable and f.name not in (id_col, "recorded_at", "commit_id")
        )
        n = batch.num_rows
        arrays: dict[str, pa.Array] = {}
        for field in schema:
            if field.name in (id_col, "recorded_at", "commit_id"):
                continue
            if field.name in names:
                col = batch.column(field.name)
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaMismatch(field.name, f"cannot be read as {field.type}: {exc}") from exc
                col = col.combine_chunks()
            elif field.name in required:
                raise SchemaMismatch(field.name, "is required")
            elif field.name == "run_id":
                col = pa.array([run_id] * n, pa.string())
            else:
                col = pa.nulls(n, field.type)
            if field.name in DEFAULTS and table == "events":
                col = pc.fill_null(col, DEFAULTS[field.name])
                if field.name in ("segment",):
                    col = pc.if_else(pc.equal(col, ""), DEFAULTS[field.name], col)
            if not field.nullable and col.null_count:
                raise SchemaMismatch(field.name, f"{col.null_count} row(s) have no value")
            arrays[field.name] = col
        if table == "events":
            _check_events(arrays)
        out = pa.table(arrays)
        ids = content_ids(out, identity)
        return out.append_column(id_col, ids)

    def existing_ids(self, ids: pa.Array | pa.ChunkedArray, *, table: str = "events") -> pa.Array:
        """Which of ``ids`` the log already holds."""
        files = [str(p) for p in self.files(table)]
        if not files:
            return pa.array([], pa.string())
        id_col = TABLES[table][1]
        con = duckdb.connect()
        try:
            con.register("candidates", pa.table({"id": ids}))
            found = con.sql(
                f"SELECT DISTINCT e.{id_col} AS id FROM read_parquet(?, union_by_name=true) e "
                f"SEMI JOIN candidates c ON e.{id_col} = c.id",
                params=[files],
            ).to_arrow_table()
        finally:
            con.close()
        return found.column("id").combine_chunks().cast(pa.string())

    # -- internals -------------------------------------------------------------------------
    def _commit(self, prepared: pa.Table, table: str) -> tuple[str, Path]:
        schema = TABLES[table][0]
        recorded_at = _now()
        commit_id = uuid.uuid4().hex
        n = prepared.num_rows
        prepared = prepared.append_column("recorded_at", pa.array([recorded_at] * n, pa.timestamp("us", tz="UTC")))
        prepared = prepared.append_column("commit_id", pa.array([commit_id] * n, pa.string()))
        prepared = prepared.select(schema.names).cast(schema)
        if table == "events" and n > 1:
            prepared = prepared.sort_by([("entity", "ascending"), ("metric", "ascending"), ("period_end", "ascending")])
        meta = {
            b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
            b"metricstore.table": table.encode(),
            b"metricstore.commit_id": commit_id.encode(),
            b"metricstore.recorded_at": recorded_at.isoformat().encode(),
            b"metricstore.rows": str(n).encode(),
        }
        prepared = prepared.replace_schema_metadata(meta)
        return commit_id, self.publish(prepared, table, recorded_at, commit_id)

    def publish(self, data: pa.Table, table: str, recorded_at: dt.datetime, commit_id: str) -> Path:
        """Write ``data`` under a temporary name, flush it, and rename it into ``table`` in one step."""
        tmp = self.root / "_tmp" / f"commit-{commit_id}.parquet"
        pq.write_table(data, tmp, compression="zstd", row_group_size=128 * 1024, write_statistics=True)
        sha = hashlib.sha256()
        with open(tmp, "rb+") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        stamp = recorded_at.strftime("%Y%m%dT%H%M%S%f")
        final = self.root / table / f"{stamp}Z-{commit_id}-{sha.hexdigest()[:16]}.parquet"
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return final

    def _commit_empty(self, table: str) -> None:
        schema = TABLES[table][0]
        with self.lock():
            if not self.files(table):
                empty = schema.empty_table()
                self.publish(empty.replace_schema_metadata({b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
                                                            b"metricstore.table": table.encode(),
                                                            b"metricstore.rows": b"0"}),
                             table, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "0" * 32)

    def _clean_tmp(self) -> None:
        """Remove what dead writers left in ``_tmp`` (called with the lock held)."""
        for p in (self.root / "_tmp").glob("commit-*"):
            p.unlink(missing_ok=True)


def _first_of_each(table: pa.Table, id_col: str) -> pa.Table:
    idx = pa.array(range(table.num_rows), pa.int64())
    keyed = table.append_column("__i", idx)
    firsts = keyed.group_by(id_col, use_threads=False).aggregate([("__i", "min")]).column("__i_min")
    return table.take(pc.sort_indices(firsts))


def _check_events(arrays: dict[str, pa.Array]) -> None:
    for name, allowed in ENUMS.items():
        bad = pc.invert(pc.is_in(arrays[name], value_set=pa.array(allowed)))
        if pc.any(bad).as_py():
            value = pc.filter(arrays[name], bad)[0].as_py()
            raise SchemaMismatch(name, f"{value!r} is not one of {', '.join(allowed)}")
    if pc.any(pc.less(arrays["period_end"], arrays["period_start"])).as_py():
        raise SchemaMismatch("period_end", "is before period_start")
    asserts = pc.equal(arrays["op"], "assert")
    if pc.any(pc.and_(asserts, pc.is_null(arrays["value"]))).as_py():
        raise SchemaMismatch("value", "an assert needs a value")
    for name in ("value", "value_high"):
        col = arrays[name]
        if pa.types.is_floating(col.type) and pc.any(pc.invert(pc.is_finite(col))).as_py():
            raise SchemaMismatch(name, "NaN and infinity are not values")
