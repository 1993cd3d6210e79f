"""Each layer's public face is pinned: a change to it is a deliberate act."""

from __future__ import annotations

import importlib

import pytest

#: each package's exact ``__all__``: adding or removing a name fails here until this list says so
PUBLIC = {
    "store": {"ENTITY_SCHEMA", "EVENT_SCHEMA", "METRIC_SCHEMA", "SCHEMA_VERSION", "TABLES", "AppendResult",
              "Authority", "CorruptFile", "Kind", "MetricEvent", "MetricStoreError", "Op", "Period", "Qualifier",
              "SchemaMismatch", "Store", "StoreBusy", "StoreError", "StoreNotFound", "StorePathRefused", "TerminalError",
              "TransientError", "content_ids", "label_period", "parse_period"},
    "ingest": {"READERS", "BadFile", "Batch", "BatchRejected", "Catalog", "CatalogError", "EntityDef", "FileReport",
               "IngestError", "Mapping", "MetricDef", "RowProblem", "RunLog", "RunOutcome", "RunReport", "Settings",
               "Unit", "canonical_dims", "detect_format", "infer_aggregation", "ingest_recorded", "ingest_file",
               "ingest_paths", "load_mapping", "mapped_format", "new_run_id", "normalise", "parse_unit", "register",
               "set_entity"},
    "queries": {"VIEWS", "BadArgument", "MetricStore", "QueryError", "SqlError", "define_metric", "install",
                "sql_sources", "write_catalog"},
    "metricstore": {"__version__"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__)), "a name listed twice"
    assert set(mod.__all__) == PUBLIC[module]
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)  # noqa: S102  (every listed name resolves)
    assert set(PUBLIC[module]) <= set(namespace), set(PUBLIC[module]) - set(namespace)
    for name in PUBLIC[module]:
        assert getattr(mod, name) is namespace[name], name


def test_layers_import_one_way() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for layer, forbidden in (("store", {"ingest", "queries", "metricstore"}), ("queries", {"ingest", "metricstore"}),
                             ("ingest", {"queries", "metricstore"})):
        for path in (root / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for n in names:
                    assert n.split(".")[0] not in forbidden, f"{path} imports {n}"
