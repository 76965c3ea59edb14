-- An UPDATE whose WHERE clause is always true.
-- expect: unbounded_update(high)
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
UPDATE users SET country_code = upper(country_code) WHERE true;
