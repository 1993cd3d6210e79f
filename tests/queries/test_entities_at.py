"""as_recorded reproduces an answer exactly, fiscal calendar included: period labels at system
time T use the entity records the store held at T, not a later change of fiscal year end."""

from __future__ import annotations

from ingest import EntityDef, set_entity
from queries import MetricStore
from store import Store
from tests.conftest import fact


def test_labels_as_recorded_use_the_calendar_known_then(ingest_rows, store: Store, ms: MetricStore) -> None:
    row = fact(period=None, period_start="2023-10-01", period_end="2024-09-30", reported_at="2024-11-01")
    assert ingest_rows([row]).ok
    t1 = ms.sql("SELECT max(recorded_at) AS t FROM events")["t"][0]
    assert set_entity(store, EntityDef("acme", "Acme", None, None, 9))
    assert ms.sql("SELECT period FROM facts")["period"].to_list() == ["FY2024"]
    then = ms.sql("SELECT period FROM facts", as_recorded=t1)["period"].to_list()
    assert then == ["2023-10-01/2024-09-30"]
    # acme is not in the catalog: at t1 the store held no record of it (labels fell back to December)
    assert ms.sql("SELECT fiscal_year_end_month AS m FROM entities", as_recorded=t1)["m"].to_list() == []
    assert ms.sql("SELECT fiscal_year_end_month AS m FROM entities")["m"].to_list() == [9]
