-- Retention policies and configuration backup/restore.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;

CREATE TABLE conversations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text,
                            created_at timestamptz NOT NULL);
INSERT INTO conversations (body, created_at)
SELECT 'message ' || g, now() - make_interval(days => g) FROM generate_series(1, 100) g;
CREATE TABLE conversations_archive (LIKE conversations);
CREATE TABLE audit_like (id int PRIMARY KEY, at date);
INSERT INTO audit_like SELECT g, current_date - g FROM generate_series(1, 50) g;

-- Validation.
\set VERBOSITY sqlstate
SELECT steward.retention_set('conversations', 'nope', '30 days');
SELECT steward.retention_set('conversations', 'body', '30 days');
SELECT steward.retention_set('conversations', 'created_at', '-1 day');
SELECT steward.retention_set('conversations', 'created_at', '30 days', 'shred');
SELECT steward.retention_set('conversations', 'created_at', '30 days', 'archive');
SELECT steward.retention_set('conversations', 'created_at', '30 days', 'archive', 'audit_like');
SELECT steward.retention_set('conversations_pkey', 'created_at', '30 days');
SELECT * FROM steward.retention_run('00000000-0000-0000-0000-000000000000');
\set VERBOSITY terse

SELECT table_name, timestamp_column, keep, action, archive_table, batch_size
  FROM steward.retention_set('conversations', 'created_at', '30 days', 'archive', 'conversations_archive', 25);
SELECT table_name, action FROM steward.retention_set('audit_like', 'at', '10 days');

-- Dry run: counts only.
SELECT relation, policy_action, eligible, processed, batches, was_dry_run FROM steward.retention_run(dry_run => true) ORDER BY relation;
SELECT (SELECT count(*) FROM conversations) AS conversations, (SELECT count(*) FROM audit_like) AS audit_like;
-- Real run: archived in batches of 25, deleted in one batch.
SELECT relation, policy_action, eligible, processed, batches, was_dry_run FROM steward.retention_run() ORDER BY relation;
SELECT (SELECT count(*) FROM conversations) AS conversations,
       (SELECT count(*) FROM conversations_archive) AS archived,
       (SELECT min(created_at) < now() - interval '30 days' FROM conversations_archive) AS only_old_archived,
       (SELECT count(*) FROM audit_like) AS audit_like;
SELECT dry_run, eligible, processed, batches FROM steward.retention_runs ORDER BY run_at, dry_run DESC, eligible;

-- Configuration backup / restore.
CREATE TABLE app_settings (key text PRIMARY KEY, value jsonb NOT NULL);
INSERT INTO app_settings VALUES ('theme', '"dark"'), ('limit', '10');
CREATE TABLE no_pk (x int);
\set VERBOSITY sqlstate
SELECT steward.config_backup();
SELECT steward.config_register('no_pk');
\set VERBOSITY terse
SELECT steward.config_register('app_settings') AS registered, steward.config_register('app_settings') AS again;
SELECT steward.config_backup('before the change') AS backup_id \gset
UPDATE app_settings SET value = '"light"' WHERE key = 'theme';
DELETE FROM app_settings WHERE key = 'limit';
INSERT INTO app_settings VALUES ('new', 'true');
\set VERBOSITY sqlstate
SELECT steward.config_restore(:'backup_id');
SELECT steward.config_restore('00000000-0000-0000-0000-000000000000', true);
\set VERBOSITY terse
SELECT steward.config_restore(:'backup_id', confirm => true) -> 'restored' AS restored;
SELECT * FROM app_settings ORDER BY key;
SELECT action, row_counts FROM steward.config_backup_log ORDER BY id;
