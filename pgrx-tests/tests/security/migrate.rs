//! Migrations (issue #15): admins only; a migration's statements run as the admin who applies
//! it (never as the extension's owner or the worker's superuser), in the worker and in the
//! trial run alike; hostile scripts cannot reach the worker's own statements; hostile input to
//! the parser is refused without crashing a backend.  The suite's registry is its own database's.

use std::sync::{Mutex, MutexGuard};

use postgres::Client;

use crate::common::{as_role, sqlstate};
use crate::{connect_as, is_superuser, sec_setup, survived, witness, ALICE_CLAIMS};

/// The suite's registry is shared: the tests that apply migrations take turns, each starting
/// from a registry without the suite's versions (9100-9299).
fn registry() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    sec_setup();
    connect_as("postgres")
        .batch_execute("DELETE FROM steward.schema_migrations WHERE version BETWEEN 9100 AND 9299")
        .expect("clean registry");
    guard
}

fn add(admin: &mut Client, version: i64, up: &str, down: &str) {
    admin
        .query_one("SELECT steward.migration_add($1, 'security', $2, $3)", &[&version, &up, &down])
        .unwrap_or_else(|e| panic!("migration_add {version}: {e}"));
}

fn forget(root: &mut Client, versions: &[i64]) {
    root.execute("DELETE FROM steward.schema_migrations WHERE version = ANY ($1)", &[&versions]).expect("forget");
}

#[test]
fn end_users_and_other_roles_cannot_touch_migrations() {
    sec_setup();
    let mut root = connect_as("postgres");
    for f in [
        "steward.migration_add(bigint,text,text,text)",
        "steward.migration_apply(bigint,boolean,boolean)",
        "steward.migration_rollback(bigint,boolean)",
        "steward.migration_check(text)",
        "steward.migration_dry_run(bigint)",
        "steward.migration_status()",
        "steward.migration_history(integer)",
        "steward._migration_trial(text,text,bigint)",
        "steward._migration_apply(bigint,bigint,boolean,boolean)",
        "steward._migration_submit(jsonb,boolean)",
        "steward._migration_run(oid,bigint,text,jsonb,boolean)",
    ] {
        for role in ["authenticated", "anon", "sec_creator", "pg_monitor"] {
            let can: bool = root.query_one("SELECT has_function_privilege($1, $2, 'EXECUTE')", &[&role, &f]).expect("privilege").get(0);
            assert!(!can, "{role} may execute {f}");
        }
    }
    // The internal submit takes a caller OID: not even an admin may call it (a forged caller
    // would run statements as anyone).
    for f in ["steward._migration_submit(jsonb,boolean)", "steward._migration_run(oid,bigint,text,jsonb,boolean)"] {
        for role in ["sec_admin", "service_role"] {
            let can: bool = root.query_one("SELECT has_function_privilege($1, $2, 'EXECUTE')", &[&role, &f]).expect("privilege").get(0);
            assert!(!can, "{role} may execute {f}");
        }
    }
    // Through PostgREST, as a signed-in user: 42501.
    let mut api = connect_as("authenticator");
    let err = as_role(&mut api, "authenticated", ALICE_CLAIMS, |tx| {
        tx.batch_execute("SELECT steward.migration_apply()")
    })
    .expect_err("refused");
    assert_eq!(sqlstate(&err), "42501");
    let mut admin = connect_as("sec_admin");
    let err = admin
        .batch_execute(&format!(
            "SELECT steward._migration_submit('{{\"run_id\": \"00000000-0000-4000-8000-000000000001\", \"version\": 1, \"direction\": \"up\", \"caller_oid\": 10, \"run_by\": \"x\", \"lock_timeout_ms\": 0, \"statement_timeout_ms\": 0}}', true)"
        ))
        .expect_err("forged caller");
    assert_eq!(sqlstate(&err), "42501");
}

#[test]
fn a_migration_runs_with_the_admins_rights_not_the_owners() {
    let _r = registry();
    let mut root = connect_as("postgres");
    let mut w = witness();
    root.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.sec_root_only (id int);
         GRANT SELECT ON public.sec_root_only TO sec_admin;",
    )
    .expect("a table of the superuser");
    let mut admin = connect_as("sec_admin");
    // Another role's table: ALTER needs ownership, which the admin has not.
    add(&mut admin, 9101, "ALTER TABLE public.sec_root_only ADD COLUMN sneaky int", "ALTER TABLE public.sec_root_only DROP COLUMN sneaky");
    let err = admin.batch_execute("SELECT steward.migration_apply(9101)").expect_err("not the owner");
    assert_eq!(sqlstate(&err), "42501", "{err:?}");
    let cols: i64 = root
        .query_one("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.sec_root_only'::regclass AND attname = 'sneaky'", &[])
        .unwrap()
        .get(0);
    assert_eq!(cols, 0);
    // The same through the trial run (in the admin's own session): refused, nothing changed.
    let outcome: (String, Option<String>) = admin
        .query_one("SELECT outcome, sqlstate FROM steward.migration_dry_run(9101) WHERE phase = 'up'", &[])
        .map(|r| (r.get(0), r.get(1)))
        .expect("trial");
    assert_eq!(outcome, ("failed".to_string(), Some("42501".to_string())));
    forget(&mut root, &[9101]);

    // Becoming someone else inside a migration is refused: SET ROLE, SET SESSION AUTHORIZATION,
    // and superuser-only functions run as the admin.
    for (v, up) in [
        (9102, "SET ROLE postgres; CREATE TABLE sec_admin_schema.as_postgres (id int)"),
        (9103, "SET SESSION AUTHORIZATION postgres; CREATE TABLE sec_admin_schema.as_postgres (id int)"),
        (9104, "CREATE TABLE sec_admin_schema.passwd AS SELECT pg_catalog.pg_read_file('/etc/passwd') AS t"),
        (9105, "ALTER ROLE sec_admin SUPERUSER"),
        (9106, "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pg_steward_pwned'"),
    ] {
        add(&mut admin, v, up, "SELECT 1");
        let err = admin.batch_execute(&format!("SELECT steward.migration_apply({v})")).expect_err(up);
        assert_eq!(sqlstate(&err), "42501", "{up}: {err:?}");
        forget(&mut root, &[v]);
    }
    assert!(!is_superuser(&mut root, "sec_admin"));
    assert!(!std::path::Path::new("/tmp/pg_steward_pwned").exists());
    for t in ["sec_admin_schema.as_postgres", "sec_admin_schema.passwd"] {
        let exists: Option<String> = root.query_one("SELECT to_regclass($1)::text", &[&t]).unwrap().get(0);
        assert_eq!(exists, None, "{t}");
    }
    // What a migration creates belongs to the admin.
    add(&mut admin, 9107, "CREATE TABLE sec_admin_schema.made_by_migration (id int)", "DROP TABLE sec_admin_schema.made_by_migration");
    admin.batch_execute("SELECT steward.migration_apply(9107)").expect("apply");
    let owner: String = root
        .query_one("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'sec_admin_schema.made_by_migration'::regclass", &[])
        .unwrap()
        .get(0);
    assert_eq!(owner, "sec_admin");
    admin.batch_execute("SELECT steward.migration_rollback(9107)").expect("rollback");
    forget(&mut root, &[9107]);
    assert!(survived(&mut w));
}

/// A migration that puts its own schema first on the session's search_path and defines the
/// functions the worker's own statements call (now(), clock_timestamp(), md5, ...) as traps
/// that make the admin a superuser: the worker runs its statements with a pinned path, so the
/// traps never run with the worker's rights.
#[test]
fn a_migration_cannot_hijack_the_workers_own_statements() {
    let _r = registry();
    let mut root = connect_as("postgres");
    let mut admin = connect_as("sec_admin");
    let trap = |name: &str| {
        format!(
            "CREATE OR REPLACE FUNCTION sec_admin_schema.{name}() RETURNS timestamptz LANGUAGE plpgsql AS $f$
             BEGIN BEGIN ALTER ROLE sec_admin SUPERUSER; EXCEPTION WHEN OTHERS THEN NULL; END; RETURN pg_catalog.{name}(); END $f$"
        )
    };
    let up = format!(
        "{}; {}; {}; SET search_path = sec_admin_schema, pg_catalog, public; CREATE TABLE sec_admin_schema.hijack (id int)",
        trap("now"),
        trap("clock_timestamp"),
        trap("statement_timestamp")
    );
    add(&mut admin, 9201, &up, "DROP TABLE sec_admin_schema.hijack");
    admin.batch_execute("SELECT steward.migration_apply(9201)").expect("applies");
    assert!(!is_superuser(&mut root, "sec_admin"), "a trap ran with the worker's rights");
    // Failing after the SET: the worker records the failure with the pinned path too.
    add(&mut admin, 9202, &format!("SET search_path = sec_admin_schema, pg_catalog; {}; SELECT 1/0", trap("now")), "SELECT 1");
    let err = admin.batch_execute("SELECT steward.migration_apply(9202)").expect_err("division by zero");
    assert_eq!(sqlstate(&err), "22012");
    assert!(!is_superuser(&mut root, "sec_admin"));
    admin.batch_execute("SELECT steward.migration_rollback(9201)").expect("rollback");
    root.batch_execute("DROP FUNCTION IF EXISTS sec_admin_schema.now(), sec_admin_schema.clock_timestamp(), sec_admin_schema.statement_timestamp()")
        .unwrap();
    forget(&mut root, &[9201, 9202]);
}

#[test]
fn hostile_scripts_are_refused_without_crashing() {
    sec_setup();
    let mut w = witness();
    let mut admin = connect_as("sec_admin");
    // Larger than any migration: refused before parsing.
    let huge = format!("SELECT '{}'", "x".repeat(17 * 1024 * 1024));
    let err = admin.query("SELECT * FROM steward.migration_check($1)", &[&huge]).expect_err("too large");
    assert_eq!(sqlstate(&err), "22023");
    // Nesting far deeper than any real statement: an error of the parser or a finding, never a crash.
    let deep = format!("DELETE FROM public.sec_deep WHERE {}true{}", "(".repeat(20000), ")".repeat(20000));
    let _ = admin.query("SELECT * FROM steward.migration_check($1)", &[&deep]);
    let ors = format!("DELETE FROM public.sec_deep WHERE {}", vec!["id = 1"; 5000].join(" OR "));
    let _ = admin.query("SELECT * FROM steward.migration_check($1)", &[&ors]);
    let nested_bool = format!("UPDATE public.sec_deep SET id = 1 WHERE {}true{}", "(true OR ".repeat(3000), ")".repeat(3000));
    let _ = admin.query("SELECT * FROM steward.migration_check($1)", &[&nested_bool]);
    // Unterminated quotes and comments, invalid escapes.
    for bad in ["SELECT 'unterminated", "/* never closed", "SELECT $a$ open", "SELECT 1; ALTER TABLE"] {
        let err = admin.query("SELECT * FROM steward.migration_check($1)", &[&bad]).expect_err(bad);
        assert_eq!(sqlstate(&err), "22023", "{bad}");
    }
    assert!(survived(&mut w), "a hostile script crashed a backend");
}
