"""Formula metrics: ``metricstore metric NAME --formula EXPR``, a definition recorded in the store."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.units import parse_unit
from metricstore.options import StoreOpt, open_store
from queries.catalog import follow
from queries.errors import BadArgument
from queries.formulas import AGGREGATIONS, define_metric

app = typer.Typer()


def base_unit(text: str) -> str:
    """``CNY/vehicle`` -> ``CNY/unit``: the unit as the store holds it (no scale: values are in base units)."""
    parsed = parse_unit(text)      # ValueError: one line, from the command line's handler
    if parsed.exponent != 0:
        raise BadArgument("unit", text, f"give the base unit ({parsed.base}): a formula's values are in base units")
    return parsed.base


@app.command()
def metric(
    name: Annotated[str, typer.Argument(help="The metric's name, e.g. ev_loss_per_vehicle.")],
    formula: Annotated[str, typer.Option("--formula", help="An expression over metrics, e.g. 'gross_profit / revenue' or "
                                                          "'-adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]'.")],
    unit: Annotated[str | None, typer.Option("--unit", help="The unit its values must come out in (CNY/vehicle, ratio).")] = None,
    aggregation: Annotated[str | None, typer.Option("--aggregation", help=f"{', '.join(AGGREGATIONS)} [default: ratio for a quotient, else flow].")] = None,
    description: Annotated[str | None, typer.Option("--description", help="What it means.")] = None,
    store: StoreOpt = None,
) -> None:
    """Define (or redefine) a formula metric: computed from other metrics wherever all its inputs have values."""
    st = open_store(store)
    added = define_metric(st, name, formula, unit=base_unit(unit) if unit else None,
                          aggregation=aggregation, description=description)
    print(f"{name} = {formula}: " + ("recorded" if added else "unchanged (the store holds this definition)"))
    if added:           # the catalog file compiles the definitions: written again (queries/catalog.py)
        follow(st)
