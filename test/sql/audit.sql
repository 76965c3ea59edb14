-- Audit trail, diff/patch, history, statistics, CSV and rollback (issues #5 and #6).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;
SELECT clock_timestamp() AS audit_start \gset
CREATE SCHEMA audit_demo;
CREATE TABLE audit_demo.settings (
    id uuid PRIMARY KEY,
    owner uuid,
    doc jsonb NOT NULL DEFAULT '{}',
    is_active boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE audit_demo.nokey (doc jsonb);
CREATE TABLE audit_demo.textdoc (id uuid PRIMARY KEY, doc text);

-- Attaching: refusals name the problem; enabling twice is fine.
SELECT steward.audit_enable('audit_demo.nokey', 'ai_config', 'doc');
SELECT steward.audit_enable('audit_demo.textdoc', 'ai_config', 'doc');
SELECT steward.audit_enable('audit_demo.settings', 'ai_config', 'nodoc');
SELECT steward.audit_enable('audit_demo.settings', 'AI Config', 'doc');
SELECT steward.audit_enable('audit_demo.settings', 'ai_config', 'doc', 'owner');
SELECT steward.audit_enable('audit_demo.settings', 'ai_config', 'doc', 'owner') AS again;
SELECT relid, config_type, document_column, owner_column, key_column FROM steward.audited_tables
 WHERE relid = 'audit_demo.settings'::regclass;

-- Changes, attributed the way PostgREST sets the request (claims, headers, a reason).  The
-- claims count only under an API role reached by SET ROLE; a direct session is itself.
INSERT INTO audit_demo.settings (id, owner, doc) VALUES
    ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', '{"model": {"temperature": 0.5}}');
GRANT USAGE ON SCHEMA audit_demo TO authenticated;
GRANT SELECT, UPDATE ON audit_demo.settings TO authenticated;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000001", "role": "authenticated"}', true) IS NOT NULL AS claims,
       set_config('request.headers', '{"user-agent": "supabase-js/2", "x-forwarded-for": "203.0.113.7, 10.0.0.1"}', true) IS NOT NULL AS headers,
       set_config('steward.change_reason', 'cooler answers', true) IS NOT NULL AS reason;
UPDATE audit_demo.settings SET doc = '{"model": {"temperature": 0.2, "maxTokens": 1000}}';
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', '{broken json', true) IS NOT NULL AS malformed_claims,
       set_config('request.headers', 'not json either', true) IS NOT NULL AS malformed_headers;
UPDATE audit_demo.settings SET doc = '{"model": {"temperature": 0.3, "maxTokens": 1000}, "costBudget": {"dailyBudget": 5}}';
COMMIT;
UPDATE audit_demo.settings SET doc = doc;                  -- changes nothing: not recorded
UPDATE audit_demo.settings SET updated_at = now();         -- only updated_at: not recorded
UPDATE audit_demo.settings SET is_active = false;
UPDATE audit_demo.settings SET is_active = true;
SELECT seq, action, changed_by, actor, old_values, new_values, change_reason, client_ip, user_agent,
       prev_hash IS NOT NULL AS linked, length(hash) AS hash_bytes
  FROM steward.configuration_audit_log WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq;
SELECT action, config_id IS NOT NULL AS has_config FROM steward.ai_configuration_audit
 WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY created_at, action;

-- Append-only for everyone, the owner (this superuser) included.
INSERT INTO steward.configuration_audit_log SELECT * FROM steward.configuration_audit_log LIMIT 1;
UPDATE steward.configuration_audit_log SET change_reason = 'rewritten';
DELETE FROM steward.configuration_audit_log;
TRUNCATE steward.configuration_audit_log;
TRUNCATE steward.audit_entries;
DELETE FROM steward.audit_entries;
SELECT steward.audit_verify('00000000-0000-4000-8000-0000000000c1'::uuid);
-- Stored: old_values only where it is not the previous entry's new_values (the view above
-- read every one of them back).
SELECT seq, old_elided, old_values IS NULL AS old_values_not_stored FROM steward.audit_entries
 WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq;

-- Diff and patch.
SELECT jsonb_pretty(steward.config_diff('{"model": {"temperature": 0.7, "maxTokens": 4096}, "a": null, "gone": [1], "n": 1}',
                                        '{"model": {"temperature": 0.2, "maxTokens": 4096, "topP": 0.9}, "a": 1, "n": 1.0}'));
SELECT steward.config_diff('{}', '[]');
SELECT steward.jsonb_diff_patch('{"a": 1, "b/c": {"d~e": 1}}', '{"a": 2, "b/c": {}}');
SELECT steward.jsonb_patch('{"a": 1, "b/c": {"d~e": 1}}', steward.jsonb_diff_patch('{"a": 1, "b/c": {"d~e": 1}}', '{"a": 2, "b/c": {}}'));
SELECT steward.jsonb_patch('{"a": 1}', '[{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}]');
SELECT steward.jsonb_patch('{"a": 1}', '{"op": "add"}');
SELECT steward.jsonb_patch('{"a": 1}', '[{"op": "move", "from": "/a", "path": "/b"}, {"op": "copy", "from": "/b", "path": "/c"}, {"op": "remove", "path": "/b"}]');
SELECT steward.jsonb_merge_patch('{"a": 1, "b": {"c": 2, "d": 3}}', '{"a": null, "b": {"c": 4}, "e": [1]}');

-- History, statistics, CSV.
SELECT h ->> 'totalCount' AS total, h ->> 'hasMore' AS more, jsonb_array_length(h -> 'entries') AS shown,
       h -> 'entries' -> 0 ->> 'action' AS newest
  FROM steward.change_history('ai_config', '00000000-0000-4000-8000-0000000000c1', 1, 2) h;
SELECT steward.change_history('ai_config', '00000000-0000-4000-8000-0000000000c1', 0, 20);
SELECT steward.change_history('ai_config', '00000000-0000-4000-8000-0000000000c1', 1, 5000);
SELECT h ->> 'totalCount' AS total, h -> 'entries' -> 0 ->> 'change_reason' AS reason
  FROM steward.change_history_filtered('{"configId": "00000000-0000-4000-8000-0000000000c1", "searchText": "cooler"}') h;
SELECT (steward.change_history_filtered('{"searchText": "100%_"}')) ->> 'totalCount' AS literal_wildcards;
SELECT steward.change_history_filtered('{"colour": "red"}');
SELECT steward.change_history_filtered('{"configId": "not-a-uuid"}');
SELECT steward.change_history_filtered('[1]');
SELECT s -> 'changesByType' AS by_type, jsonb_array_length(s -> 'recentActivity') AS days,
       (s -> 'mostChangedConfigs' -> 0 ->> 'changeCount')::int >= 5 AS top_counted
  FROM steward.change_statistics(:'audit_start') s;
UPDATE audit_demo.settings SET doc = doc || '{"note": "=HYPERLINK(\"x\")"}';
BEGIN;
SELECT set_config('steward.change_reason', E'=cmd|'' /C calc''!A0, "quoted"\nnext line', true) IS NOT NULL AS hostile_reason;
UPDATE audit_demo.settings SET doc = doc - 'note';
COMMIT;
SELECT regexp_replace(regexp_replace(steward.change_history_csv('{"configId": "00000000-0000-4000-8000-0000000000c1"}'),
       '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'),
       '\d{4}-\d\d-\d\dT[0-9:.]+Z', '<time>', 'g') AS csv;

-- Rollback: preview, validation, execution with the expected version, conflict, bulk.
SELECT l.id AS second_change FROM steward.configuration_audit_log l
 WHERE l.config_id = '00000000-0000-4000-8000-0000000000c1' AND l.seq = 3 \gset
-- (entry 3 changed temperature 0.2 -> 0.3 and added costBudget: rolling back to it restores 0.2)
SELECT p -> 'currentValues' AS current, p -> 'targetValues' AS target, p -> 'diff' AS diff, p -> 'warnings' AS warnings,
       p ->> 'currentVersionId' = (SELECT id::text FROM steward.configuration_audit_log
                                    WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq DESC LIMIT 1) AS current_version_is_newest
  FROM steward.rollback_preview(:'second_change') p;
SELECT steward.rollback_validate(:'second_change');
SELECT steward.rollback_validate(:'second_change', true);
SELECT (steward.rollback_preview(:'second_change')) ->> 'currentVersionId' AS expected \gset
UPDATE audit_demo.settings SET doc = doc || '{"costBudget": {"dailyBudget": 7}}';   -- someone else, in between
SELECT steward.rollback(:'second_change', 'undo', :'expected');
SELECT (steward.rollback_preview(:'second_change')) ->> 'currentVersionId' AS expected \gset
SELECT steward.rollback(:'second_change', 'undo the budget change', :'expected') AS new_entry \gset
SELECT :'new_entry' = (SELECT id::text FROM steward.configuration_audit_log
                        WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq DESC LIMIT 1) AS returns_new_entry;
SELECT doc FROM audit_demo.settings;
SELECT action, change_reason, rollback_of = :'second_change' AS marks_rollback FROM steward.configuration_audit_log
 WHERE config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq DESC LIMIT 1;
SELECT steward.rollback('00000000-0000-4000-8000-00000000dead');
-- A target that fails validation, and a bulk where one item is bad: nothing changes.
UPDATE audit_demo.settings SET doc = '{"model": {"temperature": 3}}';   -- this table has no validator of its own
UPDATE audit_demo.settings SET doc = '{"model": {"temperature": 0.1}}';
SELECT l.id AS bad_target FROM steward.configuration_audit_log l
 WHERE l.config_id = '00000000-0000-4000-8000-0000000000c1' ORDER BY seq DESC LIMIT 1 \gset
SELECT steward.rollback(:'bad_target');
SELECT steward.rollback_bulk(ARRAY[:'second_change', :'bad_target']::uuid[], 'bulk');
SELECT doc FROM audit_demo.settings;
SELECT steward.rollback_bulk(ARRAY[:'second_change']::uuid[], 'bulk') IS NOT NULL AS bulk_applied;
SELECT doc FROM audit_demo.settings;
SELECT v ->> 'ok' AS ok, v ->> 'checked' AS checked FROM steward.audit_verify('00000000-0000-4000-8000-0000000000c1'::uuid) v;

-- Entry ids are time-ordered (UUID version 7), so the log's primary key grows at its right edge.
SELECT count(*) > 0 AND bool_and(substr(id::text, 15, 1) = '7') AS version_7_ids FROM steward.configuration_audit_log;
-- Delete and truncate are recorded; removal of old entries is the purge's alone, and recorded.
SELECT clock_timestamp() AS mid \gset
-- A later change of c1, whose earlier entries the purge below removes.
UPDATE audit_demo.settings SET doc = doc || '{"late": true}' WHERE id = '00000000-0000-4000-8000-0000000000c1';
INSERT INTO audit_demo.settings (id, doc) VALUES ('00000000-0000-4000-8000-0000000000c2', '{}');
UPDATE audit_demo.settings SET doc = '{"x": 1}' WHERE id = '00000000-0000-4000-8000-0000000000c2';
SELECT l.id AS gone_entry FROM steward.configuration_audit_log l
 WHERE l.config_id = '00000000-0000-4000-8000-0000000000c2' AND l.action = 'updated' \gset
DELETE FROM audit_demo.settings WHERE id = '00000000-0000-4000-8000-0000000000c2';
-- A deleted configuration is not brought back by a rollback of one of its changes.
SELECT steward.rollback(:'gone_entry');
SELECT steward.rollback_preview(:'gone_entry');
TRUNCATE audit_demo.settings;
SELECT action, config_id FROM steward.configuration_audit_log
 WHERE relid = 'audit_demo.settings'::regclass AND action IN ('deleted', 'truncated') ORDER BY action;
SELECT steward.audit_purge('1 hour');
SELECT steward.audit_purge('-1 year 361 days');
SELECT (steward.audit_purge('1 day', true)) ->> 'entries' AS would_remove;
SELECT steward._audit_purge(:'mid', false) > 0 AS removed_older_entries;
SELECT count(*) AS older_left FROM steward.configuration_audit_log WHERE changed_at < :'mid';
-- The entry that stayed still reads the document before it, now stored with it.
SELECT l.seq, l.old_values, l.new_values, e.old_elided
  FROM steward.configuration_audit_log l JOIN steward.audit_entries e USING (id)
 WHERE l.config_id = '00000000-0000-4000-8000-0000000000c1';
SELECT count(*) AS purges_recorded, bool_and(entries_removed > 0) AS counted FROM steward.audit_purges;
SELECT v ->> 'ok' AS chains_still_verify FROM steward.audit_verify() v;
-- A checkpoint of every chain head, and the log verified against it.
SELECT c ->> 'version' AS version, (c ->> 'chains')::int > 0 AS has_chains, length(c ->> 'digest') AS digest_length
  FROM steward.audit_checkpoint() c;
SELECT v ->> 'ok' AS checkpoint_verifies, jsonb_array_length(v -> 'deleted_chains') AS deleted,
       jsonb_array_length(v -> 'truncated') AS truncated, jsonb_array_length(v -> 'edited') AS edited
  FROM steward.audit_verify(steward.audit_checkpoint()) v;
SELECT steward.audit_disable('audit_demo.settings');
SELECT count(*) AS still_registered FROM steward.audited_tables WHERE relid = 'audit_demo.settings'::regclass;
