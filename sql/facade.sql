-- The RPC facade: seed-named wrappers and views in a schema the web app already calls
-- (default public).  Which names exist is data (steward.facade_functions / facade_views), so
-- each capability adds its own rows and install_rpc_facade() stays one loop.

CREATE TABLE steward.facade_functions (
    seed_name  name PRIMARY KEY,
    target     regprocedure NOT NULL,   -- the steward function it wraps (argument names are kept)
    volatility text NOT NULL CHECK (volatility IN ('stable', 'volatile')),
    grant_to   text[] NOT NULL          -- roles that may call it (those that exist get EXECUTE)
);

CREATE TABLE steward.facade_views (
    seed_name  name PRIMARY KEY,
    target     regclass NOT NULL,
    admin_privileges text NOT NULL DEFAULT 'SELECT, INSERT, UPDATE, DELETE',
    -- When set, end users (authenticated) get these privileges too and the view runs with the
    -- reader's rights (security_invoker, PostgreSQL 15+), so the table's row-level security applies.
    user_privileges text
);

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_database_overview',        'steward.database_overview()',                 'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_table_health_metrics',     'steward.table_health()',                      'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_index_health_metrics',     'steward.index_health()',                      'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_slow_queries',             'steward.slow_queries(integer,integer)',       'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_connection_pool_metrics',  'steward.connection_pool_metrics()',           'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('table_exists',                 'steward.table_exists(text)',                  'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('index_exists',                 'steward.index_exists(text)',                  'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('detect_unused_indexes',        'steward.unused_indexes(integer)',             'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('capture_index_usage_snapshot', 'steward.capture_index_usage_snapshot()',      'volatile', '{steward_admin,service_role}'),
    ('capture_table_bloat_snapshot', 'steward.capture_table_bloat_snapshot()',      'volatile', '{steward_admin,service_role}'),
    ('create_performance_alert',     'steward.create_performance_alert(text,text,text,jsonb)', 'volatile', '{steward_admin,service_role}'),
    ('check_table_bloat_alerts',     'steward.check_table_bloat_alerts()',          'volatile', '{steward_admin,service_role}'),
    ('get_health_report',            'steward.health_report()',                     'stable',   '{steward_admin,service_role,pg_monitor}'),
    ('get_health_report_text',       'steward.health_report_text()',                'stable',   '{steward_admin,service_role,pg_monitor}');

INSERT INTO steward.facade_views (seed_name, target) VALUES
    ('query_performance_logs', 'steward.query_performance_logs'),
    ('index_usage_snapshots',  'steward.index_usage_snapshots'),
    ('table_bloat_snapshots',  'steward.table_bloat_snapshots'),
    ('performance_alerts',     'steward.performance_alerts');

-- What install_rpc_facade created, so a refresh or removal touches only its own objects.
CREATE TABLE steward.facade_installed (
    target_schema name NOT NULL,
    seed_name     name NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('function', 'view')),
    installed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_schema, seed_name, kind)
);
SELECT pg_catalog.pg_extension_config_dump('steward.facade_installed', '');

-- ---------------------------------------------------------------------------------------
-- Where an installer may put objects (issue #13, family 3).  Both installers run with the
-- caller's rights (SECURITY INVOKER): PostgreSQL itself enforces CREATE on the schema and
-- every object they create belongs to the caller, so nothing another role pre-creates is ever
-- run as the extension's owner.  On top of that they refuse
--   * a schema whose owner is neither the caller nor a role the caller is a member of
--     (superusers pass: pg_has_role), since a schema's owner may drop and re-create anything
--     in it afterwards; and
--   * an existing object of one of the names they create that the caller does not own
--     (by membership, not by being a superuser) — the rule PostgreSQL adopted for extension
--     scripts after CVE-2022-2625: never reuse, replace or grant someone else's object.
-- ---------------------------------------------------------------------------------------

-- Whether p_role is p_owner or a member of it by a chain of grants (a superuser's implicit
-- rights do not count: a superuser does not "own" another role's objects).
CREATE FUNCTION steward._role_controls(p_role name, p_owner oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE m(oid) AS (
        SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) p_role
        UNION
        SELECT a.roleid FROM pg_catalog.pg_auth_members a JOIN m ON a.member OPERATOR(pg_catalog.=) m.oid
    )
    SELECT EXISTS (SELECT 1 FROM m WHERE m.oid OPERATOR(pg_catalog.=) p_owner)
$$;

-- The role behind the request even inside a SECURITY DEFINER function: the SET ROLE role, or
-- the session user (the "role" setting is not changed by SECURITY DEFINER).
CREATE FUNCTION steward._outer_role() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none'
                THEN SESSION_USER
                ELSE pg_catalog.current_setting('role')::name END
$$;

-- Raise 3F000 / 42501 unless p_role may install objects named p_relations / p_functions into
-- p_schema (see above).  Called before the installers create anything and again afterwards
-- (an object created concurrently between the check and the CREATE fails the second call,
-- which rolls the whole installation back).
CREATE FUNCTION steward._install_check(p_role name, p_schema name, p_relations name[], p_functions name[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp oid;
    v_owner oid;
    o record;
BEGIN
    SELECT n.oid, n.nspowner INTO v_nsp, v_owner
      FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) p_schema;
    IF v_nsp IS NULL THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(pg_catalog.quote_ident(p_schema), 'NULL')
            USING ERRCODE = '3F000', HINT = 'Create the schema first (CREATE SCHEMA ... AUTHORIZATION the installing role).';
    END IF;
    IF NOT pg_catalog.pg_has_role(p_role, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to install into schema %', pg_catalog.quote_ident(p_schema)
            USING ERRCODE = '42501',
                  DETAIL = pg_catalog.format('Schema %I is owned by %I; %I is neither that role nor a member of it, and a schema''s owner can replace anything in it.',
                                             p_schema, pg_catalog.pg_get_userbyid(v_owner), p_role),
                  HINT = 'Install into a schema you own (CREATE SCHEMA ... AUTHORIZATION you), or have its owner run the installer.';
    END IF;
    FOR o IN
        SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                              WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                              ELSE 'relation' END AS kind,
               pg_catalog.format('%I.%I', p_schema, c.relname) AS object, c.relowner AS owner
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp AND c.relname OPERATOR(pg_catalog.=) ANY (p_relations)
        UNION ALL
        SELECT 'function', pg_catalog.format('%I.%I(%s)', p_schema, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), p.proowner
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) v_nsp AND p.proname OPERATOR(pg_catalog.=) ANY (p_functions)
        ORDER BY 2
    LOOP
        IF NOT steward._role_controls(p_role, o.owner) THEN
            RAISE EXCEPTION 'permission denied to install into schema %: % % belongs to another role',
                            pg_catalog.quote_ident(p_schema), o.kind, o.object
                USING ERRCODE = '42501',
                      DETAIL = pg_catalog.format('%s %s is owned by %I, not by %I or a role it is a member of; the installer never reuses, replaces or grants it.',
                                                 o.kind, o.object, pg_catalog.pg_get_userbyid(o.owner), p_role),
                      HINT = 'Drop or rename that object (or have its owner ALTER it OWNER TO the installing role), then run the installer again.';
        END IF;
    END LOOP;
END
$$;

-- Runs with the caller's rights (SECURITY INVOKER): creating objects in a schema needs the
-- caller's own CREATE privilege there and every wrapper and view belongs to the caller.
-- Identifiers are quoted with %I and the wrapper bodies passed as literals (%L), never inside
-- dollar quotes; the wrapper's signature and body come from the catalog entry of the steward
-- function it wraps.
CREATE FUNCTION steward.install_rpc_facade(target_schema name DEFAULT 'public') RETURNS integer
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

-- Remove what install_rpc_facade created in a schema (and nothing else): only seed names,
-- and only objects the caller owns (an object of that name someone else created is left).
CREATE FUNCTION steward.drop_rpc_facade(target_schema name DEFAULT 'public') RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_owner oid;
    v_count integer := 0;
BEGIN
    -- Installers and grant refreshes one at a time (catalog rows they rewrite would otherwise
    -- fail with "tuple concurrently updated" or deadlock when two run at once).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward installers'));
    FOR o IN SELECT i.*, ff.target FROM steward.facade_installed i
               LEFT JOIN steward.facade_functions ff ON ff.seed_name OPERATOR(pg_catalog.=) i.seed_name AND i.kind OPERATOR(pg_catalog.=) 'function'
              WHERE i.target_schema OPERATOR(pg_catalog.=) drop_rpc_facade.target_schema
    LOOP
        v_owner := NULL;
        IF o.kind = 'view' AND EXISTS (SELECT 1 FROM steward.facade_views fv WHERE fv.seed_name OPERATOR(pg_catalog.=) o.seed_name) THEN
            SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c
             WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', o.target_schema, o.seed_name)) AND c.relkind = 'v';
            IF v_owner IS NOT NULL AND steward._role_controls(CURRENT_USER, v_owner) THEN
                EXECUTE pg_catalog.format('DROP VIEW %I.%I', o.target_schema, o.seed_name);
            ELSIF v_owner IS NOT NULL THEN
                RAISE NOTICE 'view %.% belongs to %; left as it is', pg_catalog.quote_ident(o.target_schema), pg_catalog.quote_ident(o.seed_name), pg_catalog.pg_get_userbyid(v_owner);
            END IF;
        ELSIF o.target IS NOT NULL THEN
            SELECT p.proowner INTO v_owner
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
             WHERE n.nspname OPERATOR(pg_catalog.=) o.target_schema AND p.proname OPERATOR(pg_catalog.=) o.seed_name
               AND p.proargtypes OPERATOR(pg_catalog.=) (SELECT t.proargtypes FROM pg_catalog.pg_proc t WHERE t.oid OPERATOR(pg_catalog.=) o.target);
            IF v_owner IS NOT NULL AND steward._role_controls(CURRENT_USER, v_owner) THEN
                EXECUTE pg_catalog.format('DROP FUNCTION %I.%I(%s)', o.target_schema, o.seed_name,
                                          pg_catalog.pg_get_function_identity_arguments(o.target));
            ELSIF v_owner IS NOT NULL THEN
                RAISE NOTICE 'function %.% belongs to %; left as it is', pg_catalog.quote_ident(o.target_schema), pg_catalog.quote_ident(o.seed_name), pg_catalog.pg_get_userbyid(v_owner);
            END IF;
        END IF;
        DELETE FROM steward.facade_installed i
         WHERE i.target_schema OPERATOR(pg_catalog.=) o.target_schema AND i.seed_name OPERATOR(pg_catalog.=) o.seed_name
           AND i.kind OPERATOR(pg_catalog.=) o.kind;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- A plain steward_admin member runs both installers (README): the installers write the
-- record of what they created; drop_rpc_facade only drops seed-named objects the caller
-- owns, so a row written here by hand cannot make it drop anything else.
GRANT SELECT, INSERT, UPDATE, DELETE ON steward.facade_installed TO steward_admin;
GRANT EXECUTE ON FUNCTION steward._role_controls(name, oid), steward._outer_role(),
                          steward._install_check(name, name, name[], name[]) TO steward_admin;
