-- Maintenance that really runs (CONTRACT §3).
--
-- PostgreSQL refuses VACUUM and REINDEX CONCURRENTLY inside a function or transaction block,
-- so the functions here only authorise, check and hand the request over: a dynamic
-- background worker (src/maintenance) records it in its own transaction, runs the statement
-- as a top-level utility command outside any transaction block, and records the outcome.
-- A caller whose transaction rolls back still leaves the record.

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('maintenancePeakStartHour',        '9',     0, 24,   'Start of the peak window (server time, hour 0-24) in which VACUUM FULL and non-concurrent REINDEX are refused unless forced'),
    ('maintenancePeakEndHour',          '17',    0, 24,   'End of the peak window (server time, hour 0-24); equal start and end disable the window'),
    ('maintenanceStatementTimeoutSeconds', '300', 1, NULL, 'Each maintenance statement is cancelled after this many seconds'),
    ('maintenanceLockTimeoutSeconds',   '5',     0, NULL, 'A maintenance statement gives up waiting for a lock after this many seconds (0: wait)'),
    ('maintenanceRateLimitPerMinute',   '10',    1, NULL, 'At most this many maintenance operations a minute per initiator'),
    ('maintenanceConfirmBytes',         '104857600', 0, NULL, 'A non-concurrent REINDEX of a table larger than this (bytes, indexes included) needs confirm => true');

-- The history (seed columns first).  Dumped with the database: it is operational history.
CREATE TABLE steward.maintenance_operations (
    id               uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    operation_type   text NOT NULL CHECK (operation_type IN ('VACUUM', 'VACUUM FULL', 'ANALYZE', 'REINDEX')),
    table_name       text,
    index_name       text,
    started_at       timestamptz,
    completed_at     timestamptz,
    duration_ms      bigint CHECK (duration_ms >= 0),
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    initiated_by     uuid,
    error_message    text,
    options          jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- beyond the seed
    relid            oid,
    indexrelid       oid,
    initiator        text,
    client_ip        text,
    user_agent       text,
    refused          boolean NOT NULL DEFAULT false,
    error_sqlstate   text,
    error_detail     text,
    error_hint       text,
    worker_pid       integer,
    worker_started_at timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('steward.maintenance_operations', '');
CREATE INDEX maintenance_operations_created_idx ON steward.maintenance_operations (created_at DESC);
CREATE INDEX maintenance_operations_initiator_idx ON steward.maintenance_operations (initiator, created_at DESC);
CREATE INDEX maintenance_operations_live_idx ON steward.maintenance_operations (status) WHERE status IN ('queued', 'running');
-- One live operation per relation (0 stands for "all tables"): the worker's INSERT is the
-- arbiter, so two callers racing cannot both start.
CREATE UNIQUE INDEX maintenance_operations_one_per_relation
    ON steward.maintenance_operations ((coalesce(relid, 0::oid)))
 WHERE status IN ('queued', 'running') AND NOT refused;

-- Operations whose worker is gone (terminated, crashed, server restarted) are marked failed
-- whenever anything looks at the history, so none stays running forever.
CREATE FUNCTION steward._reap_maintenance() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    -- On a standby (or in a read-only transaction) the records are the primary's: nothing to do.
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::boolean THEN
        RETURN 0;
    END IF;
    -- pg_stat_activity is a per-transaction snapshot: look at the backends as they are now,
    -- not as they were at this transaction's first look (a worker started since would be
    -- missing from it and taken for dead).
    PERFORM pg_stat_clear_snapshot();
    UPDATE steward.maintenance_operations m
       SET status = 'failed',
           completed_at = clock_timestamp(),
           duration_ms = CASE WHEN m.started_at IS NOT NULL
                              THEN greatest(0, (extract(epoch FROM clock_timestamp() - m.started_at) * 1000)::bigint) END,
           error_sqlstate = '57P01',
           error_message = 'the maintenance worker ended before finishing (terminated, crashed, or the server restarted)',
           error_hint = 'Run the operation again; after a failed REINDEX CONCURRENTLY see steward.invalid_indexes().'
     WHERE m.status IN ('queued', 'running')
       AND m.worker_pid IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                        WHERE a.pid = m.worker_pid AND a.backend_start = m.worker_started_at);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- PostgREST's request headers, never an error: a malformed value reads as {}.
CREATE FUNCTION steward._request_headers() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('request.headers', true), '')::jsonb, '{}');
EXCEPTION WHEN data_exception THEN
    RETURN '{}';
END
$$;

-- Resolve a user-typed relation name to an OID: plain, schema-qualified and quoted names
-- (parsed with parse_ident, so nothing typed is ever SQL).  The caller's search_path is not
-- visible inside a SECURITY DEFINER function, so an unqualified name means the relation of
-- that name in public, else the only one of that name in any user schema; several → NULL
-- with p_ambiguous set, so the caller can ask for a qualified name.
CREATE FUNCTION steward._resolve_relation(p_name text, p_kinds "char"[], OUT relid oid, OUT ambiguous boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_parts text[];
    v_count int;
BEGIN
    ambiguous := false;
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        RETURN;
    END IF;
    BEGIN
        v_parts := parse_ident(btrim(p_name));
    EXCEPTION WHEN OTHERS THEN
        -- Not a valid name: also try it as one quoted identifier ("My Table" typed bare).
        v_parts := ARRAY[p_name];
    END;
    IF array_length(v_parts, 1) = 2 THEN
        SELECT c.oid INTO relid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = v_parts[1] AND c.relname = v_parts[2] AND c.relkind = ANY (p_kinds);
    ELSIF array_length(v_parts, 1) = 1 THEN
        SELECT c.oid INTO relid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname = v_parts[1] AND c.relkind = ANY (p_kinds);
        IF relid IS NULL THEN
            SELECT count(*), min(c.oid) INTO v_count, relid
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = v_parts[1] AND c.relkind = ANY (p_kinds)
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_';
            IF v_count > 1 THEN
                relid := NULL;
                ambiguous := true;
            END IF;
        END IF;
    END IF;
END
$$;

-- The one entry point: authorise (EXECUTE is granted to admins only; the caller must own the
-- table, or hold MAINTAIN on it on PostgreSQL 17+), check, record, run.  The body is SECURITY
-- DEFINER to write the record; the public steward.run_maintenance below is SECURITY INVOKER and
-- hands it the caller's identity (src/common/privilege.rs).  The worker runs the statement as
-- that caller, so PostgreSQL's own checks apply and VACUUM/ANALYZE/REINDEX switch to the table
-- owner in a security-restricted operation exactly as they do for a statement typed at psql.
CREATE FUNCTION steward._run_maintenance_impl(
    tok bigint,
    operation text,
    table_name text,
    index_name text,
    "full" boolean,
    "analyze" boolean,
    verbose boolean,
    concurrently boolean,
    async boolean,
    confirm boolean,
    force boolean
) RETURNS steward.maintenance_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller  oid := steward._caller(tok, 'steward.run_maintenance');
    v_op      text := upper(btrim(coalesce(operation, '')));
    v_type    text;
    v_relid   oid;
    v_idxid   oid;
    v_ambig   boolean;
    v_hdr     jsonb := steward._request_headers();
    v_who     text := steward.caller_id();
    v_refuse  text;
    v_state   text;
    v_detail  text;
    v_hint    text;
    v_hour    numeric := extract(hour FROM localtimestamp) + extract(minute FROM localtimestamp) / 60;
    v_peak_a  numeric := steward.setting_number('maintenancePeakStartHour');
    v_peak_b  numeric := steward.setting_number('maintenancePeakEndHour');
    v_in_peak boolean;
    v_req     jsonb;
    v_id      uuid;
    r         steward.maintenance_operations;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._reap_maintenance();

    v_type := CASE v_op WHEN 'VACUUM' THEN CASE WHEN "full" THEN 'VACUUM FULL' ELSE 'VACUUM' END
                        WHEN 'ANALYZE' THEN 'ANALYZE' WHEN 'REINDEX' THEN 'REINDEX' END;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'unknown maintenance operation "%"', operation
            USING ERRCODE = '22023', HINT = 'Use VACUUM, ANALYZE or REINDEX.';
    END IF;

    -- Resolve names to OIDs first; nothing typed by the caller ever becomes SQL text.
    IF v_type = 'REINDEX' AND index_name IS NOT NULL THEN
        SELECT x.relid, x.ambiguous INTO v_idxid, v_ambig FROM steward._resolve_relation(index_name, '{i}') x;
        IF v_idxid IS NULL THEN
            v_state := CASE WHEN v_ambig THEN '42725' ELSE '42704' END;
            v_refuse := format(CASE WHEN v_ambig THEN 'index name "%s" is ambiguous' ELSE 'index "%s" does not exist' END, index_name);
            v_hint := 'Give an existing index name, schema-qualified when several schemas have one of that name.';
        ELSE
            SELECT i.indrelid INTO v_relid FROM pg_index i WHERE i.indexrelid = v_idxid;
        END IF;
    ELSIF table_name IS NOT NULL THEN
        SELECT x.relid, x.ambiguous INTO v_relid, v_ambig FROM steward._resolve_relation(table_name, '{r,m}') x;
        IF v_relid IS NULL AND v_ambig THEN
            v_state := '42725'; v_refuse := format('table name "%s" is ambiguous', table_name);
            v_hint := 'Several schemas have a table of that name: qualify it (schema.table).';
        ELSIF v_relid IS NULL THEN
            v_state := '42P01';
            IF (SELECT x.relid FROM steward._resolve_relation(table_name, '{i}') x) IS NOT NULL THEN
                v_refuse := format('"%s" is an index, not a table', table_name);
                v_hint := CASE WHEN v_type = 'REINDEX' THEN 'Pass it as index_name.' ELSE 'VACUUM and ANALYZE take a table.' END;
            ELSE
                v_refuse := format('table "%s" does not exist', table_name);
                v_hint := 'Give an existing table name, optionally schema-qualified.';
            END IF;
        END IF;
    ELSIF v_type = 'REINDEX' THEN
        v_state := '22023'; v_refuse := 'REINDEX needs a table name or an index name';
        v_hint := 'Pass table_name for REINDEX TABLE or index_name for REINDEX INDEX.';
    END IF;

    -- The caller's own rights on the table (an index: on its table).
    IF v_refuse IS NULL AND v_relid IS NOT NULL THEN
        BEGIN
            PERFORM steward._check_privileges(v_caller, v_relid, '{maintain}', v_type);
        EXCEPTION WHEN insufficient_privilege OR undefined_table THEN
            GET STACKED DIAGNOSTICS v_refuse = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE,
                                    v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        END;
    END IF;

    IF v_refuse IS NULL AND "concurrently" AND v_type <> 'REINDEX' THEN
        v_state := '22023'; v_refuse := 'CONCURRENTLY applies to REINDEX only';
    END IF;
    IF v_refuse IS NULL AND v_type = 'REINDEX' AND v_relid IS NULL THEN
        v_state := '22023'; v_refuse := 'REINDEX runs on one table or index at a time';
    END IF;

    -- Rate limit per initiator (refused attempts do not count).
    IF v_refuse IS NULL AND (SELECT count(*) FROM steward.maintenance_operations m
                              WHERE m.initiator = v_who AND NOT m.refused
                                AND m.created_at > now() - interval '1 minute')
                            >= steward.setting_number('maintenanceRateLimitPerMinute') THEN
        v_state := '54000';
        v_refuse := format('rate limit: at most %s maintenance operations a minute', steward.setting_number('maintenanceRateLimitPerMinute'));
        v_hint := 'Wait a minute, or raise maintenanceRateLimitPerMinute with steward.set_setting().';
    END IF;

    -- Peak window for the operations that block the table.
    v_in_peak := CASE WHEN v_peak_a = v_peak_b THEN false
                      WHEN v_peak_a < v_peak_b THEN v_hour >= v_peak_a AND v_hour < v_peak_b
                      ELSE v_hour >= v_peak_a OR v_hour < v_peak_b END;
    IF v_refuse IS NULL AND v_in_peak AND (v_type = 'VACUUM FULL' OR (v_type = 'REINDEX' AND NOT "concurrently"))
       AND NOT (force AND confirm) THEN
        v_state := '55000';
        v_refuse := format('%s is not allowed during the peak window (%s:00-%s:00 server time)', v_type, v_peak_a, v_peak_b);
        v_detail := 'It takes an ACCESS EXCLUSIVE lock for its whole duration.';
        v_hint := CASE WHEN v_type = 'REINDEX' THEN 'Use concurrently => true, or force => true with confirm => true.'
                       ELSE 'Run it outside the window, or pass force => true with confirm => true.' END;
    END IF;

    -- Destructive operations need an explicit confirmation.
    IF v_refuse IS NULL AND NOT confirm AND (
           v_type = 'VACUUM FULL'
        OR (v_type = 'REINDEX' AND NOT "concurrently" AND v_idxid IS NULL AND
            (SELECT coalesce(sum(s.total_bytes), 0) FROM steward._relation_storage() s
              WHERE s.relid = v_relid OR s.relid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = v_relid))
            > steward.setting_number('maintenanceConfirmBytes'))) THEN
        v_state := '22023';
        v_refuse := format('%s needs confirmation', v_type);
        v_detail := CASE WHEN v_type = 'VACUUM FULL' THEN 'VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock.'
                         ELSE 'A non-concurrent REINDEX of a large table blocks writes and reads of it for its duration.' END;
        v_hint := 'Pass confirm => true.';
    END IF;

    v_req := jsonb_build_object(
        'id', gen_random_uuid(),
        'operation_type', v_type,
        'relid', v_relid::bigint, 'indexrelid', v_idxid::bigint,
        'table_name', CASE WHEN v_relid IS NOT NULL THEN (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_relid) ELSE table_name END,
        'index_name', CASE WHEN v_idxid IS NOT NULL THEN (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_idxid) ELSE index_name END,
        'full', "full", 'analyze', "analyze", 'verbose', "verbose", 'concurrently', "concurrently",
        'async', async, 'confirm', confirm, 'force', force,
        'initiated_by', steward.caller_uuid(), 'initiator', v_who, 'caller_oid', v_caller::bigint,
        'client_ip', nullif(btrim(split_part(v_hdr ->> 'x-forwarded-for', ',', 1)), ''),
        'user_agent', v_hdr ->> 'user-agent',
        'statement_timeout_ms', (steward.setting_number('maintenanceStatementTimeoutSeconds') * 1000)::bigint,
        'lock_timeout_ms', (steward.setting_number('maintenanceLockTimeoutSeconds') * 1000)::bigint,
        'refusal', CASE WHEN v_refuse IS NOT NULL THEN jsonb_build_object('sqlstate', v_state, 'message', v_refuse, 'detail', v_detail, 'hint', v_hint) END);

    -- REINDEX CONCURRENTLY waits for every transaction older than itself to end, this
    -- caller's included: waiting for it here could only time out.  It runs in the background.
    IF "concurrently" AND NOT async AND v_refuse IS NULL THEN
        async := true;
        v_req := v_req || '{"async": true}';
        RAISE NOTICE 'REINDEX CONCURRENTLY runs in the background: it cannot finish before this transaction ends'
            USING HINT = 'Follow it with steward.maintenance_progress(id) or steward.maintenance_history().';
    END IF;
    v_id := steward._maintenance_submit(v_req, NOT async);

    PERFORM steward._reap_maintenance();
    SELECT * INTO r FROM steward.maintenance_operations m WHERE m.id = v_id;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'maintenance record % is missing', v_id USING ERRCODE = 'P0002';
    END IF;
    IF r.status = 'failed' THEN
        RAISE EXCEPTION '%', r.error_message
            USING ERRCODE = coalesce(r.error_sqlstate, 'P0001'),
                  DETAIL = concat_ws(E'\n', r.error_detail, format('maintenance operation %s', r.id)),
                  HINT = coalesce(r.error_hint, 'The attempt is recorded: see steward.maintenance_history().');
    END IF;
    RETURN r;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._run_maintenance(
    tok bigint,
    operation text,
    table_name text,
    index_name text,
    "full" boolean,
    "analyze" boolean,
    verbose boolean,
    concurrently boolean,
    async boolean,
    confirm boolean,
    force boolean
) RETURNS steward.maintenance_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.maintenance_operations;
    a jsonb := jsonb_build_object('operation', operation, 'table', table_name, 'index', index_name, 'full', "full", 'analyze', "analyze", 'verbose', "verbose", 'concurrently', "concurrently", 'async', async, 'confirm', confirm, 'force', force);
BEGIN
    r := steward._run_maintenance_impl(tok, operation, table_name, index_name, "full", "analyze", "verbose", "concurrently", async, confirm, force);
    PERFORM steward._admin_logged('steward.run_maintenance', a, jsonb_build_object('operationId', r.id, 'status', r.status, 'durationMs', r.duration_ms));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.run_maintenance', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward.run_maintenance(
    operation text,
    table_name text DEFAULT NULL,
    index_name text DEFAULT NULL,
    "full" boolean DEFAULT false,
    "analyze" boolean DEFAULT false,
    verbose boolean DEFAULT false,
    concurrently boolean DEFAULT false,
    async boolean DEFAULT false,
    confirm boolean DEFAULT false,
    force boolean DEFAULT false
) RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._run_maintenance(steward._enter(), operation, table_name, index_name, "full", "analyze",
                                              "verbose", "concurrently", async, confirm, force) $$;

CREATE FUNCTION steward.vacuum(table_name text DEFAULT NULL, "full" boolean DEFAULT false,
                               "analyze" boolean DEFAULT false, verbose boolean DEFAULT false,
                               async boolean DEFAULT false, confirm boolean DEFAULT false,
                               force boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('VACUUM', table_name, NULL, "full", "analyze", "verbose", false, async, confirm, force) $$;

CREATE FUNCTION steward."analyze"(table_name text DEFAULT NULL, verbose boolean DEFAULT false, async boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('ANALYZE', table_name, NULL, false, false, "verbose", false, async, false, false) $$;

CREATE FUNCTION steward.reindex(table_name text DEFAULT NULL, index_name text DEFAULT NULL,
                                concurrently boolean DEFAULT false, async boolean DEFAULT false,
                                confirm boolean DEFAULT false, force boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('REINDEX', table_name, index_name, false, false, false, "concurrently", async, confirm, force) $$;

-- Seed signatures (CONTRACT §3), argument names kept; p_confirm / p_async added with defaults.
CREATE FUNCTION steward.execute_vacuum(p_table_name text DEFAULT NULL, p_full boolean DEFAULT false,
                                       p_analyze boolean DEFAULT false, p_verbose boolean DEFAULT false,
                                       p_confirm boolean DEFAULT false, p_async boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('VACUUM', p_table_name, NULL, p_full, p_analyze, p_verbose, false, p_async, p_confirm, false) $$;

CREATE FUNCTION steward.execute_analyze(p_table_name text DEFAULT NULL, p_verbose boolean DEFAULT false,
                                        p_async boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('ANALYZE', p_table_name, NULL, false, false, p_verbose, false, p_async, false, false) $$;

CREATE FUNCTION steward.execute_reindex(p_table_name text DEFAULT NULL, p_index_name text DEFAULT NULL,
                                        p_concurrent boolean DEFAULT false, p_confirm boolean DEFAULT false,
                                        p_async boolean DEFAULT false)
RETURNS steward.maintenance_operations
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward.run_maintenance('REINDEX', p_table_name, p_index_name, false, false, false, p_concurrent, p_async, p_confirm, false) $$;

-- A message saying what was done or what failed (seed), never an exception for a failure
-- of the operation itself.
CREATE FUNCTION steward.vacuum_analyze_table(table_name text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.maintenance_operations;
BEGIN
    r := steward.run_maintenance('VACUUM', table_name, NULL, false, true);
    RETURN format('VACUUM ANALYZE %s completed in %s ms', r.table_name, r.duration_ms);
EXCEPTION WHEN OTHERS THEN
    RETURN format('VACUUM ANALYZE %s failed: %s', table_name, SQLERRM);
END
$$;

-- REINDEX TABLE (concurrently) only when the latest bloat snapshot of the table exceeds the
-- threshold; raises an info alert when it does.
CREATE FUNCTION steward.reindex_if_bloated(table_name text, bloat_threshold numeric DEFAULT 20) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relid oid := (SELECT x.relid FROM steward._resolve_relation(table_name, '{r,m}') x);
    v_ratio numeric;
    r steward.maintenance_operations;
BEGIN
    IF bloat_threshold IS NULL OR bloat_threshold < 0 THEN
        RAISE EXCEPTION 'bloat_threshold must be a non-negative percentage' USING ERRCODE = '22023';
    END IF;
    IF v_relid IS NULL THEN
        RETURN format('table "%s" does not exist', table_name);
    END IF;
    SELECT s.bloat_ratio INTO v_ratio
      FROM steward.table_bloat_snapshots s JOIN pg_class c ON c.relname = s.tablename
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
     WHERE c.oid = v_relid
     ORDER BY s.snapshot_timestamp DESC LIMIT 1;
    IF v_ratio IS NULL THEN
        RETURN format('no bloat snapshot of %s yet; run capture_table_bloat_snapshot() first', v_relid::regclass);
    END IF;
    IF v_ratio <= bloat_threshold THEN
        RETURN format('%s is %s%% bloated, not above %s%%: nothing done', v_relid::regclass, round(v_ratio, 1), bloat_threshold);
    END IF;
    r := steward.run_maintenance('REINDEX', v_relid::regclass::text, NULL, concurrently => true, async => true, confirm => true);
    PERFORM steward.create_performance_alert('maintenance', 'info',
        format('REINDEX TABLE CONCURRENTLY of %s started (bloat %s%% above %s%%)', r.table_name, round(v_ratio, 1), bloat_threshold),
        jsonb_build_object('operation_id', r.id, 'table', r.table_name, 'bloat_ratio', v_ratio));
    RETURN format('REINDEX TABLE CONCURRENTLY %s started as operation %s (bloat %s%% above %s%%)',
                  r.table_name, r.id, round(v_ratio, 1), bloat_threshold);
EXCEPTION WHEN OTHERS THEN
    RETURN format('REINDEX of %s failed: %s', table_name, SQLERRM);
END
$$;

-- Snapshots, VACUUM ANALYZE of every user table (one table per transaction, in the worker),
-- bloat alerts.
CREATE FUNCTION steward.weekly_maintenance() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_idx int;
    v_bloat int;
    v_alerts int;
    r steward.maintenance_operations;
    v_started timestamptz := clock_timestamp();
BEGIN
    v_idx := steward.capture_index_usage_snapshot();
    v_bloat := steward.capture_table_bloat_snapshot();
    r := steward.run_maintenance('VACUUM', NULL, NULL, false, true);
    v_alerts := steward.check_table_bloat_alerts();
    RETURN format('weekly maintenance: %s index snapshots, %s bloat snapshots, VACUUM ANALYZE of %s tables in %s ms (operation %s), %s bloat alerts; total %s ms',
                  v_idx, v_bloat, r.options ->> 'relations_processed', r.duration_ms, r.id, v_alerts,
                  round(extract(epoch FROM clock_timestamp() - v_started) * 1000));
END
$$;

CREATE FUNCTION steward.maintenance_history(lim integer DEFAULT 50)
RETURNS SETOF steward.maintenance_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lim IS NULL OR lim < 1 THEN
        RAISE EXCEPTION 'lim must be a positive number' USING ERRCODE = '22023', DETAIL = format('got %s', coalesce(lim::text, 'NULL'));
    END IF;
    PERFORM steward._reap_maintenance();
    RETURN QUERY SELECT * FROM steward.maintenance_operations m ORDER BY m.created_at DESC, m.id LIMIT lim;
END
$$;

CREATE FUNCTION steward.maintenance_running()
RETURNS SETOF steward.maintenance_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._reap_maintenance();
    RETURN QUERY SELECT * FROM steward.maintenance_operations m
                  WHERE m.status IN ('queued', 'running') ORDER BY m.created_at DESC;
END
$$;

-- One record, as it is now (dead workers reaped first); P0002 when the id is unknown.
CREATE FUNCTION steward._maintenance_record(operation_id uuid) RETURNS steward.maintenance_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.maintenance_operations;
BEGIN
    PERFORM steward._reap_maintenance();
    SELECT * INTO r FROM steward.maintenance_operations m WHERE m.id = operation_id;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'maintenance operation % does not exist', operation_id USING ERRCODE = 'P0002';
    END IF;
    RETURN r;
END
$$;

-- Phase and percent of a running operation, from the pg_stat_progress_* views.
CREATE FUNCTION steward.maintenance_progress(operation_id uuid)
RETURNS TABLE (id uuid, status text, command text, phase text, percent numeric, relid oid, detail jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.maintenance_operations;
BEGIN
    r := steward._maintenance_record(operation_id);
    RETURN QUERY
    SELECT r.id, r.status, p.command, p.phase, p.percent, p.relid, p.detail
      FROM (SELECT 'VACUUM'::text AS command, v.phase, v.relid,
                   round(100.0 * v.heap_blks_scanned / nullif(v.heap_blks_total, 0), 1) AS percent,
                   to_jsonb(v) AS detail
              FROM pg_stat_progress_vacuum v WHERE v.pid = r.worker_pid
            UNION ALL
            SELECT 'ANALYZE', a.phase, a.relid,
                   round(100.0 * a.sample_blks_scanned / nullif(a.sample_blks_total, 0), 1), to_jsonb(a)
              FROM pg_stat_progress_analyze a WHERE a.pid = r.worker_pid
            UNION ALL
            SELECT c.command, c.phase, c.relid,
                   round(100.0 * c.blocks_done / nullif(c.blocks_total, 0), 1), to_jsonb(c)
              FROM pg_stat_progress_create_index c WHERE c.pid = r.worker_pid
            UNION ALL
            SELECT 'VACUUM FULL', f.phase, f.relid,
                   round(100.0 * f.heap_blks_scanned / nullif(f.heap_blks_total, 0), 1), to_jsonb(f)
              FROM pg_stat_progress_cluster f WHERE f.pid = r.worker_pid) p
     WHERE r.status = 'running'
    UNION ALL
    SELECT r.id, r.status, NULL, NULL, CASE WHEN r.status = 'completed' THEN 100::numeric END, r.relid, NULL
     WHERE r.status <> 'running' OR NOT EXISTS (
           SELECT 1 FROM pg_stat_progress_vacuum WHERE pid = r.worker_pid
           UNION ALL SELECT 1 FROM pg_stat_progress_analyze WHERE pid = r.worker_pid
           UNION ALL SELECT 1 FROM pg_stat_progress_create_index WHERE pid = r.worker_pid
           UNION ALL SELECT 1 FROM pg_stat_progress_cluster WHERE pid = r.worker_pid);
END
$$;

-- Cancel a queued or running operation (its worker gets a query cancel; the record ends
-- failed with "canceling statement due to user request").
CREATE FUNCTION steward.maintenance_cancel(operation_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.maintenance_operations;
BEGIN
    PERFORM steward._require_writable();
    r := steward._maintenance_record(operation_id);
    IF r.status NOT IN ('queued', 'running') THEN
        RETURN false;
    END IF;
    RETURN coalesce((SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a
                      WHERE a.pid = r.worker_pid AND a.backend_start = r.worker_started_at), false);
END
$$;

-- pg_cron: hourly snapshots, daily checks and retention, weekly maintenance, monthly report.  Says clearly
-- when pg_cron is not installed in this database.
CREATE FUNCTION steward._schedule_jobs_impl() RETURNS TABLE (jobname text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    j record;
    v_id bigint;
BEGIN
    PERFORM steward._require_writable();
    -- pg_cron keeps its functions in schema cron whatever its extnamespace says: find the
    -- schema of the extension's own schedule(name, schedule, command).
    SELECT n.nspname INTO v_schema
      FROM pg_extension x
      JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = x.oid AND d.deptype = 'e'
                      AND d.classid = 'pg_proc'::regclass
      JOIN pg_proc p ON p.oid = d.objid AND p.proname = 'schedule' AND p.pronargs = 3
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE x.extname = 'pg_cron'
     LIMIT 1;
    IF v_schema IS NULL THEN
        RAISE NOTICE 'pg_cron is not installed in this database: no jobs were scheduled'
            USING HINT = 'Add pg_cron to shared_preload_libraries (cron.database_name = this database), restart, then CREATE EXTENSION pg_cron; and call steward.schedule_jobs() again.';
        RETURN;
    END IF;
    FOR j IN SELECT * FROM (VALUES
        ('steward-hourly-snapshots', '0 * * * *',  'SELECT steward.capture_snapshots();'),
        ('steward-daily-checks',     '15 3 * * *', 'SELECT steward.check_table_bloat_alerts();'),
        ('steward-alert-checks',     '*/15 * * * *', 'SELECT steward.check_alerts();'),
        ('steward-daily-retention',  '45 3 * * *', 'SELECT steward.rollup_ai_usage(); SELECT count(*) FROM steward.retention_run(); SELECT steward.purge_history();'),
        ('steward-weekly-maintenance', '30 3 * * 0', 'SELECT steward.weekly_maintenance();'),
        ('steward-monthly-report',   '0 4 1 * *',  'SELECT steward.generate_monthly_report();')
    ) AS t(jobname, schedule, command) LOOP
        EXECUTE format('SELECT %I.schedule($1, $2, $3)', v_schema) INTO v_id USING j.jobname, j.schedule, j.command;
        jobname := j.jobname; schedule := j.schedule; command := j.command; jobid := v_id;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.schedule_jobs() RETURNS TABLE (jobname text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a jsonb := '{}'::jsonb;
    n bigint;
BEGIN
    RETURN QUERY SELECT * FROM steward._schedule_jobs_impl();
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM steward._admin_logged('steward.schedule_jobs', a, jsonb_build_object('rows', n));
    RETURN;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.schedule_jobs', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('execute_vacuum',       'steward.execute_vacuum(text,boolean,boolean,boolean,boolean,boolean)', 'volatile', '{steward_admin,service_role}'),
    ('execute_analyze',      'steward.execute_analyze(text,boolean,boolean)',                        'volatile', '{steward_admin,service_role}'),
    ('execute_reindex',      'steward.execute_reindex(text,text,boolean,boolean,boolean)',           'volatile', '{steward_admin,service_role}'),
    ('vacuum_analyze_table', 'steward.vacuum_analyze_table(text)',                                   'volatile', '{steward_admin,service_role}'),
    ('reindex_if_bloated',   'steward.reindex_if_bloated(text,numeric)',                             'volatile', '{steward_admin,service_role}'),
    ('weekly_maintenance',   'steward.weekly_maintenance()',                                         'volatile', '{steward_admin,service_role}'),
    ('get_maintenance_history', 'steward.maintenance_history(integer)',                              'volatile', '{steward_admin,service_role}'),
    ('get_running_maintenance', 'steward.maintenance_running()',                                     'volatile', '{steward_admin,service_role}'),
    ('cancel_maintenance',   'steward.maintenance_cancel(uuid)',                                     'volatile', '{steward_admin,service_role}'),
    ('get_maintenance_progress', 'steward.maintenance_progress(uuid)',                               'volatile', '{steward_admin,service_role}');

INSERT INTO steward.facade_views (seed_name, target) VALUES
    ('maintenance_operations', 'steward.maintenance_operations');
