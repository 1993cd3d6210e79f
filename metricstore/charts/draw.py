"""The charts of ``metricstore plot``: one series with its YoY, or peers on one chart.

Each function returns a :class:`Chart`: the matplotlib figure, its title and caption, the legend's
entries and the figures drawn as text tables (an HTML page shows them under the chart). Nothing
here reads the store (see :mod:`metricstore.charts.data`) or writes a file (:mod:`.output`).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from metricstore.charts import output, style
from metricstore.charts.data import SeriesData
from metricstore.render import MAGNITUDES, human, percent

#: The words for a frequency in a title.
FREQ_WORDS = {"FY": "fiscal years", "Q": "quarters", "H": "half years", "M": "months", "I": "points in time"}
#: Days a period of each frequency spans (the bars' width is a share of it).
FREQ_DAYS = {"FY": 365, "Q": 91, "H": 182, "M": 30, "I": 91}
CURRENT = "#1f77b4"
VINTAGE = "#8c8c8c"
UP, DOWN = "#2ca02c", "#d62728"
PEERS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
#: At most this many restatements are written on the chart (the HTML table lists all).
ANNOTATED = 3
#: Values and YoY are written next to each point when a chart has at most this many.
LABELLED = 10
#: At most this many period labels on the x axis.
TICKS = 14
#: How a value label says that a figure is not exact.
BOUNDS = {"approx": "~", "at_least": "\u2265", "at_most": "\u2264", "range": "~"}
#: A mark's words in a table.
MARK_WORDS = {"exact": "reported", "approx": "approximate", "derived": "derived",
              "derived_approx": "derived, approximate", "guidance": "guidance"}


@dataclass
class Chart:
    """A drawn chart and what it says: tests read these, :meth:`write` saves it."""

    figure: Figure
    title: str
    caption: str
    legend: list[str]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        """Save as PNG, SVG or HTML by ``path``'s extension (see :mod:`metricstore.charts.output`)."""
        return output.write(self.figure, path, title=self.title, caption=self.caption, tables=self.tables)


def scale(values: Sequence[float], unit: str) -> tuple[float, str]:
    """The divisor and axis label that make ``values`` readable: ``(1e9, 'CNY bn')``, ``(0.01, '%')``."""
    if unit == "ratio":
        return 0.01, "%"
    top = max((abs(v) for v in values), default=0.0)
    for size, word in MAGNITUDES:
        if top >= size:
            return size, f"{unit} {word}"
    return 1.0, unit


def series_chart(data: SeriesData) -> Chart:
    """The series in the upper panel (current figures, each marked by origin; guidance ahead; the
    earlier versions faint behind), its YoY growth in the lower one."""
    fig = Figure(figsize=(10, 6.6), layout="constrained")
    ax, ay = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
    pts, act = data.points, data.actuals
    div, axis_unit = scale(pts["value"].to_list() + [v for vt in data.vintages for v in vt.points["value"]], data.unit)
    gap = _gap(pts, data.freq)

    for vt in data.vintages:
        ax.plot(*_broken(vt.points["period_end"].to_list(), [v / div for v in vt.points["value"]], gap), color=VINTAGE,
                alpha=0.5, linewidth=1.2, marker="o", markersize=3, zorder=1)
    ax.plot(*_broken(act["period_end"].to_list(), [v / div for v in act["value"]], gap), color=CURRENT, linewidth=2,
            zorder=2)
    _guidance_lines(ax, act, pts, div, CURRENT)
    style.points(ax, pts["period_end"].to_list(), [v / div for v in pts["value"]], pts["mark"].to_list(), CURRENT)
    if pts.height <= LABELLED:
        for r in pts.iter_rows(named=True):
            ax.annotate(BOUNDS.get(r["qualifier"], "") + _short(r["value"] / div), (r["period_end"], r["value"] / div), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=8, color="#333333")
    _period_ticks(ay, pts, data.freq)                 # (the x range, before notes are placed in it)
    notes = _annotate_restatements(ax, data, div)

    current = "figures as published by " + str(data.as_of) if data.as_of else "latest published figures"
    entries: list[Line2D | Patch] = [Line2D([], [], color=CURRENT, linewidth=2, label=f"{data.label}: {current}")]
    if data.vintages:
        entries.append(Line2D([], [], color=VINTAGE, alpha=0.5, marker="o", markersize=3,
                              label=f"earlier published versions ({len(data.vintages)}), before a restatement"))
    entries += style.handles(pts["mark"].to_list())
    ax.legend(handles=entries, loc="best", fontsize=8, framealpha=0.9)
    ax.set_ylabel(axis_unit)
    ax.grid(axis="y", alpha=0.3)

    notes += _yoy_panel(ay, data)
    title = f"{_who(data)}: {data.label}, {FREQ_WORDS.get(data.freq, data.freq)}"
    subtitle = (f"as of {data.as_of}" if data.as_of else "as known now") + (
        f"; {data.restatements.height} figure(s) restated since first published" if data.vintages else "")
    ax.set_title(subtitle, fontsize=9, color="#555555")
    fig.suptitle(title, fontsize=12)
    caption = "; ".join([*notes, *data.notes])
    if caption:
        fig.supxlabel(caption, x=0.01, ha="left", fontsize=7, color="#555555")
    return Chart(fig, title, caption or subtitle, _legend_texts(ax), _tables([data]) | _restated(data))


def compare_chart(peers: Sequence[SeriesData]) -> Chart:
    """Peers on one chart: their levels above, their YoY below; colour names the entity, the mark
    the origin of each figure. Levels in different units (currencies) are drawn as an index on a
    log scale: each entity's figure nearest the first date they all have figures for is 100."""
    fig = Figure(figsize=(10, 6.6), layout="constrained")
    ax, ay = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
    units = sorted({p.unit for p in peers})
    indexed = len(units) > 1
    values = [v for p in peers for v in p.points["value"]]
    starts = [p.actuals["period_end"][0] for p in peers if p.actuals.height]
    base_day = max(starts) if starts else None
    div, axis_unit = (1.0, f"index: the figure nearest {base_day} = 100") if indexed \
        else scale(values, units[0])
    entries: list[Line2D | Patch] = []
    marks: list[str] = []
    growth: list[float] = []
    for i, p in enumerate(peers):
        color = PEERS[i % len(PEERS)]
        pts, act = p.points, p.actuals
        d = _index_base(act, base_day) / 100 if indexed else div
        gap = _gap(pts, p.freq)
        ax.plot(*_broken(act["period_end"].to_list(), [v / d for v in act["value"]], gap), color=color, linewidth=2,
                zorder=2)
        _guidance_lines(ax, act, pts, d, color)
        style.points(ax, pts["period_end"].to_list(), [v / d for v in pts["value"]], pts["mark"].to_list(), color)
        entries.append(Line2D([], [], color=color, linewidth=2, label=f"{_who(p)}" + (f" ({p.unit})" if indexed else "")))
        marks += pts["mark"].to_list()
        yoy = pts.filter(pl.col("yoy_pct").is_not_null())
        line = yoy.filter(pl.col("kind") == "actual")
        ay.plot(*_broken(line["period_end"].to_list(), [v * 100 for v in line["yoy_pct"]], gap), color=color,
                linewidth=1.5)
        style.points(ay, yoy["period_end"].to_list(), [v * 100 for v in yoy["yoy_pct"]], yoy["mark"].to_list(), color,
                     size=5)
        growth += [v * 100 for v in yoy["yoy_pct"]]
    ax.legend(handles=entries + style.handles(marks), loc="best", fontsize=8, framealpha=0.9)
    ax.set_ylabel(axis_unit, fontsize=8 if indexed else 10)
    if indexed:
        _log_if_wide(ax)
    ax.grid(axis="y", alpha=0.3)
    ay.axhline(0, color="#333333", linewidth=0.8)
    ay.set_ylabel("YoY %")
    ay.grid(axis="y", alpha=0.3)
    notes = _clip_yoy(ay, growth) + [f"{p.entity}: {n}" for p in peers for n in p.notes]
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ay.xaxis.set_major_locator(locator)
    ay.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    metric = peers[0].label
    title = f"{metric}: {', '.join(p.entity for p in peers)}, {FREQ_WORDS.get(peers[0].freq, peers[0].freq)}"
    as_of = peers[0].as_of
    ax.set_title((f"as of {as_of}" if as_of else "as known now") + (
        f"; units differ ({', '.join(units)}): levels indexed, compare the YoY panel" if indexed else ""),
        fontsize=9, color="#555555")
    fig.suptitle(title, fontsize=12)
    caption = "; ".join(notes)
    if caption:
        fig.supxlabel(caption, x=0.01, ha="left", fontsize=7, color="#555555")
    return Chart(fig, title, caption or title, _legend_texts(ax), _tables(peers))


def _log_if_wide(ax: Axes) -> None:
    """A log scale when the indexed levels span more than 20x (a young company's growth beside an
    old one's), with plain numbers on the axis."""
    ys = [float(v) for line in ax.get_lines() for v in np.asarray(line.get_ydata(), dtype=float) if v == v]  # (NaN: a break)
    if ys and min(ys) > 0 and max(ys) / min(ys) > 20:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:,.4g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_ylabel(str(ax.get_ylabel()).replace(" = 100", " = 100 (log scale)"))


def _index_base(act: pl.DataFrame, day: dt.date | None) -> float:
    """The actual figure whose period ends nearest ``day`` (the index's 100); 1 when there is none."""
    if act.height == 0 or day is None:
        return 100.0
    near = min(act.iter_rows(named=True), key=lambda r: abs((r["period_end"] - day).days))
    return float(near["value"]) if near["value"] else 100.0


def _broken(xs: list[Any], ys: list[float], gap: float) -> tuple[list[Any], list[float]]:
    """The points with a break (NaN) where a period is missing, so that a line does not bridge it."""
    out_x: list[Any] = []
    out_y: list[float] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i and (x - xs[i - 1]).days > 1.6 * gap:
            out_x.append(xs[i - 1] + (x - xs[i - 1]) / 2)
            out_y.append(float("nan"))
        out_x.append(x)
        out_y.append(y)
    return out_x, out_y


#: The YoY panel shows at most this range (percent); figures beyond it are named in the caption.
YOY_RANGE = (-100.0, 300.0)


def _clip_yoy(ay: Axes, values: list[float]) -> list[str]:
    """Keep the YoY axis readable when a base near zero gives +2,600 %: clip it, and say so."""
    lo, hi = YOY_RANGE
    off = [v for v in values if v < lo or v > hi]
    if not off:
        return []
    inside = [v for v in values if lo <= v <= hi] or [0.0]
    pad = (max(inside) - min(min(inside), 0)) * 0.1 or 10.0
    ay.set_ylim(min(min(inside), 0) - pad, max(inside) + pad)
    return [f"{len(off)} YoY figure(s) beyond {lo:+.0f} % .. {hi:+.0f} % not shown (a base near zero)"]


def _who(data: SeriesData) -> str:
    return data.entity if data.name == data.entity else f"{data.name} ({data.entity})"


def _short(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"


def _guidance_lines(ax: Axes, act: pl.DataFrame, pts: pl.DataFrame, div: float, color: str) -> None:
    """A dashed line from the last actual figure to each guidance figure after it."""
    if act.height == 0:
        return
    last = act.row(-1, named=True)
    for g in pts.filter((pl.col("kind") != "actual") & (pl.col("period_end") > last["period_end"])).iter_rows(named=True):
        ax.plot([last["period_end"], g["period_end"]], [last["value"] / div, g["value"] / div], color=color,
                linestyle="--", linewidth=1.4, zorder=2)


def _annotate_restatements(ax: Axes, data: SeriesData, div: float) -> list[str]:
    """Write the restatements of the largest publications next to their largest change: one note
    per date (``restated 2010-01-25: FY2008 +15.4 %, FY2009 +17.4 %``), each in a free spot of the
    panel (the x range must be final); the caption counts the rest."""
    r = data.restatements.filter(pl.col("period").is_in(data.actuals["period"].implode()))
    if r.height == 0:
        return []
    dates = (r.group_by("restated_at").agg(pl.col("change_pct").abs().max().alias("size"))
             .sort("size", descending=True, nulls_last=True)["restated_at"].to_list())
    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()      # data -> fractions of the panel
    taken: list[tuple[float, float, float, float]] = []
    for day in dates[:ANNOTATED]:
        on = r.filter(pl.col("restated_at") == day).sort("period_end")
        big = on.sort(pl.col("change_pct").abs(), descending=True, nulls_last=True).row(0, named=True)
        words = [f"{x['period']} {percent(x['change_pct'])}" for x in on.iter_rows(named=True)]
        text = f"restated {day}:\n" + ", ".join(words[:4]) + (f" and {len(words) - 4} more" if len(words) > 4 else "")
        anchor = to_axes.transform((date2num(big["period_end"]), big["after"] / div))  # type: ignore[no-untyped-call]
        box = _free_spot(ax, (float(anchor[0]), float(anchor[1])), max(len(x) for x in text.splitlines()), taken)
        taken.append(box)
        ax.annotate(text, (big["period_end"], big["after"] / div), xytext=(box[0], box[3]),
                    textcoords="axes fraction", fontsize=7.5, ha="left", va="top", color="#444444",
                    bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9},
                    arrowprops={"arrowstyle": "->", "color": "#999999", "linewidth": 0.8})
    return [f"{len(dates) - ANNOTATED} more restatement date(s) in the table"] if len(dates) > ANNOTATED else []


def _free_spot(ax: Axes, anchor: tuple[float, float], chars: int,
               taken: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The box (x0, y0, x1, y1 in fractions of the panel) nearest ``anchor`` for a two-line note of
    ``chars`` characters that covers no line, point or earlier note (the nearest spot when none is free)."""
    width, height = min(0.9, 0.009 * chars + 0.02), 0.11      # 7.5 pt text on a 10 x 6.6 inch figure
    to_axes = ax.transData + ax.transAxes.inverted()
    samples: list[tuple[float, float]] = []
    for line in ax.get_lines():
        xy = [to_axes.transform(p) for p in np.asarray(line.get_xydata(), dtype=float) if not np.isnan(p).any()]
        for a, b in zip(xy, xy[1:], strict=False):
            samples += [(a[0] + (b[0] - a[0]) * t / 10, a[1] + (b[1] - a[1]) * t / 10) for t in range(11)]
        samples += [(float(p[0]), float(p[1]) + 0.05) for p in xy]        # the value written above a point
    best: tuple[float, tuple[float, float, float, float]] | None = None
    for i in range(14):
        for j in range(12):
            x0, y1 = 0.02 + i * (0.96 - width) / 13, 0.96 - j * (0.92 - height) / 11
            box = (x0, y1 - height, x0 + width, y1)
            if any(box[0] - 0.01 <= x <= box[2] + 0.01 and box[1] - 0.02 <= y <= box[3] + 0.02 for x, y in samples):
                continue
            if any(not (box[2] < t[0] or t[2] < box[0] or box[3] < t[1] or t[3] < box[1]) for t in taken):
                continue
            d = ((x0 + width / 2 - anchor[0]) ** 2 + (y1 - height / 2 - anchor[1]) ** 2) ** 0.5
            if best is None or d < best[0]:
                best = (d, box)
    if best is not None:
        return best[1]
    x0 = min(max(anchor[0] + 0.05, 0.02), 0.98 - width)
    y1 = min(0.95, anchor[1] + 0.25) - 0.13 * len(taken)
    return (x0, y1 - height, x0 + width, y1)


def _yoy_panel(ay: Axes, data: SeriesData) -> list[str]:
    """YoY bars marked like their figures, earlier versions' YoY as grey dots; the caption's notes."""
    pts = data.points
    yoy = pts.filter(pl.col("yoy_pct").is_not_null())
    ay.axhline(0, color="#333333", linewidth=0.8)
    ay.set_ylabel("YoY %")
    ay.grid(axis="y", alpha=0.3)
    if yoy.height == 0:
        ay.text(0.5, 0.5, "no YoY: no figure of the same period a year earlier", transform=ay.transAxes,
                ha="center", va="center", fontsize=9, color="#777777")
        ay.set_yticks([])
        return []
    values = [v * 100 for v in yoy["yoy_pct"]]
    bar_colors = [UP if v >= 0 else DOWN for v in values]
    container = style.bars(ay, yoy["period_end"].to_list(), values, yoy["mark"].to_list(), bar_colors,
                           width=_width(pts, data.freq))
    if yoy.height <= LABELLED:
        ay.bar_label(container, labels=[f"{v:+.1f} %" for v in values], fontsize=8, padding=2)
    for vt in data.vintages:
        now = {r["period"]: r["yoy_pct"] for r in yoy.iter_rows(named=True)}
        old = [r for r in vt.points.iter_rows(named=True) if r["yoy_pct"] is not None and r["period"] in now
               and abs(r["yoy_pct"] - now[r["period"]]) > 1e-9]
        ay.plot([r["period_end"] for r in old], [r["yoy_pct"] * 100 for r in old], linestyle="none", marker="o",
                markersize=4, color=VINTAGE, alpha=0.7, zorder=3)
    odd = [m for m in yoy["mark"].to_list() if m != "exact"]
    if odd:
        ay.legend(handles=style.bar_handles(["exact", *odd], color="#555555"), loc="best", fontsize=7, framealpha=0.9)
    clipped = _clip_yoy(ay, values)
    if not clipped:
        low, high = min(values + [0.0]), max(values + [0.0])
        pad = (high - low) * (0.4 if odd else 0.18) or 1.0   # (room for the legend of the marks)
        ay.set_ylim(low - (pad if low < 0 else 0), high + pad)
    return clipped


def _gap(pts: pl.DataFrame, freq: str) -> float:
    """The usual number of days between two periods of the series."""
    ends = sorted(set(pts["period_end"].to_list()))
    gaps = [(b - a).days for a, b in zip(ends, ends[1:], strict=False)]
    return float(min(statistics.median(gaps) if gaps else FREQ_DAYS.get(freq, 365), FREQ_DAYS.get(freq, 365)))


def _width(pts: pl.DataFrame, freq: str) -> float:
    """Bar width in days: 60 % of the usual gap between periods."""
    return 0.6 * _gap(pts, freq)


def _period_ticks(ay: Axes, pts: pl.DataFrame, freq: str) -> None:
    """The period labels (FY2024, 2024Q4) under their period ends, thinned to at most TICKS."""
    ticks = pts.unique("period_end", keep="first").sort("period_end")
    step = max(1, -(-ticks.height // TICKS))
    chosen = ticks[::-1][::step][::-1]           # keep the latest period's label
    ay.set_xticks(chosen["period_end"].to_list(), chosen["period"].to_list(),
                  rotation=30 if chosen.height > 8 else 0, ha="right" if chosen.height > 8 else "center", fontsize=8)
    if ticks.height:
        first, last = ticks["period_end"][0], ticks["period_end"][-1]
        pad = dt.timedelta(days=max(0.55 * _gap(pts, freq), (last - first).days / 30))
        ay.set_xlim(first - pad, last + pad)


def _legend_texts(ax: Axes) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg is not None else []


def _tables(series: Sequence[SeriesData]) -> dict[str, pl.DataFrame]:
    """The figures drawn, as text cells (one table; an entity column when there are peers)."""
    rows: list[dict[str, Any]] = []
    for s in series:
        for r in s.points.iter_rows(named=True):
            row = {"entity": s.entity} if len(series) > 1 else {}
            row |= {"period": r["period"], "period end": str(r["period_end"]), "value": human(r["value"], r["unit"]),
                    "YoY": percent(r["yoy_pct"]) + (f" vs {r['prior_period']}" if r["prior_period"] else ""),
                    "figure": r["kind"] if r["kind"] != "actual" else MARK_WORDS[r["mark"]],
                    "qualifier": r["qualifier"], "source": r["source"] or ""}
            rows.append(row)
    return {"Figures drawn": pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String) if rows else None)}


def _restated(data: SeriesData) -> dict[str, pl.DataFrame]:
    r = data.restatements
    if r.height == 0:
        return {}
    cells = [{"period": x["period"], "before": human(x["before"], data.unit), "after": human(x["after"], data.unit),
              "change": percent(x["change_pct"]), "restated on": str(x["restated_at"])} for x in r.iter_rows(named=True)]
    return {"Restatements": pl.DataFrame(cells, schema=dict.fromkeys(cells[0], pl.String))}
