"""One wire connection: a :class:`~queries.MetricStore` (the locked, read-only sandbox) and its
point in time.

A statement is one of:

- ``SET as_of = '2024-06-30'`` / ``SET as_recorded = '...'`` (``TO`` works too; ``RESET`` or
  ``= DEFAULT`` clears it): the session's point in time, applied to every query after it;
- ``BEGIN``/``COMMIT``/``ROLLBACK``, ``SET`` of any other setting, ``DISCARD ALL``: accepted and
  ignored (drivers send them; there is nothing to commit and no setting a client may change);
- ``SHOW name``: the session's value (``as_of``, ``as_recorded``) or the server's parameter;
- anything else goes to :meth:`MetricStore.sql`, which accepts one ``SELECT`` and nothing else.

psql and the JDBC drivers of DBeaver and Metabase browse through ``pg_catalog`` and
``information_schema``, which DuckDB emulates; :func:`pg_compat` rewrites the few PostgreSQL
spellings in their queries that DuckDB does not parse.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
from buenavista.core import BVType, QueryResult, Session

from queries.args import to_date, to_timestamp
from queries.errors import BadArgument, SqlError
from queries.helper import MetricStore
from queries.serve.pgcompat import pg_compat
from queries.serve.wire import COPY_FORMATS, COPY_OUT, copy_format
from store import Store

_SET = re.compile(r"^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?([A-Za-z_][\w.]*)\s*(?:=|\bTO\b)\s*([^;]*?)\s*;?\s*$",
                  re.IGNORECASE)
_RESET = re.compile(r"^\s*RESET\s+([A-Za-z_][\w.]*|ALL)\s*;?\s*$", re.IGNORECASE)
_SHOW = re.compile(r"^\s*SHOW\s+(TRANSACTION\s+ISOLATION\s+LEVEL|[A-Za-z_][\w.]*|ALL)\s*;?\s*$", re.IGNORECASE)
_IGNORED = re.compile(r"^\s*((?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b[^;]*"
                      r"|DISCARD\s+ALL|DEALLOCATE\b[^;]*"
                      r"|SET\s+(SESSION\s+CHARACTERISTICS|TRANSACTION)\b[^;]*)\s*;?\s*$", re.IGNORECASE)
POINT_IN_TIME = ("as_of", "as_recorded")
#: settings drivers ask for with SHOW that are not startup parameters (SQLAlchemy asks for the isolation)
SESSION_SETTINGS = {"transaction_isolation": "read committed", "transaction_read_only": "on",
                    "default_transaction_read_only": "on", "statement_timeout": "0"}
def _bvtype(dtype: pl.DataType) -> BVType:
    if dtype in (pl.Int64, pl.UInt32, pl.UInt64):
        return BVType.BIGINT
    if dtype.is_integer():
        return BVType.INTEGER
    if dtype.is_float():
        return BVType.FLOAT
    if dtype.is_decimal():
        return BVType.DECIMAL
    if dtype == pl.Boolean:
        return BVType.BOOL
    if dtype == pl.Date:
        return BVType.DATE
    if isinstance(dtype, pl.Datetime):
        return BVType.TIMESTAMP
    return BVType.TEXT   # strings; lists and structs as their text


def _text(value: Any) -> str:
    return str(value)


class FrameResult(QueryResult):
    """A polars DataFrame as the wire layer reads it: names, types, rows."""

    def __init__(self, frame: pl.DataFrame | None, tag: str = "", copy: str | None = None) -> None:
        super().__init__()
        self.frame = frame
        self.tag = tag
        #: the format of a ``COPY (...) TO STDOUT`` (sent as CopyData, not rows), else None
        self.copy = copy
        self.types = [_bvtype(t) for t in frame.dtypes] if frame is not None else []

    def has_results(self) -> bool:
        return self.frame is not None

    def column_count(self) -> int:
        return len(self.types)

    def column(self, index: int) -> tuple[str, BVType]:
        assert self.frame is not None
        return self.frame.columns[index], self.types[index]

    def rows(self) -> Iterator[list[Any]]:
        if self.frame is None:
            return iter(())
        text = [i for i, t in enumerate(self.types) if t is BVType.TEXT and self.frame.dtypes[i] != pl.String]
        return (self._row(r, text) for r in self.frame.iter_rows())

    @staticmethod
    def _row(row: tuple[Any, ...], text: list[int]) -> list[Any]:
        out = list(row)
        for i in text:
            if out[i] is not None:
                out[i] = _text(out[i])
        return out

    def status(self) -> str:
        return self.tag


class Sandboxes:
    """The sandboxes of ended sessions, kept for the next ones: opening one copies and opens the views'
    file (tens of milliseconds; the first one on a store creates every view, most of a second, see
    :mod:`queries.views_cache`), and BI tools open and close connections all day.

    A sandbox holds no session state (the point in time goes with each query, its settings are locked),
    so a session may take one another has given back."""

    def __init__(self, store: Store, keep: int = 8) -> None:
        self.store = store
        self.keep = keep
        self._idle: list[MetricStore] = []
        self._lock = threading.Lock()

    def take(self) -> MetricStore:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return MetricStore(self.store)

    def give(self, ms: MetricStore) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(ms)
                return
        ms.close()

    def warm(self, count: int) -> None:
        """Open ``count`` sandboxes in the background, so that the first clients do not wait for them."""
        def run() -> None:
            for _ in range(count):
                self.give(MetricStore(self.store))
        threading.Thread(target=run, name="warm sandboxes", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for ms in idle:
            ms.close()


class StoreSession(Session):
    """A connection's session: the sandbox, its point in time, a statement timeout.

    The sandbox is taken by the first query, not at login: a pool's or a BI tool's idle connections
    cost a socket and a thread, not a DuckDB."""

    def __init__(self, sandboxes: Sandboxes, *, timeout_s: float, parameters: dict[str, str],
                 database: str = "metricstore") -> None:
        super().__init__()
        self.sandboxes = sandboxes
        #: the database name the client connected with (what current_database() answers)
        self.database = database
        self._ms: MetricStore | None = None
        self._opening = threading.Lock()
        self._running = self._cancelled = False
        self.timeout_s = timeout_s
        self.parameters = parameters
        self.as_of: dt.date | None = None
        self.as_recorded: dt.datetime | None = None

    def set_point(self, name: str, value: str | None) -> None:
        """Set ``as_of``/``as_recorded`` (None clears it). Raises BadArgument for a bad date."""
        if name == "as_of":
            self.as_of = to_date("as_of", value) if value else None
        else:
            self.as_recorded = to_timestamp("as_recorded", value) if value else None

    def cursor(self) -> None:
        return None

    @property
    def ms(self) -> MetricStore:
        """The session's sandbox, taken on first use."""
        with self._opening:
            if self._ms is None:
                self._ms = self.sandboxes.take()
            return self._ms

    def close(self) -> None:
        """Give the sandbox back (the session's thread: no query of it runs)."""
        with self._opening:
            ms, self._ms = self._ms, None
        if ms is not None:
            self.sandboxes.give(ms)

    def in_transaction(self) -> bool:
        return False

    def interrupt(self) -> None:
        """Stop the running query (a cancel request); one that waits for the sandbox to open does not start."""
        self._cancelled = self._running
        if self._ms is not None:
            self._ms.interrupt()

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
        if not sql.strip().rstrip(";").strip():
            return FrameResult(None, "EMPTY")
        if _IGNORED.match(sql):
            return FrameResult(None, sql.split()[0].upper().rstrip(";"))
        if m := _SET.match(sql):
            name, value = m.group(1).lower(), m.group(2)
            if name in POINT_IN_TIME:
                self.set_point(name, None if value.upper() == "DEFAULT" else _unquote(value))
            return FrameResult(None, "SET")
        if m := _RESET.match(sql):
            name = m.group(1).lower()
            for point in POINT_IN_TIME:
                if name in (point, "all"):
                    self.set_point(point, None)
            return FrameResult(None, "RESET")
        if m := _SHOW.match(sql):
            name = re.sub(r"\s+", " ", m.group(1).lower())
            return FrameResult(self._show("transaction_isolation" if name == "transaction isolation level" else name),
                               "SHOW")
        if m := COPY_OUT.match(sql):
            fmt = copy_format(m)
            if fmt not in COPY_FORMATS:
                raise BadArgument("COPY", fmt, f"is not a COPY format this server writes ({', '.join(COPY_FORMATS)})")
            return FrameResult(self._query(pg_compat(m.group("query"), self.database), params), "COPY", copy=fmt)
        return FrameResult(self._query(pg_compat(sql, self.database), params), "")

    def _show(self, name: str) -> pl.DataFrame:
        points = {"as_of": self.as_of, "as_recorded": self.as_recorded}
        parameters = {k.lower(): v for k, v in self.parameters.items()}     # TimeZone, DateStyle: any case
        value = points[name] if name in points else parameters.get(name, SESSION_SETTINGS.get(name))
        if name == "statement_timeout":
            value = f"{int(self.timeout_s * 1000)}ms"
        return pl.DataFrame({name: [None if value is None else str(value)]}, schema={name: pl.String})

    def _query(self, sql: str, params: Sequence[Any] | None) -> pl.DataFrame:
        self._running, self._cancelled = True, False
        try:
            ms = self.ms
            if self._cancelled:
                raise SqlError("canceling statement due to user request")
            return self._run(ms, sql, params)
        finally:
            self._running = False

    def _run(self, ms: MetricStore, sql: str, params: Sequence[Any] | None) -> pl.DataFrame:
        timer = threading.Timer(self.timeout_s, ms.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return ms.sql(sql, list(params) if params else None, as_of=self.as_of, as_recorded=self.as_recorded)
        except SqlError as exc:
            if "interrupt" not in str(exc).lower():
                raise
            if timer.is_alive():
                raise SqlError("canceling statement due to user request") from None
            raise SqlError(f"canceling statement due to statement timeout ({self.timeout_s:g} s)") from None
        finally:
            timer.cancel()


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1].replace(value[0] * 2, value[0])
    return value
