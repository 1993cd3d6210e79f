-- Growth of actual figures: YoY, QoQ and TTM, with derived quarters and halves.
--
-- A series is (entity, metric, segment, dims, unit). Periods are placed by the month their nominal
-- end falls in (ord = year * 12 + month): the YoY prior is the same type and length of period 12
-- months earlier (so 52/53-week years of 364 or 371 days match), the QoQ prior the adjacent one.
-- Missing quarters of a flow are derived from year-to-date figures (Q2 = H1 - Q1,
-- Q3 = 9M - H1, Q4 = FY - 9M, or FY - Q1 - Q2 - Q3; H2 = FY - H1) and marked derived, with the
-- event ids they were computed from. Percent changes are NULL on a zero or negative base and for
-- ratio metrics, whose changes are in ratio units (0.03 is +3 pp).

CREATE OR REPLACE MACRO placed_facts(as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
SELECT f.*, coalesce(m.aggregation, 'flow') AS aggregation,
       ms_period_type(f.period) AS ptype,
       ms_period_months(f.period_start, f.period_end) AS months,
       year(ms_nominal_end(f.period_end)) * 12 + month(ms_nominal_end(f.period_end)) AS ord,
       ms_fiscal_year(f.period_end, f.fye) AS fy,
       NULL::VARCHAR AS derivation
FROM facts_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric) f
LEFT JOIN metrics m ON m.metric = f.metric
WHERE f.kind = 'actual';

CREATE OR REPLACE MACRO derived_periods(as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH p AS (SELECT * FROM placed_facts(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric)
           WHERE aggregation = 'flow'),
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
        bool_and(qualifier = 'exact') AS all_exact
    FROM p
    WHERE ptype IN ('FY', 'YTD', 'H', 'Q')
    GROUP BY ALL
),
d AS (
    SELECT y.*, q.*
    FROM y,
    LATERAL (
        SELECT 'Q2' AS part, h1_v - q1_v AS value, 'H1 - Q1' AS derivation, [h1_id, q1_id] AS derived_from,
               CAST(q1_end + INTERVAL 1 DAY AS DATE) AS period_start, h1_end AS period_end
        WHERE q2_v IS NULL AND h1_v IS NOT NULL AND q1_v IS NOT NULL
        UNION ALL
        SELECT 'Q3', m9_v - h1_v, '9M - H1', [m9_id, h1_id], CAST(h1_end + INTERVAL 1 DAY AS DATE), m9_end
        WHERE q3_v IS NULL AND m9_v IS NOT NULL AND h1_v IS NOT NULL
        UNION ALL
        SELECT 'Q4', fy_v - m9_v, 'FY - 9M', [fy_id, m9_id], CAST(m9_end + INTERVAL 1 DAY AS DATE), fy_end
        WHERE q4_v IS NULL AND fy_v IS NOT NULL AND m9_v IS NOT NULL
        UNION ALL
        SELECT 'Q4', fy_v - q1_v - q2_v - q3_v, 'FY - Q1 - Q2 - Q3', [fy_id, q1_id, q2_id, q3_id],
               CAST(q3_end + INTERVAL 1 DAY AS DATE), fy_end
        WHERE q4_v IS NULL AND m9_v IS NULL AND fy_v IS NOT NULL
          AND q1_v IS NOT NULL AND q2_v IS NOT NULL AND q3_v IS NOT NULL
        UNION ALL
        SELECT 'H2', fy_v - h1_v, 'FY - H1', [fy_id, h1_id], CAST(h1_end + INTERVAL 1 DAY AS DATE), fy_end
        WHERE h2_v IS NULL AND fy_v IS NOT NULL AND h1_v IS NOT NULL
    ) q
)
SELECT entity, metric, segment, dims, fy || part AS period, period_start, period_end,
       'actual' AS kind, value, NULL::DOUBLE AS value_high, unit,
       CASE WHEN all_exact THEN 'exact' ELSE 'approx' END AS qualifier,
       NULL::VARCHAR AS authority, last_reported AS reported_at, last_recorded AS recorded_at,
       'derived' AS source, derivation AS source_ref, NULL::VARCHAR AS as_reported,
       NULL::VARCHAR AS event_id, true AS derived, derived_from, fye,
       'flow' AS aggregation, left(part, 1) AS ptype,
       CASE left(part, 1) WHEN 'Q' THEN 3 ELSE 6 END AS months,
       year(ms_nominal_end(period_end)) * 12 + month(ms_nominal_end(period_end)) AS ord,
       fy, derivation
FROM d;

-- only_entity / only_metric (optional): one series' growth without computing every series'.
CREATE OR REPLACE MACRO growth_at(as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH a AS (
    SELECT * FROM placed_facts(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric)
    UNION ALL BY NAME
    SELECT * FROM derived_periods(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric)
),
-- One row per series and place: two instants in the same month keep the later.
placed AS (
    SELECT * FROM a WHERE ptype <> 'X'
    QUALIFY row_number() OVER (PARTITION BY entity, metric, segment, dims, unit, ptype, months, ord
                               ORDER BY period_end DESC) = 1
),
w AS (
    SELECT *,
        CASE WHEN ptype = 'Q' AND aggregation = 'flow' THEN
            sum(value) OVER q4 END AS ttm_sum,
        CASE WHEN ptype = 'Q' AND aggregation = 'flow' THEN
            count(*) OVER q4 END AS ttm_n
    FROM placed
    WINDOW q4 AS (PARTITION BY entity, metric, segment, dims, unit, ptype ORDER BY ord
                  RANGE BETWEEN 9 PRECEDING AND CURRENT ROW)
)
SELECT c.entity, c.metric, c.segment, c.dims, c.period, c.period_start, c.period_end, c.kind,
       c.value, c.unit, c.qualifier, c.aggregation, c.derived, c.derivation, c.derived_from,
       c.source, c.event_id,
       y.period AS prior_period, y.value AS prior_value, y.qualifier AS prior_qualifier,
       c.value - y.value AS yoy_change,
       CASE WHEN c.aggregation <> 'ratio' AND y.value > 0 THEN (c.value - y.value) / y.value END AS yoy_pct,
       q.period AS qoq_period, q.value AS qoq_prior_value,
       c.value - q.value AS qoq_change,
       CASE WHEN c.aggregation <> 'ratio' AND q.value > 0 THEN (c.value - q.value) / q.value END AS qoq_pct,
       CASE WHEN c.ttm_n = 4 THEN c.ttm_sum END AS ttm_value,
       c.reported_at, c.fy, c.ptype
FROM w c
LEFT JOIN placed y
  ON y.entity = c.entity AND y.metric = c.metric AND y.segment = c.segment AND y.dims = c.dims
 AND y.unit = c.unit AND y.ptype = c.ptype AND y.months = c.months AND y.ord = c.ord - 12
LEFT JOIN placed q
  ON q.entity = c.entity AND q.metric = c.metric AND q.segment = c.segment AND q.dims = c.dims
 AND q.unit = c.unit AND q.ptype = c.ptype AND q.months = c.months
 AND c.ptype IN ('Q', 'H', 'M', 'I')
 AND q.ord = c.ord - CASE c.ptype WHEN 'Q' THEN 3 WHEN 'H' THEN 6 WHEN 'M' THEN 1 ELSE 3 END;

CREATE OR REPLACE VIEW growth AS
SELECT * FROM growth_at(getvariable('as_of'), getvariable('as_recorded'));

CREATE OR REPLACE MACRO growth_as_of(d) AS TABLE SELECT * FROM growth_at(d, NULL);
CREATE OR REPLACE MACRO growth_as_recorded(t) AS TABLE SELECT * FROM growth_at(NULL, t);
