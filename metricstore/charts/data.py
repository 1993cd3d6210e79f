"""What a chart draws, read from the store through :class:`queries.MetricStore`: one series with its
YoY growth, its guidance, and on request every earlier published version of it.

- the series and its YoY are :meth:`MetricStore.series` (so derived quarters and their marks come
  from the growth view, as of a date when asked);
- guidance, targets and estimates of the same series are the non-actual facts of ``facts_at``,
  with the growth they imply over the actual a year before;
- the earlier versions come from ``growth_versions()``: every version of each growth row with the
  dates it was the answer. A *vintage* is the series as it stood on a publication date, kept when
  it shows a value the current series no longer has, and only the last such state before the
  next restatement (so a restatement shows as one faint line, not one per filing).

Names a user types are checked against what the store holds, so that a typo is one line that
lists what there is, not an empty chart.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from metricstore.charts.style import mark_of
from queries import BadArgument, MetricStore
from queries.helper import SERIES_COLUMNS
from queries.names import few, missing, near
from queries.args import DateLike, key_text, stored_key, to_date

#: The frequencies a chart can draw, in the order an unspecified one is chosen.
FREQS = ("FY", "Q", "H", "M", "I")
#: The columns of :attr:`SeriesData.points`.
POINT_COLUMNS = ("period", "period_end", "value", "unit", "yoy_pct", "prior_period", "kind", "qualifier",
                 "derived", "mark", "source")
#: The columns of :attr:`SeriesData.restatements`.
RESTATEMENT_SCHEMA = {"period": pl.String, "period_end": pl.Date, "before": pl.Float64, "after": pl.Float64,
                      "change_pct": pl.Float64, "restated_at": pl.Date}
#: Two values closer than this (relative) are the same figure.
SAME = 1e-9


@dataclass(frozen=True)
class Vintage:
    """The series as published up to ``as_of``, before a later filing restated part of it."""

    as_of: dt.date
    points: pl.DataFrame        # period, period_end, value, yoy_pct


@dataclass(frozen=True)
class SeriesData:
    """One series ready to draw: its points (actuals and guidance), and its earlier versions."""

    entity: str
    name: str                   # the entity's name where the store has one, else its id
    metric: str
    segment: str
    dims: str
    freq: str
    unit: str
    as_of: dt.date | None
    points: pl.DataFrame        # POINT_COLUMNS, by period end; guidance has kind != 'actual'
    vintages: tuple[Vintage, ...] = ()
    restatements: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RESTATEMENT_SCHEMA))
    notes: tuple[str, ...] = ()

    @property
    def actuals(self) -> pl.DataFrame:
        return self.points.filter(pl.col("kind") == "actual")

    @property
    def label(self) -> str:
        """``revenue`` with its segment and dims when not the whole entity."""
        extra = [s for s in (self.segment if self.segment != "total" else "", self.dims) if s]
        return f"{self.metric} ({', '.join(extra)})" if extra else self.metric


#: Where a conversion other than ``currency=`` (the ECB's rates) plugs in: a function that returns
#: the series in another unit (values, and YoY where the conversion changes it). None: the figures
#: are drawn in the units the store holds, or converted by ``currency``.
Convert = Callable[[SeriesData], SeriesData]


def load_series(ms: MetricStore, entity: str, metric: str, *, segment: str = "total", dims: str = "",
                freq: str | None = None, as_of: DateLike | None = None, vintages: bool = False,
                convert: Convert | None = None, currency: str | None = None) -> SeriesData:
    """One series of the store, checked: an unknown entity, metric, segment, dims or frequency is
    a :class:`BadArgument` that lists what the store has. ``currency``: the figures converted at
    the ECB's rates (queries.fx; guidance and earlier versions stay in the units reported)."""
    entity, metric, segment, dims = _keys(entity, metric, segment, dims)
    d = to_date("as_of", as_of)
    counts = _counts(ms, entity, metric, segment, dims, d)
    chosen = _freq(freq, [(entity, counts)])
    data = _series(ms, entity, metric, segment, dims, chosen, d, vintages, currency)
    return convert(data) if convert else data


def load_peers(ms: MetricStore, entities: Sequence[str], metric: str, *, segment: str = "total", dims: str = "",
               freq: str | None = None, as_of: DateLike | None = None,
               convert: Convert | None = None, currency: str | None = None) -> list[SeriesData]:
    """The same series of several entities, on the frequency they all have."""
    names = list(dict.fromkeys(e.strip().lower() for e in entities if e.strip()))
    if len(names) < 2:
        raise BadArgument("compare", ",".join(entities), "names fewer than two entities (E1,E2,...)")
    d = to_date("as_of", as_of)
    keys = [_keys(e, metric, segment, dims) for e in names]
    chosen = _freq(freq, [(k[0], _counts(ms, *k, d)) for k in keys])
    out = []
    for k in keys:
        data = _series(ms, *k, chosen, d, False, currency)
        out.append(convert(data) if convert else data)
    return out


def _keys(entity: str, metric: str, segment: str, dims: str) -> tuple[str, str, str, str]:
    return (stored_key("entity", entity.strip()), stored_key("metric", metric.strip()),
            stored_key("segment", segment.strip() or "total"), key_text(dims.strip()))


def _counts(ms: MetricStore, entity: str, metric: str, segment: str, dims: str,
            as_of: dt.date | None) -> dict[str, int]:
    """How many facts the series has per frequency; a name the store lacks is a BadArgument."""
    inv = ms.sql("SELECT metric, segment, dims, ptype, count(*) AS n "
                 "FROM facts_at(getvariable('as_of'), NULL, only_entity := ?) GROUP BY ALL",
                 [entity], as_of=as_of)
    when = f" as of {as_of}" if as_of else ""
    if inv.height == 0:
        raise missing(ms.sql, entity) or BadArgument("entity", entity, f"has no figures published{when}")
    of = inv.filter(pl.col("metric") == metric)
    if of.height == 0:
        raise BadArgument("metric", metric, f"has no {entity} figures{when}"
                                            f"{near(metric, inv['metric'].unique().sort().to_list(), 'metrics')}")
    seg = of.filter(pl.col("segment") == segment)
    if seg.height == 0:
        segs = of["segment"].unique().sort().to_list()
        raise BadArgument("segment", segment, f"has no {entity} {metric} figures{when} (segments: {few(segs)})")
    series = seg.filter(pl.col("dims") == dims)
    if series.height == 0:
        all_dims = [repr(x) for x in seg["dims"].unique().sort().to_list()]
        raise BadArgument("dims", dims, f"has no {entity} {metric} ({segment}) figures{when} (dims: {few(all_dims)})")
    return {str(r["ptype"]): int(r["n"]) for r in series.iter_rows(named=True)}


def _freq(freq: str | None, found: list[tuple[str, dict[str, int]]]) -> str:
    """The frequency asked for, checked; else the one every entity has, fiscal years first."""
    if freq is not None:
        key = freq.strip().upper()
        if key not in FREQS:
            raise BadArgument("freq", freq, f"is not one of {', '.join(FREQS)}")
        for entity, counts in found:
            if key not in counts and not (key in ("Q", "H") and {"FY", "YTD"} & set(counts)):
                raise BadArgument("freq", freq, f"{entity} has no {key} figures (it has {_freqs(counts)})")
        return key
    shared = [f for f in FREQS if all(f in counts for _, counts in found)]
    if not shared:
        has = "; ".join(f"{e}: {_freqs(c)}" for e, c in found)
        raise BadArgument("freq", None, f"the series share no frequency ({has})")
    least = {f: min(counts[f] for _, counts in found) for f in shared}
    return next((f for f in shared if least[f] >= 2), max(shared, key=lambda f: least[f]))


def _freqs(counts: dict[str, int]) -> str:
    return ", ".join(f"{f} ({n})" for f, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _series(ms: MetricStore, entity: str, metric: str, segment: str, dims: str, freq: str,
            as_of: dt.date | None, with_vintages: bool, currency: str | None = None) -> SeriesData:
    actual = ms.series(entity, metric, segment, freq, dims=dims, as_of=as_of, currency=currency)
    if currency is not None:
        actual = actual.select([c for c in actual.columns if c in SERIES_COLUMNS])
    ahead = ms.sql("SELECT period, period_end, value, unit, qualifier, kind, source "
                   "FROM facts_at(getvariable('as_of'), NULL, only_entity := ?, only_metric := ?) "
                   "WHERE kind <> 'actual' AND segment = ? AND dims = ? AND ptype = ? ORDER BY period_end, kind",
                   [entity, metric, segment, dims, freq], as_of=as_of)
    units = Counter(actual["unit"].to_list() + ahead["unit"].to_list())
    if not units:
        raise BadArgument("freq", freq, f"{entity} {metric} has no {freq} figures"
                                        f"{f' as of {as_of}' if as_of else ''}")
    unit = units.most_common(1)[0][0]
    notes = [f"also reported in {u} ({n} figure(s)): not drawn" for u, n in units.items() if u != unit]
    actual, ahead = actual.filter(pl.col("unit") == unit), ahead.filter(pl.col("unit") == unit)
    points = _points(actual, ahead)
    named = ms.sql("SELECT name FROM entities WHERE entity = ?", [entity])
    name = str(named["name"][0]) if named.height and named["name"][0] else entity
    data = SeriesData(entity, name, metric, segment, dims, freq, unit, as_of, points, notes=tuple(notes))
    if not with_vintages:
        return data
    versions = ms.sql("SELECT period, period_end, value, yoy_pct, valid_from, valid_to FROM growth_versions() "
                      "WHERE entity = ? AND metric = ? AND segment = ? AND dims = ? AND ptype = ? AND unit = ? "
                      "ORDER BY period_end, valid_from", [entity, metric, segment, dims, freq, unit])
    if as_of is not None:
        versions = versions.filter(pl.col("valid_from") <= as_of)
    return replace(data, vintages=vintages_of(versions, data.actuals), restatements=restatements_of(versions))


def _points(actual: pl.DataFrame, ahead: pl.DataFrame) -> pl.DataFrame:
    """Actuals and guidance as one frame of POINT_COLUMNS; guidance carries the growth it implies
    over the actual figure a year before (the same type of period ending 11 to 13 months earlier)."""
    rows: list[dict[str, Any]] = []
    for r in actual.iter_rows(named=True):
        rows.append({"period": r["period"], "period_end": r["period_end"], "value": r["value"], "unit": r["unit"],
                     "yoy_pct": r["yoy_pct"], "prior_period": r["prior_period"], "kind": "actual",
                     "qualifier": r["qualifier"], "derived": bool(r["derived"]),
                     "mark": mark_of("actual", r["qualifier"], r["derived"]), "source": r["source"]})
    for r in ahead.iter_rows(named=True):
        prior = [a for a in rows if a["kind"] == "actual" and 335 <= (r["period_end"] - a["period_end"]).days <= 395]
        base = prior[-1] if prior else None
        yoy = (r["value"] - base["value"]) / base["value"] if base and base["value"] and base["value"] > 0 else None
        rows.append({"period": r["period"], "period_end": r["period_end"], "value": r["value"], "unit": r["unit"],
                     "yoy_pct": yoy, "prior_period": base["period"] if base else None, "kind": r["kind"],
                     "qualifier": r["qualifier"], "derived": False, "mark": mark_of(r["kind"], r["qualifier"], False),
                     "source": r["source"]})
    schema = {"period": pl.String, "period_end": pl.Date, "value": pl.Float64, "unit": pl.String,
              "yoy_pct": pl.Float64, "prior_period": pl.String, "kind": pl.String, "qualifier": pl.String,
              "derived": pl.Boolean, "mark": pl.String, "source": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("period_end", "kind")


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is not b
    return abs(a - b) > SAME * max(abs(a), abs(b), 1.0)


def _at(versions: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The versions that were the answer on ``day``."""
    return versions.filter((pl.col("valid_from") <= day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day)))


def vintages_of(versions: pl.DataFrame, current: pl.DataFrame) -> tuple[Vintage, ...]:
    """The series as it stood just before each restatement: of the states on each publication date
    that show a value the ``current`` series no longer has, the last one before the next change of
    those values (a state whose old values a later state still shows in full is left out)."""
    now = {r["period"]: r["value"] for r in current.iter_rows(named=True)}
    states: list[tuple[dt.date, pl.DataFrame, set[tuple[str, float]]]] = []
    for day in sorted(set(versions["valid_from"].to_list())):
        snap = _at(versions, day).sort("period_end")
        old = {(r["period"], r["value"]) for r in snap.iter_rows(named=True)
               if r["period"] in now and _differs(r["value"], now[r["period"]])}
        if old:
            states.append((day, snap.select("period", "period_end", "value", "yoy_pct"), old))
    kept = [(day, snap) for i, (day, snap, old) in enumerate(states)
            if i + 1 == len(states) or not old <= states[i + 1][2]]
    return tuple(Vintage(day, snap) for day, snap in kept)


def restatements_of(versions: pl.DataFrame) -> pl.DataFrame:
    """Each change of a period's value between publications: before, after, the change, and when."""
    rows = []
    for (period,), group in versions.sort("valid_from").group_by(["period"], maintain_order=True):
        prev: dict[str, Any] | None = None
        for r in group.iter_rows(named=True):
            if prev is not None and _differs(r["value"], prev["value"]):
                pct = (r["value"] - prev["value"]) / abs(prev["value"]) if prev["value"] else None
                rows.append({"period": period, "period_end": r["period_end"], "before": prev["value"],
                             "after": r["value"], "change_pct": pct, "restated_at": r["valid_from"]})
            prev = r
    return pl.DataFrame(rows, schema=RESTATEMENT_SCHEMA, orient="row").sort("restated_at", "period_end")
