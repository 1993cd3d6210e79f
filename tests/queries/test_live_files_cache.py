"""The helper's cached file listing (queries.live.LiveFiles): reused while the folders are
unchanged, listed again after a commit, a compaction or a deletion, never trusted when racy."""

from __future__ import annotations

import os
import time
from pathlib import Path

from queries import MetricStore
from store import Store
from store.compaction import MANIFESTS, compact, live_files
from tests.conftest import fact

OLD = time.time() - 3600


def age(store: Store, *folders: str) -> None:
    """Date the folders an hour back, as if nothing had changed in them for a while."""
    for name in folders:
        path = store.root / name
        if path.is_dir():
            os.utime(path, (OLD, OLD))


def count(ms: MetricStore) -> int:
    return int(ms.sql("SELECT count(*) AS n FROM facts")["n"][0])


def test_an_unchanged_store_is_not_listed_again(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2023", value="90")])
    age(store, "events", MANIFESTS)
    first = ms._live("events")
    assert ms._live("events") is first            # reused: same folder mtimes, not racy
    assert [p.name for p in first] == [p.name for p in live_files(store, "events")]


def test_a_commit_is_seen_by_the_next_query(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2023", value="90")])
    age(store, "events", MANIFESTS)
    assert count(ms) == 1
    cached = ms._live("events")
    ingest_rows([fact(period="FY2024", value="100")])
    assert count(ms) == 2
    assert ms._live("events") is not cached


def test_a_change_within_the_timestamp_granularity_is_not_missed(ingest_rows, store: Store, ms: MetricStore) -> None:
    """A listing taken right after a change is not cached: a second change in the same clock tick
    could leave the folder's mtime as it was."""
    ingest_rows([fact(period="FY2023", value="90")])
    assert count(ms) == 1
    stamp = os.stat(store.root / "events").st_mtime_ns
    ingest_rows([fact(period="FY2024", value="100")])
    os.utime(store.root / "events", ns=(stamp, stamp))   # the worst case: the mtime did not move
    assert count(ms) == 2


def test_a_compaction_retires_sources_at_once(ingest_rows, store: Store, ms: MetricStore) -> None:
    for y in range(2020, 2024):
        ingest_rows([fact(period=f"FY{y}", value=str(y - 2000))])
    age(store, "events", MANIFESTS)
    before = {p.name for p in ms._live("events")}
    result = compact(store, grace_s=300)           # sources stay on disk for the grace period
    assert result.merged >= 4
    live = {p.name for p in ms._live("events")}
    assert result.path is not None and Path(result.path).name in live
    assert len(live) < len(before)                 # the merged sources are left out
    assert live == {p.name for p in live_files(store, "events")}
    assert count(ms) == 4


def test_deleted_files_are_not_read(ingest_rows, store: Store, ms: MetricStore) -> None:
    for y in range(2020, 2024):
        ingest_rows([fact(period=f"FY{y}", value=str(y - 2000))])
    age(store, "events", MANIFESTS)
    assert count(ms) == 4
    compact(store, grace_s=0)                      # merged and deleted at once
    assert count(ms) == 4
    assert all(p.exists() for p in ms._live("events"))
