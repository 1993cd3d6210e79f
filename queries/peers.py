"""Peers side by side: one metric of several entities, one row per period, one column per entity.

``metricstore compare revenue xiaomi aapl nvda --currency USD --calendar --freq FY`` puts each
entity's figure (in one currency, on calendar periods) and its YoY growth in a row per period.
Without ``calendar`` the rows are fiscal labels, which name different months for entities whose
fiscal years end in different months (the command's title says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from queries.args import DateLike, key_text, stored_key
from queries.errors import BadArgument
from queries.names import missing

Sql = Callable[..., pl.DataFrame]


def compare(sql: Sql, metric: str, entities: Sequence[str], *, segment: str = "total", dims: str = "",
            freq: str = "FY", currency: str | None = None, calendar: bool = False,
            as_of: DateLike | None = None, as_recorded: DateLike | None = None) -> pl.DataFrame:
    """``metric`` of each of ``entities`` side by side: ``period``, one value column per entity,
    ``<entity>_yoy`` (the YoY growth, a fraction) and ``unit`` (every unit the row holds).

    Raises:
        BadArgument: no entity, an entity named twice, a frequency other than FY or Q, or an
            entity the store holds no figure of ``metric`` for.
    """
    names = [stored_key("entity", e) for e in entities]
    if not names:
        raise BadArgument("entities", "", "name at least one entity")
    if len(set(names)) != len(names):
        raise BadArgument("entities", " ".join(entities), "names an entity twice")
    key = freq.upper()
    if key not in ("FY", "Q"):
        raise BadArgument("freq", freq, "is FY or Q for a comparison")
    marks = ", ".join("?" for _ in names)
    # with a currency or calendar periods, the session's growth is already converted (queries.fx.convert_session)
    long = sql("SELECT entity, period, value, unit, yoy_pct FROM growth "
               f"WHERE metric = ? AND segment = ? AND dims = ? AND ptype = ? AND entity IN ({marks}) "
               "ORDER BY period_end, entity",
               [stored_key("metric", metric), stored_key("segment", segment), key_text(dims), key, *names],
               as_of=as_of, as_recorded=as_recorded, currency=currency, calendar=calendar)
    absent = [n for n in names if n not in set(long["entity"].to_list())]
    for name in absent:         # a name the store has none of is the argument at fault
        unknown = missing(sql, name, metric, segment)
        if unknown is not None:
            raise unknown
    if absent:
        raise BadArgument("entities", ", ".join(absent),
                          f"the store holds no {key} figure of {metric!r} ({segment}) for it")
    return _wide(long, names)


def _wide(long: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """One row per period (in the order they first end), the entities' values and YoY beside."""
    # a period none of the entities has a value for (a calendar year missing a quarter everywhere) is left out
    periods = list(dict.fromkeys(r["period"] for r in long.iter_rows(named=True) if r["value"] is not None))
    rows: dict[str, dict[str, Any]] = {p: {"period": p} for p in periods}
    units: dict[str, set[str]] = {p: set() for p in periods}
    for r in long.iter_rows(named=True):
        if r["period"] not in rows:
            continue
        rows[r["period"]][r["entity"]] = r["value"]
        rows[r["period"]][f"{r['entity']}_yoy"] = r["yoy_pct"]
        if r["unit"] is not None:
            units[r["period"]].add(r["unit"])
    schema: dict[str, Any] = {"period": pl.String}
    schema.update({n: pl.Float64 for n in names})
    schema.update({f"{n}_yoy": pl.Float64 for n in names})
    schema["unit"] = pl.String
    for p in periods:
        rows[p]["unit"] = ", ".join(sorted(units[p]))
    return pl.DataFrame([rows[p] for p in periods], schema=schema)
