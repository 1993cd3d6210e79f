"""Why an answer is empty, in words: the entity, metric or segment asked for has no figures, and
the nearest names the store has."""

from __future__ import annotations

import difflib

from queries import BadArgument, MetricStore
from queries.args import stored_key


def missing(ms: MetricStore, entity: str, metric: str | None = None, segment: str = "total") -> str | None:
    """A line naming the first of ``entity``, ``metric`` (for that entity; when given) and
    ``segment`` (of that metric) the store has no event of, with the nearest names it has; None
    when it has them all (the answer is empty for another reason: a date, a frequency) or
    ``metric`` is a formula."""
    entity, segment = stored_key("entity", entity), stored_key("segment", segment)
    entities = ms.sql("SELECT DISTINCT entity FROM events ORDER BY entity")["entity"].to_list()
    if entity not in entities:
        return f"entity={entity!r}: is not in the store{near(entity, entities, 'entities')}"
    if metric is None:
        return None
    metric = stored_key("metric", metric)
    formulas = ms.sql("SELECT metric FROM formulas")["metric"].to_list()
    if metric in formulas:
        return None
    held = ms.sql("SELECT DISTINCT metric, segment FROM events WHERE entity = ? ORDER BY ALL", [entity])
    metrics = sorted(set(held["metric"].to_list()) | set(formulas))
    if metric not in metrics:
        return f"metric={metric!r}: has no {entity} figures{near(metric, metrics, 'metrics')}"
    segments = held.filter(held["metric"] == metric)["segment"].to_list()
    if segment not in segments:
        return f"segment={segment!r}: has no {entity} {metric} figures (segments: {few(segments)})"
    return None


def noted(exc: BadArgument, why: str | None) -> BadArgument:
    """``exc`` with ``why`` (a :func:`missing` note) after its reason; itself without one."""
    return BadArgument(exc.name, exc.value, f"{exc.reason}; {why}") if why else exc


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
