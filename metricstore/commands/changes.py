"""The change feed: ``metricstore changes [--since DATE|RUN_ID] [--entity E] [--kind K]``.

It parses its options, calls :meth:`queries.MetricStore.changes` and renders the answer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.options import AsRecOpt, FormatOpt, OutputOpt, StoreOpt, open_store
from metricstore.render import render
from queries import MetricStore
from queries.changes import KINDS

app = typer.Typer()

TABLE = ("recorded_at", "run_id", "change_kind", "summary")


@app.command()
def changes(
    since: Annotated[str | None, typer.Option(
        "--since", help="A date (changes recorded on or after it) or a run id (that run and the later ones).")] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity.")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help=f"Only these kinds of change, separated by commas: {', '.join(KINDS)}.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only the changes of this run.")] = None,
    store: StoreOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """The changes ingest runs made to the current answers: new facts, restatements, revised guidance,
    retractions, approximate figures made exact, split adjustments; each with its run, source and events."""
    with MetricStore(open_store(store)) as ms:
        df = ms.changes(since=since, run=run, entity=entity, kind=kind, as_recorded=as_recorded)
    render(df.select(TABLE) if fmt == "table" else df, fmt, output, title="changes")
