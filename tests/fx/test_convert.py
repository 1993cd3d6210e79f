"""Currency conversion against rates computed by hand from the ECB file, on the Xiaomi seed and a
hand-made store: flows at the period's average, stocks at the last day's rate, ratios and counts
never, a per-unit figure's currency part, the growth in both currencies, as_of, bad currencies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import BadArgument, MetricStore, SqlError
from store import Store
from tests.conftest import ROOT, fact, run_cli, write_csv
from tests.fx.ecbfile import average, closing, ecb_rates
from tests.fx.stores import seeded_store

D = dt.date


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Xiaomi seed and a hand-made company (acme, December year) reporting in several currencies."""
    folder = tmp_path_factory.mktemp("fx")
    rows = [
        fact(metric="cash", period="2024-12-29", value="1000", unit="CNY m"),               # a Sunday
        fact(metric="revenue", segment="europe", period="2024Q4", value="50", unit="EUR m"),
        fact(metric="revenue", segment="japan", period="2024Q4", value="2000", unit="JPY m"),
        fact(metric="revenue", segment="taiwan", period="2024Q4", value="10", unit="TWD m"),
        fact(metric="gross_margin", period="2024Q4", value="40", unit="%"),
        fact(metric="deliveries", period="2024Q4", value="1200", unit="units"),
        fact(metric="net_loss_per_unit", period="2024Q4", value="9000", unit="CNY/unit"),
        fact(metric="equity", period="2024-12-31", value="1234.56", unit="EUR"),
    ]
    return seeded_store(folder, rows, "acme.csv")


def one(df, **where: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    rows = [r for r in df.to_dicts() if all(r[k] == v for k, v in where.items())]
    assert len(rows) == 1, (where, rows)
    return rows[0]


def test_a_flow_converts_at_the_average_of_its_daily_rates(ms: MetricStore) -> None:
    rate, days = average("CNY", "USD", D(2024, 10, 1), D(2024, 12, 31))
    row = one(ms.series("xiaomi", "revenue", currency="USD"), period="2024Q4")
    assert row["unit"] == "USD" and row["original_unit"] == "CNY"
    assert row["original_value"] == pytest.approx(109005.2e6)
    assert row["fx_rate"] == pytest.approx(rate, rel=1e-12)
    assert row["value"] == pytest.approx(109005.2e6 * rate, rel=1e-12)
    assert row["fx_basis"] == "average"
    assert "ecb-reference-rates" in str(row["fx_source"])
    facts = one(ms.facts(entity="xiaomi", metric="revenue", period="2024Q4", segment="total", currency="USD"),
                period="2024Q4")
    assert (facts["fx_days"], facts["fx_first"], facts["fx_last"]) == (days, D(2024, 10, 1), D(2024, 12, 31))


def test_the_xiaomi_seed_in_usd_keeps_the_original_and_shows_the_fx_effect(ms: MetricStore) -> None:
    y24, _ = average("CNY", "USD", D(2024, 1, 1), D(2024, 12, 31))
    y23, _ = average("CNY", "USD", D(2023, 1, 1), D(2023, 12, 31))
    row = one(ms.series("xiaomi", "revenue", freq="FY", currency="USD"), period="FY2024")
    assert row["value"] == pytest.approx(365906.4e6 * y24, rel=1e-12)
    assert row["prior_value"] == pytest.approx(270970.1e6 * y23, rel=1e-12)
    in_usd = 365906.4 * y24 / (270970.1 * y23) - 1
    in_cny = 365906.4 / 270970.1 - 1
    assert row["yoy_pct"] == pytest.approx(in_usd, rel=1e-9)
    assert row["yoy_pct_reporting"] == pytest.approx(in_cny, rel=1e-9)       # +35.0 % in CNY ...
    assert row["fx_effect"] == pytest.approx(in_usd - in_cny, rel=1e-9)      # ... about -2 points in USD
    assert round(in_cny, 3) == 0.350 and -0.03 < in_usd - in_cny < -0.01
    growth = one(ms.growth(entity="xiaomi", metric="revenue", segment="total", currency="USD"), period="FY2024")
    assert growth["fx_effect"] == pytest.approx(row["fx_effect"]) and growth["prior_fx_rate"] == pytest.approx(y23)
    loss = one(ms.facts(entity="xiaomi", metric="net_loss_per_unit", period="2024Q2", currency="USD"),
               period="2024Q2")
    q2, _ = average("CNY", "USD", D(2024, 4, 1), D(2024, 6, 30))
    assert loss["value"] == pytest.approx(66000 * q2, rel=1e-12) and loss["unit"] == "USD"


def test_a_stock_converts_at_the_rate_of_its_last_day_or_the_last_published_before(ms: MetricStore) -> None:
    rate, day = closing("CNY", "USD", D(2024, 12, 29))
    assert day == D(2024, 12, 27)                       # a Sunday: Friday's rate
    row = one(ms.facts(entity="acme", metric="cash", currency="USD"), period="2024-12-29")
    assert (row["fx_basis"], row["fx_first"], row["fx_last"], row["fx_days"]) == ("close", day, day, 1)
    assert row["value"] == pytest.approx(1000e6 * rate, rel=1e-12)


def test_a_figure_at_a_published_rate_is_the_decimal_product(ms: MetricStore) -> None:
    # 1,234.56 EUR at the ECB's 1.0389 USD is 1,282.584384 USD to the last digit, not binary
    # arithmetic's neighbour of it
    rate, _ = closing("EUR", "USD", D(2024, 12, 31))
    exact = float(Decimal("1234.56") * Decimal(repr(rate)))
    assert 1234.56 * rate != exact                       # (the data exercise the rounding)
    assert one(ms.facts(entity="acme", metric="equity", currency="USD"), period="2024-12-31")["value"] == exact


def test_cross_rates_go_through_the_euro(ms: MetricStore) -> None:
    df = ms.facts(entity="acme", metric="revenue", currency="GBP")
    eur, _ = average("EUR", "GBP", D(2024, 10, 1), D(2024, 12, 31))
    jpy, _ = average("JPY", "GBP", D(2024, 10, 1), D(2024, 12, 31))
    assert one(df, segment="europe")["value"] == pytest.approx(50e6 * eur, rel=1e-12)
    assert one(df, segment="japan")["value"] == pytest.approx(2000e6 * jpy, rel=1e-12)
    to_eur = one(ms.facts(entity="acme", metric="revenue", currency="EUR"), segment="japan")
    assert to_eur["value"] == pytest.approx(2000e6 * average("JPY", "EUR", D(2024, 10, 1), D(2024, 12, 31))[0])


def test_ratios_counts_and_rates_are_never_converted_and_per_unit_converts_its_currency(ms: MetricStore) -> None:
    df = ms.facts(entity="acme", currency="USD")
    margin, count = one(df, metric="gross_margin"), one(df, metric="deliveries")
    assert (margin["value"], margin["unit"], margin["fx_rate"]) == (pytest.approx(0.4), "ratio", None)
    assert (count["value"], count["unit"], count["fx_rate"]) == (1200, "units", None)
    per_unit = one(df, metric="net_loss_per_unit")
    rate, _ = average("CNY", "USD", D(2024, 10, 1), D(2024, 12, 31))
    assert per_unit["unit"] == "USD/unit" and per_unit["original_unit"] == "CNY/unit"
    assert per_unit["value"] == pytest.approx(9000 * rate, rel=1e-12)
    same = one(ms.facts(entity="xiaomi", metric="revenue", period="FY2023", segment="total", currency="CNY"),
               period="FY2023")
    assert (same["value"], same["fx_rate"], same["fx_basis"]) == (pytest.approx(270970.1e6), 1.0, "same currency")


def test_a_currency_the_ecb_does_not_quote_gives_no_value_and_says_why(ms: MetricStore) -> None:
    row = one(ms.facts(entity="acme", metric="revenue", currency="USD"), segment="taiwan")
    assert row["value"] is None and row["original_value"] == pytest.approx(10e6)
    assert "no ECB rate of TWD" in str(row["fx_note"])


def test_a_rate_published_after_as_of_is_not_used(ms: MetricStore) -> None:
    """The FY2025 R&D guidance (reported 2025-03-19) converts, as of that day, with the rates of
    2025 published by then; as known now, with the whole year's."""
    def guidance(**kw: object) -> dict[str, object]:
        df = ms.facts(entity="xiaomi", metric="rd_expense", kind="guidance", segment="total", dims="",
                      currency="USD", **kw)  # type: ignore[arg-type]
        return one(df, period="FY2025")

    then = guidance(as_of="2025-03-19")
    by_then, n = average("CNY", "USD", D(2025, 1, 1), D(2025, 3, 19))
    assert (then["fx_last"], then["fx_days"]) == (D(2025, 3, 19), n)
    assert then["fx_rate"] == pytest.approx(by_then, rel=1e-12)
    now = guidance()
    whole, _ = average("CNY", "USD", D(2025, 1, 1), D(2025, 12, 31))
    assert now["fx_rate"] == pytest.approx(whole, rel=1e-12) and now["fx_last"] > D(2025, 3, 19)
    assert ms.sql("SELECT max(day) AS d FROM fx_rates", as_of="2025-03-19")["d"][0] == D(2025, 3, 19)


def test_stored_rate_events_stand_before_the_bundled_history(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "store")
    ecb = tmp_path / "eurofxref.csv"
    ecb.write_text("Date, USD, JPY, CNY, \n27 December 2024, 2.0000, 160.00, 8.0000, \n", encoding="utf-8")
    cash = write_csv(tmp_path / "cash.csv", [fact(metric="cash", period="2024-12-31", value="100", unit="CNY m")])
    catalog = Catalog.load(ROOT / "data" / "catalog")
    assert all(f.ok for f in ingest_paths(store, [ecb, cash], catalog=catalog).files)
    with MetricStore(store) as m:
        row = one(m.facts(entity="acme", metric="cash", currency="USD"), period="2024-12-31")
        expected, day = closing("CNY", "USD", D(2024, 12, 31))            # the bundled 31 December
        assert row["fx_rate"] == pytest.approx(expected) and day == D(2024, 12, 31)
        rates = m.sql("SELECT currency, per_eur, source, event_id FROM fx_rates WHERE day = DATE '2024-12-27'")
        usd = one(rates, currency="USD")
        assert usd["per_eur"] == 2.0 and "stored event" in usd["source"] and usd["event_id"]
        assert one(rates, currency="GBP")["per_eur"] == ecb_rates()["GBP"][D(2024, 12, 27)]


def test_an_unknown_currency_is_one_clear_message(ms: MetricStore, root: Path) -> None:
    with pytest.raises(BadArgument, match="currency='XYZ': has no ECB reference rate"):
        ms.series("xiaomi", "revenue", currency="XYZ")
    with pytest.raises(BadArgument, match="is not a currency code"):
        ms.facts(currency="dollars")
    with pytest.raises(SqlError, match="unknown currency 'XYZ'"):
        ms.sql("SELECT * FROM facts_in('XYZ')")
    done = run_cli("series", "xiaomi", "revenue", "--currency", "XYZ", store=root)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "has no ECB reference rate" in done.stderr


def test_the_cli_converts_series_and_sql(root: Path) -> None:
    done = run_cli("series", "xiaomi", "revenue", "--freq", "FY", "--currency", "USD", store=root)
    assert done.returncode == 0, done.stderr
    assert "50.9 bn USD" in done.stdout and "+35.0 % in CNY" in done.stdout and "-2.2 pt" in done.stdout
    done = run_cli("sql", "SELECT period, unit, round(value / 1e9, 1) AS bn FROM growth WHERE entity = 'xiaomi' "
                   "AND metric = 'revenue' AND segment = 'total' AND ptype = 'FY' ORDER BY period",
                   "--currency", "usd", "--format", "csv", store=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["FY2023,USD,38.3", "FY2024,USD,50.9"]
