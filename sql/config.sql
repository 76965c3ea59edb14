-- Configuration (CONTRACT §4): the application's tables, one validator (Rust), effective
-- configuration with provenance.

-- The database-wide layer an admin edits (between the built-in defaults and organisations).
CREATE TABLE steward.config_overrides (
    kind       text PRIMARY KEY CHECK (kind IN ('user_preferences', 'ai_config')),
    document   jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL DEFAULT steward.caller_id()
);
SELECT pg_catalog.pg_extension_config_dump('steward.config_overrides', '');

-- Where install_train_schema put the application's tables.
CREATE TABLE steward.train_schema (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    schema_name name NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('steward.train_schema', '');

-- API keys written into an AI configuration (apiKeys.primaryKey / secondaryKey) are moved
-- here by the row guard; the document keeps a token: the mask ("••••" and the last four
-- characters), "#" and 16 hex digits of the key's SHA-256 (src/config/keys.rs).  Only the
-- service role reads this table (through the effective configuration); entries are never
-- removed, so a rolled-back or restored document's token still resolves.
CREATE TABLE steward.api_key_vault (
    token      text PRIMARY KEY,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('steward.api_key_vault', '');

-- Validation, API keys into the vault, and updated_at for every write of a configuration row,
-- whoever writes it.  TG_ARGV: document kind, document column.
CREATE FUNCTION steward._config_row_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_doc jsonb := to_jsonb(NEW) -> TG_ARGV[1];
    v_vaulted jsonb;
BEGIN
    PERFORM steward._check_document(TG_ARGV[0], v_doc);
    IF TG_ARGV[0] = 'ai_config' THEN
        v_vaulted := steward._vault_api_keys(v_doc);
        IF v_vaulted IS NOT NULL THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[1], v_vaulted));
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object('updated_at', clock_timestamp()));
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION steward._config_overrides_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._check_document(NEW.kind, NEW.document);
    NEW.updated_at := clock_timestamp();
    NEW.updated_by := steward.caller_id();
    RETURN NEW;
END
$$;
CREATE TRIGGER config_overrides_guard BEFORE INSERT OR UPDATE ON steward.config_overrides
    FOR EACH ROW EXECUTE FUNCTION steward._config_overrides_guard();
-- Every backend forgets its cached effective configurations when a layer changes
-- (src/config/cache.rs); the same trigger goes on the user and organisation tables.
CREATE TRIGGER config_overrides_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON steward.config_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION steward._effective_config_changed();

-- Default preferences for a new auth.users row (Supabase), in the installed schema.
CREATE FUNCTION steward._default_preferences_for_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
BEGIN
    IF v_schema IS NOT NULL THEN
        EXECUTE format('INSERT INTO %I.user_preferences (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', v_schema)
          USING NEW.id;
    END IF;
    RETURN NEW;
END
$$;

-- Create the application's configuration tables where missing, with constraints, indexes,
-- updated_at, validation, row-level security as on Supabase, and register them for backup
-- and for auditing.  Runs with the caller's rights:
-- creating tables in a schema needs the caller's own CREATE privilege there.
CREATE FUNCTION steward.install_train_schema(target_schema name DEFAULT 'public') RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    s name := target_schema;
    v_roles text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s) THEN
        RAISE EXCEPTION 'schema "%" does not exist', s USING ERRCODE = '3F000';
    END IF;
    IF s IN ('pg_catalog', 'information_schema', 'steward') OR s ~ '^pg_' THEN
        RAISE EXCEPTION 'the configuration tables cannot go into schema "%"', s USING ERRCODE = '42501';
    END IF;
    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %1$I.organizations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS %1$I.organization_members (
            organization_id uuid NOT NULL REFERENCES %1$I.organizations (id) ON DELETE CASCADE,
            user_id uuid NOT NULL,
            role text NOT NULL DEFAULT 'member',
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, user_id));
        CREATE INDEX IF NOT EXISTS organization_members_user_idx ON %1$I.organization_members (user_id);
        CREATE TABLE IF NOT EXISTS %1$I.user_preferences (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL UNIQUE,
            preferences jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS %1$I.ai_configurations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid,
            organization_id uuid REFERENCES %1$I.organizations (id) ON DELETE CASCADE,
            config_name varchar(255) NOT NULL,
            configuration jsonb NOT NULL DEFAULT '{}',
            is_active boolean NOT NULL DEFAULT true,
            priority integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            created_by uuid,
            CONSTRAINT ai_configurations_one_owner CHECK (num_nonnulls(user_id, organization_id) = 1),
            CONSTRAINT ai_configurations_user_name_key UNIQUE (user_id, config_name),
            CONSTRAINT ai_configurations_org_name_key UNIQUE (organization_id, config_name));
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
    SELECT string_agg(quote_ident(r), ', ') INTO v_roles
      FROM unnest(ARRAY['steward_admin', 'service_role']) r WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
    EXECUTE format($p$
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.user_preferences;
        CREATE POLICY steward_admin_all ON %1$I.user_preferences FOR ALL TO %2$s USING (true) WITH CHECK (true);
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.ai_configurations;
        CREATE POLICY steward_admin_all ON %1$I.ai_configurations FOR ALL TO %2$s USING (true) WITH CHECK (true);
        DROP POLICY IF EXISTS steward_admin_all ON %1$I.organization_members;
        CREATE POLICY steward_admin_all ON %1$I.organization_members FOR ALL TO %2$s USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.user_preferences, %1$I.ai_configurations,
              %1$I.organizations, %1$I.organization_members TO %2$s;
        $p$, s, v_roles);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE format($p$
            DROP POLICY IF EXISTS own_preferences ON %1$I.user_preferences;
            CREATE POLICY own_preferences ON %1$I.user_preferences FOR ALL TO authenticated
                USING (user_id = steward.caller_uuid()) WITH CHECK (user_id = steward.caller_uuid());
            DROP POLICY IF EXISTS own_configurations ON %1$I.ai_configurations;
            CREATE POLICY own_configurations ON %1$I.ai_configurations FOR ALL TO authenticated
                USING (user_id = steward.caller_uuid()) WITH CHECK (user_id = steward.caller_uuid());
            DROP POLICY IF EXISTS member_reads_organization ON %1$I.ai_configurations;
            CREATE POLICY member_reads_organization ON %1$I.ai_configurations FOR SELECT TO authenticated
                USING (organization_id IN (SELECT m.organization_id FROM %1$I.organization_members m
                                            WHERE m.user_id = steward.caller_uuid()));
            DROP POLICY IF EXISTS own_memberships ON %1$I.organization_members;
            CREATE POLICY own_memberships ON %1$I.organization_members FOR SELECT TO authenticated
                USING (user_id = steward.caller_uuid());
            GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.user_preferences, %1$I.ai_configurations TO authenticated;
            GRANT SELECT ON %1$I.organizations, %1$I.organization_members TO authenticated;
            GRANT USAGE ON SCHEMA steward TO authenticated;
            GRANT EXECUTE ON FUNCTION steward.caller_uuid(), steward.caller_id() TO authenticated;
            $p$, s);
    END IF;

    IF to_regclass('auth.users') IS NOT NULL THEN
        EXECUTE 'CREATE OR REPLACE TRIGGER steward_default_preferences AFTER INSERT ON auth.users
                 FOR EACH ROW EXECUTE FUNCTION steward._default_preferences_for_new_user()';
    END IF;

    PERFORM steward._generate_ai_config_rows(s);
    INSERT INTO steward.train_schema (schema_name) VALUES (s)
    ON CONFLICT (singleton) DO UPDATE SET schema_name = EXCLUDED.schema_name, installed_at = now();
    PERFORM steward.config_register(format('%I.user_preferences', s)::regclass);
    PERFORM steward.config_register(format('%I.ai_configurations', s)::regclass);
    PERFORM steward.audit_enable(format('%I.user_preferences', s)::regclass, 'user_preference', 'preferences', 'user_id');
    PERFORM steward.audit_enable(format('%I.ai_configurations', s)::regclass, 'ai_config', 'configuration', 'user_id');
    RETURN format('configuration tables ready in schema %I', s);
END
$$;

-- steward._config_admin() (anyone's configuration: steward_admin, service_role, superusers)
-- and steward._sees_api_keys() (keys in clear: service_role, superusers) are written in Rust
-- (src/common/identity.rs): they run per request and per row of history.

-- The rows of a user's layers, lowest first: database, organisations (by priority), the user's
-- best active row.  install_train_schema() regenerates this function with the tables' schema
-- written into it; until then only the database layer.  LANGUAGE sql without a SET clause so
-- the planner inlines it into the caller's (cached) plan — effective_ai_config in Rust
-- prepares one plan over it; names are schema-qualified, operators pinned to pg_catalog.
CREATE FUNCTION steward._ai_config_rows(p_user uuid)
RETURNS TABLE (configuration jsonb, source text, id uuid)
LANGUAGE sql STABLE
AS $$ SELECT o.document, 'database'::text, NULL::uuid FROM steward.config_overrides o WHERE o.kind OPERATOR(pg_catalog.=) 'ai_config' $$;

CREATE FUNCTION steward._generate_ai_config_rows(p_schema name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $gen$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION steward._ai_config_rows(p_user uuid)
        RETURNS TABLE (configuration jsonb, source text, id uuid)
        LANGUAGE sql STABLE
        AS $body$
            SELECT x.configuration, x.source, x.id
              FROM (SELECT 0 AS ord, o.document AS configuration, 0 AS priority, NULL::timestamptz AS updated_at,
                           NULL::uuid AS id, 'database'::text AS source
                      FROM steward.config_overrides o WHERE o.kind OPERATOR(pg_catalog.=) 'ai_config'
                    UNION ALL
                    SELECT 1, c.configuration, c.priority, c.updated_at, c.id, 'organization'::text
                      FROM %1$I.ai_configurations c
                      JOIN %1$I.organization_members m ON m.organization_id OPERATOR(pg_catalog.=) c.organization_id
                                                     AND m.user_id OPERATOR(pg_catalog.=) p_user
                     WHERE c.is_active
                    UNION ALL
                    (SELECT 2, c.configuration, c.priority, c.updated_at, c.id, 'user'
                       FROM %1$I.ai_configurations c
                      WHERE c.user_id OPERATOR(pg_catalog.=) p_user AND c.is_active
                      ORDER BY c.priority DESC, c.updated_at DESC, c.id LIMIT 1)) x
             ORDER BY x.ord, x.priority, x.updated_at, x.id
        $body$$f$, p_schema);
END
$gen$;

-- The layers of a user's AI configuration, lowest first: database, organisations (by
-- priority), the user's own best active configuration.  Runs with the caller's rights, so
-- row-level security decides what an end user may read; reading another user's layers is 42501.
CREATE FUNCTION steward._ai_config_layers(p_user uuid,
    OUT docs jsonb[], OUT sources text[], OUT ids uuid[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT steward._config_admin() AND p_user IS DISTINCT FROM steward.caller_uuid() THEN
        RAISE EXCEPTION 'permission denied for the configuration of another user' USING ERRCODE = '42501';
    END IF;
    SELECT coalesce(array_agg(r.configuration), '{}'), coalesce(array_agg(r.source), '{}'), coalesce(array_agg(r.id), '{}')
      INTO docs, sources, ids
      FROM steward._ai_config_rows(p_user) r;
END
$$;

-- effective_ai_config(user_id) and get_effective_ai_config(p_user_id) are written in Rust
-- (src/config/effective.rs) over _ai_config_rows.

CREATE FUNCTION steward.explain_ai_config(user_id uuid)
RETURNS TABLE (path text, value jsonb, source text, source_id uuid)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.path,
           CASE WHEN e.path IN ('apiKeys.primaryKey', 'apiKeys.secondaryKey')
                THEN steward._reveal_api_keys(jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', e.value))) #> '{apiKeys,primaryKey}'
                ELSE e.value END,
           e.source, e.source_id
      FROM steward._ai_config_layers(user_id) l,
           steward._explain_layers('ai_config', l.docs, l.sources, l.ids) e
     ORDER BY e.path
$$;

CREATE FUNCTION steward.effective_user_preferences(user_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_doc jsonb;
BEGIN
    IF user_id IS DISTINCT FROM steward.caller_uuid() AND NOT steward._config_admin() THEN
        RAISE EXCEPTION 'permission denied for the preferences of another user' USING ERRCODE = '42501';
    END IF;
    IF v_schema IS NOT NULL AND user_id IS NOT NULL THEN
        EXECUTE format('SELECT p.preferences FROM %I.user_preferences p WHERE p.user_id = $1', v_schema)
           INTO v_doc USING user_id;
    END IF;
    RETURN steward._resolve_layers('user_preferences',
        ARRAY[(SELECT o.document FROM steward.config_overrides o WHERE o.kind = 'user_preferences'), v_doc]);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Writes for the calling user (row-level security applies: these run with the caller's rights)
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward._train_table(p_table text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
BEGIN
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'the configuration tables are not installed' USING ERRCODE = '55000',
              HINT = 'An admin runs SELECT steward.install_train_schema(''public'');';
    END IF;
    RETURN format('%I.%I', v_schema, p_table);
END
$$;

CREATE FUNCTION steward._require_caller() RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v uuid := steward.caller_uuid();
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'these functions act for a signed-in user' USING ERRCODE = '42501',
              HINT = 'Call them with a user''s JWT (auth.uid() or request.jwt.claims.sub).';
    END IF;
    RETURN v;
END
$$;

-- The audit trail's change_reason for the rest of this transaction (the audit trigger reads
-- steward.change_reason); NULL keeps what the caller set with set_config.
CREATE FUNCTION steward._change_reason(p_reason text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_reason IS NOT NULL THEN
        PERFORM set_config('steward.change_reason', p_reason, true);
    END IF;
END
$$;

-- Partial update with deep merge (null removes a key); returns the effective preferences.
CREATE FUNCTION steward.update_user_preferences(p_updates jsonb, p_reason text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
    v_table text := steward._train_table('user_preferences');
    v_old jsonb;
BEGIN
    PERFORM steward._change_reason(p_reason);
    EXECUTE format('SELECT preferences FROM %s WHERE user_id = $1 FOR UPDATE', v_table) INTO v_old USING v_user;
    EXECUTE format('INSERT INTO %s AS p (user_id, preferences) VALUES ($1, $2)
                    ON CONFLICT (user_id) DO UPDATE SET preferences = EXCLUDED.preferences', v_table)
      USING v_user, steward._apply_update('user_preferences', v_old, p_updates);
    RETURN steward.effective_user_preferences(v_user);
END
$$;

CREATE FUNCTION steward.reset_user_preferences(p_reason text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
BEGIN
    PERFORM steward._change_reason(p_reason);
    EXECUTE format('INSERT INTO %s AS p (user_id, preferences) VALUES ($1, $2)
                    ON CONFLICT (user_id) DO UPDATE SET preferences = EXCLUDED.preferences',
                   steward._train_table('user_preferences'))
      USING v_user, '{}'::jsonb;
    RETURN steward.effective_user_preferences(v_user);
END
$$;

-- Create or partially update the caller's AI configuration of that name.
CREATE FUNCTION steward.upsert_ai_config(p_config_name text, p_configuration jsonb DEFAULT '{}',
                                         p_priority integer DEFAULT NULL, p_is_active boolean DEFAULT NULL,
                                         p_reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
    v_table text := steward._train_table('ai_configurations');
    v_old jsonb;
    v_row jsonb;
BEGIN
    PERFORM steward._change_reason(p_reason);
    IF p_config_name IS NULL OR btrim(p_config_name) = '' OR length(p_config_name) > 255 THEN
        RAISE EXCEPTION 'config_name must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    EXECUTE format('SELECT configuration FROM %s WHERE user_id = $1 AND config_name = $2 FOR UPDATE', v_table)
       INTO v_old USING v_user, p_config_name;
    EXECUTE format('INSERT INTO %s AS c (user_id, config_name, configuration, priority, is_active, created_by)
                    VALUES ($1, $2, $3, coalesce($4, 0), coalesce($5, true), $1)
                    ON CONFLICT (user_id, config_name) DO UPDATE
                       SET configuration = EXCLUDED.configuration,
                           priority = coalesce($4, c.priority), is_active = coalesce($5, c.is_active)
                    RETURNING to_jsonb(c)', v_table)
       INTO v_row USING v_user, p_config_name, steward._apply_update('ai_config', v_old, coalesce(p_configuration, '{}')),
                        p_priority, p_is_active;
    RETURN jsonb_set(v_row, '{configuration}', steward._reveal_api_keys(v_row -> 'configuration'));
END
$$;

CREATE FUNCTION steward.set_ai_config_active(p_config_name text, p_active boolean, p_reason text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM steward._change_reason(p_reason);
    EXECUTE format('UPDATE %s SET is_active = $3 WHERE user_id = $1 AND config_name = $2', steward._train_table('ai_configurations'))
      USING steward._require_caller(), p_config_name, coalesce(p_active, true);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION steward.delete_ai_config(p_config_name text, p_reason text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM steward._change_reason(p_reason);
    EXECUTE format('DELETE FROM %s WHERE user_id = $1 AND config_name = $2', steward._train_table('ai_configurations'))
      USING steward._require_caller(), p_config_name;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    RETURN true;
END
$$;

-- API-key rotation: the new key becomes primary, the old one secondary, version + 1.
CREATE FUNCTION steward.rotate_api_key(p_config_name text, p_new_key text, p_reason text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := steward._require_caller();
    v_table text := steward._train_table('ai_configurations');
    v_old jsonb;
    v_keys jsonb;
BEGIN
    PERFORM steward._change_reason(p_reason);
    IF p_new_key IS NULL OR length(p_new_key) < 8 THEN
        RAISE EXCEPTION 'the new key must have at least 8 characters' USING ERRCODE = '22023';
    END IF;
    EXECUTE format('SELECT configuration FROM %s WHERE user_id = $1 AND config_name = $2 FOR UPDATE', v_table)
       INTO v_old USING v_user, p_config_name;
    IF v_old IS NULL THEN
        RAISE EXCEPTION 'no AI configuration named "%"', p_config_name USING ERRCODE = 'P0002';
    END IF;
    v_keys := jsonb_build_object('apiKeys', jsonb_build_object(
        'primaryKey', p_new_key,
        'secondaryKey', nullif(v_old #>> '{apiKeys,primaryKey}', ''),
        'keyVersion', coalesce((v_old #>> '{apiKeys,keyVersion}')::int, 1) + 1));
    EXECUTE format('UPDATE %s SET configuration = $3 WHERE user_id = $1 AND config_name = $2', v_table)
      USING v_user, p_config_name, steward._apply_update('ai_config', v_old, v_keys);
    RETURN jsonb_build_object('keyVersion', v_keys #> '{apiKeys,keyVersion}',
                              'primaryKey', steward._mask_api_keys(v_keys) #> '{apiKeys,primaryKey}');
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('update_user_preferences', 'steward.update_user_preferences(jsonb,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('reset_user_preferences',  'steward.reset_user_preferences(text)',       'volatile', '{steward_admin,service_role,authenticated}'),
    ('get_effective_user_preferences', 'steward.effective_user_preferences(uuid)', 'stable', '{steward_admin,service_role,authenticated}'),
    ('upsert_ai_config',        'steward.upsert_ai_config(text,jsonb,integer,boolean,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('set_ai_config_active',    'steward.set_ai_config_active(text,boolean,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('delete_ai_config',        'steward.delete_ai_config(text,text)',          'volatile', '{steward_admin,service_role,authenticated}'),
    ('rotate_api_key',          'steward.rotate_api_key(text,text,text)',       'volatile', '{steward_admin,service_role,authenticated}');

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_effective_ai_config',  'steward.get_effective_ai_config(uuid)',   'stable', '{steward_admin,service_role,authenticated}'),
    ('validate_ai_config',       'steward.validate_ai_config(jsonb)',       'stable', '{steward_admin,service_role,authenticated}'),
    ('validate_user_preferences', 'steward.validate_user_preferences(jsonb)', 'stable', '{steward_admin,service_role,authenticated}'),
    ('calculate_cost',           'steward.calculate_cost(bigint,bigint,text)', 'stable', '{steward_admin,service_role,authenticated}');
