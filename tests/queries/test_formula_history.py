"""``history`` of a formula metric's value on small hand-made stores: a version per distinct
computation (definition, input events), when an input is restated, corrected or made exact, or the
formula is redefined; the CLI's table; no version (and one clear line) where an input is missing;
Apple's restated FY2008 (shared SEC file)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest import Catalog, RunReport, ingest_paths
from queries import BadArgument, MetricStore, define_metric
from store import Store
from tests.conftest import fact, needs_shared, run_cli

Ingest = Callable[..., RunReport]
MARGIN = "gross_profit / revenue"


def history(store: Store, metric: str = "margin", period: str = "FY2024", **kw: Any) -> list[dict[str, Any]]:
    """The history rows, in a session opened after the definitions (they compile with the views)."""
    with MetricStore(store) as ms:
        return ms.history("acme", metric, period, **kw).to_dicts()


def local(store: Store) -> Path:
    assert isinstance(store.root, Path)      # the stores here are local folders
    return store.root


def current(store: Store, metric: str = "margin") -> dict[str, Any]:
    with MetricStore(store) as ms:
        (row,) = ms.sql("SELECT * FROM facts WHERE metric = ? AND period = 'FY2024'", [metric]).to_dicts()
    return row


def event_id(store: Store, metric: str, value: float) -> str:
    with MetricStore(store) as ms:
        return str(ms.sql("SELECT event_id FROM events WHERE metric = ? AND value = ?", [metric, value])["event_id"][0])


def test_a_restated_input_gives_two_versions(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", MARGIN)
    ingest_rows([fact(value="80", source="10-K/A", reported_at="2025-06-01")])
    rows = history(store)
    assert [(r["version"], r["value"], r["is_current"]) for r in rows] == [(1, 0.4, False), (2, 0.5, True)]
    assert [r["reported_at"] for r in rows] == [dt.date(2025, 2, 1), dt.date(2025, 6, 1)]
    assert [r["as_reported"] for r in rows] == ["FY2024 = (40 USD m) / (100 USD m) = 0.4 ratio",
                                                "FY2024 = (40 USD m) / (80 USD m) = 0.5 ratio"]
    assert all(r["source"] == "formula" and r["source_ref"] == MARGIN and r["op"] == "assert" for r in rows)
    assert rows[1]["previous_value"] == 0.4 and rows[1]["change"] == pytest.approx(0.1)
    gp, old, new = (event_id(store, "gross_profit", 40e6), event_id(store, "revenue", 100e6),
                    event_id(store, "revenue", 80e6))
    assert [r["derived_from"] for r in rows] == [[gp, old], [gp, new]]
    assert rows[1]["derived_from"] == current(store)["derived_from"]
    with MetricStore(store) as ms:        # the same columns as a stored fact's history, and derived_from
        assert list(rows[0])[:-1] == ms.sql("SELECT * FROM history LIMIT 0").columns
    # before the restatement was published: the first version only, current then
    assert [(r["value"], r["is_current"]) for r in history(store, as_of="2025-05-31")] == [(0.4, True)]
    # the inputs keep their own history
    assert [r["value"] for r in history(store, "revenue")] == [100e6, 80e6]


def test_a_restatement_recorded_before_the_definition_still_shows(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100"),
                 fact(value="80", source="10-K/A", reported_at="2025-06-01")])       # one run, then the formula
    define_metric(store, "margin", MARGIN)
    with MetricStore(store) as ms:
        (defined,) = ms.sql("SELECT recorded_at FROM formulas")["recorded_at"].to_list()
    rows = history(store)
    assert [(r["value"], r["reported_at"], r["is_current"]) for r in rows] == [
        (0.4, dt.date(2025, 2, 1), False), (0.5, dt.date(2025, 6, 1), True)]
    assert {r["recorded_at"] for r in rows} == {defined}          # known from the definition's recording on


def test_a_redefinition_recorded_later_is_a_new_version(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", MARGIN)
    time.sleep(0.01)
    define_metric(store, "margin", "100 * gross_profit / revenue", description="in percent")
    with MetricStore(store) as ms:
        defined = ms.sql("SELECT recorded_at FROM formulas ORDER BY recorded_at")["recorded_at"].to_list()
    rows = history(store)
    assert [(r["value"], r["source_ref"], r["is_current"]) for r in rows] == [
        (0.4, MARGIN, False), (pytest.approx(40.0), "100 * gross_profit / revenue", True)]
    assert rows[0]["derived_from"] == rows[1]["derived_from"]          # the same inputs, another formula
    assert rows[0]["recorded_at"] == defined[0] and rows[1]["recorded_at"] == defined[1]
    # as recorded before the redefinition: the first formula only
    assert [(r["value"], r["source_ref"], r["is_current"]) for r in history(store, as_recorded=defined[0])] == [
        (0.4, MARGIN, True)]


def test_a_restatement_then_a_redefinition_gives_every_answer_as_of_and_as_recorded(
        ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", MARGIN)
    ingest_rows([fact(value="80", source="10-K/A", reported_at="2025-06-01")])
    time.sleep(0.01)
    define_metric(store, "margin", "100 * gross_profit / revenue")
    rows = history(store)
    assert [(r["value"], r["reported_at"], r["source_ref"], r["is_current"]) for r in rows] == [
        (0.4, dt.date(2025, 2, 1), MARGIN, False), (pytest.approx(40.0), dt.date(2025, 2, 1), "100 * " + MARGIN, False),
        (0.5, dt.date(2025, 6, 1), MARGIN, False), (pytest.approx(50.0), dt.date(2025, 6, 1), "100 * " + MARGIN, True)]
    with MetricStore(store) as ms:     # the second version is what facts as of that date answers now
        assert ms.sql("SELECT value FROM facts WHERE metric = 'margin'", as_of="2025-02-01")["value"].to_list() == [
            pytest.approx(40.0)]


def test_an_approx_input_replaced_by_an_exact_one(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40", qualifier="approx", source="call", reported_at="2025-01-20"),
                 fact(value="100", reported_at="2025-01-20")])
    define_metric(store, "margin", MARGIN)
    ingest_rows([fact(metric="gross_profit", value="40.3", reported_at="2025-02-01")])
    rows = history(store)
    assert [(r["value"], r["qualifier"], r["is_current"]) for r in rows] == [
        (0.4, "approx", False), (pytest.approx(0.403), "exact", True)]


def test_a_corrected_input_names_the_correction(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", MARGIN)
    wrong = event_id(store, "revenue", 100e6)
    ingest_rows([fact(value="50", source="acme-10k/a", supersedes=wrong, reported_at="2025-03-02")])
    fixed = event_id(store, "revenue", 50e6)
    rows = history(store)
    assert [(r["value"], r["is_current"], r["withdrawn_by"]) for r in rows] == [(0.4, False, fixed), (0.8, True, None)]
    assert rows[0]["withdrawal"].startswith(f"input event {wrong} corrected by event {fixed}")


def test_a_stock_input_restated_at_the_periods_end(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(value="1200"), fact(metric="store_count", unit="stores", period="2024-12-31", value="40")])
    define_metric(store, "revenue_per_store", "revenue / store_count")
    ingest_rows([fact(metric="store_count", unit="stores", period="2024-12-31", value="48", reported_at="2025-04-01")])
    ingest_rows([fact(value="1440", source="10-K/A", reported_at="2025-06-01")])
    rows = history(store, "revenue_per_store")
    assert [(r["value"], r["reported_at"], r["is_current"]) for r in rows] == [
        (30e6, dt.date(2025, 2, 1), False), (25e6, dt.date(2025, 4, 1), False), (30e6, dt.date(2025, 6, 1), True)]


def test_the_cli_prints_every_version_with_its_arithmetic(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    define_metric(store, "margin", MARGIN)
    ingest_rows([fact(value="80", source="10-K/A", reported_at="2025-06-01")])
    r = run_cli("history", "acme", "margin", "FY2024", "--format", "csv", store=local(store))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["version"], x["value"], x["source_ref"], x["as_reported"], x["is_current"]) for x in rows] == [
        ("1", "0.4", MARGIN, "FY2024 = (40 USD m) / (100 USD m) = 0.4 ratio", "false"),
        ("2", "0.5", MARGIN, "FY2024 = (40 USD m) / (80 USD m) = 0.5 ratio", "true")]
    r = run_cli("history", "acme", "margin", "FY2024", store=local(store), env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    assert "acme margin FY2024: every version" in r.stdout and "as_reported" in r.stdout
    assert "FY2024 = (40 USD m) / (80 USD m) = 0.5 ratio" in r.stdout and "2 row(s)" in r.stdout


def test_a_missing_input_has_no_versions_and_one_clear_line(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100"),
                 fact(period="FY2023", value="90", reported_at="2024-02-01")])     # no FY2023 gross profit
    define_metric(store, "margin", MARGIN)
    with MetricStore(store) as ms:
        with pytest.raises(BadArgument, match="no acme margin value for this period: the formula "
                                              "'gross_profit / revenue' needs a value of every input"):
            ms.history("acme", "margin", "FY2023")
    r = run_cli("history", "acme", "margin", "FY2023", store=local(store))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: period='FY2023': no acme margin value for this period: the formula 'gross_profit / revenue' "
        "needs a value of every input (it has values for FY2024)"]


def test_a_reported_figure_under_the_formulas_name_keeps_its_history(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100"),
                 fact(metric="margin", unit="ratio", value="0.41", source="co-release")])
    define_metric(store, "margin", MARGIN)
    rows = history(store)
    assert [(r["value"], r["source"], r["is_current"]) for r in rows] == [(0.41, "co-release", True)]
    assert "derived_from" not in rows[0]


def test_apples_restated_fy2008_gives_the_margin_a_version_per_filing(tmp_path: Path, catalog: Catalog) -> None:
    store = Store.create(tmp_path / "store")
    sec = needs_shared("sec", "CIK0000320193_apple_asof2024-11.json")
    assert ingest_paths(store, [sec], catalog=catalog).ok
    define_metric(store, "gross_margin_calc", "gross_profit / revenue")
    with MetricStore(store) as ms:
        inputs = {m: ms.history("aapl", m, "FY2008").to_dicts() for m in ("gross_profit", "revenue")}
        rows = ms.history("aapl", "gross_margin_calc", "FY2008").to_dicts()
    # the 10-K, the 10-K/A that restated both inputs, the next 10-K repeating them: one version each
    assert [r["reported_at"] for r in rows] == [r["reported_at"] for r in inputs["revenue"]]
    assert [r["value"] for r in rows] == [pytest.approx(g["value"] / v["value"])
                                          for g, v in zip(inputs["gross_profit"], inputs["revenue"], strict=True)]
    assert [r["derived_from"] for r in rows] == [[g["event_id"], v["event_id"]]
                                                 for g, v in zip(inputs["gross_profit"], inputs["revenue"], strict=True)]
    assert [r["is_current"] for r in rows] == [False, False, True]
