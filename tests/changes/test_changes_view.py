"""The change feed on hand-made stores: one row per change a run made to the current answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ingest import RunReport
from ingest.jobs import CHANGE_KINDS
from queries import BadArgument, MetricStore
from queries.changes import KINDS
from store import Store
from tests.conftest import fact, run_cli

Ingest = Callable[..., RunReport]


def feed(ms: MetricStore, **kw: Any) -> list[dict[str, Any]]:
    return ms.changes(**kw).to_dicts()


def one(ms: MetricStore, run: str) -> dict[str, Any]:
    rows = feed(ms, run=run)
    assert len(rows) == 1, rows
    return rows[0]


def event_id(ms: MetricStore, **key: str) -> str:
    where = " AND ".join(f"{k} = ?" for k in key)
    ids = ms.sql(f"SELECT event_id FROM history WHERE {where}", list(key.values()))["event_id"].to_list()
    assert len(ids) == 1, ids
    return str(ids[0])


def test_the_kinds_are_one_list() -> None:
    assert KINDS == CHANGE_KINDS


def test_a_new_fact_then_a_restatement_with_old_new_difference_and_percentage(ingest_rows: Ingest,
                                                                               ms: MetricStore) -> None:
    first = ingest_rows([fact(period="FY2008", value="32479", reported_at="2009-10-27", source="acme 10-K")])
    second = ingest_rows([fact(period="FY2008", value="37491", reported_at="2010-01-25", source="acme 10-K/A",
                               source_ref="us-gaap:Revenues")])
    new = one(ms, first.run_id)
    assert (new["change_kind"], new["old_value"], new["new_value"]) == ("new", None, 32_479e6)
    assert new["old_event_id"] is None and new["event_id"] == new["by_event_id"]
    assert new["summary"] == "acme revenue FY2008 new: 32,479 M USD by acme 10-K, filed 2009-10-27"
    r = one(ms, second.run_id)
    assert r["change_kind"] == "restated" and r["run_id"] == second.run_id
    assert (r["old_value"], r["new_value"], r["change"]) == (32_479e6, 37_491e6, 5_012e6)
    assert r["change_pct"] == pytest.approx(5_012 / 32_479)
    assert (r["source"], r["source_ref"], str(r["reported_at"])) == ("acme 10-K/A", "us-gaap:Revenues", "2010-01-25")
    assert r["old_event_id"] == new["event_id"] and r["event_id"] == r["by_event_id"] != r["old_event_id"]
    assert r["summary"] == ("acme revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) "
                            "by acme 10-K/A, filed 2010-01-25")
    # the events it names are the store's: the old one no longer current, the new one current
    cur = ms.sql("SELECT event_id FROM facts WHERE entity = 'acme'")["event_id"].to_list()
    assert cur == [r["event_id"]]


def test_a_change_under_a_tenth_of_a_percent_keeps_two_significant_digits(ingest_rows: Ingest,
                                                                           ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2007", value="3496", reported_at="2009-10-27", source="acme 10-K")])
    r = one(ms, ingest_rows([fact(period="FY2007", value="3495", reported_at="2010-01-25", source="acme 10-K/A")]).run_id)
    assert r["summary"] == "acme revenue FY2007 restated -0.029 % (3,496 -> 3,495 M USD) by acme 10-K/A, filed 2010-01-25"


def test_a_repeated_value_or_an_older_filing_changes_nothing(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", reported_at="2025-02-01")])
    same = ingest_rows([fact(value="100", reported_at="2026-02-01", source="acme-10k-2025")])   # a comparative
    older = ingest_rows([fact(value="90", reported_at="2025-01-15", source="acme-prelim")])     # loses to the current
    assert feed(ms, run=same.run_id) == [] and feed(ms, run=older.run_id) == []
    assert [r["change_kind"] for r in feed(ms)] == ["new"]


def test_the_feed_picks_the_current_value_by_the_facts_views_rule(ingest_rows: Ingest, ms: MetricStore) -> None:
    """The feed writes the precedence rule again (its winners before and after a run): after each run,
    its last new value is the facts view's value, through each branch (authority, approx, filing date)."""
    steps = [  # (the run's row, the kinds of change it makes)
        (fact(value="100", reported_at="2025-02-01", source="wire", authority="secondary"), ["new"]),
        (fact(value="110", reported_at="2025-01-15", source="acme-10k"), ["restated"]),        # primary wins
        (fact(value="120", reported_at="2026-02-01", source="blog", authority="secondary"), []),  # loses to primary
        (fact(value="130", reported_at="2026-02-01", source="acme-call", qualifier="approx"), []),  # exact wins
        (fact(value="125", reported_at="2026-02-01", source="acme-10k/a"), ["restated"]),     # later filing wins
    ]
    for row, kinds in steps:
        run = ingest_rows([row])
        assert [r["change_kind"] for r in feed(ms, run=run.run_id)] == kinds, row
        last = feed(ms)[-1]
        current = ms.sql("SELECT value, event_id FROM facts WHERE entity = 'acme'").to_dicts()
        assert [c["value"] for c in current] == [last["new_value"]], row
        if kinds:   # (a run that changes nothing may still make a repeated value's event the current one)
            assert last["event_id"] == current[0]["event_id"]


def test_guidance_revised_and_its_range(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2025", kind="guidance", value="30", value_high="33", unit="weeks",
                      reported_at="2025-01-10", source="acme-call-q4")])
    run = ingest_rows([fact(period="FY2025", kind="guidance", value="31", value_high="34", unit="weeks",
                            reported_at="2025-04-10", source="acme-call-q1")])
    r = one(ms, run.run_id)
    assert (r["change_kind"], r["kind"], r["old_value_high"], r["new_value_high"]) == ("revised", "guidance", 33, 34)
    assert r["summary"] == ("acme revenue FY2025 guidance revised +3.3 % (30 to 33 -> 31 to 34 weeks) "
                            "by acme-call-q1, filed 2025-04-10")
    target = ingest_rows([fact(period="FY2030", kind="target", value="0.2", unit="ratio", metric="margin",
                               reported_at="2025-01-10")])
    moved = ingest_rows([fact(period="FY2030", kind="target", value="0.25", unit="ratio", metric="margin",
                              reported_at="2025-06-10", source="acme-investor-day")])
    assert one(ms, target.run_id)["change_kind"] == "new"
    r = one(ms, moved.run_id)
    assert r["change_kind"] == "revised" and r["change_pct"] is None       # a ratio moves in points
    assert "revised +5.0 pp (20 -> 25 %)" in r["summary"]


def test_a_retraction_of_the_whole_fact_and_a_withdrawal_of_one_event(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(period="FY2023", value="80"), fact(period="FY2024", value="100")])
    run = ingest_rows([fact(period="FY2024", op="retract", value="", reported_at="2025-03-01",
                            source="acme-retraction")])
    r = one(ms, run.run_id)
    assert (r["change_kind"], r["old_value"], r["new_value"], r["event_id"]) == ("retracted", 100e6, None, None)
    assert r["by_event_id"] == event_id(ms, period="FY2024", op="retract")
    assert r["summary"] == "acme revenue FY2024 retracted (was 100 M USD) by acme-retraction, filed 2025-03-01"
    wrong = event_id(ms, period="FY2023")
    withdrawn = ingest_rows([fact(period="FY2023", op="retract", value="", supersedes=wrong, reported_at="2025-03-02",
                                  source="acme-erratum")])
    r = one(ms, withdrawn.run_id)
    assert (r["change_kind"], r["old_event_id"], r["source"]) == ("retracted", wrong, "acme-erratum")
    assert r["by_event_id"] == event_id(ms, period="FY2023", op="retract")


def test_a_correction_naming_the_event_it_replaces_is_a_restatement(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", reported_at="2025-02-01")])
    wrong = event_id(ms, period="FY2024")
    run = ingest_rows([fact(value="110", reported_at="2025-01-20", source="acme-erratum", supersedes=wrong)])
    r = one(ms, run.run_id)   # published earlier than the figure it corrects, and still the current one
    assert (r["change_kind"], r["old_value"], r["new_value"], r["old_event_id"]) == ("restated", 100e6, 110e6, wrong)


def test_an_approximate_figure_replaced_by_an_exact_one(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows([fact(metric="deliveries", period="2024Q4", value="1.8", unit="m units", qualifier="approx",
                      reported_at="2025-01-02", source="acme-pr")])
    run = ingest_rows([fact(metric="deliveries", period="2024Q4", value="1795000", unit="units",
                            reported_at="2025-01-29", source="acme-10k")])
    r = one(ms, run.run_id)
    assert (r["change_kind"], r["old_qualifier"], r["new_qualifier"]) == ("approx_to_exact", "approx", "exact")
    assert r["summary"] == ("acme deliveries 2024Q4 made exact -0.3 % (about 1.8 -> 1.795 M units) "
                            "by acme-10k, filed 2025-01-29")


def split_rows(eps: tuple[str, str], shares: tuple[str, str], reported_at: str, source: str) -> list[dict[str, object]]:
    return [fact(metric="eps_basic", period="FY2023", value=eps[0], unit="USD/share", reported_at=reported_at, source=source),
            fact(metric="eps_basic", period="FY2024", value=eps[1], unit="USD/share", reported_at=reported_at, source=source),
            fact(metric="weighted_shares", period="FY2024", value=shares[0], unit="shares", reported_at=reported_at,
                 source=source),
            fact(metric="shares_outstanding", period="2024-12-31", value=shares[1], unit="shares",
                 reported_at=reported_at, source=source)]


def test_a_stock_split_is_a_split_adjustment_not_a_restatement(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows(split_rows(("40.03", "44.64"), ("899213000", "861381000"), "2025-02-01", "acme 10-K 2024"))
    run = ingest_rows([*split_rows(("5.72", "6.38"), ("6294491000", "6029667000"), "2026-02-01", "acme 10-K 2025"),
                       fact(period="FY2024", value="100", reported_at="2025-02-01"),
                       fact(metric="net_income", period="FY2024", value="5", reported_at="2026-02-01")])
    rows = {r["metric"] + " " + r["period"]: r for r in feed(ms, run=run.run_id)}
    split = [k for k, r in rows.items() if r["change_kind"] == "split_adjusted"]
    assert sorted(split) == ["eps_basic FY2023", "eps_basic FY2024", "shares_outstanding 2024-12-31",
                             "weighted_shares FY2024"]
    assert {rows[k]["split_ratio"] for k in split} == {7.0}
    assert rows["eps_basic FY2023"]["summary"] == ("acme eps_basic FY2023 split-adjusted 7-for-1 "
                                                   "(40.03 -> 5.72 USD/share) by acme 10-K 2025, filed 2026-02-01")
    assert feed(ms, kind="restated") == []
    # a per-share figure restated alone, by no split ratio, is a restatement
    again = ingest_rows([fact(metric="eps_basic", period="FY2024", value="6.01", unit="USD/share",
                              reported_at="2026-06-01", source="acme 10-K/A")])
    assert one(ms, again.run_id)["change_kind"] == "restated"


def test_a_per_share_figure_moving_by_a_ratio_with_no_share_count_is_not_a_split(ingest_rows: Ingest,
                                                                                  ms: MetricStore) -> None:
    ingest_rows(split_rows(("4.00", "2.00"), ("100", "100"), "2025-02-01", "a")[:2])
    run = ingest_rows(split_rows(("2.00", "1.00"), ("100", "100"), "2026-02-01", "b")[:2])
    assert {r["change_kind"] for r in feed(ms, run=run.run_id)} == {"restated"}


def test_a_reverse_split(ingest_rows: Ingest, ms: MetricStore) -> None:
    ingest_rows(split_rows(("0.12", "0.15"), ("5000000000", "5100000000"), "2025-02-01", "a"))
    run = ingest_rows(split_rows(("1.2", "1.5"), ("500000000", "510000000"), "2026-02-01", "b"))
    rows = feed(ms, run=run.run_id)
    assert {r["change_kind"] for r in rows} == {"split_adjusted"} and {r["split_ratio"] for r in rows} == {0.1}
    assert "split-adjusted 1-for-10" in rows[0]["summary"]


def test_since_a_date_or_a_run_entity_and_kind(ingest_rows: Ingest, ms: MetricStore, store: Store) -> None:
    a = ingest_rows([fact(value="100"), fact(entity="beta", value="7")])
    b = ingest_rows([fact(value="120", reported_at="2025-06-01", source="acme-10k/a")])
    c = ingest_rows([fact(entity="beta", value="8", reported_at="2025-06-01", source="beta-10k/a")])
    assert [r["run_id"] for r in feed(ms)] == [a.run_id, a.run_id, b.run_id, c.run_id]
    assert [r["run_id"] for r in feed(ms, since=b.run_id)] == [b.run_id, c.run_id]
    assert [r["run_id"] for r in feed(ms, since="2000-01-01")] == [a.run_id, a.run_id, b.run_id, c.run_id]
    assert feed(ms, since="2999-01-01") == []
    assert [r["entity"] for r in feed(ms, entity="BETA")] == ["beta", "beta"]
    assert [r["run_id"] for r in feed(ms, kind="restated", entity="acme")] == [b.run_id]
    assert len(feed(ms, kind="new,restated")) == 4 and len(feed(ms, kind=["restated"])) == 2
    with pytest.raises(BadArgument, match="is not a kind of change"):
        ms.changes(kind="restatement")
    with pytest.raises(BadArgument, match="neither a date"):
        ms.changes(since="no-such-run")
    # as the store knew it after the second run: the third is not in the feed yet
    after_b = ms.sql("SELECT max(recorded_at) AS t FROM events WHERE run_id = ?", [b.run_id])["t"][0]
    assert [r["run_id"] for r in feed(ms, as_recorded=after_b)] == [a.run_id, a.run_id, b.run_id]
    # the SQL view is the same feed
    assert ms.sql("SELECT count(*) AS n FROM changes")["n"][0] == 4


def test_the_command_line(ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(value="100")])
    b = ingest_rows([fact(value="120", reported_at="2025-06-01", source="acme-10k/a")])
    done = run_cli("changes", "--since", b.run_id, "--kind", "restated", "--format", "json", store=Path(str(store.root)))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["change_kind"], r["run_id"], r["old_value"], r["new_value"]) for r in rows] == [
        ("restated", b.run_id, 100e6, 120e6)]
    table = run_cli("changes", "--entity", "acme", store=Path(str(store.root)))
    assert table.returncode == 0 and "restated +20.0 %" in table.stdout and "new: 100 M USD" in table.stdout
    bad = run_cli("changes", "--kind", "bogus", store=Path(str(store.root)))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a kind of change" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_events_written_without_a_run_are_grouped_by_commit(store: Store, ms: MetricStore) -> None:
    def batch(value: float, reported: str) -> pa.Table:
        return pa.table({"entity": ["acme"], "metric": ["revenue"], "period_start": [dt.date(2024, 1, 1)],
                         "period_end": [dt.date(2024, 12, 31)], "value": [value], "unit": ["USD"],
                         "reported_at": [dt.date.fromisoformat(reported)], "source": [f"acme {reported}"]})

    first = store.append(batch(100.0, "2025-02-01"))
    second = store.append(batch(90.0, "2025-03-01"))
    rows = feed(ms)
    assert [(r["run_id"], r["change_kind"], r["job"]) for r in rows] == [
        (first.commit_id, "new", None), (second.commit_id, "restated", None)]
    assert [r["run_id"] for r in feed(ms, since=second.commit_id)] == [second.commit_id]


def test_a_withdrawal_filed_under_another_entity_is_in_the_entitys_feed(store: Store, ms: MetricStore) -> None:
    # ingest refuses such a row (supersedes must name an event of its own fact); the log and the views
    # still honour one written straight to the store, as the current view does
    def row(entity: str, **kw: object) -> pa.Table:
        base: dict[str, object] = {"entity": entity, "metric": "revenue", "period_start": dt.date(2024, 1, 1),
                                   "period_end": dt.date(2024, 12, 31), "value": 100.0, "unit": "USD",
                                   "reported_at": dt.date(2025, 2, 1), "source": f"{entity} filing"}
        base.update(kw)
        return pa.table({k: [v] for k, v in base.items()})

    store.append(row("acme"))
    wrong = event_id(ms, entity="acme")
    withdrawal = store.append(row("beta", op="retract", value=None, supersedes=wrong, reported_at=dt.date(2025, 3, 1),
                                  source="beta erratum"))
    rows = feed(ms, entity="acme", kind="retracted")
    assert [(r["run_id"], r["source"], r["old_event_id"], r["period"]) for r in rows] == [
        (withdrawal.commit_id, "beta erratum", wrong, "FY2024")]
    assert ms.sql("SELECT count(*) AS n FROM facts WHERE entity = 'acme'")["n"][0] == 0
    assert feed(ms, run=withdrawal.commit_id) == rows      # one run's changes, read narrowed to its entities
