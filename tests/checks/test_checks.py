"""The checks view on small hand-made stores: each comparison, its tolerance, point in time, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ingest import RunReport
from queries import BadArgument, MetricStore
from store import Store
from tests.conftest import fact, run_cli

Ingest = Callable[..., RunReport]


def results(ms: MetricStore, check: str, **kw: Any) -> list[dict[str, Any]]:
    """Every comparison of one kind (agreeing or not), oldest period first."""
    return ms.sql('SELECT * FROM check_results_at(getvariable(\'as_of\'), getvariable(\'as_recorded\')) '
                  'WHERE "check" = ? ORDER BY period_end, period, actual', [check], **kw).to_dicts()


def test_step_is_the_last_written_digit_in_base_units(ms: MetricStore) -> None:
    cases = [(365.9e9, "365.9 CNY bn", 1e8), (136800.0, "136800 vehicles", 100.0), (109e9, "109 CNY bn", 1e9),
             (0.209, "20.9 %", 0.001), (172883000.0, "172883000 USD", 1000.0), (1.64, "1.64 USD/share", 0.01),
             (-7e8, "-700 CNY m", 1e8), (1.5e6, "1,500.5 USD k", 100.0), (0.0, "0 USD", None),
             (2500.0, None, 100.0), (0.25, "a quarter", 0.01)]
    for value, text, step in cases:
        got = ms.sql("SELECT ms_step(?, ?) AS s", [value, text])["s"][0]
        assert got == pytest.approx(step) if step is not None else got is None, (value, text, got)


def test_segments_against_the_total_within_and_beyond_rounding(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(value="101"), fact(segment="a", value="60.5"), fact(segment="b", value="40.4"),
                 fact(period="FY2023", value="101", reported_at="2024-02-01"),
                 fact(period="FY2023", segment="a", value="60.5", reported_at="2024-02-01"),
                 fact(period="FY2023", segment="b", value="41.4", reported_at="2024-02-01"),
                 # one segment alone is not a partition: no comparison
                 fact(metric="deliveries", unit="units", value="1000"),
                 fact(metric="deliveries", unit="units", segment="x", value="400")])
    rows = results(ms, "segments")
    assert [(r["period"], r["metric"]) for r in rows] == [("FY2023", "revenue"), ("FY2024", "revenue")]
    beyond, within = rows
    # 101 to the unit, 60.5 and 41.4 to a tenth (of USD m): 0.5 + 0.05 + 0.05
    assert beyond["tolerance"] == pytest.approx(0.6e6) and within["tolerance"] == pytest.approx(0.6e6)
    assert beyond["expected"] == 101e6 and beyond["actual"] == pytest.approx(101.9e6)
    assert beyond["difference"] == pytest.approx(0.9e6) and not beyond["within"]
    assert within["difference"] == pytest.approx(-0.1e6) and within["within"]
    facts = ms.facts(entity="acme", metric="revenue", period="FY2023")
    ids = dict(zip(facts["segment"], facts["event_id"], strict=True))
    assert beyond["expected_from"] == [ids["total"]] and beyond["actual_from"] == [ids["a"], ids["b"]]
    assert beyond["event_ids"] == [ids["total"], ids["a"], ids["b"]]
    listed = ms.checks("acme")
    assert listed["check"].to_list() == ["segments"] and listed["period"].to_list() == ["FY2023"]


def test_sums_differences_and_tolerances_are_decimals(ingest_rows: Ingest, ms: MetricStore) -> None:
    # 1.1 + 2.2 is 3.3000000000000003 in binary, 3.3 - 3.5 is -0.20000000000000018, and the
    # half-steps 0.05 + 0.05 + 0.05 are 0.15000000000000002: the checks show the decimals
    ingest_rows([fact(value="3.5", unit="USD"), fact(segment="a", value="1.1", unit="USD"),
                 fact(segment="b", value="2.2", unit="USD")])
    (row,) = results(ms, "segments")
    assert (row["actual"], row["difference"], row["tolerance"]) == (3.3, -0.2, 0.15)
    assert row["relative_difference"] == -0.2 / 3.5 and not row["within"]


def test_segments_of_a_ratio_are_never_summed(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(metric="gross_margin", unit="%", value="20.9"),
                 fact(metric="gross_margin", unit="%", segment="a", value="12.6"),
                 fact(metric="gross_margin", unit="%", segment="b", value="76.6")])
    assert results(ms, "segments") == []


def quarters(fy: str, q: list[str], *, metric: str = "revenue", unit: str = "USD m", year: str = "2024") -> list[dict[str, object]]:
    reported = f"{int(year) + 1}-02-01"
    rows = [fact(metric=metric, unit=unit, period=f"FY{year}", value=fy, reported_at=reported)]
    rows += [fact(metric=metric, unit=unit, period=f"{year}Q{i + 1}", value=v, reported_at=reported)
             for i, v in enumerate(q) if v is not None]
    return rows


def test_four_quarters_against_the_year(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows(quarters("1001", ["250.1", "250.2", "250.3", "250.6"], year="2024")      # 1001.2: within 0.7
                + quarters("1001", ["250.1", "250.2", "250.3", "251.6"], year="2023")    # 1002.2: beyond
                + quarters("1001", ["250.1", None, "250.3", "251.6"], year="2022")       # a quarter missing
                + quarters("1001", ["1", "2", "3", "4"], metric="store_count", unit="stores"))  # a stock
    rows = results(ms, "quarters")
    assert [(r["period"], r["within"]) for r in rows] == [("FY2023", False), ("FY2024", True)]
    beyond = rows[0]
    assert beyond["expected"] == 1001e6 and beyond["actual"] == pytest.approx(1002.2e6)
    assert beyond["tolerance"] == pytest.approx(0.5e6 + 4 * 0.05e6)
    assert beyond["detail"] == "2023Q1 + 2023Q2 + 2023Q3 + 2023Q4 against FY2023"
    f = ms.facts(entity="acme", metric="revenue")
    by_period = dict(zip(f["period"], f["event_id"], strict=True))
    assert beyond["expected_from"] == [by_period["FY2023"]]
    assert beyond["actual_from"] == [by_period[f"2023Q{i}"] for i in (1, 2, 3, 4)]
    assert ms.checks(check="quarters")["period"].to_list() == ["FY2023"]


def test_a_zero_figure_counts_with_the_step_of_its_table(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows(quarters("1000.3", ["0", "500.1", "250.1", "250.2"]))
    (row,) = results(ms, "quarters")
    # 1000.3, 500.1, 250.1, 250.2 to a tenth; the 0 counts as a tenth too: 5 * 0.05
    assert row["tolerance"] == pytest.approx(0.25e6) and row["within"]


def test_rounded_figure_against_the_exact_one(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(value="4130162", unit="USD k", source="10-K 2024"),
                 fact(value="4.13", unit="USD bn", qualifier="approx", source="10-K 2025", reported_at="2026-02-01"),
                 fact(period="FY2023", value="4130162", unit="USD k", source="10-K 2023", reported_at="2024-02-01"),
                 fact(period="FY2023", value="4.2", unit="USD bn", qualifier="approx", source="10-K 2024b"),
                 # another source's exact figure, written to a tenth of a billion
                 fact(period="FY2023", value="4.1", unit="USD bn", source="article-x", reported_at="2024-03-01"),
                 # an earlier version of the company's own exact figure is a restatement, not a rounding
                 fact(period="FY2023", value="4000000", unit="USD k", source="10-K 2023 first", reported_at="2024-01-15")])
    rows = results(ms, "rounding")
    assert [(r["period"], r["actual"], r["within"]) for r in rows] == [
        ("FY2023", 4.1e9, True), ("FY2023", 4.2e9, False), ("FY2024", 4.13e9, True)]
    far = rows[1]
    assert far["expected"] == 4130162e3 and far["difference"] == pytest.approx(69838e3)
    assert far["tolerance"] == pytest.approx(0.05e9 + 500)
    assert "approximate figure 4.2 USD bn (10-K 2024b, primary) against the exact 4130162 USD k" in far["detail"]
    events = ms.sql("SELECT event_id, source FROM events")
    by_source = dict(zip(events["source"], events["event_id"], strict=True))
    assert far["expected_from"] == [by_source["10-K 2023"]] and far["actual_from"] == [by_source["10-K 2024b"]]


def test_bounds_against_the_exact_figure(ingest_rows: Ingest, ms: MetricStore) -> None:
    m = {"metric": "gross_margin", "unit": "%"}
    ingest_rows([fact(**m, value="62.0", source="co"),
                 fact(**m, value="63", qualifier="at_least", source="article-a"),      # over 63 %: wrong
                 fact(**m, value="62", qualifier="at_least", source="article-b"),      # over 62 %: right
                 fact(**m, value="61", qualifier="at_most", source="article-c"),       # under 61 %: wrong
                 fact(**m, value="60", value_high="62", qualifier="range", source="article-d")])  # right
    rows = {r["detail"].split(" (")[1].split(",")[0]: r for r in results(ms, "bound")}
    assert {s: r["within"] for s, r in rows.items()} == {"article-a": False, "article-b": True,
                                                          "article-c": False, "article-d": True}
    assert rows["article-a"]["tolerance"] == pytest.approx(0.005 + 0.0005)


def test_point_in_time_and_withdrawn_figures(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(value="4130162", unit="USD k", source="10-K 2024"),
                 fact(value="4.2", unit="USD bn", qualifier="approx", source="10-K 2025", reported_at="2026-02-01")])
    assert ms.checks()["period"].to_list() == ["FY2024"]
    assert ms.checks(as_of="2026-01-31").height == 0        # the rounded figure was not public yet
    wrong = ms.sql("SELECT event_id FROM events WHERE source = '10-K 2025'")["event_id"][0]
    ingest_rows([fact(op="retract", value="", unit="USD bn", supersedes=wrong, source="10-K 2025",
                      reported_at="2026-02-02")])
    assert ms.checks().height == 0
    assert ms.checks(as_of="2026-02-01").height == 1


def test_unknown_check_is_one_clear_error(ms: MetricStore) -> None:
    with pytest.raises(BadArgument, match="check='sums': is not one of segments, quarters"):
        ms.checks(check="sums")


def test_cli_lists_the_disagreements(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows(quarters("1001", ["250.1", "250.2", "250.3", "251.6"], year="2023")
                + [fact(entity="other", value="5.5"), fact(entity="other", segment="a", value="3.0"),
                   fact(entity="other", segment="b", value="3.1")])
    r = run_cli("checks", "acme", store=store.root)
    assert r.returncode == 0, r.stderr
    assert "quarters" in r.stdout and "FY2023" in r.stdout and "1 row(s)" in r.stdout and "other" not in r.stdout
    r = run_cli("checks", "--format", "json", store=store.root)
    rows = json.loads(r.stdout)
    assert sorted((x["entity"], x["check"]) for x in rows) == [("acme", "quarters"), ("other", "segments")]
    assert all(len(x["event_ids"]) == len(x["expected_from"]) + len(x["actual_from"]) for x in rows)
    r = run_cli("checks", "--check", "sums", store=store.root)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "is not one of" in r.stderr
