"""``make demo``: build the default store from ``data/seed``, print Xiaomi's 2024 story, draw it.

Everything printed is read back from the store through the same SQL views a data team uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from ingest import Catalog, Settings, ingest_paths
from metricstore.charts import output, style
from metricstore.render import human, percent
from queries import MetricStore
from store import Store

ENTITY = "xiaomi"

GROWTH_SQL = """
SELECT g.metric, g.segment, g.period, g.value, g.unit, g.qualifier, g.derived, g.prior_period, g.prior_value, g.yoy_pct,
       r.value AS reported_pct, r.qualifier AS reported_qualifier
FROM growth g
LEFT JOIN facts r
  ON r.entity = g.entity AND r.metric = g.metric || '_yoy_pct' AND r.segment = g.segment
 AND r.dims = g.dims AND r.period = g.period AND r.kind = 'actual'
WHERE g.entity = ? AND g.yoy_pct IS NOT NULL
ORDER BY g.metric = 'revenue' DESC, g.metric, g.segment, g.period
"""

MIX_SQL = """
SELECT segment, value, share FROM share
WHERE entity = ? AND metric = 'revenue' AND period = ? AND kind = 'actual' AND dims = ''
ORDER BY share DESC
"""

LOSS_SQL = """
SELECT period, value, qualifier, source_ref FROM facts
WHERE entity = ? AND metric = 'net_loss_per_unit' AND kind = 'actual'
ORDER BY period_end
"""


def build_store(cfg: Settings, seed: Path) -> Store:
    """Ingest every seed file (idempotent: a second run adds nothing)."""
    store = Store.open(cfg.store, create=True)
    files: list[str | Path] = sorted(p for p in seed.iterdir() if p.suffix in (".csv", ".json", ".parquet"))
    report = ingest_paths(store, files, catalog=Catalog.load(cfg.catalog), fmt="auto")
    for f in report.files:
        for p in f.problems:
            print(f"rejected: {p}")
    print(report.summary())
    return store


def _table(title: str, *columns: str, left: int = 1) -> Table:
    """A table titled on the left, its first ``left`` columns text, the rest figures."""
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i < left else "right", no_wrap=True)
    return t


def run_demo(cfg: Settings, seed: Path, chart: Path) -> None:
    store = build_store(cfg, seed)
    console = Console(width=None if sys.stdout.isatty() else 120)
    with MetricStore(store) as ms:
        growth = ms.sql(GROWTH_SQL, [ENTITY])
        mix = ms.sql(MIX_SQL, [ENTITY, "FY2024"])
        loss = ms.sql(LOSS_SQL, [ENTITY])

    t = _table("Xiaomi 2024: growth computed by the store from reported levels, vs the article",
               "metric", "segment", "period", "value", "prior year", "YoY (store)", "YoY (article)", left=3)
    for r in growth.iter_rows(named=True):
        article = percent(r["reported_pct"])
        if article and r["reported_qualifier"] != "exact":
            article = f"{r['reported_qualifier']} {article}"
        t.add_row(r["metric"].replace("_", " "), r["segment"].replace("_", " "), r["period"],
                  human(r["value"], r["unit"]), f"{human(r['prior_value'], r['unit'])} ({r['prior_period']})",
                  percent(r["yoy_pct"]), article)
    console.print(t)

    m = _table("Revenue mix FY2024", "segment", "revenue", "share of total")
    for r in mix.iter_rows(named=True):
        m.add_row(r["segment"].replace("_", " "), human(r["value"], "CNY"), percent(r["share"], signed=False))
    console.print(m)

    lo = _table("Smart EV: net loss per vehicle sold", "period", "qualifier", "loss per vehicle", left=2)
    for r in loss.iter_rows(named=True):
        lo.add_row(r["period"], r["qualifier"], human(r["value"], "CNY"))
    console.print(lo)
    if loss.height >= 2:
        first, last = loss.row(0, named=True), loss.row(-1, named=True)
        console.print(f"Loss per vehicle narrowed from about {first['value']:,.0f} CNY ({first['period']}) "
                      f"to about {last['value']:,.0f} CNY ({last['period']}): "
                      f"{last['value'] - first['value']:+,.0f} CNY.")
    write_chart(growth, mix, loss, chart)
    console.print(f"chart written to {chart}")


def write_chart(growth: pl.DataFrame, mix: pl.DataFrame, loss: pl.DataFrame, path: Path) -> None:
    """Three panels: growth (store vs article), revenue mix, loss per vehicle; PNG, SVG or HTML by
    ``path``'s extension. Figures are marked as on every chart (:mod:`metricstore.charts.style`):
    an approximate one hatched, a derived one dotted, with a legend saying which is which."""
    fig = Figure(figsize=(16, 5.4), layout="constrained")
    axes = fig.subplots(1, 3)
    ax = axes[0]
    rows = list(growth.iter_rows(named=True))
    labels = [f"{r['metric'].replace('_', ' ')}\n{r['segment'] if r['segment'] != 'total' else ''} {r['period']}"
              for r in rows]
    ys = [r["yoy_pct"] * 100 for r in rows]
    marks = [style.mark_of("actual", r["qualifier"], r["derived"]) for r in rows]
    bars = style.bars(ax, labels, ys, marks, ["#1f77b4"] * len(rows), horizontal=True)
    art = [(i, r["reported_pct"] * 100) for i, r in enumerate(rows) if r["reported_pct"] is not None]
    if art:
        ax.scatter([a[1] for a in art], [a[0] for a in art], color="#ff7f0e", zorder=3, label="stated in the article")
    ax.bar_label(bars, fmt="%+.1f %%", padding=3)
    ax.set_title("Year-on-year growth, 2024")
    ax.set_xlabel("%")
    ax.invert_yaxis()
    computed = style.bar_handles(marks, "#1f77b4")
    for h in computed:
        h.set_label(f"computed by the store: {h.get_label()}" if len(computed) > 1 else "computed by the store")
    ax.legend(handles=[*computed, *ax.get_legend_handles_labels()[0]], loc="lower right", fontsize=8)
    ax.set_xlim(0, max(ys + [0]) * 1.3 if ys else 1)

    ax = axes[1]
    if mix.height:
        segs = [s.replace("_", " ") for s in mix["segment"].to_list()]
        shares = [v * 100 for v in mix["share"].to_list()]
        b = ax.bar(segs, shares, color=["#2ca02c", "#98df8a", "#9467bd", "#d62728"][: len(segs)])
        ax.bar_label(b, fmt="%.1f %%")
        ax.set_title("Revenue mix FY2024")
        ax.set_ylabel("% of total revenue")
        ax.tick_params(axis="x", labelrotation=15)

    ax = axes[2]
    if loss.height:
        marks = [style.mark_of("actual", q, False) for q in loss["qualifier"].to_list()]
        b = style.bars(ax, loss["period"].to_list(), loss["value"].to_list(), marks, ["#d62728"] * loss.height)
        ax.bar_label(b, labels=[f"{'~' if q == 'approx' else ''}{v:,.0f}" for v, q in
                                zip(loss["value"].to_list(), loss["qualifier"].to_list(), strict=True)])
        ax.legend(handles=style.bar_handles(marks, "#d62728"), loc="upper right", fontsize=8)
        ax.set_ylim(0, max(loss["value"].to_list() + [0]) * 1.3 or 1)
        ax.set_title("Smart EV: net loss per vehicle (CNY)")
    title = "Xiaomi 2024 results, from metricstore"
    fig.suptitle(title)
    output.write(fig, path, title=title)
