-- NOT VALID then VALIDATE in the same migration (= the same transaction): the SHARE ROW EXCLUSIVE lock of the ADD
-- is still held while VALIDATE scans the table, so writes stay blocked for the whole scan.
-- expect: foreign_key_validated(high)
-- explain: tx-model
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ADD CONSTRAINT orders_country_fk FOREIGN KEY (country_code) REFERENCES countries (code) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_country_fk;
