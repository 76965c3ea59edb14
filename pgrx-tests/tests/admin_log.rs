//! The admin log (issue #16 item 6) as the web app's admin console produces it: actions called
//! by the service role through PostgREST leave one row each — who, from where, which action,
//! which arguments, the outcome — also when they fail (the row outlives the failed request's
//! rollback), and nobody can change the log.

mod common;

use common::*;

const HEADERS: &str = r#"{"user-agent": "supabase-js/2", "x-forwarded-for": "203.0.113.7"}"#;

#[test]
fn every_admin_action_leaves_its_row_also_when_it_fails() {
    setup();
    let mut root = connect(DB, "postgres");
    let since: String = root.query_one("SELECT clock_timestamp()::text", &[]).expect("now").get(0);
    let marker = format!("admin log test {}", std::process::id());
    let mut api = connect(DB, "authenticator");

    // Successful actions in a committed request.
    {
        let mut tx = api.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE service_role").expect("role");
        tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&SERVICE_CLAIMS]).expect("claims");
        tx.execute("SELECT set_config('request.headers', $1, true)", &[&HEADERS]).expect("headers");
        tx.batch_execute("SELECT steward.set_setting('reportTableLimit', '51'); SELECT steward.reset_setting('reportTableLimit')")
            .expect("settings");
        tx.execute(
            "SELECT steward.acknowledge_alert(steward.create_performance_alert('admin_log_test', 'info', $1))",
            &[&marker],
        )
        .expect("acknowledge");
        tx.batch_execute("SELECT steward.set_alert_rule('freeze_age', p_resolve_after_checks => 3); SELECT steward.reset_alert_rule('freeze_age')")
            .expect("rule");
        tx.commit().expect("commit");
    }
    // Failing actions, each in a request that is rolled back.
    let failures = [
        ("SELECT steward.set_setting('reportTableLimit', '-1')", "steward.set_setting"),
        ("SELECT * FROM steward.vacuum('public.no_such_table_for_the_log')", "steward.run_maintenance"),
        ("SELECT steward.migration_rollback(987654321)", "steward.migration_rollback"),
        ("SELECT steward.audit_purge('1 second')", "steward.audit_purge"),
        ("SELECT steward.resolve_alert('00000000-0000-4000-8000-00000000a106')", "steward.resolve_alert"),
        ("SELECT steward.config_restore('00000000-0000-4000-8000-00000000a106', true)", "steward.config_restore"),
    ];
    for (sql, _) in &failures {
        let err = as_role(&mut api, "service_role", SERVICE_CLAIMS, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_ne!(sqlstate(&err), "XX000", "{sql}: {err}");
    }

    let rows = root
        .query(
            "SELECT action, outcome, coalesce(sqlstate, ''), actor, coalesce(jwt_role, ''), coalesce(client_ip, ''),
                    coalesce(user_agent, ''), arguments::text
               FROM steward.admin_log WHERE at >= $1::text::timestamptz AND actor = 'authenticator/service_role'
              ORDER BY id",
            &[&since],
        )
        .expect("admin log");
    let rows: Vec<(String, String, String, String, String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect();
    let has = |action: &str, outcome: &str| rows.iter().any(|r| r.0 == action && r.1 == outcome);
    for action in ["steward.set_setting", "steward.reset_setting", "steward.acknowledge_alert", "steward.set_alert_rule", "steward.reset_alert_rule"] {
        assert!(has(action, "ok"), "{action} ok: {rows:?}");
    }
    for (sql, action) in &failures {
        let row = rows.iter().find(|r| r.0 == *action && r.1 == "error");
        let row = row.unwrap_or_else(|| panic!("{sql}: no error row for {action}: {rows:?}"));
        assert!(!row.2.is_empty(), "the failure's SQLSTATE is kept: {row:?}");
    }
    for r in &rows {
        assert_eq!((r.4.as_str(), r.5.as_str(), r.6.as_str()), ("service_role", "203.0.113.7", "supabase-js/2"), "{r:?}");
    }
    assert!(
        rows.iter().any(|r| r.0 == "steward.set_setting" && r.1 == "ok" && r.7.contains("\"value\": 51")),
        "arguments kept: {rows:?}"
    );
}

#[test]
fn the_log_cannot_be_written_or_changed_by_admins() {
    setup();
    let mut api = connect(DB, "authenticator");
    for sql in [
        "INSERT INTO steward.admin_log (actor, action, outcome) VALUES ('someone', 'steward.set_setting', 'ok')",
        "UPDATE steward.admin_log SET outcome = 'ok'",
        "DELETE FROM steward.admin_log",
        "SELECT steward._admin_logged('steward.set_setting', '{}', NULL)",
        "SELECT steward._admin_log_failed('steward.set_setting', '{}', '22023', 'forged')",
    ] {
        let err = as_role(&mut api, "service_role", SERVICE_CLAIMS, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    let listed: String = as_role(&mut api, "service_role", SERVICE_CLAIMS, |tx| {
        tx.query_one("SELECT public.get_admin_log(filters := '{\"outcome\": \"error\"}', page := 1, page_size := 5)::text", &[])
            .map(|r| r.get(0))
    })
    .expect("the service role reads the log through the facade");
    assert!(listed.contains("\"totalCount\""), "{listed}");
    let err = as_role(&mut api, "authenticated", USER_CLAIMS, |tx| tx.batch_execute("SELECT steward.admin_log_list()"))
        .expect_err("end users do not read the log");
    assert_eq!(sqlstate(&err), "42501");
}
