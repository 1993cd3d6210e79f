-- Growth of actual figures: YoY, QoQ and TTM, with derived quarters and halves, at one time (as_of,
-- as_recorded). The rules are defined once, in 28_growth_rules.sql, which the versions over
-- publication time (35_growth_versions.sql) run as well.
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

-- The rows growth places: every actual fact and every derived quarter and half, one per series
-- and place (the stages of 28_growth_rules.sql, at one time: t = t_next = NULL). only_entity /
-- only_metric (optional): one series' rows without computing every series'; only_entities (a
-- list): some entities' (those a projection does not describe); only_metrics (a list): some
-- metrics' (a formula's inputs). The facts are computed once (p); derived periods from them.
CREATE OR REPLACE MACRO placed_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL,
                                  only_entities := CAST(NULL AS VARCHAR[]),
                                  only_metrics := CAST(NULL AS VARCHAR[])) AS TABLE
WITH f AS (
    SELECT *, NULL::DATE AS t, NULL::DATE AS t_next
    FROM facts_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric,
                  only_entities := only_entities, only_metrics := only_metrics)
),
p AS (SELECT * FROM growth_inputs('f')),
y AS (SELECT * FROM year_figures('p')),
a AS (
    SELECT * FROM p
    UNION ALL BY NAME
    SELECT * FROM derived_parts('y')
)
SELECT * EXCLUDE (t, t_next) FROM one_per_place('a');

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
-- exactly k months earlier, or none. Frames are constants: there is one window for each offset
-- ms_yoy_back, ms_qoq_back and ms_ttm_back (28_growth_rules.sql) name, and they pick among them.
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
        CASE WHEN ms_ttm_back(ptype, aggregation) = 9 THEN sum(value) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 9 PRECEDING AND CURRENT ROW) END AS ttm_sum,
        CASE WHEN ms_ttm_back(ptype, aggregation) = 9 THEN count(*) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 9 PRECEDING AND CURRENT ROW) END AS ttm_n,
        CASE WHEN ms_ttm_back(ptype, aggregation) = 9 THEN sum(abs(value)) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 9 PRECEDING AND CURRENT ROW) END AS ttm_magnitude,
        CASE WHEN ms_yoy_back() = 12 THEN first_value({'period': period, 'value': value, 'qualifier': qualifier}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
            RANGE BETWEEN 12 PRECEDING AND 12 PRECEDING) END AS yoy,
        CASE ms_qoq_back(ptype)
            WHEN 3 THEN first_value({'period': period, 'value': value}) OVER (
                PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
                RANGE BETWEEN 3 PRECEDING AND 3 PRECEDING)
            WHEN 6 THEN first_value({'period': period, 'value': value}) OVER (
                PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
                RANGE BETWEEN 6 PRECEDING AND 6 PRECEDING)
            WHEN 1 THEN first_value({'period': period, 'value': value}) OVER (
                PARTITION BY entity, metric, segment, dims, unit, ptype, months ORDER BY ord
                RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING) END AS qoq,
        NULL::DATE AS t, NULL::DATE AS t_next
    FROM placed
)
SELECT * EXCLUDE (valid_from, valid_to) FROM growth_columns('w');

CREATE OR REPLACE VIEW growth AS
SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'), formulas := true);

CREATE OR REPLACE MACRO growth_as_of(d) AS TABLE SELECT * FROM growth_at(d, NULL, formulas := true);
CREATE OR REPLACE MACRO growth_as_recorded(t) AS TABLE SELECT * FROM growth_at(NULL, t, formulas := true);
