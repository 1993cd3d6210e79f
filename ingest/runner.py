"""Running one job once: its lock, its run record, its retries.

:func:`run_job` is what the scheduler calls on each trigger and what ``metricstore jobs run NAME``
calls by hand. A job never runs twice at the same time, in one process or across several (a file
lock per job in the store, released by the kernel when its holder dies); a second run finds the
lock held and is recorded as ``skipped``. Transient failures (a busy store, a network error that
escaped the per-request retries) are retried with the job's policy; terminal ones are recorded as
``failed`` at once. Any library error is recorded and returned, not raised: a scheduler keeps going.
A run that added events tells the ``[notify]`` targets what it changed (``ingest.notify``) before
its outcome is recorded, with what the notification did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ingest.catalog import Catalog
from ingest.ecb import EcbFeed
from ingest.fsds_feed import SecFsdsFeed
from ingest.http import HttpFeed
from ingest.jobs import (DropFolderSource, EcbSource, HttpSource, Job, JobsConfig, MaintenanceSource, MappedTableSource,
                         SecFsdsSource)
from ingest.mapped import mapped_format
from ingest.notify import notify_run
from ingest.redact import redact_url
from ingest.runs import RunLog, RunOutcome
from ingest.sources import DropFolder, Maintenance, MappedTable, RunContext, SourceRunner
from store import MetricStoreError, Store, TransientError
from store.backends import local_state
from store.locks import FileLock, LockHeld

log = logging.getLogger("metricstore.jobs")


@dataclass
class JobResult:
    """The outcome of one run of a job."""

    job: str
    run_id: str | None
    status: str
    outcome: RunOutcome
    error: str | None = None
    notified: str | None = None     # what the run's notification did (ingest.notify), if it sent one

    def summary(self) -> str:
        o = self.outcome
        text = (f"{self.job}: {self.status}: {len(o.inputs)} input(s), {o.added} events added, "
                f"{o.already_present} already present, {o.rejected} rejected, {o.unchanged} unchanged")
        text += (f"; {self.error}" if self.error else "") + (f" (run {self.run_id})" if self.run_id else "")
        text += f"; notify: {self.notified}" if self.notified else ""
        return redact_url(text)


def build_source(job: Job, config_file: str = "jobs.toml") -> SourceRunner:
    """The source object for a job's configuration."""
    s = job.source
    if isinstance(s, DropFolderSource):
        fmt = mapped_format(s.mapping) if s.mapping else s.format
        return DropFolder(s.path, s.glob, fmt, s.skip_invalid, s.settle, s.processed, s.quarantine)
    if isinstance(s, MappedTableSource):
        return MappedTable(s.path, s.mapping, s.skip_invalid)
    if isinstance(s, MaintenanceSource):
        return Maintenance(s.full, s.snapshot)
    if isinstance(s, HttpSource):
        return HttpFeed(s.expanded_urls(), s.user_agent, s.token_env, s.token_header, s.token_prefix, s.timeout,
                        mapped_format(s.mapping) if s.mapping else s.format, s.skip_invalid,
                        attempts=job.retry.attempts, backoff=job.retry.backoff, max_backoff=job.retry.max_backoff,
                        config_file=config_file, ingest_options={"entity": s.entity} if s.entity else {},
                        max_rate=s.max_rate)
    if isinstance(s, SecFsdsSource):
        return SecFsdsFeed(s.base_url, s.first, s.last, s.publish_lag, HttpFeed(
            [], s.user_agent, timeout=s.timeout, fmt="sec-fsds", skip_invalid=s.skip_invalid,
            attempts=job.retry.attempts, backoff=job.retry.backoff, max_backoff=job.retry.max_backoff,
            config_file=config_file, max_rate=s.max_rate))
    if isinstance(s, EcbSource):
        return EcbFeed(HttpFeed([s.url], s.user_agent, timeout=s.timeout, fmt="ecb", skip_invalid=s.skip_invalid,
                                attempts=job.retry.attempts, backoff=job.retry.backoff,
                                max_backoff=job.retry.max_backoff, config_file=config_file, max_rate=s.max_rate),
                       s.seed_bundled)
    raise TypeError(f"unknown source {type(s).__name__}")


def job_lock(store: Store, job: str) -> FileLock:
    """One run of ``job`` at a time (a file lock in the store folder, or in an object store's local state)."""
    return FileLock(local_state(store.root) / "_lock" / f"job-{job}.lock", 0)


def run_job(config: JobsConfig, name: str, store: Store, catalog: Catalog, *, trigger: str = "manual",
            terminal: bool | None = None, after: Callable[[Store], object] | None = None) -> JobResult:
    """Run job ``name`` once, now, and record the run.

    Args:
        config: the jobs (from :func:`ingest.jobs.load_jobs`).
        name: which job.
        store, catalog: where to write and how to read.
        trigger: ``schedule`` or ``manual``, recorded with the run.
        terminal: progress bar (True), log lines (False), or decide from stderr (None).
        after: called with the store after a run that added events (the CLI passes the query
            layer's projector, which keeps the read side following the log).

    Returns:
        A :class:`JobResult`; a failure is in ``status``/``error``, not raised (a bad name raises ConfigError).
    """
    job = config.job(name)
    runs = RunLog(store)
    lock = job_lock(store, name)
    try:
        lock.acquire()
    except LockHeld:
        run_id, started = runs.start(name, trigger=trigger)
        outcome = RunOutcome(skipped_reason=f"job {name!r} is already running; skipped")
        runs.finish(run_id, name, started, outcome, trigger=trigger, status="skipped")
        log.info("%s: already running; this run is skipped", name)
        return JobResult(name, run_id, "skipped", outcome, outcome.skipped_reason)
    try:
        run_id, started = runs.start(name, trigger=trigger)
        outcome = RunOutcome()
        try:
            source = build_source(job, str(config.path))
            ctx = RunContext(store, catalog, run_id, name, outcome, terminal)
            retrying = Retrying(stop=stop_after_attempt(job.retry.attempts),
                                wait=wait_exponential(multiplier=job.retry.backoff, max=job.retry.max_backoff),
                                retry=retry_if_exception_type(TransientError), reraise=True,
                                before_sleep=lambda rs: log.warning("%s: %s; retrying (attempt %d of %d)", name,
                                                                    redact_url(str(rs.outcome.exception()))
                                                                    if rs.outcome else "",
                                                                    rs.attempt_number, job.retry.attempts))
            retrying(source.run, ctx)
        except MetricStoreError as exc:
            error = redact_url(str(exc))
            runs.finish(run_id, name, started, outcome, trigger=trigger, status="failed", error=error,
                        notified=notify_run(config.notify, name, store, run_id, outcome.added))
            log.error("%s: failed: %s", name, error)
            return JobResult(name, run_id, "failed", outcome, error)
        except BaseException as exc:
            runs.finish(run_id, name, started, outcome, trigger=trigger, status="failed",
                        error="interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit)
                        else redact_url(f"{type(exc).__name__}: {exc}"))
            raise
        notified = notify_run(config.notify, name, store, run_id, outcome.added)
        status = runs.finish(run_id, name, started, outcome, trigger=trigger, notified=notified)
        if outcome.added and after is not None:
            after(store)
        result = JobResult(name, run_id, status, outcome, outcome.error, notified)
        log.info("%s", result.summary())
        return result
    finally:
        lock.release()
