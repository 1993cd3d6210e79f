"""The scheduler: APScheduler 3 with a persistent job store in the store folder.

``<store>/scheduler.sqlite`` (SQLAlchemy on SQLite; for an ``s3://`` store, in the store's local
state folder on the scheduler's machine: :func:`store.backends.local_state`) holds each job's trigger and next run time, so
the schedule survives a restart: a run missed while the scheduler was down runs once when it comes
back (coalesced) if it is late by less than the job's ``misfire_grace``, and is recorded as
``skipped`` in the run log otherwise. A job never runs twice at the same time (``max_instances=1``
here, and the job's file lock across processes); one scheduler runs per store.

On start the job store is brought in line with ``jobs.toml``: a job whose trigger is unchanged keeps
its next run time; a changed trigger is rescheduled; a job removed or disabled is dropped. Each run
reads ``jobs.toml`` again, so a change to a job's source applies at its next run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import pkgutil
import signal
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from ingest.catalog import Catalog
from ingest.errors import SchedulerRunning
from ingest.jobs import Job, JobsConfig, Trigger, load_jobs
from ingest.runner import run_job
from ingest.runs import RunLog, RunOutcome
from store import MetricStoreError, Store
from store.backends import local_state
from store.locks import FileLock, LockHeld

log = logging.getLogger("metricstore.jobs")

JOBSTORE_FILE = "scheduler.sqlite"
RUN_FUNC = "ingest.scheduler:scheduled_run"


def make_trigger(t: Trigger) -> Any:
    """The APScheduler trigger for a job's ``trigger`` table."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tz = ZoneInfo(t.timezone)
    if t.cron is not None:
        return CronTrigger.from_crontab(t.cron, timezone=tz)
    return IntervalTrigger(seconds=t.interval or 0, timezone=tz, start_date=t.start)


def fingerprint(job: Job, config: JobsConfig) -> str:
    """What, if changed, means a job must be rescheduled (not its source: that is read at each run)."""
    doc = {"trigger": job.trigger.model_dump(mode="json"), "grace": job.misfire_grace, "config": str(config.path)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def scheduled_run(config_path: str, store_root: str, catalog_root: str, strict: bool, name: str,
                  fp: str = "", after: str = "") -> None:
    """What the scheduler calls on each trigger (by reference, so the job store can persist it);
    ``after`` names (``module:function``) what :func:`ingest.runner.run_job` calls after a run that
    added events."""
    store = Store.open(store_root, create=True)
    try:
        config = load_jobs(config_path)
        catalog = Catalog.load(catalog_root, strict=strict)
    except MetricStoreError as exc:
        runs = RunLog(store)
        run_id, started = runs.start(name, trigger="schedule")
        runs.finish(run_id, name, started, RunOutcome(), trigger="schedule", status="failed", error=str(exc))
        log.error("%s: not run: %s", name, exc)
        return
    if name not in config.jobs or not config.jobs[name].enabled:
        log.warning("%s: no longer in %s; skipped", name, config_path)
        return
    run_job(config, name, store, catalog, trigger="schedule", terminal=False,
            after=pkgutil.resolve_name(after) if after else None)


def read_next_runs(store: Store) -> dict[str, dt.datetime | None]:
    """Next run time of each job in the persistent job store (empty when there is none yet)."""
    path = local_state(store.root) / JOBSTORE_FILE
    if not path.is_file():
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT id, next_run_time FROM apscheduler_jobs").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return {}
    return {str(i): (dt.datetime.fromtimestamp(t, dt.UTC) if t is not None else None) for i, t in rows}


@dataclass
class JobRow:
    """One line of ``schedule list``."""

    name: str
    source: str
    trigger: str
    enabled: bool
    next_run: dt.datetime | None
    last_status: str | None
    last_finished: dt.datetime | None
    last_summary: str | None


def describe_jobs(config: JobsConfig, store: Store | None) -> list[JobRow]:
    """Jobs, triggers, next run times (the scheduler's, else computed now) and last outcomes."""
    persisted = read_next_runs(store) if store else {}
    last = RunLog(store).last_outcome() if store else {}
    now = dt.datetime.now(dt.UTC)
    out = []
    for name, job in config.jobs.items():
        nxt = persisted.get(name)
        if nxt is None and job.enabled:
            nxt = make_trigger(job.trigger).get_next_fire_time(None, now)
        r = last.get(name)
        summary = None
        if r:
            summary = (f"{r['added']} added, {r['already_present']} present, {r['rejected']} rejected"
                       + (f"; {r['error']}" if r.get("error") else ""))
        out.append(JobRow(name, job.source.type, job.trigger.describe(), job.enabled, nxt if job.enabled else None,
                          str(r["status"]) if r else None, r["finished"] if r else None, summary))  # type: ignore[arg-type]
    return out


class Scheduler:
    """The scheduler of one store over one ``jobs.toml``.

    Example:
        >>> s = Scheduler(load_jobs("data/jobs.toml"), store, Path("data/catalog"))   # doctest: +SKIP
        >>> s.run_forever()     # until SIGINT or SIGTERM; the job in flight finishes first   # doctest: +SKIP
    """

    def __init__(self, config: JobsConfig, store: Store, catalog_root: Path, *, strict: bool = False,
                 workers: int = 4, after: str = "") -> None:
        self.config, self.store, self.catalog_root, self.strict = config, store, catalog_root, strict
        self.after = after      # ``module:function`` called after a run that added events
        self.workers = workers
        self.stop_event = threading.Event()
        self._lock = FileLock(local_state(store.root) / "_lock" / "scheduler.lock", 0)
        self.scheduler: Any = None

    def _build(self) -> Any:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        url = f"sqlite:///{local_state(self.store.root) / JOBSTORE_FILE}"
        return BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=url)},
            executors={"default": ThreadPoolExecutor(max_workers=self.workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=dt.UTC,
        )

    def sync(self) -> list[str]:
        """Bring the persistent job store in line with the config; returns what changed."""
        changes = []
        wanted = {n: j for n, j in self.config.jobs.items() if j.enabled}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                self.scheduler.remove_job(job.id)
                changes.append(f"removed {job.id}")
        for name, job in wanted.items():
            fp = fingerprint(job, self.config)
            args = [str(self.config.path), str(self.store.root), str(self.catalog_root), self.strict, name, fp,
                    self.after]
            existing = self.scheduler.get_job(name)
            if existing is not None and list(existing.args) == args:
                continue  # unchanged: keep its next run time (a missed run still runs, within the grace)
            self.scheduler.add_job(RUN_FUNC, make_trigger(job.trigger), args=args, id=name, name=name,
                                   replace_existing=True, coalesce=True, max_instances=1,
                                   misfire_grace_time=int(job.misfire_grace))
            changes.append(f"{'rescheduled' if existing else 'added'} {name}")
        return changes

    def _missed(self, event: Any) -> None:
        name = event.job_id
        runs = RunLog(self.store)
        run_id, started = runs.start(name, trigger="schedule")
        late = dt.datetime.now(dt.UTC) - event.scheduled_run_time
        reason = (f"missed the run of {event.scheduled_run_time.isoformat(timespec='seconds')} by "
                  f"{int(late.total_seconds())} s (more than its misfire grace)")
        runs.finish(run_id, name, started, RunOutcome(skipped_reason=reason), trigger="schedule", status="skipped")
        log.warning("%s: %s", name, reason)

    def start(self) -> None:
        """Start in the background (jobs run on worker threads)."""
        from apscheduler.events import EVENT_JOB_MISSED

        try:
            self._lock.acquire()
        except LockHeld:
            raise SchedulerRunning(self.store.root) from None
        self.scheduler = self._build()
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self.scheduler.start(paused=True)
        for change in self.sync():
            log.info("schedule: %s", change)
        self.scheduler.resume()
        for job in self.scheduler.get_jobs():
            log.info("schedule: %s next runs at %s", job.id, job.next_run_time)

    def shutdown(self) -> None:
        """Stop taking new runs and wait for the runs in flight to finish."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        if self._lock.held:
            self._lock.release()

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then finish the runs in flight and return."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("schedule: %s received; finishing the runs in flight", signal.Signals(signum).name)
            self.stop_event.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.shutdown()
            for s, h in old.items():
                signal.signal(s, h)
        log.info("schedule: stopped")
