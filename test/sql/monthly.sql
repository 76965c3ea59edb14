-- The monthly report with history (issue #16 item 5): two months of known activity, the
-- second compared with the first.
SET client_min_messages = warning;
-- Months are the session's time zone's (a cron job runs in the server's).
SET timezone = 'UTC';
DELETE FROM steward.health_reports;
DELETE FROM steward.performance_alerts;
DELETE FROM steward.query_performance_logs;
DELETE FROM steward.table_bloat_snapshots;

-- October 2024: 2 alerts (one resolved in November), 3 maintenance runs (1 failed), 4 logged
-- queries (1 slow), one table growing from 1 MB to 3 MB.
INSERT INTO steward.performance_alerts (alert_type, severity, message, rule_id, created_at, resolved_at) VALUES
    ('slow_query', 'warning', 'slow', 'slow_query', '2024-10-03 10:00+00', '2024-11-02 10:00+00'),
    ('high_bloat', 'error',   'bloat', 'high_bloat', '2024-10-20 10:00+00', NULL);
INSERT INTO steward.maintenance_operations (operation_type, table_name, status, duration_ms, created_at) VALUES
    ('VACUUM', 'public.t', 'completed', 1200, '2024-10-05 03:30+00'),
    ('VACUUM', 'public.t', 'completed', 800,  '2024-10-12 03:30+00'),
    ('REINDEX', 'public.t', 'failed',   50,   '2024-10-19 03:30+00');
INSERT INTO steward.query_performance_logs (query_text, duration_ms, execution_timestamp) VALUES
    ('q1', 100, '2024-10-01 12:00+00'), ('q2', 200, '2024-10-08 12:00+00'),
    ('q3', 300, '2024-10-15 12:00+00'), ('q4', 900, '2024-10-22 12:00+00');
INSERT INTO steward.table_bloat_snapshots (snapshot_timestamp, schemaname, tablename, actual_size_bytes, confidence) VALUES
    ('2024-10-01 00:00+00', 'public', 't', 1048576, 'fresh'),
    ('2024-10-31 00:00+00', 'public', 't', 3145728, 'fresh');
-- November 2024: 3 alerts, 1 maintenance run (completed), 2 slow queries, growth 3 MB -> 4 MB.
INSERT INTO steward.performance_alerts (alert_type, severity, message, rule_id, created_at) VALUES
    ('slow_query', 'error',    'slow', 'slow_query', '2024-11-03 10:00+00'),
    ('slow_query', 'warning',  'slow', 'slow_query', '2024-11-04 10:00+00'),
    ('unused_index', 'warning', 'unused', 'unused_index', '2024-11-05 10:00+00');
INSERT INTO steward.maintenance_operations (operation_type, table_name, status, duration_ms, created_at) VALUES
    ('ANALYZE', 'public.t', 'completed', 30, '2024-11-05 03:30+00');
INSERT INTO steward.query_performance_logs (query_text, duration_ms, execution_timestamp) VALUES
    ('q5', 1500, '2024-11-01 12:00+00'), ('q6', 2500, '2024-11-20 12:00+00');
INSERT INTO steward.table_bloat_snapshots (snapshot_timestamp, schemaname, tablename, actual_size_bytes, confidence) VALUES
    ('2024-11-01 00:00+00', 'public', 't', 3145728, 'fresh'),
    ('2024-11-30 00:00+00', 'public', 't', 4194304, 'fresh');

SELECT r -> 'month' AS month, r -> 'size' -> 'growthBytes' AS growth, (r -> 'alerts') - 'byRule' AS alerts,
       (r -> 'maintenance') - 'byType' AS maintenance, (r -> 'queries') - 'byWeek' AS queries,
       r -> 'comparison' AS comparison
  FROM steward.generate_monthly_report('2024-10-15') r;
SELECT jsonb_pretty(steward.monthly_report('2024-10-01') -> 'alerts' -> 'byRule') AS october_by_rule;
-- A finding the October report had and November does not is "gone".
UPDATE steward.health_reports
   SET report = jsonb_set(report, '{findings}', report -> 'findings' || '[{"rule": "high_bloat", "severity": "error", "object": "public.gone_table"}]')
 WHERE month = '2024-10-01';

SELECT (r -> 'alerts') - 'byRule' AS alerts, (r -> 'queries') - 'byWeek' AS queries,
       (r -> 'comparison') - '{newFindings,goneFindings,alertsByRule}'::text[] AS comparison,
       r -> 'comparison' -> 'goneFindings' AS gone,
       jsonb_array_length(r -> 'comparison' -> 'newFindings') AS new_findings
  FROM steward.generate_monthly_report('2024-11-01') r;
SELECT jsonb_pretty(steward.monthly_report('2024-11-30') -> 'comparison' -> 'alertsByRule') AS alerts_by_rule;
SELECT jsonb_pretty(steward.monthly_report('2024-11-30') -> 'queries' -> 'byWeek') AS november_weeks;

-- A month without any activity still has its report (the monthly job runs on every database).
SELECT (r -> 'queries') AS queries, (r -> 'alerts') - 'byRule' AS alerts, r -> 'size' ->> 'trackedTables' AS tables
  FROM steward.generate_monthly_report('2023-06-10') r;
SELECT length(steward.monthly_report_text('2023-06-01')) > 0 AS has_text;
DELETE FROM steward.health_reports WHERE month = '2023-06-01';
-- Regenerating a month replaces its row; both months are listed, newest first.
SELECT (steward.generate_monthly_report('2024-11-01') -> 'month') AS regenerated;
SELECT count(*) AS stored FROM steward.health_reports;
SELECT jsonb_path_query_array(l -> 'reports', '$[*].month') AS months, l -> 'totalCount' AS total, l -> 'hasMore' AS has_more
  FROM steward.list_monthly_reports(1, 1) l;
SELECT jsonb_path_query_array(steward.list_monthly_reports(2, 1) -> 'reports', '$[*].month') AS second_page;

-- The text: month-over-month lines.
SELECT replace(line, current_database(), '<db>') AS line FROM regexp_split_to_table(steward.monthly_report_text('2024-11-01'), E'\n') line
 WHERE line ~ '^(pg_steward monthly|Month over month|  Alerts raised|  Maintenance|  Slow queries|  Query time|Alerts:|Logged queries)';

-- Bad input: a month that has not begun, a month without a report, paging.
\set VERBOSITY terse
SELECT steward.generate_monthly_report('2999-01-01');
\set VERBOSITY default
SELECT steward.monthly_report('2023-01-01');
SELECT steward.monthly_report_text('1999-12-01');
SELECT steward.list_monthly_reports(0, 12);
SELECT steward._render_monthly_report('{"no": "month"}');
\set VERBOSITY terse

DELETE FROM steward.health_reports;
DELETE FROM steward.performance_alerts;
DELETE FROM steward.query_performance_logs;
DELETE FROM steward.table_bloat_snapshots;
DELETE FROM steward.maintenance_operations WHERE created_at < '2025-01-01';
RESET client_min_messages;
RESET timezone;
