"""`metricstore ddl`: external tables over the store's files that the engines accept and read."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from queries import MetricStore
from queries.ddl import external_ddl
from store import Store
from tests.conftest import run_cli


def test_spark_ddl_runs_and_its_views_dedupe_like_duckdb(spark: Any, synthetic_store: Store) -> None:
    for statement in external_ddl("spark", synthetic_store.root, schema="ms_ddl").split(";\n"):
        code = [line for line in statement.splitlines() if line.strip() and not line.startswith("--")]
        if code:
            spark.sql(statement)
    with MetricStore(synthetic_store) as ms:
        for table in ("events", "entities", "metrics"):
            ours = ms.sql(f"SELECT count(*) AS n FROM {table}")["n"][0]
            theirs = spark.sql(f"SELECT count(*) AS n FROM ms_ddl.{table}").collect()[0]["n"]
            assert theirs == ours, table
        ids = spark.sql("SELECT event_id FROM ms_ddl.events").toPandas()["event_id"]
        assert ids.is_unique


@pytest.mark.parametrize("engine", ["trino", "athena"])
def test_trino_and_athena_ddl_parse_in_their_dialect(engine: str) -> None:
    text = external_ddl(engine, "s3://acme-metrics/prod")
    statements = [s for s in sqlglot.parse(text, read=engine) if isinstance(s, sqlglot.exp.Create)]
    assert len(statements) == 1 + 3 * 2  # the schema, then a table and a view per log
    views = [s for s in statements if (s.args.get("kind") or "").upper() == "VIEW"]
    assert [c.name for c in views[0].find(sqlglot.exp.Select).expressions][:2] == ["event_id", "op"]
    assert "s3://acme-metrics/prod/events/" in text and "s3a://" not in text


def test_cli_prints_ddl_and_refuses_an_unknown_engine() -> None:
    ok = run_cli("ddl", "--engine", "athena", "--store", "s3://bucket/prefix")
    assert ok.returncode == 0, ok.stderr
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS metricstore.events_files" in ok.stdout
    assert "LOCATION 's3://bucket/prefix/events/'" in ok.stdout
    spark_ddl = run_cli("ddl", "--engine", "spark", "--store", "s3://bucket/prefix")
    assert "LOCATION 's3a://bucket/prefix/events'" in spark_ddl.stdout
    bad = run_cli("ddl", "--engine", "oracle")
    assert bad.returncode == 2 and "oracle" in bad.stderr
