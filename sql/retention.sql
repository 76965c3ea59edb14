-- Retention policies and configuration backup/restore (issue #3, the admin-console seed).
--
-- Relations are stored as regclass (OIDs, renamed tables follow); statements are built from
-- the catalog's names with format('%s', regclass) / %I, never from caller text.

-- ---------------------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------------------
CREATE TABLE steward.retention_policies (
    id               uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    table_name       regclass NOT NULL,
    timestamp_column name NOT NULL,
    keep             interval NOT NULL CHECK (keep > interval '0'),
    action           text NOT NULL DEFAULT 'delete' CHECK (action IN ('delete', 'archive')),
    archive_table    regclass,
    batch_size       integer NOT NULL DEFAULT 10000 CHECK (batch_size BETWEEN 1 AND 1000000),
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by       text NOT NULL,
    CHECK ((action = 'archive') = (archive_table IS NOT NULL)),
    UNIQUE (table_name, timestamp_column)
);
SELECT pg_catalog.pg_extension_config_dump('steward.retention_policies', '');

CREATE TABLE steward.retention_runs (
    id          uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    policy_id   uuid NOT NULL REFERENCES steward.retention_policies (id) ON DELETE CASCADE,
    run_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    dry_run     boolean NOT NULL,
    cutoff      timestamptz NOT NULL,
    eligible    bigint NOT NULL,
    processed   bigint NOT NULL,
    batches     integer NOT NULL,
    duration_ms bigint NOT NULL,
    initiator   text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.retention_runs', '');
CREATE INDEX retention_runs_policy_idx ON steward.retention_runs (policy_id, run_at DESC);

-- Add (or replace) a policy.  The column must be a date/timestamp column of the table; an
-- archive table must have the table's columns (names and types, in order) and the same owner.
-- The caller must be able to SELECT and DELETE the table (and INSERT into the archive) with
-- their own rights (src/common/privilege.rs); the rows are later deleted as the table's owner.
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

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._retention_set(tok bigint, tbl regclass, timestamp_column name, keep interval,
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

CREATE FUNCTION steward.retention_set(tbl regclass, timestamp_column name, keep interval,
                                      action text DEFAULT 'delete', archive_table regclass DEFAULT NULL,
                                      batch_size integer DEFAULT 10000)
RETURNS steward.retention_policies
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._retention_set(steward._enter(), tbl, timestamp_column, keep, action, archive_table, batch_size) $$;

-- Apply the enabled policies (or one), in batches of batch_size rows; with dry_run only
-- count what would go.  Every run, dry or not, is recorded in retention_runs.  The caller's
-- rights are checked again for every policy (a policy the caller may not run is refused when
-- named, skipped with a warning in a run of all); the statements run as the table's owner in
-- a security-restricted operation.
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

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._retention_run(tok bigint, policy_id uuid, dry_run boolean)
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

CREATE FUNCTION steward.retention_run(policy_id uuid DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS TABLE (policy uuid, relation text, policy_action text, cutoff timestamptz, eligible bigint,
               processed bigint, batches integer, was_dry_run boolean)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM steward._retention_run(steward._enter(), policy_id, dry_run) $$;

-- ---------------------------------------------------------------------------------------
-- Configuration backup / restore of registered configuration tables
-- ---------------------------------------------------------------------------------------
CREATE TABLE steward.config_tables (
    table_name    regclass PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('steward.config_tables', '');

CREATE TABLE steward.config_backups (
    id          uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    label       text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by  text NOT NULL,
    tables      jsonb NOT NULL,       -- {"schema.table": [row, ...], ...}
    row_counts  jsonb NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.config_backups', '');

CREATE TABLE steward.config_backup_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_id   uuid NOT NULL,
    action      text NOT NULL CHECK (action IN ('backup', 'restore')),
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    initiator   text NOT NULL,
    row_counts  jsonb NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.config_backup_log', '');

-- Register a table whose rows are configuration (install_train_schema will register the
-- application's tables).  Needs a primary key, so a restore is well defined, and the caller
-- must be able to read, insert and delete its rows with their own rights.
CREATE FUNCTION steward._config_register(tok bigint, tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := steward._caller(tok, 'steward.config_register');
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
    END IF;
    PERFORM steward._check_privileges(v_caller, tbl, '{select,insert,delete}', 'registering a configuration table');
    IF NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid OPERATOR(pg_catalog.=) tbl AND k.contype = 'p') THEN
        RAISE EXCEPTION '% has no primary key', tbl USING ERRCODE = '42P10',
              HINT = 'Configuration tables need a primary key to be backed up and restored.';
    END IF;
    INSERT INTO steward.config_tables (table_name) VALUES (tbl) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;

CREATE FUNCTION steward.config_register(tbl regclass) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._config_register(steward._enter(), tbl) $$;

-- Copy every registered table into a backup.  The caller must be able to read each table
-- (checked now, not only at registration); the rows are read as the table's owner in a
-- security-restricted operation.  Admins see a backup's labels and counts, not its rows
-- (column privileges, finalize.sql): the rows come back only through a restore.
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

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._config_backup(tok bigint, label text) RETURNS uuid
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

CREATE FUNCTION steward.config_backup(label text DEFAULT NULL) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._config_backup(steward._enter(), label) $$;

-- Restore every table of a backup, all or nothing: each table is emptied and refilled from
-- the backup under an exclusive lock, in one transaction.  Needs confirm => true, and the
-- caller's own INSERT and DELETE rights on every table (checked before anything changes); the
-- statements (and so the tables' triggers) run as each table's owner in a security-restricted
-- operation.  Only registered tables are restored.
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

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward._config_restore(tok bigint, backup_id uuid, confirm boolean) RETURNS jsonb
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

CREATE FUNCTION steward.config_restore(backup_id uuid, confirm boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._config_restore(steward._enter(), backup_id, confirm) $$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('set_retention_policy',  'steward.retention_set(regclass,name,interval,text,regclass,integer)', 'volatile', '{steward_admin,service_role}'),
    ('run_retention',         'steward.retention_run(uuid,boolean)',                                 'volatile', '{steward_admin,service_role}'),
    ('backup_configuration',  'steward.config_backup(text)',                                         'volatile', '{steward_admin,service_role}'),
    ('restore_configuration', 'steward.config_restore(uuid,boolean)',                                'volatile', '{steward_admin,service_role}');
