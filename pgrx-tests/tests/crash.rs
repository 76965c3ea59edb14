//! Crashes without lost records (issue #14).  A server of its own (the other client tests share
//! the main test server, which these tests stop and kill): `pg_ctl -m immediate` in the middle of
//! a `VACUUM FULL` run by the maintenance worker, of a bulk rollback and of an audit purge, and a
//! backend killed with SIGKILL in the middle of an audited multi-row UPDATE (the postmaster
//! then restarts every backend and recovers).  Afterwards no maintenance record says `running`,
//! no configuration differs from the newest audit entry of its chain (no change without its
//! entry, no entry without its change), every chain verifies, and the interrupted bulk
//! rollback and purge left nothing half done.
//!
//! Each test holds the server's lock; "in the middle" is made deterministic by a second session
//! holding a lock the interrupted statement reaches only after it has done part of its work.

use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

fn bin(name: &str) -> String {
    let dir = std::env::var("PG_STEWARD_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{name}")
}

fn port() -> u16 {
    std::env::var("PG_STEWARD_CRASH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let main: u16 = std::env::var("PG_STEWARD_TEST_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(25429);
            main + 2
        })
}

fn dir() -> String {
    std::env::var("PG_STEWARD_CRASH_DIR").unwrap_or_else(|_| format!("/tmp/pg_steward_crash_{}", port()))
}

/// Run a PostgreSQL program as the `postgres` OS user (the tests run as root; initdb refuses root).
fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("sudo")
        .arg("-u")
        .arg("postgres")
        .arg(bin(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    out
}

fn pg_ctl(args: &[&str]) {
    let data = format!("{}/data", dir());
    let log = format!("{}/server.log", dir());
    let mut all = vec!["-D", data.as_str(), "-l", log.as_str(), "-w", "-t", "120"];
    all.extend_from_slice(args);
    let out = as_postgres("pg_ctl", &all);
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The crash server: made once per test process, fresh each time (a data directory of its own).
fn server() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    static MADE: OnceLock<()> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    MADE.get_or_init(|| {
        let d = dir();
        let data = format!("{d}/data");
        if std::path::Path::new(&format!("{data}/postmaster.pid")).exists() {
            let _ = as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("crash server directory");
        let chown = Command::new("chown").args(["postgres:postgres", &d]).status().expect("chown");
        assert!(chown.success());
        let out = as_postgres("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nfsync = off\n\
             max_connections = 40\nrestart_after_crash = on\nlog_min_messages = warning\n",
            port()
        );
        let conf_path = format!("{data}/postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("postgresql.conf");
        pg_ctl(&["start"]);
        // The roles the audit policies name (as on Supabase).
        root().batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
             END $$;",
        )
        .expect("roles");
    });
    guard
}

fn try_connect(db: &str) -> Result<Client, postgres::Error> {
    Client::connect(&format!("host=127.0.0.1 port={} dbname={db} user=postgres", port()), NoTls)
}

/// A connection, waiting while the server recovers from a crash (up to two minutes).
fn connect(db: &str) -> Client {
    let start = Instant::now();
    loop {
        match try_connect(db) {
            Ok(c) => return c,
            Err(e) if start.elapsed() < Duration::from_secs(120) => {
                let _ = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to the crash server: {e}"),
        }
    }
}

fn root() -> Client {
    connect("postgres")
}

fn fresh_database(name: &str) -> Client {
    let mut r = root();
    // Names are fixed by the tests, never input.
    r.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).expect("drop");
    r.batch_execute(&format!("CREATE DATABASE {name}")).expect("create");
    let mut db = connect(name);
    // No peak window: VACUUM FULL is refused from 9 to 17 server time by default, and the
    // tests must not depend on the time of day they run (this one timed out from 09:00 UTC).
    db.batch_execute(
        "CREATE EXTENSION pg_steward;
         SELECT steward.set_setting('maintenancePeakStartHour', '0');
         SELECT steward.set_setting('maintenancePeakEndHour', '0');",
    )
    .expect("extension");
    db
}

/// Wait until `probe` (run on a fresh connection each time) returns true.
fn wait_for(db: &str, what: &str, probe: &str) {
    let start = Instant::now();
    let mut c = connect(db);
    loop {
        let yes: bool = c.query_one(probe, &[]).unwrap_or_else(|e| panic!("{what}: {e}")).get(0);
        if yes {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn immediate_restart() {
    pg_ctl(&["-m", "immediate", "stop"]);
    pg_ctl(&["start"]);
}

/// The session blocked on a lock in database `db` running a statement that contains `needle`.
fn blocked_pid(db: &str, needle: &str) -> i32 {
    let probe = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock'
                         AND query LIKE '%{needle}%' AND pid <> pg_backend_pid())"
    );
    wait_for(db, needle, &probe);
    connect(db)
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE $2",
            &[&db, &format!("%{needle}%")],
        )
        .expect("blocked pid")
        .get(0)
}

/// Every configuration equals the newest entry of its chain, every chain whose configuration is
/// gone ends with its deletion, and the chains verify.
fn audit_consistent(db: &mut Client) -> i64 {
    let drift: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM public.ai_configurations c
                      WHERE c.configuration IS DISTINCT FROM
                            (SELECT e.new_values FROM steward.audit_entries e WHERE e.config_id = c.id ORDER BY e.seq DESC LIMIT 1))
                  + (SELECT count(*) FROM (SELECT DISTINCT ON (e.config_id) e.config_id, e.action FROM steward.audit_entries e
                                            WHERE e.config_id IS NOT NULL ORDER BY e.config_id, e.seq DESC) l
                      WHERE l.action <> 'deleted' AND NOT EXISTS (SELECT 1 FROM public.ai_configurations c WHERE c.id = l.config_id))",
            &[],
        )
        .expect("consistency")
        .get(0);
    assert_eq!(drift, 0, "configurations and their audit chains disagree");
    let v: String = db.query_one("SELECT steward.audit_verify()::text", &[]).expect("audit_verify").get(0);
    let v: serde_json::Value = serde_json::from_str(&v).expect("json");
    assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    v["checked"].as_i64().unwrap_or(-1)
}

/// 200 configurations, each created and updated once (400 entries).
fn configurations(db: &mut Client) {
    db.batch_execute(
        "SELECT steward.install_train_schema('public');
         INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         SELECT ('c0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'c', jsonb_build_object('model', jsonb_build_object('maxTokens', g))
           FROM generate_series(1, 200) g;
         UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,temperature}', '0.5');",
    )
    .expect("configurations with audit chains");
}

/// An AFTER UPDATE trigger that fires after pg_steward's audit trigger (triggers fire in name
/// order) and, at the 150th configuration, waits for an advisory lock a second session holds:
/// the statement stops with 149 changes and their entries written in its open transaction.
/// Returns the session holding the lock.
fn block_at_150(db: &mut Client) -> Client {
    db.batch_execute(
        "CREATE FUNCTION public.crash_block() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.user_id = 'c0000000-0000-4000-8000-000000000150' THEN PERFORM pg_advisory_xact_lock(4242); END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER zz_crash_block AFTER UPDATE ON public.ai_configurations FOR EACH ROW EXECUTE FUNCTION public.crash_block();",
    )
    .expect("the blocking trigger");
    let db_name: String = db.query_one("SELECT current_database()::text", &[]).expect("db").get(0);
    let mut holder = connect(&db_name);
    holder.batch_execute("SELECT pg_advisory_lock(4242)").expect("advisory lock");
    holder
}

fn no_live_maintenance(db: &mut Client) {
    // Every reader of the history marks operations whose worker is gone as failed first.
    let live: i64 = db.query_one("SELECT count(*) FROM steward.maintenance_running()", &[]).expect("running").get(0);
    assert_eq!(live, 0);
    let raw: i64 = db
        .query_one("SELECT count(*) FROM steward.maintenance_operations WHERE status IN ('queued', 'running')", &[])
        .expect("records")
        .get(0);
    assert_eq!(raw, 0, "no record says running after the restart");
}

#[test]
fn immediate_shutdown_during_vacuum_full_leaves_the_table_and_a_failed_record() {
    let _s = server();
    let mut db = fresh_database("crash_vacuum");
    db.batch_execute(
        "CREATE TABLE public.big (id bigint PRIMARY KEY, pad text);
         INSERT INTO public.big SELECT g, repeat('x', 300) FROM generate_series(1, 600000) g;
         DELETE FROM public.big WHERE id % 2 = 0;",
    )
    .expect("a table worth rewriting");
    let worker = thread::spawn(|| {
        let mut c = connect("crash_vacuum");
        c.query("SELECT * FROM steward.vacuum('public.big', \"full\" => true, confirm => true)", &[]).map(|_| ())
    });
    // The worker is rewriting the table: VACUUM FULL reports through pg_stat_progress_cluster
    // from its start to its commit (any phase will do: the crash comes before the commit).
    wait_for(
        "crash_vacuum",
        "VACUUM FULL rewriting the table",
        "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_cluster WHERE relid = 'public.big'::regclass)",
    );
    immediate_restart();
    assert!(worker.join().expect("thread").is_err(), "the VACUUM FULL did not finish before the crash");

    let mut db = connect("crash_vacuum");
    no_live_maintenance(&mut db);
    let r = db
        .query_one(
            "SELECT status, error_sqlstate FROM steward.maintenance_history(10) WHERE operation_type = 'VACUUM FULL'",
            &[],
        )
        .expect("the interrupted operation's record");
    assert_eq!((r.get::<_, String>(0), r.get::<_, Option<String>>(1)), ("failed".into(), Some("57P01".into())));
    // The table and its index are intact, and the operation can run again.
    let n: i64 = db.query_one("SELECT count(*) FROM public.big", &[]).expect("count").get(0);
    assert_eq!(n, 300_000);
    db.batch_execute("SET enable_seqscan = off").expect("index scan");
    let n: i64 = db.query_one("SELECT count(*) FROM public.big WHERE id > 0", &[]).expect("count").get(0);
    assert_eq!(n, 300_000);
    let status: String = db
        .query_one("SELECT status FROM steward.vacuum('public.big', \"full\" => true, confirm => true)", &[])
        .expect("VACUUM FULL again")
        .get(0);
    assert_eq!(status, "completed");
}

#[test]
fn immediate_shutdown_during_a_bulk_rollback_applies_none_of_it() {
    let _s = server();
    let mut db = fresh_database("crash_rollback");
    configurations(&mut db);
    let entries = audit_consistent(&mut db);
    assert_eq!(entries, 400);
    // The rollback checks and locks all 200, then writes them one by one (each write followed by
    // its entry); after 149 it waits for the lock another session holds.
    let holder = block_at_150(&mut db);
    let rollback = thread::spawn(|| {
        let mut c = connect("crash_rollback");
        c.batch_execute(
            "SELECT steward.rollback_bulk(array_agg(id ORDER BY owner_id), 'crash test')
               FROM steward.audit_entries WHERE action = 'updated'",
        )
    });
    blocked_pid("crash_rollback", "rollback_bulk");
    immediate_restart();
    assert!(rollback.join().expect("thread").is_err(), "the bulk rollback did not finish before the crash");
    drop(holder);

    let mut db = connect("crash_rollback");
    assert_eq!(audit_consistent(&mut db), entries, "no entry of the interrupted rollback remains");
    let rolled_back: i64 = db
        .query_one("SELECT count(*) FROM public.ai_configurations WHERE configuration ? 'model' AND NOT configuration -> 'model' ? 'temperature'", &[])
        .expect("configurations")
        .get(0);
    assert_eq!(rolled_back, 0, "none of the rollback was applied");
    // Run again, it applies to every configuration at once.
    db.batch_execute(
        "SELECT steward.rollback_bulk(array_agg(id ORDER BY owner_id), 'after the crash')
           FROM steward.audit_entries WHERE action = 'updated'",
    )
    .expect("the bulk rollback again");
    assert_eq!(audit_consistent(&mut db), entries + 200);
    let rolled_back: i64 = db
        .query_one("SELECT count(*) FROM public.ai_configurations WHERE NOT configuration -> 'model' ? 'temperature'", &[])
        .expect("configurations")
        .get(0);
    assert_eq!(rolled_back, 200);
}

#[test]
fn immediate_shutdown_during_an_audit_purge_removes_nothing() {
    let _s = server();
    let mut db = fresh_database("crash_purge");
    configurations(&mut db);
    let entries = audit_consistent(&mut db);
    // The purge removes the entries and writes the anchors, then waits to record itself.
    let mut holder = connect("crash_purge");
    let mut tx = holder.transaction().expect("tx");
    tx.batch_execute("LOCK TABLE steward.audit_purges IN ACCESS EXCLUSIVE MODE").expect("lock");
    let purge = thread::spawn(|| {
        let mut c = connect("crash_purge");
        c.batch_execute("SELECT steward._audit_purge(now() + interval '1 second', false)")
    });
    blocked_pid("crash_purge", "_audit_purge");
    // It got as far as the record: the entries are deleted in its (uncommitted) transaction.
    immediate_restart();
    assert!(purge.join().expect("thread").is_err(), "the purge did not finish before the crash");
    drop(tx);
    drop(holder);

    let mut db = connect("crash_purge");
    assert_eq!(audit_consistent(&mut db), entries, "every entry is still there");
    let (anchors, purges): (i64, i64) = {
        let r = db
            .query_one("SELECT (SELECT count(*) FROM steward.audit_chain_anchors), (SELECT count(*) FROM steward.audit_purges)", &[])
            .expect("anchors");
        (r.get(0), r.get(1))
    };
    assert_eq!((anchors, purges), (0, 0), "no anchor and no purge record without the removal");
    // Audited writes go on after the restart (no writer is left waiting for the purge's lock).
    db.batch_execute("UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topP}', '0.9')")
        .expect("audited update");
    assert_eq!(audit_consistent(&mut db), entries + 200);
}

#[test]
fn sigkill_during_an_audited_multi_row_update_leaves_no_change_without_its_entry() {
    let _s = server();
    let mut db = fresh_database("crash_update");
    configurations(&mut db);
    let entries = audit_consistent(&mut db);
    // Rows are updated, then their entries written at the end of the statement; after 149
    // entries the statement waits for the lock another session holds.
    let holder = block_at_150(&mut db);
    let update = thread::spawn(|| {
        let mut c = connect("crash_update");
        c.batch_execute("UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topK}', '40')")
    });
    let pid = blocked_pid("crash_update", "topK");
    let kill = Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill");
    assert!(kill.success());
    assert!(update.join().expect("thread").is_err(), "the update was killed");
    // The postmaster ends every other backend after a SIGKILL, then recovers: wait until the
    // holder's session is gone (connect() then waits for the recovery to finish).
    let mut holder = holder;
    let start = Instant::now();
    while holder.batch_execute("SELECT 1").is_ok() {
        assert!(start.elapsed() < Duration::from_secs(60), "the postmaster did not restart the backends");
        thread::sleep(Duration::from_millis(20));
    }
    drop(holder);
    let mut db = connect("crash_update");
    assert_eq!(audit_consistent(&mut db), entries);
    let changed: i64 = db
        .query_one("SELECT count(*) FROM public.ai_configurations WHERE configuration -> 'model' ? 'topK'", &[])
        .expect("configurations")
        .get(0);
    assert_eq!(changed, 0);
    db.batch_execute("UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topK}', '40')")
        .expect("the update again");
    assert_eq!(audit_consistent(&mut db), entries + 200);
}
