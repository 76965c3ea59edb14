-- UNIQUE constraint that builds its own index under ACCESS EXCLUSIVE on orders.
-- expect: unique_without_index(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD CONSTRAINT orders_reference_key UNIQUE (reference);
