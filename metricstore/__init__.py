"""metricstore: the command line and the demo over the store, ingest and queries packages."""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
