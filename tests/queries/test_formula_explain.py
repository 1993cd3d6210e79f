"""``explain`` of a formula value whose inputs are derived quarters or halves (growth's placed rows):
the arithmetic with each derived input's own terms, one 'value term' row per event, point in time;
``history`` of such a value points to ``explain``. Hand-made stores, figures in USD m (stored x 1e6)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest import RunReport
from queries import BadArgument, MetricStore, define_metric
from store import Store
from tests.conftest import fact, run_cli

Ingest = Callable[..., RunReport]
MARGIN = "gross_profit / revenue"


def local(store: Store) -> Path:
    assert isinstance(store.root, Path)      # the stores here are local folders
    return store.root


def figures() -> list[dict[str, object]]:
    """acme: Q1, H1, 9M and FY of gross profit and revenue (the FY gross profit published a month
    after the FY revenue); beta: a Q1 and H1 gross profit and a reported Q2 revenue."""
    r: list[dict[str, object]] = []
    for metric, period, value, published in (
            ("revenue", "2024Q1", "10", "2024-05-01"), ("gross_profit", "2024Q1", "4", "2024-05-01"),
            ("revenue", "2024H1", "22", "2024-08-01"), ("gross_profit", "2024H1", "9", "2024-08-01"),
            ("revenue", "9M2024", "84", "2024-11-01"), ("gross_profit", "9M2024", "32.4", "2024-11-01"),
            ("revenue", "FY2024", "120", "2025-02-01"), ("gross_profit", "FY2024", "54", "2025-03-01")):
        r.append(fact(metric=metric, period=period, value=value, reported_at=published, source=f"acme {period}"))
    r += [fact(entity="beta", metric="gross_profit", period="2024Q1", value="4", reported_at="2024-05-01"),
          fact(entity="beta", metric="gross_profit", period="2024H1", value="9", reported_at="2024-08-01"),
          fact(entity="beta", period="2024Q2", value="12.5", reported_at="2024-08-01")]
    return r


@pytest.fixture
def margins(ingest_rows: Ingest, store: Store) -> Store:
    ingest_rows(figures())
    define_metric(store, "margin", MARGIN)
    return store


def explain(store: Store, period: str, entity: str = "acme", **kw: Any) -> list[dict[str, Any]]:
    with MetricStore(store) as ms:
        return ms.explain(entity, "margin", period, **kw).to_dicts()


def terms(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["role"], r["term"], r["input"], r["input_term"], r["event_period"], r["value"] / 1e6,
             r["source"]) for r in rows]


def test_a_q4_margin_from_fy_and_9m_inputs(margins: Store) -> None:
    rows = explain(margins, "2024Q4")
    # gross profit 54 - 32.4 = 21.6, revenue 120 - 84 = 36: 21.6 / 36 = 0.6
    assert {r["arithmetic"] for r in rows} == {
        "2024Q4 = (FY2024 54.0 - 9M2024 32.4 = 21.6 USD m) / (FY2024 120.0 - 9M2024 84.0 = 36.0 USD m) = 0.6 ratio"}
    assert terms(rows) == [
        ("value term", 1, "gross_profit", 1, "FY2024", 54.0, "acme FY2024"),
        ("value term", 2, "gross_profit", 2, "9M2024", 32.4, "acme 9M2024"),
        ("value term", 3, "revenue", 1, "FY2024", 120.0, "acme FY2024"),
        ("value term", 4, "revenue", 2, "9M2024", 84.0, "acme 9M2024")]
    assert {r["derivation"] for r in rows} == {"gross_profit / revenue (gross_profit: FY - 9M; revenue: FY - 9M)"}
    assert [r["input_derivation"] for r in rows] == ["FY - 9M"] * 4
    # the events are those the growth row lists
    with MetricStore(margins) as ms:
        (g,) = ms.sql("SELECT value, derived_from FROM growth WHERE entity = 'acme' AND metric = 'margin' "
                      "AND period = '2024Q4'").to_dicts()
    assert [r["event_id"] for r in rows] == g["derived_from"] and g["value"] == pytest.approx(0.6)


def test_a_q2_margin_from_h1_minus_q1(margins: Store) -> None:
    rows = explain(margins, "2024Q2")
    # gross profit 9 - 4 = 5, revenue 22 - 10 = 12: 5 / 12 = 0.4167
    assert rows[0]["arithmetic"] == ("2024Q2 = (2024H1 9.0 - 2024Q1 4.0 = 5.0 USD m) / "
                                     "(2024H1 22.0 - 2024Q1 10.0 = 12.0 USD m) = 0.4167 ratio")
    assert [(t[2], t[4], t[5]) for t in terms(rows)] == [
        ("gross_profit", "2024H1", 9.0), ("gross_profit", "2024Q1", 4.0),
        ("revenue", "2024H1", 22.0), ("revenue", "2024Q1", 10.0)]


def test_a_reported_input_beside_a_derived_one_shows_its_figure(margins: Store) -> None:
    rows = explain(margins, "2024Q2", entity="beta")
    # gross profit 9 - 4 = 5 over the reported revenue 12.5: 0.4
    assert rows[0]["arithmetic"] == "2024Q2 = (2024H1 9.0 - 2024Q1 4.0 = 5.0 USD m) / (12.5 USD m) = 0.4 ratio"
    assert [(r["term"], r["input"], r["event_period"], r["input_derivation"]) for r in rows] == [
        (1, "gross_profit", "2024H1", "H1 - Q1"), (2, "gross_profit", "2024Q1", "H1 - Q1"),
        (3, "revenue", "2024Q2", None)]


def test_as_of_uses_only_the_inputs_public_then(margins: Store) -> None:
    # the FY revenue is public from 2025-02-01, the FY gross profit only from 2025-03-01
    for day in ("2025-01-15", "2025-02-15"):
        with MetricStore(margins) as ms:
            with pytest.raises(BadArgument, match=f"no acme margin value for this period as of {day}: the formula "
                                                  "'gross_profit / revenue' needs a value of every input"):
                ms.explain("acme", "margin", "2024Q4", as_of=day)
    rows = explain(margins, "2024Q4", as_of="2025-03-01")
    assert rows[0]["arithmetic"].endswith("= 0.6 ratio") and len(rows) == 4


def test_a_restated_input_as_of_and_as_recorded(ingest_rows: Ingest, margins: Store) -> None:
    with MetricStore(margins) as ms:
        before = ms.sql("SELECT max(recorded_at) AS t FROM formulas")["t"][0]      # after the figures
    ingest_rows([fact(period="FY2024", value="124", reported_at="2025-06-01", source="acme 10-K/A")])
    # revenue Q4 now 124 - 84 = 40: 21.6 / 40 = 0.54
    now = explain(margins, "2024Q4")
    assert now[0]["arithmetic"].endswith("(FY2024 124.0 - 9M2024 84.0 = 40.0 USD m) = 0.54 ratio")
    assert [r["source"] for r in now if r["input"] == "revenue"] == ["acme 10-K/A", "acme 9M2024"]
    for kw in ({"as_of": "2025-04-01"}, {"as_recorded": before}):
        old = explain(margins, "2024Q4", **kw)
        assert old[0]["arithmetic"].endswith("(FY2024 120.0 - 9M2024 84.0 = 36.0 USD m) = 0.6 ratio"), kw
        assert [r["source"] for r in old if r["input"] == "revenue"] == ["acme FY2024", "acme 9M2024"], kw


def test_a_value_over_reported_inputs_keeps_its_explain(margins: Store) -> None:
    rows = explain(margins, "FY2024")
    assert rows[0]["arithmetic"] == "FY2024 = (54 USD m) / (120 USD m) = 0.45 ratio"
    assert [r["event_period"] for r in rows] == ["FY2024", "FY2024"]


def test_the_cli_prints_the_arithmetic_and_the_events(margins: Store) -> None:
    r = run_cli("explain", "acme", "margin", "2024Q4", store=local(margins), env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("2024Q4 = (FY2024 54.0 - 9M2024 32.4 = 21.6 USD m) / "
                        "(FY2024 120.0 - 9M2024 84.0 = 36.0 USD m) = 0.6 ratio")
    assert "acme margin 2024Q4: the events behind it" in r.stdout and "input" in r.stdout
    assert "4 row(s)" in r.stdout
    r = run_cli("explain", "acme", "margin", "2024Q4", "--format", "csv", store=local(margins))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["term"], x["input"], x["event_period"]) for x in rows] == [
        ("1", "gross_profit", "FY2024"), ("2", "gross_profit", "9M2024"),
        ("3", "revenue", "FY2024"), ("4", "revenue", "9M2024")]
    r = run_cli("explain", "acme", "margin", "2024Q4", "--as-of", "2025-01-15", store=local(margins))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "needs a value of every input" in r.stderr


def test_history_gives_a_version_per_restated_term(ingest_rows: Ingest, margins: Store) -> None:
    ingest_rows([fact(period="FY2024", value="124", reported_at="2025-06-01", source="acme 10-K/A")])
    with MetricStore(margins) as ms:
        rows = ms.history("acme", "margin", "2024Q4").to_dicts()
        first = ms.history("acme", "margin", "2024Q4", as_of="2025-04-01").to_dicts()
    # gross profit 54 - 32.4 = 21.6 over revenue 120 - 84 = 36 (0.6), then 124 - 84 = 40 (0.54)
    assert [(r["version"], round(r["value"], 4), r["reported_at"].isoformat(), r["is_current"], r["as_reported"])
            for r in rows] == [
        (1, 0.6, "2025-03-01", False,
         "2024Q4 = (FY2024 54.0 - 9M2024 32.4 = 21.6 USD m) / (FY2024 120.0 - 9M2024 84.0 = 36.0 USD m) = 0.6 ratio"),
        (2, 0.54, "2025-06-01", True,
         "2024Q4 = (FY2024 54.0 - 9M2024 32.4 = 21.6 USD m) / (FY2024 124.0 - 9M2024 84.0 = 40.0 USD m) = 0.54 ratio")]
    assert {r["source"] for r in rows} == {"formula"} and rows[0]["derived_from"] != rows[1]["derived_from"]
    assert [(r["version"], round(r["value"], 4), r["is_current"]) for r in first] == [(1, 0.6, True)]


def test_the_cli_history_of_a_value_over_derived_inputs(margins: Store) -> None:
    r = run_cli("history", "acme", "margin", "2024Q4", "--format", "csv", store=local(margins))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["version"], x["source_ref"], x["as_reported"], x["is_current"]) for x in rows] == [
        ("1", MARGIN, "2024Q4 = (FY2024 54.0 - 9M2024 32.4 = 21.6 USD m) / "
                      "(FY2024 120.0 - 9M2024 84.0 = 36.0 USD m) = 0.6 ratio", "true")]
    r = run_cli("history", "acme", "margin", "2024Q4", "--as-of", "2025-02-15", store=local(margins))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "metricstore explain" not in line and "needs a value of every input" in line
