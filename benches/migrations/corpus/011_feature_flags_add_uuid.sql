-- Volatile default on the 10-row table: a rewrite of one page.
-- expect: volatile_default(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE feature_flags ADD COLUMN token uuid DEFAULT gen_random_uuid();
