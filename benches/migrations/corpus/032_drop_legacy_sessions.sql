-- Drop a legacy table (200 000 rows).
-- expect: drop_table(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DROP TABLE legacy_sessions;
