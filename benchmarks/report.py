"""BENCHMARKS.md from benchmarks/results.json: the figures, the ratios, the targets.

``python -m benchmarks`` writes it after each run; ``python -m benchmarks.report`` writes it again from the
recorded results alone (after a change to this module or to NOTES.md), running nothing.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from benchmarks import fsds_targets

SCENARIOS = ("bulk_ingest_arrow", "bulk_ingest_csv", "bulk_ingest_projected", "snapshot_refresh", "projection_rebuild",
             "small_append", "small_append_projected", "series_growth", "all_growth", "series_as_of", "all_as_of",
             "series_as_recorded", "all_as_recorded", "catalog_series_growth", "catalog_all_growth",
             "series_after_small_commits", "series_after_small_commits_compacted",
             "serve_series_growth", *fsds_targets.SCENARIOS)
SYSTEMS = ("metricstore", "metricstore-computed", "limit", "limit-polars", "deltalake", "arcticdb",
           "metricstore-uncompacted", "metricstore-wire")
#: Scenarios whose ratio is taken against the faster of ``limit`` and ``limit-polars``.
QUERY_SCENARIOS = ("series_growth", "series_as_of", "all_growth", "all_as_of", "series_after_small_commits",
                   "series_after_small_commits_compacted", "catalog_series_growth", "catalog_all_growth",
                   "series_as_recorded", "all_as_recorded")
LIMITS = ("limit", "limit-polars")

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


def baseline(results: list[dict[str, Any]], scenario: str, size: int) -> dict[str, Any] | None:
    """The record a scenario's ratio is taken against: the limit's, or for a query scenario the
    faster of ``limit`` and ``limit-polars``."""
    names = LIMITS if scenario in QUERY_SCENARIOS else ("limit",)
    cands = [r for sy in names if (r := _get(results, scenario, size, sy)) and r.get("median_s")]
    return min(cands, key=lambda r: r["median_s"], default=None)


def targets(results: list[dict[str, Any]], size: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for one size."""
    g = lambda sc, sy: _get(results, sc, size, sy)  # noqa: E731
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(sc: str, sy: str, other_sc: str | None = None, other_sy: str = "limit") -> float | None:
        a, b = g(sc, sy), g(other_sc or sc, other_sy)
        if not (a and b and a.get("median_s") and b.get("median_s")) or a.get("run") != b.get("run"):
            return None     # a ratio holds within one run (`--only` keeps other runs' rows beside)
        return float(a["median_s"] / b["median_s"])

    def vs_limits(sc: str, sy: str = "metricstore") -> float | None:
        """``sc``'s ratio to its baseline (the faster limit, for a query)."""
        a, b = g(sc, sy), baseline(results, sc, size)
        return a["median_s"] / b["median_s"] if a and b and a.get("median_s") else None

    def add(name: str, value: float | None, ok: bool | None, unit: str = "x") -> None:
        rows.append((name, "not measured" if value is None else f"{value:.2f}{unit}", ok))

    r = ratio("bulk_ingest_arrow", "metricstore")
    add("bulk ingest within 2x of pyarrow writing one file", r, None if r is None else r <= 2)
    r = ratio("small_append", "metricstore")
    add("single-event append within 3x of the raw atomic one-row write", r, None if r is None else r <= 3)
    d = ratio("small_append", "deltalake", other_sy="metricstore")
    add("single-event append at least 8x faster than a Delta append", d, None if d is None else d >= 8)
    a = ratio("series_growth", "arcticdb", other_sy="metricstore")
    add("one series' growth faster than ArcticDB's filtered read (ArcticDB / ours)", a,
        None if a is None else a > 1)
    rows.extend(projection_targets(results, size, vs_limits))
    for sc, cur in (("series_as_of", "series_growth"), ("all_as_of", "all_growth")):
        r = ratio(sc, "metricstore", cur, "metricstore")
        add(f"`{sc}` within 1.2x of the current view", r, None if r is None else r <= 1.2)
        r = ratio(sc, "metricstore", cur, "metricstore-computed")
        add(f"`{sc}` within 1.2x of the current view computed from the events (no projections)", r,
            None if r is None else r <= 1.2)
    r = ratio("serve_series_growth", "metricstore-wire", other_sy="metricstore")
    add("one series over the PostgreSQL wire (metricstore serve) within 2x of the in-process helper", r,
        None if r is None else r <= 2)
    r = ratio("series_after_small_commits", "metricstore", "series_after_small_commits_compacted", "metricstore")
    add(f"after {_commits(results, size)} within 2x of the compacted store", r,
        None if r is None else r <= 2)
    b = g("bulk_ingest_arrow", "metricstore")
    rss = b["peak_rss_mb"] if b else None
    add(f"bulk ingest peak RSS under 2 GB ({size:,} events)", rss, None if rss is None else rss < 2048, " MB")
    return rows


def _commits(results: list[dict[str, Any]], size: int) -> str:
    """How many small commits the run made (10,000 unless it was told fewer), and how: each
    projected, or (a run before the projections) with automatic compaction alone."""
    r = _get(results, "series_after_small_commits", size, "metricstore")
    how = "each projected" if r is None or "projector" in r else "automatic compaction, no projection"
    return f"{r.get('commits', 10_000) if r else 10_000:,} single-event commits ({how})"


def projection_targets(results: list[dict[str, Any]], size: int,
                       vs_limits: Any) -> list[tuple[str, str, bool | None]]:
    """The targets of the projections of the growth view (a query's ratio is to the faster limit)."""
    rows: list[tuple[str, str, bool | None]] = []

    def add(name: str, value: float | None, bound: float, unit: str = "x") -> None:
        rows.append((name, "not measured" if value is None else f"{value:.2f}{unit}",
                     None if value is None else value <= bound))

    for sc in ("series_growth", "series_as_of", "all_growth", "all_as_of"):
        add(f"`{sc}` within 1.5x of the faster limit", vs_limits(sc), 1.5)
    add(f"`series_after_small_commits` (after {_commits(results, size)}, no maintenance run) within 1.5x "
        "of the faster limit", vs_limits("series_after_small_commits"), 1.5)
    for sc in ("catalog_series_growth", "catalog_all_growth"):
        add(f"`{sc}` (a plain read-only DuckDB session on the catalog file) within 2x of the faster limit",
            vs_limits(sc), 2)
    for sc in ("series_as_recorded", "all_as_recorded"):
        add(f"`{sc}` within 3x of the faster limit's current answer", vs_limits(sc), 3)
    add("`small_append_projected`: an append and its projection within 5x of the raw one-row write",
        vs_limits("small_append_projected"), 5)
    add("`bulk_ingest_projected` within 3x of the limit's bulk write plus its whole-view query",
        vs_limits("bulk_ingest_projected"), 3)
    add("`projection_rebuild` within 10x of the limit's whole-view query", vs_limits("projection_rebuild"), 10)
    rb = _get(results, "projection_rebuild", size, "metricstore")
    add("`projection_rebuild` peak RSS under 2 GB", rb["peak_rss_mb"] if rb else None, 2048, " MB")
    pb = _get(results, "projection_bytes", size, "metricstore")
    add("projection files' bytes within 3x of the events' bytes",
        pb["projection_bytes"] / pb["events_bytes"] if pb and pb.get("events_bytes") else None, 3)
    return rows


def _baselines(results: list[dict[str, Any]], size: int) -> list[str]:
    """The query scenarios' two limits, and which was the faster (the ratios' baseline)."""
    out = []
    for sc in QUERY_SCENARIOS:
        recs = {sy: _get(results, sc, size, sy) for sy in LIMITS}
        best = baseline(results, sc, size)
        if best is None:
            continue
        cell = lambda r: _fmt_s(r["median_s"]) if r else "not measured"  # noqa: E731
        out.append(f"| {sc} | {cell(recs['limit'])} | {cell(recs['limit-polars'])} | {best['system']} |")
    if not out:
        return []
    return [f"### Query baselines at {size:,} events", "",
            "| scenario | limit | limit-polars | faster (the ratio's baseline) |", "| --- | ---: | ---: | --- |",
            *out, ""]


def _bytes_line(results: list[dict[str, Any]], size: int) -> list[str]:
    r = _get(results, "projection_bytes", size, "metricstore")
    if not r:
        return []
    return [f"Projection files ({', '.join(f'`{f}/`' for f in r.get('folders', []))}): "
            f"{r['projection_bytes'] / 1e6:.1f} MB beside {r['events_bytes'] / 1e6:.1f} MB of events "
            f"({r['projection_bytes'] / r['events_bytes']:.2f}x; run `{r.get('run', '?')}`).", ""]


def machine() -> str:
    """This machine, as a record's ``machine`` names the one it was measured on."""
    return f"{platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_markdown(results: list[dict[str, Any]], path: Path) -> None:
    sizes = sorted({r["size"] for r in results})
    out = ["# Benchmarks", "",
           "<!-- Generated by benchmarks/report.py from benchmarks/results.json and benchmarks/NOTES.md: "
           "edit those, then run `python -m benchmarks.report`. -->", "",
           "Written by `make bench` (`python -m benchmarks --size 1M|10M|all`); the records are in",
           "`benchmarks/results.json`. Every system runs in the same run on the same machine and data;",
           "each measured task runs in its own process (peak RSS is that process's). Times are medians;",
           "`ratio` is the median over the limit's median for the same scenario and size; for a query",
           "scenario, over the faster of `limit` and `limit-polars` (each size's query baselines name which).", "",
           "A run that measured only some scenarios (`--only bulk|appends|projections`) replaced their rows, the limit's",
           "included, and kept the others: each row names its run (the day and the commit measured).", ""]
    runs = {r.get("run", "?"): r.get("machine", machine()) for r in results}
    out += [f"- run `{run}`: {where}" for run, where in sorted(runs.items())] + [""]
    for size in sizes:
        out += [f"## {size:,} events", "",
                "| scenario | system | median | p99 | peak RSS | ratio | runs | run |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for sc in SCENARIOS:
            for sy in SYSTEMS:
                r = _get(results, sc, size, sy)
                if r:
                    ratio = "" if r["ratio_to_limit"] is None else f"{r['ratio_to_limit']:.2f}"
                    out.append(f"| {sc} | {sy} | {_fmt_s(r['median_s'])} | {_fmt_s(r['p99_s'])} | "
                               f"{r['peak_rss_mb']:.0f} MB | {ratio} | {r.get('runs', '')} | {r.get('run', '?')} |")
        out += [""] + _bytes_line(results, size) + _baselines(results, size)
        out += [f"### Targets at {size:,} events", "", "| target | measured | met |", "| --- | --- | --- |"]
        general = any(r["size"] == size and r["scenario"] not in fsds_targets.SCENARIOS for r in results)
        fsds = fsds_targets.targets(_get, results, size)
        for name, measured, ok in (targets(results, size) if general else []) + fsds:
            out.append(f"| {name} | {measured} | {'yes' if ok else ('no' if ok is False else 'n/a')} |")
        out.append("")
    if NOTES.exists():
        out += [NOTES.read_text().rstrip(), ""]
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    results = json.loads((root / "benchmarks" / "results.json").read_text())
    write_markdown(results, root / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
