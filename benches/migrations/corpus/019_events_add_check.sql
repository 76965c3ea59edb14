-- CHECK constraint validated at once on events (32 MB): full scan under ACCESS EXCLUSIVE.
-- expect: check_validated(medium)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ADD CONSTRAINT events_kind_not_empty CHECK (kind <> '');
