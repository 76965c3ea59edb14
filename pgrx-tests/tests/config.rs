//! Configuration as the web app reaches it: end users read their own effective configuration
//! through the seed name, row-level security keeps them to their own rows, the validator
//! guards every write path.

mod common;

use std::sync::OnceLock;

use common::*;

const ME: &str = "6f1d2c1e-1111-4a4a-9999-000000000001";
const OTHER: &str = "6f1d2c1e-1111-4a4a-9999-000000000002";
const ORG: &str = "0a000000-0000-4000-8000-00000000000a";

fn data() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        setup();
        let mut db = connect(DB, "postgres");
        db.batch_execute(&format!(
            "SELECT steward.install_train_schema('public');
             INSERT INTO public.organizations (id, name) VALUES ('{ORG}', 'Acme');
             INSERT INTO public.organization_members (organization_id, user_id) VALUES ('{ORG}', '{ME}');
             INSERT INTO public.ai_configurations (organization_id, config_name, configuration, priority)
             VALUES ('{ORG}', 'org', '{{\"model\": {{\"temperature\": 0.3}}, \"costBudget\": {{\"dailyBudget\": 10}}}}', 1);
             INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority)
             VALUES ('{ME}', 'mine', '{{\"model\": {{\"topP\": 0.5}}}}', 2),
                    ('{OTHER}', 'theirs', '{{\"model\": {{\"topP\": 0.1}}}}', 2);"
        ))
        .expect("data");
    });
}

fn user_claims(sub: &str) -> String {
    format!(r#"{{"sub": "{sub}", "role": "authenticated"}}"#)
}

#[test]
fn a_user_reads_their_own_effective_configuration_only() {
    data();
    let mut c = connect(DB, "authenticator");
    let (temperature, top_p, daily): (String, String, String) = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        let r = tx.query_one(
            "SELECT c #>> '{model,temperature}', c #>> '{model,topP}', c #>> '{costBudget,dailyBudget}'
               FROM public.get_effective_ai_config(p_user_id := $1::text::uuid) c",
            &[&ME],
        )?;
        Ok((r.get(0), r.get(1), r.get(2)))
    })
    .expect("own config");
    assert_eq!((temperature.as_str(), top_p.as_str(), daily.as_str()), ("0.3", "0.5", "10"));

    let err = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        tx.query("SELECT public.get_effective_ai_config(p_user_id := $1::text::uuid)", &[&OTHER]).map(|_| ())
    })
    .expect_err("another user's configuration");
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let err = as_role(&mut c, "anon", ANON_CLAIMS, |tx| {
        tx.query("SELECT public.get_effective_ai_config(p_user_id := $1::text::uuid)", &[&ME]).map(|_| ())
    })
    .expect_err("anon");
    assert_eq!(sqlstate(&err), "42501", "{err}");

    // The service role reads anyone's.
    let top_p: String = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{model,topP}'", &[&OTHER])?.get(0))
    })
    .expect("service role");
    assert_eq!(top_p, "0.1");
}

#[test]
fn row_level_security_and_the_validator_guard_the_tables() {
    data();
    let mut c = connect(DB, "authenticator");
    // Own rows and the organisation's, never another user's.
    let names: Vec<String> = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        Ok(tx
            .query("SELECT config_name FROM public.ai_configurations ORDER BY config_name", &[])?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    })
    .expect("select");
    assert_eq!(names, vec!["mine".to_string(), "org".to_string()]);
    // Writing a row for someone else is refused by the policy.
    let err = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        tx.execute("INSERT INTO public.ai_configurations (user_id, config_name) VALUES ($1::text::uuid, 'x')", &[&OTHER])
            .map(|_| ())
    })
    .expect_err("foreign row");
    assert_eq!(sqlstate(&err), "42501", "{err}");
    // An invalid document through the table (supabase.from(...).insert) is 22023 with DETAIL.
    let err = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        tx.execute(
            "INSERT INTO public.ai_configurations (user_id, config_name, configuration) VALUES ($1::text::uuid, 'hot', '{\"model\": {\"temperature\": 3.0}}')",
            &[&ME],
        )
        .map(|_| ())
    })
    .expect_err("invalid document");
    assert_eq!(sqlstate(&err), "22023", "{err}");
    let detail = err.as_db_error().and_then(|e| e.detail()).unwrap_or_default().to_string();
    assert!(detail.contains("model.temperature must be a number between 0 and 1"), "{detail}");
    // Valid own write passes, and the validators are callable by end users.
    let problems: Vec<String> = as_role(&mut c, "authenticated", &user_claims(ME), |tx| {
        tx.execute("UPDATE public.ai_configurations SET configuration = '{\"model\": {\"topP\": 0.4}}' WHERE config_name = 'mine'", &[])?;
        Ok(tx.query_one("SELECT public.validate_ai_config('{\"model\": {\"maxTokens\": 9999}}')", &[])?.get(0))
    })
    .expect("own update");
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn writes_for_the_calling_user_merge_validate_and_mask_keys() {
    data();
    let mut c = connect(DB, "authenticator");
    const WRITER: &str = "6f1d2c1e-1111-4a4a-9999-000000000003";
    let claims = user_claims(WRITER);
    let (theme, email, toast, masked, version, effective_key): (String, String, String, String, String, String) =
        as_role(&mut c, "authenticated", &claims, |tx| {
            tx.query_one("SELECT public.update_user_preferences(p_updates := '{\"theme\": \"dark\", \"notifications\": {\"email\": true}}')", &[])?;
            let r = tx.query_one(
                "SELECT p ->> 'theme', p #>> '{notifications,email}', p #>> '{notifications,toast}'
                   FROM public.update_user_preferences(p_updates := '{\"notifications\": {\"toast\": false}}') p",
                &[],
            )?;
            tx.query_one("SELECT public.upsert_ai_config(p_config_name := 'main', p_configuration := '{\"model\": {\"temperature\": 0.2}}')", &[])?;
            let k = tx.query_one("SELECT k ->> 'primaryKey', k ->> 'keyVersion' FROM public.rotate_api_key('main', 'sk-ant-secret-key-9876') k", &[])?;
            let e: String = tx
                .query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{apiKeys,primaryKey}'", &[&WRITER])?
                .get(0);
            // An invalid partial update is refused with every problem and stores nothing.
            let err = tx.query_one("SELECT public.update_user_preferences('{\"rowsPerPage\": 7}')", &[]).err();
            assert_eq!(err.as_ref().map(sqlstate).as_deref(), Some("22023"));
            Ok((r.get(0), r.get(1), r.get(2), k.get(0), k.get(1), e))
        })
        .expect("writes");
    assert_eq!((theme.as_str(), email.as_str(), toast.as_str()), ("dark", "true", "false"));
    assert_eq!(masked, "••••9876");
    assert_eq!(version, "2");
    assert_eq!(effective_key, "••••9876", "end users never see keys in clear");

    // The key never rests in the documents: the user's own row, the audit log and
    // steward_admin see a token (the mask and a hash); the service role gets the key in clear
    // from the effective configuration, through the vault it alone may read.
    let mut su = connect(DB, "postgres");
    let (own_row, in_log, admin_view, admin_vault, clear, secondary) = {
        let mut tx = su.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
        tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims]).expect("claims");
        tx.query_one("SELECT public.upsert_ai_config('keys', '{}', 100)", &[]).expect("upsert");
        tx.query_one("SELECT public.rotate_api_key('keys', 'sk-ant-visible-1234')", &[]).expect("rotate");
        tx.query_one("SELECT public.rotate_api_key('keys', 'sk-ant-second-5678')", &[]).expect("rotate again");
        let own_row: String = tx
            .query_one(
                "SELECT configuration #>> '{apiKeys,primaryKey}' FROM public.ai_configurations WHERE user_id = $1::text::uuid AND config_name = 'keys'",
                &[&WRITER],
            )
            .expect("own row")
            .get(0);
        tx.batch_execute("RESET ROLE").expect("reset");
        let in_log: i64 = tx
            .query_one("SELECT count(*) FROM steward.configuration_audit_log WHERE new_values::text ~ 'sk-ant-' OR old_values::text ~ 'sk-ant-'", &[])
            .expect("log")
            .get(0);
        tx.batch_execute("SET LOCAL ROLE steward_admin").expect("admin");
        let admin_view: String = tx
            .query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{apiKeys,primaryKey}'", &[&WRITER])
            .expect("admin effective")
            .get(0);
        let admin_vault = {
            let mut probe = tx.savepoint("vault_probe").expect("savepoint");
            let denied = probe.query_one("SELECT count(*) FROM steward.api_key_vault", &[]).err().map(|e| sqlstate(&e));
            probe.rollback().expect("rollback to savepoint");
            denied
        };
        tx.batch_execute("RESET ROLE; SET LOCAL ROLE service_role").expect("service");
        let r = tx
            .query_one(
                "SELECT e #>> '{apiKeys,primaryKey}', e #>> '{apiKeys,secondaryKey}' FROM public.get_effective_ai_config($1::text::uuid) e",
                &[&WRITER],
            )
            .expect("service effective");
        // Rolling back the second rotation restores the document before it, token and all:
        // the effective key is the first one again.
        tx.batch_execute("RESET ROLE").expect("reset");
        tx.query_one(
            "SELECT steward.rollback(l.id, 'back to the first key')
               FROM steward.configuration_audit_log l JOIN public.ai_configurations c ON c.id = l.config_id
              WHERE c.user_id = $1::text::uuid AND c.config_name = 'keys'
              ORDER BY l.seq DESC LIMIT 1",
            &[&WRITER],
        )
        .expect("rollback the second rotation");
        tx.batch_execute("SET LOCAL ROLE service_role").expect("service again");
        let restored: String = tx
            .query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{apiKeys,primaryKey}'", &[&WRITER])
            .expect("restored")
            .get(0);
        assert_eq!(restored, "sk-ant-visible-1234");
        tx.rollback().expect("rollback");
        (own_row, in_log, admin_view, admin_vault, r.get::<_, String>(0), r.get::<_, String>(1))
    };
    assert!(own_row.starts_with("••••5678#") && !own_row.contains("sk-ant"), "own row holds {own_row}");
    assert_eq!(in_log, 0, "no key in clear in the audit log");
    assert_eq!(admin_view, "••••5678");
    assert_eq!(admin_vault.as_deref(), Some("42501"));
    assert_eq!((clear.as_str(), secondary.as_str()), ("sk-ant-second-5678", "sk-ant-visible-1234"));
}

/// Answers are kept per backend (src/config/cache.rs): a change another session commits —
/// to the user's row or a membership — shows in the very next call of a connection that
/// has the old answer, inside an open transaction too; a rolled-back change never shows.
#[test]
fn another_sessions_committed_change_shows_in_the_next_call() {
    data();
    let user = "6f1d2c1e-1111-4a4a-9999-0000000000c5";
    let org = "0a000000-0000-4000-8000-0000000000c5";
    let mut writer = connect(DB, "postgres");
    writer
        .batch_execute(&format!(
            "INSERT INTO public.organizations (id, name) VALUES ('{org}', 'Cache Co');
             INSERT INTO public.ai_configurations (organization_id, config_name, configuration)
             VALUES ('{org}', 'org', '{{\"model\": {{\"temperature\": 0.35}}}}');
             INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority)
             VALUES ('{user}', 'cached', '{{\"model\": {{\"topP\": 0.25}}}}', 1);"
        ))
        .expect("data");
    let mut reader = connect(DB, "authenticator");
    let read = |c: &mut postgres::Client, path: &str| -> String {
        as_role(c, "authenticated", &user_claims(user), |tx| {
            tx.query_one(&format!("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{path}'"), &[&user])
                .map(|r| r.get(0))
        })
        .expect("read")
    };
    assert_eq!(read(&mut reader, "{model,topP}"), "0.25");
    assert_eq!(read(&mut reader, "{model,topP}"), "0.25");
    let temperature_before = read(&mut reader, "{model,temperature}");

    writer
        .execute(
            "UPDATE public.ai_configurations SET configuration = '{\"model\": {\"topP\": 0.35}}' WHERE user_id = $1::text::uuid",
            &[&user],
        )
        .expect("update");
    assert_eq!(read(&mut reader, "{model,topP}"), "0.35");

    // Inside the reader's open transaction (READ COMMITTED: each statement sees what was
    // committed before it).
    let mut admin = connect(DB, "postgres");
    let mut tx = admin.transaction().expect("tx");
    let in_tx = |tx: &mut postgres::Transaction<'_>| -> String {
        tx.query_one("SELECT steward.effective_ai_config($1::text::uuid) #>> '{model,topP}'", &[&user])
            .expect("read in tx")
            .get(0)
    };
    assert_eq!(in_tx(&mut tx), "0.35");
    assert_eq!(in_tx(&mut tx), "0.35");
    writer
        .execute(
            "UPDATE public.ai_configurations SET configuration = '{\"model\": {\"topP\": 0.45}}' WHERE user_id = $1::text::uuid",
            &[&user],
        )
        .expect("update");
    assert_eq!(in_tx(&mut tx), "0.45");
    tx.commit().expect("commit");

    // A change that is rolled back never shows.
    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE public.ai_configurations SET configuration = '{{\"model\": {{\"topP\": 0.55}}}}' WHERE user_id = '{user}'; ROLLBACK;"
        ))
        .expect("rolled back");
    assert_eq!(read(&mut reader, "{model,topP}"), "0.45");

    // Joining an organisation brings its layer in; leaving takes it out.
    writer
        .execute("INSERT INTO public.organization_members (organization_id, user_id) VALUES ($1::text::uuid, $2::text::uuid)", &[&org, &user])
        .expect("join");
    assert_eq!(read(&mut reader, "{model,temperature}"), "0.35");
    writer
        .execute("DELETE FROM public.organization_members WHERE user_id = $1::text::uuid", &[&user])
        .expect("leave");
    assert_eq!(read(&mut reader, "{model,temperature}"), temperature_before);
}
