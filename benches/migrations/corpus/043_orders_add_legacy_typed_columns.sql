-- Columns added to orders with varchar(n), char(n) and timestamp (no default: catalog-only).
-- expect: varchar_length, char_type, timestamp_without_tz
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders
    ADD COLUMN tracking_code varchar(64),
    ADD COLUMN carrier_code char(4),
    ADD COLUMN delivered_at timestamp;
