-- timestamp -> timestamptz on events (rewrite unless the session TimeZone is UTC).
-- expect: column_type_rewrite(medium)
-- explain: conservative
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ALTER COLUMN occurred_at TYPE timestamptz;
