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

import bisect
import collections
import datetime as dt
import functools
import hashlib
import io
import json
import math
import os
import queue
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from store.backends import ObjectPath, attach, local_state, object_root, staging_path
from store.errors import SchemaMismatch, StoreBusy, StoreNotFound
from store.ids import (
    content_id_of,
    content_ids,
    dictionary_encode,
    hex_to_digests,
    hex_to_words,
    id_layout,
    one_array,
)
from store.locks import FileLock, LockHeld
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
#: Rows per Parquet row group: small enough that a filter on (entity, metric, period) skips most.
ROW_GROUP_ROWS = 32 * 1024

#: Batches of a stream prepared at once (checked, sorted and hashed), ahead of the dedup and
#: the write: preparing is the longest stage of the bulk path.
PREPARERS = 2
#: An events batch of at least this many rows is appended through the stream's pipeline, in
#: slices of :data:`SLICE_ROWS` (four row groups): prepared on two threads while the slices
#: before are deduplicated and written, instead of one pass after another over the whole batch.
STREAM_MIN_ROWS = 256 * 1024
SLICE_ROWS = 4 * ROW_GROUP_ROWS

#: Events are written sorted by these (row groups then prune on a series' filter).
SORT_KEYS = ("entity", "metric", "period_end")

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

#: The commit id of the empty file each table of a new store starts with.
EMPTY_COMMIT = "0" * 32

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
    _stamped_layout.cache_clear()


def _fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _mtime_ns(folder: str | os.PathLike[str]) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


#: In ``_lock``, a file per log holding a random token, replaced (with the writers' lock held)
#: before every change this store's code makes to the log's folder: a listing taken under that
#: lock stays exact while the token, and the folder's mtime, stand. A writer extends the listing
#: it keeps by the file it commits, so a small append need not list and sift a folder of
#: thousands of merged sources waiting out their grace period. (The mtime catches most changes
#: made by hand; one made in the same clock tick as a commit may go unseen until the next change,
#: and the worst it can do is let an event be written twice, which every reader dedupes by id.)
CHANGE_TOKEN = "{table}.changed"


@dataclass
class Listing:
    """One log's committed files as a store last listed them (see :meth:`Store.listing`).

    Attributes:
        names: every committed file's name, sorted (oldest first).
        live: the names that are not merged sources (each of those has its events in a file of
            the same listing, and waits out its grace period).
        oldest_manifest: when the oldest compaction manifest of the log was written (unix
            seconds), or None: the trigger deletes expired sources without listing manifests.
        token: the change token the listing is good for (see ``CHANGE_TOKEN``).
        mtime_ns: the folder's mtime when it was listed.
    """

    names: list[str]
    live: list[str]
    oldest_manifest: float | None
    token: bytes
    mtime_ns: int | None


#: Columns whose Parquet statistics serve a filter (row-group pruning in readers and dedup); the
#: long or unique texts, the values and the few-valued labels no query filters on get none.
NO_STATISTICS = frozenset({"value", "value_high", "as_reported", "note", "supersedes", "source_ref",
                           "dims", "unit", "kind", "qualifier", "authority"})
#: Content ids: random over their whole range, so the bounds of a row group of many of them span
#: almost all of it and prune nothing (a probe falls outside the bounds of 32,768 ids once in
#: about 16,000 tries). They get statistics only in a small commit, where the bounds of a few ids
#: do rule most probes out (a single append's dedup tests them); elsewhere they would cost the
#: writer a sixth of its time on the id column (two comparisons of 32 bytes an id).
ID_COLUMNS = frozenset({"event_id", "record_id"})
#: Columns too distinct for a dictionary (an attempt costs a hash per value, then falls back),
#: and the dates (sorted runs of a few distinct days: their plain pages compress about as well).
NO_DICTIONARY = frozenset({"event_id", "record_id", "value", "value_high", "as_reported", "note", "supersedes",
                           "period_start", "period_end", "reported_at", "recorded_at"})
#: Columns written in an encoding other than plain (every reader of Parquet 2.x formats reads them:
#: DuckDB, polars, pyarrow, Spark). The ids' hex digits go in one run, their lengths apart
#: (DELTA_LENGTH_BYTE_ARRAY), not each after its length: zstd then compresses them in a third of
#: the time, a little smaller. The values' bytes go split by their position in the number
#: (BYTE_STREAM_SPLIT): sign and exponent bytes together compress faster and smaller.
ENCODINGS = {"event_id": "DELTA_LENGTH_BYTE_ARRAY", "record_id": "DELTA_LENGTH_BYTE_ARRAY",
             "value": "BYTE_STREAM_SPLIT", "value_high": "BYTE_STREAM_SPLIT"}


#: Values the Parquet writer takes at a time (its default: 1,024). The statistics of a
#: dictionary column are worked out a batch at a time (the values a batch refers to: a hash of
#: its indices, then a look at those): past a few thousand values a batch, that costs a third of
#: what it did, and the writer about 15 % less. A page is still cut once it holds the writer's
#: page size (1 MB); it can now run over it by at most a batch (256 KB of ids).
WRITE_BATCH_ROWS = 8192


def encoded_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its dictionary-written text columns as Arrow dictionaries: the form a large
    batch takes from :meth:`Store.prepare` on, so the Parquet writer takes each column's
    dictionary as it is instead of hashing every value again. Files are written without the
    Arrow schema (``store_schema=False``): they read back as plain strings."""
    return pa.schema([
        pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable)
        if pa.types.is_string(f.type) and f.name not in NO_DICTIONARY else f
        for f in schema
    ], metadata=schema.metadata)


def has_statistics(column: str, rows: int | None) -> bool:
    """Whether a committed file of ``rows`` rows (None: a stream, counted as large) has
    statistics for ``column`` (see :data:`NO_STATISTICS` and :data:`ID_COLUMNS`)."""
    return column not in NO_STATISTICS and (column not in ID_COLUMNS or (rows is not None and rows < SMALL_ROWS))


def write_options(schema: pa.Schema, rows: int | None = None) -> dict[str, Any]:
    """The Parquet writer options of every committed file: zstd, page checksums (CRC32 of every
    page, checked by readers that verify them), statistics, dictionaries and :data:`ENCODINGS`
    where they help (no dictionaries in a small commit, which compaction rewrites; neither
    compression nor other encodings in a tiny one; statistics of the ids only in a small one).
    ``rows`` unknown (a stream) counts as large.

    A schema with dictionary columns (:func:`encoded_schema`) is written without the Arrow
    schema, so they read back as plain strings; its metadata then goes in with
    ``add_key_value_metadata`` (:func:`write_file`)."""
    names = schema.names
    small = rows is not None and rows < SMALL_ROWS
    tiny = rows is not None and rows < TINY_ROWS
    return {
        "compression": "none" if tiny else "zstd",
        "write_statistics": [c for c in names if has_statistics(c, rows)],
        "use_dictionary": False if small else [c for c in names if c not in NO_DICTIONARY],
        "column_encoding": {} if tiny else {c: e for c, e in ENCODINGS.items() if c in names},
        "write_page_checksum": True,
        "write_batch_size": WRITE_BATCH_ROWS,
        "store_schema": not any(pa.types.is_dictionary(t) for t in schema.types),
    }


def write_file(data: pa.Table, where: Any, options: dict[str, Any]) -> None:
    """``data`` as one Parquet file (a path or a stream), its schema's metadata included
    whether or not the Arrow schema is stored."""
    with pq.ParquetWriter(where, data.schema, **options) as writer:
        writer.write_table(data, row_group_size=ROW_GROUP_ROWS)
        if unstored := _unstored_metadata(data.schema, options):
            writer.add_key_value_metadata(unstored)


def _unstored_metadata(schema: pa.Schema, options: dict[str, Any]) -> dict[str, str]:
    """The schema's metadata, as text, that the file must be given itself: all of it when the
    file is written without the Arrow schema (which would carry it), else none."""
    if options["store_schema"] or not schema.metadata:
        return {}
    return {k.decode(): v.decode() for k, v in schema.metadata.items()}


#: A commit of fewer rows is written without dictionaries (they cost more than they save).
SMALL_ROWS = 1024
#: A commit of fewer rows is not compressed either (a codec's setup per column costs more than
#: the bytes it saves); compaction rewrites such files compressed.
TINY_ROWS = 64


class Store:
    """An append-only metric store rooted at a local folder.

    Example:
        >>> s = Store.create(tmp_path / "store")            # doctest: +SKIP
        >>> s.append(batch)                                  # doctest: +SKIP
        AppendResult(table='events', commit_id='…', added=3, already_present=0, path=…)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # a local folder, or an object store (s3://bucket/prefix: see store.backends)
        self.root = object_root(root) or Path(root).absolute()
        if not (self.root / MARKER).is_file():
            raise StoreNotFound(self.root)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> Store:
        """Open the store at ``root``, creating it (and an empty file per table) if absent."""
        path = object_root(root) or Path(root).absolute()
        if isinstance(path, ObjectPath) and not (path / MARKER).is_file():
            marker = {"format": FORMAT_VERSION, "created_at": _now().isoformat()}
            try:   # one conditional PUT: of two creators racing, the first marker stays
                path.files.put_new(MARKER, (json.dumps(marker, indent=2) + "\n").encode())
            except FileExistsError:
                pass
        if not (path / MARKER).is_file():
            # a local folder: an object store's marker was put (or found) just above
            local = cast(Path, path)
            for sub in ("_tmp", "_lock", *TABLES):
                (local / sub).mkdir(parents=True, exist_ok=True)
            marker = {"format": FORMAT_VERSION, "created_at": _now().isoformat()}
            tmp = local / "_tmp" / f"{MARKER}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(marker, indent=2) + "\n")
            os.replace(tmp, local / MARKER)
            _fsync_dir(local)
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
    def _local(self, name: str) -> str:
        """A path under a local store's root, as text (kept: a single append names a few of them
        several times, and each ``Path`` joined and turned back into text costs more than the
        system call it is for)."""
        paths: dict[str, str] = self.__dict__.setdefault("_local_paths", {})
        got = paths.get(name)
        if got is None:
            got = paths[name] = os.path.join(self.root, name)
        return got

    def files(self, table: str = "events") -> list[Path]:
        """The committed files of one log, oldest first."""
        folder = self.root / table
        # an object store's are ObjectPaths, which answer the pathlib calls a reader makes
        return cast("list[Path]", [folder / n for n in self.names(table)])

    def names(self, table: str = "events") -> list[str]:
        """The names of the committed files of one log, oldest first (one listing, no stat)."""
        folder = self.root / table
        if isinstance(folder, ObjectPath):
            if not folder.is_dir():
                return []
            listing = [p.name for p in folder.iterdir()]
        else:
            try:
                listing = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                return []
        out = [n for n in listing if n.endswith(".parquet")]
        out.sort()
        hidden = bisect.bisect_left(out, "."), bisect.bisect_left(out, "/")   # names starting with "."
        if hidden[0] < hidden[1]:
            del out[hidden[0]:hidden[1]]
        return out

    def listing(self, table: str = "events") -> Listing:
        """The committed files of ``table``, its live files (not merged sources) among them.

        Kept while the log's change token and its folder's mtime stand (see ``CHANGE_TOKEN``), and
        extended by this store's own commits. Call it with the writers' lock held, as the append
        paths do: it is then exact. (One taken without the lock is kept too, and could miss a
        change that fell between reading the token and listing, in the same clock tick as the
        folder's last change.) An object store's is listed afresh each time, with every file live
        (a dedup that searches a merged source too finds nothing new in it).
        """
        cache: dict[str, Listing] = self.__dict__.setdefault("_listings", {})
        if not isinstance(self.root, Path):
            names = self.names(table)
            return Listing(names, names, None, b"", None)
        token, mtime = self._change_token(table), _mtime_ns(self._local(table))
        hit = cache.get(table)
        if hit is not None and token and hit.token == token and hit.mtime_ns == mtime:
            return hit
        from store.compaction import sources_state   # compaction builds on this module

        names = self.names(table)
        merged, oldest = sources_state(self, table, names)
        got = Listing(names, [n for n in names if n not in merged] if merged else list(names), oldest, token, mtime)
        if token and mtime is not None:
            cache[table] = got
        else:
            cache.pop(table, None)
        return got

    def _token_path(self, table: str) -> str:
        return self._local(os.path.join("_lock", CHANGE_TOKEN.format(table=table)))

    def _change_token(self, table: str) -> bytes:
        """The log's change token (empty when none was written yet: nothing is then kept)."""
        try:
            with open(self._token_path(table), "rb") as fh:
                return fh.read()
        except OSError:
            return b""

    def changing(self, table: str) -> tuple[bytes, bytes]:
        """Replace the log's change token, before changing its folder with the writers' lock held.

        Every change this store's code makes to a log's folder (a commit, a compaction's publish
        or cleanup, a repair) calls this first, so a listing kept by any process is known stale.

        Returns:
            The token replaced and the new one (empty for an object store, which keeps no listing).
        """
        if not isinstance(self.root, Path):
            return b"", b""
        path = self._token_path(table)
        new = uuid.uuid4().bytes
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            old = os.pread(fd, len(new), 0)
            os.pwrite(fd, new, 0)
        finally:
            os.close(fd)
        return old, new

    def glob(self, table: str = "events") -> str:
        """The glob pattern a reader (DuckDB, polars, Spark) uses for one log."""
        return str(self.root / table / "*.parquet")

    def read(self, table: str = "events") -> pa.Table:
        """Every row of one log once (deduplicated by id, earliest recording kept)."""
        schema, id_col, _ = TABLES[table]
        con = self._duckdb().cursor()      # (a new connection costs about 20 ms: an ingest reads three logs)
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
        """The writers' lock (a file lock), for a caller that must hold it across several steps.

        An object store has none (a no-op context): commits are conditional PUTs of unique names
        and readers dedupe by id, so racing writers cannot corrupt the log."""
        if isinstance(self.root, ObjectPath):
            return self.root.files.lock()  # type: ignore[return-value]
        return FileLock(self._local(os.path.join("_lock", "append.lock")), timeout_s)

    def compactor_lock(self, timeout_s: float | None) -> FileLock:
        """The compactor's lock (see ``store.compaction``): in the store's ``_lock``, or for an
        object store in this machine's state folder."""
        base = local_state(self.root) if isinstance(self.root, ObjectPath) else self.root
        return FileLock(base / "_lock" / "compact.lock", timeout_s)

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
        if table == "events" and batch.num_rows >= STREAM_MIN_ROWS:
            return self._append_large(batch, run_id)
        prepared = self.prepare(batch, table=table, run_id=run_id)
        id_col = TABLES[table][1]
        n_in = prepared.num_rows
        if n_in > 1 and len(pc.unique(prepared.column(id_col))) != n_in:
            prepared = _first_of_each(prepared, id_col)
        try:
            with self.lock():
                self._clean_tmp()
                present = self.existing_ids(prepared.column(id_col), table=table, keys=prepared)
                if len(present):
                    keep = pc.invert(pc.is_in(prepared.column(id_col), value_set=present))
                    prepared = prepared.filter(keep)
                if prepared.num_rows == 0:
                    return AppendResult(table, None, 0, n_in, None)
                commit_id, path = self._commit(prepared, table)
        except LockHeld as exc:
            raise StoreBusy(self.root, LOCK_TIMEOUT_S) from exc
        self._after_commit(table, path.name)
        return AppendResult(table, commit_id, prepared.num_rows, n_in - prepared.num_rows, path)

    def _append_large(self, batch: pa.Table, run_id: str | None) -> AppendResult:
        """:meth:`append` of a large events batch, through :meth:`append_stream`'s pipeline.

        The batch is sorted as a whole first (when its keys already have the stored types: a
        cast could tie rows the caller's values order), so the slices, and the file, come out
        in the order one pass would give them, and the first of repeated events is the same
        one. A slice refused by the checks is reported as the whole batch would be (a count of
        empty values is the batch's, not the slice's)."""
        keys = [batch.column(k) for k in SORT_KEYS if k in batch.column_names]
        if len(keys) == len(SORT_KEYS) and all(
                _value_type(k.type) == EVENT_SCHEMA.field(name).type for name, k in zip(SORT_KEYS, keys, strict=True)):
            order = _sort_order([one_array(k) for k in keys])
            if not np.array_equal(order, np.arange(batch.num_rows)):
                batch = batch.take(pa.array(order))
        try:
            result = self.append_stream((batch.slice(at, SLICE_ROWS) for at in range(0, batch.num_rows, SLICE_ROWS)),
                                        run_id=run_id)
        except SchemaMismatch:
            self.prepare(batch, run_id=run_id)     # raises the whole batch's account of it
            raise
        if result.path is not None:
            self._after_commit("events", result.path.name)
        return result

    def _after_commit(self, table: str, committed: str | None = None) -> None:
        """Compact when small files pile up (see ``store.compaction``); outside the writers' lock.

        The trigger counts the small files of the listing this commit kept (see :meth:`listing`),
        when it kept one: a commit or compaction of another process since is seen by the next
        trigger (the compaction itself lists again, under its own lock)."""
        if isinstance(self.root, ObjectPath):
            return  # compaction works on local folders only (file locks, renames)
        from store.compaction import maybe_compact   # compaction builds on this module

        kept = self.__dict__.get("_listings", {}).get(table)
        if kept is not None and committed:
            at = bisect.bisect_left(kept.names, committed)
            if at == len(kept.names) or kept.names[at] != committed:
                kept = None             # not extended by this commit: the trigger lists afresh
        maybe_compact(self, table, listing=kept if committed else None)

    def prepare(self, batch: pa.Table, *, table: str = "events", run_id: str | None = None,
                encode: bool | None = None) -> pa.Table:
        """Check a batch against the schema, fill defaults and compute ids (no ``recorded_at`` yet).

        Events come out sorted by :data:`SORT_KEYS` (stable: equal keys keep their order).
        With ``encode`` (by default for a batch of at least :data:`SMALL_ROWS` rows), the text
        columns written with a dictionary come out dictionary-encoded (:func:`encoded_schema`):
        the sort, the ids and the Parquet writer then share one encoding."""
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
        if n == 1 and table == "events" and not encode:
            row = _prepared_row(batch, run_id)
            if row is not None:
                return row
        if encode is None:
            encode = n >= SMALL_ROWS
        target = encoded_schema(schema) if encode else schema
        given: dict[str, pa.Array] = {}
        for field in schema:
            if field.name in names:
                col = batch.column(field.name)
                if col.type != field.type:
                    try:
                        col = col.cast(field.type)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise SchemaMismatch(field.name, f"cannot be read as {field.type}: {exc}") from exc
                col = one_array(col)
                if field.name in DEFAULTS and table == "events":
                    if col.null_count:
                        col = pc.fill_null(col, DEFAULTS[field.name])
                    if field.name == "segment":
                        col = pc.if_else(pc.equal(col, ""), DEFAULTS[field.name], col)
                if pa.types.is_dictionary(target.field(field.name).type):
                    col = dictionary_encode(col)
                given[field.name] = col
        if table == "events" and n > 1 and all(k in given for k in SORT_KEYS):
            # sorted for pruning before the store's columns exist: fewer columns to move
            order = _sort_order([given[k] for k in SORT_KEYS])
            if not np.array_equal(order, np.arange(n)):
                indices = pa.array(order)
                given = {k: v.take(indices) for k, v in given.items()}
        arrays: dict[str, pa.Array] = {}
        filled: set[str] = set()      # columns of one value throughout (the id need not compare them)
        for field in target:
            if field.name in (id_col, "recorded_at", "commit_id"):
                continue
            if field.name in given:
                col = given[field.name]
            elif field.name in required:
                raise SchemaMismatch(field.name, "is required")
            elif field.name == "run_id":
                col = _constant_column(run_id, field.type, n)
            elif field.name in DEFAULTS and table == "events":
                col = _default_column(DEFAULTS[field.name], field.type, n)
            else:
                col = pa.nulls(n, field.type)
            if field.name not in given:
                filled.add(field.name)
            if not field.nullable and col.null_count:
                raise SchemaMismatch(field.name, f"{col.null_count} row(s) have no value")
            arrays[field.name] = col
        if table == "events":
            _check_events(arrays, given)
        out = pa.table(arrays)
        ids = content_ids(out, identity, constant=filled)
        return out.append_column(id_col, ids)

    def existing_ids(self, ids: pa.Array | pa.ChunkedArray, *, table: str = "events",
                     keys: pa.Table | None = None) -> pa.Array:
        """Which of ``ids`` the log already holds.

        ``keys``, the candidate rows themselves, narrows the search: an event's entity, metric and
        period are part of its content, hence of its id, so only rows with those values can hold
        it, and the reader skips every file and row group whose statistics rule them out (commits
        and compacted files are sorted by those columns). Without it every id is read.
        """
        id_col = TABLES[table][1]
        if len(ids) == 0:
            return pa.array([], pa.string())
        if keys is not None and table == "events" and keys.num_rows <= NARROW_MAX_VALUES:
            return self._existing_ids_pruned(ids, keys, id_col)
        if keys is not None and table == "events" and isinstance(self.root, Path):
            files = self._files_admitting(keys)
        else:   # (the empty file a new store starts each table with holds no id: not opened)
            files = [str(p) for p in self.files(table) if f"-{EMPTY_COMMIT}-" not in p.name]
        if not files:
            return pa.array([], pa.string())
        where, params = _narrowing(keys) if keys is not None and table == "events" else ("", [])
        cur = self._duckdb().cursor()
        try:
            cur.register("candidates", pa.table({"id": ids}))
            found = cur.sql(
                f"SELECT DISTINCT e.{id_col} AS id FROM read_parquet(?, union_by_name=true) e "
                f"SEMI JOIN candidates c ON e.{id_col} = c.id {where}",
                params=[files, *params],
            ).to_arrow_table()
        finally:
            cur.close()
        return found.column("id").combine_chunks().cast(pa.string())

    def _files_admitting(self, keys: pa.Table) -> list[str]:
        """The committed events files with a row group whose statistics admit the range of
        ``keys``' entity, metric and period_end: only those can hold one of their ids (the rest,
        empty files included, need not be opened)."""
        footers = self._footers("events")
        if not any(groups for _, groups in footers):     # no event stored yet
            return []
        bounds = []
        for col in ("entity", "metric", "period_end"):
            bounds.append(key_bounds(keys.column(col)))
        (e_min, e_max), (m_min, m_max), (p_min, p_max) = bounds
        if e_min is None or m_min is None or p_min is None:
            return [str(p) for p in self.files("events")]
        out = []
        folder = self.root / "events"
        for name, groups in footers:
            for _, e_lo, e_hi, m_lo, m_hi, p_lo, p_hi, _, _ in groups:
                if ((e_lo is None or (e_lo <= e_max and e_min <= e_hi))
                        and (m_lo is None or (m_lo <= m_max and m_min <= m_hi))
                        and (p_lo is None or (p_lo <= p_max and p_min <= p_hi))):
                    out.append(str(folder / name))
                    break
        return out

    def _existing_ids_pruned(self, ids: pa.Array | pa.ChunkedArray, keys: pa.Table, id_col: str) -> pa.Array:
        """``existing_ids`` for a small batch: only the row groups whose statistics admit one of
        the batch's (entity, metric, period_end) are searched, and of those only the id column,
        whose digests stay cached in memory (a committed file never changes)."""
        wanted_hex = one_array(ids)
        wanted = hex_to_digests(wanted_hex)
        w_hi, w_lo = _words(wanted)
        entities = set(keys.column("entity").to_pylist())
        metrics = set(keys.column("metric").to_pylist())
        ends = keys.column("period_end").to_pylist()
        lo, hi = min(ends), max(ends)
        hex_list = wanted_hex.to_pylist()
        id_lo, id_hi = min(hex_list), max(hex_list)
        hit = np.zeros(len(wanted), bool)
        # (a file sorted by entity, as every commit and compaction is, is searched for the row
        # groups of the batch's entities by bisection: an append's time hardly grows with the
        # store; the rest are then tested one by one, a metric alone without a generator)
        one_m = next(iter(metrics)) if len(metrics) == 1 else None
        by_entity = self.__dict__.setdefault("_entity_order", {})
        for name, groups in self._footers("events"):
            if len(groups) == 1 and groups[0][7] is not None and (id_hi < groups[0][7] or id_lo > groups[0][8]):
                continue      # (a small commit: its ids' bounds, tested first, rule most probes out)
            for rg, _, _, m_lo, m_hi, p_lo, p_hi, i_lo, i_hi in _groups_admitting(groups, entities, by_entity, name):
                if p_lo is not None and (hi < p_lo or lo > p_hi):
                    continue
                if m_lo is not None and not (m_lo <= one_m <= m_hi if one_m is not None
                                             else any(m_lo <= m <= m_hi for m in metrics)):
                    continue
                if i_lo is not None and (id_hi < i_lo or id_lo > i_hi):
                    continue
                got = self._row_group_ids(name, rg, id_col)
                if got is None:               # merged away by a compaction since the listing
                    continue
                hit |= _sorted_contains(got[0], got[1], w_hi, w_lo)
        if not hit.any():
            return _NO_IDS
        return pc.unique(pc.filter(wanted_hex.cast(pa.string()), pa.array(hit)))

    def _row_group_ids(self, name: str, rg: int, id_col: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The ids of one row group of a committed events file, as sorted (hi, lo) uint64 words.

        Cached (least recently used first out, at most ``ID_CACHE_ROWS`` ids): a committed file
        never changes, its checksum is in its name."""
        cache: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = self.__dict__.setdefault(
            "_rg_ids", OrderedDict())
        got = cache.get((name, rg))
        if got is not None:
            cache.move_to_end((name, rg))
            return got
        try:
            col = pq.ParquetFile(self.root / "events" / name).read_row_group(rg, columns=[id_col]).column(0)
        except FileNotFoundError:
            return None
        w_hi, w_lo = _words(hex_to_digests(col))
        order = np.argsort(w_hi, kind="stable")
        got = (w_hi[order], w_lo[order])
        cache[(name, rg)] = got
        self.__dict__["_rg_rows"] = self.__dict__.get("_rg_rows", 0) + len(order)
        while self.__dict__["_rg_rows"] > ID_CACHE_ROWS and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self.__dict__["_rg_rows"] -= len(old[0])
        return got

    def _footers(self, table: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """Per committed file (by name), each row group's min/max of entity, metric, period_end
        and the id.

        Cached by file name: a committed file never changes (its checksum is in its name).
        """
        cache: dict[str, list[tuple[Any, ...]]] = self.__dict__.setdefault("_footer_cache", {})
        folder = self.root / table
        # a merged source's events are all in a file of the same listing: merged sources
        # (thousands, while they wait out their grace period) need not be searched
        listed = self.listing(table).live
        for name in [n for n in listed if n not in cache]:   # (on every append: comprehensions)
            try:
                md = pq.read_metadata(folder / name)
            except FileNotFoundError:      # merged away by a compaction since the listing
                continue
            names = [md.schema.column(i).name for i in range(md.num_columns)]
            groups = []
            for rg in range(md.num_row_groups):
                if md.row_group(rg).num_rows == 0:   # (an empty file's one group) holds no id
                    continue
                bounds: list[Any] = []
                for col in ("entity", "metric", "period_end", TABLES[table][1]):
                    st = md.row_group(rg).column(names.index(col)).statistics if col in names else None
                    bounds += [st.min, st.max] if st is not None and st.has_min_max else [None, None]
                groups.append((rg, *bounds))
            cache[name] = groups
        out = [(name, cache[name]) for name in listed if name in cache]
        if len(cache) > len(out):     # files merged away: their footers and ids go
            gone = set(cache) - set(listed)
            order = self.__dict__.get("_entity_order", {})
            for name in gone:
                del cache[name]
                order.pop(name, None)
            rg_cache = self.__dict__.get("_rg_ids")
            if rg_cache:
                for key in [k for k in rg_cache if k[0] in gone]:
                    self.__dict__["_rg_rows"] -= len(rg_cache.pop(key)[0])
        return out

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        """The store's own DuckDB connection (one per Store; callers take a cursor).

        It caches Parquet footers: a committed file never changes (its checksum is in its name),
        so a cached footer is never stale, and a small append need not re-read every footer.
        """
        con = self.__dict__.get("_con")
        if con is None:
            con = duckdb.connect()
            con.execute("SET parquet_metadata_cache = true")
            attach(con, self.root)
            self.__dict__["_con"] = con
        return con

    # -- internals -------------------------------------------------------------------------
    def _commit(self, prepared: pa.Table, table: str) -> tuple[str, Path]:
        recorded_at = _now()
        commit_id = uuid.uuid4().hex
        n = prepared.num_rows
        prepared = _stamp(prepared, table, recorded_at, commit_id)
        prepared = prepared.replace_schema_metadata({**_commit_meta(table, recorded_at, commit_id),
                                                     b"metricstore.rows": str(n).encode()})
        footer = None
        if table == "events" and 0 < n <= ROW_GROUP_ROWS and "_footer_cache" in self.__dict__:
            # the footer of the file about to be written, without reading it back: one row group
            bounds: list[Any] = []
            for col in ("entity", "metric", "period_end", TABLES[table][1]):
                bounds += key_bounds(prepared.column(col)) if has_statistics(col, n) else [None, None]
            footer = [(0, *bounds)]
        path = self.publish(prepared, table, recorded_at, commit_id)
        if footer is not None:
            self.__dict__["_footer_cache"][path.name] = footer
        return commit_id, path

    def append_stream(self, batches: Iterable[pa.Table], *, table: str = "events",
                      run_id: str | None = None) -> AppendResult:
        """Append a stream of batches as one atomic commit, holding a few batches in memory at a time.

        The bulk path: each batch is checked, given ids and written as row groups of one file,
        published when the stream ends (a failure half-way commits nothing). Rows the store, or
        an earlier batch of the stream, already holds are not written again. Each batch is sorted
        by (entity, metric, period_end); a stream in entity order is then sorted as a whole.

        Args:
            batches: tables as :meth:`append` takes them.

        Returns:
            An :class:`AppendResult` for the whole stream.
        """
        schema, id_col, _ = TABLES[table]
        recorded_at, commit_id = _now(), uuid.uuid4().hex
        tmp = self.tmp_path(commit_id)
        seen = _IdSet()
        n_in = added = 0
        try:
            with self.lock():
                self._clean_tmp()
                # three stages overlap (Arrow, numpy and DuckDB release the GIL): batches n + 1
                # and n + 2 are checked, hashed and sorted in two threads while batch n is
                # deduplicated here and batch n - 1 is written in another
                encoded = encoded_schema(schema)
                writer = _BackgroundWriter(tmp, encoded.with_metadata(_commit_meta(table, recorded_at, commit_id)),
                                           write_options(encoded))
                try:
                    with ThreadPoolExecutor(PREPARERS, thread_name_prefix="metricstore-prepare") as preparer:
                        for prepared in _ahead(preparer, batches, functools.partial(
                                self.prepare, table=table, run_id=run_id, encode=True), depth=PREPARERS):
                            n_in += prepared.num_rows
                            prepared, s_hi, s_lo = self._new_in_stream(prepared, table, seen)
                            if prepared.num_rows == 0:
                                continue
                            seen.add_sorted(s_hi, s_lo)
                            stamped = _stamp(prepared, table, recorded_at, commit_id)
                            writer.write(stamped)
                            added += stamped.num_rows
                finally:
                    sha = writer.close({"metricstore.rows": str(added)})
                if added == 0:
                    tmp.unlink(missing_ok=True)
                    return AppendResult(table, None, 0, n_in, None)
                path = self.publish_file(tmp, table, recorded_at, commit_id, sha256=sha)
        except LockHeld as exc:
            raise StoreBusy(self.root, LOCK_TIMEOUT_S) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return AppendResult(table, commit_id, added, n_in - added, path)

    def _new_in_stream(self, prepared: pa.Table, table: str,
                       seen: _IdSet) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """The rows of a prepared batch that neither the batch itself (first kept), an earlier
        batch of the stream (``seen``) nor the store holds, with their ids as (hi, lo) words
        sorted by hi, ready for ``seen.add_sorted``."""
        id_col = TABLES[table][1]
        hi, lo = _IdSet.keys(prepared.column(id_col))
        order, s_hi = _order_by(hi)   # one sort serves the repeat check, the search and the add
        if (s_hi[1:] == s_hi[:-1]).any():   # a repeat (or, once in 2^64, a shared half)
            prepared = _first_of_each(prepared, id_col)
            hi, lo = _IdSet.keys(prepared.column(id_col))
            order, s_hi = _order_by(hi)
        s_lo = lo[order]
        ids = prepared.column(id_col)
        present = self.existing_ids(ids, table=table, keys=prepared)
        dup_sorted = seen.contains_sorted(s_hi, s_lo)
        if len(present):
            dup_sorted |= pc.is_in(ids, value_set=present).to_numpy(zero_copy_only=False)[order]
        if dup_sorted.any():
            dup = np.empty_like(dup_sorted)
            dup[order] = dup_sorted
            prepared = prepared.filter(pa.array(~dup))
            s_hi, s_lo = s_hi[~dup_sorted], s_lo[~dup_sorted]
        return prepared, s_hi, s_lo

    def publish(self, data: pa.Table, table: str, recorded_at: dt.datetime, commit_id: str) -> Path:
        """Write ``data`` under a temporary name, flush it, and rename it into ``table`` in one step.

        A small commit is encoded in memory and written with one call (a file written column by
        column costs a system call per page)."""
        options = write_options(data.schema, data.num_rows)
        if data.num_rows < SMALL_ROWS and isinstance(self.root, Path):
            sink = pa.BufferOutputStream()
            write_file(data, sink, options)
            body = sink.getvalue()
            staged = os.path.join(self._local("_tmp"), f"commit-{commit_id}.parquet")   # (tmp_path's, as text)
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
                return self._rename_into(staged, table, recorded_at, commit_id, hashlib.sha256(body).hexdigest(),
                                         flush=lambda: os.fsync(fd))
            finally:
                os.close(fd)
        tmp = self.tmp_path(commit_id)
        write_file(data, tmp, options)
        return self.publish_file(tmp, table, recorded_at, commit_id)

    def tmp_path(self, commit_id: str) -> Path:
        """Where a commit (or a compaction) writes its file before it is published."""
        if isinstance(self.root, ObjectPath):
            return staging_path(commit_id)  # a local file, then one PUT
        return self.root / "_tmp" / f"commit-{commit_id}.parquet"

    def publish_file(self, tmp: Path, table: str, recorded_at: dt.datetime, commit_id: str,
                     sha256: str | None = None, *, merge: bool = False) -> Path:
        """Checksum, flush and rename a finished file from ``_tmp`` into ``table`` in one step.

        ``sha256``: the checksum of the file's bytes when the writer computed it (see
        :class:`_HashingSink`), else it is read back."""
        if isinstance(self.root, ObjectPath):
            return self._put_file(tmp, table, recorded_at, commit_id)  # type: ignore[return-value]
        sha = hashlib.sha256()
        with open(tmp, "rb+") as fh:
            if sha256 is None:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        return self._rename_into(tmp, table, recorded_at, commit_id, sha256 or sha.hexdigest(), merge=merge)

    def _rename_into(self, tmp: str | Path, table: str, recorded_at: dt.datetime, commit_id: str, sha: str,
                     *, merge: bool = False, flush: Callable[[], None] | None = None) -> Path:
        """Rename a flushed file into ``table`` under its commit name, and flush the folder (the
        writers' lock held). A listing kept that was current is extended by a commit's file; a
        merge's changes which files are live, and the next listing is taken afresh.

        ``flush``: flushes the file, when the caller has not yet. It is called once the rest of
        the work before the rename is done: a single append's Python runs before it sleeps in
        its first flush, not after it, on caches the wait left cold (measured: about 2 ms of an
        append's work ran 2x slower after a flush than before it on this machine's slow state)."""
        # (local: both callers handle an object store before this; paths as text, see _local)
        name = f"{recorded_at.strftime('%Y%m%dT%H%M%S%f')}Z-{commit_id}-{sha[:16]}.parquet"
        folder = self._local(table)
        old, new = self.changing(table)
        kept = self.__dict__.get("_listings", {}).pop(table, None)
        current = (kept is not None and not merge and old and kept.token == old
                   and kept.mtime_ns == _mtime_ns(folder))
        if flush is not None:
            flush()
        os.replace(tmp, os.path.join(folder, name))
        if current:
            assert kept is not None
            bisect.insort(kept.names, name)
            if kept.live is not kept.names:
                bisect.insort(kept.live, name)
            kept.token, kept.mtime_ns = new, _mtime_ns(folder)
            self.__dict__["_listings"][table] = kept
        _fsync_dir(folder)
        return cast(Path, self.root) / table / name

    def _put_file(self, tmp: Path, table: str, recorded_at: dt.datetime, commit_id: str) -> ObjectPath:
        """The object-store publish: one conditional PUT of the whole file under its final name."""
        data = tmp.read_bytes()
        stamp = recorded_at.strftime("%Y%m%dT%H%M%S%f")
        name = f"{table}/{stamp}Z-{commit_id}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"
        assert isinstance(self.root, ObjectPath)
        self.root.files.put_new(name, data)
        tmp.unlink(missing_ok=True)
        return ObjectPath(self.root.files, name)

    def _commit_empty(self, table: str) -> None:
        schema = TABLES[table][0]
        with self.lock():
            if not self.files(table):
                empty = pa.Table.from_batches([], schema=schema)   # (empty_table() imports pandas)
                self.publish(empty.replace_schema_metadata({b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
                                                            b"metricstore.table": table.encode(),
                                                            b"metricstore.rows": b"0"}),
                             table, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), EMPTY_COMMIT)

    def _clean_tmp(self) -> None:
        """Remove what dead writers left in ``_tmp`` (called with the lock held)."""
        if isinstance(self.root, ObjectPath):
            for p in (self.root / "_tmp").glob("commit-*"):
                p.unlink(missing_ok=True)
            return
        folder = self._local("_tmp")
        try:
            listing = os.listdir(folder)
        except FileNotFoundError:
            return
        for n in listing:
            if n.startswith("commit-"):
                Path(folder, n).unlink(missing_ok=True)
        if any(n.startswith(COMPACTION_LEFTOVERS) for n in listing):
            try:   # a running compaction holds its lock: its files are alive, leave them
                with self.compactor_lock(0):
                    remove_compaction_leftovers(Path(folder))
            except LockHeld:
                pass


#: What a compaction writes in its scratch folder: the merged file, its manifest, DuckDB's spill folder.
COMPACTION_LEFTOVERS = ("compact-", "manifest-", "duckdb-")


def remove_compaction_leftovers(folder: Path) -> None:
    """Remove what a killed compaction left in ``folder``; the caller holds the compaction lock."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for n in names:
        if n.startswith(COMPACTION_LEFTOVERS):
            path = folder / n
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


_NO_IDS = pa.array([], pa.string())     # (arrays are immutable: one serves every search that finds none)

#: Ids of committed row groups a store keeps in memory for the dedup of small appends (16 bytes each).
ID_CACHE_ROWS = 2_000_000

#: Up to this many distinct entities (metrics) in a batch, the dedup search names them one by one.
NARROW_MAX_VALUES = 64


def _narrowing(keys: pa.Table) -> tuple[str, list[object]]:
    """A WHERE clause on entity, metric and period_end that every row of ``keys`` satisfies."""
    clauses: list[str] = []
    params: list[object] = []
    for col in ("entity", "metric"):
        values = pc.unique(keys.column(col)).to_pylist()
        if len(values) <= NARROW_MAX_VALUES:
            clauses.append(f"e.{col} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    bounds = pc.min_max(keys.column("period_end"))
    clauses.append("e.period_end BETWEEN ? AND ?")
    params.extend([bounds["min"].as_py(), bounds["max"].as_py()])
    return "WHERE " + " AND ".join(clauses), params


def _commit_meta(table: str, recorded_at: dt.datetime, commit_id: str) -> dict[bytes, bytes]:
    return {
        b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
        b"metricstore.table": table.encode(),
        b"metricstore.commit_id": commit_id.encode(),
        b"metricstore.recorded_at": recorded_at.isoformat().encode(),
    }


def _stamp(prepared: pa.Table, table: str, recorded_at: dt.datetime, commit_id: str) -> pa.Table:
    """Add the columns the store sets at commit, in schema order (dictionary-encoded where
    ``prepare`` encoded the batch: see :func:`encoded_schema`)."""
    columns = dict(zip(prepared.column_names, prepared.columns, strict=True))
    schema, names, types = _stamped_layout(table, any(pa.types.is_dictionary(c.type) for c in columns.values()))
    n = prepared.num_rows
    columns["recorded_at"] = pa.repeat(pa.scalar(recorded_at, schema.field("recorded_at").type), n)
    columns["commit_id"] = _constant_column(commit_id, schema.field("commit_id").type, n)
    ordered = [columns[name] for name in names]
    if [c.type for c in ordered] == types:     # only the nullability flags differ
        return pa.Table.from_arrays(ordered, schema=schema)
    return pa.Table.from_arrays(ordered, names=names).cast(schema)     # events: sorted by prepare


@functools.lru_cache(maxsize=16)
def _stamped_layout(table: str, encoded: bool) -> tuple[pa.Schema, list[str], list[pa.DataType]]:
    """A committed table's schema (:func:`encoded_schema` when ``encoded``), its names and types."""
    schema = encoded_schema(TABLES[table][0]) if encoded else TABLES[table][0]
    return schema, schema.names, schema.types


#: Default columns up to this many rows are built once and shared (arrays are immutable): the
#: batches of a stream mostly have one size, a single event's defaults and NULLs one row each.
#: A few short values: at most about 30 MB are kept.
DEFAULT_CACHE_ROWS = 1 << 17


def _default_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """An array of ``n`` times a column's default ``value`` (None: NULL)."""
    if n <= DEFAULT_CACHE_ROWS:
        return _default_cached(value, type_, n)
    return _constant_column(value, type_, n)


@functools.lru_cache(maxsize=40)
def _default_cached(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    return _constant_column(value, type_, n)


def _constant_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` times ``value`` (None: nulls) in ``type_``; a dictionary type gets one entry."""
    if pa.types.is_dictionary(type_):
        if value is None:
            return pa.nulls(n, type_)
        return pa.DictionaryArray.from_arrays(_zeros_int32(n), pa.array([value], type_.value_type))
    return pa.repeat(pa.scalar(value, type_), n)


def _zeros_int32(n: int) -> pa.Array:
    return pa.array(np.zeros(n, np.int32))


#: Up to this many values, :func:`key_bounds` compares them in Python.
KEY_BOUNDS_PY_MAX = 16


def key_bounds(col: pa.Array | pa.ChunkedArray) -> tuple[Any, Any]:
    """The least and greatest value of a column (dictionary-encoded or not), as Python values."""
    col = one_array(col)
    if len(col) <= KEY_BOUNDS_PY_MAX:    # (a single append's: a compute call costs more than this)
        values = [v for v in col.to_pylist() if v is not None]
        return (min(values), max(values)) if values else (None, None)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary.take(pc.unique(col.indices.filter(pc.is_valid(col.indices))))
    mm = pc.min_max(col)
    return mm["min"].as_py(), mm["max"].as_py()


def _groups_admitting(groups: list[tuple[Any, ...]], entities: set[str],
                      by_entity: dict[str, tuple[list[str], list[str]] | None], name: str) -> list[tuple[Any, ...]]:
    """The row groups of one file (:meth:`Store._footers`) whose entity bounds admit one of
    ``entities``. When the groups' least and greatest entities both ascend (a file sorted by
    entity), two bisections an entity find them; otherwise each group is tested.
    ``by_entity`` caches each file's ascending bounds (None: not sorted) by its name."""
    if name not in by_entity:
        lows, highs = [g[1] for g in groups], [g[2] for g in groups]
        ascending = (None not in lows and None not in highs
                     and all(a <= b for a, b in zip(lows, lows[1:])) and all(a <= b for a, b in zip(highs, highs[1:])))
        by_entity[name] = (lows, highs) if ascending else None
    sorted_bounds = by_entity[name]
    if sorted_bounds is None:
        return [g for g in groups if g[1] is None or any(g[1] <= e <= g[2] for e in entities)]
    lows, highs = sorted_bounds
    if len(entities) == 1:
        e = next(iter(entities))   # groups from the first ending at or after e to the last starting at or before it
        return groups[bisect.bisect_left(highs, e):bisect.bisect_right(lows, e)]
    picked = sorted({i for e in entities for i in range(bisect.bisect_left(highs, e), bisect.bisect_right(lows, e))})
    return [groups[i] for i in picked]


def _words(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16) digests as two uint64 arrays (the first and last 8 bytes, big-endian)."""
    words = np.ascontiguousarray(digests).view(">u8").astype(np.uint64)
    return words[:, 0].copy(), words[:, 1].copy()


def _order_by(hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``hi`` (uint64), and ``hi`` sorted. The row numbers ride in the low
    bits of the values while they are sorted (quicker than arg-sorting them); where two values
    differ only in those bits the result is checked and arg-sorted instead."""
    row_bits = int(len(hi) - 1).bit_length()
    if len(hi) < 2 or row_bits > 32:
        order = np.argsort(hi, kind="stable")
        return order, hi[order]
    low = np.uint64((1 << row_bits) - 1)
    packed = (hi & ~low) | np.arange(len(hi), dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.intp)
    s_hi = hi[order]
    if (s_hi[1:] < s_hi[:-1]).any():
        order = np.argsort(hi, kind="stable")
        s_hi = hi[order]
    return order, s_hi


def _sorted_contains(l_hi: np.ndarray, l_lo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Which (hi, lo) pairs are among the pairs (l_hi, l_lo), sorted by hi."""
    hit = np.zeros(len(hi), dtype=bool)
    if not len(l_hi) or not len(hi):
        return hit
    if len(hi) == 1:                  # (a single append's: numpy's cost per call is most of it)
        at, h, lo0 = int(np.searchsorted(l_hi, hi[0])), hi[0], lo[0]
        while at < len(l_hi) and l_hi[at] == h:
            if l_lo[at] == lo0:
                hit[0] = True
                break
            at += 1
        return hit
    pos = np.searchsorted(l_hi, hi)
    todo = np.flatnonzero(pos < len(l_hi))
    while len(todo):                  # walk the (almost always single) entries sharing hi
        p = pos[todo]
        same = l_hi[p] == hi[todo]
        todo, p = todo[same], p[same]
        hit[todo[l_lo[p] == lo[todo]]] = True
        pos[todo] += 1
        todo = todo[pos[todo] < len(l_hi)]
    return hit


#: A run of the stream's id set is merged with the next no further than this many ids: past it a
#: merge moves more memory than the searches it saves cost (the filter keeps searches rare).
ID_RUN_MAX = 1 << 21
#: The id set's filter: from 2^24 bits (2 MB, its pages touched as used) up to 2^32 bits (512 MB).
ID_FILTER_BITS = (24, 32)
#: Bits of the filter an id, at least (at most twice as many: the filter is a power of two), up
#: to 134 M ids. One new id in 30 to 60 is then searched for in the runs: a search reads a few
#: runs of up to 16 MB at about 0.5 us a run, far more than marking and testing a bit costs.
ID_FILTER_DENSITY = 32


class _IdSet:
    """The ids a stream has written so far: pairs of uint64 (an id's first and last 8 bytes).

    Runs of pairs sorted by hi, merged like a log-structured tree up to :data:`ID_RUN_MAX` ids a
    run, and a filter: a bitmap over the top bits of hi, 32 to 64 bits an id. A clear bit proves an
    id absent, so only the few ids whose bit is set are searched for in the runs.

    20 to 24 bytes an id and no Python object per id: a 10 M-event stream dedups across its
    batches in about 200-240 MB, with integer searches instead of string ones.
    """

    def __init__(self) -> None:
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = 0
        self.bits = ID_FILTER_BITS[0]
        self.filter = np.zeros(1 << (self.bits - 3), np.uint8)

    @staticmethod
    def keys(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        return hex_to_words(ids)

    def _bits_of(self, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each id's filter bit: the byte that holds it and the bit's mask in that byte."""
        slot = hi >> np.uint64(64 - self.bits)
        return (slot >> np.uint64(3)).astype(np.intp), np.uint8(1) << (slot & np.uint64(7)).astype(np.uint8)

    def _mark(self, hi: np.ndarray) -> None:
        """Set the filter bits of ``hi`` (sorted): a gather, an OR and a scatter, then the few ids
        that share a byte with their neighbour again one by one (the scatter kept one of their
        bits). On a warm 64 MB filter a sixth of ``np.bitwise_or.at``'s time over them all; in
        the stream, where the filter is cold, about 15 % less."""
        byte, mask = self._bits_of(hi)
        marked = self.filter[byte]
        marked |= mask
        self.filter[byte] = marked
        same = byte[1:] == byte[:-1]          # (sorted: a shared byte is a neighbour's)
        if same.any():
            shared = np.zeros(len(byte), bool)
            shared[1:] = same
            shared[:-1] |= same
            again = np.flatnonzero(shared)
            np.bitwise_or.at(self.filter, byte[again], mask[again])

    def contains_sorted(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Which pairs, sorted by ``hi``, the set holds."""
        found = np.zeros(len(hi), dtype=bool)
        if not self.count or not len(hi):
            return found
        byte, mask = self._bits_of(hi)
        maybe = np.flatnonzero(self.filter[byte] & mask)
        if len(maybe):
            m_hi, m_lo = hi[maybe], lo[maybe]          # (still sorted by hi)
            hit = np.zeros(len(maybe), dtype=bool)
            for l_hi, l_lo in self.levels:
                hit |= _sorted_contains(l_hi, l_lo, m_hi, m_lo)
            found[maybe] = hit
        return found

    def add_sorted(self, hi: np.ndarray, lo: np.ndarray) -> None:
        """Add pairs sorted by ``hi`` (the search walks equal his)."""
        self.count += len(hi)
        bits = min(max(ID_FILTER_BITS[0], int(ID_FILTER_DENSITY * self.count - 1).bit_length()), ID_FILTER_BITS[1])
        if bits > self.bits:                  # a larger filter: every id marked again
            self.bits, self.filter = bits, np.zeros(1 << (bits - 3), np.uint8)
            for l_hi, _ in self.levels:
                self._mark(l_hi)
        self._mark(hi)
        while self.levels and len(self.levels[-1][0]) <= len(hi) and len(self.levels[-1][0]) + len(hi) <= ID_RUN_MAX:
            o_hi, o_lo = self.levels.pop()
            hi, lo = np.concatenate([o_hi, hi]), np.concatenate([o_lo, lo])
            order = np.argsort(hi, kind="stable")   # two sorted runs: a linear merge
            hi, lo = hi[order], lo[order]
        self.levels.append((hi, lo))


class _HashingSink(io.RawIOBase):
    """A file opened for writing that computes the SHA-256 of what is written to it, so a
    finished file's checksum needs no second read."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.fh = open(path, "xb")  # noqa: SIM115 - closed by close()
        self.sha = hashlib.sha256()
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.fh.write(view)
        self.pos += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        if not self.closed:
            self.fh.close()
        super().close()


#: Bytes the stream's Parquet writer gathers before handing them to the hashing file.
SINK_BUFFER = 4 << 20


class _BackgroundWriter:
    """Writes tables as row groups of one Parquet file in a thread; ``close`` waits for it and
    returns the file's SHA-256.

    At most one table waits while another is written. An error in the thread is raised by the
    next ``write`` or by ``close``; the file is then unfinished (the caller deletes it).
    """

    def __init__(self, path: Path, schema: pa.Schema, options: dict[str, Any]) -> None:
        self.path, self.schema, self.options = path, schema, options
        self.sink: _HashingSink | None = None
        self.stream: pa.NativeFile | None = None
        self.writer: pq.ParquetWriter | None = None
        self.error: BaseException | None = None
        self.queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._run, name="metricstore-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue                          # drain: the caller learns of the error and stops
            try:
                if self.writer is None:
                    self.sink = _HashingSink(self.path)
                    # the writer's many small writes (a few per page) gather in a native buffer:
                    # Python (and the GIL) sees one write of SINK_BUFFER bytes at a time
                    self.stream = pa.BufferedOutputStream(pa.PythonFile(self.sink, mode="w"), SINK_BUFFER)
                    self.writer = pq.ParquetWriter(self.stream, self.schema, **self.options)
                self.writer.write_table(item, row_group_size=ROW_GROUP_ROWS)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc

    def write(self, table: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(table)

    def close(self, metadata: dict[str, str]) -> str | None:
        """Finish the file; its SHA-256 (None when nothing was written)."""
        self.queue.put(None)
        self.thread.join()
        try:
            if self.writer is not None:
                if self.error is None:
                    self.writer.add_key_value_metadata({**_unstored_metadata(self.schema, self.options), **metadata})
                self.writer.close()
        finally:
            try:
                if self.stream is not None:
                    self.stream.close()           # the buffer's last bytes, into the hashing file
            finally:
                if self.sink is not None:
                    self.sink.close()
        if self.error is not None:
            raise self.error
        return self.sink.sha.hexdigest() if self.sink is not None else None


def _ahead(pool: ThreadPoolExecutor, batches: Iterable[pa.Table],
           fn: Callable[[pa.Table], pa.Table], depth: int = 1) -> Iterator[pa.Table]:
    """``fn`` of each batch, in order, computed in ``pool`` up to ``depth`` batches ahead of
    the consumer.

    The batches are drawn here (the caller's thread), so at most ``depth`` are being worked on
    while the consumer holds the previous result. A failure is raised when its batch's turn
    comes."""
    pending: collections.deque[Future[pa.Table]] = collections.deque()
    for batch in batches:
        pending.append(pool.submit(fn, batch))
        del batch
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _sort_order(keys: list[pa.Array]) -> np.ndarray:
    """The stable ascending order of rows by ``keys`` (``pc.sort_indices``' order).

    Each key becomes its rank among the key's distinct values (strings through their
    dictionary, dates as days from the least), and the ranks and the row number are packed
    into one distinct uint64 per row: an unstable (vectorised) sort of those is stable by
    construction. Keys with nulls, other types or too many bits take ``pc.sort_indices``."""
    n = len(keys[0])
    parts: list[tuple[np.ndarray, int]] = []
    for col in keys:
        if col.null_count:
            parts = []
            break
        if pa.types.is_string(col.type) or (pa.types.is_dictionary(col.type)
                                            and pa.types.is_string(col.type.value_type)):
            enc = col if pa.types.is_dictionary(col.type) else dictionary_encode(col)
            rank = np.empty(len(enc.dictionary), np.uint64)
            rank[pc.sort_indices(enc.dictionary).to_numpy()] = np.arange(len(enc.dictionary), dtype=np.uint64)
            parts.append((rank[enc.indices.to_numpy()], len(enc.dictionary)))
        elif pa.types.is_date32(col.type):
            days = col.cast(pa.int32()).to_numpy().astype(np.int64)
            low = int(days.min())
            parts.append(((days - low).astype(np.uint64), int(days.max()) - low + 1))
        else:
            parts = []
            break
    bits = [int(width - 1).bit_length() for _, width in parts]
    if not parts or sum(bits) + int(n - 1).bit_length() > 64:
        plain = [k.cast(k.type.value_type) if pa.types.is_dictionary(k.type) else k for k in keys]
        order = pc.sort_indices(pa.table({str(i): k for i, k in enumerate(plain)}),
                                sort_keys=[(str(i), "ascending") for i in range(len(keys))])
        return cast(np.ndarray, order.to_numpy())
    packed = np.zeros(n, np.uint64)
    for (rank, _), b in zip(parts, bits, strict=True):
        packed = (packed << np.uint64(b)) | rank
    row_bits = int(n - 1).bit_length()
    packed = (packed << np.uint64(row_bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()                      # (a sort of values is quicker than one of their places)
    return (packed & np.uint64((1 << row_bits) - 1)).astype(np.int64)


def _value_type(t: pa.DataType) -> pa.DataType:
    """A dictionary type's value type; any other type itself."""
    return t.value_type if pa.types.is_dictionary(t) else t


def _first_of_each(table: pa.Table, id_col: str) -> pa.Table:
    """The first row of each id, in the table's order."""
    idx = pa.array(range(table.num_rows), pa.int64())
    keyed = table.append_column("__i", idx)
    firsts = keyed.group_by(id_col, use_threads=False).aggregate([("__i", "min")]).column("__i_min")
    return table.take(pa.array(np.sort(firsts.to_numpy())))   # the rows themselves, not their ranks


#: What :meth:`Store.prepare` makes of an events batch: the stored columns but those set at
#: commit, then the id (the fields as ``pa.table`` infers them: nullable, no metadata).
PREPARED_EVENTS = pa.schema([pa.field(f.name, f.type) for f in EVENT_SCHEMA if f.name not in STORE_SET]
                            + [pa.field("event_id", pa.string())])
_EVENT_TYPES = {f.name: f.type for f in EVENT_SCHEMA}
_EVENT_NOT_NULL = frozenset(f.name for f in EVENT_SCHEMA if not f.nullable)
_EVENT_ID_LAYOUT = id_layout(EVENT_SCHEMA, IDENTITY_COLUMNS)


def _prepared_row(batch: pa.Table, run_id: str | None) -> pa.Table | None:
    """:meth:`Store.prepare` of a one-row events batch through its Python values: the same table
    (a test holds the two equal) in a fraction of the time, Arrow's cost per call and column
    being most of what preparing a single event costs. None when the row needs the general
    path: a column to cast, or a value the checks refuse (the general path then says which)."""
    for f in batch.schema:
        if f.type != _EVENT_TYPES[f.name]:
            return None
    try:
        given = batch.to_pylist()[0]
    except (ValueError, OverflowError, pa.ArrowException):   # (a date past Python's range)
        return None
    row: dict[str, Any] = {}
    for name in PREPARED_EVENTS.names[:-1]:        # (the last is the id)
        if name not in given:
            v = run_id if name == "run_id" else DEFAULTS.get(name)
        elif (v := given[name]) is None:
            v = DEFAULTS.get(name)                  # (a run_id given as NULL stays NULL)
        elif name == "segment" and v == "":
            v = DEFAULTS[name]
        if v is None and name in _EVENT_NOT_NULL:
            return None
        row[name] = v
    if (any(row[name] not in allowed for name, allowed in ENUMS.items())
            or row["period_end"] < row["period_start"]
            or (row["value"] is None and row["op"] == "assert")
            or any(v is not None and not math.isfinite(v) for v in (row["value"], row["value_high"]))):
        return None
    row["event_id"] = content_id_of(row, _EVENT_ID_LAYOUT)
    columns = dict(zip(batch.column_names, batch.columns, strict=True))
    arrays = []
    for f in PREPARED_EVENTS:
        if f.name == "event_id":
            arrays.append(pa.array([row["event_id"]], f.type))
        elif f.name in given and given[f.name] == row[f.name]:      # as given (no default put in)
            arrays.append(one_array(columns[f.name]))
        else:                              # a default, NULL or the run: one of a few values
            arrays.append(_default_column(row[f.name], f.type, 1))
    return pa.Table.from_arrays(arrays, schema=PREPARED_EVENTS)


def _check_events(arrays: dict[str, pa.Array], given: dict[str, pa.Array]) -> None:
    for name, allowed in ENUMS.items():
        if name not in given:        # the default fills it: an allowed value by construction
            continue
        col = arrays[name]
        if pa.types.is_dictionary(col.type):   # encoded by prepare: every entry is used
            col = col.dictionary
        bad = pc.invert(pc.is_in(col, value_set=pa.array(allowed)))
        if pc.any(bad).as_py():
            value = pc.filter(col, bad)[0].as_py()
            raise SchemaMismatch(name, f"{value!r} is not one of {', '.join(allowed)}")
    if pc.any(pc.less(arrays["period_end"], arrays["period_start"])).as_py():
        raise SchemaMismatch("period_end", "is before period_start")
    if arrays["value"].null_count:    # (else no assert lacks one: op, often encoded, is not read)
        asserts = pc.equal(arrays["op"], "assert")
        if pc.any(pc.and_(asserts, pc.is_null(arrays["value"]))).as_py():
            raise SchemaMismatch("value", "an assert needs a value")
    for name in ("value", "value_high"):
        col = arrays[name]
        if col.null_count == len(col):
            continue
        if pa.types.is_floating(col.type) and pc.any(pc.invert(pc.is_finite(col))).as_py():
            raise SchemaMismatch(name, "NaN and infinity are not values")
