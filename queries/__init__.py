"""Read side: the SQL views (``queries/sql``), the Python helper and the catalog file."""

from __future__ import annotations

from queries.catalog import write_catalog
from queries.errors import BadArgument, QueryError, SqlError
from queries.formulas import define_metric
from queries.helper import MetricStore
from queries.views import VIEWS, install, sql_sources

__all__ = [
    "VIEWS",
    "BadArgument",
    "MetricStore",
    "QueryError",
    "SqlError",
    "define_metric",
    "install",
    "sql_sources",
    "write_catalog",
]
