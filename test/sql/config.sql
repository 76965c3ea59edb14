-- Configuration: tables, validators, effective configuration and provenance.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;
CREATE SCHEMA train;
SELECT steward.install_train_schema('train');
SELECT steward.install_train_schema('train') AS again;
SELECT steward.install_train_schema('no_such_schema');
SELECT steward.install_train_schema('pg_catalog');
SELECT table_name FROM steward.config_tables ORDER BY 1;

-- Validators: every problem, warnings marked, empty when valid.
SELECT steward.validate_ai_config('{}') AS empty, steward.validate_ai_config(steward.default_ai_config()) AS defaults_ok;
SELECT unnest(steward.validate_ai_config('{"model": {"temperature": 3.0, "maxTokens": "many", "model": "gpt-4"},
    "retryStrategy": {"maxDelay": 10}, "costBudget": {"weeklyBudget": 1}, "colour": "red"}')) AS problem;
SELECT unnest(steward.validate_ai_config('{"model": "claude-3-opus-20240229", "temperature": 1.5}')) AS legacy_problem;
SELECT unnest(steward.validate_user_preferences('{"theme": "blue", "rowsPerPage": 30,
    "qualityThresholds": {"flagging": 11}, "defaultFilters": {"qualityRange": [5, 1]}}')) AS problem;
SELECT unnest(steward.validate_user_preferences('{"qualityThresholds": {"autoApproval": 5}}')) AS cross_field;
SELECT steward.validate_user_preferences('[1]') AS not_an_object, steward.validate_ai_config('"x"') AS not_an_object_either;

-- Rows: validated on every write, updated_at maintained, one owner, unique names.
INSERT INTO train.organizations (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Acme');
INSERT INTO train.organization_members (organization_id, user_id)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001');
INSERT INTO train.ai_configurations (id, organization_id, config_name, configuration, priority) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'org-default',
     '{"model": {"temperature": 0.3, "maxTokens": 2000}, "costBudget": {"dailyBudget": 10}}', 1),
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'org-inactive',
     '{"model": {"temperature": 0.9}}', 9);
UPDATE train.ai_configurations SET is_active = false WHERE config_name = 'org-inactive';
INSERT INTO train.ai_configurations (id, user_id, config_name, configuration, priority) VALUES
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', 'mine',
     '{"model": "claude-3-haiku-20240307", "temperature": null, "topP": 0.5}', 5),
    ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-000000000001', 'lower',
     '{"model": {"topP": 0.1}, "costBudget": {"alertThresholds": [0.2]}}', 1);
\set VERBOSITY default
INSERT INTO train.ai_configurations (user_id, config_name, configuration)
VALUES ('00000000-0000-0000-0000-000000000001', 'bad', '{"model": {"temperature": 3.0}, "rateLimiting": {"requestsPerMinute": 0}}');
\set VERBOSITY terse
INSERT INTO train.ai_configurations (user_id, organization_id, config_name)
VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', 'both');
INSERT INTO train.ai_configurations (user_id, config_name) VALUES ('00000000-0000-0000-0000-000000000001', 'mine');
SELECT updated_at > created_at AS updated_at_moved FROM train.ai_configurations WHERE config_name = 'org-inactive';
INSERT INTO steward.config_overrides (kind, document) VALUES ('ai_config', '{"rateLimiting": {"requestsPerMinute": 20}}');
INSERT INTO steward.config_overrides (kind, document) VALUES ('user_preferences', '{"theme": "neon"}');

-- Effective configuration: defaults <- database <- organisations <- the user's best row.
SELECT jsonb_pretty(steward.effective_ai_config('00000000-0000-0000-0000-000000000001'));
SELECT * FROM steward.explain_ai_config('00000000-0000-0000-0000-000000000001') WHERE source <> 'default';
SELECT count(*) AS leaves, count(*) FILTER (WHERE source = 'default') AS from_defaults
  FROM steward.explain_ai_config('00000000-0000-0000-0000-000000000001');
SELECT steward.get_effective_ai_config('00000000-0000-0000-0000-000000000009') = steward.default_ai_config() || '{"rateLimiting": {"requestsPerMinute": 20, "concurrentRequests": 3, "burstAllowance": 10}}' AS stranger_gets_defaults;
SELECT steward.effective_user_preferences(NULL) = steward.default_user_preferences() AS null_user_defaults;
INSERT INTO train.user_preferences (user_id, preferences)
VALUES ('00000000-0000-0000-0000-000000000001', '{"theme": "dark", "notifications": {"email": true}}');
SELECT p -> 'theme' AS theme, p -> 'notifications' AS notifications, p -> 'rowsPerPage' AS rows_per_page
  FROM steward.effective_user_preferences('00000000-0000-0000-0000-000000000001') p;

-- Cost from the price table.
SELECT steward.calculate_cost(1000, 2000, 'claude-3-opus-20240229') AS opus,
       steward.calculate_cost(1000000, 0) AS sonnet_default;
SELECT steward.calculate_cost(1, 1, 'gpt-4');
SELECT steward.calculate_cost(-1, 1);

-- Organisation configurations (issue #17): the organisation's admins write them, a plain
-- member only reads them (and inherits them); a configuration's creator keeps changing it
-- while a member; created_by is the writer, whatever the client sends; every write audited.
GRANT USAGE ON SCHEMA train TO authenticated;
UPDATE train.organization_members SET role = 'admin' WHERE user_id = '00000000-0000-0000-0000-000000000001';
INSERT INTO train.organization_members (organization_id, user_id, role)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000002', 'member');
INSERT INTO train.organization_members (organization_id, user_id, role)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000003', 'owner');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated"}', true) IS NOT NULL AS admin_signed_in;
SELECT c ->> 'config_name' AS name, c ->> 'organization_id' AS organization, c ->> 'created_by' AS created_by,
       c #> '{configuration,costBudget,dailyBudget}' AS daily
  FROM steward.upsert_ai_config('org-budget', '{"costBudget": {"dailyBudget": 5}}', 3, NULL, 'team budget',
                                '00000000-0000-0000-0000-00000000000a') c;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000002", "role": "authenticated"}', true) IS NOT NULL AS member_signed_in;
SELECT steward.effective_ai_config('00000000-0000-0000-0000-000000000002') #> '{costBudget,dailyBudget}' AS inherited_daily_budget;
SAVEPOINT s;
SELECT steward.upsert_ai_config('org-budget', '{"costBudget": {"dailyBudget": 500}}', NULL, NULL, NULL, '00000000-0000-0000-0000-00000000000a');
ROLLBACK TO s;
SELECT steward.delete_ai_config('org-budget', NULL, '00000000-0000-0000-0000-00000000000a');
ROLLBACK TO s;
SELECT steward.upsert_ai_config('elsewhere', '{}', NULL, NULL, NULL, '00000000-0000-0000-0000-0000000000ff');
ROLLBACK TO s;
-- Straight at the table: row-level security says the same.
UPDATE train.ai_configurations SET priority = 99 WHERE config_name = 'org-budget';
SELECT priority AS priority_unchanged FROM train.ai_configurations WHERE config_name = 'org-budget';
INSERT INTO train.ai_configurations (organization_id, config_name, created_by)
VALUES ('00000000-0000-0000-0000-00000000000a', 'sneaky', '00000000-0000-0000-0000-000000000001');
ROLLBACK TO s;
UPDATE train.organization_members SET role = 'admin';
COMMIT;
SELECT user_id, role FROM train.organization_members ORDER BY user_id;
-- An application that lets end users write the memberships is told what that means.
GRANT INSERT ON train.organization_members TO authenticated;
SELECT steward.install_train_schema('train') AS reinstalled;
REVOKE INSERT ON train.organization_members FROM authenticated;
-- A creator demoted to member still changes its own configuration, not the others'.
UPDATE train.organization_members SET role = 'admin' WHERE user_id = '00000000-0000-0000-0000-000000000002';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000002", "role": "authenticated"}', true) IS NOT NULL AS signed_in;
INSERT INTO train.ai_configurations (organization_id, config_name, configuration, created_by)
VALUES ('00000000-0000-0000-0000-00000000000a', 'team-notes', '{"model": {"temperature": 0.2}}', '00000000-0000-0000-0000-000000000001');
COMMIT;
UPDATE train.organization_members SET role = 'member' WHERE user_id = '00000000-0000-0000-0000-000000000002';
SELECT config_name, created_by FROM train.ai_configurations WHERE config_name IN ('org-budget', 'team-notes') ORDER BY 1;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000002", "role": "authenticated"}', true) IS NOT NULL AS signed_in;
SELECT steward.set_ai_config_active('team-notes', false, 'paused', '00000000-0000-0000-0000-00000000000a') AS creator_paused_it;
SELECT c #> '{configuration,model,temperature}' AS creator_edited_it
  FROM steward.upsert_ai_config('team-notes', '{"model": {"temperature": 0.4}}', NULL, NULL, 'creator edits',
                                '00000000-0000-0000-0000-00000000000a') c;
SAVEPOINT s;
SELECT steward.set_ai_config_active('org-budget', false, NULL, '00000000-0000-0000-0000-00000000000a');
ROLLBACK TO s;
COMMIT;
SELECT e.action, e.changed_by, e.change_reason, c.config_name
  FROM steward.audit_entries e JOIN train.ai_configurations c ON c.id = e.config_id
 WHERE c.config_name IN ('org-budget', 'team-notes') ORDER BY e.changed_at, e.seq;

-- Key rotation schedules: a key older than its schedule allows is listed and alerted
-- (api_key_rotation_due); rotating it resolves the alert.
UPDATE train.ai_configurations SET configuration = configuration || '{"apiKeys": {"primaryKey": "sk-org-rotate-000001", "rotationSchedule": "quarterly"}}'
 WHERE config_name = 'org-budget';
UPDATE train.ai_configurations SET configuration = configuration || '{"apiKeys": {"primaryKey": "sk-org-manual-000001"}}'
 WHERE config_name = 'org-default';
SELECT config_name, rotation_schedule FROM steward.ai_key_rotation_due();
UPDATE steward.api_key_vault SET created_at = now() - interval '100 days' WHERE owner_id = '00000000-0000-0000-0000-00000000000a';
SELECT config_name, rotation_schedule, days_overdue BETWEEN 9.9 AND 10.1 AS ten_days_over FROM steward.ai_key_rotation_due();
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000002", "role": "authenticated"}', true) IS NOT NULL AS member_signed_in;
SELECT count(*) AS a_member_sees FROM steward.ai_key_rotation_due();
COMMIT;
SELECT steward.check_alerts() >= 1 AS raised;
SELECT severity, message LIKE 'The API key of AI configuration "org-budget" (organisation 00000000-0000-0000-0000-00000000000a) is 10 days past its quarterly rotation' AS message_ok
  FROM steward.performance_alerts WHERE rule_id = 'api_key_rotation_due' AND resolved_at IS NULL;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated"}', true) IS NOT NULL AS admin_signed_in;
SELECT steward.rotate_api_key('org-budget', 'sk-org-rotate-000002', 'quarterly rotation', '00000000-0000-0000-0000-00000000000a');
COMMIT;
SELECT resolved_at IS NOT NULL AS resolved, resolved_by, resolution_notes FROM steward.performance_alerts WHERE rule_id = 'api_key_rotation_due';
SELECT count(*) AS still_due FROM steward.ai_key_rotation_due();
DELETE FROM steward.performance_alerts WHERE rule_id = 'api_key_rotation_due';
