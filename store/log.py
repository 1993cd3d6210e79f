"""The append-only log: one Parquet file per commit, published atomically, and its listing.

A :class:`Log` opens or creates a store root (a local folder or ``s3://bucket/prefix``, through its
:class:`~store.backends.Backend`), lists each log's committed files and which of them are live,
holds the locks, and publishes a finished file under its commit name (see :mod:`store.layout`).
Appending, deduplication and compaction build on it (:mod:`store.store`, :mod:`store.compaction`).

Readers glob ``<table>/*.parquet`` and dedupe by id, which is what makes a doubled write or a
compaction running beside them harmless; a reader that must not read a merged event twice nor
open a file whose grace period may end reads :meth:`Log.live_files` instead.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import duckdb
import pyarrow as pa

from store import manifests
from store.backends import Backend, ObjectPath, backend_for
from store.errors import StoreNotFound
from store.layout import (
    COMMIT_NAME,
    COMPACTION_LEFTOVERS,
    EMPTY_COMMIT,
    FORMAT_VERSION,
    LOCK_TIMEOUT_S,
    MARKER,
    commit_name,
    file_sha256,
    now,
    remove_compaction_leftovers,
)
from store.locks import FileLock, LockHeld
from store.parquet import SMALL_ROWS, write_file, write_options
from store.schema import SCHEMA_VERSION, TABLES

__all__ = ["COMMIT_NAME", "EMPTY_COMMIT", "LOCK_TIMEOUT_S", "TABLES", "Listing", "Log"]

P = TypeVar("P")


@dataclass
class Listing:
    """One log's committed files as a store last listed them (see :meth:`Log.listing`).

    Attributes:
        names: every committed file's name, sorted (oldest first).
        live: the names that are not merged sources (each of those has its events in a file of
            the same listing, and waits out its grace period).
        oldest_manifest: when the oldest compaction manifest of the log was written (unix
            seconds), or None: the trigger deletes expired sources without listing manifests.
        token: the change token the listing is good for (see ``store.layout.CHANGE_TOKEN``).
        mtime_ns: the folder's mtime when it was listed.
        listed_ns: when it was listed (or extended by a commit), on the same clock.
    """

    names: list[str]
    live: list[str]
    oldest_manifest: float | None
    token: bytes
    mtime_ns: int | None
    listed_ns: int


#: A folder changed within this many nanoseconds of a listing may have changed again unseen, in the
#: same tick of the file system's clock: such a listing is trusted only under the writers' lock.
RACY_NS = 100_000_000


def _settled(listing: Listing) -> bool:
    """Whether ``listing``'s folder had been still for :data:`RACY_NS` when it was listed."""
    return listing.mtime_ns is not None and listing.mtime_ns < listing.listed_ns - RACY_NS


class Log:
    """A store's logs on their backend: listing, locks, publishing, reading.

    Attributes:
        root: the root, a ``Path`` or an :class:`~store.objects.ObjectPath` (its URI).
        backend: the backend chosen for the root, once.
        listings: the listing kept of each log (see :meth:`listing`).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.backend: Backend = backend_for(root)
        self.root: Path | ObjectPath = self.backend.root   # (an ObjectPath answers the pathlib calls readers make)
        if not self.backend.exists(MARKER):
            raise StoreNotFound(self.root)
        self.listings: dict[str, Listing] = {}
        self._con: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> Self:
        """Open the store at ``root``, creating it (and an empty file per table) if absent."""
        backend = backend_for(root)
        marker = {"format": FORMAT_VERSION, "created_at": now().isoformat()}
        backend.init(MARKER, (json.dumps(marker, indent=2) + "\n").encode(), TABLES)
        store = cls(backend.root)
        for name in TABLES:
            if not store.names(name):
                store._commit_empty(name)
        return store

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, create: bool = False) -> Self:
        """Open an existing store, or create it when ``create`` is true."""
        return cls.create(root) if create else cls(root)

    # -- listing ---------------------------------------------------------------------------
    def files(self, table: str = "events") -> list[Path]:
        """The committed files of one log, oldest first."""
        path = self.backend.path
        return cast("list[Path]", [path(table, n) for n in self.names(table)])

    def names(self, table: str = "events") -> list[str]:
        """The names of the committed files of one log, oldest first (one listing, no stat)."""
        out = [n for n in self.backend.list_names(table) if n.endswith(".parquet")]
        out.sort()
        hidden = bisect.bisect_left(out, "."), bisect.bisect_left(out, "/")   # names starting with "."
        if hidden[0] < hidden[1]:
            del out[hidden[0]:hidden[1]]
        return out

    def listing(self, table: str = "events", *, locked: bool = False) -> Listing:
        """The committed files of ``table``, its live files (not merged sources) among them.

        The one rule for when a listing is stale: it is kept while the log's change token and its
        folder's mtime stand (``store.layout.CHANGE_TOKEN``), and extended by this store's own
        commits. Taken with the writers' lock held (``locked``, as the append paths do), it is
        exact. Without the lock, a change falling between reading the token and listing, in the
        clock tick of the folder's last change, would leave both as they were (git's "racily
        clean" entries): a listing taken within :data:`RACY_NS` of its folder's last change is
        taken again, and not kept (the lock held later would say nothing of the moment it was
        taken). A backend that keeps no token (an object store) lists afresh each time.
        """
        backend = self.backend
        now = time.time_ns()
        if not backend.keeps_listing:
            return self._list(table, b"", None, now)
        token, mtime = backend.change_token(table), backend.mtime_ns(table)
        hit = self.listings.get(table)
        if (hit is not None and token and hit.token == token and hit.mtime_ns == mtime
                and (locked or _settled(hit))):
            return hit
        got = self._list(table, token, mtime, now)
        if token and mtime is not None and (locked or _settled(got)):
            self.listings[table] = got
        else:
            self.listings.pop(table, None)
        return got

    def _list(self, table: str, token: bytes, mtime: int | None, now: int) -> Listing:
        names = self.names(table)
        merged, oldest = manifests.sources_state(self.backend, table, names)
        live = [n for n in names if n not in merged] if merged else list(names)
        return Listing(names, live, oldest, token, mtime, now)

    def live_files(self, table: str = "events") -> list[Path]:
        """The files a reader should read: every committed file but the merged sources.

        A reader that reads this list, rather than the glob, neither reads a merged event twice
        nor opens a source whose grace period may end while it reads. Stale by the rule of
        :meth:`listing` (the same listing writers and compaction use). On an object store the
        paths are :class:`~store.objects.ObjectPath` s (``s3://`` URIs)."""
        path = self.backend.path
        return cast("list[Path]", [path(table, n) for n in self.listing(table).live])

    def changing(self, table: str) -> tuple[bytes, bytes]:
        """Replace the log's change token, before changing its folder with the writers' lock held.

        Every change this store's code makes to a log's folder (a commit, a compaction's publish
        or cleanup, a repair) calls this first, so a listing kept by any process is known stale.

        Returns:
            The token replaced and the new one (empty for a backend that keeps no listing).
        """
        return self.backend.changing(table)

    # -- reading ---------------------------------------------------------------------------
    def glob(self, table: str = "events") -> str:
        """The glob pattern a reader (DuckDB, polars, Spark) uses for one log."""
        return str(self.root / table / "*.parquet")

    def read(self, table: str = "events") -> pa.Table:
        """Every row of one log once (deduplicated by id, earliest recording kept)."""
        id_col = TABLES[table].id_column
        con = self.duckdb().cursor()      # (a new connection is costly: an ingest reads three logs)
        try:
            return con.sql(
                f"SELECT * FROM read_parquet(?, union_by_name=true) "
                f"QUALIFY row_number() OVER (PARTITION BY {id_col} ORDER BY recorded_at, commit_id) = 1",
                params=[self.glob(table)],
            ).to_arrow_table()
        finally:
            con.close()

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The store's own DuckDB connection (one per store object; callers take a cursor).

        It caches Parquet footers: a committed file never changes (its checksum is in its name),
        so a cached footer is never stale, and a small append need not re-read every footer.
        """
        if self._con is None:
            con = duckdb.connect()
            con.execute("SET parquet_metadata_cache = true")
            self.backend.attach(con)
            self._con = con
        return self._con

    # -- locks -----------------------------------------------------------------------------
    def lock(self, timeout_s: float = LOCK_TIMEOUT_S) -> AbstractContextManager[Any]:
        """The writers' lock (a file lock), for a caller that must hold it across several steps.

        An object store has none (a no-op context): commits are conditional PUTs of unique names
        and readers dedupe by id, so racing writers cannot corrupt the log."""
        return self.backend.writers_lock(timeout_s)

    def compactor_lock(self, timeout_s: float | None) -> FileLock:
        """The compactor's lock (see ``store.compaction``): in the store's ``_lock``, or for an
        object store in this machine's state folder."""
        return self.backend.compactor_lock(timeout_s)

    # -- publishing ------------------------------------------------------------------------
    def tmp_path(self, commit_id: str) -> Path:
        """Where a commit (or a compaction) writes its file before it is published (a local file)."""
        return self.backend.staging_path(commit_id)

    def publish(self, data: pa.Table, table: str, recorded_at: dt.datetime, commit_id: str) -> Path:
        """Write ``data`` under a temporary name, flush it, and publish it into ``table`` in one step.

        A small commit is encoded in memory and written with one call (a file written column by
        column costs a system call per page)."""
        options = write_options(data.schema, data.num_rows)
        if data.num_rows < SMALL_ROWS:
            sink = pa.BufferOutputStream()
            write_file(data, sink, options)
            body = sink.getvalue()
            name = commit_name(recorded_at, commit_id, hashlib.sha256(body).hexdigest())
            staged = f"commit-{commit_id}.parquet"
            return self._publish(table, name, lambda before: cast(
                Path, self.backend.publish_bytes(body, table, name, staged, before)))
        tmp = self.tmp_path(commit_id)
        write_file(data, tmp, options)
        return self.publish_file(tmp, table, recorded_at, commit_id)

    def publish_file(self, tmp: Path, table: str, recorded_at: dt.datetime, commit_id: str,
                     sha256: str | None = None, *, merge: bool = False) -> Path:
        """Checksum, flush and publish a finished file into ``table`` in one step.

        ``sha256``: the checksum of the file's bytes when the writer computed it
        (:class:`~store.parquet.HashingSink`), else it is read back. ``merge``: a compaction's
        file, which changes which files are live (the next listing is taken afresh)."""
        name = commit_name(recorded_at, commit_id, sha256 or file_sha256(tmp))

        def put(before: Callable[[], None]) -> Path:
            before()
            return cast(Path, self.backend.publish_file(tmp, table, name))
        return self._publish(table, name, put, merge=merge)

    def _publish(self, table: str, name: str, put: Callable[[Callable[[], None]], P], *, merge: bool = False) -> P:
        """Publish a file (``put``, handed the work to do just before its rename) under the
        writers' lock: the change token is replaced first, and a kept listing that was current
        is extended by a commit's file (a merge's changes which files are live)."""
        kept = self.listings.pop(table, None)
        state: list[bytes] = []

        def before() -> None:
            old, new = self.changing(table)
            if (kept is not None and not merge and old and kept.token == old
                    and kept.mtime_ns == self.backend.mtime_ns(table)):
                state.append(new)
        path = put(before)
        if state and kept is not None:     # (new lists: a reader may be going through the old ones)
            names, live = kept.names.copy(), kept.live.copy()
            bisect.insort(names, name)
            bisect.insort(live, name)
            now = time.time_ns()
            self.listings[table] = Listing(names, live, kept.oldest_manifest, state[0], self.backend.mtime_ns(table), now)
        return path

    def _commit_empty(self, table: str) -> None:
        schema = TABLES[table].schema
        with self.lock():
            if not self.names(table):
                empty = pa.Table.from_batches([], schema=schema)   # (empty_table() imports pandas)
                self.publish(empty.replace_schema_metadata({b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
                                                            b"metricstore.table": table.encode(),
                                                            b"metricstore.rows": b"0"}),
                             table, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), EMPTY_COMMIT)

    def _clean_tmp(self) -> None:
        """Remove what dead writers left in ``_tmp`` (called with the lock held)."""
        left = self.backend.clean_staging()
        if any(n.startswith(COMPACTION_LEFTOVERS) for n in left):
            try:   # a running compaction holds its lock: its files are alive, leave them
                with self.compactor_lock(0):
                    remove_compaction_leftovers(self.backend.scratch())
            except LockHeld:
                pass
