-- Drop an index nobody uses any more, plainly: ACCESS EXCLUSIVE on orders while it goes.
-- expect: drop_index_not_concurrent(medium)
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DROP INDEX orders_legacy_ref_idx;
