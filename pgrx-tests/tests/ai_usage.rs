//! AI usage through PostgREST-style roles (issue #17): a signed-in user records their own model
//! calls and reads their own spend and budget; recording or reading for someone else is 42501;
//! the service role records for any user; anon gets nothing; a duplicate request id is one row.

mod common;

use common::*;

const ALICE: &str = "a11ce000-0000-4000-8000-0000000a1ce0";
const ALICE_JWT: &str = r#"{"sub": "a11ce000-0000-4000-8000-0000000a1ce0", "role": "authenticated"}"#;
const BOB: &str = "b0b00000-0000-4000-8000-00000000b0b0";

#[test]
fn users_record_and_read_their_own_usage_only() {
    setup();
    let mut root = connect(DB, "postgres");
    root.execute("DELETE FROM steward.ai_usage_daily WHERE user_id IN ($1::text::uuid, $2::text::uuid)", &[&ALICE, &BOB]).expect("clean");
    root.execute("DELETE FROM steward.ai_usage WHERE user_id IN ($1::text::uuid, $2::text::uuid)", &[&ALICE, &BOB]).expect("clean");
    let mut api = connect(DB, "authenticator");

    // Alice records two calls for herself (user_id defaults to the caller), one twice.
    let spend: String = as_role(&mut api, "authenticated", ALICE_JWT, |tx| {
        tx.batch_execute(
            "SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 1000, output_tokens := 2000, request_id := 'alice-1');
             SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 1000, output_tokens := 2000, request_id := 'alice-1');
             SELECT public.record_ai_usage(model := 'claude-3-opus-20240229', input_tokens := 10000, output_tokens := 1000);",
        )?;
        let status = tx.query_one("SELECT (public.get_ai_budget_status() -> 'day' ->> 'spend')", &[])?;
        let own: i64 = tx.query_one("SELECT count(*) FROM steward.ai_usage", &[])?.get(0);
        assert_eq!(own, 2, "Alice sees her own two calls (row-level security), the duplicate was not stored");
        Ok(status.get(0))
    })
    .expect("alice");
    assert_eq!(spend, "0.22775000");

    // Alice cannot record for or read Bob.
    for sql in [
        format!("SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 1, output_tokens := 1, user_id := '{BOB}')"),
        format!("SELECT * FROM public.get_ai_spending(user_id := '{BOB}')"),
        format!("SELECT public.get_ai_budget_status(user_id := '{BOB}')"),
    ] {
        let err = as_role(&mut api, "authenticated", ALICE_JWT, |tx| tx.batch_execute(&sql)).expect_err(&sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    // The service role records for Bob; Alice still does not see Bob's rows.
    let bobs: i64 = as_role(&mut api, "service_role", SERVICE_CLAIMS, |tx| {
        let r = tx.query_one(
            &format!(
                "SELECT user_id::text FROM public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 4000, output_tokens := 0, user_id := '{BOB}', request_id := 'alice-1')"
            ),
            &[],
        )?;
        assert_eq!(r.get::<_, String>(0), BOB, "Bob's request id alice-1 is his own, not Alice's row");
        Ok(tx.query_one(&format!("SELECT count(*) FROM steward.ai_usage WHERE user_id = '{BOB}'"), &[])?.get(0))
    })
    .expect("service role for bob");
    assert_eq!(bobs, 1);
    let mut tx = root.transaction().expect("tx");
    tx.execute(
        &format!("SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := 4000, output_tokens := 0, user_id := '{BOB}')"),
        &[],
    )
    .expect("superuser for bob");
    tx.commit().expect("commit");
    // Anon gets nothing; bad input is a clear error.
    let err = as_role(&mut api, "anon", ANON_CLAIMS, |tx| tx.batch_execute("SELECT public.get_ai_budget_status()")).expect_err("anon");
    assert_eq!(sqlstate(&err), "42501");
    for (sql, state) in [
        ("SELECT public.record_ai_usage(model := 'gpt-4', input_tokens := 1, output_tokens := 1)", "22023"),
        ("SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := -1, output_tokens := 1)", "22023"),
        ("SELECT public.record_ai_usage(model := 'claude-3-haiku-20240307', input_tokens := '1.5', output_tokens := 1)", "22P02"),
        ("SELECT * FROM public.get_ai_spending(period := 'fortnight')", "22023"),
    ] {
        let err = as_role(&mut api, "authenticated", ALICE_JWT, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), state, "{sql}: {err}");
    }
    let rows: i64 = root
        .query_one("SELECT count(*) FROM steward.ai_usage WHERE user_id IN ($1::text::uuid, $2::text::uuid)", &[&ALICE, &BOB])
        .expect("count")
        .get(0);
    assert_eq!(rows, 1, "each PostgREST-style request above was rolled back; the superuser's committed call remains");
}
