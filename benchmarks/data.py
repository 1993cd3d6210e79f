"""Deterministic synthetic events: entities x metrics x quarters (and fiscal years) x restatements.

Events arrive in batches of whole entities, so any size streams in bounded memory. The same
``size`` always yields the same events (a fixed seed per entity), so every system in a run, and
every run, ingests the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: (metric, aggregation, unit): flows, stocks and ratios, as companies report them.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("revenue", "flow", "CNY"), ("gross_profit", "flow", "CNY"), ("operating_income", "flow", "CNY"),
    ("pretax_income", "flow", "CNY"), ("net_income", "flow", "CNY"), ("adjusted_net_income", "flow", "CNY"),
    ("rd_expense", "flow", "CNY"), ("shipments", "flow", "units"), ("deliveries", "flow", "units"),
    ("opex", "flow", "CNY"), ("capex", "flow", "CNY"), ("free_cash_flow", "flow", "CNY"),
    ("store_count", "stock", "units"), ("cash", "stock", "CNY"), ("headcount", "stock", "units"),
    ("total_assets", "stock", "CNY"), ("gross_margin", "ratio", "ratio"), ("market_share", "ratio", "ratio"),
    ("operating_margin", "ratio", "ratio"), ("net_margin", "ratio", "ratio"),
)
YEARS = 10                      # 2015..2024: 40 quarters and 10 fiscal years per series
FIRST_YEAR = 2015
RESTATED = 0.25                 # share of facts restated once, a year later, by the company
EVENTS_PER_ENTITY_APPROX = len(METRICS) * YEARS * 5 * (1 + RESTATED)


@dataclass(frozen=True)
class Shape:
    """How many entities a size needs, and the series the benchmarks query."""

    size: int
    entities: int

    @classmethod
    def of(cls, size: int) -> Shape:
        return cls(size, max(1, round(size / EVENTS_PER_ENTITY_APPROX)))

    @staticmethod
    def entity(i: int) -> str:
        return f"co{i:06d}"

    @property
    def probe_entity(self) -> str:
        """The entity whose series the single-series scenarios read (one in the middle)."""
        return self.entity(self.entities // 2)


def _periods() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(period_start, period_end, reported_at) as numpy datetime64[D] for every period of a series."""
    starts, ends, reported = [], [], []
    for y in range(FIRST_YEAR, FIRST_YEAR + YEARS):
        for q in range(4):
            s = dt.date(y, 3 * q + 1, 1)
            e = (dt.date(y + (q == 3), (3 * q + 3) % 12 + 1, 1) - dt.timedelta(days=1))
            starts.append(s), ends.append(e), reported.append(e + dt.timedelta(days=45))
        starts.append(dt.date(y, 1, 1)), ends.append(dt.date(y, 12, 31))
        reported.append(dt.date(y + 1, 3, 20))
    conv = lambda xs: np.array(xs, dtype="datetime64[D]")  # noqa: E731
    return conv(starts), conv(ends), conv(reported)


PERIOD_START, PERIOD_END, REPORTED_AT = _periods()


def entity_batch(first: int, count: int) -> pa.Table:
    """Every event of entities ``first .. first + count - 1`` (canonical columns, base units)."""
    n_p = len(PERIOD_END)
    names, metrics, units, starts, ends, reported, values, sources = [], [], [], [], [], [], [], []
    for i in range(first, first + count):
        rng = np.random.default_rng(i)
        for m, (metric, agg, unit) in enumerate(METRICS):
            base = {"ratio": 0.3, "stock": 1e4}.get(agg, 1e9) * (1 + rng.random())
            growth = 1 + rng.normal(0.02, 0.05, n_p).cumsum() / 10
            v = base * np.abs(growth)
            if agg == "flow":       # a fiscal year is the sum of its quarters
                v = v.reshape(YEARS, 5)
                v[:, 4] = v[:, :4].sum(axis=1)
                v = v.reshape(-1)
            v = np.round(v, 2 if agg != "ratio" else 4)
            restate = rng.random(n_p) < RESTATED
            k = int(restate.sum())
            vr = np.round(v[restate] * (1 + rng.normal(0, 0.01, k)), 2 if agg != "ratio" else 4)
            names.append(np.full(n_p + k, Shape.entity(i)))
            metrics.append(np.full(n_p + k, metric))
            units.append(np.full(n_p + k, unit))
            starts.append(np.concatenate([PERIOD_START, PERIOD_START[restate]]))
            ends.append(np.concatenate([PERIOD_END, PERIOD_END[restate]]))
            reported.append(np.concatenate([REPORTED_AT, REPORTED_AT[restate] + np.timedelta64(365, "D")]))
            values.append(np.concatenate([v, vr]))
            sources.append(np.concatenate([np.full(n_p, f"{Shape.entity(i)}-filing"),
                                           np.full(k, f"{Shape.entity(i)}-restatement")]))
    return pa.table({
        "entity": pa.array(np.concatenate(names)),
        "metric": pa.array(np.concatenate(metrics)),
        "period_start": pa.array(np.concatenate(starts)),
        "period_end": pa.array(np.concatenate(ends)),
        "value": pa.array(np.concatenate(values)),
        "unit": pa.array(np.concatenate(units)),
        "reported_at": pa.array(np.concatenate(reported)),
        "source": pa.array(np.concatenate(sources)),
    })


def batches(size: int, entities_per_batch: int = 100) -> Iterator[pa.Table]:
    """The events of a size, streamed in batches of whole entities (about 125,000 events each)."""
    shape = Shape.of(size)
    for first in range(0, shape.entities, entities_per_batch):
        yield entity_batch(first, min(entities_per_batch, shape.entities - first))


def metric_records() -> pa.Table:
    return pa.table({"metric": [m for m, _, _ in METRICS], "aggregation": [a for _, a, _ in METRICS],
                     "description": [None] * len(METRICS), "inferred": [False] * len(METRICS)})
