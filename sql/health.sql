-- Health metrics (CONTRACT §1).  Every function here:
--   * is SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp (so it can read
--     statistics of every role's tables) and executable only by the roles granted in
--     finalize.sql (steward_admin, pg_monitor, service_role);
--   * runs with work_mem = 64MB where it sorts or materialises one row per relation (20 000
--     rows of index health are ~7 MB: with the default 4MB both the function scan's
--     tuplestore and the sort spilled to disk);
--   * reads catalogs without opening relations: sizes come from steward._relation_storage(),
--     which scans the data directory once per statement, so nothing waits behind DDL and the
--     lock table is not filled on databases with tens of thousands of relations.

-- ---------------------------------------------------------------------------------------
-- Database overview
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.database_overview()
RETURNS TABLE (
    datname name, database_size bigint, numbackends integer, xact_commit bigint,
    xact_rollback bigint, blks_read bigint, blks_hit bigint, tup_returned bigint,
    tup_fetched bigint, tup_inserted bigint, tup_updated bigint, tup_deleted bigint,
    conflicts bigint, temp_files bigint, temp_bytes bigint, deadlocks bigint,
    checksum_failures bigint, stats_reset timestamptz,
    cache_hit_ratio numeric, database_size_pretty text, max_connections integer
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT d.datname, sz.bytes, d.numbackends, d.xact_commit, d.xact_rollback, d.blks_read,
           d.blks_hit, d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated,
           d.tup_deleted, d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks,
           coalesce(d.checksum_failures, 0), d.stats_reset,
           CASE WHEN d.blks_hit + d.blks_read = 0 THEN 100::numeric
                ELSE round(d.blks_hit * 100.0 / (d.blks_hit + d.blks_read), 2) END,
           pg_size_pretty(sz.bytes),
           current_setting('max_connections')::integer
      FROM pg_stat_database d
     CROSS JOIN (SELECT steward._database_bytes() AS bytes) sz
     WHERE d.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;

-- ---------------------------------------------------------------------------------------
-- Table health: seed columns first, then what the clients compute today and more.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.table_health()
RETURNS TABLE (
    schemaname name, relname name, n_live_tup bigint, n_dead_tup bigint, table_size bigint,
    last_vacuum timestamptz, last_autovacuum timestamptz, last_analyze timestamptz,
    last_autoanalyze timestamptz, vacuum_count bigint, autovacuum_count bigint,
    analyze_count bigint, autoanalyze_count bigint, bloat_pct numeric,
    relid oid, heap_size bigint, toast_size bigint, indexes_size bigint,
    dead_tuple_ratio numeric, needs_vacuum boolean, needs_analyze boolean,
    vacuum_overdue boolean, bloat_confidence text, bloat_bytes bigint,
    n_mod_since_analyze bigint, last_vacuum_any timestamptz, last_analyze_any timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
    -- Rows built in one pass in Rust (src/health/rows.rs): statistics fetched once per table,
    -- sizes from the per-statement directory scan, bloat from the per-statement estimates.
    WITH cfg AS MATERIALIZED (
        SELECT steward.setting_number('deadTupleRatioThreshold')::float8 AS dead_ratio,
               now() - make_interval(days => steward.setting_number('analyzeOverdueDays')::int) AS analyze_cutoff,
               now() - make_interval(days => steward.setting_number('vacuumOverdueDays')::int) AS vacuum_cutoff,
               steward.setting_number('analyzeOverdueDays')::float8 AS analyze_days
    )
    SELECT r.schemaname::name, r.relname::name, r.n_live_tup, r.n_dead_tup, r.table_size,
           r.last_vacuum, r.last_autovacuum, r.last_analyze, r.last_autoanalyze,
           r.vacuum_count, r.autovacuum_count, r.analyze_count, r.autoanalyze_count,
           r.bloat_pct::numeric,
           r.relid, r.heap_size, r.toast_size, r.indexes_size,
           CASE WHEN r.n_live_tup > 0 THEN round(r.dead_tuple_ratio::numeric, 2) ELSE 0 END,
           r.needs_vacuum, r.needs_analyze, r.vacuum_overdue,
           r.bloat_confidence, r.bloat_bytes,
           r.n_mod_since_analyze, r.last_vacuum_any, r.last_analyze_any
      FROM cfg, steward._table_rows(cfg.dead_ratio, cfg.analyze_cutoff, cfg.vacuum_cutoff, cfg.analyze_days) r
     ORDER BY r.table_size DESC, r.schemaname, r.relname
$$;

-- ---------------------------------------------------------------------------------------
-- Index health.  "Days since last use": for an index never scanned, the time since the
-- statistics window began (stats reset, else server start) or since the index file was
-- created, whichever is later — a lower bound, so nothing is called unused too early.  For a
-- scanned index, the time since capture_index_usage_snapshot() last saw its count move.
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION steward.index_health()
RETURNS TABLE (
    schemaname name, relname name, indexrelname name, index_size bigint, idx_scan bigint,
    idx_tup_read bigint, idx_tup_fetch bigint, days_since_last_use numeric, bloat_pct numeric,
    indexrelid oid, relid oid, index_type name, is_unique boolean, is_primary boolean,
    enforces_constraint boolean, is_valid boolean, is_unused boolean,
    bloat_confidence text, bloat_bytes bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
    SELECT r.schemaname::name, r.relname::name, r.indexrelname::name, r.index_size, r.idx_scan,
           r.idx_tup_read, r.idx_tup_fetch, round(r.days_since_last_use::numeric, 4), r.bloat_pct::numeric,
           r.indexrelid, r.relid, r.index_type::name, r.is_unique, r.is_primary, r.enforces_constraint,
           r.is_valid, r.is_unused, r.bloat_confidence, r.bloat_bytes
      FROM steward._index_rows(true, steward.setting_number('unusedIndexDays')::float8,
                               steward.setting_number('analyzeOverdueDays')::float8) r
     ORDER BY r.index_size DESC, r.schemaname, r.relname, r.indexrelname
$$;

-- Unused indexes (seed shape): never scanned for more than age_days, never an index that
-- enforces a primary key, uniqueness, exclusion or a constraint, never an invalid one.
CREATE FUNCTION steward.unused_indexes(age_days integer DEFAULT 30)
RETURNS TABLE (
    schemaname name, tablename name, indexname name, index_size text, idx_scan bigint,
    days_since_last_scan numeric, index_size_bytes bigint, indexrelid oid
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
BEGIN
    IF age_days IS NULL OR age_days < 0 THEN
        RAISE EXCEPTION 'age_days must be a non-negative number of days'
            USING ERRCODE = '22023', DETAIL = format('got %s', coalesce(age_days::text, 'NULL'));
    END IF;
    RETURN QUERY
    SELECT h.schemaname::name, h.relname::name, h.indexrelname::name, pg_size_pretty(h.index_size), h.idx_scan,
           round(h.days_since_last_use::numeric, 4), h.index_size, h.indexrelid
      FROM steward._index_rows(false, steward.setting_number('unusedIndexDays')::float8, 0) h
     WHERE h.idx_scan = 0 AND NOT h.enforces_constraint AND h.is_valid
       AND h.days_since_last_use > age_days
     ORDER BY h.index_size DESC, h.schemaname, h.indexrelname;
END
$$;

-- Duplicate and redundant (prefix-covered) indexes, with the index that covers each.
CREATE FUNCTION steward.duplicate_indexes()
RETURNS TABLE (
    schemaname name, tablename name, indexname name, kind text, covered_by name,
    index_size bigint, index_definition text, covered_by_definition text,
    indexrelid oid, covered_by_indexrelid oid
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
    WITH sz AS (SELECT * FROM steward._relation_storage(heap => false, toast => false, index => true))
    SELECT n.nspname, tc.relname, ic.relname, r.kind, kc.relname,
           coalesce(z.main_bytes, 0), pg_get_indexdef(r.indexrelid), pg_get_indexdef(r.covered_by),
           r.indexrelid, r.covered_by
      FROM steward._index_redundancy() r
      JOIN pg_class ic ON ic.oid = r.indexrelid
      JOIN pg_class kc ON kc.oid = r.covered_by
      JOIN pg_index i ON i.indexrelid = r.indexrelid
      JOIN pg_class tc ON tc.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = tc.relnamespace
      LEFT JOIN sz z ON z.relid = r.indexrelid
     ORDER BY 6 DESC, 1, 3
$$;

-- Invalid indexes: a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY leaves one
-- (REINDEX's are named *_ccnew / *_ccold).  They cost writes and serve no reads.
CREATE FUNCTION steward.invalid_indexes()
RETURNS TABLE (
    schemaname name, tablename name, indexname name, index_size bigint,
    index_definition text, likely_cause text, indexrelid oid
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH sz AS (SELECT * FROM steward._relation_storage(heap => false, toast => false, index => true))
    SELECT n.nspname, tc.relname, ic.relname, coalesce(z.main_bytes, 0), pg_get_indexdef(i.indexrelid),
           CASE WHEN ic.relname ~ '_ccnew[0-9]*$' THEN 'failed REINDEX CONCURRENTLY (new copy)'
                WHEN ic.relname ~ '_ccold[0-9]*$' THEN 'interrupted REINDEX CONCURRENTLY (old copy)'
                WHEN NOT i.indisready THEN 'CREATE INDEX CONCURRENTLY still running or failed before build'
                ELSE 'failed CREATE INDEX CONCURRENTLY or constraint validation' END,
           i.indexrelid
      FROM pg_index i
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_class tc ON tc.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = tc.relnamespace
      LEFT JOIN sz z ON z.relid = i.indexrelid
     WHERE NOT i.indisvalid
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
     ORDER BY 1, 3
$$;

-- ---------------------------------------------------------------------------------------
-- Bloat
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.table_bloat()
RETURNS TABLE (
    schemaname name, tablename name, actual_size_bytes bigint, estimated_size_bytes bigint,
    bloat_bytes bigint, bloat_pct numeric, confidence text, live_tuples bigint,
    dead_tuples bigint, tuple_width numeric, relid oid
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
    SELECT b.schemaname::name, b.tablename::name, b.actual_size_bytes, b.estimated_size_bytes, b.bloat_bytes,
           b.bloat_pct::numeric, b.confidence, b.live_tuples, b.dead_tuples, round(b.tuple_width::numeric, 1), b.relid
      FROM steward._table_bloat_rows(steward.setting_number('analyzeOverdueDays')::float8) b
     ORDER BY b.bloat_bytes DESC NULLS LAST, 1, 2
$$;

CREATE FUNCTION steward.index_bloat()
RETURNS TABLE (
    schemaname name, tablename name, indexname name, actual_size_bytes bigint,
    estimated_size_bytes bigint, bloat_bytes bigint, bloat_pct numeric, confidence text,
    indexrelid oid
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
    SELECT b.schemaname::name, b.tablename::name, b.indexname::name, b.actual_size_bytes,
           b.estimated_size_bytes, b.bloat_bytes, b.bloat_pct::numeric, b.confidence, b.indexrelid
      FROM steward._index_bloat_rows(steward.setting_number('analyzeOverdueDays')::float8) b
     ORDER BY b.bloat_bytes DESC NULLS LAST, 1, 3
$$;

-- Exact heap bloat of one table through pgstattuple (reads the whole table).  Without
-- pgstattuple the estimate is returned with method 'estimate' and a NOTICE says how to enable it.
-- The caller must be able to read the table (src/common/privilege.rs).
CREATE FUNCTION steward._table_bloat_exact(tok bigint, tbl regclass)
RETURNS TABLE (
    method text, table_len bigint, tuple_count bigint, tuple_len bigint, dead_tuple_count bigint,
    dead_tuple_len bigint, free_space bigint, expected_bytes bigint, bloat_bytes bigint,
    bloat_pct numeric
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET lock_timeout = '2s'
AS $$
DECLARE
    v_schema name;
    v_kind "char";
    v_ff integer;
    s record;
    e record;
BEGIN
    SELECT c.relkind,
           coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'fillfactor'), 100)
      INTO v_kind, v_ff
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF v_kind IS NULL THEN
        RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = '42P01';
    END IF;
    PERFORM steward._check_privileges(steward._caller(tok, 'steward.table_bloat_exact'), tbl, '{select}', 'an exact bloat measurement');
    IF v_kind NOT IN ('r', 'm') THEN
        RAISE EXCEPTION '"%" is not a table', tbl
            USING ERRCODE = '42809', HINT = 'Exact bloat is measured on tables and materialized views.';
    END IF;
    SELECT n.nspname INTO v_schema
      FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
     WHERE x.extname = 'pgstattuple';
    IF v_schema IS NULL THEN
        RAISE NOTICE 'pgstattuple is not installed in this database; returning the statistics-based estimate'
            USING HINT = 'CREATE EXTENSION pgstattuple; (it ships with PostgreSQL) for an exact measurement.';
        RETURN QUERY
        SELECT 'estimate'::text, b.actual_size_bytes, b.live_tuples, NULL::bigint, b.dead_tuples,
               NULL::bigint, NULL::bigint, b.estimated_size_bytes, b.bloat_bytes, b.bloat_pct
          FROM steward.table_bloat() b WHERE b.relid = tbl;
        RETURN;
    END IF;
    EXECUTE format('SELECT * FROM %I.pgstattuple($1)', v_schema) INTO s USING tbl;
    SELECT * INTO e FROM steward._heap_bloat_from_tuples(s.table_len, s.tuple_count, s.tuple_len, v_ff);
    RETURN QUERY SELECT 'pgstattuple'::text, s.table_len, s.tuple_count, s.tuple_len, s.dead_tuple_count,
                        s.dead_tuple_len, s.free_space, e.expected_bytes, e.bloat_bytes, e.bloat_pct::numeric;
END
$$;

CREATE FUNCTION steward.table_bloat_exact(tbl regclass)
RETURNS TABLE (
    method text, table_len bigint, tuple_count bigint, tuple_len bigint, dead_tuple_count bigint,
    dead_tuple_len bigint, free_space bigint, expected_bytes bigint, bloat_bytes bigint,
    bloat_pct numeric
)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._table_bloat_exact(steward._enter(), tbl) $$;

-- ---------------------------------------------------------------------------------------
-- Replication: on a primary its WAL senders (lag in bytes and time) and replication slots
-- (active, WAL retained, wal_status, safe_wal_size); on a standby its receive and replay
-- positions and the replay delay.  Read-only, so it answers on a standby too.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.replication_health() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH cfg AS (
        SELECT steward.setting_number('replicationSlotRetainedBytes') AS slot_bytes,
               steward.setting_number('replicationLagBytes') AS lag_bytes,
               steward.setting_number('replicationLagSeconds') AS lag_seconds
    ), here AS (
        SELECT pg_is_in_recovery() AS standby,
               CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS lsn
    )
    SELECT jsonb_build_object(
        'role', CASE WHEN h.standby THEN 'standby' ELSE 'primary' END,
        'senders', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'application_name', r.application_name, 'client_addr', r.client_addr, 'state', r.state,
                        'sync_state', r.sync_state,
                        'write_lag_bytes', pg_wal_lsn_diff(h.lsn, r.write_lsn)::bigint,
                        'flush_lag_bytes', pg_wal_lsn_diff(h.lsn, r.flush_lsn)::bigint,
                        'replay_lag_bytes', pg_wal_lsn_diff(h.lsn, r.replay_lsn)::bigint,
                        'write_lag_seconds', round(extract(epoch FROM r.write_lag)::numeric, 3),
                        'flush_lag_seconds', round(extract(epoch FROM r.flush_lag)::numeric, 3),
                        'replay_lag_seconds', round(extract(epoch FROM r.replay_lag)::numeric, 3),
                        'lagging', coalesce(pg_wal_lsn_diff(h.lsn, r.replay_lsn) > c.lag_bytes, false)
                                   OR coalesce(extract(epoch FROM r.replay_lag) > c.lag_seconds, false))
                        ORDER BY r.application_name), '[]')
                      FROM pg_stat_replication r WHERE NOT h.standby),
        'slots', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'slot_name', s.slot_name, 'slot_type', s.slot_type, 'database', s.database, 'active', s.active,
                      'retained_wal_bytes', CASE WHEN h.standby OR s.restart_lsn IS NULL THEN NULL
                                                 ELSE pg_wal_lsn_diff(h.lsn, s.restart_lsn)::bigint END,
                      'wal_status', s.wal_status, 'safe_wal_size', s.safe_wal_size,
                      'retains_too_much', NOT h.standby AND s.restart_lsn IS NOT NULL
                                          AND pg_wal_lsn_diff(h.lsn, s.restart_lsn) > c.slot_bytes)
                      ORDER BY s.slot_name), '[]')
                    FROM pg_replication_slots s),
        'standby', CASE WHEN h.standby THEN jsonb_build_object(
                      'receive_lsn', pg_last_wal_receive_lsn(), 'replay_lsn', pg_last_wal_replay_lsn(),
                      'replay_lag_bytes', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint,
                      'last_replayed_transaction_at', pg_last_xact_replay_timestamp(),
                      'replay_delay_seconds', round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 3),
                      'lagging', coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > c.lag_bytes, false))
                   END)
      FROM here h, cfg c
$$;

-- ---------------------------------------------------------------------------------------
-- Slow queries: pg_stat_statements (when loaded and installed) merged with the application's
-- query_performance_logs.  Every row carries both generations' fields.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.pg_stat_statements_schema() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
     WHERE x.extname = 'pg_stat_statements'
$$;

-- Statement text is shown only to a caller who may see it (pg_stat_statements' and
-- pg_stat_activity's own rule: pg_read_all_stats, or the statement's own role); others get
-- '<insufficient privilege>'.  The bodies read as the extension owner and take the caller from
-- the SECURITY INVOKER entry point (steward._enter(), src/common/privilege.rs).
CREATE FUNCTION steward._sees_statements_of(caller oid, userid oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_has_role(caller, 'pg_read_all_stats', 'USAGE')
        OR pg_catalog.pg_has_role(caller, userid, 'USAGE')
$$;

CREATE FUNCTION steward._slow_queries_for(caller oid, hours_back integer, min_duration_ms integer)
RETURNS TABLE (
    queryid bigint, query text, calls bigint, total_exec_time double precision,
    mean_exec_time double precision, min_exec_time double precision,
    max_exec_time double precision, stddev_exec_time double precision, rows bigint,
    shared_blks_hit bigint, shared_blks_read bigint,
    query_text text, avg_duration_ms double precision, max_duration_ms double precision,
    execution_count bigint, last_execution timestamptz,
    source text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_schema name := steward.pg_stat_statements_schema();
BEGIN
    IF hours_back IS NULL OR hours_back <= 0 THEN
        RAISE EXCEPTION 'hours_back must be a positive number of hours'
            USING ERRCODE = '22023', DETAIL = format('got %s', coalesce(hours_back::text, 'NULL'));
    END IF;
    IF min_duration_ms IS NULL OR min_duration_ms < 0 THEN
        RAISE EXCEPTION 'min_duration_ms must not be negative'
            USING ERRCODE = '22023', DETAIL = format('got %s', coalesce(min_duration_ms::text, 'NULL'));
    END IF;

    IF v_schema IS NULL THEN
        RAISE NOTICE 'pg_stat_statements is not installed in this database; slow queries come from query_performance_logs only'
            USING HINT = 'Add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements;';
    ELSE
        BEGIN
            RETURN QUERY EXECUTE format(
                $q$SELECT s.queryid, v.query, s.calls, s.total_exec_time, s.mean_exec_time,
                          s.min_exec_time, s.max_exec_time, s.stddev_exec_time, s.rows,
                          s.shared_blks_hit, s.shared_blks_read,
                          v.query, s.mean_exec_time, s.max_exec_time, s.calls, NULL::timestamptz,
                          'pg_stat_statements'::text
                     FROM %I.pg_stat_statements s
                    CROSS JOIN LATERAL (SELECT CASE WHEN steward._sees_statements_of($2, s.userid) THEN s.query
                                                    ELSE '<insufficient privilege>' END AS query) v
                    WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
                      AND s.mean_exec_time >= $1
                    ORDER BY s.mean_exec_time DESC
                    LIMIT 100$q$, v_schema)
            USING min_duration_ms::double precision, caller;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            RAISE NOTICE 'pg_stat_statements is installed but not loaded; slow queries come from query_performance_logs only'
                USING HINT = 'Add pg_stat_statements to shared_preload_libraries and restart the server.';
        END;
    END IF;

    RETURN QUERY
    SELECT NULL::bigint, l.query_text, count(*), sum(l.duration_ms)::double precision,
           avg(l.duration_ms)::double precision, min(l.duration_ms)::double precision,
           max(l.duration_ms)::double precision, coalesce(stddev_pop(l.duration_ms), 0)::double precision,
           NULL::bigint, NULL::bigint, NULL::bigint,
           l.query_text, avg(l.duration_ms)::double precision, max(l.duration_ms)::double precision,
           count(*), max(l.execution_timestamp), 'query_performance_logs'::text
      FROM steward.query_performance_logs l
     WHERE l.execution_timestamp > now() - make_interval(hours => hours_back)
     GROUP BY coalesce(l.query_hash, md5(l.query_text)), l.query_text
    HAVING avg(l.duration_ms) >= min_duration_ms
     ORDER BY avg(l.duration_ms) DESC
     LIMIT 100;
END
$$;

CREATE FUNCTION steward._slow_queries(tok bigint, hours_back integer, min_duration_ms integer)
RETURNS TABLE (
    queryid bigint, query text, calls bigint, total_exec_time double precision,
    mean_exec_time double precision, min_exec_time double precision,
    max_exec_time double precision, stddev_exec_time double precision, rows bigint,
    shared_blks_hit bigint, shared_blks_read bigint,
    query_text text, avg_duration_ms double precision, max_duration_ms double precision,
    execution_count bigint, last_execution timestamptz,
    source text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._slow_queries_for(steward._caller(tok, 'steward.slow_queries'), hours_back, min_duration_ms) $$;

CREATE FUNCTION steward.slow_queries(hours_back integer DEFAULT 24, min_duration_ms integer DEFAULT 500)
RETURNS TABLE (
    queryid bigint, query text, calls bigint, total_exec_time double precision,
    mean_exec_time double precision, min_exec_time double precision,
    max_exec_time double precision, stddev_exec_time double precision, rows bigint,
    shared_blks_hit bigint, shared_blks_read bigint,
    query_text text, avg_duration_ms double precision, max_duration_ms double precision,
    execution_count bigint, last_execution timestamptz,
    source text
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._slow_queries(steward._enter(), hours_back, min_duration_ms) $$;

-- ---------------------------------------------------------------------------------------
-- Connections (the caller's own backend excluded)
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.connection_pool_metrics()
RETURNS TABLE (
    total integer, active integer, idle integer, idle_in_transaction integer, waiting integer,
    max_connections integer, by_database jsonb, by_user jsonb, longest_query_seconds numeric,
    utilization_pct numeric
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH a AS (
        SELECT * FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    )
    SELECT count(*)::int,
           count(*) FILTER (WHERE state = 'active')::int,
           count(*) FILTER (WHERE state = 'idle')::int,
           count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))::int,
           count(*) FILTER (WHERE wait_event_type = 'Lock')::int,
           current_setting('max_connections')::int,
           coalesce((SELECT jsonb_object_agg(k, n) FROM (SELECT coalesce(datname::text, '') k, count(*) n FROM a GROUP BY 1) d), '{}'),
           coalesce((SELECT jsonb_object_agg(k, n) FROM (SELECT coalesce(usename::text, '') k, count(*) n FROM a GROUP BY 1) u), '{}'),
           coalesce(round(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active')::numeric, 1), 0),
           round(count(*) * 100.0 / current_setting('max_connections')::int, 1)
      FROM a
$$;

-- Sessions that hold resources for long: active queries above longRunningQuerySeconds and
-- sessions idle in a transaction above idleInTransactionSeconds.
CREATE FUNCTION steward._long_running_sessions_for(caller oid)
RETURNS TABLE (
    kind text, pid integer, usename name, datname name, application_name text,
    client_addr inet, state text, duration_seconds numeric, xact_seconds numeric,
    wait_event_type text, wait_event text, query text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT CASE WHEN a.state = 'active' THEN 'long_running' ELSE 'idle_in_transaction' END,
           a.pid, a.usename, a.datname, a.application_name, a.client_addr, a.state,
           round(extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)::numeric, 1),
           round(extract(epoch FROM now() - a.xact_start)::numeric, 1),
           a.wait_event_type, a.wait_event,
           CASE WHEN steward._sees_statements_of(caller, a.usesysid) THEN left(a.query, 1000) ELSE '<insufficient privilege>' END
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
       AND ((a.state = 'active' AND a.query_start < now() - make_interval(secs => steward.setting_number('longRunningQuerySeconds')::double precision))
         OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
             AND a.state_change < now() - make_interval(secs => steward.setting_number('idleInTransactionSeconds')::double precision)))
     ORDER BY 8 DESC
$$;

CREATE FUNCTION steward._long_running_sessions(tok bigint)
RETURNS TABLE (
    kind text, pid integer, usename name, datname name, application_name text,
    client_addr inet, state text, duration_seconds numeric, xact_seconds numeric,
    wait_event_type text, wait_event text, query text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._long_running_sessions_for(steward._caller(tok, 'steward.long_running_sessions')) $$;

CREATE FUNCTION steward.long_running_sessions()
RETURNS TABLE (
    kind text, pid integer, usename name, datname name, application_name text,
    client_addr inet, state text, duration_seconds numeric, xact_seconds numeric,
    wait_event_type text, wait_event text, query text
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._long_running_sessions(steward._enter()) $$;

-- Sessions waiting on a lock and the sessions blocking them (pg_blocking_pids is only asked
-- about sessions that are waiting on a lock: it takes the lock manager's partition locks).
CREATE FUNCTION steward._blocking_chains_for(caller oid)
RETURNS TABLE (
    blocked_pid integer, blocked_user name, blocked_query text, wait_seconds numeric,
    blocking_pids integer[], blocking_pid integer, blocking_user name, blocking_state text,
    blocking_query text, blocking_xact_seconds numeric
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH w AS (
        SELECT a.*, pg_blocking_pids(a.pid) AS blockers
          FROM pg_stat_activity a
         WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
    )
    SELECT w.pid, w.usename,
           CASE WHEN steward._sees_statements_of(caller, w.usesysid) THEN left(w.query, 1000) ELSE '<insufficient privilege>' END,
           round(extract(epoch FROM now() - coalesce(w.state_change, w.query_start))::numeric, 1),
           w.blockers, b.pid, b.usename, b.state,
           CASE WHEN b.pid IS NULL THEN NULL
                WHEN steward._sees_statements_of(caller, b.usesysid) THEN left(b.query, 1000) ELSE '<insufficient privilege>' END,
           round(extract(epoch FROM now() - b.xact_start)::numeric, 1)
      FROM w
      LEFT JOIN pg_stat_activity b ON b.pid = w.blockers[1]
     WHERE cardinality(w.blockers) > 0
     ORDER BY 4 DESC
$$;

CREATE FUNCTION steward._blocking_chains(tok bigint)
RETURNS TABLE (
    blocked_pid integer, blocked_user name, blocked_query text, wait_seconds numeric,
    blocking_pids integer[], blocking_pid integer, blocking_user name, blocking_state text,
    blocking_query text, blocking_xact_seconds numeric
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._blocking_chains_for(steward._caller(tok, 'steward.blocking_chains')) $$;

CREATE FUNCTION steward.blocking_chains()
RETURNS TABLE (
    blocked_pid integer, blocked_user name, blocked_query text, wait_seconds numeric,
    blocking_pids integer[], blocking_pid integer, blocking_user name, blocking_state text,
    blocking_query text, blocking_xact_seconds numeric
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._blocking_chains(steward._enter()) $$;

-- ---------------------------------------------------------------------------------------
-- Transaction-ID and multixact wraparound
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.database_wraparound()
RETURNS TABLE (
    datname name, xid_age bigint, mxid_age bigint, pct_towards_wraparound numeric,
    pct_towards_mxid_wraparound numeric, pct_of_freeze_max_age numeric
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT d.datname, age(d.datfrozenxid)::bigint, mxid_age(d.datminmxid)::bigint,
           round(age(d.datfrozenxid) * 100.0 / 2147483648, 2),
           round(mxid_age(d.datminmxid) * 100.0 / 2147483648, 2),
           round(age(d.datfrozenxid) * 100.0 / current_setting('autovacuum_freeze_max_age')::bigint, 2)
      FROM pg_database d
     WHERE d.datallowconn
     ORDER BY 2 DESC
$$;

CREATE FUNCTION steward.table_wraparound(lim integer DEFAULT 20)
RETURNS TABLE (
    schemaname name, tablename name, xid_age bigint, mxid_age bigint,
    pct_towards_wraparound numeric, pct_of_freeze_max_age numeric, past_freeze_max_age boolean,
    relid oid
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT n.nspname, c.relname,
           greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xa,
           greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0))::bigint,
           round(greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)) * 100.0 / 2147483648, 2),
           round(greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)) * 100.0
                 / current_setting('autovacuum_freeze_max_age')::bigint, 2),
           greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)) > current_setting('autovacuum_freeze_max_age')::bigint,
           c.oid
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_class t ON t.oid = c.reltoastrelid AND c.reltoastrelid <> 0
     WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
     ORDER BY xa DESC, 1, 2
     LIMIT greatest(coalesce(lim, 20), 0)
$$;

-- ---------------------------------------------------------------------------------------
-- Sequences close to exhaustion.  The usable range is the sequence's own and, for a sequence
-- owned by a column, the column type's.  Reading a sequence's value locks it until the end
-- of the transaction, so only sequences bounded by int2/int4 are read (a bigint range is not
-- exhausted in practice), at most sequenceCheckLimit of them per call.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.sequence_usage()
RETURNS TABLE (
    schemaname name, sequencename name, owned_by text, data_type text, last_value bigint,
    effective_max bigint, pct_used numeric, cycles boolean, sequence_oid oid
)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH s AS (
        SELECT c.oid, n.nspname, c.relname, q.seqmin, q.seqmax, q.seqincrement, q.seqcycle,
               format_type(q.seqtypid, NULL) AS seqtype,
               CASE WHEN a.attrelid IS NOT NULL THEN format('%I.%I.%I', tn.nspname, tc.relname, a.attname) END AS owner,
               least(q.seqmax, CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                                               WHEN 'int4'::regtype THEN 2147483647
                                               ELSE 9223372036854775807 END) AS eff_max
          FROM pg_sequence q
          JOIN pg_class c ON c.oid = q.seqrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          LEFT JOIN pg_class tc ON tc.oid = a.attrelid
          LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
         WHERE c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    ),
    bounded AS (
        SELECT * FROM s WHERE s.eff_max <= 2147483647 AND s.seqincrement > 0
         ORDER BY s.eff_max, s.oid
         LIMIT steward.setting_number('sequenceCheckLimit')::bigint
    )
    SELECT b.nspname, b.relname, b.owner, b.seqtype, v.lv, b.eff_max,
           round(coalesce(v.lv - b.seqmin, 0) * 100.0 / greatest(b.eff_max - b.seqmin, 1), 2),
           b.seqcycle, b.oid
      FROM bounded b
     CROSS JOIN LATERAL (SELECT pg_sequence_last_value(b.oid::regclass) AS lv) v
     ORDER BY 7 DESC, 1, 2
$$;

-- ---------------------------------------------------------------------------------------
-- Name look-ups: plain, schema-qualified or quoted names, resolved like the caller would
-- (these two run as the caller, with the caller's search_path).  Anything that is not a
-- valid name is simply not an existing relation.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.table_exists(p_table_name text) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_oid oid;
BEGIN
    IF p_table_name IS NULL OR p_table_name = '' THEN
        RETURN false;
    END IF;
    BEGIN
        v_oid := pg_catalog.to_regclass(p_table_name);
    EXCEPTION WHEN invalid_name OR syntax_error OR feature_not_supported OR invalid_schema_name THEN
        RETURN false;
    END;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = v_oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f'));
END
$$;

CREATE FUNCTION steward.index_exists(p_index_name text) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_oid oid;
BEGIN
    IF p_index_name IS NULL OR p_index_name = '' THEN
        RETURN false;
    END IF;
    BEGIN
        v_oid := pg_catalog.to_regclass(p_index_name);
    EXCEPTION WHEN invalid_name OR syntax_error OR feature_not_supported OR invalid_schema_name THEN
        RETURN false;
    END;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = v_oid AND c.relkind IN ('i', 'I'));
END
$$;

-- ---------------------------------------------------------------------------------------
-- Snapshots (CONTRACT §6)
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward.capture_index_usage_snapshot() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_rows integer;
BEGIN
    PERFORM steward._require_writable();
    WITH h AS MATERIALIZED (
        SELECT now() AS ts, h.schemaname, h.relname AS tablename, h.indexrelname AS indexname, h.idx_scan,
               h.idx_tup_read, h.idx_tup_fetch, h.index_size, coalesce(t.table_size, 0) AS table_size, h.indexrelid
          FROM steward.index_health() h
          LEFT JOIN steward.table_health() t ON t.relid = h.relid
    ),
    snap AS (
        INSERT INTO steward.index_usage_snapshots (snapshot_timestamp, schemaname, tablename, indexname, idx_scan,
                                                  idx_tup_read, idx_tup_fetch, index_size_bytes, table_size_bytes, indexrelid)
        SELECT ts, schemaname, tablename, indexname, idx_scan, idx_tup_read, idx_tup_fetch, index_size, table_size, indexrelid
          FROM h
        RETURNING 1
    ),
    state AS (
        INSERT INTO steward.index_usage_state AS u (indexrelid, idx_scan, unchanged_since, observed_at)
        SELECT indexrelid, idx_scan, ts, ts FROM h
        ON CONFLICT (indexrelid) DO UPDATE
           SET unchanged_since = CASE WHEN u.idx_scan = EXCLUDED.idx_scan THEN u.unchanged_since ELSE EXCLUDED.observed_at END,
               idx_scan = EXCLUDED.idx_scan,
               observed_at = EXCLUDED.observed_at
        RETURNING 1
    )
    SELECT count(*) INTO v_rows FROM snap;

    DELETE FROM steward.index_usage_state u
     WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = u.indexrelid);
    RETURN v_rows;
END
$$;

CREATE FUNCTION steward.capture_table_bloat_snapshot() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_rows integer;
BEGIN
    PERFORM steward._require_writable();
    INSERT INTO steward.table_bloat_snapshots (schemaname, tablename, actual_size_bytes, estimated_size_bytes,
                                              bloat_bytes, bloat_ratio, dead_tuples, live_tuples, confidence, relid)
    SELECT b.schemaname, b.tablename, b.actual_size_bytes, b.estimated_size_bytes, b.bloat_bytes,
           b.bloat_pct, b.dead_tuples, b.live_tuples, b.confidence, b.relid
      FROM steward.table_bloat() b;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
