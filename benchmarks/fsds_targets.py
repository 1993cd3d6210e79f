"""The SEC data sets scenarios' names and targets, as BENCHMARKS.md shows them (``benchmarks.report``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCENARIOS = ("fsds_ingest", "fsds_screen", "fsds_screen_as_of", "fsds_series", "fsds_series_as_of")
#: (scenario, the most its median may be over the limit's, what it measures)
RATIOS = (
    ("fsds_ingest", 3.0, "`metricstore ingest` of a data sets zip within 3x of pyarrow writing num.txt to one file"),
    ("fsds_screen", 2.0, "revenue growth of every filer in one fiscal period within 2x of the hand-written query"),
    ("fsds_screen_as_of", 2.0, "the same screen as of a date within 2x of the hand-written query"),
    ("fsds_series", 1.5, "one company's revenue series within 1.5x of the hand-written query"),
    ("fsds_series_as_of", 1.5, "the same series as of a date within 1.5x of the hand-written query"),
)
RSS_MB = 2048


Results = list[dict[str, Any]]


def targets(get: Callable[[Results, str, int, str], dict[str, Any] | None], results: Results,
            size: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) of one size; ``get(results, scenario, size, system)`` finds a record."""
    rows: list[tuple[str, str, bool | None]] = []
    for scenario, most, text in RATIOS:
        ours, limit = get(results, scenario, size, "metricstore"), get(results, scenario, size, "limit")
        if ours and limit:
            r = ours["median_s"] / limit["median_s"]
            rows.append((text, f"{r:.2f}x", r <= most))
    ingest = get(results, "fsds_ingest", size, "metricstore")
    if ingest:
        rss = ingest["peak_rss_mb"]
        rows.append((f"`metricstore ingest` of the zip: peak RSS at most 2 GB ({ingest.get('numbers', 0):,} numbers)",
                     f"{rss:.0f} MB", rss <= RSS_MB))
    return rows
