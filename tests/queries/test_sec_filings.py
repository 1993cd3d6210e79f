"""Point-in-time truth on real filings: the shared SEC companyfacts files (../shared/data/sec).

Each file is ingested once per session (per xdist worker) into one store; the tests then read
it. Expected values are computed from the JSON files themselves, never typed from memory,
except the published Apple example (FY2008 revenue 32,479 M, restated to 37,491 M on 2010-01-25).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from store import Store, parse_period
from tests.conftest import CATALOG, SHARED_DATA

FILES = {
    "aapl": "CIK0000320193_apple_asof2024-11.json",
    "tsla": "CIK0001318605_tesla.json",
    "snow": "CIK0001640147_snowflake.json",
    "lpa": "CIK0001997711_logistic_properties_americas_ifrs.json",
}


def sec_file(entity: str) -> Path:
    path = SHARED_DATA / "sec" / FILES[entity]
    if not path.is_file():
        pytest.skip(f"shared data not present: {path} (tests on real filings run where ../shared/data exists)")
    return path


def facts_of(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text())
    return [dict(r, concept=f"{tax}:{c}", unit=u) for tax, cs in doc["facts"].items() for c, body in cs.items()
            for u, rows in body["units"].items() for r in rows]


@pytest.fixture(scope="session")
def sec_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict[str, Any]]]:
    for e in FILES:
        sec_file(e)
    store = Store.create(tmp_path_factory.mktemp("sec") / "store")
    catalog = Catalog.load(CATALOG)
    reports = {e: ingest_paths(store, [sec_file(e)], catalog=catalog) for e in FILES}
    yield store, reports


@pytest.fixture(scope="session")
def sec_ms(sec_store: tuple[Store, dict[str, Any]]) -> Iterator[MetricStore]:
    ms = MetricStore(sec_store[0])
    yield ms
    ms.close()


def value(ms: MetricStore, entity: str, metric: str, period: str, **kw: Any) -> float:
    df = ms.sql("SELECT value FROM facts WHERE entity = ? AND metric = ? AND period = ? AND kind = 'actual'",
                [entity, metric, period], **kw)
    assert df.height == 1, (entity, metric, period, df)
    return float(df["value"][0])


@pytest.mark.parametrize("entity", list(FILES))
def test_every_fact_is_one_event(sec_store: tuple[Store, dict[str, Any]], sec_ms: MetricStore, entity: str) -> None:
    rows = facts_of(sec_file(entity))
    distinct = {(r["concept"], r["unit"], r.get("start"), r["end"], r["val"], r["accn"]) for r in rows}
    report = sec_store[1][entity]
    assert report.ok and report.rejected == 0
    assert report.added == len(distinct) == len(rows)
    assert sec_ms.sql("SELECT count(*) AS n FROM events WHERE entity = ?", [entity])["n"][0] == len(rows)


def test_reingest_adds_nothing_and_a_newer_snapshot_only_what_is_new(tmp_path: Path, catalog: Catalog) -> None:
    path = sec_file("aapl")
    doc = json.loads(path.read_text())
    cutoff = "2020-01-01"
    for cs in doc["facts"].values():
        for body in cs.values():
            body["units"] = {u: [r for r in rows if r["filed"] < cutoff] for u, rows in body["units"].items()}
    older = tmp_path / "apple-2019.json"
    older.write_text(json.dumps(doc))
    n_old = sum(1 for r in facts_of(path) if r["filed"] < cutoff)
    store = Store.create(tmp_path / "store")
    assert ingest_paths(store, [older], catalog=catalog).added == n_old
    newer = ingest_paths(store, [path], catalog=catalog)
    assert (newer.added, newer.already_present) == (len(facts_of(path)) - n_old, n_old)
    again = ingest_paths(store, [path], catalog=catalog)
    assert again.added == 0


def test_apple_fy2008_revenue_restated_in_the_10ka(sec_ms: MetricStore) -> None:
    assert value(sec_ms, "aapl", "revenue", "FY2008", as_of="2009-12-31") == 32_479e6
    assert value(sec_ms, "aapl", "revenue", "FY2008", as_of="2010-02-01") == 37_491e6
    assert value(sec_ms, "aapl", "revenue", "FY2008") == 37_491e6
    h = sec_ms.history("aapl", "revenue", "FY2008")
    assert h["value"].to_list()[:2] == [32_479e6, 37_491e6]
    assert h.filter(h["is_current"])["reported_at"][0] >= dt.date(2010, 1, 25)
    r = sec_ms.restatements("aapl", "revenue").filter(lambda_period("FY2008"))
    assert r.row(0, named=True)["restated_at"] == dt.date(2010, 1, 25)


def lambda_period(period: str) -> Any:
    import polars as pl
    return pl.col("period") == period


@pytest.mark.parametrize(("entity", "first", "last"), [("aapl", 2007, 2024), ("snow", 2019, 2025), ("tsla", 2009, 2021)])
def test_revenue_is_continuous_across_concept_switches(sec_ms: MetricStore, entity: str, first: int, last: int) -> None:
    fy = sec_ms.series(entity, "revenue", freq="FY")
    assert fy["period"].to_list() == [f"FY{y}" for y in range(first, last + 1)]
    concepts = set(sec_ms.sql("SELECT DISTINCT source_ref FROM events WHERE entity = ? AND metric = 'revenue'",
                              [entity])["source_ref"].to_list())
    if entity == "aapl":  # SalesRevenueNet until 2018, then RevenueFromContractWithCustomer...
        assert {"us-gaap:SalesRevenueNet", "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax"} <= concepts
    assert fy["yoy_pct"].drop_nulls().len() == last - first


def test_apple_quarters_are_continuous_with_derived_q4(sec_ms: MetricStore) -> None:
    q = sec_ms.series("aapl", "revenue", freq="Q")
    labels = q.filter(q["period_end"] >= dt.date(2008, 12, 1))["period"].to_list()
    assert labels == [f"{y}Q{n}" for y in range(2009, 2025) for n in range(1, 5)]


@pytest.mark.parametrize(("entity", "fye"), [("aapl", 9), ("snow", 1), ("tsla", 12), ("lpa", 12)])
def test_fiscal_year_end_is_inferred(sec_ms: MetricStore, entity: str, fye: int) -> None:
    assert sec_ms.sql("SELECT fiscal_year_end_month AS m FROM entities WHERE entity = ?", [entity])["m"][0] == fye


def calendar_frame(start: dt.date, end: dt.date, quarter: bool) -> str:
    mid = start + (end - start) / 2
    return f"CY{mid.year}Q{(mid.month - 1) // 3 + 1}" if quarter else f"CY{mid.year}"


@pytest.mark.parametrize("entity", ["aapl", "snow"])
def test_fiscal_labels_agree_with_the_filings_frames(sec_ms: MetricStore, entity: str) -> None:
    fye = int(sec_ms.sql("SELECT fiscal_year_end_month AS m FROM entities WHERE entity = ?", [entity])["m"][0])
    df = sec_ms.sql("SELECT period, regexp_extract(note, 'frame=(CY\\d{4}(Q\\d)?)(;|$)', 1) AS frame FROM history "
                    "WHERE entity = ? AND note LIKE '%frame=CY%' AND period_start < period_end", [entity])
    checked = 0
    for label, frame in df.iter_rows():
        if not frame or not (label.startswith("FY") or "Q" in label):
            continue
        nominal = parse_period(label, fye)
        assert calendar_frame(nominal.start, nominal.end, "Q" in frame) == frame, (label, frame)
        checked += 1
    assert checked > 100


def ten_k_implied_q4(entity: str, fy_end: str) -> float:
    """FY from the 10-K for the year ending ``fy_end`` minus 9M from the last 10-Q of that year."""
    rows = [r for r in facts_of(sec_file(entity)) if r["unit"] == "USD" and r["concept"] in (
        "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax", "us-gaap:SalesRevenueNet", "us-gaap:Revenues")]
    fy = [r for r in rows if r["end"] == fy_end and r["form"] == "10-K" and
          330 < (dt.date.fromisoformat(r["end"]) - dt.date.fromisoformat(r["start"])).days < 380]
    first_fy = min(fy, key=lambda r: r["filed"])
    start = first_fy["start"]
    m9 = [r for r in rows if r.get("start") == start and r["form"] == "10-Q" and
          250 < (dt.date.fromisoformat(r["end"]) - dt.date.fromisoformat(start)).days < 290]
    last_m9 = max(m9, key=lambda r: r["filed"])
    return float(first_fy["val"]) - float(last_m9["val"])


@pytest.mark.parametrize(("entity", "period", "fy_end"), [
    ("aapl", "2019Q4", "2019-09-28"), ("aapl", "2021Q4", "2021-09-25"), ("aapl", "2022Q4", "2022-09-24"),
    ("aapl", "2023Q4", "2023-09-30"), ("aapl", "2024Q4", "2024-09-28"),
    ("snow", "2022Q4", "2022-01-31"), ("snow", "2024Q4", "2024-01-31"),
])
def test_derived_q4_equals_what_the_10k_implies(sec_ms: MetricStore, entity: str, period: str, fy_end: str) -> None:
    expected = ten_k_implied_q4(entity, fy_end)
    q = sec_ms.series(entity, "revenue", freq="Q")
    row = q.filter(lambda_period(period)).row(0, named=True)
    assert row["value"] == pytest.approx(expected)
    if row["derived"]:
        text = sec_ms.explain(entity, "revenue", period)["arithmetic"][0]
        assert text.startswith(f"{period} = FY") and " - 9M" in text


def test_explain_warns_when_a_derived_quarter_mixes_vintages(sec_ms: MetricStore) -> None:
    """FY2008 was restated in the 10-K/A; 9M2008 never was, so Q4 = FY - 9M mixes two bases."""
    mixed = sec_ms.explain("aapl", "revenue", "2008Q4")["arithmetic"][0]
    assert mixed.startswith("2008Q4 = FY2008 37,491.0 - 9M2008 ")
    assert "caution: terms from different vintages: FY2008 was restated on 2010-01-25" in mixed
    assert "caution" not in sec_ms.explain("aapl", "revenue", "2024Q4")["arithmetic"][0]


def test_derived_q4_respects_as_of(sec_ms: MetricStore) -> None:
    before = sec_ms.series("aapl", "revenue", freq="Q", as_of="2024-10-31")["period"].to_list()
    after = sec_ms.series("aapl", "revenue", freq="Q", as_of="2024-11-01")["period"].to_list()
    assert "2024Q4" not in before and "2024Q4" in after


def test_ifrs_filer(sec_ms: MetricStore) -> None:
    fy = sec_ms.series("lpa", "revenue", freq="FY")
    assert len(fy) >= 3 and set(fy["unit"].to_list()) == {"USD"}
    assert sec_ms.sql("SELECT count(*) AS n FROM events WHERE entity = 'lpa' AND metric LIKE 'ifrs-full:%'")["n"][0] > 0


def test_growth_basis_first_reported_vs_latest(sec_ms: MetricStore) -> None:
    """FY2009 growth: against FY2008 as first reported (32,479 M) or as restated (37,491 M)."""
    rows = {b: sec_ms.growth(entity="aapl", metric="revenue", period="FY2009", basis=b).row(0, named=True)
            for b in ("as_of", "latest", "first")}
    assert rows["first"]["prior_value"] == 32_479e6
    assert rows["latest"]["prior_value"] == rows["as_of"]["prior_value"] == 37_491e6
    back = sec_ms.growth(entity="aapl", metric="revenue", period="FY2009", basis="latest", as_of="2009-12-31")
    same = sec_ms.growth(entity="aapl", metric="revenue", period="FY2009", basis="as_of", as_of="2009-12-31")
    assert back["prior_value"][0] == 37_491e6 and same["prior_value"][0] == 32_479e6


def test_tesla_rounded_re_reports_never_replace_the_exact_figure(sec_ms: MetricStore) -> None:
    """Tesla reported in thousands until 2018 and in millions from 2019: FY2018 capex of
    2,100,724,000 came back as 2,101,000,000. The exact figure stays current; no restatement."""
    versions = sec_ms.history("tsla", "capex", "FY2018")
    assert {v for v in versions["value"].to_list()} == {2_100_724_000, 2_101_000_000}
    assert set(versions.filter(versions["value"] == 2_101_000_000)["qualifier"].to_list()) == {"approx"}
    assert value(sec_ms, "tsla", "capex", "FY2018") == 2_100_724_000
    assert sec_ms.restatements("tsla", "capex").filter(lambda_period("FY2018")).height == 0
