"""The event log: immutable metric events in Parquet, one atomic file per commit."""

from __future__ import annotations

from store.errors import (
    CorruptFile,
    MetricStoreError,
    SchemaMismatch,
    StoreBusy,
    StoreError,
    StoreNotFound,
    StorePathRefused,
    TerminalError,
    TransientError,
)
from store.ids import content_ids
from store.periods import Period, label_period, parse_period
from store.schema import (
    ENTITY_SCHEMA,
    EVENT_SCHEMA,
    METRIC_SCHEMA,
    SCHEMA_VERSION,
    Authority,
    Kind,
    MetricEvent,
    Op,
    Qualifier,
    TABLES,
)
from store.store import AppendResult, Store

__all__ = [
    "ENTITY_SCHEMA",
    "EVENT_SCHEMA",
    "METRIC_SCHEMA",
    "SCHEMA_VERSION",
    "TABLES",
    "AppendResult",
    "Authority",
    "CorruptFile",
    "Kind",
    "MetricEvent",
    "MetricStoreError",
    "Op",
    "Period",
    "Qualifier",
    "SchemaMismatch",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StorePathRefused",
    "TerminalError",
    "TransientError",
    "content_ids",
    "label_period",
    "parse_period",
]
