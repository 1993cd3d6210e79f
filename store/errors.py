"""Errors of the store layer.

The tree of every metricstore error::

    MetricStoreError                      root of all library errors (store/errors.py)
    ├── TransientError (mixin)            a scheduled job may retry the operation
    ├── TerminalError (mixin)             retrying will not help; fix the input or the store
    ├── StoreError                        the event log (this module)
    │   ├── StoreNotFound                 no store at the given root          (terminal)
    │   ├── StorePathRefused              a root DuckDB would read as a pattern (terminal, ValueError)
    │   ├── SchemaMismatch                a batch does not fit the event schema (terminal, ValueError)
    │   ├── CorruptFile                   a committed file fails its checksum or cannot be read (terminal)
    │   └── StoreBusy                     the append lock was not acquired in time (transient)
    ├── IngestError                       ingest/errors.py
    └── QueryError                        queries/errors.py
"""

from __future__ import annotations

from pathlib import Path


#: Longest piece of input a message repeats (a value, a unit, a period label, a name).
SHOWN = 80


def clip(text: str, limit: int = SHOWN) -> str:
    """``text`` as a message may repeat it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MetricStoreError(Exception):
    """Root of every error raised by metricstore."""


class TransientError(MetricStoreError):
    """A failure that may go away on retry (lock contention, network)."""


class TerminalError(MetricStoreError):
    """A failure that a retry will not fix."""


class StoreError(MetricStoreError):
    """Base of the store layer's errors."""


class StoreNotFound(StoreError, TerminalError, FileNotFoundError):
    """No store exists at the given root."""

    def __init__(self, root: Path | str) -> None:
        self.root = str(root)
        super().__init__(f"{root}: no metricstore here (run an ingest to create one)")


class StorePathRefused(StoreError, TerminalError, ValueError):
    """A store root whose path holds a character DuckDB reads as a file pattern: its views could
    not find the store's files."""

    def __init__(self, root: Path | str, char: str) -> None:
        self.root = str(root)
        super().__init__(f"{root}: a store's path may not hold {char!r} (DuckDB reads * ? and [ in a path "
                         "as a file pattern); choose a folder without them")


class SchemaMismatch(StoreError, TerminalError, ValueError):
    """A batch handed to ``append`` lacks columns or has values the schema forbids."""

    def __init__(self, column: str, reason: str, row: int | None = None) -> None:
        self.column = column
        self.reason = reason
        self.row = row          # (the batch's row index, counted from 0, when one row is at fault)
        where = "" if row is None else f"row index {row}, "
        super().__init__(f"{where}column {column!r}: {reason}")


class CorruptFile(StoreError, TerminalError):
    """A committed file is truncated, altered or not one of ours."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StoreBusy(StoreError, TransientError, TimeoutError):
    """Another writer held the append lock for longer than the timeout."""

    def __init__(self, root: Path | str, timeout_s: float) -> None:
        self.root = str(root)
        super().__init__(f"{root}: another writer held the store for more than {timeout_s:g} s; try again")
