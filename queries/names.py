"""Which name a question names that the store has none of: the entity, the metric (for that
entity) or the segment (of that metric), with the nearest names it has. The library raises it as
the argument at fault (a fact or a comparison that cannot be answered); the CLI adds it as a note
under an empty series or list."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import polars as pl

from queries.args import stored_key
from queries.errors import BadArgument


def missing(sql: Callable[..., pl.DataFrame], entity: str, metric: str | None = None, segment: str = "total") -> BadArgument | None:
    """The first of ``entity``, ``metric`` (for that entity; when given) and ``segment`` (of that
    metric) the store has no event of, as the argument at fault with the nearest names it has;
    None when it has them all (an answer is empty for another reason: a date, a frequency, a
    period) or ``metric`` is a formula. ``sql``: :meth:`queries.MetricStore.sql`."""
    entity, segment = stored_key("entity", entity), stored_key("segment", segment)
    entities = sql("SELECT DISTINCT entity FROM events ORDER BY entity")["entity"].to_list()
    if entity not in entities:
        return BadArgument("entity", entity, f"is not in the store{near(entity, entities, 'entities')}")
    if metric is None:
        return None
    metric = stored_key("metric", metric)
    formulas = sql("SELECT metric FROM formulas")["metric"].to_list()
    if metric in formulas:
        return None
    held = sql("SELECT DISTINCT metric, segment FROM events WHERE entity = ? ORDER BY ALL", [entity])
    metrics = sorted(set(held["metric"].to_list()) | set(formulas))
    if metric not in metrics:
        return BadArgument("metric", metric, f"has no {entity} figures{near(metric, metrics, 'metrics')}")
    segments = held.filter(held["metric"] == metric)["segment"].to_list()
    if segment not in segments:
        return BadArgument("segment", segment, f"has no {entity} {metric} figures (segments: {few(segments)})")
    return None


def near(name: str, known: list[str], what: str) -> str:
    """`` (did you mean ...?)`` with the names of ``known`` closest to ``name``, else a few of
    them (``what``: what they are); empty when there are none."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return f" (did you mean {', '.join(close)}?)"
    return f" ({what}: {few(known)})" if known else ""


def few(names: list[str], n: int = 8) -> str:
    """The first ``n`` of ``names``, and how many more."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
