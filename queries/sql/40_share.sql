-- A segment's share of its entity's total, for the same metric, dims, period, kind and unit; of a
-- formula metric's too (its values in facts: all_facts_at, queries/sql/25_formulas.sql).
CREATE OR REPLACE MACRO share_at(as_of, as_recorded) AS TABLE
WITH f AS (SELECT * FROM all_facts_at(as_of, as_recorded))
SELECT s.entity, s.metric, s.segment, s.dims, s.period, s.kind, s.unit,
       s.value, t.value AS total_value, s.value / t.value AS share,
       s.qualifier, t.qualifier AS total_qualifier,
       [s.event_id, t.event_id] AS derived_from
FROM f s
JOIN f t
  ON t.entity = s.entity AND t.metric = s.metric AND t.dims = s.dims AND t.period = s.period
 AND t.kind = s.kind AND t.unit = s.unit AND t.segment = 'total'
LEFT JOIN metrics m ON m.metric = s.metric
WHERE s.segment <> 'total' AND coalesce(m.aggregation, 'flow') NOT IN ('ratio', 'per_share') AND t.value <> 0;

CREATE OR REPLACE VIEW share AS
SELECT * FROM share_at(getvariable('as_of'), getvariable('as_recorded'));

CREATE OR REPLACE MACRO share_as_of(d) AS TABLE SELECT * FROM share_at(d, NULL);
