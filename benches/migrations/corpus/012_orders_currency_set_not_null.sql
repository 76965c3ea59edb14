-- SET NOT NULL straight away: a full scan of orders under ACCESS EXCLUSIVE.
-- expect: set_not_null(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;
