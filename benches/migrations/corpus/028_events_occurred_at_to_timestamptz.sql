-- timestamp -> timestamptz on events: no rewrite when the session TimeZone is UTC, as on the bench server (steward asks the session; squawk flags every type change).
-- expect: none
-- explain: catalog
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ALTER COLUMN occurred_at TYPE timestamptz;
