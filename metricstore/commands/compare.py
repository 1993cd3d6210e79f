"""``metricstore compare``: one metric of several entities side by side, in one currency, on calendar periods."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from metricstore.options import (AsOfOpt, AsRecOpt, CalendarOpt, CurrencyOpt, DimsOpt, FormatOpt, OutputOpt, SegmentOpt,
                                 StoreOpt, WideOpt, open_store)
from metricstore.render import human, percent, render
from queries import MetricStore

app = typer.Typer()

@app.command()
def compare(
    metric: Annotated[str, typer.Argument(help="Metric name, e.g. revenue.")],
    entities: Annotated[list[str], typer.Argument(help="Entity ids, e.g. xiaomi aapl nvda.")],
    freq: Annotated[str, typer.Option("--freq", help="FY (years) or Q (quarters).")] = "FY",
    currency: CurrencyOpt = None, calendar: CalendarOpt = False,
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """Peers side by side: a row per period, a column per entity (and its YoY)."""
    with MetricStore(open_store(store)) as ms:
        df = ms.compare(metric, entities, segment=segment, dims=dims, freq=freq, currency=currency,
                        calendar=calendar, as_of=as_of, as_recorded=as_recorded)
    title = f"{metric} ({segment}){' in ' + currency.upper() if currency else ''}, " + (
        "calendar periods" if calendar else "fiscal periods (a label names different months for different year ends)")
    render(_readable(df) if fmt == "table" and not wide else df, fmt, output, title=title)


def _readable(df: pl.DataFrame) -> pl.DataFrame:
    """Values in readable units (``50.9 bn USD``) and YoY as percentages, as text."""
    rows = df.to_dicts()
    cells: dict[str, list[str]] = {}
    for c in df.columns:
        if c == "unit":
            continue
        if c.endswith("_yoy"):
            cells[c] = [percent(r[c]) for r in rows]
        elif df[c].dtype.is_numeric():
            cells[c] = [human(r[c], r["unit"]) if r[c] is not None else "" for r in rows]
        else:
            cells[c] = ["" if r[c] is None else str(r[c]) for r in rows]
    return pl.DataFrame(cells, schema=dict.fromkeys(cells, pl.String))
