"""Writing to the store: ``metricstore ingest`` and ``metricstore entity``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from ingest.entities import update_entity
from metricstore.options import EntityArg, StoreOpt, err, open_store, settings
from metricstore.render import render
from queries.catalog import follow
from store import Store

app = typer.Typer()


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Input files (CSV, JSON, Parquet, SEC companyfacts...; also gzip-compressed, e.g. q4.csv.gz). A folder is refused: give its files, e.g. inbox/*.csv.")],
    store: StoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv, json, parquet, or another registered format.")] = "auto",
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Commit the valid rows of a file that has invalid ones.")] = False,
    entity: Annotated[str | None, typer.Option("--entity", help="Store every row under this entity id (e.g. an SEC file's company).")] = None,
) -> None:
    """Append the facts in FILES to the store; each file is one atomic batch."""
    from ingest import Catalog, ingest_recorded    # (the readers load with the command that reads)
    cfg = settings(store)
    st = Store.open(cfg.store, create=True)
    report = ingest_recorded(st, list(files), catalog=Catalog.load(cfg.catalog, strict=cfg.strict_catalog),
                             fmt=fmt, skip_invalid=skip_invalid, entity=entity)
    for f in report.files:
        for w in f.warnings:
            err.print(f"warning: {w}")
        for p in f.problems:
            err.print(f"rejected: {p}")
        if f.quarantine:
            err.print(f"rejected rows written to {f.quarantine}")
        print(f.summary())
    print(report.summary(), flush=True)
    if report.added:    # committed and said so; then the read side follows the log (queries/catalog.py)
        with err.status("bringing the growth projections up to date (answers are correct meanwhile)"):
            follow(st)
    if not report.ok:
        raise typer.Exit(2)


@app.command()
def entity(
    name: EntityArg,
    display: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    ticker: Annotated[str | None, typer.Option("--ticker", help="Ticker symbol.")] = None,
    cik: Annotated[str | None, typer.Option("--cik", help="SEC CIK number.")] = None,
    fye: Annotated[int | None, typer.Option("--fiscal-year-end-month", min=1, max=12,
                                            help="Month the fiscal year ends in (12 = calendar year).")] = None,
    store: StoreOpt = None,
) -> None:
    """Show an entity, or record its name, identifiers and fiscal calendar (set before ingesting)."""
    st = open_store(store, create=any(v is not None for v in (display, ticker, cik, fye)))
    done = update_entity(st, name, name=display, ticker=ticker, cik=cik, fiscal_year_end_month=fye)
    if done.recorded is not None:
        print("recorded" if done.recorded else "unchanged")
    if done.recorded:
        follow(st)     # a new fiscal calendar relabels the entity's periods
    if done.record is None:
        raise typer.BadParameter(f"{name!r} is not known to this store (give --name/--fiscal-year-end-month to record it)")
    render(pl.DataFrame([done.record]), "table")
