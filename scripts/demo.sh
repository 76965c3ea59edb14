#!/usr/bin/env bash
# Install whatever is missing, start an embedded PostgreSQL 15 with pg_steward, load sample
# application data (a bloated table, unused/duplicate/redundant indexes, slow queries) and
# print the health report.  The server keeps running afterwards so you can explore:
#   psql -h 127.0.0.1 -p 54330 -U postgres      (stop it with: scripts/demo.sh stop)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR=/tmp/pg_steward_demo
PORT=${PG_STEWARD_DEMO_PORT:-54330}
if [ "${1:-}" = stop ]; then stop_server "$DIR"; exit 0; fi

ensure_all
# The demo shows the extension as users run it: the release build (2-3x faster than debug).
export PROFILE=${PROFILE:-release}
install_extension
log "starting an embedded PostgreSQL on 127.0.0.1:${PORT} (data in ${DIR})"
start_server "$DIR" "$PORT" "shared_preload_libraries = 'pg_stat_statements'"
log "loading sample data"
psql_at "$DIR" "$PORT" -f "$ROOT/demo/sample_data.sql" >/dev/null
log "installing the Supabase RPC facade in schema public"
# The roles a Supabase database has (PostgREST switches to them per request).
psql_at "$DIR" "$PORT" -q -c "DO \$\$ DECLARE r text; BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I NOLOGIN', r); END IF;
    END LOOP; END \$\$" -c "SELECT steward.refresh_grants()" >/dev/null
psql_at "$DIR" "$PORT" -At -c "SELECT steward.install_rpc_facade('public') || ' seed-named functions and views'"
log "health report (SELECT steward.health_report_text())"
psql_at "$DIR" "$PORT" -At -c "SELECT steward.health_report_text()"
log "exact bloat of the bloated table through pgstattuple, next to the estimate"
psql_at "$DIR" "$PORT" -c "SELECT e.tablename, e.bloat_pct AS estimated_pct, e.confidence, x.bloat_pct AS pgstattuple_pct
                             FROM steward.table_bloat() e, steward.table_bloat_exact(e.relid) x
                            WHERE e.schemaname = 'public' ORDER BY 1"
log "maintenance that really runs: VACUUM through the background worker, then the history"
BLOATED=$(psql_at "$DIR" "$PORT" -At -c "SELECT format('%I.%I', schemaname, tablename) FROM steward.table_bloat() WHERE schemaname = 'public' ORDER BY bloat_bytes DESC NULLS LAST LIMIT 1")
psql_at "$DIR" "$PORT" -c "SELECT n_dead_tup AS dead_before, vacuum_count FROM pg_stat_user_tables WHERE relid = '${BLOATED}'::regclass"
psql_at "$DIR" "$PORT" -c "SELECT operation_type, table_name, status, duration_ms, options ->> 'statement' AS statement FROM steward.vacuum('${BLOATED}', \"analyze\" => true)"
log "a refused attempt (VACUUM FULL without confirm => true) is an error with its SQLSTATE, and recorded"
psql_at "$DIR" "$PORT" -c "SELECT * FROM steward.vacuum('${BLOATED}', \"full\" => true)" 2>&1 || true
psql_at "$DIR" "$PORT" -c "SELECT n_dead_tup AS dead_after, vacuum_count FROM pg_stat_user_tables WHERE relid = '${BLOATED}'::regclass" \
    -c "SELECT created_at::time(0) AS at, operation_type, table_name, status, refused, error_sqlstate FROM steward.maintenance_history(5)"
log "configuration: the application's tables, a validated write, and a user's effective AI configuration with provenance"
psql_at "$DIR" "$PORT" -At -c "SELECT steward.install_train_schema('public')"
psql_at "$DIR" "$PORT" -q <<'SQL' >/dev/null
INSERT INTO public.organizations (id, name) VALUES ('0a000000-0000-4000-8000-00000000000a', 'Acme') ON CONFLICT DO NOTHING;
INSERT INTO public.organization_members (organization_id, user_id)
VALUES ('0a000000-0000-4000-8000-00000000000a', '6f1d2c1e-1111-4a4a-9999-000000000001') ON CONFLICT DO NOTHING;
INSERT INTO public.ai_configurations (organization_id, config_name, configuration, priority)
VALUES ('0a000000-0000-4000-8000-00000000000a', 'acme', '{"model": {"temperature": 0.3}, "costBudget": {"dailyBudget": 25}}', 1)
ON CONFLICT DO NOTHING;
INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority)
VALUES ('6f1d2c1e-1111-4a4a-9999-000000000001', 'mine', '{"model": {"model": "claude-3-haiku-20240307", "maxTokens": 2048}}', 1)
ON CONFLICT DO NOTHING;
SQL
psql_at "$DIR" "$PORT" -c "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
                           VALUES ('6f1d2c1e-1111-4a4a-9999-000000000001', 'hot', '{\"model\": {\"temperature\": 3.0}}')" 2>&1 || true
psql_at "$DIR" "$PORT" -c "SELECT path, value, source FROM steward.explain_ai_config('6f1d2c1e-1111-4a4a-9999-000000000001') WHERE source <> 'default'"
log "audit trail: a user changes their configuration through a PostgREST-style request; the change is recorded, attributed and chained"
psql_at "$DIR" "$PORT" -q <<'SQL' >/dev/null
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001", "role": "authenticated"}', true);
SELECT set_config('request.headers', '{"user-agent": "supabase-js/2", "x-forwarded-for": "203.0.113.7"}', true);
SELECT public.upsert_ai_config(p_config_name := 'mine', p_configuration := '{"model": {"temperature": 0.9, "topP": 0.5}}',
                               p_reason := 'more creative answers');
COMMIT;
SQL
psql_at "$DIR" "$PORT" -c "SELECT l.seq, l.action, l.changed_by, host(l.client_ip) AS client_ip, l.user_agent, l.change_reason,
                                  encode(l.hash, 'hex')::char(16) || '…' AS hash
                             FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
                            WHERE c.config_name = 'mine' ORDER BY l.seq" \
                       -c "SELECT steward.audit_verify() AS chain_check" \
                       -c "INSERT INTO steward.configuration_audit_log SELECT * FROM steward.configuration_audit_log LIMIT 1" 2>&1 || true
log "diff: what that change did, in the app's shape and as an RFC 6902 JSON Patch"
psql_at "$DIR" "$PORT" -c "SELECT jsonb_pretty(steward.config_diff(l.old_values, l.new_values)) AS diff,
                                  steward.jsonb_diff_patch(l.old_values, l.new_values) AS json_patch
                             FROM (SELECT l.* FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
                                    WHERE c.config_name = 'mine' ORDER BY l.seq DESC LIMIT 1) l"
log "rollback: preview, then undo the change with the previewed version (itself an audited change)"
psql_at "$DIR" "$PORT" -q <<'SQL'
SELECT l.id AS target FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
 WHERE c.config_name = 'mine' ORDER BY l.seq DESC LIMIT 1 \gset
SELECT p -> 'diff' AS "preview: diff", p -> 'warnings' AS warnings FROM steward.rollback_preview(:'target') p;
SELECT (steward.rollback_preview(:'target')) ->> 'currentVersionId' AS expected \gset
SELECT steward.rollback(:'target', 'back to the previous settings', :'expected') IS NOT NULL AS rolled_back;
SELECT configuration AS "configuration now" FROM public.ai_configurations WHERE config_name = 'mine';
SELECT seq, action, change_reason, rollback_of IS NOT NULL AS is_rollback
  FROM steward.configuration_audit_log WHERE config_id = (SELECT id FROM public.ai_configurations WHERE config_name = 'mine')
 ORDER BY seq;
SQL
log "migrations: PostgreSQL's own parser and the live catalog judge a migration before it runs, then it is applied and rolled back"
psql_at "$DIR" "$PORT" -c "SELECT statement_no AS n, rule, risk, relation, pg_size_pretty(relation_bytes) AS size, lock_level, rewrites
                             FROM steward.migration_check(\$m\$
ALTER TABLE public.messages ADD COLUMN message_uuid uuid DEFAULT gen_random_uuid();
CREATE INDEX messages_created ON public.messages (created_at);
ALTER TABLE public.conversations ALTER COLUMN body SET NOT NULL;
DELETE FROM public.conversations WHERE 1 = 1;
\$m\$)"
psql_at "$DIR" "$PORT" -q <<'SQL'
SELECT steward.migration_add(20261202001, 'conversations: archived flag',
    $up$SET lock_timeout = '2s'; ALTER TABLE public.conversations ADD COLUMN IF NOT EXISTS archived boolean NOT NULL DEFAULT false$up$,
    $down$ALTER TABLE public.conversations DROP COLUMN archived$down$) ->> 'checksum' AS "migration added, md5";
SELECT phase, statement_no AS n, outcome, locks FROM steward.migration_dry_run(20261202001);
SELECT steward.migration_apply() AS applied;
SELECT version, description, applied_by, execution_time_ms FROM steward.applied_migrations;
SELECT steward.migration_rollback(20261202001) - 'run' AS rolled_back;
SQL
log "AI spending: a user's model call recorded through the facade (its cost from the model catalogue), spend against the organisation's budget, and the budget alert check_alerts() raises"
psql_at "$DIR" "$PORT" -q <<'SQL'
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001", "role": "authenticated"}', true) IS NOT NULL AS signed_in \gset
SELECT model, input_tokens, output_tokens, cost
  FROM public.record_ai_usage(model := 'claude-3-opus-20240229', input_tokens := 900000, output_tokens := 20000, request_id := 'demo-1');
SELECT s -> 'day' AS "today against the organisation's daily budget" FROM public.get_ai_budget_status() s;
COMMIT;
SELECT steward.check_alerts() >= 0 AS checked \gset
SELECT severity, message FROM steward.performance_alerts WHERE rule_id = 'ai_budget' AND resolved_at IS NULL ORDER BY created_at;
SQL
log "the demo server is still running: psql -h 127.0.0.1 -p ${PORT} -U postgres   (stop: scripts/demo.sh stop)"
