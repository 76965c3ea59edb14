-- events finally gets a primary key, attached from its existing unique index (no scan, id is already NOT NULL).
-- The catalog knows events.id is integer: the key runs out at 2^31 (int_primary_key; squawk sees no column definition).
-- expect: int_primary_key(low)
-- explain: catalog
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_id_uidx;
