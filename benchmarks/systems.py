"""The work each system does in each scenario: this store, the limit, Delta Lake and ArcticDB.

The limit is the floor any design over Parquet pays: pyarrow writing the input as one file, and
hand-written DuckDB SQL over one sorted Parquet file, with no dedup and no supersession. The
peers are driven through their own public APIs: ``deltalake`` writes, ``polars.scan_delta``
reads; ArcticDB on its LMDB backend, ``write``/``append``/``read`` with a ``QueryBuilder`` filter.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.data import metric_records

SERIES_METRIC = "revenue"
AS_OF = dt.date(2020, 6, 30)


def source_batches(src: Path, rows: int = 125_000) -> Iterator[pa.Table]:
    """The input, streamed from the generated source file."""
    pf = pq.ParquetFile(src)
    for rb in pf.iter_batches(batch_size=rows):
        yield pa.Table.from_batches([rb])


def one_event(i: int) -> pa.Table:
    """The i-th single event of the small-append scenario (a new fact each time)."""
    day = dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000)
    return pa.table({
        "entity": [f"append{i // 9000:03d}"], "metric": ["revenue"], "period_start": [day], "period_end": [day],
        "value": [float(i)], "unit": ["CNY"], "reported_at": [dt.date(2024, 1, 1)], "source": ["bench-append"],
    })


# -- bulk ingest ----------------------------------------------------------------------------
def bulk_limit(src: Path, dest: Path) -> None:
    writer = None
    for b in source_batches(src):
        if writer is None:
            writer = pq.ParquetWriter(dest / "events.parquet", b.schema, compression="zstd")
        writer.write_table(b, row_group_size=32 * 1024)
    assert writer is not None
    writer.close()


def bulk_metricstore(src: Path, dest: Path) -> None:
    from store import Store
    store = Store.create(dest)
    store.append(metric_records(), table="metrics")
    store.append_stream(source_batches(src))


def bulk_deltalake(src: Path, dest: Path) -> None:
    from deltalake import write_deltalake
    reader = pa.RecordBatchReader.from_batches(
        pq.read_schema(src), (rb for b in source_batches(src) for rb in b.to_batches()))
    write_deltalake(str(dest), reader)


def bulk_arcticdb(src: Path, dest: Path) -> None:
    lib = arctic_lib(dest)
    start = 0
    for b in source_batches(src):
        df = b.to_pandas(date_as_object=False)
        df.index = range(start, start + len(df))
        start += len(df)
        if start == len(df):
            lib.write("events", df)
        else:
            lib.append("events", df)


def arctic_lib(dest: Path) -> Any:
    from arcticdb import Arctic
    return Arctic(f"lmdb://{dest}?map_size=20GB").get_library("bench", create_if_missing=True)


def csv_limit(csv: Path, dest: Path) -> None:
    import pyarrow.csv as pacsv
    pq.write_table(pacsv.read_csv(csv), dest / "events.parquet", compression="zstd")


def csv_metricstore(csv: Path, dest: Path) -> None:
    from ingest import Catalog, ingest_paths
    from store import Store
    store = Store.create(dest)
    catalog = Catalog.load(Path(__file__).resolve().parents[1] / "data" / "catalog")
    report = ingest_paths(store, [csv], catalog=catalog)
    assert report.ok, report.summary()


BULK = {"limit": bulk_limit, "metricstore": bulk_metricstore, "deltalake": bulk_deltalake,
        "arcticdb": bulk_arcticdb}
CSV = {"limit": csv_limit, "metricstore": csv_metricstore}


# -- queries --------------------------------------------------------------------------------
#: The floor for a series' growth: one sorted file, no dedup, no supersession, no fiscal
#: calendar, only the windows (YoY, QoQ, TTM) a growth table needs.
LIMIT_GROWTH = """
WITH s AS (
    SELECT entity, metric, period_start, period_end, value, reported_at,
           date_diff('month', period_start, period_end) AS len
    FROM read_parquet($file)
    WHERE {where}
)
SELECT *,
       value - lag(value, CASE WHEN len > 3 THEN 1 ELSE 4 END) OVER w AS yoy_change,
       value / lag(value, CASE WHEN len > 3 THEN 1 ELSE 4 END) OVER w - 1 AS yoy_pct,
       value - lag(value) OVER w AS qoq_change,
       sum(value) OVER (w ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS ttm_value
FROM s
WINDOW w AS (PARTITION BY entity, metric, len ORDER BY period_end)
"""

#: Every column of a whole-view answer is computed and read (a checksum), but not shipped to Python.
DIGEST = "SELECT count(*) AS n, bit_xor(hash(COLUMNS(*))) FROM ({q})"


class Limit:
    def __init__(self, sorted_file: Path) -> None:
        self.file = str(sorted_file)
        self.con = duckdb.connect()

    def series(self, entity: str, as_of: dt.date | None = None) -> int:
        where = "entity = $entity AND metric = $metric" + (" AND reported_at <= $as_of" if as_of else "")
        params: dict[str, Any] = {"file": self.file, "entity": entity, "metric": SERIES_METRIC}
        if as_of:
            params["as_of"] = as_of
        return self.con.sql(LIMIT_GROWTH.format(where=where), params=params).to_arrow_table().num_rows

    def all(self, as_of: dt.date | None = None) -> int:
        where = "reported_at <= $as_of" if as_of else "true"
        params: dict[str, Any] = {"file": self.file, **({"as_of": as_of} if as_of else {})}
        return self.con.sql(DIGEST.format(q=LIMIT_GROWTH.format(where=where)), params=params).fetchall()[0][0]


class MetricStoreSystem:
    def __init__(self, root: Path) -> None:
        from queries import MetricStore
        self.ms = MetricStore(root)

    def series(self, entity: str, as_of: dt.date | None = None) -> int:
        return self.ms.series(entity, SERIES_METRIC, as_of=as_of).height

    def all(self, as_of: dt.date | None = None) -> int:
        return int(self.ms.sql(DIGEST.format(q="SELECT * FROM growth"), as_of=as_of)[0, 0])


class DeltaSystem:
    """Delta Lake has no growth view: the figures are its filtered read of the same rows."""

    def __init__(self, root: Path) -> None:
        self.uri = str(root)

    def series(self, entity: str, as_of: dt.date | None = None) -> int:
        import polars as pl
        f = (pl.col("entity") == entity) & (pl.col("metric") == SERIES_METRIC)
        if as_of:
            f &= pl.col("reported_at") <= as_of
        return pl.scan_delta(self.uri).filter(f).collect().height

    def all(self, as_of: dt.date | None = None) -> int:
        import polars as pl
        lf = pl.scan_delta(self.uri)
        if as_of:
            lf = lf.filter(pl.col("reported_at") <= as_of)
        return lf.collect().height


class ArcticSystem:
    """ArcticDB has no growth view: the figures are its filtered read of the same rows."""

    def __init__(self, root: Path) -> None:
        self.lib = arctic_lib(root)

    def series(self, entity: str, as_of: dt.date | None = None) -> int:
        from arcticdb import QueryBuilder
        q = QueryBuilder()
        cond = (q["entity"] == entity) & (q["metric"] == SERIES_METRIC)
        if as_of:
            import pandas as pd
            cond = cond & (q["reported_at"] <= pd.Timestamp(as_of))
        return len(self.lib.read("events", query_builder=q[cond]).data)

    def all(self, as_of: dt.date | None = None) -> int:
        from arcticdb import QueryBuilder
        if as_of:
            import pandas as pd
            q = QueryBuilder()
            return len(self.lib.read("events", query_builder=q[q["reported_at"] <= pd.Timestamp(as_of)]).data)
        return len(self.lib.read("events").data)


# -- single-event appends -------------------------------------------------------------------
class LimitAppender:
    """The raw atomic write of a one-row Parquet file: write, fsync, rename, fsync the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "_tmp").mkdir(parents=True, exist_ok=True)
        (root / "appends").mkdir(exist_ok=True)

    def __call__(self, t: pa.Table) -> None:
        name = uuid.uuid4().hex
        tmp = self.root / "_tmp" / name
        pq.write_table(t, tmp, compression="zstd")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "appends" / f"{name}.parquet")
        fd = os.open(self.root / "appends", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def metricstore_appender(root: Path) -> Any:
    from store import Store
    store = Store(root)
    return store.append


def delta_appender(root: Path) -> Any:
    from deltalake import write_deltalake

    def append(t: pa.Table) -> None:
        write_deltalake(str(root), t, mode="append")
    return append


def arctic_appender(root: Path) -> Any:
    lib = arctic_lib(root)
    state = {"next": int(lib.get_description("events").row_count)}

    def append(t: pa.Table) -> None:
        df = t.to_pandas(date_as_object=False)
        df.index = range(state["next"], state["next"] + len(df))
        state["next"] += len(df)
        lib.append("events", df)
    return append


def copy_tree(src: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)


def restatement(i: int, entities: int) -> pa.Table:
    """The i-th small commit of the many-small-commits scenario: a restated quarter of revenue."""
    from benchmarks.data import PERIOD_END, PERIOD_START, Shape
    k = i % len(PERIOD_END)
    return pa.table({
        "entity": [Shape.entity((i * 7919) % entities)], "metric": ["revenue"],
        "period_start": [PERIOD_START[k].astype(dt.date)], "period_end": [PERIOD_END[k].astype(dt.date)],
        "value": [1e9 + i], "unit": ["CNY"], "reported_at": [dt.date(2025, 6, 1)], "source": [f"restated-{i}"],
    })
