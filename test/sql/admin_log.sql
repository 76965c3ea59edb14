-- The admin log (issue #16 item 6): every admin action leaves one row, also when it fails.
SET client_min_messages = warning;
SELECT coalesce(max(id), 0) AS start_id FROM steward.admin_log \gset

-- A successful action: its row is written in the caller's transaction.
SELECT steward.set_setting('reportListLimit', '42');
SELECT steward.reset_setting('reportListLimit');
SELECT steward.set_alert_rule('freeze_age', false) ->> 'enabled' AS enabled;
SELECT steward.reset_alert_rule('freeze_age') ->> 'enabled' AS enabled;
-- A failing action: its row is written by a worker and survives the rollback.
SELECT steward.set_setting('reportListLimit', '"many"');
SELECT steward.set_alert_rule('no_such_rule', true);
BEGIN;
SELECT steward.set_setting('reportTableLimit', '0');
ROLLBACK;
-- A successful action in a transaction rolled back afterwards leaves no row (the row went
-- with what the action did).
BEGIN;
SELECT steward.set_setting('reportTableLimit', '7');
ROLLBACK;

SELECT action, outcome, sqlstate, arguments, left(message, 40) AS message, actor = session_user::text AS actor_is_me
  FROM steward.admin_log WHERE id > :start_id
 ORDER BY id;

-- The list: filters and pages; bad filters are refused.
SELECT (l ->> 'totalCount')::int AS errors, jsonb_path_query_array(l -> 'entries', '$[*].sqlstate') AS states
  FROM steward.admin_log_list('{"outcome": "error", "search": "reportTableLimit"}', 1, 10) l;
SELECT (l ->> 'totalCount')::int >= 2 AS rule_changes, l ->> 'hasMore' AS more, jsonb_array_length(l -> 'entries') AS page_rows
  FROM steward.admin_log_list('{"action": "steward.set_alert_rule"}', 1, 1) l;
\set VERBOSITY default
SELECT steward.admin_log_list('{"outcome": "maybe", "who": "me"}');
\set VERBOSITY terse

-- Append-only, even for its owner: no updates, no deletions of young rows, no truncation.
UPDATE steward.admin_log SET outcome = 'ok' WHERE outcome = 'error';
DELETE FROM steward.admin_log;
TRUNCATE steward.admin_log;
SELECT count(*) > 0 AS still_there FROM steward.admin_log;
RESET client_min_messages;
