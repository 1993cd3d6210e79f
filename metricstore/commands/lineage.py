"""Point-in-time truth and lineage: ``history``, ``restatements``, ``explain``.

Each parses its options, calls one :class:`queries.MetricStore` method and renders the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from metricstore.options import (AsOfOpt, AsRecOpt, DimsOpt, EntityArg, FormatOpt, MetricArg, OutputOpt,
                                 PeriodArg, SegmentOpt, StoreOpt, err, open_store)
from metricstore.render import render
from queries import BadArgument, MetricStore
from queries.names import missing

app = typer.Typer()

HISTORY_TABLE = ("version", "value", "unit", "qualifier", "authority", "kind", "source", "source_ref",
                 "reported_at", "recorded_at", "is_current", "withdrawal")
#: A formula value's history: the formula in source_ref, and the arithmetic of each version.
FORMULA_HISTORY_TABLE = ("version", "value", "unit", "qualifier", "kind", "source_ref", "as_reported",
                         "reported_at", "recorded_at", "is_current", "withdrawal")
RESTATEMENT_TABLE = ("metric", "period", "unit", "old_value", "new_value", "change", "change_pct",
                     "old_reported_at", "restated_at", "old_source", "new_source", "is_current")
EXPLAIN_TABLE = ("role", "term", "event_period", "value", "unit", "qualifier", "source", "source_ref",
                 "as_reported", "reported_at", "commit_id")
#: A formula value over derived inputs: which input each event is a term of.
FORMULA_EXPLAIN_TABLE = ("role", "term", "input", "event_period", "value", "unit", "qualifier",
                         "source", "source_ref", "as_reported", "reported_at", "commit_id")


def _answer(store: Path | None, ask: Callable[[MetricStore], pl.DataFrame], fmt: str, output: Path | None,
            table: tuple[str, ...], title: str, *, preface: str | None = None,
            formula_table: tuple[str, ...] | None = None, formula_marker: str = "derived_from",
            empty: Callable[[MetricStore], BadArgument | None] | None = None) -> None:
    """Open the store, ask it one question and render the answer: every column in csv, json or parquet;
    in a table the ``table`` columns (``formula_table`` for a formula metric's computed values, whose
    answer has the ``formula_marker`` column), after the distinct lines of the ``preface`` column;
    an empty answer then ``empty``'s note (the name the store has none of), if it has one."""
    with MetricStore(open_store(store)) as ms:
        df = ask(ms)
        why = empty(ms) if empty is not None and df.height == 0 else None
    if formula_table and formula_marker in df.columns:
        table = formula_table
    if fmt == "table":
        for line in df[preface].unique(maintain_order=True).to_list() if preface else []:
            print(line)
        df = df.select(table)
    render(df, fmt, output, title=title)
    if why:
        err.print(f"note: {why}")


@app.command()
def history(
    entity: EntityArg, metric: MetricArg, period: PeriodArg,
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """Every version of one fact, oldest first, with its source and dates, and which one is current."""
    _answer(store, lambda ms: ms.history(entity, metric, period, segment, dims=dims, as_of=as_of, as_recorded=as_recorded),
            fmt, output, HISTORY_TABLE, f"{entity} {metric} {period}: every version",
            formula_table=FORMULA_HISTORY_TABLE)


@app.command()
def restatements(
    entity: EntityArg,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric.")] = None,
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """The facts whose value changed between the company's filings: by how much, and when."""
    _answer(store, lambda ms: ms.restatements(entity, metric, as_of=as_of, as_recorded=as_recorded),
            fmt, output, RESTATEMENT_TABLE, f"{entity}: restatements", empty=lambda ms: missing(ms.sql, entity, metric))


@app.command()
def explain(
    entity: EntityArg, metric: MetricArg, period: PeriodArg,
    segment: SegmentOpt = "total", dims: DimsOpt = "",
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """The events behind one facts/growth row: sources, commits, and the arithmetic of a derived value."""
    _answer(store, lambda ms: ms.explain(entity, metric, period, segment, dims=dims, as_of=as_of, as_recorded=as_recorded),
            fmt, output, EXPLAIN_TABLE, f"{entity} {metric} {period}: the events behind it", preface="arithmetic",
            formula_table=FORMULA_EXPLAIN_TABLE, formula_marker="input")
