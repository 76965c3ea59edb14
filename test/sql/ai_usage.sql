-- AI usage and spending (issue #17 items 1 and 4).
SET client_min_messages = warning;

-- The model catalogue: the one table the validator, calculate_cost and usage read.
SELECT * FROM steward.ai_models();
SELECT m.model_id, steward.calculate_cost(1000000, 1000000, m.model_id) = m.input_price_per_million + m.output_price_per_million AS prices_agree
  FROM steward.ai_models() m;

-- Known calls for one user: costs from the catalogue, never from the caller.
DELETE FROM steward.ai_usage_daily;
DELETE FROM steward.ai_usage_rollup;
DELETE FROM steward.ai_usage;
SELECT model, input_tokens, output_tokens, cost, request_id
  FROM steward.record_ai_usage('claude-3-haiku-20240307', 1000, 2000, 'a11ce000-0000-4000-8000-000000000001', NULL, 'req-1');
SELECT model, cost FROM steward.record_ai_usage('claude-3-opus-20240229', 10000, 1000, 'a11ce000-0000-4000-8000-000000000001');
-- The same request id again: the first row, no second charge.
SELECT cost, request_id FROM steward.record_ai_usage('claude-3-opus-20240229', 999999, 999999, 'a11ce000-0000-4000-8000-000000000001', NULL, 'req-1');
-- Another user's request ids never collide.
SELECT cost FROM steward.record_ai_usage('claude-3-haiku-20240307', 4000, 0, 'b0b00000-0000-4000-8000-000000000002', NULL, 'req-1');
SELECT count(*) AS calls, sum(cost) AS total FROM steward.ai_usage;
-- Calls of days that are over are rolled up by the daily job; spend reads the roll-up up to
-- its watermark and the calls after it, so it is the same before and after.
DELETE FROM steward.ai_usage_rollup;
INSERT INTO steward.ai_usage (user_id, model, input_tokens, output_tokens, cost, recorded_at, recorded_by)
SELECT 'a11ce000-0000-4000-8000-000000000001', 'claude-3-haiku-20240307', 1000, 0, 0.00025, now() - make_interval(days => d), 'test'
  FROM generate_series(3, 5) d;
SELECT sum(spend) AS spend_before FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'day');
SELECT steward.rollup_ai_usage() AS rolled_up_rows;
SELECT count(*) AS days, sum(calls) AS calls, max(day) < (now() AT TIME ZONE 'UTC')::date - 1 AS only_closed_days FROM steward.ai_usage_daily;
SELECT sum(spend) AS spend_after FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'day');
SELECT steward.rollup_ai_usage() AS nothing_new;
DELETE FROM steward.ai_usage WHERE recorded_by = 'test';
DELETE FROM steward.ai_usage_daily;
DELETE FROM steward.ai_usage_rollup;

-- Spend per period with the budget of the user's effective configuration (database layer here).
INSERT INTO steward.config_overrides (kind, document)
VALUES ('ai_config', '{"costBudget": {"dailyBudget": 0.3, "weeklyBudget": 1, "monthlyBudget": 2, "alertThresholds": [0.5, 0.75, 0.9]}}')
ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document;
SELECT period_start = (now() AT TIME ZONE 'UTC')::date AS today, spend, calls, input_tokens, output_tokens, budget, share_used
  FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'day', (now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date);
SELECT count(*) AS days, sum(spend) AS spend FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'day');
SELECT count(*) AS months, max(budget) AS budget FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'month');
SELECT s -> 'thresholds' AS thresholds, (s -> 'day') - 'periodStart' AS day, s -> 'month' ->> 'overBudget' AS month_over
  FROM steward.ai_budget_status('a11ce000-0000-4000-8000-000000000001') s;
DELETE FROM steward.config_overrides WHERE kind = 'ai_config';

-- Budget alerts (rule ai_budget, kept by check_alerts): each threshold of the user's effective
-- configuration crossed is one alert per user, period and level, raised once (the highest
-- threshold error, lower ones warning), the budget exceeded critical; resolved when the period
-- is over.  budgetEnforcement (off by default) refuses a call beyond the budget with 54000.
DELETE FROM steward.ai_usage;
INSERT INTO steward.config_overrides (kind, document)
VALUES ('ai_config', '{"costBudget": {"dailyBudget": 1, "weeklyBudget": 1000, "monthlyBudget": 1000, "alertThresholds": [0.5, 0.75, 0.9]}}')
ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document;
CREATE VIEW pg_temp.budget_alerts AS
SELECT severity, regexp_replace(object_name, '\d{4}-\d{2}-\d{2}', 'START') AS object, occurrences, resolved_at IS NOT NULL AS resolved
  FROM steward.performance_alerts WHERE rule_id = 'ai_budget' ORDER BY created_at, object_name;
SELECT cost FROM steward.record_ai_usage('claude-3-opus-20240229', 40000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-1');
SELECT steward.check_alerts() >= 1 AS raised;
SELECT * FROM pg_temp.budget_alerts;
SELECT steward.check_alerts() >= 0 AS checked_again;
SELECT * FROM pg_temp.budget_alerts;
SELECT cost FROM steward.record_ai_usage('claude-3-opus-20240229', 20000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-2');
SELECT steward.check_alerts() >= 2 AS raised;
SELECT * FROM pg_temp.budget_alerts;
SELECT cost FROM steward.record_ai_usage('claude-3-opus-20240229', 10000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-3');
SELECT steward.check_alerts() >= 1 AS raised;
SELECT * FROM pg_temp.budget_alerts;
SELECT regexp_replace(message, '\d{4}-\d{2}-\d{2}', 'START') AS message FROM steward.performance_alerts WHERE rule_id = 'ai_budget' AND severity = 'critical';
SELECT steward.set_setting('budgetEnforcement', '1');
\set VERBOSITY default
SELECT cost FROM steward.record_ai_usage('claude-3-haiku-20240307', 1000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-4');
\set VERBOSITY terse
SELECT cost, request_id FROM steward.record_ai_usage('claude-3-opus-20240229', 10000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-3') AS already_recorded;
SELECT count(*) AS calls, sum(cost) AS spent FROM steward.ai_usage;
SELECT steward.reset_setting('budgetEnforcement');
SELECT cost AS recorded_without_enforcement FROM steward.record_ai_usage('claude-3-haiku-20240307', 1000, 0, 'a11ce000-0000-4000-8000-000000000001', NULL, 'b-4');
-- The period is over (the calls are 40 days old now): every budget alert resolves at the next check.
UPDATE steward.ai_usage SET recorded_at = recorded_at - interval '40 days';
SELECT steward.check_alerts() >= 0 AS checked;
SELECT * FROM pg_temp.budget_alerts;
SELECT DISTINCT resolution_notes FROM steward.performance_alerts WHERE rule_id = 'ai_budget';
DELETE FROM steward.performance_alerts WHERE rule_id = 'ai_budget';
DELETE FROM steward.ai_usage;
DELETE FROM steward.config_overrides WHERE kind = 'ai_config';

-- Bad input: clear errors, nothing stored.
\set VERBOSITY default
SELECT steward.record_ai_usage('gpt-4', 1, 1, 'a11ce000-0000-4000-8000-000000000001');
SELECT steward.record_ai_usage('claude-3-haiku-20240307', -5, 1, 'a11ce000-0000-4000-8000-000000000001');
SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1);
SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1, 'a11ce000-0000-4000-8000-000000000001', NULL, repeat('x', 201));
SELECT * FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'year');
SELECT * FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001', 'day', '2026-02-01', '2026-01-01');
\set VERBOSITY terse
SELECT count(*) AS still FROM steward.ai_usage;
DELETE FROM steward.ai_usage_daily;
DELETE FROM steward.ai_usage;
RESET client_min_messages;
