-- Safe pattern: one batch of a backfill, bounded by the key.
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
UPDATE orders SET currency = 'EUR' WHERE id BETWEEN 1 AND 10000 AND currency IS NULL;
