"""``metricstore plot``: a series with its YoY growth, its earlier versions, or peers, as PNG, SVG or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metricstore.options import AsOfOpt, CurrencyOpt, DimsOpt, SegmentOpt, StoreOpt, open_store
from queries import BadArgument, MetricStore

app = typer.Typer()

FreqOpt = Annotated[str | None, typer.Option(
    "--freq", help="FY or Q (also H, M, I for instants) [default: fiscal years where there are two, "
                   "else the frequency with the most figures].")]


@app.command()
def plot(
    names: Annotated[list[str], typer.Argument(
        metavar="[ENTITY] METRIC", show_default=False,
        help="The entity and the metric (with --compare, the metric alone), e.g. aapl revenue.")],
    segment: SegmentOpt = "total", dims: DimsOpt = "", freq: FreqOpt = None,
    as_of: AsOfOpt = None, currency: CurrencyOpt = None,
    vintages: Annotated[bool, typer.Option(
        "--vintages", help="Draw each earlier published version of the series faintly behind the current one.")] = False,
    compare: Annotated[str | None, typer.Option(
        "--compare", help="Peers on one chart: E1,E2,... (then give the METRIC alone).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="The file: .png, .svg or .html (self-contained) [default: ENTITY-METRIC-FREQ.png].")] = None,
    store: StoreOpt = None,
) -> None:
    """Chart a series and its YoY growth; approximate, derived and guidance figures are marked apart."""
    from metricstore import charts   # (matplotlib loads only for a chart)

    if vintages and currency is not None:
        raise BadArgument("vintages", True, "draws the versions in the units reported: not with --currency")
    if compare is not None:
        if len(names) != 1:
            raise BadArgument("METRIC", " ".join(names), "with --compare give the metric alone (the entities are in --compare)")
        if vintages:
            raise BadArgument("vintages", True, "draws one series' earlier versions: not with --compare")
        metric, who = names[0], compare
    elif len(names) == 2:
        who, metric = names
    else:
        raise BadArgument("names", " ".join(names), "give ENTITY METRIC (or --compare E1,E2 METRIC)")
    if output is not None:
        charts.output_format(output)          # a wrong extension fails before any query
    with MetricStore(open_store(store)) as ms:
        if compare is not None:
            peers = charts.load_peers(ms, compare.split(","), metric, segment=segment, dims=dims, freq=freq, as_of=as_of,
                                      currency=currency)
            chart = charts.compare_chart(peers)
            default = f"{'-'.join(p.entity for p in peers)}-{metric}-{peers[0].freq}.png"
        else:
            data = charts.load_series(ms, who, metric, segment=segment, dims=dims, freq=freq, as_of=as_of,
                                      vintages=vintages, currency=currency)
            chart = charts.series_chart(data)
            default = f"{data.entity}-{metric}-{data.freq}.png"
    target = chart.write(output or Path(_safe(default)))
    print(f"wrote {target}: {chart.title}")


def _safe(name: str) -> str:
    """A file name from entity and metric names (``us-gaap:Revenues`` has a colon)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
