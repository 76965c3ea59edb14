//! Tests of the audit trail: attribution parsing (pure) and the trigger inside a real server.

#[cfg(test)]
mod unit {
    use crate::audit::attribution_from;

    #[test]
    fn attribution_reads_postgrest_settings() {
        let who = attribution_from(
            None,
            Some(r#"{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001", "role": "authenticated"}"#),
            Some(r#"{"user-agent": "supabase-js/2", "x-forwarded-for": " 203.0.113.7 , 10.0.0.1"}"#),
            Some("asked by support"),
            None,
            "authenticator/authenticated",
        );
        assert_eq!(who.changed_by.map(|u| u.to_string()).as_deref(), Some("6f1d2c1e-1111-4a4a-9999-000000000001"));
        // actor is the database role, never the claim.
        assert_eq!(who.actor, "authenticator/authenticated");
        assert_eq!(who.jwt_role.as_deref(), Some("authenticated"));
        assert_eq!(who.client_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(who.user_agent.as_deref(), Some("supabase-js/2"));
        assert_eq!(who.reason.as_deref(), Some("asked by support"));
    }

    #[test]
    fn malformed_settings_are_ignored_field_by_field() {
        // Broken claims JSON, a non-uuid sub in the legacy setting, headers that are not an
        // object, an address that is not one: nothing panics, what can be read is kept.
        let who = attribution_from(Some("not-a-uuid"), Some("{broken"), Some("[1, 2]"), None, Some("x"), "postgres");
        assert_eq!(who.changed_by, None);
        assert_eq!(who.actor, "postgres");
        assert_eq!(who.client_ip, None);
        assert_eq!(who.user_agent, None);
        assert_eq!(who.rollback_of, None);
        let who = attribution_from(None, None, Some(r#"{"x-forwarded-for": "evil'; DROP TABLE x; --"}"#), None, None, "postgres");
        assert_eq!(who.client_ip, None);
        assert_eq!(who.actor, "postgres");
        let who = attribution_from(None, Some(r#"{"sub": 42}"#), Some(r#"{"x-forwarded-for": "2001:db8::1"}"#), None, None, "jobs");
        assert_eq!(who.changed_by, None);
        assert_eq!(who.actor, "jobs");
        assert_eq!(who.client_ip.as_deref(), Some("2001:db8::1"));
    }

    /// A session that is not an API request passes no request settings (current_attribution):
    /// nothing names an end user, and the actor is the login.
    #[test]
    fn untrusted_sessions_name_only_their_role() {
        let who = attribution_from(None, None, None, Some("why"), None, "sec_admin");
        assert_eq!(who.changed_by, None);
        assert_eq!(who.jwt_role, None);
        assert_eq!(who.actor, "sec_admin");
        assert_eq!(who.reason.as_deref(), Some("why"));
    }
}

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn run(sql: &str) {
        Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).unwrap_or(-1)
    }

    /// audit_verify() of one configuration.
    fn verify(cfg: &str) -> serde_json::Value {
        Spi::get_one_with_args::<pgrx::JsonB>("SELECT steward.audit_verify($1::uuid)", &[cfg.into()])
            .expect("verify")
            .map(|j| j.0)
            .unwrap_or_default()
    }

    fn make_table(name: &str) {
        run(&format!(
            "CREATE TABLE public.{name} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner uuid,
                 doc jsonb NOT NULL DEFAULT '{{}}', is_active boolean NOT NULL DEFAULT true,
                 updated_at timestamptz NOT NULL DEFAULT now());
             SELECT steward.audit_enable('public.{name}', 'test_config', 'doc', 'owner')"
        ));
    }

    /// Each change exactly once; an UPDATE that changes nothing (or only updated_at) is skipped;
    /// activation is named; delete and truncate are recorded.
    #[pg_test]
    fn every_change_once_noop_skipped() {
        make_table("audit_t1");
        run("INSERT INTO public.audit_t1 (id, doc) VALUES ('00000000-0000-4000-8000-000000000001', '{\"a\": 1}');
             UPDATE public.audit_t1 SET doc = '{\"a\": 2}';
             UPDATE public.audit_t1 SET doc = doc;
             UPDATE public.audit_t1 SET updated_at = now() + interval '1 second';
             UPDATE public.audit_t1 SET is_active = false;
             DELETE FROM public.audit_t1;");
        let actions = Spi::get_one::<Vec<String>>(
            "SELECT array_agg(action ORDER BY seq) FROM steward.configuration_audit_log
              WHERE config_id = '00000000-0000-4000-8000-000000000001'",
        )
        .expect("actions")
        .unwrap_or_default();
        assert_eq!(actions, vec!["created", "updated", "deactivated", "deleted"]);
        let docs = Spi::get_one::<String>(
            "SELECT string_agg(coalesce(old_values::text, '-') || '>' || coalesce(new_values::text, '-'), ' ' ORDER BY seq)
               FROM steward.configuration_audit_log WHERE config_id = '00000000-0000-4000-8000-000000000001'",
        )
        .expect("docs");
        assert_eq!(docs.as_deref(), Some(r#"->{"a": 1} {"a": 1}>{"a": 2} {"a": 2}>{"a": 2} {"a": 2}>-"#));
        run("INSERT INTO public.audit_t1 DEFAULT VALUES; TRUNCATE public.audit_t1;");
        assert_eq!(
            count("SELECT count(*) FROM steward.configuration_audit_log
                    WHERE action = 'truncated' AND relid = 'public.audit_t1'::regclass AND config_id IS NULL"),
            1
        );
    }

    /// Tables without a primary key, with a composite or non-uuid key, or without the named
    /// columns are refused with a clear SQLSTATE.
    #[pg_test]
    fn audit_enable_refuses_unfit_tables() {
        run("CREATE TABLE public.audit_nokey (doc jsonb);
             CREATE TABLE public.audit_twokey (a uuid, b uuid, doc jsonb, PRIMARY KEY (a, b));
             CREATE TABLE public.audit_intkey (id int PRIMARY KEY, doc jsonb);
             CREATE TABLE public.audit_ok (id uuid PRIMARY KEY, doc jsonb, txt text);");
        let refused = |call: &str, state: &str| {
            let sql = format!(
                "DO $$ BEGIN PERFORM {call}; RAISE EXCEPTION 'accepted'; \
                 EXCEPTION WHEN sqlstate '{state}' THEN NULL; END $$"
            );
            run(&sql);
        };
        refused("steward.audit_enable('public.audit_nokey', 'x', 'doc')", "42P10");
        refused("steward.audit_enable('public.audit_twokey', 'x', 'doc')", "42P10");
        refused("steward.audit_enable('public.audit_intkey', 'x', 'doc')", "42P10");
        refused("steward.audit_enable('public.audit_ok', 'x', 'missing')", "42703");
        refused("steward.audit_enable('public.audit_ok', 'x', 'txt')", "42804");
        refused("steward.audit_enable('public.audit_ok', 'x', 'doc', 'missing')", "42703");
        refused("steward.audit_enable('public.audit_ok', 'Bad Type', 'doc')", "22023");
        assert_eq!(
            count("SELECT count(*) FROM steward.audited_tables
                    WHERE relid::text IN ('audit_nokey', 'audit_twokey', 'audit_intkey', 'audit_ok')"),
            0
        );
        run("SELECT steward.audit_enable('public.audit_ok', 'x', 'doc')");
        assert_eq!(count("SELECT count(*) FROM steward.audited_tables WHERE relid = 'public.audit_ok'::regclass"), 1);
    }

    /// Direct writes to the log are refused, even for its owner (these tests run as superuser);
    /// an edit made with triggers disabled is found by audit_verify.
    #[pg_test]
    fn log_is_append_only_and_edits_are_detected() {
        make_table("audit_t2");
        run("INSERT INTO public.audit_t2 (id, doc) VALUES ('00000000-0000-4000-8000-000000000002', '{\"k\": 1}');
             UPDATE public.audit_t2 SET doc = '{\"k\": 2}';
             UPDATE public.audit_t2 SET doc = '{\"k\": 3}';");
        for statement in [
            "UPDATE steward.configuration_audit_log SET change_reason = 'x' WHERE config_id = '00000000-0000-4000-8000-000000000002'",
            "DELETE FROM steward.configuration_audit_log WHERE config_id = '00000000-0000-4000-8000-000000000002'",
            "INSERT INTO steward.configuration_audit_log SELECT * FROM steward.configuration_audit_log LIMIT 1",
            "UPDATE steward.audit_entries SET change_reason = 'x' WHERE config_id = '00000000-0000-4000-8000-000000000002'",
            "DELETE FROM steward.audit_entries WHERE config_id = '00000000-0000-4000-8000-000000000002'",
            "INSERT INTO steward.audit_entries SELECT * FROM steward.audit_entries LIMIT 1",
            "TRUNCATE steward.audit_entries",
            "DELETE FROM steward.audit_chain_anchors",
        ] {
            run(&format!(
                "DO $$ BEGIN {statement}; RAISE EXCEPTION 'not refused'; \
                 EXCEPTION WHEN insufficient_privilege THEN NULL; END $$"
            ));
        }
        // The log clients read is a view: PostgreSQL itself refuses to truncate it.
        run("DO $$ BEGIN TRUNCATE steward.configuration_audit_log; RAISE EXCEPTION 'not refused'; \
             EXCEPTION WHEN wrong_object_type THEN NULL; END $$");
        let ok = verify("00000000-0000-4000-8000-000000000002");
        assert_eq!(ok["ok"], serde_json::json!(true), "{ok}");
        assert_eq!(ok["checked"], serde_json::json!(3));
        // A superuser edits history with triggers disabled.
        run("SET LOCAL session_replication_role = replica;
             UPDATE steward.audit_entries SET new_values = '{\"k\": 99}'
              WHERE config_id = '00000000-0000-4000-8000-000000000002' AND seq = 2;
             SET LOCAL session_replication_role = origin;");
        let broken = verify("00000000-0000-4000-8000-000000000002");
        assert_eq!(broken["ok"], serde_json::json!(false), "{broken}");
        let second = Spi::get_one::<String>(
            "SELECT id::text FROM steward.configuration_audit_log WHERE config_id = '00000000-0000-4000-8000-000000000002' AND seq = 2",
        )
        .expect("id");
        assert_eq!(broken["first_broken"].as_str(), second.as_deref());
    }

    /// old_values is stored only where it is not the previous entry's new_values, and the log
    /// reads the same either way: the view puts the elided documents back.
    #[pg_test]
    fn elided_old_values_read_the_same() {
        make_table("audit_t5");
        let cfg = "00000000-0000-4000-8000-000000000005";
        run(&format!(
            "INSERT INTO public.audit_t5 (id, doc) VALUES ('{cfg}', '{{\"k\": 1, \"big\": \"x\"}}');
             UPDATE public.audit_t5 SET doc = '{{\"k\": 2}}';
             SET LOCAL session_replication_role = replica;
             UPDATE public.audit_t5 SET doc = '{{\"k\": 3, \"unaudited\": true}}';
             SET LOCAL session_replication_role = origin;
             UPDATE public.audit_t5 SET doc = '{{\"k\": 4}}';
             UPDATE public.audit_t5 SET is_active = false;
             DELETE FROM public.audit_t5;"
        ));
        let rows = |sql: &str| -> Vec<String> {
            Spi::connect(|c| {
                c.select(sql, None, &[])?
                    .map(|r| r.get::<String>(1).map(|v| v.unwrap_or_else(|| "NULL".into())))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        // Stored: created (no document before), elided, stored (the document before was
        // written with triggers off, so it is not the previous entry's), elided, elided.
        assert_eq!(
            rows(&format!("SELECT old_elided::text || ':' || coalesce(old_values::text, '-') FROM steward.audit_entries
                            WHERE config_id = '{cfg}' ORDER BY seq")),
            ["false:-", "true:-", "false:{\"k\": 3, \"unaudited\": true}", "true:-", "true:-"]
        );
        // Read: every old_values is the document before the change.
        assert_eq!(
            rows(&format!("SELECT action || ' ' || coalesce(old_values::text, 'NULL') FROM steward.configuration_audit_log
                            WHERE config_id = '{cfg}' ORDER BY seq")),
            [
                "created NULL",
                "updated {\"k\": 1, \"big\": \"x\"}",
                "updated {\"k\": 3, \"unaudited\": true}",
                "deactivated {\"k\": 4}",
                "deleted {\"k\": 4}",
            ]
        );
        // The chain still verifies: hashes cover the documents, not how they are stored.
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
        // The look-up answers only to the previous entry's hash.
        assert_eq!(
            count(&format!(
                "SELECT count(steward._audit_old_values('{cfg}', 2, prev_hash)) FROM steward.audit_entries
                  WHERE config_id = '{cfg}' AND seq = 2"
            )),
            1
        );
        assert_eq!(count(&format!("SELECT count(steward._audit_old_values('{cfg}', 2, '\\x00'))")), 0);
        // An edit of the previous entry's new_values behind pg_steward's back shows in the
        // next entry's old_values and breaks both hashes.
        run(&format!(
            "SET LOCAL session_replication_role = replica;
             UPDATE steward.audit_entries SET new_values = '{{\"k\": 99}}' WHERE config_id = '{cfg}' AND seq = 4;
             SET LOCAL session_replication_role = origin;"
        ));
        assert_eq!(
            rows(&format!("SELECT old_values::text FROM steward.configuration_audit_log WHERE config_id = '{cfg}' AND seq = 5")),
            ["{\"k\": 99}"]
        );
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(false), "{v}");
        assert_eq!(v["broken"], serde_json::json!(2), "{v}");
    }

    /// The chain head a backend recorded is reused without the index probe only while the
    /// row version proves it (its xmin is the writer of that head): a rolled-back
    /// subtransaction's change, a change made with triggers off and a delete all leave a
    /// chain that verifies, with one entry per recorded change.
    #[pg_test]
    fn remembered_chain_heads_follow_savepoints_and_unaudited_changes() {
        make_table("audit_t6");
        let cfg = "00000000-0000-4000-8000-000000000006";
        let hits = || crate::audit::writer::HEAD_HITS.with(|h| h.get());
        let h0 = hits();
        run(&format!(
            "INSERT INTO public.audit_t6 (id, doc) VALUES ('{cfg}', '{{\"k\": 1}}');
             UPDATE public.audit_t6 SET doc = '{{\"k\": 2}}';
             UPDATE public.audit_t6 SET doc = '{{\"k\": 3}}';"
        ));
        assert_eq!(hits() - h0, 2, "both updates continued the head this backend wrote");
        // A subtransaction (an exception block) whose change is rolled back.
        run("DO $$ BEGIN UPDATE public.audit_t6 SET doc = '{\"k\": 4}'; RAISE EXCEPTION 'undo';
             EXCEPTION WHEN raise_exception THEN NULL; END $$");
        let h1 = hits();
        run("UPDATE public.audit_t6 SET doc = '{\"k\": 5}'");
        assert_eq!(hits(), h1, "the row version is the one before the savepoint: probed");
        // One whose change is kept (the block ends normally: the subtransaction is released).
        run("DO $$ BEGIN BEGIN UPDATE public.audit_t6 SET doc = '{\"k\": 6}';
             EXCEPTION WHEN others THEN NULL; END; END $$;
             UPDATE public.audit_t6 SET doc = '{\"k\": 7}';
             DELETE FROM public.audit_t6;");
        let seqs = Spi::get_one::<String>(&format!(
            "SELECT string_agg(seq || ':' || action || ':' || coalesce(old_values ->> 'k', '-') || '>' || coalesce(new_values ->> 'k', '-'), ' ' ORDER BY seq)
               FROM steward.configuration_audit_log WHERE config_id = '{cfg}'"
        ))
        .expect("entries");
        assert_eq!(
            seqs.as_deref(),
            Some("1:created:->1 2:updated:1>2 3:updated:2>3 4:updated:3>5 5:updated:5>6 6:updated:6>7 7:deleted:7>-")
        );
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    }

    /// A purge that removes a configuration's newest entry makes the backend forget the head
    /// it remembered: the next change starts the chain again (with its document stored, as
    /// there is no previous entry to read it from) and the log still verifies.
    #[pg_test]
    fn a_purge_forgets_remembered_chain_heads() {
        // The purge's EXCLUSIVE lock first (see checkpoint_tells_purges_from_deletions).
        run("LOCK TABLE steward.audit_entries IN EXCLUSIVE MODE");
        make_table("audit_t7");
        let cfg = "00000000-0000-4000-8000-000000000007";
        run(&format!(
            "INSERT INTO public.audit_t7 (id, doc) VALUES ('{cfg}', '{{\"k\": 1}}');
             UPDATE public.audit_t7 SET doc = '{{\"k\": 2}}';"
        ));
        assert!(
            Spi::get_one::<i64>("SELECT steward._audit_purge(now() + interval '1 second', false)")
                .expect("purge")
                .unwrap_or(0)
                >= 2
        );
        run("UPDATE public.audit_t7 SET doc = '{\"k\": 3}'");
        let entries = Spi::get_one::<String>(&format!(
            "SELECT string_agg(e.seq || ':' || e.old_elided || ':' || (l.old_values ->> 'k'), ' ')
               FROM steward.audit_entries e JOIN steward.configuration_audit_log l USING (id) WHERE e.config_id = '{cfg}'"
        ))
        .expect("entries");
        assert_eq!(entries.as_deref(), Some("1:false:2"));
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    }

    /// Deleting an entry (middle or newest) with triggers disabled is detected too.
    #[pg_test]
    fn removed_entries_are_detected() {
        make_table("audit_t3");
        run("INSERT INTO public.audit_t3 (id, doc) VALUES ('00000000-0000-4000-8000-000000000003', '{\"k\": 1}'),
                                                    ('00000000-0000-4000-8000-000000000004', '{\"k\": 1}');
             UPDATE public.audit_t3 SET doc = '{\"k\": 2}';
             UPDATE public.audit_t3 SET doc = '{\"k\": 3}';
             SET LOCAL session_replication_role = replica;
             DELETE FROM steward.audit_entries WHERE config_id = '00000000-0000-4000-8000-000000000003' AND seq = 2;
             DELETE FROM steward.audit_entries WHERE config_id = '00000000-0000-4000-8000-000000000004' AND seq = 3;
             SET LOCAL session_replication_role = origin;");
        for cfg in ["00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"] {
            let v = verify(cfg);
            assert_eq!(v["ok"], serde_json::json!(false), "{cfg}: {v}");
        }
    }

    /// Whether `sql` fails with `state` (run in a subtransaction, so nothing it did stays).
    fn fails_with(sql: &str, state: &str) -> bool {
        let escaped = sql.replace('\'', "''");
        Spi::get_one::<bool>(&format!(
            "SELECT public.steward_test_fails_with('{escaped}', '{state}')"
        ))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(false)
    }

    fn install_fails_with() {
        run("CREATE OR REPLACE FUNCTION public.steward_test_fails_with(p_sql text, p_state text) RETURNS boolean
             LANGUAGE plpgsql AS $f$
             BEGIN
                 EXECUTE p_sql;
                 RETURN false;
             EXCEPTION WHEN others THEN
                 IF SQLSTATE <> p_state THEN RAISE WARNING '%: % (%)', p_sql, SQLERRM, SQLSTATE; END IF;
                 RETURN SQLSTATE = p_state;
             END $f$");
    }

    fn text(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn ensure_api_roles() {
        run("DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
             END $$;
             GRANT USAGE ON SCHEMA steward TO authenticated;
             GRANT EXECUTE ON FUNCTION steward.caller_id(), steward.caller_uuid() TO authenticated;");
    }

    /// A direct session (here a superuser) that sets another user's claims is attributed to
    /// itself: changed_by stays NULL, actor names the login, caller_id()/caller_uuid() ignore
    /// the claims.  After SET ROLE to an API role the claims count, also inside a SECURITY
    /// DEFINER function, and actor names the login and the role.
    #[pg_test]
    fn claims_count_only_for_api_roles() {
        ensure_api_roles();
        make_table("audit_id1");
        let cfg = "00000000-0000-4000-8000-0000000000a1";
        let victim = "00000000-0000-4000-8000-0000000000b1";
        run(&format!("INSERT INTO public.audit_id1 (id, owner, doc) VALUES ('{cfg}', '{victim}', '{{\"k\": 1}}');
                      GRANT SELECT, UPDATE ON public.audit_id1 TO authenticated;"));
        run(&format!(
            "SELECT set_config('request.jwt.claims', '{{\"sub\": \"{victim}\", \"role\": \"authenticated\"}}', true);
             SELECT set_config('request.jwt.claim.sub', '{victim}', true);
             SELECT set_config('request.headers', '{{\"x-forwarded-for\": \"198.51.100.9\"}}', true);
             UPDATE public.audit_id1 SET doc = '{{\"k\": 2}}';"
        ));
        assert_eq!(text("SELECT steward.caller_id()"), text("SELECT session_user::text"));
        assert_eq!(count("SELECT count(*) FROM (SELECT steward.caller_uuid() AS u) x WHERE u IS NULL"), 1);
        let direct = text(&format!(
            "SELECT coalesce(changed_by::text, '-') || '|' || actor || '|' || coalesce(host(client_ip), '-')
               FROM steward.configuration_audit_log WHERE config_id = '{cfg}' AND seq = 2"
        ));
        assert_eq!(direct, text("SELECT '-|' || session_user || '|-'"));

        run("CREATE FUNCTION public.audit_id1_definer() RETURNS uuid LANGUAGE sql SECURITY DEFINER
             AS 'SELECT steward.caller_uuid()';
             GRANT EXECUTE ON FUNCTION public.audit_id1_definer() TO authenticated;");
        run("SET LOCAL ROLE authenticated");
        run("UPDATE public.audit_id1 SET doc = '{\"k\": 3}'");
        let (id, uuid, definer) = (
            text("SELECT steward.caller_id()"),
            text("SELECT steward.caller_uuid()::text"),
            text("SELECT public.audit_id1_definer()::text"),
        );
        run("RESET ROLE");
        assert_eq!(id.as_deref(), Some(victim));
        assert_eq!(uuid.as_deref(), Some(victim));
        assert_eq!(definer.as_deref(), Some(victim), "the outer role decides, not the definer");
        let api = text(&format!(
            "SELECT coalesce(changed_by::text, '-') || '|' || actor || '|' || coalesce(host(client_ip), '-')
               FROM steward.configuration_audit_log WHERE config_id = '{cfg}' AND seq = 3"
        ));
        assert_eq!(api, text(&format!("SELECT '{victim}|' || session_user || '/authenticated|198.51.100.9'")));
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    }

    /// A cutoff in the future or younger than auditPurgeMinimumDays is refused (22023) and
    /// nothing is removed; the minimum itself cannot go below one day.
    #[pg_test]
    fn purge_refuses_future_and_short_cutoffs() {
        install_fails_with();
        make_table("audit_p1");
        run("INSERT INTO public.audit_p1 (id, doc) VALUES ('00000000-0000-4000-8000-0000000000f1', '{}')");
        let before = count("SELECT count(*) FROM steward.audit_entries");
        for older_than in ["-1 year 361 days", "-1 day", "0", "1 hour", "23 hours 59 minutes"] {
            assert!(fails_with(&format!("SELECT steward.audit_purge('{older_than}')"), "22023"), "{older_than}");
        }
        assert!(fails_with("SELECT steward.set_setting('auditPurgeMinimumDays', '0')", "22023"));
        run("SELECT steward.set_setting('auditPurgeMinimumDays', '30')");
        assert!(fails_with("SELECT steward.audit_purge('10 days')", "22023"));
        assert!(fails_with("SELECT steward.audit_purge('10 days', true)", "22023"));
        run("SELECT steward.reset_setting('auditPurgeMinimumDays')");
        assert_eq!(count("SELECT (steward.audit_purge('1 day', true) ->> 'entries')::bigint * 0"), 0);
        assert_eq!(count("SELECT count(*) FROM steward.audit_entries"), before);
        assert_eq!(count("SELECT count(*) FROM steward.audit_purges WHERE cutoff > now() - interval '1 day'"), 0);
    }

    /// A new row on a configuration id whose chain records another owner is refused (42501);
    /// the same owner may come back; an owner change of the same row is recorded with its
    /// document (never elided), and the old-values look-up answers only for an elided entry.
    #[pg_test]
    fn chains_of_different_owners_never_link() {
        install_fails_with();
        make_table("audit_o1");
        let (cfg, alice, bob) = (
            "00000000-0000-4000-8000-0000000000c7",
            "a11ce000-0000-4000-8000-000000000001",
            "b0b00000-0000-4000-8000-000000000002",
        );
        run(&format!(
            "INSERT INTO public.audit_o1 (id, owner, doc) VALUES ('{cfg}', '{bob}', '{{\"secret\": \"bob\"}}');
             UPDATE public.audit_o1 SET doc = '{{\"secret\": \"bob2\"}}';
             DELETE FROM public.audit_o1;"
        ));
        // Alice re-inserts under Bob's id: refused, nothing recorded.
        assert!(fails_with(
            &format!("INSERT INTO public.audit_o1 (id, owner, doc) VALUES ('{cfg}', '{alice}', '{{}}')"),
            "42501"
        ));
        // Moving her own row onto Bob's id is refused the same way.
        run(&format!("INSERT INTO public.audit_o1 (id, owner, doc) VALUES ('00000000-0000-4000-8000-0000000000c8', '{alice}', '{{}}')"));
        assert!(fails_with(&format!("UPDATE public.audit_o1 SET id = '{cfg}' WHERE owner = '{alice}'"), "42501"));
        assert_eq!(count(&format!("SELECT count(*) FROM steward.audit_entries WHERE config_id = '{cfg}'")), 3);
        // Bob may come back; his entry links to his chain.
        run(&format!("INSERT INTO public.audit_o1 (id, owner, doc) VALUES ('{cfg}', '{bob}', '{{\"secret\": \"bob3\"}}')"));
        assert_eq!(count(&format!("SELECT count(*) FROM steward.audit_entries WHERE config_id = '{cfg}' AND seq = 4 AND prev_hash IS NOT NULL")), 1);
        // The look-up never serves the entry before a non-elided one (the 'created' entry 4
        // carries the hash of Bob's delete; entry 2 that of Bob's first document).
        assert_eq!(
            count(&format!("SELECT count(steward._audit_old_values(config_id, seq, prev_hash)) FROM steward.audit_entries
                             WHERE config_id = '{cfg}' AND NOT old_elided")),
            0
        );
        // Ownership moves with the row: recorded, not elided, the chain verifies.
        run(&format!("UPDATE public.audit_o1 SET owner = '{alice}' WHERE id = '{cfg}'"));
        assert_eq!(
            text(&format!("SELECT old_elided::text || ':' || (old_values ->> 'secret') FROM steward.audit_entries
                            WHERE config_id = '{cfg}' AND seq = 5")).as_deref(),
            Some("false:bob3")
        );
        run(&format!("UPDATE public.audit_o1 SET doc = '{{\"secret\": \"alice\"}}' WHERE id = '{cfg}'"));
        assert_eq!(
            text(&format!("SELECT e.old_elided::text || ':' || (l.old_values ->> 'secret') FROM steward.audit_entries e
                             JOIN steward.configuration_audit_log l USING (id) WHERE e.config_id = '{cfg}' AND e.seq = 6")).as_deref(),
            Some("true:bob3")
        );
        let v = verify(cfg);
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    }

    /// audit_checkpoint() then a superuser deletes a whole chain, the last entry of another,
    /// edits a third (re-hashing it so the chain alone would not show it) and one chain grows:
    /// audit_verify(checkpoint) reports each, and only those.
    #[pg_test]
    fn checkpoint_reveals_deleted_truncated_and_edited_chains() {
        install_fails_with();
        make_table("audit_k1");
        let cfg = |n: u32| format!("00000000-0000-4000-8000-0000000001{n:02}");
        for n in 1..=4 {
            run(&format!(
                "INSERT INTO public.audit_k1 (id, doc) VALUES ('{c}', '{{\"v\": 1}}');
                 UPDATE public.audit_k1 SET doc = '{{\"v\": 2}}' WHERE id = '{c}';
                 UPDATE public.audit_k1 SET doc = '{{\"v\": 3}}' WHERE id = '{c}';",
                c = cfg(n)
            ));
        }
        run("CREATE TEMP TABLE cp AS SELECT steward.audit_checkpoint() AS c");
        let clean = Spi::get_one::<pgrx::JsonB>("SELECT steward.audit_verify((SELECT c FROM cp))")
            .expect("verify")
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(clean["ok"], serde_json::json!(true), "{clean}");
        assert_eq!(clean["digest_ok"], serde_json::json!(true), "{clean}");
        // Growth after the checkpoint is fine.
        run(&format!("UPDATE public.audit_k1 SET doc = '{{\"v\": 4}}' WHERE id = '{}'", cfg(4)));
        // Tampering with the log's guard disabled.
        run(&format!(
            "ALTER TABLE steward.audit_entries DISABLE TRIGGER USER;
             DELETE FROM steward.audit_entries WHERE config_id = '{c1}';
             DELETE FROM steward.audit_entries WHERE config_id = '{c2}' AND seq = 3;
             UPDATE steward.audit_entries SET change_reason = 'forged',
                    hash = steward._audit_hash(prev_hash, id, config_type, config_id, seq, action, changed_by, actor,
                                               changed_at,
                                               CASE WHEN old_elided THEN steward._audit_old_values(config_id, seq, prev_hash)
                                                    ELSE old_values END,
                                               new_values, 'forged', host(client_ip), user_agent)
              WHERE config_id = '{c3}' AND seq = 3;
             ALTER TABLE steward.audit_entries ENABLE TRIGGER USER;",
            c1 = cfg(1),
            c2 = cfg(2),
            c3 = cfg(3)
        ));
        let v = Spi::get_one::<pgrx::JsonB>("SELECT steward.audit_verify((SELECT c FROM cp))")
            .expect("verify")
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(v["ok"], serde_json::json!(false), "{v}");
        let ids = |key: &str| -> Vec<String> {
            v[key].as_array().map(|a| a.iter().filter_map(|x| x["config_id"].as_str().map(str::to_string)).collect()).unwrap_or_default()
        };
        assert_eq!(ids("deleted_chains"), vec![cfg(1)], "{v}");
        assert_eq!(ids("truncated"), vec![cfg(2)], "{v}");
        assert_eq!(v["truncated"][0]["expected_seq"], serde_json::json!(3), "{v}");
        assert_eq!(v["truncated"][0]["found_seq"], serde_json::json!(2), "{v}");
        assert_eq!(ids("edited"), vec![cfg(3)], "{v}");
        assert!(v["first_broken"].is_string(), "{v}");
        // The chains alone no longer show the re-hashed head of cfg 3 as edited: that is what
        // the checkpoint is for.  A checkpoint that is not one is refused.
        assert!(fails_with("SELECT steward.audit_verify('{}'::jsonb)", "22023"));
        assert!(fails_with(
            "SELECT steward.audit_verify('{\"heads\": [{\"config_id\": \"nope\"}], \"truncate_entries\": []}'::jsonb)",
            "22023"
        ));
    }

    /// Entries the purge removed are reported as purged, not as deleted.
    #[pg_test]
    fn checkpoint_tells_purges_from_deletions() {
        // The purge takes an EXCLUSIVE lock on the log; taken first, so tests running beside
        // this one wait instead of deadlocking with its inserts.
        run("LOCK TABLE steward.audit_entries IN EXCLUSIVE MODE");
        make_table("audit_k2");
        let cfg = "00000000-0000-4000-8000-000000000201";
        run(&format!(
            "INSERT INTO public.audit_k2 (id, doc) VALUES ('{cfg}', '{{\"v\": 1}}');
             UPDATE public.audit_k2 SET doc = '{{\"v\": 2}}';
             CREATE TEMP TABLE cp2 AS SELECT steward.audit_checkpoint() AS c;
             SELECT steward._audit_purge(now() + interval '1 second', false);"
        ));
        let v = Spi::get_one::<pgrx::JsonB>("SELECT steward.audit_verify((SELECT c FROM cp2))")
            .expect("verify")
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(v["ok"], serde_json::json!(true), "{v}");
        assert!(v["purged"].as_array().map(|a| a.iter().any(|x| x["config_id"] == serde_json::json!(cfg))).unwrap_or(false), "{v}");
    }

    /// A plain steward_admin member attaches and detaches the trigger on a table it owns; a
    /// table it has no rights on, a catalog and pg_steward's own tables are refused (42501);
    /// the registry cannot be written for a table without the trigger or with other columns.
    #[pg_test]
    fn audit_enable_for_plain_admins_on_their_own_tables() {
        install_fails_with();
        run("CREATE ROLE audit_t_admin NOLOGIN IN ROLE steward_admin;
             CREATE SCHEMA audit_t_schema AUTHORIZATION audit_t_admin;
             CREATE TABLE audit_t_schema.mine (id uuid PRIMARY KEY, doc jsonb);
             ALTER TABLE audit_t_schema.mine OWNER TO audit_t_admin;
             CREATE TABLE public.audit_theirs (id uuid PRIMARY KEY, doc jsonb);
             GRANT SELECT ON public.audit_theirs TO audit_t_admin;
             SET LOCAL ROLE audit_t_admin;");
        let enabled = Spi::get_one::<bool>("SELECT steward.audit_enable('audit_t_schema.mine', 'x_config', 'doc')");
        let refusals = [
            fails_with("SELECT steward.audit_enable('public.audit_theirs', 'x_config', 'doc')", "42501"),
            fails_with("SELECT steward.audit_enable('pg_catalog.pg_authid', 'x_config', 'rolname')", "42501"),
            fails_with("SELECT steward.audit_enable('steward.settings', 'x_config', 'value')", "42501"),
            fails_with("SELECT steward.audit_disable('public.audit_theirs')", "42501"),
            fails_with("SELECT steward._audit_register('public.audit_theirs', 'x_config', 'doc', NULL, 'id')", "55000"),
            fails_with("SELECT steward._audit_register('audit_t_schema.mine', 'ai_config', 'doc', NULL, 'id')", "55000"),
        ];
        let disabled = Spi::get_one::<bool>("SELECT steward.audit_disable('audit_t_schema.mine')");
        run("RESET ROLE");
        assert_eq!(enabled.ok().flatten(), Some(true));
        assert_eq!(refusals, [true; 6]);
        assert_eq!(disabled.ok().flatten(), Some(true));
        assert_eq!(
            count("SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('public.audit_theirs'::regclass, 'audit_t_schema.mine'::regclass)
                      AND tgname LIKE 'steward_audit%'"),
            0
        );
        assert_eq!(count("SELECT count(*) FROM steward.audited_tables WHERE relid::text LIKE '%audit_t%'"), 0);
    }
}
