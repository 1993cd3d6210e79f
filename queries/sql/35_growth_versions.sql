-- Every version of the growth view over publication time: what growth_at(d, NULL) answers at
-- each date d, as rows valid from valid_from (inclusive) to valid_to (exclusive; NULL: still the
-- answer). The growth snapshot keeps it, so that a point-in-time answer is read, not computed; a
-- test holds growth_versions() at d equal to growth_at(d, NULL) at every date anything changed.
--
-- A fact changes only when an event of its key is published or withdrawn: its versions are the
-- winner by facts_at's rule at each such time. A growth row is computed from a few facts of its
-- series (its fiscal year's figures for a derived quarter; the periods 12, 6, 3 or 1 months
-- before for YoY and QoQ; the quarters of its TTM), so it is computed again only at the times
-- one of those changed (an "epoch"), never once per date. Each stage below mirrors the same
-- stage of growth_at, computed per epoch.

CREATE OR REPLACE MACRO fact_versions() AS TABLE
WITH v AS (SELECT * FROM visible_events(NULL, NULL)),
-- when each event was withdrawn: the first withdrawal naming it, filed under any entity
wd AS (
    SELECT supersedes AS withdrawn_id, min(reported_at) AS withdrawn_at
    FROM event_log WHERE supersedes IS NOT NULL GROUP BY supersedes
),
c AS (
    SELECT v.*, wd.withdrawn_at
    FROM v LEFT JOIN wd ON wd.withdrawn_id = v.event_id
    WHERE NOT (v.op = 'retract' AND v.supersedes IS NOT NULL)
),
-- the times a key's winner may change, and the next such time
cp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, period, kind, unit ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, period, kind, unit, t FROM (
        SELECT entity, metric, segment, dims, period, kind, unit, reported_at AS t FROM c
        UNION ALL
        SELECT entity, metric, segment, dims, period, kind, unit, withdrawn_at FROM c WHERE withdrawn_at IS NOT NULL))
),
won AS (
    SELECT c.*, cp.t AS valid_from, cp.t_next AS valid_to
    FROM cp JOIN c
      ON c.entity = cp.entity AND c.metric = cp.metric AND c.segment = cp.segment AND c.dims = cp.dims
     AND c.period = cp.period AND c.kind = cp.kind AND c.unit = cp.unit
     AND c.reported_at <= cp.t AND (c.withdrawn_at IS NULL OR cp.t < c.withdrawn_at)
    QUALIFY row_number() OVER (
        PARTITION BY c.entity, c.metric, c.segment, c.dims, c.period, c.kind, c.unit, cp.t
        ORDER BY CASE c.authority WHEN 'primary' THEN 2 ELSE 1 END DESC,
                 CASE c.qualifier WHEN 'approx' THEN 0 ELSE 1 END DESC,
                 c.reported_at DESC, c.recorded_at DESC, c.event_id DESC) = 1
)
SELECT entity, metric, segment, dims, period, period_start, period_end, kind, value, value_high,
       unit, qualifier, authority, reported_at, recorded_at, source, source_ref, as_reported,
       event_id, false AS derived, [event_id] AS derived_from, fye, ptype, months, ord, fy,
       valid_from, valid_to
FROM won
WHERE op = 'assert';

-- The rows growth_at places (facts and derived quarters, one per series and place) at each time,
-- from the fact versions in the table or view named ``facts``.
CREATE OR REPLACE MACRO placed_versions(facts) AS TABLE
WITH p AS (
    SELECT f.*, coalesce(m.aggregation, 'flow') AS aggregation, NULL::VARCHAR AS derivation
    FROM query_table(facts) f
    LEFT JOIN metrics m ON m.metric = f.metric
    WHERE f.kind = 'actual'
),
yf AS (SELECT * FROM p WHERE aggregation IN ('flow', 'per_share') AND ptype IN ('FY', 'YTD', 'H', 'Q')),
-- the epochs of a series' fiscal year: the times any of its year-to-date figures changed
ycp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, unit, fy ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, unit, fy, t FROM (
        SELECT entity, metric, segment, dims, unit, fy, valid_from AS t FROM yf
        UNION ALL
        SELECT entity, metric, segment, dims, unit, fy, valid_to FROM yf WHERE valid_to IS NOT NULL))
),
y AS (
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
    FROM (SELECT yf.* EXCLUDE (valid_from, valid_to), ycp.t, ycp.t_next
          FROM ycp JOIN yf
            ON yf.entity = ycp.entity AND yf.metric = ycp.metric AND yf.segment = ycp.segment
           AND yf.dims = ycp.dims AND yf.unit = ycp.unit AND yf.fy = ycp.fy
           AND yf.valid_from <= ycp.t AND (yf.valid_to IS NULL OR ycp.t < yf.valid_to))
    GROUP BY entity, metric, segment, dims, unit, fy, t
),
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
           fy, derivation, t AS valid_from, t_next AS valid_to
    FROM d
),
a AS (
    SELECT * FROM p WHERE ptype <> 'X'
    UNION ALL BY NAME
    SELECT * FROM derived
),
-- One row per series and place at each time: two instants in the same month keep the later.
pcp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, unit, ptype, months, ord ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, unit, ptype, months, ord, t FROM (
        SELECT entity, metric, segment, dims, unit, ptype, months, ord, valid_from AS t FROM a
        UNION ALL
        SELECT entity, metric, segment, dims, unit, ptype, months, ord, valid_to FROM a WHERE valid_to IS NOT NULL))
),
placed AS (
    SELECT a.* EXCLUDE (valid_from, valid_to), pcp.t AS valid_from, pcp.t_next AS valid_to
    FROM pcp JOIN a
      ON a.entity = pcp.entity AND a.metric = pcp.metric AND a.segment = pcp.segment AND a.dims = pcp.dims
     AND a.unit = pcp.unit AND a.ptype = pcp.ptype AND a.months = pcp.months AND a.ord = pcp.ord
     AND a.valid_from <= pcp.t AND (a.valid_to IS NULL OR pcp.t < a.valid_to)
    QUALIFY row_number() OVER (PARTITION BY a.entity, a.metric, a.segment, a.dims, a.unit, a.ptype, a.months,
                                            a.ord, pcp.t ORDER BY a.period_end DESC) = 1
)
SELECT * FROM placed;

-- Growth rows at each time from the placed versions in the table or view named ``placed``.
-- (Three stages, so that the snapshot can write each to a table DuckDB may spill: one query
-- over ten million events would hold every intermediate in memory.)
CREATE OR REPLACE MACRO growth_versions_of(placed) AS TABLE
WITH placed AS (SELECT * FROM query_table(placed)),
-- The same rows numbered by the partition growth_at's windows run over (series, type of period,
-- length): the epochs below are worked out on integers, the wide rows joined back at the end.
parts AS (
    SELECT *, dense_rank() OVER (ORDER BY entity, metric, segment, dims, unit, ptype, months) AS sk
    FROM (SELECT DISTINCT entity, metric, segment, dims, unit, ptype, months FROM placed)
),
pk AS (
    SELECT placed.*, parts.sk
    FROM placed JOIN parts USING (entity, metric, segment, dims, unit, ptype, months)
),
-- The places (months back) a row's priors and TTM are read from, by type of period: the windows
-- of growth_at (a TTM frame holds every quarter placed 0-9 months back).
nk AS (
    SELECT sk, ord, valid_from, valid_to, period, value, qualifier,
           CASE ptype WHEN 'Q' THEN [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12] WHEN 'I' THEN [0, 3, 12]
                      WHEN 'H' THEN [0, 6, 12] WHEN 'M' THEN [0, 1, 12] ELSE [0, 12] END AS back
    FROM pk
),
-- A row's epochs: the times it or one of the rows it reads changed, while it exists.
ecp AS (
    SELECT DISTINCT sk, ord + k AS ord, t FROM (
        SELECT sk, ord, unnest(back) AS k, valid_from AS t FROM nk
        UNION ALL
        SELECT sk, ord, unnest(back) AS k, valid_to FROM nk WHERE valid_to IS NOT NULL)
),
e AS (
    SELECT o.sk, o.ord, o.valid_from AS own_from, o.valid_to AS own_to, o.back, ecp.t,
           lead(ecp.t) OVER (PARTITION BY o.sk, o.ord ORDER BY ecp.t) AS t_next
    FROM ecp JOIN nk o
      ON o.sk = ecp.sk AND o.ord = ecp.ord AND o.valid_from <= ecp.t AND (o.valid_to IS NULL OR ecp.t < o.valid_to)
),
-- What each row reads at each epoch: the rows placed k months back, valid then.
looked AS (
    SELECT e.sk, e.ord, e.t, e.k, r.period AS r_period, r.value AS r_value, r.qualifier AS r_qualifier
    FROM (SELECT sk, ord, t, unnest(back) AS k FROM e) e
    JOIN nk r ON r.sk = e.sk AND r.ord = e.ord - e.k AND r.valid_from <= e.t AND (r.valid_to IS NULL OR e.t < r.valid_to)
),
pri AS (
    SELECT sk, ord, t,
        any_value({'period': r_period, 'value': r_value, 'qualifier': r_qualifier}) FILTER (WHERE k = 12) AS yoy,
        any_value({'period': r_period, 'value': r_value}) FILTER (WHERE k = 3) AS prev3,
        any_value({'period': r_period, 'value': r_value}) FILTER (WHERE k = 6) AS prev6,
        any_value({'period': r_period, 'value': r_value}) FILTER (WHERE k = 1) AS prev1,
        sum(r_value) FILTER (WHERE k <= 9) AS k_sum,
        count(*) FILTER (WHERE k <= 9) AS k_n
    FROM looked
    GROUP BY sk, ord, t
),
w AS (
    SELECT pk.*, e.t,
        CASE WHEN pk.ptype = 'Q' AND pk.aggregation IN ('flow', 'per_share') THEN pri.k_sum END AS ttm_sum,
        CASE WHEN pk.ptype = 'Q' AND pk.aggregation IN ('flow', 'per_share') THEN pri.k_n END AS ttm_n,
        pri.yoy,
        CASE WHEN pk.ptype IN ('Q', 'I') THEN pri.prev3 END AS prev3,
        CASE WHEN pk.ptype = 'H' THEN pri.prev6 END AS prev6,
        CASE WHEN pk.ptype = 'M' THEN pri.prev1 END AS prev1,
        CASE WHEN e.own_to IS NULL THEN e.t_next
             WHEN e.t_next IS NULL OR e.t_next > e.own_to THEN e.own_to ELSE e.t_next END AS epoch_end
    FROM e
    JOIN pri ON pri.sk = e.sk AND pri.ord = e.ord AND pri.t = e.t
    JOIN pk ON pk.sk = e.sk AND pk.ord = e.ord AND pk.valid_from = e.own_from
),
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
       reported_at, fy, ptype, t AS valid_from, epoch_end AS valid_to
FROM c;

CREATE OR REPLACE VIEW fact_versions_all AS SELECT * FROM fact_versions();
CREATE OR REPLACE VIEW placed_versions_all AS SELECT * FROM placed_versions('fact_versions_all');
CREATE OR REPLACE MACRO growth_versions() AS TABLE SELECT * FROM growth_versions_of('placed_versions_all');
