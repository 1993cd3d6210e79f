"""The two single-batch dedup engines agree: the footer search a small batch takes (row groups the
statistics admit, ids compared as integers from a cache) and DuckDB's semi-join a larger one takes,
on random stores (several commits, some merged by a compaction, merged sources still listed) and
random probes of ids present and absent. Both answer what the store holds."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import Store
from store.compaction import CompactionPolicy, compact

Event = tuple[str, str, int, float]

_events = st.tuples(st.sampled_from(["acme", "beta", "gamma", "zeta"]), st.sampled_from(["revenue", "net_income"]),
                    st.integers(2015, 2024), st.sampled_from([1.0, 2.5, -3.0]))


def _batch(rows: list[Event]) -> pa.Table:
    return pa.table({
        "entity": [r[0] for r in rows], "metric": [r[1] for r in rows],
        "period_start": [dt.date(r[2], 1, 1) for r in rows], "period_end": [dt.date(r[2], 12, 31) for r in rows],
        "value": [r[3] for r in rows], "unit": ["USD"] * len(rows),
        "reported_at": [dt.date(r[2] + 1, 3, 1) for r in rows], "source": ["s"] * len(rows),
    })


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commits=st.lists(st.lists(_events, min_size=1, max_size=6), min_size=1, max_size=6),
       compact_after=st.integers(0, 6), full=st.booleans(),
       absent=st.lists(_events, max_size=16), data=st.data())
def test_the_footer_search_and_the_semi_join_find_the_same_ids(
        tmp_path_factory: pytest.TempPathFactory, commits: list[list[Event]], compact_after: int, full: bool,
        absent: list[Event], data: st.DataObject) -> None:
    probe = absent + data.draw(st.lists(st.sampled_from([r for rows in commits for r in rows]), max_size=8))
    if not probe:
        probe = commits[0][:1]
    store = Store.create(tmp_path_factory.mktemp("dedup") / "store")
    no_auto = CompactionPolicy(auto=False, min_files=2, grace_s=3600.0)   # merged sources stay listed
    for i, rows in enumerate(commits):
        store.append(_batch(rows))
        if i + 1 == compact_after:
            compact(store, full=full, policy=no_auto)
    prepared = store.prepare(_batch(probe))
    ids = prepared.column("event_id")
    stored = set(store.read().column("event_id").to_pylist())
    expected = {i for i in ids.to_pylist() if i in stored}

    searched = set(store.ids.existing_pruned(ids, prepared, "event_id").to_pylist())
    joined = set(store.ids.existing_joined(ids, "events", prepared).to_pylist())
    unnarrowed = set(store.ids.existing_joined(ids, "events", None).to_pylist())
    assert searched == joined == unnarrowed == expected
    assert expected or not probe[len(absent):]         # (a row drawn from the commits is found)
    # and once more on a warm cache (the footer search keeps footers and row groups' ids)
    assert set(store.ids.existing_pruned(ids, prepared, "event_id").to_pylist()) == expected
