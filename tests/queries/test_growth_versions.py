"""growth_versions(): every version of the growth view over publication time.

Held equal to growth_at(d, NULL) at every date anything was published (and the day before), on
random stores built to hit every rule: restatements, authority and approx precedence, retractions,
withdrawals filed under another entity (some before the event they withdraw), duplicates, derived
quarters and halves, TTM with gaps, instants, months, per-share and ratio metrics, and a fiscal
year ending in September.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest

from ingest import Catalog, EntityDef, ingest_paths, set_entity
from queries import MetricStore
from store import Store
from tests.conftest import write_csv

SEC = Path(__file__).resolve().parents[3] / "shared" / "data" / "sec"

#: (metric, unit, period kinds it is reported for)
METRICS = (
    ("revenue", "USD m", ("Q", "H", "9M", "FY")),
    ("eps_diluted", "USD/shares", ("Q", "9M", "FY")),
    ("cash", "USD m", ("I",)),
    ("gross_margin", "%", ("Q", "FY")),
    ("widgets_made", "k units", ("M", "Q")),
)


def _periods(kind: str, year: int, fye: int) -> list[tuple[dt.date, dt.date]]:
    """(start, end) of the periods of one kind in fiscal year ``year`` ending in month ``fye``."""
    def month_start(y: int, m: int) -> dt.date:
        return dt.date(y + (m - 1) // 12, (m - 1) % 12 + 1, 1)

    first = month_start(year - 1, fye + 1)             # the fiscal year's first day

    def span(m0: int, n: int) -> tuple[dt.date, dt.date]:
        s = month_start(first.year, first.month + m0)
        return s, month_start(s.year, s.month + n) - dt.timedelta(days=1)

    if kind == "Q":
        return [span(3 * q, 3) for q in range(4)]
    if kind == "H":
        return [span(0, 6), span(6, 6)]
    if kind == "9M":
        return [span(0, 9)]
    if kind == "FY":
        return [span(0, 12)]
    if kind == "M":
        return [span(m, 1) for m in range(12)]
    return [(e, e) for _, e in (span(3 * q, 3) for q in range(4))]     # instants at quarter ends


def random_store(root: Path, tmp: Path, catalog: Catalog, seed: int) -> Store:
    rng = random.Random(seed)
    store = Store.create(root)
    set_entity(store, EntityDef(entity="sepco", fiscal_year_end_month=9))
    rows: list[dict[str, object]] = []
    for entity, fye in (("calco", 12), ("sepco", 9)):
        for metric, unit, kinds in METRICS:
            for year in range(2020, 2024):
                for kind in kinds:
                    for start, end in _periods(kind, year, fye):
                        if rng.random() < 0.25:          # gaps: derived quarters, broken TTMs
                            continue
                        for _ in range(rng.choice((1, 1, 1, 2, 3))):
                            lag = rng.choice((20, 40, 45, 90, 200, 400))
                            op = "retract" if rng.random() < 0.05 else "assert"
                            rows.append({
                                "entity": entity, "metric": metric, "unit": unit,
                                "period_start": start.isoformat(), "period_end": end.isoformat(),
                                "value": "" if op == "retract" else str(rng.randint(1, 900) / rng.choice((1, 10))),
                                "op": op, "reported_at": (end + dt.timedelta(days=lag)).isoformat(),
                                "source": f"{rng.choice(('10-Q', '10-K', 'press', 'news'))}-{len(rows)}",
                                "authority": rng.choice(("primary", "primary", "secondary")),
                                "qualifier": "approx" if rng.random() < 0.15 else "exact",
                            })
    rng.shuffle(rows)
    half = len(rows) // 2
    batches = [rows[:half], rows[half:], rows[: half // 5]]      # the last repeats events: duplicates
    for i, batch in enumerate(batches):
        report = ingest_paths(store, [write_csv(tmp / f"b{seed}-{i}.csv", batch)], catalog=catalog)
        assert report.ok, report.summary()
    # withdrawals and corrections naming earlier events of their own fact (the only ones a store
    # accepts), some dated before the event they name (never visible then)
    events = store.read().to_pylist()
    chosen = rng.sample([e for e in events if e["op"] == "assert"], k=len(events) // 12)
    fixes = []
    for e in chosen:
        when = max(e["reported_at"] + dt.timedelta(days=rng.choice((-10, 1, 60, 300))),
                   e["period_end"] + dt.timedelta(days=1))
        correction = rng.random() < 0.5
        fixes.append({
            "entity": e["entity"], "metric": e["metric"],
            "unit": next(u for m, u, _ in METRICS if m == e["metric"]),
            "period_start": e["period_start"].isoformat(), "period_end": e["period_end"].isoformat(),
            "value": str(rng.randint(1, 900)) if correction else "", "op": "assert" if correction else "retract",
            "supersedes": e["event_id"], "reported_at": when.isoformat(), "source": f"amendment-{len(fixes)}",
            "authority": "primary", "qualifier": "exact",
        })
    report = ingest_paths(store, [write_csv(tmp / f"fix{seed}.csv", fixes)], catalog=catalog)
    assert report.ok, report.summary()
    return store


def _rows(df: pl.DataFrame, columns: list[str]) -> list[tuple[object, ...]]:
    def norm(v: object) -> object:
        if isinstance(v, float):
            return round(v, 6)
        return tuple(v) if isinstance(v, list) else v
    return sorted((tuple(norm(v) for v in r) for r in df.select(columns).rows()), key=repr)


def assert_versions_match(ms: MetricStore, every: int = 1) -> int:
    """Compare growth_versions() at each publication date (and the day before) with growth_at."""
    versions = ms.sql("SELECT * FROM growth_versions()")
    columns = [c for c in ms.sql("SELECT * FROM growth_at(NULL, NULL) LIMIT 0").columns]
    assert {"valid_from", "valid_to"} <= set(versions.columns)
    dates = ms.sql("SELECT DISTINCT d FROM (SELECT reported_at AS d FROM event_log UNION ALL "
                   "SELECT reported_at - 1 FROM event_log) ORDER BY d")["d"].to_list()[::every]
    for d in dates:
        want = ms.sql("SELECT * FROM growth_at(?, NULL)", [d])
        got = versions.filter((pl.col("valid_from") <= d) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > d)))
        assert _rows(got, columns) == _rows(want, columns), f"growth as of {d}"
    current = versions.filter(pl.col("valid_to").is_null())
    assert _rows(current, columns) == _rows(ms.sql("SELECT * FROM growth"), columns)
    return len(dates)


# one seed in `make test`; the others and the real filings take half a minute each: `make test-slow`
@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_versions_equal_the_view_as_of_every_date_on_random_stores(tmp_path: Path, catalog: Catalog, seed: int) -> None:
    store = random_store(tmp_path / "store", tmp_path, catalog, seed)
    with MetricStore(store) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events WHERE supersedes IS NOT NULL").item() > 0
        assert ms.sql("SELECT count(*) AS n FROM growth_versions() WHERE derived").item() > 0
        assert assert_versions_match(ms) > 50


@pytest.mark.slow
@pytest.mark.skipif(not SEC.is_dir(), reason="../shared/data/sec is absent (real SEC filings)")
def test_versions_equal_the_view_as_of_dates_of_real_filings(tmp_path: Path, catalog: Catalog) -> None:
    store = Store.create(tmp_path / "store")
    for name in ("CIK0000320193_apple_asof2024-11.json", "CIK0001640147_snowflake.json"):
        assert ingest_paths(store, [SEC / name], catalog=catalog).ok
    with MetricStore(store) as ms:
        assert assert_versions_match(ms, every=5) > 20


def test_versions_of_sparse_and_irregular_series(tmp_path: Path, catalog: Catalog) -> None:
    """Series whose places are not every quarter apart, restated a year on: the second quarter of
    each year alone (its prior a year back), every second quarter, and instants at the ends of
    months a quarter or a month apart. Their versions equal the view as of every date (a row reads
    only the places its series can hold, and those it reads are found)."""
    store = Store.create(tmp_path / "store")
    quarters = {"q2_only": [(y, 4) for y in (2020, 2021, 2022)],
                "halves_apart": [(2020, 4), (2020, 10), (2021, 4), (2021, 10), (2022, 4)]}
    rows: list[dict[str, object]] = []

    def add(metric: str, start: dt.date, end: dt.date, i: int) -> None:
        for version, lag in enumerate((30, 400) if i % 2 == 0 else (30,)):      # some restated a year on
            rows.append({"entity": "sparseco", "metric": metric, "unit": "USD m", "value": str(100 + 10 * i + version),
                         "period_start": start.isoformat(), "period_end": end.isoformat(),
                         "reported_at": (end + dt.timedelta(days=lag)).isoformat(), "source": f"10-Q-{len(rows)}"})

    for metric, firsts in quarters.items():
        for i, (y, m) in enumerate(firsts):
            add(metric, dt.date(y, m, 1), dt.date(y + (m + 3 > 12), (m + 2) % 12 + 1, 1) - dt.timedelta(days=1), i)
    for i, (y, m) in enumerate([(2020, 3), (2020, 6), (2020, 7), (2020, 10), (2021, 3), (2021, 6), (2021, 7)]):
        end = dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)
        add("cash", end, end, i)
    assert ingest_paths(store, [write_csv(tmp_path / "sparse.csv", rows)], catalog=catalog).ok
    with MetricStore(store) as ms:
        priors = dict(ms.sql("SELECT metric, count(prior_period) + count(qoq_period) AS n FROM growth "
                             "WHERE entity = 'sparseco' GROUP BY metric").rows())
        assert priors == {"q2_only": 2, "halves_apart": 3, "cash": 6}, priors     # YoY and QoQ priors found
        assert assert_versions_match(ms) > 10
