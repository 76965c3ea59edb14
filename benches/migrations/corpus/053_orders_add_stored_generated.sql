-- A stored generated column: computed for every existing row, a rewrite of orders.
-- expect: volatile_default(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD COLUMN amount_gross numeric(12,2) GENERATED ALWAYS AS (amount * 1.19) STORED;
