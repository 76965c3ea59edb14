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

-- Runs with the caller's rights (not SECURITY DEFINER): creating objects in a schema needs
-- the caller's own CREATE privilege there.  Identifiers are quoted with %I; the wrapper's
-- signature and body come from the catalog entry of the steward function it wraps.
CREATE FUNCTION steward.install_rpc_facade(target_schema name DEFAULT 'public') RETURNS integer
LANGUAGE plpgsql VOLATILE
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
BEGIN
    IF target_schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = target_schema) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(quote_ident(target_schema), 'NULL')
            USING ERRCODE = '3F000', HINT = 'Create the schema first, or call install_rpc_facade() for public.';
    END IF;
    IF target_schema IN ('pg_catalog', 'information_schema', 'steward') OR target_schema ~ '^pg_' THEN
        RAISE EXCEPTION 'the facade cannot be installed in schema %', quote_ident(target_schema)
            USING ERRCODE = '22023', HINT = 'Use the schema PostgREST exposes, usually public.';
    END IF;

    -- Roles created after CREATE EXTENSION (service_role) get their steward privileges now.
    PERFORM steward.refresh_grants();

    FOR f IN SELECT ff.*, p.oid AS fn_oid, p.proretset, p.pronargs
               FROM steward.facade_functions ff JOIN pg_proc p ON p.oid = ff.target
              ORDER BY ff.seed_name
    LOOP
        v_args   := pg_get_function_arguments(f.fn_oid);
        v_result := pg_get_function_result(f.fn_oid);
        v_sig    := pg_get_function_identity_arguments(f.fn_oid);
        SELECT coalesce(string_agg(format('%1$I => %1$I', a.name), ', ' ORDER BY a.ord), '')
          INTO v_call
          FROM unnest((SELECT p.proargnames[1:p.pronargs] FROM pg_proc p WHERE p.oid = f.fn_oid)) WITH ORDINALITY a(name, ord);
        v_ddl := format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql %s AS %L',
            target_schema, f.seed_name, v_args, v_result, upper(f.volatility),
            CASE WHEN f.proretset OR v_result LIKE 'TABLE(%'
                 THEN format('SELECT * FROM %s(%s)', f.target::oid::regproc, v_call)
                 ELSE format('SELECT %s(%s)', f.target::oid::regproc, v_call) END);
        BEGIN
            EXECUTE v_ddl;
        EXCEPTION WHEN invalid_function_definition THEN
            -- The result type changed since the last install: replace the wrapper.
            EXECUTE format('DROP FUNCTION %I.%I(%s)', target_schema, f.seed_name, v_sig);
            EXECUTE v_ddl;
        END;
        EXECUTE format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC', target_schema, f.seed_name, v_sig);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM %I', target_schema, f.seed_name, v_sig, v_role);
            END IF;
        END LOOP;
        FOREACH v_role IN ARRAY f.grant_to LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO %I', target_schema, f.seed_name, v_sig, v_role);
            END IF;
        END LOOP;
        INSERT INTO steward.facade_installed (target_schema, seed_name, kind) VALUES (target_schema, f.seed_name, 'function')
        ON CONFLICT ON CONSTRAINT facade_installed_pkey DO UPDATE SET installed_at = now();
        v_count := v_count + 1;
    END LOOP;

    FOR v IN SELECT * FROM steward.facade_views ORDER BY seed_name LOOP
        SELECT c.relkind INTO v_kind
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = target_schema AND c.relname = v.seed_name;
        IF v_kind IS NOT NULL AND v_kind <> 'v' THEN
            RAISE NOTICE '%.% already exists and is not a view; left as it is', quote_ident(target_schema), quote_ident(v.seed_name)
                USING HINT = format('Move its rows into %s and drop it, then run install_rpc_facade again.', v.target);
            CONTINUE;
        END IF;
        v_invoker := v.user_privileges IS NOT NULL AND current_setting('server_version_num')::int >= 150000;
        EXECUTE format('CREATE OR REPLACE VIEW %I.%I %s AS SELECT * FROM %s', target_schema, v.seed_name,
                       CASE WHEN v_invoker THEN 'WITH (security_invoker = true)' ELSE '' END, v.target);
        EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', target_schema, v.seed_name);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('REVOKE ALL ON %I.%I FROM %I', target_schema, v.seed_name, v_role);
            END IF;
        END LOOP;
        IF v_invoker AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
            EXECUTE format('GRANT %s ON %I.%I TO authenticated', v.user_privileges, target_schema, v.seed_name);
        END IF;
        FOREACH v_role IN ARRAY ARRAY['steward_admin', 'service_role'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('GRANT %s ON %I.%I TO %I', v.admin_privileges, target_schema, v.seed_name, v_role);
            END IF;
        END LOOP;
        EXECUTE format('GRANT SELECT ON %I.%I TO pg_monitor', target_schema, v.seed_name);
        INSERT INTO steward.facade_installed (target_schema, seed_name, kind) VALUES (target_schema, v.seed_name, 'view')
        ON CONFLICT ON CONSTRAINT facade_installed_pkey DO UPDATE SET installed_at = now();
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- Remove what install_rpc_facade created in a schema (and nothing else).
CREATE FUNCTION steward.drop_rpc_facade(target_schema name DEFAULT 'public') RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_count integer := 0;
BEGIN
    FOR o IN SELECT i.*, ff.target FROM steward.facade_installed i
               LEFT JOIN steward.facade_functions ff ON ff.seed_name = i.seed_name AND i.kind = 'function'
              WHERE i.target_schema = drop_rpc_facade.target_schema
    LOOP
        IF o.kind = 'view' THEN
            EXECUTE format('DROP VIEW IF EXISTS %I.%I', o.target_schema, o.seed_name);
        ELSIF o.target IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION IF EXISTS %I.%I(%s)', o.target_schema, o.seed_name,
                           pg_get_function_identity_arguments(o.target));
        END IF;
        DELETE FROM steward.facade_installed i
         WHERE i.target_schema = o.target_schema AND i.seed_name = o.seed_name AND i.kind = o.kind;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
