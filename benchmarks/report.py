"""BENCHMARKS.md from benchmarks/results.json: the figures, the ratios, the targets."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

SCENARIOS = ("bulk_ingest_arrow", "bulk_ingest_csv", "snapshot_refresh", "small_append", "series_growth", "all_growth",
             "series_as_of", "all_as_of", "series_after_small_commits", "series_after_small_commits_compacted")
SYSTEMS = ("metricstore", "metricstore-computed", "limit", "deltalake", "arcticdb", "metricstore-uncompacted")

NOTES = Path(__file__).with_name("NOTES.md")


def _fmt_s(x: float) -> str:
    if x < 1e-2:
        return f"{x * 1e3:.2f} ms"
    if x < 1:
        return f"{x * 1e3:.0f} ms"
    return f"{x:.2f} s"


def _get(results: list[dict[str, Any]], scenario: str, size: int, system: str) -> dict[str, Any] | None:
    for r in results:
        if (r["scenario"], r["size"], r["system"]) == (scenario, size, system):
            return r
    return None


def targets(results: list[dict[str, Any]], size: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for one size."""
    g = lambda sc, sy: _get(results, sc, size, sy)  # noqa: E731
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(sc: str, sy: str, other_sc: str | None = None, other_sy: str = "limit") -> float | None:
        a, b = g(sc, sy), g(other_sc or sc, other_sy)
        return a["median_s"] / b["median_s"] if a and b else None

    def add(name: str, value: float | None, ok: bool | None, unit: str = "x") -> None:
        rows.append((name, "not measured" if value is None else f"{value:.2f}{unit}", ok))

    r = ratio("bulk_ingest_arrow", "metricstore")
    add("bulk ingest within 2x of pyarrow writing one file", r, None if r is None else r <= 2)
    r = ratio("small_append", "metricstore")
    add("single-event append within 3x of the raw atomic one-row write", r, None if r is None else r <= 3)
    d = ratio("small_append", "deltalake", other_sy="metricstore")
    add("single-event append at least 8x faster than a Delta append", d, None if d is None else d >= 8)
    r = ratio("series_growth", "metricstore")
    add("one series' growth within 2x of hand-written DuckDB over one sorted file", r,
        None if r is None else r <= 2)
    a = ratio("series_growth", "arcticdb", other_sy="metricstore")
    add("one series' growth faster than ArcticDB's filtered read (ArcticDB / ours)", a,
        None if a is None else a > 1)
    r = ratio("all_growth", "metricstore")
    add("whole growth view within 1.5x of a hand-written window query", r, None if r is None else r <= 1.5)
    for sc, cur in (("series_as_of", "series_growth"), ("all_as_of", "all_growth")):
        r = ratio(sc, "metricstore", cur, "metricstore")
        add(f"`{sc}` within 1.2x of the current view", r, None if r is None else r <= 1.2)
        r = ratio(sc, "metricstore", cur, "metricstore-computed")
        add(f"`{sc}` within 1.2x of the current view computed from the events (no snapshot)", r,
            None if r is None else r <= 1.2)
    r = ratio("series_after_small_commits", "metricstore", "series_after_small_commits_compacted", "metricstore")
    add("after 10,000 small commits (automatic compaction) within 2x of the compacted store", r,
        None if r is None else r <= 2)
    b = g("bulk_ingest_arrow", "metricstore")
    rss = b["peak_rss_mb"] if b else None
    add(f"bulk ingest peak RSS under 2 GB ({size:,} events)", rss, None if rss is None else rss < 2048, " MB")
    return rows


def machine() -> str:
    """This machine, as a record's ``machine`` names the one it was measured on."""
    return f"{platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_markdown(results: list[dict[str, Any]], path: Path) -> None:
    sizes = sorted({r["size"] for r in results})
    out = ["# Benchmarks", "",
           "Written by `make bench` (`python -m benchmarks --size 1M|10M|all`); the records are in",
           "`benchmarks/results.json`. Every system runs in the same run on the same machine and data;",
           "each measured task runs in its own process (peak RSS is that process's). Times are medians;",
           "`ratio` is the median over the limit's median for the same scenario and size.", "",
           "A run that measured only some scenarios (`--only bulk`, `--only appends`) replaced their rows, the limit's",
           "included, and kept the others: each row names its run (the day and the commit measured).", ""]
    runs = {r.get("run", "?"): r.get("machine", machine()) for r in results}
    out += [f"- run `{run}`: {where}" for run, where in sorted(runs.items())] + [""]
    for size in sizes:
        out += [f"## {size:,} events", "",
                "| scenario | system | median | p99 | peak RSS | ratio to limit | runs | run |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for sc in SCENARIOS:
            for sy in SYSTEMS:
                r = _get(results, sc, size, sy)
                if r:
                    ratio = "" if r["ratio_to_limit"] is None else f"{r['ratio_to_limit']:.2f}"
                    out.append(f"| {sc} | {sy} | {_fmt_s(r['median_s'])} | {_fmt_s(r['p99_s'])} | "
                               f"{r['peak_rss_mb']:.0f} MB | {ratio} | {r.get('runs', '')} | {r.get('run', '?')} |")
        out += ["", f"### Targets at {size:,} events", "", "| target | measured | met |", "| --- | --- | --- |"]
        for name, measured, ok in targets(results, size):
            out.append(f"| {name} | {measured} | {'yes' if ok else ('no' if ok is False else 'n/a')} |")
        out.append("")
    if NOTES.exists():
        out += [NOTES.read_text().rstrip(), ""]
    path.write_text("\n".join(out) + "\n")
