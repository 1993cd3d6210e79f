"""What an ingest writes beside the events: entity and metric records, and the quarantine of
rejected rows; and what it reads back of them (each entity's fiscal year end)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa

from ingest.catalog import Catalog, EntityDef
from ingest.errors import IngestError, RowProblem
from store import METRIC_SCHEMA, TABLES, Store
from store.errors import clip
from store.rules import NAME, NAME_RULE


def entity_log(store: Store) -> pa.Table:
    """The store's entity records, oldest first (by ``recorded_at``, then ``record_id``): read in
    this order, the last record of an entity is its latest, as the ``entities`` view picks it."""
    return store.read("entities").sort_by([("recorded_at", "ascending"), ("record_id", "ascending")])


def fiscal_year_ends(store: Store, catalog: Catalog) -> dict[str, int]:
    """Fiscal year end month per entity: the store's latest record, else the catalog's."""
    fye = {e.entity: e.fiscal_year_end_month for e in catalog.entities.values()}
    table = entity_log(store)
    for entity, month in zip(table.column("entity").to_pylist(),
                             table.column("fiscal_year_end_month").to_pylist(), strict=True):
        if month:
            fye[entity] = int(month)
    return fye


def entity_records(store: Store, catalog: Catalog, entities: list[str],
                    given: list[EntityDef]) -> None:
    known = set(store.read("entities").column("entity").to_pylist())
    rows = [e for e in given]
    for name in entities:
        if name not in known and name in catalog.entities and all(g.entity != name for g in given):
            rows.append(catalog.entities[name])
    if not rows:
        return
    store.append(pa.table({
        "entity": [e.entity for e in rows],
        "name": [e.name for e in rows],
        "cik": [e.cik for e in rows],
        "ticker": [e.ticker for e in rows],
        "fiscal_year_end_month": pa.array([e.fiscal_year_end_month for e in rows], pa.int8()),
        "fiscal_year_end": [e.fiscal_year_end for e in rows],
        "source": ["catalog" if e in catalog.entities.values() else "ingest" for e in rows],
    }), table="entities")


def set_entity(store: Store, entity: EntityDef, *, source: str = "user") -> bool:
    """Record what the store knows of an entity (name, identifiers, fiscal year end).

    The latest record wins in the ``entities`` view; set the fiscal year end before ingesting
    figures labelled on that calendar (``FY2024`` is parsed with it).

    Returns:
        True when a new record was written, False when the store already held exactly this one.

    Raises:
        IngestError: the id is not a valid name (the rule ingest checks rows against).
    """
    if not re.fullmatch(NAME, entity.entity):
        raise IngestError(f"entity {clip(entity.entity)!r} {NAME_RULE}")
    result = store.append(pa.table({
        "entity": [entity.entity], "name": [entity.name], "cik": [entity.cik], "ticker": [entity.ticker],
        "fiscal_year_end_month": pa.array([entity.fiscal_year_end_month], pa.int8()),
        "fiscal_year_end": pa.array([None], pa.string()), "source": [source],
    }), table="entities")
    return result.added > 0


def metric_records(store: Store, catalog: Catalog, metrics: list[str], inferred: dict[str, str]) -> None:
    """Record the definition of each metric the store has none of, and a new one where the
    catalog now defines a metric otherwise than the store's latest record (a corrected
    aggregation takes effect from the next ingest; the old record stays in the log). The
    catalog's formula metrics the store has no record of are recorded too (a formula defined
    with ``metricstore metric`` is never overridden by the catalog)."""
    held = cast(pl.DataFrame, pl.from_arrow(store.read("metrics")))
    known = _latest_of(held, list(catalog.metrics))
    stored = set(held.filter(pl.col("metric").is_in(list(inferred)))["metric"].to_list())   # of the inferred
    rows: list[tuple[str, str, str | None, bool, str | None, str | None]] = []
    formulas = [m for m, d in catalog.metrics.items() if d.formula and m not in known and m not in metrics]
    for m in [*metrics, *formulas]:
        if m in catalog.metrics:
            d = catalog.metrics[m]
            if known.get(m) != (d.aggregation, d.description, False, d.formula, d.unit):
                rows.append((m, d.aggregation, d.description, False, d.formula, d.unit))
        elif m in inferred and m not in stored:
            rows.append((m, inferred[m], None, True, None, None))
    if rows:
        fields = TABLES["metrics"].identity       # a record's own columns, in the order of the tuples
        store.append(pa.Table.from_pylist([dict(zip(fields, r, strict=True)) for r in rows],
                                          schema=pa.schema([METRIC_SCHEMA.field(f) for f in fields])), table="metrics")


def _latest_of(held: pl.DataFrame, metrics: list[str]) -> dict[str, tuple[object, ...]]:
    """The latest record of each of ``metrics`` the store holds, as (aggregation, description,
    inferred, formula, unit); only these are read into Python (a speed-up: a store of the SEC's
    data sets holds hundreds of thousands of concept metrics' records)."""
    rows = held.filter(pl.col("metric").is_in(metrics)).sort("recorded_at", "record_id")
    return {r["metric"]: (r["aggregation"], r["description"], r["inferred"], r.get("formula"), r.get("unit"))
            for r in rows.iter_rows(named=True)}


def quarantine(store: Store, raw: pl.DataFrame, problems: list[RowProblem], run_id: str, path: Path) -> Path:
    """Write the rejected rows, as read, with their reasons, inside the store."""
    folder = store.root / "quarantine"
    folder.mkdir(exist_ok=True)
    reasons = (pl.DataFrame({"__row": [p.row for p in problems],
                             "_problem": [f"{p.column}: {p.reason}" for p in problems]})
               .group_by("__row", maintain_order=True).agg(pl.col("_problem").str.join("; ")))
    out = raw.join(reasons, on="__row", how="inner").rename({"__row": "_row"})
    target = folder / f"{run_id}-{path.name}.rejected.csv"
    out.write_csv(target)
    return cast(Path, target)   # on an object store, an ObjectPath (its URI), answering as a Path
