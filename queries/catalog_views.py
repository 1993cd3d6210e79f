"""The catalog file's ``growth``: the projections read in plain SQL, by any DuckDB session.

The Python helper decides in Python which entities a projection may answer
(:mod:`queries.projections`); a session on the catalog file (the DuckDB CLI, DBeaver, a
notebook) has only SQL, so the view says the same in SQL, at every query:

- the newest manifest in ``<store>/_projections/`` computed by this SQL (else none: all computed);
- its layers, and for each entity the newest layer holding it;
- the entities changed since it was computed: events in files it does not cover (their own, and
  those a withdrawal in them names), a new entity record, a new definition of one of their
  metrics. A compaction's merged file is not covered by name: its entities are computed until
  the next projection step (``metricstore compact`` ends with one) covers it;
- with ``SET VARIABLE as_recorded``, also the entities whose inputs were recorded after it (their
  events, a withdrawal naming one, a fiscal calendar record): every other entity's answer then is
  its answer now;
- those entities computed from the events (``growth_at``), every other read from its layer: the
  current rows, or with ``SET VARIABLE as_of`` the versions valid then. Every answer with
  ``SET VARIABLE metricstore_projections = false`` is computed;
- formula metrics' rows always computed (``growth_at(..., stored := false, formulas := true)``, from
  their inputs' rows only): projections hold none. A file written while the store has no formula
  metric has no such branch (its definitions are compiled into the file when it is written).
"""

from __future__ import annotations

from queries.projections import DERIVED_FROM, FOLDER, LAYER, NOW_DAY, sql_version, valid_on
from queries.views import sql_literal
from store import Store

GROWTH = """
CREATE OR REPLACE VIEW growth AS
WITH man AS (
    SELECT * FROM read_json(__MANIFESTS__, filename = true, columns = __COLUMNS__)
    WHERE sql = __SQL__ AND coalesce(getvariable('metricstore_projections'), true)
    ORDER BY filename DESC LIMIT 1
),
deltas AS (SELECT unnest(range(1, len(deltas) + 1)) AS rank, unnest(deltas) AS layer FROM man),
layers AS (
    SELECT 0 AS rank, __FOLDER__ || base.file AS file FROM man
    UNION ALL
    SELECT rank, __FOLDER__ || layer.file FROM deltas
),
owner AS (
    SELECT entity, max(rank) AS rank FROM deltas, unnest(layer.entities) AS u(entity) GROUP BY entity
),
new_files AS (
    SELECT file FROM glob(__EVENTS__)
    WHERE parse_filename(file) NOT IN (SELECT unnest(covers.events) FROM man)
),
-- events the projection has not seen, and with as_recorded those recorded after it
new_events AS (
    SELECT entity, supersedes FROM read_parquet(__EVENTS__, filename = true, union_by_name = true)
    WHERE filename IN (SELECT file FROM new_files) OR __LATER__
),
changed AS (
    SELECT entity FROM new_events
    UNION
    SELECT entity FROM event_log WHERE event_id IN (SELECT supersedes FROM new_events WHERE supersedes IS NOT NULL)
    UNION
    SELECT entity FROM read_parquet(__ENTITIES__, filename = true, union_by_name = true)
    WHERE parse_filename(filename) NOT IN (SELECT unnest(covers.entities) FROM man) OR __LATER__
    UNION
    SELECT entity FROM event_log WHERE metric IN (
        SELECT metric FROM read_parquet(__METRICS__, filename = true, union_by_name = true)
        WHERE parse_filename(filename) NOT IN (SELECT unnest(covers.metrics) FROM man))
    UNION
    SELECT DISTINCT entity FROM event_log WHERE NOT EXISTS (SELECT 1 FROM man)
),
-- each layer's versions valid on the session's date (now: the day before the versions still valid end)
layer_rows AS (
    SELECT g.* EXCLUDE (filename), l.rank AS layer_rank
    FROM read_parquet(__LAYERS__, filename = true) g JOIN layers l ON g.filename = l.file
    WHERE g.filename IN (SELECT file FROM layers) AND __VALID__
),
projected AS (
    SELECT r.* EXCLUDE (layer_rank, valid_from, valid_to) REPLACE (__DERIVED_FROM__ AS derived_from)
    FROM layer_rows r
    LEFT JOIN owner o ON o.entity = r.entity
    WHERE coalesce(o.rank, 0) = r.layer_rank AND r.entity NOT IN (SELECT entity FROM changed)
      AND NOT ms_formula_metric(r.metric)
)
SELECT * FROM projected
UNION ALL BY NAME
SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'),
                        only_entities := (SELECT coalesce(list(entity), []::VARCHAR[]) FROM changed))
"""
#: The formula metrics' rows, where the store has any when the file is written (a session on it
#: sees the definitions of that time): a branch that costs every query its planning otherwise.
FORMULAS = """
UNION ALL BY NAME
SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), stored := false, formulas := true)
"""


#: A log row recorded after the session's ``as_recorded`` (none without it).
LATER = ("(getvariable('as_recorded') IS NOT NULL "
         "AND recorded_at > CAST(getvariable('as_recorded') AS TIMESTAMPTZ))")
_LAYER = "STRUCT(file VARCHAR, entities VARCHAR[])"
#: The manifest's fields the view reads, typed (a manifest without deltas says nothing of their type).
COLUMNS = ("{'sql': 'VARCHAR', 'covers': 'STRUCT(events VARCHAR[], entities VARCHAR[], metrics VARCHAR[])', "
           f"'base': '{_LAYER}', 'deltas': '{_LAYER}[]'}}")


def growth_view(store: Store, *, formulas: bool = True) -> str:
    """The catalog's ``growth`` view over ``store`` (a local store with a projection), with the
    formula metrics' rows where ``formulas`` (the store has formula metrics)."""
    folder = store.root / FOLDER
    return ((GROWTH + FORMULAS if formulas else GROWTH)
            .replace("__MANIFESTS__", sql_literal(folder / "projection-*.json"))
            .replace("__COLUMNS__", COLUMNS)
            .replace("__SQL__", sql_literal(sql_version()))
            .replace("__LATER__", LATER)
            .replace("__FOLDER__", sql_literal(str(folder) + "/"))
            .replace("__LAYERS__", sql_literal(folder / f"{LAYER}-*.parquet"))
            .replace("__VALID__", valid_on(f"coalesce(CAST(getvariable('as_of') AS DATE), DATE '{NOW_DAY}')"))
            .replace("__DERIVED_FROM__", DERIVED_FROM)
            .replace("__EVENTS__", sql_literal(store.glob("events")))
            .replace("__ENTITIES__", sql_literal(store.glob("entities")))
            .replace("__METRICS__", sql_literal(store.glob("metrics"))))

