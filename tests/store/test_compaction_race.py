"""Automatic compaction runs after a commit, outside the writers' lock, in as many threads as append
at once (the scheduler runs several jobs): the caches it prunes are shared, and a commit that has
succeeded must never fail afterwards because another thread pruned the same entry first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import Store
from tests.store.test_compaction import event

THREADS = 4
APPENDS = 30


class _SlowDict(dict):  # type: ignore[type-arg]
    """A dict whose removals wait a little first: the window between deciding to drop an entry and
    dropping it, made wide enough that threads meet in it every run."""

    def __delitem__(self, key: Any) -> None:
        time.sleep(0.002)
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        time.sleep(0.002)
        return super().pop(key, *default)


@pytest.fixture
def widened(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every cache automatic compaction prunes, held in a :class:`_SlowDict` (the outer dicts
    hand out slow inner ones)."""
    from store import compaction, manifests

    class Outer(_SlowDict):
        def setdefault(self, key: Any, default: Any = None) -> Any:
            return super().setdefault(key, _SlowDict())

    monkeypatch.setattr(compaction.SIZES, "_by_folder", Outer())
    monkeypatch.setattr(manifests.CACHE, "_by_folder", Outer())
    yield


def test_threads_appending_with_auto_compaction_never_fail_after_their_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, widened: None) -> None:
    monkeypatch.setenv("METRICSTORE_COMPACT_MIN_FILES", "2")
    monkeypatch.setenv("METRICSTORE_COMPACT_GRACE_S", "0")
    root = tmp_path / "store"
    Store.create(root)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def write(k: int) -> None:
        store = Store(root)          # one store object a job, as the scheduler's jobs have
        start.wait()
        for i in range(APPENDS):
            try:
                store.append(event(f"e{k}", "revenue", 2000 + i, float(i)))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Store(root).read().num_rows == THREADS * APPENDS
