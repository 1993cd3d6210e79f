"""Text keys typed in another Unicode form find the facts stored under them (queries.args.key_text)."""

from __future__ import annotations

from queries import MetricStore
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
