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

-- Each intermediate is computed once (a struct bound by a lambda): written as nested macro calls,
-- the expression grows to thousands of nodes and DuckDB spends ~150 ms planning every query using it.
CREATE OR REPLACE MACRO ms_period_label(s, e, fye) AS
list_transform([{'s': s, 'e': e, 'fye': fye, 'ne': ms_nominal_end(e), 'ns': ms_nominal_start(s)}], lambda p:
  list_transform([{'p': p,
                   'months': CASE WHEN p.s = p.e THEN 0
                                  ELSE (year(p.ne) * 12 + month(p.ne)) - (year(p.ns) * 12 + month(p.ns)) + 1 END,
                   'fm': ((month(p.ne) - p.fye - 1 + 24) % 12) + 1,
                   'fy': year(p.ne) + CASE WHEN month(p.ne) > p.fye THEN 1 ELSE 0 END,
                   'fits': abs(datediff('day', p.s, p.e) - datediff('day', p.ns, p.ne)) <= 10}], lambda q:
    CASE
        WHEN q.p.s = q.p.e THEN strftime(q.p.e, '%Y-%m-%d')
        WHEN q.months < 1 OR NOT q.fits THEN strftime(q.p.s, '%Y-%m-%d') || '/' || strftime(q.p.e, '%Y-%m-%d')
        WHEN q.months = 12 AND q.fm = 12 THEN 'FY' || q.fy
        WHEN q.months = 3 AND q.fm % 3 = 0 THEN q.fy || 'Q' || (q.fm // 3)
        WHEN q.months = 6 AND q.fm % 6 = 0 THEN q.fy || 'H' || (q.fm // 6)
        WHEN q.months = 1 THEN strftime(q.p.ne, '%Y-%m')
        WHEN q.months < 12 AND q.fm = q.months THEN q.months || 'M' || q.fy
        ELSE strftime(q.p.s, '%Y-%m-%d') || '/' || strftime(q.p.e, '%Y-%m-%d')
    END)[1])[1];

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

-- Everything a query places a span by, computed once (per distinct span, see visible_events):
-- its label and type, its length in nominal months (ms_period_months), its place (ord: the
-- month its nominal end falls in, year * 12 + month) and its fiscal year (ms_fiscal_year).
CREATE OR REPLACE MACRO ms_span(s, e, fye) AS
list_transform([{'period': ms_period_label(s, e, fye), 'instant': s = e, 'fye': fye,
                 'ne': ms_nominal_end(e), 'ns': ms_nominal_start(s)}], lambda p:
  {'period': p.period,
   'ptype': ms_period_type(p.period),
   'months': CASE WHEN p.instant THEN 0
                  ELSE (year(p.ne) * 12 + month(p.ne)) - (year(p.ns) * 12 + month(p.ns)) + 1 END,
   'ord': year(p.ne) * 12 + month(p.ne),
   'fy': year(p.ne) + CASE WHEN month(p.ne) > p.fye THEN 1 ELSE 0 END})[1];
