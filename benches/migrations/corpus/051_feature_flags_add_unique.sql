-- UNIQUE constraint on the 10-row table.
-- expect: unique_without_index(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE feature_flags ADD CONSTRAINT feature_flags_name_key UNIQUE (name);
