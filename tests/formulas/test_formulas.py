"""Formula metrics on small hand-made stores: matching, selectors, stocks, missing inputs, units,
approximations, point in time, restatements, redefinitions, and bad input."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest import Catalog, RunReport, ingest_paths
from queries import BadArgument, MetricStore, define_metric
from queries.formulas import parse, text
from store import Store
from store.ids import content_ids
from tests.conftest import CATALOG, fact, run_cli, store_files, write_csv

Ingest = Callable[..., RunReport]


@contextmanager
def reading(store: Store) -> Iterator[MetricStore]:
    """A session opened after the definitions (formulas are compiled when the views are created)."""
    ms = MetricStore(store)
    try:
        yield ms
    finally:
        ms.close()


def computed(store: Store, metric: str, **kw: Any) -> list[dict[str, Any]]:
    with reading(store) as ms:
        return ms.sql("SELECT * FROM facts WHERE metric = ? ORDER BY entity, segment, dims, period_end",
                      [metric], **kw).to_dicts()


def test_the_grammar_reads_what_the_issue_writes() -> None:
    tree = parse("-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]")
    assert text(tree) == "-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]"
    assert text(parse("abs(a - b) * 2 / (c + 1.5e3)")) == "(abs(a - b) * 2) / (c + 1500)"
    assert text(parse("`us-gaap:Revenues` / shipments[product=tv, region=eu]")) == \
        "`us-gaap:Revenues` / shipments[product=tv,region=eu]"
    for bad in ("revenue +", "revenue ** 2", "__import__('os')", "revenue; drop", "abs(", "revenue[segment]"):
        with pytest.raises(BadArgument, match="syntax error at column"):
            parse(bad)


def test_a_margin_for_every_segment_that_has_both_inputs(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100"),
                 fact(metric="gross_profit", segment="a", value="30"), fact(segment="a", value="60"),
                 fact(segment="b", value="40")])                      # b has no gross profit: no margin
    assert define_metric(store, "margin", "gross_profit / revenue")
    rows = computed(store, "margin")
    assert [(r["segment"], r["value"], r["unit"]) for r in rows] == [("a", 0.5, "ratio"), ("total", 0.4, "ratio")]
    assert all(r["derived"] and r["source"] == "formula" and r["event_id"] is None for r in rows)
    with reading(store) as ms:
        ids = ms.sql("SELECT metric, event_id FROM facts WHERE segment = 'total' AND source <> 'formula'")
    by_metric = dict(zip(ids["metric"], ids["event_id"], strict=True))
    assert rows[1]["derived_from"] == [by_metric["gross_profit"], by_metric["revenue"]]
    assert rows[1]["as_reported"] == "FY2024 = (40 USD m) / (100 USD m) = 0.4 ratio"
    with reading(store) as ms:
        assert ms.sql("SELECT aggregation FROM metrics WHERE metric = 'margin'")["aggregation"].to_list() == ["ratio"]


def test_selectors_fix_segments_and_units_follow_the_inputs(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(entity="xiaomi", metric="adjusted_net_income", segment="smart_ev_innovative", value="-6.2",
                      unit="CNY bn"),
                 fact(entity="xiaomi", metric="deliveries", segment="smart_ev", value="136854", unit="vehicles"),
                 fact(entity="xiaomi", metric="deliveries", segment="other", value="1", unit="vehicles")])
    define_metric(store, "ev_loss_per_vehicle",
                  "-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]",
                  unit="CNY/unit")
    (row,) = computed(store, "ev_loss_per_vehicle")
    assert row["segment"] == "total" and row["unit"] == "CNY/unit" and row["qualifier"] == "exact"
    assert row["value"] == pytest.approx(6.2e9 / 136854)
    assert row["as_reported"] == "FY2024 = -(-6.2 CNY bn) / (136854 vehicles) = 45,304 CNY/unit"
    with reading(store) as ms:
        explained = ms.explain("xiaomi", "ev_loss_per_vehicle", "FY2024")
    assert explained["term"].to_list() == [1, 2] and explained["value"].to_list() == [-6.2e9, 136854]
    assert set(explained["arithmetic"]) == {row["as_reported"]}
    assert explained["event_id"].to_list() == row["derived_from"]


def test_a_stock_input_takes_its_value_at_the_periods_end(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(value="1200"), fact(period="2024Q4", value="330"),
                 fact(metric="store_count", unit="stores", period="2024-12-31", value="40"),
                 fact(metric="store_count", unit="stores", period="2024-09-30", value="35", reported_at="2024-11-01"),
                 fact(period="2023Q4", value="300", reported_at="2024-02-01")])   # no store count then
    define_metric(store, "revenue_per_store", "revenue / store_count")
    rows = sorted(computed(store, "revenue_per_store"), key=lambda r: r["period"], reverse=True)
    assert [(r["period"], r["value"], r["unit"]) for r in rows] == [
        ("FY2024", 30e6, "USD/unit"), ("2024Q4", 8.25e6, "USD/unit")]


def test_approx_input_and_latest_publication(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40", qualifier="approx", reported_at="2025-03-01"),
                 fact(value="100", reported_at="2025-02-01")])
    define_metric(store, "margin", "gross_profit / revenue")
    (row,) = computed(store, "margin")
    assert row["qualifier"] == "approx" and row["reported_at"] == dt.date(2025, 3, 1)
    assert computed(store, "margin", as_of="2025-02-28") == []           # one input not public yet


def test_a_restated_input_changes_the_value_point_in_time(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100", reported_at="2025-02-01"),
                 fact(value="80", source="10-K/A", reported_at="2025-06-01")])
    define_metric(store, "margin", "gross_profit / revenue")
    assert [r["value"] for r in computed(store, "margin")] == [0.5]
    assert [r["value"] for r in computed(store, "margin", as_of="2025-05-31")] == [0.4]
    with reading(store) as ms:
        history = ms.history("acme", "revenue", "FY2024")
    assert history["value"].to_list() == [100e6, 80e6]     # both versions of the input


def test_a_formula_redefined_later(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", "gross_profit / revenue")
    with reading(store) as ms:
        first = ms.sql("SELECT max(recorded_at) AS t FROM formulas")["t"][0]
    time.sleep(0.01)
    assert define_metric(store, "margin", "100 * gross_profit / revenue", description="in percent")
    assert not define_metric(store, "margin", "100 * gross_profit / revenue", description="in percent")
    assert [r["value"] for r in computed(store, "margin")] == [pytest.approx(40.0)]
    assert [r["value"] for r in computed(store, "margin", as_recorded=first)] == [0.4]
    with reading(store) as ms:
        versions = ms.sql("SELECT formula, replaced_at FROM formulas ORDER BY recorded_at").to_dicts()
    assert [v["formula"] for v in versions] == ["gross_profit / revenue", "100 * gross_profit / revenue"]
    assert versions[0]["replaced_at"] is not None and versions[1]["replaced_at"] is None


def test_a_formula_over_a_formula(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "cost", "revenue - gross_profit")
    define_metric(store, "cost_ratio", "cost / revenue")
    assert [r["value"] for r in computed(store, "cost_ratio")] == [0.6]


def test_division_by_zero_is_null_with_the_reason(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="0")])
    define_metric(store, "margin", "gross_profit / revenue")
    (row,) = computed(store, "margin")
    assert row["value"] is None and row["as_reported"] == "FY2024: NULL (division by zero: revenue is 0)"


def test_different_currencies_never_add_up(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40", unit="CNY m"), fact(value="100")])
    define_metric(store, "odd", "revenue + gross_profit")
    (row,) = computed(store, "odd")
    assert row["value"] is None and "units differ: USD + CNY" in row["as_reported"]


def test_the_reported_figure_stands_and_is_checked(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40.0"), fact(value="100.0"),
                 fact(metric="gross_margin", unit="%", value="41.0", source="co-release"),
                 fact(metric="gross_profit", value="30.0", period="FY2023", reported_at="2024-02-01"),
                 fact(value="100.0", period="FY2023", reported_at="2024-02-01"),
                 fact(metric="gross_margin", unit="%", value="30.0", period="FY2023", reported_at="2024-02-01")])
    define_metric(store, "gross_margin", "gross_profit / revenue", aggregation="ratio")
    rows = computed(store, "gross_margin")
    assert [(r["period"], r["value"], r["derived"]) for r in rows] == [("FY2023", 0.3, False), ("FY2024", 0.41, False)]
    with reading(store) as ms:
        checks = ms.checks(check="formula").to_dicts()
    (row,) = checks
    assert row["period"] == "FY2024" and row["expected"] == pytest.approx(0.4) and row["actual"] == pytest.approx(0.41)
    # 40.0 and 100.0 to 0.1 (of USD m): 0.05/100 + 40 * 0.05/100^2 = 0.0007; 41.0 % to 0.001: 0.0005
    assert row["tolerance"] == pytest.approx(0.0007 + 0.0005)
    assert len(row["expected_from"]) == 2 and len(row["actual_from"]) == 1


@pytest.mark.parametrize(("metric", "formula", "unit", "message"), [
    ("margin", "gross_profit / revenu", None, "unknown metric 'revenu' (did you mean revenue?)"),
    ("margin", "gross_profit /", None, "syntax error at column"),
    ("margin", "margin * 2", None, "is a cycle: margin -> margin"),
    ("a", "b + revenue", None, "is a cycle: a -> b -> a"),
    ("margin", "gross_profit / revenue", "EUR/unit", "unknown currency 'EUR' (the store holds figures in USD)"),
    ("margin", "gross_profit / revenue", None, None),
])
def test_bad_definitions_are_one_clear_message(ingest_rows: Ingest, store: Store, metric: str, formula: str,
                                              unit: str | None, message: str | None) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    if metric == "a":     # a cycle through another formula: a = b + revenue, where b = a - revenue
        define_metric(store, "a", "revenue * 2")
        define_metric(store, "b", "a - revenue")
    if message is None:
        assert define_metric(store, metric, formula, unit=unit)
        return
    before = store_files(store.root)
    with pytest.raises(BadArgument, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        define_metric(store, metric, formula, unit=unit)
    assert store_files(store.root) == before


def test_cli_defines_and_refuses_in_one_line(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(entity="xiaomi", metric="adjusted_net_income", segment="smart_ev_innovative", value="-6.2",
                      unit="CNY bn"),
                 fact(entity="xiaomi", metric="deliveries", segment="smart_ev", value="136854", unit="vehicles")])
    r = run_cli("metric", "ev_loss_per_vehicle", "--formula",
                "-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]",
                "--unit", "CNY/vehicle", "--description", "EV loss per vehicle", store=store.root)
    assert r.returncode == 0, r.stderr
    r = run_cli("sql", "SELECT value, unit FROM facts WHERE metric = 'ev_loss_per_vehicle'", "--format", "csv",
                store=store.root)
    assert r.stdout.splitlines()[1].startswith("45303.7") and r.stdout.splitlines()[1].endswith(",CNY/unit")
    before = store_files(store.root)
    for args in (["--formula", "deliveries / nope"], ["--formula", "deliveries /"],
                 ["--formula", "deliveries", "--unit", "EURO"], ["--formula", "deliveries", "--unit", "CNY bn"],
                 ["--formula", "deliveries", "--aggregation", "sum"]):
        r = run_cli("metric", "x", *args, store=store.root)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
    assert store_files(store.root) == before


def test_a_formula_in_the_catalog(tmp_path: Path, store: Store) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    metrics = (CATALOG / "metrics.toml").read_text()
    (catalog / "metrics.toml").write_text(metrics + '\n[margin_calc]\nformula = "gross_profit / revenue"\n')
    path = write_csv(tmp_path / "in.csv", [fact(metric="gross_profit", value="40"), fact(value="100")])
    assert ingest_paths(store, [path], catalog=Catalog.load(catalog)).ok
    assert [(r["value"], r["unit"]) for r in computed(store, "margin_calc")] == [(0.4, "ratio")]
    (catalog / "metrics.toml").write_text(metrics + '\n[bad]\nformula = 3\n')
    with pytest.raises(Exception, match=r"\[bad\] formula 3 is not an expression"):
        Catalog.load(catalog)


def test_metric_records_written_before_formulas_are_not_recorded_again(ingest_rows: Ingest, store: Store) -> None:
    """Adding formula and unit to the records' identity changed a plain definition's record id: an
    ingest must compare definitions by content, not count on the log's id dedup, or it records
    every metric of an older store again."""
    ingest_rows([fact(value="100")])
    for f in (store.root / "metrics").glob("*.parquet"):          # as the earlier version wrote them
        t = pq.read_table(f).drop_columns(["formula", "unit"])
        old_ids = content_ids(t, ("metric", "aggregation", "description", "inferred"))
        assert set(old_ids.to_pylist()).isdisjoint(t.column("record_id").to_pylist())   # the ids did change
        t = t.set_column(t.schema.get_field_index("record_id"), "record_id", old_ids)
        pq.write_table(t.replace_schema_metadata(pq.read_metadata(f).metadata), f)
    before = store.read("metrics").num_rows
    assert ingest_rows([fact(value="110", period="FY2025", reported_at="2026-02-01")]).ok
    assert store.read("metrics").num_rows == before == 1


def test_a_session_open_before_a_definition_answers_with_it(ingest_rows: Ingest, store: Store) -> None:
    """An embedded helper (or a server's pooled session) lives across definitions made by other
    processes: each query answers with the definitions there are when it runs."""
    ingest_rows([fact(metric="gross_profit", period="FY2023", value="30"), fact(period="FY2023", value="60"),
                 fact(metric="gross_profit", value="40"), fact(value="100")])
    with reading(store) as ms:
        assert ms.sql("SELECT count(*) AS n FROM facts WHERE metric = 'margin'")["n"].to_list() == [0]
        define_metric(store, "margin", "gross_profit / revenue")
        assert ms.sql("SELECT value FROM facts WHERE metric = 'margin' ORDER BY period")["value"].to_list() == [0.5, 0.4]
        assert ms.series("acme", "margin")["value"].to_list() == [0.5, 0.4]
        growth = ms.growth(metric="margin", period="FY2024")
        assert growth["yoy_change"].to_list() == [pytest.approx(-0.1)]
        done = run_cli("metric", "margin", "--formula", "gross_profit / revenue * 100", store=store.root)
        assert done.returncode == 0, done.stderr
        assert ms.series("acme", "margin")["value"].to_list() == [50.0, 40.0]       # redefined: the new formula
