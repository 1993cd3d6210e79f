"""Formula metrics on real data: the Xiaomi seed's EV loss per vehicle, Apple's and Snowflake's
gross margins (with the checks view run on them), and Tesla's revenue per vehicle delivered.
Expected values come from the files themselves, never typed from memory."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore, define_metric
from store import Store
from tests.conftest import CATALOG, ROOT, needs_shared

SEED = ROOT / "data" / "seed"


def seed_value(name: str, **key: str) -> dict[str, str]:
    with (SEED / name).open(newline="", encoding="utf-8") as fh:
        (row,) = [r for r in csv.DictReader(fh) if all(r.get(k) == v for k, v in key.items())]
    return row


def test_xiaomi_ev_loss_per_vehicle(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "store")
    assert ingest_paths(store, sorted(SEED.glob("*.csv")), catalog=Catalog.load(CATALOG)).ok
    define_metric(store, "ev_loss_per_vehicle",
                  "-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]",
                  unit="CNY/unit", description="Smart EV adjusted net loss per vehicle delivered")
    loss = seed_value("xiaomi-2024-article.csv", metric="adjusted_net_income", segment="smart_ev_innovative",
                      period="FY2024")
    delivered = seed_value("xiaomi-comparatives.csv", metric="deliveries", period="FY2024")
    assert (loss["unit"], delivered["unit"]) == ("CNY bn", "units")
    with MetricStore(store) as ms:
        rows = ms.facts(entity="xiaomi", metric="ev_loss_per_vehicle").to_dicts()
        (row,) = rows
        assert row["period"] == "FY2024" and row["unit"] == "CNY/unit"
        assert row["value"] == pytest.approx(-float(loss["value"]) * 1e9 / float(delivered["value"]))
        assert round(row["value"]) == 45304
        # the company's exact deliveries stand over the article's rounded 136,800
        assert row["as_reported"] == "FY2024 = -(-6.2 CNY bn) / (136854 units) = 45,304 CNY/unit"
        assert row["reported_at"].isoformat() == max(loss["reported_at"], delivered["reported_at"])
        # the quarter has a loss but no deliveries: no value, never a missing input taken as zero
        assert ms.facts(entity="xiaomi", metric="ev_loss_per_vehicle", period="2024Q4").height == 0
        # before the results were public, nothing
        assert ms.facts(entity="xiaomi", metric="ev_loss_per_vehicle", as_of="2025-03-17").height == 0


FILES = {"aapl": "CIK0000320193_apple_asof2024-11.json", "snow": "CIK0001640147_snowflake.json",
         "tsla": "CIK0001318605_tesla.json"}


@pytest.fixture(scope="module")
def sec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    paths = [needs_shared("sec", f) for f in FILES.values()]
    kpi = needs_shared("kpi", "tesla_operational_summary_q4-2022_q2-2024.csv")
    store = Store.create(tmp_path_factory.mktemp("formulas-sec") / "store")
    assert ingest_paths(store, [*paths, kpi], catalog=Catalog.load(CATALOG)).ok
    define_metric(store, "gross_margin_calc", "gross_profit / revenue")
    define_metric(store, "revenue_per_vehicle", "revenue / deliveries", unit="USD/unit")
    yield store


def annual(entity: str, concepts: tuple[str, ...], end: str) -> float:
    """The latest filed full-year value of the first concept that has one ending ``end``."""
    doc = json.loads(needs_shared("sec", FILES[entity]).read_text())
    for concept in concepts:
        rows: list[dict[str, Any]] = doc["facts"]["us-gaap"].get(concept, {}).get("units", {}).get("USD", [])
        full = [r for r in rows if r["end"] == end and r.get("start") and r["form"].startswith("10-K")
                and 350 < (dt.date.fromisoformat(end) - dt.date.fromisoformat(r["start"])).days < 380]
        if full:
            return float(max(full, key=lambda r: r["filed"])["val"])
    raise AssertionError(f"no {concepts} for {entity} ending {end}")


@pytest.mark.parametrize(("entity", "period", "end"), [("aapl", "FY2023", "2023-09-30"),
                                                       ("aapl", "FY2024", "2024-09-28"),
                                                       ("snow", "FY2024", "2024-01-31")])
def test_apple_and_snowflake_gross_margins(sec: Store, entity: str, period: str, end: str) -> None:
    profit = annual(entity, ("GrossProfit",), end)
    revenue = annual(entity, ("RevenueFromContractWithCustomerExcludingAssessedTax", "Revenues", "SalesRevenueNet"), end)
    with MetricStore(sec) as ms:
        (row,) = ms.facts(entity=entity, metric="gross_margin_calc", period=period, segment="total").to_dicts()
        assert row["value"] == pytest.approx(profit / revenue)
        assert row["unit"] == "ratio" and row["derived"] and len(row["derived_from"]) == 2
        # every check run on them: what disagrees is the arithmetic of its events, beyond the tolerance
        checks = ms.checks(entity)
        assert (checks["difference"].abs() > checks["tolerance"]).all()
        assert "formula" not in set(checks["check"])          # no margin reported by these filings


def test_tesla_revenue_per_vehicle_only_where_both_are_known(sec: Store) -> None:
    with MetricStore(sec) as ms:
        revenue = ms.facts(entity="tsla", metric="revenue", segment="total")
        deliveries = ms.facts(entity="tsla", metric="deliveries", segment="total")
        both = set(revenue["period"]) & set(deliveries["period"])
        computed = ms.facts(entity="tsla", metric="revenue_per_vehicle")
        # the operational summary starts in 2022Q4, the companyfacts file ends with 2022Q3: no period
        # has both, and no value is made up from a missing one
        assert deliveries.height > 0 and revenue.height > 0
        assert set(computed["period"]) == both
        for r in computed.to_dicts():
            rev = revenue.filter(period=r["period"])["value"][0]
            dlv = deliveries.filter(period=r["period"])["value"][0]
            assert r["value"] == pytest.approx(rev / dlv) and r["unit"] == "USD/unit"
