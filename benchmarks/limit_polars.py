"""The second limit system for queries, ``limit-polars``: the limit's growth, hand-written in polars.

The same sorted Parquet file the DuckDB ``limit`` reads, and the same answer: a lazy scan, the
filter pushed into it, a sort by series and period end, and shifts within each series for YoY
(four quarters back, or one year), QoQ and the four-period TTM sum. No dedup, no supersession,
no fiscal calendar, as the DuckDB limit. A query target's ratio is taken against the faster of
the two (``benchmarks.run.add_ratios``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from benchmarks.systems import SERIES_METRIC

#: The partition of ``LIMIT_GROWTH``'s window: a series' quarters and its years apart.
KEYS = ("entity", "metric", "len")


def growth(lf: pl.LazyFrame) -> pl.LazyFrame:
    """``benchmarks.systems.LIMIT_GROWTH`` over ``lf``: rows sorted by series, then compared with the
    row one, or four, before them when it is of the same series (a shift of the whole column with
    the series boundary masked: no group-by)."""
    months = lambda c: pl.col(c).dt.year().cast(pl.Int32) * 12 + pl.col(c).dt.month().cast(pl.Int32)  # noqa: E731
    lf = lf.with_columns((months("period_end") - months("period_start")).alias("len")).sort([*KEYS, "period_end"])

    def same(k: int) -> pl.Expr:
        """The row ``k`` before this one is of the same series."""
        return pl.all_horizontal([pl.col(c).shift(k) == pl.col(c) for c in KEYS]).fill_null(False)

    def back(k: int) -> pl.Expr:
        return pl.when(same(k)).then(pl.col("value").shift(k))

    prior = pl.when(pl.col("len") > 3).then(back(1)).otherwise(back(4))
    # the sum of this row and the up to three before it in the series (a window cut at its start)
    ttm = pl.col("value") + sum((pl.when(same(k)).then(pl.col("value").shift(k)).otherwise(0.0) for k in (1, 2, 3)),
                                pl.lit(0.0))
    return lf.with_columns(
        (pl.col("value") - prior).alias("yoy_change"),
        (pl.col("value") / prior - 1).alias("yoy_pct"),
        (pl.col("value") - back(1)).alias("qoq_change"),
        ttm.alias("ttm_value"),
    )


class LimitPolars:
    """``limit-polars``: the growth of one series or the whole view, as of a date or now."""

    def __init__(self, sorted_file: Path) -> None:
        self.file = str(sorted_file)

    def _scan(self, where: pl.Expr | None, as_of: dt.date | None) -> pl.LazyFrame:
        lf = pl.scan_parquet(self.file)
        if as_of:
            cond = pl.col("reported_at") <= as_of
            where = cond if where is None else where & cond
        return lf if where is None else lf.filter(where)

    def series(self, entity: str, as_of: dt.date | None = None) -> int:
        where = (pl.col("entity") == entity) & (pl.col("metric") == SERIES_METRIC)
        return growth(self._scan(where, as_of)).collect().height

    def all(self, as_of: dt.date | None = None) -> int:
        # every column computed and held in memory (the answer a polars user has in hand)
        return growth(self._scan(None, as_of)).collect().height
