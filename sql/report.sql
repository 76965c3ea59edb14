-- The full health report (CONTRACT §1): one JSON document, and the same as aligned text.

CREATE FUNCTION steward.capabilities() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT jsonb_build_object(
        'pg_stat_statements',
            steward.pg_stat_statements_schema() IS NOT NULL
            AND current_setting('shared_preload_libraries') ~ '(^|[\s,])"?pg_stat_statements"?([\s,]|$)',
        'pgstattuple', EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple'),
        'pg_cron', EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'),
        'server_version_num', current_setting('server_version_num')::int)
$$;

-- The report reads as the extension owner; statement texts in it follow the caller's rights
-- (see steward._sees_statements_of), so the body takes the caller from the public entry point.
-- list_limit caps each list of findings (default: the reportListLimit setting; check_alerts()
-- passes alertObjectLimit); counts in "summary" are always exact.
CREATE FUNCTION steward._health_report_for(caller oid, list_limit integer DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
DECLARE
    v_list  integer := coalesce(list_limit, steward.setting_number('reportListLimit')::integer);
    v_slow  numeric := steward.setting_number('slowQueryThresholdMs');
    v_mi    numeric := steward.setting_number('missingIndexMinimumBytes');
    v_rules jsonb   := steward._alert_rules_json();
    v_top   integer := steward.setting_number('reportTableLimit')::integer;
    v_bloat numeric := steward.setting_number('highBloatThresholdPercent');
    v_min   numeric := steward.setting_number('bloatMinimumBytes');
    v_seq   numeric := steward.setting_number('sequenceUsageThresholdPercent');
    v_caps  jsonb   := steward.capabilities();
    r jsonb;
BEGIN
    -- One scan of the database's files serves every part of the report (overview included);
    -- it runs on a helper thread while the catalogs and statistics are read.
    PERFORM steward._storage_prefetch();
    WITH th AS MATERIALIZED (SELECT * FROM steward.table_health()),
         ih AS MATERIALIZED (SELECT * FROM steward.index_health()),
         dup AS MATERIALIZED (SELECT * FROM steward.duplicate_indexes()),
         inv AS MATERIALIZED (SELECT * FROM steward.invalid_indexes()),
         sq AS MATERIALIZED (SELECT * FROM steward._slow_queries_for(caller, 24, v_slow::integer)),
         lr AS MATERIALIZED (SELECT l.*, a.backend_start
                               FROM steward._long_running_sessions_for(caller) l
                               LEFT JOIN pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid),
         -- Large tables read mostly by sequential scans (counters as pg_stat_user_tables sums them).
         mi AS MATERIALIZED (
             SELECT t.schemaname, t.relname, t.table_size, s.seq_scan, s.seq_tup_read, s.idx_scan,
                    round(s.seq_scan * 100.0 / (s.seq_scan + s.idx_scan), 1) AS seq_scan_pct
               FROM th t
              CROSS JOIN LATERAL (
                    SELECT pg_stat_get_numscans(t.relid) AS seq_scan,
                           pg_stat_get_tuples_returned(t.relid) AS seq_tup_read,
                           (SELECT coalesce(sum(pg_stat_get_numscans(i.indexrelid)), 0)::bigint
                              FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) t.relid) AS idx_scan) s
              WHERE t.table_size >= v_mi AND s.seq_scan >= 50),
         seqs AS MATERIALIZED (SELECT * FROM steward.sequence_usage() s WHERE s.pct_used > v_seq AND NOT s.cycles),
         twrap AS MATERIALIZED (SELECT * FROM steward.table_wraparound(v_list) w WHERE w.past_freeze_max_age)
    SELECT jsonb_build_object(
        'timestamp', now(),
        'database', current_database(),
        'thresholds', (SELECT jsonb_object_agg(key, value) FROM steward.effective_settings),
        'capabilities', v_caps,
        'overview', (SELECT to_jsonb(o) FROM steward.database_overview() o),
        'summary', jsonb_build_object(
            'tableCount', (SELECT count(*) FROM th),
            'indexCount', (SELECT count(*) FROM ih),
            'tablesNeedingVacuum', (SELECT count(*) FROM th WHERE needs_vacuum),
            'tablesNeedingAnalyze', (SELECT count(*) FROM th WHERE needs_analyze),
            'bloatedTables', (SELECT count(*) FROM th WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'),
            'bloatUnknownTables', (SELECT count(*) FROM th WHERE bloat_confidence = 'unknown'),
            'unusedIndexes', (SELECT count(*) FROM ih WHERE is_unused),
            'bloatedIndexes', (SELECT count(*) FROM ih WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'),
            'duplicateIndexes', (SELECT count(*) FROM dup),
            'invalidIndexes', (SELECT count(*) FROM inv),
            'slowQueries', (SELECT count(*) FROM sq),
            'tablesVacuumOverdue', (SELECT count(*) FROM th WHERE vacuum_overdue),
            'missingIndexes', (SELECT count(*) FROM mi),
            'totalSize', (SELECT coalesce(sum(table_size), 0) FROM th)),
        'tables', (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.table_size DESC), '[]')
                     FROM (SELECT * FROM th ORDER BY table_size DESC LIMIT v_top) t),
        'tablesNeedingVacuum', (SELECT coalesce(jsonb_agg(x ORDER BY (x ->> 'n_dead_tup')::bigint DESC), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'n_dead_tup', n_dead_tup,
                                       'n_live_tup', n_live_tup, 'dead_tuple_ratio', dead_tuple_ratio,
                                       'last_vacuum_any', last_vacuum_any) AS x
               FROM th WHERE needs_vacuum ORDER BY n_dead_tup DESC LIMIT v_list) v),
        'tablesNeedingAnalyze', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname),
                                       'last_analyze_any', last_analyze_any, 'n_mod_since_analyze', n_mod_since_analyze) AS x
               FROM th WHERE needs_analyze ORDER BY n_mod_since_analyze DESC NULLS LAST, table_size DESC LIMIT v_list) v),
        'tablesVacuumOverdue', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'n_dead_tup', n_dead_tup,
                                       'n_live_tup', n_live_tup, 'last_vacuum_any', last_vacuum_any,
                                       'days_since_vacuum', round((extract(epoch FROM now() - last_vacuum_any) / 86400)::numeric, 1)) AS x
               FROM th WHERE vacuum_overdue ORDER BY n_dead_tup DESC LIMIT v_list) v),
        'missingIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'table_size', table_size,
                                       'seq_scan', seq_scan, 'seq_tup_read', seq_tup_read, 'idx_scan', idx_scan,
                                       'seq_scan_pct', seq_scan_pct) AS x
               FROM mi ORDER BY seq_tup_read DESC LIMIT v_list) v),
        'queryStats', (SELECT jsonb_build_object('hours', 24, 'count', count(*),
                                                 'slow_count', count(*) FILTER (WHERE l.duration_ms > v_slow),
                                                 'avg_ms', round(avg(l.duration_ms), 1),
                                                 'p95_ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms))::numeric, 1))
                         FROM steward.query_performance_logs l
                        WHERE l.execution_timestamp > now() - interval '24 hours'),
        'bloatedTables', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'bloat_pct', bloat_pct,
                                       'bloat_bytes', bloat_bytes, 'table_size', table_size, 'confidence', bloat_confidence) AS x
               FROM th WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'
              ORDER BY bloat_bytes DESC LIMIT v_list) v),
        'indexes', (SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.index_size DESC), '[]')
                      FROM (SELECT * FROM ih ORDER BY index_size DESC LIMIT v_top) i),
        'unusedIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexrelname), 'table', format('%I.%I', schemaname, relname),
                                       'index_size', index_size, 'days_since_last_use', days_since_last_use) AS x
               FROM ih WHERE is_unused ORDER BY index_size DESC LIMIT v_list) v),
        'bloatedIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexrelname), 'table', format('%I.%I', schemaname, relname),
                                       'index_size', index_size, 'bloat_pct', bloat_pct, 'bloat_bytes', bloat_bytes,
                                       'confidence', bloat_confidence) AS x
               FROM ih WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'
              ORDER BY bloat_bytes DESC LIMIT v_list) v),
        'duplicateIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexname), 'table', format('%I.%I', schemaname, tablename),
                                       'kind', kind, 'covered_by', format('%I.%I', schemaname, covered_by),
                                       'index_size', index_size, 'definition', index_definition,
                                       'covered_by_definition', covered_by_definition) AS x
               FROM dup ORDER BY index_size DESC LIMIT v_list) v),
        'invalidIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexname), 'table', format('%I.%I', schemaname, tablename),
                                       'index_size', index_size, 'likely_cause', likely_cause, 'definition', index_definition) AS x
               FROM inv LIMIT v_list) v),
        'slowQueries', (SELECT coalesce(jsonb_agg(to_jsonb(q) ORDER BY q.avg_duration_ms DESC), '[]') FROM (SELECT * FROM sq LIMIT v_list) q),
        'connectionPool', (SELECT to_jsonb(c) FROM steward.connection_pool_metrics() c),
        'longRunning', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]') FROM (SELECT * FROM lr WHERE kind = 'long_running' LIMIT v_list) l),
        'idleInTransaction', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]') FROM (SELECT * FROM lr WHERE kind = 'idle_in_transaction' LIMIT v_list) l),
        'blocking', (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM (SELECT * FROM steward._blocking_chains_for(caller) LIMIT v_list) b),
        'replication', steward.replication_health(),
        'wraparound', jsonb_build_object(
            'databases', (SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') FROM steward.database_wraparound() d),
            'tables', (SELECT coalesce(jsonb_agg(jsonb_build_object('table', format('%I.%I', schemaname, tablename),
                                                                    'xid_age', xid_age, 'pct_of_freeze_max_age', pct_of_freeze_max_age)), '[]')
                         FROM twrap)),
        'sequences', (SELECT coalesce(jsonb_agg(jsonb_build_object('sequence', format('%I.%I', schemaname, sequencename),
                                                                   'owned_by', owned_by, 'pct_used', pct_used,
                                                                   'last_value', last_value, 'effective_max', effective_max)), '[]')
                        FROM (SELECT * FROM seqs LIMIT v_list) s),
        'alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.created_at DESC), '[]') FROM (
             SELECT id, alert_type, severity, message, details, created_at, acknowledged_at
               FROM steward.performance_alerts WHERE resolved_at IS NULL
              ORDER BY created_at DESC LIMIT v_list) a)
    ) INTO r;
    RETURN r || jsonb_build_object('recommendations', steward._report_recommendations(r, v_rules));
END
$$;

CREATE FUNCTION steward._health_report(tok bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._health_report_for(steward._caller(tok, 'steward.health_report')) $$;

CREATE FUNCTION steward.health_report() RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._health_report(steward._enter()) $$;

CREATE FUNCTION steward._health_report_text(tok bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$ SELECT steward._render_report_text(steward._health_report_for(steward._caller(tok, 'steward.health_report_text'))) $$;

CREATE FUNCTION steward.health_report_text() RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._health_report_text(steward._enter()) $$;
