-- The events behind a formula value, shaped as lineage_at's rows (55_lineage.sql): one 'value term'
-- row per input in the formula's order, the formula in `derivation` and the arithmetic with the
-- inputs' figures in `arithmetic` (`metricstore explain` on a formula metric).
CREATE OR REPLACE MACRO formula_lineage_at(as_of, as_recorded) AS TABLE
WITH c AS (
    SELECT c.* FROM formula_facts_at(as_of, as_recorded) c
    -- a reported figure stands: its lineage is the reported event's
    WHERE NOT EXISTS (SELECT 1 FROM facts_at(as_of, as_recorded) r
                      WHERE r.entity = c.entity AND r.metric = c.metric AND r.segment = c.segment
                        AND r.dims = c.dims AND r.period = c.period AND r.kind = c.kind)
),
terms AS (
    SELECT c.*, t.i AS term FROM c, LATERAL (SELECT unnest(range(1, len(c.derived_from) + 1)) AS i) t
)
SELECT t.entity, t.metric, t.segment, t.dims, t.period, 'value term' AS role, t.period AS of_period, t.term,
       e.period AS event_period, e.value, e.unit, e.qualifier, e.authority, e.reported_at, e.recorded_at,
       e.source, e.source_ref, e.as_reported, e.note, e.commit_id, e.run_id, e.event_id,
       t.source_ref AS derivation, t.as_reported AS arithmetic
FROM terms t
JOIN lineage_events(as_of, as_recorded) e ON e.event_id = t.derived_from[t.term];

-- The events behind a formula value growth places over derived inputs (formula_placed_at, whose
-- rows list their inputs: a derived quarter's with the event ids of its terms, term 1 added and the
-- rest subtracted, as lineage_at reads them): one 'value term' row per event, numbered through the
-- inputs in the formula's order, with the input it belongs to (`input`, `input_no`, `input_term`,
-- its figure and derivation), the arithmetic with a place for each input (`arith_template`) and the
-- result (`result_text`). of_entity / of_metric: one formula's rows without computing the others'.
CREATE OR REPLACE MACRO formula_placed_lineage_at(as_of, as_recorded, of_entity, of_metric) AS TABLE
WITH c AS (
    SELECT * FROM formula_placed_at(as_of, as_recorded, only_entity := of_entity, only_metric := of_metric)
    WHERE source = 'formula'
),
i AS (
    SELECT c.*, k.n AS input_no, c.inputs[k.n] AS inp
    FROM c, LATERAL (SELECT unnest(range(1, len(c.inputs) + 1)) AS n) k
),
t AS (
    SELECT i.*, j.n AS input_term FROM i, LATERAL (SELECT unnest(range(1, len(i.inp.derived_from) + 1)) AS n) j
)
SELECT t.entity, t.metric, t.segment, t.dims, t.period, 'value term' AS role, t.period AS of_period,
       row_number() OVER (PARTITION BY t.entity, t.metric, t.segment, t.dims, t.period, t.unit
                          ORDER BY t.input_no, t.input_term) AS term,
       e.period AS event_period, e.value, e.unit, e.qualifier, e.authority, e.reported_at, e.recorded_at,
       e.source, e.source_ref, e.as_reported, e.note, e.commit_id, e.run_id, e.event_id, t.derivation,
       t.inp.input AS input, t.input_no, t.input_term, t.inp.period AS input_period, t.inp.value AS input_value,
       t.inp.unit AS input_unit, t.inp.derivation AS input_derivation, t.arith_template,
       ms_fmt_result(t.value) || ' ' || t.unit AS result_text
FROM t
JOIN lineage_events(as_of, as_recorded) e ON e.event_id = t.inp.derived_from[t.input_term];

-- The events that can change the formula value of one fact (`history` of a formula metric,
-- queries/lineage.py): every event of its inputs' facts in the period (or an instant in its last
-- month: a stock input at the period's end), and every event withdrawing one of those. `inputs`
-- lists the metrics the formula's versions use. A value over derived quarters or halves gives of_fy
-- and of_end (its fiscal year and end): then every event of the inputs' flows in that year (the
-- terms a quarter is derived from, and a reported quarter that would stand instead) and their
-- instants in the month of of_end.
CREATE OR REPLACE MACRO formula_history_events(as_of, as_recorded, of_entity, inputs, of_period,
                                               of_fy := NULL, of_end := NULL) AS TABLE
WITH e AS (
    SELECT * FROM visible_events(as_of, as_recorded, only_entity := of_entity)
    WHERE list_contains(inputs, metric)
),
own AS (
    SELECT * FROM e
    WHERE period = of_period OR (ptype = 'I' AND ord IN (SELECT ord FROM e WHERE period = of_period))
       OR (fy = of_fy AND ptype IN ('FY', 'YTD', 'H', 'Q'))
       OR (ptype = 'I' AND ord = year(ms_nominal_end(CAST(of_end AS DATE))) * 12
                                 + month(ms_nominal_end(CAST(of_end AS DATE))))
)
SELECT event_id, reported_at, recorded_at FROM own
UNION
SELECT w.event_id, w.reported_at, w.recorded_at FROM visible_events(as_of, as_recorded) w
WHERE w.supersedes IN (SELECT event_id FROM own);
