//! Issue #13, audit families (5: old_values across owners, 7: identity, purge and tamper
//! evidence, 8: CSV and audit_enable for admins).  Each test is an attack by a role that is
//! not a superuser (or a superuser tampering behind the log's back, for the checkpoint) and
//! asserts the SQLSTATE of the refusal and that nothing changed.

use crate::common::*;
use crate::{connect_as, sec_setup, ALICE, ALICE_CLAIMS, BOB, BOB_CLAIMS};

use postgres::Client;
use serde_json::Value;

/// Run `sql` in a committed transaction after `SET LOCAL ROLE role` and the claims.
fn commit_as(c: &mut Client, role: &str, claims: &str, sql: &str) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    // `role` is one of the suite's fixed role names, never input.
    tx.batch_execute(&format!("SET LOCAL ROLE {role}"))?;
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims])?;
    tx.batch_execute(sql)?;
    tx.commit()
}

/// A configuration of ALICE's (made by the superuser, then changed once) whose documents
/// carry `marker`; returns its id.
fn alice_config(db: &mut Client, name: &str, marker: &str) -> String {
    let id: String = db
        .query_one(
            "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
             VALUES ($1::text::uuid, $2, jsonb_build_object('model', jsonb_build_object('temperature', 0.5), 'note', $3::text))
             RETURNING id::text",
            &[&ALICE, &name, &format!("{marker}-first")],
        )
        .expect("alice's configuration")
        .get(0);
    db.execute(
        "UPDATE public.ai_configurations SET configuration = jsonb_build_object('model', jsonb_build_object('temperature', 0.6), 'note', $2::text)
          WHERE id = $1::text::uuid",
        &[&id, &format!("{marker}-second")],
    )
    .expect("alice's change");
    id
}

fn entries_of(db: &mut Client, config_id: &str) -> i64 {
    db.query_one("SELECT count(*) FROM steward.audit_entries WHERE config_id = $1::text::uuid", &[&config_id])
        .expect("count")
        .get(0)
}

/// Finding 7: a directly connected admin login sets another user's claims and changes a
/// configuration: the entry names neither Alice as changed_by nor as actor; caller_id() and
/// caller_uuid() ignore the claims.  The same through PostgREST's SET ROLE is attributed.
#[test]
fn a_direct_login_cannot_pose_as_another_user() {
    sec_setup();
    let mut db = connect_as("postgres");
    let cfg = alice_config(&mut db, "sec-audit-identity", "identity");

    let mut admin = connect_as("sec_admin");
    {
        let mut tx = admin.transaction().expect("tx");
        tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&ALICE_CLAIMS]).expect("claims");
        tx.execute("SELECT set_config('request.jwt.claim.sub', $1, true)", &[&ALICE]).expect("legacy claim");
        tx.execute(
            "SELECT set_config('request.headers', $1, true)",
            &[&r#"{"user-agent": "forged", "x-forwarded-for": "203.0.113.66"}"#],
        )
        .expect("headers");
        let (id, uuid): (String, Option<String>) = {
            let r = tx.query_one("SELECT steward.caller_id(), steward.caller_uuid()::text", &[]).expect("caller");
            (r.get(0), r.get(1))
        };
        assert_eq!(id, "sec_admin");
        assert_eq!(uuid, None);
        tx.execute(
            "UPDATE public.ai_configurations SET configuration = configuration || '{\"note\": \"by the admin\"}' WHERE id = $1::text::uuid",
            &[&cfg],
        )
        .expect("admin change");
        tx.commit().expect("commit");
    }
    let r = db
        .query_one(
            "SELECT changed_by::text, actor, host(client_ip), user_agent FROM steward.audit_entries
              WHERE config_id = $1::text::uuid ORDER BY seq DESC LIMIT 1",
            &[&cfg],
        )
        .expect("newest entry");
    assert_eq!(r.get::<_, Option<String>>(0), None, "changed_by must not name Alice");
    assert_eq!(r.get::<_, String>(1), "sec_admin", "actor is the real database role");
    assert_eq!(r.get::<_, Option<String>>(2), None, "a direct session's request headers are not believed");
    assert_eq!(r.get::<_, Option<String>>(3), None);

    // A login that is a member of service_role, connected directly: its own role too.
    let mut service = connect_as("sec_service");
    {
        let mut tx = service.transaction().expect("tx");
        tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&BOB_CLAIMS]).expect("claims");
        let id: String = tx.query_one("SELECT steward.caller_id()", &[]).expect("caller").get(0);
        assert_eq!(id, "sec_service");
        tx.execute(
            "UPDATE public.ai_configurations SET configuration = configuration || '{\"note\": \"by the service login\"}' WHERE id = $1::text::uuid",
            &[&cfg],
        )
        .expect("service login change");
        tx.commit().expect("commit");
    }
    let r = db
        .query_one(
            "SELECT changed_by::text, actor FROM steward.audit_entries WHERE config_id = $1::text::uuid ORDER BY seq DESC LIMIT 1",
            &[&cfg],
        )
        .expect("newest entry");
    assert_eq!(r.get::<_, Option<String>>(0), None);
    assert_eq!(r.get::<_, String>(1), "sec_service");

    // PostgREST's way (login authenticator, SET ROLE to the JWT's role) is attributed.
    let mut api = connect_as("authenticator");
    commit_as(
        &mut api,
        "authenticated",
        ALICE_CLAIMS,
        &format!("UPDATE public.ai_configurations SET configuration = configuration || '{{\"note\": \"by alice\"}}' WHERE id = '{cfg}'"),
    )
    .expect("alice's own change");
    let r = db
        .query_one(
            "SELECT changed_by::text, actor FROM steward.audit_entries WHERE config_id = $1::text::uuid ORDER BY seq DESC LIMIT 1",
            &[&cfg],
        )
        .expect("newest entry");
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some(ALICE));
    assert_eq!(r.get::<_, String>(1), "authenticator/authenticated");
    let ok: String = db
        .query_one("SELECT steward.audit_verify($1::text::uuid) ->> 'ok'", &[&cfg])
        .expect("verify")
        .get(0);
    assert_eq!(ok, "true");
}

/// Finding 7: audit_purge with a cutoff in the future, or younger than the configured
/// minimum (default one day), is refused with 22023 and removes nothing; the minimum cannot
/// be set below one day.
#[test]
fn purge_refuses_future_and_too_short_cutoffs() {
    sec_setup();
    let mut db = connect_as("postgres");
    let cfg = alice_config(&mut db, "sec-audit-purge", "purge");
    let purges = |db: &mut Client| -> i64 { db.query_one("SELECT count(*) FROM steward.audit_purges", &[]).expect("purges").get(0) };
    let (entries_before, purges_before) = (entries_of(&mut db, &cfg), purges(&mut db));
    let mut admin = connect_as("sec_admin");
    for older_than in ["-1 year 361 days", "-5 days", "0", "1 hour", "23 hours 59 minutes"] {
        for dry_run in [false, true] {
            let err = admin
                .query_one("SELECT steward.audit_purge($1::text::interval, $2)", &[&older_than, &dry_run])
                .expect_err(older_than);
            assert_eq!(sqlstate(&err), "22023", "{older_than}: {err}");
            let db_err = err.as_db_error().expect("a server error");
            assert!(db_err.detail().is_some() && db_err.hint().is_some(), "{older_than}: DETAIL and HINT: {err:?}");
        }
    }
    let err = admin
        .query_one("SELECT steward.set_setting('auditPurgeMinimumDays', '0'::jsonb)", &[])
        .expect_err("a minimum below one day");
    assert_eq!(sqlstate(&err), "22023", "{err}");
    assert_eq!(entries_of(&mut db, &cfg), entries_before, "nothing removed");
    assert_eq!(purges(&mut db), purges_before, "no purge recorded");
    let minimum: String = db
        .query_one("SELECT value::text FROM steward.effective_settings WHERE key = 'auditPurgeMinimumDays'", &[])
        .expect("setting")
        .get(0);
    assert_eq!(minimum, "1");
}

fn verify_with(c: &mut Client, checkpoint: &Value) -> Value {
    let text: String = c
        .query_one("SELECT steward.audit_verify($1::text::jsonb)::text", &[&checkpoint.to_string()])
        .expect("verify with checkpoint")
        .get(0);
    serde_json::from_str(&text).expect("json")
}

fn listed(report: &Value, key: &str, config_id: &str) -> Vec<Value> {
    report[key]
        .as_array()
        .map(|a| a.iter().filter(|x| x["config_id"].as_str() == Some(config_id)).cloned().collect())
        .unwrap_or_default()
}

/// Finding 7: after a checkpoint a superuser deletes a whole chain, only the last entry of
/// another, and edits a third entry (recomputing its hash so the chain alone still holds):
/// audit_verify(checkpoint), called by a plain admin, reports each; a chain that grew since is
/// not reported.  Finding 6: the admin audits her own table with audit_enable.
#[test]
fn a_checkpoint_reveals_deleted_chains_truncated_tails_and_edits() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    admin
        .batch_execute(
            "CREATE TABLE sec_admin_schema.audit_cp (id uuid PRIMARY KEY, owner uuid, doc jsonb NOT NULL);
             SELECT steward.audit_enable('sec_admin_schema.audit_cp', 'sec_config', 'doc', 'owner');",
        )
        .expect("an admin audits her own table");
    let ids: Vec<String> = (1..=4).map(|n| format!("5ec0c000-0000-4000-8000-00000000000{n}")).collect();
    for id in &ids {
        admin
            .batch_execute(&format!(
                "INSERT INTO sec_admin_schema.audit_cp VALUES ('{id}', '{ALICE}', '{{\"v\": 1}}');
                 UPDATE sec_admin_schema.audit_cp SET doc = '{{\"v\": 2}}' WHERE id = '{id}';
                 UPDATE sec_admin_schema.audit_cp SET doc = '{{\"v\": 3}}' WHERE id = '{id}';"
            ))
            .expect("changes");
    }
    let checkpoint: Value = {
        let text: String = admin.query_one("SELECT steward.audit_checkpoint()::text", &[]).expect("checkpoint").get(0);
        serde_json::from_str(&text).expect("json")
    };
    assert!(checkpoint["digest"].is_string() && checkpoint["taken_at"].is_string(), "{checkpoint}");
    assert!(checkpoint["entries"].as_i64().unwrap_or(0) >= 12, "{checkpoint}");
    let clean = verify_with(&mut admin, &checkpoint);
    assert_eq!(clean["digest_ok"], Value::Bool(true), "{clean}");
    for id in &ids {
        for key in ["deleted_chains", "truncated", "edited"] {
            assert!(listed(&clean, key, id).is_empty(), "{key} {id}: {clean}");
        }
    }
    // Growth after the checkpoint is fine.
    admin
        .batch_execute(&format!("UPDATE sec_admin_schema.audit_cp SET doc = '{{\"v\": 4}}' WHERE id = '{}'", ids[3]))
        .expect("growth");

    // The superuser tampers with the guard disabled (one transaction: nobody else sees it off).
    let mut root = connect_as("postgres");
    root.batch_execute(&format!(
        "BEGIN;
         ALTER TABLE steward.audit_entries DISABLE TRIGGER USER;
         DELETE FROM steward.audit_entries WHERE config_id = '{c1}';
         DELETE FROM steward.audit_entries WHERE config_id = '{c2}' AND seq = 3;
         UPDATE steward.audit_entries SET change_reason = 'forged',
                hash = steward._audit_hash(prev_hash, id, config_type, config_id, seq, action, changed_by, actor, changed_at,
                                           CASE WHEN old_elided THEN steward._audit_old_values(config_id, seq, prev_hash) ELSE old_values END,
                                           new_values, 'forged', host(client_ip), user_agent)
          WHERE config_id = '{c3}' AND seq = 3;
         ALTER TABLE steward.audit_entries ENABLE TRIGGER USER;
         COMMIT;",
        c1 = ids[0],
        c2 = ids[1],
        c3 = ids[2]
    ))
    .expect("tampering");

    let report = verify_with(&mut admin, &checkpoint);
    assert_eq!(report["ok"], Value::Bool(false), "{report}");
    assert_eq!(listed(&report, "deleted_chains", &ids[0]).len(), 1, "whole chain deleted: {report}");
    let truncated = listed(&report, "truncated", &ids[1]);
    assert_eq!(truncated.len(), 1, "last entry deleted: {report}");
    assert_eq!(truncated[0]["expected_seq"], Value::from(3));
    assert_eq!(truncated[0]["found_seq"], Value::from(2));
    assert!(!listed(&report, "edited", &ids[2]).is_empty(), "re-hashed entry: {report}");
    for key in ["deleted_chains", "truncated", "edited"] {
        assert!(listed(&report, key, &ids[3]).is_empty(), "the grown chain is fine ({key}): {report}");
    }
    // The checkpoint itself cannot be bent into a pass: a forged digest is reported.
    let mut forged = checkpoint.clone();
    forged["heads"] = Value::Array(vec![]);
    let r = verify_with(&mut admin, &forged);
    assert_eq!(r["digest_ok"], Value::Bool(false), "{r}");
    assert_eq!(r["ok"], Value::Bool(false), "{r}");
    let err = admin.query_one("SELECT steward.audit_verify('{\"heads\": 1}'::jsonb)", &[]).expect_err("not a checkpoint");
    assert_eq!(sqlstate(&err), "22023", "{err}");
    // Checkpoints are for administrators.
    let mut user = connect_as("authenticator");
    let err = as_role(&mut user, "authenticated", ALICE_CLAIMS, |tx| tx.query_one("SELECT steward.audit_checkpoint()", &[]).map(|_| ()))
        .expect_err("a user");
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

/// Finding 5: Bob re-inserts (or moves) a configuration row under Alice's configuration id,
/// through the service role and as the table owner: refused (42501), and whatever Bob then
/// reads of the log (the view or the old-values look-up itself) holds none of Alice's
/// documents.
#[test]
fn a_reused_configuration_id_does_not_serve_another_users_documents() {
    sec_setup();
    let mut db = connect_as("postgres");
    let marker = "alice-secret-5ec7";
    let cfg = alice_config(&mut db, "sec-audit-owner", marker);
    db.execute(
        "INSERT INTO public.user_preferences (user_id, preferences) VALUES ($1::text::uuid, '{}') ON CONFLICT (user_id) DO NOTHING",
        &[&BOB],
    )
    .expect("bob's preferences");
    let alice_entries = entries_of(&mut db, &cfg);
    let bob_row = |db: &mut Client| -> String {
        db.query_one("SELECT id::text FROM public.user_preferences WHERE user_id = $1::text::uuid", &[&BOB]).expect("bob row").get(0)
    };

    // Through the service (PostgREST's service_role, Bob's claims): delete and re-insert
    // under Alice's id.
    let mut api = connect_as("authenticator");
    let attempt = commit_as(
        &mut api,
        "service_role",
        BOB_CLAIMS,
        &format!(
            "DELETE FROM public.user_preferences WHERE user_id = '{BOB}';
             INSERT INTO public.user_preferences (id, user_id, preferences) VALUES ('{cfg}', '{BOB}', '{{}}');"
        ),
    );
    match attempt {
        Err(err) => assert_eq!(sqlstate(&err), "42501", "{err}"),
        // Acceptable only if the server chose another id (forced server-side ids).
        Ok(()) => assert_ne!(bob_row(&mut db), cfg, "the re-insert must not keep Alice's id"),
    }
    // Bob himself moves his row onto Alice's id (his policy lets him update his own row).
    let attempt = commit_as(
        &mut api,
        "authenticated",
        BOB_CLAIMS,
        &format!("UPDATE public.user_preferences SET id = '{cfg}' WHERE user_id = '{BOB}'"),
    );
    match attempt {
        Err(err) => assert_eq!(sqlstate(&err), "42501", "{err}"),
        // The row guard keeps ids on UPDATE by an API role: accepted only if the id stayed.
        Ok(()) => assert_ne!(bob_row(&mut db), cfg, "the update must not move Bob's row onto Alice's id"),
    }
    // The table's owner (here the superuser, for Bob) does the same: the trigger refuses it too.
    let err = db
        .batch_execute(&format!(
            "BEGIN;
             DELETE FROM public.user_preferences WHERE user_id = '{BOB}';
             INSERT INTO public.user_preferences (id, user_id, preferences) VALUES ('{cfg}', '{BOB}', '{{}}');
             COMMIT;"
        ))
        .expect_err("owner re-insert under Alice's id");
    assert_eq!(sqlstate(&err), "42501", "{err}");
    db.batch_execute("ROLLBACK").ok();

    // Nothing changed for Alice, and Bob reads none of her documents.
    assert_eq!(entries_of(&mut db, &cfg), alice_entries);
    let leaked: i64 = as_role(&mut api, "authenticated", BOB_CLAIMS, |tx| {
        Ok(tx
            .query_one(
                "SELECT count(*) FROM public.configuration_audit_log l
                  WHERE coalesce(l.old_values::text, '') LIKE $1 OR coalesce(l.new_values::text, '') LIKE $1
                     OR coalesce(steward._audit_old_values(l.config_id, l.seq, l.prev_hash)::text, '') LIKE $1",
                &[&format!("%{marker}%")],
            )?
            .get(0))
    })
    .expect("bob reads the log");
    assert_eq!(leaked, 0, "Bob must not be served Alice's documents");
    let seen: i64 = as_role(&mut api, "authenticated", BOB_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT count(*) FROM public.configuration_audit_log WHERE config_id = $1::text::uuid", &[&cfg])?.get(0))
    })
    .expect("bob reads the log");
    assert_eq!(seen, 0, "Bob sees no entry of Alice's configuration");
    // Alice still reads her own history back in full.
    let alice_reads: i64 = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        Ok(tx
            .query_one(
                "SELECT count(*) FROM public.configuration_audit_log WHERE config_id = $1::text::uuid AND new_values::text LIKE $2",
                &[&cfg, &format!("%{marker}%")],
            )?
            .get(0))
    })
    .expect("alice reads her log");
    assert!(alice_reads >= 2, "{alice_reads}");
}

/// Finding 8/6: a plain steward_admin member may attach and detach the audit trigger only on
/// tables she owns (or holds TRIGGER on); catalogs, information_schema, pg_steward's own
/// tables and other roles' tables are refused with 42501, the registry cannot be forged, and
/// a role that is not an admin cannot call them at all.
#[test]
fn audit_enable_and_disable_respect_table_rights() {
    sec_setup();
    let mut root = connect_as("postgres");
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS sec_open.audit_not_admins (id uuid PRIMARY KEY, doc jsonb);
         GRANT SELECT, INSERT, UPDATE ON sec_open.audit_not_admins TO sec_admin;
         GRANT USAGE ON SCHEMA sec_open TO sec_admin;",
    )
    .expect("a table the admin may read but not trigger");
    // The tables this test attacks (other tests of the suite audit tables of their own meanwhile).
    let snapshot = |root: &mut Client| -> (i64, String) {
        let r = root
            .query_one(
                "WITH t(rel) AS (SELECT unnest(ARRAY['sec_open.audit_not_admins', 'pg_catalog.pg_authid',
                                                     'information_schema.sql_features', 'steward.settings',
                                                     'steward.api_key_vault', 'public.user_preferences',
                                                     'steward.audit_entries', 'sec_admin_schema.audit_mine']::text[]))
                 SELECT (SELECT count(*) FROM pg_trigger g JOIN t ON g.tgrelid = to_regclass(t.rel) WHERE g.tgname LIKE 'steward_audit%'),
                        (SELECT coalesce(string_agg(a.relid::text || ':' || a.config_type || ':' || a.document_column || ':'
                                                    || coalesce(a.owner_column::text, '-') || ':' || a.enabled_by, ',' ORDER BY a.relid::text), '')
                           FROM steward.audited_tables a JOIN t ON a.relid = to_regclass(t.rel))",
                &[],
            )
            .expect("state");
        (r.get(0), r.get(1))
    };
    let before = snapshot(&mut root);

    let mut admin = connect_as("sec_admin");
    for (sql, what) in [
        ("SELECT steward.audit_enable('sec_open.audit_not_admins', 'sec_config', 'doc')", "another role's table"),
        ("SELECT steward.audit_enable('pg_catalog.pg_authid', 'sec_config', 'rolname')", "a system catalog"),
        ("SELECT steward.audit_enable('information_schema.sql_features', 'sec_config', 'feature_id')", "information_schema"),
        ("SELECT steward.audit_enable('steward.settings', 'sec_config', 'value')", "pg_steward's own table"),
        ("SELECT steward.audit_enable('steward.api_key_vault', 'sec_config', 'id')", "the key vault"),
        ("SELECT steward.audit_disable('public.user_preferences')", "disabling the application's audit"),
        ("SELECT steward.audit_disable('steward.audit_entries')", "pg_steward's log"),
        (
            "SELECT steward._audit_register('public.user_preferences', 'ai_config', 'preferences', NULL, 'id')",
            "a forged registration",
        ),
        (
            "SELECT steward._audit_unregister('public.user_preferences')",
            "unregistering a table that keeps its trigger",
        ),
    ] {
        let err = admin.query_one(sql, &[]).map(|_| ()).expect_err(what);
        let state = sqlstate(&err);
        assert!(state == "42501" || state == "55000" || state == "42P01", "{what}: {err}");
        if !sql.contains("._audit_") {
            assert!(state == "42501" || state == "42P01", "{what}: {err}");
        }
    }
    assert_eq!(snapshot(&mut root), before, "no trigger and no registration changed");

    // Her own table: enable and disable work.
    admin
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sec_admin_schema.audit_mine (id uuid PRIMARY KEY, doc jsonb);
             SELECT steward.audit_enable('sec_admin_schema.audit_mine', 'sec_config', 'doc');",
        )
        .expect("enable on her own table");
    let registered: i64 = root
        .query_one("SELECT count(*) FROM steward.audited_tables WHERE relid = 'sec_admin_schema.audit_mine'::regclass AND enabled_by = 'sec_admin'", &[])
        .expect("registered")
        .get(0);
    assert_eq!(registered, 1);
    let off: bool = admin.query_one("SELECT steward.audit_disable('sec_admin_schema.audit_mine')", &[]).expect("disable").get(0);
    assert!(off);
    assert_eq!(snapshot(&mut root), before);

    // Not an admin: not callable.
    let mut creator = connect_as("sec_creator");
    creator.batch_execute("CREATE TABLE IF NOT EXISTS sec_open.audit_creator (id uuid PRIMARY KEY, doc jsonb)").expect("own table");
    let err = creator
        .query_one("SELECT steward.audit_enable('sec_open.audit_creator', 'sec_config', 'doc')", &[])
        .expect_err("not an admin");
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

/// Finding 8: the CSV export neutralises full-width formula starts too.
#[test]
fn csv_neutralises_full_width_formulas() {
    sec_setup();
    let mut api = connect_as("authenticator");
    let hostile = "\u{FF1D}HYPERLINK(\"http://evil\")";
    let mut tx = api.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&ALICE_CLAIMS]).expect("claims");
    tx.execute(
        "SELECT public.upsert_ai_config(p_config_name := 'sec-csv', p_configuration := '{\"model\": {\"topP\": 0.7}}', p_reason := $1)",
        &[&hostile],
    )
    .expect("write");
    tx.commit().expect("commit");
    let csv_text: String = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT public.change_history_csv(filters := '{\"searchText\": \"HYPERLINK(\"}')", &[])?.get(0))
    })
    .expect("csv");
    assert!(csv_text.contains(&format!("'{}", "\u{FF1D}HYPERLINK")), "{csv_text}");
    assert!(!csv_text.contains(&format!(",{}", "\u{FF1D}")) && !csv_text.contains(&format!(",\"{}", "\u{FF1D}")), "{csv_text}");
}
