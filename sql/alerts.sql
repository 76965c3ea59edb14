-- Alerts (CONTRACT §2).

CREATE FUNCTION steward.create_performance_alert(
    p_alert_type text, p_severity text, p_message text, p_details jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row steward.performance_alerts;
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
    INSERT INTO steward.performance_alerts (alert_type, severity, message, details, severity_history)
    VALUES (p_alert_type, p_severity, p_message, coalesce(p_details, '{}'),
            jsonb_build_array(jsonb_build_object('severity', p_severity, 'at', now())))
    RETURNING * INTO v_row;
    PERFORM steward._alert_notify('opened', v_row);
    RETURN v_row.id;
END
$$;

CREATE FUNCTION steward._acknowledge_alert_impl(p_alert_id uuid) RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v steward.performance_alerts;
BEGIN
    PERFORM steward._require_writable();
    UPDATE steward.performance_alerts
       SET acknowledged_at = now(), acknowledged_by = steward.caller_uuid()
     WHERE id = p_alert_id AND acknowledged_at IS NULL
    RETURNING * INTO v;
    IF FOUND THEN
        PERFORM steward._alert_notify('acknowledged', v);
        RETURN v;
    END IF;
    SELECT * INTO v FROM steward.performance_alerts WHERE id = p_alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.acknowledge_alert(p_alert_id uuid) RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.performance_alerts;
    a jsonb := jsonb_build_object('alertId', p_alert_id);
BEGIN
    r := steward._acknowledge_alert_impl(p_alert_id);
    PERFORM steward._admin_logged('steward.acknowledge_alert', a, jsonb_build_object('rule', r.rule_id, 'severity', r.severity, 'object', r.object_name));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.acknowledge_alert', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._resolve_alert_impl(p_alert_id uuid, p_resolution_notes text DEFAULT NULL)
RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v steward.performance_alerts;
BEGIN
    PERFORM steward._require_writable();
    UPDATE steward.performance_alerts
       SET acknowledged_at = coalesce(acknowledged_at, now()),
           acknowledged_by = coalesce(acknowledged_by, steward.caller_uuid()),
           resolved_at = now(),
           resolved_by = steward.caller_uuid(),
           resolution_notes = coalesce(p_resolution_notes, resolution_notes)
     WHERE id = p_alert_id AND resolved_at IS NULL
    RETURNING * INTO v;
    IF FOUND THEN
        PERFORM steward._alert_notify('resolved', v);
        RETURN v;
    END IF;
    SELECT * INTO v FROM steward.performance_alerts WHERE id = p_alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.resolve_alert(p_alert_id uuid, p_resolution_notes text DEFAULT NULL)
RETURNS steward.performance_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.performance_alerts;
    a jsonb := jsonb_build_object('alertId', p_alert_id, 'notes', left(p_resolution_notes, 1000));
BEGIN
    r := steward._resolve_alert_impl(p_alert_id, p_resolution_notes);
    PERFORM steward._admin_logged('steward.resolve_alert', a, jsonb_build_object('rule', r.rule_id, 'severity', r.severity, 'object', r.object_name));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.resolve_alert', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Raise alerts from the last hour's bloat snapshots: > 50 critical, > 35 error, > 20 warning.
-- Only snapshots whose estimate is trustworthy (confidence fresh or stale) count.  A table
-- has one open high_bloat alert (the fingerprint check_alerts() uses too): an open one is
-- updated (its severity follows the snapshot), a new one is inserted; both are announced on
-- steward_alerts.  Returns the number of alerts inserted.
CREATE FUNCTION steward.check_table_bloat_alerts() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows integer := 0;
    t record;
    a steward.performance_alerts;
BEGIN
    PERFORM steward._require_writable();
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward check_alerts'));
    FOR t IN
        WITH latest AS (
            SELECT DISTINCT ON (s.schemaname, s.tablename) s.*
              FROM steward.table_bloat_snapshots s
             WHERE s.snapshot_timestamp > now() - interval '1 hour'
               AND s.confidence <> 'unknown' AND s.bloat_ratio IS NOT NULL
             ORDER BY s.schemaname, s.tablename, s.snapshot_timestamp DESC
        ),
        graded AS (
            SELECT l.*, 'high_bloat:' || format('%I.%I', l.schemaname, l.tablename) AS fingerprint,
                   CASE WHEN l.bloat_ratio > 50 THEN 'critical'
                        WHEN l.bloat_ratio > 35 THEN 'error'
                        WHEN l.bloat_ratio > 20 THEN 'warning' END AS severity,
                   format('Table %I.%I is %s%% bloat (%s of %s)', l.schemaname, l.tablename, round(l.bloat_ratio, 1),
                          pg_size_pretty(l.bloat_bytes), pg_size_pretty(l.actual_size_bytes)) AS message,
                   jsonb_build_object('schemaname', l.schemaname, 'tablename', l.tablename, 'bloat_ratio', l.bloat_ratio,
                                      'bloat_bytes', l.bloat_bytes, 'actual_size_bytes', l.actual_size_bytes,
                                      'confidence', l.confidence, 'snapshot_id', l.id) AS details,
                   (SELECT p.severity FROM steward.performance_alerts p
                     WHERE p.resolved_at IS NULL AND p.fingerprint = 'high_bloat:' || format('%I.%I', l.schemaname, l.tablename)) AS previous
              FROM latest l
        ),
        upd AS (
            UPDATE steward.performance_alerts p
               SET severity = g.severity, message = g.message, details = g.details, current_value = g.bloat_ratio,
                   occurrences = p.occurrences + 1, last_seen_at = now(), clear_checks = 0,
                   -- Escalation wakes an acknowledged alert (as in check_alerts()).
                   acknowledged_at = CASE WHEN steward._severity_rank(g.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_at END,
                   acknowledged_by = CASE WHEN steward._severity_rank(g.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_by END,
                   severity_history = CASE WHEN p.severity = g.severity THEN p.severity_history
                                           ELSE p.severity_history || jsonb_build_array(jsonb_build_object('severity', g.severity, 'at', now(), 'value', g.bloat_ratio)) END
              FROM graded g
             WHERE g.severity IS NOT NULL AND p.resolved_at IS NULL AND p.fingerprint = g.fingerprint
            RETURNING p.id, p.severity, g.previous
        ),
        ins AS (
            INSERT INTO steward.performance_alerts (alert_type, severity, message, details, rule_id, fingerprint, object_kind, object_name,
                                                    current_value, severity_history)
            SELECT 'high_bloat', g.severity, g.message, g.details, 'high_bloat', g.fingerprint, 'table', format('%I.%I', g.schemaname, g.tablename),
                   g.bloat_ratio, jsonb_build_array(jsonb_build_object('severity', g.severity, 'at', now(), 'value', g.bloat_ratio))
              FROM graded g
             WHERE g.severity IS NOT NULL AND g.previous IS NULL
               -- Alerts of pg_steward 0.1.0 (no fingerprint): not alerted again at the same severity.
               AND NOT EXISTS (SELECT 1 FROM steward.performance_alerts p
                                WHERE p.fingerprint IS NULL AND p.alert_type = 'high_bloat' AND p.resolved_at IS NULL AND p.severity = g.severity
                                  AND p.details ->> 'schemaname' = g.schemaname AND p.details ->> 'tablename' = g.tablename)
            RETURNING id
        )
        SELECT 'opened' AS event, i.id, NULL::text AS previous FROM ins i
        UNION ALL
        SELECT CASE WHEN steward._severity_rank(u.severity) > steward._severity_rank(u.previous) THEN 'escalated' ELSE 'deescalated' END,
               u.id, u.previous
          FROM upd u WHERE u.severity <> u.previous
    LOOP
        IF t.event = 'opened' THEN
            v_rows := v_rows + 1;
        END IF;
        SELECT * INTO a FROM steward.performance_alerts WHERE id = t.id;
        IF t.event <> 'deescalated' OR a.acknowledged_at IS NULL THEN
            PERFORM steward._alert_notify(t.event, a, t.previous);
        END IF;
    END LOOP;
    RETURN v_rows;
END
$$;
