"""The projection scenarios: the read side kept up to date with the log, and what that costs.

``python -m benchmarks --only projections`` runs them alone (with the query scenarios they
change); a whole run runs them in its course. The projection step is
``queries.projector.project(store)`` (``rebuild=True`` for a full rebuild).

Scenarios (record names) and their baselines (the limit's records under the same name):

- ``bulk_ingest_projected``: a bulk ingest plus its projection, against the limit's bulk write
  plus its whole-view query, in one process each; ``projection_bytes``: the projection files'
  bytes over the events' (no time: ``projection_bytes`` and ``events_bytes``).
- ``projection_rebuild``: a full rebuild, against the limit's whole-view query (``all_growth``).
- ``catalog_series_growth``, ``catalog_all_growth``: the growth of one series and of the whole
  view through the catalog file, in a process that opens it with ``duckdb.connect(path,
  read_only=True)`` and runs its init script, as a data team would; against the limits' queries.
- ``series_as_recorded``, ``all_as_recorded``: ``as_recorded`` answers at a time between the bulk
  ingest and the appends after it, against the limits' plain (current) queries.
- ``small_append_projected``: one event appended and projected, until a reader opened afterwards
  sees it (the time is the append plus the projection; a new reader then checks the last event),
  against the raw one-row write.
- ``series_after_small_commits``: one series' growth after single-event commits, each followed by
  the projection step as a writer runs it, with no maintenance run.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import systems as sy
from benchmarks.data import Shape
from benchmarks.harness import log, record, run_label, worker
from benchmarks.report import LIMITS, machine

from queries.projector import project

PROJECTOR = "queries.projector"
#: The limits a query scenario's ratio is taken against (the faster of the two: benchmarks.report.baseline).
QUERY_LIMITS = LIMITS
#: What ``--only projections`` measures: its records are replaced, the others kept.
SCENARIOS = ("bulk_ingest_projected", "projection_bytes", "projection_rebuild", "series_growth", "series_as_of",
             "all_growth", "all_as_of", "catalog_series_growth", "catalog_all_growth", "series_as_recorded",
             "all_as_recorded", "small_append_projected", "series_after_small_commits")
#: Worker tasks of this module (benchmarks.worker hands them to :func:`run_task`).
TASKS = ("bulk_projected", "project", "appends_projected", "catalog", "recorded")
#: Rounds of the projected bulk ingest (the systems taking turns) and of the full rebuild (below BIG).
INGEST_ROUNDS = 3
REBUILD_ROUNDS = 3
#: The log's own folders in a store: every other folder of it holds what the read side keeps.
NOT_PROJECTIONS = frozenset({"events", "entities", "metrics", "runs", "_tmp", "_lock", "_compaction", "_damaged"})


# -- the worker's side: one task in its own process --------------------------------------------------
Timed = Callable[..., list[float]]


def run_task(spec: dict[str, Any], timed: Timed, warmup: int) -> dict[str, Any]:
    from store import Store
    task, system = spec["task"], spec["system"]
    if task == "bulk_projected":
        src, dest = Path(spec["src"]), Path(spec["dest"])
        if system == "limit":
            dest.mkdir(parents=True)
            limit = sy.Limit(Path(spec["sorted"]))
            os.sync()
            t = time.perf_counter()
            sy.bulk_limit(src, dest)
            rows = limit.all()
            return {"times": [time.perf_counter() - t], "rows": rows}
        import ingest  # noqa: F401  (imports are not the ingest's cost)
        import queries  # noqa: F401
        os.sync()
        t = time.perf_counter()
        sy.bulk_metricstore(src, dest)
        project(Store(dest))
        return {"times": [time.perf_counter() - t]}
    if task == "project":
        store = Store(spec["path"])
        t = time.perf_counter()
        project(store, rebuild=spec.get("rebuild", False))
        return {"times": [time.perf_counter() - t]}
    if task == "appends_projected":
        return _appends_projected(spec)
    if task == "catalog":
        return _catalog(spec, timed, warmup)
    if task == "recorded":
        from queries import MetricStore
        ms, t_rec = MetricStore(Path(spec["path"])), dt.datetime.fromisoformat(spec["as_recorded"])
        if spec["query"] == "series":
            fn: Callable[[], int] = lambda: ms.series(spec["entity"], sy.SERIES_METRIC, as_recorded=t_rec).height
        else:
            fn = lambda: int(ms.sql(sy.DIGEST.format(q="SELECT * FROM growth"), as_recorded=t_rec)[0, 0])
        return {"times": timed(fn, spec["repeats"], warmup=warmup if spec["query"] == "series" else 1), "rows": fn()}
    raise SystemExit(f"unknown task {task!r}")


def _appends_projected(spec: dict[str, Any]) -> dict[str, Any]:
    """Single-event commits, each followed by the projection step, timed together; then a reader
    opened afterwards must find the last one (else the task fails)."""
    from queries import MetricStore
    from store import Store
    root = Path(spec["path"])
    store = Store(root)
    first = spec.get("first", 0)
    restate = spec.get("restate", False)
    events = [sy.restatement(first + i, spec["entities"]) if restate else sy.one_event(first + i)
              for i in range(spec["count"])]
    os.sync()
    times = []
    for e in events:
        t = time.perf_counter()
        store.append(e)
        project(store)
        times.append(time.perf_counter() - t)
    last = events[-1].to_pylist()[0]
    with MetricStore(root) as ms:
        seen = ms.series(last["entity"], last["metric"])
    if last["value"] not in seen["value"].to_list():
        raise SystemExit(f"a new reader does not see the last append ({last['entity']} {last['value']})")
    return {"times": times}


def _catalog(spec: dict[str, Any], timed: Timed, warmup: int) -> dict[str, Any]:
    """Query the catalog file as a data team does: a plain DuckDB session, read-only, locked down
    by the init script written beside it."""
    import duckdb
    con = duckdb.connect(spec["path"], read_only=True)
    script = Path(spec["init"]).read_text(encoding="utf-8")
    for stmt in script.split(";"):
        text = "\n".join(line for line in stmt.splitlines() if not line.strip().startswith("--")).strip()
        if text:
            con.execute(text)
    if spec["query"] == "series":
        q, params = "SELECT * FROM growth WHERE entity = $entity AND metric = $metric", \
            {"entity": spec["entity"], "metric": sy.SERIES_METRIC}
        fn: Callable[[], int] = lambda: con.sql(q, params=params).to_arrow_table().num_rows
    else:
        fn = lambda: int(con.sql(sy.DIGEST.format(q="SELECT * FROM growth")).fetchall()[0][0])
    return {"times": timed(fn, spec["repeats"], warmup=warmup if spec["query"] == "series" else 1), "rows": fn()}


# -- the run's side: the scenarios, each task in a worker -------------------------------------------------
@dataclass
class Run:
    """One size's run: where its data and stores are, and the records it adds to."""

    results: list[dict[str, Any]]
    size: int
    work: Path
    shape: Shape
    src: Path
    sorted_file: Path
    events: int
    commits: int
    big: bool

    def pooled(self, outs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"times": [t for o in outs for t in o["times"]], "peak_rss_mb": max(o["peak_rss_mb"] for o in outs)}

    def copy_baseline(self, scenario: str, of: str, systems: tuple[str, ...] = QUERY_LIMITS) -> None:
        """The limits' records of ``of`` again under ``scenario`` (the same query is its baseline)."""
        for r in [r for r in self.results if (r["scenario"], r["size"]) == (of, self.size) and r["system"] in systems]:
            self.results.append({**r, "scenario": scenario, "baseline_of": of})


def ingest_projected(run: Run) -> Path:
    """``bulk_ingest_projected`` and ``projection_bytes``; returns the last projected store."""
    outs: dict[str, list[dict[str, Any]]] = {"limit": [], "metricstore": []}
    dest = run.work / "projected-metricstore"
    for r in range(INGEST_ROUNDS):
        for system in outs:
            d = run.work / f"projected-{system}"
            shutil.rmtree(d, ignore_errors=True)
            outs[system].append(worker({"task": "bulk_projected", "system": system, "src": str(run.src),
                                            "sorted": str(run.sorted_file), "dest": str(d)}))
    shutil.rmtree(run.work / "projected-limit", ignore_errors=True)
    for system, o in outs.items():
        record(run.results, "bulk_ingest_projected", run.size, system, run.pooled(o), events=run.events,
                   **({"projector": PROJECTOR} if system == "metricstore" else {}))
    projection_bytes(run, dest)
    return dest


def projection_bytes(run: Run, root: Path) -> None:
    """The bytes of the read side's files (every folder of the store but the logs') over the events'."""
    events = sum(p.stat().st_size for p in (root / "events").rglob("*") if p.is_file())
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in NOT_PROJECTIONS)
    kept = sum(p.stat().st_size for f in folders for p in (root / f).rglob("*") if p.is_file())
    run.results.append({"scenario": "projection_bytes", "size": run.size, "system": "metricstore",
                        "median_s": None, "p99_s": None, "peak_rss_mb": None, "projection_bytes": kept,
                        "events_bytes": events, "ratio_to_limit": round(kept / events, 3) if events else None,
                        "folders": folders, "projector": PROJECTOR, "runs": 1, "machine": machine(), "run": run_label()})
    log(f"projection files {kept:,} bytes in {folders}, events {events:,} bytes")


def rebuild(run: Run, root: Path) -> None:
    """``projection_rebuild`` against the DuckDB limit's whole-view query (measured before it)."""
    outs = [worker({"task": "project", "system": "metricstore", "path": str(root), "rebuild": True})
            for _ in range(1 if run.big else REBUILD_ROUNDS)]
    record(run.results, "projection_rebuild", run.size, "metricstore", run.pooled(outs), projector=PROJECTOR)
    run.copy_baseline("projection_rebuild", "all_growth", ("limit",))


def catalog(run: Run, root: Path, rounds: int, repeats: int) -> None:
    """The catalog scenarios, written (unmeasured) after the projection; after the query scenarios."""
    from queries.catalog import init_script_of, write_catalog
    from store import Store
    path = write_catalog(Store(root))
    base = {"task": "catalog", "system": "metricstore", "path": str(path), "init": str(init_script_of(path)),
            "entity": run.shape.probe_entity}
    _series_and_all(run, base, "catalog_series_growth", "catalog_all_growth", rounds, repeats)


def as_recorded(run: Run, root: Path, at: dt.datetime, rounds: int, repeats: int) -> None:
    """``as_recorded`` answers at ``at`` (after the ingest, before the appends that followed it)."""
    base = {"task": "recorded", "system": "metricstore", "path": str(root), "entity": run.shape.probe_entity,
            "as_recorded": at.isoformat()}
    _series_and_all(run, base, "series_as_recorded", "all_as_recorded", rounds, repeats)


def _series_and_all(run: Run, spec: dict[str, Any], series: str, whole: str, rounds: int, repeats: int) -> None:
    """Record ``series`` (one series' growth, ``rounds`` processes pooled) and ``whole`` (the whole
    view, one process) from the worker task ``spec``, with the limits' ``series_growth`` and
    ``all_growth`` records as their baselines."""
    outs = [worker({**spec, "query": "series", "repeats": repeats}) for _ in range(rounds)]
    record(run.results, series, run.size, "metricstore", run.pooled(outs), rows=outs[0]["rows"])
    out = worker({**spec, "query": "all", "repeats": 3})
    record(run.results, whole, run.size, "metricstore", out, rows=out["rows"])
    run.copy_baseline(series, "series_growth")
    run.copy_baseline(whole, "all_growth")


def appends_projected(run: Run, root: Path, count: int, rounds: int) -> None:
    """``small_append_projected`` on ``root``, in rounds taking turns with the raw one-row write."""
    rounds = max(1, min(rounds, count))
    each = max(1, count // rounds)
    outs: dict[str, list[dict[str, Any]]] = {"limit": [], "metricstore": []}
    for r in range(rounds):
        outs["limit"].append(worker({"task": "appends", "system": "limit", "path": str(run.work / "appends-raw"),
                                         "count": each, "first": r * each}))
        outs["metricstore"].append(worker({"task": "appends_projected", "system": "metricstore",
                                               "path": str(root), "count": each, "first": r * each}))
    shutil.rmtree(run.work / "appends-raw", ignore_errors=True)
    for system, o in outs.items():
        record(run.results, "small_append_projected", run.size, system, run.pooled(o),
                   **({"projector": PROJECTOR} if system == "metricstore" else {}))


def small_commits(run: Run, base: Path) -> None:
    """``series_after_small_commits``: ``run.commits`` restatements on a copy of ``base``, each
    projected as a writer does, then one series read; the limits' series query beside it."""
    root = run.work / "commits-projected"
    sy.copy_tree(base, root)
    out = worker({"task": "appends_projected", "system": "metricstore", "path": str(root), "count": run.commits,
                      "restate": True, "entities": run.shape.entities})
    log(f"{run.commits:,} commits, each projected: median {statistics.median(out['times']) * 1e3:.2f} ms "
            f"(append + projection), {len(list((root / 'events').glob('*.parquet')))} event files after")
    q = {"task": "series", "entity": run.shape.probe_entity, "repeats": 20}
    record(run.results, "series_after_small_commits", run.size, "metricstore",
               worker({**q, "system": "metricstore", "path": str(root)}),
               files=len(list((root / "events").glob("*.parquet"))), commits=run.commits, projector=PROJECTOR)
    for system in QUERY_LIMITS:
        record(run.results, "series_after_small_commits", run.size, system,
                   worker({**q, "system": system, "path": str(run.sorted_file)}))
    shutil.rmtree(root, ignore_errors=True)


def run_group(run: Run, queries: Callable[[dict[str, Path], tuple[str, ...]], None], appends: int) -> None:
    """``--only projections``: every scenario above, and the query scenarios over the projected store."""
    projected = ingest_projected(run)
    at = dt.datetime.now(dt.UTC)
    base = run.work / "base-projected"
    sy.copy_tree(projected, base)
    queries({"limit": run.sorted_file, "limit-polars": run.sorted_file, "metricstore": projected},
            ("limit", "limit-polars", "metricstore"))
    rebuild(run, projected)
    catalog(run, projected, rounds=3, repeats=20)
    appends_projected(run, projected, appends, rounds=4)
    as_recorded(run, projected, at, rounds=3, repeats=20)
    small_commits(run, base)
    shutil.rmtree(base, ignore_errors=True)
