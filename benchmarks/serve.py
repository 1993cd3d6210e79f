"""``serve_series_growth``: a one-series query over the PostgreSQL wire protocol (psycopg against a
``metricstore serve`` process) against the same query through the in-process helper.

``python -m benchmarks.serve SPEC`` measures one store (run by ``benchmarks.run`` in a process of its
own, like every worker) and prints the times as JSON; the target is wire/in-process <= 2x at p50.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.systems import SERIES_METRIC
from benchmarks.worker import peak_rss_mb, timed

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "serve_series_growth"
#: the query both sides run: one entity's one metric from the growth view, every column
QUERY = "SELECT * FROM growth WHERE entity = {p1} AND metric = {p2}"
WARMUP, REPEATS = 10, 200
USER, PASSWORD = "bench", "bench password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"metricstore serve exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("metricstore serve did not listen")


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """The times of the one-series query in-process and over the wire, on the store at ``spec['path']``."""
    import psycopg

    from queries import MetricStore

    path, entity, repeats = spec["path"], spec["entity"], spec.get("repeats", REPEATS)
    params = [entity, SERIES_METRIC]
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "METRICSTORE_SERVE_USER": USER,
           "METRICSTORE_SERVE_PASSWORD": PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "metricstore", "serve", "--store", path, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    dsn = f"host=127.0.0.1 port={port} dbname=metricstore user={USER} password='{PASSWORD}' sslmode=disable"
    local_sql, wire_sql = QUERY.format(p1="?", p2="?"), QUERY.format(p1="%s", p2="%s")
    try:
        _wait(port, proc)
        with MetricStore(path) as ms, psycopg.connect(dsn, autocommit=True) as conn:
            rows = ms.sql(local_sql, params).height
            assert len(conn.execute(wire_sql, params).fetchall()) == rows
            # the two take turns, call by call: on a shared machine both meet the same load
            in_process = lambda: ms.sql(local_sql, params)  # noqa: E731
            over_wire = lambda: conn.execute(wire_sql, params).fetchall()  # noqa: E731
            local: list[float] = []
            wire: list[float] = []
            for _ in range(WARMUP):
                in_process()
                over_wire()
            for _ in range(repeats):
                local += timed(in_process, 1)
                wire += timed(over_wire, 1)
        server_rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"in_process": local, "wire": wire, "rows": rows, "server_rss_mb": server_rss,
            "client_rss_mb": peak_rss_mb()}


def run(results: list[dict[str, Any]], size: int, store: Path, entity: str, record: Any) -> None:
    """Measure in a process of its own and record two rows: ``metricstore`` (the helper) and
    ``metricstore-wire`` (psycopg over ``metricstore serve``; its peak RSS is the server's), with the
    wire's p50 ratio."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "benchmarks.serve", json.dumps({"path": str(store), "entity": entity})],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{SCENARIO} failed:\n{out.stderr[-3000:]}")
    times = json.loads(out.stdout.strip().splitlines()[-1])
    base = record(results, SCENARIO, size, "metricstore", {"times": times["in_process"], "peak_rss_mb": times["client_rss_mb"]},
                  rows=times["rows"], path="in-process helper")
    wire = record(results, SCENARIO, size, "metricstore-wire", {"times": times["wire"], "peak_rss_mb": times["server_rss_mb"]},
                  rows=times["rows"], path="psycopg over metricstore serve")
    wire["ratio_to_in_process"] = round(wire["median_s"] / base["median_s"], 3)


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
