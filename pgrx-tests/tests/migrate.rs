//! Schema migrations (issue #15), as a client uses them: a non-superuser admin keeps its
//! migrations in pg_steward, applies and rolls them back (a CONCURRENTLY index included), sees
//! the locks a migration really takes by holding a conflicting lock from another session, finds
//! a drifted script, and a migration that fails in its third statement leaves nothing behind.
//! A database of its own (`steward_mig`): the registry is per database and the tests share it,
//! so they run one at a time (a lock) with versions of their own.

mod common;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::sqlstate;
use postgres::Client;

const DB: &str = "steward_mig";

fn db_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    static MADE: OnceLock<()> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    MADE.get_or_init(|| {
        common::setup();
        let mut root = common::connect("postgres", "postgres");
        root.batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).expect("drop");
        root.batch_execute(&format!("CREATE DATABASE {DB}")).expect("create");
        root.batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mig_admin') THEN CREATE ROLE mig_admin LOGIN; END IF;
             END $$;
             ALTER ROLE mig_admin NOSUPERUSER NOCREATEROLE NOCREATEDB;",
        )
        .expect("role");
        let mut db = common::connect(DB, "postgres");
        db.batch_execute(
            "CREATE EXTENSION pg_steward;
             GRANT steward_admin TO mig_admin;
             CREATE SCHEMA mig_app AUTHORIZATION mig_admin;
             CREATE TABLE public.owned_by_postgres (id int);
             GRANT SELECT ON public.owned_by_postgres TO mig_admin;
             SELECT steward.install_rpc_facade('public');",
        )
        .expect("extension, admin, schema");
    });
    guard
}

fn admin() -> Client {
    common::connect(DB, "mig_admin")
}

fn root() -> Client {
    common::connect(DB, "postgres")
}

fn status(c: &mut Client, version: i64) -> Option<String> {
    c.query_opt("SELECT status FROM steward.schema_migrations WHERE version = $1", &[&version])
        .expect("status")
        .map(|r| r.get(0))
}

/// Wait for a migration running in the background (CONCURRENTLY) to reach `want`.
fn wait_status(c: &mut Client, version: i64, want: &str) {
    let start = Instant::now();
    loop {
        // Reaps dead workers too.
        c.batch_execute("SELECT steward.migration_status()").expect("status");
        let running: i64 = c
            .query_one("SELECT count(*) FROM steward.migration_runs WHERE version = $1 AND status = 'running'", &[&version])
            .expect("runs")
            .get(0);
        if running == 0 && status(c, version).as_deref() == Some(want) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let last: String = c
                .query_one("SELECT coalesce(error_message, status) FROM steward.migration_runs WHERE version = $1 ORDER BY started_at DESC LIMIT 1", &[&version])
                .map(|r| r.get(0))
                .unwrap_or_default();
            panic!("migration {version} never became {want}: {last}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn applies_and_rolls_back_real_migrations_including_a_concurrent_index() {
    let _l = db_lock();
    let mut a = admin();
    a.batch_execute(
        "SELECT steward.migration_add(101, 'items',
             'CREATE TABLE mig_app.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL);
              INSERT INTO mig_app.items (label) SELECT ''item '' || g FROM generate_series(1, 5000) g',
             'DROP TABLE mig_app.items');
         SELECT steward.migration_add(102, 'label index',
             'SET lock_timeout = ''5s''; CREATE INDEX CONCURRENTLY items_label ON mig_app.items (label)',
             'DROP INDEX CONCURRENTLY mig_app.items_label');
         SELECT steward.migration_add(103, 'a flag',
             'SET lock_timeout = ''5s''; ALTER TABLE mig_app.items ADD COLUMN flagged boolean NOT NULL DEFAULT false',
             'ALTER TABLE mig_app.items DROP COLUMN flagged');",
    )
    .expect("three migrations");
    // 101 applies; 102 (CONCURRENTLY) starts in the background and stops the call.
    let out: String = a.query_one("SELECT steward.migration_apply(103)::text", &[]).expect("apply").get(0);
    let out: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(out["applied"], serde_json::json!([101]), "{out}");
    assert_eq!(out["startedInBackground"], serde_json::json!(102), "{out}");
    wait_status(&mut a, 102, "applied");
    let valid: bool = a
        .query_one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'mig_app.items_label'::regclass", &[])
        .expect("index")
        .get(0);
    assert!(valid, "the concurrent index is built and valid");
    let out: String = a.query_one("SELECT (steward.migration_apply(103) -> 'applied')::text", &[]).expect("apply").get(0);
    assert_eq!(out, "[103]");
    // The statements ran as the admin: what they created belongs to the admin, not to the
    // extension's owner.
    let owner: String = a.query_one("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'mig_app' AND tablename = 'items'", &[]).expect("owner").get(0);
    assert_eq!(owner, "mig_admin");
    // The seed's view.
    let seed: Vec<i64> = a
        .query("SELECT version FROM public.schema_migrations WHERE version BETWEEN 101 AND 103 ORDER BY 1", &[])
        .expect("facade")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seed, vec![101, 102, 103]);
    let current: i64 = a.query_one("SELECT steward.migration_current_version()", &[]).unwrap().get(0);
    assert!(current >= 103);

    // Roll back, newest first; the index's down script runs in the background too.
    a.batch_execute("SELECT steward.migration_rollback(103)").expect("rollback 103");
    let cols: i64 = a
        .query_one("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'mig_app' AND table_name = 'items' AND column_name = 'flagged'", &[])
        .unwrap()
        .get(0);
    assert_eq!(cols, 0);
    a.batch_execute("SELECT steward.migration_rollback(102)").expect("rollback 102");
    wait_status(&mut a, 102, "pending");
    let idx: Option<String> = a.query_one("SELECT to_regclass('mig_app.items_label')::text", &[]).unwrap().get(0);
    assert_eq!(idx, None);
    a.batch_execute("SELECT steward.migration_rollback(101)").expect("rollback 101");
    let t: Option<String> = a.query_one("SELECT to_regclass('mig_app.items')::text", &[]).unwrap().get(0);
    assert_eq!(t, None);
    let outcomes: Vec<(i64, String, String)> = a
        .query("SELECT version, direction, status FROM steward.migration_history() WHERE version BETWEEN 101 AND 103 ORDER BY started_at", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(outcomes.iter().all(|o| o.2 == "succeeded"), "{outcomes:?}");
    assert_eq!(outcomes.len(), 6, "{outcomes:?}");
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version BETWEEN 101 AND 103").unwrap();
}

#[test]
fn a_migration_that_fails_in_its_third_statement_leaves_nothing() {
    let _l = db_lock();
    let mut a = admin();
    a.batch_execute(
        "SELECT steward.migration_add(201, 'fails third',
             'CREATE TABLE mig_app.first (id int); CREATE TABLE mig_app.second (id int);
              INSERT INTO mig_app.no_such_table VALUES (1); CREATE TABLE mig_app.fourth (id int)',
             'DROP TABLE mig_app.first, mig_app.second, mig_app.fourth')",
    )
    .expect("add");
    let err = a.batch_execute("SELECT steward.migration_apply(201)").expect_err("fails");
    assert_eq!(sqlstate(&err), "42P01", "{err:?}");
    let db = err.as_db_error().expect("db error");
    assert!(db.message().contains("in statement 3"), "{}", db.message());
    assert!(db.detail().unwrap_or("").contains("INSERT INTO mig_app.no_such_table"), "{:?}", db.detail());
    for t in ["mig_app.first", "mig_app.second", "mig_app.fourth"] {
        let exists: Option<String> = a.query_one("SELECT to_regclass($1)::text", &[&t]).unwrap().get(0);
        assert_eq!(exists, None, "{t} was rolled back with the migration");
    }
    assert_eq!(status(&mut a, 201).as_deref(), Some("failed"));
    let applied: bool = a.query_one("SELECT steward.migration_is_applied(201)", &[]).unwrap().get(0);
    assert!(!applied);
    let r = a
        .query_one("SELECT status, error_sqlstate, failed_statement, run_by FROM steward.migration_runs WHERE version = 201", &[])
        .expect("the attempt is recorded");
    assert_eq!(r.get::<_, String>(0), "failed");
    assert_eq!(r.get::<_, String>(1), "42P01");
    assert_eq!(r.get::<_, i32>(2), 3);
    assert_eq!(r.get::<_, String>(3), "mig_admin");
    // Out of the way of the other tests.
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version = 201").unwrap();
}

#[test]
fn the_locks_are_observed_and_a_held_lock_makes_the_migration_time_out() {
    let _l = db_lock();
    let mut a = admin();
    a.batch_execute(
        "CREATE TABLE IF NOT EXISTS mig_app.busy (id int PRIMARY KEY, v text);
         INSERT INTO mig_app.busy SELECT g, 'v' FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
         SELECT steward.set_setting('migrationLockTimeoutMs', '300');
         SELECT steward.migration_add(301, 'busy column', 'ALTER TABLE mig_app.busy ADD COLUMN c int', 'ALTER TABLE mig_app.busy DROP COLUMN c');
         SELECT steward.migration_add(302, 'not reversible', 'ALTER TABLE mig_app.busy ADD COLUMN d int', 'SELECT 1');",
    )
    .expect("setup");
    // Observed: the trial run reports the ACCESS EXCLUSIVE lock on the table, and a down script
    // that restores the catalog.
    let rows: Vec<(String, String, Vec<String>)> = a
        .query("SELECT phase, outcome, locks FROM steward.migration_dry_run(301)", &[])
        .expect("dry run")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows[0].1, "ok", "{rows:?}");
    assert!(rows[0].2.contains(&"ACCESS EXCLUSIVE on mig_app.busy".to_string()), "{rows:?}");
    assert_eq!(rows.last().map(|r| (r.0.as_str(), r.1.as_str())), Some(("check", "reversible")), "{rows:?}");
    let check: (String, String) = a
        .query_one("SELECT outcome, message FROM steward.migration_dry_run(302) WHERE phase = 'check'", &[])
        .map(|r| (r.get(0), r.get(1)))
        .expect("302");
    assert_eq!(check.0, "not reversible", "{check:?}");
    assert!(check.1.contains("mig_app.busy differs"), "{check:?}");
    // The dry run changed nothing.
    let cols: i64 = a
        .query_one("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'mig_app' AND table_name = 'busy'", &[])
        .unwrap()
        .get(0);
    assert_eq!(cols, 2);

    // Another session reads the table in an open transaction: its ACCESS SHARE lock conflicts.
    let mut reader = root();
    let mut tx = reader.transaction().expect("tx");
    tx.batch_execute("SELECT count(*) FROM mig_app.busy").expect("read");
    let rows: Vec<(String, String, Option<String>)> = a
        .query("SELECT phase, outcome, sqlstate FROM steward.migration_dry_run(301) WHERE phase = 'up'", &[])
        .expect("dry run")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, vec![("up".to_string(), "failed".to_string(), Some("55P03".to_string()))]);
    let err = a.batch_execute("SELECT steward.migration_apply(301)").expect_err("lock timeout");
    assert_eq!(sqlstate(&err), "55P03", "{err:?}");
    assert_ne!(status(&mut a, 301).as_deref(), Some("applied"));
    let recorded: (String, String) = a
        .query_one("SELECT status, error_sqlstate FROM steward.migration_runs WHERE version = 301 ORDER BY started_at DESC LIMIT 1", &[])
        .map(|r| (r.get(0), r.get(1)))
        .expect("run");
    assert_eq!(recorded, ("failed".to_string(), "55P03".to_string()));
    tx.rollback().expect("release");
    a.batch_execute("SELECT steward.migration_apply(301)").expect("applies once the lock is gone");
    assert_eq!(status(&mut a, 301).as_deref(), Some("applied"));
    a.batch_execute("SELECT steward.migration_rollback(301); SELECT steward.reset_setting('migrationLockTimeoutMs')").expect("clean up");
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version IN (301, 302)").unwrap();
}

#[test]
fn a_drifted_script_is_found_and_refused_unless_forced() {
    let _l = db_lock();
    let mut a = admin();
    // One call each: a migration runs in a transaction of its own, which sees only committed ones.
    a.batch_execute("SELECT steward.migration_add(401, 'drift', 'CREATE TABLE mig_app.drift (id int)', 'DROP TABLE mig_app.drift')")
        .expect("add");
    a.batch_execute("SELECT steward.migration_apply(401)").expect("apply");
    a.batch_execute("SELECT steward.migration_add(402, 'after drift', 'CREATE TABLE mig_app.after_drift (id int)', 'DROP TABLE mig_app.after_drift')")
        .expect("add");
    // Someone edits the stored script of an applied migration.
    root()
        .batch_execute("UPDATE steward.schema_migrations SET up_script = up_script || '; CREATE TABLE mig_app.sneaky (id int)' WHERE version = 401")
        .unwrap();
    let drifted: String = a.query_one("SELECT (steward.migration_status() -> 'drifted')::text", &[]).unwrap().get(0);
    assert!(drifted.contains("\"version\": 401"), "{drifted}");
    let err = a.batch_execute("SELECT steward.migration_apply(402)").expect_err("refused");
    assert_eq!(sqlstate(&err), "22023", "{err:?}");
    assert_eq!(status(&mut a, 402).as_deref(), Some("pending"));
    let refused: i64 = a
        .query_one("SELECT count(*) FROM steward.migration_runs WHERE status = 'refused' AND error_message LIKE '%drifted%'", &[])
        .unwrap()
        .get(0);
    assert!(refused >= 1, "the refusal is recorded");
    a.batch_execute("SELECT steward.migration_apply(402, force => true)").expect("forced");
    assert_eq!(status(&mut a, 402).as_deref(), Some("applied"));
    a.batch_execute("SELECT steward.migration_rollback(402)").expect("clean up");
    a.batch_execute("SELECT steward.migration_rollback(401, force => true)").expect("clean up");
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version IN (401, 402)").unwrap();
}

#[test]
fn one_migration_at_a_time_and_bad_input_gets_clear_errors() {
    let _l = db_lock();
    let mut a = admin();
    a.batch_execute("SELECT steward.migration_add(501, 'waits', 'CREATE TABLE mig_app.waits (id int)', 'DROP TABLE mig_app.waits')")
        .expect("add");
    // While another session holds the migration lock (as a running migration does), a second
    // caller gets a conflict, recorded.
    let mut other = root();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('pg_steward migrations'))").unwrap();
    let err = a.batch_execute("SELECT steward.migration_apply(501)").expect_err("conflict");
    assert_eq!(sqlstate(&err), "40001", "{err:?}");
    tx.rollback().unwrap();
    a.batch_execute("SELECT steward.migration_apply(501)").expect("then it runs");
    a.batch_execute("SELECT steward.migration_rollback(501)").expect("and rolls back");

    for (sql, state) in [
        ("SELECT steward.migration_add(501, 'duplicate', 'SELECT 1', 'SELECT 1')", "23505"),
        ("SELECT steward.migration_add(0, 'zero', 'SELECT 1', 'SELECT 1')", "22023"),
        ("SELECT steward.migration_add(-1, 'negative', 'SELECT 1', 'SELECT 1')", "22023"),
        ("SELECT steward.migration_add(502, 'empty', '', 'SELECT 1')", "22023"),
        ("SELECT steward.migration_add(502, 'unparsable', 'ALTER TABLE', 'SELECT 1')", "22023"),
        ("SELECT steward.migration_rollback(999999)", "P0002"),
        ("SELECT steward.migration_rollback(501)", "P0002"),
    ] {
        let err = a.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), state, "{sql}: {err:?}");
    }
    let err = a.batch_execute("SELECT * FROM steward.migration_check('SELECT 1;\nALTER TABLE x ADD COLUMN')").expect_err("parse");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "22023");
    assert!(db.detail().unwrap_or("").contains("At character") && db.detail().unwrap_or("").contains("line 2"), "{:?}", db.detail());
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version = 501").unwrap();
    // Added and applied in one transaction: the worker's transaction cannot see it yet.
    let mut tx = a.transaction().unwrap();
    tx.batch_execute("SELECT steward.migration_add(503, 'same transaction', 'CREATE TABLE mig_app.same (id int)', 'DROP TABLE mig_app.same')")
        .unwrap();
    let err = tx.batch_execute("SELECT steward.migration_apply(503)").expect_err("not committed");
    assert_eq!(sqlstate(&err), "55000", "{err:?}");
    drop(tx);
}

#[test]
fn a_terminated_worker_fails_the_run_and_nothing_stays_running() {
    let _l = db_lock();
    let mut a = admin();
    a.batch_execute(
        "SELECT steward.migration_add(601, 'slow', 'CREATE TABLE mig_app.slow (id int); SELECT pg_sleep(60)', 'DROP TABLE mig_app.slow')",
    )
    .expect("add");
    let apply = thread::spawn(|| admin().batch_execute("SELECT steward.migration_apply(601)"));
    // The worker shows its running statement in pg_stat_activity.
    let mut r = root();
    let start = Instant::now();
    let pid: i32 = loop {
        let found = r
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_steward migration' AND query LIKE '%pg_sleep(60)%'",
                &[],
            )
            .expect("activity");
        if let Some(row) = found {
            break row.get(0);
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the worker never showed its statement");
        thread::sleep(Duration::from_millis(50));
    };
    r.batch_execute(&format!("SELECT pg_terminate_backend({pid})")).expect("terminate");
    let err = apply.join().expect("thread").expect_err("the run failed");
    assert_eq!(sqlstate(&err), "57P01", "{err:?}");
    // The caller's error rolled back its own transaction; the next look (any reader of the
    // history) marks the dead worker's run failed for good.
    let (status, run_status): (Option<String>, String) = {
        let row = a
            .query_one(
                "SELECT (SELECT status FROM steward.schema_migrations WHERE version = 601),
                        (SELECT status FROM steward.migration_history() WHERE version = 601 ORDER BY started_at DESC LIMIT 1)",
                &[],
            )
            .expect("status");
        (row.get(0), row.get(1))
    };
    assert_eq!(run_status, "failed");
    assert_ne!(status.as_deref(), Some("applied"));
    let t: Option<String> = a.query_one("SELECT to_regclass('mig_app.slow')::text", &[]).unwrap().get(0);
    assert_eq!(t, None, "the migration's transaction died with its worker");
    let running: i64 = a.query_one("SELECT count(*) FROM steward.migration_runs WHERE status = 'running'", &[]).unwrap().get(0);
    assert_eq!(running, 0, "no run stays running");
    root().batch_execute("DELETE FROM steward.schema_migrations WHERE version = 601").unwrap();
}
