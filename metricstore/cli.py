"""The ``metricstore`` command line: a thin layer over the store, ingest and queries packages.

Each command parses its options, calls one library function and renders the result. Library
errors become one line on stderr and exit code 2; nothing a user types produces a traceback.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ingest import Catalog, EntityDef, Settings, ingest_recorded, set_entity
from ingest.jobs import redact_url
from queries import MetricStore, write_catalog
from store import MetricStoreError, Store
from store.backends import ObjectPath
from store.verify import verify as verify_store
from metricstore.render import FORMATS, render

app = typer.Typer(
    name="metricstore",
    help="An event-sourced store of financial metrics: ingest facts, query growth at any point in time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

StoreOpt = Annotated[Path | None, typer.Option("--store", "-s", help="Store folder or s3://bucket/prefix [env METRICSTORE_STORE; default data/store].", show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Publication time: what was public on this date (YYYY-MM-DD).")]
AsRecOpt = Annotated[str | None, typer.Option("--as-recorded", help="System time: what the store had recorded by then (ISO timestamp, UTC).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]


def settings(store: Path | None) -> Settings:
    s = Settings()
    return s.model_copy(update={"store": store}) if store else s


def open_store(store: Path | None, *, create: bool = False) -> Store:
    return Store.open(settings(store).store, create=create)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Input files (CSV, JSON, Parquet, SEC companyfacts...; also gzip-compressed, e.g. q4.csv.gz). A folder is refused: give its files, e.g. inbox/*.csv.")],
    store: StoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv, json, parquet, or another registered format.")] = "auto",
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Commit the valid rows of a file that has invalid ones.")] = False,
    entity: Annotated[str | None, typer.Option("--entity", help="Store every row under this entity id (e.g. an SEC file's company).")] = None,
) -> None:
    """Append the facts in FILES to the store; each file is one atomic batch."""
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
    print(report.summary())
    if not report.ok:
        raise typer.Exit(2)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over events, facts, growth, share, entities, metrics.")],
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
) -> None:
    """Run a read-only SQL query over the store's views."""
    with MetricStore(open_store(store)) as ms:
        render(ms.sql(query, as_of=as_of, as_recorded=as_recorded), fmt, output)


@app.command()
def series(
    entity: Annotated[str, typer.Argument(help="Entity id, e.g. xiaomi.")],
    metric: Annotated[str, typer.Argument(help="Metric name, e.g. revenue.")],
    segment: Annotated[str, typer.Option("--segment", help="Segment ('total' for the whole entity).")] = "total",
    dims: Annotated[str, typer.Option("--dims", help="Dimensions, key=value;key=value.")] = "",
    freq: Annotated[str | None, typer.Option("--freq", help="FY, H, Q or M (all when omitted).")] = None,
    store: StoreOpt = None, as_of: AsOfOpt = None, as_recorded: AsRecOpt = None,
    fmt: FormatOpt = "table", output: OutputOpt = None,
    basis: Annotated[str | None, typer.Option("--basis", help="Prior period for YoY/QoQ: as_of (default: as known at --as-of), latest (as known now), first (as first reported).")] = None,
) -> None:
    """One series over time with YoY, QoQ and TTM."""
    with MetricStore(open_store(store)) as ms:
        df = ms.series(entity, metric, segment, freq, dims=dims, as_of=as_of, as_recorded=as_recorded, basis=basis)
        render(df.drop("event_id", "derived_from") if fmt == "table" else df, fmt, output,
               title=f"{entity} {metric} ({segment})")


@app.command()
def entity(
    name: Annotated[str, typer.Argument(help="Entity id, e.g. xiaomi.")],
    display: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    ticker: Annotated[str | None, typer.Option("--ticker", help="Ticker symbol.")] = None,
    cik: Annotated[str | None, typer.Option("--cik", help="SEC CIK number.")] = None,
    fye: Annotated[int | None, typer.Option("--fiscal-year-end-month", min=1, max=12,
                                            help="Month the fiscal year ends in (12 = calendar year).")] = None,
    store: StoreOpt = None,
) -> None:
    """Show an entity, or record its name, identifiers and fiscal calendar (set before ingesting)."""
    setting = any(v is not None for v in (display, ticker, cik, fye))
    st = open_store(store, create=setting)
    with MetricStore(st) as ms:
        current = ms.sql("SELECT * FROM entities WHERE entity = ?", [name.lower()])
    if setting:
        row = current.row(0, named=True) if current.height else {}
        new = EntityDef(name.lower(), display or row.get("name"), ticker or row.get("ticker"),
                        cik or row.get("cik"), fye or row.get("fiscal_year_end_month") or 12)
        print("recorded" if set_entity(st, new) else "unchanged")
        with MetricStore(st) as ms:
            current = ms.sql("SELECT * FROM entities WHERE entity = ?", [name.lower()])
    if current.height == 0:
        raise typer.BadParameter(f"{name!r} is not known to this store (give --name/--fiscal-year-end-month to record it)")
    render(current, "table")


@app.command()
def catalog(
    path: Annotated[Path | None, typer.Argument(help="Where to write the DuckDB file [default: <store>/catalog.duckdb].")] = None,
    store: StoreOpt = None,
) -> None:
    """Write a DuckDB database file with the views, for the DuckDB CLI, DBeaver or a notebook."""
    st = open_store(store)
    if path is None and isinstance(st.root, ObjectPath):
        err.print(f"error: {st.root} is an object store: give a local PATH for the catalog file (a DuckDB "
                  "session reads its views' s3:// paths through the httpfs extension and your S3 credentials)")
        raise typer.Exit(2)
    target = write_catalog(st, path)
    init = target.with_name(target.name + ".init.sql")  # read-only, store files only: queries/sandbox.py
    print(f"wrote {target}: open it with `duckdb -readonly -init {init} {target}` and query growth, facts, share")


@app.command()
def verify(
    store: StoreOpt = None,
    repair: Annotated[bool, typer.Option("--repair", help="Remove temporary files of dead writers; move damaged files to <store>/_damaged/ (never deleted).")] = False,
) -> None:
    """Read every file of the store and report anything unreadable or inconsistent."""
    from store.repair import leftovers, repair as repair_store

    st = open_store(store)
    if repair and isinstance(st.root, ObjectPath):
        err.print(f"error: {st.root}: verify --repair works on local stores only (it moves damaged files aside by "
                  "rename, under file locks); on object storage nothing is staged in the bucket, so only damaged "
                  "objects can be found: run verify, then restore or delete each named object with your S3 tools")
        raise typer.Exit(2)
    rep = repair_store(st) if repair else None
    for p in rep.removed if rep else []:
        print(f"removed {p} (a writer died before publishing it; it was never read as data)")
    for f, target in rep.moved if rep else []:
        err.print(f"moved aside: {f} -> {target} (its events are missing until it is restored from a backup)")
    findings = rep.remaining if rep else verify_store(st)
    for f in findings:
        err.print(f"problem: {f}")
    if not rep and (left := leftovers(st)):
        print(f"note: {len(left)} temporary file(s) in {st.root / '_tmp'} (never read; the next writer or verify --repair removes them)")
    n = sum(len(st.files(t)) for t in ("events", "entities", "metrics"))
    print(f"{st.root}: {n} files checked, {len(findings)} problem(s)")
    if findings or (rep and rep.moved):
        raise typer.Exit(1)


@app.command()
def demo(
    store: StoreOpt = None,
    chart: Annotated[Path, typer.Option("--chart", help="Where to write the PNG chart.")] = Path("data/xiaomi-2024.png"),
    seed: Annotated[Path, typer.Option("--seed", help="Folder of seed files to ingest.")] = Path("data/seed"),
) -> None:
    """Build the default store from data/seed, print Xiaomi's 2024 growth table and write a chart."""
    from metricstore.demo import run_demo

    cfg = settings(store)
    run_demo(cfg, seed, chart)


# Commands of other areas live in their own modules (metricstore/cli_*.py) and register on `app`
# when imported here, one line each.
from metricstore import cli_more  # noqa: E402,F401  (imports the cli_* modules)


def main() -> None:
    """Entry point: run the app, turning library errors into one line and exit code 2."""
    try:
        app()
    except MetricStoreError as exc:
        err.print(f"error: {redact_url(str(exc))}")
        sys.exit(2)
    except (ValueError, OSError) as exc:
        err.print(f"error: {redact_url(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
