"""Reading the store: ``metricstore sql``, ``metricstore series`` and ``metricstore catalog``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metricstore.options import (AsOfOpt, AsRecOpt, CalendarOpt, CurrencyOpt, DimsOpt, EntityArg, FormatOpt, OutputOpt,
                                 SegmentOpt, StoreOpt, WideOpt, err, open_store)
from metricstore.render import render
from queries import MetricStore, write_catalog
from queries.catalog import open_command
from queries.names import missing

app = typer.Typer()


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over events, facts, growth, share, entities, metrics.")],
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None, wide: WideOpt = False,
    currency: CurrencyOpt = None, calendar: CalendarOpt = False,
) -> None:
    """Run a read-only SQL query over the store's views."""
    with MetricStore(open_store(store)) as ms:
        df = ms.sql(query, as_of=as_of, as_recorded=as_recorded, currency=currency, calendar=calendar)
    render(df, fmt, output, readable_table=not wide)


@app.command()
def series(
    entity: EntityArg,
    metric: Annotated[str, typer.Argument(help="Metric name, e.g. revenue.")],
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    freq: Annotated[str | None, typer.Option("--freq", help="FY, H, Q or M (all when omitted).")] = None,
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None, wide: WideOpt = False,
    basis: Annotated[str | None, typer.Option("--basis", help="Prior period for YoY/QoQ: as_of (default: as known at --as-of), latest (as known now), first (as first reported).")] = None,
    currency: CurrencyOpt = None, calendar: CalendarOpt = False,
) -> None:
    """One series over time with YoY, QoQ and TTM (--wide: every column)."""
    with MetricStore(open_store(store)) as ms:
        df = ms.series(entity, metric, segment, freq, dims=dims, as_of=as_of, as_recorded=as_recorded, basis=basis,
                       currency=currency, calendar=calendar)
        why = missing(ms.sql, entity, metric, segment) if df.height == 0 else None
    render(df, fmt, output, title=f"{entity} {metric} ({segment})", readable_table=not wide)
    if why:
        err.print(f"note: {why}")


@app.command()
def catalog(
    path: Annotated[Path | None, typer.Argument(help="Where to write the DuckDB file [default: <store>/catalog.duckdb].")] = None,
    store: StoreOpt = None,
) -> None:
    """Write a DuckDB database file with the views, for the DuckDB CLI, DBeaver or a notebook."""
    target = write_catalog(open_store(store), path)   # BadArgument (an object store without PATH): one line
    print(f"wrote {target}: open it with `{open_command(target)}` and query growth, facts, share")
