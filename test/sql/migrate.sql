-- Schema migrations: the finding rows of every rule of migration_check, the registry's
-- refusals, apply and roll back, the safe-pattern helpers (terse errors: the DETAIL of a
-- failed run carries a random run id).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;
-- Small thresholds, so a table of a few MB weighs as high risk and one of 10 rows as low.
SELECT steward.set_setting('migrationRiskMediumBytes', '65536') IS NOT NULL AS medium_set;
SELECT steward.set_setting('migrationRiskHighBytes', '1048576') IS NOT NULL AS high_set;

CREATE TABLE rm_big (id int PRIMARY KEY, customer int, note varchar(50), created timestamp, total numeric(10,2));
INSERT INTO rm_big SELECT g, g % 100, 'n' || g, '2026-01-01', g FROM generate_series(1, 40000) g;
CREATE TABLE rm_small (id int PRIMARY KEY, code text);
INSERT INTO rm_small SELECT g, 'c' || g FROM generate_series(1, 10) g;
CREATE INDEX rm_big_customer ON rm_big (customer);
ANALYZE rm_big, rm_small;
CREATE FUNCTION rm_check(sql text) RETURNS TABLE (rule text, risk text, stmt int, relation text, big boolean,
                                                    lock_level text, rewrites boolean, scans boolean)
LANGUAGE sql AS $$
    SELECT rule, risk, statement_no, relation, relation_bytes > 1048576, lock_level, rewrites, scans
      FROM steward.migration_check(sql)
$$;

-- The result's columns.
SELECT * FROM steward.migration_check('SELECT 1') LIMIT 0;

-- Each rule on a large table (lock_timeout set first, so only the rule itself shows).
SELECT * FROM rm_check($$SET lock_timeout = '5s';
CREATE INDEX rm_big_note ON rm_big (note);
$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; DROP INDEX rm_big_customer$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD COLUMN uid uuid DEFAULT gen_random_uuid()$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD COLUMN seen timestamptz DEFAULT clock_timestamp()$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD COLUMN n bigserial$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN customer SET NOT NULL$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_fk FOREIGN KEY (customer) REFERENCES rm_small (id)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_positive CHECK (total > 0)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_note_key UNIQUE (note)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN customer TYPE bigint$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN created TYPE timestamptz$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN note TYPE varchar(20)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big RENAME COLUMN note TO memo$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big RENAME TO rm_orders$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; DROP TABLE rm_big$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big DROP COLUMN note$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; TRUNCATE rm_big$$);
SELECT * FROM rm_check($$DELETE FROM rm_big; DELETE FROM rm_big WHERE 1 = 1; DELETE FROM rm_big WHERE true; DELETE FROM rm_big WHERE id < 10$$);
SELECT * FROM rm_check($$UPDATE rm_big SET note = 'x'; UPDATE rm_big SET note = 'x' WHERE 'a' = 'a' OR id = 1; UPDATE rm_big SET note = 'x' WHERE id = 1$$);
SELECT * FROM rm_check($$CREATE TABLE rm_new (id int PRIMARY KEY, name varchar(40), code char(3), at timestamp, ok boolean)$$);
SELECT * FROM rm_check($$CREATE TABLE rm_new2 (id serial, name text, PRIMARY KEY (id))$$);
SELECT * FROM rm_check($$ALTER TABLE rm_big ADD COLUMN extra int$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD COLUMN a int; ALTER TABLE rm_small ADD COLUMN b int$$);
SELECT * FROM rm_check($$BEGIN; CREATE INDEX CONCURRENTLY rm_big_note2 ON rm_big (note); COMMIT$$);

-- NOT VALID then VALIDATE in one transaction: the ADD's lock is held through the scan.
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_pos CHECK (total > 0) NOT VALID; ALTER TABLE rm_big VALIDATE CONSTRAINT rm_pos$$);
-- TRUNCATE ... CASCADE empties the tables that reference it too.
CREATE TABLE rm_child (id int, small_id int REFERENCES rm_small (id));
SELECT * FROM rm_check($$SET lock_timeout = '5s'; TRUNCATE rm_small CASCADE$$);
-- A primary key on an int column, through USING INDEX.
CREATE UNIQUE INDEX rm_small_id2 ON rm_small (id);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_small ADD CONSTRAINT rm_small_pk PRIMARY KEY USING INDEX rm_small_id2$$);
-- A new table's foreign key locks the table it references (before any lock_timeout here).
SELECT * FROM rm_check($$CREATE TABLE rm_new3 (id bigint PRIMARY KEY, small_id int REFERENCES rm_small (id))$$);

-- The same statements on a table of 10 rows: low risk; destructive rules stay high.
SELECT * FROM rm_check($$SET lock_timeout = '5s'; CREATE INDEX ON rm_small (code); ALTER TABLE rm_small ALTER COLUMN code SET NOT NULL; TRUNCATE rm_small$$);

-- Safe forms: no finding.
SELECT * FROM rm_check($$SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY rm_big_note ON rm_big (note)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; DROP INDEX CONCURRENTLY rm_big_customer$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD COLUMN flag boolean DEFAULT false NOT NULL$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_fk FOREIGN KEY (customer) REFERENCES rm_small (id) NOT VALID$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big VALIDATE CONSTRAINT rm_fk$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ADD CONSTRAINT rm_note_key UNIQUE USING INDEX rm_note_idx$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN note TYPE varchar(100)$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN note TYPE text$$);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN total TYPE numeric(12,2)$$);
SELECT * FROM rm_check($$CREATE TABLE rm_new (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, at timestamptz);
CREATE INDEX ON rm_new (name);
ALTER TABLE rm_new ADD COLUMN u uuid DEFAULT gen_random_uuid()$$);
-- SET NOT NULL after a validated CHECK (col IS NOT NULL) reads nothing.
ALTER TABLE rm_big ADD CONSTRAINT rm_customer_nn CHECK (customer IS NOT NULL);
SELECT * FROM rm_check($$SET lock_timeout = '5s'; ALTER TABLE rm_big ALTER COLUMN customer SET NOT NULL$$);
ALTER TABLE rm_big DROP CONSTRAINT rm_customer_nn;

-- Silenced: on the line before, inside, or after the statement's semicolon; only that statement.
SELECT * FROM rm_check($$SET lock_timeout = '5s';
-- steward:ignore drop_column
ALTER TABLE rm_big DROP COLUMN note;
TRUNCATE rm_big; -- steward:ignore truncate
DROP TABLE rm_big /* steward:ignore drop_table, missing_lock_timeout */;
DROP TABLE rm_small$$);

-- search_path of the script decides which table a name means.
CREATE SCHEMA rm_app;
CREATE TABLE rm_app.rm_big (id int);
SELECT * FROM rm_check($$SET search_path = rm_app; SET lock_timeout = '5s'; TRUNCATE rm_big$$);

-- A script PostgreSQL's parser refuses: 22023 with its message and the position.
SELECT * FROM steward.migration_check('CREATE TABLE x (id int');
SELECT * FROM steward.migration_check($$SELECT 1;
ALTER TABLE rm_big ADD COLUMN$$);

-- Registry: refusals.
SELECT steward.migration_add(0, 'zero', 'SELECT 1', 'SELECT 1');
SELECT steward.migration_add(-5, 'negative', 'SELECT 1', 'SELECT 1');
SELECT steward.migration_add(1, ' ', 'SELECT 1', 'SELECT 1');
SELECT steward.migration_add(1, 'no down', 'SELECT 1', NULL);
SELECT steward.migration_add(1, 'empty', '  -- nothing', 'SELECT 1');
SELECT steward.migration_add(1, 'parse', 'CREATE TABLE rm_x (id int', 'DROP TABLE rm_x');
SELECT steward.migration_add(1, 'transaction', 'BEGIN; CREATE TABLE rm_x (id int); COMMIT', 'DROP TABLE rm_x');
SELECT steward.migration_add(1, 'mixed', 'CREATE INDEX CONCURRENTLY rm_i ON rm_big (note); CREATE TABLE rm_x (id int)', 'DROP TABLE rm_x');
SELECT steward.migration_status();
SELECT steward.migration_current_version(), steward.migration_is_applied(1);

-- Registry: add, apply, roll back.
SELECT steward.migration_add(1, 'a table', 'CREATE TABLE rm_x (id bigint PRIMARY KEY, label text)', 'DROP TABLE rm_x') ->> 'checksum' = md5('CREATE TABLE rm_x (id bigint PRIMARY KEY, label text)') AS md5_checksum;
SELECT steward.migration_add(1, 'again', 'SELECT 1', 'SELECT 1');
SELECT jsonb_array_length(steward.migration_add(2, 'an index', 'CREATE INDEX rm_x_label ON rm_x (label)', 'DROP INDEX rm_x_label') -> 'findings') AS findings_on_a_new_table;
SELECT (steward.migration_add(3, 'a column', 'ALTER TABLE rm_big ADD COLUMN seen timestamptz DEFAULT now()', 'ALTER TABLE rm_big DROP COLUMN seen') -> 'findings') @> '[{"rule": "missing_lock_timeout"}]' AS stored_findings;
SELECT steward.migration_apply(dry_run => true) -> 'wouldApply' @> '[{"version": 1}, {"version": 2}, {"version": 3}]' AS dry_run_lists_all;
SELECT steward.migration_apply(2) - 'currentVersion' AS applied_to_2;
SELECT steward.migration_current_version(), steward.migration_is_applied(1), steward.migration_is_applied(3);
SELECT version, description, applied_by, execution_time_ms >= 0 AS timed, checksum = md5('CREATE TABLE rm_x (id bigint PRIMARY KEY, label text)') AS checksum_ok
  FROM steward.applied_migrations ORDER BY version;
SELECT steward.migration_apply() -> 'applied' AS applied_rest;
SELECT to_regclass('rm_x') IS NOT NULL AS table_made, (SELECT count(*) FROM pg_attribute WHERE attrelid = 'rm_big'::regclass AND attname = 'seen') AS column_made;
SELECT steward.migration_rollback(2);
SELECT steward.migration_rollback(3) ->> 'rolledBack' AS rolled_back;
SELECT steward.migration_rollback(3);
SELECT steward.migration_rollback(99);
SELECT steward.migration_rollback(1, force => true) ->> 'rolledBack' AS forced;
SELECT steward.migration_current_version();
SELECT version, direction, status, error_sqlstate, failed_statement FROM steward.migration_history() ORDER BY started_at, version, direction;

-- Safe-pattern helpers: identifiers quoted from the catalog.
CREATE TABLE "Rm Mixed" ("Some Col" int);
SELECT unnest(steward.safe_add_column('"Rm Mixed"', 'New Col', 'integer', '0', true));
SELECT unnest(steward.safe_add_constraint('rm_big', 'rm_positive', 'CHECK (total > 0)'));
SELECT unnest(steward.safe_rename_column('"Rm Mixed"', 'Some Col', 'other'));
SELECT unnest(steward.safe_create_index('"Rm Mixed"', ARRAY['Some Col']::name[]));
SELECT unnest(steward.safe_drop_table('"Rm Mixed"'));
SELECT steward.safe_add_column('rm_big', 'x', 'no_such_type');

DROP FUNCTION rm_check(text);
DROP TABLE rm_child, rm_big, rm_small, rm_app.rm_big, "Rm Mixed";
DROP SCHEMA rm_app;
SELECT steward.reset_setting('migrationRiskMediumBytes') IS NOT NULL AS reset_medium, steward.reset_setting('migrationRiskHighBytes') IS NOT NULL AS reset_high;
