-- The rules of growth, each defined once. growth_at (30_growth.sql: the answer at one time) and
-- the versions (35_growth_versions.sql: every answer over publication time) run the same stages.
--
-- Each stage reads a relation by name (query_table: a table, a view or a CTE of the caller) whose
-- rows carry an epoch: t, the time from which the row holds, and t_next, the time it stops
-- holding (NULL: it still does). The answer at one time carries t = t_next = NULL throughout; the
-- versions carry the times their inputs changed. A stage that groups or ranks rows does so per
-- epoch. Only how the epochs are found, and how a row's priors are looked up (windows at one
-- time, joins over epochs), differ between the two; which priors a row reads is said here.

-- The rows growth reads: the actual facts, with their metric's aggregation (flow, per_share,
-- stock, ratio).
CREATE OR REPLACE MACRO growth_inputs(facts) AS TABLE
SELECT f.*, coalesce(m.aggregation, 'flow') AS aggregation, NULL::VARCHAR AS derivation
FROM query_table(facts) f
LEFT JOIN metrics m ON m.metric = f.metric
WHERE f.kind = 'actual';

-- The year-to-date figures missing quarters and halves are derived from.
CREATE OR REPLACE MACRO ms_year_figure(aggregation, ptype) AS
    aggregation IN ('flow', 'per_share') AND ptype IN ('FY', 'YTD', 'H', 'Q');

-- A series' figures of each fiscal year, at each epoch.
CREATE OR REPLACE MACRO year_figures(rows) AS TABLE
SELECT entity, metric, segment, dims, unit, fy, t, any_value(t_next) AS t_next, any_value(fye) AS fye,
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
FROM query_table(rows)
WHERE ms_year_figure(aggregation, ptype)
GROUP BY entity, metric, segment, dims, unit, fy, t;

-- The missing quarters and halves of a flow, derived from a year's figures and marked derived,
-- with the event ids they were computed from. A per-share figure's are approx: FY EPS - 9M EPS
-- is not the quarter's EPS when the share count changed. Each year is paired with every rule (r)
-- and kept with those that apply: one read of the years, which plans cheaper than a union of one
-- filter per rule (and, unnested, runs as fast).
CREATE OR REPLACE MACRO derived_parts(years) AS TABLE
SELECT entity, metric, segment, dims, fy || part AS period, period_start, period_end,
       'actual' AS kind, value, NULL::DOUBLE AS value_high, unit,
       CASE WHEN all_exact THEN 'exact' ELSE 'approx' END AS qualifier,
       NULL::VARCHAR AS authority, last_reported AS reported_at, last_recorded AS recorded_at,
       'derived' AS source, derivation AS source_ref, NULL::VARCHAR AS as_reported,
       NULL::VARCHAR AS event_id, true AS derived, derived_from, fye,
       aggregation, left(part, 1) AS ptype,
       CASE left(part, 1) WHEN 'Q' THEN 3 ELSE 6 END AS months,
       year(ms_nominal_end(period_end)) * 12 + month(ms_nominal_end(period_end)) AS ord,
       fy, derivation, t, t_next
FROM (
    SELECT y.*, r.part, r.derivation,
           ms_decimal(CASE r.derivation WHEN 'H1 - Q1' THEN h1_v - q1_v WHEN '9M - H1' THEN m9_v - h1_v
                WHEN 'FY - 9M' THEN fy_v - m9_v WHEN 'FY - Q1 - Q2 - Q3' THEN fy_v - q1_v - q2_v - q3_v
                WHEN 'FY - H1' THEN fy_v - h1_v END,
                CASE r.derivation WHEN 'H1 - Q1' THEN abs(h1_v) + abs(q1_v) WHEN '9M - H1' THEN abs(m9_v) + abs(h1_v)
                     WHEN 'FY - 9M' THEN abs(fy_v) + abs(m9_v)
                     WHEN 'FY - Q1 - Q2 - Q3' THEN abs(fy_v) + abs(q1_v) + abs(q2_v) + abs(q3_v)
                     WHEN 'FY - H1' THEN abs(fy_v) + abs(h1_v) END) AS value,
           CASE r.derivation WHEN 'H1 - Q1' THEN [h1_id, q1_id] WHEN '9M - H1' THEN [m9_id, h1_id]
                WHEN 'FY - 9M' THEN [fy_id, m9_id] WHEN 'FY - Q1 - Q2 - Q3' THEN [fy_id, q1_id, q2_id, q3_id]
                WHEN 'FY - H1' THEN [fy_id, h1_id] END AS derived_from,
           -- the day after the last figure it is computed from ends, to the end of the first
           CAST(CASE r.derivation WHEN 'H1 - Q1' THEN q1_end WHEN '9M - H1' THEN h1_end WHEN 'FY - 9M' THEN m9_end
                     WHEN 'FY - Q1 - Q2 - Q3' THEN q3_end WHEN 'FY - H1' THEN h1_end END
                + INTERVAL 1 DAY AS DATE) AS period_start,
           CASE r.part WHEN 'Q2' THEN h1_end WHEN 'Q3' THEN m9_end ELSE fy_end END AS period_end
    FROM (SELECT *, unnest([{'part': 'Q2', 'derivation': 'H1 - Q1'}, {'part': 'Q3', 'derivation': '9M - H1'},
                            {'part': 'Q4', 'derivation': 'FY - 9M'}, {'part': 'Q4', 'derivation': 'FY - Q1 - Q2 - Q3'},
                            {'part': 'H2', 'derivation': 'FY - H1'}]) AS r
          FROM query_table(years)) y
    WHERE CASE r.derivation
        WHEN 'H1 - Q1' THEN q2_v IS NULL AND h1_v IS NOT NULL AND q1_v IS NOT NULL
        WHEN '9M - H1' THEN q3_v IS NULL AND m9_v IS NOT NULL AND h1_v IS NOT NULL
        WHEN 'FY - 9M' THEN q4_v IS NULL AND fy_v IS NOT NULL AND m9_v IS NOT NULL
        WHEN 'FY - Q1 - Q2 - Q3' THEN q4_v IS NULL AND m9_v IS NULL AND fy_v IS NOT NULL
                                      AND q1_v IS NOT NULL AND q2_v IS NOT NULL AND q3_v IS NOT NULL
        WHEN 'FY - H1' THEN h2_v IS NULL AND fy_v IS NOT NULL AND h1_v IS NOT NULL END
) d;

-- One row per series and place (at each epoch): two instants in the same month keep the later;
-- a period of no known type (X) has no place.
CREATE OR REPLACE MACRO one_per_place(rows) AS TABLE
SELECT * FROM query_table(rows) WHERE ptype <> 'X'
QUALIFY row_number() OVER (PARTITION BY entity, metric, segment, dims, unit, ptype, months, ord, t
                           ORDER BY period_end DESC) = 1;

-- The priors a row reads, in months back from its place, among the rows of its series with the
-- same type and length of period: YoY 12 months back (so 52/53-week years of 364 or 371 days
-- match); QoQ the adjacent period (a quarter, half or month before; an instant a quarter
-- before); TTM the quarters placed 0-9 months back, for a flow or per-share quarter.
CREATE OR REPLACE MACRO ms_yoy_back() AS 12;
CREATE OR REPLACE MACRO ms_qoq_back(ptype) AS
    CASE WHEN ptype IN ('Q', 'I') THEN 3 WHEN ptype = 'H' THEN 6 WHEN ptype = 'M' THEN 1 END;
CREATE OR REPLACE MACRO ms_ttm_back(ptype, aggregation) AS
    CASE WHEN ptype = 'Q' AND aggregation IN ('flow', 'per_share') THEN 9 END;

-- The growth columns of rows with their priors: yoy ({period, value, qualifier}) and qoq
-- ({period, value}) the rows read, ttm_sum, ttm_n and ttm_magnitude the sum, count and summed
-- magnitudes of the TTM's quarters (ms_decimal).
-- Percent changes are NULL on a zero or negative base and for ratio metrics, whose changes are
-- in ratio units (0.03 is +3 pp); a TTM needs its four quarters.
-- A growth's percent change from b to a: none for a ratio (its change is in points) or on a
-- zero or negative base.
CREATE OR REPLACE MACRO ms_pct_change(a, b, aggregation) AS
    CASE WHEN aggregation <> 'ratio' AND b > 0 THEN ms_change(a, b) / b END;

CREATE OR REPLACE MACRO growth_columns(rows) AS TABLE
SELECT entity, metric, segment, dims, period, period_start, period_end, kind,
       value, unit, qualifier, aggregation, derived, derivation, derived_from,
       source, event_id,
       yoy.period AS prior_period, yoy.value AS prior_value, yoy.qualifier AS prior_qualifier,
       ms_change(value, yoy.value) AS yoy_change,
       ms_pct_change(value, yoy.value, aggregation) AS yoy_pct,
       qoq.period AS qoq_period, qoq.value AS qoq_prior_value,
       ms_change(value, qoq.value) AS qoq_change,
       ms_pct_change(value, qoq.value, aggregation) AS qoq_pct,
       CASE WHEN ttm_n = 4 THEN ms_decimal(ttm_sum, ttm_magnitude) END AS ttm_value,
       reported_at, fy, ptype, t AS valid_from, t_next AS valid_to
FROM query_table(rows);
