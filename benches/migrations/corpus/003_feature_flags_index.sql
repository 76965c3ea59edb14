-- Plain CREATE INDEX on the 10-row feature_flags table: same statement as 001, one page to read.
-- expect: index_not_concurrent(low)
-- explain: size
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE INDEX feature_flags_enabled_idx ON feature_flags (enabled);
