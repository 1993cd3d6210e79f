"""Running the store beyond one machine: ``metricstore ddl``."""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.options import settings
from queries.ddl import ENGINES, external_ddl

app = typer.Typer()


@app.command()
def ddl(
    engine: Annotated[str, typer.Option("--engine", "-e", help=f"Target engine: {', '.join(ENGINES)}.")] = "spark",
    store: Annotated[str | None, typer.Option(
        "--store", "-s", show_default=False,
        help="Store root: a folder or s3://bucket/prefix [env METRICSTORE_STORE; default data/store].")] = None,
    schema: Annotated[str, typer.Option("--schema", help="Database (schema) to create the tables in.")] = "metricstore",
) -> None:
    """Print external-table DDL over the store's Parquet files for Spark, Trino or Athena."""
    root = store if store is not None else str(settings(None).store)
    if engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r} is not one of {', '.join(ENGINES)}", param_hint="--engine")
    print(external_ddl(engine, root, schema=schema), end="")
