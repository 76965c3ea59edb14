-- Rename a table the running application still writes to.
-- expect: rename_table(medium)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events RENAME TO user_events;
