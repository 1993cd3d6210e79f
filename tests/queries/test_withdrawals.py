"""Which event withdrew a fact: ``history`` names it for each withdrawn version, and ``explain`` of
a fact with no current value says who withdrew it instead of only "no figure for this period"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from queries import BadArgument, MetricStore
from store import Store
from tests.conftest import fact, run_cli


def history_json(root: Path, *args: str) -> list[dict[str, object]]:
    r = run_cli("history", "acme", "revenue", "FY2024", *args, "--format", "json", store=root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def event_of(ms: MetricStore, source: str) -> str:
    return str(ms.sql("SELECT event_id FROM events WHERE source = ?", [source])["event_id"][0])


def test_a_retracted_version_names_the_retraction(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="acme-10k", reported_at="2025-02-01")])
    wrong = event_of(ms, "acme-10k")
    ingest_rows([fact(value="", op="retract", supersedes=wrong, source="acme-8k", reported_at="2025-03-05")])
    retraction = event_of(ms, "acme-8k")
    rows = {r["event_id"]: r for r in history_json(store.root)}
    assert rows[wrong]["is_current"] is False
    assert rows[wrong]["withdrawn_by"] == retraction
    assert rows[wrong]["withdrawal"].startswith(f"retracted by event {retraction} (a retraction filed as acme "
                                                "revenue FY2024, source acme-8k, reported 2025-03-05)")
    assert rows[retraction]["withdrawn_by"] is None
    # before the retraction was published, nothing had withdrawn it
    before = {r["event_id"]: r for r in history_json(store.root, "--as-of", "2025-03-01")}
    assert before[wrong]["withdrawn_by"] is None and before[wrong]["is_current"] is True

    r = run_cli("explain", "acme", "revenue", "FY2024", store=store.root)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "no acme revenue figure for this period: its value 100,000,000 USD" in r.stderr
    assert f"(event {wrong}) was retracted by event {retraction}" in r.stderr


def test_a_corrected_version_names_the_correction(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(value="120", source="acme-10k", reported_at="2025-03-01")])
    wrong = event_of(ms, "acme-10k")
    ingest_rows([fact(value="102", source="acme-10k/a", supersedes=wrong, reported_at="2025-03-02")])
    fixed = event_of(ms, "acme-10k/a")
    rows = {r["event_id"]: r for r in ms.history("acme", "revenue", "FY2024").to_dicts()}
    assert rows[wrong]["withdrawn_by"] == fixed and not rows[wrong]["is_current"]
    assert rows[wrong]["withdrawal"].startswith(f"corrected by event {fixed} (a correction filed as acme revenue FY2024")
    assert rows[fixed]["is_current"] and rows[fixed]["withdrawal"] is None
    assert ms.explain("acme", "revenue", "FY2024")["event_id"].to_list() == [fixed]


def test_a_fact_retracted_as_a_whole_says_so(ingest_rows, store: Store, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="acme-10k", reported_at="2025-02-01")])
    ingest_rows([fact(value="", op="retract", source="acme-8k", reported_at="2025-04-01")])
    retraction = event_of(ms, "acme-8k")
    with pytest.raises(BadArgument, match=f"the fact was retracted by event {retraction} "
                                          r"\(source acme-8k, reported 2025-04-01\)"):
        ms.explain("acme", "revenue", "FY2024")
    with pytest.raises(BadArgument, match="known periods include"):     # a period it never had
        ms.explain("acme", "revenue", "FY2019")
