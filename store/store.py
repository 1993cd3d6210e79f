"""The store: appends to the logs, each an atomic commit of the rows not already present.

An append is four steps, read top to bottom in :meth:`Store.append`: prepare the batch
(:mod:`store.prepare`: checked, defaults, sorted, ids), drop the ids the store holds
(:mod:`store.dedup`), write and publish one file (:mod:`store.log`), then let compaction look at
the small files (:mod:`store.compaction`, outside the writers' lock). A large batch, or a stream,
runs the same steps as a pipeline (:meth:`Store.append_stream`).
"""

from __future__ import annotations

import bisect
import collections
import functools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from store import compaction
from store.dedup import CommittedIds, IdSet, order_by
from store.errors import SchemaMismatch, StoreBusy
from store.ids import one_array
from store.layout import LOCK_TIMEOUT_S, now
from store.locks import LockHeld
from store.log import Log
from store.parquet import ROW_GROUP_ROWS, BackgroundWriter, encoded_schema, write_options
from store.prepare import SORT_KEYS, commit_meta, first_of_each, prepare, sort_order, stamp, value_type
from store.schema import EVENT_SCHEMA, TABLES

#: Batches of a stream prepared at once (checked, sorted and hashed), ahead of the dedup and
#: the write: preparing is the longest stage of the bulk path.
PREPARERS = 2
#: An events batch of at least this many rows is appended through the stream's pipeline, in
#: slices of :data:`SLICE_ROWS` (four row groups): prepared on two threads while the slices
#: before are deduplicated and written, instead of one pass after another over the whole batch.
STREAM_MIN_ROWS = 256 * 1024
SLICE_ROWS = 4 * ROW_GROUP_ROWS


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


class Store(Log):
    """An append-only metric store rooted at a local folder or ``s3://bucket/prefix``.

    Example:
        >>> s = Store.create(tmp_path / "store")            # doctest: +SKIP
        >>> s.append(batch)                                  # doctest: +SKIP
        AppendResult(table='events', commit_id='…', added=3, already_present=0, path=…)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        self.ids = CommittedIds(self)

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
            SchemaMismatch: a required column is missing or a value breaks the rules.
            StoreBusy: another writer held the lock past the timeout.
        """
        if table == "events" and batch.num_rows >= STREAM_MIN_ROWS:
            return self._append_large(batch, run_id)
        prepared = prepare(batch, table=table, run_id=run_id)
        id_col = TABLES[table].id_column
        n_in = prepared.num_rows
        if n_in > 1 and len(pc.unique(prepared.column(id_col))) != n_in:
            prepared = first_of_each(prepared, id_col)
        try:
            with self.lock():
                self._clean_tmp()
                present = self.existing_ids(prepared.column(id_col), table=table, keys=prepared)
                if len(present):
                    prepared = prepared.filter(pc.invert(pc.is_in(prepared.column(id_col), value_set=present)))
                if prepared.num_rows == 0:
                    return AppendResult(table, None, 0, n_in, None)
                commit_id, path = self._commit(prepared, table)
        except LockHeld as exc:
            raise StoreBusy(self.root, LOCK_TIMEOUT_S) from exc
        self._after_commit(table, path.name)
        return AppendResult(table, commit_id, prepared.num_rows, n_in - prepared.num_rows, path)

    def prepare(self, batch: pa.Table, *, table: str = "events", run_id: str | None = None,
                encode: bool | None = None) -> pa.Table:
        """Check a batch, fill defaults and compute ids (see :func:`store.prepare.prepare`)."""
        return prepare(batch, table=table, run_id=run_id, encode=encode)

    def existing_ids(self, ids: pa.Array | pa.ChunkedArray, *, table: str = "events",
                     keys: pa.Table | None = None) -> pa.Array:
        """Which of ``ids`` the log already holds. Called with the writers' lock held (``lock()``,
        as the append paths do): its listing of the log is then trusted as exact (see ``listing``).

        ``keys``, the candidate rows themselves, narrows the search: an event's entity, metric and
        period are part of its content, hence of its id, so only rows with those values can hold
        it, and the reader skips every file and row group whose statistics rule them out (commits
        and compacted files are sorted by those columns). Without it every id is read.
        """
        return self.ids.existing(ids, table, keys)

    def _commit(self, prepared: pa.Table, table: str) -> tuple[str, Path]:
        recorded_at, commit_id = now(), uuid.uuid4().hex
        n = prepared.num_rows
        prepared = stamp(prepared, table, recorded_at, commit_id)
        prepared = prepared.replace_schema_metadata({**commit_meta(table, recorded_at, commit_id),
                                                     b"metricstore.rows": str(n).encode()})
        footer = self.ids.footer_of(prepared, table)
        path = self.publish(prepared, table, recorded_at, commit_id)
        if footer is not None:
            self.ids.footers[path.name] = footer
        return commit_id, path

    def _after_commit(self, table: str, committed: str | None = None) -> None:
        """Compact when small files pile up (see ``store.compaction``); outside the writers' lock.

        The trigger counts the small files of the listing this commit kept (see :meth:`listing`),
        when it kept one: a commit or compaction of another process since is seen by the next
        trigger (the compaction itself lists again, under its own lock)."""
        if not self.backend.compacts_after_commit:
            return
        kept = self.listings.get(table)
        if kept is not None and committed:
            at = bisect.bisect_left(kept.names, committed)
            if at == len(kept.names) or kept.names[at] != committed:
                kept = None             # not extended by this commit: the trigger lists afresh
        compaction.maybe_compact(self, table, listing=kept if committed else None)

    # -- the bulk path ---------------------------------------------------------------------
    def _append_large(self, batch: pa.Table, run_id: str | None) -> AppendResult:
        """:meth:`append` of a large events batch, through :meth:`append_stream`'s pipeline.

        The batch is sorted as a whole first (when its keys already have the stored types: a
        cast could tie rows the caller's values order), so the slices, and the file, come out
        in the order one pass would give them, and the first of repeated events is the same
        one. A slice refused by the checks is reported as the whole batch would be (a count of
        empty values is the batch's, not the slice's; a row is the caller's)."""
        given = batch
        keys = [batch.column(k) for k in SORT_KEYS if k in batch.column_names]
        if len(keys) == len(SORT_KEYS) and all(
                value_type(k.type) == EVENT_SCHEMA.field(name).type for name, k in zip(SORT_KEYS, keys, strict=True)):
            order = sort_order([one_array(k) for k in keys])
            if not np.array_equal(order, np.arange(batch.num_rows)):
                batch = batch.take(pa.array(order))
        try:
            result = self.append_stream((batch.slice(at, SLICE_ROWS) for at in range(0, batch.num_rows, SLICE_ROWS)),
                                        run_id=run_id)
        except SchemaMismatch:
            prepare(given, run_id=run_id)     # raises the whole batch's account of it
            raise
        if result.path is not None:
            self._after_commit("events", result.path.name)
        return result

    def append_stream(self, batches: Iterable[pa.Table], *, table: str = "events",
                      run_id: str | None = None) -> AppendResult:
        """Append a stream of batches as one atomic commit, holding a few batches in memory at a time.

        The bulk path: each batch is checked, given ids and written as row groups of one file,
        published when the stream ends (a failure half-way commits nothing; a refusal names the
        row counted through the whole stream). Rows the store, or
        an earlier batch of the stream, already holds are not written again. Each batch is sorted
        by (entity, metric, period_end); a stream in entity order is then sorted as a whole.

        Args:
            batches: tables as :meth:`append` takes them.

        Returns:
            An :class:`AppendResult` for the whole stream.
        """
        schema = TABLES[table].schema
        recorded_at, commit_id = now(), uuid.uuid4().hex
        tmp = self.tmp_path(commit_id)
        seen = IdSet()
        n_in = added = 0
        try:
            with self.lock():
                self._clean_tmp()
                # three stages overlap (Arrow, numpy and DuckDB release the GIL): batches n + 1
                # and n + 2 are checked, hashed and sorted in two threads while batch n is
                # deduplicated here and batch n - 1 is written in another
                encoded = encoded_schema(schema)
                writer = BackgroundWriter(tmp, encoded.with_metadata(commit_meta(table, recorded_at, commit_id)),
                                          write_options(encoded))
                try:
                    with ThreadPoolExecutor(PREPARERS, thread_name_prefix="metricstore-prepare") as preparer:
                        for prepared in _counted(_ahead(preparer, batches, functools.partial(
                                prepare, table=table, run_id=run_id, encode=True), depth=PREPARERS)):
                            n_in += prepared.num_rows
                            prepared, s_hi, s_lo = self._new_in_stream(prepared, table, seen)
                            if prepared.num_rows == 0:
                                continue
                            seen.add_sorted(s_hi, s_lo)
                            stamped = stamp(prepared, table, recorded_at, commit_id)
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
                       seen: IdSet) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """The rows of a prepared batch that neither the batch itself (first kept), an earlier
        batch of the stream (``seen``) nor the store holds, with their ids as (hi, lo) words
        sorted by hi, ready for ``seen.add_sorted``."""
        id_col = TABLES[table].id_column
        hi, lo = IdSet.keys(prepared.column(id_col))
        order, s_hi = order_by(hi)   # one sort serves the repeat check, the search and the add
        if (s_hi[1:] == s_hi[:-1]).any():   # a repeat (or, once in 2^64, a shared half)
            prepared = first_of_each(prepared, id_col)
            hi, lo = IdSet.keys(prepared.column(id_col))
            order, s_hi = order_by(hi)
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


def _counted(prepared: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The prepared batches of a stream; a batch's refusal names its row counted from the
    stream's first (every batch before it was prepared whole: prepare drops no row)."""
    before = 0
    while True:
        try:
            batch = next(prepared)
        except StopIteration:
            return
        except SchemaMismatch as exc:
            if exc.row is None:
                raise
            raise SchemaMismatch(exc.column, exc.reason, row=before + exc.row) from None
        before += batch.num_rows
        yield batch


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
