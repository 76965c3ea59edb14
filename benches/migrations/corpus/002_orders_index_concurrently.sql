-- Safe pattern: the same kind of index built CONCURRENTLY (a migration of its own).
-- expect: none
-- explain: tx-model
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);
