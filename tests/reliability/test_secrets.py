"""A feed token never reaches a log line, a run record, an error message or a file, even when the
server is hostile: it echoes the token in its status line or body, or redirects to another origin.

The real command (``metricstore jobs run``) against a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import http_server, run_cli
from tests.ingest.jobhelpers import write_http_job

TOKEN = "tok-reliability-7c41d9e0a2b34f58-do-not-leak"


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Authorization header) per request
        self.other_origin_auth: list[str] = []
        self.base = self.other = ""


def _handler(srv: Server, *, other: bool = False) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes = b"", reason: str | None = None, **headers: str) -> None:
            self.send_response(code, reason)
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            auth = self.headers.get("Authorization") or ""
            if other:
                srv.other_origin_auth.append(auth)
                self._send(404)
                return
            srv.seen.append((self.path, auth))
            if self.path == "/echo-status":
                self._send(500, reason=f"Internal error for {auth}")
            elif self.path == "/echo-body":
                self._send(401, body=f"token {auth} is not valid".encode(), reason=f"Unauthorized {auth}")
            elif self.path == "/redirect":
                self._send(302, Location=f"{srv.other}/elsewhere.csv")
            else:
                self._send(404, reason=f"Not Found {auth}")

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    with http_server(_handler(srv)) as srv.base, http_server(_handler(srv, other=True), host="localhost") as srv.other:
        yield srv


PATHS = ["/echo-status", "/echo-body", "/redirect", "/missing.csv"]


def test_a_failing_authenticated_job_leaks_its_token_nowhere(tmp_path: Path, server: Server) -> None:
    config = write_http_job(tmp_path / "jobs.toml", [f"{server.base}{p}" for p in PATHS], who="reliability",
                            extra='token_env = "FEED_TOKEN"\n')
    store = tmp_path / "store"
    env = {"FEED_TOKEN": TOKEN}
    run = run_cli("jobs", "run", "feed", "--config", str(config), store=store, env=env)
    runs = run_cli("jobs", "runs", "feed", "--format", "json", store=store, env=env)
    sql = run_cli("sql", "SELECT * FROM ingest_runs", "--format", "csv", store=store, env=env)
    # the job really ran, authenticated, and failed
    assert run.returncode == 1, run.stdout + run.stderr
    assert {p for p, _ in server.seen} >= set(PATHS)
    assert all(auth == f"Bearer {TOKEN}" for _, auth in server.seen)
    assert runs.returncode == 0 and sql.returncode == 0 and "feed" in sql.stdout
    assert "Traceback" not in run.stderr + runs.stderr + sql.stderr
    # ... and the token is nowhere: output, logs, run records, errors, files
    for name, text in (("jobs run", run.stdout + run.stderr), ("jobs runs", runs.stdout + runs.stderr),
                       ("ingest_runs", sql.stdout + sql.stderr)):
        assert TOKEN not in text, f"the token leaked into {name}: {text[:2000]}"
    for p in store.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), f"the token leaked into {p}"
    # a redirect to another origin does not carry the token there
    assert all(TOKEN not in a for a in server.other_origin_auth)
