//! The audit trail and rollback as the web app and its users meet them: changes made through
//! PostgREST-style requests are recorded once and attributed, nobody can rewrite the log,
//! users see and roll back only their own configurations, history exports as CSV.

mod common;

use std::sync::{Mutex, MutexGuard, OnceLock};

use common::*;
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
const CAROL: &str = "ca201000-0000-4000-8000-000000000003";
const DAVE: &str = "da7e0000-0000-4000-8000-000000000004";

/// The rate-limit test changes a global setting: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn data() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        setup();
        let mut db = connect(DB, "postgres");
        db.batch_execute(
            "SELECT steward.install_train_schema('public');
             SELECT steward.install_rpc_facade('public');
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_admin_login') THEN
                 CREATE ROLE steward_admin_login LOGIN IN ROLE steward_admin;
               END IF;
             END $$;",
        )
        .expect("data");
    });
}

fn user(sub: &str) -> String {
    format!(r#"{{"sub": "{sub}", "role": "authenticated"}}"#)
}

/// Run `sql` for `sub` as PostgREST would and commit (as_role rolls back).
fn commit_as_user(c: &mut Client, sub: &str, sql: &str) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.batch_execute("SET LOCAL ROLE authenticated")?;
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&user(sub)])?;
    tx.execute(
        "SELECT set_config('request.headers', $1, true)",
        &[&r#"{"user-agent": "supabase-js/2", "x-forwarded-for": "203.0.113.7"}"#],
    )?;
    tx.batch_execute(sql)?;
    tx.commit()
}

#[test]
fn changes_through_postgrest_are_recorded_once_and_attributed() {
    let _s = serial();
    data();
    let mut c = connect(DB, "authenticator");
    commit_as_user(
        &mut c,
        ALICE,
        "SELECT public.upsert_ai_config(p_config_name := 'main', p_configuration := '{\"model\": {\"temperature\": 0.4}}');
         SELECT public.upsert_ai_config(p_config_name := 'main', p_configuration := '{\"model\": {\"temperature\": 0.6}}',
                                        p_reason := 'warmer, asked by Alice');
         SELECT public.upsert_ai_config(p_config_name := 'main', p_configuration := '{\"model\": {\"temperature\": 0.6}}');",
    )
    .expect("alice's writes");
    let mut admin = connect(DB, "postgres");
    let rows = admin
        .query(
            "SELECT l.action, l.changed_by::text, l.client_ip::text, l.user_agent, l.change_reason
               FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
              WHERE c.user_id = $1::text::uuid AND c.config_name = 'main' ORDER BY l.seq",
            &[&ALICE],
        )
        .expect("entries");
    // The third write changed nothing: two entries.
    assert_eq!(rows.len(), 2, "{rows:?}");
    let first: (String, Option<String>, Option<String>, Option<String>, Option<String>) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2), rows[0].get(3), rows[0].get(4));
    assert_eq!(first.0, "created");
    assert_eq!(first.1.as_deref(), Some(ALICE));
    assert_eq!(first.2.as_deref(), Some("203.0.113.7/32"));
    assert_eq!(first.3.as_deref(), Some("supabase-js/2"));
    let reason: Option<String> = rows[1].get(4);
    assert_eq!(reason.as_deref(), Some("warmer, asked by Alice"));

    // The user sees their own entries (seed table name, RLS), another user none of them, anon nothing.
    let seen = |c: &mut Client, role: &str, claims: &str| {
        as_role(c, role, claims, |tx| {
            Ok::<i64, _>(tx.query_one("SELECT count(*) FROM public.configuration_audit_log WHERE changed_by = $1::text::uuid", &[&ALICE])?.get(0))
        })
    };
    assert_eq!(seen(&mut c, "authenticated", &user(ALICE)).expect("alice"), 2);
    assert_eq!(seen(&mut c, "authenticated", &user(BOB)).expect("bob"), 0);
    assert!(seen(&mut c, "service_role", SERVICE_CLAIMS).expect("service") >= 2);
    let err = seen(&mut c, "anon", ANON_CLAIMS).expect_err("anon");
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[test]
fn nobody_can_rewrite_the_log() {
    let _s = serial();
    data();
    let mut c = connect(DB, "authenticator");
    commit_as_user(&mut c, CAROL, "SELECT public.upsert_ai_config(p_config_name := 'c', p_configuration := '{}')").expect("carol");
    let statements = [
        "INSERT INTO steward.configuration_audit_log SELECT * FROM steward.configuration_audit_log LIMIT 1",
        "UPDATE steward.configuration_audit_log SET change_reason = 'forged'",
        "DELETE FROM steward.configuration_audit_log",
        // The storage under the view refuses the same way.
        "INSERT INTO steward.audit_entries SELECT * FROM steward.audit_entries LIMIT 1",
        "UPDATE steward.audit_entries SET change_reason = 'forged'",
        "DELETE FROM steward.audit_entries",
        "TRUNCATE steward.audit_entries",
    ];
    // The log clients read is a view, which PostgreSQL itself refuses to truncate.
    let truncate_view = "TRUNCATE steward.configuration_audit_log";
    for (role, claims) in [("authenticated", user(CAROL)), ("service_role", SERVICE_CLAIMS.to_string())] {
        for sql in statements {
            let err = as_role(&mut c, role, &claims, |tx| tx.batch_execute(sql)).expect_err(sql);
            assert_eq!(sqlstate(&err), "42501", "{role}: {sql}: {err}");
        }
        let err = as_role(&mut c, role, &claims, |tx| tx.batch_execute(truncate_view)).expect_err("truncate view");
        assert_eq!(sqlstate(&err), "42809", "{role}: {err}");
    }
    // An administrator and the owner (a superuser) are refused too.
    for login in ["steward_admin_login", "postgres"] {
        let mut db = connect(DB, login);
        for sql in statements {
            let err = db.batch_execute(sql).expect_err(sql);
            assert_eq!(sqlstate(&err), "42501", "{login}: {sql}: {err}");
        }
        let err = db.batch_execute(truncate_view).expect_err("truncate view");
        assert_eq!(sqlstate(&err), "42809", "{login}: {err}");
    }
    let mut admin = connect(DB, "postgres");
    let ok: String = admin.query_one("SELECT steward.audit_verify() ->> 'ok'", &[]).expect("verify").get(0);
    assert_eq!(ok, "true");
}

#[test]
fn end_users_are_rate_limited_services_are_not() {
    let _s = serial();
    data();
    let mut admin = connect(DB, "postgres");
    admin.batch_execute("SELECT steward.set_setting('auditRateLimitPerMinute', '3')").expect("limit");
    let mut c = connect(DB, "authenticator");
    const FAST: &str = "fa570000-0000-4000-8000-000000000004";
    let mut outcome = Vec::new();
    for i in 0..4 {
        let r = commit_as_user(
            &mut c,
            FAST,
            &format!("SELECT public.upsert_ai_config(p_config_name := 'fast', p_configuration := '{{\"model\": {{\"topP\": 0.{i}1}}}}')"),
        );
        outcome.push(r.err().map(|e| sqlstate(&e)));
    }
    // A service job writing the same user's rows is not limited.
    let service = admin.execute(
        "UPDATE public.ai_configurations SET configuration = '{\"model\": {\"topP\": 0.99}}' WHERE user_id = $1::text::uuid",
        &[&FAST],
    );
    admin.batch_execute("SELECT steward.reset_setting('auditRateLimitPerMinute')").expect("reset");
    assert_eq!(outcome, vec![None, None, None, Some("54000".to_string())]);
    assert_eq!(service.expect("service write"), 1);
}

#[test]
fn every_change_is_announced_without_its_contents() {
    let _s = serial();
    data();
    let mut listener = connect(DB, "postgres");
    listener.batch_execute("LISTEN steward_config_changed").expect("listen");
    let mut c = connect(DB, "authenticator");
    commit_as_user(&mut c, ALICE, "SELECT public.upsert_ai_config(p_config_name := 'announced', p_configuration := '{\"model\": {\"topP\": 0.2}}')")
        .expect("write");
    let mut notes = listener.notifications();
    let note = notes
        .timeout_iter(std::time::Duration::from_secs(5))
        .next()
        .expect("read notifications")
        .expect("one notification");
    let payload: serde_json::Value = serde_json::from_str(note.payload()).expect("JSON payload");
    assert_eq!(payload["config_type"], "ai_config");
    assert_eq!(payload["operation"], "created");
    assert!(payload["audit_id"].as_str().is_some_and(|s| s.len() == 36), "{payload}");
    assert!(payload["config_id"].as_str().is_some_and(|s| s.len() == 36), "{payload}");
    assert!(!note.payload().contains("topP"), "document contents leaked: {payload}");
}

#[test]
fn concurrent_writers_leave_one_entry_per_change_and_a_verifying_chain() {
    let _s = serial();
    data();
    let mut admin = connect(DB, "postgres");
    admin
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS public.busy (id uuid PRIMARY KEY, doc jsonb NOT NULL, updated_at timestamptz);
             TRUNCATE public.busy;
             SELECT steward.audit_enable('public.busy', 'busy', 'doc');
             INSERT INTO public.busy (id, doc) SELECT md5('busy' || g)::uuid, '{\"n\": 0}' FROM generate_series(1, 4) g;",
        )
        .expect("busy table");
    const CLIENTS: i64 = 8;
    const UPDATES: i64 = 1000;
    let before: i64 = admin
        .query_one("SELECT count(*) FROM steward.configuration_audit_log WHERE config_type = 'busy'", &[])
        .expect("count")
        .get(0);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut db = connect(DB, "postgres");
                let update = db
                    .prepare("UPDATE public.busy SET doc = jsonb_build_object('n', (doc ->> 'n')::int + 1, 'by', $1::int) WHERE id = md5('busy' || $2::int)::uuid")
                    .expect("prepare");
                for i in 0..UPDATES {
                    // 4 configurations, 8 writers: every configuration is contended.
                    let target = (i % 4 + 1) as i32;
                    db.execute(&update, &[&(w as i32), &target]).expect("update");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("writer");
    }
    let (entries, total_n): (i64, i64) = {
        let r = admin
            .query_one(
                "SELECT (SELECT count(*) FROM steward.configuration_audit_log WHERE config_type = 'busy'),
                        (SELECT sum((doc ->> 'n')::bigint) FROM public.busy)::bigint",
                &[],
            )
            .expect("counts");
        (r.get(0), r.get(1))
    };
    assert_eq!(total_n, CLIENTS * UPDATES, "lost updates");
    assert_eq!(entries - before, CLIENTS * UPDATES, "one entry per change");
    let v: serde_json::Value = serde_json::from_str(
        &admin.query_one("SELECT steward.audit_verify()::text", &[]).expect("verify").get::<_, String>(0),
    )
    .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    // Each chain is gapless: 1..n per configuration.
    let gaps: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT config_id, max(seq) - count(*) AS gap FROM steward.configuration_audit_log
                                   WHERE config_type = 'busy' GROUP BY 1) g WHERE gap <> 0",
            &[],
        )
        .expect("gaps")
        .get(0);
    assert_eq!(gaps, 0);
}

#[test]
fn users_roll_back_their_own_configuration_only() {
    let _s = serial();
    data();
    let mut c = connect(DB, "authenticator");
    commit_as_user(
        &mut c,
        BOB,
        "SELECT public.upsert_ai_config(p_config_name := 'bob', p_configuration := '{\"model\": {\"temperature\": 0.1}}');
         SELECT public.upsert_ai_config(p_config_name := 'bob', p_configuration := '{\"model\": {\"temperature\": 0.9}}', p_reason := 'too cold');",
    )
    .expect("bob's writes");
    let mut admin = connect(DB, "postgres");
    let target: String = admin
        .query_one(
            "SELECT l.id::text FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
              WHERE c.config_name = 'bob' ORDER BY l.seq DESC LIMIT 1",
            &[],
        )
        .expect("entry")
        .get(0);

    // Another user may not roll it back; anon may not call it at all.
    let err = as_role(&mut c, "authenticated", &user(ALICE), |tx| {
        tx.query_one("SELECT public.rollback_configuration(audit_id := $1::text::uuid)", &[&target]).map(|_| ())
    })
    .expect_err("alice rolls back bob");
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let err = as_role(&mut c, "anon", ANON_CLAIMS, |tx| {
        tx.query_one("SELECT public.rollback_preview(audit_id := $1::text::uuid)", &[&target]).map(|_| ())
    })
    .expect_err("anon");
    assert_eq!(sqlstate(&err), "42501", "{err}");

    // Bob previews; a change lands in between; his rollback with the previewed version is 40001.
    let expected: String = as_role(&mut c, "authenticated", &user(BOB), |tx| {
        Ok(tx.query_one("SELECT public.rollback_preview(audit_id := $1::text::uuid) ->> 'currentVersionId'", &[&target])?.get(0))
    })
    .expect("preview");
    commit_as_user(&mut c, BOB, "SELECT public.upsert_ai_config(p_config_name := 'bob', p_configuration := '{\"model\": {\"topP\": 0.3}}')")
        .expect("concurrent change");
    let err = as_role(&mut c, "authenticated", &user(BOB), |tx| {
        tx.query_one(
            "SELECT public.rollback_configuration(audit_id := $1::text::uuid, reason := 'undo', expected_version := $2::text::uuid)",
            &[&target, &expected],
        )
        .map(|_| ())
    })
    .expect_err("stale preview");
    assert_eq!(sqlstate(&err), "40001", "{err}");

    // With a fresh preview it applies, and is itself audited with the reason.
    let mut tx = c.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&user(BOB)]).expect("claims");
    let fresh: String = tx
        .query_one("SELECT public.rollback_preview(audit_id := $1::text::uuid) ->> 'currentVersionId'", &[&target])
        .expect("preview")
        .get(0);
    let new_entry: String = tx
        .query_one(
            "SELECT public.rollback_configuration(audit_id := $1::text::uuid, reason := 'undo', expected_version := $2::text::uuid)::text",
            &[&target, &fresh],
        )
        .expect("rollback")
        .get(0);
    tx.commit().expect("commit");
    let r = admin
        .query_one(
            "SELECT l.change_reason, l.rollback_of::text, l.changed_by::text, c.configuration #>> '{model,temperature}'
               FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
              WHERE l.id = $1::text::uuid",
            &[&new_entry],
        )
        .expect("new entry");
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("undo"));
    assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some(target.as_str()));
    assert_eq!(r.get::<_, Option<String>>(2).as_deref(), Some(BOB));
    assert_eq!(r.get::<_, Option<String>>(3).as_deref(), Some("0.1"));

    // A bulk with one item Bob may not touch applies nothing.
    commit_as_user(&mut c, ALICE, "SELECT public.upsert_ai_config(p_config_name := 'alice-bulk', p_configuration := '{\"model\": {\"topP\": 0.3}}');
                                   SELECT public.upsert_ai_config(p_config_name := 'alice-bulk', p_configuration := '{\"model\": {\"topP\": 0.4}}')")
        .expect("alice");
    let alices: String = admin
        .query_one(
            "SELECT l.id::text FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
              WHERE c.config_name = 'alice-bulk' ORDER BY l.seq DESC LIMIT 1",
            &[],
        )
        .expect("alice entry")
        .get(0);
    let before: String = admin
        .query_one("SELECT configuration::text FROM public.ai_configurations WHERE config_name = 'bob'", &[])
        .expect("bob doc")
        .get(0);
    let err = as_role(&mut c, "authenticated", &user(BOB), |tx| {
        tx.query_one("SELECT public.rollback_bulk(audit_ids := ARRAY[$1::text::uuid, $2::text::uuid])", &[&target, &alices])
            .map(|_| ())
    })
    .expect_err("bulk with a foreign item");
    assert_eq!(sqlstate(&err), "22023", "{err}");
    let detail = err.as_db_error().and_then(|e| e.detail()).unwrap_or_default().to_string();
    assert!(detail.contains(&alices) && detail.contains("42501"), "{detail}");
    let after: String = admin
        .query_one("SELECT configuration::text FROM public.ai_configurations WHERE config_name = 'bob'", &[])
        .expect("bob doc")
        .get(0);
    assert_eq!(before, after, "nothing applied");
}

#[test]
fn history_exports_as_csv_that_parses_back() {
    let _s = serial();
    data();
    let mut c = connect(DB, "authenticator");
    let hostile = "=HYPERLINK(\"http://evil\"), \"quoted\"\nsecond line";
    let mut tx = c.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&user(CAROL)]).expect("claims");
    tx.execute(
        "SELECT public.upsert_ai_config(p_config_name := 'csv', p_configuration := '{\"model\": {\"topP\": 0.7}}', p_reason := $1)",
        &[&hostile],
    )
    .expect("write");
    tx.commit().expect("commit");
    let csv_text: String = as_role(&mut c, "authenticated", &user(CAROL), |tx| {
        Ok(tx.query_one("SELECT public.change_history_csv(filters := '{\"searchText\": \"HYPERLINK\"}')", &[])?.get(0))
    })
    .expect("csv");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header, ["ID", "Config Type", "Config ID", "Changed By", "Changed At", "Change Reason"]);
    let rows: Vec<Vec<String>> = reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 1, "{csv_text}");
    assert_eq!(rows[0][3], CAROL);
    assert_eq!(rows[0][5], format!("'{hostile}"), "formula neutralised, text intact");
    // Bob's history export does not contain Carol's entry.
    let bobs: String = as_role(&mut c, "authenticated", &user(BOB), |tx| {
        Ok(tx.query_one("SELECT public.change_history_csv(filters := '{\"searchText\": \"HYPERLINK\"}')", &[])?.get(0))
    })
    .expect("bob csv");
    assert_eq!(csv::Reader::from_reader(bobs.as_bytes()).records().count(), 0);
}

/// An entry's old_values is stored only when it is not the previous entry's new_values; the
/// log reads the same for everyone who may read the entry, including a reader who may not
/// read the previous entry (here Bob, who changed Dave's configuration through the service).
#[test]
fn a_reader_of_an_entry_gets_its_document_before_even_without_the_previous_entry() {
    let _s = serial();
    data();
    let mut c = connect(DB, "authenticator");
    commit_as_user(&mut c, DAVE, "SELECT public.upsert_ai_config(p_config_name := 'shared-before', p_configuration := '{\"model\": {\"topP\": 0.4}}')")
        .expect("dave");
    let mut db = connect(DB, "postgres");
    let mut tx = db.transaction().expect("tx");
    // Claims count only under an API role (a direct login is attributed to itself).
    tx.batch_execute("SET LOCAL ROLE service_role").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&format!(r#"{{"sub": "{BOB}", "role": "service_role"}}"#)])
        .expect("claims");
    tx.execute(
        "UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topP}', '0.5')
          WHERE config_name = 'shared-before' AND user_id = $1::text::uuid",
        &[&DAVE],
    )
    .expect("service change");
    tx.commit().expect("commit");
    let (id, before, elided): (String, String, bool) = {
        let r = db
            .query_one(
                "SELECT l.id::text, l.old_values::text, e.old_elided
                   FROM steward.configuration_audit_log l JOIN steward.audit_entries e USING (id)
                  WHERE l.changed_by = $1::text::uuid AND l.config_id = (SELECT id FROM public.ai_configurations WHERE config_name = 'shared-before')",
                &[&BOB],
            )
            .expect("entry");
        (r.get(0), r.get(1), r.get(2))
    };
    assert!(elided, "the document before is the previous entry's new_values: not stored twice");
    assert!(before.contains("0.4"), "{before}");
    let (visible, seen_before): (i64, Option<String>) = as_role(&mut c, "authenticated", &user(BOB), |tx| {
        let r = tx.query_one(
            "SELECT (SELECT count(*) FROM public.configuration_audit_log l
                      WHERE l.config_id = (SELECT config_id FROM public.configuration_audit_log WHERE id = $1::text::uuid)),
                    (SELECT old_values::text FROM public.configuration_audit_log WHERE id = $1::text::uuid)",
            &[&id],
        )?;
        Ok((r.get(0), r.get(1)))
    })
    .expect("bob reads");
    assert_eq!(visible, 1, "Bob sees his own entry only, not Dave's before it");
    assert_eq!(seen_before.as_deref(), Some(before.as_str()));
}
