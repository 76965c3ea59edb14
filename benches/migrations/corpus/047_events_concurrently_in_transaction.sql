-- CREATE INDEX CONCURRENTLY inside BEGIN/COMMIT.
-- fails: CREATE INDEX CONCURRENTLY cannot run inside a transaction block
-- expect: concurrently_in_transaction, transaction_control
-- explain: tx-model
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '15min';
CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);
COMMIT;
