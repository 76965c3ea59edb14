-- varchar(50) -> varchar(200): a longer limit is catalog-only, no rewrite and no scan.
-- expect: none
-- explain: catalog scope
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);
