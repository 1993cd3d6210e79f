"""The Python query helper: ``MetricStore(root).growth(...)`` returns polars DataFrames.

Every value a caller passes is bound as a query parameter, never formatted into SQL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

from queries import changes as feed, lineage, peers, projected
from queries.args import DateLike, stored_key, to_date, to_timestamp
from queries.errors import BadArgument, SqlError, SqlRefused
from queries.fx import USES_RATES, attach_bundled, convert_session, growth_source
from queries.live import Reading, list_live, read_listed
from queries.sandbox import check_read_only, connect as sandboxed
from queries.projections import COVERED, FOLDER as PROJECTIONS, NOW_DAY, VIEW_ROW, Projection, Projections, valid_on
from queries.views import pin, sql_literal
from store import Store
from store.integrity import ChecksumGuard
from store.log import TABLES

#: A query naming the growth view (not the growth_at macros, which compute): only it can read a projection.
_READS_GROWTH = re.compile(r"\bgrowth\b", re.IGNORECASE)
#: The session variable naming the entities a projection-backed ``growth`` computes from the events.
RECOMPUTED = "metricstore_recomputed"
#: The session variables naming, per layer of a projection, the entities whose rows a newer layer replaces.
HIDDEN = "metricstore_hidden_{}"
#: The comparisons of the ``checks`` view (queries/sql/60_checks.sql).
CHECKS = ("segments", "quarters", "rounding", "bound", "formula")
FREQS = {"FY": ("FY",), "H": ("H",), "Q": ("Q",), "M": ("M",), "YTD": ("YTD",), "I": ("I",)}


#: The columns and the order of a series (the longer period first at one end date; a series with
#: several units lists them in order).
SERIES_COLUMNS = ("period", "period_start", "period_end", "value", "unit", "qualifier", "derived",
                  "prior_period", "prior_value", "yoy_change", "yoy_pct", "qoq_change", "qoq_pct",
                  "ttm_value", "source", "event_id", "derived_from")
SERIES_ORDER = (("period_end", False), ("period_start", True), ("unit", False), ("period", False))
_SERIES_ORDER_SQL = ", ".join(f"{c} DESC" if d else c for c, d in SERIES_ORDER)
#: The order of the growth view's rows (every key of a row: the same order whichever path reads them).
_GROWTH_ORDER = ("entity", "metric", "segment", "dims", "ptype", "period_end", "period", "unit", "kind")
_GROWTH_ORDER_SQL = ", ".join(_GROWTH_ORDER)
#: What a series in another currency adds (queries/sql/70_currency.sql), and a series on calendar periods.
FX_COLUMNS = ("original_value", "original_unit", "yoy_pct_reporting", "fx_effect", "fx_rate", "fx_basis", "fx_source")
CALENDAR_COLUMNS = ("period", "fiscal_period", "period_start", "period_end", "value", "unit", "qualifier", "derived",
                    "prior_period", "prior_value", "yoy_change", "yoy_pct", "qoq_change", "qoq_pct", "ttm_value",
                    "derivation", "derived_from", "calendar_note")


def _day(as_of: DateLike | None) -> dt.date:
    """The day whose valid versions answer a read of the projection (now: :data:`NOW_DAY`)."""
    day = to_date("as_of", as_of)
    return NOW_DAY if day is None else day


def _keys(filters: dict[str, Any]) -> dict[str, Any]:
    """Equality filters with their text as the store holds it (:func:`queries.args.stored_key`)."""
    return {name: stored_key(name, v) if isinstance(v, str) else v for name, v in filters.items()}


def _fact(entity: str, metric: str, segment: str) -> tuple[str, str, str]:
    """A fact's names as the store holds them (:func:`queries.args.stored_key`)."""
    return stored_key("entity", entity), stored_key("metric", metric), stored_key("segment", segment)


def _no_basis(basis: str | None) -> None:
    if basis is not None:
        raise BadArgument("basis", basis, "is not available with a currency or calendar periods")


class MetricStore:
    """Read the views of a store as polars DataFrames.

    Example:
        >>> ms = MetricStore("data/store")                              # doctest: +SKIP
        >>> ms.series("xiaomi", "revenue", freq="FY")                   # doctest: +SKIP
        >>> ms.sql("SELECT * FROM growth WHERE entity = ?", ["xiaomi"], as_of="2025-01-01")  # doctest: +SKIP
    """

    # what the connection's views are, learnt at the first query that asks (set again by _open)
    _formulas: frozenset[str] | None
    _view_columns: dict[str, list[str]]

    def __init__(self, root: str | os.PathLike[str] | Store) -> None:
        self.store = root if isinstance(root, Store) else Store(root)
        # read-only, no file outside the store, settings locked (queries/sandbox.py)
        self._guard = ChecksumGuard(self.store)
        self._projections = Projections(self.store)
        self._running: set[duckdb.DuckDBPyConnection] = set()     # the cursors of queries running now
        self._running_lock = threading.Lock()
        self._opening = threading.Lock()
        self._retired: list[duckdb.DuckDBPyConnection] = []       # replaced; queries may still run there
        self._definitions: list[Path] = []      # the metrics log's files the views were compiled with
        self._open()

    def _open(self) -> None:
        """Open the session's connection, its views compiled with the metric definitions there are."""
        def made(live: Reading) -> duckdb.DuckDBPyConnection:
            con = sandboxed(self.store, self._guard, live)
            self._definitions = live["metrics"]
            return con
        # creating the views reads the live files' schemas (a file a compaction deletes meanwhile:
        # listed again, see queries.live)
        self._con = read_listed(self.store, lambda: list_live(self.store, TABLES), made)
        self._formulas = None
        self._view_columns = {}

    def _follow(self, live: Reading) -> None:
        """Open the connection again if the metrics log (``live``'s) changed since it was opened: a
        formula metric defined or redefined, by any process, is compiled into the views."""
        with self._opening:
            if live["metrics"] != self._definitions:
                self._retired.append(self._con)
                self._open()

    def close(self) -> None:
        for con in (*self._retired, self._con):
            con.close()

    def interrupt(self) -> None:
        """Stop the queries of this store running now, from another thread (a timeout, a cancel
        request): each fails with a :class:`SqlError` that says it was interrupted."""
        with self._running_lock:
            for cur in self._running:
                cur.interrupt()

    def __enter__(self) -> MetricStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(
        self,
        query: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        as_of: DateLike | None = None,
        as_recorded: DateLike | None = None,
        currency: str | None = None,
        calendar: bool = False,
    ) -> pl.DataFrame:
        """Run SQL over the views, optionally at a point in time; returns a polars DataFrame.

        Args:
            query: SQL over ``events``, ``facts``, ``growth``, ``share``, ``entities``, ``metrics``
                and the ``*_as_of(d)`` macros.
            params: values for ``?`` or ``$name`` placeholders.
            as_of: publication time: only events reported on or before this date.
            as_recorded: system time: only events the store had recorded by then.
            currency: ``facts`` and ``growth`` in this currency (ECB rates; see docs/currencies.md).
            calendar: ``facts`` and ``growth`` on calendar quarters and years (CY2024Q4, CY2024).
        """
        return self._run(query, params, as_of=as_of, as_recorded=as_recorded, currency=currency, calendar=calendar)

    def _run(self, query: str, params: Sequence[Any] | dict[str, Any] | None, *, as_of: DateLike | None,
             as_recorded: DateLike | None, currency: str | None, calendar: bool) -> pl.DataFrame:
        """:meth:`sql`."""
        d = to_date("as_of", as_of)
        converting = currency is not None or calendar
        t = to_timestamp("as_recorded", as_recorded)
        listings = [list_live(self.store, TABLES)]
        self._follow(listings[0])
        cur = self._con.cursor()
        with self._running_lock:
            self._running.add(cur)
        reads_projection = not converting and _READS_GROWTH.search(query) is not None
        rates = currency is not None or USES_RATES.search(query) is not None

        def run(live: Reading) -> pl.DataFrame:
            for table, files in live.items():       # the session's views read these files
                pin(cur, table, files)
            # a damaged file fails the query, named, instead of giving a wrong number
            self._guard.check(files=[p for files in live.values() for p in files])
            if rates:     # the bundled ECB history behind the stored rates (queries.fx)
                attach_bundled(cur)
            if converting:
                convert_session(cur, currency, calendar)
            if reads_projection:
                self._read_projection(cur, live, as_of=d, as_recorded=t)
            return cast(pl.DataFrame, cur.sql(query, params=params or None).pl())

        try:
            check_read_only(cur, query)
            cur.execute("SET VARIABLE as_of = ?", [d]).fetchall()
            cur.execute("SET VARIABLE as_recorded = ?", [t]).fetchall()
            # a file a compaction deleted under the query: listed again and run again (queries.live)
            return read_listed(self.store, lambda: listings.pop() if listings else list_live(self.store, TABLES), run)
        except duckdb.PermissionException as exc:
            raise SqlRefused(str(exc).splitlines()[0]) from None
        except duckdb.Error as exc:
            raise SqlError(str(exc).splitlines()[0]) from None
        finally:
            with self._running_lock:
                self._running.discard(cur)
            cur.close()

    def _read_projection(self, cur: duckdb.DuckDBPyConnection, live: Reading, *, as_of: dt.date | None,
                         as_recorded: dt.datetime | None) -> None:
        """Answer ``growth`` from the projection where it is the view's answer over ``live``
        (queries.projections): its versions still valid, or valid ``as_of`` that date, layer over
        layer, with only the entities whose inputs changed since computed, and with
        ``as_recorded`` those whose inputs were recorded after that time: a view of this session
        only, in front of the computed one. The files read join ``live`` (a projector may delete
        them once replaced: the query then runs again on the newer projection)."""
        cur.execute("DROP VIEW IF EXISTS temp.main.growth")    # one of an earlier attempt of this query
        use = self._projections.usable(live, as_recorded=as_recorded)
        if use is None:
            return
        proj = use.projection
        live[PROJECTIONS] = [layer.file for layer in proj.layers]
        # the date written into the view (a DATE literal of a date we parsed), not a variable:
        # DuckDB skips the row groups whose validity statistics exclude it
        valid = " AND " + valid_on(f"DATE '{(as_of or NOW_DAY).isoformat()}'")
        # formula metrics are never projected (a definition recorded later needs no new projection):
        # their rows, reported ones included, are computed from their inputs' (queries.formula_sql)
        formulas = bool(self._formula_metrics())
        own = " AND NOT ms_formula_metric(metric)" if formulas else ""
        parts = []
        for i, (layer, hidden) in enumerate(zip(proj.layers, proj.hidden(), strict=True)):
            skip = hidden | use.changed
            cur.execute(f"SET VARIABLE {HIDDEN.format(i)} = ?", [sorted(skip)]).fetchall()
            where = f" AND entity NOT IN (SELECT unnest(getvariable('{HIDDEN.format(i)}')))" if skip else ""
            parts.append(f"SELECT {VIEW_ROW} FROM read_parquet({sql_literal(layer.file)}) WHERE true{where}{valid}{own}")
        if use.changed:
            cur.execute(f"SET VARIABLE {RECOMPUTED} = ?", [sorted(use.changed)]).fetchall()
            parts.append(f"SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), "
                         f"only_entities := getvariable('{RECOMPUTED}'))")
        if formulas:
            parts.append("SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), stored := false, "
                         "formulas := true)")
        cur.execute("CREATE OR REPLACE TEMP VIEW growth AS " + " UNION ALL BY NAME ".join(parts))

    def _formula_metrics(self) -> frozenset[str]:
        """The formula metrics the session's views were compiled with (none: the projections hold every series)."""
        if self._formulas is None:
            cur = self._con.cursor()
            try:
                names = cur.sql("SELECT ms_formula_metrics()").fetchall()[0][0]
            finally:
                cur.close()
            self._formulas = frozenset(names)
        return self._formulas

    def _answering(self, metric: str, entity: str | None, as_recorded: DateLike | None) -> Projection | None:
        """The projection holding the growth of ``metric`` for ``entity`` (every entity: None), or
        None: a formula metric's rows are computed (projections hold no formula), and so are a
        changed entity's."""
        live = list_live(self.store, COVERED)
        self._follow(live)
        if metric in self._formula_metrics():
            return None
        use = self._projections.usable(live, whole_view=False, as_recorded=to_timestamp("as_recorded", as_recorded))
        if use is None or (entity in use.changed if entity is not None else bool(use.changed)):
            return None
        return use.projection

    def _projected_series(self, filters: dict[str, str], columns: list[str], as_of: DateLike | None,
                          as_recorded: DateLike | None) -> pl.DataFrame | None:
        """One series read from the projection where it holds the series' answer (its layer's
        versions still valid, or valid ``as_of`` a date), else None (:func:`queries.projected.series`)."""
        found = self._answering(filters["metric"], filters["entity"], as_recorded)
        if found is None:
            return None
        return projected.series(found.layer_of(filters["entity"]), filters, _day(as_of), columns, SERIES_ORDER)

    def _projected_growth(self, filters: dict[str, Any], as_of: DateLike | None,
                          as_recorded: DateLike | None) -> pl.DataFrame | None:
        """The growth view's rows of one metric read from the projection where it holds every
        entity's answer they may include, else None (:func:`queries.projected.rows_where`)."""
        columns = self._columns("growth")
        if "metric" not in filters or any(name not in columns for name in filters):
            return None         # (the view says which column it lacks)
        found = self._answering(filters["metric"], filters.get("entity"), as_recorded)
        if found is None:
            return None
        return projected.rows_where(found, filters, _day(as_of), columns, _GROWTH_ORDER)

    def facts(self, *, as_of: DateLike | None = None, as_recorded: DateLike | None = None,
              currency: str | None = None, calendar: bool = False, **filters: str) -> pl.DataFrame:
        """Current facts, filtered by equality on any column (``entity="xiaomi"``); ``currency``:
        converted (the original value and the rate beside), ``calendar``: on calendar periods."""
        return self._select("facts", _keys(filters), as_of=as_of, as_recorded=as_recorded,
                            order="entity, metric, segment, dims, period_end, period",
                            currency=currency, calendar=calendar)

    def growth(self, *, as_of: DateLike | None = None, as_recorded: DateLike | None = None,
               basis: str | None = None, currency: str | None = None, calendar: bool = False,
               **filters: str) -> pl.DataFrame:
        """The growth view, filtered by equality on any column.

        ``basis`` picks the prior period's version: 'as_of' (as known at the same as_of: the
        default, what a backtest wants), 'latest' (as known now) or 'first' (as first reported).
        ``currency``: in that currency, with the growth in the reporting currency and the FX effect
        beside; ``calendar``: on calendar quarters and years.
        """
        filters = _keys(filters)
        if currency is not None or calendar:
            _no_basis(basis)
            return self._select("growth", filters, as_of=as_of, as_recorded=as_recorded, order=_GROWTH_ORDER_SQL,
                                currency=currency, calendar=calendar)
        if basis is not None:
            return lineage.growth_by_basis(self.sql, basis, as_of=as_of, as_recorded=as_recorded, **filters)
        found = self._projected_growth(filters, as_of, as_recorded)
        if found is not None:
            return found
        return self._select("growth", filters, as_of=as_of, as_recorded=as_recorded, order=_GROWTH_ORDER_SQL,
                            source=self._narrowed_growth(filters, as_recorded))

    def _narrowed_growth(self, filters: dict[str, str], as_recorded: DateLike | None) -> tuple[str, list[Any]] | None:
        """``growth_at`` narrowed to the filters' entity and metric where no projection answers the
        view (none yet, ``as_recorded`` before most of the store was recorded, projections
        switched off): a screen of one metric across every entity then reads that metric's events
        only, not every series'. Where a projection exists the view reads it (the query lists the
        live files once, for both; ``as_recorded`` asks the projection of a listing of its own,
        whose answers per file are kept)."""
        if "metric" not in filters and "entity" not in filters:
            return None
        if self._projections.latest() is not None and (
                as_recorded is None or self._projections.usable(
                    list_live(self.store, COVERED), as_recorded=to_timestamp("as_recorded", as_recorded)) is not None):
            return None
        return ("growth_at(getvariable('as_of'), getvariable('as_recorded'), only_entity := ?, only_metric := ?, "
                "formulas := true)", [filters.get("entity"), filters.get("metric")])

    def share(self, *, as_of: DateLike | None = None, as_recorded: DateLike | None = None,
              **filters: str) -> pl.DataFrame:
        """Each segment's share of its entity's total."""
        return self._select("share", _keys(filters), as_of=as_of, as_recorded=as_recorded,
                            order="entity, metric, period, segment")

    def checks(self, entity: str | None = None, *, check: str | None = None, as_of: DateLike | None = None,
               as_recorded: DateLike | None = None) -> pl.DataFrame:
        """Where the figures disagree beyond rounding: expected, actual, difference, tolerance and
        the event ids behind them (``checks`` in queries/sql/60_checks.sql)."""
        filters: dict[str, str] = {}
        if entity is not None:
            filters["entity"] = stored_key("entity", entity)
        if check is not None:
            if check not in CHECKS:
                raise BadArgument("check", check, f"is not one of {', '.join(CHECKS)}")
            filters["check"] = check
        return self._select("checks", filters, as_of=as_of, as_recorded=as_recorded,
                            order='entity, "check", metric, segment, dims, period_end, period')

    def history(self, entity: str, metric: str, period: str, segment: str = "total", *, dims: str = "",
                as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
        """Every version of one fact, oldest first, and which one is current (see queries.lineage)."""
        entity, metric, segment = _fact(entity, metric, segment)
        return lineage.history(self.sql, entity, metric, period, segment, dims=dims, as_of=as_of, as_recorded=as_recorded)

    def restatements(self, entity: str, metric: str | None = None, *, as_of: DateLike | None = None,
                     as_recorded: DateLike | None = None) -> pl.DataFrame:
        """The facts whose value changed between the company's publications: by how much, and when."""
        return lineage.restatements(self.sql, stored_key("entity", entity), metric and stored_key("metric", metric),
                                    as_of=as_of, as_recorded=as_recorded)

    def changes(self, *, since: DateLike | None = None, run: str | None = None, entity: str | None = None,
                kind: str | Sequence[str] | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
        """The changes ingest runs made to the current answers: new facts, restatements, revisions,
        retractions, approximate figures made exact, split adjustments (see queries.changes)."""
        return feed.changes(self.sql, since=since, run=run, entity=entity, kind=kind, as_recorded=as_recorded)

    def explain(self, entity: str, metric: str, period: str, segment: str = "total", *, dims: str = "",
                as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
        """The events behind a facts or growth row, with the arithmetic of a derived value (of a
        formula metric's value too: its inputs, in the formula's order)."""
        entity, metric, segment = _fact(entity, metric, segment)
        return lineage.explain(self.sql, entity, metric, period, segment, dims=dims, as_of=as_of,
                               as_recorded=as_recorded)

    def series(
        self,
        entity: str,
        metric: str,
        segment: str = "total",
        freq: str | None = None,
        *,
        dims: str = "",
        as_of: DateLike | None = None,
        as_recorded: DateLike | None = None,
        basis: str | None = None,
        currency: str | None = None,
        calendar: bool = False,
    ) -> pl.DataFrame:
        """One series over time with its growth: periods, values, YoY, QoQ and TTM.

        Args:
            freq: ``FY``, ``H``, ``Q``, ``M`` (or ``YTD``, ``I`` for instants); all when None.
            basis: the prior period's version for YoY/QoQ: 'as_of' (default), 'latest', 'first'.
            currency: the series in this currency (ECB rates), with the original value, the
                growth in the reporting currency, the FX effect and the rate used beside.
            calendar: on calendar quarters and years (``freq`` Q or FY): CY2024Q4, CY2024.
        """
        filters: dict[str, str] = _keys({"entity": entity, "metric": metric, "segment": segment, "dims": dims})
        entity, metric = filters["entity"], filters["metric"]
        if freq is not None:
            key = freq.upper()
            if key not in FREQS:
                raise BadArgument("freq", freq, f"is not one of {', '.join(FREQS)}")
            filters["ptype"] = key
        if currency is not None or calendar:
            _no_basis(basis)
            return self._converted_series(filters, currency, calendar, as_of=as_of, as_recorded=as_recorded)
        columns = ", ".join(SERIES_COLUMNS)
        if basis is not None:
            return lineage.growth_by_basis(self.sql, basis, as_of=as_of, as_recorded=as_recorded,
                                           order="period_end, period_start DESC", columns=columns, **filters)
        # the projection when it holds the series' answer (now, or as_of from its versions); else
        # growth_at narrowed to the series, which reads only its row groups (the view computes
        # every series)
        projected = self._projected_series(filters, list(SERIES_COLUMNS), as_of, as_recorded)
        if projected is not None:
            return projected
        narrowed = ("growth_at(getvariable('as_of'), getvariable('as_recorded'), only_entity := ?, only_metric := ?, "
                    "formulas := true)", [entity, metric])
        return self._select("growth", filters, as_of=as_of, as_recorded=as_recorded, source=narrowed,
                            order=_SERIES_ORDER_SQL, columns=columns)

    def compare(self, metric: str, entities: Sequence[str], *, segment: str = "total", dims: str = "",
                freq: str = "FY", currency: str | None = None, calendar: bool = False,
                as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
        """``metric`` of several entities side by side, a row per period (see queries.peers)."""
        return peers.compare(self.sql, metric, entities, segment=segment, dims=dims, freq=freq, currency=currency,
                             calendar=calendar, as_of=as_of, as_recorded=as_recorded)

    def _converted_series(self, filters: dict[str, str], currency: str | None, calendar: bool, *,
                          as_of: DateLike | None, as_recorded: DateLike | None) -> pl.DataFrame:
        """A series in another currency and/or on calendar periods (computed: the projections hold the reporting currency)."""
        if calendar and filters.get("ptype", "Q") not in ("Q", "FY"):
            raise BadArgument("freq", filters["ptype"], "on calendar periods is Q or FY")
        columns = list(CALENDAR_COLUMNS if calendar else SERIES_COLUMNS)
        columns += list(FX_COLUMNS) if currency is not None else []
        source = (growth_source(currency is not None, calendar, narrowed=True), [filters["entity"], filters["metric"]])
        order = "period_end, period_start DESC, period" if calendar else _SERIES_ORDER_SQL
        return self._select("growth", filters, as_of=as_of, as_recorded=as_recorded,
                            source=source, order=order, columns=", ".join(columns), currency=currency,
                            calendar=calendar)

    def _select(self, view: str, filters: dict[str, str], *, as_of: DateLike | None,
                as_recorded: DateLike | None, order: str, columns: str = "*",
                source: tuple[str, list[Any]] | None = None, currency: str | None = None,
                calendar: bool = False) -> pl.DataFrame:
        allowed = set(self._columns("calendar_at(NULL, NULL, NULL)" if calendar else view))
        where: list[str] = []
        params: list[Any] = list(source[1]) if source else []
        for name, value in filters.items():
            if name not in allowed:
                raise BadArgument(name, value, f"is not a column of {view}")
            where.append(f'"{name}" = ?')
            params.append(value)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        query = f"SELECT {columns} FROM {source[0] if source else view}{clause} ORDER BY {order}"
        return self._run(query, params, as_of=as_of, as_recorded=as_recorded, currency=currency, calendar=calendar)

    def _columns(self, view: str) -> list[str]:
        """A view's (or a table macro call's) columns, fixed for the life of the connection."""
        if view not in self._view_columns:
            cur = self._con.cursor()
            try:
                rows = cur.sql("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                               params=[view]).fetchall()
                if not rows:    # a table macro's call (a text of ours, not a user's)
                    rows = cur.sql(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {view})").fetchall()
            finally:
                cur.close()
            self._view_columns[view] = [r[0] for r in rows]
        return self._view_columns[view]
