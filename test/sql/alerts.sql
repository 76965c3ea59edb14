-- Alerts and recommendations from one rule table (issue #16).
SET client_min_messages = warning;

-- The rule table: every seed alert type has a rule, every rule a metric the evaluator knows.
SELECT count(*) AS rules, count(DISTINCT metric) AS metrics FROM steward.alert_rules;
SELECT t AS seed_type, EXISTS (SELECT 1 FROM steward.alert_rules r WHERE r.alert_type = t) AS has_rule
  FROM unnest(ARRAY['slow_query', 'high_bloat', 'unused_index', 'missing_index', 'connection_pool',
                    'low_cache_hit_ratio', 'high_connection_usage', 'vacuum_overdue', 'analyze_overdue']) t;

-- Thresholds follow the settings unless a rule overrides them.
SELECT rule_id, info_at, warning_at, error_at, critical_at, resolve_after_checks
  FROM steward.effective_alert_rules WHERE rule_id IN ('high_bloat', 'slow_query') ORDER BY rule_id;
SELECT steward.set_setting('highBloatThresholdPercent', '25');
SELECT warning_at FROM steward.effective_alert_rules WHERE rule_id = 'high_bloat';
SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{"warning": 30, "critical": 60}') ->> 'warning_at' AS warning_at;
SELECT warning_at, error_at, critical_at, source FROM steward.effective_alert_rules WHERE rule_id = 'high_bloat';
SELECT steward.reset_alert_rule('high_bloat') ->> 'warning_at' AS warning_after_reset;
SELECT steward.reset_setting('highBloatThresholdPercent');

-- Bad changes: every problem listed, nothing stored.
\set VERBOSITY default
SELECT steward.set_alert_rule('no_such_rule', false);
SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{"warning": 60, "critical": 40}');
SELECT steward.set_alert_rule('low_cache_hit_ratio', p_thresholds => '{"warning": 50, "error": 70}');
SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{"severe": 1, "error": "high"}', p_resolve_after_checks => 0);
SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{"info": null, "warning": null, "error": null, "critical": null}');
SELECT steward.set_alert_rule('high_bloat', p_thresholds => '[1]');
SELECT count(*) AS overrides FROM steward.alert_rule_overrides;
\set VERBOSITY terse

-- The evaluator over a report with known findings, with the real rules: severities by tier,
-- fingerprints rule:object, messages from the templates.
SELECT f ->> 'rule_id' AS rule, f ->> 'severity' AS severity, f ->> 'fingerprint' AS fingerprint, f ->> 'message' AS message
  FROM jsonb_array_elements(steward._report_findings('{
        "database": "app",
        "overview": {"datname": "app", "cache_hit_ratio": 85.5, "blks_hit": 8550, "blks_read": 1450},
        "connectionPool": {"total": 92, "max_connections": 100, "idle_in_transaction": 12, "waiting": 1, "utilization_pct": 92},
        "slowQueries": [{"source": "query_performance_logs", "query_text": "select 1", "avg_duration_ms": 2500},
                        {"source": "pg_stat_statements", "queryid": 42, "query_text": "secret", "avg_duration_ms": 700}],
        "queryStats": {"hours": 24, "count": 10, "p95_ms": 1200},
        "bloatedTables": [{"table": "public.orders", "bloat_pct": 52.5, "bloat_bytes": 52428800, "table_size": 104857600, "confidence": "fresh"}],
        "unusedIndexes": [{"index": "public.orders_note_idx", "table": "public.orders", "days_since_last_use": 45, "index_size": 8192}],
        "missingIndexes": [{"table": "public.events", "table_size": 20971520, "seq_scan": 900, "idx_scan": 100, "seq_scan_pct": 90, "seq_tup_read": 9000000}],
        "idleInTransaction": [{"pid": 4242, "usename": "app", "xact_seconds": 700, "backend_start": "2026-12-01T00:00:00+00:00"}],
        "sequences": [{"sequence": "public.orders_id_seq", "pct_used": 91.2, "last_value": 1958000000, "effective_max": 2147483647}],
        "wraparound": {"databases": [{"datname": "app", "pct_towards_wraparound": 12, "pct_towards_mxid_wraparound": 80, "mxid_age": 1717986918}], "tables": []},
        "replication": {"slots": [{"slot_name": "old_slot", "active": false, "retained_wal_bytes": 2147483648, "wal_status": "extended"}], "senders": []},
        "capabilities": {"pg_stat_statements": true}
      }', steward._alert_rules_json()) -> 'findings') f
 ORDER BY 1, 3;

-- Recommendations from the same rules: one per rule that found something, high first; counts
-- stay exact when a list was capped (summary).
SELECT r ->> 'priority' AS priority, r ->> 'category' AS category, r ->> 'title' AS title
  FROM jsonb_array_elements(steward._report_recommendations('{
        "overview": {"cache_hit_ratio": 99.5, "blks_hit": 99500, "blks_read": 500},
        "connectionPool": {"total": 2, "max_connections": 100},
        "tablesNeedingVacuum": [{"table": "public.a", "dead_tuple_ratio": 30}],
        "summary": {"tablesNeedingVacuum": 7},
        "unusedIndexes": [{"index": "public.i", "days_since_last_use": 40}],
        "slowQueries": [{"source": "query_performance_logs", "query_text": "select 1", "avg_duration_ms": 800}],
        "capabilities": {"pg_stat_statements": false}
      }', steward._alert_rules_json())) r;
SELECT steward._report_recommendations('{"overview": {"cache_hit_ratio": 99.9, "blks_hit": 100000, "blks_read": 1}}', steward._alert_rules_json());
SELECT steward._report_findings('[1]', '[]');
SELECT steward._report_findings('{}', '[{"rule_id": "x"}]');

-- The lifecycle, from the application's query log: a slow query opens one alert, a second
-- check updates it, a slower one escalates it, and two checks without it resolve it.
DELETE FROM steward.query_performance_logs;
DELETE FROM steward.performance_alerts;
INSERT INTO steward.query_performance_logs (query_text, duration_ms)
SELECT 'SELECT * FROM orders WHERE note = $1', 1500 FROM generate_series(1, 3);
SELECT 'checked' FROM steward.check_alerts();
SELECT 'checked' FROM steward.check_alerts();
SELECT rule_id, alert_type, severity, object_kind, occurrences, current_value, replace(message, current_database(), '<db>') AS message,
       details ->> 'query' AS query, resolved_at IS NULL AS open
  FROM steward.performance_alerts WHERE rule_id IN ('slow_query', 'slow_query_p95') ORDER BY rule_id;
INSERT INTO steward.query_performance_logs (query_text, duration_ms)
SELECT 'SELECT * FROM orders WHERE note = $1', 5000 FROM generate_series(1, 3);
SELECT 'checked' FROM steward.check_alerts();
SELECT rule_id, severity, occurrences, jsonb_path_query_array(severity_history, '$[*].severity') AS history
  FROM steward.performance_alerts WHERE rule_id IN ('slow_query', 'slow_query_p95') ORDER BY rule_id;
-- Acknowledged alerts stay acknowledged while they do not escalate.
SELECT (steward.acknowledge_alert(id)).acknowledged_at IS NOT NULL AS acknowledged
  FROM steward.performance_alerts WHERE rule_id = 'slow_query';
SELECT 'checked' FROM steward.check_alerts();
SELECT acknowledged_at IS NOT NULL AS still_acknowledged FROM steward.performance_alerts WHERE rule_id = 'slow_query';
DELETE FROM steward.query_performance_logs;
SELECT 'checked' FROM steward.check_alerts();
SELECT rule_id, clear_checks, resolved_at IS NULL AS open FROM steward.performance_alerts
 WHERE rule_id IN ('slow_query', 'slow_query_p95') ORDER BY rule_id;
SELECT 'checked' FROM steward.check_alerts();
SELECT rule_id, resolved_at IS NOT NULL AS resolved, resolved_by, resolution_notes FROM steward.performance_alerts
 WHERE rule_id IN ('slow_query', 'slow_query_p95') ORDER BY rule_id;
-- The run records: one per check, with what it did.
SELECT count(*) AS checks, bool_or(opened >= 2) AS opened_both, bool_or(escalated >= 2) AS escalated_both,
       bool_or(resolved >= 2) AS resolved_both, bool_and(duration_ms >= 0) AS timed
  FROM steward.alert_checks;

-- The dashboard's list: filters and pagination; bad filters are refused.
SELECT (l ->> 'totalCount')::int AS resolved_slow, l ->> 'hasMore' AS has_more, jsonb_array_length(l -> 'alerts') AS page_rows
  FROM steward.list_alerts('{"status": "resolved", "alertType": "slow_query"}', 1, 1) l;
SELECT (steward.list_alerts('{"status": "all", "rule": "slow_query_p95"}') -> 'alerts' -> 0 ->> 'rule_id') AS rule;
\set VERBOSITY default
SELECT steward.list_alerts('{"status": "closed", "severity": "fatal", "colour": "red", "startDate": "yesterday-ish"}');
SELECT steward.list_alerts('{}', 0, 5000);
SELECT steward.list_alerts('[]');
SELECT steward.resolve_alert('00000000-0000-0000-0000-000000000000');
SELECT steward.acknowledge_alert('00000000-0000-0000-0000-000000000000');
\set VERBOSITY terse

-- A rule switched off resolves its open alerts at the next checks and raises nothing.
INSERT INTO steward.query_performance_logs (query_text, duration_ms) VALUES ('SELECT pg_sleep(3)', 3000);
SELECT 'checked' FROM steward.check_alerts();
SELECT count(*) AS open_p95 FROM steward.performance_alerts WHERE rule_id = 'slow_query_p95' AND resolved_at IS NULL;
SELECT steward.set_alert_rule('slow_query_p95', false) ->> 'enabled' AS enabled;
SELECT 'checked' FROM steward.check_alerts();
SELECT 'checked' FROM steward.check_alerts();
SELECT count(*) AS open_p95 FROM steward.performance_alerts WHERE rule_id = 'slow_query_p95' AND resolved_at IS NULL;
SELECT steward.reset_alert_rule('slow_query_p95') ->> 'enabled' AS enabled;
DELETE FROM steward.query_performance_logs;

-- check_table_bloat_alerts() keeps one open alert per table (the fingerprint check_alerts uses).
DELETE FROM steward.table_bloat_snapshots;
INSERT INTO steward.table_bloat_snapshots (schemaname, tablename, actual_size_bytes, estimated_size_bytes, bloat_bytes, bloat_ratio, dead_tuples, live_tuples, confidence)
VALUES ('public', 'bloaty', 1000000, 600000, 400000, 40, 10, 100, 'fresh');
SELECT steward.check_table_bloat_alerts() AS raised;
SELECT steward.check_table_bloat_alerts() AS raised_again;
INSERT INTO steward.table_bloat_snapshots (schemaname, tablename, actual_size_bytes, estimated_size_bytes, bloat_bytes, bloat_ratio, dead_tuples, live_tuples, confidence)
VALUES ('public', 'bloaty', 1000000, 400000, 600000, 60, 10, 100, 'fresh');
SELECT steward.check_table_bloat_alerts() AS raised_after_worsening;
SELECT fingerprint, severity, occurrences, jsonb_path_query_array(severity_history, '$[*].severity') AS history
  FROM steward.performance_alerts WHERE alert_type = 'high_bloat' AND resolved_at IS NULL;
DELETE FROM steward.table_bloat_snapshots;
DELETE FROM steward.performance_alerts;
RESET client_min_messages;
