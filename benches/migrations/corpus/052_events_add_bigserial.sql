-- ADD COLUMN bigserial: nextval() fills every existing row, a rewrite of events.
-- expect: volatile_default(medium)
-- explain: catalog
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ADD COLUMN seq bigserial;
