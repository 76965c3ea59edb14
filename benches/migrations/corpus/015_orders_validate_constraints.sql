-- Safe pattern, second step: VALIDATE the NOT VALID constraints added earlier (SHARE UPDATE EXCLUSIVE, writes go on).
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
ALTER TABLE orders VALIDATE CONSTRAINT orders_amount_nonnegative;
