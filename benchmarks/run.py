"""The benchmark run: generate the data, run every scenario on every system, record the figures.

Every measured task runs in its own worker process (``benchmarks.worker``), so its peak RSS is
its own; times are taken inside the worker, around the work alone (not the interpreter's start).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from benchmarks import projections
from benchmarks.data import Shape, batches
from benchmarks.harness import log, record, worker
from benchmarks import serve as serve_bench
from benchmarks.report import QUERY_SCENARIOS, baseline
from benchmarks.systems import AS_OF, copy_tree

SYSTEMS = ("limit", "metricstore", "deltalake", "arcticdb")
CSV_MAX = 1_000_000
SMALL_COMMITS = 10_000
#: From this size on, the slow peers append 300 events, not 1,000; the projection rebuild runs once.
BIG = 5_000_000


#: The scenarios of ``--only bulk``: the ingests alone, at a tenth of a whole run's time.
BULK_SCENARIOS = ("bulk_ingest_arrow", "bulk_ingest_csv")
#: ``--only GROUP``: the scenarios each group measures (their records are replaced, the rest kept).
#: ``appends`` ingests each system's store once, unmeasured, then measures its single appends.
ONLY = {"bulk": BULK_SCENARIOS, "appends": ("small_append",), "projections": projections.SCENARIOS,
        "serve": (serve_bench.SCENARIO,)}


#: Single-event appends are measured in this many rounds, the systems taking turns.
APPEND_ROUNDS = 4
#: Bulk ingests (each a run) likewise, at every size: five, as on a shared machine the same
#: ingest's time moves by 20 % and more from one run to the next (a median of three moved with it).
BULK_ROUNDS = 5
#: One-series queries: processes per scenario and system, and measured calls in each.
SERIES_ROUNDS = 3
SERIES_REPEATS = 20


def generate(size: int, work: Path) -> tuple[Path, Path, Path, int]:
    """Write the input (generation order), the limit's sorted file and a canonical CSV."""
    src, sorted_file, csv_path = work / "src.parquet", work / "sorted.parquet", work / "src.csv"
    writer = None
    for b in batches(size):
        if writer is None:
            writer = pq.ParquetWriter(src, b.schema, compression="zstd")
        writer.write_table(b)
    assert writer is not None
    writer.close()
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{work / 'duck_tmp'}'")
    con.execute("SET memory_limit = '4GB'")
    con.execute(f"COPY (SELECT * FROM read_parquet('{src}') ORDER BY entity, metric, period_end) "
                f"TO '{sorted_file}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 32768)")
    csv_rows = min(size, CSV_MAX)
    con.execute(f"COPY (SELECT entity, metric, strftime(period_start, '%Y-%m-%d') AS period_start, "
                f"strftime(period_end, '%Y-%m-%d') AS period_end, value, unit, "
                f"strftime(reported_at, '%Y-%m-%d') AS reported_at, source "
                f"FROM read_parquet('{src}') LIMIT {csv_rows}) TO '{csv_path}' (HEADER)")
    con.close()
    return src, sorted_file, csv_path, pq.ParquetFile(src).metadata.num_rows


def run_size(size: int, work: Path, results: list[dict[str, Any]], *, peers: bool = True,
             only: str | None = None, commits: int = SMALL_COMMITS) -> None:
    big = size >= BIG
    shape = Shape.of(size)
    work.mkdir(parents=True, exist_ok=True)
    log(f"size {size:,}: generating {shape.entities} entities into {work}")
    src, sorted_file, csv_path, n = generate(size, work)
    systems = SYSTEMS if peers else ("limit", "metricstore")
    stores: dict[str, Path] = {}
    proj = projections.Run(results, size, work, shape, src, sorted_file, n, commits, big)

    if only == "projections":
        projections.run_group(proj, lambda paths, names: _queries(results, size, shape, paths, names),
                              appends=min(1000, commits))
        return

    if only == "serve":     # this store ingested and maintained once, unmeasured; then the wire against the helper
        stores["metricstore"] = work / "bulk-metricstore-0"
        shutil.rmtree(stores["metricstore"], ignore_errors=True)
        worker({"task": "bulk_arrow", "system": "metricstore", "src": str(src), "dest": str(stores["metricstore"])})
        worker({"task": "project", "system": "metricstore", "path": str(stores["metricstore"])})
        serve_bench.run(results, size, stores["metricstore"], shape.probe_entity, record)
        return

    if only == "appends":   # each store ingested once, unmeasured
        for system in systems:
            stores[system] = work / f"bulk-{system}-0"
            shutil.rmtree(stores[system], ignore_errors=True)
            worker({"task": "bulk_arrow", "system": system, "src": str(src), "dest": str(stores[system])})
        _appends(results, size, work, systems, stores)
        return

    # 1. bulk ingest, from Arrow and from CSV: three rounds at every size, the systems taking turns
    # (one run measured right after the generation met the disk still writing it back: at 10 M the
    # limit took 5.2 s in such a run against 2.1 s on a quiet disk)
    arrow: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for r in range(BULK_ROUNDS):
        for system in systems:
            dest = work / f"bulk-{system}-{r}"
            shutil.rmtree(dest, ignore_errors=True)
            arrow[system].append(worker({"task": "bulk_arrow", "system": system, "src": str(src), "dest": str(dest)}))
            if r:
                shutil.rmtree(work / f"bulk-{system}-{r - 1}", ignore_errors=True)
            stores[system] = dest
    for system in systems:
        record(results, "bulk_ingest_arrow", size, system,
               {"times": [t for o in arrow[system] for t in o["times"]],
                "peak_rss_mb": max(o["peak_rss_mb"] for o in arrow[system])}, events=n)
    csv_n = min(size, CSV_MAX)
    csv: dict[str, list[dict[str, Any]]] = {"limit": [], "metricstore": []}
    for r in range(BULK_ROUNDS):
        for system in csv:
            dest = work / f"csv-{system}"
            shutil.rmtree(dest, ignore_errors=True)
            csv[system].append(worker({"task": "bulk_csv", "system": system, "src": str(csv_path), "dest": str(dest)}))
            shutil.rmtree(dest, ignore_errors=True)
    for system, runs in csv.items():
        record(results, "bulk_ingest_csv", size, system,
               {"times": [t for o in runs for t in o["times"]], "peak_rss_mb": max(o["peak_rss_mb"] for o in runs)},
               events=csv_n)
    if only == "bulk":
        return

    # the store as ingested, before any projection: the base of the small-commit scenarios
    base = work / "base-metricstore"
    copy_tree(stores["metricstore"], base)
    # the bulk ingest with its projection and the projection's bytes (the full rebuild follows the queries)
    projected = projections.ingest_projected(proj)
    at = dt.datetime.now(dt.UTC)
    base_projected = work / "base-projected"
    copy_tree(projected, base_projected)

    # 3-5. queries: one series, the whole view, each now and as of a past date. `metricstore` reads
    # the projections; `metricstore-computed` computes every answer from the events
    # (METRICSTORE_PROJECTIONS=0). A series now and as of a date run back to back, before the whole
    # view computed from the events (9 GB at 10 M) evicts the page cache: their ratio is a target
    paths = {**stores, "limit": sorted_file, "limit-polars": sorted_file, "metricstore": projected,
             "metricstore-computed": projected}
    _queries(results, size, shape, paths, (*systems, "limit-polars", "metricstore-computed"))
    projections.rebuild(proj, projected)
    projections.catalog(proj, projected, rounds=SERIES_ROUNDS, repeats=SERIES_REPEATS)
    projections.appends_projected(proj, projected, min(1000, commits), rounds=APPEND_ROUNDS)
    projections.as_recorded(proj, projected, at, rounds=SERIES_ROUNDS, repeats=SERIES_REPEATS)
    serve_bench.run(results, size, projected, shape.probe_entity, record)
    _appends(results, size, work, systems, stores)

    # 6. one series after 10,000 small commits: each projected (the target), and with neither
    # projection nor compaction, then compacted
    projections.small_commits(proj, base_projected)
    q = {"task": "series", "system": "metricstore", "entity": shape.probe_entity, "repeats": 20}
    none = work / "commits-none"
    copy_tree(base, none)
    worker({"task": "appends", "system": "metricstore", "path": str(none), "count": commits, "restate": True,
            "entities": shape.entities, "env": {"METRICSTORE_AUTO_COMPACT": "0"}})
    record(results, "series_after_small_commits", size, "metricstore-uncompacted", worker({**q, "path": str(none)}),
           files=len(list((none / "events").glob("*.parquet"))), compaction="none")
    compacted = worker({"task": "compact", "system": "metricstore", "path": str(none)})
    log(f"full compaction of {commits:,} commits + {size:,} events: {compacted['times'][0]:.2f}s")
    record(results, "series_after_small_commits_compacted", size, "metricstore", worker({**q, "path": str(none)}),
           files=len(list((none / "events").glob("*.parquet"))), compaction="full")
    for system in projections.QUERY_LIMITS:
        record(results, "series_after_small_commits_compacted", size, system,
               worker({**q, "system": system, "path": str(sorted_file)}))
    for p in (none, base, base_projected):
        shutil.rmtree(p, ignore_errors=True)


def _appends(results: list[dict[str, Any]], size: int, work: Path, systems: tuple[str, ...],
             stores: dict[str, Path]) -> None:
    """2. Single-event appends on the N-event store, in rounds that take turns between the
    systems: an fsync's cost follows the disk's state (what earlier scenarios left to write back),
    so no system is measured only while the disk is busiest."""
    rounds: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for r in range(APPEND_ROUNDS):
        for system in systems:
            path = work / "appends-limit" if system == "limit" else stores[system]
            count = (1000 if (system in ("limit", "metricstore") or size < BIG) else 300) // APPEND_ROUNDS
            rounds[system].append(worker({"task": "appends", "system": system, "path": str(path),
                                          "count": count, "first": r * count}))
    for system in systems:
        record(results, "small_append", size, system,
               {"times": [t for o in rounds[system] for t in o["times"]],
                "peak_rss_mb": max(o["peak_rss_mb"] for o in rounds[system])})


def _queries(results: list[dict[str, Any]], size: int, shape: Shape, paths: dict[str, Path],
             systems: tuple[str, ...]) -> None:
    """One series and the whole view, now and as of a date, on each of ``systems`` (read from ``paths``)."""

    def query(task: str, system: str, as_of: dt.date | None, repeats: int) -> dict[str, Any] | None:
        computed = system == "metricstore-computed"
        try:
            return worker({"task": task, "system": "metricstore" if computed else system,
                           "path": str(paths[system]),
                           "entity": shape.probe_entity, "as_of": as_of.isoformat() if as_of else None,
                           "repeats": repeats, "env": {"METRICSTORE_PROJECTIONS": "0"} if computed else {}})
        except RuntimeError as exc:
            if system in ("limit", "limit-polars", "metricstore", "metricstore-computed"):
                raise
            log(f"{task} {system}: not measured ({str(exc).splitlines()[-1][:200]})")
            return None

    # one series, now and as of a date: SERIES_ROUNDS processes each, the scenarios and systems
    # taking turns, their calls pooled (a process's median of a few-ms query moves by 10-20 %
    # from one process to the next: one process each made the as-of ratio a draw of that jitter)
    pooled: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(SERIES_ROUNDS):
        for scenario, as_of in (("series_growth", None), ("series_as_of", AS_OF)):
            for system in systems:
                if (out := query("series", system, as_of, SERIES_REPEATS)) is not None:
                    pooled.setdefault((scenario, system), []).append(out)
    for (scenario, system), outs in pooled.items():
        record(results, scenario, size, system,
               {"times": [t for o in outs for t in o["times"]], "peak_rss_mb": max(o["peak_rss_mb"] for o in outs)},
               rows=outs[0]["rows"])
    for scenario, as_of in (("all_growth", None), ("all_as_of", AS_OF)):
        for system in systems:
            if (out := query("all", system, as_of, 3)) is not None:
                record(results, scenario, size, system, out, rows=out["rows"])


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each timed record's median over its baseline's (:func:`benchmarks.report.baseline`): the
    limit's, or for a query scenario the faster of ``limit`` and ``limit-polars`` (named in ``baseline``)."""
    for r in results:
        if r.get("median_s") is None:       # not a time (projection_bytes carries its own ratio)
            continue
        best = baseline(results, r["scenario"], r["size"])
        r["ratio_to_limit"] = round(r["median_s"] / best["median_s"], 3) if best else None
        if r["scenario"] in QUERY_SCENARIOS:
            r["baseline"] = best["system"] if best else None
