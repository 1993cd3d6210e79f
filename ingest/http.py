"""HTTP feeds: GET each URL, ingest the body as one batch, and remember its validators.

- Conditional requests: the ETag and Last-Modified of the last body ingested go back as
  ``If-None-Match`` / ``If-Modified-Since``; a 304 (or a body with the same bytes) costs no ingest.
  Validators are saved only after the body's events are committed, so a crash in between means one
  more download, never a skipped body.
- Retries (tenacity): connection errors, timeouts, 5xx and 429, with exponential backoff, honouring
  ``Retry-After``. A 4xx is not retried (:class:`FetchRefused`), nor is a body that fails validation.
- Secrets: a token is read from the environment variable the job names and sent as a header. It
  never reaches a file, a log line, a run record or an error message (errors name the URL and status).
  A token in the URL itself (``?token=``, ``?api_key=``, ``user:password@``) is sent as written and
  shown everywhere else through :func:`ingest.redact.redact_url` (``?token=***``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ingest.errors import ConfigError, FetchError, FetchFailed, FetchRefused
from ingest.redact import redact_url
from ingest.pipeline import ingest_file
from ingest.progress import progress
from ingest.sources import JobState, RunContext
from store.backends import local_state

log = logging.getLogger("metricstore.jobs")
# httpx logs each response's status line, which the server writes (and may echo a token into).
logging.getLogger("httpx").setLevel(logging.WARNING)


def _phrase(status: int) -> str:
    """The standard reason phrase: a server's own (it may echo the request's token) is never shown."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def safe_url(url: str) -> str:
    """``url`` as it may be shown and recorded (see :func:`ingest.redact.redact_url`)."""
    return redact_url(url)


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class _Wait:
    """Exponential backoff, or the server's ``Retry-After`` when it gives one (capped)."""

    def __init__(self, backoff: float, max_backoff: float) -> None:
        self.exp = wait_exponential(multiplier=backoff, max=max_backoff)
        self.max = max_backoff

    def __call__(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        ra = getattr(exc, "retry_after", None)
        if ra is not None:
            return float(min(ra, self.max))
        return float(self.exp(rs))


@dataclass
class Fetched:
    url: str
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class HttpFeed:
    """GET ``urls``; ingest each new body as one batch.

    Args:
        urls: the URLs (``{cik}`` already expanded).
        user_agent: sent with every request (the SEC requires a name and an e-mail address).
        token_env: name of the environment variable holding a bearer token, if any.
        timeout: seconds for connecting and for each read.
        attempts, backoff, max_backoff: the retry policy for transient failures.
    """

    urls: list[str]
    user_agent: str
    token_env: str | None = None
    token_header: str = "Authorization"
    token_prefix: str = "Bearer "
    timeout: float = 30.0
    fmt: str = "auto"
    skip_invalid: bool = False
    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 60.0
    config_file: str = "jobs.toml"
    ingest_options: dict[str, Any] = field(default_factory=dict)
    max_rate: float = 10.0
    _last_request: float = 0.0

    def _pace(self) -> None:
        """At most ``max_rate`` requests a second, retries included (a polite client)."""
        gap = 1.0 / self.max_rate - (time.monotonic() - self._last_request)
        if gap > 0:
            time.sleep(gap)
        self._last_request = time.monotonic()

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise ConfigError(self.config_file, f"environment variable {self.token_env} is not set "
                                                    "(it holds the token for this feed)", field="source.token_env")
            headers[self.token_header] = f"{self.token_prefix}{token}"
        return headers

    def fetch(self, client: httpx.Client, url: str, validators: dict[str, Any]) -> Fetched:
        """One URL, retried on transient failures. Raises :class:`FetchFailed` or :class:`FetchRefused`."""
        cond: dict[str, str] = {}
        if validators.get("etag"):
            cond["If-None-Match"] = str(validators["etag"])
        if validators.get("last_modified"):
            cond["If-Modified-Since"] = str(validators["last_modified"])

        shown = safe_url(url)

        def attempt() -> Fetched:
            self._pace()
            try:
                r = client.get(url, headers=cond)
            except httpx.TimeoutException:
                raise FetchFailed(shown, f"timed out (timeout {self.timeout:g} s)") from None
            except httpx.TransportError as exc:
                raise FetchFailed(shown, f"connection failed ({type(exc).__name__})") from None
            if r.status_code == 304:
                return Fetched(url, 304)
            if r.status_code == 429 or r.status_code >= 500:
                err = FetchFailed(shown, _phrase(r.status_code), status=r.status_code)
                err.retry_after = retry_after_seconds(r.headers.get("Retry-After"))  # type: ignore[attr-defined]
                raise err
            if r.status_code >= 400:
                raise FetchRefused(shown, _phrase(r.status_code) + " (not retried)", status=r.status_code)
            if r.status_code != 200:
                raise FetchRefused(shown, f"unexpected status {r.status_code}", status=r.status_code)
            return Fetched(url, 200, r.content, r.headers.get("ETag"), r.headers.get("Last-Modified"))

        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=_Wait(self.backoff, self.max_backoff),
                            retry=retry_if_exception_type(FetchFailed), reraise=True,
                            before_sleep=lambda rs: log.warning("%s (attempt %d of %d); retrying",
                                                                rs.outcome.exception() if rs.outcome else shown,
                                                                rs.attempt_number, self.attempts))
        return retrying(attempt)

    def run(self, ctx: RunContext) -> None:
        state = JobState(ctx.store, ctx.job)
        downloads = local_state(ctx.store.root) / "jobs" / f"{ctx.job}.downloads"
        timeout = httpx.Timeout(self.timeout)
        with httpx.Client(timeout=timeout, headers=self._headers(), follow_redirects=True) as client, \
                progress(ctx.job, len(self.urls), terminal=ctx.terminal) as bar:
            for url in self.urls:
                shown = safe_url(url)
                seen = state.get(url)
                try:
                    got = self.fetch(client, url, seen)
                except FetchError as exc:
                    ctx.outcome.add_failure(shown, str(exc))
                    bar.advance(f"{shown}: {exc}")
                    continue
                digest = hashlib.sha256(got.body).hexdigest() if got.status == 200 else None
                if got.status == 304 or (digest is not None and digest == seen.get("sha256")):
                    ctx.outcome.add_unchanged(shown)
                    bar.advance(f"{shown}: not modified")
                    continue
                path = downloads / _file_name(url)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(got.body)
                try:
                    report = ingest_file(ctx.store, path, catalog=ctx.catalog, fmt=self.fmt,
                                         skip_invalid=self.skip_invalid, run_id=ctx.run_id, **self.ingest_options)
                finally:
                    path.unlink(missing_ok=True)
                report.file = shown
                if report.error:
                    report.error = redact_url(report.error.replace(str(path), shown))
                ctx.outcome.add_file(report, shown)
                if report.ok:
                    state.put(url, {"etag": got.etag, "last_modified": got.last_modified, "sha256": digest,
                                    "run_id": ctx.run_id})
                bar.advance(f"{shown}: {report.summary().split(': ', 1)[-1]}")


def _file_name(url: str) -> str:
    """A local name that keeps the URL's extension (so the format is detected) and is unique per URL."""
    last = Path(urlsplit(url).path).name or "body"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in last)[:80]
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{safe}"

