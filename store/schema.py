"""The metric event: its pydantic model, its Arrow schema and its content-derived id.

A metric event is one reported figure. The pydantic model validates single events and is the
definition of the schema; bulk appends use :data:`EVENT_SCHEMA` over whole Arrow columns and
never build a model per row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from store.rules import DEFAULTS, ENUMS, Authority, Kind, Op, Qualifier, row_violation

SCHEMA_VERSION = 1


class MetricEvent(BaseModel):
    """One immutable metric event, as stored.

    Example:
        >>> e = MetricEvent(entity="xiaomi", metric="revenue", period_start=dt.date(2024, 1, 1),
        ...     period_end=dt.date(2024, 12, 31), value=365906.4e6, unit="CNY",
        ...     reported_at=dt.date(2025, 3, 18), source="xiaomi-annual-results-2024")
        >>> e.segment, e.kind, e.qualifier
        ('total', <Kind.ACTUAL: 'actual'>, <Qualifier.EXACT: 'exact'>)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    event_id: str | None = None
    op: Op = Op.ASSERT
    entity: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    segment: str = "total"
    dims: str = ""
    period_start: dt.date
    period_end: dt.date
    value: float | None = None
    value_high: float | None = None
    unit: str = Field(min_length=1)
    kind: Kind = Kind.ACTUAL
    qualifier: Qualifier = Qualifier.EXACT
    authority: Authority = Authority.PRIMARY
    reported_at: dt.date
    recorded_at: dt.datetime | None = None
    source: str = Field(min_length=1)
    source_ref: str | None = None
    as_reported: str | None = None
    note: str | None = None
    supersedes: str | None = None
    run_id: str | None = None
    commit_id: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricEvent:
        broken = row_violation(self.__dict__)     # (store.rules: the one place the rules live)
        if broken is not None:
            raise ValueError(f"{broken.column}: {broken.reason}")
        return self

    def to_row(self) -> dict[str, Any]:
        """The event as a dict of the stored columns (no schema_version: it lives in file metadata)."""
        row = self.model_dump(mode="python", exclude={"schema_version"})
        for key in ("op", "kind", "qualifier", "authority"):
            row[key] = str(row[key])
        return row


#: The stored columns, in order. ``schema_version`` is kept in each file's metadata.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("op", pa.string(), nullable=False),
        pa.field("entity", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("segment", pa.string(), nullable=False),
        pa.field("dims", pa.string(), nullable=False),
        pa.field("period_start", pa.date32(), nullable=False),
        pa.field("period_end", pa.date32(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("value_high", pa.float64()),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("qualifier", pa.string(), nullable=False),
        pa.field("authority", pa.string(), nullable=False),
        pa.field("reported_at", pa.date32(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_ref", pa.string()),
        pa.field("as_reported", pa.string()),
        pa.field("note", pa.string()),
        pa.field("supersedes", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("commit_id", pa.string(), nullable=False),
    ]
)

#: Columns a batch handed to ``append`` must carry; the store fills the rest.
REQUIRED_INPUT = ("entity", "metric", "period_start", "period_end", "unit", "reported_at", "source")

#: Columns the store sets at commit; an input batch may not carry them.
STORE_SET = ("event_id", "recorded_at", "commit_id")

#: The columns whose content defines an event, in the order they are hashed into ``event_id``.
#: ``recorded_at``, ``commit_id``, ``run_id``, ``as_reported`` and ``note`` are not part of it:
#: the same fact from the same source is the same event whoever ingests it, and whenever.
IDENTITY_COLUMNS = (
    "op", "entity", "metric", "segment", "dims", "period_start", "period_end", "value",
    "value_high", "unit", "kind", "qualifier", "authority", "reported_at", "source",
    "source_ref", "supersedes",
)

__all__ = ["DEFAULTS", "ENTITY_SCHEMA", "ENUMS", "EVENT_SCHEMA", "IDENTITY_COLUMNS", "METRIC_SCHEMA",
           "REQUIRED_INPUT", "RUN_SCHEMA", "SCHEMA_VERSION", "STORE_SET", "TABLES", "Authority", "Kind",
           "MetricEvent", "Op", "Qualifier", "Table"]


#: Entities: one record per version of what the store knows about a company (latest wins).
ENTITY_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("entity", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("cik", pa.string()),
        pa.field("ticker", pa.string()),
        pa.field("fiscal_year_end_month", pa.int8()),
        pa.field("fiscal_year_end", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("commit_id", pa.string(), nullable=False),
    ]
)

#: Metrics: one record per version of a metric's definition (latest wins).
METRIC_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("aggregation", pa.string(), nullable=False),
        pa.field("description", pa.string()),
        pa.field("inferred", pa.bool_(), nullable=False),
        # a formula metric's expression and declared unit (queries/formulas.py); NULL for a stored metric
        pa.field("formula", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("commit_id", pa.string(), nullable=False),
    ]
)

#: The ingest run log: two records a run, ``running`` then its outcome (see ``ingest.runs``).
RUN_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("trigger", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("started", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("finished", pa.timestamp("us", tz="UTC")),
        pa.field("inputs", pa.list_(pa.string())),
        pa.field("inputs_read", pa.int64()),
        pa.field("added", pa.int64()),
        pa.field("already_present", pa.int64()),
        pa.field("rejected", pa.int64()),
        pa.field("unchanged", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("notified", pa.string()),   # what the run's notification did (ingest.notify), if any
        pa.field("host", pa.string()),
        pa.field("pid", pa.int64()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("commit_id", pa.string(), nullable=False),
    ]
)


class Table(NamedTuple):
    """One append-only log of a store: its schema, its id column, and the columns hashed into the id."""

    schema: pa.Schema
    id_column: str
    identity: tuple[str, ...]


#: Every log a store holds, declared here (``Store.create`` makes a folder and an empty file each).
TABLES: dict[str, Table] = {
    "events": Table(EVENT_SCHEMA, "event_id", IDENTITY_COLUMNS),
    "entities": Table(ENTITY_SCHEMA, "record_id",
                      ("entity", "name", "cik", "ticker", "fiscal_year_end_month", "fiscal_year_end", "source")),
    "metrics": Table(METRIC_SCHEMA, "record_id", ("metric", "aggregation", "description", "inferred", "formula", "unit")),
    "runs": Table(RUN_SCHEMA, "record_id", ("run_id", "status", "finished")),
}
