"""The run log: what every ingest run (a scheduled job, ``jobs run``, ``metricstore ingest``) did.

The run log is one more append-only table of the store (``runs/``), committed with the same atomic
Parquet files as the events. A run writes two records: ``running`` when it starts and its outcome
when it ends (``ok``, ``partial``, ``failed`` or ``skipped``). A run whose process was killed keeps
only its ``running`` record until the next run of the same job marks it ``failed`` (interrupted),
so the log never claims an outcome that did not happen. The SQL view ``ingest_runs`` shows the
latest record of each run (queries/sql/50_ingest_runs.sql).

Statuses:
    ok        every input was read and ingested (or was already present)
    partial   some inputs were ingested, others were rejected or failed
    failed    nothing could be ingested (every input rejected, or the job itself failed)
    skipped   nothing to do: no new file, an unchanged feed (HTTP 304), or the job was already running
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.catalog import Catalog
from ingest.pipeline import ingest_paths
from ingest.redact import redact_url
from ingest.reports import FileReport, RunReport, new_run_id
from store import Store

MAX_ERROR = 2000


@dataclass
class RunOutcome:
    """What a run did, accumulated input by input; written as the run's final record."""

    inputs: list[str] = field(default_factory=list)
    added: int = 0
    already_present: int = 0
    rejected: int = 0
    ok_inputs: int = 0
    failed_inputs: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    skipped_reason: str | None = None

    def add_file(self, report: FileReport, name: str | None = None) -> None:
        """Count one ingested file (or downloaded body, under ``name``)."""
        self.inputs.append(name or report.file)
        self.added += report.added
        self.already_present += report.already_present + report.duplicates  # (the log has no column of its own for them)
        self.rejected += report.rejected
        if report.ok:
            self.ok_inputs += 1
        else:
            self.failed_inputs += 1
            self.errors.append(report.error or f"{name or report.file}: {report.rejected} row(s) rejected")

    def add_unchanged(self, name: str) -> None:
        """Count one input that had not changed since it was last ingested (HTTP 304, same bytes)."""
        self.inputs.append(name)
        self.unchanged += 1

    def add_failure(self, name: str, error: str) -> None:
        """Count one input that could not be read at all (a 404, a timeout)."""
        self.inputs.append(name)
        self.failed_inputs += 1
        self.errors.append(error)

    @property
    def status(self) -> str:
        if self.failed_inputs and self.ok_inputs:
            return "partial"
        if self.failed_inputs:
            return "failed"
        if not self.ok_inputs:
            return "skipped"
        return "ok"

    @property
    def error(self) -> str | None:
        if self.errors:
            text = "; ".join(self.errors)
            return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."
        if self.skipped_reason is None and self.unchanged and not self.ok_inputs:
            return f"{self.unchanged} input(s) unchanged since last ingested"
        return self.skipped_reason


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunLog:
    """Writes the run log of one store.

    Example:
        >>> log = RunLog(store)                                   # doctest: +SKIP
        >>> with log.run("drops") as (run_id, outcome):           # doctest: +SKIP
        ...     outcome.add_file(ingest_file(store, f, catalog=c, run_id=run_id))
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        (store.root / "runs").mkdir(exist_ok=True)  # a store made before the run log existed

    def _write(self, *, run_id: str, job: str, trigger: str, status: str, started: dt.datetime,
               finished: dt.datetime | None, outcome: RunOutcome | None, error: str | None,
               notified: str | None = None) -> None:
        o = outcome or RunOutcome()
        error = redact_url(error) if error else error  # a URL's ?token= never reaches the run log
        self.store.append(pa.table({
            "run_id": [run_id], "job": [job], "trigger": [trigger], "status": [status],
            "started": pa.array([started], pa.timestamp("us", tz="UTC")),
            "finished": pa.array([finished], pa.timestamp("us", tz="UTC")),
            "inputs": pa.array([[redact_url(i) for i in o.inputs]], pa.list_(pa.string())),
            "inputs_read": pa.array([len(o.inputs)], pa.int64()),
            "added": pa.array([o.added], pa.int64()),
            "already_present": pa.array([o.already_present], pa.int64()),
            "rejected": pa.array([o.rejected], pa.int64()),
            "unchanged": pa.array([o.unchanged], pa.int64()),
            "error": [error], "notified": [notified],
            "host": [socket.gethostname()], "pid": pa.array([os.getpid()], pa.int64()),
        }), table="runs")

    def start(self, job: str, *, trigger: str = "manual", run_id: str | None = None) -> tuple[str, dt.datetime]:
        """Record that a run of ``job`` started; returns its id and start time."""
        self.mark_interrupted(job)
        run_id = run_id or new_run_id()
        started = _now()
        self._write(run_id=run_id, job=job, trigger=trigger, status="running", started=started,
                    finished=None, outcome=None, error=None)
        return run_id, started

    def finish(self, run_id: str, job: str, started: dt.datetime, outcome: RunOutcome, *,
               trigger: str = "manual", status: str | None = None, error: str | None = None,
               notified: str | None = None) -> str:
        """Record the outcome of a run (and what its notification did); returns the status written."""
        status = status or outcome.status
        self._write(run_id=run_id, job=job, trigger=trigger, status=status, started=started,
                    finished=_now(), outcome=outcome, error=error if error is not None else outcome.error,
                    notified=notified)
        return status

    @contextmanager
    def run(self, job: str, *, trigger: str = "manual", run_id: str | None = None
            ) -> Iterator[tuple[str, RunOutcome]]:
        """Record a run around a block: ``running`` on entry, the outcome on exit.

        An exception in the block is recorded as ``failed`` with its message, then re-raised.
        """
        run_id, started = self.start(job, trigger=trigger, run_id=run_id)
        outcome = RunOutcome()
        try:
            yield run_id, outcome
        except BaseException as exc:
            msg = str(exc) or type(exc).__name__
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                msg = "interrupted"
            self.finish(run_id, job, started, outcome, trigger=trigger, status="failed",
                        error=f"{type(exc).__name__}: {msg}"[:MAX_ERROR])
            raise
        self.finish(run_id, job, started, outcome, trigger=trigger)

    def latest(self) -> list[dict[str, object]]:
        """The latest record of every run, newest first."""
        table = self.store.read("runs")
        rows = sorted(table.to_pylist(), key=lambda r: (r["recorded_at"], r["status"] != "running"))
        last: dict[str, dict[str, object]] = {}
        for r in rows:
            last[str(r["run_id"])] = r
        return sorted(last.values(), key=lambda r: r["started"], reverse=True)  # type: ignore[arg-type,return-value]

    def last_outcome(self) -> dict[str, dict[str, object]]:
        """Per job, its latest finished run (``running`` ones when nothing finished yet)."""
        finished: dict[str, dict[str, object]] = {}
        running: dict[str, dict[str, object]] = {}
        for r in self.latest():
            (running if r["status"] == "running" else finished).setdefault(str(r["job"]), r)
        return {**running, **finished}

    def mark_interrupted(self, job: str) -> int:
        """Close the ``running`` records of ``job`` whose process on this host is gone."""
        host = socket.gethostname()
        n = 0
        for r in self.latest():
            if r["job"] != job or r["status"] != "running" or r["host"] != host:
                continue
            pid = int(r["pid"] or 0)  # type: ignore[call-overload]
            if pid == os.getpid() or _alive(pid):
                continue
            self._write(run_id=str(r["run_id"]), job=job, trigger=str(r["trigger"]), status="failed",
                        started=r["started"], finished=_now(), outcome=None,  # type: ignore[arg-type]
                        error=f"interrupted: process {pid} ended before the run finished")
            n += 1
        return n


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (killed, not yet reaped) still answers kill(0); its state says it is gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def ingest_recorded(store: Store, paths: list[str | Path], *, catalog: Catalog, fmt: str = "auto",
                    skip_invalid: bool = False, job: str = "ingest", trigger: str = "cli",
                    **options: Any) -> RunReport:
    """:func:`ingest.ingest_paths` as a recorded run: the run log holds its outcome.

    ``options`` go to :func:`ingest.ingest_paths` as they are (``entity=...``).

    Example:
        >>> report = ingest_recorded(store, ["q4.csv"], catalog=catalog)   # doctest: +SKIP
        >>> report.run_id in {r["run_id"] for r in RunLog(store).latest()}  # doctest: +SKIP
        True
    """
    log = RunLog(store)
    with log.run(job, trigger=trigger) as (run_id, outcome):
        report = ingest_paths(store, paths, catalog=catalog, fmt=fmt, skip_invalid=skip_invalid, run_id=run_id,
                              **options)
        for f in report.files:
            outcome.add_file(f)
    return report
