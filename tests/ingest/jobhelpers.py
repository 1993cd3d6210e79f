"""Helpers for the job tests: write a jobs.toml, read the run log, poll with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from queries import MetricStore
from store import Store

T = TypeVar("T")


def write_jobs(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_http_job(path: Path, urls: list[str], *, who: str, extra: str = "") -> Path:
    """A jobs.toml with one job ``feed`` fetching ``urls`` (two quick attempts, 2 s timeout)."""
    quoted = ", ".join(f'"{u}"' for u in urls)
    return write_jobs(path, f"""
[jobs.feed]
trigger = {{ cron = "0 3 * * *" }}
retry = {{ attempts = 2, backoff = "0.1s", max_backoff = "0.2s" }}

[jobs.feed.source]
type = "http"
urls = [{quoted}]
user_agent = "metricstore {who} tests (tests@example.com)"
timeout = "2s"
{extra}""")


def runs(store: Store, job: str | None = None) -> list[dict[str, object]]:
    with MetricStore(store) as ms:
        return ms.sql("SELECT * FROM ingest_runs WHERE (? IS NULL OR job = ?) ORDER BY started",
                      [job, job]).to_dicts()


def event_ids(store: Store) -> set[str]:
    with MetricStore(store) as ms:
        return set(ms.sql("SELECT event_id FROM events")["event_id"].to_list())


def poll(check: Callable[[], T], *, deadline_s: float = 60, every_s: float = 0.1, what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy, or fail after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(every_s)
