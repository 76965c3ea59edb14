//! Family 6 of issue #13: crashing the server with jsonb.  A signed-in user (PostgREST-style:
//! `authenticator` logged in, `SET LOCAL ROLE authenticated`, Alice's claims) sends deep, wide,
//! large and self-multiplying documents and patches to every jsonb function.  Each attack
//! must fail with its SQLSTATE (54001 too deep, 54000 too large) while the backend — and so
//! every other backend — goes on: a connection opened before the attack still answers, a
//! fresh one works, and `pg_postmaster_start_time()` is unchanged (a crash restarts it).

use crate::common::*;

/// How many containers the extension lets a document nest (src/common/jsonb.rs MAX_DEPTH).
const MAX_DEPTH: usize = 256;
/// The size limit in bytes (src/common/jsonb.rs MAX_BYTES).
const MAX_BYTES: usize = 64 * 1024 * 1024;

fn start_time() -> String {
    let mut db = crate::connect_as("postgres");
    db.query_one("SELECT pg_catalog.pg_postmaster_start_time()::text", &[]).expect("start time").get(0)
}

fn deep_array(n: usize) -> String {
    format!("(pg_catalog.repeat('[', {n}) || '1' || pg_catalog.repeat(']', {n}))::jsonb")
}

fn deep_object(n: usize) -> String {
    format!(r#"(pg_catalog.repeat('{{"a": ', {n}) || '1' || pg_catalog.repeat('}}', {n}))::jsonb"#)
}

/// Run `sql` as Alice through PostgREST's path; return the SQLSTATE it failed with.
fn as_alice(sql: &str) -> Result<(), String> {
    let mut client = crate::connect_as("authenticator");
    as_role(&mut client, "authenticated", crate::ALICE_CLAIMS, |tx| tx.batch_execute(sql)).map_err(|e| sqlstate(&e))
}

/// The attack fails with `expected`, and the server did not go down.
fn refused(sql: &str, expected: &str) {
    crate::sec_setup();
    let before = start_time();
    let mut witness = crate::witness();
    assert_eq!(as_alice(sql), Err(expected.to_string()), "{sql:.400}");
    assert!(crate::survived(&mut witness), "a backend crashed (every other one was terminated) after {sql:.400}");
    assert_eq!(start_time(), before, "the postmaster restarted after {sql:.400}");
}

/// The attack of the report: copying `/a` into `/a/a` nests one level per operation; a
/// 2 000-operation patch (~66 kB) recursed until SIGSEGV.
#[test]
fn nested_copy_patch_is_refused_with_54001() {
    let patch = r#"(SELECT pg_catalog.jsonb_agg('{"op": "copy", "from": "/a", "path": "/a/a"}'::jsonb) FROM pg_catalog.generate_series(1, 2000))"#;
    refused(&format!(r#"SELECT steward.jsonb_patch('{{"a": {{}}}}', {patch})"#), "54001");
    // The same through ever deeper `add` paths.
    let adds = "(SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('op', 'add', 'path', '/' || pg_catalog.repeat('a/', g - 1) || 'a', 'value', '{}'::jsonb)) FROM pg_catalog.generate_series(1, 1500) g)";
    refused(&format!("SELECT steward.jsonb_patch('{{}}', {adds})"), "54001");
}

/// The doubling patch (copy the document into itself again and again) made the Rust
/// allocator abort the backend; now the copy that would pass the size limit is refused.
#[test]
fn doubling_patch_is_refused_with_54000() {
    let patch = "(SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('op', 'copy', 'from', '', 'path', '/k' || g)) FROM pg_catalog.generate_series(1, 64) g)";
    refused(&format!("SELECT steward.jsonb_patch(pg_catalog.jsonb_build_object('seed', pg_catalog.repeat('x', 4096)), {patch})"), "54000");
    let wide = r#"(SELECT pg_catalog.jsonb_agg('{"op": "test", "path": "", "value": {}}'::jsonb) FROM pg_catalog.generate_series(1, 100001))"#;
    refused(&format!("SELECT steward.jsonb_patch('{{}}', {wide})"), "54000");
}

/// Deep documents into every jsonb function a signed-in user may call.
#[test]
fn deep_documents_are_refused_with_54001() {
    // Beyond PostgreSQL's own parser (it stops at its stack limit with the same SQLSTATE).
    refused(&format!("SELECT steward.jsonb_patch({}, '[]')", deep_array(100_000)), "54001");
    let n = MAX_DEPTH + 100;
    for doc in [deep_array(n), deep_object(n)] {
        for sql in [
            format!("SELECT steward.jsonb_patch({doc}, '[]')"),
            format!("SELECT steward.jsonb_merge_patch('{{}}', {doc})"),
            format!("SELECT steward.jsonb_diff_patch({doc}, '{{}}')"),
            format!("SELECT steward.validate_ai_config({doc})"),
            format!("SELECT steward.validate_user_preferences({doc})"),
        ] {
            refused(&sql, "54001");
        }
    }
    // A deep value only on one side is copied into the result as it is (config_diff does not
    // walk it): no recursion, so it may succeed; it must never crash.
    let mut witness = crate::witness();
    let one_sided = as_alice(&format!("SELECT public.config_diff(pg_catalog.jsonb_build_object('x', {}), '{{}}')", deep_object(n)));
    assert!(matches!(&one_sided, Ok(())) || one_sided == Err("54001".to_string()), "{one_sided:?}");
    assert!(crate::survived(&mut witness));
    // Deep on both sides, different at the bottom: config_diff walks down to the limit.
    let other = format!(r#"(pg_catalog.repeat('{{"a": ', {n}) || '2' || pg_catalog.repeat('}}', {n}))::jsonb"#);
    refused(&format!("SELECT public.config_diff({}, {other})", deep_object(n)), "54001");
}

/// A deep document written as Alice's own preferences: the row guard's validation refuses
/// it with 54001 and nothing is stored.
#[test]
fn deep_preferences_are_not_stored() {
    crate::sec_setup();
    let before = start_time();
    let sql = format!(
        "INSERT INTO public.user_preferences (user_id, preferences) VALUES ('{}', pg_catalog.jsonb_build_object('theme', {}))",
        crate::ALICE,
        deep_object(MAX_DEPTH + 100)
    );
    assert_eq!(as_alice(&sql), Err("54001".to_string()));
    let mut db = crate::connect_as("postgres");
    let rows: i64 = db
        .query_one("SELECT count(*) FROM public.user_preferences WHERE user_id = $1::text::uuid", &[&crate::ALICE])
        .expect("count")
        .get(0);
    assert_eq!(rows, 0, "nothing was stored");
    assert_eq!(start_time(), before);
}

/// Large documents and quadratic results: refused with 54000 before the memory is taken.
#[test]
fn large_documents_and_results_are_refused_with_54000() {
    refused(
        &format!("SELECT steward.jsonb_merge_patch(pg_catalog.jsonb_build_array(pg_catalog.repeat('x', {})), '{{}}')", MAX_BYTES + 1024),
        "54000",
    );
    // 900 levels of 200-character keys, a changed leaf on each: ~80 MB of paths from 180 kB.
    let key = "k".repeat(4000);
    let doc = |v: u8| format!(r#"(pg_catalog.repeat('{{"v": {v}, "{key}": ', 200) || '1' || pg_catalog.repeat('}}', 200))::jsonb"#);
    refused(&format!("SELECT public.config_diff({}, {})", doc(1), doc(2)), "54000");
    refused(&format!("SELECT steward.jsonb_diff_patch({}, {})", doc(1), doc(2)), "54000");
}

/// Legitimate deep-ish and wide documents still work for the same user.
#[test]
fn documents_within_the_limits_work() {
    crate::sec_setup();
    let deep = deep_object(MAX_DEPTH - 50);
    assert_eq!(as_alice(&format!("SELECT steward.jsonb_patch({deep}, '[]'), steward.jsonb_merge_patch({deep}, {deep})")), Ok(()));
    let wide = "(SELECT pg_catalog.jsonb_object_agg('k' || g, g) FROM pg_catalog.generate_series(1, 100000) g)";
    assert_eq!(as_alice(&format!("SELECT public.config_diff('{{}}', {wide}), steward.jsonb_diff_patch('{{}}', {wide})")), Ok(()));
}
