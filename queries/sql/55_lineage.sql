-- Lineage: every version of a fact, restatements, the events behind any facts/growth row, and
-- the growth basis (which version of the prior period a change is measured against).
-- Every macro takes as_of (publication time) and as_recorded (system time), like facts_at.

-- Each event once, with its fact key's period label (visible_events reads the raw log, where a
-- doubled write or a compaction in flight can show an event twice).
CREATE OR REPLACE MACRO lineage_events(as_of, as_recorded) AS TABLE
SELECT * FROM visible_events(as_of, as_recorded)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY recorded_at, commit_id) = 1;

-- Every version of every fact, oldest first (publication, then recording, then event id), with
-- the change from the version before and whether the current view picks it. A version that a
-- visible event withdrew (a retract or a correction naming it in `supersedes`, filed under any
-- fact) says which: the first such event (withdrawn_by), and in words (withdrawal).
CREATE OR REPLACE MACRO history_at(as_of, as_recorded) AS TABLE
WITH v AS (SELECT * FROM lineage_events(as_of, as_recorded)),
cur AS (SELECT event_id FROM facts_at(as_of, as_recorded)),
w AS (
    SELECT supersedes AS withdrawn_id, event_id AS withdrawn_by,
           CASE WHEN op = 'retract' THEN 'retracted' ELSE 'corrected' END
           || ' by event ' || event_id
           || ' (' || CASE WHEN op = 'retract' THEN 'a retraction' ELSE 'a correction' END
           || ' filed as ' || entity || ' ' || metric || ' ' || period
           || CASE WHEN segment <> 'total' THEN ' segment ' || segment ELSE '' END
           || CASE WHEN dims <> '' THEN ' dims ' || dims ELSE '' END
           || ', source ' || source || ', reported ' || CAST(reported_at AS VARCHAR) || ')' AS withdrawal
    FROM v
    WHERE supersedes IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY supersedes ORDER BY reported_at, recorded_at, event_id) = 1
)
SELECT v.entity, v.metric, v.segment, v.dims, v.period, v.kind, v.unit,
       row_number() OVER k AS version,
       v.op, v.value, v.value_high, v.qualifier, v.authority,
       lag(v.value) OVER k AS previous_value,
       ms_change(v.value, lag(v.value) OVER k) AS change,
       v.reported_at, v.recorded_at, v.source, v.source_ref, v.as_reported, v.note,
       v.event_id, v.commit_id, v.run_id, v.supersedes,
       v.event_id IN (SELECT event_id FROM cur) AS is_current,
       w.withdrawn_by, w.withdrawal,
       v.period_start, v.period_end
FROM v
LEFT JOIN w ON w.withdrawn_id = v.event_id
WINDOW k AS (PARTITION BY v.entity, v.metric, v.segment, v.dims, v.period, v.kind, v.unit
             ORDER BY v.reported_at, v.recorded_at, v.event_id);

CREATE OR REPLACE VIEW history AS
SELECT * FROM history_at(getvariable('as_of'), getvariable('as_recorded'));

-- Facts whose value changed between the company's own publications: each change from the
-- previous exact primary version, by how much and when. Rounded re-reports (approx) and
-- secondary sources are not restatements.
CREATE OR REPLACE MACRO restatements_at(as_of, as_recorded) AS TABLE
WITH h AS (
    SELECT * FROM history_at(as_of, as_recorded)
    WHERE op = 'assert' AND qualifier <> 'approx' AND authority = 'primary'
),
s AS (
    SELECT *, lag(value) OVER k AS old_value, lag(reported_at) OVER k AS old_reported_at,
           lag(source) OVER k AS old_source, lag(event_id) OVER k AS old_event_id
    FROM h
    WINDOW k AS (PARTITION BY entity, metric, segment, dims, period, kind, unit
                 ORDER BY reported_at, recorded_at, event_id)
)
SELECT entity, metric, segment, dims, period, kind, unit, old_value, value AS new_value,
       ms_change(value, old_value) AS change,
       CASE WHEN old_value <> 0
            THEN ms_change(value, old_value) / abs(old_value) END AS change_pct,
       old_reported_at, reported_at AS restated_at, old_source, source AS new_source,
       old_event_id, event_id AS new_event_id, is_current, period_end
FROM s
WHERE old_value IS NOT NULL AND value <> old_value;

CREATE OR REPLACE VIEW restatements AS
SELECT * FROM restatements_at(getvariable('as_of'), getvariable('as_recorded'));

-- The events behind every growth row (and every fact): role 'value' for the row's own event,
-- 'term' for each term of a derived value (term 1 is added, the others subtracted), 'prior' and
-- 'prior term' likewise for the YoY prior it is compared with.
CREATE OR REPLACE MACRO lineage_at(as_of, as_recorded) AS TABLE
WITH g AS (SELECT * FROM growth_at(as_of, as_recorded)),
rows AS (
    SELECT entity, metric, segment, dims, period, unit, derived, derivation, derived_from,
           prior_period, false AS is_prior
    FROM g
    UNION ALL
    SELECT f.entity, f.metric, f.segment, f.dims, f.period, f.unit, false, NULL, [f.event_id], NULL, false
    FROM facts_at(as_of, as_recorded) f
    WHERE NOT EXISTS (SELECT 1 FROM g WHERE g.entity = f.entity AND g.metric = f.metric
                      AND g.segment = f.segment AND g.dims = f.dims AND g.period = f.period
                      AND g.unit = f.unit AND f.kind = 'actual')
),
with_prior AS (
    SELECT r.entity, r.metric, r.segment, r.dims, r.period, r.unit, r.derived, r.derivation,
           r.derived_from, false AS is_prior, r.period AS of_period FROM rows r
    UNION ALL
    SELECT r.entity, r.metric, r.segment, r.dims, r.period, r.unit, p.derived, p.derivation,
           p.derived_from, true, p.period
    FROM rows r JOIN g p
      ON p.entity = r.entity AND p.metric = r.metric AND p.segment = r.segment AND p.dims = r.dims
     AND p.unit = r.unit AND p.period = r.prior_period
),
terms AS (
    SELECT w.*, t.i AS term, w.derived_from[t.i] AS event_id
    FROM with_prior w, LATERAL (SELECT unnest(range(1, len(w.derived_from) + 1)) AS i) t
)
SELECT t.entity, t.metric, t.segment, t.dims, t.period,
       CASE WHEN t.is_prior THEN 'prior' ELSE 'value' END
           || CASE WHEN t.derived THEN ' term' ELSE '' END AS role,
       t.of_period, t.derivation, t.term, e.period AS event_period, e.value, e.unit, e.qualifier,
       e.authority, e.reported_at, e.recorded_at, e.source, e.source_ref, e.as_reported, e.note,
       e.commit_id, e.run_id, e.event_id
FROM terms t
JOIN lineage_events(as_of, as_recorded) e ON e.event_id = t.event_id;

-- Each fact as first published: among the events of its first publication date, the usual
-- precedence (authority, exact over approx, recording time, event id).
CREATE OR REPLACE MACRO first_facts_at(as_of, as_recorded) AS TABLE
WITH v AS (
    SELECT * FROM lineage_events(as_of, as_recorded) WHERE op = 'assert'
    QUALIFY reported_at = min(reported_at) OVER (PARTITION BY entity, metric, segment, dims, period, kind, unit)
)
SELECT * FROM v
QUALIFY row_number() OVER (
    PARTITION BY entity, metric, segment, dims, period, kind, unit
    ORDER BY CASE authority WHEN 'primary' THEN 2 ELSE 1 END DESC,
             CASE qualifier WHEN 'approx' THEN 0 ELSE 1 END DESC,
             recorded_at DESC, event_id DESC) = 1;

-- Growth against a chosen version of the prior period (YoY and QoQ):
--   'as_of'  (default) the prior as known at the same as_of as the current value: what an analyst
--            could compute on that date. This is what the growth view does and what a backtest wants.
--   'latest' the prior as known now (as_recorded still applies): restated comparatives, which
--            leak information published after as_of into a backtest.
--   'first'  the prior as first reported (a derived prior from each term as first reported).
-- Without as_of, 'as_of' and 'latest' agree: both are the prior as currently known.
CREATE OR REPLACE MACRO growth_basis_at(as_of, as_recorded, basis) AS TABLE
WITH g AS (SELECT * FROM growth_at(as_of, as_recorded)),
latest AS (
    SELECT entity, metric, segment, dims, unit, period, value, qualifier
    FROM growth_at(NULL, as_recorded)
    WHERE coalesce(basis, 'as_of') = 'latest'
),
ev AS (SELECT event_id, entity, metric, segment, dims, period, kind, unit FROM lineage_events(as_of, as_recorded)),
ff AS (SELECT entity, metric, segment, dims, period, kind, unit, value, qualifier
       FROM first_facts_at(as_of, as_recorded) WHERE coalesce(basis, 'as_of') = 'first'),
first AS (
    SELECT p.entity, p.metric, p.segment, p.dims, p.unit, p.period,
           ms_decimal(sum(CASE WHEN t.i = 1 THEN ff.value ELSE -ff.value END), sum(abs(ff.value))) AS value,
           CASE WHEN bool_and(ff.qualifier = 'exact') THEN 'exact' ELSE 'approx' END AS qualifier
    FROM g p, LATERAL (SELECT unnest(range(1, len(p.derived_from) + 1)) AS i) t
    JOIN ev ON ev.event_id = p.derived_from[t.i]
    JOIN ff ON ff.entity = ev.entity AND ff.metric = ev.metric AND ff.segment = ev.segment
           AND ff.dims = ev.dims AND ff.period = ev.period AND ff.kind = ev.kind AND ff.unit = ev.unit
    GROUP BY ALL
),
alt AS (SELECT * FROM latest UNION ALL SELECT * FROM first),
b AS (
    SELECT g.* EXCLUDE (prior_value, prior_qualifier, yoy_change, yoy_pct, qoq_prior_value, qoq_change, qoq_pct),
           CASE WHEN coalesce(basis, 'as_of') = 'as_of' THEN g.prior_value ELSE y.value END AS prior_value,
           CASE WHEN coalesce(basis, 'as_of') = 'as_of' THEN g.prior_qualifier ELSE y.qualifier END AS prior_qualifier,
           CASE WHEN coalesce(basis, 'as_of') = 'as_of' THEN g.qoq_prior_value ELSE q.value END AS qoq_prior_value,
           coalesce(basis, 'as_of') AS basis
    FROM g
    LEFT JOIN alt y ON y.entity = g.entity AND y.metric = g.metric AND y.segment = g.segment
                   AND y.dims = g.dims AND y.unit = g.unit AND y.period = g.prior_period
    LEFT JOIN alt q ON q.entity = g.entity AND q.metric = g.metric AND q.segment = g.segment
                   AND q.dims = g.dims AND q.unit = g.unit AND q.period = g.qoq_period
    WHERE coalesce(basis, 'as_of') IN ('as_of', 'latest', 'first')
)
SELECT *,
       ms_change(value, prior_value) AS yoy_change,
       ms_pct_change(value, prior_value, aggregation) AS yoy_pct,
       ms_change(value, qoq_prior_value) AS qoq_change,
       ms_pct_change(value, qoq_prior_value, aggregation) AS qoq_pct
FROM b;

CREATE OR REPLACE MACRO history_as_of(d) AS TABLE SELECT * FROM history_at(d, NULL);
CREATE OR REPLACE MACRO history_as_recorded(t) AS TABLE SELECT * FROM history_at(NULL, t);
CREATE OR REPLACE MACRO restatements_as_of(d) AS TABLE SELECT * FROM restatements_at(d, NULL);
CREATE OR REPLACE MACRO restatements_as_recorded(t) AS TABLE SELECT * FROM restatements_at(NULL, t);
CREATE OR REPLACE MACRO share_as_recorded(t) AS TABLE SELECT * FROM share_at(NULL, t);
CREATE OR REPLACE MACRO growth_basis(basis) AS TABLE
SELECT * FROM growth_basis_at(getvariable('as_of'), getvariable('as_recorded'), basis);
