"""What makes a metric event valid: the one place its rules live.

Every path that accepts events calls these: :meth:`Store.append` (through ``store.prepare``) over
whole Arrow columns or one row's Python values, the pydantic :class:`~store.schema.MetricEvent`,
and the canonical reader of ``ingest`` (through :func:`polars_checks`, which flags each bad row
of a file instead of refusing the whole batch). Each rule is one :class:`Rule`; an engine for
each representation applies all of them, and a test holds the engines equal.

The rules (on the stored columns, after defaults are filled):

- ``op``, ``kind``, ``qualifier`` and ``authority`` take one of their allowed values;
- ``period_end`` is not before ``period_start``;
- an assert has a value (a retraction need not);
- ``value`` and ``value_high`` are finite numbers (no NaN, no infinity);
- a range (``qualifier = 'range'``) has a ``value_high``;
- an entity is a name (:data:`NAME`: lower-case ASCII); a metric too, or a qualified name
  (:data:`QUALIFIED_NAME`); a segment has no capital letter A-Z. Readers look names up
  lower-cased: a name stored otherwise could never be found.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from store.errors import SchemaMismatch, clip

if TYPE_CHECKING:
    import polars as pl


class Op(StrEnum):
    ASSERT = "assert"
    RETRACT = "retract"


class Kind(StrEnum):
    ACTUAL = "actual"
    GUIDANCE = "guidance"
    TARGET = "target"
    ESTIMATE = "estimate"


class Qualifier(StrEnum):
    EXACT = "exact"
    APPROX = "approx"
    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    RANGE = "range"


class Authority(StrEnum):
    """How far a source can be trusted: the company's own word outranks a secondary report."""

    PRIMARY = "primary"
    SECONDARY = "secondary"


#: The value a column takes when a batch leaves it out (or gives NULL).
DEFAULTS: dict[str, str] = {
    "op": Op.ASSERT.value,
    "segment": "total",
    "dims": "",
    "kind": Kind.ACTUAL.value,
    "qualifier": Qualifier.EXACT.value,
    "authority": Authority.PRIMARY.value,
}

ENUMS: dict[str, tuple[str, ...]] = {
    "op": tuple(o.value for o in Op),
    "kind": tuple(k.value for k in Kind),
    "qualifier": tuple(q.value for q in Qualifier),
    "authority": tuple(a.value for a in Authority),
}


#: An entity or metric name. Names are ASCII: they are typed on the command line and in SQL, and a
#: letter that looks like another (Cyrillic a, Latin a) would make two entities that read the
#: same. Display names, segments, dims and sources may be any text (NFC).
NAME = r"^[a-z0-9][a-z0-9_.:\-]*$"
NAME_RULE = "is not a valid name (ASCII letters a-z, digits and _ . : -, starting with a letter or digit)"
#: A namespaced metric name (an XBRL concept such as ``us-gaap:SalesRevenueNet``): it keeps its
#: case where every other entity, metric and segment name is lower-cased.
QUALIFIED_NAME = r"^[a-z][a-z0-9\-]*:[A-Za-z_][A-Za-z0-9_.\-]*$"
#: A metric's name: a name or a qualified name.
METRIC_NAME = f"{NAME}|{QUALIFIED_NAME}"
#: A capital in a segment (ASCII: every engine lower-cases it alike).
CAPITAL = "[A-Z]"
LOWER_CASE = "has capital letters (names are stored and looked up lower-cased)"


class Rule(NamedTuple):
    """One rule: the column a violation is reported on, and why."""

    column: str
    reason: str


PERIOD_ORDER = Rule("period_end", "ends before period_start")
ASSERT_VALUE = Rule("value", "an assert needs a value")
RANGE_HIGH = Rule("value_high", "a range needs value_high")
FINITE = "NaN and infinity are not values"


def enum_rule(column: str, value: object) -> Rule:
    return Rule(column, f"{_shown(value)} is not one of {', '.join(ENUMS[column])}")


def name_rule(column: str, value: str) -> Rule:
    """``value`` is no name a reader would find: a segment has capitals, else it is no name."""
    return Rule(column, f"{_shown(value)} {LOWER_CASE if column == 'segment' else NAME_RULE}")


def _shown(value: object) -> str:
    return repr(clip(value) if isinstance(value, str) else value)


def row_violation(row: Mapping[str, Any]) -> Rule | None:
    """The first rule one event breaks, its columns given as Python values with defaults filled
    (dates as :class:`datetime.date`), or None."""
    if not re.match(NAME, row["entity"]):
        return name_rule("entity", row["entity"])
    if not re.match(METRIC_NAME, row["metric"]):
        return name_rule("metric", row["metric"])
    if re.search(CAPITAL, row["segment"]):
        return name_rule("segment", row["segment"])
    for name, allowed in ENUMS.items():
        if row[name] not in allowed:
            return enum_rule(name, row[name])
    if row["period_end"] < row["period_start"]:
        return PERIOD_ORDER
    if row["value"] is None and row["op"] == Op.ASSERT:
        return ASSERT_VALUE
    for name in ("value", "value_high"):
        v = row[name]
        if v is not None and not math.isfinite(v):
            return Rule(name, FINITE)
    if row["qualifier"] == Qualifier.RANGE and row["value_high"] is None:
        return RANGE_HIGH
    return None


def check_columns(arrays: Mapping[str, pa.Array], given: Mapping[str, object],
                  rows: Sequence[int] | np.ndarray | None = None) -> None:
    """Refuse a batch (:class:`SchemaMismatch`: the first rule broken, and a row breaking it)
    whose columns, defaults filled, break a rule. ``given``: the columns the caller gave (a
    default is allowed by construction: its enum is not looked at); ``rows``: the caller's row
    of each position, when the columns were reordered."""
    try:
        _check_columns(arrays, given)
    except SchemaMismatch as exc:
        if rows is None or exc.row is None:
            raise
        raise SchemaMismatch(exc.column, exc.reason, row=int(rows[exc.row])) from None


def check_names(arrays: Mapping[str, pa.Array]) -> None:
    """Refuse a batch of any log whose ``entity``, ``metric`` or ``segment`` column (those it
    has) holds a name no reader would find (:class:`SchemaMismatch`, naming a row)."""
    for name, fails in (("entity", _unlike(NAME)), ("metric", _unlike(METRIC_NAME)), ("segment", _like(CAPITAL))):
        if name in arrays:
            _refuse_value(arrays[name], fails, name_rule, name)


def _check_columns(arrays: Mapping[str, pa.Array], given: Mapping[str, object]) -> None:
    check_names(arrays)
    for name, allowed in ENUMS.items():
        if name in given:
            _refuse_value(arrays[name], _outside(allowed), enum_rule, name)
    _refuse_rows(pc.less(arrays["period_end"], arrays["period_start"]), PERIOD_ORDER)
    if arrays["value"].null_count:    # (else no assert lacks one: op, often encoded, is not read)
        _refuse_rows(pc.and_(pc.equal(arrays["op"], Op.ASSERT.value), pc.is_null(arrays["value"])), ASSERT_VALUE)
    for name in ("value", "value_high"):
        col = arrays[name]
        if col.null_count < len(col) and pa.types.is_floating(col.type):
            _refuse_rows(pc.invert(pc.is_finite(col)), Rule(name, FINITE))
    high = arrays["value_high"]
    if high.null_count and "qualifier" in given:   # (a default qualifier is exact: no range)
        _refuse_rows(pc.and_(pc.equal(arrays["qualifier"], Qualifier.RANGE.value), pc.is_null(high)), RANGE_HIGH)


def _refuse_value(col: pa.Array, fails: Callable[[pa.Array], pa.Array],
                  rule: Callable[[str, Any], Rule], name: str) -> None:
    """Refuse a column one of whose values ``fails``, tested once per distinct value (a column
    encoded by prepare uses every entry of its dictionary)."""
    encoded = pa.types.is_dictionary(col.type)
    distinct = col.dictionary if encoded else pc.unique(col)
    bad = fails(distinct)
    if not pc.any(bad).as_py():
        return
    value = pc.filter(distinct, bad)[0]
    row = pc.index(col.indices, pc.index(distinct, value)) if encoded else pc.index(col, value)
    raise SchemaMismatch(*rule(name, value.as_py()), row=row.as_py())


def _like(pattern: str) -> Callable[[pa.Array], pa.Array]:
    return lambda values: pc.match_substring_regex(values, pattern)


def _unlike(pattern: str) -> Callable[[pa.Array], pa.Array]:
    return lambda values: pc.invert(pc.match_substring_regex(values, pattern))


def _outside(allowed: Sequence[str]) -> Callable[[pa.Array], pa.Array]:
    return lambda values: pc.invert(pc.is_in(values, value_set=pa.array(allowed)))


def _refuse_rows(broken: pa.Array, rule: Rule) -> None:
    """Refuse a batch in some row of which ``broken`` holds."""
    if pc.any(broken).as_py():
        raise SchemaMismatch(rule.column, rule.reason, row=pc.index(broken, True).as_py())


def polars_checks(col: Mapping[str, str],
                  each: Callable[[str, pl.Expr], pl.Expr] | None = None) -> list[tuple[pl.Expr, str, str]]:
    """The rules as row masks of a polars frame, for a reader that reports each bad row: (mask of
    the rows breaking it, column, reason). ``col`` names the frame's column holding each stored
    column (``period_start``, ``period_end``, ``value_high``, ``qualifier``; the names and enums by
    their own names). ``each(column, test)`` works out a test of one name column alone (a reader
    may do it once per distinct value); row by row without it. Number parsing and required cells
    are the reader's own checks."""
    import polars as pl

    def test(c: str, fails: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
        name = col.get(c, c)
        return pl.col(name).is_not_null() & (each(name, fails(pl.col(name))) if each else fails(pl.col(name)))

    out: list[tuple[pl.Expr, str, str]] = [
        (test("entity", lambda e: ~e.str.contains(NAME)), "entity", NAME_RULE),
        (test("metric", lambda m: ~m.str.contains(METRIC_NAME)), "metric", NAME_RULE),
        (test("segment", lambda s: s.str.contains(CAPITAL)), "segment", LOWER_CASE),
    ]
    for name, allowed in ENUMS.items():
        c = pl.col(col.get(name, name))
        out.append((c.is_not_null() & ~c.is_in(allowed), name, f"is not one of {', '.join(allowed)}"))
    out.append((pl.col(col["period_end"]) < pl.col(col["period_start"]), *PERIOD_ORDER))
    out.append(((pl.col(col.get("qualifier", "qualifier")) == Qualifier.RANGE.value)
                & pl.col(col["value_high"]).is_null(), *RANGE_HIGH))
    return out
