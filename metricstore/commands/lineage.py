"""Point-in-time truth and lineage: ``history``, ``restatements``, ``explain``.

Each parses its options, calls one :class:`queries.MetricStore` method and renders the answer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.options import (AsOfOpt, AsRecOpt, DimsOpt, EntityArg, FormatOpt, MetricArg, OutputOpt,
                                 PeriodArg, SegmentOpt, StoreOpt, open_store)
from metricstore.render import render
from queries import MetricStore

app = typer.Typer()

HISTORY_TABLE = ("version", "value", "unit", "qualifier", "authority", "kind", "source", "source_ref",
                 "reported_at", "recorded_at", "is_current", "withdrawal")
RESTATEMENT_TABLE = ("metric", "period", "unit", "old_value", "new_value", "change", "change_pct",
                     "old_reported_at", "restated_at", "old_source", "new_source", "is_current")
EXPLAIN_TABLE = ("role", "term", "event_period", "value", "unit", "qualifier", "source", "source_ref",
                 "as_reported", "reported_at", "commit_id")


@app.command()
def history(
    entity: EntityArg, metric: MetricArg, period: PeriodArg,
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """Every version of one fact, oldest first, with its source and dates, and which one is current."""
    with MetricStore(open_store(store)) as ms:
        df = ms.history(entity, metric, period, segment, dims=dims, as_of=as_of, as_recorded=as_recorded)
    render(df.select(HISTORY_TABLE) if fmt == "table" else df, fmt, output,
           title=f"{entity} {metric} {period}: every version")


@app.command()
def restatements(
    entity: EntityArg,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric.")] = None,
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """The facts whose value changed between the company's filings: by how much, and when."""
    with MetricStore(open_store(store)) as ms:
        df = ms.restatements(entity, metric, as_of=as_of, as_recorded=as_recorded)
    render(df.select(RESTATEMENT_TABLE) if fmt == "table" else df, fmt, output, title=f"{entity}: restatements")


@app.command()
def explain(
    entity: EntityArg, metric: MetricArg, period: PeriodArg,
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """The events behind one facts/growth row: sources, commits, and the arithmetic of a derived value."""
    with MetricStore(open_store(store)) as ms:
        df = ms.explain(entity, metric, period, segment, dims=dims, as_of=as_of, as_recorded=as_recorded)
    if fmt == "table":
        for line in df["arithmetic"].unique(maintain_order=True).to_list():
            print(line)
        df = df.select(EXPLAIN_TABLE)
    render(df, fmt, output, title=f"{entity} {metric} {period}: the events behind it")
