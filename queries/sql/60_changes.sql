-- The change feed: one row per change an ingest run made to the current answers (the facts view
-- with no as_of), in system time. A run is the events of one run_id (or of one commit, for events
-- written without a run). For each fact key a run touched (an event of the key, or a withdrawal
-- naming one), the winner by facts_at's rule among the events recorded before the run's first
-- such event is compared with the winner once its last one was recorded:
--   new              no current value before, one after
--   restated         an actual figure's value changed
--   revised          a guidance, target or estimate changed (value or range)
--   retracted        a current value before, none after (a retract event, or a withdrawal)
--   approx_to_exact  an approximate figure replaced by an exact one
--   split_adjusted   a restated share count or per-share figure moved by the ratio of a stock
--                    split: the run re-reported both share counts (unit 'shares') and per-share
--                    figures ('.../share', per_share metrics) of the entity by one ratio, share
--                    counts multiplied and per-share figures divided by it (split_ratio: 7 for
--                    a 7-for-1 split, 0.1 for a 1-for-10 reverse one)
-- A new event that repeats the current value (a comparative in a later filing) changes nothing
-- and has no row. as_recorded applies (the feed as the store knew it then); as_of does not.

-- A figure for a change's text: thousands separated, at most one decimal from 1,000 up.
CREATE OR REPLACE MACRO ms_amount(x, div) AS
    CASE WHEN x IS NULL THEN NULL
         WHEN abs(x / div) >= 1000 AND x / div = round(x / div) THEN format('{:,.0f}', x / div)
         WHEN abs(x / div) >= 1000 THEN format('{:,.1f}', x / div)
         ELSE format('{:.6g}', x / div) END;

-- A signed change in percent or points: one decimal, or two significant digits below 0.1 (-0.029,
-- not -0.0, for Apple's FY2007 net income restated from 3,496 to 3,495 M USD).
CREATE OR REPLACE MACRO ms_signed(x) AS
    CASE WHEN abs(x) >= 0.1 OR x = 0 THEN format('{:+.1f}', x) ELSE format('{:+.2g}', x) END;

-- A value as the feed writes it: "about 1.8", "30 to 33", "at least 0.63" (ratios in %).
CREATE OR REPLACE MACRO ms_change_value(v, vh, q, div) AS
    CASE q WHEN 'approx' THEN 'about ' WHEN 'at_least' THEN 'at least ' WHEN 'at_most' THEN 'at most ' ELSE '' END
    || ms_amount(v, div) || CASE WHEN vh IS NOT NULL THEN ' to ' || ms_amount(vh, div) ELSE '' END;

CREATE OR REPLACE MACRO changes_at(as_recorded, only_run := NULL, only_entity := NULL) AS TABLE
WITH
-- one run's changes read only the entities it wrote or withdrew an event of
run_entities AS (
    SELECT entity FROM event_log WHERE only_run IS NOT NULL AND coalesce(run_id, commit_id) = only_run
    UNION
    SELECT t.entity FROM event_log t JOIN event_log w ON t.event_id = w.supersedes
    WHERE only_run IS NOT NULL AND coalesce(w.run_id, w.commit_id) = only_run
),
-- each event once (as lineage_events, narrowed first)
v AS (
    SELECT *, coalesce(run_id, commit_id) AS run FROM visible_events(NULL, as_recorded, only_entity := only_entity)
    WHERE only_run IS NULL OR entity IN (SELECT entity FROM run_entities)
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY recorded_at, commit_id) = 1
),
-- each withdrawal (an event naming another in supersedes, filed under any entity): when, by which run
wd AS (
    SELECT supersedes AS withdrawn_id, event_id AS by_id, coalesce(run_id, commit_id) AS by_run, recorded_at,
           source, source_ref, reported_at
    FROM event_log
    WHERE supersedes IS NOT NULL
      AND (as_recorded IS NULL OR recorded_at <= CAST(as_recorded AS TIMESTAMPTZ))
),
wd_first AS (SELECT withdrawn_id, min(recorded_at) AS withdrawn_at FROM wd GROUP BY withdrawn_id),
c AS (
    SELECT v.*, wd_first.withdrawn_at
    FROM v LEFT JOIN wd_first ON wd_first.withdrawn_id = v.event_id
    WHERE NOT (v.op = 'retract' AND v.supersedes IS NOT NULL)
),
-- the keys each run touched: its own events, and the keys of the events it withdrew
touched AS (
    SELECT entity, metric, segment, dims, period, kind, unit, period_end, run, recorded_at, NULL AS by_id FROM c
    WHERE only_run IS NULL OR run = only_run
    UNION ALL
    SELECT t.entity, t.metric, t.segment, t.dims, t.period, t.kind, t.unit, t.period_end, wd.by_run,
           wd.recorded_at, wd.by_id
    FROM wd JOIN v t ON t.event_id = wd.withdrawn_id
    WHERE only_run IS NULL OR wd.by_run = only_run
),
touch AS (
    SELECT entity, metric, segment, dims, period, kind, unit, run, max(period_end) AS period_end,
           min(recorded_at) AS t0, max(recorded_at) AS t1,
           arg_max(by_id, recorded_at) FILTER (WHERE by_id IS NOT NULL) AS withdrawal_id
    FROM touched GROUP BY entity, metric, segment, dims, period, kind, unit, run
),
-- the winner of each touched key just before the run (side 0) and once it was done (side 1);
-- a winning retract hides the fact (op = 'retract')
sides AS (
    SELECT touch.*, 0 AS side FROM touch UNION ALL SELECT touch.*, 1 FROM touch
),
won AS (
    SELECT s.entity, s.metric, s.segment, s.dims, s.period, s.kind, s.unit, s.run, s.side,
           c.event_id, c.op, c.value, c.value_high, c.qualifier, c.run AS event_run
    FROM sides s JOIN c
      ON c.entity = s.entity AND c.metric = s.metric AND c.segment = s.segment AND c.dims = s.dims
     AND c.period = s.period AND c.kind = s.kind AND c.unit = s.unit
     AND CASE WHEN s.side = 0 THEN c.recorded_at < s.t0 ELSE c.recorded_at <= s.t1 END
     AND (c.withdrawn_at IS NULL OR CASE WHEN s.side = 0 THEN c.withdrawn_at >= s.t0 ELSE c.withdrawn_at > s.t1 END)
    QUALIFY row_number() OVER (
        PARTITION BY s.entity, s.metric, s.segment, s.dims, s.period, s.kind, s.unit, s.run, s.side
        ORDER BY CASE c.authority WHEN 'primary' THEN 2 ELSE 1 END DESC,
                 CASE c.qualifier WHEN 'approx' THEN 0 ELSE 1 END DESC,
                 c.reported_at DESC, c.recorded_at DESC, c.event_id DESC) = 1
),
pair AS (
    SELECT t.*, b.event_id AS old_event_id, b.value AS old_value, b.value_high AS old_value_high,
           b.qualifier AS old_qualifier,
           a.event_id AS after_id, a.op AS after_op, a.value AS new_value, a.value_high AS new_value_high,
           a.qualifier AS new_qualifier, a.event_run AS after_run
    FROM touch t
    LEFT JOIN won b ON b.side = 0 AND b.op = 'assert' AND b.run = t.run AND b.entity = t.entity
     AND b.metric = t.metric AND b.segment = t.segment AND b.dims = t.dims AND b.period = t.period
     AND b.kind = t.kind AND b.unit = t.unit
    LEFT JOIN won a ON a.side = 1 AND a.run = t.run AND a.entity = t.entity
     AND a.metric = t.metric AND a.segment = t.segment AND a.dims = t.dims AND a.period = t.period
     AND a.kind = t.kind AND a.unit = t.unit
),
cls AS (
    SELECT p.* EXCLUDE (new_value, new_value_high, new_qualifier),
           CASE WHEN p.after_op = 'assert' THEN p.new_value END AS new_value,
           CASE WHEN p.after_op = 'assert' THEN p.new_value_high END AS new_value_high,
           CASE WHEN p.after_op = 'assert' THEN p.new_qualifier END AS new_qualifier,
           CASE WHEN p.after_op = 'assert' THEN p.after_id END AS event_id,
           -- the event of this run that made the change: the new winner, else its withdrawal
           CASE WHEN p.after_run = p.run THEN p.after_id ELSE coalesce(p.withdrawal_id, p.after_id) END AS by_id,
           CASE
               WHEN p.old_event_id IS NULL AND p.after_op = 'assert' THEN 'new'
               WHEN p.old_event_id IS NOT NULL AND p.after_op IS DISTINCT FROM 'assert' THEN 'retracted'
               WHEN p.old_event_id IS NULL OR p.old_event_id = p.after_id THEN NULL
               WHEN p.old_qualifier = 'approx' AND p.new_qualifier <> 'approx' THEN 'approx_to_exact'
               WHEN p.old_value IS NOT DISTINCT FROM p.new_value
                AND p.old_value_high IS NOT DISTINCT FROM p.new_value_high THEN NULL
               WHEN p.kind = 'actual' THEN 'restated'
               ELSE 'revised'
           END AS change_kind
    FROM pair p
),
-- split detection: each restated share count's ratio new/old, each per-share figure's old/new,
-- snapped to a half (7.02 -> 7; 0.1 for a 1-for-10 reverse split); a figure fits when the ratio
-- explains it up to rounding (1 %, or half a cent of a per-share figure)
shareish AS (
    SELECT x.*, CASE WHEN x.unit = 'shares' THEN x.new_value / x.old_value ELSE x.old_value / x.new_value END AS f
    FROM cls x LEFT JOIN metrics m ON m.metric = x.metric
    WHERE x.change_kind IN ('restated', 'revised') AND x.old_value * x.new_value > 0
      AND (x.unit = 'shares' OR x.unit LIKE '%/share' OR x.unit LIKE '%/shares' OR m.aggregation = 'per_share')
),
snapped AS (
    SELECT *, CASE WHEN f >= 1 THEN round(f * 2) / 2 ELSE 1 / (round(2 / f) / 2) END AS k FROM shareish
),
fits AS (
    SELECT * FROM snapped
    WHERE k <> 1 AND CASE WHEN unit = 'shares' THEN abs(new_value - old_value * k) <= 0.01 * abs(new_value)
                          ELSE abs(new_value - old_value / k) <= greatest(0.00500001, 0.01 * abs(new_value)) END
),
splits AS (
    SELECT run, entity, k FROM fits GROUP BY run, entity, k
    HAVING count(*) FILTER (WHERE unit = 'shares') >= 1 AND count(*) FILTER (WHERE unit <> 'shares') >= 1
),
marked AS (
    SELECT x.* EXCLUDE (change_kind),
           CASE WHEN s.k IS NOT NULL THEN 'split_adjusted' ELSE x.change_kind END AS change_kind,
           s.k AS split_ratio
    FROM cls x
    LEFT JOIN fits ON fits.run = x.run AND fits.entity = x.entity AND fits.metric = x.metric
     AND fits.segment = x.segment AND fits.dims = x.dims AND fits.period = x.period AND fits.kind = x.kind
     AND fits.unit = x.unit
    LEFT JOIN splits s ON s.run = fits.run AND s.entity = fits.entity AND s.k = fits.k
    WHERE x.change_kind IS NOT NULL
),
runs AS (SELECT run_id, job FROM ingest_runs),
-- where the event that made a change was filed (a withdrawal may be filed under another entity)
filed AS (
    SELECT event_id, any_value(source) AS source, any_value(source_ref) AS source_ref,
           any_value(reported_at) AS reported_at
    FROM (SELECT event_id, source, source_ref, reported_at FROM v
          UNION ALL SELECT by_id, source, source_ref, reported_at FROM wd)
    GROUP BY event_id
),
described AS (
    SELECT m.*, e.source, e.source_ref, e.reported_at, r.job,
           ms_change(m.new_value, m.old_value) AS change,
           CASE WHEN m.old_value <> 0 AND m.unit <> 'ratio'
                THEN ms_change(m.new_value, m.old_value) / abs(m.old_value)
           END AS change_pct,
           CASE WHEN m.unit = 'ratio' THEN 0.01
                WHEN m.unit NOT LIKE '%/%' AND least(coalesce(abs(m.old_value), 1e6), coalesce(abs(m.new_value), 1e6)) >= 1e6
                 AND coalesce(abs(m.old_value), abs(m.new_value)) >= 1e6 THEN 1e6
                ELSE 1 END AS div
    FROM marked m
    JOIN filed e ON e.event_id = m.by_id
    LEFT JOIN runs r ON r.run_id = m.run
)
SELECT d.run AS run_id, d.job, d.t1 AS recorded_at, d.change_kind,
       d.entity, d.metric, d.segment, d.dims, d.period, d.kind, d.unit,
       d.old_value, d.new_value, d.change, d.change_pct, d.old_value_high, d.new_value_high,
       d.old_qualifier, d.new_qualifier, d.split_ratio,
       d.source, d.source_ref, d.reported_at,
       d.by_id AS by_event_id, d.event_id, d.old_event_id,
       d.entity || ' ' || d.metric
       || CASE WHEN d.segment <> 'total' THEN ' ' || d.segment ELSE '' END
       || CASE WHEN d.dims <> '' THEN ' [' || d.dims || ']' ELSE '' END
       || ' ' || d.period || CASE WHEN d.kind <> 'actual' THEN ' ' || d.kind ELSE '' END || ' '
       || CASE d.change_kind
              WHEN 'new' THEN 'new: ' || ms_change_value(d.new_value, d.new_value_high, d.new_qualifier, d.div)
              WHEN 'retracted' THEN 'retracted (was ' || ms_change_value(d.old_value, d.old_value_high, d.old_qualifier, d.div)
              WHEN 'split_adjusted' THEN 'split-adjusted '
                   || CASE WHEN d.split_ratio >= 1 THEN format('{:g}-for-1', d.split_ratio)
                           ELSE format('1-for-{:g}', 1 / d.split_ratio) END
                   || ' (' || ms_change_value(d.old_value, d.old_value_high, d.old_qualifier, d.div) || ' -> '
                   || ms_change_value(d.new_value, d.new_value_high, d.new_qualifier, d.div)
              ELSE CASE d.change_kind WHEN 'approx_to_exact' THEN 'made exact' ELSE d.change_kind END
                   || CASE WHEN d.unit = 'ratio' AND d.change IS NOT NULL THEN ' ' || ms_signed(d.change * 100) || ' pp'
                           WHEN d.change_pct IS NOT NULL THEN ' ' || ms_signed(d.change_pct * 100) || ' %' ELSE '' END
                   || ' (' || ms_change_value(d.old_value, d.old_value_high, d.old_qualifier, d.div) || ' -> '
                   || ms_change_value(d.new_value, d.new_value_high, d.new_qualifier, d.div)
          END
       || ' ' || CASE WHEN d.unit = 'ratio' THEN '%' WHEN d.div = 1e6 THEN 'M ' || d.unit ELSE d.unit END
       || CASE WHEN d.change_kind = 'new' THEN '' ELSE ')' END
       || ' by ' || d.source || ', filed ' || strftime(d.reported_at, '%Y-%m-%d') AS summary,
       d.period_end, d.t0 AS first_recorded_at
FROM described d;

CREATE OR REPLACE VIEW changes AS
SELECT * FROM changes_at(getvariable('as_recorded'));

CREATE OR REPLACE MACRO changes_as_recorded(t) AS TABLE SELECT * FROM changes_at(t);
