"""Formula metrics: a metric defined by an expression over other metrics, computed on demand.

``ev_loss_per_vehicle = -adjusted_net_income[segment=smart_ev_innovative] / deliveries[segment=smart_ev]``

- The expression is parsed by a grammar (lark), never evaluated as Python: metric names (a name with
  other characters in backquotes, `us-gaap:Revenues`), numbers, ``+ - * /``, parentheses, ``abs()``
  and selectors that fix the segment or dimensions of an input (``deliveries[segment=smart_ev]``,
  ``shipments[product=tv]``). An input without a selector matches across segments and dimensions.
- A definition is a record of the store's ``metrics`` log (:func:`define_metric`), so it has a
  recorded time: ``as_recorded`` uses the definition of that time.
- ``queries.formula_sql.install`` compiles every definition to SQL (``formula_facts_at`` in
  ``queries/sql/25_formulas.sql``): a value per entity and period wherever every input has one
  (a stock input at the period's end), never a missing input taken as zero; a division by zero is
  NULL with the reason; units follow from the inputs; approx when an input is; ``reported_at`` the
  latest of the inputs'; marked derived with the event ids it came from; with a rounding tolerance
  propagated from the inputs' last digits (the ``formula`` check of ``checks``); and
  ``formula_placed_at`` in ``queries/sql/30_growth.sql``, the same over the rows growth places
  (derived quarters included), for ``growth``, ``series`` and their YoY, QoQ and TTM as the
  definition's aggregation allows.
- A formula may use another formula metric: it is expanded in place; a cycle is refused.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from lark import Lark, Token, Transformer, UnexpectedInput

from queries.errors import BadArgument
from store import Store

AGGREGATIONS = ("flow", "per_share", "stock", "ratio")
NAME = re.compile(r"[a-z][a-z0-9_]*")

GRAMMAR = r"""
?start: sum
?sum: product
    | sum "+" product   -> add
    | sum "-" product   -> sub
?product: unary
    | product "*" unary -> mul
    | product "/" unary -> div
?unary: atom
    | "-" unary         -> neg
    | "+" unary
?atom: NUMBER           -> number
    | "abs" "(" sum ")" -> abs
    | ref
    | "(" sum ")"
ref: (NAME | QUOTED) selector?
selector: "[" pair ("," pair)* "]"
pair: NAME "=" VALUE
NAME: /[A-Za-z_][A-Za-z0-9_]*/
QUOTED: /`[^`]+`/
VALUE: /[A-Za-z0-9_.:\-]+/
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/
%import common.WS
%ignore WS
"""


@dataclass(frozen=True)
class Ref:
    """An input: a metric, with the segment and dims its selector fixes (None: matches any)."""

    metric: str
    segment: str | None = None
    dims: str | None = None

    def text(self) -> str:
        name = self.metric if NAME.fullmatch(self.metric) else f"`{self.metric}`"
        fixed = ([f"segment={self.segment}"] if self.segment is not None else []) + (
            self.dims.split(";") if self.dims else [])
        return name + (f"[{','.join(fixed)}]" if fixed else "")


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Op:
    op: str                 # + - * / neg abs
    args: tuple[Node, ...]


Node = Ref | Num | Op


def _op(op: str) -> Callable[[Any, list[Node]], Node]:
    """The transformer method of an operator rule."""
    def build(self: Any, items: list[Node]) -> Node:
        return Op(op, tuple(items))
    return build


class _Tree(Transformer[Token, Node]):
    def number(self, items: list[Token]) -> Node:
        return Num(float(items[0]))

    def ref(self, items: list[Any]) -> Node:
        name = str(items[0])
        metric = name[1:-1] if name.startswith("`") else name
        pairs: dict[str, str] = dict(items[1]) if len(items) > 1 else {}
        segment = pairs.pop("segment", None)
        dims = pairs.pop("dims", None)
        if pairs:
            dims = ";".join(f"{k}={v}" for k, v in sorted(pairs.items()))
        return Ref(metric, segment, dims)

    def selector(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise BadArgument("formula", ",".join(keys), "a selector names a key twice")
        return items

    def pair(self, items: list[Token]) -> tuple[str, str]:
        return str(items[0]).lower(), str(items[1]).lower()

    # the grammar's operator rules, each an Op over its operands
    add = _op("+")
    sub = _op("-")
    mul = _op("*")
    div = _op("/")
    neg = _op("neg")
    abs = _op("abs")


_PARSER = Lark(GRAMMAR, parser="lalr")


def parse(formula: str) -> Node:
    """The expression tree of ``formula``.

    Raises:
        BadArgument: a syntax error, with the column it is at and what was expected.

    Example:
        >>> parse("gross_profit / revenue")
        Op(op='/', args=(Ref(metric='gross_profit', segment=None, dims=None), Ref(metric='revenue', segment=None, dims=None)))
    """
    try:
        return _Tree().transform(_PARSER.parse(formula))
    except UnexpectedInput as exc:
        col = getattr(exc, "column", "?")
        near = formula[max(0, exc.pos_in_stream or 0):][:12] if getattr(exc, "pos_in_stream", None) is not None else ""
        what = f" near {near!r}" if near else " at the end"
        raise BadArgument("formula", formula, f"syntax error at column {col}{what}") from None


def refs(node: Node) -> list[Ref]:
    """The inputs of an expression, each once, in the order they appear."""
    out: list[Ref] = []

    def walk(n: Node) -> None:
        if isinstance(n, Ref):
            if n not in out:
                out.append(n)
        elif isinstance(n, Op):
            for a in n.args:
                walk(a)
    walk(node)
    return out


def text(node: Node) -> str:
    """The expression written back, fully parenthesised where it matters."""
    if isinstance(node, Ref):
        return node.text()
    if isinstance(node, Num):
        return f"{node.value:g}"
    if node.op == "neg":
        return f"-{_wrap(node.args[0])}"
    if node.op == "abs":
        return f"abs({text(node.args[0])})"
    return f"{_wrap(node.args[0])} {node.op} {_wrap(node.args[1])}"


def _wrap(node: Node) -> str:
    return f"({text(node)})" if isinstance(node, Op) and node.op in "+-*/" else text(node)


@dataclass(frozen=True)
class Definition:
    """One version of a formula metric's definition, as the metrics log holds it."""

    metric: str
    formula: str
    aggregation: str
    unit: str | None
    description: str | None
    recorded_at: Any              # the log's timestamp (system time)
    until: Any = None             # the next version's recorded_at (None: current)


Log = list[dict[str, Any]]


def metric_log(store: Store) -> Log:
    """The store's ``metrics`` log, oldest first: what :func:`definitions` and :func:`aggregations` read."""
    table: pa.Table = store.read("metrics")
    rows: Log = table.to_pylist()
    return sorted(rows, key=lambda r: (r["recorded_at"], r["record_id"]))


def definitions(log: Log) -> list[Definition]:
    """Every version of every formula metric in ``log`` (:func:`metric_log`), oldest first; a stored
    (formula-less) record after a formula ends the formula (the metric is a stored one again)."""
    out: list[Definition] = []
    open_: dict[str, int] = {}
    for r in log:
        m = r["metric"]
        if m in open_:
            i = open_.pop(m)
            old = out[i]
            out[i] = Definition(old.metric, old.formula, old.aggregation, old.unit, old.description,
                                old.recorded_at, r["recorded_at"])
        if r.get("formula"):
            open_[m] = len(out)
            out.append(Definition(m, r["formula"], r["aggregation"], r.get("unit"), r.get("description"),
                                  r["recorded_at"]))
    return out


def expand(metric: str, formulas: dict[str, str], trail: tuple[str, ...] = ()) -> Node:
    """The expression of ``metric`` with every formula metric it uses written out in place.

    Raises:
        BadArgument: a cycle (a formula that uses itself, directly or through others).
    """
    if metric in trail:
        path = " -> ".join((*trail[trail.index(metric):], metric))
        raise BadArgument("formula", formulas[trail[0]], f"is a cycle: {path}")

    def sub(node: Node) -> Node:
        if isinstance(node, Ref) and node.metric in formulas:
            inner = expand(node.metric, formulas, (*trail, metric))
            if node.segment is None and node.dims is None:
                return inner
            return _fix(inner, node.segment, node.dims)
        if isinstance(node, Op):
            return Op(node.op, tuple(sub(a) for a in node.args))
        return node
    return sub(parse(formulas[metric]))


def _fix(node: Node, segment: str | None, dims: str | None) -> Node:
    """A selector on a formula metric passes to its free inputs."""
    if isinstance(node, Ref):
        return Ref(node.metric, node.segment if node.segment is not None else segment,
                   node.dims if node.dims is not None else dims)
    if isinstance(node, Op):
        return Op(node.op, tuple(_fix(a, segment, dims) for a in node.args))
    return node


def _distinct(store: Store, column: str) -> list[Any]:
    """The distinct values of one of the events' columns (a name of ours, not a user's)."""
    if not store.files("events"):
        return []
    con = store.duckdb().cursor()
    try:
        rows = con.sql(f"SELECT DISTINCT {column} FROM read_parquet(?, union_by_name = true)",
                       params=[store.glob("events")]).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _currencies(store: Store) -> set[str]:
    return {part for u in _distinct(store, "unit") for part in str(u).split("/") if re.fullmatch(r"[A-Z]{3}", part)}


BASE_UNITS = frozenset({"ratio", "units", "unit", "shares", "share", "employees", "weeks", "days", "months",
                        "years", "sqft", "m2", "MWh", "GWh", "MW", "GW", "kWh"})


def check_unit(store: Store, unit: str) -> str:
    """A declared unit in the store's base form (``CNY/unit``): each part a base unit or a currency
    the store holds figures in.

    Raises:
        BadArgument: an unknown currency or unit.
    """
    parts = unit.strip().split("/")
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise BadArgument("unit", unit, "is not a unit (say CNY, ratio, units or CNY/unit)")
    held = _currencies(store)
    for p in parts:
        if p in BASE_UNITS:
            continue
        if re.fullmatch(r"[A-Z]{3}", p):
            if p not in held:
                raise BadArgument("unit", unit, f"unknown currency {p!r} (the store holds figures in "
                                                f"{', '.join(sorted(held)) or 'no currency'})")
            continue
        raise BadArgument("unit", unit, f"unknown unit {p!r} (a currency code or one of {', '.join(sorted(BASE_UNITS))})")
    singular = {"units": "unit", "shares": "share"}
    return parts[0] if len(parts) == 1 else f"{parts[0]}/{singular.get(parts[1], parts[1])}"


def validate(store: Store, metric: str, formula: str, log: Log) -> Node:
    """Parse ``formula`` for ``metric`` and check it against the store: every input a metric the
    store knows (its events or its metrics ``log``), and no cycle through other formula metrics.

    Raises:
        BadArgument: a syntax error, an unknown metric, a cycle.
    """
    if not NAME.fullmatch(metric):
        raise BadArgument("metric", metric, "is not a metric name (lower case letters, digits, _)")
    tree = parse(formula)
    known = set(_distinct(store, "metric")) | {r["metric"] for r in log}
    for r in refs(tree):
        if r.metric not in known and r.metric != metric:
            close = difflib.get_close_matches(r.metric, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise BadArgument("formula", formula, f"unknown metric {r.metric!r}{hint}")
    current = {d.metric: d.formula for d in definitions(log) if d.until is None}
    current[metric] = formula
    expand(metric, current)
    return tree


def _infer_aggregation(tree: Node) -> str:
    """A quotient is a ratio; otherwise a flow (``--aggregation`` says otherwise)."""
    if isinstance(tree, Op):
        return "ratio" if tree.op == "/" or any(_infer_aggregation(a) == "ratio" for a in tree.args) else "flow"
    return "flow"


def define_metric(store: Store, metric: str, formula: str, *, unit: str | None = None,
                  aggregation: str | None = None, description: str | None = None) -> bool:
    """Record a formula metric's definition in the store's ``metrics`` log (a redefinition is a new
    record: the old one stays, for ``as_recorded``).

    Returns:
        True when a record was written, False when the store's current definition is exactly this.

    Raises:
        BadArgument: a syntax error, an unknown metric, a cycle, an unknown currency or aggregation.
    """
    log = metric_log(store)
    tree = validate(store, metric, formula, log)
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise BadArgument("aggregation", aggregation, f"is not one of {', '.join(AGGREGATIONS)}")
    unit = check_unit(store, unit) if unit else None
    agg = aggregation or _infer_aggregation(tree)
    current = [d for d in definitions(log) if d.metric == metric and d.until is None]
    if current and (current[0].formula, current[0].unit, current[0].aggregation, current[0].description) == (
            formula, unit, agg, description):
        return False
    result = store.append(pa.table({
        "metric": [metric], "aggregation": [agg], "description": pa.array([description], pa.string()),
        "inferred": [False], "formula": [formula], "unit": pa.array([unit], pa.string()),
    }), table="metrics")
    return result.added > 0


def aggregations(log: Log) -> dict[str, str]:
    """metric -> aggregation of each metric's latest record in ``log`` (:func:`metric_log`)."""
    agg: dict[str, str] = {}
    for r in log:
        agg[r["metric"]] = r["aggregation"]
    return agg


def formulas_of(defs: Iterable[Definition], at: Any = None) -> dict[str, str]:
    """metric -> formula of the definitions valid at system time ``at`` (None: the current ones)."""
    return {d.metric: d.formula for d in defs
            if (d.until is None if at is None else d.recorded_at <= at and (d.until is None or at < d.until))}
