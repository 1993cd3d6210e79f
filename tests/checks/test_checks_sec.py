"""The checks view on real filings (../shared/data/sec): the disagreements Apple's and Tesla's own
filings hold. Expected values come from the JSON files and the store's events, never typed from memory."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from store import Store
from tests.conftest import CATALOG, needs_shared

FILES = {"aapl": "CIK0000320193_apple_asof2024-11.json", "tsla": "CIK0001318605_tesla.json"}


@pytest.fixture(scope="module")
def sec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricStore]:
    paths = [needs_shared("sec", name) for name in FILES.values()]
    store = Store.create(tmp_path_factory.mktemp("checks-sec") / "store")
    assert ingest_paths(store, paths, catalog=Catalog.load(CATALOG)).ok
    ms = MetricStore(store)
    yield ms
    ms.close()


def sec_rows(entity: str, concept: str) -> list[dict[str, Any]]:
    doc = json.loads(needs_shared("sec", FILES[entity]).read_text())
    tax, name = concept.split(":")
    return [r for rows in doc["facts"][tax][name]["units"].values() for r in rows]


def test_every_disagreement_is_its_events_arithmetic(sec: MetricStore) -> None:
    checks = sec.checks()
    assert checks.height >= 5 and set(checks["check"]) >= {"quarters", "rounding"}
    values = dict(zip(*sec.sql("SELECT event_id, value FROM events").get_columns(), strict=True))
    for r in checks.to_dicts():
        assert r["expected"] == pytest.approx(sum(values[e] for e in r["expected_from"]))
        assert r["actual"] == pytest.approx(sum(values[e] for e in r["actual_from"]))
        assert abs(r["difference"]) > r["tolerance"] > 0, r


def test_tesla_share_count_rounded_before_the_split_against_the_split_adjusted_one(sec: MetricStore) -> None:
    concept = "us-gaap:WeightedAverageNumberOfSharesOutstandingBasic"
    fy2018 = [r for r in sec_rows("tsla", concept) if r.get("start") == "2018-01-01" and r["end"] == "2018-12-31"]
    first = min(fy2018, key=lambda r: r["filed"])
    latest = max(fy2018, key=lambda r: r["filed"])
    rounded = [r for r in fy2018 if r["val"] != first["val"] and r is not latest]
    assert rounded and latest["val"] > 4 * first["val"]          # the 5-for-1 split of 2020
    (row,) = sec.checks("tsla", check="rounding").filter(metric=concept).to_dicts()
    assert row["period"] == "FY2018"
    assert row["expected"] == latest["val"] and row["actual"] == rounded[0]["val"]
    assert round(first["val"], -6) == rounded[0]["val"]             # the re-report rounds the first figure
    # before the split-adjusted figure was filed, the rounded re-report agreed with the exact one
    day_before = (dt.date.fromisoformat(latest["filed"]) - dt.timedelta(days=1)).isoformat()
    before = sec.checks("tsla", check="rounding", as_of=day_before)
    assert before.filter(metric=concept).height == 0


def test_tesla_quarters_against_the_year_of_a_later_10k(sec: MetricStore) -> None:
    rows = {r["metric"]: r for r in sec.checks("tsla", check="quarters").to_dicts() if r["period"] == "FY2017"}
    assert "net_income" in rows
    row = rows["net_income"]
    facts = sec.facts(entity="tsla", metric="net_income", segment="total")
    by_period = dict(zip(facts["period"], facts["value"], strict=True))
    assert row["expected"] == by_period["FY2017"]
    assert row["actual"] == pytest.approx(sum(by_period[f"2017Q{i}"] for i in (1, 2, 3, 4)))
    # the FY figure is the 10-K of 2020, in millions; the quarters (in thousands) add up to a figure
    # the 10-Ks of 2018 and 2019 gave, which that million does not round to
    history = sec.history("tsla", "net_income", "FY2017")
    assert history["value"].to_list()[-1] == row["expected"]
    assert row["actual"] == pytest.approx(history["value"].to_list()[0])


def test_apple_dividends_paid_do_not_add_up_over_the_quarters(sec: MetricStore) -> None:
    concept = "us-gaap:PaymentsOfDividends"
    rows = {r["period"]: r for r in sec.checks("aapl", check="quarters").filter(metric=concept).to_dicts()}
    assert "FY2016" in rows
    row = rows["FY2016"]
    reported = {r["val"] for r in sec_rows("aapl", concept) if r["end"] == "2016-09-24" and r.get("start") == "2015-09-27"}
    assert row["expected"] in reported
    assert abs(row["difference"]) > 10 * row["tolerance"]
