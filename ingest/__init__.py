"""Write side: readers for input files, validation and normalisation, ingest runs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.canonical import canonical_dims, normalise
    from ingest.catalog import Catalog, EntityDef, MetricDef, infer_aggregation
    from ingest.config import Settings
    from ingest.errors import BadFile, BatchRejected, CatalogError, IngestError, RowProblem
    from ingest.mapped import Mapping, load_mapping, mapped_format
    from ingest.pipeline import ingest_file, ingest_paths
    from ingest.readers import READERS, Batch, detect_format, register
    from ingest.records import set_entity
    from ingest.reports import FileReport, RunReport, new_run_id
    from ingest.runs import RunLog, RunOutcome, ingest_recorded
    from ingest.units import Unit, parse_unit

#: Where each public name lives. The package loads them when one is first asked for (with every
#: built-in reader): a submodule (``ingest.config`` for a command's settings) loads alone.
_HOME = {
    "canonical_dims": "canonical", "normalise": "canonical",
    "Catalog": "catalog", "EntityDef": "catalog", "MetricDef": "catalog", "infer_aggregation": "catalog",
    "Settings": "config",
    "BadFile": "errors", "BatchRejected": "errors", "CatalogError": "errors", "IngestError": "errors",
    "RowProblem": "errors",
    "Mapping": "mapped", "load_mapping": "mapped", "mapped_format": "mapped",
    "ingest_file": "pipeline", "ingest_paths": "pipeline",
    "READERS": "readers", "Batch": "readers", "detect_format": "readers", "register": "readers",
    "set_entity": "records",
    "FileReport": "reports", "RunReport": "reports", "new_run_id": "reports",
    "RunLog": "runs", "RunOutcome": "runs", "ingest_recorded": "runs",
    "Unit": "units", "parse_unit": "units",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    importlib.import_module("ingest.readers").formats()
    value = getattr(importlib.import_module(f"ingest.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "READERS",
    "BadFile",
    "Batch",
    "BatchRejected",
    "Catalog",
    "CatalogError",
    "EntityDef",
    "FileReport",
    "IngestError",
    "Mapping",
    "MetricDef",
    "RowProblem",
    "RunLog",
    "RunOutcome",
    "RunReport",
    "Settings",
    "Unit",
    "canonical_dims",
    "detect_format",
    "infer_aggregation",
    "ingest_recorded",
    "ingest_file",
    "ingest_paths",
    "load_mapping",
    "mapped_format",
    "new_run_id",
    "normalise",
    "parse_unit",
    "register",
    "set_entity",
]
