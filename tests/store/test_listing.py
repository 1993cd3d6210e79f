"""A writer's kept listing of the log (``Store.listing``): exact under the writers' lock, whoever
changed the folder since (another process's commit, a merge, a cleanup, a hand), even when the
change fell in the same clock tick as the writer's own commit and left the folder's mtime as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from store import Store
from store.compaction import CompactionPolicy, compact, maybe_compact
from store.verify import verify
from tests.store.test_compaction import event

ROOT = Path(__file__).resolve().parents[2]
NO_AUTO = CompactionPolicy(auto=False)


def _same_tick(store: Store, kept_mtime_ns: int | None) -> None:
    """Put the folder's mtime back where the writer saw it: a change in the same clock tick as its
    commit (a coarse timestamp) looks like this, and only the change token can reveal it."""
    assert kept_mtime_ns is not None
    folder = store.root / "events"
    os.utime(folder, ns=(os.stat(folder).st_atime_ns, kept_mtime_ns))


def _copies(store: Store, year: int) -> int:
    """How many stored rows (duplicates included) hold the fact of ``year``."""
    end = dt.date(year, 12, 31)
    return sum(pq.read_table(p, columns=["period_end"]).column(0).to_pylist().count(end) for p in store.files())


def _in_another_process(root: Path, code: str) -> None:
    script = f"from store import Store\nfrom tests.store.test_compaction import event\n" \
             f"store = Store({str(root)!r})\n" + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "METRICSTORE_AUTO_COMPACT": "0"})
    assert out.returncode == 0, out.stderr


def test_a_kept_listing_is_reused_and_extended_by_its_own_commits(store: Store) -> None:
    store.append(event("acme", "revenue", 2000, 1.0))
    before = store.listing()
    r = store.append(event("acme", "revenue", 2001, 2.0))
    kept = store.listings["events"]                      # the commit's extension of the listing
    assert store.listing(locked=True) is kept            # not listed again (an append holds the lock)
    assert r.path is not None and kept.names == sorted([*before.names, r.path.name]) and r.path.name in kept.live
    assert kept.names == sorted(os.listdir(store.root / "events"))
    assert r.path.name not in before.names               # (extended as a new listing: a reader may hold the old)


def test_another_process_committing_in_the_same_tick_is_seen(store: Store) -> None:
    store.append(event("acme", "revenue", 2000, 1.0))
    kept = store.listing()
    _in_another_process(store.root, 'store.append(event("acme", "revenue", 2001, 2.0))')
    _same_tick(store, kept.mtime_ns)

    again = store.append(event("acme", "revenue", 2001, 2.0))  # the other process's event

    assert (again.added, again.already_present) == (0, 1)
    assert _copies(store, 2001) == 1
    assert store.listing().names == sorted(os.listdir(store.root / "events"))


def test_a_merge_by_another_store_in_the_same_tick_is_seen(store: Store) -> None:
    for year in (2000, 2001, 2002):
        store.append(event("acme", "revenue", year, float(year)))
    kept = store.listing()
    other = Store(store.root)                            # its own kept listing, as another process
    result = compact(other, full=True, grace_s=0, policy=NO_AUTO)   # the sources are deleted at once
    assert result.merged == 4 and result.deleted == 4
    _same_tick(store, kept.mtime_ns)

    again = store.append(event("acme", "revenue", 2001, 2001.0))

    assert (again.added, again.already_present) == (0, 1)
    assert _copies(store, 2001) == 1
    listing = store.listing()
    assert listing.names == sorted(os.listdir(store.root / "events")) and len(listing.names) == 1
    assert verify(store) == []


def test_merged_sources_in_their_grace_period_are_not_live(store: Store) -> None:
    for year in (2000, 2001, 2002):
        store.append(event("acme", "revenue", year, float(year)))
    result = compact(Store(store.root), grace_s=300, policy=NO_AUTO)
    assert result.path is not None
    listing = store.listing()
    assert set(listing.names) - set(listing.live) == set(result.sources)
    assert listing.live == [result.path.name] and listing.oldest_manifest is not None
    # an event of a source, searched in the merged file only
    assert store.append(event("acme", "revenue", 2002, 2002.0)).already_present == 1


def test_a_file_removed_by_hand_is_seen_through_the_folder_mtime(store: Store) -> None:
    store.append(event("acme", "revenue", 2000, 1.0))
    r = store.append(event("acme", "revenue", 2001, 2.0))
    assert r.path is not None
    time.sleep(0.05)        # past the clock tick of the commit: a later change moves the mtime
    os.remove(r.path)       # by hand: the change token does not move

    again = store.append(event("acme", "revenue", 2001, 2.0))

    assert again.added == 1 and _copies(store, 2001) == 1
    assert r.path.name not in store.listing().names


def test_the_automatic_merge_gives_way_to_a_writer_holding_the_lock(store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge publishes under the writers' lock; held by another process's long commit, the
    automatic one waits its while, then drops its merge and leaves nothing behind."""
    monkeypatch.setenv("METRICSTORE_COMPACT_MIN_FILES", "3")
    monkeypatch.setenv("METRICSTORE_COMPACT_LOCK_WAIT_S", "0.3")
    monkeypatch.setenv("METRICSTORE_AUTO_COMPACT", "0")
    for year in (2000, 2001, 2002):
        store.append(event("acme", "revenue", year, float(year)))
    before = sorted(os.listdir(store.root / "events"))
    monkeypatch.setenv("METRICSTORE_AUTO_COMPACT", "1")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time\nfrom store import Store\n"
                               f"with Store({str(store.root)!r}).lock():\n"
                               f"    print('held', flush=True)\n    time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        skipped = maybe_compact(store)
        assert skipped is not None and skipped.merged == 0 and "lock" in (skipped.skipped or "")
        assert sorted(os.listdir(store.root / "events")) == before
        assert not list((store.root / "_compaction").glob("*.json"))
        assert not [n for n in os.listdir(store.root / "_tmp") if n.startswith("compact-")]
    finally:
        holder.kill()
        holder.wait()
    done = maybe_compact(store)                          # the lock is free again
    assert done is not None and done.merged == 4 and store.read().num_rows == 3 and verify(store) == []


def test_a_racy_listing_taken_without_the_lock_is_not_trusted_under_it(store: Store) -> None:
    """A reader lists the log while another process's commit is half done (its token replaced, its
    rename not yet landed) in the folder's current clock tick; the rename then lands in that tick.
    A later append of the same store object, under the writers' lock, must not trust that listing:
    the lock says nothing changes now, not that nothing was changing when the listing was taken."""
    store.append(event("acme", "revenue", 2000, 1.0))
    mine = set(store.listing().names)
    _in_another_process(store.root, 'store.append(event("acme", "revenue", 2001, 2.0))')
    events = store.root / "events"
    (late,) = [p for p in events.glob("*.parquet") if p.name not in mine]
    aside = store.root / late.name
    late.rename(aside)                                   # the other commit's rename, not yet landed
    tick = time.time_ns() + 10**10                       # the folder's last change: this clock tick
    os.utime(events, ns=(tick, tick))
    assert late.name not in store.listing().names        # listed without the lock, racy
    aside.rename(late)                                   # lands in the same tick: token and mtime unmoved
    os.utime(events, ns=(tick, tick))

    again = store.append(event("acme", "revenue", 2001, 2.0))   # the other process's event

    assert (again.added, again.already_present) == (0, 1)
    assert _copies(store, 2001) == 1
