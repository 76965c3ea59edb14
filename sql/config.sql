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
-- characters), "#" and 16 hex digits of the key's SHA-256 (src/config/keys.rs).  Each entry
-- is bound to the owner of the row it came from (the user, or the organisation), and a token
-- resolves only for that owner: a token copied into someone else's row resolves to nothing.
-- Only the service role reads this table (through the effective configuration); entries are
-- never removed, so a rolled-back or restored document's token still resolves.
CREATE TABLE steward.api_key_vault (
    token      text NOT NULL,
    owner_kind text NOT NULL CHECK (owner_kind IN ('user', 'organization')),
    owner_id   uuid NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (token, owner_kind, owner_id)
);
SELECT pg_catalog.pg_extension_config_dump('steward.api_key_vault', '');

-- Validation, API keys into the vault, server-chosen ids and updated_at for every write of a
-- configuration row, whoever writes it.  TG_ARGV: document kind, document column.
-- SECURITY INVOKER: it runs as the writer, so nothing of the table (defaults, column types,
-- other triggers) is ever evaluated with more rights than the writer's.  The one privileged
-- step, storing keys in steward.api_key_vault, is steward._vault_api_keys (SECURITY DEFINER,
-- plain jsonb/text/uuid in, steward's own table only).
-- Ids: a row written by an API role (anon, authenticated, service_role, or a member of one,
-- superusers excepted) never carries a client-chosen id: on INSERT the id is replaced by
-- gen_random_uuid() unless it is the id of a row the writer can already see in the table
-- (row-level security decides: for an end user, her own row — so upserts by id keep
-- working), and an UPDATE never changes it.  Audit history and rollback are keyed by these
-- ids, so a user re-inserting a row under another user's (or a deleted row's) id would be
-- served that configuration's history.  The service role is included: it passes client
-- payloads through, and choosing ids gives it nothing it needs.  Admin logins and the
-- tables' owners (restores, migrations) keep the ids they write.
CREATE FUNCTION steward._config_row_guard() RETURNS trigger
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

-- Whether the owner of schema p_schema (for pg_database_owner: the database's owner) holds
-- every privilege of p_role — i.e. whether code p_role runs over that schema's objects could
-- do anything the schema's owner cannot already do.  A schema's owner may drop and re-create
-- any object in it, so SECURITY DEFINER code of p_role over them is safe only then.
CREATE FUNCTION steward._schema_owner_holds(p_schema name, p_role oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.pg_has_role(
               CASE WHEN n.nspowner OPERATOR(pg_catalog.=) 'pg_database_owner'::pg_catalog.regrole
                    THEN (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                    ELSE n.nspowner END,
               p_role, 'USAGE'), false)
      FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) p_schema
$$;

-- Default preferences for a new auth.users row (Supabase).  install_train_schema creates, in
-- the target schema and owned by the installing role (the owner of user_preferences), the
-- trigger function steward_default_preferences() with this body — constant text: the schema
-- comes in as the trigger's argument and is quoted with %I.  It is SECURITY DEFINER as that
-- owner, never as the extension's owner, and on every call it checks again that
-- user_preferences is still its owner's table in a schema whose owner holds that owner's
-- rights; otherwise it inserts nothing and warns (a signup never fails because of it).
CREATE FUNCTION steward._default_preferences_body() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $f$ SELECT $body$
DECLARE
    v_table oid := pg_catalog.to_regclass(pg_catalog.format('%I.user_preferences', TG_ARGV[0]));
BEGIN
    IF v_table IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                    WHERE c.oid OPERATOR(pg_catalog.=) v_table AND c.relkind OPERATOR(pg_catalog.=) 'r'
                      AND c.relowner OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER))
       AND steward._schema_owner_holds(TG_ARGV[0], (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)) THEN
        EXECUTE pg_catalog.format('INSERT INTO %I.user_preferences (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', TG_ARGV[0])
          USING NEW.id;
    ELSE
        RAISE WARNING 'no default preferences for the new user: %.user_preferences is not a table of % in a schema its owner controls',
                      pg_catalog.quote_ident(TG_ARGV[0]), CURRENT_USER
              USING HINT = 'Run steward.install_train_schema() again as the owner of that schema.';
    END IF;
    RETURN NEW;
END
$body$::text $f$;

-- The application's configuration tables, with constraints, indexes, updated_at, validation,
-- row-level security as on Supabase; registered for backup and for auditing, and made the
-- tables the effective configuration reads.  SECURITY INVOKER: every object is created by
-- and belongs to the caller, PostgreSQL enforces CREATE on the schema, and the caller must
-- own the schema (or be a member of its owner; superusers pass) and every existing object of
-- the names it creates (steward._install_check).  Identifiers are quoted with %I; no name is
-- ever placed inside a dollar-quoted body.
CREATE FUNCTION steward.install_train_schema(target_schema name DEFAULT 'public') RETURNS text
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

-- Make the tables in p_schema the ones the effective configuration reads: record the schema
-- and regenerate _ai_config_rows over it.  SECURITY DEFINER (it writes steward's own table and
-- function), so it checks the role behind the request (steward._outer_role(), not the
-- definer) itself: that role must be allowed to install into p_schema and own its tables
-- (steward._install_check), the tables must be ordinary tables, and a registration of
-- another schema is moved only by a role holding the rights of that schema's table owner
-- (a superuser, or its owner) — a steward_admin cannot point everyone's configuration at a
-- schema of her own over an installation of someone else.  The generated body is a literal
-- (%L) with the schema as a quoted identifier (%I): no name is placed inside a dollar quote.
CREATE FUNCTION steward._set_train_schema(p_schema name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $gen$
DECLARE
    v_caller name := steward._outer_role();
    v_tables name[] := ARRAY['organizations', 'organization_members', 'user_preferences', 'ai_configurations']::name[];
    v_current name := (SELECT t.schema_name FROM steward.train_schema t);
    v_owner oid;
    v_t name;
BEGIN
    -- Installers and grant refreshes one at a time (catalog rows they rewrite would otherwise
    -- fail with "tuple concurrently updated" or deadlock when two run at once).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward installers'));
    -- One installation at a time: a second installer waits here instead of failing on the
    -- function both would replace ("tuple concurrently updated").
    LOCK TABLE steward.train_schema IN SHARE ROW EXCLUSIVE MODE;
    v_current := (SELECT t.schema_name FROM steward.train_schema t);
    IF p_schema IS NULL OR p_schema IN ('pg_catalog', 'information_schema', 'steward', 'pg_toast') OR p_schema ~ '^pg_' THEN
        RAISE EXCEPTION 'the configuration tables cannot go into schema %', coalesce(pg_catalog.quote_ident(p_schema), 'NULL')
            USING ERRCODE = '42501';
    END IF;
    PERFORM steward._install_check(v_caller, p_schema, v_tables, '{}'::name[]);
    FOREACH v_t IN ARRAY v_tables LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                        WHERE n.nspname OPERATOR(pg_catalog.=) p_schema AND c.relname OPERATOR(pg_catalog.=) v_t
                          AND c.relkind OPERATOR(pg_catalog.=) 'r') THEN
            RAISE EXCEPTION 'table %.% does not exist', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(v_t)
                USING ERRCODE = '42P01', HINT = 'steward.install_train_schema() creates the tables.';
        END IF;
    END LOOP;
    IF v_current IS NOT NULL AND v_current OPERATOR(pg_catalog.<>) p_schema THEN
        SELECT c.relowner INTO v_owner
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE n.nspname OPERATOR(pg_catalog.=) v_current AND c.relname OPERATOR(pg_catalog.=) 'ai_configurations';
        IF v_owner IS NOT NULL AND NOT pg_catalog.pg_has_role(v_caller, v_owner, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied to move the configuration tables from schema % to schema %',
                            pg_catalog.quote_ident(v_current), pg_catalog.quote_ident(p_schema)
                USING ERRCODE = '42501',
                      DETAIL = pg_catalog.format('The configuration every user reads is installed in schema %I by %I; %I does not hold that role''s rights.',
                                                 v_current, pg_catalog.pg_get_userbyid(v_owner), v_caller),
                      HINT = 'A superuser or the owner of the installed tables runs install_train_schema() into the new schema.';
        END IF;
    END IF;
    INSERT INTO steward.train_schema (schema_name) VALUES (p_schema)
    ON CONFLICT (singleton) DO UPDATE SET schema_name = EXCLUDED.schema_name, installed_at = pg_catalog.now();
    EXECUTE pg_catalog.format($f$
        CREATE OR REPLACE FUNCTION steward._ai_config_rows(p_user uuid)
        RETURNS TABLE (configuration jsonb, source text, id uuid)
        LANGUAGE sql STABLE
        AS %L$f$,
        pg_catalog.format($b$
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
        $b$, p_schema));
END
$gen$;

-- What the writers of the configuration tables (the row guard runs as the writer) and the
-- readers of the effective configuration need in steward, for the API roles that exist now
-- (install_train_schema calls this; refresh_grants should too).  Fixed grants, no input.
CREATE FUNCTION steward._config_grants() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role name;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['steward_admin', 'service_role', 'authenticated']::name[] LOOP
        -- Only what is missing: a GRANT rewrites the catalog row even when nothing changes, and
        -- two installers running at once would then fail with "tuple concurrently updated".
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) v_role) THEN
            IF NOT pg_catalog.has_schema_privilege(v_role, 'steward', 'USAGE') THEN
                EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA steward TO %I', v_role);
            END IF;
            IF NOT (pg_catalog.has_function_privilege(v_role, 'steward._check_document(text, jsonb)', 'EXECUTE')
                    AND pg_catalog.has_function_privilege(v_role, 'steward._vault_api_keys(jsonb, text, uuid)', 'EXECUTE')
                    AND pg_catalog.has_function_privilege(v_role, 'steward._reveal_api_keys(jsonb, uuid)', 'EXECUTE')
                    AND pg_catalog.has_function_privilege(v_role, 'steward.caller_uuid()', 'EXECUTE')
                    AND pg_catalog.has_function_privilege(v_role, 'steward.caller_id()', 'EXECUTE')) THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION steward._check_document(text, jsonb),
                                           steward._vault_api_keys(jsonb, text, uuid), steward._reveal_api_keys(jsonb, uuid),
                                           steward.caller_uuid(), steward.caller_id() TO %I', v_role);
            END IF;
        END IF;
    END LOOP;
END
$$;

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
                THEN steward._reveal_api_keys(jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', e.value)), explain_ai_config.user_id) #> '{apiKeys,primaryKey}'
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
    PERFORM steward._require_writable();
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
    PERFORM steward._require_writable();
    PERFORM steward._change_reason(p_reason);
    EXECUTE format('INSERT INTO %s AS p (user_id, preferences) VALUES ($1, $2)
                    ON CONFLICT (user_id) DO UPDATE SET preferences = EXCLUDED.preferences',
                   steward._train_table('user_preferences'))
      USING v_user, '{}'::jsonb;
    RETURN steward.effective_user_preferences(v_user);
END
$$;

-- Which rows the AI-configuration writers below act on: the caller's own (p_organization_id
-- NULL) or organisation p_organization_id's.  For an organisation it checks first, with the
-- caller's rights, that the caller is an admin of it — or, for a change to an existing
-- configuration, its creator and still a member — and says so with 42501 (only admins create
-- one: a configuration that does not exist has no creator); row-level security
-- (install_train_schema's policies) decides in the end either way.  Returns the owner column
-- and the owner's id.
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

-- Create or partially update an AI configuration of that name: the caller's own, or with
-- p_organization_id the organisation's (its admins; its creator for an existing one).
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

-- API-key rotation: the new key becomes primary, the old one secondary, version + 1, and an
-- open api_key_rotation_due alert of that configuration is resolved.
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

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('update_user_preferences', 'steward.update_user_preferences(jsonb,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('reset_user_preferences',  'steward.reset_user_preferences(text)',       'volatile', '{steward_admin,service_role,authenticated}'),
    ('get_effective_user_preferences', 'steward.effective_user_preferences(uuid)', 'stable', '{steward_admin,service_role,authenticated}'),
    ('upsert_ai_config',        'steward.upsert_ai_config(text,jsonb,integer,boolean,text,uuid)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('set_ai_config_active',    'steward.set_ai_config_active(text,boolean,text,uuid)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('delete_ai_config',        'steward.delete_ai_config(text,text,uuid)',     'volatile', '{steward_admin,service_role,authenticated}'),
    ('rotate_api_key',          'steward.rotate_api_key(text,text,text,uuid)',  'volatile', '{steward_admin,service_role,authenticated}');

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_effective_ai_config',  'steward.get_effective_ai_config(uuid)',   'stable', '{steward_admin,service_role,authenticated}'),
    ('validate_ai_config',       'steward.validate_ai_config(jsonb)',       'stable', '{steward_admin,service_role,authenticated}'),
    ('validate_user_preferences', 'steward.validate_user_preferences(jsonb)', 'stable', '{steward_admin,service_role,authenticated}'),
    ('calculate_cost',           'steward.calculate_cost(bigint,bigint,text)', 'stable', '{steward_admin,service_role,authenticated}');

-- A plain steward_admin member runs install_train_schema into a schema it owns: what the
-- installer itself calls or attaches (the API roles get theirs from steward._config_grants()).
GRANT EXECUTE ON FUNCTION steward._set_train_schema(name), steward._config_grants(), steward._schema_owner_holds(name, oid),
                          steward._default_preferences_body(), steward._config_row_guard(), steward._effective_config_changed(),
                          steward._check_document(text, jsonb), steward._vault_api_keys(jsonb, text, uuid),
                          steward._reveal_api_keys(jsonb, uuid)
   TO steward_admin;
