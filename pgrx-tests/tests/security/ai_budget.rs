//! Organisation configurations, budgets and key rotation (issue #17 items 2, 3, 5), attacked
//! by signed-in users: a plain member cannot write the organisation's configurations (through
//! the functions or the table), cannot claim to be their creator, cannot promote itself, and
//! an admin of one organisation cannot write another's; nobody but admins reads other users'
//! spending or keys through the alert sources; switching enforcement off is an admin's setting
//! (a session variable does nothing); resolving a rotation alert needs the key rotated.

use crate::common::{as_role, sqlstate};
use crate::{connect_as, is_superuser, sec_setup, survived, witness, ALICE, ALICE_CLAIMS, BOB, BOB_CLAIMS};

const ORG_A: &str = "0c000000-0000-4000-8000-00000000000a";
const ORG_B: &str = "0c000000-0000-4000-8000-00000000000b";

fn organisations(root: &mut postgres::Client) {
    root.batch_execute(&format!(
        "INSERT INTO public.organizations (id, name) VALUES ('{ORG_A}', 'A'), ('{ORG_B}', 'B') ON CONFLICT DO NOTHING;
         INSERT INTO public.organization_members (organization_id, user_id, role)
         VALUES ('{ORG_A}', '{ALICE}', 'member'), ('{ORG_A}', '{BOB}', 'admin'), ('{ORG_B}', '{ALICE}', 'admin')
         ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role;
         INSERT INTO public.ai_configurations (organization_id, config_name, configuration, created_by)
         VALUES ('{ORG_A}', 'a-main', '{{\"costBudget\": {{\"dailyBudget\": 1}}, \"apiKeys\": {{\"primaryKey\": \"sk-org-a-0000001\", \"rotationSchedule\": \"monthly\"}}}}', '{BOB}')
         ON CONFLICT (organization_id, config_name) DO NOTHING;"
    ))
    .expect("organisations");
}

#[test]
fn a_plain_member_cannot_write_claim_or_promote() {
    sec_setup();
    let mut root = connect_as("postgres");
    organisations(&mut root);
    let before: String = root
        .query_one("SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM public.ai_configurations c", &[])
        .expect("state")
        .get(0);
    let mut api = connect_as("authenticator");
    let refused = [
        // Alice is a plain member of A: the writers refuse with 42501.
        format!("SELECT steward.upsert_ai_config('a-main', '{{\"costBudget\": {{\"dailyBudget\": 1000000}}}}', NULL, NULL, NULL, '{ORG_A}')"),
        format!("SELECT steward.upsert_ai_config('a-new', '{{}}', NULL, NULL, NULL, '{ORG_A}')"),
        format!("SELECT steward.delete_ai_config('a-main', NULL, '{ORG_A}')"),
        format!("SELECT steward.set_ai_config_active('a-main', false, NULL, '{ORG_A}')"),
        format!("SELECT steward.rotate_api_key('a-main', 'sk-attacker-000001', NULL, '{ORG_A}')"),
        // Straight at the table, claiming to be the creator: row-level security refuses.
        format!("INSERT INTO public.ai_configurations (organization_id, config_name, created_by) VALUES ('{ORG_A}', 'mine-now', '{BOB}')"),
        // Promoting herself, or joining an organisation.
        format!("UPDATE public.organization_members SET role = 'admin' WHERE user_id = '{ALICE}'"),
        format!("INSERT INTO public.organization_members (organization_id, user_id, role) VALUES ('{ORG_A}', '{ALICE}', 'admin')"),
        // Admin of B is nothing in A; an organisation she is not in at all.
        format!("SELECT steward.upsert_ai_config('x', '{{}}', NULL, NULL, NULL, '0c000000-0000-4000-8000-0000000000ff')"),
        // The alert sources and the privileged helpers are not hers to call.
        "SELECT steward._ai_budget_usage()".to_string(),
        "SELECT steward._ai_keys_due()".to_string(),
        "SELECT * FROM steward._ai_keys_due_rows()".to_string(),
        "SELECT steward.set_setting('budgetEnforcement', '0')".to_string(),
        format!("SELECT steward._is_org_member('{ORG_A}', '{BOB}', 'admin')"),
    ];
    for sql in &refused {
        let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.batch_execute(sql)).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    // What row-level security turns into "nothing happened" rather than an error.
    for sql in [
        format!("UPDATE public.ai_configurations SET created_by = '{ALICE}' WHERE organization_id = '{ORG_A}'"),
        format!("DELETE FROM public.ai_configurations WHERE organization_id = '{ORG_A}'"),
    ] {
        let n = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.execute(&sql, &[])).expect(&sql);
        assert_eq!(n, 0, "{sql}");
    }
    // As admin of B she creates B's configuration: created_by is her, whatever she sends; and
    // even as its creator she cannot move it into A.
    let (creator, moved) = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        tx.execute(
            &format!("INSERT INTO public.ai_configurations (organization_id, config_name, created_by) VALUES ('{ORG_B}', 'b-main', '{BOB}')"),
            &[],
        )?;
        let c: String = tx.query_one(&format!("SELECT created_by::text FROM public.ai_configurations WHERE organization_id = '{ORG_B}'"), &[])?.get(0);
        tx.batch_execute("SAVEPOINT s")?;
        let moved = tx.execute(&format!("UPDATE public.ai_configurations SET organization_id = '{ORG_A}' WHERE organization_id = '{ORG_B}'"), &[]);
        tx.batch_execute("ROLLBACK TO s")?;
        // Nor turn her own configuration into A's.
        tx.execute(&format!("INSERT INTO public.ai_configurations (user_id, config_name) VALUES ('{ALICE}', 'personal')"), &[])?;
        tx.batch_execute("SAVEPOINT t")?;
        let turned = tx.execute(
            &format!("UPDATE public.ai_configurations SET user_id = NULL, organization_id = '{ORG_A}' WHERE user_id = '{ALICE}' AND config_name = 'personal'"),
            &[],
        );
        assert_eq!(turned.map_err(|e| sqlstate(&e)), Err("42501".to_string()), "own configuration turned into A's");
        tx.batch_execute("ROLLBACK TO t")?;
        Ok((c, moved.map_err(|e| sqlstate(&e))))
    })
    .expect("admin of B");
    assert_eq!(creator, ALICE);
    assert_eq!(moved, Err("42501".to_string()));
    let after: String = root
        .query_one("SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM public.ai_configurations c", &[])
        .expect("state")
        .get(0);
    assert_eq!(before, after, "nothing Alice tried changed a configuration");
    let role: String = root
        .query_one(&format!("SELECT role FROM public.organization_members WHERE organization_id = '{ORG_A}' AND user_id = '{ALICE}'"), &[])
        .expect("role")
        .get(0);
    assert_eq!(role, "member");
}

#[test]
fn enforcement_and_rotation_alerts_cannot_be_switched_off_by_users() {
    sec_setup();
    let mut w = witness();
    let mut root = connect_as("postgres");
    organisations(&mut root);
    root.batch_execute(&format!(
        "DELETE FROM steward.ai_usage WHERE user_id = '{ALICE}';
         SELECT steward.record_ai_usage('claude-3-opus-20240229', 70000, 0, '{ALICE}', '{ORG_A}');
         SELECT steward.set_setting('budgetEnforcement', '1');"
    ))
    .expect("over the organisation's daily budget of 1, enforcement on");
    let mut api = connect_as("authenticator");
    // A session variable named like the setting, a forged role claim, a request id of someone
    // else's: the call is still refused with 54000.
    for sql in [
        "SET LOCAL steward.budget_enforcement = off; SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1)".to_string(),
        "SELECT set_config('request.jwt.claims', '{\"sub\": \"a11ce000-0000-4000-8000-000000000001\", \"role\": \"service_role\"}', true);
         SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1)"
            .to_string(),
    ] {
        let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.batch_execute(&sql)).expect_err(&sql);
        assert_eq!(sqlstate(&err), "54000", "{sql}: {err}");
    }
    // Nor does her own configuration lift the organisation's budget (0, or a huge one).
    for budget in ["0", "1000000"] {
        let sql = format!(
            "SELECT steward.upsert_ai_config('mine', '{{\"costBudget\": {{\"dailyBudget\": {budget}, \"weeklyBudget\": {budget}, \"monthlyBudget\": {budget}}}}}');
             SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1)"
        );
        let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| tx.batch_execute(&sql)).expect_err(&sql);
        assert_eq!(sqlstate(&err), "54000", "own budget {budget}: {err}");
    }
    root.batch_execute("SELECT steward.reset_setting('budgetEnforcement')").expect("off");

    // A rotation alert: an end user cannot resolve it without rotating the key, and sees only
    // what is hers (Alice, a plain member of A, sees none of A's keys).
    root.batch_execute(&format!(
        "UPDATE steward.api_key_vault SET created_at = now() - interval '60 days' WHERE owner_id = '{ORG_A}';
         SELECT steward.check_alerts();"
    ))
    .expect("due and alerted");
    let open = |root: &mut postgres::Client| -> i64 {
        root.query_one("SELECT count(*) FROM steward.performance_alerts WHERE rule_id = 'api_key_rotation_due' AND resolved_at IS NULL", &[])
            .expect("open")
            .get(0)
    };
    assert_eq!(open(&mut root), 1);
    let id: String = root
        .query_one(&format!("SELECT id::text FROM public.ai_configurations WHERE organization_id = '{ORG_A}' AND config_name = 'a-main'"), &[])
        .expect("id")
        .get(0);
    let mut tx = api.transaction().expect("tx");
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&ALICE_CLAIMS]).expect("claims");
    tx.execute("SELECT steward._api_key_rotated($1::text::uuid)", &[&id]).expect("callable, and does nothing while the key is due");
    let seen: i64 = tx.query_one("SELECT count(*) FROM steward.ai_key_rotation_due()", &[]).expect("due").get(0);
    tx.commit().expect("commit");
    assert_eq!(seen, 0, "a plain member sees none of the organisation's keys");
    assert_eq!(open(&mut root), 1, "the alert stays open while the key is due");
    let bob_sees: i64 = as_role(&mut api, "authenticated", BOB_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT count(*) FROM steward.ai_key_rotation_due()", &[])?.get(0))
    })
    .expect("bob");
    assert_eq!(bob_sees, 1, "the organisation's admin sees it");
    // Documents the validator never saw (written with triggers off, as a restore does): a key
    // version no integer holds, budgets that are text, objects or enormous, thousands of
    // thresholds.  They break nobody's check, list, status or rotation (a key version beyond
    // int4 was "integer out of range" for everyone).
    root.batch_execute(&format!(
        "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         VALUES ('{ALICE}', 'huge-version', '{{\"apiKeys\": {{\"primaryKey\": \"sk-alice-huge-01\", \"keyVersion\": 3, \"rotationSchedule\": \"monthly\"}}}}');
         UPDATE steward.api_key_vault SET created_at = now() - interval '60 days' WHERE owner_id = '{ALICE}';
         SET session_replication_role = replica;
         UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{{apiKeys,keyVersion}}', '1000000000000')
          WHERE config_name = 'huge-version';
         RESET session_replication_role;
         SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1000, 0, '{ALICE}');"
    ))
    .expect("a key version the validator never saw");
    let rotated: String = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT steward.rotate_api_key('huge-version', 'sk-alice-new-000002') ->> 'keyVersion'", &[])?.get(0))
    })
    .expect("rotation still works");
    assert_eq!(rotated, "2", "an unreadable key version restarts at 1");
    root.batch_execute(
        "SET session_replication_role = replica;
         UPDATE public.ai_configurations
            SET configuration = configuration || jsonb_build_object('costBudget', jsonb_build_object(
                    'dailyBudget', 'abc', 'weeklyBudget', '{}'::jsonb, 'monthlyBudget', 1e400,
                    'alertThresholds', (SELECT jsonb_agg(g / 100000.0) FROM generate_series(1, 50000) g)))
          WHERE config_name = 'huge-version';
         RESET session_replication_role;",
    )
    .expect("budgets the validator never saw");
    let status: String = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        Ok(tx.query_one("SELECT steward.ai_budget_status() ->> 'thresholds'", &[])?.get(0))
    })
    .expect("status still answers");
    assert_eq!(status.matches(',').count(), 19, "at most 20 thresholds are read: {status}");
    let (mine, version): (i64, Option<i32>) = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        let r = tx.query_one("SELECT count(*), max(key_version) FROM steward.ai_key_rotation_due()", &[])?;
        Ok((r.get(0), r.get(1)))
    })
    .expect("alice lists her due keys");
    assert_eq!((mine, version), (1, None));
    root.batch_execute("SELECT steward.check_alerts()").expect("the check still runs");
    let levels: i64 = root
        .query_one(&format!("SELECT count(*) FROM steward.performance_alerts WHERE rule_id = 'ai_budget' AND details ->> 'user_id' = '{ALICE}'"), &[])
        .expect("budget alerts")
        .get(0);
    assert!(levels <= 3 * 21, "at most 20 thresholds and over budget per period: {levels}");
    root.batch_execute("DELETE FROM public.ai_configurations WHERE config_name = 'huge-version'").expect("clean");
    let err = as_role(&mut api, "anon", r#"{"role": "anon"}"#, |tx| tx.batch_execute("SELECT * FROM steward.ai_key_rotation_due()")).expect_err("anon");
    assert_eq!(sqlstate(&err), "42501");
    root.batch_execute(
        "DELETE FROM steward.performance_alerts WHERE rule_id IN ('api_key_rotation_due', 'ai_budget');
         DELETE FROM steward.ai_usage;",
    )
    .expect("clean");
    assert!(!is_superuser(&mut root, "sec_admin"));
    assert!(survived(&mut w));
}
