-- The ingest run log (written by ingest/runs.py): one row per run with its latest record.
-- __RUNS__ is the run log's file glob, or `run_log_empty` for a store that has no run log yet.

-- The columns of the run log, with no rows: what `ingest_runs` shows before the first run.
CREATE OR REPLACE VIEW run_log_empty AS
SELECT CAST(NULL AS VARCHAR) AS record_id, CAST(NULL AS VARCHAR) AS run_id, CAST(NULL AS VARCHAR) AS job,
       CAST(NULL AS VARCHAR) AS "trigger", CAST(NULL AS VARCHAR) AS status,
       CAST(NULL AS TIMESTAMPTZ) AS started, CAST(NULL AS TIMESTAMPTZ) AS finished,
       CAST(NULL AS VARCHAR[]) AS inputs, CAST(NULL AS BIGINT) AS inputs_read,
       CAST(NULL AS BIGINT) AS added, CAST(NULL AS BIGINT) AS already_present, CAST(NULL AS BIGINT) AS rejected,
       CAST(NULL AS BIGINT) AS unchanged,
       CAST(NULL AS VARCHAR) AS error, CAST(NULL AS VARCHAR) AS notified, CAST(NULL AS VARCHAR) AS host, CAST(NULL AS BIGINT) AS pid,
       CAST(NULL AS TIMESTAMPTZ) AS recorded_at, CAST(NULL AS VARCHAR) AS commit_id
WHERE false;

-- Every record of the run log: a run writes `running` when it starts, then its outcome.
CREATE OR REPLACE VIEW run_log AS
SELECT * FROM run_log_empty
UNION ALL BY NAME
SELECT * FROM __RUNS__;

-- One row per run: its latest record (a run still `running` has no outcome yet, or was killed
-- and is marked `failed` by the next run of its job).
CREATE OR REPLACE VIEW ingest_runs AS
SELECT job, run_id, "trigger", status, started, finished,
       date_diff('millisecond', started, finished) / 1000.0 AS seconds,
       inputs, inputs_read, added, already_present, rejected, unchanged, error, notified, host, pid
FROM run_log
QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY recorded_at DESC, (status = 'running'), record_id DESC) = 1;
