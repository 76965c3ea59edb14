-- Snapshots and trends (issue #16 item 4): the hourly capture also records the database's
-- size, transaction-ID position and statistics-reset time; history is kept for a set number of
-- days (settings, applied daily by purge_history()); trend functions answer for a chart (at
-- most N points, bucketed): size growth with a projection, index usage across statistics
-- resets, transaction-ID consumption, and logged query statistics.

CREATE TABLE steward.database_snapshots (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot_timestamp  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    database_size_bytes bigint NOT NULL,
    stats_reset         timestamptz,
    next_xid            bigint,      -- the next transaction ID (64-bit, epoch included)
    frozen_xid_age      bigint,      -- age(datfrozenxid)
    min_mxid_age        bigint,      -- mxid_age(datminmxid)
    xact_commit         bigint,
    xact_rollback       bigint
);
CREATE INDEX database_snapshots_time ON steward.database_snapshots (snapshot_timestamp);
SELECT pg_catalog.pg_extension_config_dump('steward.database_snapshots', '');

CREATE FUNCTION steward.capture_database_snapshot() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._require_writable();
    INSERT INTO steward.database_snapshots (database_size_bytes, stats_reset, next_xid, frozen_xid_age, min_mxid_age,
                                            xact_commit, xact_rollback)
    SELECT steward._database_bytes(), s.stats_reset,
           -- The snapshot's xmax is the next ID to be assigned: reading it assigns none.
           pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint,
           pg_catalog.age(d.datfrozenxid), pg_catalog.mxid_age(d.datminmxid), s.xact_commit, s.xact_rollback
      FROM pg_catalog.pg_database d
      LEFT JOIN pg_catalog.pg_stat_database s ON s.datid OPERATOR(pg_catalog.=) d.oid
     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
    RETURN 1;
END
$$;

-- The hourly capture: the database, every table (size, bloat) and every index (scans, size).
CREATE FUNCTION steward.capture_snapshots() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN jsonb_build_object('database', steward.capture_database_snapshot(),
                              'tables', steward.capture_table_bloat_snapshot(),
                              'indexes', steward.capture_index_usage_snapshot());
END
$$;

-- History older than its retention setting, removed (admins; pg_cron daily): snapshots, the
-- query log, resolved alerts, finished maintenance records, alert check runs, the admin log.  Returns the rows
-- removed per table.
CREATE FUNCTION steward._purge_history_impl() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_snap interval := make_interval(days => steward.setting_number('snapshotRetentionDays')::integer);
    v_logs interval := make_interval(days => steward.setting_number('queryLogRetentionDays')::integer);
    v_alerts interval := make_interval(days => steward.setting_number('resolvedAlertRetentionDays')::integer);
    v_maint interval := make_interval(days => steward.setting_number('maintenanceRetentionDays')::integer);
    r jsonb := '{}';
    n bigint;
BEGIN
    PERFORM steward._require_writable();
    DELETE FROM steward.table_bloat_snapshots WHERE snapshot_timestamp < now() - v_snap;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('table_bloat_snapshots', n);
    DELETE FROM steward.index_usage_snapshots WHERE snapshot_timestamp < now() - v_snap;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('index_usage_snapshots', n);
    DELETE FROM steward.database_snapshots WHERE snapshot_timestamp < now() - v_snap;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('database_snapshots', n);
    DELETE FROM steward.query_performance_logs WHERE execution_timestamp < now() - v_logs;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('query_performance_logs', n);
    DELETE FROM steward.performance_alerts WHERE resolved_at < now() - v_alerts;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('performance_alerts', n);
    DELETE FROM steward.maintenance_operations
     WHERE created_at < now() - v_maint AND status IN ('completed', 'failed');
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('maintenance_operations', n);
    DELETE FROM steward.alert_checks WHERE checked_at < now() - v_snap;
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('alert_checks', n);
    DELETE FROM steward.admin_log
     WHERE at < now() - make_interval(days => steward.setting_number('adminLogRetentionDays')::integer);
    GET DIAGNOSTICS n = ROW_COUNT; r := r || jsonb_build_object('admin_log', n);
    RETURN r;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.purge_history() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := '{}'::jsonb;
BEGIN
    r := steward._purge_history_impl();
    PERFORM steward._admin_logged('steward.purge_history', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.purge_history', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Chart arguments: days 1..3660, points 2..1000; the bucket width that gives at most that many.
CREATE FUNCTION steward._trend_bucket(p_days integer, p_points integer) RETURNS interval
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problems text[] := '{}';
BEGIN
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 3660 THEN
        v_problems := v_problems || format('days must be between 1 and 3660, got %s', coalesce(p_days::text, 'NULL'));
    END IF;
    IF p_points IS NULL OR p_points NOT BETWEEN 2 AND 1000 THEN
        v_problems := v_problems || format('points must be between 2 and 1000, got %s', coalesce(p_points::text, 'NULL'));
    END IF;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid trend arguments' USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    RETURN make_interval(secs => ceil(p_days * 86400.0 / p_points));
END
$$;

-- 'schema.name' or 'name' (schema public) as written, for objects that may no longer exist.
CREATE FUNCTION steward._trend_object(p_name text, OUT schemaname name, OUT objname name)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION 'a name is required' USING ERRCODE = '22023', HINT = 'Write schema.name (quoted where needed).';
    END IF;
    BEGIN
        parts := parse_ident(p_name);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid name %', quote_literal(p_name) USING ERRCODE = '22023',
              HINT = 'Write schema.name (quoted where needed).';
    END;
    IF cardinality(parts) = 1 THEN
        schemaname := 'public'; objname := parts[1];
    ELSIF cardinality(parts) = 2 THEN
        schemaname := parts[1]; objname := parts[2];
    ELSE
        RAISE EXCEPTION 'invalid name %', quote_literal(p_name) USING ERRCODE = '22023',
              HINT = 'Write schema.name (quoted where needed).';
    END IF;
END
$$;

-- Size over time: the database (table_name null) or one table, at most `points` points (the
-- last size of each bucket), the growth per day (least squares over every snapshot of the
-- period) and when the size reaches threshold_bytes (default: the diskCapacityBytes setting;
-- none when 0 or not growing).
CREATE FUNCTION steward.size_trend(table_name text DEFAULT NULL, days integer DEFAULT 90, points integer DEFAULT 100,
                                   threshold_bytes bigint DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_bucket interval := steward._trend_bucket(days, points);
    v_from timestamptz := now() - make_interval(days => days);
    v_schema name;
    v_table name;
    v_threshold numeric := coalesce(threshold_bytes, nullif(steward.setting_number('diskCapacityBytes'), 0));
    r record;
BEGIN
    IF threshold_bytes IS NOT NULL AND threshold_bytes <= 0 THEN
        RAISE EXCEPTION 'threshold_bytes must be positive' USING ERRCODE = '22023', DETAIL = format('got %s', threshold_bytes);
    END IF;
    IF table_name IS NOT NULL THEN
        SELECT o.schemaname, o.objname INTO v_schema, v_table FROM steward._trend_object(table_name) o;
    END IF;
    WITH t AS (
        SELECT s.snapshot_timestamp AS at, s.database_size_bytes::float8 AS v
          FROM steward.database_snapshots s
         WHERE v_table IS NULL AND s.snapshot_timestamp >= v_from
        UNION ALL
        SELECT s.snapshot_timestamp, s.actual_size_bytes::float8
          FROM steward.table_bloat_snapshots s
         WHERE v_table IS NOT NULL AND s.schemaname = v_schema AND s.tablename = v_table AND s.snapshot_timestamp >= v_from
    ), last AS (
        SELECT t.at, t.v FROM t ORDER BY t.at DESC LIMIT 1
    )
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object('at', b.at, 'bytes', b.v) ORDER BY b.at), '[]')
              FROM (SELECT date_bin(v_bucket, t.at, v_from) AS at, (array_agg(t.v ORDER BY t.at DESC))[1] AS v
                      FROM t GROUP BY 1) b) AS points,
           (SELECT regr_slope(t.v, extract(epoch FROM t.at)) FROM t) AS slope,
           (SELECT last.at FROM last) AS last_at,
           (SELECT last.v FROM last) AS last_v
      INTO r;
    RETURN jsonb_build_object(
        'object', CASE WHEN v_table IS NULL THEN current_database()::text ELSE format('%I.%I', v_schema, v_table) END,
        'days', days, 'bucketSeconds', extract(epoch FROM v_bucket),
        'points', r.points,
        'latestBytes', r.last_v, 'latestAt', r.last_at,
        'growthBytesPerDay', round((r.slope * 86400)::numeric, 1),
        'thresholdBytes', v_threshold,
        'reachedAt', CASE WHEN r.slope > 0 AND v_threshold > r.last_v
                          THEN r.last_at + make_interval(secs => (v_threshold - r.last_v::numeric)::float8 / r.slope) END,
        'daysUntilThreshold', CASE WHEN r.slope > 0 AND v_threshold > r.last_v
                                   THEN round((v_threshold - r.last_v::numeric) / (r.slope * 86400)::numeric, 1) END);
END
$$;

-- Scans of one index over time.  Counters that go backwards (a statistics reset, a crash, a
-- restart that lost them) are a reset, never negative use: the first snapshot after a reset
-- counts the scans since the reset.
CREATE FUNCTION steward.index_usage_trend(index_name text, days integer DEFAULT 30, points integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_bucket interval := steward._trend_bucket(days, points);
    v_from timestamptz := now() - make_interval(days => days);
    v_schema name;
    v_index name;
    r jsonb;
BEGIN
    SELECT o.schemaname, o.objname INTO v_schema, v_index FROM steward._trend_object(index_name) o;
    WITH s AS (
        SELECT u.snapshot_timestamp AS at, u.idx_scan,
               lag(u.idx_scan) OVER (ORDER BY u.snapshot_timestamp) AS prev
          FROM steward.index_usage_snapshots u
         WHERE u.schemaname = v_schema AND u.indexname = v_index AND u.snapshot_timestamp >= v_from
    ), d AS (
        SELECT at, CASE WHEN prev IS NULL THEN NULL WHEN idx_scan < prev THEN idx_scan ELSE idx_scan - prev END AS scans,
               prev IS NOT NULL AND idx_scan < prev AS reset
          FROM s
    )
    SELECT jsonb_build_object(
        'object', format('%I.%I', v_schema, v_index), 'days', days, 'bucketSeconds', extract(epoch FROM v_bucket),
        'points', coalesce((SELECT jsonb_agg(jsonb_build_object('at', b.at, 'scans', b.scans) ORDER BY b.at)
                              FROM (SELECT date_bin(v_bucket, d.at, v_from) AS at, sum(d.scans) AS scans
                                      FROM d WHERE d.scans IS NOT NULL GROUP BY 1) b), '[]'),
        'totalScans', (SELECT coalesce(sum(scans), 0) FROM d),
        'resets', (SELECT count(*) FILTER (WHERE reset) FROM d),
        'snapshots', (SELECT count(*) FROM d))
      INTO r;
    RETURN r;
END
$$;

-- Transaction IDs consumed per day (least squares over the period's snapshots) and the days
-- until the database reaches autovacuum_freeze_max_age and the wraparound limit at that rate.
CREATE FUNCTION steward.xid_trend(days integer DEFAULT 30, points integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_bucket interval := steward._trend_bucket(days, points);
    v_from timestamptz := now() - make_interval(days => days);
    v_rate float8;
    v_age bigint := (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database());
    v_freeze bigint := current_setting('autovacuum_freeze_max_age')::bigint;
    v_points jsonb;
BEGIN
    SELECT regr_slope(s.next_xid, extract(epoch FROM s.snapshot_timestamp)) * 86400 INTO v_rate
      FROM steward.database_snapshots s WHERE s.snapshot_timestamp >= v_from AND s.next_xid IS NOT NULL;
    SELECT coalesce(jsonb_agg(jsonb_build_object('at', b.at, 'xids', b.xids) ORDER BY b.at), '[]') INTO v_points
      FROM (SELECT date_bin(v_bucket, x.at, v_from) AS at, sum(x.d) AS xids
              FROM (SELECT s.snapshot_timestamp AS at,
                           s.next_xid - lag(s.next_xid) OVER (ORDER BY s.snapshot_timestamp) AS d
                      FROM steward.database_snapshots s WHERE s.snapshot_timestamp >= v_from AND s.next_xid IS NOT NULL) x
             WHERE x.d IS NOT NULL GROUP BY 1) b;
    RETURN jsonb_build_object(
        'days', days, 'bucketSeconds', extract(epoch FROM v_bucket), 'points', v_points,
        'xidsPerDay', round(v_rate::numeric, 1),
        'frozenXidAge', v_age,
        'autovacuumFreezeMaxAge', v_freeze,
        'daysUntilFreezeMaxAge', CASE WHEN v_rate > 0 THEN round(greatest(v_freeze - v_age, 0) / v_rate::numeric, 1) END,
        -- The server stops assigning IDs 3 million short of 2^31 (PostgreSQL 15-17).
        'daysUntilWraparoundLimit', CASE WHEN v_rate > 0 THEN round(greatest(2147483647 - 3000000 - v_age, 0) / v_rate::numeric, 1) END);
END
$$;

-- Logged query statistics (query_performance_logs) in [from_ts, to_ts), bucketed: count,
-- slow count (slowQueryThresholdMs), average and p95.
CREATE FUNCTION steward.query_trend(from_ts timestamptz DEFAULT now() - interval '7 days', to_ts timestamptz DEFAULT now(),
                                    points integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_bucket interval;
    v_slow numeric := steward.setting_number('slowQueryThresholdMs');
    r jsonb;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR to_ts <= from_ts OR to_ts - from_ts > interval '3660 days' THEN
        RAISE EXCEPTION 'invalid range' USING ERRCODE = '22023',
              DETAIL = format('from %s to %s: both finite, to after from, at most 3660 days later', from_ts, to_ts);
    END IF;
    IF points IS NULL OR points NOT BETWEEN 2 AND 1000 THEN
        RAISE EXCEPTION 'invalid trend arguments' USING ERRCODE = '22023',
              DETAIL = format('points must be between 2 and 1000, got %s', coalesce(points::text, 'NULL'));
    END IF;
    v_bucket := make_interval(secs => ceil(extract(epoch FROM to_ts - from_ts) / points));
    SELECT jsonb_build_object(
        'from', from_ts, 'to', to_ts, 'bucketSeconds', extract(epoch FROM v_bucket),
        'points', coalesce((SELECT jsonb_agg(jsonb_build_object('at', b.at, 'count', b.n, 'slowCount', b.s, 'avgMs', b.a, 'p95Ms', b.p) ORDER BY b.at)
                              FROM (SELECT date_bin(v_bucket, l.execution_timestamp, from_ts) AS at, count(*) AS n,
                                           count(*) FILTER (WHERE l.duration_ms > v_slow) AS s, round(avg(l.duration_ms), 1) AS a,
                                           round((percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms))::numeric, 1) AS p
                                      FROM steward.query_performance_logs l
                                     WHERE l.execution_timestamp >= from_ts AND l.execution_timestamp < to_ts GROUP BY 1) b), '[]'),
        'count', count(*), 'slowCount', count(*) FILTER (WHERE l.duration_ms > v_slow),
        'avgMs', round(avg(l.duration_ms), 1),
        'p95Ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms))::numeric, 1))
      INTO r
      FROM steward.query_performance_logs l
     WHERE l.execution_timestamp >= from_ts AND l.execution_timestamp < to_ts;
    RETURN r;
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('capture_snapshots',   'steward.capture_snapshots()',                          'volatile', '{steward_admin,service_role}'),
    ('get_size_trend',      'steward.size_trend(text,integer,integer,bigint)',      'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_index_usage_trend', 'steward.index_usage_trend(text,integer,integer)',    'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_xid_trend',       'steward.xid_trend(integer,integer)',                   'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_query_trend',     'steward.query_trend(timestamptz,timestamptz,integer)', 'stable',   '{steward_admin,service_role,pg_monitor}');
