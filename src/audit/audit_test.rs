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
            "authenticator",
        );
        assert_eq!(who.changed_by.map(|u| u.to_string()).as_deref(), Some("6f1d2c1e-1111-4a4a-9999-000000000001"));
        assert_eq!(who.actor, "6f1d2c1e-1111-4a4a-9999-000000000001");
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
        assert_eq!(who.actor, "not-a-uuid");
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
}
