"""Spark's ``growth`` over the projections of a local store, as fresh as the one computed from the events.

:func:`queries.spark.register_views` registers ``growth`` computed from the events: at scale Spark
recomputes the whole view at the first query of a registration. Where a projection answers
(:mod:`queries.projections`: a local store, projections on), ``growth`` is
instead, as the Python helper's (with ``as_recorded`` too: the entities with anything recorded
after it are computed, :meth:`~queries.projections.Projections.recorded_after`):

- each layer's versions still valid (with ``as_of``: valid then) for the entities that layer
  holds and whose inputs did not change since the projection;
- ``growth_at`` computed for the changed entities (``only_entities := [...]``, a literal list);
- formula metrics' rows computed (``growth_at(..., stored := false, formulas := true)``), when the
  store defines any (projections hold none).

Freshness: the projection is taken (its files opened) before Spark lists the logs' files, the
changed entities are asked of a listing taken after. Every entity read from the projection then
has the same events in Spark's files as in the projection's, and every other is computed from
Spark's files: the view is the computed view over the files Spark listed. Past :data:`queries.projections.MAX_RECOMPUTED`
changed entities, or when the changes cannot be told, the whole view is computed
(:meth:`~queries.projections.Projections.usable_of`, as for any whole-view query).

The projected rows are cached lazily, like the translator's building blocks: the first query
reads the layer files. A later projection step deletes replaced ones once the compaction's grace
period is over, as a compaction deletes the log files Spark listed: query within it, or register
again to read the newer projection.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queries.formulas import definitions, metric_log
from queries.live import list_live
from queries.projections import COVERED, NOW_DAY, Projection, Projections
from queries.views import sql_literal
from store import Store, StoreNotFound

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

#: The temporary view of the rows ``growth`` reads from the projection (cached lazily).
PROJECTED = "__ms_projected_growth"


@dataclass(frozen=True)
class Pending:
    """A projection found for a store before Spark lists its logs, its layers' rows opened (the
    current ones, or the versions valid at ``as_of``; see the module docstring)."""

    store: Store
    projections: Projections
    found: Projection
    frames: list[DataFrame]
    as_recorded: dt.datetime | None = None


def find(spark: SparkSession, store_uri: str | os.PathLike[str], as_of: dt.date | None,
         as_recorded: dt.datetime | None) -> Pending | None:
    """The newest projection of a local store, its files opened by Spark, or None: an object
    store or any other Hadoop URI, ``METRICSTORE_PROJECTIONS=0``, no projection of this SQL (or its
    files deleted meanwhile, replaced by a newer one)."""
    text = os.fspath(store_uri)
    if "://" in text and not text.startswith("file://"):
        return None
    try:
        store = Store(text)
    except StoreNotFound:      # not a store: the computed views fail as they did
        return None
    projections = Projections(store)
    found = projections.latest()     # None for an object store, or with projections switched off
    if found is None:
        return None
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    frames: list[DataFrame] = []
    for layer in found.layers:
        try:
            df = spark.read.parquet(layer.file.absolute().as_uri())
        except AnalysisException:  # replaced by a newer projection and deleted since: computed
            return None
        day = F.lit(as_of or NOW_DAY)           # queries.projections.valid_on
        df = df.filter((F.col("valid_from") <= day) & (day < F.col("valid_to")))
        own_id = F.col("derived_from").isNull() & F.col("event_id").isNotNull()    # projections.DERIVED_FROM
        df = df.drop("valid_from", "valid_to").withColumn(
            "derived_from", F.when(own_id, F.array(F.col("event_id"))).otherwise(F.col("derived_from")))
        frames.append(df)
    return Pending(store, projections, found, frames, as_recorded)


def growth_query(spark: SparkSession, pending: Pending) -> str | None:
    """The DuckDB SQL of ``growth`` over ``pending``'s projection, for the translator (its
    projected rows registered as :data:`PROJECTED`); None when the whole view must be computed.
    Call it once Spark has listed the logs' files."""
    use = pending.projections.usable_of(pending.found, list_live(pending.store, COVERED),
                                        as_recorded=pending.as_recorded)
    if use is None:
        return None
    changed = use.changed
    register_projected(spark, pending, changed)
    # formula metrics' rows are computed from their inputs' (the projections hold none): the
    # translator's macros say which metrics those are and what they compute
    formulas = bool(definitions(metric_log(pending.store)))
    parts = [f"SELECT * FROM {PROJECTED}" + (" WHERE NOT ms_formula_metric(metric)" if formulas else "")]
    if changed:
        entities = ", ".join(sql_literal(e) for e in sorted(changed))
        parts.append(f"SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), "
                     f"only_entities := [{entities}])")
    if formulas:
        parts.append("SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), stored := false, "
                     "formulas := true)")
    return " UNION ALL BY NAME ".join(parts)


def register_projected(spark: SparkSession, pending: Pending, changed: frozenset[str]) -> None:
    """:data:`PROJECTED`: each layer's rows for the entities it holds (no newer layer does) but
    ``changed``, cached lazily."""
    from pyspark.sql import functions as F

    frames = []
    for df, hidden in zip(pending.frames, pending.found.hidden(), strict=True):
        skip = hidden | changed
        frames.append(df.filter(~F.col("entity").isin(sorted(skip))) if skip else df)
    spark.catalog.dropTempView(PROJECTED)       # uncaches an earlier registration's rows
    functools.reduce(lambda a, b: a.unionByName(b), frames).createOrReplaceTempView(PROJECTED)
    spark.sql(f"CACHE LAZY TABLE {PROJECTED}")
