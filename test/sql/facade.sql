-- The RPC facade under the roles PostgREST uses.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
END $$;
RESET client_min_messages;

SELECT steward.install_rpc_facade('public') AS installed;
SELECT steward.install_rpc_facade('public') AS installed_again;
SELECT steward.install_rpc_facade('pg_catalog');
SELECT steward.install_rpc_facade('no_such_schema');

-- Seed names with their argument lists and result fields.
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, p.provolatile AS volatility
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
   AND p.proname IN (SELECT seed_name FROM steward.facade_functions) ORDER BY 1;
SELECT * FROM public.get_database_overview() LIMIT 0;
SELECT * FROM public.get_table_health_metrics() LIMIT 0;
SELECT * FROM public.get_index_health_metrics() LIMIT 0;
SELECT * FROM public.get_slow_queries() LIMIT 0;
SELECT * FROM public.get_connection_pool_metrics() LIMIT 0;
SELECT * FROM public.detect_unused_indexes() LIMIT 0;
SELECT * FROM public.performance_alerts LIMIT 0;
SELECT * FROM public.query_performance_logs LIMIT 0;
SELECT * FROM public.index_usage_snapshots LIMIT 0;
SELECT * FROM public.table_bloat_snapshots LIMIT 0;

-- anon and authenticated are refused (42501); service_role is served.
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE anon;
SELECT * FROM public.get_database_overview();
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001", "role": "authenticated"}', true) IS NOT NULL AS claims_set;
SELECT public.table_exists('pg_class');
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT * FROM public.performance_alerts;
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT steward.health_report();
ROLLBACK;
\set VERBOSITY default
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role": "service_role"}', true) IS NOT NULL AS claims_set;
SELECT datname = current_database() AS overview_ok FROM public.get_database_overview();
SELECT public.table_exists(p_table_name => 'steward.settings') AS exists_ok;
SELECT count(*) >= 0 AS slow_ok FROM public.get_slow_queries(hours_back => 1, min_duration_ms => 0);
SELECT public.create_performance_alert(p_alert_type => 'slow_query', p_severity => 'warning', p_message => 'regress') IS NOT NULL AS alert_created;
UPDATE public.performance_alerts SET acknowledged_at = now() WHERE message = 'regress';
SELECT alert_type, severity, acknowledged_at IS NOT NULL AS acknowledged FROM public.performance_alerts WHERE message = 'regress';
INSERT INTO public.query_performance_logs (query_text, duration_ms) VALUES ('select 1', 800) RETURNING is_slow;
ROLLBACK;

-- Malformed claims never break a caller; the identity falls back to the session user.
-- (Claims count only under an API role, as PostgREST's SET ROLE gives.)
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{not json', true) IS NOT NULL AS bad_claims;
SELECT steward.caller_id() = session_user::text AS falls_back;
SELECT set_config('request.jwt.claims', '{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001"}', true) IS NOT NULL AS good_claims;
SELECT steward.caller_id(), steward.caller_uuid();
ROLLBACK;

-- Grants: nothing in steward is executable by PUBLIC.
SELECT count(*) AS public_executable
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'steward'::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE';
SELECT count(*) AS definer_without_search_path
  FROM pg_proc p WHERE p.pronamespace = 'steward'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig::text LIKE '%search_path=pg_catalog, pg_temp%', false);

SELECT steward.drop_rpc_facade('public') AS dropped;
SELECT count(*) AS left_behind FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = 'get_database_overview';
