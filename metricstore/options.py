"""What every command area shares: the common options, the settings, opening the store, stderr.

Each area module (``metricstore/commands/*.py``) imports these; none imports ``metricstore.cli``.
The write side (``ingest``) loads only in the commands that use it: a read starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ingest.config import Settings
from metricstore.render import FORMATS
from store import Store

err = Console(stderr=True, highlight=False, soft_wrap=True)

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", "-s", show_default=False,
    help="Store folder or s3://bucket/prefix [env METRICSTORE_STORE; default data/store].")]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="Publication time: what was public on this date (YYYY-MM-DD).")]
AsRecOpt = Annotated[str | None, typer.Option(
    "--as-recorded", help="System time: what the store had recorded by then (ISO timestamp, UTC).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")]
ListFormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]
WideOpt = Annotated[bool, typer.Option(
    "--wide", "-w", help="In a table, show every column with raw values (csv, json, parquet always do).")]
CurrencyOpt = Annotated[str | None, typer.Option(
    "--currency", help="Convert to this currency with the ECB's reference rates (USD, EUR, CNY...).")]
CalendarOpt = Annotated[bool, typer.Option(
    "--calendar", help="Calendar quarters and years (CY2024Q4, CY2024) instead of fiscal periods.")]

EntityArg = Annotated[str, typer.Argument(help="Entity id, e.g. xiaomi.")]
MetricArg = Annotated[str, typer.Argument(help="Metric name, e.g. revenue (or an XBRL concept, us-gaap:Revenues).")]
PeriodArg = Annotated[str, typer.Argument(
    help="Period label on the entity's fiscal calendar: FY2008, 2024Q4, 9M2024, 2024-09-28.")]
SegmentOpt = Annotated[str, typer.Option("--segment", help="Segment ('total' for the whole entity).")]
DimsOpt = Annotated[str, typer.Option("--dims", help="Dimensions, key=value;key=value.")]


def settings(store: Path | None) -> Settings:
    """The settings (environment, defaults) with ``--store`` applied when given."""
    s = Settings()
    return s.model_copy(update={"store": store}) if store else s


def open_store(store: Path | None, *, create: bool = False) -> Store:
    """The store named by ``--store`` (or the settings); ``create`` makes a missing one."""
    return Store.open(settings(store).store, create=create)
