"""SEC companyfacts on a small hand-made filing history (tests/fixtures/sec/acme_companyfacts_v*.json).

ACME's fiscal year ends on the last Saturday of September (FY2023 has 53 weeks, FY2024 52).
v1 holds 29 facts (one repeated word for word) from nine filings; v2 is a newer snapshot with two more. The fixture covers
each branch of the precedence rule and every kind of period:

- restatement (a later reported_at wins): FY2023 revenue 1,000 M (10-K) -> 980 M (10-K/A);
- approx never hides exact: total assets re-reported rounded (5,512,345,000 -> 5,512,000,000);
- authority: a news article's rounded revenue never replaces the company's figure;
- recorded_at: a same-day 8-K first recorded in the newer snapshot wins;
- event_id: two same-day filings recorded together: the larger event id wins;
- periods: FY, quarters, H1, 9M, derived Q4, instants, a month, an odd interval, a future quarter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import Catalog, detect_format, ingest_paths
from queries import MetricStore
from store import Store
from tests.conftest import ROOT, run_cli, write_csv

FIXTURES = ROOT / "tests" / "fixtures" / "sec"
V1 = FIXTURES / "acme_companyfacts_v1.json"
V2 = FIXTURES / "acme_companyfacts_v2.json"
E = "cik9999901"


def fact_count(path: Path) -> int:
    doc = json.loads(path.read_text())
    return sum(len(rows) for tax in doc["facts"].values() for c in tax.values() for rows in c["units"].values())


@pytest.fixture
def acme(store: Store, catalog: Catalog) -> Store:
    report = ingest_paths(store, [V1], catalog=catalog)
    assert report.ok, [p for f in report.files for p in f.problems]
    return store


def one(ms: MetricStore, sql: str, params: list[object], **kw: object) -> dict[str, object]:
    df = ms.sql(sql, params, **kw)  # type: ignore[arg-type]
    assert df.height == 1, df
    return df.row(0, named=True)


def current(ms: MetricStore, metric: str, period: str, **kw: object) -> dict[str, object]:
    return one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = ? AND period = ?", [E, metric, period], **kw)


def test_auto_detects_companyfacts() -> None:
    assert detect_format(V1) == "sec-companyfacts"


def test_every_fact_is_one_event_and_reingest_adds_nothing(store: Store, catalog: Catalog) -> None:
    first = ingest_paths(store, [V1], catalog=catalog)
    assert first.added == fact_count(V1) == 29
    again = ingest_paths(store, [V1], catalog=catalog)
    assert (again.added, again.already_present) == (0, 29)
    newer = ingest_paths(store, [V2], catalog=catalog)
    assert (newer.added, newer.already_present) == (fact_count(V2) - fact_count(V1), 29)


def test_entity_record_with_inferred_52_53_week_fiscal_year(acme: Store, ms: MetricStore) -> None:
    e = one(ms, "SELECT * FROM entities WHERE entity = ?", [E])
    assert (e["name"], e["cik"], e["fiscal_year_end_month"]) == ("ACME WIDGETS INC.", "9999901", 9)
    assert e["fiscal_year_end"].startswith("--09-28 (52/53 weeks")


def test_every_kind_of_period_is_labelled_from_dates(acme: Store, ms: MetricStore) -> None:
    labels = set(ms.sql("SELECT period FROM facts WHERE entity = ?", [E])["period"].to_list())
    assert {"FY2023", "FY2024", "2024Q1", "2024Q2", "2024Q3", "2024H1", "9M2024",
            "2023-09-30", "2024-09-28", "2023-10-20", "2024-05", "2024-04-01/2024-05-31"} <= labels


def test_restatement_wins_from_its_publication_date(acme: Store, ms: MetricStore) -> None:
    assert current(ms, "revenue", "FY2023", as_of="2024-12-14")["value"] == 1_000_000_000
    r = current(ms, "revenue", "FY2023", as_of="2024-12-15")
    assert (r["value"], r["source"]) == (980_000_000, "0009999901-24-000020 10-K/A")
    assert current(ms, "revenue", "FY2023")["value"] == 980_000_000
    assert ms.sql("SELECT * FROM facts WHERE entity = ? AND metric = 'revenue' AND period = 'FY2023'",
                  [E], as_of="2023-11-02").height == 0


def test_rounded_re_report_is_approx_and_never_hides_the_exact_figure(acme: Store, ms: MetricStore) -> None:
    r = current(ms, "total_assets", "2024-09-28")
    assert (r["value"], r["qualifier"]) == (5_512_345_000, "exact")
    later = one(ms, "SELECT * FROM events WHERE entity = ? AND metric = 'total_assets' AND value = 5512000000", [E])
    assert later["qualifier"] == "approx" and "rounded re-report of 5512345000" in later["note"]


def test_secondary_source_never_replaces_the_filing(acme: Store, ms: MetricStore, tmp_path: Path,
                                                     catalog: Catalog) -> None:
    article = write_csv(tmp_path / "article.csv", [{
        "entity": E, "metric": "revenue", "period": "FY2024", "value": "1.2", "unit": "USD bn",
        "reported_at": "2024-11-05", "source": "article-widgets-weekly"}])
    assert ingest_paths(acme, [article], catalog=catalog).ok
    r = current(ms, "revenue", "FY2024")
    assert (r["value"], r["authority"]) == (1_150_000_000, "primary")


def test_same_day_filings_then_recorded_at_then_event_id(acme: Store, ms: MetricStore, catalog: Catalog) -> None:
    same_day = ms.sql("SELECT value, event_id FROM events WHERE entity = ? AND metric = 'net_income' "
                      "AND reported_at = DATE '2024-12-15'", [E])
    assert same_day.height == 2
    top = same_day.sort("event_id").row(-1, named=True)
    assert current(ms, "net_income", "FY2024")["value"] == top["value"]
    assert ingest_paths(acme, [V2], catalog=catalog).added == 2
    r = current(ms, "net_income", "FY2024")
    assert (r["value"], r["source"]) == (106_000_000, "0009999901-24-000022 8-K")


def test_concept_priority_keeps_the_other_concept_as_its_own_metric(acme: Store, ms: MetricStore) -> None:
    assert current(ms, "revenue", "9M2024")["value"] == 810_000_000  # us-gaap:Revenues outranks
    other = current(ms, "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax", "9M2024")
    assert other["value"] == 809_000_000
    note = one(ms, "SELECT note FROM events WHERE event_id = ?", [other["event_id"]])["note"]
    assert "shadowed by us-gaap:Revenues" in note


def test_revenue_is_continuous_across_concepts(acme: Store, ms: MetricStore) -> None:
    fy = ms.series(E, "revenue", freq="FY")
    assert fy["period"].to_list() == ["FY2023", "FY2024"]
    assert fy.row(1, named=True)["yoy_pct"] == pytest.approx(1150 / 980 - 1)


def test_q4_is_derived_from_figures_public_at_the_time(acme: Store, ms: MetricStore) -> None:
    q = ms.series(E, "revenue", freq="Q")
    q4 = q.filter(q["period"] == "2024Q4").row(0, named=True)
    assert q4["derived"] and q4["value"] == 1_150_000_000 - 810_000_000
    ids = ms.sql("SELECT event_id FROM facts WHERE entity = ? AND metric = 'revenue' "
                 "AND period IN ('FY2024', '9M2024')", [E])["event_id"].to_list()
    assert sorted(q4["derived_from"]) == sorted(ids)
    before = ms.series(E, "revenue", freq="Q", as_of="2024-10-31")
    assert "2024Q4" not in before["period"].to_list()


def test_a_period_not_ended_when_filed_is_guidance(acme: Store, ms: MetricStore) -> None:
    r = current(ms, "us-gaap:ProceedsFromIssuanceOfDebt", "2025Q1")
    assert r["kind"] == "guidance"
    assert ms.sql("SELECT * FROM growth WHERE entity = ? AND period = '2025Q1'", [E]).height == 0


def test_two_values_in_one_filing_are_both_kept(acme: Store, ms: MetricStore) -> None:
    ev = ms.sql("SELECT value, source FROM events WHERE entity = ? AND metric = 'operating_income' ORDER BY value", [E])
    assert ev.rows() == [(200_000_000.0, "0009999901-24-000010 10-K"), (210_000_000.0, "0009999901-24-000010 10-K #2")]
    assert ms.sql("SELECT * FROM facts WHERE entity = ? AND metric = 'operating_income'", [E]).height == 1


def test_custom_units_stay_apart(acme: Store, ms: MetricStore) -> None:
    r = current(ms, "us-gaap:LossContingencyNumberOfPlaintiffs", "2024-09-28")
    assert (r["unit"], r["dims"], r["value"]) == ("units", "xbrl_unit=Plaintiff", 3)
    assert current(ms, "eps_diluted", "FY2024")["unit"] == "USD/share"


def test_cli_entity_override_and_bad_file(tmp_path: Path) -> None:
    st = tmp_path / "st"
    r = run_cli("ingest", str(V1), "--format", "sec-companyfacts", "--entity", "acme", store=st)
    assert r.returncode == 0, r.stderr
    r = run_cli("sql", "SELECT DISTINCT entity FROM events", "--format", "csv", store=st)
    assert r.stdout.split() == ["entity", "acme"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"cik": 1, "facts": {"us-gaap": {"Revenues": {"units": 3}}}}')
    r = run_cli("ingest", str(bad), store=st)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "us-gaap:Revenues has no 'units' object" in r.stdout + r.stderr


def test_a_fact_repeated_word_for_word_is_a_second_event_changing_nothing(acme: Store, ms: MetricStore) -> None:
    ev = ms.sql("SELECT source_ref, note FROM events WHERE entity = ? AND metric = 'eps_diluted' ORDER BY source_ref", [E])
    assert ev["source_ref"].to_list() == ["us-gaap:EarningsPerShareDiluted", "us-gaap:EarningsPerShareDiluted #repeat2"]
    assert "repeats an identical fact" in ev["note"][1]
    assert current(ms, "eps_diluted", "FY2024")["value"] == 1.05
