"""The SEC's financial statement data sets as a scheduled source: each quarter's zip, once.

``https://www.sec.gov/files/dera/data/financial-statement-data-sets/2024q3.zip`` and its
predecessors are fetched with the HTTP client of :mod:`ingest.http` (the job's ``User-Agent``, its
rate limit, retries, conditional GETs) and read by :mod:`ingest.fsds`. A run asks for the quarters
from ``first`` (or ``last``, for a backfill) that ended at least ``publish_lag`` days ago and that
no earlier run of the job ingested; a quarter already in holds no more requests. A quarter that
fails (a 404 before it is published, a refused file) is asked for again on the next run.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ingest.http import HttpFeed
from ingest.sources import JobState, RunContext

QUARTER = re.compile(r"^(\d{4})q([1-4])$")


def quarter_end(q: str) -> dt.date:
    """``'2024q3'`` -> 2024-09-30."""
    m = QUARTER.match(q)
    if not m:
        raise ValueError(f"{q!r} is not a quarter (like 2024q3)")
    year, n = int(m.group(1)), int(m.group(2))
    return dt.date(year + (n == 4), 1 if n == 4 else 3 * n + 1, 1) - dt.timedelta(days=1)


def quarters(first: str, last: str | None, today: dt.date, publish_lag: int) -> list[str]:
    """The quarters from ``first`` to ``last`` (or to the last one ended ``publish_lag`` days ago)."""
    out: list[str] = []
    year, n = int(first[:4]), int(first[5])
    while True:
        q = f"{year}q{n}"
        if (last is not None and q > last) or quarter_end(q) + dt.timedelta(days=publish_lag) > today:
            return out
        out.append(q)
        year, n = (year + 1, 1) if n == 4 else (year, n + 1)


@dataclass
class SecFsdsFeed:
    """Fetch and ingest each quarter's zip not yet ingested by this job."""

    base_url: str
    first: str
    last: str | None
    publish_lag: int
    feed: HttpFeed                 # the client's settings; its urls are set per run
    today: dt.date | None = None

    def url(self, q: str) -> str:
        return f"{self.base_url.rstrip('/')}/{q}.zip"

    def run(self, ctx: RunContext) -> None:
        state = JobState(ctx.store, ctx.job)
        wanted = quarters(self.first, self.last, self.today or dt.date.today(), self.publish_lag)
        new = [self.url(q) for q in wanted if not state.get(self.url(q)).get("run_id")]
        if not new:
            ctx.outcome.skipped_reason = f"no new quarter (through {wanted[-1] if wanted else self.first})"
            return
        self.feed.urls = new
        self.feed.run(ctx)
