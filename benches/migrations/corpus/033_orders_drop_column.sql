-- Drop a column (its index goes with it).
-- expect: drop_column(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders DROP COLUMN legacy_ref;
