"""Data checks: ``metricstore checks [ENTITY]``, where the store's figures disagree beyond rounding."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from metricstore.options import AsOfOpt, AsRecOpt, FormatOpt, OutputOpt, StoreOpt, WideOpt, open_store
from metricstore.render import human, render
from queries import MetricStore

app = typer.Typer()

#: The columns a readable table shows (every column in csv, json, parquet and with --wide).
TABLE = ("check", "entity", "metric", "segment", "dims", "period", "expected", "actual", "difference",
         "tolerance", "detail")
_AMOUNTS = ("expected", "actual", "difference", "tolerance")


def readable(df: pl.DataFrame) -> pl.DataFrame:
    """The table a person reads: amounts in readable units (``365.9 bn CNY``)."""
    rows = df.select(*TABLE[:6], *_AMOUNTS, "unit", "detail").to_dicts()
    for r in rows:
        for c in _AMOUNTS:
            r[c] = human(r[c], r["unit"])
    schema = {c: pl.String for c in TABLE}
    return pl.DataFrame([{c: r[c] for c in TABLE} for r in rows], schema=schema)


@app.command()
def checks(
    entity: Annotated[str | None, typer.Argument(help="Only this entity (all when omitted).")] = None,
    check: Annotated[str | None, typer.Option(
        "--check", help="Only one comparison: segments, quarters, rounding, bound or formula.")] = None,
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """Where the figures disagree beyond rounding: segments against the total, quarters against the
    year, a rounded or bounded figure against the exact one, a formula against the reported figure."""
    with MetricStore(open_store(store)) as ms:
        df = ms.checks(entity, check=check, as_of=as_of, as_recorded=as_recorded)
    if fmt == "table" and not wide:
        df = readable(df)
    render(df, fmt, output, title=f"checks: {entity or 'every entity'}", readable_table=False)
