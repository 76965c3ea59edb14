-- History, statistics, CSV export and rollback of configuration changes (CONTRACT §5, §7).
-- Everything here runs with the caller's rights: row-level security on the audit log decides
-- whose history a caller sees (their own configurations; admins all), and on the
-- configuration tables whose configuration they may roll back.

-- One entry as the clients read it; API keys masked for everyone but service_role.
CREATE FUNCTION steward._entry_json(e steward.configuration_audit_log, p_keys boolean) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'id', e.id, 'config_type', e.config_type, 'config_id', e.config_id, 'changed_by', e.changed_by,
        'changed_at', e.changed_at,
        'old_values', CASE WHEN p_keys OR e.config_type <> 'ai_config' THEN e.old_values ELSE steward._mask_api_keys(e.old_values) END,
        'new_values', CASE WHEN p_keys OR e.config_type <> 'ai_config' THEN e.new_values ELSE steward._mask_api_keys(e.new_values) END,
        'change_reason', e.change_reason, 'client_ip', host(e.client_ip), 'user_agent', e.user_agent,
        'action', e.action, 'actor', e.actor, 'rollback_of', e.rollback_of, 'seq', e.seq)
$$;

CREATE FUNCTION steward._check_page(p_page integer, p_page_size integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_page IS NULL OR p_page < 1 THEN
        RAISE EXCEPTION 'page must be 1 or more' USING ERRCODE = '22023', DETAIL = format('page was %s.', coalesce(p_page::text, 'NULL'));
    END IF;
    IF p_page_size IS NULL OR p_page_size < 1 OR p_page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000' USING ERRCODE = '22023',
              DETAIL = format('page_size was %s.', coalesce(p_page_size::text, 'NULL'));
    END IF;
END
$$;

-- The history of one configuration, newest first.
CREATE FUNCTION steward.change_history(config_type text, config_id uuid, page integer DEFAULT 1,
                                       page_size integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keys boolean := steward._sees_api_keys();
    v_total bigint;
    v_entries jsonb;
BEGIN
    PERFORM steward._check_page(page, page_size);
    SELECT count(*) INTO v_total FROM steward.configuration_audit_log l
     WHERE l.config_id = change_history.config_id AND l.config_type = change_history.config_type;
    SELECT coalesce(jsonb_agg(steward._entry_json(p.e, v_keys) ORDER BY p.seq DESC), '[]') INTO v_entries
      FROM (SELECT x AS e, x.seq FROM steward.configuration_audit_log x
             WHERE x.config_id = change_history.config_id AND x.config_type = change_history.config_type
             ORDER BY x.seq DESC OFFSET (page - 1)::bigint * page_size LIMIT page_size) p;
    RETURN jsonb_build_object('entries', v_entries, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', page::bigint * page_size < v_total);
END
$$;

-- Filters: configType, configId, changedBy, startDate, endDate, searchText (text in the reason).
-- Unknown keys and unreadable values are refused (22023) rather than silently ignored.
CREATE FUNCTION steward._history_filter(filters jsonb,
    OUT config_type text, OUT config_id uuid, OUT changed_by uuid, OUT start_date timestamptz,
    OUT end_date timestamptz, OUT pattern text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text[];
BEGIN
    IF filters IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'filters must be a JSON object' USING ERRCODE = '22023',
              DETAIL = format('The value given is %s.', jsonb_typeof(filters));
    END IF;
    SELECT array_agg(k ORDER BY k) INTO v_unknown FROM jsonb_object_keys(filters) k
     WHERE k NOT IN ('configType', 'configId', 'changedBy', 'startDate', 'endDate', 'searchText');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown filter %', array_to_string(v_unknown, ', ') USING ERRCODE = '22023',
              HINT = 'Filters are configType, configId, changedBy, startDate, endDate and searchText.';
    END IF;
    BEGIN
        config_type := nullif(filters ->> 'configType', '');
        config_id := nullif(filters ->> 'configId', '')::uuid;
        changed_by := nullif(filters ->> 'changedBy', '')::uuid;
        start_date := nullif(filters ->> 'startDate', '')::timestamptz;
        end_date := nullif(filters ->> 'endDate', '')::timestamptz;
    EXCEPTION WHEN invalid_text_representation OR datetime_field_overflow OR invalid_datetime_format THEN
        RAISE EXCEPTION 'unreadable filter value' USING ERRCODE = '22023', DETAIL = SQLERRM,
              HINT = 'configId and changedBy are uuids, startDate and endDate ISO 8601 timestamps.';
    END;
    IF nullif(filters ->> 'searchText', '') IS NOT NULL THEN
        -- ILIKE pattern with the user's text taken literally.
        pattern := '%' || replace(replace(replace(filters ->> 'searchText', '\', '\\'), '%', '\%'), '_', '\_') || '%';
    END IF;
END
$$;

CREATE FUNCTION steward.change_history_filtered(filters jsonb DEFAULT '{}', page integer DEFAULT 1,
                                                page_size integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record := steward._history_filter(filters);
    v_keys boolean := steward._sees_api_keys();
    v_total bigint;
    v_entries jsonb;
BEGIN
    PERFORM steward._check_page(page, page_size);
    SELECT count(*) INTO v_total FROM steward.configuration_audit_log l
     WHERE (f.config_type IS NULL OR l.config_type = f.config_type) AND (f.config_id IS NULL OR l.config_id = f.config_id)
       AND (f.changed_by IS NULL OR l.changed_by = f.changed_by)
       AND (f.start_date IS NULL OR l.changed_at >= f.start_date) AND (f.end_date IS NULL OR l.changed_at <= f.end_date)
       AND (f.pattern IS NULL OR l.change_reason ILIKE f.pattern);
    SELECT coalesce(jsonb_agg(steward._entry_json(p.e, v_keys) ORDER BY p.changed_at DESC, p.seq DESC), '[]') INTO v_entries
      FROM (SELECT l AS e, l.changed_at, l.seq FROM steward.configuration_audit_log l
             WHERE (f.config_type IS NULL OR l.config_type = f.config_type) AND (f.config_id IS NULL OR l.config_id = f.config_id)
               AND (f.changed_by IS NULL OR l.changed_by = f.changed_by)
               AND (f.start_date IS NULL OR l.changed_at >= f.start_date) AND (f.end_date IS NULL OR l.changed_at <= f.end_date)
               AND (f.pattern IS NULL OR l.change_reason ILIKE f.pattern)
             ORDER BY l.changed_at DESC, l.seq DESC OFFSET (page - 1)::bigint * page_size LIMIT page_size) p;
    RETURN jsonb_build_object('entries', v_entries, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', page::bigint * page_size < v_total);
END
$$;

-- Statistics over a date range (default: everything).
CREATE FUNCTION steward.change_statistics(start_date timestamptz DEFAULT NULL, end_date timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH e AS (
        SELECT l.config_type, l.config_id, coalesce(l.changed_by::text, l.actor) AS who, l.changed_at
          FROM steward.configuration_audit_log l
         WHERE (start_date IS NULL OR l.changed_at >= start_date) AND (end_date IS NULL OR l.changed_at <= end_date)
    )
    SELECT jsonb_build_object(
        'totalChanges', (SELECT count(*) FROM e),
        'changesByType', coalesce((SELECT jsonb_object_agg(t.config_type, t.n) FROM
                            (SELECT e.config_type, count(*) AS n FROM e GROUP BY 1) t), '{}'),
        'changesByUser', coalesce((SELECT jsonb_object_agg(t.who, t.n) FROM
                            (SELECT e.who, count(*) AS n FROM e GROUP BY 1) t), '{}'),
        'recentActivity', (SELECT jsonb_agg(jsonb_build_object('date', d.day::date, 'count',
                                (SELECT count(*) FROM e WHERE e.changed_at >= d.day AND e.changed_at < d.day + interval '1 day'))
                                ORDER BY d.day)
                             FROM generate_series(date_trunc('day', now()) - interval '6 days', date_trunc('day', now()),
                                                  interval '1 day') AS d(day)),
        'mostChangedConfigs', coalesce((SELECT jsonb_agg(jsonb_build_object('configId', t.config_id, 'configType', t.config_type,
                                                                            'changeCount', t.n) ORDER BY t.n DESC, t.config_id)
                                          FROM (SELECT e.config_id, e.config_type, count(*) AS n FROM e
                                                 WHERE e.config_id IS NOT NULL GROUP BY 1, 2
                                                 ORDER BY 3 DESC, 1 LIMIT 10) t), '[]'))
$$;

-- RFC 4180 CSV of the filtered history (newest first), header
-- ID,Config Type,Config ID,Changed By,Changed At,Change Reason; formula cells neutralised.
CREATE FUNCTION steward.change_history_csv(filters jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record := steward._history_filter(filters);
    v_rows jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_array(l.id::text, l.config_type, l.config_id::text,
                                                coalesce(l.changed_by::text, l.actor),
                                                to_char(l.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                                l.change_reason)
                              ORDER BY l.changed_at DESC, l.seq DESC), '[]')
      INTO v_rows
      FROM steward.configuration_audit_log l
     WHERE (f.config_type IS NULL OR l.config_type = f.config_type) AND (f.config_id IS NULL OR l.config_id = f.config_id)
       AND (f.changed_by IS NULL OR l.changed_by = f.changed_by)
       AND (f.start_date IS NULL OR l.changed_at >= f.start_date) AND (f.end_date IS NULL OR l.changed_at <= f.end_date)
       AND (f.pattern IS NULL OR l.change_reason ILIKE f.pattern);
    RETURN steward._csv(ARRAY['ID', 'Config Type', 'Config ID', 'Changed By', 'Changed At', 'Change Reason'], v_rows);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Rollback: restoring entry E's old_values.
-- ---------------------------------------------------------------------------------------

-- The entry, its table's registration, the configuration's current document (locked when
-- p_lock) and the newest entry of that configuration.  P0002 when the entry is not visible
-- to the caller or the configuration no longer exists.
-- _rollback_target, _rollback_errors and rollback() carry no SET clause: they run inside
-- functions that pin search_path (or only call such functions, schema-qualified), and a
-- SET clause costs a GUC save and restore and a plan revalidation on every call.
CREATE FUNCTION steward._rollback_target(p_audit_id uuid, p_lock boolean,
    OUT entry steward.configuration_audit_log, OUT tbl regclass, OUT key_column name, OUT document_column name,
    OUT current_values jsonb, OUT newest uuid)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    SELECT l.* INTO entry FROM steward.configuration_audit_log l WHERE l.id = p_audit_id;
    IF entry.id IS NULL AND steward._audit_entry_exists(p_audit_id) THEN
        RAISE EXCEPTION 'permission denied to roll back audit entry %', p_audit_id USING ERRCODE = '42501',
              HINT = 'A user may roll back only their own configuration.';
    END IF;
    IF entry.id IS NULL THEN
        RAISE EXCEPTION 'audit entry % not found', coalesce(p_audit_id::text, 'NULL') USING ERRCODE = 'P0002',
              HINT = 'change_history() lists the entries you may see.';
    END IF;
    IF entry.config_id IS NULL THEN
        RAISE EXCEPTION 'a TRUNCATE entry cannot be rolled back' USING ERRCODE = '22023',
              HINT = 'Restore a configuration backup (steward.config_restore) instead.';
    END IF;
    SELECT a.relid, a.key_column, a.document_column INTO tbl, key_column, document_column
      FROM steward.audited_tables a WHERE a.relid = entry.relid;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'the table of audit entry % is no longer audited', p_audit_id USING ERRCODE = '55000';
    END IF;
    -- Prepared once per backend and table (src/rollback): P0002 when the row is gone.
    current_values := steward._rollback_read(tbl, key_column, document_column, entry.config_id, p_lock);
    SELECT l.id INTO newest FROM steward.configuration_audit_log l
     WHERE l.config_id = entry.config_id ORDER BY l.seq DESC LIMIT 1;
END
$$;

-- Whether an entry exists at all (an entry the caller may not read is 42501, not 404).
CREATE FUNCTION steward._audit_entry_exists(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM steward.configuration_audit_log l WHERE l.id = p_id)
$$;

CREATE FUNCTION steward._rollback_warnings(p_diff jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
    SELECT array_remove(ARRAY[
        CASE WHEN jsonb_array_length(p_diff -> 'removed') > 0
             THEN format('%s configuration keys will be removed', jsonb_array_length(p_diff -> 'removed')) END,
        CASE WHEN jsonb_array_length(p_diff -> 'added') > 0
             THEN format('%s new configuration keys will be added', jsonb_array_length(p_diff -> 'added')) END,
        CASE WHEN jsonb_array_length(p_diff -> 'removed') + jsonb_array_length(p_diff -> 'added')
                  + jsonb_array_length(p_diff -> 'modified') > 10
             THEN format('%s configuration keys will change', jsonb_array_length(p_diff -> 'removed')
                         + jsonb_array_length(p_diff -> 'added') + jsonb_array_length(p_diff -> 'modified')) END
    ], NULL)
$$;

-- The problems of restoring a document: the validator of its kind (none for other kinds).
CREATE FUNCTION steward._rollback_errors(p_config_type text, p_doc jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_doc IS NULL THEN
        RETURN ARRAY['the entry created the configuration: there is no earlier state to restore'];
    END IF;
    RETURN CASE p_config_type
        WHEN 'ai_config' THEN steward.validate_ai_config(p_doc)
        WHEN 'user_preference' THEN steward.validate_user_preferences(p_doc)
        ELSE CASE WHEN jsonb_typeof(p_doc) = 'object' THEN '{}'::text[] ELSE ARRAY['the document is not a JSON object'] END
    END;
END
$$;

CREATE FUNCTION steward._may_roll_back(e steward.configuration_audit_log) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT steward._config_admin() OR (e.owner_id IS NOT NULL AND e.owner_id = steward.caller_uuid())
$$;

CREATE FUNCTION steward.rollback_preview(audit_id uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record := steward._rollback_target(audit_id, false);
    v_keys boolean := steward._sees_api_keys();
    v_diff jsonb;
    v_mask boolean;
BEGIN
    v_mask := NOT v_keys AND (t.entry).config_type = 'ai_config';
    v_diff := steward.config_diff(coalesce(t.current_values, '{}'), coalesce((t.entry).old_values, '{}'));
    RETURN jsonb_build_object(
        'targetVersion', steward._entry_json(t.entry, v_keys),
        'currentValues', CASE WHEN v_mask THEN steward._mask_api_keys(t.current_values) ELSE t.current_values END,
        'targetValues', CASE WHEN v_mask THEN steward._mask_api_keys((t.entry).old_values) ELSE (t.entry).old_values END,
        'diff', CASE WHEN v_mask THEN steward.config_diff(steward._mask_api_keys(coalesce(t.current_values, '{}')),
                                                          steward._mask_api_keys(coalesce((t.entry).old_values, '{}')))
                     ELSE v_diff END,
        'warnings', to_jsonb(steward._rollback_warnings(v_diff)),
        'currentVersionId', t.newest);
END
$$;

CREATE FUNCTION steward.rollback_validate(audit_id uuid, confirm_warnings boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record := steward._rollback_target(audit_id, false);
    v_errors text[];
    v_warnings text[];
BEGIN
    v_errors := steward._rollback_errors((t.entry).config_type, (t.entry).old_values);
    IF NOT steward._may_roll_back(t.entry) THEN
        v_errors := v_errors || 'you may roll back only your own configuration'::text;
    END IF;
    v_warnings := steward._rollback_warnings(steward.config_diff(coalesce(t.current_values, '{}'),
                                                                 coalesce((t.entry).old_values, '{}')));
    RETURN jsonb_build_object('isValid', cardinality(v_errors) = 0 AND (cardinality(v_warnings) = 0 OR coalesce(confirm_warnings, false)),
                              'errors', to_jsonb(v_errors), 'warnings', to_jsonb(v_warnings));
END
$$;

-- Apply one rollback inside the caller's transaction (the configuration row is locked).
CREATE FUNCTION steward._rollback_apply(p_audit_id uuid, p_reason text, p_expected uuid, p_check_only boolean)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record := steward._rollback_target(p_audit_id, true);
    v_errors text[];
    v_new uuid;
    v_reason text;
    v_prev_reason text := current_setting('steward.change_reason', true);
    v_ignored text;
BEGIN
    IF NOT p_check_only THEN
        PERFORM steward._require_writable();
    END IF;
    IF NOT steward._may_roll_back(t.entry) THEN
        RAISE EXCEPTION 'permission denied to roll back configuration %', (t.entry).config_id USING ERRCODE = '42501',
              HINT = 'A user may roll back only their own configuration.';
    END IF;
    IF p_expected IS NOT NULL AND p_expected IS DISTINCT FROM t.newest THEN
        RAISE EXCEPTION 'configuration % changed since the preview', (t.entry).config_id USING ERRCODE = '40001',
              DETAIL = format('Expected version %s, the newest is now %s.', p_expected, t.newest),
              HINT = 'Preview the rollback again and confirm.';
    END IF;
    v_errors := steward._rollback_errors((t.entry).config_type, (t.entry).old_values);
    IF cardinality(v_errors) > 0 THEN
        RAISE EXCEPTION 'the state to restore is not valid' USING ERRCODE = '22023',
              DETAIL = array_to_string(v_errors, E'\n');
    END IF;
    IF p_check_only THEN
        RETURN NULL;
    END IF;
    v_reason := coalesce(p_reason, format('rollback to the state before %s', p_audit_id));
    -- Assignments, not PERFORM: PL/pgSQL evaluates them as simple expressions, without SPI.
    v_ignored := set_config('steward.change_reason', v_reason, true);
    v_ignored := set_config('steward.rollback_of', p_audit_id::text, true);
    PERFORM steward._rollback_write(t.tbl, t.key_column, t.document_column, (t.entry).config_id, (t.entry).old_values);
    v_ignored := set_config('steward.rollback_of', '', true);
    v_ignored := set_config('steward.change_reason', coalesce(v_prev_reason, ''), true);
    SELECT l.id INTO v_new FROM steward.configuration_audit_log l
     WHERE l.config_id = (t.entry).config_id ORDER BY l.seq DESC LIMIT 1;
    RETURN v_new;
END
$$;

CREATE FUNCTION steward.rollback(audit_id uuid, reason text DEFAULT NULL, expected_version uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM steward._require_writable();
    RETURN steward._rollback_apply(audit_id, reason, expected_version, false);
END
$$;

-- All or nothing: every item is checked (existence, permission, validity) before any is
-- applied; the problems of all failing items are listed together.
CREATE FUNCTION steward.rollback_bulk(audit_ids uuid[], reason text DEFAULT NULL) RETURNS uuid[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
    v_problems text[] := '{}';
    v_out uuid[] := '{}';
BEGIN
    PERFORM steward._require_writable();
    IF audit_ids IS NULL OR cardinality(audit_ids) = 0 THEN
        RAISE EXCEPTION 'audit_ids must list at least one entry' USING ERRCODE = '22023';
    END IF;
    IF cardinality(audit_ids) > 10000 THEN
        RAISE EXCEPTION 'at most 10000 entries per bulk rollback' USING ERRCODE = '22023';
    END IF;
    FOREACH v_id IN ARRAY audit_ids LOOP
        BEGIN
            PERFORM steward._rollback_apply(v_id, reason, NULL, true);
        EXCEPTION WHEN OTHERS THEN
            v_problems := v_problems || format('%s: %s (%s)', coalesce(v_id::text, 'NULL'), SQLERRM, SQLSTATE);
        END;
    END LOOP;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION '% of % rollbacks cannot be applied; nothing was changed', cardinality(v_problems), cardinality(audit_ids)
              USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, E'\n');
    END IF;
    FOREACH v_id IN ARRAY audit_ids LOOP
        v_out := v_out || steward._rollback_apply(v_id, reason, NULL, false);
    END LOOP;
    RETURN v_out;
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('config_diff',             'steward.config_diff(jsonb,jsonb)',                    'stable',   '{steward_admin,service_role,authenticated}'),
    ('change_history',          'steward.change_history(text,uuid,integer,integer)',   'stable',   '{steward_admin,service_role,authenticated}'),
    ('change_history_filtered', 'steward.change_history_filtered(jsonb,integer,integer)', 'stable', '{steward_admin,service_role,authenticated}'),
    ('change_statistics',       'steward.change_statistics(timestamptz,timestamptz)',  'stable',   '{steward_admin,service_role,authenticated}'),
    ('change_history_csv',      'steward.change_history_csv(jsonb)',                   'stable',   '{steward_admin,service_role,authenticated}'),
    ('rollback_preview',        'steward.rollback_preview(uuid)',                      'volatile', '{steward_admin,service_role,authenticated}'),
    ('rollback_validate',       'steward.rollback_validate(uuid,boolean)',             'volatile', '{steward_admin,service_role,authenticated}'),
    ('rollback_configuration',  'steward.rollback(uuid,text,uuid)',                    'volatile', '{steward_admin,service_role,authenticated}'),
    ('rollback_bulk',           'steward.rollback_bulk(uuid[],text)',                  'volatile', '{steward_admin,service_role,authenticated}'),
    ('audit_verify',            'steward.audit_verify(uuid)',                          'stable',   '{steward_admin,service_role}');
