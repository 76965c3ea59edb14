-- Reload the countries lookup table with TRUNCATE ... CASCADE: the cascade follows users_country_fk to users,
-- and orders_user_fk from users to orders: 1.15 M rows gone, not 20.
-- expect: truncate(high), multiple_locks_in_transaction(medium)
-- explain: steward-only
SET lock_timeout = '5s';
SET statement_timeout = '15min';
TRUNCATE countries CASCADE;
INSERT INTO countries (code, name) VALUES ('DE', 'Germany'), ('FR', 'France');
