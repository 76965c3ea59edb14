-- Safe pattern: orders_reference_uidx was built CONCURRENTLY by an earlier migration; attach it.
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD CONSTRAINT orders_reference_key UNIQUE USING INDEX orders_reference_uidx;
