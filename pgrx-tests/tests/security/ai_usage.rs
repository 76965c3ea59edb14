//! AI usage (issue #17): a signed-in user records and reads only their own usage; organisation
//! usage needs membership; the admin check the SECURITY DEFINER functions make reads the role
//! the request acts as (never the owner's), and is not callable by end users;
//! nobody writes the usage tables directly; hostile sizes are refused without crashing.

use crate::common::{as_role, sqlstate};
use crate::{connect_as, sec_setup, survived, witness, ALICE, ALICE_CLAIMS, BOB};

#[test]
fn users_act_only_for_themselves_and_their_organisations() {
    sec_setup();
    let mut api = connect_as("authenticator");
    let cases = [
        format!("SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1, '{BOB}')"),
        format!("SELECT * FROM steward.ai_spending('{BOB}')"),
        format!("SELECT steward.ai_budget_status('{BOB}')"),
        format!("SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1, NULL, '0000000a-0000-4000-8000-00000000000a')"),
        "SELECT steward._caller_config_admin()".to_string(),
        format!("INSERT INTO steward.ai_usage (user_id, model, input_tokens, output_tokens, cost, recorded_by) VALUES ('{ALICE}', 'x', 0, 0, 0, 'me')"),
        format!("INSERT INTO steward.ai_usage_daily (user_id, day, cost) VALUES ('{ALICE}', current_date, -100)"),
    ];
    for sql in &cases {
        let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    for sql in ["SELECT * FROM steward.ai_models()", "SELECT steward.ai_budget_status()", "SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1)"] {
        let err = as_role(&mut api, "anon", r#"{"role": "anon"}"#, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "anon: {sql}: {err}");
    }
    // Bob's rows exist; Alice's reads of the table see none of them (row-level security).
    let mut root = connect_as("postgres");
    root.batch_execute(&format!("SELECT steward.record_ai_usage('claude-3-haiku-20240307', 10, 10, '{BOB}')")).expect("bob");
    let seen: i64 = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        Ok(tx.query_one(&format!("SELECT count(*) FROM steward.ai_usage WHERE user_id = '{BOB}'"), &[])?.get(0))
    })
    .expect("alice reads");
    assert_eq!(seen, 0);
}

#[test]
fn hostile_sizes_are_refused_cleanly() {
    sec_setup();
    let mut w = witness();
    let mut api = connect_as("authenticator");
    for (sql, state) in [
        ("SELECT steward.record_ai_usage('claude-3-haiku-20240307', 9223372036854775807, 1)", "22023"),
        ("SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1, NULL, NULL, repeat('r', 1000000))", "22023"),
        ("SELECT steward.record_ai_usage(repeat('m', 1000000), 1, 1)", "22023"),
        ("SELECT * FROM steward.ai_spending(NULL, 'day', '0001-01-01', '9999-12-31')", "22023"),
        ("SELECT * FROM steward.ai_spending(NULL, repeat('w', 100000))", "22023"),
    ] {
        let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), state, "{sql}: {err}");
    }
    assert!(survived(&mut w));
}
