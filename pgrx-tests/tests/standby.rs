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
    // The database was dropped and created again by this test process (common::setup()): a
    // session opened while the standby still replayed that may have reached the old one. A new
    // session must see the extension before the tests go on.
    loop {
        let ready = standby()
            .query_one("SELECT to_regnamespace('steward') IS NOT NULL AND to_regclass('public.standby_t') IS NOT NULL", &[])
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the standby's {DB} has no steward schema after 30 s");
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
    "SELECT steward.migration_status()",
    "SELECT steward.migration_current_version()",
    "SELECT steward.migration_is_applied(1)",
    "SELECT * FROM steward.migration_history()",
    "SELECT * FROM steward.migration_check('CREATE INDEX ON public.standby_t (id); TRUNCATE public.standby_t')",
    "SELECT steward.list_alerts('{\"status\": \"all\"}')",
    "SELECT * FROM steward.effective_alert_rules",
    "SELECT steward.list_monthly_reports()",
    "SELECT steward.size_trend()",
    "SELECT steward.size_trend('public.standby_t')",
    "SELECT steward.index_usage_trend('public.standby_t_pkey')",
    "SELECT steward.xid_trend()",
    "SELECT steward.query_trend()",
    "SELECT steward.maintenance_history_filtered('{\"status\": \"completed\"}')",
    "SELECT steward.maintenance_statistics()",
    "SELECT * FROM steward.maintenance_operations_available()",
    "SELECT * FROM steward.ai_models()",
    "SELECT * FROM steward.ai_spending('5ba4db00-0000-4000-8000-000000000001')",
    "SELECT steward.ai_budget_status('5ba4db00-0000-4000-8000-000000000001')",
    "SELECT * FROM steward.ai_key_rotation_due()",
    "SELECT steward.admin_log_list()",
];

const WRITERS: &[&str] = &[
    "SELECT steward.set_setting('slowQueryThresholdMs', '700')",
    "SELECT * FROM steward.vacuum('public.standby_t')",
    "SELECT steward.create_performance_alert('standby', 'info', 'x')",
    "SELECT * FROM steward.retention_run()",
    "SELECT steward.audit_purge()",
    "SELECT steward.capture_table_bloat_snapshot()",
    "SELECT steward.migration_add(7001, 'standby', 'SELECT 1', 'SELECT 1')",
    "SELECT steward.migration_apply()",
    "SELECT steward.migration_rollback(7001)",
    "SELECT steward.rollback((SELECT id FROM steward.configuration_audit_log ORDER BY changed_at DESC LIMIT 1))",
    "SELECT steward.check_alerts()",
    "SELECT steward.check_table_bloat_alerts()",
    "SELECT steward.set_alert_rule('high_bloat', false)",
    "SELECT steward.reset_alert_rule('high_bloat')",
    "SELECT steward.acknowledge_alert(gen_random_uuid())",
    "SELECT steward.resolve_alert(gen_random_uuid())",
    "SELECT steward.generate_monthly_report()",
    "SELECT steward.capture_snapshots()",
    "SELECT steward.purge_history()",
    "SELECT steward.record_ai_usage('claude-3-haiku-20240307', 1, 1, '5ba4db00-0000-4000-8000-000000000001')",
    "SELECT steward.rollup_ai_usage()",
];

#[test]
fn every_reader_answers_on_the_standby_and_every_writer_refuses_with_25006() {
    let _primary = primary_with_data_replayed();
    let mut s = standby();
    for sql in READERS {
        s.batch_execute(sql).unwrap_or_else(|e| panic!("on the standby, {sql}: {e:?}"));
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

/// Replication health joins the report on both sides: the primary lists its standby as a
/// streaming sender and its slots (an inactive one, and one above the retained-WAL threshold,
/// are recommendations); the standby reports its role and replay position.
#[test]
fn replication_health_is_in_the_report_on_primary_and_standby() {
    let mut primary = primary_with_data_replayed();
    primary
        .batch_execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'steward_idle_slot';
             SELECT pg_create_physical_replication_slot('steward_idle_slot', true);",
        )
        .expect("slot");
    let mut tx = primary.transaction().expect("begin");
    // Any retained WAL is "too much" for this request only.
    tx.batch_execute("SET LOCAL ROLE postgres; SELECT steward.set_setting('replicationSlotRetainedBytes', '0')").expect("threshold");
    let report: String = tx.query_one("SELECT steward.health_report()::text", &[]).expect("report").get(0);
    let text: String = tx.query_one("SELECT steward.health_report_text()", &[]).expect("text").get(0);
    tx.rollback().expect("rollback");
    primary.batch_execute("SELECT pg_drop_replication_slot('steward_idle_slot')").expect("drop slot");
    let report: serde_json::Value = serde_json::from_str(&report).expect("json");
    let rep = &report["replication"];
    assert_eq!(rep["role"], "primary", "{rep}");
    assert!(
        rep["senders"].as_array().map(|s| s.iter().any(|x| x["state"] == "streaming")).unwrap_or(false),
        "the standby streams from the primary: {rep}"
    );
    let slot = rep["slots"].as_array().and_then(|s| s.iter().find(|x| x["slot_name"] == "steward_idle_slot")).cloned();
    let slot = slot.unwrap_or_else(|| panic!("the slot is listed: {rep}"));
    assert_eq!(slot["active"], false);
    assert_eq!(slot["retains_too_much"], true, "{slot}");
    let titles: Vec<String> = report["recommendations"]
        .as_array()
        .map(|r| r.iter().map(|x| x["title"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    assert!(titles.iter().any(|t| t.contains("inactive replication slot")), "{titles:?}");
    assert!(titles.iter().any(|t| t.contains("too much WAL")), "{titles:?}");
    assert!(text.contains("Replication") && text.contains("steward_idle_slot"), "{text}");

    let mut s = standby();
    let rep: String = s.query_one("SELECT steward.replication_health()::text", &[]).expect("standby").get(0);
    let rep: serde_json::Value = serde_json::from_str(&rep).expect("json");
    assert_eq!(rep["role"], "standby", "{rep}");
    assert!(rep["standby"]["replay_lsn"].is_string(), "{rep}");
}
