-- The maintenance console of the seed (issue #16 item 6): history with filters and pages,
-- success statistics, and the operations on offer with their risk.

-- {operations, totalCount, page, pageSize, hasMore}, newest first.  Filters: type (VACUUM,
-- VACUUM FULL, ANALYZE, REINDEX), status (queued, running, completed, failed), table
-- (substring of the table name), initiator, refused (boolean), startDate, endDate (created_at).
CREATE FUNCTION steward.maintenance_history_filtered(filters jsonb DEFAULT '{}', page integer DEFAULT 1, page_size integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problems text[] := '{}';
    v_from timestamptz;
    v_to timestamptz;
    v_refused boolean;
    v_total bigint;
    v_rows jsonb;
    k text;
BEGIN
    PERFORM steward._check_page(page, page_size);
    filters := coalesce(filters, '{}');
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'filters must be a JSON object' USING ERRCODE = '22023', DETAIL = format('got %s', jsonb_typeof(filters));
    END IF;
    FOR k IN SELECT jsonb_object_keys(filters) LOOP
        IF k NOT IN ('type', 'status', 'table', 'initiator', 'refused', 'startDate', 'endDate') THEN
            v_problems := v_problems || format('unknown filter %s (type, status, table, initiator, refused, startDate, endDate)', quote_literal(k));
        ELSIF k = 'refused' AND jsonb_typeof(filters -> k) NOT IN ('boolean', 'null') THEN
            v_problems := v_problems || 'filter refused must be true or false'::text;
        ELSIF k <> 'refused' AND jsonb_typeof(filters -> k) NOT IN ('string', 'null') THEN
            v_problems := v_problems || format('filter %s must be a string', k);
        END IF;
    END LOOP;
    IF filters ->> 'type' IS NOT NULL AND filters ->> 'type' NOT IN ('VACUUM', 'VACUUM FULL', 'ANALYZE', 'REINDEX') THEN
        v_problems := v_problems || format('type %s is not one of VACUUM, VACUUM FULL, ANALYZE, REINDEX', quote_literal(filters ->> 'type'));
    END IF;
    IF filters ->> 'status' IS NOT NULL AND filters ->> 'status' NOT IN ('queued', 'running', 'completed', 'failed') THEN
        v_problems := v_problems || format('status %s is not one of queued, running, completed, failed', quote_literal(filters ->> 'status'));
    END IF;
    BEGIN
        v_from := (filters ->> 'startDate')::timestamptz;
        v_to := (filters ->> 'endDate')::timestamptz;
    EXCEPTION WHEN OTHERS THEN
        v_problems := v_problems || 'startDate and endDate must be ISO 8601 timestamps'::text;
    END;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid maintenance history filters' USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    v_refused := (filters ->> 'refused')::boolean;
    PERFORM steward._reap_maintenance();
    WITH m AS (
        SELECT o.* FROM steward.maintenance_operations o
         WHERE (filters ->> 'type' IS NULL OR o.operation_type OPERATOR(pg_catalog.=) (filters ->> 'type'))
           AND (filters ->> 'status' IS NULL OR o.status OPERATOR(pg_catalog.=) (filters ->> 'status'))
           AND (filters ->> 'table' IS NULL OR strpos(lower(o.table_name), lower(filters ->> 'table')) > 0)
           AND (filters ->> 'initiator' IS NULL OR o.initiator OPERATOR(pg_catalog.=) (filters ->> 'initiator'))
           AND (v_refused IS NULL OR o.refused OPERATOR(pg_catalog.=) v_refused)
           AND (v_from IS NULL OR o.created_at >= v_from)
           AND (v_to IS NULL OR o.created_at <= v_to)
    )
    SELECT (SELECT count(*) FROM m),
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at DESC, x.id), '[]')
              FROM (SELECT * FROM m ORDER BY m.created_at DESC, m.id OFFSET (page - 1)::bigint * page_size LIMIT page_size) x)
      INTO v_total, v_rows;
    RETURN jsonb_build_object('operations', v_rows, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', (page::bigint * page_size) < v_total);
END
$$;

-- Success statistics over [start_date, end_date] (created_at; null: unbounded): counts by
-- status, refusals, the success rate of finished operations, and per type the completed and
-- failed counts with average and longest duration.
CREATE FUNCTION steward.maintenance_statistics(start_date timestamptz DEFAULT NULL, end_date timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH m AS (
        SELECT o.* FROM steward.maintenance_operations o
         WHERE (start_date IS NULL OR o.created_at >= start_date) AND (end_date IS NULL OR o.created_at <= end_date)
    )
    SELECT jsonb_build_object(
        'total', count(*),
        'queued', count(*) FILTER (WHERE status = 'queued'),
        'running', count(*) FILTER (WHERE status = 'running'),
        'completed', count(*) FILTER (WHERE status = 'completed'),
        'failed', count(*) FILTER (WHERE status = 'failed' AND NOT refused),
        'refused', count(*) FILTER (WHERE refused),
        'successRate', CASE WHEN count(*) FILTER (WHERE status IN ('completed', 'failed') AND NOT refused) = 0 THEN NULL
                            ELSE round(100.0 * count(*) FILTER (WHERE status = 'completed')
                                       / count(*) FILTER (WHERE status IN ('completed', 'failed') AND NOT refused), 1) END,
        'totalDurationMs', coalesce(sum(duration_ms), 0),
        'byType', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'type', t.operation_type, 'completed', t.completed, 'failed', t.failed, 'refused', t.refused,
                                 'avgDurationMs', t.avg_ms, 'maxDurationMs', t.max_ms) ORDER BY t.operation_type)
                              FROM (SELECT operation_type,
                                           count(*) FILTER (WHERE status = 'completed') AS completed,
                                           count(*) FILTER (WHERE status = 'failed' AND NOT refused) AS failed,
                                           count(*) FILTER (WHERE refused) AS refused,
                                           round(avg(duration_ms) FILTER (WHERE status = 'completed'), 1) AS avg_ms,
                                           max(duration_ms) FILTER (WHERE status = 'completed') AS max_ms
                                      FROM m GROUP BY operation_type) t), '[]'),
        'from', start_date, 'to', end_date)
      FROM m
$$;

-- The operations on offer, with their risk and what they lock (the console's menu).
CREATE FUNCTION steward.maintenance_operations_available()
RETURNS TABLE (operation text, risk text, lock_mode text, blocks text, needs_confirmation text, runs text, description text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM (VALUES
        ('VACUUM', 'low', 'SHARE UPDATE EXCLUSIVE', 'other VACUUM/ANALYZE and DDL on the table; reads and writes go on',
         'never', 'in the caller''s request (async => true: in the background)',
         'Marks dead row versions reusable, updates the visibility map and freezes old rows.'),
        ('ANALYZE', 'low', 'SHARE UPDATE EXCLUSIVE', 'other VACUUM/ANALYZE and DDL on the table; reads and writes go on',
         'never', 'in the caller''s request (async => true: in the background)',
         'Refreshes the planner statistics (and the bloat estimates that depend on them).'),
        ('REINDEX CONCURRENTLY', 'medium', 'SHARE UPDATE EXCLUSIVE', 'DDL on the table; reads and writes go on (it waits for older transactions)',
         'never', 'always in the background',
         'Rebuilds an index (or every index of a table) without blocking writes; a failure leaves an invalid *_ccnew index to drop.'),
        ('REINDEX', 'high', 'SHARE on the table, ACCESS EXCLUSIVE on the index', 'writes to the table and reads that use the index',
         format('a whole table above maintenanceConfirmBytes (%s, indexes included); refused in the peak window unless force and confirm',
                pg_size_pretty(steward.setting_number('maintenanceConfirmBytes'))),
         'in the caller''s request (async => true: in the background)',
         'Rebuilds indexes from scratch; prefer REINDEX CONCURRENTLY on a live table.'),
        ('VACUUM FULL', 'high', 'ACCESS EXCLUSIVE', 'every read and write of the table for the whole rewrite',
         'always; refused in the peak window unless force and confirm', 'in the caller''s request (async => true: in the background)',
         'Rewrites the table and its indexes into new files, returning the space of dead rows to the operating system; needs free disk space for a copy.')
    ) AS o(operation, risk, lock_mode, blocks, needs_confirmation, runs, description)
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_maintenance_history_filtered', 'steward.maintenance_history_filtered(jsonb,integer,integer)', 'volatile', '{steward_admin,service_role}'),
    ('get_maintenance_statistics',       'steward.maintenance_statistics(timestamptz,timestamptz)',    'stable',   '{steward_admin,service_role}'),
    ('get_maintenance_operations',       'steward.maintenance_operations_available()',               'stable',   '{steward_admin,service_role}');
