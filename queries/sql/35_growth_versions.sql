-- Every version of the growth view over publication time: what growth_at(d, NULL) answers at
-- each date d, as rows valid from valid_from (inclusive) to valid_to (exclusive; NULL: still the
-- answer). The growth snapshot keeps it, so that a point-in-time answer is read, not computed; a
-- test holds growth_versions() at d equal to growth_at(d, NULL) at every date anything changed.
--
-- A fact changes only when an event of its key is published or withdrawn: its versions are the
-- winner by facts_at's rule (fact_winners, 20_facts.sql) at each such time. A growth row is
-- computed from a few facts of its series (its fiscal year's figures for a derived quarter; the
-- priors and TTM quarters 28_growth_rules.sql says it reads), so it is computed again only at the
-- times one of those changed (an "epoch"), never once per date. The rules are those of growth_at,
-- the same macros (28_growth_rules.sql) over rows carrying their epoch; what is written here is
-- how the epochs are found, and a row's priors looked up at each (joins, where growth_at has
-- windows).

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
-- A speed-up (the same rows): a key with one event, never withdrawn, has one version, that event
-- from its publication on; the epochs and fact_winners' window are for the keys with more.
cn AS (
    SELECT c.*, n.events_here FROM c
    JOIN (SELECT entity, metric, segment, dims, period, kind, unit, count(*) AS events_here
          FROM c GROUP BY ALL) n USING (entity, metric, segment, dims, period, kind, unit)
),
c1 AS (SELECT *, reported_at AS t, NULL::DATE AS t_next FROM cn WHERE events_here = 1 AND withdrawn_at IS NULL),
cm AS (SELECT * EXCLUDE (events_here) FROM cn WHERE events_here > 1 OR withdrawn_at IS NOT NULL),
-- the times a key's winner may change, and the next such time
cp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, period, kind, unit ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, period, kind, unit, t FROM (
        SELECT entity, metric, segment, dims, period, kind, unit, reported_at AS t FROM cm
        UNION ALL
        SELECT entity, metric, segment, dims, period, kind, unit, withdrawn_at FROM cm WHERE withdrawn_at IS NOT NULL))
),
ct AS (
    SELECT cm.*, cp.t, cp.t_next
    FROM cp JOIN cm
      ON cm.entity = cp.entity AND cm.metric = cp.metric AND cm.segment = cp.segment AND cm.dims = cp.dims
     AND cm.period = cp.period AND cm.kind = cp.kind AND cm.unit = cp.unit
     AND cm.reported_at <= cp.t AND (cm.withdrawn_at IS NULL OR cp.t < cm.withdrawn_at)
)
SELECT * EXCLUDE (t, t_next), t AS valid_from, t_next AS valid_to FROM facts_of('c1')
UNION ALL BY NAME
SELECT * EXCLUDE (t, t_next), t AS valid_from, t_next AS valid_to FROM fact_winners('ct');

-- The rows growth_at places (facts and derived quarters, one per series and place) at each time,
-- from the fact versions in the table or view named ``facts``: the stages of 28_growth_rules.sql,
-- each run at the epochs its input changed.
CREATE OR REPLACE MACRO placed_versions(facts) AS TABLE
WITH p AS (SELECT * FROM growth_inputs(facts)),
yf AS (SELECT * FROM p WHERE ms_year_figure(aggregation, ptype)),
-- the epochs of a series' fiscal year: the times any of its year-to-date figures changed
ycp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, unit, fy ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, unit, fy, t FROM (
        SELECT entity, metric, segment, dims, unit, fy, valid_from AS t FROM yf
        UNION ALL
        SELECT entity, metric, segment, dims, unit, fy, valid_to FROM yf WHERE valid_to IS NOT NULL))
),
yt AS (
    SELECT yf.* EXCLUDE (valid_from, valid_to), ycp.t, ycp.t_next
    FROM ycp JOIN yf
      ON yf.entity = ycp.entity AND yf.metric = ycp.metric AND yf.segment = ycp.segment
     AND yf.dims = ycp.dims AND yf.unit = ycp.unit AND yf.fy = ycp.fy
     AND yf.valid_from <= ycp.t AND (yf.valid_to IS NULL OR ycp.t < yf.valid_to)
),
y AS (SELECT * FROM year_figures('yt')),
a AS (
    SELECT * FROM p WHERE ptype <> 'X'
    UNION ALL BY NAME
    SELECT * EXCLUDE (t, t_next), t AS valid_from, t_next AS valid_to FROM derived_parts('y')
),
-- A speed-up (the same rows): a place that only ever holds one row keeps it as it is; the epochs
-- and one_per_place's window are for the places that hold more.
an AS (
    SELECT a.*, n.rows_here FROM a
    JOIN (SELECT entity, metric, segment, dims, unit, ptype, months, ord, count(*) AS rows_here
          FROM a GROUP BY ALL) n USING (entity, metric, segment, dims, unit, ptype, months, ord)
),
am AS (SELECT * EXCLUDE (rows_here) FROM an WHERE rows_here > 1),
-- the epochs of a place: the times any row placed there changed
pcp AS (
    SELECT *, lead(t) OVER (PARTITION BY entity, metric, segment, dims, unit, ptype, months, ord ORDER BY t) AS t_next
    FROM (SELECT DISTINCT entity, metric, segment, dims, unit, ptype, months, ord, t FROM (
        SELECT entity, metric, segment, dims, unit, ptype, months, ord, valid_from AS t FROM am
        UNION ALL
        SELECT entity, metric, segment, dims, unit, ptype, months, ord, valid_to FROM am WHERE valid_to IS NOT NULL))
),
pt AS (
    SELECT am.* EXCLUDE (valid_from, valid_to), pcp.t, pcp.t_next
    FROM pcp JOIN am
      ON am.entity = pcp.entity AND am.metric = pcp.metric AND am.segment = pcp.segment AND am.dims = pcp.dims
     AND am.unit = pcp.unit AND am.ptype = pcp.ptype AND am.months = pcp.months AND am.ord = pcp.ord
     AND am.valid_from <= pcp.t AND (am.valid_to IS NULL OR pcp.t < am.valid_to)
)
SELECT * EXCLUDE (rows_here) FROM an WHERE rows_here = 1
UNION ALL BY NAME
SELECT * EXCLUDE (t, t_next), t AS valid_from, t_next AS valid_to FROM one_per_place('pt');

-- A speed-up (the same rows): every place of a series lies a multiple of its ``spacing`` (the
-- greatest common divisor of the places' distances, 0 for one place) from every other, so only
-- the offsets of ``back`` that are such multiples can hold a row: a quarterly series' TTM reads
-- 0, 3, 6 and 9 months back, not every month from 0 to 9.
CREATE OR REPLACE MACRO ms_spacing(ords, first) AS
    list_reduce(list_transform(ords, lambda o: o - first), lambda a, b: gcd(a, b));
CREATE OR REPLACE MACRO ms_reachable(back, spacing) AS
    list_filter(back, lambda k: k = 0 OR k % nullif(spacing, 0) = 0);

-- Growth rows at each time from the placed versions in the table or view named ``placed``.
-- (Three stages, so that the snapshot can write each to a table DuckDB may spill: one query
-- over ten million events would hold every intermediate in memory.)
CREATE OR REPLACE MACRO growth_versions_of(placed) AS TABLE
WITH placed AS (SELECT * FROM query_table(placed)),
-- The same rows numbered by the partition growth_at's windows run over (series, type of period,
-- length): the epochs below are worked out on integers, the wide rows joined back at the end.
-- back: the places (months back) a row of the partition reads (28_growth_rules.sql): itself, its
-- YoY and QoQ priors and its TTM's quarters.
parts AS (
    SELECT *, dense_rank() OVER (ORDER BY entity, metric, segment, dims, unit, ptype, months) AS sk,
           ms_qoq_back(ptype) AS qk,
           ms_reachable(list_distinct(list_filter([0, ms_yoy_back(), ms_qoq_back(ptype)], lambda k: k IS NOT NULL)
                                      || range(coalesce(ms_ttm_back(ptype, aggregation) + 1, 0))), spacing) AS back
    FROM (SELECT entity, metric, segment, dims, unit, ptype, months, any_value(aggregation) AS aggregation,
                 ms_spacing(list(ord), min(ord)) AS spacing
          FROM placed GROUP BY entity, metric, segment, dims, unit, ptype, months)
),
pk AS (
    SELECT placed.*, parts.sk, parts.back, parts.qk
    FROM placed JOIN parts USING (entity, metric, segment, dims, unit, ptype, months)
),
nk AS (SELECT sk, ord, valid_from, valid_to, period, value, qualifier, back, qk FROM pk),
-- A row's epochs: the times it or one of the rows it reads changed, while it exists.
ecp AS (
    SELECT DISTINCT sk, ord + k AS ord, t FROM (
        SELECT sk, ord, unnest(back) AS k, valid_from AS t FROM nk
        UNION ALL
        SELECT sk, ord, unnest(back) AS k, valid_to FROM nk WHERE valid_to IS NOT NULL)
),
e AS (
    SELECT o.sk, o.ord, o.valid_from AS own_from, o.valid_to AS own_to, o.back, o.qk, ecp.t,
           lead(ecp.t) OVER (PARTITION BY o.sk, o.ord ORDER BY ecp.t) AS t_next
    FROM ecp JOIN nk o
      ON o.sk = ecp.sk AND o.ord = ecp.ord AND o.valid_from <= ecp.t AND (o.valid_to IS NULL OR ecp.t < o.valid_to)
),
-- What each row reads at each epoch: the rows placed k months back, valid then.
looked AS (
    SELECT e.sk, e.ord, e.t, e.k, e.qk, r.period AS r_period, r.value AS r_value, r.qualifier AS r_qualifier
    FROM (SELECT sk, ord, t, qk, unnest(back) AS k FROM e) e
    JOIN nk r ON r.sk = e.sk AND r.ord = e.ord - e.k AND r.valid_from <= e.t AND (r.valid_to IS NULL OR e.t < r.valid_to)
),
-- One aggregate for each prior the rules name (qk: the row's QoQ offset); at most one row is
-- placed at an offset at a time, so a prior's fields come from one row.
pri AS (
    SELECT sk, ord, t,
        any_value(r_period) FILTER (WHERE k = 12) AS yoy_period,
        any_value(r_value) FILTER (WHERE k = 12) AS yoy_value,
        any_value(r_qualifier) FILTER (WHERE k = 12) AS yoy_qualifier,
        any_value(r_period) FILTER (WHERE k = qk) AS qoq_period,
        any_value(r_value) FILTER (WHERE k = qk) AS qoq_value,
        sum(r_value) FILTER (WHERE k <= 9) AS k_sum,
        count(*) FILTER (WHERE k <= 9) AS k_n,
        sum(abs(r_value)) FILTER (WHERE k <= 9) AS k_magnitude
    FROM looked
    GROUP BY sk, ord, t
),
w AS (
    SELECT pk.*, e.t,
        CASE WHEN ms_ttm_back(pk.ptype, pk.aggregation) = 9 THEN pri.k_sum END AS ttm_sum,
        CASE WHEN ms_ttm_back(pk.ptype, pk.aggregation) = 9 THEN pri.k_n END AS ttm_n,
        CASE WHEN ms_ttm_back(pk.ptype, pk.aggregation) = 9 THEN pri.k_magnitude END AS ttm_magnitude,
        CASE WHEN ms_yoy_back() = 12 AND pri.yoy_period IS NOT NULL
             THEN {'period': pri.yoy_period, 'value': pri.yoy_value, 'qualifier': pri.yoy_qualifier} END AS yoy,
        CASE WHEN pri.qoq_period IS NOT NULL THEN {'period': pri.qoq_period, 'value': pri.qoq_value} END AS qoq,
        CASE WHEN e.own_to IS NULL THEN e.t_next
             WHEN e.t_next IS NULL OR e.t_next > e.own_to THEN e.own_to ELSE e.t_next END AS t_next
    FROM e
    JOIN pri ON pri.sk = e.sk AND pri.ord = e.ord AND pri.t = e.t
    JOIN pk ON pk.sk = e.sk AND pk.ord = e.ord AND pk.valid_from = e.own_from
)
SELECT * FROM growth_columns('w');

CREATE OR REPLACE VIEW fact_versions_all AS SELECT * FROM fact_versions();
CREATE OR REPLACE VIEW placed_versions_all AS SELECT * FROM placed_versions('fact_versions_all');
CREATE OR REPLACE MACRO growth_versions() AS TABLE SELECT * FROM growth_versions_of('placed_versions_all');
