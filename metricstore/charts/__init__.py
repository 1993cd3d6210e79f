"""Charts of the store's series: ``metricstore plot`` and the demo's chart share this package.

    data     what a chart draws, read through :class:`queries.MetricStore` (series, guidance, vintages)
    style    how a figure is marked by its origin (reported, approximate, derived, guidance)
    draw     the figures: one series with its YoY, or peers on one chart
    output   PNG, SVG or self-contained HTML, by the file's extension

Example:
    >>> from metricstore.charts import load_series, series_chart        # doctest: +SKIP
    >>> with MetricStore("data/store") as ms:                           # doctest: +SKIP
    ...     series_chart(load_series(ms, "aapl", "revenue", freq="FY", vintages=True)).write(Path("aapl.svg"))
"""

from __future__ import annotations

from metricstore.charts.data import Convert, SeriesData, Vintage, load_peers, load_series
from metricstore.charts.draw import Chart, compare_chart, series_chart
from metricstore.charts.output import FORMATS, output_format

__all__ = ["FORMATS", "Chart", "Convert", "SeriesData", "Vintage", "compare_chart", "load_peers", "load_series",
           "output_format", "series_chart"]
