"""The command areas of ``metricstore``: each module holds one Typer ``app``, joined in ``metricstore.cli``."""
