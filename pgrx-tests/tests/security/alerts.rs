//! Alerts (issue #16): the check, the rule changes and the alert list are for admins only; the
//! check's body cannot be called with a made-up caller; alerts (read by every admin) and their
//! notifications never carry a statement text the reader could not see in pg_stat_statements;
//! hostile input to the rule and list functions is refused without crashing a backend.

use crate::common::{as_role, sqlstate};
use crate::{connect_as, is_superuser, sec_setup, survived, witness, ALICE_CLAIMS};

const ADMIN_ONLY: &[&str] = &[
    "SELECT steward.check_alerts()",
    "SELECT steward.list_alerts()",
    "SELECT steward.set_alert_rule('high_bloat', false)",
    "SELECT steward.reset_alert_rule('high_bloat')",
    "SELECT steward.acknowledge_alert(gen_random_uuid())",
    "SELECT steward.resolve_alert(gen_random_uuid(), 'x')",
    "SELECT public.check_alerts()",
    "SELECT public.list_alerts()",
    "SELECT public.acknowledge_alert(gen_random_uuid())",
    "SELECT public.resolve_alert(gen_random_uuid(), 'x')",
    "SELECT * FROM steward.alert_rules",
    "SELECT * FROM steward.alert_checks",
    "UPDATE steward.alert_rule_overrides SET enabled = false",
    "SELECT steward.generate_monthly_report()",
    "SELECT steward.monthly_report('2024-01-01')",
    "SELECT steward.monthly_report_text('2024-01-01')",
    "SELECT steward.list_monthly_reports()",
    "SELECT public.generate_monthly_report()",
    "SELECT public.list_monthly_reports()",
    "SELECT * FROM steward.health_reports",
    "SELECT steward.capture_snapshots()",
    "SELECT steward.purge_history()",
    "SELECT steward.size_trend()",
    "SELECT steward.index_usage_trend('public.x_pkey')",
    "SELECT steward.xid_trend()",
    "SELECT steward.query_trend()",
    "SELECT public.get_size_trend()",
    "SELECT * FROM steward.database_snapshots",
    "SELECT steward.maintenance_history_filtered()",
    "SELECT steward.maintenance_statistics()",
    "SELECT * FROM steward.maintenance_operations_available()",
    "SELECT public.get_maintenance_history_filtered()",
];

#[test]
fn end_users_and_anon_cannot_check_list_or_change_alerts() {
    sec_setup();
    let mut api = connect_as("authenticator");
    for (role, claims) in [("authenticated", ALICE_CLAIMS), ("anon", r#"{"role": "anon"}"#)] {
        for sql in ADMIN_ONLY {
            let err = as_role(&mut api, role, claims, |tx| tx.batch_execute(sql)).expect_err(sql);
            assert_eq!(sqlstate(&err), "42501", "{role}: {sql}: {err}");
        }
    }
    // A monitoring role reads the report (and so the recommendations) but changes nothing.
    let mut root = connect_as("postgres");
    root.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_monitor') THEN CREATE ROLE sec_monitor LOGIN; END IF; END $$;
         GRANT pg_monitor TO sec_monitor;",
    )
    .expect("monitor role");
    let mut monitor = connect_as("sec_monitor");
    monitor.batch_execute("SELECT steward.health_report()").expect("pg_monitor reads the report");
    monitor
        .batch_execute("SELECT steward.size_trend(); SELECT steward.xid_trend(); SELECT steward.query_trend()")
        .expect("pg_monitor reads the trends");
    for sql in [
        "SELECT steward.check_alerts()",
        "SELECT steward.set_alert_rule('high_bloat', false)",
        "SELECT steward.purge_history()",
        "SELECT steward.capture_snapshots()",
    ] {
        let err = monitor.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "pg_monitor: {sql}: {err}");
    }
    assert_eq!(root.query_one("SELECT count(*) FROM steward.alert_rule_overrides", &[]).expect("n").get::<_, i64>(0), 0);
}

#[test]
fn the_checks_body_cannot_be_called_with_a_made_up_caller() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    for sql in [
        "SELECT steward._check_alerts(42)",
        "SELECT steward._check_alerts_for(10::oid)",
        "SELECT steward._generate_monthly_report(42, NULL)",
        "SELECT steward._generate_monthly_report_for(10::oid, NULL)",
        "SELECT steward._admin_logged('steward.set_setting', '{}', NULL)",
        "SELECT steward._admin_log_failed('steward.set_setting', '{}', '22023', 'forged')",
        "SELECT steward._admin_log_submit('{\"actor\": \"postgres\", \"action\": \"x\", \"outcome\": \"ok\"}')",
        "SELECT steward._request_identity()",
        "INSERT INTO steward.admin_log (actor, action, outcome) VALUES ('postgres', 'steward.set_setting', 'ok')",
        "DELETE FROM steward.admin_log",
        "SELECT steward._alert_notify('opened', NULL::steward.performance_alerts)",
    ] {
        let err = admin.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    assert!(!is_superuser(&mut connect_as("postgres"), "sec_admin"));
}

/// pg_cron runs check_alerts() as the superuser, who sees every statement text; the alerts it
/// writes are read by admins who may not.  Statement texts from pg_stat_statements therefore
/// never go into alerts or notifications (the queryid does).
#[test]
fn alerts_never_carry_statement_texts_from_pg_stat_statements() {
    sec_setup();
    let mut root = connect_as("postgres");
    root.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").expect("pg_stat_statements");
    root.batch_execute("SELECT /* sec_alert_marker_root_only */ 1 AS a, pg_sleep(1.1)").expect("slow statement");
    let mut listener = connect_as("postgres");
    listener.batch_execute("LISTEN steward_alerts").expect("listen");
    root.batch_execute("SELECT steward.check_alerts()").expect("check as the superuser");
    let leaked: i64 = root
        .query_one(
            "SELECT count(*) FROM steward.performance_alerts
              WHERE message LIKE '%sec_alert_marker%' OR details::text LIKE '%sec_alert_marker%'",
            &[],
        )
        .expect("alerts")
        .get(0);
    assert_eq!(leaked, 0, "no statement text from pg_stat_statements in alerts");
    let slow: i64 = root
        .query_one(
            "SELECT count(*) FROM steward.performance_alerts WHERE rule_id = 'slow_query' AND object_name LIKE 'pg_stat_statements %'",
            &[],
        )
        .expect("alerts")
        .get(0);
    assert!(slow >= 1, "the slow statement is alerted by its queryid");
    let mut admin = connect_as("sec_admin");
    let listed: String = admin.query_one("SELECT steward.list_alerts('{\"status\": \"all\"}', 1, 1000)::text", &[]).expect("list").get(0);
    assert!(!listed.contains("sec_alert_marker"));
    use postgres::fallible_iterator::FallibleIterator;
    let mut n = listener.notifications();
    let payloads: Vec<String> = n.timeout_iter(std::time::Duration::from_millis(500)).map(|m| Ok(m.payload().to_string())).collect().unwrap_or_default();
    assert!(!payloads.is_empty(), "the check announced its alerts");
    assert!(payloads.iter().all(|p| !p.contains("sec_alert_marker")), "{payloads:?}");
}

#[test]
fn hostile_rule_changes_and_list_filters_are_refused_cleanly() {
    sec_setup();
    let mut w = witness();
    let mut admin = connect_as("sec_admin");
    let huge = format!("{{{}}}", (0..5000).map(|i| format!("\"k{i}\": 1")).collect::<Vec<_>>().join(","));
    let cases: Vec<(String, &str)> = vec![
        ("SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{\"warning\": 1e400}')".into(), "22023"),
        ("SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{\"warning\": -1e20}')".into(), "22023"),
        (format!("SELECT steward.set_alert_rule('high_bloat', p_thresholds => '{huge}')"), "22023"),
        ("SELECT steward.set_alert_rule(NULL)".into(), "22023"),
        ("SELECT steward.set_alert_rule('high_bloat'' OR true --', false)".into(), "22023"),
        ("SELECT steward.set_alert_rule('high_bloat', p_resolve_after_checks => -5)".into(), "22023"),
        ("SELECT steward.list_alerts('{\"object\": 5}')".into(), "22023"),
        ("SELECT steward.list_alerts('{\"startDate\": \"infinity-and-beyond\"}')".into(), "22023"),
        ("SELECT steward.list_alerts('{}', 1, 1001)".into(), "22023"),
        ("SELECT steward._report_findings('{\"slowQueries\": 5}', '[]')".into(), "42501"),
        ("SELECT steward.size_trend('x\"; DROP TABLE public.user_preferences; --')".into(), "22023"),
        ("SELECT steward.size_trend(repeat('a.', 100000))".into(), "22023"),
        ("SELECT steward.size_trend(NULL, 3661)".into(), "22023"),
        ("SELECT steward.size_trend(NULL, 30, 1000000)".into(), "22023"),
        ("SELECT steward.query_trend('-infinity', 'infinity')".into(), "22023"),
        ("SELECT steward.index_usage_trend(NULL)".into(), "22023"),
        ("SELECT steward.maintenance_history_filtered('{\"table\": {\"$ne\": 1}}')".into(), "22023"),
        ("SELECT steward.maintenance_history_filtered('{}', 1, 100000)".into(), "22023"),
    ];
    for (sql, state) in &cases {
        let err = admin.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), *state, "{sql}: {err}");
    }
    // A page far beyond the end is an empty page, not an overflow.
    let far: String = admin
        .query_one("SELECT steward.list_alerts('{\"status\": \"all\"}', 2147483647, 1000)::text", &[])
        .expect("far page")
        .get(0);
    assert!(far.contains("\"alerts\": []"), "{far}");
    assert!(survived(&mut w));
    let mut root = connect_as("postgres");
    assert_eq!(root.query_one("SELECT count(*) FROM steward.alert_rule_overrides", &[]).expect("n").get::<_, i64>(0), 0);
    // The evaluator itself (superuser-only) refuses malformed reports and rules with 22023.
    for sql in [
        "SELECT steward._report_findings('{\"slowQueries\": 5}', '[]')",
        "SELECT steward._report_findings('{}', '[{\"rule_id\": \"x\", \"metric\": \"rm -rf\"}]')",
    ] {
        let err = root.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), "22023", "{sql}: {err}");
    }
}

/// A directly connected admin who sets PostgREST's request settings is not an API request: the
/// admin log names the admin's own role and takes neither the claimed user nor the claimed
/// address (only API roles' request settings count, as for the audit log).
#[test]
fn the_admin_log_cannot_be_attributed_to_someone_else() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    admin
        .batch_execute(&format!(
            "SELECT set_config('request.jwt.claims', '{ALICE_CLAIMS}', false);
             SELECT set_config('request.headers', '{{\"x-forwarded-for\": \"198.51.100.9\", \"user-agent\": \"forged\"}}', false);
             SELECT steward.set_setting('reportTableLimit', '48');
             SELECT steward.reset_setting('reportTableLimit');"
        ))
        .expect("settings");
    let mut root = connect_as("postgres");
    let row = root
        .query_one(
            "SELECT actor, actor_uuid IS NULL, client_ip IS NULL, user_agent IS NULL FROM steward.admin_log
              WHERE action = 'steward.set_setting' AND arguments ->> 'value' = '48' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .expect("the row");
    assert_eq!(row.get::<_, String>(0), "sec_admin");
    assert!(row.get::<_, bool>(1) && row.get::<_, bool>(2) && row.get::<_, bool>(3), "no claimed identity or address");
}

/// A schema owner (here a non-superuser admin owning `sec_admin_schema`) plants functions and
/// an operator that shadow pg_catalog's and puts its schema first in the path, then calls this
/// stop's entry points — itself and as the service role through PostgREST.  None of them may
/// run: every body pins `search_path` and qualifies its names.  Nothing changes: the trap's log
/// stays empty and the attacker stays a plain role.  The trap works where nothing pins the path
/// (so the test can fail).
#[test]
fn a_schema_owners_search_path_never_reaches_the_alert_trend_report_and_log_functions() {
    sec_setup();
    let mut root = connect_as("postgres");
    let mut admin = connect_as("sec_admin");
    admin
        .batch_execute(
            "DROP OPERATOR IF EXISTS sec_admin_schema.>= (timestamptz, timestamptz);
             DROP FUNCTION IF EXISTS sec_admin_schema.evil_ge(timestamptz, timestamptz);
             DROP FUNCTION IF EXISTS sec_admin_schema.lower(text);
             DROP FUNCTION IF EXISTS sec_admin_schema.strpos(text, text);
             DROP TABLE IF EXISTS sec_admin_schema.trap_log;
             CREATE TABLE sec_admin_schema.trap_log (who text, what text);
             GRANT USAGE ON SCHEMA sec_admin_schema TO PUBLIC;
             GRANT INSERT, SELECT ON sec_admin_schema.trap_log TO PUBLIC;
             CREATE FUNCTION sec_admin_schema.lower(t text) RETURNS text LANGUAGE plpgsql AS $f$
             BEGIN
                 INSERT INTO sec_admin_schema.trap_log VALUES (current_user, 'lower');
                 BEGIN ALTER ROLE sec_admin SUPERUSER; EXCEPTION WHEN OTHERS THEN NULL; END;
                 RETURN pg_catalog.lower(t);
             END $f$;
             CREATE FUNCTION sec_admin_schema.strpos(a text, b text) RETURNS integer LANGUAGE plpgsql AS $f$
             BEGIN
                 INSERT INTO sec_admin_schema.trap_log VALUES (current_user, 'strpos');
                 RETURN pg_catalog.strpos(a, b);
             END $f$;
             CREATE FUNCTION sec_admin_schema.evil_ge(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $f$
             BEGIN
                 INSERT INTO sec_admin_schema.trap_log VALUES (current_user, '>=');
                 RETURN a OPERATOR(pg_catalog.>=) b;
             END $f$;
             CREATE OPERATOR sec_admin_schema.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = sec_admin_schema.evil_ge);",
        )
        .expect("the schema owner's trap");
    let calls = [
        "SELECT steward.list_alerts('{\"status\": \"all\", \"object\": \"x\", \"startDate\": \"2020-01-01\"}')",
        "SELECT steward.admin_log_list('{\"search\": \"x\", \"startDate\": \"2020-01-01\"}')",
        "SELECT steward.maintenance_history_filtered('{\"table\": \"x\", \"startDate\": \"2020-01-01\"}')",
        "SELECT steward.maintenance_statistics('2020-01-01', now())",
        "SELECT steward.size_trend()",
        "SELECT steward.size_trend('public.x')",
        "SELECT steward.index_usage_trend('public.x_pkey')",
        "SELECT steward.xid_trend()",
        "SELECT steward.query_trend()",
        "SELECT steward.list_monthly_reports()",
        "SELECT steward.check_alerts()",
        "SELECT steward.generate_monthly_report()",
        "SELECT * FROM steward.ai_spending('a11ce000-0000-4000-8000-000000000001')",
        "SELECT steward.ai_budget_status('a11ce000-0000-4000-8000-000000000001')",
        "SELECT * FROM steward.ai_key_rotation_due()",
    ];
    for sql in calls {
        admin
            .batch_execute(&format!("SET search_path = sec_admin_schema, pg_catalog, public; {sql}; RESET search_path"))
            .unwrap_or_else(|e| panic!("sec_admin: {sql}: {e}"));
    }
    let mut api = connect_as("authenticator");
    for sql in calls {
        crate::common::as_role(&mut api, "service_role", r#"{"role": "service_role"}"#, |tx| {
            tx.batch_execute(&format!("SET LOCAL search_path = sec_admin_schema, pg_catalog, public; {sql}"))
        })
        .unwrap_or_else(|e| panic!("service_role: {sql}: {e}"));
    }
    let used: i64 = root.query_one("SELECT count(*) FROM sec_admin_schema.trap_log", &[]).expect("log").get(0);
    assert_eq!(used, 0, "a shadowing function or operator ran inside a pg_steward statement");
    assert!(!is_superuser(&mut root, "sec_admin"));
    // The trap itself works where the path is not pinned.
    admin
        .batch_execute("SET search_path = sec_admin_schema, pg_catalog; SELECT lower('X'); RESET search_path")
        .expect("plain use");
    let used: i64 = root.query_one("SELECT count(*) FROM sec_admin_schema.trap_log", &[]).expect("log").get(0);
    assert_eq!(used, 1, "the trap is picked where nothing pins the path");
    root.batch_execute("DELETE FROM sec_admin_schema.trap_log").expect("clean");
}
