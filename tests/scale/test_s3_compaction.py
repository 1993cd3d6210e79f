"""Compaction of an ``s3://`` store, against a real S3-compatible server (moto) on 127.0.0.1.

The guarantees are the local ones (tests/store/test_compaction.py): every row keeps its event id,
``recorded_at`` and ``commit_id``; the manifest is published before the merged file, which is one
PUT under a commit name; sources go only after the grace period; readers (the helper lists the live
files at every query) neither fail nor double count; and a second compactor (another machine, with
its own lock) merging the same sources is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from queries import MetricStore
from store import Store
from store.backends import attach, local_state
from store.compaction import MANIFESTS, CompactionPolicy, _merge, _select_sources, compact, live_files, retired
from store.verify import verify
from tests.conftest import ROOT, run_cli
from tests.scale.conftest import s3_keys, s3_root

pytestmark = pytest.mark.usefixtures("s3_server")

NO_AUTO = CompactionPolicy(auto=False)
QUERIES = ("SELECT * FROM growth ORDER BY ALL", "SELECT * FROM facts ORDER BY ALL",
           "SELECT count(*) AS n, sum(value) AS total FROM events")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This machine's state folder (the compaction lock and scratch files) inside the test's folder."""
    folder = tmp_path / "state"
    monkeypatch.setenv("METRICSTORE_STATE_DIR", str(folder))
    return folder


def commit(entity: str, year: int, value: float, *, metric: str = "revenue", reported: dt.date | None = None,
           source: str = "s") -> pa.Table:
    return pa.table({
        "entity": [entity], "metric": [metric], "period_start": [dt.date(year, 1, 1)],
        "period_end": [dt.date(year, 12, 31)], "value": [value], "unit": ["USD"],
        "reported_at": [reported or dt.date(year + 1, 3, 1)], "source": [source]})


def small_commits(store: Store) -> int:
    """Many one-row commits: three series over ten years, and restatements published later."""
    n = 0
    for entity in ("acme", "beta", "gamma"):
        for year in range(2019, 2024):
            store.append(commit(entity, year, 100.0 * (year - 2018) + len(entity)))
            n += 1
    for year in (2020, 2022):
        store.append(commit("acme", year, 1.0 + year, reported=dt.date(2024, 6, 1), source="restated"))
        n += 1
    return n


def rows(store: Store) -> Counter[tuple[object, ...]]:
    """Every stored row of the events log, duplicates included, every column (recorded_at, commit_id too)."""
    con = duckdb.connect()
    attach(con, store.root)
    try:
        data = con.sql("SELECT * FROM read_parquet(?, union_by_name = true)",
                       params=[[str(p) for p in store.files()]]).to_arrow_table()
    finally:
        con.close()
    return Counter(tuple(r.values()) for r in data.to_pylist())


def events(store: Store) -> Counter[tuple[object, ...]]:
    """The events a reader sees: one per id."""
    return Counter(tuple(r.values()) for r in store.read().to_pylist())


def answers(root: str | MetricStore) -> list[pl.DataFrame]:
    """growth, facts and a count of events (a reader's view opened once: opening one over S3 is slow)."""
    if isinstance(root, MetricStore):
        return [root.sql(q) for q in QUERIES]
    with MetricStore(root) as ms:
        return [ms.sql(q) for q in QUERIES]


def same(a: list[pl.DataFrame], b: list[pl.DataFrame]) -> bool:
    return all(x.equals(y) for x, y in zip(a, b, strict=True))


def test_compact_on_s3_keeps_every_event_and_deletes_sources_only_after_the_grace_period(_state_dir: Path) -> None:
    store = Store.create(s3_root("compact"))
    root = str(store.root)
    n = small_commits(store)
    sources = [p.name for p in store.files()]
    rows_before, events_before = rows(store), events(store)
    assert sum(events_before.values()) == n
    reader = MetricStore(root)                                    # a reader open across the compaction
    try:
        answers_before = answers(reader)
        result = compact(store, grace_s=300, policy=NO_AUTO)
        assert result.merged == n + 1 and result.rows == n      # the empty first commit too
        assert result.path is not None and result.path.name not in sources
        assert str(result.path).startswith(root + "/events/")
        keys = s3_keys(root)
        # during the grace period: sources still there, merged file and manifest beside them
        assert all(any(k.endswith(f"/events/{s}") for k in keys) for s in sources)
        assert sum(f"/{MANIFESTS}/" in k for k in keys) == 1
        assert [p.name for p in live_files(store)] == [result.path.name]
        assert retired(store) == set(sources)
        assert rows(store) == rows_before + rows_before              # every row twice, each event once
        assert events(store) == events_before
        assert same(answers(reader), answers_before)                # nothing double counted
        # nothing staged in the bucket, nothing left in this machine's scratch folder
        assert not any("/_tmp/" in k or "/_lock/" in k for k in keys)
        assert (local_state(root) / "_lock" / "compact.lock").exists()
        assert list((local_state(root) / "_tmp").iterdir()) == []

        again = compact(store, grace_s=0, policy=NO_AUTO)           # the grace period is over
        assert again.merged == 0 and again.deleted == n + 1
        keys = s3_keys(root)
        assert [k.rsplit("/", 1)[1] for k in keys if "/events/" in k] == [result.path.name]
        assert not any(f"/{MANIFESTS}/" in k for k in keys)           # its job done, the manifest goes
        assert rows(store) == rows_before                             # recorded_at, commit_id kept
        assert events(store) == events_before
        assert same(answers(reader), answers_before)                # the open reader lists again
    finally:
        reader.close()
    assert same(answers(root), answers_before)
    assert verify(store) == []
    ok = run_cli("verify", "--store", root)
    assert ok.returncode == 0, ok.stderr
    assert "0 problem(s)" in ok.stdout


def test_cli_compact_on_s3_merges_and_after_grace_zero_verify_passes(_state_dir: Path) -> None:
    store = Store.create(s3_root("compact-cli"))
    root = str(store.root)
    for k in range(5):
        store.append(commit("acme", 2015 + k, 10.0 * k, source=f"c{k}"))
    rows_before, answers_before = rows(store), answers(root)
    run = run_cli("compact", "--full", "--grace", "0", "--store", root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "merged 6 file(s), 5 rows" in run.stdout and "6 merged source(s) deleted" in run.stdout
    assert len(store.files()) == 1
    assert rows(store) == rows_before and same(answers(root), answers_before)
    assert not (ROOT / "s3:").exists()                      # no local folder named after the URI
    assert (_state_dir / "s3").is_dir()                     # the lock went to the state folder
    ok = run_cli("verify", "--store", root)
    assert ok.returncode == 0 and "0 problem(s)" in ok.stdout, ok.stdout + ok.stderr


def test_s3_manifest_is_published_before_the_merged_file_and_a_failed_publish_retires_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.create(s3_root("compact-crash"))
    root = str(store.root)
    for k in range(4):
        store.append(commit("beta", 2010 + k, float(k)))
    reader = MetricStore(root)
    events_before, answers_before, names_before = events(store), answers(reader), store.names()
    seen: list[list[str]] = []

    def dying_publish(tmp: Path, table: str, recorded_at: dt.datetime, commit_id: str, **_: object) -> Path:
        seen.append(s3_keys(root))
        raise OSError("the network went away")

    monkeypatch.setattr(store, "publish_file", dying_publish)
    with pytest.raises(OSError, match="network"):
        compact(store, grace_s=0, policy=NO_AUTO)
    monkeypatch.undo()
    assert any(f"/{MANIFESTS}/" in k for k in seen[0])           # the manifest was there first
    assert store.names() == names_before                          # no merged file, no source deleted
    assert retired(store) == set() and len(live_files(store)) == len(names_before)
    assert events(store) == events_before and same(answers(reader), answers_before)

    done = compact(store, grace_s=0, policy=NO_AUTO)              # the next compaction does the job
    assert done.merged == len(names_before) and done.deleted == len(names_before)
    assert [p.name for p in store.files()] == [done.path.name]    # type: ignore[union-attr]
    assert events(store) == events_before and same(answers(reader), answers_before)
    reader.close()
    assert verify(store) == []


def test_two_machines_compacting_one_s3_prefix_at_once_is_harmless(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.create(s3_root("compact-race"))
    root = str(store.root)
    for k in range(6):
        store.append(commit("gamma", 2012 + k, 7.0 * k))
    reader = MetricStore(root)
    events_before, answers_before = events(store), answers(reader)
    # the other machine listed the same small files before this one published (its own state, its own lock)
    theirs = _select_sources(store, "events", NO_AUTO, full=False)
    ours = compact(store, grace_s=300, policy=NO_AUTO)
    monkeypatch.setenv("METRICSTORE_STATE_DIR", str(tmp_path / "other-machine"))
    _, their_path, _ = _merge(Store(root), "events", theirs, NO_AUTO)
    assert ours.sources == [p.name for p in theirs] and their_path.name != ours.path.name  # type: ignore[union-attr]
    assert sorted(p.name for p in live_files(store)) == sorted([ours.path.name, their_path.name])  # type: ignore[union-attr]
    assert events(store) == events_before and same(answers(reader), answers_before)  # each event once

    gone = compact(Store(root), grace_s=0, policy=NO_AUTO)        # merges both outputs, deletes every source
    assert gone.merged == 2 and gone.deleted == len(theirs) + 2
    final = compact(Store(root), grace_s=0, policy=NO_AUTO)
    assert len(store.files()) == 1 and final.merged == 0
    assert events(store) == events_before and same(answers(reader), answers_before)
    reader.close()
    assert verify(store) == []
