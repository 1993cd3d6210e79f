"""Fixtures of the scale-out tests: one local SparkSession per test session (per xdist worker), a synthetic store,
and the row-for-row comparison of a DuckDB result with a Spark one."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest import Catalog, ingest_paths
from store import Store
from tests.conftest import fact, write_csv

# Nothing listens beyond loopback: set before the JVM starts.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="install the `spark` extra: pip install -e '.[spark]'")
    from queries.spark import local_session

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = local_session("metricstore-tests", **{"spark.sql.warehouse.dir": str(warehouse)})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def synthetic_rows() -> list[list[dict[str, object]]]:
    """Batches (one commit each) exercising every rule the views implement."""
    first = [
        # a calendar-year flow: FY, quarters, 9M (Q4 derived FY - 9M), a restatement published later
        fact(period="FY2022", value="800", reported_at="2023-02-01"),
        fact(period="FY2023", value="900", reported_at="2024-02-01"),
        fact(period="FY2024", value="1000", reported_at="2025-02-01"),
        fact(period="9M2024", value="720", reported_at="2024-11-01"),
        *(fact(period=p, value=v, reported_at=r) for p, v, r in [
            ("2023Q1", "200", "2023-05-01"), ("2023Q2", "210", "2023-08-01"), ("2023Q3", "230", "2023-11-01"),
            ("2023Q4", "260", "2024-02-01"), ("2024Q1", "230", "2024-05-01"), ("2024Q2", "240", "2024-08-01"),
            ("2024Q3", "250", "2024-11-01")]),
        # a secondary, rounded figure published later never replaces the company's exact one
        fact(period="FY2023", value="905", reported_at="2024-02-02", authority="secondary", qualifier="approx",
             source="news"),
        # segments: share of the total
        fact(period="FY2024", segment="phones", value="600", reported_at="2025-02-01"),
        fact(period="FY2024", segment="ev", value="100", reported_at="2025-02-01"),
        fact(period="FY2023", segment="phones", value="500", reported_at="2024-02-01"),
        # a ratio (pp changes, no percent), a stock at instants, a loss narrowing (no percent on a negative base)
        fact(metric="gross_margin", period="FY2023", value="17.5", unit="%", reported_at="2024-02-01"),
        fact(metric="gross_margin", period="FY2024", value="20.9", unit="%", reported_at="2025-02-01"),
        fact(metric="store_count", period="2023-12-31", value="10000", unit="stores", reported_at="2024-02-01"),
        fact(metric="store_count", period="2024-12-31", value="12000", unit="stores", reported_at="2025-02-01"),
        fact(metric="net_income", period="FY2023", value="-5", reported_at="2024-02-01"),
        fact(metric="net_income", period="FY2024", value="3", reported_at="2025-02-01"),
        # guidance and a range
        fact(period="FY2025", value="1100", value_high="1200", qualifier="range", kind="guidance",
             reported_at="2025-02-01"),
        # a fiscal year ending in September: Q4 derived from FY - Q1 - Q2 - Q3
        fact(entity="aapl", period="FY2024", value="391", unit="USD bn", reported_at="2024-11-01"),
        fact(entity="aapl", period="FY2023", value="383", unit="USD bn", reported_at="2023-11-03"),
        fact(entity="aapl", period="2024Q1", value="119.6", unit="USD bn", reported_at="2024-02-02"),
        fact(entity="aapl", period="2024Q2", value="90.8", unit="USD bn", reported_at="2024-05-03"),
        fact(entity="aapl", period="2024Q3", value="85.8", unit="USD bn", reported_at="2024-08-02"),
        # a fiscal year ending in January: H2 derived from FY - H1, Q2 from H1 - Q1
        fact(entity="snow", period="FY2025", value="3626", unit="USD m", reported_at="2025-03-20"),
        fact(entity="snow", period="2025H1", value="1697", unit="USD m", reported_at="2024-08-28"),
        fact(entity="snow", period="2025Q1", value="829", unit="USD m", reported_at="2024-05-23"),
    ]
    later = [
        # the restatement of FY2024, published later: as_of before it shows the original
        fact(period="FY2024", value="1010", reported_at="2025-06-01", source="acme-10k-2024-restated"),
        # a withdrawal: the guidance is retracted
        fact(period="FY2025", value="", kind="guidance", op="retract", reported_at="2025-07-01",
             source="acme-guidance-withdrawn"),
        fact(period="2024Q4", value="265", reported_at="2025-05-01"),
    ]
    return [first, later]


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("synthetic")
    store = Store.create(folder / "store")
    catalog = Catalog.load(Path(__file__).resolve().parents[2] / "data" / "catalog")
    for i, rows in enumerate(synthetic_rows()):
        report = ingest_paths(store, [write_csv(folder / f"batch{i}.csv", rows)], catalog=catalog)
        assert report.ok, report.summary()
    return store


def _cell(v: object) -> object:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, list):
        return tuple(_cell(x) for x in v)
    return v


def rows_of(df: pl.DataFrame) -> list[tuple[object, ...]]:
    """The rows of a frame, values normalised (floats to 6 places, lists as tuples), sorted."""
    out = [tuple(_cell(v) for v in r) for r in df.iter_rows()]
    return sorted(out, key=lambda r: tuple((x is None, str(x)) for x in r))


def assert_same_rows(duck: pl.DataFrame, spark_df: Any) -> None:
    """The Spark result equals DuckDB's: same columns in the same order, the same multiset of rows."""
    theirs = pl.from_arrow(spark_df.toArrow())
    assert isinstance(theirs, pl.DataFrame)
    assert theirs.columns == duck.columns
    ours_rows, their_rows = rows_of(duck), rows_of(theirs)
    assert len(their_rows) == len(ours_rows), (len(their_rows), len(ours_rows))
    for a, b in zip(ours_rows, their_rows, strict=True):
        assert a == b, f"\nduckdb: {a}\nspark:  {b}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto) on 127.0.0.1, and the AWS environment pointing at it."""
    pytest.importorskip("moto", reason="install the `test-s3` extra: pip install -e '.[test-s3]'")
    pytest.importorskip("obstore", reason="install the `s3` extra: pip install -e '.[s3]'")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    boto3.client("s3").create_bucket(Bucket="metricstore-test")
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


BUCKET = "metricstore-test"


def s3_root(label: str = "stores") -> str:
    """A fresh store root in the test bucket (the server is the ``s3_server`` fixture's)."""
    import uuid

    return f"s3://{BUCKET}/{label}/{uuid.uuid4().hex[:12]}"


def s3_keys(prefix: str) -> list[str]:
    """Every object key under ``prefix`` (``s3://bucket/...`` or a key prefix), listed behind the store's back."""
    import boto3

    key_prefix = prefix.split(f"{BUCKET}/", 1)[1] if prefix.startswith("s3://") else prefix
    out: list[str] = []
    for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=key_prefix):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return out


def s3_put(key: str, data: bytes) -> None:
    import boto3

    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
