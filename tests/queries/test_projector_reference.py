"""The projector against the reference over many stores: random commit sequences (every answer
after every commit), and the shared Apple and Snowflake filings ingested in several snapshots."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from polars.testing import assert_frame_equal

from ingest import EntityDef, set_entity
from queries import MetricStore
from queries.projector import project
from store import Store
from tests.conftest import fact, write_csv
from tests.queries.projection_checks import KEY, assert_fresh, reference, retract_across, rich_rows


ENTITIES = ("acme", "beta", "gamma")


@st.composite
def commits(draw: st.DrawFn) -> list[tuple[str, object]]:
    """A random sequence of commits: facts (restated, approximate, duplicated, of derived
    quarters' inputs, ratios, per-share), withdrawals across entities, fiscal calendar changes
    and metric definition changes; after each, maybe a projection step."""
    out: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["facts", "facts", "facts", "withdraw", "calendar", "metric"]))
        if kind == "facts":
            rows = []
            for _ in range(draw(st.integers(1, 4))):
                year = draw(st.integers(2022, 2025))
                period = draw(st.sampled_from([f"FY{year}", f"9M{year}", f"{year}Q1", f"{year}Q2", f"{year}Q3",
                                               f"H1{year}"]))
                metric, unit = draw(st.sampled_from([("revenue", "USD m"), ("eps", "USD/share"), ("margin", "%")]))
                rows.append(fact(entity=draw(st.sampled_from(ENTITIES)), metric=metric, unit=unit, period=period,
                                 value=str(draw(st.integers(1, 200))),
                                 qualifier=draw(st.sampled_from(["exact", "exact", "approx"])),
                                 reported_at=f"{year + draw(st.integers(0, 1))}-0{draw(st.integers(1, 9))}-15",
                                 source=draw(st.sampled_from(["a", "b"]))))
            if draw(st.booleans()):
                rows.append(dict(rows[0]))                 # a duplicate within the batch
            out.append(("facts", rows))
        elif kind == "withdraw":
            out.append(("withdraw", (draw(st.sampled_from(ENTITIES)), draw(st.integers(0, 50)))))
        elif kind == "calendar":
            out.append(("calendar", (draw(st.sampled_from(ENTITIES)), draw(st.sampled_from([3, 6, 9, 12])))))
        else:
            out.append(("metric", draw(st.sampled_from(["flow", "ratio", "per_share", "stock"]))))
        if draw(st.booleans()):
            out.append(("project", None))
    return out


@pytest.mark.slow     # minutes: `make test-slow` (CI runs it)
@settings(max_examples=int(os.environ.get("METRICSTORE_PROJECTION_EXAMPLES", "4")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=commits())
def test_after_every_commit_every_answer_is_the_reference(tmp_path_factory: pytest.TempPathFactory,
                                                          catalog, steps: list[tuple[str, object]]) -> None:
    from ingest import ingest_paths
    tmp = tmp_path_factory.mktemp("prop")
    store = Store.create(tmp / "store")
    assert set_entity(store, EntityDef("beta", "Beta", None, None, 6))
    assert ingest_paths(store, [write_csv(tmp / "seed.csv", rich_rows())], catalog=catalog).ok
    project(store)
    marks = [dt.datetime.now(dt.UTC)]      # a system time after each commit: answers as recorded then
    for i, (kind, arg) in enumerate(steps):
        if kind == "facts":
            ingest_paths(store, [write_csv(tmp / f"b{i}.csv", arg)], catalog=catalog, skip_invalid=True)  # type: ignore[arg-type]
        elif kind == "withdraw":
            entity, pick = arg  # type: ignore[misc]
            with MetricStore(store) as ms:
                ids = ms.sql("SELECT event_id FROM facts ORDER BY event_id")["event_id"].to_list()
            if ids:
                retract_across(store, entity, ids[pick % len(ids)])
        elif kind == "calendar":
            entity, month = arg  # type: ignore[misc]
            set_entity(store, EntityDef(entity, entity.title(), None, None, month))
        elif kind == "metric":
            store.append(pa.table({"metric": ["margin"], "aggregation": [arg], "description": [None],
                                   "inferred": [False]}), table="metrics")
        else:
            project(store)
        assert_fresh(store)
        assert_fresh(store, marks[len(marks) // 2])
        marks.append(dt.datetime.now(dt.UTC))


def companyfacts_until(path: Path, cutoff: str, dest: Path) -> Path:
    """The companyfacts file as the SEC served it on ``cutoff``: the facts filed by then."""
    doc = json.loads(path.read_text())
    for taxonomy in doc["facts"].values():
        for concept in taxonomy.values():
            concept["units"] = {u: [f for f in facts if f["filed"] <= cutoff] for u, facts in concept["units"].items()}
    dest.write_text(json.dumps(doc))
    return dest


@pytest.mark.slow     # minutes: `make test-slow` (CI runs it)
@pytest.mark.parametrize("entity", ["aapl", "snow"])
def test_real_filings_ingested_in_several_snapshots_read_as_the_reference(tmp_path: Path, catalog,
                                                                          entity: str) -> None:
    from ingest import ingest_paths
    from tests.queries.test_sec_filings import sec_file

    path = sec_file(entity)
    store = Store.create(tmp_path / "store")
    for i, cutoff in enumerate(("2021-06-30", "2023-06-30", "9999")):
        report = ingest_paths(store, [companyfacts_until(path, cutoff, tmp_path / f"{entity}-{i}.json")],
                              catalog=catalog)
        assert report.ok and report.added > 0
        project(store)
        def asked(ms: MetricStore) -> list[pl.DataFrame]:
            return [ms.sql("SELECT * FROM growth").sort(KEY), ms.sql("SELECT * FROM growth", as_of="2021-03-31").sort(KEY),
                    ms.series(entity, "revenue"), ms.series(entity, "eps_diluted"),
                    ms.growth(metric="revenue", ptype="Q"), ms.growth(metric="eps_diluted", as_of="2021-03-31")]

        expected = reference(store, asked)
        with MetricStore(store) as ms:
            got = asked(ms)
        assert expected[2].height > 0 and expected[4].height > 0
        for a, b in zip(got, expected, strict=True):
            assert_frame_equal(a, b, check_exact=True)     # (to the last digit: sums are decimals)
