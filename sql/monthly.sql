-- The monthly health report with history (issue #16 item 5; CONTRACT §6 "a monthly health
-- report").  One row per month: what happened in it (table growth from the bloat snapshots,
-- alerts raised and resolved by rule and severity, maintenance done and failed, the logged
-- query times), the findings of the rule table when it was generated, the health report's
-- recommendations, and the comparison with the previous month's stored report (growth,
-- findings new and gone, alerts, maintenance, slow queries).  pg_cron's monthly job writes the
-- previous month's report here (schedule_jobs()).

CREATE TABLE steward.health_reports (
    month        date PRIMARY KEY CHECK (month = date_trunc('month', month)::date),
    generated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    generated_by text NOT NULL,
    report       jsonb NOT NULL,
    text         text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.health_reports', '');

-- The month a caller names (any day of it; null: the previous month), refused when it has not
-- begun or is before 2000.
CREATE FUNCTION steward._report_month(p_month date) RETURNS date
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date := date_trunc('month', coalesce(p_month, (now() - interval '1 month')::date))::date;
BEGIN
    IF m > date_trunc('month', now())::date THEN
        RAISE EXCEPTION 'month % is in the future', to_char(m, 'YYYY-MM')
            USING ERRCODE = '22023', DETAIL = format('Today is %s; a report covers a month that has begun.', now()::date),
                  HINT = 'Pass any day of the month, or null for the previous month.';
    END IF;
    IF m < date '2000-01-01' THEN
        RAISE EXCEPTION 'month % is before 2000', to_char(m, 'YYYY-MM') USING ERRCODE = '22023';
    END IF;
    RETURN m;
END
$$;

-- What happened in [p_from, p_to): the parts of the report that come from history.
CREATE FUNCTION steward._month_activity(p_from timestamptz, p_to timestamptz) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH sizes AS (
        SELECT s.schemaname, s.tablename,
               (array_agg(s.actual_size_bytes ORDER BY s.snapshot_timestamp))[1] AS first_bytes,
               (array_agg(s.actual_size_bytes ORDER BY s.snapshot_timestamp DESC))[1] AS last_bytes
          FROM steward.table_bloat_snapshots s
         WHERE s.snapshot_timestamp >= p_from AND s.snapshot_timestamp < p_to
         GROUP BY s.schemaname, s.tablename
    ), alerts AS (
        SELECT a.* FROM steward.performance_alerts a WHERE a.created_at >= p_from AND a.created_at < p_to
    ), maint AS (
        SELECT m.* FROM steward.maintenance_operations m WHERE m.created_at >= p_from AND m.created_at < p_to
    ), q AS (
        SELECT l.duration_ms, l.execution_timestamp FROM steward.query_performance_logs l
         WHERE l.execution_timestamp >= p_from AND l.execution_timestamp < p_to
    ), slow AS (SELECT steward.setting_number('slowQueryThresholdMs') AS ms)
    SELECT jsonb_build_object(
        'size', (SELECT jsonb_build_object(
                     'trackedTables', count(*),
                     'startBytes', coalesce(sum(first_bytes), 0),
                     'endBytes', coalesce(sum(last_bytes), 0),
                     'growthBytes', coalesce(sum(last_bytes - first_bytes), 0),
                     'topGrowth', coalesce((SELECT jsonb_agg(jsonb_build_object('table', format('%I.%I', t.schemaname, t.tablename),
                                                                             'startBytes', t.first_bytes, 'endBytes', t.last_bytes,
                                                                             'growthBytes', t.last_bytes - t.first_bytes)
                                                          ORDER BY t.last_bytes - t.first_bytes DESC, t.schemaname, t.tablename)
                                              FROM (SELECT * FROM sizes ORDER BY last_bytes - first_bytes DESC, schemaname, tablename LIMIT 10) t), '[]'))
                   FROM sizes),
        'alerts', jsonb_build_object(
            'raised', (SELECT count(*) FROM alerts),
            'resolved', (SELECT count(*) FROM steward.performance_alerts a WHERE a.resolved_at >= p_from AND a.resolved_at < p_to),
            'openAtEnd', (SELECT count(*) FROM steward.performance_alerts a
                           WHERE a.created_at < p_to AND (a.resolved_at IS NULL OR a.resolved_at >= p_to)),
            'byRule', (SELECT coalesce(jsonb_agg(jsonb_build_object('rule', r.rule, 'severity', r.severity, 'count', r.n)
                                                 ORDER BY r.n DESC, r.rule, r.severity), '[]')
                         FROM (SELECT coalesce(rule_id, alert_type) AS rule, severity, count(*) AS n FROM alerts GROUP BY 1, 2) r)),
        'maintenance', (SELECT jsonb_build_object(
                            'total', count(*),
                            'completed', count(*) FILTER (WHERE status = 'completed'),
                            'failed', count(*) FILTER (WHERE status = 'failed' AND NOT refused),
                            'refused', count(*) FILTER (WHERE refused),
                            'successRate', CASE WHEN count(*) FILTER (WHERE status IN ('completed', 'failed')) = 0 THEN NULL
                                                ELSE round(100.0 * count(*) FILTER (WHERE status = 'completed')
                                                           / count(*) FILTER (WHERE status IN ('completed', 'failed')), 1) END,
                            'totalDurationMs', coalesce(sum(duration_ms), 0),
                            'byType', coalesce((SELECT jsonb_agg(jsonb_build_object('type', t.operation_type, 'completed', t.c, 'failed', t.f)
                                                                 ORDER BY t.operation_type)
                                                  FROM (SELECT operation_type, count(*) FILTER (WHERE status = 'completed') AS c,
                                                               count(*) FILTER (WHERE status = 'failed') AS f
                                                          FROM maint GROUP BY 1) t), '[]'))
                          FROM maint),
        'queries', (SELECT jsonb_build_object(
                        'count', count(*),
                        'slowCount', count(*) FILTER (WHERE q.duration_ms > slow.ms),
                        'avgMs', round(avg(q.duration_ms), 1),
                        'p95Ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY q.duration_ms))::numeric, 1),
                        'byWeek', coalesce((SELECT jsonb_agg(jsonb_build_object('week', w.week, 'count', w.n, 'slowCount', w.s, 'p95Ms', w.p95) ORDER BY w.week)
                                              FROM (SELECT date_trunc('week', q2.execution_timestamp)::date AS week, count(*) AS n,
                                                           count(*) FILTER (WHERE q2.duration_ms > slow.ms) AS s,
                                                           round((percentile_cont(0.95) WITHIN GROUP (ORDER BY q2.duration_ms))::numeric, 1) AS p95
                                                      FROM q q2 GROUP BY 1) w), '[]'))
                      FROM q, slow GROUP BY slow.ms)
    )
$$;

-- Store the report of a month (any day of it; null: the previous month) and return it.
-- Regenerating a month replaces its row.  Findings and recommendations are those of the
-- database when the report is generated.
CREATE FUNCTION steward._generate_monthly_report_for(caller oid, p_month date) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    m date;
    v_from timestamptz;
    v_to timestamptz;
    v_health jsonb;
    v_eval jsonb;
    v_activity jsonb;
    v_prev jsonb;
    v_findings jsonb;
    r jsonb;
BEGIN
    PERFORM steward._require_writable();
    m := steward._report_month(p_month);
    v_from := m::timestamptz;
    v_to := (m + interval '1 month')::timestamptz;
    v_health := steward._health_report_for(caller);
    v_eval := steward._report_findings(v_health, steward._alert_rules_json());
    SELECT coalesce(jsonb_agg(jsonb_build_object('rule', f ->> 'rule_id', 'severity', f ->> 'severity', 'object', f ->> 'object_name')
                              ORDER BY f ->> 'rule_id', f ->> 'object_name'), '[]')
      INTO v_findings FROM jsonb_array_elements(v_eval -> 'findings') f;
    v_activity := steward._month_activity(v_from, v_to);
    SELECT h.report INTO v_prev FROM steward.health_reports h WHERE h.month = (m - interval '1 month')::date;
    r := jsonb_build_object(
        'month', m,
        'database', current_database(),
        'period', jsonb_build_object('from', v_from, 'to', v_to, 'complete', now() >= v_to),
        'generatedAt', now(),
        'size', v_activity -> 'size',
        'alerts', v_activity -> 'alerts',
        'maintenance', v_activity -> 'maintenance',
        -- A month without logged queries has no row to aggregate: JSON null there, zeros here.
        'queries', CASE WHEN jsonb_typeof(v_activity -> 'queries') = 'object' THEN v_activity -> 'queries'
                        ELSE jsonb_build_object('count', 0, 'slowCount', 0, 'byWeek', '[]'::jsonb) END,
        'findings', v_findings,
        'recommendations', v_health -> 'recommendations',
        'overview', jsonb_build_object('databaseSize', v_health #> '{overview,database_size}',
                                       'cacheHitRatio', v_health #> '{overview,cache_hit_ratio}',
                                       'tableCount', v_health #> '{summary,tableCount}',
                                       'indexCount', v_health #> '{summary,indexCount}'));
    r := r || jsonb_build_object('comparison', CASE WHEN v_prev IS NULL THEN jsonb_build_object('previousMonth', NULL) ELSE
        jsonb_build_object(
            'previousMonth', v_prev -> 'month',
            'growthBytes', steward._month_delta(r #> '{size,growthBytes}', v_prev #> '{size,growthBytes}'),
            'alertsRaised', steward._month_delta(r #> '{alerts,raised}', v_prev #> '{alerts,raised}'),
            'maintenanceFailed', steward._month_delta(r #> '{maintenance,failed}', v_prev #> '{maintenance,failed}'),
            'maintenanceCompleted', steward._month_delta(r #> '{maintenance,completed}', v_prev #> '{maintenance,completed}'),
            'slowQueries', steward._month_delta(r #> '{queries,slowCount}', v_prev #> '{queries,slowCount}'),
            'p95Ms', steward._month_delta(r #> '{queries,p95Ms}', v_prev #> '{queries,p95Ms}'),
            'newFindings', (SELECT coalesce(jsonb_agg(f ORDER BY f ->> 'rule', f ->> 'object'), '[]')
                              FROM jsonb_array_elements(r -> 'findings') f
                             WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_prev -> 'findings') p
                                                WHERE p ->> 'rule' = f ->> 'rule' AND p ->> 'object' = f ->> 'object')),
            'goneFindings', (SELECT coalesce(jsonb_agg(p ORDER BY p ->> 'rule', p ->> 'object'), '[]')
                               FROM jsonb_array_elements(v_prev -> 'findings') p
                              WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r -> 'findings') f
                                                 WHERE p ->> 'rule' = f ->> 'rule' AND p ->> 'object' = f ->> 'object')),
            'alertsByRule', (SELECT coalesce(jsonb_agg(jsonb_build_object('rule', k.rule, 'current', k.cur, 'previous', k.prev, 'change', k.cur - k.prev)
                                                       ORDER BY k.rule), '[]')
                               FROM (SELECT coalesce(c.rule, p.rule) AS rule, coalesce(c.n, 0) AS cur, coalesce(p.n, 0) AS prev
                                       FROM (SELECT x ->> 'rule' AS rule, sum((x ->> 'count')::bigint) AS n
                                               FROM jsonb_array_elements(r #> '{alerts,byRule}') x GROUP BY 1) c
                                       FULL JOIN (SELECT x ->> 'rule' AS rule, sum((x ->> 'count')::bigint) AS n
                                                    FROM jsonb_array_elements(v_prev #> '{alerts,byRule}') x GROUP BY 1) p
                                         ON p.rule = c.rule) k))
    END);
    INSERT INTO steward.health_reports (month, generated_at, generated_by, report, text)
    VALUES (m, now(), steward.caller_id(), r, steward._render_monthly_report(r))
    ON CONFLICT (month) DO UPDATE SET generated_at = EXCLUDED.generated_at, generated_by = EXCLUDED.generated_by,
                                      report = EXCLUDED.report, text = EXCLUDED.text;
    RETURN r;
END
$$;

-- {current, previous, change, changePct} of two numbers (either may be null).
CREATE FUNCTION steward._month_delta(cur jsonb, prev jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('current', cur, 'previous', prev,
        'change', CASE WHEN jsonb_typeof(cur) = 'number' AND jsonb_typeof(prev) = 'number'
                       THEN to_jsonb((cur #>> '{}')::numeric - (prev #>> '{}')::numeric) END,
        'changePct', CASE WHEN jsonb_typeof(cur) = 'number' AND jsonb_typeof(prev) = 'number' AND (prev #>> '{}')::numeric <> 0
                          THEN to_jsonb(round(((cur #>> '{}')::numeric - (prev #>> '{}')::numeric) * 100 / abs((prev #>> '{}')::numeric), 1)) END)
$$;

CREATE FUNCTION steward._generate_monthly_report(tok bigint, p_month date) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._generate_monthly_report_for(steward._caller(tok, 'steward.generate_monthly_report'), p_month) $$;

CREATE FUNCTION steward.generate_monthly_report(month date DEFAULT NULL) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._generate_monthly_report(steward._enter(), month) $$;

-- A stored report (P0002 when that month has none).
CREATE FUNCTION steward.monthly_report(month date DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date := steward._report_month(month);
    r jsonb;
BEGIN
    SELECT h.report INTO r FROM steward.health_reports h WHERE h.month = m;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no monthly report for %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'P0002', HINT = 'steward.generate_monthly_report(month) writes one.';
    END IF;
    RETURN r;
END
$$;

CREATE FUNCTION steward.monthly_report_text(month date DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date := steward._report_month(month);
    t text;
BEGIN
    SELECT h.text INTO t FROM steward.health_reports h WHERE h.month = m;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no monthly report for %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'P0002', HINT = 'steward.generate_monthly_report(month) writes one.';
    END IF;
    RETURN t;
END
$$;

-- The stored reports, newest first: {reports: [{month, generatedAt, generatedBy, alertsRaised,
-- maintenanceFailed, slowQueries, growthBytes, findings}], totalCount, page, pageSize, hasMore}.
CREATE FUNCTION steward.list_monthly_reports(page integer DEFAULT 1, page_size integer DEFAULT 12) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint;
    v_rows jsonb;
BEGIN
    PERFORM steward._check_page(page, page_size);
    SELECT count(*) INTO v_total FROM steward.health_reports;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'month', h.month, 'generatedAt', h.generated_at, 'generatedBy', h.generated_by,
               'alertsRaised', h.report #> '{alerts,raised}', 'maintenanceFailed', h.report #> '{maintenance,failed}',
               'slowQueries', h.report #> '{queries,slowCount}', 'growthBytes', h.report #> '{size,growthBytes}',
               'findings', jsonb_array_length(coalesce(h.report -> 'findings', '[]')))
             ORDER BY h.month DESC), '[]')
      INTO v_rows
      FROM (SELECT * FROM steward.health_reports ORDER BY month DESC
             OFFSET (page - 1)::bigint * page_size LIMIT page_size) h;
    RETURN jsonb_build_object('reports', v_rows, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', (page::bigint * page_size) < v_total);
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('generate_monthly_report', 'steward.generate_monthly_report(date)',        'volatile', '{steward_admin,service_role}'),
    ('get_monthly_report',      'steward.monthly_report(date)',                 'stable',   '{steward_admin,service_role}'),
    ('get_monthly_report_text', 'steward.monthly_report_text(date)',            'stable',   '{steward_admin,service_role}'),
    ('list_monthly_reports',    'steward.list_monthly_reports(integer,integer)', 'stable',  '{steward_admin,service_role}');
