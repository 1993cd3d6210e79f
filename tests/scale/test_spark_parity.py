"""Spark computes the same views as DuckDB, row for row, from the same .sql sources.

One SparkSession per test session (see conftest). The data exercise what the views
implement: precedence, restatements and as_of, YoY/QoQ/TTM, derived Q2/Q4/H2 on three fiscal
calendars, ratios, instants, negative bases, shares, guidance and a retraction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from queries import MetricStore
from queries.spark import register_views, spark_path
from store import Store
from tests.scale.conftest import assert_same_rows

VIEWS = ("events", "entities", "facts", "growth", "share")
AS_OF = (None, "2024-06-30", "2025-03-01")


@pytest.fixture(scope="module")
def duck(synthetic_store: Store) -> Any:
    with MetricStore(synthetic_store) as ms:
        yield ms


@pytest.mark.parametrize("as_of", AS_OF, ids=lambda d: f"as_of={d}")
def test_every_view_matches_duckdb_row_for_row(spark: Any, synthetic_store: Store, duck: MetricStore,
                                               as_of: str | None) -> None:
    names = register_views(spark, synthetic_store.root, as_of=as_of)
    assert set(VIEWS) <= set(names)
    for view in VIEWS:
        ours = duck.sql(f"SELECT * FROM {view}", as_of=as_of)
        assert ours.height > 0 or (view == "share" and as_of == "2024-06-30"), view
        assert_same_rows(ours, spark.sql(f"SELECT * FROM {view}"))


def test_the_synthetic_data_exercise_what_parity_must_cover(duck: MetricStore) -> None:
    """Parity is not vacuous: the data give YoY, QoQ, TTM, every derivation and an as_of change.

    (Checked on DuckDB, cheaply; the parity test above holds Spark to the same rows.)
    """
    g = duck.sql("SELECT * FROM growth", as_of="2025-03-01")
    now = duck.sql("SELECT * FROM growth")
    derivations = {*g.filter(g["derived"])["derivation"], *now.filter(now["derived"])["derivation"]}
    assert derivations == {"FY - 9M", "FY - Q1 - Q2 - Q3", "FY - H1", "H1 - Q1"}
    assert g["yoy_pct"].drop_nulls().len() > 0 and g["qoq_pct"].drop_nulls().len() > 0
    assert g["ttm_value"].drop_nulls().len() > 0
    q3 = duck.sql("SELECT ttm_value FROM growth WHERE entity = 'acme' AND metric = 'revenue' "
                  "AND segment = 'total' AND period = '2024Q3'")
    assert q3["ttm_value"].to_list() == [980e6]
    fy = "SELECT value FROM facts WHERE entity = 'acme' AND metric = 'revenue' AND segment = 'total' AND period = 'FY2024'"
    assert duck.sql(fy, as_of="2025-03-01")["value"].to_list() == [1000e6]
    assert duck.sql(fy)["value"].to_list() == [1010e6]
    assert duck.sql("SELECT * FROM facts WHERE kind = 'guidance'", as_of="2025-03-01").height == 1
    assert duck.sql("SELECT * FROM facts WHERE kind = 'guidance'").height == 0


def test_as_recorded_matches_duckdb(spark: Any, synthetic_store: Store, duck: MetricStore) -> None:
    first_commit = duck.sql("SELECT min(recorded_at) AS t FROM events WHERE entity = 'acme'")["t"][0]
    register_views(spark, synthetic_store.root, as_recorded=first_commit)
    for view in ("facts", "growth"):
        ours = duck.sql(f"SELECT * FROM {view}", as_recorded=first_commit)
        assert_same_rows(ours, spark.sql(f"SELECT * FROM {view}"))
    assert spark.sql("SELECT * FROM facts WHERE source = 'acme-10k-2024-restated'").count() == 0


def test_spark_path_of_local_and_object_store_roots() -> None:
    assert spark_path("s3://bucket/prefix") == "s3a://bucket/prefix"
    assert spark_path("/tmp/store").startswith("file:///")
    assert spark_path("gs://b/p/") == "gs://b/p"


@pytest.fixture(scope="module")
def sec_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Snowflake's SEC companyfacts (fiscal year ending in January): real filings, restatements."""
    from ingest import Catalog, ingest_paths
    from tests.conftest import CATALOG, needs_shared

    path = needs_shared("sec", "CIK0001640147_snowflake.json")
    store = Store.create(tmp_path_factory.mktemp("sec-spark") / "store")
    report = ingest_paths(store, [path], catalog=Catalog.load(CATALOG))
    assert report.ok and report.added > 1000
    return store


@pytest.mark.parametrize("as_of", [None, "2023-06-30"], ids=lambda d: f"as_of={d}")
def test_sec_filings_facts_and_growth_match_duckdb(spark: Any, sec_store: Store, as_of: str | None) -> None:
    register_views(spark, sec_store.root, as_of=as_of)
    with MetricStore(sec_store) as ms:
        for view in ("facts", "growth"):
            ours = ms.sql(f"SELECT * FROM {view}", as_of=as_of)
            assert ours.height > 100, view
            assert_same_rows(ours, spark.sql(f"SELECT * FROM {view}"))


def test_spark_reads_the_encodings_of_a_large_commit(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # a commit of more than a few rows writes its ids DELTA_LENGTH_BYTE_ARRAY and its values
    # BYTE_STREAM_SPLIT (store.parquet.ENCODINGS): Spark reads back the very ids and values
    n = 5000
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    values = [(-1) ** i * i * 1234.5678 + (1e-300 if i % 11 == 0 else 0.0) for i in range(n)]
    store = Store.create(tmp_path_factory.mktemp("encodings"))
    r = store.append(pa.table({"entity": [f"co{i % 13}" for i in range(n)], "metric": ["revenue"] * n,
                               "period_start": days, "period_end": days, "value": values, "unit": ["USD"] * n,
                               "reported_at": [dt.date(2030, 1, 1)] * n, "source": ["feed"] * n}))
    assert r.path is not None and r.added == n
    meta = pq.ParquetFile(r.path).metadata.row_group(0)
    names = [meta.column(i).path_in_schema for i in range(meta.num_columns)]
    assert "DELTA_LENGTH_BYTE_ARRAY" in meta.column(names.index("event_id")).encodings
    assert "BYTE_STREAM_SPLIT" in meta.column(names.index("value")).encodings
    want = sorted(zip(*pq.read_table(r.path, columns=["event_id", "value"]).to_pydict().values()))
    got = sorted((row["event_id"], row["value"]) for row in spark.read.parquet(str(r.path)).select("event_id", "value").collect())
    assert got == want and len(got) == n
