-- ADD COLUMN with clock_timestamp() as default (volatile): rewrites the 32 MB events table.
-- expect: volatile_default(medium)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ADD COLUMN received_at timestamptz DEFAULT clock_timestamp();
