"""``metricstore demo``: the first run (what ``make demo`` shows)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metricstore.options import StoreOpt, settings

app = typer.Typer()


@app.command()
def demo(
    store: StoreOpt = None,
    chart: Annotated[Path, typer.Option("--chart", help="Where to write the PNG chart.")] = Path("data/xiaomi-2024.png"),
    seed: Annotated[Path, typer.Option("--seed", help="Folder of seed files to ingest.")] = Path("data/seed"),
) -> None:
    """Build the default store from data/seed, print Xiaomi's 2024 growth table and write a chart."""
    from metricstore.demo import run_demo   # (matplotlib loads only for the demo)

    run_demo(settings(store), seed, chart)
