"""A small store for the chart tests: a restated year, an approximate one, quarters with a derived
Q4, guidance, and peers in the same and in another currency."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from store import Store
from tests.conftest import CATALOG, fact, write_csv


def rows() -> list[dict[str, object]]:
    acme = [
        fact(period="FY2021", value="90", qualifier="approx", reported_at="2022-02-01", source="acme-2021"),
        fact(period="FY2022", value="100", reported_at="2023-02-01", source="acme-2022"),
        fact(period="FY2023", value="120", reported_at="2024-02-01", source="acme-2023"),
        fact(period="FY2023", value="126", reported_at="2024-06-01", source="acme-2023-amended"),
        fact(period="FY2024", value="150", reported_at="2025-02-01", source="acme-2024"),
        fact(period="FY2025", value="180", kind="guidance", reported_at="2025-02-01", source="acme-2024"),
    ]
    quarters = [fact(period=p, value=v, reported_at=r, source="acme-q") for p, v, r in (
        ("2023Q1", "25", "2023-04-20"), ("2023Q2", "28", "2023-07-20"), ("2023Q3", "30", "2023-10-20"),
        ("2023Q4", "37", "2024-02-01"), ("2024Q1", "30", "2024-04-20"), ("2024Q2", "35", "2024-07-20"),
        ("2024Q3", "40", "2024-10-20"))]
    beta = [fact(entity="beta", period=f"FY{y}", value=str(v), reported_at=f"{y + 1}-03-01", source=f"beta-{y}")
            for y, v in ((2022, 50), (2023, 55), (2024, 66))]
    gamma = [fact(entity="gamma", period=f"FY{y}", value=str(v), unit="EUR m", reported_at=f"{y + 1}-03-01",
                  source=f"gamma-{y}") for y, v in ((2022, 400), (2023, 380), (2024, 420))]
    return acme + quarters + beta + gamma


@pytest.fixture(scope="module")
def chart_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("charts")
    store = Store.create(root / "store")
    report = ingest_paths(store, [write_csv(root / "in.csv", rows())], catalog=Catalog.load(CATALOG))
    assert not [p for f in report.files for p in f.problems]
    return root / "store"


@pytest.fixture(scope="module")
def cms(chart_store: Path) -> Iterator[MetricStore]:
    with MetricStore(chart_store) as ms:
        yield ms
