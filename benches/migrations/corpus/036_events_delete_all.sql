-- Delete every event (no WHERE).
-- expect: unbounded_delete(high)
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DELETE FROM events;
