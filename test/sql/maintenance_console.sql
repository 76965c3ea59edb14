-- The maintenance console (issue #16 item 6): filters, pages, statistics, the menu.
SET client_min_messages = warning;
SET timezone = 'UTC';
INSERT INTO steward.maintenance_operations (operation_type, table_name, status, duration_ms, created_at, initiator, refused) VALUES
    ('VACUUM',      'public.orders', 'completed', 1200, '2024-03-01 03:00+00', 'ops', false),
    ('VACUUM',      'public.users',  'completed', 800,  '2024-03-02 03:00+00', 'ops', false),
    ('ANALYZE',     'public.orders', 'completed', 40,   '2024-03-03 03:00+00', 'cron', false),
    ('REINDEX',     'public.orders', 'failed',    NULL, '2024-03-04 03:00+00', 'ops', false),
    ('VACUUM FULL', 'public.events', 'failed',    NULL, '2024-03-05 03:00+00', 'ops', true);

SELECT (h ->> 'totalCount')::int AS total, h ->> 'hasMore' AS more,
       jsonb_path_query_array(h -> 'operations', '$[*].table_name') AS tables
  FROM steward.maintenance_history_filtered('{"type": "VACUUM", "startDate": "2024-03-01", "endDate": "2024-03-31"}', 1, 1) h;
SELECT jsonb_path_query_array(steward.maintenance_history_filtered('{"type": "VACUUM", "startDate": "2024-03-01", "endDate": "2024-03-31"}', 2, 1) -> 'operations', '$[*].table_name') AS second_page;
SELECT jsonb_path_query_array(steward.maintenance_history_filtered('{"status": "failed", "table": "ORDERS", "endDate": "2024-12-31"}') -> 'operations', '$[*].operation_type') AS failed_on_orders;
SELECT (steward.maintenance_history_filtered('{"refused": true, "endDate": "2024-12-31"}') ->> 'totalCount')::int AS refused,
       (steward.maintenance_history_filtered('{"initiator": "cron", "endDate": "2024-12-31"}') ->> 'totalCount')::int AS by_cron;

SELECT s - 'byType' AS totals, jsonb_pretty(s -> 'byType') AS by_type
  FROM steward.maintenance_statistics('2024-03-01', '2024-03-31') s;

SELECT operation, risk, lock_mode FROM steward.maintenance_operations_available();

\set VERBOSITY default
SELECT steward.maintenance_history_filtered('{"type": "TRUNCATE", "status": "done", "colour": 1, "refused": "yes", "startDate": "soon"}');
SELECT steward.maintenance_history_filtered('{}', 1, 0);
SELECT steward.maintenance_history_filtered('"x"');
\set VERBOSITY terse
DELETE FROM steward.maintenance_operations WHERE created_at < '2025-01-01';
RESET client_min_messages;
RESET timezone;
