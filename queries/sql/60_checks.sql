-- Data checks: where the store's figures disagree with each other beyond rounding.
--
-- Each comparison has an expected and an actual value, their difference (actual - expected) and a
-- tolerance: the most the two can differ by rounding alone. A figure written to a last digit
-- (ms_step: 365.9 bn to 0.1 bn, 136,800 to 100, 172,883,000 to 1,000) stands for a true value
-- within half that digit, so two sides that should be equal may differ by at most the sum of the
-- half-steps of every figure on both sides (ms_step, ms_tolerance: 25_formulas.sql). Trailing zeros of a whole number are not taken as
-- significant (136,800 may be rounded to the hundred), which errs towards fewer alarms.
--
-- The comparisons (column `check`):
--   segments  the segments of a metric against its total (same dims, period, kind and unit), for
--             flows and stocks, where the store holds at least two segments and the total;
--   quarters  Q1 + Q2 + Q3 + Q4 against FY for a flow, where all five are reported;
--   rounding  an approximate figure (or another source's) against the exact current one of the
--             same fact;
--   bound     an 'at least' / 'at most' / range figure against the exact current one;
--   formula   a formula metric computed from its inputs against the figure the company reported
--             (see 25_formulas.sql; none when no formula is defined).
-- check_results_at lists every comparison with `within`; `checks` only the disagreements.

CREATE OR REPLACE MACRO check_results_at(as_of, as_recorded) AS TABLE
WITH f AS (
    SELECT f.*, coalesce(m.aggregation, 'flow') AS aggregation, ms_step(f.value, f.as_reported) AS step
    FROM facts_at(as_of, as_recorded) f
    LEFT JOIN metrics m ON m.metric = f.metric
),
segments AS (
    SELECT 'segments' AS "check", t.entity, t.metric, t.segment, t.dims, t.period, t.kind, t.unit,
           any_value(t.value) AS expected, ms_decimal(sum(s.value), sum(abs(s.value))) AS actual,
           ms_tolerance(list_append(list(s.step), any_value(t.step))) AS tolerance,
           'sum of ' || count(*) || ' segments (' || string_agg(s.segment, ' + ' ORDER BY s.segment)
               || ') against the total' AS detail,
           [any_value(t.event_id)] AS expected_from, list(s.event_id ORDER BY s.segment) AS actual_from,
           greatest(any_value(t.reported_at), max(s.reported_at)) AS reported_at,
           max(t.period_end) AS period_end
    FROM f t
    JOIN f s ON s.entity = t.entity AND s.metric = t.metric AND s.dims = t.dims AND s.period = t.period
            AND s.kind = t.kind AND s.unit = t.unit AND s.segment <> 'total'
    WHERE t.segment = 'total' AND t.aggregation IN ('flow', 'stock')
    GROUP BY t.entity, t.metric, t.segment, t.dims, t.period, t.kind, t.unit
    HAVING count(*) >= 2
),
quarters AS (
    SELECT 'quarters' AS "check", entity, metric, segment, dims, 'FY' || fy AS period, kind, unit,
           max(value) FILTER (WHERE ptype = 'FY') AS expected,
           ms_decimal(sum(value) FILTER (WHERE ptype = 'Q'), sum(abs(value)) FILTER (WHERE ptype = 'Q')) AS actual,
           ms_tolerance(list(step)) AS tolerance,
           string_agg(period, ' + ' ORDER BY period) FILTER (WHERE ptype = 'Q') || ' against FY' || fy AS detail,
           list(event_id) FILTER (WHERE ptype = 'FY') AS expected_from,
           list(event_id ORDER BY period) FILTER (WHERE ptype = 'Q') AS actual_from,
           max(reported_at) AS reported_at,
           max(period_end) FILTER (WHERE ptype = 'FY') AS period_end
    FROM f
    WHERE aggregation = 'flow' AND ptype IN ('FY', 'Q')
    GROUP BY entity, metric, segment, dims, kind, unit, fy
    HAVING count(*) FILTER (WHERE ptype = 'Q') = 4 AND count(*) FILTER (WHERE ptype = 'FY') = 1
),
-- every standing assert of a fact other than its current one (withdrawn events left out)
withdrawn AS (
    SELECT DISTINCT supersedes AS event_id FROM lineage_events(as_of, as_recorded) WHERE supersedes IS NOT NULL
),
others AS (
    SELECT e.*, ms_step(e.value, e.as_reported) AS step
    FROM lineage_events(as_of, as_recorded) e
    WHERE e.op = 'assert' AND e.event_id NOT IN (SELECT event_id FROM withdrawn)
),
figures AS (
    SELECT CASE WHEN o.qualifier IN ('exact', 'approx') THEN 'rounding' ELSE 'bound' END AS "check",
           c.entity, c.metric, c.segment, c.dims, c.period, c.kind, c.unit,
           c.value AS expected, o.value AS actual, o.value_high, o.qualifier,
           ms_tolerance([o.step, c.step]) AS tolerance,
           CASE o.qualifier WHEN 'exact' THEN 'figure' WHEN 'approx' THEN 'approximate figure'
                WHEN 'at_least' THEN 'lower bound' WHEN 'at_most' THEN 'upper bound' ELSE 'range' END
               || ' ' || coalesce(o.as_reported, CAST(o.value AS VARCHAR)) || ' (' || o.source || ', ' || o.authority
               || ') against the exact ' || coalesce(c.as_reported, CAST(c.value AS VARCHAR))
               || ' (' || c.source || ', ' || c.authority || ')' AS detail,
           [c.event_id] AS expected_from, [o.event_id] AS actual_from,
           greatest(c.reported_at, o.reported_at) AS reported_at, c.period_end
    FROM f c
    JOIN others o ON o.entity = c.entity AND o.metric = c.metric AND o.segment = c.segment AND o.dims = c.dims
                 AND o.period = c.period AND o.kind = c.kind AND o.unit = c.unit AND o.event_id <> c.event_id
    -- an exact figure of the same standing is an earlier version (see restatements), not a rounding
    WHERE c.qualifier = 'exact' AND (o.qualifier <> 'exact' OR o.authority <> c.authority)
),
bounded AS (
    SELECT * EXCLUDE (value_high, qualifier),
           CASE qualifier
               WHEN 'at_least' THEN expected >= actual - tolerance
               WHEN 'at_most' THEN expected <= actual + tolerance
               WHEN 'range' THEN expected BETWEEN actual - tolerance AND coalesce(value_high, actual) + tolerance
               ELSE abs(ms_change(actual, expected)) <= tolerance END AS within
    FROM figures
),
compared AS (
    SELECT *, abs(ms_change(actual, expected)) <= tolerance AS within FROM segments
    UNION ALL BY NAME
    SELECT *, abs(ms_change(actual, expected)) <= tolerance AS within FROM quarters
    UNION ALL BY NAME
    SELECT * FROM bounded
    UNION ALL BY NAME
    SELECT *, abs(ms_change(actual, expected)) <= tolerance AS within
    FROM formula_checks_at(as_of, as_recorded)
)
SELECT "check", entity, metric, segment, dims, period, kind, unit, expected, actual,
       ms_change(actual, expected) AS difference,
       CASE WHEN expected <> 0 THEN ms_change(actual, expected) / abs(expected) END
           AS relative_difference,
       tolerance, within, detail, expected_from, actual_from,
       list_concat(expected_from, actual_from) AS event_ids, reported_at, period_end
FROM compared;

CREATE OR REPLACE MACRO checks_at(as_of, as_recorded) AS TABLE
SELECT * EXCLUDE (within) FROM check_results_at(as_of, as_recorded)
WHERE NOT within
ORDER BY entity, "check", metric, segment, dims, period_end, period;

CREATE OR REPLACE VIEW checks AS
SELECT * FROM checks_at(getvariable('as_of'), getvariable('as_recorded'));

CREATE OR REPLACE MACRO checks_as_of(d) AS TABLE SELECT * FROM checks_at(d, NULL);
CREATE OR REPLACE MACRO checks_as_recorded(t) AS TABLE SELECT * FROM checks_at(NULL, t);
