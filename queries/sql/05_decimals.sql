-- Arithmetic on reported figures, which are decimals held as doubles.

-- A sum or difference of reported figures as the decimal it stands for: rounded to 15 significant
-- digits (what a double holds of any decimal) of the sum of its terms' magnitudes (which bounds
-- every partial sum, and so the noise), so that binary arithmetic's noise (6.94 - 4.04 =
-- 2.9000000000000004) and the order an engine adds in leave no trace. From 1e15 up a double holds
-- no fraction to clean; such sums are left as they are. (+ 0.0: noise rounded away leaves 0, not -0.)
CREATE OR REPLACE MACRO ms_decimal(x, magnitude) AS
    CASE WHEN magnitude >= 1e-200 AND magnitude < 1e15
         THEN round(x * pow(10, 14 - floor(log10(magnitude)))) / pow(10, 14 - floor(log10(magnitude))) + 0.0
         ELSE x END;

-- a - b as the decimal it stands for (a change: a growth's, a restatement's, a check's).
CREATE OR REPLACE MACRO ms_change(a, b) AS ms_decimal(a - b, abs(a) + abs(b));
-- x to 15 significant digits of its own (a product, or a sum of terms of one sign).
CREATE OR REPLACE MACRO ms_rounded(x) AS ms_decimal(x, abs(x));
