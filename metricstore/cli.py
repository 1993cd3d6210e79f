"""The ``metricstore`` command line: a thin layer over the store, ingest and queries packages.

Each command area is a Typer app of its own in ``metricstore/commands/``, joined here; the options
they share live in ``metricstore/options.py``. A command parses its options, calls one library
function and renders the result (``metricstore/render.py``). Library errors become one line on
stderr and exit code 2; nothing a user types produces a traceback.
"""

from __future__ import annotations

import sys

import typer

from ingest.redact import redact_url
from metricstore.commands import (changes, checks, compare, demo, formulas, ingest, lineage, ops, plot, query, scale,
                                  schedule, serve)
from metricstore.options import err
from store import MetricStoreError

app = typer.Typer(
    name="metricstore",
    help="An event-sourced store of financial metrics: ingest facts, query growth at any point in time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for area in (ingest, query, compare, lineage, changes, checks, formulas, ops, scale, schedule, demo, serve, plot):
    app.add_typer(area.app)   # no name: the area's commands (and groups) join the top level


def main() -> None:
    """Entry point: run the app, turning library errors into one line and exit code 2."""
    try:
        app()
    except (MetricStoreError, ValueError, OSError) as exc:
        err.print(f"error: {redact_url(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
