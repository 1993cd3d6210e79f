"""The stores the conversion and calendar tests read: the Xiaomi seed and a few hand-made rows."""

from __future__ import annotations

from pathlib import Path

from ingest import Catalog, ingest_paths
from store import Store
from tests.conftest import ROOT, write_csv

SEED = sorted((ROOT / "data" / "seed").glob("*.csv"))


def seeded_store(folder: Path, rows: list[dict[str, object]], name: str) -> Path:
    """A store in ``folder/store`` holding the Xiaomi seed and ``rows`` (written to ``folder/name``),
    every file ingested cleanly."""
    store = Store.create(folder / "store")
    extra = write_csv(folder / name, rows)
    report = ingest_paths(store, [*SEED, extra], catalog=Catalog.load(ROOT / "data" / "catalog"))
    assert all(f.ok for f in report.files), [f.error or f.problems for f in report.files]
    return folder / "store"
