-- ADD COLUMN ... DEFAULT now(): now() is STABLE, evaluated once, so no rewrite (the catalog says so).
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
