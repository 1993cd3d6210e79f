"""Errors of the query layer (see store/errors.py for the whole tree).

    QueryError
    ├── BadArgument      an argument (date, frequency, name) is not valid   (terminal, ValueError)
    ├── FilesVanished    compactions kept deleting the files a read listed   (transient)
    └── SqlError         DuckDB refused or failed the query                  (terminal)
        └── SqlRefused   the query would write, attach, load or leave the store (terminal, PermissionError)
"""

from __future__ import annotations

from pathlib import Path

from store.errors import MetricStoreError, TerminalError, TransientError


class QueryError(MetricStoreError):
    """Base of the query layer's errors."""


class BadArgument(QueryError, TerminalError, ValueError):
    """An argument to a query is not valid."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name}={value!r}: {reason}")


class SqlError(QueryError, TerminalError):
    """DuckDB could not run the query."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class SqlRefused(SqlError, PermissionError):
    """The read-only SQL surface refused the query (a write, an attach, a file outside the store)."""


class FilesVanished(QueryError, TransientError):
    """A read listed the live files again and again, and each time a compaction deleted one of
    them before it was read (see queries/live.py)."""

    def __init__(self, path: Path, attempts: int, grace_s: float) -> None:
        self.path = path
        self.attempts = attempts
        self.grace_s = grace_s
        super().__init__(
            f"{path.name}: deleted by a compaction while this read was reading it, {attempts} times in a row "
            f"(merged sources are kept {grace_s:g} s for readers); run it again, or keep them longer "
            "(METRICSTORE_COMPACT_GRACE_S)")
