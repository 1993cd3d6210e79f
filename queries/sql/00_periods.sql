-- Period arithmetic on fiscal calendars. Mirrors store/periods.py (a test holds them equal).
-- fye: the month the entity's fiscal year ends in (12 = calendar year).

-- The month end nearest d: the 1st-15th round back to the previous month's end.
CREATE OR REPLACE MACRO ms_nominal_end(d) AS
    CASE WHEN day(d) <= 15 THEN CAST(d - to_days(CAST(day(d) AS INTEGER)) AS DATE)
         ELSE last_day(d) END;

CREATE OR REPLACE MACRO ms_nominal_start(d) AS
    CAST(ms_nominal_end(CAST(d - INTERVAL 1 DAY AS DATE)) + INTERVAL 1 DAY AS DATE);

-- Length in nominal months (0 for an instant).
CREATE OR REPLACE MACRO ms_period_months(s, e) AS
    CASE WHEN s = e THEN 0 ELSE
        (year(ms_nominal_end(e)) * 12 + month(ms_nominal_end(e)))
      - (year(ms_nominal_start(s)) * 12 + month(ms_nominal_start(s))) + 1 END;

-- Does the true length fit the nominal one (10 days' tolerance for 52/53-week calendars)?
CREATE OR REPLACE MACRO ms_fits(s, e) AS
    abs(datediff('day', s, e) - datediff('day', ms_nominal_start(s), ms_nominal_end(e))) <= 10;

CREATE OR REPLACE MACRO ms_fiscal_year(e, fye) AS
    year(ms_nominal_end(e)) + CASE WHEN month(ms_nominal_end(e)) > fye THEN 1 ELSE 0 END;

-- Fiscal month (1..12) of the nominal end.
CREATE OR REPLACE MACRO ms_fiscal_month(e, fye) AS
    ((month(ms_nominal_end(e)) - fye - 1 + 24) % 12) + 1;

CREATE OR REPLACE MACRO ms_period_label(s, e, fye) AS
    CASE
        WHEN s = e THEN strftime(e, '%Y-%m-%d')
        WHEN ms_period_months(s, e) < 1 OR NOT ms_fits(s, e)
            THEN strftime(s, '%Y-%m-%d') || '/' || strftime(e, '%Y-%m-%d')
        WHEN ms_period_months(s, e) = 12 AND ms_fiscal_month(e, fye) = 12
            THEN 'FY' || ms_fiscal_year(e, fye)
        WHEN ms_period_months(s, e) = 3 AND ms_fiscal_month(e, fye) % 3 = 0
            THEN ms_fiscal_year(e, fye) || 'Q' || (ms_fiscal_month(e, fye) // 3)
        WHEN ms_period_months(s, e) = 6 AND ms_fiscal_month(e, fye) % 6 = 0
            THEN ms_fiscal_year(e, fye) || 'H' || (ms_fiscal_month(e, fye) // 6)
        WHEN ms_period_months(s, e) = 1
            THEN strftime(ms_nominal_end(e), '%Y-%m')
        WHEN ms_period_months(s, e) < 12 AND ms_fiscal_month(e, fye) = ms_period_months(s, e)
            THEN ms_period_months(s, e) || 'M' || ms_fiscal_year(e, fye)
        ELSE strftime(s, '%Y-%m-%d') || '/' || strftime(e, '%Y-%m-%d')
    END;

-- The kind of period a label names: FY, Q, H, YTD, M (calendar month), I (instant), X (other).
CREATE OR REPLACE MACRO ms_period_type(label) AS
    CASE
        WHEN label LIKE 'FY%' THEN 'FY'
        WHEN regexp_full_match(label, '\d{4}Q[1-4]') THEN 'Q'
        WHEN regexp_full_match(label, '\d{4}H[12]') THEN 'H'
        WHEN regexp_full_match(label, '\d{1,2}M\d{4}') THEN 'YTD'
        WHEN regexp_full_match(label, '\d{4}-\d{2}') THEN 'M'
        WHEN regexp_full_match(label, '\d{4}-\d{2}-\d{2}') THEN 'I'
        ELSE 'X'
    END;
