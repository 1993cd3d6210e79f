"""The growth view: YoY, QoQ, TTM, derived quarters, ratios and bases that cannot give a percent."""

from __future__ import annotations

import math

import pytest

from queries import MetricStore
from tests.conftest import fact


def row(ms: MetricStore, period: str, **kw: str) -> dict[str, object]:
    df = ms.growth(period=period, **kw)
    assert df.height == 1, df
    return df.row(0, named=True)


def quarters(values: dict[str, str], **kw: str) -> list[dict[str, object]]:
    out = []
    for period, v in values.items():
        year = int(period[-4:]) if period.startswith(("FY", "9M")) else int(period[:4])
        out.append(fact(period=period, value=v, reported_at=f"{year + 1}-03-01", **kw))
    return out


def test_yoy_of_a_flow(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"FY2023": "270970.1", "FY2024": "365906.4"}))
    r = row(ms, "FY2024")
    assert r["prior_period"] == "FY2023"
    assert r["yoy_change"] == pytest.approx(94936.3e6)
    assert round(r["yoy_pct"], 3) == 0.350


def test_q4_derived_from_fy_minus_9m_with_its_sources(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"FY2024": "365906.4", "9M2024": "256901.2"}))
    r = row(ms, "2024Q4")
    assert r["derived"] is True
    assert r["derivation"] == "FY - 9M"
    assert r["value"] == pytest.approx(109005.2e6)
    ids = set(ms.facts()["event_id"].to_list())
    assert set(r["derived_from"]) == ids


def test_q4_derived_from_three_quarters(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"FY2024": "100", "2024Q1": "20", "2024Q2": "25", "2024Q3": "30"}))
    r = row(ms, "2024Q4")
    assert (r["value"], r["derivation"]) == (25e6, "FY - Q1 - Q2 - Q3")


def test_reported_q4_is_never_replaced_by_a_derived_one(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"FY2024": "100", "9M2024": "70", "2024Q4": "31"}))
    r = row(ms, "2024Q4")
    assert (r["value"], r["derived"]) == (31e6, False)


def test_derived_quarters_respect_as_of(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(period="9M2024", value="70", reported_at="2024-11-01"),
                 fact(period="FY2024", value="100", reported_at="2025-02-01"),
                 fact(period="FY2024", value="104", reported_at="2025-06-01", source="restated")])
    assert ms.growth(period="2024Q4", as_of="2025-01-31").height == 0
    assert row(ms, "2024Q4", as_of="2025-03-01")["value"] == 30e6
    assert row(ms, "2024Q4")["value"] == 34e6


def test_qoq_and_ttm_need_four_contiguous_quarters(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"2023Q2": "10", "2023Q3": "11", "2023Q4": "12", "2024Q1": "13", "2024Q2": "15"}))
    r = row(ms, "2024Q1")
    assert (r["qoq_period"], r["qoq_change"]) == ("2023Q4", 1e6)
    assert r["ttm_value"] == 46e6
    assert row(ms, "2023Q4")["ttm_value"] is None
    assert row(ms, "2024Q2")["ttm_value"] == 51e6
    assert row(ms, "2024Q2")["prior_period"] == "2023Q2"


def test_ttm_is_not_given_across_a_gap(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"2023Q1": "10", "2023Q2": "11", "2023Q4": "12", "2024Q1": "13"}))
    assert row(ms, "2024Q1")["ttm_value"] is None


def test_ratio_change_is_in_ratio_units_and_has_no_percent(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(metric="gross_margin", period="FY2023", value="17.5", unit="%", reported_at="2024-03-01"),
                 fact(metric="gross_margin", period="FY2024", value="20.9", unit="%")])
    r = row(ms, "FY2024", metric="gross_margin")
    assert r["yoy_change"] == pytest.approx(0.034)
    assert r["yoy_pct"] is None


@pytest.mark.parametrize("prior", ["0", "-50"])
def test_no_percent_on_zero_or_negative_base_but_the_change_stands(ingest_rows, ms: MetricStore, prior: str) -> None:
    ingest_rows([fact(metric="net_income", period="FY2023", value=prior, reported_at="2024-03-01"),
                 fact(metric="net_income", period="FY2024", value="25")])
    r = row(ms, "FY2024", metric="net_income")
    assert r["yoy_pct"] is None
    assert r["yoy_change"] == 25e6 - float(prior) * 1e6


def test_loss_per_unit_narrowing_is_an_absolute_change(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(metric="net_loss_per_unit", period="2023Q4", value="66000", unit="CNY", reported_at="2024-03-01"),
                 fact(metric="net_loss_per_unit", period="2024Q4", value="10000", unit="CNY", qualifier="approx",
                      reported_at="2025-03-19")])
    r = row(ms, "2024Q4", metric="net_loss_per_unit")
    assert r["yoy_change"] == -56000.0 and r["yoy_pct"] is None


def test_a_derived_quarter_of_eps_is_approx_yet_summed_to_ttm_and_grown(ingest_rows, ms: MetricStore) -> None:
    # EPS is earnings over a share count that moves within the year: FY EPS - 9M EPS is not the
    # fourth quarter's EPS, so the derived figure is given, marked approx; revenue's stays exact
    eps = [fact(metric="eps_diluted", unit="USD/shares", period=p, value=v,
                reported_at=f"{int(p[-4:]) + 1 if p.startswith(('FY', '9M')) else int(p[:4]) + 1}-03-01")
           for p, v in {"FY2023": "5.60", "2024Q1": "1.50", "2024Q2": "1.40", "2024Q3": "1.30",
                        "9M2024": "4.21", "FY2024": "6.08"}.items()]
    ingest_rows(eps + quarters({"FY2024": "100", "9M2024": "70"}))
    q4 = row(ms, "2024Q4", metric="eps_diluted")
    assert (q4["derived"], q4["derivation"], q4["qualifier"]) == (True, "FY - 9M", "approx")
    assert q4["value"] == pytest.approx(6.08 - 4.21)
    assert q4["ttm_value"] == pytest.approx(1.50 + 1.40 + 1.30 + 6.08 - 4.21)
    assert row(ms, "FY2024", metric="eps_diluted")["yoy_pct"] == pytest.approx(6.08 / 5.60 - 1)
    assert row(ms, "2024Q4", metric="revenue")["qualifier"] == "exact"


def test_a_per_share_figure_has_no_share_of_a_total(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(metric=m, unit=u, segment=s, value=v)
                 for m, u in (("eps_basic", "USD/shares"), ("revenue", "USD m"))
                 for s, v in (("total", "10"), ("cloud", "4"))])
    assert ms.share()["metric"].to_list() == ["revenue"]


def test_52_53_week_years_match_for_yoy(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(entity="aapl", period_start="2022-09-25", period_end="2023-09-30", period="",
                      value="383285", reported_at="2023-11-03", source="10-K 2023"),
                 fact(entity="aapl", period_start="2023-10-01", period_end="2024-09-28", period="",
                      value="391035", reported_at="2024-11-01", source="10-K 2024")])
    r = row(ms, "FY2024", entity="aapl")
    assert r["prior_period"] == "FY2023"
    assert round(r["yoy_pct"], 4) == 0.0202


def test_stock_instants_compare_with_the_same_instant_a_year_earlier(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(metric="store_count", period="2023-12-31", value="10000", unit="stores", reported_at="2024-03-01"),
                 fact(metric="store_count", period="2024-09-30", value="12000", unit="stores", reported_at="2024-11-01"),
                 fact(metric="store_count", period="2024-12-31", value="13000", unit="stores", reported_at="2025-03-01")])
    r = row(ms, "2024-12-31", metric="store_count")
    assert (r["prior_period"], r["yoy_pct"]) == ("2023-12-31", 0.3)
    assert (r["qoq_period"], r["qoq_change"]) == ("2024-09-30", 1000.0)
    assert r["ttm_value"] is None


def test_series_helper_filters_by_frequency(ingest_rows, ms: MetricStore) -> None:
    ingest_rows(quarters({"FY2023": "90", "FY2024": "100", "9M2024": "70", "2024Q1": "20"}))
    fy = ms.series("acme", "revenue", freq="FY")
    assert fy["period"].to_list() == ["FY2023", "FY2024"]
    q = ms.series("acme", "revenue", freq="Q")
    assert q["period"].to_list() == ["2024Q1", "2024Q4"]
    assert q["derived"].to_list() == [False, True]


@pytest.mark.parametrize("projections", ["1", "0"])
def test_sums_and_differences_are_the_decimals_reported(ingest_rows, store, monkeypatch, projections: str) -> None:
    # binary floating point gives 6.94 - 4.04 = 2.9000000000000004; a figure is a decimal, and so
    # is its change, a derived half or a TTM, whatever order the engine adds in
    monkeypatch.setenv("METRICSTORE_PROJECTIONS", projections)
    eps = {"FY2007": "4.04", "FY2008": "6.94", "H12008": "4.35", "2009Q1": "1.75", "2009Q2": "1.23",
           "2009Q3": "7.69", "2009Q4": "4.46", "2010Q1": "0.1", "2010Q2": "0.7", "2010Q3": "-0.8", "2010Q4": "0"}
    assert ingest_rows([fact(metric="eps_basic", unit="USD/shares", period=p, value=v, reported_at="2011-03-01")
                        for p, v in eps.items()]).ok
    with MetricStore(store) as ms:
        assert row(ms, "FY2008", metric="eps_basic")["yoy_change"] == 2.9
        h2 = row(ms, "2008H2", metric="eps_basic")
        assert (h2["derivation"], h2["value"]) == ("FY - H1", 2.59)
        q4 = row(ms, "2009Q4", metric="eps_basic")
        assert (q4["ttm_value"], q4["qoq_change"]) == (15.13, -3.23)
        zero = row(ms, "2010Q4", metric="eps_basic")       # 0.1 + 0.7 - 0.8 is -1.1e-16 in binary
        assert zero["ttm_value"] == 0 and math.copysign(1, zero["ttm_value"]) == 1


def test_a_formula_of_decimals_is_the_decimal(ingest_rows, store) -> None:
    from queries import define_metric
    ingest_rows([fact(value="6.94", unit="USD"), fact(metric="cost", value="4.04", unit="USD")])
    define_metric(store, "margin_abs", "revenue - cost")
    with MetricStore(store) as ms:
        assert row(ms, "FY2024", metric="margin_abs")["value"] == 2.9


def test_every_view_of_a_change_gives_the_decimal(ingest_rows, ms: MetricStore) -> None:
    # the same arithmetic wherever a change or a sum is shown: a restatement, the growth on
    # another basis, the change feed, calendar quarters
    ingest_rows([fact(metric="eps_basic", unit="USD/shares", period="FY2023", value="4.04", reported_at="2024-02-01")])
    ingest_rows([fact(metric="eps_basic", unit="USD/shares", period="FY2023", value="6.94", reported_at="2025-02-01",
                      source="restated"),
                 fact(metric="eps_basic", unit="USD/shares", period="FY2024", value="9.94", reported_at="2025-02-01")])
    ingest_rows([fact(metric="eps_basic", unit="USD/shares", period=p, value=v, reported_at="2025-02-01")
                 for p, v in {"2024Q1": "1.75", "2024Q2": "1.23", "2024Q3": "7.69", "2024Q4": "4.46"}.items()])
    assert ms.history("acme", "eps_basic", "FY2023")["change"].to_list() == [None, 2.9]
    assert ms.restatements("acme", "eps_basic")["change"].to_list() == [2.9]
    first = ms.series("acme", "eps_basic", freq="FY", basis="first").filter(period="FY2024")
    assert first["yoy_change"].to_list() == [5.9]
    restated = ms.changes(kind="restated")
    assert restated["change"].to_list() == [2.9]
    cal = ms.series("acme", "eps_basic", freq="Q", calendar=True).filter(period="CY2024Q4")
    assert (cal["ttm_value"].to_list(), cal["qoq_change"].to_list()) == ([15.13], [-3.23])
