-- Safe pattern: DROP INDEX CONCURRENTLY.
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DROP INDEX CONCURRENTLY IF EXISTS orders_legacy_ref_idx;
