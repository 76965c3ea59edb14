-- Audit trail (CONTRACT §5): every change of a registered configuration table recorded once,
-- attributed, append-only and chained by hash.  The trigger is written in Rust
-- (src/audit): one prepared INSERT per changed row, no PL/pgSQL on the write path.

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('auditRateLimitPerMinute', '60',  0, NULL, 'Configuration changes an end user (JWT role authenticated or anon) may make per minute; 0 disables the limit'),
    ('auditRetentionDays',      '365', 1, NULL, 'steward.audit_purge() removes audit entries older than this many days');

-- The entries as stored.  old_values is stored only where it is not the previous entry's
-- new_values (old_elided = false); for an ordinary change the document before is exactly the
-- document the previous entry recorded after, and storing it twice doubled the heap and WAL
-- written per audited change.  Everyone reads the entries through the view
-- steward.configuration_audit_log below, which puts old_values back.
CREATE TABLE steward.audit_entries (
    id            uuid PRIMARY KEY,
    config_type   text NOT NULL,
    config_id     uuid,                 -- NULL only for a TRUNCATE entry
    changed_by    uuid,                 -- the end user (auth.uid() / JWT sub) when there is one
    changed_at    timestamptz NOT NULL,
    old_values    jsonb,                -- NULL where old_elided
    new_values    jsonb,
    change_reason text,
    client_ip     inet,
    user_agent    text,
    -- pg_steward's own columns
    action        text NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'activated', 'deactivated', 'truncated')),
    actor         text NOT NULL,        -- changed_by as text, or the database user for direct sessions
    relid         oid NOT NULL,         -- the configuration table
    owner_id      uuid,                 -- the configuration's owner (its owner column)
    rollback_of   uuid,                 -- set when the change is a rollback to that entry
    txid          bigint NOT NULL,      -- entries of one transaction share it
    seq           bigint NOT NULL,      -- position in the configuration's chain, from 1
    prev_hash     bytea,
    hash          bytea NOT NULL,
    old_elided    boolean NOT NULL DEFAULT false,   -- old_values = the previous entry's new_values
    CHECK (NOT old_elided OR (old_values IS NULL AND seq > 1 AND prev_hash IS NOT NULL))
);
-- History of one configuration, newest first (and the chain's previous-entry lookup).
CREATE UNIQUE INDEX audit_entries_chain ON steward.audit_entries (config_id, seq);
-- Time ranges at tens of millions of rows: entries arrive in time order, so a BRIN index
-- is tiny and cheap to maintain.
CREATE INDEX audit_entries_time ON steward.audit_entries USING brin (changed_at);
-- A user's own entries (row-level security, "my history").
CREATE INDEX audit_entries_owner ON steward.audit_entries (owner_id, changed_at);
SELECT pg_catalog.pg_extension_config_dump('steward.audit_entries', '');

-- The previous entry's new_values, for an entry that elided its old_values.  The entry's
-- prev_hash is the key: only a caller who can read the entry knows it (a SHA-256 cannot be
-- guessed), and an entry's old_values is theirs to read, so no row-level security is needed
-- on this look-up — and none may apply: the previous entry can belong to someone else
-- (an organisation configuration changed by several members).  NULL when the previous
-- entry is gone or does not carry that hash (history edited behind pg_steward's back: its
-- hash no longer matches, and audit_verify reports it).
-- (steward._audit_old_values(config_id uuid, seq bigint, prev_hash bytea) is defined in src/audit/writer.rs.)

-- The unified log as clients read it (seed columns first; CONTRACT §5).  On PostgreSQL 15+
-- it runs with the reader's rights, so the row-level security of steward.audit_entries
-- applies; older servers get the same rules as a filter.
DO $log$
DECLARE
    v_modern boolean := current_setting('server_version_num')::int >= 150000;
    v_service text := CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role')
                           THEN $s$ OR pg_catalog.pg_has_role('service_role', 'MEMBER')$s$ ELSE '' END;
BEGIN
    EXECUTE format($v$
        CREATE VIEW steward.configuration_audit_log %s AS
        SELECT e.id, e.config_type, e.config_id, e.changed_by, e.changed_at,
               CASE WHEN e.old_elided THEN steward._audit_old_values(e.config_id, e.seq, e.prev_hash)
                    ELSE e.old_values END AS old_values,
               e.new_values, e.change_reason, e.client_ip, e.user_agent, e.action, e.actor, e.relid,
               e.owner_id, e.rollback_of, e.txid, e.seq, e.prev_hash, e.hash
          FROM steward.audit_entries e %s$v$,
        CASE WHEN v_modern THEN 'WITH (security_invoker = true)' ELSE 'WITH (security_barrier = true)' END,
        CASE WHEN v_modern THEN ''
             ELSE $w$WHERE pg_catalog.pg_has_role('steward_admin', 'MEMBER')$w$ || v_service
                  || $w$ OR e.owner_id = (SELECT steward.caller_uuid()) OR e.changed_by = (SELECT steward.caller_uuid())$w$ END);
END
$log$;

-- Where a chain resumes after steward.audit_purge() removed its older entries.
CREATE TABLE steward.audit_chain_anchors (
    config_id   uuid PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    anchored_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.audit_chain_anchors', '');

-- Every removal of entries, recorded.
CREATE TABLE steward.audit_purges (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purged_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    cutoff          timestamptz NOT NULL,
    entries_removed bigint NOT NULL,
    purged_by       text NOT NULL,
    purged_by_id    uuid
);
SELECT pg_catalog.pg_extension_config_dump('steward.audit_purges', '');

-- Per end user: changes in the current one-minute window.
CREATE TABLE steward.audit_rate (
    user_id      uuid PRIMARY KEY,
    window_start timestamptz NOT NULL,
    changes      integer NOT NULL
);

-- Tables whose changes are audited.
CREATE TABLE steward.audited_tables (
    relid           regclass PRIMARY KEY,
    config_type     text NOT NULL,
    document_column name NOT NULL,
    owner_column    name,
    key_column      name NOT NULL,
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by      text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.audited_tables', '');

-- Append-only, for every role including the owner: only pg_steward's own code (the audit
-- trigger, audit_purge) may write, and nobody may update.
CREATE TRIGGER audit_entries_append_only
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON steward.audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_log_guard();
-- Writes through the view are refused the same way (the row trigger makes PostgreSQL route
-- them to the view's triggers instead of rewriting them onto the table; the statement
-- trigger refuses before any row is looked at).
CREATE TRIGGER configuration_audit_log_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON steward.configuration_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_log_guard();
CREATE TRIGGER configuration_audit_log_no_rows
    INSTEAD OF INSERT OR UPDATE OR DELETE ON steward.configuration_audit_log
    FOR EACH ROW EXECUTE FUNCTION steward._audit_log_guard();
CREATE TRIGGER audit_chain_anchors_append_only
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON steward.audit_chain_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_log_guard();
CREATE TRIGGER audit_purges_append_only
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON steward.audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_log_guard();

-- Users read the entries of their own configurations and the ones they made; admins all.
ALTER TABLE steward.audit_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY admins_read_all ON steward.audit_entries FOR SELECT TO steward_admin USING (true);
DO $policies$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE POLICY service_reads_all ON steward.audit_entries FOR SELECT TO service_role USING (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE POLICY users_read_own ON steward.audit_entries FOR SELECT TO authenticated
            USING (owner_id = (SELECT steward.caller_uuid()) OR changed_by = (SELECT steward.caller_uuid()));
    END IF;
END
$policies$;

-- The legacy log older screens read (ai_configuration_audit): a view over the unified log.
-- Runs with the reader's rights where the server supports it (PostgreSQL 15+), so the
-- log's row-level security applies.
DO $legacy$
BEGIN
    EXECUTE format($v$
        CREATE VIEW steward.ai_configuration_audit %s AS
        SELECT l.id, l.config_id,
               CASE l.action WHEN 'truncated' THEN 'deleted' ELSE l.action END AS action,
               l.changed_by, l.old_values, l.new_values, l.change_reason, l.changed_at AS created_at
          FROM steward.configuration_audit_log l
         WHERE l.config_type = 'ai_config'$v$,
        CASE WHEN current_setting('server_version_num')::int >= 150000 THEN 'WITH (security_invoker = true)' ELSE '' END);
END
$legacy$;

-- Attach the audit trigger to a configuration table.  The table needs a single-column uuid
-- primary key (the configuration id), a jsonb document column and, optionally, a uuid owner
-- column.  Runs with the caller's rights: creating the triggers needs the table owner's
-- privileges, as any CREATE TRIGGER does.  Idempotent: enabling again replaces the triggers
-- and the registration.
CREATE FUNCTION steward.audit_enable(tbl regclass, config_type text, document_column name,
                                     owner_column name DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_key name;
    v_keys int;
    v_type regtype;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'a table is required' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tbl AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
    END IF;
    IF config_type IS NULL OR config_type !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid config_type "%"', config_type USING ERRCODE = '22023',
              DETAIL = 'A config type is a lower-case name such as user_preference or ai_config.';
    END IF;
    SELECT count(*), min(a.attname), min(a.atttypid) INTO v_keys, v_key, v_type
      FROM pg_constraint k
      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
     WHERE k.conrelid = tbl AND k.contype = 'p';
    IF v_keys = 0 THEN
        RAISE EXCEPTION '% has no primary key', tbl USING ERRCODE = '42P10',
              DETAIL = 'Audit entries name the configuration they belong to by its primary key.',
              HINT = 'Add a uuid primary key column.';
    ELSIF v_keys > 1 OR v_type <> 'uuid'::regtype THEN
        RAISE EXCEPTION 'the primary key of % is not a single uuid column', tbl USING ERRCODE = '42P10',
              DETAIL = 'Audit entries name the configuration they belong to by a uuid (config_id).';
    END IF;
    SELECT a.atttypid INTO v_type FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = document_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" does not exist in %', document_column, tbl USING ERRCODE = '42703';
    ELSIF v_type <> 'jsonb'::regtype THEN
        RAISE EXCEPTION 'column "%" of % is %, not jsonb', document_column, tbl, v_type USING ERRCODE = '42804';
    END IF;
    IF owner_column IS NOT NULL THEN
        v_type := NULL;
        SELECT a.atttypid INTO v_type FROM pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = owner_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF v_type IS NULL THEN
            RAISE EXCEPTION 'column "%" does not exist in %', owner_column, tbl USING ERRCODE = '42703';
        ELSIF v_type <> 'uuid'::regtype THEN
            RAISE EXCEPTION 'column "%" of % is %, not uuid', owner_column, tbl, v_type USING ERRCODE = '42804';
        END IF;
    END IF;

    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit_truncate ON %s', tbl);
    EXECUTE format('CREATE TRIGGER steward_audit AFTER INSERT OR UPDATE OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION steward._audit_capture(%L, %L, %L, %L)',
                   tbl, config_type, document_column, coalesce(owner_column, ''), v_key);
    EXECUTE format('CREATE TRIGGER steward_audit_truncate AFTER TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_truncate(%L)', tbl, config_type);
    PERFORM steward._audit_register(tbl, config_type, document_column, owner_column, v_key, steward.caller_id());
    RETURN true;
END
$$;

-- The registration: only for a table whose audit trigger exists (so only someone who could
-- create it registers a table).
CREATE FUNCTION steward._audit_register(p_tbl regclass, p_config_type text, p_document name, p_owner name,
                                        p_key name, p_by text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = p_tbl AND g.tgname = 'steward_audit'
                      AND g.tgfoid = 'steward._audit_capture()'::regprocedure) THEN
        RAISE EXCEPTION '% has no audit trigger', p_tbl USING ERRCODE = '55000';
    END IF;
    INSERT INTO steward.audited_tables AS t (relid, config_type, document_column, owner_column, key_column, enabled_by)
    VALUES (p_tbl, p_config_type, p_document, p_owner, p_key, p_by)
    ON CONFLICT (relid) DO UPDATE SET config_type = EXCLUDED.config_type, document_column = EXCLUDED.document_column,
        owner_column = EXCLUDED.owner_column, key_column = EXCLUDED.key_column,
        enabled_at = EXCLUDED.enabled_at, enabled_by = EXCLUDED.enabled_by;
END
$$;

CREATE FUNCTION steward._audit_unregister(p_tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = p_tbl AND g.tgname = 'steward_audit') THEN
        RAISE EXCEPTION '% still has its audit trigger', p_tbl USING ERRCODE = '55000';
    END IF;
    DELETE FROM steward.audited_tables t WHERE t.relid = p_tbl;
    RETURN FOUND;
END
$$;

CREATE FUNCTION steward.audit_disable(tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit_truncate ON %s', tbl);
    RETURN steward._audit_unregister(tbl);
END
$$;

-- Re-compute the hash chains (administrators: EXECUTE is granted to them only).  Finds edited entries (hash mismatch), removed entries (a gap
-- or a broken link), and configurations whose current document is not what their newest
-- entry recorded (a change made with the trigger disabled, or a removed newest entry).
CREATE FUNCTION steward.audit_verify(config_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cfg uuid := config_id;
    v_checked bigint;
    v_bad record;
    t record;
    v_doc record;
BEGIN
    WITH e AS (
        SELECT l.*, lag(l.hash) OVER w AS link, lag(l.seq) OVER w AS prev_seq,
               row_number() OVER w AS rn
          FROM steward.configuration_audit_log l
         WHERE v_cfg IS NULL OR l.config_id = v_cfg
        WINDOW w AS (PARTITION BY l.config_id ORDER BY l.seq)
    ), checked AS (
        SELECT e.id, e.config_id, e.seq, e.changed_at,
               CASE
                 WHEN e.hash IS DISTINCT FROM steward._audit_hash(e.prev_hash, e.id, e.config_type, e.config_id, e.seq,
                        e.action, e.changed_by, e.actor, e.changed_at, e.old_values, e.new_values, e.change_reason,
                        host(e.client_ip), e.user_agent)
                   THEN 'the entry was edited: its hash does not match its contents'
                 WHEN e.config_id IS NULL THEN
                   CASE WHEN e.seq <> 1 OR e.prev_hash IS NOT NULL THEN 'a truncate entry does not start a chain' END
                 WHEN e.rn = 1 AND NOT (e.seq = 1 AND e.prev_hash IS NULL)
                      AND NOT EXISTS (SELECT 1 FROM steward.audit_chain_anchors a
                                       WHERE a.config_id = e.config_id AND a.seq = e.seq - 1 AND a.hash = e.prev_hash)
                   THEN 'entries before this one were removed'
                 WHEN e.rn > 1 AND (e.seq <> e.prev_seq + 1 OR e.prev_hash IS DISTINCT FROM e.link)
                   THEN 'the entry before this one was removed or edited'
               END AS problem
          FROM e
    )
    SELECT count(*) AS n,
           (array_agg(c.id ORDER BY c.changed_at, c.seq) FILTER (WHERE c.problem IS NOT NULL))[1] AS first_id,
           (array_agg(c.problem ORDER BY c.changed_at, c.seq) FILTER (WHERE c.problem IS NOT NULL))[1] AS problem,
           count(*) FILTER (WHERE c.problem IS NOT NULL) AS broken
      INTO v_bad
      FROM checked c;
    v_checked := v_bad.n;
    IF v_bad.broken > 0 THEN
        RETURN jsonb_build_object('ok', false, 'checked', v_checked, 'first_broken', v_bad.first_id,
                                  'problem', v_bad.problem, 'broken', v_bad.broken);
    END IF;
    -- The newest entry of each configuration must describe the row as it is now.
    FOR t IN SELECT a.* FROM steward.audited_tables a LOOP
        EXECUTE format($q$
            SELECT cur.%2$I AS id, l.id AS entry
              FROM %1$s cur
              LEFT JOIN LATERAL (SELECT x.id, x.new_values, x.action FROM steward.configuration_audit_log x
                                  WHERE x.config_id = cur.%2$I ORDER BY x.seq DESC LIMIT 1) l ON true
             WHERE ($1 IS NULL OR cur.%2$I = $1)
               AND l.id IS NOT NULL AND l.new_values IS DISTINCT FROM cur.%3$I
             LIMIT 1$q$, t.relid, t.key_column, t.document_column)
           INTO v_doc USING v_cfg;
        IF v_doc.id IS NOT NULL THEN
            RETURN jsonb_build_object('ok', false, 'checked', v_checked, 'first_broken', v_doc.entry,
                                      'config_id', v_doc.id, 'broken', 1,
                                      'problem', 'the configuration was changed without an audit entry, or its newest entry was removed');
        END IF;
    END LOOP;
    RETURN jsonb_build_object('ok', true, 'checked', v_checked, 'first_broken', NULL);
END
$$;

-- The retention function of the audit log: the only way entries leave it, itself recorded.
CREATE FUNCTION steward.audit_purge(older_than interval DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keep interval := coalesce(older_than, make_interval(days => steward.setting_number('auditRetentionDays')::int));
    v_cutoff timestamptz;
    v_n bigint;
BEGIN
    IF v_keep < interval '1 day' THEN
        RAISE EXCEPTION 'audit entries are kept at least one day' USING ERRCODE = '22023',
              DETAIL = format('older_than was %s.', v_keep);
    END IF;
    v_cutoff := now() - v_keep;
    v_n := steward._audit_purge(v_cutoff, coalesce(dry_run, false));
    RETURN jsonb_build_object('cutoff', v_cutoff, 'entries', v_n, 'dry_run', coalesce(dry_run, false));
END
$$;

INSERT INTO steward.facade_views (seed_name, target, admin_privileges, user_privileges) VALUES
    ('configuration_audit_log', 'steward.configuration_audit_log', 'SELECT', 'SELECT'),
    ('ai_configuration_audit',  'steward.ai_configuration_audit',  'SELECT', 'SELECT');
