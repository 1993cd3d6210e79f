"""A secret in a feed URL itself (``?token=``, ``&api_key=``, ``user:password@``) is sent as written
and shown nowhere: not in log lines, errors, the run log, the jobs' state file or CLI output.

The real command (``metricstore jobs run``) against a real HTTP server on 127.0.0.1 that echoes
the request line back in its status phrase and body, as a hostile or careless server would.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.redact import redact_url
from tests.conftest import http_server, run_cli
from tests.ingest.jobhelpers import write_http_job, write_jobs

SECRET = "qs-secret-5d1e9b27c04a4f3e-do-not-leak"
PASSWORD = "pw-secret-81b0c6e2f9d7-do-not-leak"
CSV = ("entity,metric,period,value,unit,reported_at,source\n"
       "acme,revenue,FY2024,100,USD m,2025-02-01,acme-10k-2024\n")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://feed.example/x.json?token=abc", "https://feed.example/x.json?token=***"),
    ("https://feed.example/x.json?api_key=abc&year=2024", "https://feed.example/x.json?api_key=***&year=2024"),
    ("https://feed.example/x?cik=0000320193&access_token=abc#top", "https://feed.example/x?cik=0000320193&access_token=***#top"),
    ("https://user:pw@feed.example/x.csv", "https://feed.example/x.csv"),
    ("https://s3.example/b/k?X-Amz-Credential=AKIA&X-Amz-Signature=ff&X-Amz-Date=1",
     "https://s3.example/b/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Date=1"),
    ("GET https://a.example/f?apikey=abc failed (404); then http://b.example/g?Token=x",
     "GET https://a.example/f?apikey=*** failed (404); then http://b.example/g?Token=***"),
    ("https://feed.example/x.csv?year=2024", "https://feed.example/x.csv?year=2024"),
    ("data/drop/a.csv", "data/drop/a.csv"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []   # (path with query, Authorization header)
        self.base = ""


def _handler(srv: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, reason: str | None = None) -> None:
            self.send_response(code, reason)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            srv.requests.append((self.path, self.headers.get("Authorization") or ""))
            echo = f"you asked for {self.path}".encode()
            if self.path.startswith("/feed.csv?") or self.path.startswith("/feed2.csv"):
                self._send(200, CSV.encode())
            elif self.path.startswith("/flaky.csv"):
                self._send(503, echo, reason=f"Unavailable {self.path}")
            elif self.path.startswith("/bad.csv"):
                self._send(200, b"entity,metric,period,value,unit,reported_at,source\nacme,revenue,FY2024,"
                                b"not-a-number,USD m,2025-02-01,s\n")
            else:
                self._send(404, echo, reason=f"Not Found {self.path}")

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    with http_server(_handler(srv)) as srv.base:
        yield srv


def test_a_token_in_a_feed_url_query_is_redacted_everywhere(tmp_path: Path, server: Server) -> None:
    host = server.base.removeprefix("http://")
    urls = [f"{server.base}/feed.csv?token={SECRET}",
            f"{server.base}/missing.json?api_key={SECRET}",
            f"{server.base}/flaky.csv?access_token={SECRET}&year=2024",
            f"{server.base}/bad.csv?apikey={SECRET}",
            f"http://reader:{PASSWORD}@{host}/feed2.csv?cik=320193"]
    config = write_http_job(tmp_path / "jobs.toml", urls, who="redaction")
    store = tmp_path / "store"
    run = run_cli("jobs", "run", "feed", "--config", str(config), store=store)
    again = run_cli("jobs", "run", "feed", "--config", str(config), store=store)   # the state file is read back
    runs = run_cli("jobs", "runs", "feed", "--format", "json", store=store)
    listing = run_cli("schedule", "list", "--config", str(config), "--format", "json", store=store)
    sql = run_cli("sql", "SELECT status, inputs, error FROM ingest_runs", "--format", "json", store=store)

    # the job really ran with the secrets: the server saw them in the query string
    assert run.returncode == 1, run.stdout + run.stderr             # partial: some feeds failed
    paths = [p for p, _ in server.requests]
    assert f"/feed.csv?token={SECRET}" in paths and f"/missing.json?api_key={SECRET}" in paths
    assert paths.count(f"/flaky.csv?access_token={SECRET}&year=2024") >= 2   # retried
    assert "/feed2.csv?cik=320193" in paths
    # ... and the outputs say which feed failed, without the secret
    assert "missing.json?api_key=***" in run.stdout and "flaky.csv?access_token=***&year=2024" in run.stdout
    assert "feed.csv?token=***" in sql.stdout and "feed2.csv?cik=320193" in sql.stdout
    assert "retrying" in run.stderr and "flaky.csv?access_token=***" in run.stderr   # the log lines
    for name, proc in (("jobs run", run), ("jobs run again", again), ("jobs runs", runs),
                       ("schedule list", listing), ("sql ingest_runs", sql)):
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (name, proc.stderr)
        for secret in (SECRET, PASSWORD):
            assert secret not in proc.stdout + proc.stderr, f"the secret leaked into {name}"
    for p in store.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert SECRET.encode() not in data and PASSWORD.encode() not in data, f"the secret leaked into {p}"
    # the second run found the first's state under the redacted URL: an unchanged feed is not ingested again
    assert "2 unchanged" in again.stdout
    assert len([p for p in paths if p.startswith("/feed.csv")]) == 2


def test_a_bad_feed_url_with_a_token_is_a_one_line_error_without_it(tmp_path: Path) -> None:
    config = write_jobs(tmp_path / "jobs.toml", f"""
[jobs.feed]
trigger = {{ cron = "0 3 * * *" }}
source = {{ type = "http", urls = ["ftp://feed.example/x.csv?token={SECRET}"] }}
""")
    out = run_cli("schedule", "list", "--config", str(config), store=tmp_path / "store")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "ftp://feed.example/x.csv?token=***" in out.stderr and SECRET not in out.stderr + out.stdout
