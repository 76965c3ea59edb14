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
    actor         text NOT NULL,        -- the database role: "login/role" (authenticator/authenticated) or the login
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
-- on this look-up — and none may apply: the previous entry can have been made by someone
-- else (an organisation configuration changed by several members).  It answers only for an
-- entry that really elided its old_values, whose predecessor carries that hash and records
-- the same owner: the document returned is that entry's own document before, never another
-- owner's (the trigger never links a new row to another owner's chain).  NULL otherwise
-- (history edited behind pg_steward's back: audit_verify reports it).
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
-- column.  Runs with the caller's rights (SECURITY INVOKER): the caller must own the table or
-- hold TRIGGER on it, and PostgreSQL's own CREATE TRIGGER checks the same again.  System
-- catalogs, information_schema, TOAST tables and pg_steward's own schema are refused for
-- everyone but a superuser.  Idempotent: enabling again replaces the triggers and the
-- registration (replacing needs the table's owner, as any DROP TRIGGER does).
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
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
    END IF;
    PERFORM steward._audit_check_table(tbl, 'TRIGGER');
    IF config_type IS NULL OR config_type !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid config_type "%"', config_type USING ERRCODE = '22023',
              DETAIL = 'A config type is a lower-case name such as user_preference or ai_config.';
    END IF;
    SELECT count(*), min(a.attname), min(a.atttypid) INTO v_keys, v_key, v_type
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (k.conkey)
     WHERE k.conrelid OPERATOR(pg_catalog.=) tbl AND k.contype OPERATOR(pg_catalog.=) 'p';
    IF v_keys = 0 THEN
        RAISE EXCEPTION '% has no primary key', tbl USING ERRCODE = '42P10',
              DETAIL = 'Audit entries name the configuration they belong to by its primary key.',
              HINT = 'Add a uuid primary key column.';
    ELSIF v_keys > 1 OR v_type <> 'pg_catalog.uuid'::pg_catalog.regtype THEN
        RAISE EXCEPTION 'the primary key of % is not a single uuid column', tbl USING ERRCODE = '42P10',
              DETAIL = 'Audit entries name the configuration they belong to by a uuid (config_id).';
    END IF;
    SELECT a.atttypid INTO v_type FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) document_column
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" does not exist in %', document_column, tbl USING ERRCODE = '42703';
    ELSIF v_type <> 'pg_catalog.jsonb'::pg_catalog.regtype THEN
        RAISE EXCEPTION 'column "%" of % is %, not jsonb', document_column, tbl, v_type USING ERRCODE = '42804';
    END IF;
    IF owner_column IS NOT NULL THEN
        v_type := NULL;
        SELECT a.atttypid INTO v_type FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) owner_column
           AND a.attnum > 0 AND NOT a.attisdropped;
        IF v_type IS NULL THEN
            RAISE EXCEPTION 'column "%" does not exist in %', owner_column, tbl USING ERRCODE = '42703';
        ELSIF v_type <> 'pg_catalog.uuid'::pg_catalog.regtype THEN
            RAISE EXCEPTION 'column "%" of % is %, not uuid', owner_column, tbl, v_type USING ERRCODE = '42804';
        END IF;
    END IF;

    -- regclass output is a quoted, schema-qualified name where needed; the arguments are
    -- literals (%L).
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit_truncate ON %s', tbl);
    EXECUTE format('CREATE TRIGGER steward_audit AFTER INSERT OR UPDATE OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION steward._audit_capture(%L, %L, %L, %L)',
                   tbl, config_type, document_column, coalesce(owner_column, ''), v_key);
    EXECUTE format('CREATE TRIGGER steward_audit_truncate AFTER TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION steward._audit_truncate(%L)', tbl, config_type);
    PERFORM steward._audit_register(tbl, config_type, document_column, owner_column, v_key);
    RETURN true;
END
$$;

-- The common refusals of audit_enable/audit_disable, checked with the caller's rights (this
-- function is SECURITY INVOKER: current_user is the caller): 42501 for a system catalog,
-- information_schema, a TOAST table or pg_steward's own schema unless the caller is a
-- superuser, and for a table on which the caller lacks p_privilege (its owner, and members of
-- the owner's role, always pass).
CREATE FUNCTION steward._audit_check_table(p_tbl regclass, p_privilege text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel record;
    v_super boolean;
BEGIN
    SELECT n.nspname, c.relowner INTO v_rel
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) p_tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation % does not exist', p_tbl USING ERRCODE = '42P01';
    END IF;
    SELECT r.rolsuper INTO v_super FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    IF NOT coalesce(v_super, false)
       AND (v_rel.nspname IN ('pg_catalog', 'information_schema', 'steward')
            OR v_rel.nspname LIKE 'pg\_toast%' OR p_tbl::oid < 16384) THEN
        RAISE EXCEPTION 'permission denied to audit %', p_tbl USING ERRCODE = '42501',
              DETAIL = format('%s is in schema %s, where only a superuser may attach or remove the audit trigger.',
                              p_tbl, v_rel.nspname),
              HINT = 'Audit the application''s own configuration tables.';
    END IF;
    IF NOT (pg_catalog.pg_has_role(v_rel.relowner, 'USAGE')
            OR (p_privilege IS NOT NULL AND pg_catalog.has_table_privilege(p_tbl, p_privilege))) THEN
        RAISE EXCEPTION 'permission denied to audit %', p_tbl USING ERRCODE = '42501',
              DETAIL = CASE WHEN p_privilege IS NULL
                            THEN format('Removing the audit trigger of %s needs its owner''s rights.', p_tbl)
                            ELSE format('Attaching the audit trigger to %s needs the %s privilege on it (its owner has it).', p_tbl, p_privilege) END,
              HINT = 'Ask the table''s owner to run it, or to grant you the privilege.';
    END IF;
END
$$;

-- The registration, written with the extension owner's rights: only for a table that carries
-- pg_steward's audit trigger (which only someone with TRIGGER rights on it could create), and
-- only what that trigger really records (its arguments are compared byte for byte), so a
-- caller can neither register a table it has no rights on nor describe one falsely.  Who
-- registered is read here, not taken from the caller.
CREATE FUNCTION steward._audit_register(p_tbl regclass, p_config_type text, p_document name, p_owner name,
                                        p_key name)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_enc name := pg_catalog.getdatabaseencoding();
    v_nul bytea := pg_catalog.decode('00', 'hex');
    v_args bytea;
BEGIN
    IF p_tbl IS NULL OR p_config_type IS NULL OR p_document IS NULL OR p_key IS NULL THEN
        RAISE EXCEPTION 'a table, config type, document and key column are required' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                WHERE c.oid OPERATOR(pg_catalog.=) p_tbl
                  AND (n.nspname IN ('pg_catalog', 'information_schema', 'steward') OR n.nspname LIKE 'pg\_toast%'
                       OR c.oid < 16384)) THEN
        RAISE EXCEPTION 'permission denied to audit %', p_tbl USING ERRCODE = '42501';
    END IF;
    -- pg_trigger.tgargs: each argument followed by a NUL byte, in the database encoding.
    v_args := pg_catalog.convert_to(p_config_type, v_enc) OPERATOR(pg_catalog.||) v_nul
              OPERATOR(pg_catalog.||) pg_catalog.convert_to(p_document::text, v_enc) OPERATOR(pg_catalog.||) v_nul
              OPERATOR(pg_catalog.||) pg_catalog.convert_to(coalesce(p_owner::text, ''), v_enc) OPERATOR(pg_catalog.||) v_nul
              OPERATOR(pg_catalog.||) pg_catalog.convert_to(p_key::text, v_enc) OPERATOR(pg_catalog.||) v_nul;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                    WHERE g.tgrelid OPERATOR(pg_catalog.=) p_tbl AND g.tgname OPERATOR(pg_catalog.=) 'steward_audit'
                      AND g.tgfoid OPERATOR(pg_catalog.=) 'steward._audit_capture()'::pg_catalog.regprocedure
                      AND g.tgnargs OPERATOR(pg_catalog.=) 4 AND g.tgargs OPERATOR(pg_catalog.=) v_args) THEN
        RAISE EXCEPTION '% has no audit trigger recording these columns', p_tbl USING ERRCODE = '55000',
              HINT = 'Use steward.audit_enable(table, config_type, document_column, owner_column).';
    END IF;
    INSERT INTO steward.audited_tables AS t (relid, config_type, document_column, owner_column, key_column, enabled_by)
    VALUES (p_tbl, p_config_type, p_document, p_owner, p_key, steward.caller_id())
    ON CONFLICT (relid) DO UPDATE SET config_type = EXCLUDED.config_type, document_column = EXCLUDED.document_column,
        owner_column = EXCLUDED.owner_column, key_column = EXCLUDED.key_column,
        enabled_at = EXCLUDED.enabled_at, enabled_by = EXCLUDED.enabled_by;
END
$$;

-- Removes the registration of a table that no longer carries the audit trigger (so only
-- someone who could drop that trigger, or a table without one, is affected).
CREATE FUNCTION steward._audit_unregister(p_tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid OPERATOR(pg_catalog.=) p_tbl AND g.tgname OPERATOR(pg_catalog.=) 'steward_audit') THEN
        RAISE EXCEPTION '% still has its audit trigger', p_tbl USING ERRCODE = '55000';
    END IF;
    DELETE FROM steward.audited_tables t WHERE t.relid OPERATOR(pg_catalog.=) p_tbl;
    RETURN FOUND;
END
$$;

-- Detach the audit trigger.  Runs with the caller's rights: dropping a trigger needs the
-- table's owner (PostgreSQL checks it too); the same schemas as audit_enable are refused.
CREATE FUNCTION steward.audit_disable(tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'a table is required' USING ERRCODE = '22023';
    END IF;
    PERFORM steward._audit_check_table(tbl, NULL);
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS steward_audit_truncate ON %s', tbl);
    RETURN steward._audit_unregister(tbl);
END
$$;

-- The hash chains re-computed from pg_steward's own tables only (steward.audit_entries and
-- steward.audit_chain_anchors): SECURITY DEFINER so every entry is checked whatever the
-- caller's row-level security shows, and it evaluates nothing a user controls (no user table,
-- view, type, operator or function).  Finds edited entries (hash mismatch) and removed ones
-- (a gap or a broken link).  `problems` lists up to 1000 broken entries, oldest first.
CREATE FUNCTION steward._audit_chain_check(p_config_id uuid,
    OUT checked bigint, OUT broken bigint, OUT first_broken uuid, OUT problem text, OUT problems jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH e AS (
        SELECT l.id, l.config_type, l.config_id, l.seq, l.action, l.changed_by, l.actor, l.changed_at,
               CASE WHEN l.old_elided THEN steward._audit_old_values(l.config_id, l.seq, l.prev_hash)
                    ELSE l.old_values END AS old_values,
               l.new_values, l.change_reason, l.client_ip, l.user_agent, l.prev_hash, l.hash,
               pg_catalog.lag(l.hash) OVER w AS link, pg_catalog.lag(l.seq) OVER w AS prev_seq,
               pg_catalog.row_number() OVER w AS rn
          FROM steward.audit_entries l
         WHERE p_config_id IS NULL OR l.config_id = p_config_id
        WINDOW w AS (PARTITION BY l.config_id ORDER BY l.seq)
    ), c AS (
        SELECT e.id, e.config_id, e.seq, e.changed_at,
               CASE
                 WHEN e.hash IS DISTINCT FROM steward._audit_hash(e.prev_hash, e.id, e.config_type, e.config_id, e.seq,
                        e.action, e.changed_by, e.actor, e.changed_at, e.old_values, e.new_values, e.change_reason,
                        pg_catalog.host(e.client_ip), e.user_agent)
                   THEN 'the entry was edited: its hash does not match its contents'
                 WHEN e.config_id IS NULL THEN
                   CASE WHEN e.seq <> 1 OR e.prev_hash IS NOT NULL THEN 'a truncate entry does not start a chain' END
                 WHEN e.rn = 1 AND NOT (e.seq = 1 AND e.prev_hash IS NULL)
                      AND NOT EXISTS (SELECT 1 FROM steward.audit_chain_anchors a
                                       WHERE a.config_id = e.config_id
                                         AND a.seq = e.seq - 1
                                         AND a.hash = e.prev_hash)
                   THEN 'entries before this one were removed'
                 WHEN e.rn > 1 AND (e.seq <> e.prev_seq + 1
                                                        OR e.prev_hash IS DISTINCT FROM e.link)
                   THEN 'the entry before this one was removed or edited'
               END AS problem
          FROM e
    ), bad AS (
        SELECT c.*, pg_catalog.row_number() OVER (ORDER BY c.changed_at, c.seq) AS n FROM c WHERE c.problem IS NOT NULL
    )
    SELECT (SELECT pg_catalog.count(*) FROM c),
           (SELECT pg_catalog.count(*) FROM bad),
           (SELECT b.id FROM bad b WHERE b.n = 1),
           (SELECT b.problem FROM bad b WHERE b.n = 1),
           coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', b.id, 'config_id', b.config_id,
                                                                               'seq', b.seq, 'problem', b.problem) ORDER BY b.n)
                       FROM bad b WHERE b.n <= 1000), '[]'::jsonb)
$$;

-- Re-compute the hash chains (administrators: EXECUTE is granted to them only) and compare
-- each configuration's current document with its newest entry (a change made with the
-- trigger disabled, or a removed newest entry).  SECURITY INVOKER: the chains are checked by
-- steward._audit_chain_check() above; the configuration tables are read with the caller's
-- rights, only those the caller may SELECT and only while their key is still uuid and their
-- document jsonb, so no user's table, type or operator is ever evaluated as the extension
-- owner.  Tables it could not read are listed in `unchecked_tables`.
CREATE FUNCTION steward.audit_verify(config_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cfg uuid := config_id;
    v_chk record;
    t record;
    v_doc record;
    v_unchecked text[] := '{}';
    v_out jsonb;
BEGIN
    SELECT * INTO v_chk FROM steward._audit_chain_check(v_cfg);
    IF v_chk.broken > 0 THEN
        RETURN jsonb_build_object('ok', false, 'checked', v_chk.checked, 'first_broken', v_chk.first_broken,
                                  'problem', v_chk.problem, 'broken', v_chk.broken);
    END IF;
    -- The newest entry of each configuration must describe the row as it is now.
    FOR t IN
        SELECT a.relid, a.key_column, a.document_column,
               (c.relkind IN ('r', 'p')
                AND pg_catalog.has_table_privilege(a.relid, 'SELECT')
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute k
                             WHERE k.attrelid OPERATOR(pg_catalog.=) a.relid AND k.attname OPERATOR(pg_catalog.=) a.key_column
                               AND NOT k.attisdropped AND k.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute d
                             WHERE d.attrelid OPERATOR(pg_catalog.=) a.relid AND d.attname OPERATOR(pg_catalog.=) a.document_column
                               AND NOT d.attisdropped AND d.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype)
               ) AS readable
          FROM steward.audited_tables a
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.relid
    LOOP
        IF NOT t.readable THEN
            v_unchecked := v_unchecked || t.relid::text;
            CONTINUE;
        END IF;
        EXECUTE format($q$
            SELECT cur.%2$I AS id, l.id AS entry
              FROM %1$s cur
              LEFT JOIN LATERAL (SELECT x.id, x.new_values FROM steward.audit_entries x
                                  WHERE x.config_id OPERATOR(pg_catalog.=) cur.%2$I ORDER BY x.seq DESC LIMIT 1) l ON true
             WHERE ($1 IS NULL OR cur.%2$I OPERATOR(pg_catalog.=) $1)
               AND l.id IS NOT NULL AND l.new_values IS DISTINCT FROM cur.%3$I
             LIMIT 1$q$, t.relid, t.key_column, t.document_column)
           INTO v_doc USING v_cfg;
        IF v_doc.id IS NOT NULL THEN
            RETURN jsonb_build_object('ok', false, 'checked', v_chk.checked, 'first_broken', v_doc.entry,
                                      'config_id', v_doc.id, 'broken', 1,
                                      'problem', 'the configuration was changed without an audit entry, or its newest entry was removed');
        END IF;
    END LOOP;
    v_out := jsonb_build_object('ok', true, 'checked', v_chk.checked, 'first_broken', NULL);
    IF cardinality(v_unchecked) > 0 THEN
        v_out := v_out || jsonb_build_object('unchecked_tables', to_jsonb(v_unchecked));
    END IF;
    RETURN v_out;
END
$$;

-- A checkpoint of the whole log for an operator to keep outside the database (server log,
-- pg_cron output, a ticket): every chain's head (config_id, seq, hash) with its count and
-- first seq, every truncate entry (id, hash, time), the totals, the time, and a SHA-256 digest
-- of the heads.  Read from steward.audit_entries only.  Whoever can edit the log (a
-- superuser with its triggers disabled) can make the chains consistent again, but not this
-- document: steward.audit_verify(checkpoint) then shows what went.
CREATE FUNCTION steward.audit_checkpoint() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_heads jsonb;
    v_truncates jsonb;
    v_entries bigint;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object('config_id', g.config_id, 'seq', g.seq,
                                                 'hash', encode(e.hash, 'hex'), 'count', g.n, 'first_seq', g.first_seq)
                              ORDER BY g.config_id), '[]'::jsonb)
      INTO v_heads
      FROM (SELECT l.config_id, max(l.seq) AS seq, min(l.seq) AS first_seq, count(*) AS n
              FROM steward.audit_entries l WHERE l.config_id IS NOT NULL GROUP BY l.config_id) g
      JOIN steward.audit_entries e
        ON e.config_id = g.config_id AND e.seq = g.seq;
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'hash', encode(l.hash, 'hex'), 'changed_at', l.changed_at)
                              ORDER BY l.id), '[]'::jsonb)
      INTO v_truncates
      FROM steward.audit_entries l WHERE l.config_id IS NULL;
    SELECT count(*) INTO v_entries FROM steward.audit_entries;
    RETURN jsonb_build_object(
        'version', 1,
        'taken_at', now(),
        'chains', jsonb_array_length(v_heads),
        'entries', v_entries,
        'heads', v_heads,
        'truncate_entries', v_truncates,
        'digest', encode(sha256(convert_to(v_heads::text || v_truncates::text, 'UTF8')), 'hex'));
END
$$;

-- The log compared with a checkpoint of steward.audit_checkpoint(): chains whose entries are
-- all gone (`deleted_chains`), chains whose tail is gone (`truncated`: the newest seq found is
-- below the recorded head), and entries edited or removed inside a chain (`edited`: the
-- recorded head is no longer the entry at its seq, fewer entries up to the head than
-- recorded, plus every entry the hash chains show broken).  Chains that grew since are fine
-- as long as the recorded head is still in place.  Entries that steward.audit_purge()
-- removed (its chain anchors and purge records say so) are listed under `purged`, not as
-- tampering.  `first_broken` is the first broken entry's id (NULL when only whole chains or
-- tails went).  Reads pg_steward's own tables only.
CREATE FUNCTION steward.audit_verify(checkpoint jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_heads jsonb := checkpoint -> 'heads';
    v_truncs jsonb := coalesce(checkpoint -> 'truncate_entries', '[]'::jsonb);
    v_chk record;
    v_deleted jsonb;
    v_truncated jsonb;
    v_edited jsonb;
    v_purged jsonb;
    v_digest_ok boolean;
BEGIN
    IF checkpoint IS NULL OR jsonb_typeof(checkpoint) IS DISTINCT FROM 'object'
       OR jsonb_typeof(v_heads) IS DISTINCT FROM 'array' OR jsonb_typeof(v_truncs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'not a checkpoint of steward.audit_checkpoint()' USING ERRCODE = '22023',
              DETAIL = 'A checkpoint is an object with the arrays "heads" and "truncate_entries".',
              HINT = 'Pass the document steward.audit_checkpoint() returned, unchanged.';
    END IF;
    v_digest_ok := checkpoint ->> 'digest' IS NOT DISTINCT FROM
                   encode(sha256(convert_to(v_heads::text || v_truncs::text, 'UTF8')), 'hex');
    SELECT * INTO v_chk FROM steward._audit_chain_check(NULL);
    BEGIN
        WITH h AS (
            SELECT x.config_id, x.seq, decode(x.hash, 'hex') AS hash, x.count, x.first_seq
              FROM jsonb_to_recordset(v_heads) AS x(config_id uuid, seq bigint, hash text, count bigint, first_seq bigint)
        ), s AS (
            SELECT h.*,
                   (SELECT max(e.seq) FROM steward.audit_entries e
                     WHERE e.config_id = h.config_id) AS found_seq,
                   (SELECT e.hash FROM steward.audit_entries e
                     WHERE e.config_id = h.config_id AND e.seq = h.seq) AS found_hash,
                   (SELECT e.id FROM steward.audit_entries e
                     WHERE e.config_id = h.config_id AND e.seq = h.seq) AS found_id,
                   (SELECT count(*) FROM steward.audit_entries e
                     WHERE e.config_id = h.config_id AND e.seq <= h.seq) AS found_count,
                   a.seq AS anchor_seq, a.hash AS anchor_hash
              FROM h LEFT JOIN steward.audit_chain_anchors a ON a.config_id = h.config_id
        ), k AS (
            SELECT s.*,
                   -- audit_purge removed the chain up to (at least) the recorded head.
                   (s.anchor_seq IS NOT NULL AND (s.anchor_seq > s.seq
                        OR (s.anchor_seq = s.seq AND s.anchor_hash = s.hash))) AS purged_head,
                   -- audit_purge removed entries up to and including the recorded first one.
                   (s.anchor_seq IS NOT NULL AND s.anchor_seq >= s.first_seq) AS purged_some
              FROM s
        )
        SELECT
            coalesce(jsonb_agg(jsonb_build_object('config_id', k.config_id, 'expected_seq', k.seq, 'expected_count', k.count)
                               ORDER BY k.config_id) FILTER (WHERE k.found_seq IS NULL AND NOT k.purged_head), '[]'::jsonb),
            coalesce(jsonb_agg(jsonb_build_object('config_id', k.config_id, 'expected_seq', k.seq, 'found_seq', k.found_seq)
                               ORDER BY k.config_id) FILTER (WHERE k.found_seq < k.seq), '[]'::jsonb),
            coalesce(jsonb_agg(jsonb_build_object('config_id', k.config_id, 'seq', k.seq, 'id', k.found_id,
                                                  'problem', CASE
                                                    WHEN k.found_hash IS NULL THEN 'the recorded head entry was removed'
                                                    WHEN k.found_hash <> k.hash THEN 'the recorded head entry was replaced or edited'
                                                    ELSE format('%s of the %s entries up to the recorded head were removed',
                                                                k.count - k.found_count, k.count) END)
                               ORDER BY k.config_id)
                     FILTER (WHERE k.found_seq >= k.seq
                               AND ((k.found_hash IS NULL AND NOT k.purged_head)
                                    OR k.found_hash <> k.hash
                                    OR (k.found_count < k.count AND NOT k.purged_some))), '[]'::jsonb),
            coalesce(jsonb_agg(jsonb_build_object('config_id', k.config_id, 'through_seq', k.anchor_seq)
                               ORDER BY k.config_id) FILTER (WHERE k.purged_some OR (k.found_seq IS NULL AND k.purged_head)), '[]'::jsonb)
          INTO v_deleted, v_truncated, v_edited, v_purged
          FROM k;
        -- Truncate entries: each is a chain of its own.
        WITH t AS (
            SELECT x.id, decode(x.hash, 'hex') AS hash, x.changed_at
              FROM jsonb_to_recordset(v_truncs) AS x(id uuid, hash text, changed_at timestamptz)
        ), s AS (
            SELECT t.*, e.hash AS found_hash,
                   EXISTS (SELECT 1 FROM steward.audit_purges p WHERE p.cutoff > t.changed_at) AS purged
              FROM t LEFT JOIN steward.audit_entries e ON e.id = t.id
        )
        SELECT v_deleted || coalesce(jsonb_agg(jsonb_build_object('config_id', NULL, 'entry_id', s.id, 'action', 'truncated'))
                                     FILTER (WHERE s.found_hash IS NULL AND NOT s.purged), '[]'::jsonb),
               v_edited || coalesce(jsonb_agg(jsonb_build_object('config_id', NULL, 'id', s.id, 'problem', 'the truncate entry was replaced or edited'))
                                    FILTER (WHERE s.found_hash <> s.hash), '[]'::jsonb),
               v_purged || coalesce(jsonb_agg(jsonb_build_object('config_id', NULL, 'entry_id', s.id))
                                    FILTER (WHERE s.found_hash IS NULL AND s.purged), '[]'::jsonb)
          INTO v_deleted, v_edited, v_purged
          FROM s;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'not a checkpoint of steward.audit_checkpoint()' USING ERRCODE = '22023',
              DETAIL = format('A value in it cannot be read: %s', SQLERRM),
              HINT = 'Pass the document steward.audit_checkpoint() returned, unchanged.';
    END;
    v_edited := v_edited || v_chk.problems;
    RETURN jsonb_build_object(
        'ok', v_digest_ok AND jsonb_array_length(v_deleted) = 0 AND jsonb_array_length(v_truncated) = 0
              AND jsonb_array_length(v_edited) = 0,
        'checked', v_chk.checked,
        'checkpoint_taken_at', checkpoint -> 'taken_at',
        'digest_ok', v_digest_ok,
        'deleted_chains', v_deleted,
        'truncated', v_truncated,
        'edited', v_edited,
        'purged', v_purged,
        'first_broken', coalesce(v_chk.first_broken::text, (SELECT x ->> 'id' FROM jsonb_array_elements(v_edited) x
                                                             WHERE x ->> 'id' IS NOT NULL LIMIT 1)));
END
$$;

-- The retention function of the audit log: the only way entries leave it, itself recorded.
-- The cutoff (now - older_than) is never in the future and never younger than the setting
-- auditPurgeMinimumDays (default and minimum 1 day): 22023 otherwise, nothing removed.
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

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.audit_purge(older_than interval DEFAULT NULL, dry_run boolean DEFAULT false)
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

INSERT INTO steward.facade_views (seed_name, target, admin_privileges, user_privileges) VALUES
    ('configuration_audit_log', 'steward.configuration_audit_log', 'SELECT', 'SELECT'),
    ('ai_configuration_audit',  'steward.ai_configuration_audit',  'SELECT', 'SELECT');
