"""Text keys typed in another Unicode form find the facts stored under them (queries.args.key_text)."""

from __future__ import annotations

import pytest

from queries import BadArgument, MetricStore
from tests.conftest import fact

NFC, NFD = "caf\u00e9", "cafe\u0301"


def test_every_filtered_read_normalises_its_keys(ingest_rows, ms: MetricStore) -> None:
    assert ingest_rows([fact(segment=NFC, period="FY2023", value="90"), fact(segment=NFC, value="100")]).ok
    assert ms.facts(segment=NFD).height == 2
    stored = ms.growth(segment=NFC)
    assert stored.height > 0
    assert ms.growth(segment=NFD).height == stored.height
    for basis in ("as_of", "latest", "first"):
        assert ms.growth(basis=basis, segment=NFD).height == stored.height, basis
    assert ms.series("acme", "revenue", NFD).height == ms.series("acme", "revenue", NFC).height > 0


def test_names_typed_in_capitals_find_what_ingest_stored_in_lower_case(ingest_rows, ms: MetricStore) -> None:
    # ingest stores entities, metrics and segments in lower case (a qualified metric name keeps
    # its case): every read takes a name as typed, so a ticker in capitals finds its company
    rows = [fact(entity="ACME", metric="Revenue", segment="Cloud", period="FY2023", value="90"),
            fact(entity="ACME", metric="Revenue", segment="Cloud", value="100"),
            fact(entity="acme", metric="us-gaap:Revenues", period="FY2023", value="80"),
            fact(entity="acme", metric="us-gaap:Revenues", value="88")]
    assert ingest_rows(rows).ok
    assert set(ms.facts()["entity"].to_list()) == {"acme"}
    lower = ms.series("acme", "revenue", "cloud")
    assert lower["value"].to_list() == [90e6, 100e6]
    assert ms.series("ACME", "REVENUE", "Cloud").equals(lower)
    assert ms.growth(entity="Acme", metric="Revenue", segment="CLOUD").height == ms.growth(segment="cloud").height > 0
    assert ms.facts(entity="ACME", metric="us-gaap:Revenues")["value"].to_list() == [80e6, 88e6]
    assert ms.series("Acme", "us-gaap:Revenues")["value"].to_list() == [80e6, 88e6]
    assert ms.history("ACME", "Revenue", "FY2024", "Cloud")["value"].to_list() == [100e6]
    assert ms.explain("AcMe", "REVENUE", "FY2024", "CLOUD").equals(ms.explain("acme", "revenue", "FY2024", "cloud"))
    assert ms.restatements("ACME", "REVENUE").equals(ms.restatements("acme", "revenue"))
    assert ms.compare("REVENUE", ["ACME"], segment="Cloud")["acme"].to_list() == [90e6, 100e6]


def test_a_fact_or_comparison_the_store_has_no_name_for_names_the_argument(ingest_rows, ms: MetricStore) -> None:
    assert ingest_rows([fact(period="FY2023", value="90"), fact(value="100")]).ok
    for ask, name, reason in (
            (lambda: ms.history("acmr", "revenue", "FY2024"), "entity", "is not in the store (did you mean acme?)"),
            (lambda: ms.explain("acme", "revenu", "FY2024"), "metric", "has no acme figures (did you mean revenue?)"),
            (lambda: ms.history("acme", "revenue", "FY2024", "cloud"), "segment",
             "has no acme revenue figures (segments: total)"),
            (lambda: ms.compare("revenue", ["acme", "acmr"]), "entity", "is not in the store (did you mean acme?)")):
        with pytest.raises(BadArgument) as raised:
            ask()
        assert (raised.value.name, raised.value.reason) == (name, reason)
    with pytest.raises(BadArgument) as raised:           # the names are there: the period is at fault
        ms.history("acme", "revenue", "FY2031")
    assert raised.value.name == "period" and "known periods include FY2024" in raised.value.reason
