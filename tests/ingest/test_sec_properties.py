"""Property: whatever a companyfacts file holds (repeats, two values for one period in one filing,
concepts competing for one metric, odd units, periods not yet ended when filed), every row is one
event, nothing is rejected, and ingesting the file again adds nothing."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import Catalog, ingest_paths
from store import Store
from tests.conftest import CATALOG

CONCEPTS = [("us-gaap", "Revenues"), ("us-gaap", "SalesRevenueNet"), ("us-gaap", "Assets"),
            ("us-gaap", "SomethingUnmapped"), ("dei", "EntityCommonStockSharesOutstanding")]
UNITS = ["USD", "USD/shares", "shares", "pure", "Plaintiff", "CRC"]
ACCNS = ["0000000001-20-000001", "0000000001-20-000002", "0000000001-21-000001"]

fact = st.fixed_dictionaries({
    "concept": st.sampled_from(CONCEPTS),
    "unit": st.sampled_from(UNITS),
    "start": st.one_of(st.none(), st.sampled_from([dt.date(2019, 9, 29), dt.date(2020, 1, 1)]),
                       st.dates(dt.date(2019, 1, 1), dt.date(2020, 6, 30))),
    "days": st.sampled_from([0, 90, 181, 272, 363, 370]),
    "val": st.one_of(st.integers(-10**12, 10**12), st.sampled_from([1_234_567_000, 1_235_000_000, 0]),
                     st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 2))),
    "accn": st.sampled_from(ACCNS),
    "lag": st.integers(-30, 400),
})


def companyfacts(rows: list[dict[str, object]]) -> dict[str, object]:
    facts: dict[str, dict[str, dict[str, object]]] = {}
    for r in rows:
        tax, concept = r["concept"]  # type: ignore[misc]
        start = r["start"] or dt.date(2020, 3, 31)
        end = start + dt.timedelta(days=int(r["days"]) if r["start"] else 0)  # type: ignore[arg-type]
        filed = min(end + dt.timedelta(days=int(r["lag"])), dt.date(2024, 1, 1))  # type: ignore[arg-type]
        row = {"end": end.isoformat(), "val": r["val"], "accn": r["accn"], "fy": 2020, "fp": "FY",
               "form": "10-K", "filed": filed.isoformat()}
        if r["start"]:
            row["start"] = start.isoformat()
        body = facts.setdefault(tax, {}).setdefault(concept, {"label": concept, "units": {}})
        body["units"].setdefault(r["unit"], []).append(row)  # type: ignore[union-attr]
    return {"cik": 1, "entityName": "Property Co", "facts": facts}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fact, min_size=1, max_size=25).flatmap(lambda xs: st.just(xs + xs[: len(xs) // 3])))
def test_every_row_is_one_event_and_reingest_adds_nothing(rows: list[dict[str, object]]) -> None:
    catalog = Catalog.load(CATALOG)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "companyfacts.json"
        path.write_text(json.dumps(companyfacts(rows)))
        store = Store.create(Path(tmp) / "store")
        first = ingest_paths(store, [path], catalog=catalog)
        assert first.ok, [str(p) for f in first.files for p in f.problems][:3]
        assert first.added == len(rows)
        assert ingest_paths(store, [path], catalog=catalog).added == 0
