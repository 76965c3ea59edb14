-- varchar(100) -> text: binary-coercible, catalog-only.
-- expect: none
-- explain: catalog
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE users ALTER COLUMN name TYPE text;
