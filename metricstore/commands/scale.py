"""Running the store beyond one machine: ``metricstore ddl``."""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.options import StoreOpt, settings
from queries.ddl import ENGINES, external_ddl

app = typer.Typer()


@app.command()
def ddl(
    engine: Annotated[str, typer.Option("--engine", "-e", help=f"Target engine: {', '.join(ENGINES)}.")] = "spark",
    store: StoreOpt = None,
    schema: Annotated[str, typer.Option("--schema", help="Database (schema) to create the tables in.")] = "metricstore",
) -> None:
    """Print external-table DDL over the store's Parquet files for Spark, Trino or Athena."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r} is not one of {', '.join(ENGINES)}", param_hint="--engine")
    print(external_ddl(engine, settings(store).store, schema=schema), end="")
