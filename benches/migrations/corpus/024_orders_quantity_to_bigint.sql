-- int -> bigint: not binary-compatible, rewrites all of orders under ACCESS EXCLUSIVE.
-- expect: column_type_rewrite(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ALTER COLUMN quantity TYPE bigint;
