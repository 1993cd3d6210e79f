"""The harness's child processes: their environment, the writers (``_writer.py``), the ack files
they write, and the batches found in a store's files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def read_acks(ack: Path) -> tuple[bool, list[int], set[int]]:
    """(ready, batches begun, batches acknowledged) from a writer's ack file."""
    ready, begun, acked = False, [], set()
    if ack.exists():
        for line in ack.read_text().splitlines():
            parts = line.split()
            if parts == ["ready"]:
                ready = True
            elif len(parts) >= 2 and parts[0] == "begin":
                begun.append(int(parts[1]))
            elif len(parts) == 4 and parts[0] == "ok":
                acked.add(int(parts[1]))
    return ready, begun, acked


def wait_ready(proc: subprocess.Popen[bytes], ack: Path, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_acks(ack)[0]:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def end(proc: subprocess.Popen[bytes], fault: str, after_s: float) -> None:
    """Let a child armed with a fault point kill itself; kill an unarmed one after ``after_s``."""
    if fault:
        proc.wait(timeout=300)
    else:
        time.sleep(after_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def spawn_writer(root: Path, writer: int, first: int, count: int, rows: int, ack: Path,
                 fault: str = "", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._writer", str(root), str(writer), str(first), str(count),
         str(rows), str(ack), fault],
        cwd=ROOT, env={**child_env(), **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def batch_counts(root: Path) -> tuple[dict[str, int], int, int]:
    """Rows per batch source (deduplicated), total raw rows, distinct event ids: straight from the files."""
    glob = str(root / "events" / "*.parquet")
    con = duckdb.connect()
    try:
        raw, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?, union_by_name = true)", [glob]).fetchone()
        per = dict(con.execute(
            "SELECT source, count(DISTINCT event_id) FROM read_parquet(?, union_by_name = true) GROUP BY source",
            [glob]).fetchall())
    finally:
        con.close()
    return per, int(raw), int(distinct)
