"""The one listing of live files (Store.listing, which the query helper reads through
Store.live_files): reused while the log is unchanged, listed again after a commit, a compaction or
a deletion by any process, never trusted without the writers' lock when racy."""

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
    count(ms)
    first = ms.store.listing("events")
    assert ms.store.listing("events") is first            # reused: same token and mtime, not racy
    assert first.live == [p.name for p in live_files(store, "events")]


def test_a_commit_is_seen_by_the_next_query(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2023", value="90")])
    age(store, "events", MANIFESTS)
    assert count(ms) == 1
    cached = ms.store.listing("events")
    ingest_rows([fact(period="FY2024", value="100")])
    assert count(ms) == 2
    assert ms.store.listing("events") is not cached


def test_a_change_within_the_timestamp_granularity_is_not_missed(ingest_rows, store: Store, ms: MetricStore) -> None:
    """A listing taken within the clock tick of its folder's last change is not trusted without the
    writers' lock: a file renamed in later in that tick (its token replaced before the listing, the
    folder's mtime unmoved) is still seen by the next query."""
    ingest_rows([fact(period="FY2023", value="90")])
    ingest_rows([fact(period="FY2024", value="100")])
    events = store.root / "events"
    late = sorted(events.glob("*.parquet"))[-1]
    aside = store.root / late.name
    late.rename(aside)                            # the second commit's rename, not yet landed
    tick = time.time_ns() + 10**10                # the folder's last change: this tick of its clock
    os.utime(events, ns=(tick, tick))
    assert count(ms) == 1
    aside.rename(late)                            # lands in the same tick: token and mtime as they were
    os.utime(events, ns=(tick, tick))
    assert count(ms) == 2


def test_a_compaction_retires_sources_at_once(ingest_rows, store: Store, ms: MetricStore) -> None:
    for y in range(2020, 2024):
        ingest_rows([fact(period=f"FY{y}", value=str(y - 2000))])
    age(store, "events", MANIFESTS)
    before = set(ms.store.listing("events").live)
    result = compact(store, grace_s=300)           # sources stay on disk for the grace period
    assert result.merged >= 4
    live = set(ms.store.listing("events").live)
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
    assert all(p.exists() for p in ms.store.live_files("events"))
