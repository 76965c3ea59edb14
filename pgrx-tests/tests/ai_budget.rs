//! Budgets, organisations and key rotation through PostgREST-style roles (issue #17 items 2, 3
//! and 5): an organisation admin writes the organisation's configuration through the facade
//! while a plain member cannot; the member inherits its budget; the member's calls raise one
//! alert per threshold crossed (each once, escalating to over budget), announced on
//! steward_alerts; a non-superuser admin switches budget enforcement on and the next call is
//! refused with 54000; a key past its rotation schedule is alerted and rotating it resolves the
//! alert.

mod common;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use common::*;

const ORG: &str = "0b000000-0000-4000-8000-0000000000b0";
const ADMIN: &str = "0b000000-0000-4000-8000-00000000ad01";
const MEMBER: &str = "0b000000-0000-4000-8000-00000000be02";

/// Both tests run check_alerts(), which updates every open alert: one at a time, so the
/// occurrence counts each asserts are its own checks'.
static CHECKS: Mutex<()> = Mutex::new(());

fn claims(sub: &str) -> String {
    format!(r#"{{"sub": "{sub}", "role": "authenticated"}}"#)
}

fn data() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        setup();
        let mut db = connect(DB, "postgres");
        db.batch_execute(&format!(
            "SELECT steward.install_train_schema('public');
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'budget_admin_login') THEN
                 CREATE ROLE budget_admin_login LOGIN NOSUPERUSER;
               END IF;
             END $$;
             GRANT steward_admin TO budget_admin_login;
             INSERT INTO public.organizations (id, name) VALUES ('{ORG}', 'Budgeted') ON CONFLICT DO NOTHING;
             INSERT INTO public.organization_members (organization_id, user_id, role)
             VALUES ('{ORG}', '{ADMIN}', 'admin'), ('{ORG}', '{MEMBER}', 'member') ON CONFLICT DO NOTHING;"
        ))
        .expect("organisation");
    });
}

/// The open budget alerts of the member: (severity, level) in the order they were raised.
fn open_budget_alerts(db: &mut postgres::Client) -> Vec<(String, String, i32)> {
    db.query(
        "SELECT severity, details ->> 'level', occurrences FROM steward.performance_alerts
          WHERE rule_id = 'ai_budget' AND resolved_at IS NULL AND details ->> 'user_id' = $1 AND details ->> 'period' = 'day'
          ORDER BY created_at, object_name",
        &[&MEMBER],
    )
    .expect("alerts")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[test]
fn an_organisation_budget_is_written_by_its_admin_inherited_alerted_and_enforced() {
    let _one_at_a_time = CHECKS.lock().unwrap_or_else(|e| e.into_inner());
    data();
    let mut root = connect(DB, "postgres");
    root.execute("DELETE FROM steward.ai_usage WHERE user_id = $1::text::uuid", &[&MEMBER]).expect("clean");
    root.execute("DELETE FROM steward.performance_alerts WHERE rule_id = 'ai_budget'", &[]).expect("clean");
    let mut api = connect(DB, "authenticator");

    // The admin writes the organisation's budget through the facade (committed).
    let mut tx = api.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims(ADMIN)]).expect("claims");
    let created_by: String = tx
        .query_one(
            "SELECT (public.upsert_ai_config(p_config_name := 'team', p_configuration := $1::text::jsonb,
                                             p_reason := 'team budget', p_organization_id := $2::text::uuid)) ->> 'created_by'",
            &[&r#"{"costBudget": {"dailyBudget": 2, "weeklyBudget": 1000, "monthlyBudget": 1000, "alertThresholds": [0.5, 0.8]}}"#, &ORG],
        )
        .expect("admin writes the organisation's configuration")
        .get(0);
    tx.commit().expect("commit");
    assert_eq!(created_by, ADMIN);

    // A plain member reads and inherits it, and cannot change it (function or table).
    let member = claims(MEMBER);
    let daily: String = as_role(&mut api, "authenticated", &member, |tx| {
        Ok(tx.query_one("SELECT (public.get_ai_budget_status() -> 'day' ->> 'budget')", &[])?.get(0))
    })
    .expect("member status");
    assert_eq!(daily, "2", "the organisation's daily budget applies to its member");
    let err = as_role(&mut api, "authenticated", &member, |tx| {
        tx.execute(
            "SELECT public.upsert_ai_config(p_config_name := 'team', p_configuration := '{\"costBudget\": {\"dailyBudget\": 9999}}',
                                            p_organization_id := $1::text::uuid)",
            &[&ORG],
        )
    })
    .expect_err("member writes");
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let changed = as_role(&mut api, "authenticated", &member, |tx| {
        tx.execute("UPDATE public.ai_configurations SET configuration = '{}' WHERE organization_id = $1::text::uuid", &[&ORG])
    })
    .expect("update");
    assert_eq!(changed, 0, "row-level security: the member's UPDATE touches nothing");
    let audited: i64 = root
        .query_one(
            "SELECT count(*) FROM steward.audit_entries e JOIN public.ai_configurations c ON c.id = e.config_id
              WHERE c.organization_id = $1::text::uuid AND e.changed_by = $2::text::uuid AND e.change_reason = 'team budget'",
            &[&ORG, &ADMIN],
        )
        .expect("audit")
        .get(0);
    assert_eq!(audited, 1, "the admin's write is in the audit trail");

    // The member's calls (recorded by the service role, committed) cross 50 %, then 80 % and the budget.
    let mut listener = connect(DB, "postgres");
    listener.batch_execute("LISTEN steward_alerts").expect("listen");
    let record = |root: &mut postgres::Client, tokens: i64, req: &str| {
        root.execute(
            "SELECT steward.record_ai_usage('claude-3-opus-20240229', $1, 0, $2::text::uuid, $3::text::uuid, $4)",
            &[&tokens, &MEMBER, &ORG, &req],
        )
    };
    record(&mut root, 80_000, "m-1").expect("1.20 of 2"); // 60 %
    root.batch_execute("SELECT steward.check_alerts(); SELECT steward.check_alerts();").expect("check twice");
    assert_eq!(open_budget_alerts(&mut root), vec![("warning".into(), "50%".into(), 2)], "raised once, seen twice");
    record(&mut root, 30_000, "m-2").expect("1.65 of 2"); // 82.5 %
    root.batch_execute("SELECT steward.check_alerts()").expect("check");
    assert_eq!(open_budget_alerts(&mut root), vec![("warning".into(), "50%".into(), 3), ("error".into(), "80%".into(), 1)]);
    record(&mut root, 30_000, "m-3").expect("2.10 of 2"); // over
    root.batch_execute("SELECT steward.check_alerts()").expect("check");
    let levels: Vec<(String, String)> = open_budget_alerts(&mut root).into_iter().map(|(s, l, _)| (s, l)).collect();
    assert_eq!(
        levels,
        vec![("warning".into(), "50%".into()), ("error".into(), "80%".into()), ("critical".into(), "over budget".into())]
    );
    let mut received = Vec::new();
    {
        let mut n = listener.notifications();
        let mut it = n.timeout_iter(Duration::from_millis(300));
        while let Ok(Some(note)) = it.next() {
            received.push(serde_json::from_str::<serde_json::Value>(note.payload()).expect("payload is JSON"));
        }
    }
    let budget_events: Vec<&serde_json::Value> = received.iter().filter(|p| p["rule"] == "ai_budget").collect();
    assert!(budget_events.iter().all(|p| p["object"].is_null()), "no user id on the channel anyone may LISTEN to: {budget_events:?}");
    let mut opened = Vec::new();
    for p in budget_events.iter().filter(|p| p["event"] == "opened") {
        let id = p["id"].as_str().unwrap_or("").to_string();
        let mine = root
            .query_opt(
                "SELECT severity FROM steward.performance_alerts
                  WHERE id = $1::text::uuid AND details ->> 'user_id' = $2 AND details ->> 'period' = 'day'",
                &[&id, &MEMBER],
            )
            .expect("alert of the event");
        if let Some(row) = mine {
            assert_eq!(p["severity"].as_str(), Some(row.get::<_, String>(0).as_str()));
            opened.push(row.get::<_, String>(0));
        }
    }
    assert_eq!(opened, vec!["warning", "error", "critical"], "each level announced once, in order");

    // Enforcement, switched on by a non-superuser admin: the next call is refused with the
    // budget in DETAIL and nothing stored; switched off, it is recorded.
    let mut admin = connect(DB, "budget_admin_login");
    admin.batch_execute("SELECT steward.set_setting('budgetEnforcement', '1')").expect("on");
    let err = as_role(&mut api, "authenticated", &member, |tx| {
        tx.execute("SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 10, output_tokens := 10)", &[])
    })
    .expect_err("over budget");
    assert_eq!(sqlstate(&err), "54000", "{err}");
    let detail = err.as_db_error().and_then(|e| e.detail()).unwrap_or("").to_string();
    assert!(detail.contains("daily budget 2"), "{detail}");
    let before: i64 = root.query_one("SELECT count(*) FROM steward.ai_usage WHERE user_id = $1::text::uuid", &[&MEMBER]).expect("n").get(0);
    record(&mut root, 10, "m-4").expect_err("an admin recording for the member is refused too");
    // A request already recorded is still answered (no refusal, no second row).
    record(&mut root, 30_000, "m-3").expect("idempotent");
    let after: i64 = root.query_one("SELECT count(*) FROM steward.ai_usage WHERE user_id = $1::text::uuid", &[&MEMBER]).expect("n").get(0);
    assert_eq!(before, after);
    admin.batch_execute("SELECT steward.reset_setting('budgetEnforcement')").expect("off");
    record(&mut root, 10, "m-4").expect("recorded with enforcement off");
    let logged: i64 = root
        .query_one("SELECT count(*) FROM steward.admin_log WHERE action = 'steward.set_setting' AND arguments ->> 'key' = 'budgetEnforcement'", &[])
        .expect("admin log")
        .get(0);
    assert!(logged >= 1, "switching enforcement is in the admin log");

    // The day is over: the member's day alerts resolve at the next check.
    root.execute("UPDATE steward.ai_usage SET recorded_at = recorded_at - interval '40 days' WHERE user_id = $1::text::uuid", &[&MEMBER])
        .expect("age");
    root.batch_execute("SELECT steward.check_alerts()").expect("check");
    assert!(open_budget_alerts(&mut root).is_empty());
    root.execute("DELETE FROM steward.ai_usage WHERE user_id = $1::text::uuid", &[&MEMBER]).expect("clean");
}

#[test]
fn a_key_past_its_schedule_is_alerted_until_rotated() {
    let _one_at_a_time = CHECKS.lock().unwrap_or_else(|e| e.into_inner());
    data();
    let mut root = connect(DB, "postgres");
    root.execute(
        "INSERT INTO public.ai_configurations (organization_id, config_name, configuration, created_by)
         VALUES ($1::text::uuid, 'keys', '{\"apiKeys\": {\"primaryKey\": \"sk-rotate-me-000001\", \"rotationSchedule\": \"monthly\"}}', $2::text::uuid)
         ON CONFLICT (organization_id, config_name) DO NOTHING",
        &[&ORG, &ADMIN],
    )
    .expect("config");
    root.execute("UPDATE steward.api_key_vault SET created_at = now() - interval '45 days' WHERE owner_id = $1::text::uuid", &[&ORG])
        .expect("age the key");
    let mut api = connect(DB, "authenticator");
    // The organisation's admin sees it due; the member does not (it is not theirs to rotate).
    let seen = |api: &mut postgres::Client, who: &str| -> i64 {
        as_role(api, "authenticated", &claims(who), |tx| {
            Ok(tx.query_one("SELECT count(*) FROM public.get_ai_key_rotation_due() WHERE config_name = 'keys'", &[])?.get(0))
        })
        .expect("due")
    };
    assert_eq!(seen(&mut api, ADMIN), 1);
    assert_eq!(seen(&mut api, MEMBER), 0);
    root.batch_execute("SELECT steward.check_alerts()").expect("check");
    let open = |root: &mut postgres::Client| -> Vec<String> {
        root.query(
            "SELECT a.severity FROM steward.performance_alerts a JOIN public.ai_configurations c
                ON a.object_name = 'configuration ' || c.id
              WHERE a.rule_id = 'api_key_rotation_due' AND a.resolved_at IS NULL AND c.config_name = 'keys'",
            &[],
        )
        .expect("alerts")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(open(&mut root), vec!["warning".to_string()], "15 days overdue: warning");
    // The member may not rotate it; the admin does, through the facade, and the alert resolves.
    let err = as_role(&mut api, "authenticated", &claims(MEMBER), |tx| {
        tx.execute("SELECT public.rotate_api_key('keys', 'sk-rotated-key-000002', NULL, $1::text::uuid)", &[&ORG])
    })
    .expect_err("member rotates");
    assert_eq!(sqlstate(&err), "42501");
    let mut tx = api.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims(ADMIN)]).expect("claims");
    tx.execute("SELECT public.rotate_api_key('keys', 'sk-rotated-key-000002', 'monthly rotation', $1::text::uuid)", &[&ORG])
        .expect("admin rotates");
    tx.commit().expect("commit");
    assert!(open(&mut root).is_empty(), "rotating the key resolved the alert at once");
    assert_eq!(seen(&mut api, ADMIN), 0);
}
