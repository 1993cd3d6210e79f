"""Golden input/expected pairs for the views (tests/fixtures/golden): each expected file was
worked out by hand from its input, on the entity's own fiscal calendar."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from ingest import Catalog, EntityDef, ingest_paths
from ingest.records import set_entity
from queries import MetricStore
from store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
ORDER = "metric, CASE ptype WHEN 'FY' THEN 0 WHEN 'Q' THEN 1 WHEN 'YTD' THEN 2 ELSE 3 END, period_end"


def same(a: object, b: object) -> bool:
    if a in (None, "") and b in (None, ""):
        return True
    try:
        x, y = float(a), float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(a).lower() == str(b).lower()
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)


def test_growth_on_a_june_fiscal_year(tmp_path: Path, catalog: Catalog) -> None:
    store = Store.create(tmp_path / "s")
    set_entity(store, EntityDef("junco", "Junco Ltd", fiscal_year_end_month=6))
    report = ingest_paths(store, [GOLDEN / "junco.csv"], catalog=catalog)
    assert report.ok, [str(p) for f in report.files for p in f.problems]
    expected = pl.read_csv(GOLDEN / "junco.growth.expected.csv", infer_schema=False)
    with MetricStore(store) as ms:
        got = ms.sql(f"SELECT {', '.join(expected.columns)} FROM growth WHERE entity = 'junco' ORDER BY {ORDER}")
    assert got.height == expected.height, got
    for g, e in zip(got.iter_rows(named=True), expected.iter_rows(named=True), strict=True):
        for col in expected.columns:
            assert same(g[col], e[col]), f"{e['metric']} {e['period']} {col}: got {g[col]!r}, expected {e[col]!r}"
