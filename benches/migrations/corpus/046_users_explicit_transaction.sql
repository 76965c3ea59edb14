-- A migration written with its own BEGIN/COMMIT (migration tools already wrap each file in a transaction).
-- expect: transaction_control
-- explain: tx-model
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '15min';
ALTER TABLE users ADD COLUMN locale text;
COMMIT;
