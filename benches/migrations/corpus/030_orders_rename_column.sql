-- Rename a column the running application still reads.
-- expect: rename_column(medium)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE orders RENAME COLUMN note TO customer_note;
