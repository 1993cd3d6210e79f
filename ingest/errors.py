"""Errors of the ingest layer (see store/errors.py for the whole tree).

    IngestError
    ├── BadFile          the file as a whole cannot be read: encoding, shape, missing column
    │                    (terminal, ValueError)
    ├── BatchRejected    rows failed validation; carries every RowProblem      (terminal, ValueError)
    ├── CatalogError     the catalog under data/catalog is malformed            (terminal)
    ├── ConfigError      jobs.toml or a mapping file is invalid; names file, job, field (terminal, ValueError)
    ├── JobBusy          the job is already running in another process or thread     (transient)
    ├── SchedulerRunning another scheduler already runs on this store                 (transient)
    ├── ChangesUnavailable a run's changes could not be read for its notification     (terminal)
    └── FetchError       an HTTP source could not be read (url, status)
        ├── FetchFailed      connection error, timeout, 5xx, 429 after retries          (transient)
        └── FetchRefused     a 4xx other than 429: retrying will not help               (terminal)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from store.errors import MetricStoreError, TerminalError, TransientError, clip

#: What a parser raises on input nobody foresaw; turned into a BadFile naming the file.
UNREADABLE = (pl.exceptions.PolarsError, pa.ArrowException, RecursionError, UnicodeError, OverflowError)


class IngestError(MetricStoreError):
    """Base of the ingest layer's errors."""


#: Longest column name a message repeats: a header may be a secret's first line.
SHOWN_NAME = 40
_NAME_LIKE = re.compile(r"[\w .:$%()/-]*")


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, clipped: what a one-line refusal repeats of a
    parser's error (which may be empty, or span many lines)."""
    return clip((str(exc).splitlines() or [""])[0], limit)


def shown_name(name: str) -> str:
    """A column name as a message may repeat it: its name-like start (letters, digits, spaces,
    ``_ . : - $ % ( ) /``), at most :data:`SHOWN_NAME` characters. What follows a character no
    column name has (``KEY=value`` of a secrets file read as a header) is never echoed."""
    head = _NAME_LIKE.match(name)
    kept = head.group(0) if head else ""
    if kept == name and len(name) <= SHOWN_NAME:
        return name
    return kept[: SHOWN_NAME - 3] + "..."


@dataclass(frozen=True)
class RowProblem:
    """One rejected value: where it is and why."""

    file: str
    row: int
    column: str
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        if not self.column:
            return f"{where}: {self.reason}"
        shown = "" if self.value is None else repr(clip(self.value))
        return f"{where}: column {shown_name(self.column)}={shown}: {self.reason}"


class BadFile(IngestError, TerminalError, ValueError):
    """The file cannot be read as a batch at all."""

    def __init__(self, file: str, reason: str, *, row: int | None = None, column: str | None = None,
                 value: str | None = None) -> None:
        self.file, self.reason, self.row, self.column, self.value = file, reason, row, column, value
        where = file if row is None else f"{file}:{row}"
        what = f" column {shown_name(column)}" if column else ""
        shown = f"={clip(value)!r}" if value is not None else ""
        super().__init__(f"{where}:{what}{shown}: {reason}".replace(":: ", ": "))


class BatchRejected(IngestError, TerminalError, ValueError):
    """Some rows of a batch failed validation."""

    def __init__(self, file: str, problems: list[RowProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__(f"{file}: {len(problems)} row problem(s); first: {problems[0]}")


class CatalogError(IngestError, TerminalError):
    """The metric/entity/source catalog is malformed."""


class ConfigError(IngestError, TerminalError, ValueError):
    """A job configuration or a mapping file is invalid: says which file, job and field."""

    def __init__(self, file: str, reason: str, *, job: str | None = None, field: str | None = None) -> None:
        self.file, self.reason, self.job, self.field = file, reason, job, field
        where = file + (f": job {job!r}" if job else "") + (f": {field}" if field else "")
        super().__init__(f"{where}: {reason}")


class JobBusy(IngestError, TransientError):
    """Another run of the same job holds its lock; this run is skipped."""

    def __init__(self, job: str) -> None:
        self.job = job
        super().__init__(f"job {job!r} is already running; skipped")


class SchedulerRunning(IngestError, TransientError):
    """Another scheduler already runs on this store (one per store: its lock is in ``_lock/``)."""

    def __init__(self, root: object) -> None:
        self.root = str(root)
        super().__init__(f"{root}: another scheduler is already running on this store")


class ChangesUnavailable(IngestError, TerminalError):
    """The changes of a run could not be read for its notification (``ingest.notify``: the
    ``metricstore changes`` process failed); recorded in the run, never failing it."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id, self.reason = run_id, reason
        super().__init__(f"the changes of run {run_id} could not be read: {reason}")


class FetchError(IngestError):
    """An HTTP source could not be read. Messages name the URL and status, never a credential."""

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        self.url, self.reason, self.status = url, reason, status
        code = f" HTTP {status}" if status is not None else ""
        super().__init__(f"{url}:{code} {reason}".replace(":  ", ": "))


class FetchFailed(FetchError, TransientError):
    """Connection error, timeout, 5xx or 429 (still failing after the retries)."""


class FetchRefused(FetchError, TerminalError):
    """A 4xx answer other than 429: the request itself is wrong; not retried."""
