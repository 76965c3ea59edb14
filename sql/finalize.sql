-- Privileges.  Nothing in steward is executable by PUBLIC; admins get what they need.
--   steward_admin, service_role (when it exists): everything public in steward
--   pg_monitor: the read-only health functions
-- Internal building blocks (names starting with "_") stay with the owner only.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON SCHEMA steward FROM PUBLIC;

GRANT USAGE ON SCHEMA steward TO steward_admin, pg_monitor;

-- Grants to roles that may appear after CREATE EXTENSION (Supabase's service_role): callable
-- again at any time, and by install_rpc_facade().
CREATE FUNCTION steward.refresh_grants() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $grants$
DECLARE
    f record;
    v_readonly text[] := ARRAY[
        'database_overview', 'table_health', 'index_health', 'unused_indexes', 'duplicate_indexes',
        'invalid_indexes', 'table_bloat', 'index_bloat', 'slow_queries', 'connection_pool_metrics',
        'long_running_sessions', 'blocking_chains', 'database_wraparound', 'table_wraparound',
        'table_exists', 'index_exists', 'capabilities', 'health_report', 'health_report_text',
        'pg_stat_statements_schema', 'caller_id', 'caller_uuid', 'setting_number'];
    v_roles text[] := ARRAY['steward_admin'];
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        v_roles := v_roles || 'service_role'::text;
        EXECUTE 'GRANT USAGE ON SCHEMA steward TO service_role';
    END IF;
    FOR f IN
        SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'steward' AND p.proname !~ '^_'
           AND p.proname NOT IN ('install_rpc_facade', 'drop_rpc_facade', 'refresh_grants')
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION steward.%I(%s) TO %s', f.proname, f.args,
                       (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
        IF f.proname = ANY (v_readonly) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION steward.%I(%s) TO pg_monitor', f.proname, f.args);
        END IF;
    END LOOP;
    -- Installing the facade creates objects as the caller: admins only.
    EXECUTE 'GRANT EXECUTE ON FUNCTION steward.install_rpc_facade(name), steward.drop_rpc_facade(name) TO steward_admin';

    EXECUTE format('GRANT SELECT ON steward.effective_settings, steward.setting_defaults, steward.settings,
                    steward.index_usage_snapshots, steward.table_bloat_snapshots, steward.performance_alerts,
                    steward.query_performance_logs TO %s, pg_monitor',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON steward.performance_alerts, steward.query_performance_logs TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- The seed's clients insert, update and list maintenance records themselves.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON steward.maintenance_operations TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT SELECT ON steward.retention_policies, steward.retention_runs, steward.config_tables,
                    steward.config_backups, steward.config_backup_log TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
END
$grants$;

REVOKE ALL ON FUNCTION steward.refresh_grants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION steward.refresh_grants() TO steward_admin;
SELECT steward.refresh_grants();

