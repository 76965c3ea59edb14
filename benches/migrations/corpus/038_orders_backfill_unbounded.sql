-- Add a column and backfill it in one UPDATE over all 1M rows (one huge transaction, every row rewritten).
-- expect: unbounded_update(high)
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD COLUMN amount_cents bigint;
UPDATE orders SET amount_cents = (amount * 100)::bigint;
