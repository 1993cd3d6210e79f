-- Formula metrics (queries/formulas.py parses the definitions, queries/formula_sql.py compiles them):
-- formula_facts_at(as_of, as_recorded) is replaced, on a connection over a store with formula
-- definitions, by their compiled SQL; here it is empty. The facts view and its macros are
-- redefined to hold the formula values where no reported figure of the same fact exists (a
-- reported value stands: the computed one is compared with it in `checks`, check 'formula').

-- The precision of a figure, shared by the formulas' tolerance and the checks (60_checks.sql).
-- A figure's last written digit in base units: from the number text it was reported as (the
-- start of as_reported; else the value's own digits), scaled as the value was. NULL for a zero
-- (no digit tells its precision) or a figure with no number text.
CREATE OR REPLACE MACRO ms_step(value, as_reported) AS
list_transform([regexp_extract(
    CASE WHEN regexp_matches(coalesce(as_reported, ''), '^\s*[-+(]?[0-9]') THEN as_reported
         WHEN value = round(value) AND abs(value) < 1e15 THEN CAST(CAST(value AS HUGEINT) AS VARCHAR)
         ELSE CAST(value AS VARCHAR) END,
    '^\s*[-+(]?([0-9][0-9,]*)(?:\.([0-9]+))?', ['i', 'f'])], lambda t:
  list_transform([{'i': replace(t.i, ',', ''), 'f': t.f}], lambda n:
    CASE WHEN value IS NULL OR value = 0 OR n.i = '' OR CAST(n.i || '.' || n.f || '0' AS DOUBLE) = 0 THEN NULL
         ELSE (CASE WHEN n.f <> '' THEN 10.0 ** (-length(n.f))
                    ELSE 10.0 ** (length(n.i) - length(rtrim(n.i, '0'))) END)
              * 10.0 ** round(log10(abs(value) / CAST(n.i || '.' || n.f || '0' AS DOUBLE)))
    END)[1])[1];

-- The rounding tolerance of figures whose steps are `steps`: half of each step; a figure of unknown
-- step (a zero) counts with the largest step among them (the scale its table was written in).
CREATE OR REPLACE MACRO ms_tolerance(steps) AS
    ms_rounded(0.5 * coalesce(list_sum(list_transform(steps, lambda s: coalesce(s, list_max(steps)))), 0.0));

-- Units of a formula's value from its inputs' (NULL: a number, which takes the other side's unit).
CREATE OR REPLACE MACRO ms_unit_same(a, b) AS
    CASE WHEN a IS NULL THEN b WHEN b IS NULL OR a = b THEN a END;
CREATE OR REPLACE MACRO ms_unit_per(u) AS
    CASE u WHEN 'units' THEN 'unit' WHEN 'shares' THEN 'share' ELSE u END;
CREATE OR REPLACE MACRO ms_unit_mul(a, b) AS
    CASE WHEN a IS NULL OR a = 'ratio' THEN b WHEN b IS NULL OR b = 'ratio' THEN a
         WHEN b LIKE '%/%' AND ms_unit_per(a) = split_part(b, '/', 2) THEN split_part(b, '/', 1)
         WHEN a LIKE '%/%' AND ms_unit_per(b) = split_part(a, '/', 2) THEN split_part(a, '/', 1)
         ELSE a || '*' || b END;
CREATE OR REPLACE MACRO ms_unit_div(a, b) AS
    CASE WHEN b IS NULL OR b = 'ratio' THEN a
         WHEN a IS NOT DISTINCT FROM b THEN 'ratio'
         WHEN a LIKE '%/%' AND split_part(a, '/', 2) = ms_unit_per(b) THEN a
         WHEN a LIKE '%/%' AND split_part(a, '/', 1) = b THEN '1/' || split_part(a, '/', 2)
         ELSE coalesce(a, '1') || '/' || ms_unit_per(b) END;

-- A computed value in the arithmetic text: grouped thousands, or four significant digits.
CREATE OR REPLACE MACRO ms_fmt_result(v) AS
    CASE WHEN abs(v) >= 100 THEN format('{:,.0f}', v) ELSE format('{:.4g}', v) END;

-- The columns of a formula value, with no rows.
CREATE OR REPLACE VIEW formula_facts_empty AS
SELECT *, NULL::DOUBLE AS tolerance FROM facts_empty;

-- Every formula value (queries/formula_sql.py replaces this on a store with formula definitions).
CREATE OR REPLACE MACRO formula_facts_at(as_of, as_recorded) AS TABLE
SELECT * FROM formula_facts_empty;

-- The reported facts and the formula values no reported figure of the same fact stands over:
-- queries/formula_sql.py (ALL_FACTS) replaces this macro on a store with formula definitions.
-- Without any, the reported facts alone (joining a second facts_at costs its planning at every query).
CREATE OR REPLACE MACRO all_facts_at(as_of, as_recorded) AS TABLE
SELECT * FROM facts_at(as_of, as_recorded);

-- HOOK (formulas): the facts view and its macros of 20_facts.sql, with the formula values.
CREATE OR REPLACE VIEW facts AS
SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM all_facts_at(getvariable('as_of'), getvariable('as_recorded'));
CREATE OR REPLACE MACRO facts_as_of(d) AS TABLE SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM all_facts_at(d, NULL);
CREATE OR REPLACE MACRO facts_as_recorded(t) AS TABLE SELECT * EXCLUDE (fye, ptype, months, ord, fy) FROM all_facts_at(NULL, t);

-- A formula value against the figure the company reported under the formula metric's name.
CREATE OR REPLACE MACRO formula_checks_at(as_of, as_recorded) AS TABLE
SELECT 'formula' AS "check", c.entity, c.metric, c.segment, c.dims, c.period, c.kind, c.unit,
       c.value AS expected, r.value AS actual,
       c.tolerance + ms_tolerance([ms_step(r.value, r.as_reported)]) AS tolerance,
       c.as_reported || ' against the reported ' || coalesce(r.as_reported, CAST(r.value AS VARCHAR))
           || ' (' || r.source || ')' AS detail,
       c.derived_from AS expected_from, [r.event_id] AS actual_from,
       greatest(c.reported_at, r.reported_at) AS reported_at, c.period_end
FROM formula_facts_at(as_of, as_recorded) c
JOIN facts_at(as_of, as_recorded) r
  ON r.entity = c.entity AND r.metric = c.metric AND r.segment = c.segment AND r.dims = c.dims
 AND r.period = c.period AND r.kind = c.kind AND r.unit = c.unit
WHERE c.value IS NOT NULL;

-- The formula metrics' definitions, every version, from the metrics log (a log written before
-- formulas existed has no formula column: the empty relation gives it).
CREATE OR REPLACE VIEW formulas AS
WITH log AS (
    SELECT NULL::VARCHAR AS metric, NULL::VARCHAR AS aggregation, NULL::VARCHAR AS description,
           NULL::VARCHAR AS formula, NULL::VARCHAR AS unit, NULL::TIMESTAMPTZ AS recorded_at,
           NULL::VARCHAR AS record_id WHERE false
    UNION ALL BY NAME
    SELECT * FROM read_parquet(__METRICS__, union_by_name = true)
)
SELECT metric, formula, unit, aggregation, description, recorded_at,
       lead(recorded_at) OVER (PARTITION BY metric ORDER BY recorded_at, record_id) AS replaced_at
FROM log
QUALIFY formula IS NOT NULL;
