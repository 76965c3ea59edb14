-- Privileges.  Nothing in steward is executable by PUBLIC; admins get what they need.
--   steward_admin, service_role (when it exists): everything public in steward
--   pg_monitor: the read-only health functions
-- Internal building blocks (names starting with "_") stay with the owner only.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON SCHEMA steward FROM PUBLIC;

GRANT USAGE ON SCHEMA steward TO steward_admin, pg_monitor;

-- Who may execute which function: one table, read by refresh_grants().  Every steward
-- function whose name does not start with "_" is for the admins (steward_admin, and
-- service_role when it exists) without a row here; a row adds audiences, or opens an internal
-- building block ("_" name) to the roles whose calls reach it with their own rights.
--   admins         steward_admin and service_role
--   steward_admin  steward_admin only (installers that create objects as the caller)
--   monitor        pg_monitor (read-only health)
--   users          authenticated (Supabase end users; row-level security and the functions'
--                  own checks decide what they see)
-- Part of the extension script (not dumped); finalize checks that every row names a function.
CREATE TABLE steward.function_grants (
    signature text PRIMARY KEY,
    audience  text[] NOT NULL CHECK (audience <@ ARRAY['admins', 'steward_admin', 'monitor', 'users']),
    reason    text NOT NULL
);

INSERT INTO steward.function_grants (signature, audience, reason)
SELECT 'steward.' || f, array_agg(DISTINCT a ORDER BY a), string_agg(DISTINCT r, '; ')
  FROM (VALUES
    -- Read-only health: also pg_monitor.
    ('database_overview(); table_health(); index_health(); unused_indexes(integer); duplicate_indexes();
      invalid_indexes(); table_bloat(); index_bloat(); slow_queries(integer,integer); connection_pool_metrics();
      long_running_sessions(); blocking_chains(); database_wraparound(); table_wraparound(integer);
      table_exists(text); index_exists(text); capabilities(); health_report(); health_report_text();
      pg_stat_statements_schema(); caller_id(); caller_uuid(); setting_number(text); replication_health()',
     '{admins,monitor}', 'read-only health'),
    ('size_trend(text,integer,integer,bigint); index_usage_trend(text,integer,integer); xid_trend(integer,integer);
      query_trend(timestamptz,timestamptz,integer)',
     '{admins,monitor}', 'read-only trends'),
    -- Entry points that show statement texts hand the caller to their bodies
    -- (src/common/privilege.rs): the bodies are called with the caller's rights.
    ('_enter(); _slow_queries(bigint,integer,integer); _long_running_sessions(bigint); _blocking_chains(bigint);
      _health_report(bigint); _health_report_text(bigint)',
     '{admins,monitor}', 'bodies of read-only entry points that take the caller'),
    ('_check_alerts(bigint)', '{admins}', 'body of check_alerts(), which takes the caller (statement texts in alerts follow its rights)'),
    ('_generate_monthly_report(bigint,date)', '{admins}', 'body of generate_monthly_report(), which takes the caller'),
    -- Entry points that act on a relation the caller names: SECURITY INVOKER wrappers over a
    -- SECURITY DEFINER body that checks the caller's own rights.
    ('_resolve_relation(text,"char"[]);
      _run_maintenance(bigint,text,text,text,boolean,boolean,boolean,boolean,boolean,boolean,boolean);
      _retention_set(bigint,regclass,name,interval,text,regclass,integer); _retention_run(bigint,uuid,boolean);
      _config_register(bigint,regclass); _config_backup(bigint,text); _config_restore(bigint,uuid,boolean);
      _table_bloat_exact(bigint,regclass)',
     '{admins}', 'bodies of entry points that act on a named relation'),
    ('install_rpc_facade(name); drop_rpc_facade(name); refresh_grants()',
     '{steward_admin}', 'create objects as the caller, or re-apply this table'),
    -- Configuration: run with the caller's rights (row-level security decides); their
    -- building blocks must be executable by everyone who may call them.
    ('get_effective_ai_config(uuid); effective_ai_config(uuid); explain_ai_config(uuid); effective_user_preferences(uuid);
      validate_ai_config(jsonb); validate_user_preferences(jsonb); default_ai_config(); default_user_preferences();
      calculate_cost(bigint,bigint,text); caller_id(); caller_uuid();
      _ai_config_layers(uuid); _ai_config_rows(uuid); _resolve_layers(text,jsonb[]);
      _explain_layers(text,jsonb[],text[],uuid[]); _config_admin();
      _sees_api_keys(); _mask_api_keys(jsonb); _reveal_api_keys(jsonb); _reveal_api_keys(jsonb,uuid);
      _vault_api_keys(jsonb,text,uuid); _check_document(text,jsonb); _apply_update(text,jsonb,jsonb);
      _train_table(text); _require_caller(); _require_writable();
      update_user_preferences(jsonb,text); reset_user_preferences(text); _change_reason(text);
      upsert_ai_config(text,jsonb,integer,boolean,text,uuid); set_ai_config_active(text,boolean,text,uuid);
      delete_ai_config(text,text,uuid); rotate_api_key(text,text,text,uuid); _ai_config_owner(uuid,text);
      _api_key_rotated(uuid); ai_key_rotation_due(); _doc_number(jsonb);
      ai_models(); record_ai_usage(text,bigint,bigint,uuid,uuid,text); ai_spending(uuid,text,date,date); ai_budget_status(uuid)',
     '{admins,users}', 'configuration with the caller''s rights'),
    ('_audit_capture(); _audit_truncate()', '{admins}', 'audit trigger functions attached by admins'),
    -- audit_enable/audit_disable and audit_verify(uuid) run with the caller's rights (an
    -- admin's own tables): the refusals, the registry writers that only record what a real
    -- trigger does, the chain check over pg_steward's own tables.
    ('_audit_check_table(regclass,text); _audit_register(regclass,text,name,name,name); _audit_unregister(regclass);
      _audit_chain_check(uuid)',
     '{admins}', 'audit registration and verification with the caller''s rights'),
    -- History, diff and rollback: the caller's rights (row-level security decides).
    ('config_diff(jsonb,jsonb); jsonb_diff_patch(jsonb,jsonb); jsonb_patch(jsonb,jsonb); jsonb_merge_patch(jsonb,jsonb);
      change_history(text,uuid,integer,integer); change_history_filtered(jsonb,integer,integer);
      change_statistics(timestamptz,timestamptz); change_history_csv(jsonb);
      rollback_preview(uuid); rollback_validate(uuid,boolean); rollback(uuid,text,uuid);
      rollback_bulk(uuid[],text); _entry_json(steward.configuration_audit_log,boolean);
      _audit_old_values(uuid,bigint,bytea);
      _check_page(integer,integer); _history_filter(jsonb); _csv(text[],jsonb);
      _rollback_target(uuid,boolean); _audit_entry_exists(uuid); _rollback_warnings(jsonb);
      _rollback_errors(text,jsonb); _may_roll_back(steward.configuration_audit_log);
      _rollback_apply(uuid,text,uuid,boolean);
      _rollback_read(oid,text,text,uuid,boolean); _rollback_write(oid,text,text,uuid,jsonb)',
     '{admins,users}', 'history, diff and rollback with the caller''s rights'),
    -- Migrations: the SECURITY DEFINER bodies of entry points that take the caller, and the
    -- trial run, which runs the scripts with the caller's own rights.
    ('_migration_apply(bigint,bigint,boolean,boolean); _migration_rollback(bigint,bigint,boolean);
      _migration_scripts(bigint); _migration_trial(text,text,bigint)',
     '{admins}', 'migrations with the caller''s rights')
  ) AS v(fs, aud, r),
  LATERAL pg_catalog.regexp_split_to_table(pg_catalog.btrim(v.fs), '\s*;\s*') AS f,
  LATERAL pg_catalog.unnest(v.aud::text[]) AS a
 GROUP BY f;


-- Grants to roles that may appear after CREATE EXTENSION (Supabase's service_role): callable
-- again at any time, and by install_rpc_facade().
CREATE FUNCTION steward.refresh_grants() RETURNS void
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

REVOKE ALL ON FUNCTION steward.refresh_grants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION steward.refresh_grants() TO steward_admin;
DO $check$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(signature, ', ') INTO v_missing FROM steward.function_grants
     WHERE pg_catalog.to_regprocedure(signature) IS NULL;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'steward.function_grants names functions that do not exist: %', v_missing;
    END IF;
END
$check$;
SELECT steward.refresh_grants();

