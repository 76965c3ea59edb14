-- A foreign key validated at once: reads all of orders with writes to orders and countries blocked.
-- expect: foreign_key_validated(high)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD CONSTRAINT orders_country_fk FOREIGN KEY (country_code) REFERENCES countries (code);
