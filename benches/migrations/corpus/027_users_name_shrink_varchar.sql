-- varchar(100) -> varchar(60): a shorter limit checks and rewrites every row.
-- expect: column_type_rewrite(medium)
-- explain: scope
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE users ALTER COLUMN name TYPE varchar(60);
