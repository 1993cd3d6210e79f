"""Formula metrics compiled to SQL over the store's definitions: ``formula_facts_at(as_of, as_recorded)``
(the values in ``facts``) and ``formula_placed_at`` (the rows ``growth`` places, derived quarters
included).

Each version of each definition (queries.formulas) becomes one SELECT, joined input by input: over
``facts_at`` (the reported facts, point in time) for ``facts``, over ``placed_at`` (the reported
facts and the quarters growth derives) for ``growth``. The versions are stacked with a guard on
``as_recorded`` so that a redefinition is seen only from the time it was recorded. The macros
replace the empty ones of ``queries/sql/25_formulas.sql`` and ``30_growth.sql`` on the connection
the views live on; a store without definitions keeps those (nothing is computed, nothing read).
Only names the store chose and literals quoted here reach the SQL text; nothing is evaluated in Python.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from queries.errors import BadArgument
from queries.formulas import (Definition, Node, Num, Op, Ref, aggregations, definitions, expand, formulas_of, metric_log,
                              refs, text)
from store import Store

def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class _Query:
    """The SQL of one definition version: an alias per input, and the expressions over them."""

    def __init__(self, tree: Node, agg: dict[str, str]) -> None:
        self.tree = tree
        self.inputs = refs(tree)
        self.alias = {r: f"i{k}" for k, r in enumerate(self.inputs)}
        stock = [agg.get(r.metric) == "stock" for r in self.inputs]
        self.anchor = next((r for r, s in zip(self.inputs, stock, strict=True) if not s), self.inputs[0])
        self.anchor_stock = agg.get(self.anchor.metric) == "stock"
        self.stock = {r: s for r, s in zip(self.inputs, stock, strict=True)}

    # -- the expressions, node by node ------------------------------------------------------
    def value(self, n: Node) -> str:
        if isinstance(n, Ref):
            return f"{self.alias[n]}.value"
        if isinstance(n, Num):
            return repr(float(n.value))
        a = [self.value(x) for x in n.args]
        if n.op == "neg":
            return f"(-{a[0]})"
        if n.op == "abs":
            return f"abs({a[0]})"
        if n.op == "/":
            return f"({a[0]} / CASE WHEN {a[1]} = 0 THEN NULL ELSE {a[1]} END)"
        return f"({a[0]} {n.op} {a[1]})"

    def magnitude(self, n: Node) -> str:
        """The magnitude ``ms_decimal`` rounds the value at (05_decimals.sql): a sum or
        difference's terms' magnitudes summed, which bound its noise; NULL for the value's own."""
        terms: list[str] = []

        def walk(x: Node) -> bool:
            if isinstance(x, Ref | Num):
                terms.append(f"abs({self.value(x)})")
                return True
            return x.op in ("+", "-", "neg", "abs") and all(walk(a) for a in x.args)

        return " + ".join(terms) if walk(n) and len(terms) > 1 else "NULL::DOUBLE"

    def unit(self, n: Node) -> str:
        if isinstance(n, Ref):
            return f"{self.alias[n]}.unit"
        if isinstance(n, Num):
            return "NULL::VARCHAR"
        a = [self.unit(x) for x in n.args]
        if n.op in ("neg", "abs"):
            return a[0]
        return {"+": "ms_unit_same", "-": "ms_unit_same", "*": "ms_unit_mul", "/": "ms_unit_div"}[n.op] + f"({a[0]}, {a[1]})"

    def reasons(self, n: Node) -> list[str]:
        """Why a value is NULL: a division by zero, a sum of different units."""
        if not isinstance(n, Op):
            return []
        out = [r for x in n.args for r in self.reasons(x)]
        if n.op == "/":
            out.append(f"CASE WHEN {self.value(n.args[1])} = 0 THEN {lit('division by zero: ' + text(n.args[1]) + ' is 0')} END")
        if n.op in ("+", "-"):
            lu, ru = self.unit(n.args[0]), self.unit(n.args[1])
            out.append(f"CASE WHEN {lu} <> {ru} THEN 'units differ: ' || {lu} || ' {n.op} ' || {ru} END")
        return out

    def error(self, n: Node) -> str:
        """The most the computed value can be off by the inputs' rounding (first order)."""
        if isinstance(n, Ref):
            return f"(0.5 * coalesce({self.alias[n]}.step, 0))"
        if isinstance(n, Num):
            return "0.0"
        e = [self.error(x) for x in n.args]
        if n.op in ("neg", "abs"):
            return e[0]
        if n.op in ("+", "-"):
            return f"({e[0]} + {e[1]})"
        v = [self.value(x) for x in n.args]
        if n.op == "*":
            return f"(abs({v[1]}) * {e[0]} + abs({v[0]}) * {e[1]} + {e[0]} * {e[1]})"
        return f"(({e[0]} * abs({v[1]}) + abs({v[0]}) * {e[1]}) / ({v[1]} * {v[1]}))"

    def arithmetic(self, n: Node, placeholders: bool = False) -> str:
        """The expression with the inputs' figures as reported: ``-(-6.2 CNY bn) / (136854 units)``;
        with ``placeholders``, ``-({0}) / ({1})`` (input k in the order of ``inputs``, for lineage
        to fill in with a derived input's terms)."""
        if isinstance(n, Ref):
            x = self.alias[n]
            if placeholders:
                return lit(f"({{{self.inputs.index(n)}}})")
            return f"'(' || coalesce({x}.as_reported, CAST({x}.value AS VARCHAR)) || ')'"
        if isinstance(n, Num):
            return lit(f"{n.value:g}")
        a = [self.arithmetic(x, placeholders) for x in n.args]
        if n.op == "neg":
            return f"'-' || {a[0]}"
        if n.op == "abs":
            return f"'abs(' || {a[0]} || ')'"
        wrap = [f"'(' || {s} || ')'" if isinstance(x, Op) and x.op in "+-*/" else s for s, x in zip(a, n.args, strict=True)]
        return f"{wrap[0]} || ' {n.op} ' || {wrap[1]}"

    # -- the query --------------------------------------------------------------------------
    def where(self, *, calendar: bool = False) -> list[str]:
        """The inputs' conditions; ``calendar``: rows on calendar periods, where a stock already
        stands on the quarter (or year) it belongs to, so every input meets on the label."""
        a = self.alias[self.anchor]
        conds: list[str] = []
        for r in self.inputs:
            x = self.alias[r]
            conds.append(f"{x}.metric = {lit(r.metric)}")
            if r.segment is not None:
                conds.append(f"{x}.segment = {lit(r.segment)}")
            if r.dims is not None:
                conds.append(f"{x}.dims = {lit(r.dims)}")
            if r == self.anchor:
                continue
            conds.append(f"{x}.entity = {a}.entity")
            if self.stock[r] and not self.anchor_stock and not calendar:     # a stock at the period's end
                conds.append(f"{x}.ptype = 'I' AND {x}.ord = {a}.ord")
            else:
                conds.append(f"{x}.period = {a}.period")
        for column in ("segment", "dims"):
            free = [self.alias[r] for r in self.inputs if getattr(r, column) is None]
            conds += [f"{x}.{column} = {free[0]}.{column}" for x in free[1:]]
        return conds

    def select(self, d: Definition, guard: str, *, placed: bool = False, calendar: bool = False) -> str:
        """The SELECT of this version over ``f``: the facts (a row of ``formula_facts_at``, with the
        arithmetic and the tolerance) or, ``placed``, the rows growth places (a row of
        ``formula_placed_at``, with the aggregation and the derivation)."""
        a = self.alias[self.anchor]
        free_seg = next((self.alias[r] for r in self.inputs if r.segment is None), None)
        free_dims = next((self.alias[r] for r in self.inputs if r.dims is None), None)
        aliases = [self.alias[r] for r in self.inputs]
        reasons = self.reasons(self.tree)
        reason = f"nullif(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "NULL::VARCHAR"
        inferred = self.unit(self.tree)
        if d.unit and not calendar:   # a declared unit: the inputs' must agree with it (calendar rows may be converted)
            reason = (f"coalesce({reason}, CASE WHEN {inferred} <> {lit(d.unit)} THEN 'the inputs give ' || {inferred} "
                      f"|| ', not the declared {d.unit}' END)")
        unit = f"coalesce({inferred}, {lit(d.unit) if d.unit else 'NULL::VARCHAR'}, 'ratio')"

        def latest(column: str) -> str:
            cols = [f"{x}.{column}" for x in aliases]
            return f"greatest({', '.join(cols)})" if len(cols) > 1 else cols[0]
        if placed:      # the inputs' own derivations (a derived quarter's FY - 9M) follow the formula
            steps = [f"CASE WHEN {self.alias[r]}.derivation IS NOT NULL THEN {lit(r.text() + ': ')} || "
                     f"{self.alias[r]}.derivation END" for r in self.inputs]
            # each input's row, and the arithmetic with a place for each (explain, queries/lineage.py)
            inputs = ", ".join(
                f"{{'input': {lit(r.text())}, 'metric': {x}.metric, 'segment': {x}.segment, 'dims': {x}.dims, "
                f"'period': {x}.period, 'value': {x}.value, 'unit': {x}.unit, 'as_reported': {x}.as_reported, "
                f"'derivation': {x}.derivation, 'derived_from': {x}.derived_from}}"
                for r, x in ((r, self.alias[r]) for r in self.inputs))
            extra = (f"coalesce({lit(d.formula + ' (')} || nullif(concat_ws('; ', {', '.join(steps)}), '') || ')', "
                     f"{lit(d.formula)}) AS derivation, [{inputs}] AS inputs, "
                     f"{self.arithmetic(self.tree, placeholders=True)} AS arith_template")
            outer = (f"NULL::VARCHAR AS as_reported, NULL::VARCHAR AS event_id, true AS derived, derived_from, fye, "
                     f"ptype, months, ord, fy, {lit(d.aggregation)} AS aggregation, derivation, inputs, arith_template")
            if calendar:    # the anchor's fiscal period(s) beside the calendar label
                extra += f", {a}.fiscal_period"
                outer += ", fiscal_period"
        else:
            extra = f"{self.arithmetic(self.tree)} AS arith, {self.error(self.tree)} AS tolerance"
            outer = """CASE WHEN reason IS NULL THEN period || ' = ' || arith || ' = ' || ms_fmt_result(v) || ' ' || unit
                ELSE period || ': NULL (' || reason || ')' END AS as_reported,
           NULL::VARCHAR AS event_id, true AS derived, derived_from, fye, ptype, months, ord, fy,
           CASE WHEN reason IS NULL THEN tolerance END AS tolerance"""
        return f"""
    SELECT entity, {lit(d.metric)} AS metric, segment, dims, period, period_start, period_end, 'actual' AS kind,
           CASE WHEN reason IS NULL THEN ms_decimal(v, coalesce(magnitude, abs(v))) END AS value,
           NULL::DOUBLE AS value_high, unit, qualifier,
           NULL::VARCHAR AS authority, reported_at, recorded_at, 'formula' AS source, {lit(d.formula)} AS source_ref,
           {outer}
    FROM (
        SELECT {a}.entity, {f'{free_seg}.segment' if free_seg else "'total'"} AS segment,
               {f'{free_dims}.dims' if free_dims else "''"} AS dims,
               {a}.period, {a}.period_start, {a}.period_end, {a}.fye, {a}.ptype, {a}.months, {a}.ord, {a}.fy,
               {self.value(self.tree)} AS v, {self.magnitude(self.tree)} AS magnitude, {unit} AS unit,
               {reason} AS reason,
               CASE WHEN {' AND '.join(f"{x}.qualifier = 'exact'" for x in aliases)} THEN 'exact' ELSE 'approx' END AS qualifier,
               {latest('reported_at')} AS reported_at, {latest('recorded_at')} AS recorded_at,
               flatten([{', '.join(f'{x}.derived_from' for x in aliases)}]) AS derived_from,
               {extra}
        FROM {', '.join(f'f AS {x}' for x in aliases)}
        WHERE {' AND '.join(self.where(calendar=calendar))} AND {guard}
    )"""


#: The reported facts and the formula values no reported figure of the same fact stands over
#: (replaces the reported-facts-only ``all_facts_at`` of queries/sql/25_formulas.sql).
ALL_FACTS = """CREATE OR REPLACE MACRO all_facts_at(as_of, as_recorded) AS TABLE
SELECT * FROM facts_at(as_of, as_recorded)
UNION ALL BY NAME
SELECT c.* EXCLUDE (tolerance)
FROM formula_facts_at(as_of, as_recorded) c
LEFT JOIN facts_at(as_of, as_recorded) r
  ON r.entity = c.entity AND r.metric = c.metric AND r.segment = c.segment AND r.dims = c.dims
 AND r.period = c.period AND r.kind = c.kind
WHERE r.entity IS NULL"""


def _ts(t: dt.datetime) -> str:
    return f"TIMESTAMPTZ {lit(t.astimezone(dt.UTC).isoformat())}"


def guard(d: Definition) -> str:
    """The system times a version answers for: from its recording to the next version's."""
    rec = "CAST(as_recorded AS TIMESTAMPTZ)"
    since = f"{rec} >= {_ts(d.recorded_at)}"
    if d.until is None:
        return f"(as_recorded IS NULL OR {since})"
    return f"(as_recorded IS NOT NULL AND {since} AND {rec} < {_ts(d.until)})"


def _versions(defs: list[Definition], agg: dict[str, str]) -> tuple[list[tuple[Definition, _Query]], list[tuple[str, str]]]:
    """Each definition version that compiles, with its query; those that do not (a cycle through a
    later redefinition, no metric used) with their reason."""
    out: list[tuple[Definition, _Query]] = []
    skipped: list[tuple[str, str]] = []
    for d in defs:
        try:
            tree = expand(d.metric, {**formulas_of(defs, None if d.until is None else d.recorded_at), d.metric: d.formula})
        except BadArgument as exc:
            skipped.append((d.metric, str(exc)))
            continue
        if not refs(tree):
            skipped.append((d.metric, "uses no metric"))
            continue
        out.append((d, _Query(tree, agg)))
    return out, skipped


def _list(names: list[str]) -> str:
    """A SQL list of names (a VARCHAR[])."""
    return f"CAST([{', '.join(lit(n) for n in names)}] AS VARCHAR[])"


def compile_all(defs: list[Definition], agg: dict[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The statements replacing the empty formula macros: ``formula_facts_at`` (the values from the
    reported facts) and ``all_facts_at`` (queries/sql/25_formulas.sql), ``ms_formula_metrics``,
    ``ms_formula_metric`` and ``formula_placed_at``
    (the formula metrics' rows growth places, queries/sql/30_growth.sql); and the versions that do
    not compile, with their reason.

    Growth takes a formula's inputs from the rows growth itself places (``placed_at``: the reported
    facts and the quarters and halves derived from year-to-date figures), so that a margin of a Q4
    reported only as FY and 9M is the quotient of the two derived Q4s: each rule (which quarter is
    derived and how; how a formula combines its inputs) keeps one definition, and growth's windows
    then run over the formula's rows like any series'. The formula's own value is never derived
    from its own year-to-date values (a ratio's FY - 9M means nothing). A formula metric's series
    is whole here: its reported rows, and the computed ones where no reported row of the same
    period stands, so that a YoY may compare a computed year with a reported one.
    """
    versions, skipped = _versions(defs, agg)
    names = [d.metric for d in defs]
    # the metrics a formula metric's rows read (its inputs, every version's, and its own reported
    # rows): only those events are read, all of them for the whole view, one formula's for its series
    reads: dict[str, set[str]] = {}
    for d, q in versions:
        reads.setdefault(d.metric, {d.metric}).update(r.metric for r in q.inputs)
    every = sorted(set(names).union(*reads.values()))
    reads_sql = "CASE WHEN only_metric IS NULL THEN " + _list(every) + "".join(
        f" WHEN only_metric = {lit(m)} THEN {_list(sorted(ms))}" for m, ms in sorted(reads.items())) + \
        " ELSE " + _list([]) + " END"
    def stack(empty: str, selects: list[str]) -> str:
        return "\n    UNION ALL BY NAME".join([empty, *selects])

    def narrowed(d: Definition) -> str:     # one formula metric's rows when only_metric names it
        return f"{guard(d)} AND (only_metric IS NULL OR only_metric = {lit(d.metric)})"
    facts = stack("SELECT * FROM formula_facts_empty", [q.select(d, guard(d)) for d, q in versions])
    placed = stack("SELECT * FROM formula_placed_empty",
                   [q.select(d, narrowed(d), placed=True) for d, q in versions])
    calendar = stack("SELECT *, NULL::VARCHAR AS fiscal_period FROM formula_placed_empty",
                     [q.select(d, narrowed(d), placed=True, calendar=True) for d, q in versions])
    return [f"""CREATE OR REPLACE MACRO formula_facts_at(as_of, as_recorded) AS TABLE
WITH f AS (
    SELECT *, ms_step(value, as_reported) AS step FROM facts_at(as_of, as_recorded) WHERE kind = 'actual'
)
{facts}""", ALL_FACTS, f"CREATE OR REPLACE MACRO ms_formula_metrics() AS {_list(sorted(set(names)))}",
            f"CREATE OR REPLACE MACRO ms_formula_metric(name) AS list_contains(ms_formula_metrics(), name)",
            f"""CREATE OR REPLACE MACRO formula_placed_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                          only_entities := CAST(NULL AS VARCHAR[])) AS TABLE
WITH f AS (
    SELECT * FROM placed_at(as_of, as_recorded, only_entity := only_entity, only_entities := only_entities,
                            only_metrics := {reads_sql})
),
own AS (
    SELECT * FROM f WHERE ms_formula_metric(metric) AND (only_metric IS NULL OR metric = only_metric)
),
c AS (
    {placed}
)
SELECT * FROM own
UNION ALL BY NAME
SELECT c.* FROM c
WHERE c.value IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM own r
    WHERE r.entity = c.entity AND r.metric = c.metric AND r.segment = c.segment AND r.dims = c.dims
      AND r.period = c.period)""", CALENDAR.replace("__BODY__", calendar)], skipped


#: ``formula_calendar_at`` (queries/sql/75_calendar.sql): each formula evaluated on the calendar
#: periods of its inputs, so that a calendar year's margin is the year's gross profit over the
#: year's revenue, not a sum of quarterly ratios. Calendar rows have no fiscal calendar of their
#: own: k (quarters since year 0, or the year) stands for ord, the calendar year for fy.
CALENDAR = """CREATE OR REPLACE MACRO formula_calendar_at(target, as_of, as_recorded, only_entity := NULL,
                                            only_metric := NULL) AS TABLE
WITH f AS (
    SELECT *, 12 AS fye, CASE ptype WHEN 'Q' THEN 3 ELSE 12 END AS months, k AS ord, cy AS fy,
           NULL::TIMESTAMPTZ AS recorded_at, NULL::VARCHAR AS as_reported
    FROM calendar_rows_at(target, as_of, as_recorded, only_entity := only_entity)
    WHERE NOT ms_formula_metric(metric)
)
__BODY__"""


def install(con: duckdb.DuckDBPyConnection, store: Store) -> list[tuple[str, str]]:
    """Replace ``formula_facts_at`` on ``con`` with the store's formula definitions compiled to SQL
    (nothing to do for a store without any); returns the versions left out, with their reason."""
    log = metric_log(store)
    defs = definitions(log)
    if not defs:
        return []
    agg = aggregations(log)
    statements, skipped = compile_all(defs, agg)
    try:
        _run(con, statements)
    except duckdb.Error:
        # one definition DuckDB cannot bind must not take every view down: keep those that bind
        kept: list[Definition] = []
        for d in defs:
            try:
                _run(con, compile_all([*kept, d], agg)[0])
                kept.append(d)
            except duckdb.Error as exc:
                skipped.append((d.metric, str(exc).splitlines()[0]))
        _run(con, compile_all(kept, agg)[0])
    return skipped


def _run(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    for sql in statements:
        con.execute(sql)
