-- One migration that alters two busy tables: the first ACCESS EXCLUSIVE lock is held until the end.
-- expect: multiple_locks_in_transaction
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD COLUMN coupon_code text;
ALTER TABLE users ADD COLUMN referral_code text;
