-- Plain DROP INDEX on the 10-row table.
-- expect: drop_index_not_concurrent(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
DROP INDEX feature_flags_name_idx;
