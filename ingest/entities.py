"""An entity's record: what the store knows of it, and recording a change to it by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from ingest.catalog import EntityDef
from ingest.records import set_entity
from store import Store

#: The columns of the ``entities`` view, in its order.
ENTITY_COLUMNS = ("entity", "name", "cik", "ticker", "fiscal_year_end_month", "fiscal_year_end", "source",
                  "recorded_at")


@dataclass(frozen=True)
class EntityUpdate:
    """What :func:`update_entity` found and did."""

    record: dict[str, Any] | None   # the entity as the store knows it afterwards (None: unknown to it)
    recorded: bool | None           # True: a new record written; False: the store held it already; None: nothing to record


def current_entity(store: Store, entity: str) -> dict[str, Any] | None:
    """The store's latest record of ``entity`` (the ``entities`` view's row), or None."""
    table = store.read("entities")
    rows = table.filter(pc.equal(table["entity"], entity)).to_pylist()
    if not rows:
        return None
    latest = max(rows, key=lambda r: (r["recorded_at"], r["record_id"]))
    record = {c: latest.get(c) for c in ENTITY_COLUMNS}
    record["fiscal_year_end_month"] = record["fiscal_year_end_month"] or 12
    return record


def update_entity(store: Store, entity: str, *, name: str | None = None, ticker: str | None = None,
                  cik: str | None = None, fiscal_year_end_month: int | None = None) -> EntityUpdate:
    """Record what is given of ``entity`` (the rest kept from its current record); nothing given
    only looks it up. Set the fiscal year end before ingesting figures labelled on that calendar."""
    entity = entity.lower()
    current = current_entity(store, entity)
    if all(v is None for v in (name, ticker, cik, fiscal_year_end_month)):
        return EntityUpdate(current, None)
    row = current or {}
    recorded = set_entity(store, EntityDef(
        entity, name or row.get("name"), ticker or row.get("ticker"), cik or row.get("cik"),
        fiscal_year_end_month or row.get("fiscal_year_end_month") or 12))
    return EntityUpdate(current_entity(store, entity), recorded)
