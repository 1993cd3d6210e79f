-- Formula metrics: placeholder until formulas are compiled (queries/formulas.py).
CREATE OR REPLACE MACRO formula_checks_at(as_of, as_recorded) AS TABLE
SELECT NULL::VARCHAR AS "check", NULL::VARCHAR AS entity, NULL::VARCHAR AS metric, NULL::VARCHAR AS segment,
       NULL::VARCHAR AS dims, NULL::VARCHAR AS period, NULL::VARCHAR AS kind, NULL::VARCHAR AS unit,
       NULL::DOUBLE AS expected, NULL::DOUBLE AS actual, NULL::DOUBLE AS tolerance, NULL::BOOLEAN AS within,
       NULL::VARCHAR AS detail, NULL::VARCHAR[] AS expected_from, NULL::VARCHAR[] AS actual_from,
       NULL::DATE AS reported_at, NULL::DATE AS period_end
WHERE false;
