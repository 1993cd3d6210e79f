"""Scheduled ingestion from jobs.toml: ``metricstore schedule run|list`` and ``metricstore jobs run|runs``.

The write side (``ingest``) loads inside each command: the other commands start without it.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from ingest.redact import redact_url
from metricstore.options import ListFormatOpt, StoreOpt, open_store, settings
from metricstore.render import render
from queries import MetricStore
from queries.catalog import follow
from store import Store, StoreNotFound

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The jobs file.")]
DEFAULT_CONFIG = Path("data/jobs.toml")

schedule_app = typer.Typer(help="Run ingestion jobs on their triggers (jobs.toml), or list them.",
                           no_args_is_help=True)
jobs_app = typer.Typer(help="Run one ingestion job now, or show recent runs.", no_args_is_help=True)
app = typer.Typer()
app.add_typer(schedule_app, name="schedule")
app.add_typer(jobs_app, name="jobs")


class RedactUrls(logging.Filter):
    """Every log line passes through :func:`ingest.redact.redact_url`: no ``?token=`` reaches stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactUrls) for f in handler.filters):
            handler.addFilter(RedactUrls())


@schedule_app.command("run")
def schedule_run(config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM; the run in flight finishes first."""
    from ingest.jobs import load_jobs
    from ingest.scheduler import Scheduler
    _logging()
    cfg = settings(store)
    jobs = load_jobs(config)
    Scheduler(jobs, Store.open(cfg.store, create=True), cfg.catalog, strict=cfg.strict_catalog,
              after=f"{follow.__module__}:{follow.__name__}").run_forever()


@schedule_app.command("list")
def schedule_list(config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None,
                  fmt: ListFormatOpt = "table") -> None:
    """Jobs, their triggers, next run times and last outcomes."""
    from ingest.jobs import load_jobs
    from ingest.scheduler import describe_jobs
    jobs = load_jobs(config)
    try:
        st: Store | None = open_store(store)
    except StoreNotFound:
        st = None
    rows = describe_jobs(jobs, st)
    df = pl.DataFrame({
        "job": [r.name for r in rows], "source": [r.source for r in rows], "trigger": [r.trigger for r in rows],
        "enabled": [r.enabled for r in rows],
        "next_run": [r.next_run.astimezone(dt.UTC).isoformat(timespec="seconds") if r.next_run else None for r in rows],
        "last_status": [r.last_status for r in rows],
        "last_finished": [r.last_finished.astimezone(dt.UTC).isoformat(timespec="seconds") if r.last_finished else None for r in rows],
        "last_outcome": [redact_url(r.last_summary) if r.last_summary else None for r in rows],
    }, schema={"job": pl.String, "source": pl.String, "trigger": pl.String, "enabled": pl.Boolean,
               "next_run": pl.String, "last_status": pl.String, "last_finished": pl.String,
               "last_outcome": pl.String})
    render(df, fmt, None, title=f"jobs in {config}")


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="The job's name in jobs.toml.")],
    config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
) -> None:
    """Run one job now, once, and record the run; exit 1 when it failed or was partial."""
    from ingest import Catalog
    from ingest.jobs import load_jobs
    from ingest.runner import run_job
    _logging(quiet)
    cfg = settings(store)
    jobs = load_jobs(config)
    result = run_job(jobs, name, Store.open(cfg.store, create=True),
                     Catalog.load(cfg.catalog, strict=cfg.strict_catalog), trigger="manual", after=follow)
    print(redact_url(result.summary()))
    if result.status in ("failed", "partial"):
        raise typer.Exit(1)


@jobs_app.command("runs")
def jobs_runs(
    job: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    store: StoreOpt = None,
    fmt: ListFormatOpt = "table",
) -> None:
    """Recent runs from the run log (the ingest_runs view)."""
    with MetricStore(open_store(store)) as ms:
        df = ms.sql("SELECT job, run_id, \"trigger\", status, started, seconds, inputs_read, added, "
                    "already_present, rejected, unchanged, error, notified FROM ingest_runs "
                    "WHERE (? IS NULL OR job = ?) ORDER BY started DESC LIMIT ?", [job, job, limit])
    # records written before URLs were redacted are redacted on the way out too
    df = df.with_columns(pl.col("error").map_elements(redact_url, return_dtype=pl.String))
    render(df, fmt, None, title="ingest runs")
