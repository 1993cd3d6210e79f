"""Spark's ``growth`` reads the projections of a local store, and stays the computed view.

The store: the synthetic data ingested and projected, a commit touching ``aapl`` projected as a
delta layer, then a commit touching ``acme`` that no projection covers. Spark's ``growth`` must
equal DuckDB's computed from the events (``METRICSTORE_PROJECTIONS=0``), now, as of a date and as
recorded before acme's commit.
To prove the projection is read, a copy of the store has its projection doctored (every value
doubled, vouched for in the manifest): Spark then returns doubled values for the entities read
from it (``snow`` from the base, ``aapl`` from the delta) and the true ones for ``acme``, computed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from queries.projections import Projections
from queries.projector import project
from queries.spark import register_views
from queries.spark_projections import find
from store import Store
from tests.conftest import CATALOG, fact, write_csv
from tests.queries.projection_checks import doctor
from tests.scale.conftest import assert_same_rows, synthetic_rows

AS_OF = (None, "2025-03-01")
KEY = ["entity", "metric", "segment", "dims", "unit", "ptype", "period", "period_start"]


def _ingest(store: Store, folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    report = ingest_paths(store, [write_csv(folder / f"{name}.csv", rows)], catalog=Catalog.load(CATALOG))
    assert report.ok, report.summary()


@pytest.fixture(scope="module")
def projected(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("spark-projected")
    store = Store.create(folder / "store")
    for i, rows in enumerate(synthetic_rows()):
        _ingest(store, folder, f"batch{i}", rows)
    assert project(store) is not None
    _ingest(store, folder, "aapl", [fact(entity="aapl", period="2024Q1", value="120.1", unit="USD bn",
                                         reported_at="2024-12-01", source="aapl-restated")])
    found = project(store)                       # aapl's growth: a delta layer over the base
    assert found is not None and len(found.deltas) == 1
    # a commit no projection covers: acme's growth is computed
    _ingest(store, folder, "acme", [fact(period="FY2023", value="910", reported_at="2025-01-10", source="amended"),
                                    fact(period="2025Q1", value="255", reported_at="2025-05-01")])
    use = Projections(store).usable({t: store.live_files(t) for t in ("events", "entities", "metrics")})
    assert use is not None and use.changed == {"acme"}
    return store


def reference(store: Store, monkeypatch: pytest.MonkeyPatch, as_of: str | None,
              as_recorded: dt.datetime | None = None) -> pl.DataFrame:
    """DuckDB's growth computed from the events."""
    with monkeypatch.context() as m, MetricStore(store) as ms:
        m.setenv("METRICSTORE_PROJECTIONS", "0")
        return ms.sql("SELECT * FROM growth", as_of=as_of, as_recorded=as_recorded)


def spark_growth(spark: Any) -> pl.DataFrame:
    out = pl.from_arrow(spark.sql("SELECT * FROM growth").toArrow())
    assert isinstance(out, pl.DataFrame)
    return out.sort(KEY)


@pytest.mark.parametrize("as_of", AS_OF, ids=lambda d: f"as_of={d}")
def test_growth_over_a_projection_and_a_newer_commit_is_the_computed_view(
        spark: Any, projected: Store, monkeypatch: pytest.MonkeyPatch, as_of: str | None) -> None:
    register_views(spark, projected.root, as_of=as_of)
    expected = reference(projected, monkeypatch, as_of)
    assert expected.filter(pl.col("entity") == "acme").height > 10
    assert_same_rows(expected, spark.sql("SELECT * FROM growth"))


def test_growth_reads_the_projection_for_unchanged_entities_only(
        spark: Any, projected: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = Store(shutil.copytree(projected.root, tmp_path / "store"))
    doctor(copy)
    with MetricStore(copy) as ms:       # just before acme's commit: its later events are not seen then
        before_acme = ms.sql("SELECT min(recorded_at) AS t FROM events WHERE source = 'amended'")["t"][0] \
            - dt.timedelta(microseconds=1)
    for as_of, as_recorded in [(d, None) for d in AS_OF] + [(None, before_acme), (AS_OF[1], before_acme)]:
        true = reference(copy, monkeypatch, as_of, as_recorded).sort(KEY)
        register_views(spark, copy.root, as_of=as_of, as_recorded=as_recorded)
        got = spark_growth(spark)
        assert got.select(KEY).equals(true.select(KEY))
        for entity, factor in (("snow", 2), ("aapl", 2), ("acme", 1)):   # base, delta: read; acme: computed
            mine, want = (f.filter(pl.col("entity") == entity)["value"].to_list() for f in (got, true))
            assert want and mine == [v * factor for v in want], (entity, as_of, as_recorded)
    # switched off: computed from the events
    with monkeypatch.context() as m:
        m.setenv("METRICSTORE_PROJECTIONS", "0")
        register_views(spark, copy.root)
        assert_same_rows(reference(copy, monkeypatch, None), spark.sql("SELECT * FROM growth"))


def test_object_stores_compute(spark: Any, projected: Store) -> None:
    assert find(spark, projected.root, None, None) is not None
    assert find(spark, "s3://bucket/prefix", None, None) is None                             # no projections on S3
