"""Calendar periods: fiscal quarters relabelled to the calendar quarter holding most of their days,
calendar years summed from them; on hand-made NVIDIA (late January), Apple (late September) and
Xiaomi (December) calendars, on the shared SEC files, and the peers side by side."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import BadArgument, MetricStore
from store import Store
from tests.conftest import ROOT, fact, needs_shared, run_cli
from tests.fx.ecbfile import average
from tests.fx.stores import seeded_store

D = dt.date
#: NVIDIA's fiscal quarters (52/53 weeks ending late January): (start, end, revenue in USD m)
NVDA = [("2023-10-30", "2024-01-28", 22103), ("2024-01-29", "2024-04-28", 26044), ("2024-04-29", "2024-07-28", 30040),
        ("2024-07-29", "2024-10-27", 35082), ("2024-10-28", "2025-01-26", 39331)]
#: Apple's (ending late September)
AAPL = [("2023-12-31", "2024-03-30", 90753), ("2024-03-31", "2024-06-29", 85777), ("2024-06-30", "2024-09-28", 94930),
        ("2024-09-29", "2024-12-28", 124300)]


def quarters(entity: str, spans: list[tuple[str, str, int]], reported: str = "2025-02-26") -> list[dict[str, object]]:
    return [fact(entity=entity, period_start=s, period_end=e, period="", value=str(v), reported_at=reported,
                 source=f"{entity}-filings") for s, e, v in spans]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calendar")
    rows = quarters("nvda", NVDA) + quarters("aapl", AAPL) + [
        fact(entity="nvda", metric="cash", period="", period_start="2025-01-26", period_end="2025-01-26",
             value="8589", reported_at="2025-02-26", source="nvda-filings"),
        fact(entity="nvda", metric="cash", period="", period_start="2024-10-27", period_end="2024-10-27",
             value="9107", reported_at="2025-02-26", source="nvda-filings"),
        fact(entity="nvda", metric="cash", period="", period_start="2024-03-18", period_end="2024-03-18",
             value="1", reported_at="2025-02-26", source="nvda-filings"),    # no quarter's end: not placed
    ]
    return seeded_store(folder, rows, "peers.csv")


def labels(df) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(zip(df["fiscal_period"], df["period"], strict=True))


def test_a_fiscal_quarter_belongs_to_the_calendar_quarter_holding_most_of_its_days(ms: MetricStore) -> None:
    nvda = ms.series("nvda", "revenue", freq="Q", calendar=True)
    assert labels(nvda) == {"2024Q4": "CY2023Q4", "2025Q1": "CY2024Q1", "2025Q2": "CY2024Q2", "2025Q3": "CY2024Q3",
                            "2025Q4": "CY2024Q4"}      # the quarter ending 2025-01-26 is CY2024Q4
    aapl = ms.series("aapl", "revenue", freq="Q", calendar=True)
    assert labels(aapl)["2024Q4"] == "CY2024Q3"         # the quarter ending 2024-09-28
    xiaomi = ms.series("xiaomi", "revenue", freq="Q", calendar=True)
    assert labels(xiaomi) == {"2023Q4": "CY2023Q4", "2024Q4": "CY2024Q4"}
    q4 = nvda.filter(nvda["period"] == "CY2024Q4").to_dicts()[0]
    assert (q4["period_start"], q4["period_end"], q4["value"]) == (D(2024, 10, 28), D(2025, 1, 26), 39331e6)
    assert q4["prior_period"] == "CY2023Q4" and q4["yoy_pct"] == pytest.approx(39331 / 22103 - 1)
    assert q4["ttm_value"] == pytest.approx((26044 + 30040 + 35082 + 39331) * 1e6)


def test_a_calendar_year_is_the_sum_of_its_quarters_and_missing_without_one(ms: MetricStore) -> None:
    years = {r["period"]: r for r in ms.series("nvda", "revenue", freq="FY", calendar=True).to_dicts()}
    assert years["CY2024"]["value"] == pytest.approx((26044 + 30040 + 35082 + 39331) * 1e6)
    assert years["CY2024"]["derived"] and years["CY2024"]["qualifier"] == "exact"
    assert years["CY2023"]["value"] is None
    assert years["CY2023"]["calendar_note"] == "missing: CY2023Q1, CY2023Q2, CY2023Q3"
    aapl = {r["period"]: r for r in ms.series("aapl", "revenue", freq="FY", calendar=True).to_dicts()}
    assert aapl["CY2024"]["value"] == pytest.approx(sum(v for *_, v in AAPL) * 1e6)
    xiaomi = {r["period"]: r for r in ms.series("xiaomi", "revenue", freq="FY", calendar=True).to_dicts()}
    assert xiaomi["CY2024"]["value"] == pytest.approx(365906.4e6) and xiaomi["CY2024"]["fiscal_period"] == "FY2024"
    assert xiaomi["CY2024"]["yoy_pct"] == pytest.approx(365906.4 / 270970.1 - 1)


def test_a_stock_takes_its_fiscal_quarters_place_and_the_year_its_last_quarter(ms: MetricStore) -> None:
    df = ms.sql("SELECT period, fiscal_period, value FROM calendar_in(NULL) WHERE entity = 'nvda' AND metric = 'cash' "
                "ORDER BY period_end, ptype DESC")
    assert df.rows() == [("CY2024Q3", "2024-10-27", 9107e6), ("CY2024Q4", "2025-01-26", 8589e6),
                         ("CY2024", "2025-01-26 (CY2024Q4)", 8589e6)]


def test_calendar_periods_in_another_currency(ms: MetricStore) -> None:
    q4, _ = average("CNY", "USD", D(2024, 10, 1), D(2024, 12, 31))
    df = ms.series("xiaomi", "revenue", freq="Q", calendar=True, currency="USD")
    row = df.filter(df["period"] == "CY2024Q4").to_dicts()[0]
    assert row["value"] == pytest.approx(109005.2e6 * q4, rel=1e-12) and row["unit"] == "USD"
    assert row["original_value"] == pytest.approx(109005.2e6) and row["yoy_pct_reporting"] == pytest.approx(
        109005.2 / 73243.7 - 1)
    with pytest.raises(BadArgument, match="freq='H': on calendar periods is Q or FY"):
        ms.series("xiaomi", "revenue", freq="H", calendar=True)


def test_peers_side_by_side_in_one_currency_on_calendar_years(ms: MetricStore, root: Path) -> None:
    y24, _ = average("CNY", "USD", D(2024, 1, 1), D(2024, 12, 31))
    df = ms.compare("revenue", ["xiaomi", "aapl", "nvda"], currency="USD", calendar=True, freq="FY")
    assert df.columns == ["period", "xiaomi", "aapl", "nvda", "xiaomi_yoy", "aapl_yoy", "nvda_yoy", "unit"]
    row = df.filter(df["period"] == "CY2024").to_dicts()[0]
    assert row["xiaomi"] == pytest.approx(365906.4e6 * y24, rel=1e-12)
    assert row["aapl"] == pytest.approx(sum(v for *_, v in AAPL) * 1e6)
    assert row["nvda"] == pytest.approx((26044 + 30040 + 35082 + 39331) * 1e6)
    assert row["unit"] == "USD"
    done = run_cli("compare", "revenue", "xiaomi", "aapl", "nvda", "--currency", "USD", "--calendar", "--freq", "FY",
                   store=root)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "CY2024 " in x)
    assert "50.9 bn USD" in line and "395.8 bn USD" in line and "130.5 bn USD" in line
    bad = run_cli("compare", "revenue", "xiaomi", "nobody", store=root)
    assert bad.returncode == 2 and "nobody" in bad.stderr and "Traceback" not in bad.stderr


def test_sql_on_calendar_periods(root: Path) -> None:
    done = run_cli("sql", "SELECT period, fiscal_period FROM growth WHERE entity = 'nvda' AND metric = 'revenue' "
                   "AND ptype = 'Q' ORDER BY period", "--calendar", "--format", "csv", store=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "CY2024Q4,2025Q4"


def test_the_calendar_macros_convert_with_the_bundled_history_in_sql(ms: MetricStore) -> None:
    """calendar_at names its dates as growth_in_at does: the bundled rates answer it too (the store holds none)."""
    y24, _ = average("CNY", "USD", D(2024, 1, 1), D(2024, 12, 31))
    for source in ("calendar_in('USD')", "calendar_at('USD', NULL, NULL)"):
        row = ms.sql(f"SELECT value, unit FROM {source} WHERE entity = 'xiaomi' AND metric = 'revenue' "
                     "AND segment = 'total' AND period = 'CY2024'").to_dicts()
        assert row == [{"value": pytest.approx(365906.4e6 * y24, rel=1e-12), "unit": "USD"}], source


@pytest.fixture(scope="module")
def sec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricStore]:
    files = [needs_shared("sec", "CIK0000320193_apple_asof2024-11.json"),
             needs_shared("sec", "CIK0001640147_snowflake.json")]
    store = Store.create(tmp_path_factory.mktemp("sec") / "store")
    report = ingest_paths(store, files, catalog=Catalog.load(ROOT / "data" / "catalog"))
    assert all(f.ok for f in report.files), [f.error for f in report.files]
    with MetricStore(store) as m:
        yield m


def test_real_fiscal_calendars_apple_september_and_snowflake_january(sec: MetricStore) -> None:
    fiscal = {r["period"]: r for r in sec.series("aapl", "revenue", freq="Q").to_dicts()}
    cal = {r["period"]: r for r in sec.series("aapl", "revenue", freq="Q", calendar=True).to_dicts()}
    assert cal["CY2024Q3"]["fiscal_period"] == "2024Q4" and cal["CY2024Q3"]["period_end"] == D(2024, 9, 28)
    assert cal["CY2023Q4"]["fiscal_period"] == "2024Q1"
    assert cal["CY2024Q3"]["value"] == fiscal["2024Q4"]["value"]          # FY2024 - 9M2024: derived
    year = {r["period"]: r for r in sec.series("aapl", "revenue", freq="FY", calendar=True).to_dicts()}["CY2023"]
    parts = ("2023Q2", "2023Q3", "2023Q4", "2024Q1")                      # Jan-Mar ... Oct-Dec 2023
    assert year["value"] == pytest.approx(sum(fiscal[p]["value"] for p in parts))
    assert [p.split(" ")[0] for p in year["fiscal_period"].split(" + ")] == list(parts)
    snow = {r["period"]: r for r in sec.series("snow", "revenue", freq="Q", calendar=True).to_dicts()}
    assert snow["CY2023Q4"]["period_end"] == D(2024, 1, 31) and snow["CY2023Q4"]["fiscal_period"] == "2024Q4"
