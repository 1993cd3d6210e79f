-- The current value of each fact, at any point in time.
--
-- Fact key: entity, metric, segment, dims, period (label on the entity's fiscal calendar), kind,
-- unit. Among the events of a key that were visible (reported_at <= as_of, recorded_at <=
-- as_recorded) and not superseded by a visible event, one wins:
--   1. the higher source authority (primary: the company's own word; secondary: others),
--   2. a non-approx figure over an approx one (approx never hides exact of equal authority),
--   3. the later reported_at, 4. the later recorded_at, 5. the larger event_id.
-- A winning retract hides the fact. A retract naming an event in `supersedes` withdraws that event
-- alone and does not compete.

-- only_entity / only_metric (optional) restrict to one series' events before anything else, so a
-- one-series query reads only the row groups that hold it; only_entities (a list) to some entities';
-- only_metrics (a list) to some metrics' (a formula's inputs). Labels and the other span attributes
-- (ms_span: type, months, ord, fiscal year) are computed once per distinct (period_start,
-- period_end, fye), not once per event: a store has few distinct periods.
CREATE OR REPLACE MACRO visible_events(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                       only_entities := CAST(NULL AS VARCHAR[]),
                                       only_metrics := CAST(NULL AS VARCHAR[])) AS TABLE
WITH logged AS (
    -- only_entities as a join, not a filter: a list known only at run time (the catalog's changed
    -- entities) then stops the scan early instead of testing every event of the log
    SELECT e.* FROM event_log e, (SELECT 1 AS every WHERE only_entities IS NULL) a
    UNION ALL
    SELECT e.* FROM event_log e WHERE e.entity IN (SELECT unnest(only_entities))
),
e AS (
    SELECT e.*, coalesce(n.fiscal_year_end_month, 12) AS fye
    FROM logged e
    LEFT JOIN entities_at(as_recorded) n ON n.entity = e.entity
    WHERE (as_of IS NULL OR e.reported_at <= CAST(as_of AS DATE))
      AND (as_recorded IS NULL OR e.recorded_at <= CAST(as_recorded AS TIMESTAMPTZ))
      AND (only_entity IS NULL OR e.entity = only_entity)
      AND (only_metric IS NULL OR e.metric = only_metric)
      AND (only_metrics IS NULL OR list_contains(only_metrics, e.metric))
),
spans AS (
    SELECT s.*, ms_span(s.period_start, s.period_end, s.fye) AS sp
    FROM (SELECT DISTINCT period_start, period_end, fye FROM e) s
)
SELECT e.*, spans.sp.period AS period, spans.sp.ptype AS ptype, spans.sp.months AS months,
       spans.sp.ord AS ord, spans.sp.fy AS fy
FROM e JOIN spans USING (period_start, period_end, fye);

-- The facts of winning events (``winners``, with their epochs t and t_next): a winning retract hides its fact.
CREATE OR REPLACE MACRO facts_of(winners) AS TABLE
SELECT entity, metric, segment, dims, period, period_start, period_end, kind, value, value_high,
       unit, qualifier, authority, reported_at, recorded_at, source, source_ref, as_reported,
       event_id, false AS derived, [event_id] AS derived_from, fye, ptype, months, ord, fy, t, t_next
FROM query_table(winners)
WHERE op = 'assert';

-- The fact each key's candidate events give (at each epoch t, the time from which the candidates
-- hold, up to t_next; NULL for the answer at one time): the winner by the rule above, a winning
-- retract hiding the fact. The one definition of the rule: facts_at reads it at one time,
-- fact_versions (35_growth_versions.sql) at every time a key's candidates changed.
CREATE OR REPLACE MACRO fact_winners(candidates) AS TABLE
WITH w AS (
    SELECT * FROM query_table(candidates)
    QUALIFY row_number() OVER (
        PARTITION BY entity, metric, segment, dims, period, kind, unit, t
        ORDER BY CASE authority WHEN 'primary' THEN 2 ELSE 1 END DESC,
                 CASE qualifier WHEN 'approx' THEN 0 ELSE 1 END DESC,
                 reported_at DESC, recorded_at DESC, event_id DESC) = 1
)
SELECT * FROM facts_of('w');

CREATE OR REPLACE MACRO facts_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                 only_entities := CAST(NULL AS VARCHAR[]),
                                 only_metrics := CAST(NULL AS VARCHAR[])) AS TABLE
WITH v AS (SELECT * FROM visible_events(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric,
                                        only_entities := only_entities, only_metrics := only_metrics)),
-- from every visible event, not only the series': a withdrawal counts wherever it was filed
withdrawn AS (
    SELECT DISTINCT supersedes AS event_id FROM event_log
    WHERE supersedes IS NOT NULL
      AND (as_of IS NULL OR reported_at <= CAST(as_of AS DATE))
      AND (as_recorded IS NULL OR recorded_at <= CAST(as_recorded AS TIMESTAMPTZ))
),
candidates AS (
    SELECT v.*, NULL::DATE AS t, NULL::DATE AS t_next FROM v
    WHERE v.event_id NOT IN (SELECT event_id FROM withdrawn)
      AND NOT (v.op = 'retract' AND v.supersedes IS NOT NULL)
)
SELECT * EXCLUDE (t, t_next) FROM fact_winners('candidates');

-- The columns of a facts_at row, with no rows: the base of the formula macros' empty relations
-- (25_formulas.sql, 30_growth.sql), which a store without formula definitions keeps.
CREATE OR REPLACE VIEW facts_empty AS
SELECT NULL::VARCHAR AS entity, NULL::VARCHAR AS metric, NULL::VARCHAR AS segment, NULL::VARCHAR AS dims,
       NULL::VARCHAR AS period, NULL::DATE AS period_start, NULL::DATE AS period_end, NULL::VARCHAR AS kind,
       NULL::DOUBLE AS value, NULL::DOUBLE AS value_high, NULL::VARCHAR AS unit, NULL::VARCHAR AS qualifier,
       NULL::VARCHAR AS authority, NULL::DATE AS reported_at, NULL::TIMESTAMPTZ AS recorded_at,
       NULL::VARCHAR AS source, NULL::VARCHAR AS source_ref, NULL::VARCHAR AS as_reported,
       NULL::VARCHAR AS event_id, NULL::BOOLEAN AS derived, NULL::VARCHAR[] AS derived_from,
       NULL::TINYINT AS fye, NULL::VARCHAR AS ptype, NULL::BIGINT AS months, NULL::BIGINT AS ord,
       NULL::BIGINT AS fy
WHERE false;

-- HOOK (formulas): 25_formulas.sql recreates this view and the two macros below with the formula values.
CREATE OR REPLACE VIEW facts AS
SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM facts_at(getvariable('as_of'), getvariable('as_recorded'));

CREATE OR REPLACE MACRO facts_as_of(d) AS TABLE SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM facts_at(d, NULL);
CREATE OR REPLACE MACRO facts_as_recorded(t) AS TABLE SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM facts_at(NULL, t);
