-- Growth of actual figures: YoY, QoQ and TTM, with derived quarters and halves.
--
-- A series is (entity, metric, segment, dims, unit). Periods are placed by the month their nominal
-- end falls in (ord = year * 12 + month): the YoY prior is the same type and length of period 12
-- months earlier (so 52/53-week years of 364 or 371 days match), the QoQ prior the adjacent one.
-- Missing quarters of a flow are derived from year-to-date figures (Q2 = H1 - Q1,
-- Q3 = 9M - H1, Q4 = FY - 9M, or FY - Q1 - Q2 - Q3; H2 = FY - H1) and marked derived, with the
-- event ids they were computed from. Percent changes are NULL on a zero or negative base and for
-- ratio metrics, whose changes are in ratio units (0.03 is +3 pp). A per-share figure (EPS) is a
-- flow divided by a share count that moves within the year: its quarters are derived and summed
-- to a TTM the same way, but a derived quarter is never exact (FY EPS - 9M EPS is not the
-- quarter's EPS when the share count changed), so it is marked approx. A formula metric's rows
-- (formula_placed_at, compiled by queries/formula_sql.py) are computed from its inputs' placed
-- rows, derived quarters included, and run through the same windows; the aggregation is the
-- definition's.

-- The actual facts with their aggregation (flow, per_share, stock, ratio); ptype, months, ord and fy come
-- with each fact (computed once per distinct span, see visible_events).
CREATE OR REPLACE MACRO placed_facts(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                     only_entities := CAST(NULL AS VARCHAR[]),
                                     only_metrics := CAST(NULL AS VARCHAR[])) AS TABLE
SELECT f.*, coalesce(m.aggregation, 'flow') AS aggregation, NULL::VARCHAR AS derivation
FROM facts_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric, only_entities := only_entities,
              only_metrics := only_metrics) f
LEFT JOIN metrics m ON m.metric = f.metric
WHERE f.kind = 'actual';

-- The rows growth places: every actual fact and every derived quarter and half, one per series
-- and place. only_entity / only_metric (optional): one series' rows without computing every
-- series'; only_entities (a list): some entities' (those a projection does not describe);
-- only_metrics (a list): some metrics' (a formula's inputs).
-- The facts are computed once (p); derived periods are computed from them.
CREATE OR REPLACE MACRO placed_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                  only_entities := CAST(NULL AS VARCHAR[]),
                                  only_metrics := CAST(NULL AS VARCHAR[])) AS TABLE
WITH p AS (
    SELECT * FROM placed_facts(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric,
                               only_entities := only_entities, only_metrics := only_metrics)
),
y AS (
    SELECT entity, metric, segment, dims, unit, fy, any_value(fye) AS fye,
        max(value) FILTER (WHERE period = 'FY' || fy) AS fy_v,
        max(value) FILTER (WHERE period = '9M' || fy) AS m9_v,
        max(value) FILTER (WHERE period = fy || 'H1') AS h1_v,
        max(value) FILTER (WHERE period = fy || 'H2') AS h2_v,
        max(value) FILTER (WHERE period = fy || 'Q1') AS q1_v,
        max(value) FILTER (WHERE period = fy || 'Q2') AS q2_v,
        max(value) FILTER (WHERE period = fy || 'Q3') AS q3_v,
        max(value) FILTER (WHERE period = fy || 'Q4') AS q4_v,
        max(event_id) FILTER (WHERE period = 'FY' || fy) AS fy_id,
        max(event_id) FILTER (WHERE period = '9M' || fy) AS m9_id,
        max(event_id) FILTER (WHERE period = fy || 'H1') AS h1_id,
        max(event_id) FILTER (WHERE period = fy || 'Q1') AS q1_id,
        max(event_id) FILTER (WHERE period = fy || 'Q2') AS q2_id,
        max(event_id) FILTER (WHERE period = fy || 'Q3') AS q3_id,
        max(period_start) FILTER (WHERE period = 'FY' || fy) AS fy_start,
        max(period_end) FILTER (WHERE period = 'FY' || fy) AS fy_end,
        max(period_end) FILTER (WHERE period = '9M' || fy) AS m9_end,
        max(period_end) FILTER (WHERE period = fy || 'H1') AS h1_end,
        max(period_start) FILTER (WHERE period = fy || 'H1') AS h1_start,
        max(period_end) FILTER (WHERE period = fy || 'Q1') AS q1_end,
        max(period_end) FILTER (WHERE period = fy || 'Q3') AS q3_end,
        max(reported_at) AS last_reported, max(recorded_at) AS last_recorded,
        bool_and(qualifier = 'exact') AND any_value(aggregation) = 'flow' AS all_exact,
        any_value(aggregation) AS aggregation
    FROM p
    WHERE aggregation IN ('flow', 'per_share') AND ptype IN ('FY', 'YTD', 'H', 'Q')
    GROUP BY ALL
),
-- Each missing part of a year (one branch per rule; a plain union of filters over y, which plans
-- and runs cheaper than a correlated LATERAL union).
d AS (
    SELECT y.*, 'Q2' AS part, h1_v - q1_v AS value, 'H1 - Q1' AS derivation, [h1_id, q1_id] AS derived_from,
           CAST(q1_end + INTERVAL 1 DAY AS DATE) AS period_start, h1_end AS period_end
    FROM y WHERE q2_v IS NULL AND h1_v IS NOT NULL AND q1_v IS NOT NULL
    UNION ALL
    SELECT y.*, 'Q3', m9_v - h1_v, '9M - H1', [m9_id, h1_id], CAST(h1_end + INTERVAL 1 DAY AS DATE), m9_end
    FROM y WHERE q3_v IS NULL AND m9_v IS NOT NULL AND h1_v IS NOT NULL
    UNION ALL
    SELECT y.*, 'Q4', fy_v - m9_v, 'FY - 9M', [fy_id, m9_id], CAST(m9_end + INTERVAL 1 DAY AS DATE), fy_end
    FROM y WHERE q4_v IS NULL AND fy_v IS NOT NULL AND m9_v IS NOT NULL
    UNION ALL
    SELECT y.*, 'Q4', fy_v - q1_v - q2_v - q3_v, 'FY - Q1 - Q2 - Q3', [fy_id, q1_id, q2_id, q3_id],
           CAST(q3_end + INTERVAL 1 DAY AS DATE), fy_end
    FROM y WHERE q4_v IS NULL AND m9_v IS NULL AND fy_v IS NOT NULL
      AND q1_v IS NOT NULL AND q2_v IS NOT NULL AND q3_v IS NOT NULL
    UNION ALL
    SELECT y.*, 'H2', fy_v - h1_v, 'FY - H1', [fy_id, h1_id], CAST(h1_end + INTERVAL 1 DAY AS DATE), fy_end
    FROM y WHERE h2_v IS NULL AND fy_v IS NOT NULL AND h1_v IS NOT NULL
),
-- Missing quarters and halves of a flow, derived from the year-to-date figures.
derived AS (
    SELECT entity, metric, segment, dims, fy || part AS period, period_start, period_end,
           'actual' AS kind, value, NULL::DOUBLE AS value_high, unit,
           CASE WHEN all_exact THEN 'exact' ELSE 'approx' END AS qualifier,
           NULL::VARCHAR AS authority, last_reported AS reported_at, last_recorded AS recorded_at,
           'derived' AS source, derivation AS source_ref, NULL::VARCHAR AS as_reported,
           NULL::VARCHAR AS event_id, true AS derived, derived_from, fye,
           aggregation, left(part, 1) AS ptype,
           CASE left(part, 1) WHEN 'Q' THEN 3 ELSE 6 END AS months,
           year(ms_nominal_end(period_end)) * 12 + month(ms_nominal_end(period_end)) AS ord,
           fy, derivation
    FROM d
),
a AS (
    SELECT * FROM p
    UNION ALL BY NAME
    SELECT * FROM derived
)
-- One row per series and place: two instants in the same month keep the later.
SELECT * FROM a WHERE ptype <> 'X'
QUALIFY row_number() OVER (PARTITION BY entity, metric, segment, dims, unit, ptype, months, ord
                           ORDER BY period_end DESC) = 1;

-- Formula metrics: queries/formula_sql.py replaces these three, on a connection over a store with
-- formula definitions, by the names of every formula metric (a list, and a test of one name) and
-- by their placed rows (the metric's reported rows, and the values computed from the inputs'
-- placed rows, derived quarters included, where no reported row stands). Here: none, at no cost
-- (a constant false, which the planner folds away).
CREATE OR REPLACE MACRO ms_formula_metrics() AS CAST([] AS VARCHAR[]);
CREATE OR REPLACE MACRO ms_formula_metric(name) AS false;

CREATE OR REPLACE VIEW formula_placed_empty AS
SELECT *, NULL::VARCHAR AS aggregation, NULL::VARCHAR AS derivation,
       -- a computed row's inputs and its arithmetic with a place for each (explain, 57_formula_lineage.sql)
       NULL::STRUCT(input VARCHAR, metric VARCHAR, segment VARCHAR, dims VARCHAR, period VARCHAR, value DOUBLE,
                    unit VARCHAR, as_reported VARCHAR, derivation VARCHAR, derived_from VARCHAR[])[] AS inputs,
       NULL::VARCHAR AS arith_template
FROM facts_empty;

CREATE OR REPLACE MACRO formula_placed_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                          only_entities := CAST(NULL AS VARCHAR[])) AS TABLE
SELECT * FROM formula_placed_empty;

-- The growth of every series: stored metrics' (stored := false leaves them out) and, with
-- formulas := true, formula metrics' (a projection holds the stored ones only). The growth view
-- and its macros below, and the conversions of 70_currency.sql, ask for both; lineage_at, which
-- explains a stored row event by event, keeps the stored ones (57_formula_lineage.sql explains a
-- formula's).
-- Priors are found by windows over (series, ptype, months) ordered by ord, not by joining the
-- facts to themselves: a frame RANGE BETWEEN k PRECEDING AND k PRECEDING holds the one row placed
-- exactly k months earlier, or none.
CREATE OR REPLACE MACRO growth_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                  only_entities := CAST(NULL AS VARCHAR[]), stored := true, formulas := false) AS TABLE
-- (The branches' aliases keep Spark from reading WHERE as one: queries/spark.py translates this.)
WITH placed AS (
    SELECT * FROM placed_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric,
                            only_entities := only_entities) AS s
    WHERE stored AND NOT ms_formula_metric(metric)
    UNION ALL BY NAME
    SELECT * FROM formula_placed_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric,
                                    only_entities := only_entities) AS f
    WHERE formulas
),
-- A quarter's type implies its length (3 months), so the TTM frame can share the priors' partition.
w AS (
    SELECT *,
        CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN sum(value) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 9 PRECEDING AND CURRENT ROW) END AS ttm_sum,
        CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN count(*) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 9 PRECEDING AND CURRENT ROW) END AS ttm_n,
        first_value({'period': period, 'value': value, 'qualifier': qualifier}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 12 PRECEDING AND 12 PRECEDING) AS yoy,
        CASE WHEN ptype IN ('Q', 'I') THEN first_value({'period': period, 'value': value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 3 PRECEDING AND 3 PRECEDING) END AS prev3,
        CASE WHEN ptype = 'H' THEN first_value({'period': period, 'value': value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 6 PRECEDING AND 6 PRECEDING) END AS prev6,
        CASE WHEN ptype = 'M' THEN first_value({'period': period, 'value': value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING) END AS prev1
    FROM placed
),
-- QoQ: the adjacent period of the same type (a quarter, half or month before; an instant a quarter before)
c AS (
    SELECT *, yoy.period AS y_period, yoy.value AS y_value, yoy.qualifier AS y_qualifier,
           coalesce(prev3.period, prev6.period, prev1.period) AS q_period,
           coalesce(prev3.value, prev6.value, prev1.value) AS q_value
    FROM w
)
SELECT entity, metric, segment, dims, period, period_start, period_end, kind,
       value, unit, qualifier, aggregation, derived, derivation, derived_from,
       source, event_id,
       y_period AS prior_period, y_value AS prior_value, y_qualifier AS prior_qualifier,
       value - y_value AS yoy_change,
       CASE WHEN aggregation <> 'ratio' AND y_value > 0 THEN (value - y_value) / y_value END AS yoy_pct,
       q_period AS qoq_period, q_value AS qoq_prior_value,
       value - q_value AS qoq_change,
       CASE WHEN aggregation <> 'ratio' AND q_value > 0 THEN (value - q_value) / q_value END AS qoq_pct,
       CASE WHEN ttm_n = 4 THEN ttm_sum END AS ttm_value,
       reported_at, fy, ptype
FROM c;

CREATE OR REPLACE VIEW growth AS
SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), formulas := true);

CREATE OR REPLACE MACRO growth_as_of(d) AS TABLE SELECT * FROM growth_at(d, NULL, formulas := true);
CREATE OR REPLACE MACRO growth_as_recorded(t) AS TABLE SELECT * FROM growth_at(NULL, t, formulas := true);
