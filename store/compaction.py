"""Compaction: merge many small commit files into few large ones, sorted for the common queries.

A commit is one small Parquet file; after thousands of them every query pays thousands of file
opens. Compaction rewrites the events of small files (or, with ``full``, of every file) into one
file sorted by (entity, metric, period_end), in row groups small enough that a filter on one
series skips almost all of them. It never changes an event: every row keeps its ``event_id``,
``recorded_at``, ``commit_id`` and ``run_id``, so every view, ``as_recorded`` included, answers
exactly as before.

Safety while others work:

- Writers are never blocked while a merge runs: compaction holds its own lock
  (``_lock/compact.lock``), and a commit that lands meanwhile is simply not among the sources.
  It takes the writers' lock only for the moments it changes the folder (the manifest and the
  rename that publishes the merged file; the deletion of expired sources), as every change of
  a log's folder is made, so that a writer's kept listing stays exact (``store.layout.CHANGE_TOKEN``).
- The merged file is published atomically beside its sources. Until the sources go, a reader
  sees each of their events twice; every view dedupes by event id (``events``) or collapses the
  copies in its ranking per fact key (``facts``, ``growth``), so nothing is double counted.
- Sources are deleted only after a grace period (``grace_s``, as Delta's vacuum retention):
  a reader that listed the files before the merge may still open them. Before the merged file is
  published, a manifest in ``_compaction/`` names it and its sources; a crash at any step leaves
  either the sources alone (no manifest or no merged file: nothing is retired) or both (the
  manifest finishes the job later).

Nothing here is a source of truth: the manifests only say which files are already merged.

On an object store (``s3://bucket/prefix``) the same steps hold with S3's primitives: the merge
reads the sources through DuckDB (:func:`store.backends.attach`) and writes the merged file in a
local scratch folder (``local_state(root)/_tmp``); the manifest is one conditional PUT to
``<prefix>/_compaction/<commit>.json``, then the merged file is one conditional PUT under its commit
name (a reader sees all of it or nothing), and a source is deleted (one DELETE) only after the grace
period, and only while the listing shows its manifest's merged object (or a later merge of it).
The compaction lock lives in ``local_state(root)/_lock``: it holds on one machine only. Two machines
compacting one prefix at once are harmless, though wasteful: both merged files are published, each
event is then held twice and every view keeps it once (by event id), and each source is deleted
only once a merged object holding its rows is listed. Their clocks should agree within the grace
period (a manifest's age is measured against the creator's clock). The compacting role needs
``s3:DeleteObject``, which writers do not.

Automatic compaction is off for object stores (``Store._after_commit``): a merge there costs a GET
of every small file, and writers hold no delete permission; run ``metricstore compact --store
s3://...`` (or :func:`compact`) from one scheduled job instead.

Example:
    >>> compact(Store("data/store"))                       # doctest: +SKIP
    CompactionResult(merged=40, rows=40, path=..., deleted=0)
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from store import manifests
from store.errors import StoreBusy
from store.layout import LOCK_TIMEOUT_S, MANIFESTS, commit_of, remove_compaction_leftovers
from store.locks import LockHeld
from store.log import Listing, Log
from store.manifests import merged_sources as _merged_sources
from store.parquet import ROW_GROUP_ROWS, write_options
from store.schema import SCHEMA_VERSION, TABLES

__all__ = ["MANIFESTS", "CompactionPolicy", "CompactionResult", "cleanup", "compact", "due",
           "live_files", "maybe_compact", "merged_sources", "retired"]

#: Sort order of compacted events: the keys of a series, then of a fact, then the id.
EVENT_ORDER = ("entity", "metric", "segment", "dims", "period_end", "period_start", "event_id")


@dataclass(frozen=True)
class CompactionPolicy:
    """When compaction runs by itself, and how long merged sources stay for readers.

    Attributes:
        auto: compact after a commit when a threshold is reached (``METRICSTORE_AUTO_COMPACT``).
        min_files: that many small files trigger a compaction (``METRICSTORE_COMPACT_MIN_FILES``).
        min_bytes: or small files holding that many bytes in all (``METRICSTORE_COMPACT_MIN_BYTES``).
        small_bytes: a file smaller than this is small, and merged again until it is not.
        grace_s: seconds a merged source stays readable before deletion (``METRICSTORE_COMPACT_GRACE_S``).
        memory_limit: DuckDB's memory cap while merging; larger merges spill to ``_tmp``.
        lock_wait_s: seconds the automatic trigger waits for the writers' lock, held by a commit
            of another process, to publish its merge or delete sources; past it the merge is
            dropped and the next trigger merges (``METRICSTORE_COMPACT_LOCK_WAIT_S``).
    """

    auto: bool = True
    min_files: int = 32
    min_bytes: int = 64 << 20
    small_bytes: int = 4 << 20
    grace_s: float = 300.0
    memory_limit: str = "1GB"
    lock_wait_s: float = 5.0

    @classmethod
    def from_env(cls) -> CompactionPolicy:
        """The policy the environment sets (read on every commit: kept by the variables' values)."""
        return _policy_of(tuple(os.environ.get(name) for name in _POLICY_ENV))


#: The variables of :meth:`CompactionPolicy.from_env`, in the order :func:`_policy_of` reads them.
_POLICY_ENV = ("METRICSTORE_AUTO_COMPACT", "METRICSTORE_COMPACT_MIN_FILES", "METRICSTORE_COMPACT_MIN_BYTES",
               "METRICSTORE_COMPACT_SMALL_BYTES", "METRICSTORE_COMPACT_GRACE_S", "METRICSTORE_COMPACT_LOCK_WAIT_S")


@functools.lru_cache(maxsize=16)
def _policy_of(values: tuple[str | None, ...]) -> CompactionPolicy:
    auto, min_files, min_bytes, small_bytes, grace_s, lock_wait_s = values
    d = CompactionPolicy()
    return CompactionPolicy(
        auto=(auto or "1").strip().lower() not in ("0", "false", "no", "off"),
        min_files=int(min_files) if min_files is not None else d.min_files,
        min_bytes=int(min_bytes) if min_bytes is not None else d.min_bytes,
        small_bytes=int(small_bytes) if small_bytes is not None else d.small_bytes,
        grace_s=float(grace_s) if grace_s is not None else d.grace_s,
        lock_wait_s=float(lock_wait_s) if lock_wait_s is not None else d.lock_wait_s,
    )


@dataclass
class CompactionResult:
    """What one compaction did."""

    table: str
    merged: int = 0
    rows: int = 0
    path: Path | None = None
    deleted: int = 0
    skipped: str | None = None
    sources: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.table}: nothing merged ({self.skipped}); {self.deleted} merged source(s) deleted"
        return (f"{self.table}: merged {self.merged} file(s), {self.rows} rows, into {self.path.name if self.path else '-'}; "
                f"{self.deleted} merged source(s) deleted")


# -- which files ----------------------------------------------------------------------------
def retired(store: Log, table: str = "events", files: list[Path] | None = None) -> set[str]:
    """Names of live files already merged into a published file (deleted once their grace is over):
    every event of each is in a file of the same listing."""
    names = store.names(table) if files is None else [p.name for p in files]
    return manifests.sources_state(store.backend, table, names)[0]


def merged_sources(store: Log, table: str = "events") -> dict[str, list[str]]:
    """The sources of each merge whose manifest is still kept, by the merged file's commit id
    (a manifest is dropped with its sources once their grace period is over)."""
    return _merged_sources(store.backend, table)


def live_files(store: Log, table: str = "events") -> list[Path]:
    """The files a reader should read: :meth:`Log.live_files` (every committed file but the
    merged sources, by the store's one listing)."""
    return store.live_files(table)


def cleanup(store: Log, *, grace_s: float, table: str = "events", lock_timeout_s: float = LOCK_TIMEOUT_S) -> int:
    """Delete merged sources whose grace period is over; drop finished or abandoned manifests.

    The deletions are made with the writers' lock held (``lock_timeout_s``), as every change of
    a log's folder is: a writer held it longer, and nothing is deleted this time.

    Returns:
        How many source files were deleted.
    """
    deleted = 0
    now = time.time()
    backend = store.backend
    if not manifests.any_expired(backend, table, grace_s):
        return 0
    mans = manifests.CACHE.of_table(backend, table)
    effective = {m.name for m in manifests.took_effect(mans, store.names(table))}
    expired = []
    for m in mans:
        age = now - m.created_unix
        if m.name not in effective:
            if age > max(grace_s, 3600.0):      # the merge died before publishing: forget it
                manifests.delete(backend, m)
            continue
        if age >= grace_s:
            expired.append(m)
    if not expired:
        return 0
    try:
        with store.lock(lock_timeout_s):
            store.changing(table)
            live = set(store.names(table))
            for m in expired:
                for name in m.sources:
                    if name in live:
                        live.discard(name)
                        backend.delete(f"{table}/{name}")
                        deleted += 1
                manifests.delete(backend, m)
    except LockHeld:
        return deleted
    return deleted


# -- merging --------------------------------------------------------------------------------
class FileSizes:
    """Sizes of committed files by store root and name (a committed file never changes: its
    checksum is in its name). Shared by the process's threads (the automatic trigger runs after
    a commit, outside the writers' lock, in as many threads as append): one lock guards it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_folder: dict[str, dict[str, int]] = {}

    def small(self, store: Log, table: str, names: list[str], small_bytes: int) -> tuple[list[str], int]:
        """The files among ``names`` (a log's live files) smaller than ``small_bytes`` (a file gone
        counts as large), and their bytes in all; entries of files no longer live are dropped."""
        key = f"{store.root}/{table}"
        with self._lock:
            known = dict(self._by_folder.get(key, {}))
        found: dict[str, int] = {}
        out, total = [], 0
        for n in names:      # (sizes from the cache first: on every commit's trigger, a look-up a live file)
            size = known.get(n)
            if size is None:
                size = store.backend.size(table, n)
                if size is None:
                    continue
                found[n] = size
            if size < small_bytes:
                out.append(n)
                total += size
        listed = set(names)
        with self._lock:
            cache = self._by_folder.setdefault(key, {})
            cache.update(found)
            if len(cache) > len(listed):
                for n in [n for n in cache if n not in listed]:
                    del cache[n]
        return out, total


#: The process's one cache of file sizes.
SIZES = FileSizes()


def _select_sources(store: Log, table: str, policy: CompactionPolicy, full: bool,
                    live: list[str] | None = None) -> list[Path]:
    """The files a compaction merges: the live small ones (every live one with ``full``).
    ``live``: the live files of a listing at hand (see ``Log.listing``), else listed here."""
    return cast("list[Path]", [store.backend.path(table, n) for n in _selected(store, table, policy, full, live)[0]])


def _selected(store: Log, table: str, policy: CompactionPolicy, full: bool,
              live: list[str] | None = None) -> tuple[list[str], int]:
    if live is None:
        live = store.listing(table).live
    files = [n for n in live if commit_of(n)]
    if full:
        return files, 0
    return SIZES.small(store, table, files, policy.small_bytes)


def due(store: Log, policy: CompactionPolicy, table: str = "events", live: list[str] | None = None) -> bool:
    """Has the small files' count or size reached the policy's threshold? (``live``: the live
    files of a listing at hand, see ``Log.listing``)"""
    small, size = _selected(store, table, policy, full=False, live=live)
    return len(small) >= policy.min_files or (len(small) > 1 and size >= policy.min_bytes)


def _merge(store: Log, table: str, sources: list[Path],
           policy: CompactionPolicy, lock_timeout_s: float = LOCK_TIMEOUT_S) -> tuple[str, Path, int]:
    schema = TABLES[table].schema
    commit_id = uuid.uuid4().hex
    recorded_at = dt.datetime.now(dt.UTC)
    # not ``store.tmp_path``: writers clear stale ``commit-*`` files, and this one is alive
    scratch = store.backend.scratch()   # (local: _tmp; an object store's: this machine's state folder)
    tmp = scratch / f"compact-{commit_id}.parquet"
    order = EVENT_ORDER if table == "events" else (TABLES[table].id_column,)
    cols = ", ".join(f'"{f.name}"' for f in schema)
    meta = {
        "metricstore.schema_version": str(SCHEMA_VERSION),
        "metricstore.table": table,
        "metricstore.commit_id": commit_id,
        "metricstore.recorded_at": recorded_at.isoformat(),
        "metricstore.compacted_from": str(len(sources)),
    }
    spill = scratch / f"duckdb-{commit_id}"
    con = duckdb.connect()
    try:
        store.backend.attach(con)           # s3:// sources read through fsspec (no-op locally)
        con.execute(f"SET memory_limit = '{policy.memory_limit}'")
        con.execute(f"SET temp_directory = '{spill}'")
        con.execute("SET preserve_insertion_order = true")
        n = con.sql("SELECT count(*) FROM read_parquet(?, union_by_name = true)",
                    params=[[str(p) for p in sources]]).fetchall()[0][0]
        cols = _columns(con, sources, schema)
        meta["metricstore.rows"] = str(n)
        # DuckDB sorts (spilling to _tmp past its memory limit) and streams the rows; pyarrow writes
        # them, with the options of every commit: DuckDB's COPY cannot write page checksums
        reader = con.sql(
            f"SELECT {cols} FROM read_parquet(?, union_by_name = true) ORDER BY {', '.join(order)}",
            params=[[str(p) for p in sources]],
        ).to_arrow_reader(ROW_GROUP_ROWS)
        target = schema.with_metadata(meta)
        with pq.ParquetWriter(tmp, target, **write_options(schema)) as writer:
            pending: list[pa.Table] = []
            rows = 0
            for rb in reader:                   # whole row groups of ROW_GROUP_ROWS, then the rest
                pending.append(_conform(rb, schema))
                rows += rb.num_rows
                if rows >= ROW_GROUP_ROWS:
                    chunk = pa.concat_tables(pending)
                    whole = rows - rows % ROW_GROUP_ROWS
                    writer.write_table(chunk.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
                    pending = [chunk.slice(whole)] if whole < rows else []
                    rows -= whole
            if rows:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    try:
        # the writers' lock, for the moment the folder changes (see store.layout.CHANGE_TOKEN)
        with store.lock(lock_timeout_s):
            manifests.write(store.backend, commit_id, table, [p.name for p in sources])
            path = store.publish_file(tmp, table, recorded_at, commit_id, merge=True)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, LockHeld):
            raise StoreBusy(store.root, lock_timeout_s) from exc
        raise
    return commit_id, path, n


def _columns(con: duckdb.DuckDBPyConnection, sources: list[Path], schema: pa.Schema) -> str:
    """The select list of a merge: the table's columns, NULL for one no source has (files written
    before the column was added)."""
    held = {r[0] for r in con.sql("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)",
                                  params=[[str(p) for p in sources]]).fetchall()}
    return ", ".join(f'"{f.name}"' if f.name in held else f'NULL AS "{f.name}"' for f in schema)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """One of DuckDB's batches in the table's Arrow schema (its time zone name, string types)."""
    table = pa.Table.from_batches([batch]).select(schema.names)
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(table.columns, schema, strict=True)], schema=schema)


def compact(store: Log, *, table: str = "events", full: bool = False, grace_s: float | None = None,
            policy: CompactionPolicy | None = None, wait: bool = True) -> CompactionResult:
    """Merge the small files of ``table`` (every file with ``full``) into one sorted file.

    Args:
        store: the store.
        table: which log (``events`` by default).
        full: merge every live file, large ones too (the best layout for queries, and the cost
            of rewriting everything).
        grace_s: seconds merged sources stay for running readers (default: the policy's);
            ``0`` deletes them at once, safe only when no reader runs.
        policy: thresholds and limits (default: :meth:`CompactionPolicy.from_env`).
        wait: wait for a compaction already running; when false, skip instead.

    Returns:
        A :class:`CompactionResult`.
    """
    policy = policy or CompactionPolicy.from_env()
    grace = policy.grace_s if grace_s is None else grace_s
    result = CompactionResult(table)
    # the writers' lock, held for moments only, is waited for as a writer waits; by the
    # automatic trigger, briefly (a long commit of another process: the next trigger merges)
    lock_wait = LOCK_TIMEOUT_S if wait else policy.lock_wait_s
    try:
        with store.compactor_lock(None if wait else 0):
            remove_compaction_leftovers(store.backend.scratch())       # a compaction that died
            sources = _select_sources(store, table, policy, full)
            if len(sources) < 2:
                result.skipped = f"{len(sources)} file(s) to merge"
            else:
                try:
                    _, result.path, result.rows = _merge(store, table, sources, policy, lock_wait)
                    result.merged, result.sources = len(sources), [p.name for p in sources]
                except StoreBusy:
                    if wait:
                        raise
                    result.skipped = f"a writer held the store's lock past {lock_wait:g} s"
            result.deleted = cleanup(store, grace_s=grace, table=table, lock_timeout_s=lock_wait)
    except LockHeld:
        result.skipped = "another compaction is running"
    return result


def maybe_compact(store: Log, table: str = "events", listing: Listing | None = None) -> CompactionResult | None:
    """The automatic trigger, run after a commit: compact when due, and delete expired sources.

    ``listing``: the one the commit kept (see ``Store.listing``), whose live files and oldest
    manifest spare a listing of the folder and of the manifests. Never waits for another
    compaction and never raises for a failed merge (the commit that triggered it has already
    succeeded; the next commit tries again).
    """
    policy = CompactionPolicy.from_env()
    if not policy.auto or table != "events":
        return None
    try:
        if due(store, policy, table, listing.live if listing is not None else None):
            return compact(store, table=table, policy=policy, wait=False)
        if listing is not None:
            expired = (listing.oldest_manifest is not None
                       and time.time() - listing.oldest_manifest >= policy.grace_s)
        else:
            expired = manifests.any_expired(store.backend, table, policy.grace_s)
        if expired:
            lock = store.compactor_lock(0)
            try:
                with lock:
                    cleanup(store, grace_s=policy.grace_s, table=table, lock_timeout_s=policy.lock_wait_s)
            except LockHeld:
                pass
    except (OSError, duckdb.Error):
        return None
    return None
