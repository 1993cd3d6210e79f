"""A correction or a retraction must name an event of its own fact.

An event's ``supersedes`` withdraws the event it names (``queries/sql/20_facts.sql``). A typo in
the id would withdraw nothing, and the id of another fact would silently withdraw that one; so
the named event must be known (in the store, or in the same batch) and share the row's fact key:
entity, metric, segment, dims, period (its label on the entity's fiscal calendar), kind, unit.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa

from ingest.errors import RowProblem
from store import Store, label_period

#: The fact key, as the current view partitions events (the period by its label).
FACT_KEY = ("entity", "metric", "segment", "dims", "period", "kind", "unit")
_READ = ("event_id", "entity", "metric", "segment", "dims", "period_start", "period_end", "kind", "unit")


def _labelled(df: pl.DataFrame, fye: dict[str, int]) -> pl.DataFrame:
    spans = df.select("entity", "period_start", "period_end").unique()
    labels = [label_period(s, e, fye.get(n, 12)) for n, s, e in spans.iter_rows()]
    return df.join(spans.with_columns(pl.Series("period", labels, pl.String)),
                   on=["entity", "period_start", "period_end"], how="left")


#: Most entities (and metrics) a look-up is narrowed to; more read every row group's ids.
NARROW_MAX = 200


def stored_events(store: Store, ids: list[str], entities: list[str] | None = None,
                  metrics: list[str] | None = None) -> pl.DataFrame:
    """The fact key of each of ``ids`` the store holds (read only, straight from its event files).

    ``entities`` and ``metrics`` narrow the search: event files are sorted by them, so DuckDB
    skips every row group whose statistics rule them out (a speed-up for large stores)."""
    empty = pl.DataFrame(schema={"event_id": pl.String, "entity": pl.String, "metric": pl.String,
                                 "segment": pl.String, "dims": pl.String, "period_start": pl.Date,
                                 "period_end": pl.Date, "kind": pl.String, "unit": pl.String})
    if not ids:
        return empty
    con = store.duckdb().cursor()     # the store's connection: its object-store access, its cached footers
    try:
        con.register("wanted", pa.table({"event_id": ids}))
        where, params = "", [store.glob("events")]
        if entities and metrics and len(entities) <= NARROW_MAX and len(metrics) <= NARROW_MAX:
            where = (f"WHERE e.entity IN ({', '.join('?' * len(entities))}) "
                     f"AND e.metric IN ({', '.join('?' * len(metrics))})")
            params += [*entities, *metrics]
        got = con.sql(f"SELECT DISTINCT {', '.join('e.' + c for c in _READ)} "
                      f"FROM read_parquet(?, union_by_name = true) e JOIN wanted USING (event_id) {where}",
                      params=params).to_arrow_table()
    except duckdb.IOException:       # a store with no event file yet
        return empty
    finally:
        con.close()
    return pl.DataFrame(pl.from_arrow(got)).cast(empty.schema) if got.num_rows else empty


def check_supersedes(store: Store, events: pl.DataFrame, fye: dict[str, int], file: str) -> list[RowProblem]:
    """Problems of the rows of ``events`` (the batch, with ``__row``) whose ``supersedes`` names
    no known event, or an event of another fact."""
    named = events.filter(pl.col("supersedes").is_not_null())
    if named.height == 0:
        return []
    ids = named["supersedes"].unique().to_list()
    # the store's events of the rows' entities and metrics, then the batch's own (with the ids the
    # store will give them), then, for an id still unknown, the whole store (to say whose it is)
    known = stored_events(store, ids, named["entity"].unique().to_list(), named["metric"].unique().to_list())
    missing = set(ids) - set(known["event_id"].to_list())
    if missing:
        prepared = pl.DataFrame(pl.from_arrow(store.prepare(events.drop("__row").to_arrow(), encode=False)
                                              .select(list(_READ))))
        mine = prepared.filter(pl.col("event_id").is_in(list(missing)))
        known = pl.concat([known, mine.cast(known.schema)]).unique("event_id")
        missing -= set(mine["event_id"].to_list())
    if missing:
        known = pl.concat([known, stored_events(store, sorted(missing))]).unique("event_id")
    rows = _labelled(named.select("__row", "supersedes", *_READ[1:]), fye)
    targets = _labelled(known, fye).rename({c: f"t_{c}" for c in FACT_KEY})
    joined = rows.join(targets, left_on="supersedes", right_on="event_id", how="left")
    problems = []
    for r in joined.sort("__row").iter_rows(named=True):
        if r["t_entity"] is None:
            why = "names no event of this store or of this file (a correction or retraction must name the event it replaces)"
        else:
            differ = [c for c in FACT_KEY if r[c] != r[f"t_{c}"]]
            if not differ:
                continue
            theirs = " ".join(str(r[f"t_{c}"]) for c in ("entity", "metric", "segment", "period", "kind", "unit"))
            why = (f"names an event of another fact ({theirs}; {', '.join(differ)} differ): "
                   "a correction or retraction must name an event of its own fact")
        problems.append(RowProblem(file, int(r["__row"]), "supersedes", r["supersedes"], why))
    return problems
