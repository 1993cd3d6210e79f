"""Lineage for the Python helper: every version of a fact, restatements, the events behind any
``facts`` or ``growth`` row with the arithmetic of a derived value, and growth on a chosen basis.

The SQL lives in ``queries/sql/55_lineage.sql`` (``history``, ``restatements``, ``lineage_at``,
``growth_basis_at``); these functions bind the caller's values as parameters and shape the answer.
Each takes the ``sql`` runner of a session (``MetricStore.sql``), which exposes them as methods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import polars as pl

from queries.args import DateLike, key_text, stored_key, to_date, to_timestamp
from queries.names import missing
from queries.errors import BadArgument
from queries.formulas import parse, refs


class Sql(Protocol):
    """Runs a query over the views at a point in time (:meth:`queries.MetricStore.sql`)."""

    def __call__(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None, *,
                 as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame: ...

#: Bases of comparison for growth (see growth_basis_at in 55_lineage.sql).
BASES = ("as_of", "latest", "first")

EXPLAIN_COLUMNS = (
    "role, of_period, term, event_period, value, unit, qualifier, authority, reported_at, recorded_at, "
    "source, source_ref, as_reported, note, commit_id, run_id, event_id, derivation"
)


def _fact_filters(entity: str, metric: str, segment: str, dims: str) -> tuple[str, list[Any]]:
    key = [stored_key("entity", entity), stored_key("metric", metric), stored_key("segment", segment), key_text(dims)]
    return "entity = ? AND metric = ? AND segment = ? AND dims = ?", key


def _no_such(sql: Sql, entity: str, metric: str, period: str, segment: str = "total", dims: str = "", *,
             as_of: DateLike | None, as_recorded: DateLike | None) -> BadArgument:
    when = f" as of {as_of}" if as_of else ""
    unknown = missing(sql, entity, metric, segment)      # a name the store has none of is the argument at fault
    if unknown is not None:
        return unknown
    withdrawn = _withdrawn(sql, entity, metric, period, segment, dims, as_of=as_of, as_recorded=as_recorded)
    if withdrawn:
        return BadArgument("period", period, f"no {entity} {metric} figure for this period{when}: {withdrawn} "
                                             f"(`metricstore history {entity} {metric} {period}` lists every version)")
    known = sql("SELECT DISTINCT period, period_end FROM history WHERE entity = ? AND metric = ? "
                "ORDER BY period_end DESC LIMIT 6", [entity.lower(), metric],
                as_of=as_of, as_recorded=as_recorded)["period"].to_list()
    hint = f"known periods include {', '.join(known)}" if known else f"no {metric!r} facts for {entity!r}"
    return BadArgument("period", period, f"no {entity} {metric} figure for this period{when} ({hint})")


def _withdrawn(sql: Sql, entity: str, metric: str, period: str, segment: str, dims: str, *,
               as_of: DateLike | None, as_recorded: DateLike | None) -> str | None:
    """Why a fact that has versions has no current value: which event withdrew it (a retraction or
    a correction naming its event in ``supersedes``, or a retraction of the whole fact); None when
    it has no version (or a current one)."""
    where, params = _fact_filters(entity, metric, segment, dims)
    rows = sql(f"SELECT op, value, unit, source, reported_at, event_id, supersedes, is_current, withdrawal "
               f"FROM history WHERE {where} AND period = ? ORDER BY reported_at, recorded_at, event_id",
               [*params, period], as_of=as_of, as_recorded=as_recorded).to_dicts()
    if not rows or any(r["is_current"] for r in rows):
        return None
    standing = [r for r in rows if r["withdrawal"] is None]
    retracts = [r for r in standing if r["op"] == "retract" and r["supersedes"] is None]
    if retracts:
        r = retracts[-1]
        return (f"the fact was retracted by event {r['event_id']} (source {r['source']}, "
                f"reported {r['reported_at']})")
    asserts = [r for r in rows if r["op"] == "assert" and r["withdrawal"] is not None]
    if not asserts:
        return None
    last = asserts[-1]
    more = f"; {len(asserts) - 1} earlier version(s) were withdrawn too" if len(asserts) > 1 else ""
    return f"its value {last['value']:,.10g} {last['unit']} (event {last['event_id']}) was {last['withdrawal']}{more}"


def history(sql: Sql, entity: str, metric: str, period: str, segment: str = "total", *,
            dims: str = "", as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
    """Every version of one fact, oldest first, and which one the current view picks; a version
    withdrawn by another event names it (``withdrawn_by``, and in words ``withdrawal``).

    Example:
        >>> history(ms.sql, "aapl", "revenue", "FY2008")        # doctest: +SKIP
        version value        source                         reported_at is_current
        1       32479000000  0001193125-09-214859 10-K      2009-10-27  false
        2       37491000000  0001193125-10-012091 10-K/A    2010-01-25  false ...
    """
    where, params = _fact_filters(entity, metric, segment, dims)
    df = sql(f"SELECT * FROM history WHERE {where} AND period = ? ORDER BY kind, unit, version",
                [*params, period], as_of=as_of, as_recorded=as_recorded)
    if df.height == 0:
        computed = formula_history(sql, entity, metric, period, segment, dims=dims, as_of=as_of,
                                   as_recorded=as_recorded)
        if computed is not None and computed.height:
            return computed
        derived = sql(f"SELECT derivation, fy, period_end FROM growth WHERE {where} AND period = ? AND derived",
                         [*params, period], as_of=as_of, as_recorded=as_recorded)
        if derived.height and computed is not None:     # a formula value over derived quarters or halves
            over = formula_history(sql, entity, metric, period, segment, dims=dims, as_of=as_of,
                                   as_recorded=as_recorded, placed=(derived["fy"][0], derived["period_end"][0]))
            if over is not None and over.height:
                return over
            raise BadArgument("period", period, f"is computed from derived inputs ({derived['derivation'][0]}); "
                              f"history lists the versions of values over reported inputs only: "
                              f"`metricstore explain {entity} {metric} {period}` shows its terms "
                              f"(with --as-of, as known on a date)")
        if derived.height:
            raise BadArgument("period", period, f"is derived ({derived['derivation'][0]}), never reported: "
                              f"`metricstore explain {entity} {metric} {period}` shows its terms")
        if computed is not None:
            raise _no_formula_value(sql, entity, metric, period, as_of=as_of, as_recorded=as_recorded)
        raise _no_such(sql, entity, metric, period, segment, dims, as_of=as_of, as_recorded=as_recorded)
    return df


# -- history of a formula metric's value ---------------------------------------------------------

#: The versions of a formula value, shaped as the history view's rows (plus ``derived_from``): the
#: computations found at the points (c), each distinct one (definition text, input events) once, at
#: the earliest time it was known; point 0 is the session's own point in time (the current answer).
_FORMULA_VERSIONS = """
WITH c AS ({points}),
k AS (
    SELECT *, bool_or(point = 0) OVER s AS is_current FROM c
    WINDOW s AS (PARTITION BY kind, unit, source_ref, derived_from)
    QUALIFY row_number() OVER (PARTITION BY kind, unit, source_ref, derived_from ORDER BY known_at, point) = 1
),
w AS (
    SELECT k.point, e.event_id AS withdrawn_by,
           'input event ' || e.supersedes || ' '
           || CASE WHEN e.op = 'retract' THEN 'retracted' ELSE 'corrected' END || ' by event ' || e.event_id
           || ' (source ' || e.source || ', reported ' || CAST(e.reported_at AS VARCHAR) || ')' AS withdrawal
    FROM k JOIN lineage_events(getvariable('as_of'), getvariable('as_recorded')) e
      ON list_contains(k.derived_from, e.supersedes)
    QUALIFY row_number() OVER (PARTITION BY k.point ORDER BY e.reported_at, e.recorded_at, e.event_id) = 1
)
SELECT k.entity, k.metric, k.segment, k.dims, k.period, k.kind, k.unit, row_number() OVER v AS version,
       'assert' AS op, k.value, k.value_high, k.qualifier, k.authority,
       lag(k.value) OVER v AS previous_value,
       ms_change(k.value, lag(k.value) OVER v) AS change,
       k.reported_at, k.known_at AS recorded_at, k.source, k.source_ref, k.as_reported, NULL::VARCHAR AS note,
       k.event_id, NULL::VARCHAR AS commit_id, NULL::VARCHAR AS run_id, NULL::VARCHAR AS supersedes,
       k.is_current, w.withdrawn_by, w.withdrawal, k.period_start, k.period_end, k.derived_from{extra}
FROM k LEFT JOIN w USING (point)
WINDOW v AS (PARTITION BY k.kind, k.unit ORDER BY k.reported_at, k.known_at, k.point)
ORDER BY k.kind, k.unit, version
"""

_POINT = """SELECT {i} AS point, * EXCLUDE (recorded_at, tolerance), greatest(recorded_at, {defined}) AS known_at
    FROM formula_facts_at({as_of}, {as_recorded})
    WHERE entity = $entity AND metric = $metric AND segment = $segment AND dims = $dims AND period = $period"""


#: A point of a value over derived inputs (growth's placed rows): the derivation stands in
#: as_reported until the arithmetic is spelled out (:func:`_placed_arithmetic`).
_PLACED_POINT = """SELECT {i} AS point, * EXCLUDE (recorded_at, as_reported), derivation AS as_reported,
           greatest(recorded_at, {defined}) AS known_at
    FROM formula_placed_at({as_of}, {as_recorded}, only_entity := $entity, only_metric := $metric)
    WHERE source = 'formula' AND entity = $entity AND metric = $metric AND segment = $segment AND dims = $dims
      AND period = $period"""

#: The columns a placed version keeps until its arithmetic is spelled out.
_PLACED_EXTRA = ", k.inputs, k.arith_template, ms_fmt_result(k.value) || ' ' || k.unit AS result_text"


def _placed_arithmetic(sql: Sql, df: pl.DataFrame, *, as_of: DateLike | None,
                       as_recorded: DateLike | None) -> pl.DataFrame:
    """The versions of a value over derived inputs with their arithmetic in ``as_reported``, each
    derived input with its terms (as :func:`explain` spells it)."""
    ids = sorted({i for inputs in df["inputs"].to_list() for inp in inputs for i in inp["derived_from"]})
    events = {r["event_id"]: r for r in sql(
        "SELECT event_id, period AS event_period, value, unit, as_reported FROM lineage_events("
        "getvariable('as_of'), getvariable('as_recorded')) WHERE list_contains(?, event_id)", [ids],
        as_of=as_of, as_recorded=as_recorded).to_dicts()}
    lines = [formula_arithmetic(v["period"], [
        {**events[i], "input_no": n, "input_term": j, "input_derivation": inp["derivation"],
         "arith_template": v["arith_template"], "result_text": v["result_text"]}
        for n, inp in enumerate(v["inputs"], 1) for j, i in enumerate(inp["derived_from"], 1)])
        for v in df.iter_rows(named=True)]
    return df.with_columns(pl.Series("as_reported", lines, dtype=pl.String)).drop(
        "inputs", "arith_template", "result_text")


def _literal(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMPTZ '{value.astimezone(dt.UTC).isoformat()}'"
    return f"DATE '{value.isoformat()}'"


def _definitions(sql: Sql, metric: str, recorded_by: dt.datetime | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The versions of ``metric``'s definition recorded by ``recorded_by``, oldest first, and every
    metric its versions use (through the formula metrics they use); empty when it is no formula."""
    everything = sql("SELECT metric, formula, recorded_at, replaced_at FROM formulas ORDER BY recorded_at").to_dicts()
    rows = [r for r in everything if recorded_by is None or r["recorded_at"] <= recorded_by]
    own = [r for r in rows if r["metric"] == metric]
    used: list[str] = []
    todo = [r["formula"] for r in own]
    while todo:
        try:
            tree = parse(todo.pop())
        except BadArgument:     # a hand-edited catalog formula that does not parse has no values either
            continue
        for ref in refs(tree):
            if ref.metric not in used:
                used.append(ref.metric)
                todo += [r["formula"] for r in rows if r["metric"] == ref.metric]
    return own, used


def _defined_at(own: list[dict[str, Any]], t: dt.datetime | None) -> dt.datetime | None:
    """When the definition in effect at system time ``t`` (None: now) was recorded."""
    valid = [r["recorded_at"] for r in own
             if (r["replaced_at"] is None if t is None else r["recorded_at"] <= t
                 and (r["replaced_at"] is None or t < r["replaced_at"]))]
    return valid[-1] if valid else None


def _no_formula_value(sql: Sql, entity: str, metric: str, period: str, *, as_of: DateLike | None,
                      as_recorded: DateLike | None) -> BadArgument:
    """Why a formula metric has no value for a period (so no version): an input has none there."""
    when = f" as of {as_of}" if as_of else ""
    formula = sql("SELECT formula FROM formulas WHERE metric = ? AND (getvariable('as_recorded') IS NULL "
                  "OR recorded_at <= getvariable('as_recorded')) ORDER BY recorded_at DESC LIMIT 1", [metric],
                  as_recorded=as_recorded)["formula"].to_list()
    known = sql("SELECT DISTINCT period, period_end FROM facts WHERE entity = ? AND metric = ? "
                "ORDER BY period_end DESC LIMIT 6", [entity.lower(), metric],
                as_of=as_of, as_recorded=as_recorded)["period"].to_list()
    hint = f"it has values for {', '.join(known)}" if known else f"it has no value for {entity!r}"
    return BadArgument("period", period, f"no {entity} {metric} value for this period{when}: the formula "
                                         f"{formula[0] if formula else metric!r} needs a value of every input ({hint})")


def _points(events: list[tuple[str, dt.date, dt.datetime]],
            defined: list[dt.datetime]) -> list[tuple[dt.date, dt.datetime]]:
    """The (as_of, as_recorded) points at which the value can differ: publication dates of the
    ``events`` (id, reported_at, recorded_at) by recording times of the events and of the
    definitions, one point for each distinct set of events and definitions it sees (the earliest)."""
    seen: dict[tuple[frozenset[str], int], tuple[dt.date, dt.datetime]] = {}
    for r in sorted({e[1] for e in events}):
        for t in sorted({e[2] for e in events} | set(defined)):
            key = (frozenset(e[0] for e in events if e[1] <= r and e[2] <= t), sum(d <= t for d in defined))
            if key[0]:
                seen.setdefault(key, (r, t))
    return list(seen.values())


def formula_history(sql: Sql, entity: str, metric: str, period: str, segment: str = "total", *,
                    dims: str = "", as_of: DateLike | None = None, as_recorded: DateLike | None = None,
                    placed: tuple[int, dt.date] | None = None) -> pl.DataFrame | None:
    """Every version of a formula metric's computed value, oldest first, shaped as :func:`history`'s
    rows (``source`` 'formula', the formula in ``source_ref``, the arithmetic in ``as_reported``, the
    input events in ``derived_from``); None when ``metric`` is not a formula metric.

    The versions are every value ``facts`` gives for the fact at some (as_of, as_recorded): the
    formula is evaluated at the publication dates of its inputs' events (and of events withdrawing
    them) crossed with the recording times of those events and of the definitions, once per distinct
    set of events and definitions seen. The same formula over the same input events is one version,
    dated when it was first known (``recorded_at`` counts the definition's recording). A redefinition
    thus also gives a version for each earlier publication, as ``as_of`` that date now answers.

    ``placed`` (the fiscal year and end of a value growth computes over derived quarters or halves):
    the versions of that value, over every event of its inputs in that year.
    """
    d, t = to_date("as_of", as_of), to_timestamp("as_recorded", as_recorded)
    own, used = _definitions(sql, metric, t)
    if not own:
        return None
    fy, end = placed or (None, None)
    events = sql("SELECT * FROM formula_history_events(getvariable('as_of'), getvariable('as_recorded'), ?, ?, ?, "
                 "of_fy := ?, of_end := ?)", [entity.lower(), used, period, fy, end],
                 as_of=as_of, as_recorded=as_recorded).rows()
    defined = [r for r in sql("SELECT DISTINCT recorded_at FROM formulas WHERE list_contains(?, metric)",
                              [[metric, *used]])["recorded_at"].to_list() if t is None or r <= t]
    points = [(d, t), *_points(events, defined)]
    point = _PLACED_POINT if placed else _POINT
    parts = [point.format(i=i, as_of=_literal(a), as_recorded=_literal(r), defined=_literal(_defined_at(own, r)))
             for i, (a, r) in enumerate(points)]
    _, params = _fact_filters(entity, metric, segment, dims)
    names = dict(zip(("entity", "metric", "segment", "dims"), params, strict=True))
    df = sql(_FORMULA_VERSIONS.format(points="\n    UNION ALL BY NAME ".join(parts), extra=_PLACED_EXTRA if placed else ""),
             {**names, "period": period}, as_of=as_of, as_recorded=as_recorded)
    return _placed_arithmetic(sql, df, as_of=as_of, as_recorded=as_recorded) if placed and df.height else df


def restatements(sql: Sql, entity: str, metric: str | None = None, *,
                 as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
    """The facts of ``entity`` whose value changed between the company's publications, newest first."""
    where, params = "entity = ?", [entity.lower()]
    if metric:
        where, params = where + " AND metric = ?", [*params, metric]
    return sql(f"SELECT * FROM restatements WHERE {where} ORDER BY restated_at DESC, metric, period_end DESC",
                  params, as_of=as_of, as_recorded=as_recorded)


def _scale(values: list[float], unit: str) -> tuple[float, str]:
    if values and unit not in ("ratio", "shares") and "/" not in unit and all(abs(v) >= 1e6 or v == 0 for v in values):
        return 1e6, f"{unit} m"
    return 1.0, unit


def _num(v: float, div: float) -> str:
    x = v / div
    if div > 1:
        return f"{x:,.1f}"
    return f"{x:,.0f}" if x == int(x) and abs(x) >= 1000 else f"{x:,.6g}"


def _term_sum(rows: list[dict[str, Any]], value: float | None = None) -> tuple[str, str, str]:
    """The terms of a derived value (term 1 added, the rest subtracted: ``FY2024 1,150.0 - 9M2024
    810.0``), their result and the unit shown (scaled to millions where every figure allows)."""
    rows = sorted(rows, key=lambda r: r["term"])
    vals = [r["value"] for r in rows] + ([value] if value is not None else [])
    div, shown = _scale([v for v in vals if v is not None], rows[0]["unit"] if rows else "")
    total = rows[0]["value"] - sum(r["value"] for r in rows[1:])
    return " - ".join(f"{r['event_period']} {_num(r['value'], div)}" for r in rows), _num(total, div), shown


def arithmetic(period: str, rows: list[dict[str, Any]], value: float | None = None) -> str:
    """``2024Q4 = FY2024 1,150.0 - 9M2024 810.0 = 340.0 (USD m)`` for the terms of a value."""
    if len(rows) == 1 and not rows[0]["derivation"]:
        r = rows[0]
        div, shown = _scale([v for v in (r["value"], value) if v is not None], r["unit"])
        return f"{period} = {_num(r['value'], div)} {shown} ({r['source']}, reported {r['reported_at']})"
    terms, total, shown = _term_sum(rows, value)
    return f"{period} = {terms} = {total} ({shown})"


def formula_arithmetic(period: str, rows: list[dict[str, Any]]) -> str:
    """The arithmetic of a formula value over derived inputs, each derived input with its own terms:
    ``2024Q4 = (FY2024 180,683.0 - 9M2024 136,804.0 = 43,879.0 USD m) / (94930 USD m) = 0.4622 ratio``
    (rows of ``formula_placed_lineage_at``: a reported input shows its figure as reported)."""
    text = rows[0]["arith_template"]
    for n in sorted({r["input_no"] for r in rows}):
        own = [{**r, "term": r["input_term"]} for r in rows if r["input_no"] == n]
        if own[0]["input_derivation"] is None:      # a reported input: its figure as reported
            shown = own[0]["as_reported"] or f"{own[0]['value']:g} {own[0]['unit']}"
        else:
            terms, total, unit = _term_sum(own)
            shown = f"{terms} = {total} {unit}"
        text = text.replace(f"{{{n - 1}}}", shown)
    return f"{period} = {text} = {rows[0]['result_text']}"


def explain(sql: Sql, entity: str, metric: str, period: str, segment: str = "total", *,
            dims: str = "", as_of: DateLike | None = None,
            as_recorded: DateLike | None = None) -> pl.DataFrame:
    """The events behind one row of ``facts`` or ``growth``, and the arithmetic of derived values.

    Returns one row per event: ``role`` is 'value' (the row's own event), 'value term' (a term of
    a derived value; term 1 is added, the rest subtracted), 'prior' / 'prior term' (the YoY prior),
    with source, source_ref, as_reported, commit_id and run_id; ``arithmetic`` spells the sum out.

    Example:
        >>> explain(ms.sql, "xiaomi", "revenue", "2024Q4")["arithmetic"][0]      # doctest: +SKIP
        '2024Q4 = FY2024 365,906.4 - 9M2024 256,901.2 = 109,005.2 (CNY m)'
    """
    where, params = _fact_filters(entity, metric, segment, dims)
    df = sql(f"SELECT {EXPLAIN_COLUMNS} FROM lineage_at(getvariable('as_of'), getvariable('as_recorded')) "
                f"WHERE {where} AND period = ? ORDER BY role DESC, term", [*params, period],
                as_of=as_of, as_recorded=as_recorded)
    if df.height == 0:      # a formula metric's value: its inputs, in the formula's order
        terms = sql(f"SELECT {EXPLAIN_COLUMNS}, arithmetic FROM formula_lineage_at(getvariable('as_of'), "
                    f"getvariable('as_recorded')) WHERE {where} AND period = ? ORDER BY term", [*params, period],
                    as_of=as_of, as_recorded=as_recorded)
        if terms.height:
            return terms
        placed = _formula_placed_terms(sql, entity, metric, period, segment, dims, as_of=as_of,
                                       as_recorded=as_recorded)
        if placed is not None:
            return placed
        raise _no_such(sql, entity, metric, period, segment, dims, as_of=as_of, as_recorded=as_recorded)
    restated = _restated_terms(sql, df, [*params], as_of=as_of, as_recorded=as_recorded)
    lines: dict[str, str] = {}
    for role in df["role"].unique(maintain_order=True).to_list():
        rows = df.filter(pl.col("role") == role).to_dicts()
        label = rows[0]["of_period"]
        lines[role] = ("prior: " if role.startswith("prior") else "") + arithmetic(label, rows) + vintage_caution(rows, restated)
    return df.with_columns(pl.col("role").replace_strict(lines, return_dtype=pl.String).alias("arithmetic"))


def _formula_placed_terms(sql: Sql, entity: str, metric: str, period: str, segment: str, dims: str, *,
                          as_of: DateLike | None, as_recorded: DateLike | None) -> pl.DataFrame | None:
    """The events behind a formula value computed over derived inputs (a Q4 margin from FY - 9M
    gross profit and revenue), one 'value term' row per event with its input (``input``,
    ``input_term``) and the arithmetic; None when the formula has no such value; an error when
    ``metric`` is a formula metric that has no value there."""
    if not sql("SELECT 1 FROM formulas WHERE metric = ? LIMIT 1", [metric], as_recorded=as_recorded).height:
        return None
    where, params = _fact_filters(entity, metric, segment, dims)
    rows = sql(f"SELECT {EXPLAIN_COLUMNS}, input, input_no, input_term, input_period, input_value, input_unit, "
               f"input_derivation, arith_template, result_text FROM formula_placed_lineage_at("
               f"getvariable('as_of'), getvariable('as_recorded'), ?, ?) WHERE {where} AND period = ? ORDER BY term",
               [params[0], params[1], *params, period], as_of=as_of, as_recorded=as_recorded)
    if rows.height == 0:
        raise _no_formula_value(sql, entity, metric, period, as_of=as_of, as_recorded=as_recorded)
    line = formula_arithmetic(period, rows.to_dicts())
    return rows.drop("arith_template", "result_text").with_columns(pl.lit(line).alias("arithmetic"))


def _restated_terms(sql: Sql, df: pl.DataFrame, key: list[Any], *, as_of: DateLike | None,
                    as_recorded: DateLike | None) -> dict[str, Any]:
    """period -> the last date its value was restated, for the periods that are terms of derived values."""
    periods = df.filter(pl.col("role").str.ends_with("term"))["event_period"].unique().to_list()
    if not periods:
        return {}
    r = sql("SELECT period, max(restated_at) AS d FROM restatements WHERE entity = ? AND metric = ? "
               "AND segment = ? AND dims = ? AND list_contains(?, period) GROUP BY ALL", [*key, periods], as_of=as_of, as_recorded=as_recorded)
    return dict(zip(r["period"].to_list(), r["d"].to_list(), strict=True))


def vintage_caution(rows: list[dict[str, Any]], restated: dict[str, Any]) -> str:
    """A warning when one term of a derived value was restated after another term was published:
    the terms then come from different vintages (Apple's FY2008, restated in the 10-K/A, minus a
    9M2008 that was never restated)."""
    notes = []
    for r in rows:
        when = restated.get(r["event_period"])
        older = [o for o in rows if o is not r and when is not None and o["reported_at"] < when]
        if older:
            notes.append(f"{r['event_period']} was restated on {when}, after "
                         + ", ".join(f"{o['event_period']} was reported ({o['reported_at']})" for o in older))
    return f" [caution: terms from different vintages: {'; '.join(notes)}]" if notes else ""


def growth_by_basis(sql: Sql, basis: str, *, as_of: DateLike | None = None,
                    as_recorded: DateLike | None = None, order: str = "entity, metric, segment, dims, ptype, period_end",
                    columns: str = "*", **filters: str) -> pl.DataFrame:
    """The growth view with the prior period on ``basis``: 'as_of' (default: as known at the same
    as_of, what a backtest wants), 'latest' (as known now) or 'first' (as first reported)."""
    if basis not in BASES:
        raise BadArgument("basis", basis, f"is not one of {', '.join(BASES)}")
    allowed = set(sql("SELECT * FROM growth_basis('as_of') LIMIT 0").columns)
    where, params = [], []
    for name, value in filters.items():
        if name not in allowed:
            raise BadArgument(name, value, "is not a column of growth")
        where.append(f'"{name}" = ?')
        params.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return sql(f"SELECT {columns} FROM growth_basis(?){clause} ORDER BY {order}", [basis, *params],
                  as_of=as_of, as_recorded=as_recorded)
