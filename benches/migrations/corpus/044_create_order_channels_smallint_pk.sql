-- A small lookup table keyed by smallint.
-- expect: int_primary_key
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE TABLE order_channels (
    id smallint PRIMARY KEY,
    name text NOT NULL UNIQUE
);
INSERT INTO order_channels VALUES (1, 'web'), (2, 'app'), (3, 'phone');
