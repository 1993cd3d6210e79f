"""The harness every benchmark group shares: the run's label, its log, a measured task in a
process of its own (``benchmarks.worker``), and a record of its times."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import machine

ROOT = Path(__file__).resolve().parents[1]
#: What a run writes: a run after another is not of changed code for their being rewritten.
OUTPUTS = ("benchmarks/results.json", "BENCHMARKS.md")


@functools.cache
def run_label() -> str:
    """The day and the commit a run measured (a record names its run: a table can hold rows
    of a run that measured only some scenarios beside those of the run before it). Asked of git
    once, when the first record is made: a worker process, which imports this module, never asks."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){out}" for out in OUTPUTS)], capture_output=True,
                               text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown commit", ""
    return f"{dt.date.today():%Y-%m-%d} {commit}{' (changed)' if dirty else ''}"


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def worker(spec: dict[str, Any], env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    out = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)], capture_output=True,
                         text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"worker {spec['task']}/{spec['system']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def record(results: list[dict[str, Any]], scenario: str, size: int, system: str, out: dict[str, Any],
           **extra: Any) -> dict[str, Any]:
    times = sorted(out["times"])
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    rec = {"scenario": scenario, "size": size, "system": system, "median_s": statistics.median(times),
           "p99_s": p99, "peak_rss_mb": round(out["peak_rss_mb"], 1), "ratio_to_limit": None,
           "runs": len(times), "machine": machine(), "run": run_label(), **extra}
    results.append(rec)
    log(f"{scenario:40s} {system:12s} median {rec['median_s']:.6f}s p99 {p99:.6f}s rss {rec['peak_rss_mb']} MB")
    return rec
