-- Delete old events only (bounded by a WHERE clause).
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DELETE FROM events WHERE occurred_at < timestamp '2024-01-15';
