-- Calendar periods: fiscal figures relabelled to calendar quarters and years, to compare peers
-- whose fiscal years end in different months (Apple in September, NVIDIA in late January).
--
-- A fiscal quarter belongs to the calendar quarter holding most of its days (the quarter of its
-- middle day): NVIDIA's quarter ending 2025-01-26 is CY2024Q4, Apple's ending 2024-09-28 is
-- CY2024Q3. A stock taken at a fiscal quarter's end belongs where that quarter does (the calendar
-- quarter of the day 45 days before). Should two fiscal quarters fall in one calendar quarter (a
-- 52/53-week calendar drifting), the one with more days in it stands and the other is left out.
--
-- A calendar year is the sum of its four calendar quarters (flows, per-share figures: approx, as
-- a TTM is), the last quarter's value (stocks), and is missing (NULL, with a note naming the
-- quarters missing) when a quarter is missing. A fiscal year that is the calendar year (December
-- year ends) gives it directly, ratios included. YoY, QoQ and TTM are computed on the calendar
-- periods. With a target currency the quarters are converted first, each at its own rate.

-- The calendar quarters and years of the stored metrics (and of figures reported under a formula
-- metric's name), before their growth is computed.
CREATE OR REPLACE MACRO calendar_rows_at(target, as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH g AS (
    SELECT * FROM growth_in_at(target, as_of, as_recorded, only_entity := only_entity, only_metric := only_metric)
    WHERE kind = 'actual' AND NOT (ms_formula_metric(metric) AND source = 'formula')
),
n AS (SELECT entity, fiscal_year_end_month AS fye FROM entities_at(as_recorded)),
q0 AS (
    SELECT g.*,
           CASE WHEN g.ptype = 'Q'
                THEN g.period_start + CAST(datediff('day', g.period_start, g.period_end) // 2 AS INTEGER)
                ELSE CAST(g.period_end - INTERVAL 45 DAY AS DATE) END AS mid
    FROM g LEFT JOIN n ON n.entity = g.entity
    WHERE (g.ptype = 'Q' AND g.aggregation <> 'stock')
       OR (g.ptype = 'I' AND g.aggregation = 'stock'
           AND ms_fiscal_month(g.period_end, coalesce(n.fye, 12)) % 3 = 0
           AND abs(datediff('day', g.period_end, ms_nominal_end(g.period_end))) <= 7)
),
q AS (
    SELECT q0.*, year(mid) AS cy, quarter(mid) AS cq, year(mid) * 4 + quarter(mid) - 1 AS k,
           CASE WHEN ptype = 'Q' THEN datediff('day',
                    greatest(period_start, CAST(date_trunc('quarter', mid) AS DATE)),
                    least(period_end, CAST(date_trunc('quarter', mid) + INTERVAL 3 MONTH - INTERVAL 1 DAY AS DATE))) + 1
                ELSE 0 END AS overlap
    FROM q0
    QUALIFY row_number() OVER (PARTITION BY entity, metric, segment, dims, unit, cy, cq
                               ORDER BY overlap DESC, period_end DESC) = 1
),
quarters AS (
    SELECT entity, metric, segment, dims, unit, aggregation, 'CY' || cy || 'Q' || cq AS period, 'Q' AS ptype, k, cy, cq,
           period AS fiscal_period, period_start, period_end, value, original_value, original_unit, qualifier,
           derived, CASE WHEN derived THEN derivation END AS derivation, derived_from, reported_at,
           fx_rate, fx_basis, fx_source, fx_note, CAST(NULL AS VARCHAR) AS calendar_note
    FROM q
),
-- calendar years from their quarters
from_quarters AS (
    SELECT entity, metric, segment, dims, unit, any_value(aggregation) AS aggregation, cy,
           count(*) AS n, list(cq ORDER BY cq) AS present,
           CASE WHEN any_value(aggregation) = 'stock' THEN max(value) FILTER (WHERE cq = 4)
                WHEN any_value(aggregation) IN ('flow', 'per_share') AND count(*) = 4
                THEN ms_decimal(sum(value), sum(abs(value))) END AS value,
           CASE WHEN any_value(aggregation) = 'stock' THEN max(original_value) FILTER (WHERE cq = 4)
                WHEN any_value(aggregation) IN ('flow', 'per_share') AND count(*) = 4
                THEN ms_decimal(sum(original_value), sum(abs(original_value))) END
               AS original_value,
           any_value(original_unit) AS original_unit,
           CASE WHEN any_value(aggregation) = 'stock'
                THEN max(fiscal_period || ' (' || period || ')') FILTER (WHERE cq = 4)
                ELSE string_agg(fiscal_period || ' (' || period || ')', ' + ' ORDER BY cq) END AS fiscal_period,
           CASE WHEN any_value(aggregation) = 'stock' THEN max(period_start) FILTER (WHERE cq = 4)
                ELSE min(period_start) END AS period_start,
           max(period_end) AS period_end,
           CASE WHEN bool_and(qualifier = 'exact') AND any_value(aggregation) IN ('flow', 'stock') THEN 'exact'
                ELSE 'approx' END AS qualifier,
           CASE WHEN any_value(aggregation) = 'stock' THEN flatten(list(derived_from) FILTER (WHERE cq = 4))
                ELSE flatten(list(derived_from ORDER BY cq)) END AS derived_from, max(reported_at) AS reported_at,
           string_agg(DISTINCT fx_source, '; ') AS fx_source
    FROM quarters
    WHERE aggregation <> 'ratio'
    GROUP BY entity, metric, segment, dims, unit, cy
),
-- a fiscal year that is the calendar year
direct AS (
    SELECT g.*, year(ms_nominal_end(g.period_end)) AS cy
    FROM g
    WHERE g.ptype = 'FY' AND month(ms_nominal_end(g.period_end)) = 12 AND g.aggregation <> 'stock'
),
years AS (
    SELECT coalesce(d.entity, y.entity) AS entity, coalesce(d.metric, y.metric) AS metric,
           coalesce(d.segment, y.segment) AS segment, coalesce(d.dims, y.dims) AS dims,
           coalesce(d.unit, y.unit) AS unit, coalesce(d.aggregation, y.aggregation) AS aggregation,
           'CY' || coalesce(d.cy, y.cy) AS period, 'FY' AS ptype, coalesce(d.cy, y.cy) AS k, coalesce(d.cy, y.cy) AS cy,
           coalesce(d.period, y.fiscal_period) AS fiscal_period,
           coalesce(d.period_start, y.period_start) AS period_start, coalesce(d.period_end, y.period_end) AS period_end,
           CASE WHEN d.entity IS NOT NULL THEN d.value ELSE y.value END AS value,
           CASE WHEN d.entity IS NOT NULL THEN d.original_value ELSE y.original_value END AS original_value,
           coalesce(d.original_unit, y.original_unit) AS original_unit,
           coalesce(d.qualifier, y.qualifier) AS qualifier,
           d.entity IS NULL OR d.derived AS derived,
           CASE WHEN d.entity IS NOT NULL THEN d.derivation
                WHEN y.aggregation = 'stock' THEN 'the value of CY' || y.cy || 'Q4'
                ELSE 'CY' || y.cy || 'Q1 + Q2 + Q3 + Q4' END AS derivation,
           coalesce(d.derived_from, y.derived_from) AS derived_from,
           coalesce(d.reported_at, y.reported_at) AS reported_at,
           d.fx_rate, d.fx_basis, coalesce(d.fx_source, y.fx_source) AS fx_source, d.fx_note,
           CASE WHEN d.entity IS NULL AND y.value IS NULL
                THEN 'missing: ' || array_to_string(list_transform(
                         list_filter([1, 2, 3, 4], lambda i: NOT list_contains(y.present, i)
                                                        AND (y.aggregation <> 'stock' OR i = 4)),
                         lambda i: 'CY' || y.cy || 'Q' || i), ', ') END AS calendar_note
    FROM direct d
    FULL OUTER JOIN from_quarters y
      ON y.entity = d.entity AND y.metric = d.metric AND y.segment = d.segment AND y.dims = d.dims
     AND y.unit = d.unit AND y.cy = d.cy
),
a AS (
    SELECT * FROM quarters
    UNION ALL BY NAME
    SELECT * FROM years
)
SELECT * FROM a;

-- Formula metrics on calendar periods: each formula evaluated on its inputs' calendar rows
-- (queries/formula_sql.py compiles it on a store with formula definitions; here, none).
CREATE OR REPLACE MACRO formula_calendar_at(target, as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
SELECT *, NULL::VARCHAR AS fiscal_period FROM formula_placed_empty;

CREATE OR REPLACE MACRO calendar_at(target, as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH r AS (
    SELECT * FROM calendar_rows_at(target, as_of, as_recorded, only_entity := only_entity, only_metric := only_metric)
),
-- a figure reported under a formula metric's name stands over the computed one
a AS (
    SELECT * FROM r
    UNION ALL BY NAME
    SELECT c.* EXCLUDE (ord, fy, fye, months, kind, value_high, authority, recorded_at, source, source_ref,
                        as_reported, event_id),
           c.ord AS k, c.fy AS cy
    FROM formula_calendar_at(target, as_of, as_recorded, only_entity := only_entity, only_metric := only_metric) c
    WHERE c.value IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM r
        WHERE r.entity = c.entity AND r.metric = c.metric AND r.segment = c.segment AND r.dims = c.dims
          AND r.period = c.period)
),
w AS (
    SELECT *,
        CASE WHEN ptype = 'Q' THEN first_value({'period': period, 'value': value, 'original': original_value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 4 PRECEDING AND 4 PRECEDING)
             ELSE first_value({'period': period, 'value': value, 'original': original_value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING)
        END AS yoy,
        CASE WHEN ptype = 'Q' THEN first_value({'period': period, 'value': value}) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING)
        END AS qoq,
        CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN sum(value) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 3 PRECEDING AND CURRENT ROW)
        END AS ttm_sum,
        CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN count(value) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 3 PRECEDING AND CURRENT ROW)
        END AS ttm_n,
        CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN sum(abs(value)) OVER (
            PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY k RANGE BETWEEN 3 PRECEDING AND CURRENT ROW)
        END AS ttm_magnitude
    FROM a
)
SELECT entity, metric, segment, dims, period, fiscal_period, period_start, period_end, value, unit, qualifier,
       aggregation, derived, derivation, derived_from,
       yoy.period AS prior_period, yoy.value AS prior_value,
       ms_change(value, yoy.value) AS yoy_change,
       ms_pct_change(value, yoy.value, aggregation) AS yoy_pct,
       qoq.period AS qoq_period, qoq.value AS qoq_prior_value,
       ms_change(value, qoq.value) AS qoq_change,
       ms_pct_change(value, qoq.value, aggregation) AS qoq_pct,
       CASE WHEN ttm_n = 4 THEN ms_decimal(ttm_sum, ttm_magnitude) END AS ttm_value,
       original_value, original_unit,
       ms_pct_change(original_value, yoy.original, aggregation) AS yoy_pct_reporting,
       CASE WHEN original_unit <> unit
            THEN ms_pct_change(value, yoy.value, aggregation) - ms_pct_change(original_value, yoy.original, aggregation)
       END AS fx_effect,
       fx_rate, fx_basis, fx_source, fx_note, calendar_note, reported_at, cy, ptype
FROM w;

-- (calendar_in(NULL): on calendar periods, no conversion. No view: binding one costs every session.)
CREATE OR REPLACE MACRO calendar_in(target) AS TABLE
SELECT * FROM calendar_at(target, getvariable('as_of'), getvariable('as_recorded'));
