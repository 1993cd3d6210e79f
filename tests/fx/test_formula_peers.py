"""Formula metrics in another currency and on calendar periods: the issue's peer questions (Xiaomi's
EV loss per vehicle in USD, Apple's and NVIDIA's gross margins on calendar quarters) on the seed and
the example 10-Q/10-K figures of data/examples/peers-2024.csv."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore, define_metric
from store import Store
from tests.conftest import ROOT, run_cli
from tests.fx.ecbfile import average

PEERS = ROOT / "data" / "examples" / "peers-2024.csv"
SEED = sorted((ROOT / "data" / "seed").glob("*.csv"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("formula-peers")
    store = Store.create(folder / "store")
    report = ingest_paths(store, [*SEED, PEERS], catalog=Catalog.load(ROOT / "data" / "catalog"))
    assert report.ok, report.summary()
    define_metric(store, "gross_margin_calc", "gross_profit / revenue", aggregation="ratio")
    define_metric(store, "ev_loss_per_vehicle", "-adjusted_net_income[segment=smart_ev_innovative] / "
                                                "deliveries[segment=smart_ev]")
    return store.root


@pytest.fixture
def ms(root: Path) -> Iterator[MetricStore]:
    m = MetricStore(root)
    yield m
    m.close()


def test_margins_on_calendar_quarters_side_by_side(ms: MetricStore, root: Path) -> None:
    df = ms.compare("gross_margin_calc", ["aapl", "nvda"], calendar=True, freq="Q")
    rows = {r["period"]: r for r in df.to_dicts()}
    assert sorted(rows) == ["CY2024Q1", "CY2024Q2", "CY2024Q3", "CY2024Q4"]
    # Apple's quarter to 2024-12-28 (its Q1 FY2025) is CY2024Q4, reported in its 10-Q
    assert rows["CY2024Q4"]["aapl"] == pytest.approx(58_275 / 124_300)
    # NVIDIA's quarter to 2025-01-26 is CY2024Q4: its inputs derived as FY - Q1 - Q2 - Q3
    assert rows["CY2024Q4"]["nvda"] == pytest.approx((97_858 - 20_406 - 22_574 - 26_156) / (130_497 - 26_044 - 30_040 - 35_082))
    # Apple's quarter to 2024-09-28 (Q4 FY2024) is CY2024Q3, derived as FY - 9M
    assert rows["CY2024Q3"]["aapl"] == pytest.approx((180_683 - 136_804) / (391_035 - 296_105))
    done = run_cli("compare", "gross_margin_calc", "aapl", "nvda", "--calendar", "--freq", "Q", store=root)
    assert done.returncode == 0, done.stderr
    assert "CY2024Q4" in done.stdout and "46.9 %" in done.stdout and "73.0 %" in done.stdout


def test_a_calendar_years_margin_is_the_years_gross_profit_over_its_revenue(ms: MetricStore) -> None:
    rows = {r["period"]: r for r in ms.compare("gross_margin_calc", ["aapl", "nvda"], calendar=True, freq="FY").to_dicts()}
    # not the sum (nor the mean) of four quarterly ratios: the formula on the calendar year's inputs
    aapl = (42_271 + 39_678 + (180_683 - 136_804) + 58_275) / (90_753 + 85_777 + (391_035 - 296_105) + 124_300)
    assert list(rows) == ["CY2024"] and rows["CY2024"]["aapl"] == pytest.approx(aapl)
    assert rows["CY2024"]["nvda"] == pytest.approx(97_858 / 130_497)   # its quarters span the fiscal year
    # as of a day before NVIDIA's 10-K, its fourth quarter cannot be derived: no calendar year
    early = ms.compare("gross_margin_calc", ["aapl"], calendar=True, freq="FY", as_of="2025-02-01").to_dicts()
    assert early[0]["aapl"] == pytest.approx(aapl)
    assert ms.series("nvda", "gross_margin_calc", freq="FY", calendar=True, as_of="2025-02-01").height == 0


def test_a_per_unit_formula_on_calendar_years_in_usd(ms: MetricStore) -> None:
    row = ms.series("xiaomi", "ev_loss_per_vehicle", freq="FY", currency="USD", calendar=True).to_dicts()
    rate, _ = average("CNY", "USD", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert [(r["period"], r["fiscal_period"], r["unit"]) for r in row] == [("CY2024", "FY2024", "USD/unit")]
    assert row[0]["value"] == pytest.approx(6.2e9 * rate / 136_854)


def test_a_per_unit_formula_converts_its_currency_part(ms: MetricStore) -> None:
    usd = ms.series("xiaomi", "ev_loss_per_vehicle", freq="FY", currency="USD").to_dicts()
    assert [r["period"] for r in usd] == ["FY2024"]
    row = usd[0]
    rate, _ = average("CNY", "USD", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert (row["original_value"], row["original_unit"], row["unit"]) == (pytest.approx(6.2e9 / 136_854), "CNY/unit",
                                                                          "USD/unit")
    assert row["fx_rate"] == pytest.approx(rate, rel=1e-9) and row["value"] == pytest.approx(6.2e9 / 136_854 * rate)
    facts = ms.sql("SELECT value, unit, fx_rate FROM facts WHERE metric = 'ev_loss_per_vehicle'", currency="USD")
    assert facts.to_dicts() == [{"value": pytest.approx(row["value"]), "unit": "USD/unit", "fx_rate": pytest.approx(rate)}]


def test_a_ratio_formula_is_never_converted(ms: MetricStore) -> None:
    eur = ms.series("nvda", "gross_margin_calc", freq="Q", currency="EUR").to_dicts()
    plain = ms.series("nvda", "gross_margin_calc", freq="Q").to_dicts()
    assert [r["value"] for r in eur] == [r["value"] for r in plain] and len(plain) == 4
    assert {r["unit"] for r in eur} == {"ratio"} and {r["fx_rate"] for r in eur} == {None}
