"""The change feed for the Python helper and the command line: the ``changes`` view
(``queries/sql/60_changes.sql``) narrowed to a time, a run, an entity and kinds of change.

Each function takes the ``sql`` runner of a session (``MetricStore.sql``), which exposes it as
:meth:`queries.MetricStore.changes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from queries.args import stored_key
from queries.errors import BadArgument
from queries.lineage import Sql

#: The kinds of change the feed reports (the ``change_kind`` column).
KINDS = ("new", "restated", "revised", "retracted", "approx_to_exact", "split_adjusted")

ORDER = "recorded_at, run_id, entity, metric, segment, dims, period_end, period, kind, unit"


def kinds_of(kind: str | Sequence[str] | None) -> list[str]:
    """``"restated,retracted"`` or a list of kinds, checked against :data:`KINDS`."""
    if kind is None:
        return []
    wanted = [k.strip() for k in (kind.split(",") if isinstance(kind, str) else kind) if k.strip()]
    for k in wanted:
        if k not in KINDS:
            raise BadArgument("kind", k, f"is not a kind of change ({', '.join(KINDS)})")
    return wanted


def since_time(sql: Sql, since: str | dt.date) -> dt.datetime:
    """Where a feed starts: a date (its first moment, UTC), a timestamp, or a run id (when that run
    started, from the run log, else its first event's recording)."""
    if isinstance(since, dt.datetime):
        return since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    if isinstance(since, dt.date):
        return dt.datetime.combine(since, dt.time.min, dt.UTC)
    text = since.strip()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    found = sql("SELECT coalesce((SELECT min(started) FROM ingest_runs WHERE run_id = ?), "
                "(SELECT min(recorded_at) FROM events WHERE coalesce(run_id, commit_id) = ?)) AS t", [text, text])
    start: dt.datetime | None = found["t"][0]
    if start is None:
        raise BadArgument("since", since, "is neither a date (YYYY-MM-DD) nor a run of this store "
                                          "(`metricstore jobs runs` lists the runs)")
    return start if start.tzinfo else start.replace(tzinfo=dt.UTC)


def changes(sql: Sql, *, since: str | dt.date | None = None, run: str | None = None, entity: str | None = None,
            kind: str | Sequence[str] | None = None, as_recorded: dt.date | dt.datetime | str | None = None
            ) -> pl.DataFrame:
    """The changes ingest runs made to the current answers, oldest first.

    Args:
        since: a date (changes recorded on or after it), or a run id (that run and the later ones).
        run: only this run's changes.
        entity: only this entity's.
        kind: only these kinds (:data:`KINDS`; a list, or names separated by commas).
        as_recorded: the feed as the store knew it then.

    Example:
        >>> changes(ms.sql, entity="aapl", kind="restated")["summary"][0]        # doctest: +SKIP
        'aapl revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) by 0001193125-10-012091 10-K/A, filed 2010-01-25'
    """
    wanted = kinds_of(kind)
    where: list[str] = ["true"]
    params: list[Any] = [run, stored_key("entity", entity) if entity else None]
    if since is not None:
        where.append("recorded_at >= ?")
        params.append(since_time(sql, since))
    if wanted:
        where.append("list_contains(?, change_kind)")
        params.append(wanted)
    query = (f"SELECT * FROM changes_at(getvariable('as_recorded'), only_run := ?, only_entity := ?) "
                  f"WHERE {' AND '.join(where)} ORDER BY {ORDER}")
    return sql(query, params, as_recorded=as_recorded)
