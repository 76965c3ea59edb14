-- The column drop of 033, reviewed and accepted: silenced with a steward:ignore comment.
-- expect: none
-- explain: ignore
SET lock_timeout = '5s';
SET statement_timeout = '15min';
-- steward:ignore drop_column
ALTER TABLE orders DROP COLUMN legacy_ref;
