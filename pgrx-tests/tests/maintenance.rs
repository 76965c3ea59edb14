//! Maintenance as the web app reaches it: the seed names under Supabase roles, proving the
//! work really happened (statistics counters, relfilenodes) and that every attempt is recorded.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use postgres::Client;

/// The tests of this file run one at a time: a REINDEX CONCURRENTLY or a held lock in one
/// would keep another's VACUUM from removing dead tuples (the xmin horizon is shared).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Claims of a service-role request with its own initiator, so tests running in parallel do
/// not share a rate-limit budget.
fn service(sub: &str) -> String {
    format!(r#"{{"role": "service_role", "sub": "{sub}"}}"#)
}

/// Create a committed table with `rows` rows of which every second one is deleted.
fn table_with_dead_rows(db: &mut Client, name: &str, rows: i32) {
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS public.{name};
         CREATE TABLE public.{name} (id int PRIMARY KEY, v text);
         ALTER TABLE public.{name} SET (autovacuum_enabled = false);
         INSERT INTO public.{name} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;
         DELETE FROM public.{name} WHERE id % 2 = 0;
         -- Maintenance acts with the caller's own rights: the service role owns its tables.
         ALTER TABLE public.{name} OWNER TO service_role;"
    ))
    .expect("table");
    db.batch_execute("SELECT pg_stat_force_next_flush()").expect("flush");
    db.batch_execute("SELECT 1").expect("flush happens after the statement");
}

fn counters(db: &mut Client, name: &str) -> (i64, i64, i64) {
    db.batch_execute("SELECT pg_stat_clear_snapshot()").expect("clear");
    let row = db
        .query_one(
            "SELECT vacuum_count, analyze_count, n_dead_tup FROM pg_stat_user_tables WHERE relid = $1::text::regclass",
            &[&format!("public.{name}")],
        )
        .expect("counters");
    (row.get(0), row.get(1), row.get(2))
}

/// Poll the record until it is no longer queued/running (the reaper runs on every look).
fn wait_finished(db: &mut Client, id: &str) -> (String, Option<String>, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = db
            .query_one(
                "SELECT h.status, h.error_sqlstate, h.error_message FROM steward.maintenance_history(1000) h WHERE h.id = $1::text::uuid",
                &[&id],
            )
            .expect("record");
        let status: String = row.get(0);
        if status != "queued" && status != "running" {
            return (status, row.get(1), row.get(2));
        }
        assert!(Instant::now() < deadline, "operation {id} still {status} after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vacuum_through_the_facade_really_runs_and_is_recorded() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_vac", 20_000);
    let (vac_before, ana_before, dead_before) = counters(&mut db, "m_vac");
    assert!(dead_before >= 9_000, "dead tuples before: {dead_before}");

    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000001");
    let (status, table, ip, agent, initiator) = as_role(&mut c, "service_role", &claims, |tx| {
        let r = tx.query_one(
            "SELECT status, table_name, client_ip, user_agent, initiated_by::text
               FROM public.execute_vacuum(p_table_name := 'm_vac', p_analyze := true)",
            &[],
        )?;
        Ok((r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(4)))
    })
    .expect("vacuum");
    assert_eq!(status, "completed");
    assert_eq!(table, "public.m_vac");
    assert_eq!(ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(agent.as_deref(), Some("supabase-js/2"));
    assert_eq!(initiator.as_deref(), Some("a0000000-0000-4000-8000-000000000001"));

    let (vac_after, ana_after, dead_after) = counters(&mut db, "m_vac");
    assert_eq!(vac_after, vac_before + 1, "vacuum_count must increase");
    assert_eq!(ana_after, ana_before + 1, "analyze_count must increase (VACUUM ANALYZE)");
    assert!(dead_after < dead_before / 10, "dead tuples must drop: {dead_before} -> {dead_after}");

    // The caller's transaction was rolled back (as_role always rolls back): the record stays.
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM steward.maintenance_operations WHERE table_name = 'public.m_vac' AND status = 'completed'
                AND options ->> 'statement' = 'VACUUM (ANALYZE) public.m_vac'",
            &[],
        )
        .expect("history")
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn analyze_runs_and_reindex_concurrently_replaces_the_index() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_idx", 5_000);
    let (_, ana_before, _) = counters(&mut db, "m_idx");
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000002");

    let status: String = as_role(&mut c, "service_role", &claims, |tx| {
        Ok(tx.query_one("SELECT status FROM public.execute_analyze(p_table_name := 'public.m_idx')", &[])?.get(0))
    })
    .expect("analyze");
    assert_eq!(status, "completed");
    let (_, ana_after, _) = counters(&mut db, "m_idx");
    assert_eq!(ana_after, ana_before + 1, "analyze_count must increase");

    let node_before: u32 = db
        .query_one("SELECT relfilenode FROM pg_class WHERE oid = 'public.m_idx_pkey'::regclass", &[])
        .expect("relfilenode")
        .get(0);
    let id: String = as_role(&mut c, "service_role", &claims, |tx| {
        Ok(tx
            .query_one("SELECT id::text FROM public.execute_reindex(p_index_name := 'm_idx_pkey', p_concurrent := true)", &[])?
            .get(0))
    })
    .expect("reindex");
    let (status, state, message) = wait_finished(&mut db, &id);
    assert_eq!(status, "completed", "{state:?} {message:?}");
    let row = db
        .query_one(
            "SELECT c.relfilenode, i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
              WHERE c.oid = 'public.m_idx_pkey'::regclass",
            &[],
        )
        .expect("index");
    let node_after: u32 = row.get(0);
    assert_ne!(node_after, node_before, "REINDEX CONCURRENTLY must build a new index file");
    assert!(row.get::<_, bool>(1), "the rebuilt index must be valid");
}

#[test]
fn every_refusal_has_its_own_sqlstate_and_a_record() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_ref", 100);
    let mut c = connect(DB, "authenticator");
    let sub = "a0000000-0000-4000-8000-000000000003";
    let claims = service(sub);
    let cases: &[(&str, &str)] = &[
        ("SELECT * FROM public.execute_vacuum(p_table_name := 'no_such_table')", "42P01"),
        ("SELECT * FROM public.execute_vacuum(p_table_name := 'm_ref_pkey')", "42P01"),
        ("SELECT * FROM public.execute_reindex()", "22023"),
        ("SELECT * FROM public.execute_vacuum(p_table_name := 'm_ref', p_full := true)", "22023"),
        ("SELECT * FROM public.execute_reindex(p_index_name := 'nope')", "42704"),
        ("SELECT * FROM public.execute_vacuum(p_table_name := 'm_ref; DROP TABLE public.m_ref')", "42P01"),
        ("SELECT * FROM public.execute_analyze(p_table_name := 'm_ref\"); DROP TABLE m_ref; --')", "42P01"),
    ];
    for (call, expected) in cases {
        // No peak window for this request (changed inside its own transaction only), so the
        // refusals do not depend on the time of day the suite runs.
        let err = as_role(&mut c, "service_role", &claims, |tx| {
            tx.execute("SELECT steward.set_setting('maintenancePeakStartHour', '0')", &[])?;
            tx.execute("SELECT steward.set_setting('maintenancePeakEndHour', '0')", &[])?;
            tx.query(*call, &[]).map(|_| ())
        })
        .expect_err(call);
        assert_eq!(sqlstate(&err), *expected, "{call}: {err}");
    }
    // Injection attempts left the table alone, and every refusal was recorded.
    let n: i64 = db.query_one("SELECT count(*) FROM public.m_ref", &[]).expect("table intact").get(0);
    assert_eq!(n, 50);
    let refused: i64 = db
        .query_one(
            "SELECT count(*) FROM steward.maintenance_operations
              WHERE initiated_by = $1::text::uuid AND refused AND status = 'failed' AND error_message IS NOT NULL
                AND client_ip = '203.0.113.7'",
            &[&sub],
        )
        .expect("records")
        .get(0);
    assert_eq!(refused, cases.len() as i64);
}

#[test]
fn anon_and_authenticated_cannot_run_maintenance() {
    let _serial = serial();
    setup();
    let mut c = connect(DB, "authenticator");
    for (role, claims) in [("anon", ANON_CLAIMS), ("authenticated", USER_CLAIMS)] {
        for call in [
            "SELECT * FROM public.execute_vacuum(p_table_name := 'x')",
            "SELECT * FROM public.execute_analyze()",
            "SELECT * FROM public.execute_reindex(p_table_name := 'x')",
            "SELECT public.weekly_maintenance()",
            "SELECT * FROM public.get_maintenance_history()",
            "SELECT * FROM public.maintenance_operations",
            "SELECT * FROM steward.run_maintenance('VACUUM')",
        ] {
            let err = as_role(&mut c, role, claims, |tx| tx.query(call, &[]).map(|_| ())).expect_err(call);
            assert_eq!(sqlstate(&err), "42501", "{role}: {call}: {err}");
        }
    }
}

#[test]
fn peak_window_and_rate_limit_refuse() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    for i in 0..11 {
        db.batch_execute(&format!("DROP TABLE IF EXISTS public.m_rate{i}; CREATE TABLE public.m_rate{i} (id int); ALTER TABLE public.m_rate{i} OWNER TO service_role"))
            .expect("tables");
    }
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000004");
    // A peak window covering the whole day, changed only inside the request's transaction.
    let err = as_role(&mut c, "service_role", &claims, |tx| {
        tx.execute("SELECT steward.set_setting('maintenancePeakStartHour', '0')", &[])?;
        tx.execute("SELECT steward.set_setting('maintenancePeakEndHour', '24')", &[])?;
        tx.query("SELECT * FROM public.execute_vacuum(p_table_name := 'm_rate0', p_full := true, p_confirm := true)", &[])
            .map(|_| ())
    })
    .expect_err("VACUUM FULL inside the peak window");
    assert_eq!(sqlstate(&err), "55000", "{err}");

    // Ten operations a minute pass, the eleventh is refused.
    for i in 0..10 {
        as_role(&mut c, "service_role", &claims, |tx| {
            tx.query(&format!("SELECT * FROM public.execute_analyze(p_table_name := 'm_rate{i}')"), &[]).map(|_| ())
        })
        .unwrap_or_else(|e| panic!("analyze {i}: {e}"));
    }
    let err = as_role(&mut c, "service_role", &claims, |tx| {
        tx.query("SELECT * FROM public.execute_analyze(p_table_name := 'm_rate10')", &[]).map(|_| ())
    })
    .expect_err("rate limit");
    assert_eq!(sqlstate(&err), "54000", "{err}");
}

#[test]
fn a_second_operation_on_the_same_table_conflicts_and_a_killed_worker_ends_failed() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_kill", 1_000);
    let mut locker = connect(DB, "postgres");
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000005");

    // Hold a lock so the worker waits (lock_timeout 5 s), long enough to act on it.
    let mut tx = locker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE public.m_kill IN ACCESS EXCLUSIVE MODE").expect("lock");
    let id: String = as_role(&mut c, "service_role", &claims, |t| {
        Ok(t.query_one("SELECT id::text FROM public.execute_vacuum(p_table_name := 'm_kill', p_async := true)", &[])?.get(0))
    })
    .expect("async vacuum");

    let err = as_role(&mut c, "service_role", &claims, |t| {
        t.query("SELECT * FROM public.execute_analyze(p_table_name := 'm_kill')", &[]).map(|_| ())
    })
    .expect_err("second operation on the same table");
    assert_eq!(sqlstate(&err), "23505", "{err}");

    // Wait until the worker is running (waiting for the lock), then kill it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        let row = db
            .query_one(
                "SELECT m.worker_pid FROM steward.maintenance_operations m
                   JOIN pg_stat_activity a ON a.pid = m.worker_pid
                  WHERE m.id = $1::text::uuid AND m.status = 'running' AND a.wait_event_type = 'Lock'",
                &[&id],
            )
            .ok();
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(Instant::now() < deadline, "worker never waited for the lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed: bool = db.query_one("SELECT pg_terminate_backend($1)", &[&pid]).expect("kill").get(0);
    assert!(killed);
    tx.rollback().expect("unlock");

    let (status, state, message) = wait_finished(&mut db, &id);
    assert_eq!(status, "failed");
    assert_eq!(state.as_deref(), Some("57P01"), "{message:?}");
}

#[test]
fn history_running_and_cancel() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_cancel", 1_000);
    let mut locker = connect(DB, "postgres");
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000006");

    let mut tx = locker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE public.m_cancel IN ACCESS EXCLUSIVE MODE").expect("lock");
    let id: String = as_role(&mut c, "service_role", &claims, |t| {
        Ok(t.query_one("SELECT id::text FROM public.execute_vacuum(p_table_name := 'm_cancel', p_async := true)", &[])?.get(0))
    })
    .expect("async vacuum");
    let listed: i64 = as_role(&mut c, "service_role", &claims, |t| {
        Ok(t.query_one("SELECT count(*) FROM public.get_running_maintenance() WHERE id = $1::text::uuid", &[&id])?.get(0))
    })
    .expect("running");
    assert_eq!(listed, 1);
    // Cancel once the worker is in its statement.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cancelled: bool = as_role(&mut c, "service_role", &claims, |t| {
            Ok(t.query_one("SELECT public.cancel_maintenance($1::text::uuid)", &[&id])?.get(0))
        })
        .expect("cancel");
        let (status, state, _) = {
            std::thread::sleep(Duration::from_millis(100));
            let row = db
                .query_one("SELECT status, error_sqlstate FROM steward.maintenance_operations WHERE id = $1::text::uuid", &[&id])
                .expect("record");
            (row.get::<_, String>(0), row.get::<_, Option<String>>(1), cancelled)
        };
        if status == "failed" {
            assert_eq!(state.as_deref(), Some("57014"), "cancelled by user request");
            break;
        }
        assert!(Instant::now() < deadline, "never cancelled");
    }
    tx.rollback().expect("unlock");
    let newest: String = as_role(&mut c, "service_role", &claims, |t| {
        Ok(t.query_one("SELECT status FROM public.get_maintenance_history(lim := 1)", &[])?.get(0))
    })
    .expect("history");
    assert!(!newest.is_empty());
}

#[test]
fn retention_and_configuration_backup_through_the_facade() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    db.batch_execute(
        "DROP TABLE IF EXISTS public.m_conv, public.m_conv_archive, public.m_conf;
         CREATE TABLE public.m_conv (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created_at timestamptz NOT NULL);
         INSERT INTO public.m_conv (created_at) SELECT now() - make_interval(days => g) + interval '12 hours' FROM generate_series(1, 60) g;
         CREATE TABLE public.m_conv_archive (LIKE public.m_conv);
         CREATE TABLE public.m_conf (key text PRIMARY KEY, value jsonb NOT NULL);
         INSERT INTO public.m_conf VALUES ('a', '1'), ('b', '2');
         SELECT steward.config_register('public.m_conf');
         -- Retention and restores act with the caller's own rights.
         ALTER TABLE public.m_conv OWNER TO service_role;
         ALTER TABLE public.m_conv_archive OWNER TO service_role;
         ALTER TABLE public.m_conf OWNER TO service_role;",
    )
    .expect("tables");
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000007");
    // Policy, dry run and real run inside one request that commits.
    let (dry, done): (i64, i64) = {
        let mut tx = c.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE service_role").expect("role");
        tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims]).expect("claims");
        tx.query_one(
            "SELECT * FROM public.set_retention_policy(tbl := 'public.m_conv', timestamp_column := 'created_at',
                      keep := '30 days', action := 'archive', archive_table := 'public.m_conv_archive', batch_size := 7)",
            &[],
        )
        .expect("policy");
        let dry: i64 = tx
            .query_one("SELECT sum(eligible)::bigint FROM public.run_retention(dry_run := true) WHERE relation = 'public.m_conv'", &[])
            .expect("dry run")
            .get(0);
        let done: i64 = tx
            .query_one("SELECT sum(processed)::bigint FROM public.run_retention() WHERE relation = 'public.m_conv'", &[])
            .expect("run")
            .get(0);
        tx.commit().expect("commit");
        (dry, done)
    };
    assert_eq!(dry, 30, "rows older than 30 days");
    assert_eq!(done, 30);
    let (left, archived): (i64, i64) = {
        let r = db
            .query_one("SELECT (SELECT count(*) FROM public.m_conv), (SELECT count(*) FROM public.m_conv_archive)", &[])
            .expect("counts");
        (r.get(0), r.get(1))
    };
    assert_eq!((left, archived), (30, 30));

    // Backup, change, restore: all rows back exactly.
    let id: String = as_role(&mut c, "service_role", &claims, |tx| {
        let id: String = tx.query_one("SELECT public.backup_configuration(label := 'it')::text", &[])?.get(0);
        Ok(id)
    })
    .expect("backup");
    // as_role rolled the backup back: take it for real in a committed request.
    let id = {
        assert!(!id.is_empty());
        let mut tx = c.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE service_role").expect("role");
        let id: String = tx.query_one("SELECT public.backup_configuration(label := 'it')::text", &[]).expect("backup").get(0);
        tx.commit().expect("commit");
        id
    };
    db.batch_execute("UPDATE public.m_conf SET value = '9'; INSERT INTO public.m_conf VALUES ('c', '3')").expect("change");
    let err = as_role(&mut c, "service_role", &claims, |tx| {
        tx.query("SELECT public.restore_configuration($1::text::uuid)", &[&id]).map(|_| ())
    })
    .expect_err("restore without confirm");
    assert_eq!(sqlstate(&err), "22023");
    {
        let mut tx = c.transaction().expect("begin");
        tx.batch_execute("SET LOCAL ROLE service_role").expect("role");
        tx.query("SELECT public.restore_configuration($1::text::uuid, confirm := true)", &[&id]).expect("restore");
        tx.commit().expect("commit");
    }
    let rows: Vec<(String, String)> = db
        .query("SELECT key, value::text FROM public.m_conf ORDER BY key", &[])
        .expect("rows")
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
    for (role, claims) in [("anon", ANON_CLAIMS), ("authenticated", USER_CLAIMS)] {
        let err = as_role(&mut c, role, claims, |tx| tx.query("SELECT public.backup_configuration()", &[]).map(|_| ()))
            .expect_err("admins only");
        assert_eq!(sqlstate(&err), "42501");
    }
}

#[test]
fn a_statement_timeout_fails_the_operation_and_a_failed_reindex_concurrently_is_cleaned_up() {
    let _serial = serial();
    setup();
    let mut db = connect(DB, "postgres");
    table_with_dead_rows(&mut db, "m_time", 2_000);
    let mut c = connect(DB, "authenticator");
    let claims = service("a0000000-0000-4000-8000-000000000008");
    let tight = |tx: &mut postgres::Transaction<'_>| -> Result<(), postgres::Error> {
        tx.execute("SELECT steward.set_setting('maintenanceStatementTimeoutSeconds', '2')", &[])?;
        tx.execute("SELECT steward.set_setting('maintenanceLockTimeoutSeconds', '0')", &[])?;
        Ok(())
    };

    // 1. VACUUM waiting for a lock (no lock timeout) is cancelled by the statement timeout.
    let mut locker = connect(DB, "postgres");
    let mut held = locker.transaction().expect("begin");
    held.batch_execute("LOCK TABLE public.m_time IN ACCESS EXCLUSIVE MODE").expect("lock");
    let err = as_role(&mut c, "service_role", &claims, |tx| {
        tight(tx)?;
        tx.query("SELECT * FROM public.execute_vacuum(p_table_name := 'm_time')", &[]).map(|_| ())
    })
    .expect_err("statement timeout");
    assert_eq!(sqlstate(&err), "57014", "{err}");
    assert!(err.to_string().contains("statement timeout") || format!("{err:?}").contains("statement timeout"), "{err:?}");
    held.rollback().expect("unlock");

    // 2. REINDEX CONCURRENTLY builds its _ccnew copy, then waits for an open writer; the
    // timeout fails it; the worker drops the invalid copy once the writer is gone.
    let mut writer = connect(DB, "postgres");
    let mut open = writer.transaction().expect("begin");
    open.batch_execute("INSERT INTO public.m_time VALUES (1000000, 'writer')").expect("write");
    let id: String = as_role(&mut c, "service_role", &claims, |tx| {
        tight(tx)?;
        Ok(tx
            .query_one("SELECT id::text FROM public.execute_reindex(p_index_name := 'm_time_pkey', p_concurrent := true)", &[])?
            .get(0))
    })
    .expect("queued");
    // The reindex times out at ~2 s; its cleanup then waits for this writer: end it at 3 s.
    std::thread::sleep(Duration::from_millis(3000));
    open.rollback().expect("end writer");
    let (status, state, message) = wait_finished(&mut db, &id);
    assert_eq!(status, "failed");
    assert_eq!(state.as_deref(), Some("57014"), "{message:?}");
    let cleanup: String = db
        .query_one("SELECT coalesce((options -> 'cleanup')::text, '') FROM steward.maintenance_operations WHERE id = $1::text::uuid", &[&id])
        .expect("record")
        .get(0);
    assert!(cleanup.contains("\"dropped\""), "cleanup recorded: {cleanup}");
    assert!(!cleanup.contains("not_dropped"), "cleanup failed: {cleanup}");
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'public.m_time'::regclass AND (NOT i.indisvalid OR c.relname ~ '_ccnew')",
            &[],
        )
        .expect("indexes")
        .get(0);
    assert_eq!(left, 0, "no invalid _ccnew index may be left behind");
}
