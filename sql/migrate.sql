-- Schema migrations (CONTRACT §6, issue #15): a registry with up and down scripts and their
-- checksums, apply and roll back through the executor's background worker (the statements run
-- as the caller, never as the extension's owner), every attempt recorded, a safety analysis
-- with PostgreSQL's own parser against the live catalog (src/migrate/rules.rs) and a trial run
-- that observes the locks a migration really takes (src/migrate/trial.rs).

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('migrationLockTimeoutMs',      '5000',      0, NULL, 'lock_timeout of a migration''s statements (0: wait forever); a statement that waits longer fails with 55P03 and the migration is not applied'),
    ('migrationStatementTimeoutMs', '3600000',   0, NULL, 'Statement timeout of each statement of a migration (0: none)'),
    ('migrationRiskMediumBytes',    '10485760',  0, NULL, 'migration_check: a blocking rewrite or scan of a table at least this large is medium risk'),
    ('migrationRiskHighBytes',      '104857600', 0, NULL, 'migration_check: a blocking rewrite or scan of a table at least this large is high risk');

-- The registry: the seed's columns first (version, description, applied_at, applied_by,
-- execution_time_ms, checksum = md5 of the up script), then pg_steward's.
CREATE TABLE steward.schema_migrations (
    version           bigint PRIMARY KEY CHECK (version > 0),
    description       text NOT NULL CHECK (btrim(description) <> ''),
    applied_at        timestamptz,
    applied_by        text,
    execution_time_ms bigint,
    checksum          text NOT NULL,
    checksum_sha256   text NOT NULL,
    up_script         text NOT NULL,
    down_script       text NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'failed')),
    non_transactional boolean NOT NULL DEFAULT false,
    lint              jsonb NOT NULL DEFAULT '[]',
    added_at          timestamptz NOT NULL DEFAULT now(),
    added_by          text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.schema_migrations', '');

-- Every attempt to apply or roll back, including refused ones.
CREATE TABLE steward.migration_runs (
    id                    uuid PRIMARY KEY,
    version               bigint NOT NULL,
    direction             text NOT NULL CHECK (direction IN ('up', 'down')),
    status                text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'refused')),
    run_by                text NOT NULL,
    started_at            timestamptz NOT NULL,
    finished_at           timestamptz,
    duration_ms           bigint,
    error_sqlstate        text,
    error_message         text,
    error_detail          text,
    error_hint            text,
    failed_statement      integer,
    failed_statement_text text,
    statements            jsonb,
    worker_pid            integer,
    worker_started_at     timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('steward.migration_runs', '');
CREATE INDEX migration_runs_version_idx ON steward.migration_runs (version, started_at DESC);
CREATE INDEX migration_runs_live_idx ON steward.migration_runs (status) WHERE status = 'running';

-- The seed's view of the registry: applied migrations, its six columns (the facade's
-- schema_migrations).
CREATE VIEW steward.applied_migrations AS
SELECT m.version, m.description, m.applied_at, m.applied_by, m.execution_time_ms, m.checksum
  FROM steward.schema_migrations m
 WHERE m.status = 'applied';

INSERT INTO steward.facade_views (seed_name, target, admin_privileges) VALUES
    ('schema_migrations', 'steward.applied_migrations', 'SELECT');

-- Runs whose worker is gone (terminated, crashed, server restarted) are marked failed
-- whenever anything looks, so none stays running forever.  A run's transaction died with its
-- worker, so its migration was not applied.
CREATE FUNCTION steward._reap_migrations() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::boolean THEN
        RETURN 0;
    END IF;
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    UPDATE steward.migration_runs r
       SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
           duration_ms = greatest(0, (extract(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) r.started_at) * 1000)::bigint),
           error_sqlstate = '57P01',
           error_message = 'the migration worker ended before finishing (terminated, crashed, or the server restarted)',
           error_hint = 'The migration''s transaction was rolled back; run steward.migration_apply() again.'
     WHERE r.status OPERATOR(pg_catalog.=) 'running'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                        WHERE a.pid OPERATOR(pg_catalog.=) r.worker_pid AND a.backend_start OPERATOR(pg_catalog.=) r.worker_started_at);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Register a migration.  Both scripts must parse (PostgreSQL's parser: 22023 with its message
-- and position), hold statements, have no BEGIN/COMMIT, and keep a statement that cannot run in
-- a transaction (CONCURRENTLY, VACUUM) alone with SET statements.  The up script's findings
-- (migration_check) are stored with it.
CREATE FUNCTION steward._migration_add_impl(version bigint, description text, up text, down text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_up jsonb;
    v_down jsonb;
    v_check jsonb;
    v_which text;
    v_nt boolean := false;
BEGIN
    PERFORM steward._require_writable();
    IF version IS NULL OR version OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION 'a migration version must be a positive number' USING ERRCODE = '22023',
              DETAIL = pg_catalog.format('got %s', coalesce(version::text, 'NULL')), HINT = 'Use increasing numbers, such as 20261202001.';
    END IF;
    IF description IS NULL OR pg_catalog.btrim(description) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'a migration needs a description' USING ERRCODE = '22023', HINT = 'Say what the migration does.';
    END IF;
    IF up IS NULL OR down IS NULL THEN
        RAISE EXCEPTION 'a migration needs an up script and a down script' USING ERRCODE = '22023',
              DETAIL = pg_catalog.format('%s is NULL', CASE WHEN up IS NULL THEN 'up' ELSE 'down' END),
              HINT = 'The down script undoes the up script; migration_rollback() runs it.';
    END IF;
    IF EXISTS (SELECT 1 FROM steward.schema_migrations m WHERE m.version OPERATOR(pg_catalog.=) _migration_add_impl.version) THEN
        RAISE EXCEPTION 'migration % already exists', version USING ERRCODE = '23505',
              DETAIL = 'Versions are unique and a registered migration never changes.',
              HINT = 'Use a new version number.';
    END IF;
    v_up := steward._migration_lint(up);
    v_down := steward._migration_lint(down);
    FOREACH v_which IN ARRAY ARRAY['up', 'down'] LOOP
        v_check := CASE v_which WHEN 'up' THEN v_up ELSE v_down END;
        IF (v_check #>> '{shape,statements}')::int OPERATOR(pg_catalog.=) 0 THEN
            RAISE EXCEPTION 'the % script has no statements', v_which USING ERRCODE = '22023',
                  HINT = 'A migration''s scripts must each do something; a down script that cannot undo should say so by failing (a DO block that raises).';
        END IF;
        IF pg_catalog.jsonb_array_length(v_check #> '{shape,transaction_control}') OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'the % script controls transactions', v_which USING ERRCODE = '22023',
                  DETAIL = pg_catalog.format('statement(s) %s are BEGIN/COMMIT/ROLLBACK/SAVEPOINT.', v_check #>> '{shape,transaction_control}'),
                  HINT = 'Leave them out: each migration runs as one transaction.';
        END IF;
        IF pg_catalog.jsonb_array_length(v_check #> '{shape,non_transactional}') OPERATOR(pg_catalog.>) 0 THEN
            IF (pg_catalog.jsonb_array_length(v_check #> '{shape,non_transactional}') OPERATOR(pg_catalog.>) 1)
               OR ((v_check #>> '{shape,statements}')::int OPERATOR(pg_catalog.>)
                   (1 OPERATOR(pg_catalog.+) pg_catalog.jsonb_array_length(v_check #> '{shape,settings}'))) THEN
                RAISE EXCEPTION 'the % script mixes a statement that cannot run in a transaction with others', v_which USING ERRCODE = '22023',
                      DETAIL = pg_catalog.format('statement(s) %s (CONCURRENTLY, VACUUM, ...) run outside any transaction, so the script could not be applied all or nothing.',
                                                 v_check #>> '{shape,non_transactional}'),
                      HINT = 'Put each such statement in a migration of its own (SET statements may stay with it).';
            END IF;
            IF v_which OPERATOR(pg_catalog.=) 'up' THEN
                v_nt := true;
            END IF;
        END IF;
    END LOOP;
    INSERT INTO steward.schema_migrations (version, description, checksum, checksum_sha256, up_script, down_script,
                                           non_transactional, lint, added_by)
    VALUES (version, pg_catalog.btrim(description), pg_catalog.md5(up),
            pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(up, 'UTF8')), 'hex'), up, down,
            v_nt, v_up -> 'findings', steward.caller_id());
    RETURN pg_catalog.jsonb_build_object('version', version, 'checksum', pg_catalog.md5(up),
                                         'nonTransactional', v_nt, 'findings', v_up -> 'findings');
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.migration_add(version bigint, description text, up text, down text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('version', version, 'description', left(description, 1000), 'upMd5', md5(up), 'downMd5', md5(down), 'upBytes', octet_length(up), 'downBytes', octet_length(down));
BEGIN
    r := steward._migration_add_impl(version, description, up, down);
    PERFORM steward._admin_logged('steward.migration_add', a, jsonb_build_object('version', r -> 'version', 'risk', r -> 'risk'));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.migration_add', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Applied migrations whose stored up script no longer matches the checksum taken when it was added.
CREATE FUNCTION steward._migration_drift() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'version', m.version, 'description', m.description, 'storedChecksum', m.checksum,
               'actualChecksum', pg_catalog.md5(m.up_script)) ORDER BY m.version), '[]')
      FROM steward.schema_migrations m
     WHERE m.status OPERATOR(pg_catalog.=) 'applied'
       AND (m.checksum OPERATOR(pg_catalog.<>) pg_catalog.md5(m.up_script)
            OR m.checksum_sha256 OPERATOR(pg_catalog.<>) pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(m.up_script, 'UTF8')), 'hex'))
$$;

CREATE FUNCTION steward.migration_current_version() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(m.version), 0) FROM steward.schema_migrations m WHERE m.status OPERATOR(pg_catalog.=) 'applied' $$;

CREATE FUNCTION steward.migration_is_applied(version bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM steward.schema_migrations m
                      WHERE m.version OPERATOR(pg_catalog.=) migration_is_applied.version AND m.status OPERATOR(pg_catalog.=) 'applied') $$;

-- {currentVersion, applied, pending, failed, drifted, lastRun}
CREATE FUNCTION steward.migration_status() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._reap_migrations();
    RETURN pg_catalog.jsonb_build_object(
        'currentVersion', steward.migration_current_version(),
        'applied', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'version', m.version, 'description', m.description, 'appliedAt', m.applied_at,
                       'appliedBy', m.applied_by, 'executionTimeMs', m.execution_time_ms, 'checksum', m.checksum) ORDER BY m.version)
                     FROM steward.schema_migrations m WHERE m.status OPERATOR(pg_catalog.=) 'applied'), '[]'),
        'pending', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'version', m.version, 'description', m.description, 'status', m.status,
                       'nonTransactional', m.non_transactional,
                       'findings', pg_catalog.jsonb_array_length(m.lint),
                       'highRisk', (SELECT count(*) FROM pg_catalog.jsonb_array_elements(m.lint) f WHERE f ->> 'risk' OPERATOR(pg_catalog.=) 'high'))
                       ORDER BY m.version)
                     FROM steward.schema_migrations m WHERE m.status OPERATOR(pg_catalog.<>) 'applied'), '[]'),
        'drifted', steward._migration_drift(),
        'lastRun', (SELECT pg_catalog.to_jsonb(r) - 'worker_pid' - 'worker_started_at' FROM steward.migration_runs r
                     ORDER BY r.started_at DESC LIMIT 1));
END
$$;

CREATE FUNCTION steward.migration_history(lim integer DEFAULT 50) RETURNS SETOF steward.migration_runs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lim IS NULL OR lim OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'lim must be a positive number' USING ERRCODE = '22023';
    END IF;
    PERFORM steward._reap_migrations();
    RETURN QUERY SELECT * FROM steward.migration_runs r ORDER BY r.started_at DESC, r.id LIMIT lim;
END
$$;

-- One run through the worker and its outcome (raised when it failed); a refusal is recorded by
-- the worker too and then raised.  A script that cannot run in a transaction (CONCURRENTLY)
-- runs in the background (p_background): it waits for every older transaction, this one too.
CREATE FUNCTION steward._migration_run(p_caller oid, p_version bigint, p_direction text, p_refusal jsonb,
                                       p_background boolean DEFAULT false)
RETURNS steward.migration_runs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid := pg_catalog.gen_random_uuid();
    r steward.migration_runs;
BEGIN
    -- The worker's transaction sees only committed migrations.
    IF p_refusal IS NULL AND EXISTS (SELECT 1 FROM steward.schema_migrations x
                                      WHERE x.version OPERATOR(pg_catalog.=) p_version
                                        AND steward._xid_is_mine(x.xmin::text)) THEN
        RAISE EXCEPTION 'migration % was added or changed in this transaction', p_version USING ERRCODE = '55000',
              DETAIL = 'Migrations run in a transaction of their own, which sees only committed migrations.',
              HINT = 'Commit first, then apply.';
    END IF;
    PERFORM steward._migration_submit(pg_catalog.jsonb_build_object(
        'run_id', v_id, 'version', p_version, 'direction', p_direction, 'caller_oid', p_caller::bigint,
        'run_by', steward.caller_id(),
        'lock_timeout_ms', steward.setting_number('migrationLockTimeoutMs')::bigint,
        'statement_timeout_ms', steward.setting_number('migrationStatementTimeoutMs')::bigint,
        'refusal', p_refusal), NOT p_background);
    -- A worker that was terminated or crashed left its run 'running': it is failed (57P01) now.
    IF NOT p_background THEN
        PERFORM steward._reap_migrations();
    END IF;
    SELECT * INTO r FROM steward.migration_runs x WHERE x.id OPERATOR(pg_catalog.=) v_id;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'the migration worker did not record run %', v_id USING ERRCODE = '58000',
              HINT = 'See the server log.';
    END IF;
    IF r.status OPERATOR(pg_catalog.<>) 'succeeded' AND NOT (p_background AND r.status OPERATOR(pg_catalog.=) 'running') THEN
        RAISE EXCEPTION '%', CASE WHEN r.status OPERATOR(pg_catalog.=) 'refused' THEN r.error_message
                                  ELSE pg_catalog.format('migration %s (%s) failed%s: %s', p_version, p_direction,
                                                         coalesce(' in statement ' || r.failed_statement, ''), r.error_message) END
              USING ERRCODE = coalesce(r.error_sqlstate, 'XX000'),
                    DETAIL = pg_catalog.concat_ws(E'\n', r.error_detail,
                             CASE WHEN r.failed_statement IS NOT NULL
                                  THEN pg_catalog.format('Statement %s: %s', r.failed_statement, pg_catalog.left(r.failed_statement_text, 500)) END,
                             CASE WHEN r.status OPERATOR(pg_catalog.=) 'failed' THEN 'Nothing of the migration was kept.' END,
                             pg_catalog.format('Recorded as run %s (steward.migration_history()).', r.id)),
                    HINT = coalesce(r.error_hint, 'See steward.migration_history().');
    END IF;
    RETURN r;
END
$$;

-- Apply pending migrations in version order, each as one unit, one caller at a time.
CREATE FUNCTION steward._migration_apply_impl(tok bigint, target_version bigint, dry_run boolean, force boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.migration_apply');
    v_drift jsonb;
    v_applied bigint[] := '{}';
    m record;
    r steward.migration_runs;
BEGIN
    PERFORM steward._require_writable();
    IF target_version IS NOT NULL AND target_version OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION 'target_version must be a positive number' USING ERRCODE = '22023';
    END IF;
    PERFORM steward._reap_migrations();
    IF NOT coalesce(dry_run, false) AND NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pg_steward migrations')) THEN
        PERFORM steward._migration_run(v_caller, coalesce(target_version, 0), 'up', pg_catalog.jsonb_build_object(
            'sqlstate', '40001', 'message', 'another migration is being applied or rolled back',
            'hint', 'Wait for it (steward.migration_status()) and try again.'));
    END IF;
    v_drift := steward._migration_drift();
    IF pg_catalog.jsonb_array_length(v_drift) OPERATOR(pg_catalog.>) 0 AND NOT coalesce(force, false) THEN
        IF coalesce(dry_run, false) THEN
            RAISE EXCEPTION 'applied migrations have drifted from their checksums' USING ERRCODE = '22023',
                  DETAIL = v_drift::text, HINT = 'Restore the scripts, or apply with force => true.';
        END IF;
        PERFORM steward._migration_run(v_caller, (v_drift -> 0 ->> 'version')::bigint, 'up', pg_catalog.jsonb_build_object(
            'sqlstate', '22023', 'message', 'applied migrations have drifted from their checksums',
            'detail', v_drift::text, 'hint', 'Restore the scripts, or apply with force => true.'));
    END IF;
    IF coalesce(dry_run, false) THEN
        RETURN pg_catalog.jsonb_build_object('dryRun', true, 'currentVersion', steward.migration_current_version(),
            'wouldApply', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'version', x.version, 'description', x.description, 'nonTransactional', x.non_transactional,
                               'findings', x.lint) ORDER BY x.version)
                             FROM steward.schema_migrations x
                            WHERE x.status OPERATOR(pg_catalog.<>) 'applied'
                              AND (target_version IS NULL OR x.version OPERATOR(pg_catalog.<=) target_version)), '[]'));
    END IF;
    FOR m IN SELECT x.version, x.non_transactional FROM steward.schema_migrations x
              WHERE x.status OPERATOR(pg_catalog.<>) 'applied'
                AND (target_version IS NULL OR x.version OPERATOR(pg_catalog.<=) target_version)
              ORDER BY x.version
    LOOP
        IF m.non_transactional THEN
            -- It can only start once this transaction has ended; later versions wait for it.
            r := steward._migration_run(v_caller, m.version, 'up', NULL, true);
            RETURN pg_catalog.jsonb_build_object('dryRun', false, 'applied', pg_catalog.to_jsonb(v_applied),
                'startedInBackground', m.version, 'run', r.id,
                'currentVersion', steward.migration_current_version(),
                'hint', 'CONCURRENTLY statements run after this call returns; see steward.migration_status(), then call migration_apply() again for the versions after it.');
        END IF;
        PERFORM steward._migration_run(v_caller, m.version, 'up', NULL);
        v_applied := v_applied || m.version;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object('dryRun', false, 'applied', pg_catalog.to_jsonb(v_applied),
                                         'currentVersion', steward.migration_current_version());
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._migration_apply(tok bigint, target_version bigint, dry_run boolean, force boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('targetVersion', target_version, 'dryRun', dry_run, 'force', force);
BEGIN
    r := steward._migration_apply_impl(tok, target_version, dry_run, force);
    PERFORM steward._admin_logged('steward.migration_apply', a, r - 'results');
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.migration_apply', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward.migration_apply(target_version bigint DEFAULT NULL, dry_run boolean DEFAULT false, force boolean DEFAULT false)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._migration_apply(steward._enter(), target_version, dry_run, force) $$;

-- Run the down script of an applied migration (the newest one, unless force).
CREATE FUNCTION steward._migration_rollback_impl(tok bigint, p_version bigint, force boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.migration_rollback');
    v_status text;
    v_later bigint[];
    v_background boolean;
    r steward.migration_runs;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._reap_migrations();
    SELECT m.status INTO v_status FROM steward.schema_migrations m WHERE m.version OPERATOR(pg_catalog.=) p_version;
    IF v_status IS DISTINCT FROM 'applied' THEN
        PERFORM steward._migration_run(v_caller, coalesce(p_version, 0), 'down', pg_catalog.jsonb_build_object(
            'sqlstate', 'P0002',
            'message', pg_catalog.format('migration %s is not applied', coalesce(p_version::text, 'NULL')),
            'detail', CASE WHEN v_status IS NULL THEN 'No migration has this version.' ELSE 'Its status is ' || v_status || '.' END,
            'hint', 'See steward.migration_status().'));
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pg_steward migrations')) THEN
        PERFORM steward._migration_run(v_caller, p_version, 'down', pg_catalog.jsonb_build_object(
            'sqlstate', '40001', 'message', 'another migration is being applied or rolled back',
            'hint', 'Wait for it (steward.migration_status()) and try again.'));
    END IF;
    v_later := ARRAY(SELECT m.version FROM steward.schema_migrations m
                      WHERE m.status OPERATOR(pg_catalog.=) 'applied' AND m.version OPERATOR(pg_catalog.>) p_version ORDER BY 1);
    IF cardinality(v_later) OPERATOR(pg_catalog.>) 0 AND NOT coalesce(force, false) THEN
        PERFORM steward._migration_run(v_caller, p_version, 'down', pg_catalog.jsonb_build_object(
            'sqlstate', '22023', 'message', pg_catalog.format('later migrations are applied: %s', v_later::text),
            'hint', 'Roll those back first (newest first), or pass force => true.'));
    END IF;
    v_background := pg_catalog.jsonb_array_length(steward._migration_lint(
                        (SELECT m.down_script FROM steward.schema_migrations m WHERE m.version OPERATOR(pg_catalog.=) p_version))
                    #> '{shape,non_transactional}') OPERATOR(pg_catalog.>) 0;
    r := steward._migration_run(v_caller, p_version, 'down', NULL, v_background);
    RETURN pg_catalog.jsonb_build_object('rolledBack', p_version, 'run', r.id, 'durationMs', r.duration_ms,
                                         'inBackground', v_background, 'currentVersion', steward.migration_current_version());
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._migration_rollback(tok bigint, p_version bigint, force boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('version', p_version, 'force', force);
BEGIN
    r := steward._migration_rollback_impl(tok, p_version, force);
    PERFORM steward._admin_logged('steward.migration_rollback', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.migration_rollback', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward.migration_rollback(version bigint, force boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._migration_rollback(steward._enter(), version, force) $$;

-- The stored scripts of a migration (for the trial run, which runs with the caller's rights).
CREATE FUNCTION steward._migration_scripts(p_version bigint, OUT up_script text, OUT down_script text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT m.up_script, m.down_script INTO up_script, down_script
      FROM steward.schema_migrations m WHERE m.version OPERATOR(pg_catalog.=) p_version;
    IF up_script IS NULL THEN
        RAISE EXCEPTION 'migration % does not exist', coalesce(p_version::text, 'NULL') USING ERRCODE = 'P0002';
    END IF;
END
$$;

-- Up, then down, in a subtransaction that is always rolled back: the locks each statement
-- really takes, rewrites, durations, and whether down restores the catalog.  Runs with the
-- caller's rights and takes real locks for its duration (under migrationLockTimeoutMs).
CREATE FUNCTION steward.migration_dry_run(version bigint)
RETURNS TABLE (phase text, statement_no integer, statement text, outcome text, duration_ms double precision,
               locks text[], rewritten text[], sqlstate text, message text)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.* FROM steward._migration_scripts(version) s,
           steward._migration_trial(s.up_script, s.down_script, steward.setting_number('migrationLockTimeoutMs')::bigint) t
$$;

-- ---------------------------------------------------------------------------------------
-- Safe-pattern helpers (the seed's addColumnSafely, addConstraintSafely, renameColumnSafely,
-- concurrent index, two-phase drop): each returns the statements of the pattern, one per
-- element, with identifiers quoted from the catalog; put them in migrations (a CONCURRENTLY
-- statement in a migration of its own).  Types and expressions are SQL the caller writes.
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION steward.safe_add_column(tbl regclass, column_name name, column_type text,
                                        default_expr text DEFAULT NULL, not_null boolean DEFAULT false)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pg_catalog.to_regtype(column_type);
    v_out text[];
    v_check name := pg_catalog.left(column_name || '_not_null', 63);
BEGIN
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'unknown type %', column_type USING ERRCODE = '22023';
    END IF;
    v_out := ARRAY[pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', tbl, column_name, pg_catalog.format_type(v_type, NULL))];
    IF default_expr IS NOT NULL THEN
        v_out := v_out || ARRAY[
            pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, column_name, default_expr),
            pg_catalog.format('-- backfill in batches, repeated until it updates 0 rows:%sUPDATE %s SET %I = DEFAULT WHERE ctid IN (SELECT ctid FROM %s WHERE %I IS NULL LIMIT 5000)',
                              E'\n', tbl, column_name, tbl, column_name)];
    END IF;
    IF not_null THEN
        v_out := v_out || ARRAY[
            pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL) NOT VALID', tbl, v_check, column_name),
            pg_catalog.format('ALTER TABLE %s VALIDATE CONSTRAINT %I', tbl, v_check),
            pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, column_name),
            pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, v_check)];
    END IF;
    RETURN v_out;
END
$$;

CREATE FUNCTION steward.safe_add_constraint(tbl regclass, constraint_name name, definition text) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', tbl, constraint_name, definition),
                 pg_catalog.format('ALTER TABLE %s VALIDATE CONSTRAINT %I', tbl, constraint_name)]
$$;

CREATE FUNCTION steward.safe_rename_column(tbl regclass, old_name name, new_name name) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', tbl, old_name, new_name),
                 pg_catalog.format('CREATE VIEW %I.%I AS SELECT *, %I AS %I FROM %s',
                                   n.nspname, pg_catalog.left(c.relname || '_compat', 63), new_name, old_name, tbl),
                 pg_catalog.format('-- once no client uses the old name:%sDROP VIEW %I.%I', E'\n', n.nspname, pg_catalog.left(c.relname || '_compat', 63))]
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl
$$;

CREATE FUNCTION steward.safe_create_index(tbl regclass, columns name[], index_name name DEFAULT NULL, is_unique boolean DEFAULT false)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pg_catalog.format('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %I ON %s (%s)',
                                   CASE WHEN is_unique THEN 'UNIQUE ' ELSE '' END,
                                   coalesce(index_name, pg_catalog.left(c.relname || '_' || pg_catalog.array_to_string(columns, '_') || '_idx', 63)),
                                   tbl, (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), ', ') FROM pg_catalog.unnest(columns) x))]
      FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl
$$;

CREATE FUNCTION steward.safe_drop_table(tbl regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pg_catalog.format('-- release 1: nobody may use it any more (reversible: rename back, grant again)%sALTER TABLE %s RENAME TO %I',
                                   E'\n', tbl, pg_catalog.left(c.relname || '_deprecated', 63)),
                 pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', n.nspname, pg_catalog.left(c.relname || '_deprecated', 63)),
                 pg_catalog.format('-- release 2, after a backup:%sDROP TABLE %I.%I', E'\n', n.nspname, pg_catalog.left(c.relname || '_deprecated', 63))]
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl
$$;

-- RPC (supabase.rpc) for the admins through the facade, under the same names.
INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('migration_add',             'steward.migration_add(bigint,text,text,text)',     'volatile', '{steward_admin,service_role}'),
    ('migration_status',          'steward.migration_status()',                       'volatile', '{steward_admin,service_role}'),
    ('migration_current_version', 'steward.migration_current_version()',              'stable',   '{steward_admin,service_role}'),
    ('migration_is_applied',      'steward.migration_is_applied(bigint)',             'stable',   '{steward_admin,service_role}'),
    ('migration_apply',           'steward.migration_apply(bigint,boolean,boolean)',  'volatile', '{steward_admin,service_role}'),
    ('migration_rollback',        'steward.migration_rollback(bigint,boolean)',       'volatile', '{steward_admin,service_role}'),
    ('migration_check',           'steward.migration_check(text)',                    'stable',   '{steward_admin,service_role}'),
    ('migration_dry_run',         'steward.migration_dry_run(bigint)',                'volatile', '{steward_admin,service_role}'),
    ('migration_history',         'steward.migration_history(integer)',               'volatile', '{steward_admin,service_role}');
