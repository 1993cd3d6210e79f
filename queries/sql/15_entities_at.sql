-- What the store knew of each entity at system time as_recorded (NULL: now): its latest record
-- recorded by then. Period labels under as_recorded=T use the fiscal calendar known at T, so an
-- answer given at T is reproduced exactly even after a later record changed the calendar.
CREATE OR REPLACE MACRO entities_at(as_recorded) AS TABLE
SELECT entity, name, cik, ticker,
       coalesce(fiscal_year_end_month, 12) AS fiscal_year_end_month,
       fiscal_year_end, source, recorded_at
FROM read_parquet(__ENTITIES__, union_by_name = true)
WHERE as_recorded IS NULL OR recorded_at <= CAST(as_recorded AS TIMESTAMPTZ)
QUALIFY row_number() OVER (PARTITION BY entity ORDER BY recorded_at DESC, record_id DESC) = 1;
