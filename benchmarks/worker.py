"""One measured task in its own process, so its peak RSS is its own: ``python -m benchmarks.worker SPEC``.

SPEC is JSON: ``{"task": ..., "system": ..., ...}``. Prints one JSON line: the run times in
seconds and the process's peak RSS in MB.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import projections
from benchmarks import systems as sy
from benchmarks.limit_polars import LimitPolars


def peak_rss_mb(pid: int | None = None) -> float:
    """A process's peak RSS in MB, this one's by default (VmHWM: unlike ru_maxrss, not inherited
    from the parent across exec)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    if pid is not None:
        raise RuntimeError(f"no peak RSS for process {pid}")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Calls of a one-series query before the measured ones (the whole-view queries take seconds: one).
SERIES_WARMUP = 10


def timed(fn: Any, repeats: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def run(spec: dict[str, Any]) -> dict[str, Any]:
    task, system = spec["task"], spec["system"]
    if task.startswith("fsds_"):      # the SEC data sets scenarios (benchmarks/fsds.py)
        from benchmarks.fsds import work
        fn, repeats, warmup = work(spec)
        os.sync()
        times = timed(fn, repeats, warmup)
        return {"times": times} if task == "fsds_ingest" else {"times": times, "rows": fn()}
    as_of = dt.date.fromisoformat(spec["as_of"]) if spec.get("as_of") else None
    if task in ("bulk_arrow", "bulk_csv"):
        table = sy.BULK if task == "bulk_arrow" else sy.CSV
        dest = Path(spec["dest"])
        if system == "limit":
            dest.mkdir(parents=True)
        # imports are not the ingest's cost. pyarrow imports pandas, when installed (the bench
        # extra brings it for ArcticDB; a plain install has none), on its first conversion of
        # Python objects: a once-per-process cost any system may trigger, paid here by all
        with contextlib.suppress(ImportError):
            import pandas  # noqa: F401
        if system == "metricstore":
            import ingest  # noqa: F401
            import store  # noqa: F401
        elif system == "deltalake":
            import deltalake  # noqa: F401
        elif system == "arcticdb":
            import arcticdb  # noqa: F401
        os.sync()   # a quiet disk for every system (see the appends below)
        t = time.perf_counter()
        table[system](Path(spec["src"]), dest)
        return {"times": [time.perf_counter() - t]}
    if task in ("series", "all"):
        path = Path(spec["path"])
        systems: dict[str, Any] = {"limit": sy.Limit, "limit-polars": LimitPolars, "metricstore": sy.MetricStoreSystem,
             "deltalake": sy.DeltaSystem, "arcticdb": sy.ArcticSystem}
        q = systems[system](path)
        if task == "series":
            fn = lambda: q.series(spec["entity"], as_of)  # noqa: E731
        else:
            fn = lambda: q.all(as_of)  # noqa: E731
        # a query of a few ms runs 2x slower, and unevenly, in its first ten or so calls of a
        # fresh process (caches, footers, the allocator): measured once warm, for every system
        return {"times": timed(fn, spec["repeats"], warmup=SERIES_WARMUP if task == "series" else 1), "rows": fn()}
    if task == "appends":
        path = Path(spec["path"])
        make = {"limit": sy.LimitAppender, "metricstore": sy.metricstore_appender,
                "deltalake": sy.delta_appender, "arcticdb": sy.arctic_appender}[system]
        append = make(path)
        first = spec.get("first", 0)
        events = [sy.one_event(first + i) if not spec.get("restate") else sy.restatement(first + i, spec["entities"])
                  for i in range(spec["count"])]
        # every system starts with the disk quiet: an fsync waits for whatever else is being
        # written back (earlier scenarios leave hundreds of MB of dirty pages)
        os.sync()
        times = []
        for e in events:
            t = time.perf_counter()
            append(e)
            times.append(time.perf_counter() - t)
        return {"times": times}
    if task in projections.TASKS:
        return projections.run_task(spec, timed, SERIES_WARMUP)
    if task == "compact":
        from store import Store
        from store.compaction import compact
        t = time.perf_counter()
        compact(Store(spec["path"]), full=True, grace_s=0)
        return {"times": [time.perf_counter() - t]}
    raise SystemExit(f"unknown task {task!r}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    for k, v in spec.get("env", {}).items():
        os.environ[k] = v
    out = run(spec)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
