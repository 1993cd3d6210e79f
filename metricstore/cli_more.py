"""Registry of the command modules beyond the core ones: each ``cli_<area>.py`` adds its commands
to ``metricstore.cli.app`` when imported; import it here, one line per module."""

from __future__ import annotations
from metricstore import cli_schedule  # noqa: E402,F401  (schedule, jobs: scheduled ingestion, issue 4)
from metricstore import cli_lineage  # noqa: E402,F401  (history, restatements, explain: issue 3)
from metricstore import cli_scale  # noqa: E402,F401  (ddl: external tables for Spark, Trino, Athena, issue 7)
from metricstore import cli_ops  # noqa: E402,F401  (compact: compaction, issue 5)
