-- Alerts (CONTRACT §2).

CREATE FUNCTION steward.create_performance_alert(
    p_alert_type text, p_severity text, p_message text, p_details jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
    v_problems text[] := '{}';
BEGIN
    PERFORM steward._require_writable();
    IF p_alert_type IS NULL OR p_alert_type !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        v_problems := v_problems || format('alert_type %s is not a lower-case identifier such as slow_query', coalesce(quote_literal(p_alert_type), 'NULL'));
    END IF;
    IF p_severity IS NULL OR p_severity NOT IN ('info', 'warning', 'error', 'critical') THEN
        v_problems := v_problems || format('severity %s is not one of info, warning, error, critical', coalesce(quote_literal(p_severity), 'NULL'));
    END IF;
    IF p_message IS NULL OR btrim(p_message) = '' THEN
        v_problems := v_problems || 'message is empty'::text;
    END IF;
    IF p_details IS NOT NULL AND jsonb_typeof(p_details) <> 'object' THEN
        v_problems := v_problems || format('details must be a JSON object, got %s', jsonb_typeof(p_details));
    END IF;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid performance alert'
            USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    INSERT INTO steward.performance_alerts (alert_type, severity, message, details)
    VALUES (p_alert_type, p_severity, p_message, coalesce(p_details, '{}'))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

CREATE FUNCTION steward.acknowledge_alert(p_alert_id uuid) RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v steward.performance_alerts;
BEGIN
    UPDATE steward.performance_alerts
       SET acknowledged_at = coalesce(acknowledged_at, now()),
           acknowledged_by = coalesce(acknowledged_by, steward.caller_uuid())
     WHERE id = p_alert_id
    RETURNING * INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION steward.resolve_alert(p_alert_id uuid, p_resolution_notes text DEFAULT NULL)
RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v steward.performance_alerts;
BEGIN
    UPDATE steward.performance_alerts
       SET acknowledged_at = coalesce(acknowledged_at, now()),
           acknowledged_by = coalesce(acknowledged_by, steward.caller_uuid()),
           resolved_at = coalesce(resolved_at, now()),
           resolved_by = coalesce(resolved_by, steward.caller_uuid()),
           resolution_notes = coalesce(p_resolution_notes, resolution_notes)
     WHERE id = p_alert_id
    RETURNING * INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

-- Raise alerts from the last hour's bloat snapshots: > 50 critical, > 35 error, > 20 warning.
-- Only snapshots whose estimate is trustworthy (confidence fresh or stale) count, and a table
-- with an open high_bloat alert of the same severity is not alerted again.
CREATE FUNCTION steward.check_table_bloat_alerts() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows integer;
BEGIN
    PERFORM steward._require_writable();
    WITH latest AS (
        SELECT DISTINCT ON (s.schemaname, s.tablename) s.*
          FROM steward.table_bloat_snapshots s
         WHERE s.snapshot_timestamp > now() - interval '1 hour'
           AND s.confidence <> 'unknown' AND s.bloat_ratio IS NOT NULL
         ORDER BY s.schemaname, s.tablename, s.snapshot_timestamp DESC
    ),
    graded AS (
        SELECT l.*, CASE WHEN l.bloat_ratio > 50 THEN 'critical'
                         WHEN l.bloat_ratio > 35 THEN 'error'
                         WHEN l.bloat_ratio > 20 THEN 'warning' END AS severity
          FROM latest l
    ),
    ins AS (
        INSERT INTO steward.performance_alerts (alert_type, severity, message, details)
        SELECT 'high_bloat', g.severity,
               format('Table %I.%I is %s%% bloat (%s of %s)', g.schemaname, g.tablename, round(g.bloat_ratio, 1),
                      pg_size_pretty(g.bloat_bytes), pg_size_pretty(g.actual_size_bytes)),
               jsonb_build_object('schemaname', g.schemaname, 'tablename', g.tablename, 'bloat_ratio', g.bloat_ratio,
                                  'bloat_bytes', g.bloat_bytes, 'actual_size_bytes', g.actual_size_bytes,
                                  'confidence', g.confidence, 'snapshot_id', g.id)
          FROM graded g
         WHERE g.severity IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM steward.performance_alerts a
                            WHERE a.alert_type = 'high_bloat' AND a.resolved_at IS NULL AND a.severity = g.severity
                              AND a.details ->> 'schemaname' = g.schemaname AND a.details ->> 'tablename' = g.tablename)
        RETURNING 1
    )
    SELECT count(*) INTO v_rows FROM ins;
    RETURN v_rows;
END
$$;
