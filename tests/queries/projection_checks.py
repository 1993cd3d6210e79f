"""What the projection tests share: a store rich in rules, the reference answers they are held to
(projections switched off), and a way to prove a projection was read (doctor its values)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from queries import MetricStore
from queries.projections import FOLDER
from store import Store
from store.verify import sha256_prefix
from tests.conftest import fact

KEY = ["entity", "metric", "segment", "dims", "unit", "ptype", "period", "period_start"]


def rich_rows() -> list[dict[str, object]]:
    """Two calendars, flows with derived quarters and restatements, a ratio, a stock, segments."""
    rows = []
    for year in (2022, 2023, 2024):
        for q, v in ((1, 20), (2, 25), (3, 30)):
            rows.append(fact(period=f"{year}Q{q}", value=str(v + year - 2022), reported_at=f"{year}-{3 * q + 1:02d}-20"))
        rows.append(fact(period=f"9M{year}", value=str(75 + 3 * (year - 2022)), reported_at=f"{year}-10-20"))
        rows.append(fact(period=f"FY{year}", value=str(110 + 5 * (year - 2022)), reported_at=f"{year + 1}-03-01"))
        rows.append(fact(period=f"FY{year}", segment="cloud", value=str(40 + year - 2022), reported_at=f"{year + 1}-03-01"))
        rows.append(fact(metric="gross_margin", period=f"FY{year}", value=str(30 + year - 2022), unit="%",
                         reported_at=f"{year + 1}-03-01"))
        rows.append(fact(metric="store_count", period=f"{year}-12-31", value=str(100 * (year - 2020)), unit="stores",
                         reported_at=f"{year + 1}-03-01"))
        rows.append(fact(entity="beta", period=f"FY{year}", value=str(50 + year - 2022), reported_at=f"{year}-08-15"))
        for q in (1, 2, 3, 4):
            rows.append(fact(entity="beta", period=f"{year}Q{q}", value=str(12 + q), reported_at=f"{year}-08-15"))
    rows.append(fact(period="FY2023", value="121", source="restated", reported_at="2025-03-01"))
    rows.append(fact(period="2024Q2", value="26.5", qualifier="approx", source="press", authority="secondary",
                     reported_at="2024-07-30"))
    return rows


def whole(ms: MetricStore, **kw: object) -> pl.DataFrame:
    return ms.sql("SELECT * FROM growth", **kw).sort(KEY)


def newest(store: Store) -> Path:
    return max((store.root / FOLDER).glob("projection-*.json"))


def doctor(store: Store) -> None:
    """Double every value of the newest projection's files, every layer's, and vouch for them in
    its manifest."""
    meta = newest(store)
    body = json.loads(meta.read_text())
    for layer in [body["base"], *body["deltas"]]:
        path = store.root / FOLDER / layer["file"]
        t = pq.read_table(path)
        t = t.set_column(t.schema.get_field_index("value"), "value", pc.multiply(t.column("value"), 2))
        pq.write_table(t, path)
        layer["sha256"] = sha256_prefix(path)
    meta.write_text(json.dumps(body))


DATES = ("2023-06-30", "2025-06-30")


def reference(store: Store, fn: Callable[[MetricStore], pl.DataFrame]) -> pl.DataFrame:
    """What the on-demand SQL over the events answers (projections switched off)."""
    before = os.environ.get("METRICSTORE_PROJECTIONS")
    os.environ["METRICSTORE_PROJECTIONS"] = "0"
    try:
        with MetricStore(store) as ms:
            return fn(ms)
    finally:
        if before is None:
            del os.environ["METRICSTORE_PROJECTIONS"]
        else:
            os.environ["METRICSTORE_PROJECTIONS"] = before


def answers(ms: MetricStore, recorded: dt.datetime | None = None) -> list[pl.DataFrame]:
    """The whole view now and as of a few dates, one metric of every entity (a screen) now and
    then, and one series of each entity now and then; with ``recorded``, the same as recorded at
    that time."""
    out = [ms.sql("SELECT * FROM growth", as_recorded=recorded).sort(KEY)]
    out += [ms.sql("SELECT * FROM growth", as_of=d, as_recorded=recorded).sort(KEY) for d in DATES]
    out += [ms.growth(metric="revenue", as_recorded=recorded),
            ms.growth(metric="revenue", ptype="FY", as_of=DATES[0], as_recorded=recorded)]
    for entity in ("acme", "beta", "gamma"):
        out += [ms.series(entity, "revenue", as_recorded=recorded),
                ms.series(entity, "revenue", as_of=DATES[0], as_recorded=recorded)]
    return out


def assert_fresh(store: Store, recorded: dt.datetime | None = None) -> None:
    expected = reference(store, lambda ms: answers(ms, recorded))
    with MetricStore(store) as ms:
        for got, want in zip(answers(ms, recorded), expected, strict=True):
            assert_frame_equal(got, want, check_exact=True)


def retract_across(store: Store, entity: str, event: str) -> None:
    """Append, under ``entity``, a withdrawal of ``event`` (another entity's)."""
    store.append(pl.DataFrame([{"entity": entity, "metric": "revenue", "period_start": "2024-01-01",
                                "period_end": "2024-12-31", "value": None, "unit": "USD m", "op": "retract",
                                "supersedes": event, "reported_at": "2025-03-05", "source": "w"}],
                              schema_overrides={"value": pl.Float64})
                 .with_columns(pl.col("period_start", "period_end", "reported_at").str.to_date()).to_arrow())
