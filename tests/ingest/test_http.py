"""HTTP feeds against a real HTTP server on 127.0.0.1 serving the shared SEC files in place."""

from __future__ import annotations

import http.server
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest import READERS, Catalog
from ingest.http import retry_after_seconds
from ingest.jobs import load_jobs
from ingest.runner import run_job
from store import Store
from tests.conftest import SHARED_DATA, fact, http_server, needs_shared, write_csv
from tests.ingest.jobhelpers import event_ids, runs, write_jobs

LPA = ("sec", "CIK0001997711_logistic_properties_americas_ifrs.json")
TOKEN = "tok-3f9a1c77e2b54d0e-very-secret"


@dataclass
class Feed:
    """What the test server saw and serves: bodies by path, scripted failures, request log."""

    bodies: dict[str, Path] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)   # path -> how many 503s before success
    slow: dict[str, float] = field(default_factory=dict)
    needs_token: set[str] = field(default_factory=set)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.hits if p == path)


def make_handler(feed: Feed) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            feed.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path in feed.slow:
                time.sleep(feed.slow[self.path])
            if feed.fail_first.get(self.path, 0) > 0:
                feed.fail_first[self.path] -= 1
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path in feed.needs_token and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            src = feed.bodies.get(self.path)
            if src is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = src.read_bytes()
            etag = f'"{len(body)}-{int(src.stat().st_mtime_ns)}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@pytest.fixture
def feed() -> Iterator[Feed]:
    f = Feed()
    with http_server(make_handler(f)) as f.base:
        yield f


def http_job(tmp_path: Path, urls: list[str], extra: str = "", attempts: int = 3) -> Path:
    quoted = ", ".join(f'"{u}"' for u in urls)
    return write_jobs(tmp_path / "jobs.toml", f"""
[jobs.feed]
trigger = {{ cron = "0 3 * * *" }}
retry = {{ attempts = {attempts}, backoff = "0.1s", max_backoff = "1s" }}

[jobs.feed.source]
type = "http"
urls = [{quoted}]
user_agent = "metricstore tests (tests@example.com)"
timeout = "0.5s"
{extra}
""")


def test_sec_companyfacts_over_http_then_etag_makes_the_next_run_free(tmp_path: Path, store: Store,
                                                                        catalog: Catalog, feed: Feed) -> None:
    src = needs_shared(*LPA)
    if "sec-companyfacts" not in READERS:
        pytest.skip("the sec-companyfacts reader is not registered in this tree")
    feed.bodies["/api/xbrl/companyfacts/CIK0001997711.json"] = src      # served from ../shared/data in place
    config = load_jobs(http_job(tmp_path, [f"{feed.base}/api/xbrl/companyfacts/CIK{{cik}}.json"],
                                'ciks = ["1997711"]'))
    first = run_job(config, "feed", store, catalog)
    assert first.status == "ok", first.error
    assert first.outcome.added > 500 and first.outcome.rejected == 0
    n = len(event_ids(store))
    second = run_job(config, "feed", store, catalog)
    assert second.status == "skipped" and second.outcome.unchanged == 1 and second.outcome.added == 0
    (_, h1), (_, h2) = feed.hits
    assert h1["user-agent"] == "metricstore tests (tests@example.com)" and "if-none-match" not in h1
    assert h2["if-none-match"].startswith('"')                             # the conditional request
    assert len(event_ids(store)) == n
    assert [(r["status"], r["unchanged"]) for r in runs(store, "feed")] == [("ok", 0), ("skipped", 1)]
    assert "unchanged" in str(runs(store, "feed")[1]["error"])
    assert str(SHARED_DATA) not in str(runs(store, "feed")[0]["inputs"])


def test_a_503_is_retried_a_404_is_not_and_both_are_recorded(tmp_path: Path, store: Store, catalog: Catalog,
                                                               feed: Feed) -> None:
    good = write_csv(tmp_path / "facts.csv", [fact(), fact(period="FY2023", value="80")])
    feed.bodies["/facts.csv"] = good
    feed.fail_first["/facts.csv"] = 1
    config = load_jobs(http_job(tmp_path, [f"{feed.base}/facts.csv", f"{feed.base}/gone.csv"]))
    result = run_job(config, "feed", store, catalog)
    assert feed.count("/facts.csv") == 2 and feed.count("/gone.csv") == 1   # 503 retried; 404 not
    assert result.status == "partial" and result.outcome.added == 2
    (rec,) = runs(store, "feed")
    assert rec["status"] == "partial" and "HTTP 404" in str(rec["error"]) and "gone.csv" in str(rec["error"])
    assert rec["inputs"] == [f"{feed.base}/facts.csv", f"{feed.base}/gone.csv"]


def test_a_slow_response_times_out_is_retried_then_recorded_failed(tmp_path: Path, store: Store,
                                                                    catalog: Catalog, feed: Feed) -> None:
    feed.bodies["/slow.csv"] = write_csv(tmp_path / "s.csv", [fact()])
    feed.slow["/slow.csv"] = 2.0
    config = load_jobs(http_job(tmp_path, [f"{feed.base}/slow.csv"], attempts=2))
    result = run_job(config, "feed", store, catalog)
    assert result.status == "failed" and "timed out" in str(result.error)
    assert feed.count("/slow.csv") == 2 and event_ids(store) == set()
    assert runs(store, "feed")[0]["status"] == "failed"


def test_data_that_fails_validation_is_not_retried(tmp_path: Path, store: Store, catalog: Catalog,
                                                   feed: Feed) -> None:
    feed.bodies["/bad.csv"] = write_csv(tmp_path / "bad.csv", [fact(value="n/a")])
    config = load_jobs(http_job(tmp_path, [f"{feed.base}/bad.csv"]))
    result = run_job(config, "feed", store, catalog)
    assert result.status == "failed" and result.outcome.rejected == 1 and feed.count("/bad.csv") == 1
    again = run_job(config, "feed", store, catalog)            # still bad: still reported, not hidden by 304
    assert again.status == "failed"


def test_the_token_comes_from_the_environment_and_is_never_written(tmp_path: Path, store: Store,
                                                                   catalog: Catalog, feed: Feed,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    feed.bodies["/private.csv"] = write_csv(tmp_path / "p.csv", [fact()])
    feed.needs_token.add("/private.csv")
    config = load_jobs(http_job(tmp_path, [f"{feed.base}/private.csv"], 'token_env = "FEED_TOKEN"'))
    monkeypatch.delenv("FEED_TOKEN", raising=False)
    unset = run_job(config, "feed", store, catalog)
    assert unset.status == "failed" and "FEED_TOKEN is not set" in str(unset.error)
    monkeypatch.setenv("FEED_TOKEN", TOKEN[::-1])                # a wrong token: 401, not retried
    wrong = run_job(config, "feed", store, catalog)
    assert wrong.status == "failed" and "HTTP 401" in str(wrong.error) and feed.count("/private.csv") == 1
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    ok = run_job(config, "feed", store, catalog)
    assert ok.status == "ok" and ok.outcome.added == 1
    assert feed.hits[-1][1]["authorization"] == f"Bearer {TOKEN}"
    for p in store.root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert TOKEN.encode() not in data and TOKEN[::-1].encode() not in data, p


def test_retry_after() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    import datetime as dt
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30


def test_credentials_in_a_url_are_not_recorded(tmp_path: Path, store: Store, catalog: Catalog, feed: Feed) -> None:
    from ingest.http import safe_url

    assert safe_url("https://bob:pw123@h.example:8443/a?x=1") == "https://h.example:8443/a?x=1"
    url = feed.base.replace("http://", "http://bob:pw123secret@") + "/nothing.csv"
    result = run_job(load_jobs(http_job(tmp_path, [url])), "feed", store, catalog)
    assert result.status == "failed" and "HTTP 404" in str(result.error)
    for p in store.root.rglob("*"):
        if p.is_file():
            assert b"pw123secret" not in p.read_bytes(), p
