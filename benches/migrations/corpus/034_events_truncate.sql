-- Empty the events table.
-- expect: truncate(high)
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
TRUNCATE events;
