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
