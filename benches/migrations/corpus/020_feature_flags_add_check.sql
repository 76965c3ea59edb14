-- The same CHECK on the 10-row table.
-- expect: check_validated(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE feature_flags ADD CONSTRAINT feature_flags_name_format CHECK (name ~ '^[a-z_0-9]+$');
