-- Safe pattern: the same foreign key NOT VALID (validated by a later migration).
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD CONSTRAINT orders_country_fk FOREIGN KEY (country_code) REFERENCES countries (code) NOT VALID;
