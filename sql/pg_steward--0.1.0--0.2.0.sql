-- pg_steward 0.1.0 -> 0.2.0, run by ALTER EXTENSION pg_steward UPDATE (as the superuser who
-- owns the extension).  Hand-written: a database created by 0.1.0 must end up with exactly
-- the objects a fresh 0.2.0 install creates (pgrx-tests/tests/upgrade.rs compares the two
-- catalogs) and keep every row.  Until 0.2.0 is released (scripts/release.sh freeze), every
-- change to SQL objects is added here as well as in the sql/*.sql file that defines it.
\echo Use "ALTER EXTENSION pg_steward UPDATE" to load this file. \quit

-- Changes

-- 1. Maintenance and migrations share one executor (src/common/executor.rs): the worker's entry
--    point is a C symbol, not an SQL object; steward._maintenance_submit keeps its signature.

-- 2. Schema migrations (issue #15).  The Rust functions, as the 0.2.0 install script creates them:
CREATE FUNCTION steward."migration_check"(
	"sql" TEXT /* & str */
) RETURNS TABLE (
	"rule" TEXT,  /* String */
	"risk" TEXT,  /* String */
	"statement_no" INT,  /* i32 */
	"statement" TEXT,  /* String */
	"relation" TEXT,  /* Option < String > */
	"relation_bytes" bigint,  /* Option < i64 > */
	"row_estimate" bigint,  /* Option < i64 > */
	"lock_level" TEXT,  /* Option < String > */
	"rewrites" bool,  /* bool */
	"scans" bool,  /* bool */
	"message" TEXT,  /* String */
	"safe_pattern" TEXT  /* String */
)
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'migration_check_wrapper';

CREATE FUNCTION steward."_migration_lint"(
	"sql" TEXT /* & str */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'migration_lint_wrapper';

CREATE FUNCTION steward."_migration_submit"(
	"request" jsonb, /* JsonB */
	"wait" bool /* bool */
) RETURNS VOID /* Result < (), ErrorReport > */
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'migration_submit_wrapper';

CREATE FUNCTION steward."_migration_trial"(
	"up" TEXT, /* & str */
	"down" TEXT, /* & str */
	"lock_timeout_ms" bigint /* i64 */
) RETURNS TABLE (
	"phase" TEXT,  /* String */
	"statement_no" INT,  /* i32 */
	"statement" TEXT,  /* String */
	"outcome" TEXT,  /* String */
	"duration_ms" double precision,  /* Option < f64 > */
	"locks" TEXT[],  /* Vec < String > */
	"rewritten" TEXT[],  /* Vec < String > */
	"sqlstate" TEXT,  /* Option < String > */
	"message" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'migration_trial_wrapper';

-- The SQL of sql/migrate.sql (settings, registry, runs, the seed's view, the functions).

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
CREATE FUNCTION steward.migration_add(version bigint, description text, up text, down text) RETURNS jsonb
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
    IF EXISTS (SELECT 1 FROM steward.schema_migrations m WHERE m.version OPERATOR(pg_catalog.=) migration_add.version) THEN
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
                                        AND x.xmin::text OPERATOR(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id_if_assigned())::text) THEN
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
CREATE FUNCTION steward._migration_apply(tok bigint, target_version bigint, dry_run boolean, force boolean) RETURNS jsonb
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

CREATE FUNCTION steward.migration_apply(target_version bigint DEFAULT NULL, dry_run boolean DEFAULT false, force boolean DEFAULT false)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._migration_apply(steward._enter(), target_version, dry_run, force) $$;

-- Run the down script of an applied migration (the newest one, unless force).
CREATE FUNCTION steward._migration_rollback(tok bigint, p_version bigint, force boolean) RETURNS jsonb
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

-- 3. Grants (sql/finalize.sql): the migration bodies that take the caller and the trial run
--    are for the admins, and the admins read the registry, its runs and the seed's view.
INSERT INTO steward.function_grants (signature, audience, reason)
SELECT 'steward.' || f, '{admins}', 'migrations with the caller''s rights'
  FROM pg_catalog.unnest(ARRAY['_migration_apply(bigint,bigint,boolean,boolean)', '_migration_rollback(bigint,bigint,boolean)',
                               '_migration_scripts(bigint)', '_migration_trial(text,text,bigint)']) AS f;

CREATE OR REPLACE FUNCTION steward.refresh_grants() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $grants$
DECLARE
    f record;
    v_roles text[] := ARRAY['steward_admin'];
    v_users boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated');
    v_to text[];
BEGIN
    -- Installers and grant refreshes one at a time (catalog rows they rewrite would otherwise
    -- fail with "tuple concurrently updated" or deadlock when two run at once).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward installers'));
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        v_roles := v_roles || 'service_role'::text;
        EXECUTE 'GRANT USAGE ON SCHEMA steward TO service_role';
        -- API keys in clear: the service role only (steward_admin sees the masks).
        EXECUTE 'GRANT SELECT ON steward.api_key_vault TO service_role';
    END IF;
    IF v_users THEN
        EXECUTE 'GRANT USAGE ON SCHEMA steward TO authenticated';
    END IF;
    -- Functions: the rule above, one GRANT per function.
    FOR f IN
        SELECT p.oid::regprocedure AS proc,
               (CASE WHEN p.proname !~ '^_' AND g.signature IS NULL THEN '{admins}'::text[] ELSE '{}'::text[] END)
               || coalesce(g.audience, '{}') AS audience
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
          LEFT JOIN steward.function_grants g ON pg_catalog.to_regprocedure(g.signature) OPERATOR(pg_catalog.=) p.oid
         WHERE n.nspname OPERATOR(pg_catalog.=) 'steward'
    LOOP
        v_to := ARRAY(SELECT DISTINCT r FROM (
                    SELECT unnest(v_roles) AS r WHERE 'admins' = ANY (f.audience)
                    UNION ALL SELECT 'steward_admin' WHERE 'steward_admin' = ANY (f.audience)
                    UNION ALL SELECT 'pg_monitor' WHERE 'monitor' = ANY (f.audience)
                    UNION ALL SELECT 'authenticated' WHERE 'users' = ANY (f.audience) AND v_users) x);
        IF cardinality(v_to) > 0 THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.proc,
                           (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_to) r));
        END IF;
    END LOOP;

    -- The installers run as the caller and read what to install.
    EXECUTE 'GRANT SELECT ON steward.facade_functions, steward.facade_views TO steward_admin';
    EXECUTE format('GRANT SELECT ON steward.function_grants TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT SELECT ON steward.effective_settings, steward.setting_defaults, steward.settings,
                    steward.index_usage_snapshots, steward.table_bloat_snapshots, steward.performance_alerts,
                    steward.query_performance_logs, steward.alert_rules, steward.alert_rule_overrides,
                    steward.effective_alert_rules, steward.alert_checks, steward.health_reports,
                    steward.database_snapshots TO %s, pg_monitor',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- AI usage: end users read their own calls (row-level security), admins everyone's.
    EXECUTE format('GRANT SELECT ON steward.ai_usage, steward.ai_usage_daily TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    IF v_users THEN
        EXECUTE 'GRANT SELECT ON steward.ai_usage TO authenticated';
    END IF;
    EXECUTE format('GRANT SELECT ON steward.admin_log TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON steward.performance_alerts, steward.query_performance_logs TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- Migrations: the registry, its runs, and the seed's view of it (the facade's schema_migrations).
    EXECUTE format('GRANT SELECT ON steward.schema_migrations, steward.migration_runs, steward.applied_migrations TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- The seed's clients insert, update and list maintenance records themselves.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON steward.maintenance_operations TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    IF v_users THEN
        EXECUTE 'GRANT SELECT ON steward.config_overrides, steward.train_schema TO authenticated';
    END IF;
    EXECUTE format('GRANT SELECT ON steward.config_overrides, steward.train_schema TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON steward.config_overrides TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT SELECT ON steward.retention_policies, steward.retention_runs, steward.config_tables,
                    steward.config_backup_log TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- A backup's rows are copies of tables not every admin may read: admins list backups
    -- (labels, counts), the rows come back only through config_restore's checks.
    EXECUTE format('GRANT SELECT (id, label, created_at, created_by, row_counts) ON steward.config_backups TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- Audit: admins read everything and attach the trigger to their tables; end users read
    -- their own entries (row-level security on the log).
    EXECUTE format('GRANT SELECT ON steward.configuration_audit_log, steward.audit_entries, steward.ai_configuration_audit,
                    steward.audited_tables, steward.audit_purges, steward.audit_chain_anchors TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'GRANT SELECT ON steward.configuration_audit_log, steward.audit_entries, steward.ai_configuration_audit,
                 steward.audited_tables TO authenticated';
    END IF;
END
$grants$;

-- 4. Alerts and recommendations from one rule table (issue #16, sql/alert_rules.sql): new
--    settings, the lifecycle columns of performance_alerts, the evaluator (Rust), the report
--    with the lists the rules read, the rule table and check_alerts(), notifications from the
--    alert functions, the alert check in schedule_jobs().
INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('alertResolveAfterChecks',       '2',    1, 1000, 'steward.check_alerts() resolves an alert after its rule has not fired for this many consecutive checks (rules may override it)'),
    ('alertObjectLimit',              '1000', 1, 100000, 'steward.check_alerts() evaluates at most this many objects per list of the report (the largest or worst first)'),
    ('missingIndexMinimumBytes',      '10485760', 0, NULL, 'Tables smaller than this are never reported as missing an index (a sequential scan of a small table is cheap)'),
    ('snapshotRetentionDays',         '90',   1, 3660, 'steward.purge_history() removes table, index and database snapshots (and alert check runs) older than this many days'),
    ('queryLogRetentionDays',         '30',   1, 3660, 'steward.purge_history() removes query_performance_logs rows older than this many days'),
    ('resolvedAlertRetentionDays',    '180',  1, 3660, 'steward.purge_history() removes alerts resolved more than this many days ago'),
    ('maintenanceRetentionDays',      '365',  1, 3660, 'steward.purge_history() removes finished maintenance records older than this many days'),
    ('diskCapacityBytes',             '0',    0, NULL, 'The size steward.size_trend() projects the database towards when no threshold is given (0: none)'),
    ('adminLogRetentionDays',         '365',  30, 36600, 'steward.purge_history() removes admin_log rows older than this many days (younger rows cannot be deleted)');

ALTER TABLE steward.performance_alerts
    ADD COLUMN rule_id          text,
    ADD COLUMN fingerprint      text,
    ADD COLUMN object_kind      text,
    ADD COLUMN object_name      text,
    ADD COLUMN occurrences      integer NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN current_value    numeric,
    ADD COLUMN severity_history jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN clear_checks     integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX performance_alerts_open_fingerprint ON steward.performance_alerts (fingerprint)
    WHERE resolved_at IS NULL AND fingerprint IS NOT NULL;

DROP FUNCTION steward._report_recommendations(jsonb);
CREATE FUNCTION steward."_report_findings"(
	"report" jsonb, /* JsonB */
	"rules" jsonb /* JsonB */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'report_findings_wrapper';

CREATE FUNCTION steward."_report_recommendations"(
	"report" jsonb, /* JsonB */
	"rules" jsonb /* JsonB */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'report_recommendations_wrapper';

DROP FUNCTION steward._health_report_for(oid);
CREATE FUNCTION steward._health_report_for(caller oid, list_limit integer DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
DECLARE
    v_list  integer := coalesce(list_limit, steward.setting_number('reportListLimit')::integer);
    v_slow  numeric := steward.setting_number('slowQueryThresholdMs');
    v_mi    numeric := steward.setting_number('missingIndexMinimumBytes');
    v_rules jsonb   := steward._alert_rules_json();
    v_top   integer := steward.setting_number('reportTableLimit')::integer;
    v_bloat numeric := steward.setting_number('highBloatThresholdPercent');
    v_min   numeric := steward.setting_number('bloatMinimumBytes');
    v_seq   numeric := steward.setting_number('sequenceUsageThresholdPercent');
    v_caps  jsonb   := steward.capabilities();
    r jsonb;
BEGIN
    -- One scan of the database's files serves every part of the report (overview included);
    -- it runs on a helper thread while the catalogs and statistics are read.
    PERFORM steward._storage_prefetch();
    WITH th AS MATERIALIZED (SELECT * FROM steward.table_health()),
         ih AS MATERIALIZED (SELECT * FROM steward.index_health()),
         dup AS MATERIALIZED (SELECT * FROM steward.duplicate_indexes()),
         inv AS MATERIALIZED (SELECT * FROM steward.invalid_indexes()),
         sq AS MATERIALIZED (SELECT * FROM steward._slow_queries_for(caller, 24, v_slow::integer)),
         lr AS MATERIALIZED (SELECT l.*, a.backend_start
                               FROM steward._long_running_sessions_for(caller) l
                               LEFT JOIN pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid),
         -- Large tables read mostly by sequential scans (counters as pg_stat_user_tables sums them).
         mi AS MATERIALIZED (
             SELECT t.schemaname, t.relname, t.table_size, s.seq_scan, s.seq_tup_read, s.idx_scan,
                    round(s.seq_scan * 100.0 / (s.seq_scan + s.idx_scan), 1) AS seq_scan_pct
               FROM th t
              CROSS JOIN LATERAL (
                    SELECT pg_stat_get_numscans(t.relid) AS seq_scan,
                           pg_stat_get_tuples_returned(t.relid) AS seq_tup_read,
                           (SELECT coalesce(sum(pg_stat_get_numscans(i.indexrelid)), 0)::bigint
                              FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) t.relid) AS idx_scan) s
              WHERE t.table_size >= v_mi AND s.seq_scan >= 50),
         seqs AS MATERIALIZED (SELECT * FROM steward.sequence_usage() s WHERE s.pct_used > v_seq AND NOT s.cycles),
         twrap AS MATERIALIZED (SELECT * FROM steward.table_wraparound(v_list) w WHERE w.past_freeze_max_age)
    SELECT jsonb_build_object(
        'timestamp', now(),
        'database', current_database(),
        'thresholds', (SELECT jsonb_object_agg(key, value) FROM steward.effective_settings),
        'capabilities', v_caps,
        'overview', (SELECT to_jsonb(o) FROM steward.database_overview() o),
        'summary', jsonb_build_object(
            'tableCount', (SELECT count(*) FROM th),
            'indexCount', (SELECT count(*) FROM ih),
            'tablesNeedingVacuum', (SELECT count(*) FROM th WHERE needs_vacuum),
            'tablesNeedingAnalyze', (SELECT count(*) FROM th WHERE needs_analyze),
            'bloatedTables', (SELECT count(*) FROM th WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'),
            'bloatUnknownTables', (SELECT count(*) FROM th WHERE bloat_confidence = 'unknown'),
            'unusedIndexes', (SELECT count(*) FROM ih WHERE is_unused),
            'bloatedIndexes', (SELECT count(*) FROM ih WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'),
            'duplicateIndexes', (SELECT count(*) FROM dup),
            'invalidIndexes', (SELECT count(*) FROM inv),
            'slowQueries', (SELECT count(*) FROM sq),
            'tablesVacuumOverdue', (SELECT count(*) FROM th WHERE vacuum_overdue),
            'missingIndexes', (SELECT count(*) FROM mi),
            'totalSize', (SELECT coalesce(sum(table_size), 0) FROM th)),
        'tables', (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.table_size DESC), '[]')
                     FROM (SELECT * FROM th ORDER BY table_size DESC LIMIT v_top) t),
        'tablesNeedingVacuum', (SELECT coalesce(jsonb_agg(x ORDER BY (x ->> 'n_dead_tup')::bigint DESC), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'n_dead_tup', n_dead_tup,
                                       'n_live_tup', n_live_tup, 'dead_tuple_ratio', dead_tuple_ratio,
                                       'last_vacuum_any', last_vacuum_any) AS x
               FROM th WHERE needs_vacuum ORDER BY n_dead_tup DESC LIMIT v_list) v),
        'tablesNeedingAnalyze', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname),
                                       'last_analyze_any', last_analyze_any, 'n_mod_since_analyze', n_mod_since_analyze) AS x
               FROM th WHERE needs_analyze ORDER BY n_mod_since_analyze DESC NULLS LAST, table_size DESC LIMIT v_list) v),
        'tablesVacuumOverdue', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'n_dead_tup', n_dead_tup,
                                       'n_live_tup', n_live_tup, 'last_vacuum_any', last_vacuum_any,
                                       'days_since_vacuum', round((extract(epoch FROM now() - last_vacuum_any) / 86400)::numeric, 1)) AS x
               FROM th WHERE vacuum_overdue ORDER BY n_dead_tup DESC LIMIT v_list) v),
        'missingIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'table_size', table_size,
                                       'seq_scan', seq_scan, 'seq_tup_read', seq_tup_read, 'idx_scan', idx_scan,
                                       'seq_scan_pct', seq_scan_pct) AS x
               FROM mi ORDER BY seq_tup_read DESC LIMIT v_list) v),
        'queryStats', (SELECT jsonb_build_object('hours', 24, 'count', count(*),
                                                 'slow_count', count(*) FILTER (WHERE l.duration_ms > v_slow),
                                                 'avg_ms', round(avg(l.duration_ms), 1),
                                                 'p95_ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms))::numeric, 1))
                         FROM steward.query_performance_logs l
                        WHERE l.execution_timestamp > now() - interval '24 hours'),
        'bloatedTables', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('table', format('%I.%I', schemaname, relname), 'bloat_pct', bloat_pct,
                                       'bloat_bytes', bloat_bytes, 'table_size', table_size, 'confidence', bloat_confidence) AS x
               FROM th WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'
              ORDER BY bloat_bytes DESC LIMIT v_list) v),
        'indexes', (SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.index_size DESC), '[]')
                      FROM (SELECT * FROM ih ORDER BY index_size DESC LIMIT v_top) i),
        'unusedIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexrelname), 'table', format('%I.%I', schemaname, relname),
                                       'index_size', index_size, 'days_since_last_use', days_since_last_use) AS x
               FROM ih WHERE is_unused ORDER BY index_size DESC LIMIT v_list) v),
        'bloatedIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexrelname), 'table', format('%I.%I', schemaname, relname),
                                       'index_size', index_size, 'bloat_pct', bloat_pct, 'bloat_bytes', bloat_bytes,
                                       'confidence', bloat_confidence) AS x
               FROM ih WHERE bloat_pct > v_bloat AND bloat_bytes >= v_min AND bloat_confidence <> 'unknown'
              ORDER BY bloat_bytes DESC LIMIT v_list) v),
        'duplicateIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexname), 'table', format('%I.%I', schemaname, tablename),
                                       'kind', kind, 'covered_by', format('%I.%I', schemaname, covered_by),
                                       'index_size', index_size, 'definition', index_definition,
                                       'covered_by_definition', covered_by_definition) AS x
               FROM dup ORDER BY index_size DESC LIMIT v_list) v),
        'invalidIndexes', (SELECT coalesce(jsonb_agg(x), '[]') FROM (
             SELECT jsonb_build_object('index', format('%I.%I', schemaname, indexname), 'table', format('%I.%I', schemaname, tablename),
                                       'index_size', index_size, 'likely_cause', likely_cause, 'definition', index_definition) AS x
               FROM inv LIMIT v_list) v),
        'slowQueries', (SELECT coalesce(jsonb_agg(to_jsonb(q) ORDER BY q.avg_duration_ms DESC), '[]') FROM (SELECT * FROM sq LIMIT v_list) q),
        'connectionPool', (SELECT to_jsonb(c) FROM steward.connection_pool_metrics() c),
        'longRunning', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]') FROM (SELECT * FROM lr WHERE kind = 'long_running' LIMIT v_list) l),
        'idleInTransaction', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]') FROM (SELECT * FROM lr WHERE kind = 'idle_in_transaction' LIMIT v_list) l),
        'blocking', (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM (SELECT * FROM steward._blocking_chains_for(caller) LIMIT v_list) b),
        'replication', steward.replication_health(),
        'wraparound', jsonb_build_object(
            'databases', (SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') FROM steward.database_wraparound() d),
            'tables', (SELECT coalesce(jsonb_agg(jsonb_build_object('table', format('%I.%I', schemaname, tablename),
                                                                    'xid_age', xid_age, 'pct_of_freeze_max_age', pct_of_freeze_max_age)), '[]')
                         FROM twrap)),
        'sequences', (SELECT coalesce(jsonb_agg(jsonb_build_object('sequence', format('%I.%I', schemaname, sequencename),
                                                                   'owned_by', owned_by, 'pct_used', pct_used,
                                                                   'last_value', last_value, 'effective_max', effective_max)), '[]')
                        FROM (SELECT * FROM seqs LIMIT v_list) s),
        'alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.created_at DESC), '[]') FROM (
             SELECT id, alert_type, severity, message, details, created_at, acknowledged_at
               FROM steward.performance_alerts WHERE resolved_at IS NULL
              ORDER BY created_at DESC LIMIT v_list) a)
    ) INTO r;
    RETURN r || jsonb_build_object('recommendations', steward._report_recommendations(r, v_rules));
END
$$;

-- One rule table for the report's recommendations and the alerts (issue #16; CONTRACT §1, §2).
-- A rule reads one metric of the health report (what each metric measures is Rust:
-- src/alerts/rules.rs), grades each object it is about by thresholds per severity, and says
-- what to write.  Findings of severity info only appear in the report; warning and above are
-- alerts, kept by steward.check_alerts(): one open alert per rule and object (its
-- fingerprint), updated while the rule fires, escalated or de-escalated when its severity
-- changes, resolved when the rule has not fired for alertResolveAfterChecks checks.  Every
-- open/escalate/de-escalate/resolve/acknowledge is sent with pg_notify on channel
-- steward_alerts (see the README for the payload).

-- Built-in rules.  Part of the extension script (never dumped); administrators change
-- thresholds and switch rules off through steward.set_alert_rule() (alert_rule_overrides).
CREATE TABLE steward.alert_rules (
    rule_id           text PRIMARY KEY CHECK (rule_id ~ '^[a-z][a-z0-9_]{0,62}$'),
    position          integer NOT NULL UNIQUE,
    alert_type        text NOT NULL CHECK (alert_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    metric            text NOT NULL CHECK (metric IN (
                          'cache_hit_ratio', 'query_mean_ms', 'query_p95_ms', 'connection_usage_pct',
                          'connection_held_pct', 'table_bloat_pct', 'index_bloat_pct', 'unused_index',
                          'duplicate_index', 'invalid_index', 'seq_scan_pct', 'dead_tuple_ratio',
                          'vacuum_overdue', 'analyze_overdue', 'xid_wraparound_pct', 'mxid_wraparound_pct',
                          'table_freeze_age_pct', 'sequence_used_pct', 'long_running_seconds',
                          'idle_in_transaction_seconds', 'blocked_seconds', 'slot_retained_bytes',
                          'slot_inactive', 'replication_lag_bytes', 'stat_statements_missing',
                          'ai_budget_share', 'api_key_overdue_days')),
    object_kind       text NOT NULL CHECK (object_kind IN ('database', 'table', 'index', 'query', 'session', 'sequence', 'slot', 'standby',
                                                           'user', 'configuration')),
    direction         text NOT NULL CHECK (direction IN ('above', 'below')),
    info_at           numeric,
    warning_at        numeric,
    error_at          numeric,
    critical_at       numeric,
    -- A setting that supplies one tier's threshold (changing the setting moves the rule).
    threshold_setting text REFERENCES steward.setting_defaults (key),
    threshold_tier    text CHECK (threshold_tier IN ('info', 'warning', 'error', 'critical')),
    category          text NOT NULL CHECK (category IN ('performance', 'maintenance', 'capacity', 'optimization')),
    priority          text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    title             text NOT NULL,
    description       text NOT NULL,
    message           text NOT NULL,
    action            text NOT NULL,
    impact            text NOT NULL,
    effort            text NOT NULL CHECK (effort IN ('low', 'medium', 'high')),
    -- Clear checks before an open alert resolves (NULL: the alertResolveAfterChecks setting).
    resolve_after_checks integer CHECK (resolve_after_checks BETWEEN 1 AND 1000),
    CHECK ((threshold_setting IS NULL) = (threshold_tier IS NULL)),
    CHECK (coalesce(info_at, warning_at, error_at, critical_at) IS NOT NULL OR threshold_setting IS NOT NULL)
);

-- Templates: {object} {value} {threshold} {n} {names}, a field of the object {field}, a size
-- {field:bytes}, fixed decimals {field:1}, a plural {n|one|many}.
INSERT INTO steward.alert_rules (rule_id, position, alert_type, metric, object_kind, direction, info_at, warning_at, error_at, critical_at,
                                 threshold_setting, threshold_tier, category, priority, title, description, message, action, impact, effort) VALUES
    ('low_cache_hit_ratio', 10, 'low_cache_hit_ratio', 'cache_hit_ratio', 'database', 'below', NULL, 90, 80, 60,
     'lowCacheHitRatioThreshold', 'warning', 'performance', 'high',
     'Low cache hit ratio',
     'Only {value:1}% of block reads are served from shared buffers (threshold {threshold}%).',
     'Cache hit ratio of {object} is {value:1}%',
     'Increase shared_buffers (typically 25% of RAM) and review queries that scan large tables.',
     'Fewer disk reads and faster queries', 'low'),
    ('slow_query', 20, 'slow_query', 'query_mean_ms', 'query', 'above', 500, 1000, 2000, NULL,
     'slowQueryThresholdMs', 'info', 'performance', 'high',
     '{n} {n|slow query|slow queries} above {threshold} ms',
     'Queries whose mean execution time exceeds the slow-query threshold: {names}.',
     'Query {object} averages {value:0} ms',
     'EXPLAIN (ANALYZE, BUFFERS) the slowest queries; add missing indexes or rewrite them.',
     'Lower latency for the affected endpoints', 'medium'),
    ('slow_query_p95', 30, 'slow_query_p95', 'query_p95_ms', 'database', 'above', NULL, 1000, 2000, NULL,
     NULL, NULL, 'performance', 'high',
     'Query time p95 above {threshold} ms',
     'The 95th percentile of the logged query times of the last {hours} hours is {value:0} ms.',
     'p95 of the logged query times of {object} is {value:0} ms over {count} queries',
     'Find the endpoints behind the slowest logged queries (query_performance_logs) and fix them first.',
     'Faster responses for most users', 'medium'),
    ('high_connection_usage', 40, 'high_connection_usage', 'connection_usage_pct', 'database', 'above', NULL, 80, 90, 95,
     'highConnectionUsageThreshold', 'warning', 'capacity', 'high',
     'High connection usage',
     '{total} of {max_connections} connections in use ({value:1}%, threshold {threshold}%).',
     '{total} of {max_connections} connections in use ({value:1}%)',
     'Raise max_connections or pool connections with PgBouncer.',
     'Avoids refused connections at peak load', 'medium'),
    ('connection_pool', 50, 'connection_pool', 'connection_held_pct', 'database', 'above', NULL, 10, 25, 50,
     NULL, NULL, 'capacity', 'medium',
     'Connections held idle in transaction or waiting',
     '{idle_in_transaction} idle in transaction and {waiting} waiting: {value:1}% of max_connections held without work.',
     '{value:1}% of max_connections held by sessions idle in transaction ({idle_in_transaction}) or waiting ({waiting})',
     'Set idle_in_transaction_session_timeout, release connections promptly, and use transaction pooling.',
     'Frees connection slots for real work', 'low'),
    ('invalid_index', 60, 'invalid_index', 'invalid_index', 'index', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'maintenance', 'high',
     '{n} invalid {n|index|indexes}',
     'Invalid indexes are maintained on every write but never used: {names}.',
     'Index {object} on {table} is invalid ({likely_cause})',
     'DROP INDEX CONCURRENTLY the leftover (often a failed CREATE/REINDEX CONCURRENTLY, named *_ccnew), then rebuild it if it is needed.',
     'Removes write overhead and restores the intended index', 'low'),
    ('xid_wraparound', 70, 'xid_wraparound', 'xid_wraparound_pct', 'database', 'above', NULL, 50, 75, 90,
     NULL, NULL, 'maintenance', 'high',
     'Transaction ID wraparound approaching',
     'Database {object} has used {value:1}% of the transaction IDs before wraparound.',
     'Database {object} has used {value:1}% of its transaction IDs (age {xid_age})',
     'VACUUM (FREEZE) the oldest tables; check for long transactions, stale replication slots and prepared transactions holding back the horizon.',
     'Prevents a forced shutdown to avoid wraparound', 'medium'),
    ('multixact_wraparound', 80, 'multixact_wraparound', 'mxid_wraparound_pct', 'database', 'above', NULL, 50, 75, 90,
     NULL, NULL, 'maintenance', 'high',
     'Multixact ID wraparound approaching',
     'Database {object} has used {value:1}% of the multixact IDs before wraparound.',
     'Database {object} has used {value:1}% of its multixact IDs (age {mxid_age})',
     'VACUUM (FREEZE) the tables with the oldest relminmxid; look for long transactions holding row locks.',
     'Prevents a forced shutdown to avoid wraparound', 'medium'),
    ('sequence_exhaustion', 90, 'sequence_exhaustion', 'sequence_used_pct', 'sequence', 'above', NULL, 75, 90, 95,
     'sequenceUsageThresholdPercent', 'warning', 'capacity', 'high',
     '{n} {n|sequence close to exhaustion|sequences close to exhaustion}',
     'Sequences (or the columns they feed) above {threshold}% of their range: {names}.',
     'Sequence {object} has used {value:1}% of its range ({last_value} of {effective_max})',
     'Convert the column and sequence to bigint before they run out.',
     'Prevents failing inserts', 'high'),
    ('blocking_chain', 100, 'blocking_chain', 'blocked_seconds', 'session', 'above', 0, 30, 300, NULL,
     NULL, NULL, 'performance', 'high',
     '{n} blocked {n|session|sessions}',
     'Sessions are waiting on locks held by other sessions: {names}.',
     'Session {object}: waiting {value:0} s for a lock',
     'Inspect the blocking sessions (steward.blocking_chains()); end or shorten the transactions that hold the locks.',
     'Unblocks waiting requests', 'low'),
    ('replication_slot_retained_wal', 110, 'replication_slot_retained_wal', 'slot_retained_bytes', 'slot', 'above', NULL, 1073741824, 10737418240, NULL,
     'replicationSlotRetainedBytes', 'warning', 'capacity', 'high',
     '{n} replication {n|slot retains|slots retain} too much WAL',
     'WAL is kept for {names} (above replicationSlotRetainedBytes); a slot nobody consumes fills the disk.',
     'Replication slot {object} retains {value:bytes} of WAL (wal_status {wal_status})',
     'Reconnect the consumer, or drop the slot if it is abandoned (SELECT pg_drop_replication_slot(name)); consider max_slot_wal_keep_size.',
     'Prevents a full disk and a stopped server', 'low'),
    ('replication_slot_inactive', 120, 'replication_slot_inactive', 'slot_inactive', 'slot', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'capacity', 'medium',
     '{n} inactive replication {n|slot|slots}',
     'No consumer is connected to {names}; the WAL they hold back keeps growing.',
     'Replication slot {object} has no consumer',
     'Reconnect the consumer or drop the slot.',
     'Stops WAL accumulating', 'low'),
    ('replication_lag', 130, 'replication_lag', 'replication_lag_bytes', 'standby', 'above', NULL, 67108864, 1073741824, NULL,
     'replicationLagBytes', 'warning', 'capacity', 'high',
     '{n} {n|standby lags|standbys lag} behind',
     'Replay is behind by more than replicationLagBytes: {names}.',
     'Standby {object} replays {value:bytes} behind',
     'Check the standby''s I/O and network, long queries on it (hot_standby_feedback, max_standby_streaming_delay) and its WAL apply rate.',
     'Keeps reads on standbys fresh and failover fast', 'medium'),
    ('dead_tuples', 140, 'vacuum_needed', 'dead_tuple_ratio', 'table', 'above', 10, 100, NULL, NULL,
     'deadTupleRatioThreshold', 'info', 'maintenance', 'medium',
     '{n} {n|table needs|tables need} VACUUM',
     'Dead tuples exceed {threshold}% of live tuples in: {names}.',
     'Table {object} has {n_dead_tup} dead tuples ({value:1}% of live)',
     'VACUUM (ANALYZE) these tables and lower autovacuum_vacuum_scale_factor for the busiest ones.',
     'Reclaims space and keeps scans fast', 'low'),
    ('vacuum_overdue', 150, 'vacuum_overdue', 'vacuum_overdue', 'table', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'maintenance', 'medium',
     '{n} {n|table|tables} overdue for VACUUM',
     'Tables with dead tuples and no VACUUM for more than vacuumOverdueDays: {names}.',
     'Table {object} has {n_dead_tup} dead tuples and no VACUUM since {last_vacuum_any}',
     'Check why autovacuum skips them (long transactions, autovacuum settings per table) and VACUUM them.',
     'Keeps bloat and wraparound risk down', 'low'),
    ('high_bloat', 160, 'high_bloat', 'table_bloat_pct', 'table', 'above', NULL, 20, 35, 50,
     'highBloatThresholdPercent', 'warning', 'maintenance', 'medium',
     '{n} {n|table|tables} with high bloat',
     'Estimated bloat above {threshold}%: {names}.',
     'Table {object} is {value:1}% bloat ({bloat_bytes:bytes} of {table_size:bytes}, confidence {confidence})',
     'Rewrite in a quiet window (VACUUM FULL takes an exclusive lock; pg_repack does not).',
     'Returns disk space and shortens scans', 'medium'),
    ('high_index_bloat', 170, 'high_bloat', 'index_bloat_pct', 'index', 'above', NULL, 20, 35, 50,
     'highBloatThresholdPercent', 'warning', 'maintenance', 'medium',
     '{n} {n|index|indexes} with high bloat',
     'Estimated bloat above {threshold}%: {names}.',
     'Index {object} is {value:1}% bloat ({bloat_bytes:bytes} of {index_size:bytes}, confidence {confidence})',
     'REINDEX INDEX CONCURRENTLY in a quiet window.',
     'Returns disk space and speeds up index scans', 'low'),
    ('unused_index', 180, 'unused_index', 'unused_index', 'index', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'optimization', 'medium',
     '{n} unused {n|index|indexes}',
     'No scans for more than unusedIndexDays days: {names}.',
     'Index {object} on {table} has not been scanned for {days_since_last_use:1} days ({index_size:bytes})',
     'Confirm on replicas too, then DROP INDEX CONCURRENTLY.',
     'Faster writes, less storage and vacuum work', 'low'),
    ('missing_index', 190, 'missing_index', 'seq_scan_pct', 'table', 'above', NULL, 50, 90, NULL,
     NULL, NULL, 'performance', 'medium',
     '{n} large {n|table is|tables are} mostly read by sequential scans',
     'Sequential scans dominate on: {names}.',
     'Table {object} ({table_size:bytes}): {value:1}% of its scans are sequential ({seq_scan} scans, {seq_tup_read} rows read)',
     'Find the queries that scan these tables (pg_stat_statements, EXPLAIN) and index their filter columns.',
     'Queries that read a few rows stop reading whole tables', 'medium'),
    ('duplicate_index', 200, 'duplicate_index', 'duplicate_index', 'index', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'optimization', 'medium',
     '{n} duplicate or redundant {n|index|indexes}',
     'Covered by another index on the same table: {names}.',
     'Index {object} is covered by {covered_by}',
     'DROP INDEX CONCURRENTLY the index; the covering index serves the same queries.',
     'Faster writes, less storage', 'low'),
    ('long_running_query', 210, 'long_running_query', 'long_running_seconds', 'session', 'above', NULL, 300, 1800, NULL,
     'longRunningQuerySeconds', 'warning', 'performance', 'medium',
     '{n} long-running {n|query|queries}',
     'Active queries running longer than {threshold} s: {names}.',
     'Session {object} ({usename}) has run one query for {value:0} s',
     'Check the query plan, set statement_timeout for the role, or cancel it (pg_cancel_backend).',
     'Releases locks and lets VACUUM keep up', 'low'),
    ('idle_in_transaction', 220, 'idle_in_transaction', 'idle_in_transaction_seconds', 'session', 'above', NULL, 60, 600, 3600,
     'idleInTransactionSeconds', 'warning', 'performance', 'medium',
     '{n} {n|session|sessions} idle in transaction',
     'Transactions left open longer than {threshold} s: {names}.',
     'Session {object} ({usename}) has been idle in a transaction for {value:0} s',
     'Set idle_in_transaction_session_timeout; fix the application code paths that leave transactions open.',
     'Lets VACUUM keep up and releases locks', 'low'),
    ('freeze_age', 230, 'freeze_age', 'table_freeze_age_pct', 'table', 'above', 100, 400, 800, NULL,
     NULL, NULL, 'maintenance', 'medium',
     '{n} {n|table|tables} past autovacuum_freeze_max_age',
     'Anti-wraparound vacuum is due on: {names}.',
     'Table {object} is at {value:0}% of autovacuum_freeze_max_age (xid age {xid_age})',
     'VACUUM (FREEZE) these tables in a quiet period.',
     'Keeps the database far from wraparound', 'low'),
    ('analyze_overdue', 240, 'analyze_overdue', 'analyze_overdue', 'table', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'maintenance', 'low',
     '{n} {n|table needs|tables need} ANALYZE',
     'Never analysed or not analysed for analyzeOverdueDays: {names}.',
     'Table {object} was last analysed {last_analyze_any} ({n_mod_since_analyze} rows changed since)',
     'ANALYZE these tables; planner estimates and bloat estimates depend on it.',
     'Better query plans', 'low'),
    ('pg_stat_statements_missing', 250, 'pg_stat_statements_missing', 'stat_statements_missing', 'database', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'optimization', 'low',
     'pg_stat_statements is not enabled',
     'Slow queries are only known from the application''s query_performance_logs.',
     'pg_stat_statements is not loaded in {object}',
     'Add pg_stat_statements to shared_preload_libraries, restart, and CREATE EXTENSION pg_stat_statements.',
     'Server-side view of every slow query', 'low');

-- AI spending and API keys (issue #17): read by check_alerts() only (sources outside the
-- health report).  ai_budget: one alert per user, period (day, week, month), period start
-- and level — each of the user's effective costBudget.alertThresholds crossed (the highest
-- error, lower ones warning) and the budget exceeded (critical) — so each is raised once per
-- period; the rule's tiers are not used (warning_at 0 only marks it as an alert rule).  Both
-- resolve at the first check where they no longer hold (a new period, a raised budget, a
-- rotated key; rotate_api_key resolves its configuration's alert at once).
INSERT INTO steward.alert_rules (rule_id, position, alert_type, metric, object_kind, direction, info_at, warning_at, error_at, critical_at,
                                 threshold_setting, threshold_tier, category, priority, title, description, message, action, impact, effort,
                                 resolve_after_checks) VALUES
    ('ai_budget', 260, 'ai_budget', 'ai_budget_share', 'user', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'capacity', 'high',
     'AI spending above the budget thresholds',
     'Users whose AI spending of the current day, week or month crossed an alert threshold of their budget.',
     'User {user_id} has spent {share_pct:0}% of the {budget_name} AI budget ({spend:2} of {budget:2} since {period_start}; level {level})',
     'Review the user''s usage (ai_spending), raise costBudget in the effective configuration, or switch on budgetEnforcement.',
     'Spending stays within what the configuration allows', 'low', 1),
    ('api_key_rotation_due', 270, 'api_key_rotation_due', 'api_key_overdue_days', 'configuration', 'above', NULL, 0, 30, NULL,
     NULL, NULL, 'maintenance', 'medium',
     'API keys due for rotation',
     'AI configurations whose API key is older than apiKeys.rotationSchedule allows (monthly: 30 days, quarterly: 90).',
     'The API key of AI configuration "{config_name}" ({owner}) is {value:0} days past its {rotation_schedule} rotation',
     'Rotate the key with steward.rotate_api_key(config_name, new_key[, reason, organization_id]).',
     'Limits what a leaked key can be used for', 'low', 1);

-- What administrators changed (dumped with the database).
CREATE TABLE steward.alert_rule_overrides (
    rule_id     text PRIMARY KEY REFERENCES steward.alert_rules (rule_id),
    enabled     boolean,
    info_at     numeric,
    warning_at  numeric,
    error_at    numeric,
    critical_at numeric,
    -- Which tiers were set explicitly (a tier set to null switches that tier off).
    tiers_set   text[] NOT NULL DEFAULT '{}',
    resolve_after_checks integer CHECK (resolve_after_checks BETWEEN 1 AND 1000),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by  text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.alert_rule_overrides', '');

CREATE VIEW steward.effective_alert_rules AS
SELECT r.rule_id, r.position, r.alert_type, r.metric, r.object_kind, r.direction,
       coalesce(o.enabled, true) AS enabled,
       CASE WHEN 'info' = ANY (o.tiers_set) THEN o.info_at
            WHEN r.threshold_tier = 'info' THEN (s.value #>> '{}')::numeric ELSE r.info_at END AS info_at,
       CASE WHEN 'warning' = ANY (o.tiers_set) THEN o.warning_at
            WHEN r.threshold_tier = 'warning' THEN (s.value #>> '{}')::numeric ELSE r.warning_at END AS warning_at,
       CASE WHEN 'error' = ANY (o.tiers_set) THEN o.error_at
            WHEN r.threshold_tier = 'error' THEN (s.value #>> '{}')::numeric ELSE r.error_at END AS error_at,
       CASE WHEN 'critical' = ANY (o.tiers_set) THEN o.critical_at
            WHEN r.threshold_tier = 'critical' THEN (s.value #>> '{}')::numeric ELSE r.critical_at END AS critical_at,
       coalesce(o.resolve_after_checks, r.resolve_after_checks,
                (SELECT (e.value #>> '{}')::integer FROM steward.effective_settings e
                  WHERE e.key OPERATOR(pg_catalog.=) 'alertResolveAfterChecks')) AS resolve_after_checks,
       r.threshold_setting, r.threshold_tier,
       r.category, r.priority, r.title, r.description, r.message, r.action, r.impact, r.effort,
       CASE WHEN o.rule_id IS NULL THEN 'default' ELSE 'database' END AS source,
       o.updated_at, o.updated_by
  FROM steward.alert_rules r
  LEFT JOIN steward.alert_rule_overrides o ON o.rule_id OPERATOR(pg_catalog.=) r.rule_id
  LEFT JOIN steward.effective_settings s ON s.key OPERATOR(pg_catalog.=) r.threshold_setting;

-- The rules as the evaluator reads them (src/alerts/rules.rs: Rule).
CREATE FUNCTION steward._alert_rules_json() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.position), '[]') FROM steward.effective_alert_rules r
$$;

-- Change a rule (admins): switch it on or off, set thresholds per severity (a JSON object with
-- any of info, warning, error, critical; a number, or null to switch that tier off), and how
-- many checks without the condition resolve its alerts.  Unknown rules, unknown tiers,
-- non-numbers and thresholds out of order (for an "above" rule warning above critical, say)
-- are refused with 22023 listing every problem.
CREATE FUNCTION steward._set_alert_rule_impl(
    p_rule_id text, p_enabled boolean DEFAULT NULL, p_thresholds jsonb DEFAULT NULL,
    p_resolve_after_checks integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.alert_rules;
    o steward.alert_rule_overrides;
    v_problems text[] := '{}';
    v_key text;
    v_val jsonb;
    v_eff record;
    v_tiers numeric[];
    v_prev numeric;
    v_name text;
    i integer;
BEGIN
    PERFORM steward._require_writable();
    SELECT * INTO r FROM steward.alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown alert rule %', coalesce(quote_literal(p_rule_id), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Known rules: ' || (SELECT string_agg(rule_id, ', ' ORDER BY position) FROM steward.alert_rules);
    END IF;
    SELECT * INTO o FROM steward.alert_rule_overrides WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id FOR UPDATE;
    IF NOT FOUND THEN
        o.rule_id := p_rule_id;
        o.tiers_set := '{}';
    END IF;
    IF p_thresholds IS NOT NULL THEN
        IF jsonb_typeof(p_thresholds) <> 'object' THEN
            v_problems := v_problems || format('thresholds must be a JSON object, got %s', jsonb_typeof(p_thresholds));
        ELSE
            FOR v_key, v_val IN SELECT key, value FROM jsonb_each(p_thresholds) LOOP
                IF v_key NOT IN ('info', 'warning', 'error', 'critical') THEN
                    v_problems := v_problems || format('unknown severity %s (info, warning, error, critical)', quote_literal(v_key));
                ELSIF jsonb_typeof(v_val) NOT IN ('number', 'null') THEN
                    v_problems := v_problems || format('%s must be a number or null, got %s', v_key, jsonb_typeof(v_val));
                ELSIF jsonb_typeof(v_val) = 'number' AND abs((v_val #>> '{}')::numeric) > 1e15 THEN
                    v_problems := v_problems || format('%s is out of range', v_key);
                ELSE
                    CASE v_key
                        WHEN 'info' THEN o.info_at := (v_val #>> '{}')::numeric;
                        WHEN 'warning' THEN o.warning_at := (v_val #>> '{}')::numeric;
                        WHEN 'error' THEN o.error_at := (v_val #>> '{}')::numeric;
                        ELSE o.critical_at := (v_val #>> '{}')::numeric;
                    END CASE;
                    IF NOT v_key = ANY (o.tiers_set) THEN
                        o.tiers_set := o.tiers_set || v_key;
                    END IF;
                END IF;
            END LOOP;
        END IF;
    END IF;
    IF p_resolve_after_checks IS NOT NULL AND p_resolve_after_checks NOT BETWEEN 1 AND 1000 THEN
        v_problems := v_problems || format('resolve_after_checks must be between 1 and 1000, got %s', p_resolve_after_checks);
    END IF;
    IF cardinality(v_problems) = 0 THEN
        o.enabled := coalesce(p_enabled, o.enabled);
        o.resolve_after_checks := coalesce(p_resolve_after_checks, o.resolve_after_checks);
        o.updated_at := now();
        o.updated_by := steward.caller_id();
        INSERT INTO steward.alert_rule_overrides VALUES (o.*)
        ON CONFLICT (rule_id) DO UPDATE SET enabled = EXCLUDED.enabled, info_at = EXCLUDED.info_at,
            warning_at = EXCLUDED.warning_at, error_at = EXCLUDED.error_at, critical_at = EXCLUDED.critical_at,
            tiers_set = EXCLUDED.tiers_set, resolve_after_checks = EXCLUDED.resolve_after_checks,
            updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
        -- The result must still be a rule: some tier in use, tiers in order.
        SELECT * INTO v_eff FROM steward.effective_alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
        v_tiers := ARRAY[v_eff.info_at, v_eff.warning_at, v_eff.error_at, v_eff.critical_at];
        IF v_tiers = ARRAY[NULL, NULL, NULL, NULL]::numeric[] THEN
            v_problems := v_problems || 'every severity would be switched off (set enabled => false to switch the rule off)'::text;
        END IF;
        v_prev := NULL;
        FOR i IN 1 .. 4 LOOP
            CONTINUE WHEN v_tiers[i] IS NULL;
            v_name := (ARRAY['info', 'warning', 'error', 'critical'])[i];
            IF v_prev IS NOT NULL AND ((r.direction = 'above' AND v_tiers[i] < v_prev) OR (r.direction = 'below' AND v_tiers[i] > v_prev)) THEN
                v_problems := v_problems || format('%s (%s) is %s a lower severity''s threshold (%s): rule %s fires %s its thresholds',
                                                   v_name, v_tiers[i], CASE r.direction WHEN 'above' THEN 'below' ELSE 'above' END,
                                                   v_prev, p_rule_id, r.direction);
            END IF;
            v_prev := v_tiers[i];
        END LOOP;
    END IF;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid alert rule change for %', p_rule_id
            USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    RETURN (SELECT to_jsonb(e) FROM steward.effective_alert_rules e WHERE e.rule_id OPERATOR(pg_catalog.=) p_rule_id);
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.set_alert_rule(
    p_rule_id text, p_enabled boolean DEFAULT NULL, p_thresholds jsonb DEFAULT NULL,
    p_resolve_after_checks integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('rule', p_rule_id, 'enabled', p_enabled, 'thresholds', p_thresholds, 'resolveAfterChecks', p_resolve_after_checks);
BEGIN
    r := steward._set_alert_rule_impl(p_rule_id, p_enabled, p_thresholds, p_resolve_after_checks);
    PERFORM steward._admin_logged('steward.set_alert_rule', a, NULL);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.set_alert_rule', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Back to the built-in rule (admins).
CREATE FUNCTION steward._reset_alert_rule_impl(p_rule_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM steward.alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id) THEN
        RAISE EXCEPTION 'unknown alert rule %', coalesce(quote_literal(p_rule_id), 'NULL') USING ERRCODE = '22023';
    END IF;
    DELETE FROM steward.alert_rule_overrides WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
    RETURN (SELECT to_jsonb(e) FROM steward.effective_alert_rules e WHERE e.rule_id OPERATOR(pg_catalog.=) p_rule_id);
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.reset_alert_rule(p_rule_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('rule', p_rule_id);
BEGIN
    r := steward._reset_alert_rule_impl(p_rule_id);
    PERFORM steward._admin_logged('steward.reset_alert_rule', a, NULL);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.reset_alert_rule', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- One row per check: what it found and did, and which rules it could not evaluate.
CREATE TABLE steward.alert_checks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    checked_by  text NOT NULL,
    duration_ms numeric NOT NULL,
    findings    integer NOT NULL,
    opened      integer NOT NULL,
    escalated   integer NOT NULL,
    deescalated integer NOT NULL,
    updated     integer NOT NULL,
    resolved    integer NOT NULL,
    unavailable jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX alert_checks_time ON steward.alert_checks (checked_at);
SELECT pg_catalog.pg_extension_config_dump('steward.alert_checks', '');

-- The notification every transition sends (channel steward_alerts; ids, names and levels
-- only: no statement texts, no details).  Any role may LISTEN, so alerts about a user or a
-- user's configuration (budgets, API keys) carry no object: admins read it with list_alerts.
CREATE FUNCTION steward._alert_notify(p_event text, a steward.performance_alerts, p_previous text DEFAULT NULL) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_notify('steward_alerts', pg_catalog.jsonb_build_object(
        'event', p_event, 'id', a.id, 'rule', a.rule_id, 'alert_type', a.alert_type, 'severity', a.severity,
        'previous_severity', p_previous, 'object_kind', a.object_kind,
        'object', CASE WHEN a.object_kind OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'configuration'])
                       THEN NULL ELSE pg_catalog.left(a.object_name, 512) END,
        'at', pg_catalog.now())::text)
$$;

CREATE FUNCTION steward._severity_rank(p text) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE p WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'error' THEN 2 WHEN 'critical' THEN 3 END $$;

-- Evaluate every rule over one pass of the health report and keep the alerts (the lifecycle
-- at the top of this file).  Returns the number of alerts opened or escalated.
CREATE FUNCTION steward._check_alerts_for(caller oid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_start  timestamptz := clock_timestamp();
    v_rules  jsonb;
    v_eval   jsonb;
    v_report jsonb;
    f record;
    a steward.performance_alerts;
    v_opened integer := 0;
    v_escalated integer := 0;
    v_deescalated integer := 0;
    v_updated integer := 0;
    v_resolved integer := 0;
    v_findings integer := 0;
    v_default_after integer := steward.setting_number('alertResolveAfterChecks')::integer;
BEGIN
    PERFORM steward._require_writable();
    -- One check at a time (two would both open the same alert).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward check_alerts'));
    v_rules := steward._alert_rules_json();
    v_report := steward._health_report_for(caller, steward.setting_number('alertObjectLimit')::integer)
                || jsonb_build_object('aiBudgets', steward._ai_budget_usage(), 'apiKeysDue', steward._ai_keys_due());
    v_eval := steward._report_findings(v_report, v_rules);

    FOR f IN
        SELECT x.*, (x.details IS NOT NULL) AS has_details
          FROM jsonb_to_recordset(v_eval -> 'findings')
               AS x(rule_id text, alert_type text, severity text, object_kind text, object_name text,
                    fingerprint text, value numeric, threshold numeric, message text, details jsonb)
         WHERE x.severity <> 'info'
    LOOP
        v_findings := v_findings + 1;
        SELECT * INTO a FROM steward.performance_alerts p
         WHERE p.fingerprint OPERATOR(pg_catalog.=) f.fingerprint AND p.resolved_at IS NULL
         FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO steward.performance_alerts
                   (alert_type, severity, message, details, rule_id, fingerprint, object_kind, object_name,
                    current_value, severity_history)
            VALUES (f.alert_type, f.severity, f.message,
                    jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                    f.rule_id, f.fingerprint, f.object_kind, f.object_name, f.value,
                    jsonb_build_array(jsonb_build_object('severity', f.severity, 'at', now(), 'value', f.value)))
            RETURNING * INTO a;
            v_opened := v_opened + 1;
            PERFORM steward._alert_notify('opened', a);
        ELSIF a.severity <> f.severity THEN
            UPDATE steward.performance_alerts p
               SET severity = f.severity, message = f.message,
                   details = jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                   current_value = f.value, occurrences = p.occurrences + 1, last_seen_at = now(), clear_checks = 0,
                   severity_history = p.severity_history || jsonb_build_array(jsonb_build_object('severity', f.severity, 'at', now(), 'value', f.value)),
                   -- Escalation wakes an acknowledged alert; de-escalation keeps it quiet.
                   acknowledged_at = CASE WHEN steward._severity_rank(f.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_at END,
                   acknowledged_by = CASE WHEN steward._severity_rank(f.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_by END
             WHERE p.id OPERATOR(pg_catalog.=) a.id;
            IF steward._severity_rank(f.severity) > steward._severity_rank(a.severity) THEN
                v_escalated := v_escalated + 1;
                PERFORM steward._alert_notify('escalated', p, a.severity)
                   FROM steward.performance_alerts p WHERE p.id OPERATOR(pg_catalog.=) a.id;
            ELSE
                v_deescalated := v_deescalated + 1;
                IF a.acknowledged_at IS NULL THEN
                    PERFORM steward._alert_notify('deescalated', p, a.severity)
                       FROM steward.performance_alerts p WHERE p.id OPERATOR(pg_catalog.=) a.id;
                END IF;
            END IF;
        ELSE
            UPDATE steward.performance_alerts p
               SET message = f.message,
                   details = jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                   current_value = f.value, occurrences = p.occurrences + 1, last_seen_at = now(), clear_checks = 0
             WHERE p.id OPERATOR(pg_catalog.=) a.id;
            v_updated := v_updated + 1;
        END IF;
    END LOOP;

    -- Open alerts of evaluated rules that did not fire this time: one more clear check, and
    -- resolved once they reach the rule's resolve_after_checks.
    FOR a IN
        WITH fired AS (
            SELECT x.fingerprint FROM jsonb_to_recordset(v_eval -> 'findings') AS x(fingerprint text, severity text)
             WHERE x.severity <> 'info'
        ), evaluated AS (
            SELECT e.rule_id FROM jsonb_array_elements_text(v_eval -> 'evaluated') AS e(rule_id)
        )
        UPDATE steward.performance_alerts p
           SET clear_checks = p.clear_checks + 1,
               resolved_at = CASE WHEN p.clear_checks + 1 >= coalesce(r.resolve_after_checks, v_default_after) THEN now() END,
               resolution_notes = CASE WHEN p.clear_checks + 1 >= coalesce(r.resolve_after_checks, v_default_after)
                                       THEN format('Resolved automatically: rule %s did not fire for %s consecutive checks (the condition cleared).',
                                                   p.rule_id, p.clear_checks + 1) END
          FROM steward.effective_alert_rules r
         WHERE p.resolved_at IS NULL AND p.fingerprint IS NOT NULL
           AND r.rule_id OPERATOR(pg_catalog.=) p.rule_id
           AND (p.rule_id IN (SELECT rule_id FROM evaluated) OR NOT r.enabled)
           AND p.fingerprint NOT IN (SELECT fingerprint FROM fired)
        RETURNING p.*
    LOOP
        IF a.resolved_at IS NOT NULL THEN
            v_resolved := v_resolved + 1;
            PERFORM steward._alert_notify('resolved', a);
        END IF;
    END LOOP;

    INSERT INTO steward.alert_checks (checked_by, duration_ms, findings, opened, escalated, deescalated, updated, resolved, unavailable)
    VALUES (steward.caller_id(), round((extract(epoch FROM clock_timestamp() - v_start) * 1000)::numeric, 1),
            v_findings, v_opened, v_escalated, v_deescalated, v_updated, v_resolved, coalesce(v_eval -> 'unavailable', '[]'));
    DELETE FROM steward.alert_checks WHERE checked_at < now() - interval '30 days';
    IF jsonb_array_length(coalesce(v_eval -> 'unavailable', '[]')) > 0 THEN
        RAISE NOTICE 'pg_steward: % alert rule(s) could not be evaluated; their alerts were neither raised nor resolved',
                     jsonb_array_length(v_eval -> 'unavailable')
            USING DETAIL = (SELECT string_agg(format('%s: %s', u ->> 'rule_id', u ->> 'reason'), '; ')
                              FROM jsonb_array_elements(v_eval -> 'unavailable') u);
    END IF;
    RETURN v_opened + v_escalated;
END
$$;

CREATE FUNCTION steward._check_alerts(tok bigint) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._check_alerts_for(steward._caller(tok, 'steward.check_alerts')) $$;

CREATE FUNCTION steward.check_alerts() RETURNS integer
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._check_alerts(steward._enter()) $$;

-- The alert list of the dashboard (admins), newest first, with filters and pagination:
-- status (open | acknowledged | unacknowledged | resolved | all; default open), severity,
-- alertType, rule, object (substring), startDate, endDate (created_at).
CREATE FUNCTION steward.list_alerts(filters jsonb DEFAULT '{}', page integer DEFAULT 1, page_size integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problems text[] := '{}';
    v_status text;
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
        IF k NOT IN ('status', 'severity', 'alertType', 'rule', 'object', 'startDate', 'endDate') THEN
            v_problems := v_problems || format('unknown filter %s (status, severity, alertType, rule, object, startDate, endDate)', quote_literal(k));
        ELSIF jsonb_typeof(filters -> k) NOT IN ('string', 'null') THEN
            v_problems := v_problems || format('filter %s must be a string', k);
        END IF;
    END LOOP;
    v_status := coalesce(filters ->> 'status', 'open');
    IF v_status NOT IN ('open', 'acknowledged', 'unacknowledged', 'resolved', 'all') THEN
        v_problems := v_problems || format('status %s is not one of open, acknowledged, unacknowledged, resolved, all', quote_literal(v_status));
    END IF;
    IF filters ->> 'severity' IS NOT NULL AND filters ->> 'severity' NOT IN ('info', 'warning', 'error', 'critical') THEN
        v_problems := v_problems || format('severity %s is not one of info, warning, error, critical', quote_literal(filters ->> 'severity'));
    END IF;
    BEGIN
        v_from := (filters ->> 'startDate')::timestamptz;
        v_to := (filters ->> 'endDate')::timestamptz;
    EXCEPTION WHEN OTHERS THEN
        v_problems := v_problems || 'startDate and endDate must be ISO 8601 timestamps'::text;
    END;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid alert filters' USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    WITH m AS (
        SELECT p.* FROM steward.performance_alerts p
         WHERE CASE v_status
                   WHEN 'open' THEN p.resolved_at IS NULL
                   WHEN 'acknowledged' THEN p.resolved_at IS NULL AND p.acknowledged_at IS NOT NULL
                   WHEN 'unacknowledged' THEN p.resolved_at IS NULL AND p.acknowledged_at IS NULL
                   WHEN 'resolved' THEN p.resolved_at IS NOT NULL
                   ELSE true END
           AND (filters ->> 'severity' IS NULL OR p.severity OPERATOR(pg_catalog.=) (filters ->> 'severity'))
           AND (filters ->> 'alertType' IS NULL OR p.alert_type OPERATOR(pg_catalog.=) (filters ->> 'alertType'))
           AND (filters ->> 'rule' IS NULL OR p.rule_id OPERATOR(pg_catalog.=) (filters ->> 'rule'))
           AND (filters ->> 'object' IS NULL OR strpos(lower(p.object_name), lower(filters ->> 'object')) > 0)
           AND (v_from IS NULL OR p.created_at >= v_from)
           AND (v_to IS NULL OR p.created_at <= v_to)
    )
    SELECT (SELECT count(*) FROM m),
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at DESC, x.id), '[]')
              FROM (SELECT * FROM m ORDER BY m.created_at DESC, m.id OFFSET (page - 1)::bigint * page_size LIMIT page_size) x)
      INTO v_total, v_rows;
    RETURN jsonb_build_object('alerts', v_rows, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', (page::bigint * page_size) < v_total);
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('check_alerts',       'steward.check_alerts()',                      'volatile', '{steward_admin,service_role}'),
    ('acknowledge_alert',  'steward.acknowledge_alert(uuid)',             'volatile', '{steward_admin,service_role}'),
    ('resolve_alert',      'steward.resolve_alert(uuid,text)',            'volatile', '{steward_admin,service_role}'),
    ('list_alerts',        'steward.list_alerts(jsonb,integer,integer)',  'stable',   '{steward_admin,service_role}');

CREATE OR REPLACE FUNCTION steward.create_performance_alert(
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

CREATE OR REPLACE FUNCTION steward.check_table_bloat_alerts() RETURNS integer
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

CREATE OR REPLACE FUNCTION steward.acknowledge_alert(p_alert_id uuid) RETURNS steward.performance_alerts
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

CREATE OR REPLACE FUNCTION steward.resolve_alert(p_alert_id uuid, p_resolution_notes text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION steward.schedule_jobs() RETURNS TABLE (jobname text, schedule text, command text, jobid bigint)
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


-- The monthly report with history (sql/monthly.sql) and its text renderer (Rust).
CREATE FUNCTION steward."_render_monthly_report"(
	"report" jsonb /* JsonB */
) RETURNS TEXT /* Result < String, ErrorReport > */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'render_monthly_report_wrapper';

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

-- Snapshots and trends (sql/trends.sql).
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

-- The maintenance console (sql/maintenance_console.sql).
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

-- The admin log (sql/admin_log.sql, src/audit/admin_log.rs) and the entry points that write it:
-- each action's body moves to steward._<name>_impl, the entry point keeps its name.
CREATE FUNCTION steward."_request_identity"() RETURNS jsonb /* JsonB */
STRICT STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'request_identity_wrapper';

CREATE FUNCTION steward."_admin_log_submit"(
	"row" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'admin_log_submit_wrapper';

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

CREATE FUNCTION steward._set_setting_impl(p_key text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d steward.setting_defaults;
    v numeric;
BEGIN
    PERFORM steward._require_writable();
    SELECT * INTO d FROM steward.setting_defaults WHERE key = p_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting "%"', p_key
            USING ERRCODE = '22023',
                  HINT = 'Known settings: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM steward.setting_defaults);
    END IF;
    IF p_value IS NULL OR jsonb_typeof(p_value) <> 'number' THEN
        RAISE EXCEPTION 'setting "%" must be a number', p_key
            USING ERRCODE = '22023', DETAIL = 'got ' || coalesce(jsonb_typeof(p_value), 'null');
    END IF;
    v := (p_value #>> '{}')::numeric;
    IF (d.min_value IS NOT NULL AND v < d.min_value) OR (d.max_value IS NOT NULL AND v > d.max_value) THEN
        RAISE EXCEPTION 'setting "%" out of range', p_key
            USING ERRCODE = '22023',
                  DETAIL = format('%s is outside [%s, %s]', v, coalesce(d.min_value::text, '-inf'), coalesce(d.max_value::text, 'inf'));
    END IF;
    INSERT INTO steward.settings (key, value, updated_at, updated_by)
    VALUES (p_key, p_value, now(), steward.caller_id())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
    RETURN p_value;
END
$$;

CREATE OR REPLACE FUNCTION steward.set_setting(p_key text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('key', p_key, 'value', p_value);
BEGIN
    r := steward._set_setting_impl(p_key, p_value);
    PERFORM steward._admin_logged('steward.set_setting', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.set_setting', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._reset_setting_impl(p_key text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM steward.setting_defaults WHERE key = p_key) THEN
        RAISE EXCEPTION 'unknown setting "%"', p_key USING ERRCODE = '22023';
    END IF;
    DELETE FROM steward.settings WHERE key = p_key;
    RETURN (SELECT value FROM steward.setting_defaults WHERE key = p_key);
END
$$;

CREATE OR REPLACE FUNCTION steward.reset_setting(p_key text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('key', p_key);
BEGIN
    r := steward._reset_setting_impl(p_key);
    PERFORM steward._admin_logged('steward.reset_setting', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.reset_setting', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._audit_purge_impl(older_than interval DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keep interval := coalesce(older_than, make_interval(days => steward.setting_number('auditRetentionDays')::int));
    v_min numeric := greatest(coalesce(steward.setting_number('auditPurgeMinimumDays'), 1), 1);
    v_now timestamptz := now();
    v_cutoff timestamptz;
    v_n bigint;
BEGIN
    PERFORM steward._require_writable();
    -- Timestamps are compared, not intervals: '-1 year 361 days' compares as more than a
    -- day (a year counts 360 days) yet puts the cutoff days in the future.
    v_cutoff := v_now - v_keep;
    IF v_cutoff > v_now THEN
        RAISE EXCEPTION 'the audit purge cutoff is in the future' USING ERRCODE = '22023',
              DETAIL = format('older_than %s puts the cutoff at %s, after now (%s): every entry would be removed.',
                              v_keep, v_cutoff, v_now),
              HINT = 'Give a positive interval such as ''400 days''; nothing was removed.';
    END IF;
    IF v_cutoff > v_now - v_min * interval '1 day' THEN
        RAISE EXCEPTION 'audit entries are kept at least % day(s)', v_min USING ERRCODE = '22023',
              DETAIL = format('older_than %s would remove entries younger than the minimum of %s day(s) (setting auditPurgeMinimumDays).',
                              v_keep, v_min),
              HINT = 'Give a longer interval; nothing was removed.';
    END IF;
    v_n := steward._audit_purge(v_cutoff, coalesce(dry_run, false));
    RETURN jsonb_build_object('cutoff', v_cutoff, 'entries', v_n, 'dry_run', coalesce(dry_run, false));
END
$$;

CREATE OR REPLACE FUNCTION steward.audit_purge(older_than interval DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('olderThan', older_than, 'dryRun', dry_run);
BEGIN
    r := steward._audit_purge_impl(older_than, dry_run);
    PERFORM steward._admin_logged('steward.audit_purge', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.audit_purge', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

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

CREATE OR REPLACE FUNCTION steward.migration_add(version bigint, description text, up text, down text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION steward._migration_apply(tok bigint, target_version bigint, dry_run boolean, force boolean) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION steward._migration_rollback(tok bigint, p_version bigint, force boolean) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION steward._run_maintenance(
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

CREATE FUNCTION steward._retention_set_impl(tok bigint, tbl regclass, timestamp_column name, keep interval,
                                       action text, archive_table regclass, batch_size integer)
RETURNS steward.retention_policies
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.retention_set');
    v_type regtype;
    v_src text;
    v_dst text;
    r steward.retention_policies;
BEGIN
    PERFORM steward._require_writable();
    IF tbl IS NULL OR timestamp_column IS NULL OR keep IS NULL THEN
        RAISE EXCEPTION 'tbl, timestamp_column and keep are required' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
    END IF;
    PERFORM steward._check_privileges(v_caller, tbl, '{select,delete}', 'a retention policy');
    SELECT a.atttypid::regtype INTO v_type FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = timestamp_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', timestamp_column, tbl USING ERRCODE = '42703';
    END IF;
    IF v_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of % is %, not a date or timestamp', timestamp_column, tbl, v_type
            USING ERRCODE = '42804';
    END IF;
    IF keep <= interval '0' THEN
        RAISE EXCEPTION 'keep must be a positive interval' USING ERRCODE = '22023', DETAIL = format('got %s', keep);
    END IF;
    IF action NOT IN ('delete', 'archive') THEN
        RAISE EXCEPTION 'action must be delete or archive' USING ERRCODE = '22023', DETAIL = format('got %s', action);
    END IF;
    IF (action = 'archive') <> (archive_table IS NOT NULL) THEN
        RAISE EXCEPTION 'an archive table is required for action archive, and only for it' USING ERRCODE = '22023';
    END IF;
    IF archive_table IS NOT NULL THEN
        PERFORM steward._check_privileges(v_caller, archive_table, '{insert}', 'archiving a retention policy''s rows');
        IF (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) archive_table)
           IS DISTINCT FROM (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl) THEN
            RAISE EXCEPTION 'archive table % has another owner than %', archive_table, tbl
                USING ERRCODE = '42501',
                      DETAIL = 'The rows move in one statement run as the owner of both tables.',
                      HINT = 'Give the archive table the owner of the source table.';
        END IF;
        SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum) INTO v_src
          FROM pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
        SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum) INTO v_dst
          FROM pg_attribute a WHERE a.attrelid = archive_table AND a.attnum > 0 AND NOT a.attisdropped;
        IF v_src IS DISTINCT FROM v_dst THEN
            RAISE EXCEPTION 'archive table % does not have the columns of %', archive_table, tbl
                USING ERRCODE = '42804', DETAIL = format('%s: (%s); %s: (%s)', tbl, v_src, archive_table, v_dst),
                      HINT = format('CREATE TABLE ... (LIKE %s) creates a matching archive table.', tbl);
        END IF;
    END IF;
    INSERT INTO steward.retention_policies AS p (table_name, timestamp_column, keep, action, archive_table, batch_size, created_by)
    VALUES (tbl, timestamp_column, keep, action, archive_table, batch_size, steward.caller_id())
    ON CONFLICT ON CONSTRAINT retention_policies_table_name_timestamp_column_key DO UPDATE
       SET keep = EXCLUDED.keep, action = EXCLUDED.action, archive_table = EXCLUDED.archive_table,
           batch_size = EXCLUDED.batch_size, enabled = true
    RETURNING * INTO r;
    RETURN r;
END
$$;

CREATE OR REPLACE FUNCTION steward._retention_set(tok bigint, tbl regclass, timestamp_column name, keep interval,
                                       action text, archive_table regclass, batch_size integer)
RETURNS steward.retention_policies
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.retention_policies;
    a jsonb := jsonb_build_object('table', tbl::text, 'timestampColumn', timestamp_column, 'keep', keep, 'action', action, 'archiveTable', archive_table::text, 'batchSize', batch_size);
BEGIN
    r := steward._retention_set_impl(tok, tbl, timestamp_column, keep, action, archive_table, batch_size);
    PERFORM steward._admin_logged('steward.retention_set', a, jsonb_build_object('policyId', r.id));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.retention_set', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._retention_run_impl(tok bigint, policy_id uuid, dry_run boolean)
RETURNS TABLE (policy uuid, relation text, policy_action text, cutoff timestamptz, eligible bigint,
               processed bigint, batches integer, was_dry_run boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.retention_run');
    p steward.retention_policies;
    v_cut timestamptz;
    v_eligible bigint;
    v_done bigint;
    v_n bigint;
    v_batches integer;
    v_started timestamptz;
    v_dry boolean := coalesce(_retention_run_impl.dry_run, false);
BEGIN
    PERFORM steward._require_writable();
    IF policy_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM steward.retention_policies x WHERE x.id = policy_id) THEN
        RAISE EXCEPTION 'retention policy % does not exist', policy_id USING ERRCODE = 'P0002';
    END IF;
    FOR p IN SELECT * FROM steward.retention_policies x
              WHERE (_retention_run_impl.policy_id IS NULL AND x.enabled) OR x.id = _retention_run_impl.policy_id
              ORDER BY x.created_at LOOP
        BEGIN
            PERFORM steward._check_privileges(v_caller, p.table_name, '{select,delete}', 'a retention run');
            IF p.archive_table IS NOT NULL THEN
                PERFORM steward._check_privileges(v_caller, p.archive_table, '{insert}', 'a retention run');
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            IF _retention_run_impl.policy_id IS NOT NULL THEN
                RAISE;
            END IF;
            RAISE WARNING 'retention policy % skipped: %', p.id, SQLERRM;
            CONTINUE;
        END;
        v_started := clock_timestamp();
        v_cut := now() - p.keep;
        v_eligible := (steward._select_as_owner(p.table_name,
            format('SELECT pg_catalog.to_jsonb(pg_catalog.count(*)) FROM %s WHERE %I < $1::pg_catalog.timestamptz',
                   p.table_name, p.timestamp_column), ARRAY[v_cut::text]) #>> '{}')::bigint;
        v_done := 0;
        v_batches := 0;
        IF NOT v_dry THEN
            LOOP
                IF p.action = 'archive' THEN
                    v_n := steward._exec_as_owner(p.table_name,
                        format('WITH gone AS (DELETE FROM %1$s WHERE ctid IN (SELECT ctid FROM %1$s WHERE %2$I < $1::pg_catalog.timestamptz LIMIT $2::pg_catalog.int8) RETURNING *)
                                INSERT INTO %3$s SELECT * FROM gone', p.table_name, p.timestamp_column, p.archive_table),
                        ARRAY[v_cut::text, p.batch_size::text]);
                ELSE
                    v_n := steward._exec_as_owner(p.table_name,
                        format('DELETE FROM %1$s WHERE ctid IN (SELECT ctid FROM %1$s WHERE %2$I < $1::pg_catalog.timestamptz LIMIT $2::pg_catalog.int8)',
                               p.table_name, p.timestamp_column),
                        ARRAY[v_cut::text, p.batch_size::text]);
                END IF;
                EXIT WHEN v_n = 0;
                v_done := v_done + v_n;
                v_batches := v_batches + 1;
                EXIT WHEN v_n < p.batch_size;
            END LOOP;
        END IF;
        INSERT INTO steward.retention_runs (policy_id, dry_run, cutoff, eligible, processed, batches, duration_ms, initiator)
        VALUES (p.id, v_dry, v_cut, v_eligible, v_done, v_batches,
                (extract(epoch FROM clock_timestamp() - v_started) * 1000)::bigint, steward.caller_id());
        policy := p.id; relation := p.table_name::text; policy_action := p.action; cutoff := v_cut;
        eligible := v_eligible; processed := v_done; batches := v_batches; was_dry_run := v_dry;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION steward._retention_run(tok bigint, policy_id uuid, dry_run boolean)
RETURNS TABLE (policy uuid, relation text, policy_action text, cutoff timestamptz, eligible bigint,
               processed bigint, batches integer, was_dry_run boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a jsonb := jsonb_build_object('policyId', policy_id, 'dryRun', dry_run);
    n bigint;
BEGIN
    RETURN QUERY SELECT * FROM steward._retention_run_impl(tok, policy_id, dry_run);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM steward._admin_logged('steward.retention_run', a, jsonb_build_object('rows', n));
    RETURN;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.retention_run', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._config_backup_impl(tok bigint, label text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.config_backup');
    t record;
    v_rows jsonb;
    v_tables jsonb := '{}';
    v_counts jsonb := '{}';
    v_id uuid;
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM steward.config_tables) THEN
        RAISE EXCEPTION 'no configuration table is registered' USING ERRCODE = 'P0002',
              HINT = 'steward.config_register(table) registers one.';
    END IF;
    FOR t IN SELECT c.table_name, format('%I.%I', n.nspname, k.relname) AS qualified
               FROM steward.config_tables c JOIN pg_class k ON k.oid OPERATOR(pg_catalog.=) c.table_name
               JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) k.relnamespace ORDER BY 2 LOOP
        PERFORM steward._check_privileges(v_caller, t.table_name, '{select}', 'a configuration backup');
    END LOOP;
    FOR t IN SELECT c.table_name, format('%I.%I', n.nspname, k.relname) AS qualified
               FROM steward.config_tables c JOIN pg_class k ON k.oid OPERATOR(pg_catalog.=) c.table_name
               JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) k.relnamespace ORDER BY 2 LOOP
        -- A consistent snapshot of every table: lock against writers for the copy.
        PERFORM steward._exec_as_owner(t.table_name, format('LOCK TABLE %s IN SHARE MODE', t.table_name));
        v_rows := steward._select_as_owner(t.table_name,
            format('SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x)), ''[]''::pg_catalog.jsonb) FROM %s x', t.table_name));
        v_tables := v_tables || jsonb_build_object(t.qualified, v_rows);
        v_counts := v_counts || jsonb_build_object(t.qualified, jsonb_array_length(v_rows));
    END LOOP;
    INSERT INTO steward.config_backups (label, created_by, tables, row_counts)
    VALUES (label, steward.caller_id(), v_tables, v_counts) RETURNING id INTO v_id;
    INSERT INTO steward.config_backup_log (backup_id, action, initiator, row_counts)
    VALUES (v_id, 'backup', steward.caller_id(), v_counts);
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION steward._config_backup(tok bigint, label text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r uuid;
    a jsonb := jsonb_build_object('label', left(label, 1000));
BEGIN
    r := steward._config_backup_impl(tok, label);
    PERFORM steward._admin_logged('steward.config_backup', a, jsonb_build_object('backupId', r));
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.config_backup', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION steward._config_restore_impl(tok bigint, backup_id uuid, confirm boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.config_restore');
    b steward.config_backups;
    t record;
    v_rel regclass;
    v_counts jsonb := '{}';
    v_n bigint;
BEGIN
    PERFORM steward._require_writable();
    SELECT * INTO b FROM steward.config_backups x WHERE x.id OPERATOR(pg_catalog.=) _config_restore_impl.backup_id;
    IF b.id IS NULL THEN
        RAISE EXCEPTION 'configuration backup % does not exist', backup_id USING ERRCODE = 'P0002';
    END IF;
    IF NOT coalesce(confirm, false) THEN
        RAISE EXCEPTION 'restoring a configuration backup replaces the current rows' USING ERRCODE = '22023',
              DETAIL = format('tables: %s', (SELECT string_agg(k, ', ') FROM jsonb_object_keys(b.tables) k)),
              HINT = 'Pass confirm => true.';
    END IF;
    -- Check every table first, so a refusal changes nothing.
    FOR t IN SELECT key FROM jsonb_each(b.tables) ORDER BY key LOOP
        v_rel := to_regclass(t.key);
        IF v_rel IS NULL THEN
            RAISE EXCEPTION 'table % of the backup no longer exists', t.key USING ERRCODE = '42P01';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM steward.config_tables c WHERE c.table_name OPERATOR(pg_catalog.=) v_rel) THEN
            RAISE EXCEPTION 'table % of the backup is not a registered configuration table', t.key
                USING ERRCODE = '42501', HINT = 'steward.config_register(table) registers it.';
        END IF;
        PERFORM steward._check_privileges(v_caller, v_rel, '{select,insert,delete}', 'a configuration restore');
    END LOOP;
    FOR t IN SELECT key, value FROM jsonb_each(b.tables) ORDER BY key LOOP
        v_rel := to_regclass(t.key);
        PERFORM steward._exec_as_owner(v_rel, format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_rel));
        PERFORM steward._exec_as_owner(v_rel, format('DELETE FROM %s', v_rel));
        v_n := steward._exec_as_owner(v_rel,
            format('INSERT INTO %1$s OVERRIDING SYSTEM VALUE SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::%1$s, $1::pg_catalog.jsonb)', v_rel),
            ARRAY[t.value::text]);
        v_counts := v_counts || jsonb_build_object(t.key, v_n);
    END LOOP;
    INSERT INTO steward.config_backup_log (backup_id, action, initiator, row_counts)
    VALUES (b.id, 'restore', steward.caller_id(), v_counts);
    RETURN jsonb_build_object('backup_id', b.id, 'restored', v_counts);
END
$$;

CREATE OR REPLACE FUNCTION steward._config_restore(tok bigint, backup_id uuid, confirm boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('backupId', backup_id, 'confirm', confirm);
BEGIN
    r := steward._config_restore_impl(tok, backup_id, confirm);
    PERFORM steward._admin_logged('steward.config_restore', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.config_restore', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;


-- The bodies now run in a subtransaction of the entry point: a migration added in this
-- transaction is recognised by its xmin being any of its (sub)transaction IDs.
CREATE FUNCTION steward."_xid_is_mine"(
	"xid" TEXT /* & str */
) RETURNS bool /* bool */
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'xid_is_mine_wrapper';

CREATE OR REPLACE FUNCTION steward._migration_run(p_caller oid, p_version bigint, p_direction text, p_refusal jsonb,
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

-- AI usage and the model catalogue (issue #17; sql/ai_usage.sql).
CREATE FUNCTION steward."ai_models"() RETURNS TABLE (
	"model_id" TEXT,  /* String */
	"display_name" TEXT,  /* String */
	"context_window" INT,  /* i32 */
	"output_limit" INT,  /* i32 */
	"input_price_per_million" NUMERIC,  /* pgrx :: AnyNumeric */
	"output_price_per_million" NUMERIC,  /* pgrx :: AnyNumeric */
	"features" TEXT[]  /* Vec < String > */
)
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ai_models_wrapper';

CREATE FUNCTION steward."_caller_config_admin"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'caller_config_admin_wrapper';

-- AI usage and spending (issue #17 items 1 and 4): one row per model call, its cost from the
-- model catalogue (steward.ai_models(), the table calculate_cost reads), a daily roll-up per
-- user of the days that are over (rollup_ai_usage(), the daily job), spend per day/week/month
-- against the budgets of the user's effective configuration, and the current budget status —
-- both read the roll-up up to its watermark and the calls after it.  Days, weeks (ISO, from
-- Monday) and months are UTC.

CREATE TABLE steward.ai_usage (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    user_id         uuid NOT NULL,
    organization_id uuid,
    model           text NOT NULL,
    input_tokens    bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens   bigint NOT NULL CHECK (output_tokens >= 0),
    cost            numeric(20, 8) NOT NULL CHECK (cost >= 0),
    request_id      text CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 200),
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    recorded_by     text NOT NULL,
    -- Idempotent per request: a request id counts once per user (another user's ids never collide).
    UNIQUE (user_id, request_id)
);
CREATE INDEX ai_usage_user_time ON steward.ai_usage (user_id, recorded_at);
-- The days the roll-up reads, and the users with calls after its watermark (budget alerts).
CREATE INDEX ai_usage_time ON steward.ai_usage (recorded_at);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage', '');
ALTER TABLE steward.ai_usage ENABLE ROW LEVEL SECURITY;
-- End users read their own calls; admins everyone's.
CREATE POLICY ai_usage_own ON steward.ai_usage FOR SELECT
    USING (user_id OPERATOR(pg_catalog.=) steward.caller_uuid() OR steward._config_admin());

-- Spend per user and UTC day, for the days up to ai_usage_rollup.rolled_through.
CREATE TABLE steward.ai_usage_daily (
    user_id       uuid NOT NULL,
    day           date NOT NULL,
    cost          numeric(20, 8) NOT NULL DEFAULT 0,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    calls         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);
-- The days of every user at once (budget alerts read the current month's).
CREATE INDEX ai_usage_daily_day ON steward.ai_usage_daily (day);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage_daily', '');

-- The last UTC day ai_usage_daily holds in full (later days are summed from ai_usage).
CREATE TABLE steward.ai_usage_rollup (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_through date NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage_rollup', '');

-- Roll up the calls of the days that are over (up to the day before yesterday, UTC: a
-- transaction that began before midnight may still commit a call of yesterday), and move the
-- watermark.  Returns the roll-up rows written.  Admins; the daily pg_cron job runs it.
CREATE FUNCTION steward.rollup_ai_usage() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from date;
    v_to date := (now() AT TIME ZONE 'UTC')::date - 2;
    n integer;
BEGIN
    PERFORM steward._require_writable();
    -- One roll-up at a time.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward rollup_ai_usage'));
    SELECT r.rolled_through + 1 INTO v_from FROM steward.ai_usage_rollup r;
    IF v_from IS NULL THEN
        SELECT (min(u.recorded_at) AT TIME ZONE 'UTC')::date INTO v_from FROM steward.ai_usage u;
    END IF;
    IF v_from IS NULL OR v_from > v_to THEN
        IF v_from IS NULL THEN
            INSERT INTO steward.ai_usage_rollup (rolled_through) VALUES (v_to) ON CONFLICT (singleton) DO NOTHING;
        END IF;
        RETURN 0;
    END IF;
    INSERT INTO steward.ai_usage_daily AS d (user_id, day, cost, input_tokens, output_tokens, calls)
    SELECT u.user_id, (u.recorded_at AT TIME ZONE 'UTC')::date, sum(u.cost), sum(u.input_tokens), sum(u.output_tokens), count(*)
      FROM steward.ai_usage u
     WHERE u.recorded_at >= (v_from::timestamp AT TIME ZONE 'UTC') AND u.recorded_at < ((v_to + 1)::timestamp AT TIME ZONE 'UTC')
     GROUP BY 1, 2
    ON CONFLICT (user_id, day) DO UPDATE
       SET cost = EXCLUDED.cost, input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens, calls = EXCLUDED.calls;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO steward.ai_usage_rollup (rolled_through) VALUES (v_to)
    ON CONFLICT (singleton) DO UPDATE SET rolled_through = EXCLUDED.rolled_through;
    RETURN n;
END
$$;

-- A user's spend per UTC day in [p_from, p_to]: the roll-up up to its watermark, the calls
-- after it (through the (user_id, recorded_at) index).  LANGUAGE sql without a SET clause so the
-- planner inlines it into the callers (SECURITY DEFINER functions with a pinned search_path);
-- names are schema-qualified, operators pinned to pg_catalog.
CREATE FUNCTION steward._ai_daily(p_user uuid, p_from date, p_to date)
RETURNS TABLE (day date, cost numeric, input_tokens bigint, output_tokens bigint, calls bigint)
LANGUAGE sql STABLE
AS $$
    SELECT d.day, d.cost, d.input_tokens, d.output_tokens, d.calls
      FROM steward.ai_usage_daily d
     WHERE d.user_id OPERATOR(pg_catalog.=) p_user AND d.day OPERATOR(pg_catalog.>=) p_from
       AND d.day OPERATOR(pg_catalog.<=) LEAST(p_to, coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r), '-infinity'::date))
    UNION ALL
    SELECT (u.recorded_at AT TIME ZONE 'UTC')::date, pg_catalog.sum(u.cost), pg_catalog.sum(u.input_tokens)::bigint,
           pg_catalog.sum(u.output_tokens)::bigint, pg_catalog.count(*)
      FROM steward.ai_usage u
     WHERE u.user_id OPERATOR(pg_catalog.=) p_user
       AND u.recorded_at OPERATOR(pg_catalog.>=)
           ((GREATEST(p_from, coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r) OPERATOR(pg_catalog.+) 1, p_from)))::timestamp
            AT TIME ZONE 'UTC')
       AND u.recorded_at OPERATOR(pg_catalog.<) (((p_to OPERATOR(pg_catalog.+) 1))::timestamp AT TIME ZONE 'UTC')
     GROUP BY 1
$$;

-- Record one model call.  user_id defaults to the caller; an end user records only for
-- themselves (42501), the service role and admins for anyone.  The cost is computed here from
-- the catalogue, never taken from the caller; an unknown model or negative token counts are
-- 22023 and nothing is stored.  A request_id already recorded for that user returns the first
-- row (no second row, no second charge).
CREATE FUNCTION steward.record_ai_usage(
    model text, input_tokens bigint, output_tokens bigint, user_id uuid DEFAULT NULL,
    organization_id uuid DEFAULT NULL, request_id text DEFAULT NULL
) RETURNS steward.ai_usage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_caller uuid := steward.caller_uuid();
    v_user uuid := coalesce(record_ai_usage.user_id, v_caller);
    v_cost numeric;
    r steward.ai_usage;
    b record;
    v_today date;
    v_week date;
    v_month date;
    v_spent record;
BEGIN
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::boolean THEN
        PERFORM steward._require_writable();
    END IF;
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'record_ai_usage needs a user' USING ERRCODE = '42501',
              HINT = 'Call it with a user''s JWT, or pass user_id as the service role.';
    END IF;
    -- The common case (a user's own call) needs no role look-up.
    IF (v_user IS DISTINCT FROM v_caller OR record_ai_usage.organization_id IS NOT NULL) AND NOT steward._caller_config_admin() THEN
        IF v_user IS DISTINCT FROM v_caller THEN
            RAISE EXCEPTION 'permission denied to record usage for another user' USING ERRCODE = '42501';
        END IF;
        IF NOT steward._is_org_member(record_ai_usage.organization_id, v_user) THEN
            RAISE EXCEPTION 'permission denied to record usage for an organisation you are not a member of' USING ERRCODE = '42501';
        END IF;
    END IF;
    IF record_ai_usage.request_id IS NOT NULL AND length(record_ai_usage.request_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'request_id must be 1 to 200 characters' USING ERRCODE = '22023',
              DETAIL = format('got %s characters', length(record_ai_usage.request_id));
    END IF;
    IF record_ai_usage.input_tokens > 1000000000000 OR record_ai_usage.output_tokens > 1000000000000 THEN
        RAISE EXCEPTION 'token counts above 10^12 are not a model call' USING ERRCODE = '22023',
              DETAIL = format('got %s input and %s output tokens', record_ai_usage.input_tokens, record_ai_usage.output_tokens);
    END IF;
    -- Validates the model and the token counts (22023).
    v_cost := steward.calculate_cost(record_ai_usage.input_tokens, record_ai_usage.output_tokens, record_ai_usage.model);
    -- budgetEnforcement (a setting, off by default): a call that would take the user's spend
    -- of the current day, week or month past the budget is refused with 54000 and nothing is
    -- stored, so a server can refuse the model call before making it.  The budget is the
    -- stricter of the effective one and the one the database and organisation layers impose
    -- (a user's own configuration lowers it, never raises or removes it).  One decision per
    -- user at a time; a request already recorded is returned.
    IF EXISTS (SELECT 1 FROM steward.settings s
                WHERE s.key OPERATOR(pg_catalog.=) 'budgetEnforcement' AND (s.value #>> '{}')::numeric > 0) THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward ai budget'), pg_catalog.hashtext(v_user::text));
        IF record_ai_usage.request_id IS NOT NULL THEN
            SELECT * INTO r FROM steward.ai_usage u
             WHERE u.user_id OPERATOR(pg_catalog.=) v_user AND u.request_id OPERATOR(pg_catalog.=) record_ai_usage.request_id;
            IF FOUND THEN
                RETURN r;
            END IF;
        END IF;
        v_today := (now() AT TIME ZONE 'UTC')::date;
        v_week := steward._ai_period_start('week', v_today);
        v_month := steward._ai_period_start('month', v_today);
        b := steward._ai_enforced_budgets(v_user);
        SELECT coalesce(sum(d.cost) FILTER (WHERE d.day = v_today), 0) AS day,
               coalesce(sum(d.cost) FILTER (WHERE d.day >= v_week), 0) AS week,
               coalesce(sum(d.cost) FILTER (WHERE d.day >= v_month), 0) AS month
          INTO v_spent
          FROM steward._ai_daily(v_user, least(v_week, v_month), v_today) d;
        IF (b.daily > 0 AND v_spent.day + v_cost > b.daily)
           OR (b.weekly > 0 AND v_spent.week + v_cost > b.weekly)
           OR (b.monthly > 0 AND v_spent.month + v_cost > b.monthly) THEN
            RAISE EXCEPTION 'AI budget exceeded: the call is not recorded' USING ERRCODE = '54000',
                  DETAIL = format('this call costs %s; %s', v_cost, concat_ws('; ',
                      CASE WHEN b.daily > 0 AND v_spent.day + v_cost > b.daily
                           THEN format('daily budget %s, spent %s today', b.daily, v_spent.day) END,
                      CASE WHEN b.weekly > 0 AND v_spent.week + v_cost > b.weekly
                           THEN format('weekly budget %s, spent %s this week', b.weekly, v_spent.week) END,
                      CASE WHEN b.monthly > 0 AND v_spent.month + v_cost > b.monthly
                           THEN format('monthly budget %s, spent %s this month', b.monthly, v_spent.month) END)),
                  HINT = 'Raise costBudget in the effective AI configuration, or wait for the next period (UTC); an admin can switch off the budgetEnforcement setting.';
        END IF;
    END IF;
    INSERT INTO steward.ai_usage (user_id, organization_id, model, input_tokens, output_tokens, cost, request_id, recorded_by)
    VALUES (v_user, record_ai_usage.organization_id, record_ai_usage.model, record_ai_usage.input_tokens,
            record_ai_usage.output_tokens, v_cost, record_ai_usage.request_id,
            -- caller_id() is the JWT subject when there is one: no second look-up then.
            coalesce(v_caller::text, steward.caller_id()))
    ON CONFLICT (user_id, request_id) DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        -- That request id is recorded already (earlier, or by a concurrent call): its row is the answer.
        SELECT * INTO r FROM steward.ai_usage u
         WHERE u.user_id OPERATOR(pg_catalog.=) v_user AND u.request_id OPERATOR(pg_catalog.=) record_ai_usage.request_id;
    END IF;
    RETURN r;
END
$$;

-- Whether the application's configuration tables in p_schema are still plain tables whose
-- columns are of built-in types (or enums, domains over built-in types, superusers' types):
-- SECURITY DEFINER code reads them as the extension's owner, and a view, a rule or a type of
-- the schema owner's would run that role's code with those rights.  (install_train_schema checked this when it registered the schema; this holds it
-- on every read.)
CREATE FUNCTION steward._train_tables_plain(p_schema name) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) OPERATOR(pg_catalog.=) 2
           AND bool_and(c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[]) AND NOT c.relhasrules
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                          JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                                         WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                                           AND NOT a.attisdropped AND t.oid OPERATOR(pg_catalog.>=) 16384
                                           -- enums, domains over built-in types and types of superusers'
                                           -- (extensions such as citext) run nobody else's code
                                           AND t.typtype OPERATOR(pg_catalog.<>) 'e'
                                           AND NOT (t.typtype OPERATOR(pg_catalog.=) 'd' AND t.typbasetype OPERATOR(pg_catalog.<) 16384)
                                           AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) t.typowner)))
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) p_schema
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['ai_configurations', 'organization_members']::name[])
$$;

-- Whether the user is a member of the organisation (with p_role: in that role), from the
-- application's organization_members once install_train_schema has created it.
CREATE FUNCTION steward._is_org_member(p_org uuid, p_user uuid, p_role text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v boolean;
BEGIN
    IF v_schema IS NULL OR NOT steward._train_tables_plain(v_schema) THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.organization_members m
                                    WHERE m.organization_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2
                                      AND ($3 IS NULL OR m.role::text OPERATOR(pg_catalog.=) $3))', v_schema)
       INTO v USING p_org, p_user, p_role;
    RETURN v;
END
$$;

-- A number from a configuration document: a JSON number in [0, 10^15], else NULL.  Rows the
-- validator never saw (an adopted application table, a restore with triggers off) may hold
-- anything, and one bad row must not stop every user's check or status.
CREATE FUNCTION steward._doc_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'number'
                THEN CASE WHEN (v::text)::numeric BETWEEN 0 AND 1e15 THEN (v::text)::numeric END END
$$;

-- The database layer's AI configuration over the defaults (no user, no organisation).
CREATE FUNCTION steward._ai_database_config() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT steward._resolve_layers('ai_config',
               ARRAY[(SELECT o.document FROM steward.config_overrides o WHERE o.kind OPERATOR(pg_catalog.=) 'ai_config')])
$$;

-- The budgets of the user's effective AI configuration (organisation budgets apply), and its
-- alert thresholds (shares of the budget in (0, 100], distinct, ascending, at most 20).  The
-- application's tables are read as this function's owner only while they are plain tables
-- (steward._train_tables_plain); otherwise the database layer alone answers.
CREATE FUNCTION steward._ai_budgets(p_user uuid, OUT daily numeric, OUT weekly numeric, OUT monthly numeric, OUT thresholds numeric[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- PL/pgSQL, not SQL: its plans are kept for the session (ai_budget_status runs it per call).
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    b jsonb;
BEGIN
    IF v_schema IS NOT NULL AND NOT steward._train_tables_plain(v_schema) THEN
        b := steward._ai_database_config() -> 'costBudget';
    ELSE
        b := steward.effective_ai_config(p_user) -> 'costBudget';
    END IF;
    daily := steward._doc_number(b -> 'dailyBudget');
    weekly := steward._doc_number(b -> 'weeklyBudget');
    monthly := steward._doc_number(b -> 'monthlyBudget');
    thresholds := coalesce((SELECT array_agg(x.t ORDER BY x.t)
                              FROM (SELECT y.t
                                      FROM (SELECT DISTINCT steward._doc_number(e) AS t
                                              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b -> 'alertThresholds') = 'array'
                                                                             THEN b -> 'alertThresholds' ELSE '[]' END) e) y
                                     WHERE y.t > 0 AND y.t <= 100
                                     ORDER BY y.t LIMIT 20) x), '{}');
END
$$;

-- The budgets enforcement applies, per period the smallest positive one of: the effective
-- configuration's, and each budget a database or organisation row sets (the defaults' when no
-- such row sets one).  A user's own row can lower a budget, not lift it; and no organisation
-- (one the user administers, say) lifts the database's or another organisation's.
CREATE FUNCTION steward._ai_enforced_budgets(p_user uuid, OUT daily numeric, OUT weekly numeric, OUT monthly numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record := steward._ai_budgets(p_user);
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_plain boolean := v_schema IS NULL OR steward._train_tables_plain(v_schema);
    d jsonb := steward._resolve_layers('ai_config', '{}') -> 'costBudget';
    i record;
BEGIN
    -- The database and organisation rows (the database row alone when the application's
    -- tables are not plain: they are then never read here).
    SELECT min(x.d) FILTER (WHERE x.d > 0) AS d, min(x.w) FILTER (WHERE x.w > 0) AS w, min(x.m) FILTER (WHERE x.m > 0) AS m
      INTO i
      FROM (SELECT steward._doc_number(y.doc #> '{costBudget,dailyBudget}') AS d,
                   steward._doc_number(y.doc #> '{costBudget,weeklyBudget}') AS w,
                   steward._doc_number(y.doc #> '{costBudget,monthlyBudget}') AS m
              FROM (SELECT r.configuration AS doc FROM steward._ai_config_rows(p_user) r
                     WHERE v_plain AND r.source OPERATOR(pg_catalog.<>) 'user'
                    UNION ALL
                    SELECT o.document FROM steward.config_overrides o
                     WHERE NOT v_plain AND o.kind OPERATOR(pg_catalog.=) 'ai_config') y) x;
    daily := steward._ai_stricter(e.daily, coalesce(i.d, steward._doc_number(d -> 'dailyBudget')));
    weekly := steward._ai_stricter(e.weekly, coalesce(i.w, steward._doc_number(d -> 'weeklyBudget')));
    monthly := steward._ai_stricter(e.monthly, coalesce(i.m, steward._doc_number(d -> 'monthlyBudget')));
END
$$;

CREATE FUNCTION steward._ai_stricter(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN a > 0 AND b > 0 THEN least(a, b) WHEN a > 0 THEN a WHEN b > 0 THEN b END $$;

CREATE FUNCTION steward._ai_period_start(p_period text, p_day date) RETURNS date
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc(p_period, p_day::timestamp)::date $$;

-- Spend per period bucket in [from_date, to_date] (UTC days; defaults: the last 30 days, 12
-- weeks or 12 months), with the budget of that period and the share of it used.
CREATE FUNCTION steward.ai_spending(user_id uuid DEFAULT NULL, period text DEFAULT 'day', from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (period_start date, spend numeric, calls bigint, input_tokens bigint, output_tokens bigint, budget numeric, share_used numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_user uuid := coalesce(ai_spending.user_id, steward.caller_uuid());
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_to date;
    v_from date;
    b record;
    v_budget numeric;
BEGIN
    IF period IS NULL OR period NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'period must be day, week or month' USING ERRCODE = '22023',
              DETAIL = format('got %s', coalesce(quote_literal(period), 'NULL'));
    END IF;
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'ai_spending needs a user' USING ERRCODE = '42501';
    END IF;
    IF NOT v_admin AND v_user IS DISTINCT FROM steward.caller_uuid() THEN
        RAISE EXCEPTION 'permission denied for the spending of another user' USING ERRCODE = '42501';
    END IF;
    v_to := coalesce(to_date, v_today);
    v_from := coalesce(from_date, CASE period WHEN 'day' THEN v_to - 29
                                              WHEN 'week' THEN steward._ai_period_start('week', v_to) - 77
                                              ELSE (steward._ai_period_start('month', v_to) - interval '11 months')::date END);
    IF v_from > v_to OR v_to - v_from > 3660 THEN
        RAISE EXCEPTION 'invalid range' USING ERRCODE = '22023',
              DETAIL = format('from %s to %s: from must not be after to, at most 3660 days apart', v_from, v_to);
    END IF;
    b := steward._ai_budgets(v_user);
    v_budget := CASE period WHEN 'day' THEN b.daily WHEN 'week' THEN b.weekly ELSE b.monthly END;
    RETURN QUERY
    SELECT g.s::date,
           coalesce(sum(d.cost), 0)::numeric,
           coalesce(sum(d.calls), 0)::bigint,
           coalesce(sum(d.input_tokens), 0)::bigint,
           coalesce(sum(d.output_tokens), 0)::bigint,
           v_budget,
           CASE WHEN v_budget > 0 THEN round(coalesce(sum(d.cost), 0) / v_budget, 4) END
      FROM generate_series(steward._ai_period_start(period, v_from)::timestamp, v_to::timestamp,
                           CASE period WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '1 week' ELSE interval '1 month' END) g(s)
      LEFT JOIN steward._ai_daily(v_user, v_from, v_to) d
        ON steward._ai_period_start(period, d.day) = g.s::date
     GROUP BY g.s
     ORDER BY g.s;
END
$$;

-- The current day, week and month: spend, budget, share used, the highest alert threshold
-- crossed (from costBudget.alertThresholds) and whether the budget is exceeded.
CREATE FUNCTION steward.ai_budget_status(user_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_user uuid := coalesce(ai_budget_status.user_id, steward.caller_uuid());
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_week date := steward._ai_period_start('week', (now() AT TIME ZONE 'UTC')::date);
    v_month date := steward._ai_period_start('month', (now() AT TIME ZONE 'UTC')::date);
    b record;
    v_d numeric;
    v_w numeric;
    v_m numeric;
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'ai_budget_status needs a user' USING ERRCODE = '42501';
    END IF;
    IF NOT v_admin AND v_user IS DISTINCT FROM steward.caller_uuid() THEN
        RAISE EXCEPTION 'permission denied for the budget of another user' USING ERRCODE = '42501';
    END IF;
    b := steward._ai_budgets(v_user);
    -- At most 37 days (a week may begin in the previous month): roll-up rows and the last days' calls.
    SELECT coalesce(sum(d.cost) FILTER (WHERE d.day = v_today), 0),
           coalesce(sum(d.cost) FILTER (WHERE d.day >= v_week), 0),
           coalesce(sum(d.cost) FILTER (WHERE d.day >= v_month), 0)
      INTO v_d, v_w, v_m
      FROM steward._ai_daily(v_user, least(v_week, v_month), v_today) d;
    RETURN jsonb_build_object(
        'userId', v_user,
        'thresholds', to_jsonb(b.thresholds),
        'day', steward._ai_budget_period(v_d, b.daily, b.thresholds, v_today),
        'week', steward._ai_budget_period(v_w, b.weekly, b.thresholds, v_week),
        'month', steward._ai_budget_period(v_m, b.monthly, b.thresholds, v_month));
END
$$;

CREATE FUNCTION steward._ai_budget_period(p_spend numeric, p_budget numeric, p_thresholds numeric[], p_start date) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'periodStart', p_start,
        'spend', p_spend,
        'budget', p_budget,
        'shareUsed', CASE WHEN p_budget > 0 THEN round(p_spend / p_budget, 4) END,
        'thresholdCrossed', (SELECT max(t) FROM unnest(p_thresholds) t WHERE p_budget > 0 AND p_spend >= t * p_budget),
        'overBudget', coalesce(p_budget IS NOT NULL AND p_spend > p_budget, false))
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_ai_models',        'steward.ai_models()',                                    'stable',   '{steward_admin,service_role,authenticated}'),
    ('record_ai_usage',      'steward.record_ai_usage(text,bigint,bigint,uuid,uuid,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('get_ai_spending',      'steward.ai_spending(uuid,text,date,date)',              'stable',   '{steward_admin,service_role,authenticated}'),
    ('get_ai_budget_status', 'steward.ai_budget_status(uuid)',                        'stable',   '{steward_admin,service_role,authenticated}');

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('budgetEnforcement', '0', 0, 1, 'steward.record_ai_usage() refuses (54000) a call that would take a user past the day''s, week''s or month''s budget of the effective AI configuration (1), or records it anyway (0)');

-- ---------------------------------------------------------------------------------------
-- Budget alerts: the current day's, week's and month's spend of every user with calls in
-- them and a budget, with the thresholds of the user's effective configuration.  Read by
-- check_alerts() (the ai_budget rule, src/alerts/rules.rs), not by the health report.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward._ai_budget_usage() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_week date := steward._ai_period_start('week', (now() AT TIME ZONE 'UTC')::date);
    v_month date := steward._ai_period_start('month', (now() AT TIME ZONE 'UTC')::date);
    v_through date := coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r), '-infinity'::date);
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    -- Users with layers of their own (an active configuration, an organisation): their
    -- budgets are resolved one by one; everyone else's are the database layer's, resolved once.
    v_layered text := 'SELECT NULL::uuid AS user_id WHERE false';
    v_shared record := steward._ai_budgets(NULL);
    v_out jsonb;
BEGIN
    IF v_schema IS NOT NULL THEN
        v_layered := CASE WHEN steward._train_tables_plain(v_schema)
                          THEN format('SELECT c.user_id FROM %1$I.ai_configurations c WHERE c.user_id IS NOT NULL AND c.is_active
                                       UNION SELECT m.user_id FROM %1$I.organization_members m', v_schema)
                          -- Not plain tables: never read here, and _ai_budgets answers from the database layer.
                          ELSE 'SELECT NULL::uuid AS user_id WHERE false' END;
    END IF;
    -- Every user at once, with _ai_daily's split: roll-up rows up to the watermark (through
    -- the roll-up's day index), the calls after it (through ai_usage's time index).
    EXECUTE format($q$
        WITH days AS (
            SELECT d.user_id, d.day, d.cost FROM steward.ai_usage_daily d
             WHERE d.day >= least($2, $3) AND d.day <= least($1, $5)
            UNION ALL
            SELECT u.user_id, (u.recorded_at AT TIME ZONE 'UTC')::date, u.cost FROM steward.ai_usage u
             WHERE u.recorded_at >= (greatest(least($2, $3), $5 + 1)::timestamp AT TIME ZONE 'UTC')
               AND u.recorded_at < (($1 + 1)::timestamp AT TIME ZONE 'UTC')
        ), spend AS (
            SELECT x.user_id,
                   coalesce(sum(x.cost) FILTER (WHERE x.day = $1), 0) AS d,
                   coalesce(sum(x.cost) FILTER (WHERE x.day >= $2), 0) AS w,
                   coalesce(sum(x.cost) FILTER (WHERE x.day >= $3), 0) AS m
              FROM days x
             GROUP BY x.user_id
        ), layered AS (%s)
        SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', sp.user_id, 'period', p.period, 'period_start', p.start,
                                                     'spend', p.spend, 'budget', p.budget, 'thresholds', to_jsonb(b.thresholds))
                                  ORDER BY sp.user_id, p.ord), '[]')
          FROM spend sp
          LEFT JOIN (SELECT DISTINCT l.user_id FROM layered l) l ON l.user_id = sp.user_id
          CROSS JOIN LATERAL (SELECT o.daily, o.weekly, o.monthly, o.thresholds FROM steward._ai_budgets(sp.user_id) o
                               WHERE l.user_id IS NOT NULL
                              UNION ALL
                              SELECT $4, $6, $7, $8 WHERE l.user_id IS NULL) b
          CROSS JOIN LATERAL (VALUES (1, 'day', $1, sp.d, b.daily), (2, 'week', $2, sp.w, b.weekly),
                                     (3, 'month', $3, sp.m, b.monthly)) p(ord, period, start, spend, budget)
         WHERE p.spend > 0 AND p.budget > 0
        $q$, v_layered)
       INTO v_out USING v_today, v_week, v_month, v_shared.daily, v_through, v_shared.weekly, v_shared.monthly, v_shared.thresholds;
    RETURN v_out;
END
$$;

-- ---------------------------------------------------------------------------------------
-- API key rotation (issue #17 item 5).  A configuration's key is as old as its vault entry
-- (steward.api_key_vault.created_at: when that key was first stored for that owner); the
-- schedule is the row's apiKeys.rotationSchedule, else the database layer's, else manual.
-- monthly: due after 30 days, quarterly: after 90; manual: never.  Active configurations
-- with a primary key only.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward._ai_keys_due_rows(p_config_id uuid DEFAULT NULL)
RETURNS TABLE (config_id uuid, user_id uuid, organization_id uuid, config_name text, rotation_schedule text,
               key_version integer, key_stored_at timestamptz, due_at timestamptz, days_overdue numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_default text := (SELECT o.document #>> '{apiKeys,rotationSchedule}' FROM steward.config_overrides o WHERE o.kind = 'ai_config');
BEGIN
    IF v_schema IS NULL THEN
        RETURN;
    END IF;
    IF NOT steward._train_tables_plain(v_schema) THEN
        RAISE WARNING 'pg_steward: API key ages not read: %.ai_configurations is not a plain table of built-in types', quote_ident(v_schema);
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT c.id, c.user_id, c.organization_id, c.config_name::text, s.schedule,
               CASE WHEN steward._doc_number(c.configuration #> '{apiKeys,keyVersion}') <= 2147483647
                    THEN floor(steward._doc_number(c.configuration #> '{apiKeys,keyVersion}'))::integer END,
               v.created_at, v.created_at + s.every,
               round((extract(epoch FROM now() - (v.created_at + s.every)) / 86400)::numeric, 1)
          FROM %I.ai_configurations c
         CROSS JOIN LATERAL (SELECT x.schedule, CASE x.schedule WHEN 'monthly' THEN interval '30 days'
                                                                WHEN 'quarterly' THEN interval '90 days' END AS every
                               FROM (SELECT coalesce(c.configuration #>> '{apiKeys,rotationSchedule}', $1, 'manual') AS schedule) x) s
          JOIN steward.api_key_vault v
            ON v.token = c.configuration #>> '{apiKeys,primaryKey}'
           AND v.owner_kind = CASE WHEN c.user_id IS NOT NULL THEN 'user' ELSE 'organization' END
           AND v.owner_id = coalesce(c.user_id, c.organization_id)
         WHERE c.is_active AND s.every IS NOT NULL AND v.created_at + s.every <= now()
           AND ($2 IS NULL OR c.id = $2)
         ORDER BY v.created_at, c.id
        $q$, v_schema) USING v_default, p_config_id;
END
$$;

-- The check's source: the same rows as jsonb (names for the alert's text).
CREATE FUNCTION steward._ai_keys_due() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'config_id', k.config_id, 'config_name', k.config_name,
               'owner', CASE WHEN k.user_id IS NOT NULL THEN 'user ' || k.user_id ELSE 'organisation ' || k.organization_id END,
               'rotation_schedule', k.rotation_schedule, 'key_stored_at', k.key_stored_at, 'due_at', k.due_at,
               'days_overdue', k.days_overdue)), '[]')
      FROM steward._ai_keys_due_rows() k
$$;

-- Configurations whose key is due for rotation: admins and the service role see all, a user
-- their own and those of the organisations they are an admin of.
CREATE FUNCTION steward.ai_key_rotation_due()
RETURNS TABLE (config_id uuid, user_id uuid, organization_id uuid, config_name text, rotation_schedule text,
               key_version integer, key_stored_at timestamptz, due_at timestamptz, days_overdue numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_caller uuid := steward.caller_uuid();
BEGIN
    IF NOT v_admin AND v_caller IS NULL THEN
        RAISE EXCEPTION 'ai_key_rotation_due needs a user' USING ERRCODE = '42501',
              HINT = 'Call it with a user''s JWT, or as an admin.';
    END IF;
    RETURN QUERY
    SELECT k.* FROM steward._ai_keys_due_rows() k
     WHERE v_admin OR k.user_id = v_caller
        OR (k.organization_id IS NOT NULL AND steward._is_org_member(k.organization_id, v_caller, 'admin'));
END
$$;

-- After a rotation (rotate_api_key): the configuration's open api_key_rotation_due alert is
-- resolved — only when this very transaction stored the configuration's current primary key
-- in the vault (so the caller wrote that row: row-level security let it) and the key is no
-- longer due.  Anything else does nothing; check_alerts() resolves what it finds rotated.
CREATE FUNCTION steward._api_key_rotated(p_config_id uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a steward.performance_alerts;
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_mine boolean;
BEGIN
    IF p_config_id IS NULL OR v_schema IS NULL OR NOT steward._train_tables_plain(v_schema) THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        SELECT steward._xid_is_mine(v.xmin::text)
          FROM %I.ai_configurations c
          JOIN steward.api_key_vault v
            ON v.token = c.configuration #>> '{apiKeys,primaryKey}'
           AND v.owner_kind = CASE WHEN c.user_id IS NOT NULL THEN 'user' ELSE 'organization' END
           AND v.owner_id = coalesce(c.user_id, c.organization_id)
         WHERE c.id = $1
        $q$, v_schema) INTO v_mine USING p_config_id;
    IF NOT coalesce(v_mine, false) OR EXISTS (SELECT 1 FROM steward._ai_keys_due_rows(p_config_id)) THEN
        RETURN;
    END IF;
    FOR a IN
        UPDATE steward.performance_alerts p
           SET resolved_at = now(), resolved_by = steward.caller_uuid(),
               resolution_notes = 'Resolved: the API key was rotated.'
         WHERE p.fingerprint OPERATOR(pg_catalog.=) ('api_key_rotation_due:configuration ' || p_config_id)
           AND p.resolved_at IS NULL
        RETURNING p.*
    LOOP
        PERFORM steward._alert_notify('resolved', a);
    END LOOP;
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_ai_key_rotation_due', 'steward.ai_key_rotation_due()', 'stable', '{steward_admin,service_role,authenticated}');

-- Organisation configurations written by their admins and creators, and API-key rotation
-- (issue #17; sql/config.sql): the row guard keeps created_by, install_train_schema adds the
-- members' role and the write policies, the writers take an organisation (their argument
-- lists grow: old signatures dropped, the facade's targets follow, install_rpc_facade drops
-- the wrappers it made for the old ones).
CREATE OR REPLACE FUNCTION steward._config_row_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row jsonb := pg_catalog.to_jsonb(NEW);
    v_doc jsonb := v_row OPERATOR(pg_catalog.->) TG_ARGV[1];
    v_vaulted jsonb;
    v_visible boolean;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                    WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['anon', 'authenticated', 'service_role']::name[])
                      AND pg_catalog.pg_has_role(r.oid, 'USAGE')) THEN
        IF TG_OP = 'UPDATE' THEN
            NEW.id := OLD.id;
            -- created_by decides who may change an organisation's configuration (its creator):
            -- it never changes, and an end user cannot claim someone else's row.
            -- Nor does its owner: row-level security checks the new row against the writer's
            -- memberships, so a creator could otherwise move a configuration into another
            -- organisation it merely belongs to, or turn its own into an organisation's.
            IF TG_ARGV[0] = 'ai_config' THEN
                NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object('created_by', pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) 'created_by'));
                IF NOT steward._config_admin()
                   AND (v_row OPERATOR(pg_catalog.->) 'user_id' IS DISTINCT FROM pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) 'user_id'
                        OR v_row OPERATOR(pg_catalog.->) 'organization_id' IS DISTINCT FROM pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) 'organization_id') THEN
                    RAISE EXCEPTION 'an AI configuration cannot move to another owner' USING ERRCODE = '42501',
                          HINT = 'Create the configuration under the new owner instead.';
                END IF;
            END IF;
        ELSE
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I t WHERE t.id OPERATOR(pg_catalog.=) $1)',
                                      TG_TABLE_SCHEMA, TG_TABLE_NAME)
               INTO v_visible USING NEW.id;
            IF NEW.id IS NULL OR NOT v_visible THEN
                NEW.id := pg_catalog.gen_random_uuid();
            END IF;
            -- An end user's new row is created by that user (the service role and admins may
            -- name the creator of a row they write on someone's behalf).
            IF TG_ARGV[0] = 'ai_config' AND NOT steward._config_admin() THEN
                NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object('created_by', steward.caller_uuid()));
            END IF;
        END IF;
    END IF;
    PERFORM steward._check_document(TG_ARGV[0], v_doc);
    IF TG_ARGV[0] = 'ai_config' THEN
        v_vaulted := CASE
            WHEN v_row OPERATOR(pg_catalog.->>) 'user_id' IS NOT NULL
                THEN steward._vault_api_keys(v_doc, 'user', (v_row OPERATOR(pg_catalog.->>) 'user_id')::uuid)
            WHEN v_row OPERATOR(pg_catalog.->>) 'organization_id' IS NOT NULL
                THEN steward._vault_api_keys(v_doc, 'organization', (v_row OPERATOR(pg_catalog.->>) 'organization_id')::uuid)
            END;
        IF v_vaulted IS NOT NULL THEN
            NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object(TG_ARGV[1], v_vaulted));
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object('updated_at', pg_catalog.clock_timestamp()));
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION steward.install_train_schema(target_schema name DEFAULT 'public') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    s name := target_schema;
    v_roles text;
    v_me oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
    v_relations name[] := ARRAY['organizations', 'organization_members', 'user_preferences', 'ai_configurations',
                                'organization_members_user_idx', 'ai_configurations_user_active_idx',
                                'ai_configurations_org_active_idx']::name[];
    v_functions name[] := ARRAY['steward_default_preferences']::name[];
    v_auth regclass := pg_catalog.to_regclass('auth.users');
BEGIN
    -- Installers and grant refreshes one at a time (catalog rows they rewrite would otherwise
    -- fail with "tuple concurrently updated" or deadlock when two run at once).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward installers'));
    IF s IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) s) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(pg_catalog.quote_ident(s), 'NULL') USING ERRCODE = '3F000';
    END IF;
    IF s IN ('pg_catalog', 'information_schema', 'steward', 'pg_toast') OR s ~ '^pg_' THEN
        RAISE EXCEPTION 'the configuration tables cannot go into schema %', pg_catalog.quote_ident(s) USING ERRCODE = '42501';
    END IF;
    PERFORM steward._install_check(CURRENT_USER, s, v_relations, v_functions);

    -- Tables the caller owns are kept; missing ones are created with a plain CREATE, which
    -- fails rather than adopt a table someone creates concurrently.
    IF pg_catalog.to_regclass(pg_catalog.format('%I.organizations', s)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %I.organizations (
            id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT pg_catalog.now())', s);
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('%I.organization_members', s)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %1$I.organization_members (
            organization_id uuid NOT NULL REFERENCES %1$I.organizations (id) ON DELETE CASCADE,
            user_id uuid NOT NULL,
            role text NOT NULL DEFAULT ''member'' CHECK (role IN (''member'', ''admin'')),
            created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            PRIMARY KEY (organization_id, user_id))', s);
    ELSE
        -- The application's own table: its members' role (admin: may write the organisation's
        -- configurations), added when missing; rows already there are members.
        EXECUTE pg_catalog.format('ALTER TABLE %I.organization_members ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT ''member''', s);
    END IF;
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS organization_members_user_idx ON %I.organization_members (user_id)', s);
    IF pg_catalog.to_regclass(pg_catalog.format('%I.user_preferences', s)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %I.user_preferences (
            id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
            user_id uuid NOT NULL UNIQUE,
            preferences jsonb NOT NULL DEFAULT ''{}'',
            created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            updated_at timestamptz NOT NULL DEFAULT pg_catalog.now())', s);
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('%I.ai_configurations', s)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %1$I.ai_configurations (
            id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
            user_id uuid,
            organization_id uuid REFERENCES %1$I.organizations (id) ON DELETE CASCADE,
            config_name varchar(255) NOT NULL,
            configuration jsonb NOT NULL DEFAULT ''{}'',
            is_active boolean NOT NULL DEFAULT true,
            priority integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            created_by uuid,
            CONSTRAINT ai_configurations_one_owner CHECK (pg_catalog.num_nonnulls(user_id, organization_id) OPERATOR(pg_catalog.=) 1),
            CONSTRAINT ai_configurations_user_name_key UNIQUE (user_id, config_name),
            CONSTRAINT ai_configurations_org_name_key UNIQUE (organization_id, config_name))', s);
    END IF;
    EXECUTE pg_catalog.format($ddl$
        CREATE INDEX IF NOT EXISTS ai_configurations_user_active_idx
            ON %1$I.ai_configurations (user_id, priority DESC, updated_at DESC) WHERE is_active;
        CREATE INDEX IF NOT EXISTS ai_configurations_org_active_idx
            ON %1$I.ai_configurations (organization_id, priority) WHERE is_active;
        CREATE OR REPLACE TRIGGER user_preferences_guard BEFORE INSERT OR UPDATE ON %1$I.user_preferences
            FOR EACH ROW EXECUTE FUNCTION steward._config_row_guard('user_preferences', 'preferences');
        CREATE OR REPLACE TRIGGER ai_configurations_guard BEFORE INSERT OR UPDATE ON %1$I.ai_configurations
            FOR EACH ROW EXECUTE FUNCTION steward._config_row_guard('ai_config', 'configuration');
        CREATE OR REPLACE TRIGGER steward_effective_config_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %1$I.ai_configurations
            FOR EACH STATEMENT EXECUTE FUNCTION steward._effective_config_changed();
        CREATE OR REPLACE TRIGGER steward_effective_config_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %1$I.organization_members
            FOR EACH STATEMENT EXECUTE FUNCTION steward._effective_config_changed();
        ALTER TABLE %1$I.user_preferences ENABLE ROW LEVEL SECURITY;
        ALTER TABLE %1$I.ai_configurations ENABLE ROW LEVEL SECURITY;
        ALTER TABLE %1$I.organization_members ENABLE ROW LEVEL SECURITY;
        $ddl$, s);

    -- Policies for the roles that exist (Supabase's service_role bypasses RLS there; here it
    -- and steward_admin get an explicit all-rows policy so the behaviour is the same).
    SELECT string_agg(pg_catalog.quote_ident(r), ', ') INTO v_roles
      FROM unnest(ARRAY['steward_admin', 'service_role']) r
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) r);
    EXECUTE pg_catalog.format($p$
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.user_preferences;
        CREATE POLICY steward_admin_all ON %1$I.user_preferences FOR ALL TO %2$s USING (true) WITH CHECK (true);
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.ai_configurations;
        CREATE POLICY steward_admin_all ON %1$I.ai_configurations FOR ALL TO %2$s USING (true) WITH CHECK (true);
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.organization_members;
        CREATE POLICY steward_admin_all ON %1$I.organization_members FOR ALL TO %2$s USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.user_preferences, %1$I.ai_configurations,
              %1$I.organizations, %1$I.organization_members TO %2$s;
        $p$, s, v_roles);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) 'authenticated') THEN
        EXECUTE pg_catalog.format($p$
            DROP POLICY IF EXISTS own_preferences ON %1$I.user_preferences;
            CREATE POLICY own_preferences ON %1$I.user_preferences FOR ALL TO authenticated
                USING (user_id OPERATOR(pg_catalog.=) steward.caller_uuid()) WITH CHECK (user_id OPERATOR(pg_catalog.=) steward.caller_uuid());
            DROP POLICY IF EXISTS own_configurations ON %1$I.ai_configurations;
            CREATE POLICY own_configurations ON %1$I.ai_configurations FOR ALL TO authenticated
                USING (user_id OPERATOR(pg_catalog.=) steward.caller_uuid()) WITH CHECK (user_id OPERATOR(pg_catalog.=) steward.caller_uuid());
            DROP POLICY IF EXISTS member_reads_organization ON %1$I.ai_configurations;
            CREATE POLICY member_reads_organization ON %1$I.ai_configurations FOR SELECT TO authenticated
                USING (organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                            WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()));
            -- Organisation configurations: the organisation's admins write them all; a
            -- configuration's creator (created_by, set by the row guard) changes and deletes
            -- it while still a member.  Everyone else in the organisation only reads.
            DROP POLICY IF EXISTS organization_admins_write ON %1$I.ai_configurations;
            CREATE POLICY organization_admins_write ON %1$I.ai_configurations FOR ALL TO authenticated
                USING (organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                            WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()
                                              AND m.role OPERATOR(pg_catalog.=) 'admin'))
                WITH CHECK (organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                                 WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()
                                                   AND m.role OPERATOR(pg_catalog.=) 'admin'));
            DROP POLICY IF EXISTS organization_creator_updates ON %1$I.ai_configurations;
            CREATE POLICY organization_creator_updates ON %1$I.ai_configurations FOR UPDATE TO authenticated
                USING (created_by OPERATOR(pg_catalog.=) steward.caller_uuid()
                       AND organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                                WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()))
                WITH CHECK (created_by OPERATOR(pg_catalog.=) steward.caller_uuid()
                            AND organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                                     WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()));
            DROP POLICY IF EXISTS organization_creator_deletes ON %1$I.ai_configurations;
            CREATE POLICY organization_creator_deletes ON %1$I.ai_configurations FOR DELETE TO authenticated
                USING (created_by OPERATOR(pg_catalog.=) steward.caller_uuid()
                       AND organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                                WHERE m.user_id OPERATOR(pg_catalog.=) steward.caller_uuid()));
            DROP POLICY IF EXISTS own_memberships ON %1$I.organization_members;
            CREATE POLICY own_memberships ON %1$I.organization_members FOR SELECT TO authenticated
                USING (user_id OPERATOR(pg_catalog.=) steward.caller_uuid());
            GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.user_preferences, %1$I.ai_configurations TO authenticated;
            GRANT SELECT ON %1$I.organizations, %1$I.organization_members TO authenticated;
            $p$, s);
    END IF;
    -- organization_members.role decides who writes an organisation's configurations: say so
    -- when end users may write that table (an application's own grant).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) 'authenticated')
       AND (pg_catalog.has_table_privilege('authenticated', pg_catalog.format('%I.organization_members', s), 'INSERT')
            OR pg_catalog.has_table_privilege('authenticated', pg_catalog.format('%I.organization_members', s), 'UPDATE')) THEN
        RAISE WARNING 'end users may write %.organization_members, whose role column decides who writes organisation configurations', pg_catalog.quote_ident(s)
            USING HINT = 'Make sure your policies on it never let a user make themselves (or anyone) an admin, or revoke INSERT and UPDATE from authenticated.';
    END IF;
    -- What the writers of these tables need in steward (the row guard runs as the writer).
    PERFORM steward._config_grants();

    -- Default preferences for new Supabase users: only where the caller may attach a trigger
    -- to auth.users, and only when the schema's owner holds the caller's rights (the function
    -- runs as the caller; see _default_preferences_body).
    IF v_auth IS NOT NULL THEN
        IF pg_catalog.has_table_privilege(v_auth, 'TRIGGER') AND steward._schema_owner_holds(s, v_me) THEN
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                            WHERE n.nspname OPERATOR(pg_catalog.=) s AND p.proname OPERATOR(pg_catalog.=) 'steward_default_preferences'
                              AND p.pronargs OPERATOR(pg_catalog.=) 0) THEN
                EXECUTE pg_catalog.format('CREATE FUNCTION %I.steward_default_preferences() RETURNS trigger LANGUAGE plpgsql
                                           SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
                                          s, steward._default_preferences_body());
            ELSE
                EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION %I.steward_default_preferences() RETURNS trigger LANGUAGE plpgsql
                                           SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
                                          s, steward._default_preferences_body());
            END IF;
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %I.steward_default_preferences() FROM PUBLIC', s);
            EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER steward_default_preferences AFTER INSERT ON auth.users
                                       FOR EACH ROW EXECUTE FUNCTION %I.steward_default_preferences(%L)', s, s);
        ELSE
            RAISE WARNING 'no default preferences for new auth.users rows'
                USING DETAIL = pg_catalog.format('%I may not attach triggers to auth.users, or the owner of schema %I does not hold its rights.', CURRENT_USER, s),
                      HINT = 'Have the owner of auth.users run install_train_schema into a schema it owns.';
        END IF;
    END IF;

    PERFORM steward._install_check(CURRENT_USER, s, v_relations, v_functions);
    -- The privileged steps (steward's own tables and functions): checked again there.
    PERFORM steward._set_train_schema(s);
    PERFORM steward.config_register(pg_catalog.format('%I.user_preferences', s)::regclass);
    PERFORM steward.config_register(pg_catalog.format('%I.ai_configurations', s)::regclass);
    PERFORM steward.audit_enable(pg_catalog.format('%I.user_preferences', s)::regclass, 'user_preference', 'preferences', 'user_id');
    PERFORM steward.audit_enable(pg_catalog.format('%I.ai_configurations', s)::regclass, 'ai_config', 'configuration', 'user_id');
    RETURN pg_catalog.format('configuration tables ready in schema %I', s);
END
$$;

CREATE FUNCTION steward._ai_config_owner(p_organization_id uuid, p_config_name text,
                                         OUT owner_column text, OUT owner_id uuid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
    v_role text;
    v_creator uuid;
BEGIN
    IF p_organization_id IS NULL THEN
        owner_column := 'user_id';
        owner_id := v_user;
        RETURN;
    END IF;
    owner_column := 'organization_id';
    owner_id := p_organization_id;
    IF steward._config_admin() THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT m.role::text FROM %s m WHERE m.organization_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2',
                   steward._train_table('organization_members'))
       INTO v_role USING p_organization_id, v_user;
    IF v_role IS NULL THEN
        RAISE EXCEPTION 'permission denied for the configurations of an organisation you are not a member of' USING ERRCODE = '42501',
              DETAIL = format('organisation %s', p_organization_id);
    END IF;
    IF v_role OPERATOR(pg_catalog.=) 'admin' THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT c.created_by FROM %s c WHERE c.organization_id OPERATOR(pg_catalog.=) $1 AND c.config_name OPERATOR(pg_catalog.=) $2',
                   steward._train_table('ai_configurations'))
       INTO v_creator USING p_organization_id, p_config_name;
    IF v_creator IS NULL OR v_creator OPERATOR(pg_catalog.<>) v_user THEN
        RAISE EXCEPTION 'only the organisation''s admins may write its configurations' USING ERRCODE = '42501',
              DETAIL = format('your role in organisation %s is %s; a configuration''s creator may also change or delete it', p_organization_id, v_role),
              HINT = 'An admin of the organisation sets organization_members.role to ''admin''.';
    END IF;
END
$$;

DROP FUNCTION steward.upsert_ai_config(text,jsonb,integer,boolean,text);
DROP FUNCTION steward.set_ai_config_active(text,boolean,text);
DROP FUNCTION steward.delete_ai_config(text,text);
DROP FUNCTION steward.rotate_api_key(text,text,text);
CREATE FUNCTION steward.upsert_ai_config(p_config_name text, p_configuration jsonb DEFAULT '{}',
                                         p_priority integer DEFAULT NULL, p_is_active boolean DEFAULT NULL,
                                         p_reason text DEFAULT NULL, p_organization_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
    v_table text := steward._train_table('ai_configurations');
    o record;
    v_old jsonb;
    v_row jsonb;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._change_reason(p_reason);
    IF p_config_name IS NULL OR btrim(p_config_name) = '' OR length(p_config_name) > 255 THEN
        RAISE EXCEPTION 'config_name must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    o := steward._ai_config_owner(p_organization_id, p_config_name);
    EXECUTE format('SELECT configuration FROM %s WHERE %I = $1 AND config_name = $2 FOR UPDATE', v_table, o.owner_column)
       INTO v_old USING o.owner_id, p_config_name;
    IF v_old IS NOT NULL THEN
        -- An existing configuration is updated (an INSERT ... ON CONFLICT would be checked
        -- against the insert policies too, which a configuration's creator does not pass).
        EXECUTE format('UPDATE %1$s AS c
                           SET configuration = $3, priority = coalesce($4, c.priority), is_active = coalesce($5, c.is_active)
                         WHERE c.%2$I = $1 AND c.config_name = $2
                        RETURNING to_jsonb(c)', v_table, o.owner_column)
           INTO v_row USING o.owner_id, p_config_name, steward._apply_update('ai_config', v_old, coalesce(p_configuration, '{}')),
                            p_priority, p_is_active;
        RETURN jsonb_set(v_row, '{configuration}', steward._reveal_api_keys(v_row -> 'configuration', v_user));
    END IF;
    EXECUTE format('INSERT INTO %1$s AS c (%2$I, config_name, configuration, priority, is_active, created_by)
                    VALUES ($1, $2, $3, coalesce($4, 0), coalesce($5, true), $6)
                    ON CONFLICT (%2$I, config_name) DO UPDATE
                       SET configuration = EXCLUDED.configuration,
                           priority = coalesce($4, c.priority), is_active = coalesce($5, c.is_active)
                    RETURNING to_jsonb(c)', v_table, o.owner_column)
       INTO v_row USING o.owner_id, p_config_name, steward._apply_update('ai_config', v_old, coalesce(p_configuration, '{}')),
                        p_priority, p_is_active, v_user;
    RETURN jsonb_set(v_row, '{configuration}', steward._reveal_api_keys(v_row -> 'configuration', v_user));
END
$$;

CREATE FUNCTION steward.set_ai_config_active(p_config_name text, p_active boolean, p_reason text DEFAULT NULL,
                                             p_organization_id uuid DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_n integer;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._change_reason(p_reason);
    o := steward._ai_config_owner(p_organization_id, p_config_name);
    EXECUTE format('UPDATE %s SET is_active = $3 WHERE %I = $1 AND config_name = $2', steward._train_table('ai_configurations'), o.owner_column)
      USING o.owner_id, p_config_name, coalesce(p_active, true);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION steward.delete_ai_config(p_config_name text, p_reason text DEFAULT NULL,
                                         p_organization_id uuid DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_n integer;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._change_reason(p_reason);
    o := steward._ai_config_owner(p_organization_id, p_config_name);
    EXECUTE format('DELETE FROM %s WHERE %I = $1 AND config_name = $2', steward._train_table('ai_configurations'), o.owner_column)
      USING o.owner_id, p_config_name;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION steward.rotate_api_key(p_config_name text, p_new_key text, p_reason text DEFAULT NULL,
                                       p_organization_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := steward._train_table('ai_configurations');
    o record;
    v_id uuid;
    v_old jsonb;
    v_keys jsonb;
BEGIN
    PERFORM steward._require_writable();
    PERFORM steward._change_reason(p_reason);
    IF p_new_key IS NULL OR length(p_new_key) < 8 THEN
        RAISE EXCEPTION 'the new key must have at least 8 characters' USING ERRCODE = '22023';
    END IF;
    o := steward._ai_config_owner(p_organization_id, p_config_name);
    EXECUTE format('SELECT id, configuration FROM %s WHERE %I = $1 AND config_name = $2 FOR UPDATE', v_table, o.owner_column)
       INTO v_id, v_old USING o.owner_id, p_config_name;
    IF v_old IS NULL THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    v_keys := jsonb_build_object('apiKeys', jsonb_build_object(
        'primaryKey', p_new_key,
        'secondaryKey', nullif(v_old #>> '{apiKeys,primaryKey}', ''),
        'keyVersion', coalesce(CASE WHEN steward._doc_number(v_old #> '{apiKeys,keyVersion}') BETWEEN 1 AND 2147483646
                                    THEN floor(steward._doc_number(v_old #> '{apiKeys,keyVersion}'))::integer END, 1) + 1));
    EXECUTE format('UPDATE %s SET configuration = $3 WHERE %I = $1 AND config_name = $2', v_table, o.owner_column)
      USING o.owner_id, p_config_name, steward._apply_update('ai_config', v_old, v_keys);
    PERFORM steward._api_key_rotated(v_id);
    RETURN jsonb_build_object('keyVersion', v_keys #> '{apiKeys,keyVersion}',
                              'primaryKey', steward._mask_api_keys(v_keys) #> '{apiKeys,primaryKey}');
END
$$;

UPDATE steward.facade_functions SET target = 'steward.upsert_ai_config(text,jsonb,integer,boolean,text,uuid)' WHERE seed_name = 'upsert_ai_config';
UPDATE steward.facade_functions SET target = 'steward.set_ai_config_active(text,boolean,text,uuid)' WHERE seed_name = 'set_ai_config_active';
UPDATE steward.facade_functions SET target = 'steward.delete_ai_config(text,text,uuid)' WHERE seed_name = 'delete_ai_config';
UPDATE steward.facade_functions SET target = 'steward.rotate_api_key(text,text,text,uuid)' WHERE seed_name = 'rotate_api_key';
CREATE OR REPLACE FUNCTION steward.install_rpc_facade(target_schema name DEFAULT 'public') RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
    v record;
    v_args text;
    v_call text;
    v_result text;
    v_sig text;
    v_ddl text;
    v_role text;
    v_count integer := 0;
    v_kind "char";
    v_invoker boolean;
    v_relations name[] := ARRAY(SELECT fv.seed_name FROM steward.facade_views fv);
    v_functions name[] := ARRAY(SELECT ff.seed_name FROM steward.facade_functions ff);
    v_exists boolean;
BEGIN
    -- Installers and grant refreshes one at a time (catalog rows they rewrite would otherwise
    -- fail with "tuple concurrently updated" or deadlock when two run at once).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward installers'));
    IF target_schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) target_schema) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(pg_catalog.quote_ident(target_schema), 'NULL')
            USING ERRCODE = '3F000', HINT = 'Create the schema first, or call install_rpc_facade() for public.';
    END IF;
    IF target_schema IN ('pg_catalog', 'information_schema', 'steward', 'pg_toast') OR target_schema ~ '^pg_' THEN
        RAISE EXCEPTION 'the facade cannot be installed in schema %', pg_catalog.quote_ident(target_schema)
            USING ERRCODE = '22023', HINT = 'Use the schema PostgREST exposes, usually public.';
    END IF;
    PERFORM steward._install_check(CURRENT_USER, target_schema, v_relations, v_functions);

    -- Roles created after CREATE EXTENSION (service_role) get their steward privileges now.
    PERFORM steward.refresh_grants();

    FOR f IN SELECT ff.*, p.oid AS fn_oid, p.proretset, p.pronargs, p.proargtypes
               FROM steward.facade_functions ff JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) ff.target
              ORDER BY ff.seed_name
    LOOP
        v_args   := pg_catalog.pg_get_function_arguments(f.fn_oid);
        v_result := pg_catalog.pg_get_function_result(f.fn_oid);
        v_sig    := pg_catalog.pg_get_function_identity_arguments(f.fn_oid);
        SELECT coalesce(string_agg(pg_catalog.format('%1$I => %1$I', a.name), ', ' ORDER BY a.ord), '')
          INTO v_call
          FROM unnest((SELECT p.proargnames[1:p.pronargs] FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) f.fn_oid)) WITH ORDINALITY a(name, ord);
        -- A wrapper this installer made for an earlier signature of the target (its argument
        -- list grew): dropped, so PostgREST sees one function of that name and no wrapper
        -- calls a function that is gone.  Only the caller's own (checked above) SQL functions
        -- of a seed name recorded in facade_installed whose body is exactly what this
        -- installer writes: one call of the same steward function, every argument by name.
        FOR v IN SELECT p.oid::pg_catalog.regprocedure AS fn
                   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                  CROSS JOIN LATERAL (
                        SELECT coalesce(string_agg(pg_catalog.format('%1$I => %1$I', a.name), ', ' ORDER BY a.ord), '') AS call
                          FROM unnest(p.proargnames[1:p.pronargs]) WITH ORDINALITY a(name, ord)) w
                  WHERE n.nspname OPERATOR(pg_catalog.=) target_schema AND p.proname OPERATOR(pg_catalog.=) f.seed_name
                    AND p.proargtypes OPERATOR(pg_catalog.<>) f.proargtypes
                    AND p.prolang OPERATOR(pg_catalog.=) (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname OPERATOR(pg_catalog.=) 'sql')
                    AND p.prosrc OPERATOR(pg_catalog.=) ANY (ARRAY[
                            pg_catalog.format('SELECT %s(%s)', f.target::oid::regproc, w.call),
                            pg_catalog.format('SELECT * FROM %s(%s)', f.target::oid::regproc, w.call)])
                    AND EXISTS (SELECT 1 FROM steward.facade_installed i
                                 WHERE i.target_schema OPERATOR(pg_catalog.=) install_rpc_facade.target_schema
                                   AND i.seed_name OPERATOR(pg_catalog.=) f.seed_name AND i.kind OPERATOR(pg_catalog.=) 'function')
        LOOP
            EXECUTE pg_catalog.format('DROP FUNCTION %s', v.fn);
        END LOOP;
        -- The wrapper of this signature: replaced only when it exists (and, checked above,
        -- belongs to the caller); otherwise a plain CREATE, which fails rather than adopt a
        -- function someone creates concurrently.
        v_exists := EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                             WHERE n.nspname OPERATOR(pg_catalog.=) target_schema AND p.proname OPERATOR(pg_catalog.=) f.seed_name
                               AND p.proargtypes OPERATOR(pg_catalog.=) f.proargtypes);
        v_ddl := pg_catalog.format(
            'CREATE %s FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql %s AS %L',
            CASE WHEN v_exists THEN 'OR REPLACE' ELSE '' END,
            target_schema, f.seed_name, v_args, v_result, upper(f.volatility),
            CASE WHEN f.proretset OR v_result LIKE 'TABLE(%'
                 THEN pg_catalog.format('SELECT * FROM %s(%s)', f.target::oid::regproc, v_call)
                 ELSE pg_catalog.format('SELECT %s(%s)', f.target::oid::regproc, v_call) END);
        BEGIN
            EXECUTE v_ddl;
        EXCEPTION WHEN invalid_function_definition THEN
            -- The result type changed since the last install: replace the caller's own wrapper.
            EXECUTE pg_catalog.format('DROP FUNCTION %I.%I(%s)', target_schema, f.seed_name, v_sig);
            EXECUTE replace(v_ddl, 'CREATE OR REPLACE FUNCTION', 'CREATE FUNCTION');
        END;
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC', target_schema, f.seed_name, v_sig);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) v_role) THEN
                EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM %I', target_schema, f.seed_name, v_sig, v_role);
            END IF;
        END LOOP;
        FOREACH v_role IN ARRAY f.grant_to LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) v_role) THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO %I', target_schema, f.seed_name, v_sig, v_role);
            END IF;
        END LOOP;
        INSERT INTO steward.facade_installed (target_schema, seed_name, kind) VALUES (target_schema, f.seed_name, 'function')
        ON CONFLICT ON CONSTRAINT facade_installed_pkey DO UPDATE SET installed_at = pg_catalog.now();
        v_count := v_count + 1;
    END LOOP;

    FOR v IN SELECT * FROM steward.facade_views ORDER BY seed_name LOOP
        SELECT c.relkind INTO v_kind
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE n.nspname OPERATOR(pg_catalog.=) target_schema AND c.relname OPERATOR(pg_catalog.=) v.seed_name;
        IF v_kind IS NOT NULL AND v_kind <> 'v' THEN
            RAISE NOTICE '%.% already exists and is not a view; left as it is', pg_catalog.quote_ident(target_schema), pg_catalog.quote_ident(v.seed_name)
                USING HINT = pg_catalog.format('Move its rows into %s and drop it, then run install_rpc_facade again.', v.target);
            CONTINUE;
        END IF;
        v_invoker := v.user_privileges IS NOT NULL AND pg_catalog.current_setting('server_version_num')::int >= 150000;
        EXECUTE pg_catalog.format('CREATE %s VIEW %I.%I %s AS SELECT * FROM %s',
                       CASE WHEN v_kind IS NOT NULL THEN 'OR REPLACE' ELSE '' END, target_schema, v.seed_name,
                       CASE WHEN v_invoker THEN 'WITH (security_invoker = true)' ELSE '' END, v.target);
        EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', target_schema, v.seed_name);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) v_role) THEN
                EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM %I', target_schema, v.seed_name, v_role);
            END IF;
        END LOOP;
        IF v_invoker AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'authenticated') THEN
            EXECUTE pg_catalog.format('GRANT %s ON %I.%I TO authenticated', v.user_privileges, target_schema, v.seed_name);
        END IF;
        FOREACH v_role IN ARRAY ARRAY['steward_admin', 'service_role'] LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) v_role) THEN
                EXECUTE pg_catalog.format('GRANT %s ON %I.%I TO %I', v.admin_privileges, target_schema, v.seed_name, v_role);
            END IF;
        END LOOP;
        EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO pg_monitor', target_schema, v.seed_name);
        INSERT INTO steward.facade_installed (target_schema, seed_name, kind) VALUES (target_schema, v.seed_name, 'view')
        ON CONFLICT ON CONSTRAINT facade_installed_pkey DO UPDATE SET installed_at = pg_catalog.now();
        v_count := v_count + 1;
    END LOOP;
    -- Anything created concurrently under one of the names fails the installation here.
    PERFORM steward._install_check(CURRENT_USER, target_schema, v_relations, v_functions);
    RETURN v_count;
END
$$;

DELETE FROM steward.function_grants
 WHERE signature IN ('steward.upsert_ai_config(text,jsonb,integer,boolean,text)', 'steward.set_ai_config_active(text,boolean,text)',
                     'steward.delete_ai_config(text,text)', 'steward.rotate_api_key(text,text,text)');
INSERT INTO steward.function_grants (signature, audience, reason) VALUES
    ('steward.upsert_ai_config(text,jsonb,integer,boolean,text,uuid)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.set_ai_config_active(text,boolean,text,uuid)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.delete_ai_config(text,text,uuid)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.rotate_api_key(text,text,text,uuid)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward._ai_config_owner(uuid,text)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward._api_key_rotated(uuid)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.ai_key_rotation_due()', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward._doc_number(jsonb)', '{admins,users}', 'configuration with the caller''s rights');
INSERT INTO steward.function_grants (signature, audience, reason) VALUES
    ('steward._check_alerts(bigint)', '{admins}', 'body of check_alerts(), which takes the caller (statement texts in alerts follow its rights)'),
    ('steward._generate_monthly_report(bigint,date)', '{admins}', 'body of generate_monthly_report(), which takes the caller'),
    ('steward.size_trend(text,integer,integer,bigint)', '{admins,monitor}', 'read-only trends'),
    ('steward.index_usage_trend(text,integer,integer)', '{admins,monitor}', 'read-only trends'),
    ('steward.xid_trend(integer,integer)', '{admins,monitor}', 'read-only trends'),
    ('steward.query_trend(timestamptz,timestamptz,integer)', '{admins,monitor}', 'read-only trends'),
    ('steward.ai_models()', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.record_ai_usage(text,bigint,bigint,uuid,uuid,text)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.ai_spending(uuid,text,date,date)', '{admins,users}', 'configuration with the caller''s rights'),
    ('steward.ai_budget_status(uuid)', '{admins,users}', 'configuration with the caller''s rights');

-- Every upgrade script ends like the install script: nothing new is executable by PUBLIC,
-- steward.function_grants names only functions that exist, and the grants are re-applied.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA steward FROM PUBLIC;
DO $check$
DECLARE
    v_missing text;
BEGIN
    SELECT pg_catalog.string_agg(signature, ', ') INTO v_missing FROM steward.function_grants
     WHERE pg_catalog.to_regprocedure(signature) IS NULL;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'steward.function_grants names functions that do not exist: %', v_missing;
    END IF;
END
$check$;
SELECT steward.refresh_grants();
