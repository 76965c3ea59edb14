-- New table with the old habits: serial key, varchar(n), char(n), timestamp; then an index on the new table.
-- The index is on a table created in this script (new and empty): no lock finding.
-- expect: int_primary_key, varchar_length, char_type, timestamp_without_tz
-- explain: new-table
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE TABLE invoices (
    id serial PRIMARY KEY,
    order_id bigint NOT NULL,
    number varchar(32) NOT NULL,
    currency char(3) NOT NULL DEFAULT 'EUR',
    issued_at timestamp NOT NULL DEFAULT now()
);
CREATE INDEX invoices_order_id_idx ON invoices (order_id);
