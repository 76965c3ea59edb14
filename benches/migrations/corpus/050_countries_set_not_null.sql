-- SET NOT NULL on the 20-row lookup table.
-- expect: set_not_null(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE countries ALTER COLUMN name SET NOT NULL;
