"""Which files a reader reads, and what it does when a compaction deletes one of them meanwhile.

Every read of the query layer (a query, opening a session, a snapshot refresh) reads the *live*
files of each log, listed when it starts: merged compaction sources are left out, so a source
deleted after its grace period is in no listing taken later. A read that outlives the grace
period (or a compaction run with ``grace_s=0``) can still find a listed file gone. What DuckDB
then says depends on where it meets the gap ("No files found that match the pattern", "No such
file or directory", a failed bind of a view), so :func:`read_listed` does not read the message:
when a read fails, it asks whether a file of its listing has gone since, and if so lists again
and reads again (the new listing holds the merged file, with the same events); after a couple of
such attempts it reads holding the compactor's lock, so that no compaction deletes anything under
it. A read that fails with nothing gone fails as it did; one that keeps losing files raises
:class:`FilesVanished`.

All listing of the query layer goes through :func:`list_live`, which asks the store
(:meth:`store.Store.live_files`): one listing, with one rule for when it is stale, serves writers,
readers, compaction and snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from queries.errors import FilesVanished
from store import Store
from store.compaction import CompactionPolicy
from store.locks import LockHeld

T = TypeVar("T")

#: The files one read reads, by folder: each log's live files (``events`` ...), and any other file
#: the read opens (the growth snapshot, under its folder's name).
Reading = dict[str, list[Path]]

#: Reads of a listing that lost files (each listed again after 0.05, 0.1, 0.2 ... s).
VANISHED_RETRIES = 6


def local_root(store: Store) -> Path | None:
    """The store's folder, or None for an object store (``s3://``: no folders, no snapshots, no
    default place for a catalog file). The query layer's one test of the backend."""
    return store.backend.folder


def list_live(store: Store, tables: Iterable[str]) -> Reading:
    """The live files of each of ``tables`` (every committed file but the merged sources)."""
    return {table: store.live_files(table) for table in tables}


def vanished(reading: Reading) -> list[Path]:
    """The files of ``reading`` that no longer exist (a compaction deleted them since the listing).

    Each folder is listed once (on an object store, one LIST instead of a HEAD a file): a read
    that fails for any reason asks, and a log may hold thousands of live files."""
    by_folder: dict[Path, list[Path]] = {}
    for files in reading.values():
        for p in files:
            by_folder.setdefault(p.parent, []).append(p)
    gone: list[Path] = []
    for folder, files in by_folder.items():
        try:
            present = {p.name for p in folder.iterdir()}
        except OSError:         # the folder itself is gone
            present = set()
        gone += [p for p in files if p.name not in present]
    return gone


def read_listed(store: Store, list_files: Callable[[], Reading], read: Callable[[Reading], T], *,
                retries: int = VANISHED_RETRIES) -> T:
    """``read(list_files())``, listed and read again while a failed read's listing lost files.

    A read slower than the compactions around it (a grace period of 0 s beside busy writers, or
    shorter than the read) could lose files at every attempt: from the :data:`HOLD_AFTER`-th on,
    an attempt holds the compactor's lock of ``store`` while it lists and reads, so that no
    compaction merges or deletes meanwhile (a compaction running then is waited for, up to
    :data:`HOLD_WAIT_S`; a store whose lock cannot be taken, read-only, is read without it).

    Args:
        store: the store read.
        list_files: lists the files the read will read (called again before each retry).
        read: reads them; may add the other files it opens to the listing it is given.
        retries: attempts in all.

    Returns:
        What ``read`` returned.

    Raises:
        FilesVanished: every attempt lost a listed file.
        Exception: whatever ``read`` raised when none of its files had gone.

    Example:
        >>> read_listed(store, lambda: list_live(store, ["events"]), count_events)   # doctest: +SKIP
    """
    for attempt in range(retries):
        with _holding(store if attempt >= HOLD_AFTER else None):
            reading = list_files()
            try:
                return read(reading)
            except Exception as exc:            # the condition, not the message: did a listed file go?
                gone = vanished(reading)
                if not gone:
                    raise
                if attempt == retries - 1:
                    raise FilesVanished(gone[0], retries, CompactionPolicy.from_env().grace_s) from exc
        time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


#: Attempts of a read made before the next ones hold the compactor's lock (see :func:`read_listed`).
HOLD_AFTER = 2
#: Seconds such an attempt waits for a running compaction to end before it reads without the lock.
HOLD_WAIT_S = 60.0


@contextmanager
def _holding(store: Store | None) -> Iterator[None]:
    """The compactor's lock of ``store`` held, when it can be taken in :data:`HOLD_WAIT_S` (None: nothing)."""
    with ExitStack() as stack:
        if store is not None:
            try:
                stack.enter_context(store.compactor_lock(HOLD_WAIT_S))
            except (LockHeld, OSError):     # a long compaction, or a read-only store: read without it
                pass
        yield
