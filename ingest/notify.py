"""Notifications: one message per ingest run that changed the current answers, through apprise.

``jobs.toml``'s ``[notify]`` section (:class:`ingest.jobs.Notify`) names the environment variables
that hold the apprise URLs (Slack, Teams, e-mail, a webhook: credentials never go in a file) and
the rules: the kinds of change, the entities and metrics, a minimum size of change. After a run
that added events, :func:`notify_run` asks the store for that run's changes, keeps those the
rules choose, and sends one message to every target; its lines are the feed's summaries::

    aapl revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) by 0001193125-10-012091 10-K/A, filed 2010-01-25

The changes come from ``metricstore changes --run RUN_ID --format json``, run in a process of its
own: the feed is the query layer's, which ingestion does not import (as the maintenance job does
with ``metricstore compact``). A target that fails is tried again (``attempts``, with a backoff
doubling from ``backoff``); what happened is returned as one line for the run record. A
notification never fails the ingest, and no URL or credential reaches a log line or the run
record: a target is named by its service and place in the list, and apprise's own log lines are
captured, stripped of every part of the URLs, and recorded only in that form.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ingest.errors import ChangesUnavailable
from ingest.jobs import Notify
from ingest.redact import redact_url
from store import Store

log = logging.getLogger("metricstore.jobs")

#: The loggers captured while apprise sends: its own and its HTTP client's (their lines name a target's URL).
_CAPTURED_LOGGERS = ("apprise", "urllib3", "requests")
_SENDING = threading.Lock()     # the capture swaps the apprise logger's handlers: one sender at a time
MAX_NOTE = 1000


def run_changes(store: Store, run_id: str, *, hidden: Sequence[str] = (), timeout: float = 600) -> list[dict[str, Any]]:
    """The changes one run made, as rows of the ``changes`` view (in a process of its own).

    ``hidden`` names environment variables the process does not need (the targets' URLs)."""
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    cmd = [sys.executable, "-m", "metricstore", "changes", "--store", str(store.root), "--run", run_id,
           "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ChangesUnavailable(run_id, lines[-1] if lines else f"exit code {done.returncode}")
    rows = json.loads(done.stdout or "[]")
    return rows if isinstance(rows, list) else []


def chosen(rules: Notify, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes the rules choose: kind, entity, metric, and at least ``min_change_pct`` percent
    where the change has a percentage (a ratio's change counts in points)."""
    def size_ok(r: dict[str, Any]) -> bool:
        if rules.min_change_pct <= 0:
            return True
        pct = r.get("change_pct")
        if pct is None and r.get("unit") == "ratio" and r.get("change") is not None:
            pct = r["change"]
        return pct is None or abs(float(pct)) * 100 >= rules.min_change_pct

    return [r for r in rows
            if r.get("change_kind") in rules.kinds
            and (not rules.entities or str(r.get("entity", "")).lower() in rules.entities)
            and (not rules.metrics or r.get("metric") in rules.metrics)
            and size_ok(r)]


def message(rules: Notify, job: str, run_id: str, rows: list[dict[str, Any]]) -> tuple[str, str]:
    """The title and body of a run's message: one line per change (at most ``max_lines``)."""
    title = f"{rules.title}: {job} changed {len(rows)} figure(s)"
    lines = [str(r["summary"]) for r in rows[: rules.max_lines]]
    if len(rows) > rules.max_lines:
        lines.append(f"... and {len(rows) - rules.max_lines} more: metricstore changes --run {run_id}")
    lines.append(f"(run {run_id})")
    return title, "\n".join(lines)


def secret_parts(url: str) -> list[str]:
    """The parts of an apprise URL that may be a credential: user, password, path segments, query
    values, fragment (not the scheme, host or port, which name the service)."""
    try:
        u = urlsplit(url)
    except ValueError:
        return [url]
    parts = [u.username or "", u.password or "", u.fragment, *u.path.split("/"),
             *(v for _, v in parse_qsl(u.query, keep_blank_values=True))]
    if "://" in url:   # apprise URLs such as slack://TokenA/TokenB put secrets where a host would be
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        if not re.fullmatch(r"[A-Za-z0-9.-]*\.[A-Za-z]{2,}(:\d+)?|\d+\.\d+\.\d+\.\d+(:\d+)?|localhost(:\d+)?|\[.*\](:\d+)?",
                            host):
            parts.append(host)
    return sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)


def scrub(text: str, urls: list[str]) -> str:
    """``text`` with every URL and every secret-looking part of them replaced by ``***``."""
    for url in urls:
        text = text.replace(url, "***")
        for part in secret_parts(url):
            text = text.replace(part, "***")
    return redact_url(text)


@contextmanager
def _captured() -> Iterator[list[str]]:
    """apprise's warnings while it sends, kept here; neither they nor its HTTP client's lines reach
    the process's logs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("apprise"):
                lines.append(record.getMessage())

    loggers = [logging.getLogger(name) for name in _CAPTURED_LOGGERS]
    with _SENDING:
        saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
        for lg in loggers:
            lg.handlers, lg.propagate = [Keep(logging.WARNING)], False
            lg.setLevel(logging.WARNING)
        try:
            yield lines
        finally:
            for lg, (handlers, propagate, level) in zip(loggers, saved, strict=True):
                lg.handlers, lg.propagate = handlers, propagate
                lg.setLevel(level)


@dataclass
class Delivery:
    """What sending to one target did."""

    target: str             # "json target 1": the service and its place, never the URL
    ok: bool
    attempts: int
    reason: str = ""


def deliver(url: str, target: str, title: str, body: str, *, attempts: int, backoff: float) -> Delivery:
    """Send one message to one apprise URL, trying ``attempts`` times with a doubling backoff."""
    import apprise

    sender = apprise.Apprise()
    with _captured():
        added = sender.add(url)
    if not added:
        return Delivery(target, False, 0, "not an apprise URL (see the apprise documentation for its services)")
    reason = ""
    for attempt in range(1, attempts + 1):
        with _captured() as lines:
            try:
                ok = bool(sender.notify(body=body, title=title))
            except Exception as exc:   # a plugin's own failure: the same as a refusal, tried again
                ok, lines[:] = False, [*lines, f"{type(exc).__name__}: {exc}"]
        if ok:
            return Delivery(target, True, attempt)
        reason = scrub("; ".join(lines[-2:]) or "not delivered", [url])
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(target, False, attempts, reason)


def targets(rules: Notify) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, URL) of every target the environment names, and the variables that are not set."""
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    for name in rules.urls_env:
        value = os.environ.get(name, "").strip()
        if not value:
            missing.append(name)
            continue
        for url in re.split(r"[\s,]+", value):
            if url:
                service = url.split("://", 1)[0] if "://" in url else "unknown"
                found.append((f"{service} target {len(found) + 1}", url))
    return found, missing


def send(rules: Notify, found: list[tuple[str, str]], missing: list[str], title: str, body: str) -> tuple[str, bool]:
    """Send the message to every target :func:`targets` found: one line saying what happened (for
    the run record), and whether every target got it."""
    notes = [f"{name} is not set" for name in missing]
    done = [deliver(url, label, title, body, attempts=rules.attempts, backoff=rules.backoff) for label, url in found]
    sent = [d for d in done if d.ok]
    notes += [f"{d.target}: not delivered after {d.attempts} attempt(s): {d.reason}" for d in done if not d.ok]
    retried = [f"{d.target} on attempt {d.attempts}" for d in sent if d.attempts > 1]
    head = f"sent to {len(sent)} of {len(found)} target(s)" + (f" ({', '.join(retried)})" if retried else "")
    text = head + ("; " + "; ".join(notes) if notes else "")
    return scrub(text, [url for _, url in found])[:MAX_NOTE], not notes


def notify_run(rules: Notify | None, job: str, store: Store, run_id: str, added: int) -> str | None:
    """Tell the targets what run ``run_id`` of ``job`` changed; the line for its run record, or
    None when there was nothing to tell. Never raises: a failed notification never fails a run."""
    if rules is None or added == 0 or (rules.jobs and job not in rules.jobs):
        return None
    found, missing = targets(rules)
    urls = [url for _, url in found]
    try:
        picked = chosen(rules, run_changes(store, run_id, hidden=rules.urls_env))
        if not picked:
            return None
        title, body = message(rules, job, run_id, picked)
        text, ok = send(rules, found, missing, title, body)
        note = f"{len(picked)} change(s) {text}"
    except Exception as exc:   # (the notification's failure is recorded; the run's outcome stands)
        note, ok = scrub(f"not sent: {exc}" if isinstance(exc, ChangesUnavailable)
                         else f"not sent: {type(exc).__name__}: {exc}", urls)[:MAX_NOTE], False
    log.log(logging.INFO if ok else logging.WARNING, "%s: notify: %s", job, note)
    return note
