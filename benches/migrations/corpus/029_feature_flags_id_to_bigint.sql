-- int -> bigint on the 10-row table: a rewrite of one page.
-- expect: column_type_rewrite(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE feature_flags ALTER COLUMN id TYPE bigint;
