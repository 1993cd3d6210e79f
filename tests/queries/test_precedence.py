"""Which event is current: each branch of the precedence rule, point in time, retractions."""

from __future__ import annotations

import pytest

from queries import MetricStore
from tests.conftest import fact


def current(ms: MetricStore, **kw: str) -> list[tuple[object, ...]]:
    df = ms.facts(**kw)
    return list(zip(df["period"], df["value"], df["source"], strict=True))


def test_higher_authority_wins_over_later_secondary(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="365906.4", unit="CNY m", reported_at="2025-03-18", source="co-results"),
                 fact(value="365.9", unit="CNY bn", reported_at="2025-03-19", source="article-x")])
    assert current(ms) == [("FY2024", 365906.4e6, "co-results")]


def test_declared_authority_column_overrides_the_catalog(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="co", reported_at="2025-03-18", authority="secondary"),
                 fact(value="101", source="blog", reported_at="2025-03-17", authority="primary")])
    assert current(ms) == [("FY2024", 101e6, "blog")]


def test_restatement_by_the_company_wins(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="10-K 2024", reported_at="2025-02-01"),
                 fact(value="104", source="10-K/A 2024", reported_at="2025-06-01")])
    assert current(ms) == [("FY2024", 104e6, "10-K/A 2024")]
    assert current(ms.__class__(ms.store), ) == [("FY2024", 104e6, "10-K/A 2024")]
    df = ms.facts(as_of="2025-05-31")
    assert df["value"].to_list() == [100e6]


def test_approx_never_hides_exact_of_equal_authority(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01"),
                 fact(value="110", qualifier="approx", source="b", reported_at="2025-03-01")])
    assert current(ms) == [("FY2024", 100e6, "a")]


def test_approx_of_higher_authority_beats_exact_of_lower(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="article-a", reported_at="2025-03-01"),
                 fact(value="110", qualifier="approx", source="co", reported_at="2025-02-01")])
    assert current(ms) == [("FY2024", 110e6, "co")]


def test_later_publication_wins_at_equal_authority(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01"),
                 fact(value="100.5", source="b", reported_at="2025-02-02")])
    assert current(ms) == [("FY2024", 100.5e6, "b")]


def test_recording_time_breaks_a_tie_of_publication(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01")])
    ingest_rows([fact(value="101", source="b", reported_at="2025-02-01")])
    assert current(ms) == [("FY2024", 101e6, "b")]


def test_as_recorded_reproduces_what_the_store_answered(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01")])
    t1 = ms.sql("SELECT max(recorded_at) AS t FROM events")["t"][0]
    ingest_rows([fact(value="101", source="b", reported_at="2025-02-01")])
    assert ms.facts(as_recorded=t1)["value"].to_list() == [100e6]
    assert ms.facts()["value"].to_list() == [101e6]


def test_winning_retract_hides_the_fact(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01")])
    ingest_rows([fact(value="", op="retract", source="a", reported_at="2025-04-01")])
    assert current(ms) == []
    assert current(ms.__class__(ms.store)) == []
    assert ms.facts(as_of="2025-03-01")["value"].to_list() == [100e6]


def test_retract_naming_an_event_withdraws_only_that_event(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", source="a", reported_at="2025-02-01"),
                 fact(value="120", source="b", reported_at="2025-03-01")])
    wrong = ms.sql("SELECT event_id FROM events WHERE source = 'b'")["event_id"][0]
    ingest_rows([fact(value="", op="retract", supersedes=wrong, source="b", reported_at="2025-03-05")])
    assert current(ms) == [("FY2024", 100e6, "a")]


def test_correction_superseding_an_event(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="120", source="b", reported_at="2025-03-01")])
    wrong = ms.sql("SELECT event_id FROM events")["event_id"][0]
    ingest_rows([fact(value="102", source="b", supersedes=wrong, reported_at="2025-03-01")])
    assert current(ms) == [("FY2024", 102e6, "b")]


def test_as_of_sees_nothing_before_publication(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", reported_at="2025-02-01")])
    assert ms.facts(as_of="2025-01-31").height == 0
    assert ms.facts(as_of="2025-02-01").height == 1


def test_same_fact_in_two_units_are_two_facts(ingest_rows, ms: MetricStore) -> None:
    ingest_rows([fact(value="100", unit="USD m"), fact(value="700", unit="CNY m", source="other")])
    assert sorted(ms.facts()["unit"].to_list()) == ["CNY", "USD"]


@pytest.mark.parametrize("as_of", ["not-a-date", "2025-13-01"])
def test_bad_as_of_is_a_clear_error(ms: MetricStore, as_of: str) -> None:
    from queries import BadArgument

    with pytest.raises(BadArgument, match="as_of"):
        ms.facts(as_of=as_of)
