"""docs/walkthrough.md, step by step, as a new user runs it: Apple's FY2009 10-K dropped in a folder,
the store served to psql and psycopg, growth as of a date, then the 10-K/A that restated it picked up
by the real scheduler, a notification to a real webhook, and the charts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.changes.webhook import Hook, webhook
from tests.conftest import ROOT, run_cli
from tests.serve.conftest import free_port, start, stop, wait_listening

EXAMPLES = ROOT / "data" / "examples"
USER, PASSWORD = "analyst", "walk through it"
JOBS = """
[jobs.analyst-drops]
trigger = { interval = "1s" }
source = { type = "drop_folder", path = "drop", glob = "*", format = "auto", settle = "1s" }

[notify]
urls_env = ["METRICSTORE_NOTIFY_URLS"]
"""


@pytest.fixture
def hook() -> Iterator[Hook]:
    with webhook() as h:
        yield h


def growth(dsn: str, metric: str) -> list[tuple[str, float, float | None]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT period, value, round(yoy_pct * 100, 1) FROM growth "
                            "WHERE entity = %s AND metric = %s ORDER BY period", ["aapl", metric]).fetchall()
    return [(str(p), float(v), None if y is None else float(y)) for p, v, y in rows]


def wait_for(hook: Hook, proc: subprocess.Popen[str], deadline_s: float = 120) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not hook.messages():
        assert proc.poll() is None, "the scheduler exited"
        time.sleep(0.2)
    assert hook.messages(), "no notification arrived"
    return str(hook.messages()[0]["body"]["message"])


def test_the_walkthrough(tmp_path: Path, hook: Hook) -> None:
    store = tmp_path / "store"
    (tmp_path / "jobs.toml").write_text(JOBS)
    drop = tmp_path / "drop"
    drop.mkdir()
    jobs = ["-c", str(tmp_path / "jobs.toml"), "--store", str(store)]

    # 1. the FY2009 10-K arrives in the drop folder: new figures, which notify nobody by default
    shutil.copy(EXAMPLES / "aapl-10k-2009.csv", drop)
    env = {"METRICSTORE_NOTIFY_URLS": hook.url.replace("http://", "json://")}
    first = run_cli("jobs", "run", "analyst-drops", *jobs, env=env)
    assert first.returncode == 0 and "6 events added" in first.stdout, first.stdout + first.stderr
    assert hook.messages() == []

    # 2. served: psql lists the views and answers as of a date; psycopg picks a date by database name
    port = free_port()
    server = start(["--store", str(store), "--port", str(port)], tmp_path / "serve.log",
                   env={"METRICSTORE_SERVE_USER": USER, "METRICSTORE_SERVE_PASSWORD": PASSWORD})
    try:
        wait_listening(port, server, tmp_path / "serve.log")
        dsn = f"host=127.0.0.1 port={port} user={USER} password='{PASSWORD}' sslmode=disable connect_timeout=10"
        psql = shutil.which("psql")
        if psql is not None:
            out = subprocess.run([psql, dsn + " dbname=metricstore", "-c", r"\dv", "-c", "SET as_of = '2009-12-31'",
                                  "-c", "SELECT period, value FROM growth WHERE entity = 'aapl' "
                                        "AND metric = 'revenue' ORDER BY period"],
                                 capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
            assert out.returncode == 0, out.stderr
            assert " growth " in out.stdout and " changes " in out.stdout
            assert "FY2008 | 32479000000" in out.stdout.replace(".0", "")
        before = growth(dsn + " dbname=asof_2009-12-31", "revenue")
        assert before == [("FY2007", 24_006e6, None), ("FY2008", 32_479e6, 35.3), ("FY2009", 36_537e6, 12.5)]

        # 3. the scheduler picks up the 10-K/A that restated both years and sends the feed's lines
        scheduler = subprocess.Popen([sys.executable, "-m", "metricstore", "schedule", "run", *jobs],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                     env={**os.environ, **env})
        try:
            shutil.copy(EXAMPLES / "aapl-10ka-2010.csv", drop)
            message = wait_for(hook, scheduler)
        finally:
            scheduler.send_signal(signal.SIGINT)
            scheduler.wait(timeout=60)
        assert ("aapl revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) "
                "by 0001193125-10-012091 10-K/A, filed 2010-01-25") in message
        assert "aapl net_income FY2009 restated +44.4 % (5,704 -> 8,235 M USD)" in message
        assert "aapl net_income FY2007 restated -0.029 %" in message

        # 4. the same connection string sees the restatement at once; the past date still answers as it did
        assert growth(dsn + " dbname=metricstore", "revenue") == [
            ("FY2007", 24_578e6, None), ("FY2008", 37_491e6, 52.5), ("FY2009", 42_905e6, 14.4)]
        assert growth(dsn + " dbname=asof_2009-12-31", "revenue") == before
    finally:
        stop(server)

    # 5. the charts: as of the date, and now with the version the restatement replaced
    chart = tmp_path / "restated.svg"
    drawn = run_cli("plot", "aapl", "revenue", "--freq", "FY", "--vintages", "-o", str(chart), store=store)
    assert drawn.returncode == 0, drawn.stderr
    svg = chart.read_text()
    assert "3 figure(s) restated since first published" in svg and "restated 2010-01-25" in svg
    then = tmp_path / "asof.svg"
    assert run_cli("plot", "aapl", "revenue", "--freq", "FY", "--as-of", "2009-12-31", "-o", str(then),
                   store=store).returncode == 0
    assert "as of 2009-12-31" in then.read_text() and "+35.3 %" in then.read_text()
