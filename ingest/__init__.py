"""Write side: readers for input files, validation and normalisation, ingest runs."""

from __future__ import annotations

from ingest.canonical import canonical_dims, normalise
from ingest.catalog import Catalog, EntityDef, MetricDef, infer_aggregation
from ingest.config import Settings
from ingest.errors import BadFile, BatchRejected, CatalogError, IngestError, RowProblem
from ingest.pipeline import ingest_file, ingest_paths
from ingest.records import set_entity
from ingest.reports import FileReport, RunReport, new_run_id
from ingest.readers import READERS, Batch, detect_format, register
from ingest import sec as _sec  # noqa: E402,F401  (registers the sec-companyfacts reader)
from ingest import fsds as _fsds  # noqa: E402,F401  (registers the sec-fsds reader)
from ingest import ecb as _ecb  # noqa: E402,F401  (registers the ecb reader)
from ingest.mapped import Mapping, load_mapping, mapped_format
from ingest.runs import RunLog, RunOutcome, ingest_recorded
from ingest.units import Unit, parse_unit

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
