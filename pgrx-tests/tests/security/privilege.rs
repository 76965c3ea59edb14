//! Family 1, 2 and the maintenance part of 8: functions that take a relation act only with
//! the caller's own rights, refuse catalogs and steward's own tables, and run the work as the
//! table's owner in a security-restricted operation.

use std::time::{Duration, Instant};

use postgres::Client;

use crate::common::sqlstate;
use crate::{connect_as, is_superuser, sec_setup};

/// A table of sec_admin's with a trigger that tries to make sec_admin a superuser and notes
/// who it ran as.  `name` keeps tests apart.
fn trap_table(root: &mut Client, name: &str) {
    root.batch_execute(&format!(
        "DROP TABLE IF EXISTS sec_admin_schema.{name} CASCADE;
         DROP TABLE IF EXISTS sec_admin_schema.{name}_seen;
         CREATE TABLE sec_admin_schema.{name} (id int PRIMARY KEY, at timestamptz NOT NULL);
         CREATE TABLE sec_admin_schema.{name}_seen (who text, escalated boolean);
         -- Rows first: the trap must never fire for the superuser setting it up.
         INSERT INTO sec_admin_schema.{name} VALUES (1, now() - interval '30 days'), (2, now());
         CREATE FUNCTION sec_admin_schema.{name}_trap() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN
             BEGIN
                 ALTER ROLE sec_admin SUPERUSER;
                 INSERT INTO sec_admin_schema.{name}_seen VALUES (current_user, true);
             EXCEPTION WHEN OTHERS THEN
                 INSERT INTO sec_admin_schema.{name}_seen VALUES (current_user, false);
             END;
             RETURN coalesce(NEW, OLD);
         END $f$;
         CREATE TRIGGER trap BEFORE INSERT OR DELETE ON sec_admin_schema.{name}
             FOR EACH ROW EXECUTE FUNCTION sec_admin_schema.{name}_trap();
         ALTER TABLE sec_admin_schema.{name} OWNER TO sec_admin;
         ALTER TABLE sec_admin_schema.{name}_seen OWNER TO sec_admin;
         ALTER FUNCTION sec_admin_schema.{name}_trap() OWNER TO sec_admin;
         TRUNCATE sec_admin_schema.{name}_seen;"
    ))
    .expect("trap table");
}

fn seen(root: &mut Client, name: &str) -> Vec<(String, bool)> {
    root.query(
        &format!("SELECT who, escalated FROM sec_admin_schema.{name}_seen"),
        &[],
    )
    .expect("seen")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn retention_refuses_catalogs_steward_and_tables_without_rights() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    let mut root = connect_as("postgres");
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.sec_private (id int PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO public.sec_private VALUES (1, now() - interval '400 days') ON CONFLICT DO NOTHING;",
    )
    .expect("private table");
    let authid_rows: i64 = root
        .query_one("SELECT count(*) FROM pg_authid", &[])
        .expect("count")
        .get(0);
    for (tbl, column) in [
        ("pg_catalog.pg_authid", "rolvaliduntil"),
        ("steward.audit_entries", "changed_at"),
        ("public.sec_private", "at"),
    ] {
        let err = admin
            .query_one("SELECT steward.retention_set($1::text::regclass, $2::text::name, interval '1 day')", &[&tbl, &column])
            .expect_err(tbl);
        assert_eq!(sqlstate(&err), "42501", "{tbl}: {err}");
    }
    // An archive into a catalog, from a table the admin owns.
    trap_table(&mut root, "ret_src");
    let err = admin
        .query_one(
            "SELECT steward.retention_set('sec_admin_schema.ret_src', 'at', interval '1 day', 'archive', 'pg_catalog.pg_authid')",
            &[],
        )
        .expect_err("archive into pg_authid");
    assert_eq!(sqlstate(&err), "42501");
    let policies: i64 = root
        .query_one("SELECT count(*) FROM steward.retention_policies", &[])
        .expect("n")
        .get(0);
    assert_eq!(policies, 0, "no policy was stored");
    let after: i64 = root
        .query_one("SELECT count(*) FROM pg_authid", &[])
        .expect("count")
        .get(0);
    assert_eq!(after, authid_rows);
    assert!(!is_superuser(&mut root, "sec_admin"));
}

#[test]
fn a_retention_run_by_the_superuser_runs_the_owners_trigger_as_the_owner() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    let mut root = connect_as("postgres");
    trap_table(&mut root, "ret_trap");
    admin
        .query_one(
            "SELECT steward.retention_set('sec_admin_schema.ret_trap', 'at', interval '1 day')",
            &[],
        )
        .expect("an admin may set a policy on her own table");
    // The nightly job runs as the superuser: the trigger must still run as sec_admin.
    let row = root
        .query_one(
            "SELECT processed FROM steward.retention_run((SELECT id FROM steward.retention_policies
                WHERE table_name = 'sec_admin_schema.ret_trap'::regclass))",
            &[],
        )
        .expect("run");
    assert_eq!(row.get::<_, i64>(0), 1, "the old row went");
    assert_eq!(
        seen(&mut root, "ret_trap"),
        vec![("sec_admin".to_string(), false)]
    );
    assert!(!is_superuser(&mut root, "sec_admin"));
    root.batch_execute("DELETE FROM steward.retention_policies WHERE table_name = 'sec_admin_schema.ret_trap'::regclass")
        .expect("clean up");
}

#[test]
fn backups_refuse_the_vault_catalogs_and_other_roles_tables() {
    sec_setup();
    let mut root = connect_as("postgres");
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.sec_secret (id int PRIMARY KEY, secret text);
         INSERT INTO public.sec_secret VALUES (1, 'root only') ON CONFLICT DO NOTHING;",
    )
    .expect("secret table");
    for login in ["sec_admin", "sec_service"] {
        let mut c = connect_as(login);
        if login == "sec_service" {
            c.batch_execute("SET ROLE service_role")
                .expect("service role");
        }
        for tbl in [
            "steward.api_key_vault",
            "pg_catalog.pg_authid",
            "public.sec_secret",
            "steward.settings",
        ] {
            let err = c
                .query_one(
                    "SELECT steward.config_register($1::text::regclass)",
                    &[&tbl],
                )
                .expect_err(tbl);
            assert_eq!(sqlstate(&err), "42501", "{login} {tbl}: {err}");
        }
    }
    let registered: i64 = root
        .query_one(
            "SELECT count(*) FROM steward.config_tables WHERE table_name IN
                ('steward.api_key_vault'::regclass, 'pg_catalog.pg_authid'::regclass, 'public.sec_secret'::regclass, 'steward.settings'::regclass)",
            &[],
        )
        .expect("n")
        .get(0);
    assert_eq!(registered, 0);
    // A backup's rows are not readable by admins; its metadata is.
    let mut admin = connect_as("sec_admin");
    admin
        .query(
            "SELECT id, label, row_counts FROM steward.config_backups",
            &[],
        )
        .expect("metadata");
    let err = admin
        .query("SELECT tables FROM steward.config_backups", &[])
        .expect_err("rows");
    assert_eq!(sqlstate(&err), "42501");
}

#[test]
fn a_restore_fires_the_owners_triggers_as_the_owner() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    let mut root = connect_as("postgres");
    trap_table(&mut root, "cfg_trap");
    admin
        .query_one(
            "SELECT steward.config_register('sec_admin_schema.cfg_trap')",
            &[],
        )
        .expect("register own table");
    let id: String = root
        .query_one("SELECT steward.config_backup('sec test')::text", &[])
        .expect("backup")
        .get(0);
    root.batch_execute("TRUNCATE sec_admin_schema.cfg_trap_seen")
        .expect("reset");
    root.query_one(
        "SELECT steward.config_restore($1::text::uuid, confirm => true)",
        &[&id],
    )
    .expect("restore");
    let seen = seen(&mut root, "cfg_trap");
    assert!(!seen.is_empty(), "the trigger ran");
    assert!(
        seen.iter()
            .all(|(who, escalated)| who == "sec_admin" && !escalated),
        "{seen:?}"
    );
    assert!(!is_superuser(&mut root, "sec_admin"));
    // The admin may restore her own table too; not a backup holding a table she cannot write.
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.sec_cfg_root (id int PRIMARY KEY, v text);
         SELECT steward.config_register('public.sec_cfg_root');",
    )
    .expect("root table");
    let both: String = root
        .query_one("SELECT steward.config_backup('both')::text", &[])
        .expect("backup")
        .get(0);
    let err = admin
        .query_one(
            "SELECT steward.config_restore($1::text::uuid, confirm => true)",
            &[&both],
        )
        .expect_err("restore of a table the admin cannot write");
    assert_eq!(sqlstate(&err), "42501");
    root.batch_execute(
        "DELETE FROM steward.config_tables WHERE table_name IN ('public.sec_cfg_root'::regclass, 'sec_admin_schema.cfg_trap'::regclass)",
    )
    .expect("clean up");
}

#[test]
fn internal_bodies_cannot_be_called_with_a_made_up_caller() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    let err = admin
        .query_one(
            "SELECT steward._config_register(42, 'public.user_preferences')",
            &[],
        )
        .expect_err("forged token");
    assert_eq!(sqlstate(&err), "42501");
    for sql in [
        "SELECT steward._exec_as_owner('public.user_preferences'::regclass, 'DELETE FROM public.user_preferences')",
        "SELECT steward._check_privileges(10::oid, 'pg_authid'::regclass, '{select}', 'x')",
        "SELECT steward._caller(1, 'x')",
        "SELECT steward._maintenance_submit('{}'::jsonb, false)",
    ] {
        let err = admin.query(sql, &[]).expect_err(sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
}

fn vacuum_count(root: &mut Client, rel: &str) -> i64 {
    root.batch_execute("SELECT pg_stat_clear_snapshot()")
        .expect("clear");
    root.query_one(
        "SELECT coalesce(vacuum_count, 0) FROM pg_stat_all_tables WHERE relid = $1::text::regclass",
        &[&rel],
    )
    .map(|r| r.get(0))
    .unwrap_or(0)
}

#[test]
fn maintenance_acts_only_on_tables_the_caller_may_maintain() {
    sec_setup();
    let mut admin = connect_as("sec_admin");
    let mut root = connect_as("postgres");
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.sec_root_owned (id int PRIMARY KEY);
         DROP TABLE IF EXISTS sec_admin_schema.mine;
         CREATE TABLE sec_admin_schema.mine (id int PRIMARY KEY);
         ALTER TABLE sec_admin_schema.mine OWNER TO sec_admin;",
    )
    .expect("tables");
    for (table, index, op) in [
        (Some("pg_catalog.pg_authid"), None, "VACUUM"),
        (None, Some("pg_catalog.pg_authid_rolname_index"), "REINDEX"),
        (Some("public.sec_root_owned"), None, "REINDEX"),
        (Some("public.sec_root_owned"), None, "ANALYZE"),
        (Some("steward.audit_entries"), None, "VACUUM"),
    ] {
        let err = admin
            .query_one(
                "SELECT id FROM steward.run_maintenance($1, $2, $3, \"full\" => true, confirm => true, force => true)",
                &[&op, &table, &index],
            )
            .expect_err("refused");
        assert_eq!(sqlstate(&err), "42501", "{op} {table:?} {index:?}: {err}");
    }
    // Every refusal is recorded, with the caller's SQLSTATE.
    let refused: i64 = root
        .query_one(
            "SELECT count(*) FROM steward.maintenance_operations WHERE initiator = 'sec_admin' AND refused AND error_sqlstate = '42501'",
            &[],
        )
        .expect("records")
        .get(0);
    assert!(refused >= 5, "{refused}");
    // Her own table: allowed, and it really ran.
    let before = vacuum_count(&mut root, "sec_admin_schema.mine");
    admin
        .query_one(
            "SELECT id FROM steward.run_maintenance('VACUUM', 'sec_admin_schema.mine')",
            &[],
        )
        .expect("own table");
    let deadline = Instant::now() + Duration::from_secs(10);
    while vacuum_count(&mut root, "sec_admin_schema.mine") == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(vacuum_count(&mut root, "sec_admin_schema.mine") > before);
    // VACUUM of "everything" covers only what she may maintain.
    let root_before = vacuum_count(&mut root, "public.sec_root_owned");
    let row = admin
        .query_one(
            "SELECT (options ->> 'relations_skipped')::int FROM steward.run_maintenance('VACUUM')",
            &[],
        )
        .expect("vacuum all");
    assert!(
        row.get::<_, Option<i32>>(0).unwrap_or(0) > 0,
        "other roles' tables are skipped"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        vacuum_count(&mut root, "public.sec_root_owned"),
        root_before
    );
}

#[test]
fn statement_texts_are_shown_only_to_callers_who_may_see_them() {
    sec_setup();
    let mut root = connect_as("postgres");
    root.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .expect("pg_stat_statements");
    // A slow statement of the superuser's, with a marker that survives normalisation.
    root.batch_execute("SELECT /* sec_marker_root_only */ pg_sleep(0.6)")
        .expect("slow statement");
    let mut admin = connect_as("sec_admin");
    let marked = |c: &mut Client, sql: &str| -> i64 { c.query_one(sql, &[]).expect(sql).get(0) };
    let q = "SELECT count(*) FROM steward.slow_queries(1, 500) WHERE source = 'pg_stat_statements' AND query LIKE '%sec_marker_root_only%'";
    assert_eq!(
        marked(&mut root, q),
        1,
        "the superuser sees its own statement"
    );
    assert_eq!(
        marked(&mut admin, q),
        0,
        "an admin without pg_read_all_stats does not"
    );
    let hidden: i64 = marked(
        &mut admin,
        "SELECT count(*) FROM steward.slow_queries(1, 500) WHERE source = 'pg_stat_statements' AND query = '<insufficient privilege>'",
    );
    assert!(hidden >= 1, "the row is there, its text is not");
    let report: String = admin
        .query_one("SELECT steward.health_report()::text", &[])
        .expect("report")
        .get(0);
    assert!(!report.contains("sec_marker_root_only"));
    // With pg_read_all_stats the admin sees it.
    root.batch_execute("GRANT pg_read_all_stats TO sec_admin")
        .expect("grant");
    let mut admin2 = connect_as("sec_admin");
    let seen = marked(&mut admin2, q);
    root.batch_execute("REVOKE pg_read_all_stats FROM sec_admin")
        .expect("revoke");
    assert_eq!(seen, 1);
}

/// Found while writing the SAFETY comments: rollback's row reader (granted to end users) read
/// whatever column it was given as jsonb's binary form, so an integer column made it
/// dereference the integer; and the direct configuration reads trusted column types that a
/// table's owner can change.  Both now check the types first.
#[test]
fn readers_of_binary_documents_check_column_types_first() {
    use crate::common::as_role;
    sec_setup();
    let mut root = connect_as("postgres");
    let mut witness = crate::witness();
    root.batch_execute(&format!(
        "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         VALUES ('{}', 'sec_types', '{{}}') ON CONFLICT DO NOTHING",
        crate::ALICE
    ))
    .expect("alice's configuration");
    let id: String = root
        .query_one("SELECT id::text FROM public.ai_configurations WHERE user_id = $1::text::uuid AND config_name = 'sec_types'", &[&crate::ALICE])
        .expect("id")
        .get(0);
    let mut api = connect_as("authenticator");
    for column in ["priority", "config_name", "is_active"] {
        let err = as_role(&mut api, "authenticated", crate::ALICE_CLAIMS, |tx| {
            tx.query(
                "SELECT steward._rollback_read('public.ai_configurations'::regclass, 'id', $1, $2::text::uuid, false)",
                &[&column, &id],
            )
            .map(|_| ())
        })
        .expect_err(column);
        assert_eq!(sqlstate(&err), "42804", "{column}: {err}");
    }
    assert!(crate::survived(&mut witness), "a backend crashed");
    // The owner changes a column's type: effective configuration still answers (through SQL),
    // in the same transaction that sees the new type.
    let mut tx = root.transaction().expect("begin");
    tx.batch_execute("ALTER TABLE public.ai_configurations ALTER COLUMN priority TYPE bigint")
        .expect("alter");
    let got = tx.query_one(
        "SELECT steward.effective_ai_config($1::text::uuid)::text",
        &[&crate::ALICE],
    );
    assert!(got.is_ok(), "{got:?}");
    tx.rollback().expect("rollback");
    assert!(crate::survived(&mut witness), "a backend crashed");
}

/// Family 4: the audit trigger's rate-window statement runs as the log owner; an operator a
/// role put first in the caller's search_path must never be picked for it (or for any
/// statement pg_steward prepares).
#[test]
fn a_callers_search_path_never_picks_an_operator_for_steward_statements() {
    use crate::common::as_role;
    sec_setup();
    let mut root = connect_as("postgres");
    let mut creator = connect_as("sec_creator");
    creator
        .batch_execute(
            "DROP OPERATOR IF EXISTS sec_open.> (timestamptz, timestamptz);
             DROP FUNCTION IF EXISTS sec_open.evil_gt(timestamptz, timestamptz);
             DROP TABLE IF EXISTS sec_open.evil_log;
             CREATE TABLE sec_open.evil_log (who text);
             GRANT INSERT, SELECT ON sec_open.evil_log TO PUBLIC;
             CREATE FUNCTION sec_open.evil_gt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $f$
             BEGIN
                 INSERT INTO sec_open.evil_log VALUES (current_user);
                 BEGIN
                     ALTER ROLE sec_creator SUPERUSER;
                 EXCEPTION WHEN OTHERS THEN NULL;
                 END;
                 RETURN a OPERATOR(pg_catalog.>) b;
             END $f$;
             CREATE OPERATOR sec_open.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = sec_open.evil_gt);",
        )
        .expect("the attacker's operator");
    root.batch_execute("GRANT USAGE ON SCHEMA sec_open TO authenticated")
        .expect("usage");
    // Alice changes her own preferences twice (rate-limited end user: the rate statement runs,
    // and the second time takes its ON CONFLICT branch with the comparisons).
    let mut api = connect_as("authenticator");
    for rows in [25i32, 50] {
        let mut tx = api.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE authenticated")
            .expect("role");
        tx.execute(
            "SELECT set_config('request.jwt.claims', $1, true)",
            &[&crate::ALICE_CLAIMS],
        )
        .expect("claims");
        tx.batch_execute("SET LOCAL search_path = sec_open, pg_catalog, public")
            .expect("path");
        tx.execute(
        "INSERT INTO public.user_preferences (user_id, preferences)
         VALUES ($1::text::uuid, pg_catalog.jsonb_build_object('rowsPerPage', $2::int))
         ON CONFLICT (user_id) DO UPDATE SET preferences = EXCLUDED.preferences",
        &[&crate::ALICE, &rows],
    )
    .expect("alice writes her preferences");
        tx.commit().expect("commit");
    }
    let used: i64 = root
        .query_one("SELECT count(*) FROM sec_open.evil_log", &[])
        .expect("log")
        .get(0);
    assert_eq!(
        used, 0,
        "the attacker's operator ran inside a pg_steward statement"
    );
    assert!(!crate::is_superuser(&mut root, "sec_creator"));
    // The operator itself works (the test can fail): used by a plain query on that path.
    let mut c = connect_as("sec_creator");
    c.batch_execute(
        "SET search_path = sec_open, pg_catalog; SELECT now() > now() - interval '1 minute'",
    )
    .expect("plain use");
    let used: i64 = root
        .query_one("SELECT count(*) FROM sec_open.evil_log", &[])
        .expect("log")
        .get(0);
    assert_eq!(
        used, 1,
        "the operator is picked where nothing pins the path"
    );
}

/// The server's major version (15, 17, ...).
fn server_major(root: &mut Client) -> i32 {
    root.query_one("SELECT current_setting('server_version_num')::int / 10000", &[])
        .expect("server_version_num")
        .get(0)
}

/// Waits for a maintenance request to finish: (status, SQLSTATE, message).
fn finished(root: &mut Client, id: &str) -> (String, Option<String>, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = root
            .query_one(
                "SELECT status, error_sqlstate, error_message FROM steward.maintenance_operations WHERE id = $1::text::uuid",
                &[&id],
            )
            .expect("operation");
        let status: String = row.get(0);
        if status != "queued" && status != "running" {
            return (status, row.get(1), row.get(2));
        }
        assert!(Instant::now() < deadline, "operation {id} still {status} after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// PostgreSQL 17+: MAINTAIN on a table, or membership in pg_maintain, lets a caller who does
/// not own the table have pg_steward VACUUM, ANALYZE and REINDEX it — as PostgreSQL itself
/// would let that caller — and nothing more: other tables, the catalogs and steward's own
/// tables stay refused.  Before 17 there is no such privilege (ownership only, tested above).
#[test]
fn maintain_and_pg_maintain_let_non_owners_maintain_on_17() {
    sec_setup();
    let mut root = connect_as("postgres");
    let major = server_major(&mut root);
    if major < 17 {
        eprintln!("PostgreSQL {major} has no MAINTAIN privilege; skipped");
        return;
    }
    root.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_maintainer') THEN CREATE ROLE sec_maintainer LOGIN; END IF;
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_maintain_all') THEN CREATE ROLE sec_maintain_all LOGIN; END IF;
         END $$;
         GRANT steward_admin TO sec_maintainer, sec_maintain_all;
         GRANT pg_maintain TO sec_maintain_all;
         CREATE TABLE IF NOT EXISTS public.sec_maint_granted (id int PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS public.sec_maint_other (id int PRIMARY KEY);
         INSERT INTO public.sec_maint_granted SELECT g FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;
         GRANT MAINTAIN ON public.sec_maint_granted TO sec_maintainer;",
    )
    .expect("roles, grants and tables");
    let run = |who: &str, op: &str, table: &str| -> Result<String, postgres::Error> {
        connect_as(who)
            .query_one("SELECT id::text FROM steward.run_maintenance($1, $2)", &[&op, &table])
            .map(|r| r.get(0))
    };

    // MAINTAIN on one table: every operation on it runs, as the caller, and really ran.
    let before = vacuum_count(&mut root, "public.sec_maint_granted");
    for op in ["VACUUM", "ANALYZE", "REINDEX"] {
        let id = run("sec_maintainer", op, "public.sec_maint_granted").unwrap_or_else(|e| panic!("{op}: {e}"));
        let (status, state, message) = finished(&mut root, &id);
        assert_eq!(status, "completed", "{op}: {state:?} {message:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while vacuum_count(&mut root, "public.sec_maint_granted") == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(vacuum_count(&mut root, "public.sec_maint_granted") > before);
    // Not on a table it was not granted on.
    let err = run("sec_maintainer", "VACUUM", "public.sec_maint_other").expect_err("no MAINTAIN on it");
    assert_eq!(sqlstate(&err), "42501", "{err}");

    // pg_maintain: any application table, never a catalog or steward's own tables.
    let id = run("sec_maintain_all", "VACUUM", "public.sec_maint_other").expect("pg_maintain");
    let (status, state, message) = finished(&mut root, &id);
    assert_eq!(status, "completed", "{state:?} {message:?}");
    for table in ["pg_catalog.pg_authid", "steward.audit_entries"] {
        let err = run("sec_maintain_all", "VACUUM", table).expect_err("protected");
        assert_eq!(sqlstate(&err), "42501", "{table}: {err}");
    }

    // Revoked: refused from then on.
    root.batch_execute("REVOKE MAINTAIN ON public.sec_maint_granted FROM sec_maintainer")
        .expect("revoke");
    let err = run("sec_maintainer", "VACUUM", "public.sec_maint_granted").expect_err("revoked");
    assert_eq!(sqlstate(&err), "42501", "{err}");
}
