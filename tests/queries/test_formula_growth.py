"""Formula metrics in ``growth``, ``series`` and ``share``: YoY, QoQ and TTM as the definition's
aggregation allows, derived quarters as inputs, point in time, redefinitions, and the same answers
from every path (computed, read beside the projections, the catalog file's view).

Hand-made stores; every expected number is worked out in the comments from the figures ingested
(in USD m, so stored values are x 1e6)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ingest import Catalog, ingest_paths
from queries import MetricStore, define_metric, write_catalog
from queries.live import list_live
from queries.projections import COVERED, ENV_SWITCH, Projections
from queries.projector import project
from store import Store
from tests.conftest import CATALOG, ROOT, fact, run_cli, write_csv

M = 1e6
KEY = ["entity", "metric", "segment", "dims", "unit", "ptype", "period_end", "period"]
FORMULAS = ("gross_margin", "gross_calc")
#: Series that have values: formula metrics' (gamma has no cost) and a stored one.
SERIES = [(e, m) for e in ("acme", "beta", "gamma") for m in (*FORMULAS, "revenue") if (e, m) != ("gamma", "gross_calc")]


def rows_of(tmp: Path, name: str, rows: list[dict[str, object]]) -> Path:
    return write_csv(tmp / f"{name}.csv", rows)


def figures() -> list[dict[str, object]]:
    """acme: years, year-to-date and segments; beta: quarters; gamma: a reported gross margin;
    zero: a zero revenue."""
    r: list[dict[str, object]] = []
    for metric, period, value, published in (
            ("revenue", "FY2022", "90", "2023-02-01"),                 # no gross profit, no cost: no formula row
            ("revenue", "9M2023", "70", "2023-11-01"), ("gross_profit", "9M2023", "24", "2023-11-01"),
            ("revenue", "FY2023", "100", "2024-02-01"), ("gross_profit", "FY2023", "40", "2024-02-01"),
            ("cost", "FY2023", "60", "2024-02-01"),
            ("revenue", "9M2024", "84", "2024-11-01"), ("gross_profit", "9M2024", "32.4", "2024-11-01"),
            ("revenue", "FY2024", "120", "2025-02-01"), ("cost", "FY2024", "66", "2025-02-01"),
            ("gross_profit", "FY2024", "54", "2025-03-01")):           # published after the revenue
        r.append(fact(metric=metric, period=period, value=value, reported_at=published))
    for segment, revenue, cost in (("a", "70", "40"), ("b", "50", "26")):
        r += [fact(segment=segment, value=revenue, reported_at="2025-02-01"),
              fact(metric="cost", segment=segment, value=cost, reported_at="2025-02-01")]
    for q, (revenue, cost, published) in {"2023Q4": ("9", "5", "2024-02-01"), "2024Q1": ("10", "6", "2024-05-01"),
                                          "2024Q2": ("11", "6", "2024-08-01"), "2024Q3": ("12", "7", "2024-11-01"),
                                          "2024Q4": ("13", "7", "2025-02-01")}.items():
        r += [fact(entity="beta", period=q, value=revenue, reported_at=published),
              fact(entity="beta", metric="cost", period=q, value=cost, reported_at=published),
              fact(entity="beta", metric="gross_profit", period=q, value=str(int(revenue) - int(cost)),
                   reported_at=published)]
    for period, revenue, gross, published in (("FY2023", "100", "40", "2024-02-01"),
                                              ("FY2024", "120", "54", "2025-02-01")):
        r += [fact(entity="gamma", period=period, value=revenue, reported_at=published),
              fact(entity="gamma", metric="gross_profit", period=period, value=gross, reported_at=published)]
    r.append(fact(entity="gamma", metric="gross_margin", period="FY2023", value="41", unit="%",
                  reported_at="2024-02-01"))                            # the company's own figure stands
    r += [fact(entity="zero", value="0"), fact(entity="zero", metric="gross_profit", value="5")]
    return r


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The store projected (as ``metricstore ingest`` leaves it), then the formulas recorded: a
    definition recorded later needs no new projection."""
    tmp = tmp_path_factory.mktemp("formula-growth")
    store = Store.create(tmp / "store")
    assert ingest_paths(store, [rows_of(tmp, "figures", figures())], catalog=Catalog.load(CATALOG)).ok
    assert project(store) is not None
    define_metric(store, "gross_margin", "gross_profit / revenue")            # a ratio (inferred)
    define_metric(store, "gross_calc", "revenue - cost")                      # a flow (inferred)
    return store


@pytest.fixture
def reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every answer computed from the events (the reference the projections are held to)."""
    monkeypatch.setenv(ENV_SWITCH, "0")
    yield


def growth_rows(store: Store, **filters: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(entity, segment, period) -> growth row, for one metric."""
    with MetricStore(store) as ms:
        df = ms.growth(**filters)
    return {(r["entity"], r["segment"], r["period"]): r for r in df.to_dicts()}


def test_yoy_of_a_flow_formula(built: Store, reference: None) -> None:
    rows = growth_rows(built, metric="gross_calc", entity="acme")
    fy = rows[("acme", "total", "FY2024")]
    # FY2024 120 - 66 = 54 against FY2023 100 - 60 = 40: +14, +35 %
    assert (fy["value"], fy["prior_period"], fy["prior_value"]) == (54 * M, "FY2023", 40 * M)
    assert fy["yoy_change"] == pytest.approx(14 * M) and fy["yoy_pct"] == pytest.approx(0.35)
    assert fy["aggregation"] == "flow" and fy["derived"] and fy["source"] == "formula" and fy["event_id"] is None
    assert len(fy["derived_from"]) == 2
    # FY2022 has a revenue but no cost, 2024Q4 a derived revenue but no cost quarter: no row, never a zero
    assert ("acme", "total", "FY2022") not in rows and ("acme", "total", "2024Q4") not in rows


def test_a_ratio_formula_changes_in_points(built: Store, reference: None) -> None:
    rows = growth_rows(built, metric="gross_margin", entity="acme")
    fy = rows[("acme", "total", "FY2024")]
    # 54 / 120 = 0.45 against 40 / 100 = 0.40: +0.05 (5 points), no percent change, no TTM
    assert fy["value"] == pytest.approx(0.45) and fy["prior_value"] == pytest.approx(0.40)
    assert fy["yoy_change"] == pytest.approx(0.05) and fy["yoy_pct"] is None and fy["ttm_value"] is None
    assert fy["aggregation"] == "ratio" and fy["unit"] == "ratio"


def test_ttm_of_a_flow_formula_and_none_for_a_ratio(built: Store, reference: None) -> None:
    flow = growth_rows(built, metric="gross_calc", entity="beta")
    # gross 2023Q4..2024Q4: 4, 4, 5, 5, 6
    assert flow[("beta", "total", "2024Q4")]["ttm_value"] == pytest.approx(20 * M)     # 4 + 5 + 5 + 6
    assert flow[("beta", "total", "2024Q3")]["ttm_value"] == pytest.approx(18 * M)     # 4 + 4 + 5 + 5
    assert flow[("beta", "total", "2024Q2")]["ttm_value"] is None                       # three quarters only
    q4 = flow[("beta", "total", "2024Q4")]
    assert (q4["qoq_period"], q4["qoq_change"], q4["qoq_pct"]) == ("2024Q3", pytest.approx(1 * M), pytest.approx(0.2))
    ratio = growth_rows(built, metric="gross_margin", entity="beta")[("beta", "total", "2024Q4")]
    assert ratio["value"] == pytest.approx(6 / 13) and ratio["ttm_value"] is None
    assert ratio["qoq_change"] == pytest.approx(6 / 13 - 5 / 12) and ratio["qoq_pct"] is None


def test_a_q4_reported_only_as_fy_and_9m_gets_a_margin(built: Store, reference: None) -> None:
    rows = growth_rows(built, metric="gross_margin", entity="acme")
    q4 = rows[("acme", "total", "2024Q4")]
    # (54 - 32.4) / (120 - 84) = 21.6 / 36 = 0.6, against 2023Q4 (40 - 24) / (100 - 70) = 16 / 30
    assert q4["value"] == pytest.approx(0.6) and q4["prior_value"] == pytest.approx(16 / 30)
    assert q4["yoy_change"] == pytest.approx(0.6 - 16 / 30) and q4["derived"]
    assert "gross_profit: FY - 9M" in q4["derivation"] and "revenue: FY - 9M" in q4["derivation"]
    with MetricStore(built) as ms:
        inputs = ms.sql("SELECT metric, period, event_id FROM facts WHERE entity = 'acme' AND segment = 'total' "
                        "AND source <> 'formula'").to_dicts()
        quarters = ms.growth(entity="acme", period="2024Q4", segment="total").to_dicts()
    ids = {(r["metric"], r["period"]): r["event_id"] for r in inputs}
    # the inputs' derived quarters' ids, in the formula's order: gross profit FY, 9M; revenue FY, 9M
    assert q4["derived_from"] == [ids[("gross_profit", "FY2024")], ids[("gross_profit", "9M2024")],
                                  ids[("revenue", "FY2024")], ids[("revenue", "9M2024")]]
    derived_inputs = {r["metric"]: r["derived_from"] for r in quarters if r["metric"] in ("revenue", "gross_profit")}
    assert q4["derived_from"] == derived_inputs["gross_profit"] + derived_inputs["revenue"]
    # the facts view holds reported figures and formula values over them, never derived quarters
    with MetricStore(built) as ms:
        assert ms.facts(entity="acme", metric="gross_margin", period="2024Q4").height == 0


def test_a_zero_divisor_gives_no_growth_row(built: Store, reference: None) -> None:
    assert growth_rows(built, metric="gross_margin", entity="zero") == {}
    with MetricStore(built) as ms:
        (row,) = ms.facts(entity="zero", metric="gross_margin").to_dicts()
    assert row["value"] is None and "division by zero" in row["as_reported"]


def test_as_of_before_and_after_an_input_was_published(built: Store, reference: None) -> None:
    before = growth_rows(built, metric="gross_margin", entity="acme", as_of="2025-02-28")
    assert ("acme", "total", "FY2024") not in before and ("acme", "total", "2024Q4") not in before
    assert before[("acme", "total", "FY2023")]["value"] == pytest.approx(0.4)
    after = growth_rows(built, metric="gross_margin", entity="acme", as_of="2025-03-01")
    assert after[("acme", "total", "FY2024")]["yoy_change"] == pytest.approx(0.05)
    assert after[("acme", "total", "2024Q4")]["value"] == pytest.approx(0.6)
    with MetricStore(built) as ms:
        macro = ms.sql("SELECT period, value FROM growth_as_of(DATE '2025-02-28') "
                       "WHERE entity = 'acme' AND metric = 'gross_margin' AND segment = 'total' ORDER BY period")
    assert macro["period"].to_list() == ["2023Q4", "9M2023", "9M2024", "FY2023"]


def test_a_reported_figure_stands_over_the_computed_one(built: Store, reference: None) -> None:
    rows = growth_rows(built, metric="gross_margin", entity="gamma")
    fy23, fy24 = rows[("gamma", "total", "FY2023")], rows[("gamma", "total", "FY2024")]
    assert fy23["value"] == pytest.approx(0.41) and fy23["source"] != "formula"         # reported, not 0.40
    assert fy24["source"] == "formula" and fy24["value"] == pytest.approx(0.45)
    assert fy24["prior_value"] == pytest.approx(0.41) and fy24["yoy_change"] == pytest.approx(0.04)
    assert len(rows) == 2


def test_share_of_a_formula_metrics_segments(built: Store, reference: None) -> None:
    with MetricStore(built) as ms:
        share = ms.share(entity="acme", metric="gross_calc").to_dicts()
    # a: 70 - 40 = 30, b: 50 - 26 = 24, of 120 - 66 = 54
    assert [(r["segment"], r["value"], r["total_value"]) for r in share] == [("a", 30 * M, 54 * M), ("b", 24 * M, 54 * M)]
    assert [r["share"] for r in share] == [pytest.approx(30 / 54), pytest.approx(24 / 54)]
    with MetricStore(built) as ms:       # a ratio has no share
        assert ms.share(metric="gross_margin").height == 0


def test_series_through_the_helper_and_the_cli(built: Store, reference: None) -> None:
    with MetricStore(built) as ms:
        series = ms.series("acme", "gross_margin", freq="FY")
    assert series["period"].to_list() == ["FY2023", "FY2024"]
    assert series["yoy_change"].to_list()[1] == pytest.approx(0.05)
    out = run_cli("series", "acme", "gross_margin", "--freq", "Q", "--format", "csv", store=Path(str(built.root)),
                  env={ENV_SWITCH: "0"})
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["period"] for r in rows] == ["2023Q4", "2024Q4"]
    assert float(rows[1]["value"]) == pytest.approx(0.6) and float(rows[1]["yoy_change"]) == pytest.approx(0.6 - 16 / 30)


def whole(store: Store, **kw: Any) -> pl.DataFrame:
    with MetricStore(store) as ms:
        return ms.growth(**kw).sort(KEY)


def test_projected_answers_equal_the_reference(built: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    usable = Projections(built).usable(list_live(built, COVERED))
    assert usable is not None and usable.changed == frozenset({"gamma"})    # the one entity reporting gross_margin
    on = [whole(built), whole(built, as_of="2025-02-28")]
    with MetricStore(built) as ms:
        series_on = {(e, m): ms.series(e, m) for e, m in SERIES}
    monkeypatch.setenv(ENV_SWITCH, "0")
    off = [whole(built), whole(built, as_of="2025-02-28")]
    with MetricStore(built) as ms:
        series_off = {(e, m): ms.series(e, m) for e, m in SERIES}
    for a, b in zip(on, off, strict=True):
        assert a.filter(pl.col("metric").is_in(FORMULAS)).height > 10
        assert_frame_equal(a, b)
    for key, frame in series_on.items():
        assert frame.height > 0, key            # a layer without formulas never answers a formula's series
        assert_frame_equal(frame, series_off[key])


def test_a_screen_of_one_metric_equals_the_whole_view_filtered(built: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """growth(metric=...) (and entity=...) read narrowed where no projection answers: the same rows
    as the whole view, filtered, for stored and formula metrics, now, as of a date and as recorded."""
    recorded = dt.datetime.now(dt.UTC)
    for switch in ("1", "0"):
        monkeypatch.setenv(ENV_SWITCH, switch)
        with MetricStore(built) as ms:
            for kw in ({}, {"as_of": "2024-12-31"}, {"as_recorded": recorded}):
                every = ms.growth(**kw)
                for metric in ("revenue", "gross_margin", "gross_calc"):
                    screen = ms.growth(metric=metric, **kw)
                    assert screen.height > 0, (switch, kw, metric)
                    assert_frame_equal(screen, every.filter(pl.col("metric") == metric), check_row_order=False)
                one = ms.growth(entity="beta", **kw)
                assert one.height > 0
                assert_frame_equal(one, every.filter(pl.col("entity") == "beta"), check_row_order=False)


def test_the_projected_series_of_a_formula_after_a_new_projection(built: Store, tmp_path: Path) -> None:
    """After the projector has seen the definitions (a delta for gamma, whose events the new
    definition reaches), every series is read beside the projection and still holds the formula."""
    store = Store.create(tmp_path / "store")
    assert ingest_paths(store, [rows_of(tmp_path, "figures", figures())], catalog=Catalog.load(CATALOG)).ok
    define_metric(store, "gross_margin", "gross_profit / revenue")
    assert project(store) is not None
    usable = Projections(store).usable(list_live(store, COVERED))
    assert usable is not None and usable.changed == frozenset()
    with MetricStore(store) as ms:
        gamma = ms.series("gamma", "gross_margin", freq="FY")
        revenue = ms.series("acme", "revenue", freq="FY")
    assert gamma["value"].to_list() == [pytest.approx(0.41), pytest.approx(0.45)]
    assert gamma["source"].to_list()[1] == "formula" and revenue.height == 3


def test_the_catalog_files_growth_view(built: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(built, tmp_path / "catalog.duckdb")
    monkeypatch.setenv(ENV_SWITCH, "0")
    con = duckdb.connect(str(path), read_only=True)
    try:
        now = con.sql("SELECT * FROM growth").pl().sort(KEY)
        con.execute("SET VARIABLE as_of = DATE '2025-02-28'")
        then = con.sql("SELECT * FROM growth").pl().sort(KEY)
        con.execute("SET VARIABLE metricstore_projections = false")
        computed = con.sql("SELECT * FROM growth").pl().sort(KEY)
    finally:
        con.close()
    assert now.filter(pl.col("metric").is_in(FORMULAS)).height > 10
    assert_frame_equal(now, whole(built), check_dtypes=False)
    assert_frame_equal(then, whole(built, as_of="2025-02-28"), check_dtypes=False)
    assert_frame_equal(computed, then)


def test_the_catalog_in_the_duckdb_1x_cli(built: Store, tmp_path: Path, reference: None) -> None:
    from tests.queries.test_catalog_duckdb1 import duckdb1_cli, run_readme_line

    binary = duckdb1_cli()
    path = write_catalog(built, tmp_path / "catalog.duckdb")
    out = run_readme_line(binary, path, "SELECT count(*) FROM growth WHERE metric = 'gross_margin';\n"
                                        "SELECT count(*) FROM share WHERE metric = 'gross_calc';\n")
    assert out.returncode == 0 and "Error" not in out.stderr, out.stderr
    with MetricStore(built) as ms:
        expected = [ms.growth(metric="gross_margin").height, ms.share(metric="gross_calc").height]
    assert [int(n) for n in out.stdout.split()] == expected and expected[0] > 0


def test_as_recorded_before_and_after_a_redefinition(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "store")
    rows = [fact(metric=m, period=p, value=v) for m, p, v in (
        ("revenue", "FY2023", "100"), ("gross_profit", "FY2023", "40"),
        ("revenue", "FY2024", "120"), ("gross_profit", "FY2024", "54"))]
    assert ingest_paths(store, [rows_of(tmp_path, "f", rows)], catalog=Catalog.load(CATALOG)).ok
    before_any = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    define_metric(store, "margin", "gross_profit / revenue")
    time.sleep(0.01)
    first = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    define_metric(store, "margin", "100 * gross_profit / revenue", description="in percent")
    assert project(store) is not None
    with MetricStore(store) as ms:
        now = ms.series("acme", "margin", freq="FY").to_dicts()
        then = ms.series("acme", "margin", freq="FY", as_recorded=first).to_dicts()
        none = ms.growth(metric="margin", as_recorded=before_any)
        macro = ms.sql("SELECT value, yoy_change FROM growth_as_recorded(?) WHERE metric = 'margin' "
                       "AND period = 'FY2024'", [first]).to_dicts()
    assert [r["value"] for r in now] == [pytest.approx(40), pytest.approx(45)]
    assert now[1]["yoy_change"] == pytest.approx(5)
    assert [r["value"] for r in then] == [pytest.approx(0.4), pytest.approx(0.45)]
    assert macro == [{"value": pytest.approx(0.45), "yoy_change": pytest.approx(0.05)}]
    assert none.height == 0


def test_xiaomi_seed_margin_and_ev_loss_per_vehicle(tmp_path: Path) -> None:
    """The seed has one year of EV deliveries (a loss per vehicle for FY2024 alone) and two years of
    revenue and adjusted net income: an adjusted net margin with its change in points."""
    store = Store.create(tmp_path / "store")
    seed: list[str | Path] = sorted((ROOT / "data" / "seed").glob("*.csv"))
    assert ingest_paths(store, seed, catalog=Catalog.load(CATALOG)).ok
    assert project(store) is not None
    define_metric(store, "ev_loss_per_vehicle",
                  "-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]",
                  unit="CNY/unit")
    define_metric(store, "adjusted_net_margin", "adjusted_net_income / revenue")
    with (ROOT / "data" / "seed" / "xiaomi-comparatives.csv").open(newline="", encoding="utf-8") as fh:
        company = {(r["metric"], r["period"]): float(r["value"]) for r in csv.DictReader(fh) if not r["segment"]}
    with MetricStore(store) as ms:
        margin = ms.series("xiaomi", "adjusted_net_margin", freq="FY").to_dicts()
        loss = ms.series("xiaomi", "ev_loss_per_vehicle", freq="FY").to_dicts()
    fy23 = company[("adjusted_net_income", "FY2023")] / company[("revenue", "FY2023")]
    fy24 = company[("adjusted_net_income", "FY2024")] / company[("revenue", "FY2024")]
    assert [r["period"] for r in margin] == ["FY2023", "FY2024"]
    assert [r["value"] for r in margin] == [pytest.approx(fy23), pytest.approx(fy24)]
    assert margin[1]["yoy_change"] == pytest.approx(fy24 - fy23) and margin[1]["yoy_pct"] is None
    (row,) = loss
    assert row["period"] == "FY2024" and round(row["value"]) == 45304 and row["prior_value"] is None


def test_the_catalog_file_follows_a_new_definition(tmp_path: Path) -> None:
    # a data team's file, written before the metric is defined: the writer writes it again, and a
    # session opened afterwards answers the new metric as the helper does
    store = tmp_path / "store"
    assert run_cli("ingest", str(rows_of(tmp_path, "figures", figures())), store=store).returncode == 0
    made = run_cli("catalog", store=store)
    assert made.returncode == 0, made.stderr
    path = store / "catalog.duckdb"
    elsewhere = tmp_path / "mine.duckdb"
    write_catalog(Store(store), elsewhere)
    first = path.stat().st_ino

    def margins(catalog: Path) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(catalog), read_only=True)
        try:
            return con.sql("SELECT entity, period, value FROM growth WHERE metric = 'margin_calc' "
                           "ORDER BY ALL").fetchall()
        finally:
            con.close()

    assert margins(path) == []
    out = run_cli("metric", "margin_calc", "--formula", "gross_profit / revenue", store=store)
    assert out.returncode == 0, out.stderr
    with MetricStore(Store(store)) as ms:
        expected = ms.growth(metric="margin_calc").sort("entity", "period").select("entity", "period", "value")
    assert expected.height > 0
    assert margins(path) == [tuple(r) for r in expected.rows()]
    assert margins(elsewhere) == []         # a file elsewhere is the user's: written again on request
    # a commit that changes no definition leaves the file as it is
    second = path.stat().st_ino
    assert second != first
    more = rows_of(tmp_path, "more", [fact(entity="acme", metric="revenue", period="FY2025", value="130",
                                                 reported_at="2026-02-01")])
    assert run_cli("ingest", str(more), store=store).returncode == 0
    assert path.stat().st_ino == second
    assert sorted(p.name for p in store.iterdir() if p.name.startswith(".catalog")) == []
