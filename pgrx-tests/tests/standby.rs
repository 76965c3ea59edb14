//! A streaming replica of the test server (issue #14): every read-only function answers on the
//! hot standby, every writer refuses with 25006 and a HINT that names the primary; the same
//! holds in a read-only transaction on the primary.  scripts/test.sh starts the standby
//! (`pg_basebackup -R`) and passes its port in PG_STEWARD_STANDBY_PORT.

mod common;

use std::time::{Duration, Instant};

use common::*;
use postgres::{Client, NoTls};

fn standby() -> Client {
    let host = std::env::var("PG_STEWARD_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PG_STEWARD_STANDBY_PORT").expect("PG_STEWARD_STANDBY_PORT: scripts/test.sh starts the standby");
    let dsn = format!("host={host} port={port} dbname={DB} user=postgres");
    Client::connect(&dsn, NoTls).unwrap_or_else(|e| panic!("cannot connect to the standby with '{dsn}': {e}"))
}

/// Write something on the primary and wait until the standby has replayed it.
fn primary_with_data_replayed() -> Client {
    setup();
    let mut primary = connect(DB, "postgres");
    primary
        .batch_execute(
            "SELECT steward.install_train_schema('public');
             CREATE TABLE IF NOT EXISTS public.standby_t (id int PRIMARY KEY, v text);
             INSERT INTO public.standby_t SELECT g, md5(g::text) FROM generate_series(1, 200) g ON CONFLICT DO NOTHING;
             INSERT INTO public.ai_configurations (user_id, config_name, configuration)
             VALUES ('5ba4db00-0000-4000-8000-000000000001', 'standby', '{\"model\": {\"temperature\": 0.2}}')
             ON CONFLICT DO NOTHING;
             UPDATE public.ai_configurations SET configuration = '{\"model\": {\"temperature\": 0.3}}'
              WHERE config_name = 'standby';",
        )
        .expect("primary data");
    let lsn: String = primary.query_one("SELECT pg_current_wal_lsn()::text", &[]).expect("lsn").get(0);
    let mut s = standby();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up: bool = s
            .query_one("SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&lsn])
            .expect("replay")
            .get(0);
        if caught_up {
            break;
        }
        assert!(Instant::now() < deadline, "the standby did not replay {lsn} in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    primary
}

const READERS: &[&str] = &[
    "SELECT steward.health_report()",
    "SELECT steward.health_report_text()",
    "SELECT * FROM steward.database_overview()",
    "SELECT * FROM steward.table_health()",
    "SELECT * FROM steward.index_health()",
    "SELECT * FROM steward.table_bloat()",
    "SELECT * FROM steward.index_bloat()",
    "SELECT * FROM steward.unused_indexes()",
    "SELECT * FROM steward.duplicate_indexes()",
    "SELECT * FROM steward.invalid_indexes()",
    "SELECT * FROM steward.sequence_usage()",
    "SELECT * FROM steward.connection_pool_metrics()",
    "SELECT * FROM steward.long_running_sessions()",
    "SELECT * FROM steward.blocking_chains()",
    "SELECT * FROM steward.table_wraparound()",
    "SELECT * FROM steward.database_wraparound()",
    "SELECT * FROM steward.slow_queries()",
    "SELECT * FROM steward.maintenance_history()",
    "SELECT * FROM steward.maintenance_running()",
    "SELECT steward.effective_ai_config('5ba4db00-0000-4000-8000-000000000001')",
    "SELECT * FROM steward.explain_ai_config('5ba4db00-0000-4000-8000-000000000001')",
    "SELECT steward.effective_user_preferences('5ba4db00-0000-4000-8000-000000000001')",
    "SELECT steward.change_history('ai_config', NULL)",
    "SELECT steward.change_statistics()",
    "SELECT steward.change_history_csv()",
    "SELECT steward.config_diff('{\"a\": 1}', '{\"a\": 2}')",
    "SELECT steward.jsonb_diff_patch('{\"a\": 1}', '{\"a\": 2}')",
    "SELECT steward.validate_ai_config('{}')",
    "SELECT steward.audit_verify()",
    "SELECT steward.audit_checkpoint()",
    "SELECT steward.rollback_preview((SELECT id FROM steward.configuration_audit_log ORDER BY changed_at DESC LIMIT 1))",
    "SELECT * FROM steward.table_bloat_exact('public.standby_t')",
    "SELECT steward.table_exists('standby_t')",
];

const WRITERS: &[&str] = &[
    "SELECT steward.set_setting('slowQueryThresholdMs', '700')",
    "SELECT * FROM steward.vacuum('public.standby_t')",
    "SELECT steward.create_performance_alert('standby', 'info', 'x')",
    "SELECT * FROM steward.retention_run()",
    "SELECT steward.audit_purge()",
    "SELECT steward.capture_table_bloat_snapshot()",
    "SELECT steward.rollback((SELECT id FROM steward.configuration_audit_log ORDER BY changed_at DESC LIMIT 1))",
];

#[test]
fn every_reader_answers_on_the_standby_and_every_writer_refuses_with_25006() {
    let _primary = primary_with_data_replayed();
    let mut s = standby();
    for sql in READERS {
        s.batch_execute(sql).unwrap_or_else(|e| panic!("on the standby, {sql}: {e}"));
    }
    // The report says where it ran.
    for sql in WRITERS {
        let err = s.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), "25006", "{sql}: {err}");
        let hint = err.as_db_error().and_then(|d| d.hint()).unwrap_or_default().to_string();
        assert!(hint.contains("primary"), "{sql}: hint {hint:?}");
    }
}

#[test]
fn a_read_only_transaction_on_the_primary_reads_and_refuses_writes() {
    let mut primary = primary_with_data_replayed();
    let mut tx = primary.transaction().expect("begin");
    tx.batch_execute("SET TRANSACTION READ ONLY").expect("read only");
    for sql in READERS {
        // Each in a savepoint, so a failure names its statement.
        tx.batch_execute("SAVEPOINT r").expect("savepoint");
        tx.batch_execute(sql).unwrap_or_else(|e| panic!("read-only transaction, {sql}: {e}"));
        tx.batch_execute("RELEASE r").expect("release");
    }
    for sql in WRITERS {
        tx.batch_execute("SAVEPOINT w").expect("savepoint");
        let err = tx.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&err), "25006", "{sql}: {err}");
        tx.batch_execute("ROLLBACK TO w").expect("rollback to");
    }
}
