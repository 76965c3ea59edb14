-- ADD COLUMN with a constant default: catalog-only since PostgreSQL 11, no rewrite.
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD COLUMN is_gift boolean NOT NULL DEFAULT false;
