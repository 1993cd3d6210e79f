"""``verify --repair``: clear what dead writers left, set damaged files aside, report it all.

What a crash can leave behind, and what repair does with it:

- ``_tmp/*``: a writer (``commit-*``) or a compactor (``compact-*``, ``manifest-*``, ``duckdb-*``)
  killed before its rename. Never read as data (readers glob ``<table>/*.parquet``); the next
  writer (compactor) removes it too. Repair removes it holding both the writers' and the
  compactor's lock, so it can never remove the file of a writer or compactor still running.
- a file in a table folder that fails its checks (truncated, bit-flipped, foreign, unreadable):
  a commit is renamed into place whole, so this is damage after the fact (disk, a person, a
  bad copy). Repair *moves* it to ``_damaged/<table>/``, never deletes it, so queries work again
  and a person can still inspect or restore it; its events are missing until restored from a backup.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from store.layout import LOCK_TIMEOUT_S, fsync_dir
from store.log import Log
from store.verify import Finding, verify

DAMAGED = "_damaged"


@dataclass
class RepairReport:
    """What :func:`repair` did."""

    removed: list[str] = field(default_factory=list)      # leftovers of dead writers
    moved: list[tuple[Finding, str]] = field(default_factory=list)  # (problem, where the file went)
    remaining: list[Finding] = field(default_factory=list)  # what verify still finds afterwards


def leftovers(store: Log) -> list[Path]:
    """Entries in ``_tmp`` (an unfinished commit or compaction, or one being written right now)."""
    # (an object store's entries are ObjectPaths, which answer the pathlib calls made of them)
    return sorted(cast("list[Path]", store.backend.entries("_tmp")))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def repair(store: Log, *, timeout_s: float = LOCK_TIMEOUT_S) -> RepairReport:
    """Remove dead writers' temporary files and move damaged files aside, under the writers' lock.

    Returns:
        A :class:`RepairReport`; ``remaining`` is empty when the store is sound afterwards.

    Raises:
        StoreBusy: a writer held the lock past ``timeout_s``.
    """
    from store.errors import StoreBusy
    from store.locks import LockHeld

    report = RepairReport()
    try:
        # the compactor's lock first, as a compaction takes them (it publishes under the writers')
        with store.compactor_lock(timeout_s), store.lock(timeout_s):
            for p in leftovers(store):
                _remove(p)
                report.removed.append(str(p))
            for finding in verify(store):
                path = Path(finding.path)
                if not path.is_file() or path.parent.parent != store.root:
                    continue
                target_dir = store.root / DAMAGED / path.parent.name
                target_dir.mkdir(parents=True, exist_ok=True)
                target = target_dir / path.name
                if target.exists():
                    target = target_dir / f"{path.name}.{os.getpid()}"
                store.changing(path.parent.name)      # kept listings are stale (see store.layout.CHANGE_TOKEN)
                shutil.move(str(path), str(target))
                fsync_dir(path.parent)
                report.moved.append((finding, str(target)))
            if report.removed:
                fsync_dir(store.root / "_tmp")
    except LockHeld as exc:
        raise StoreBusy(store.root, timeout_s) from exc
    report.remaining = verify(store)
    return report
