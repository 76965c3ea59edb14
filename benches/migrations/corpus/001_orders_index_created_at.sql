-- Index orders by created_at for the reporting page: plain CREATE INDEX on the 120 MB table.
-- expect: index_not_concurrent(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE INDEX orders_created_at_idx ON orders (created_at);
