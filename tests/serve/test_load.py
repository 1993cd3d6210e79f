"""``metricstore serve`` under load: 200 idle connections, and 32 clients running mixed queries at once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from queries import MetricStore
from tests.serve.conftest import PASSWORD, USER, Served, free_port, start, stop, wait_listening

IDLE = 200
#: clients at once and queries each (METRICSTORE_LOAD_QUERIES makes a shorter run to try a change)
CLIENTS, QUERIES = 32, int(os.environ.get("METRICSTORE_LOAD_QUERIES", "200"))
DAY = "2025-03-18"
SERIES = "SELECT period, value, yoy_pct FROM growth WHERE entity = %s AND metric = %s ORDER BY period_end, value"


@pytest.fixture(scope="module")
def wide(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The seed store served with room for 250 sessions."""
    log = tmp_path_factory.mktemp("wide") / "serve.log"
    port = free_port()
    proc = start(["--store", str(served.store.root), "--port", str(port), "--max-connections", "250"], log,
                 env={"METRICSTORE_SERVE_USER": USER, "METRICSTORE_SERVE_PASSWORD": PASSWORD})
    try:
        wait_listening(port, proc, log)
        yield Served(served.store, port, proc, log)
    finally:
        stop(proc)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's memory from /proc")
def test_200_idle_connections_and_the_server_still_answers(wide: Served) -> None:
    before = rss_mb(wide.proc.pid)
    conns: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(IDLE):
            conns.append(psycopg.connect(wide.dsn(), autocommit=True))
        held = rss_mb(wide.proc.pid)
        # an idle session is a thread and a socket: its sandbox opens with its first query (what grows
        # is the allocator's per-thread arenas keeping scrypt's 16 MB buffers, bounded by their count)
        assert held - before < 1024, (before, held)
        with psycopg.connect(wide.dsn()) as conn:
            assert conn.execute("SELECT count(*) FROM growth").fetchone()[0] > 0  # type: ignore[index]
        assert conns[0].execute("SELECT 1").fetchone() == (1,)      # an idle one wakes up
        assert conns[-1].execute("SELECT 1").fetchone() == (1,)
    finally:
        for c in conns:
            c.close()
    assert wide.proc.poll() is None


@pytest.mark.slow   # minutes on two cores: `make test-slow` (CI runs it), not `make test`
def test_32_clients_with_200_mixed_queries_each(wide: Served) -> None:
    with MetricStore(wide.store) as ms:
        series = ms.sql(SERIES.replace("%s", "?"), ["xiaomi", "revenue"]).rows()
        whole = ms.sql("SELECT count(*) AS n, sum(value) AS s FROM growth").rows()[0]
        then = ms.sql("SELECT count(*) AS n FROM facts", as_of=DAY).rows()[0][0]
    assert series and whole[0] > 0
    errors: list[str] = []
    counts = [0] * CLIENTS
    barrier = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        try:
            with psycopg.connect(wide.dsn().replace("connect_timeout=10", "connect_timeout=120"),
                                 autocommit=True) as conn:
                conn.execute("SELECT 1")       # the session's sandbox opens before the race starts
                barrier.wait(timeout=120)
                for q in range(QUERIES):
                    kind = (i + q) % 4
                    if kind == 0:
                        got = conn.execute(SERIES, ["xiaomi", "revenue"]).fetchall()
                        ok = got == series
                    elif kind == 1:
                        rows = conn.execute("SELECT * FROM growth").fetchall()
                        ok = len(rows) == whole[0]
                    elif kind == 2:
                        conn.execute(f"SET as_of = '{DAY}'")
                        ok = conn.execute("SELECT count(*) FROM facts").fetchone() == (then,)
                        conn.execute("RESET as_of")
                    else:
                        got = conn.execute("SELECT count(*), sum(value) FROM growth").fetchone()
                        ok = got is not None and got[0] == whole[0] and abs(got[1] - whole[1]) < 1e-6 * abs(whole[1])
                    if not ok:
                        errors.append(f"client {i} query {q} kind {kind}: wrong answer")
                    counts[i] += 1
        except Exception as exc:  # every failure is reported, not only the first thread's
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = started + 3600      # one deadline for all: a slow machine's last thread is still a correct one
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"clients still running after {elapsed:.0f} s"
    assert not errors, errors[:5]
    assert counts == [QUERIES] * CLIENTS, (counts, elapsed)
    assert wide.proc.poll() is None
