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
    v_config_functions text;
    v_history_functions text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        v_roles := v_roles || 'service_role'::text;
        EXECUTE 'GRANT USAGE ON SCHEMA steward TO service_role';
        -- API keys in clear: the service role only (steward_admin sees the masks).
        EXECUTE 'GRANT SELECT ON steward.api_key_vault TO service_role';
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
    -- End users (Supabase's authenticated) read their own effective configuration and use the
    -- validators; row-level security and the functions' own checks decide what they see.
    -- The configuration functions run with the caller's rights (row-level security decides):
    -- their building blocks must be executable by everyone who may call them.
    v_config_functions := 'steward.get_effective_ai_config(uuid), steward.effective_ai_config(uuid),
                 steward.explain_ai_config(uuid), steward.effective_user_preferences(uuid),
                 steward.validate_ai_config(jsonb), steward.validate_user_preferences(jsonb),
                 steward.default_ai_config(), steward.default_user_preferences(),
                 steward.calculate_cost(bigint, bigint, text), steward.caller_id(), steward.caller_uuid(),
                 steward._ai_config_layers(uuid), steward._ai_config_rows(uuid), steward._resolve_layers(text, jsonb[]),
                 steward._explain_layers(text, jsonb[], text[], uuid[]), steward._config_admin(),
                 steward._sees_api_keys(), steward._mask_api_keys(jsonb), steward._reveal_api_keys(jsonb), steward._apply_update(text, jsonb, jsonb),
                 steward._train_table(text), steward._require_caller(),
                 steward.update_user_preferences(jsonb, text), steward.reset_user_preferences(text), steward._change_reason(text),
                 steward.upsert_ai_config(text, jsonb, integer, boolean, text), steward.set_ai_config_active(text, boolean, text),
                 steward.delete_ai_config(text, text), steward.rotate_api_key(text, text, text)';
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_config_functions,
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'GRANT USAGE ON SCHEMA steward TO authenticated';
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO authenticated', v_config_functions);
        EXECUTE 'GRANT SELECT ON steward.config_overrides, steward.train_schema TO authenticated';
    END IF;
    EXECUTE format('GRANT SELECT ON steward.config_overrides, steward.train_schema TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON steward.config_overrides TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT SELECT ON steward.retention_policies, steward.retention_runs, steward.config_tables,
                    steward.config_backups, steward.config_backup_log TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- Audit: admins read everything and attach the trigger to their tables; end users read
    -- their own entries (row-level security on the log).
    EXECUTE format('GRANT SELECT ON steward.configuration_audit_log, steward.audit_entries, steward.ai_configuration_audit,
                    steward.audited_tables, steward.audit_purges, steward.audit_chain_anchors TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- After writes that fire no triggers (replica role, bulk loads): admins and the service
    -- make every backend forget its cached effective configurations.
    EXECUTE format('GRANT EXECUTE ON FUNCTION steward.effective_config_cache_reset(), steward.effective_config_cache_stats() TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    EXECUTE format('GRANT EXECUTE ON FUNCTION steward._audit_capture(), steward._audit_truncate() TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- audit_enable/audit_disable run with the caller's rights (an admin's own tables) and
    -- audit_verify(uuid) too: their building blocks (the refusals, the registry writers that
    -- only record what a real trigger does, the chain check over pg_steward's own tables).
    EXECUTE format('GRANT EXECUTE ON FUNCTION steward._audit_check_table(regclass, text),
                    steward._audit_register(regclass, text, name, name, name), steward._audit_unregister(regclass),
                    steward._audit_chain_check(uuid) TO %s',
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    -- History, diff and rollback run with the caller's rights (row-level security decides):
    -- their building blocks must be executable by everyone who may call them.
    v_history_functions := 'steward.config_diff(jsonb, jsonb), steward.jsonb_diff_patch(jsonb, jsonb),
                 steward.jsonb_patch(jsonb, jsonb), steward.jsonb_merge_patch(jsonb, jsonb),
                 steward.change_history(text, uuid, integer, integer), steward.change_history_filtered(jsonb, integer, integer),
                 steward.change_statistics(timestamptz, timestamptz), steward.change_history_csv(jsonb),
                 steward.rollback_preview(uuid), steward.rollback_validate(uuid, boolean), steward.rollback(uuid, text, uuid),
                 steward.rollback_bulk(uuid[], text), steward._entry_json(steward.configuration_audit_log, boolean),
                 steward._audit_old_values(uuid, bigint, bytea),
                 steward._check_page(integer, integer), steward._history_filter(jsonb), steward._csv(text[], jsonb),
                 steward._rollback_target(uuid, boolean), steward._audit_entry_exists(uuid), steward._rollback_warnings(jsonb),
                 steward._rollback_errors(text, jsonb), steward._may_roll_back(steward.configuration_audit_log),
                 steward._rollback_apply(uuid, text, uuid, boolean),
                 steward._rollback_read(oid, text, text, uuid, boolean), steward._rollback_write(oid, text, text, uuid, jsonb)';
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_history_functions,
                   (SELECT string_agg(quote_ident(r), ', ') FROM unnest(v_roles) r));
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'GRANT SELECT ON steward.configuration_audit_log, steward.audit_entries, steward.ai_configuration_audit,
                 steward.audited_tables TO authenticated';
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO authenticated', v_history_functions);
    END IF;
END
$grants$;

REVOKE ALL ON FUNCTION steward.refresh_grants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION steward.refresh_grants() TO steward_admin;
SELECT steward.refresh_grants();

