-- The admin log (issue #16 item 6): one row per admin action — settings and alert rules
-- changed, alerts acknowledged and resolved, maintenance, retention policies and runs, history
-- and audit purges, configuration backups and restores, migrations added, applied and rolled
-- back, jobs scheduled — written by the actions' entry points (src/audit/admin_log.rs), also
-- when the action fails.  Append-only: nobody is granted INSERT, UPDATE or DELETE, and the
-- trigger refuses updates and deletions of rows younger than adminLogRetentionDays (purge_history()
-- removes the older ones).

CREATE TABLE steward.admin_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor       text NOT NULL,        -- the database role behind the action ("login/role" when they differ)
    actor_uuid  uuid,                 -- the JWT subject of an API request
    jwt_role    text,
    client_ip   text,
    user_agent  text,
    action      text NOT NULL,        -- the entry point, e.g. steward.set_setting
    arguments   jsonb NOT NULL DEFAULT '{}',
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'error')),
    sqlstate    text,
    message     text,
    result      jsonb
);
CREATE INDEX admin_log_at ON steward.admin_log (at);
CREATE INDEX admin_log_action ON steward.admin_log (action, at);
SELECT pg_catalog.pg_extension_config_dump('steward.admin_log', '');

-- Arguments and results above 8 kB are replaced by a note of their size.
CREATE FUNCTION steward._admin_log_capped(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN pg_catalog.octet_length(v::text) > 8192
                  THEN pg_catalog.jsonb_build_object('truncated', true, 'bytes', pg_catalog.octet_length(v::text)) ELSE v END $$;

-- The action returned: its row, in the caller's transaction.  Owner-only.
CREATE FUNCTION steward._admin_logged(p_action text, p_arguments jsonb, p_result jsonb) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO steward.admin_log (actor, actor_uuid, jwt_role, client_ip, user_agent, action, arguments, outcome, result)
    SELECT i ->> 'actor', (i ->> 'actor_uuid')::uuid, i ->> 'jwt_role', i ->> 'client_ip', i ->> 'user_agent',
           pg_catalog.left(p_action, 200), coalesce(steward._admin_log_capped(p_arguments), '{}'), 'ok',
           steward._admin_log_capped(p_result)
      FROM steward._request_identity() i
$$;

-- The action raised: its row, written by a worker in a transaction of its own (it outlives the
-- rollback).  Owner-only.
CREATE FUNCTION steward._admin_log_failed(p_action text, p_arguments jsonb, p_sqlstate text, p_message text) RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT steward._admin_log_submit((steward._request_identity() || pg_catalog.jsonb_build_object(
        'action', pg_catalog.left(p_action, 200), 'arguments', coalesce(steward._admin_log_capped(p_arguments), '{}'),
        'outcome', 'error', 'sqlstate', p_sqlstate, 'message', pg_catalog.left(p_message, 2000)))::text)
$$;

CREATE FUNCTION steward._admin_log_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.at < now() - make_interval(days => steward.setting_number('adminLogRetentionDays')::integer) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'steward.admin_log is append-only'
        USING ERRCODE = '42501',
              DETAIL = CASE TG_OP WHEN 'DELETE' THEN 'Rows younger than adminLogRetentionDays cannot be deleted.'
                                  ELSE format('%s is not allowed.', TG_OP) END;
END
$$;

CREATE TRIGGER admin_log_append_only BEFORE UPDATE OR DELETE ON steward.admin_log
    FOR EACH ROW EXECUTE FUNCTION steward._admin_log_guard();
CREATE TRIGGER admin_log_no_truncate BEFORE TRUNCATE ON steward.admin_log
    FOR EACH STATEMENT EXECUTE FUNCTION steward._admin_log_guard();

-- Admins read the log: {entries, totalCount, page, pageSize, hasMore}, newest first.  Filters:
-- actor (exact), action (exact, e.g. steward.set_setting), outcome (ok | error), search
-- (substring of the arguments or message), startDate, endDate.
CREATE FUNCTION steward.admin_log_list(filters jsonb DEFAULT '{}', page integer DEFAULT 1, page_size integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problems text[] := '{}';
    v_from timestamptz;
    v_to timestamptz;
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
        IF k NOT IN ('actor', 'action', 'outcome', 'search', 'startDate', 'endDate') THEN
            v_problems := v_problems || format('unknown filter %s (actor, action, outcome, search, startDate, endDate)', quote_literal(k));
        ELSIF jsonb_typeof(filters -> k) NOT IN ('string', 'null') THEN
            v_problems := v_problems || format('filter %s must be a string', k);
        END IF;
    END LOOP;
    IF filters ->> 'outcome' IS NOT NULL AND filters ->> 'outcome' NOT IN ('ok', 'error') THEN
        v_problems := v_problems || format('outcome %s is not ok or error', quote_literal(filters ->> 'outcome'));
    END IF;
    BEGIN
        v_from := (filters ->> 'startDate')::timestamptz;
        v_to := (filters ->> 'endDate')::timestamptz;
    EXCEPTION WHEN OTHERS THEN
        v_problems := v_problems || 'startDate and endDate must be ISO 8601 timestamps'::text;
    END;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid admin log filters' USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    WITH m AS (
        SELECT l.* FROM steward.admin_log l
         WHERE (filters ->> 'actor' IS NULL OR l.actor OPERATOR(pg_catalog.=) (filters ->> 'actor'))
           AND (filters ->> 'action' IS NULL OR l.action OPERATOR(pg_catalog.=) (filters ->> 'action'))
           AND (filters ->> 'outcome' IS NULL OR l.outcome OPERATOR(pg_catalog.=) (filters ->> 'outcome'))
           AND (filters ->> 'search' IS NULL
                OR strpos(lower(l.arguments::text || ' ' || coalesce(l.message, '')), lower(filters ->> 'search')) > 0)
           AND (v_from IS NULL OR l.at >= v_from)
           AND (v_to IS NULL OR l.at <= v_to)
    )
    SELECT (SELECT count(*) FROM m),
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.at DESC, x.id DESC), '[]')
              FROM (SELECT * FROM m ORDER BY m.at DESC, m.id DESC OFFSET (page - 1)::bigint * page_size LIMIT page_size) x)
      INTO v_total, v_rows;
    RETURN jsonb_build_object('entries', v_rows, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', (page::bigint * page_size) < v_total);
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_admin_log', 'steward.admin_log_list(jsonb,integer,integer)', 'stable', '{steward_admin,service_role}');
