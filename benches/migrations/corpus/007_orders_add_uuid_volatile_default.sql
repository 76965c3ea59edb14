-- Add a public id to orders with a volatile default: every one of the 1M rows is rewritten.
-- expect: volatile_default(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
