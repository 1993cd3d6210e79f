-- The raw logs and their deduplicated views. __EVENTS__, __ENTITIES__ and __METRICS__ are the
-- stores' file globs, filled in when the views are created.

-- Every committed event row, duplicates included (a doubled write or a compaction in flight).
CREATE OR REPLACE VIEW event_log AS
SELECT * FROM read_parquet(__EVENTS__, union_by_name = true);

-- Every event once: duplicates of an id keep their earliest recording. Like every view, it
-- honours SET VARIABLE as_of (reported by then) and as_recorded (recorded by then).
CREATE OR REPLACE VIEW events AS
SELECT * FROM event_log
WHERE (getvariable('as_of') IS NULL OR reported_at <= CAST(getvariable('as_of') AS DATE))
  AND (getvariable('as_recorded') IS NULL OR recorded_at <= CAST(getvariable('as_recorded') AS TIMESTAMPTZ))
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY recorded_at, commit_id) = 1;

-- What the store knows of each entity: its latest record (recorded by as_recorded when set).
CREATE OR REPLACE VIEW entities AS
SELECT entity, name, cik, ticker,
       coalesce(fiscal_year_end_month, 12) AS fiscal_year_end_month,
       fiscal_year_end, source, recorded_at
FROM read_parquet(__ENTITIES__, union_by_name = true)
WHERE getvariable('as_recorded') IS NULL OR recorded_at <= CAST(getvariable('as_recorded') AS TIMESTAMPTZ)
QUALIFY row_number() OVER (PARTITION BY entity ORDER BY recorded_at DESC, record_id DESC) = 1;

-- Each metric's definition: its latest record.
CREATE OR REPLACE VIEW metrics AS
SELECT metric, aggregation, description, inferred, recorded_at
FROM read_parquet(__METRICS__, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY metric ORDER BY recorded_at DESC, record_id DESC) = 1;
