//! Alerts that raise, deduplicate and resolve themselves (issue #16), engineered for real on
//! the test server: a slow query in the application's log, a bloated table, an index nobody
//! scans and a session idle in a transaction each raise exactly one alert; a second check
//! does not duplicate it; a worse slow query escalates it; clearing every condition resolves
//! them all; a LISTEN session receives each transition.
//!
//! One test in a database of its own: every check_alerts() counts for every open alert, so
//! the steps must not interleave with another test's checks.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

const ALERT_DB: &str = "steward_alerts_it";

fn fresh_db() -> Client {
    setup();
    let mut root = connect("postgres", "postgres");
    root.batch_execute(&format!("DROP DATABASE IF EXISTS {ALERT_DB} WITH (FORCE)")).expect("drop");
    root.batch_execute(&format!("CREATE DATABASE {ALERT_DB}")).expect("create");
    let mut db = connect(ALERT_DB, "postgres");
    db.batch_execute(
        "CREATE EXTENSION pg_steward;
         SELECT steward.install_rpc_facade('public');
         GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;",
    )
    .expect("extension");
    db
}

/// Open alerts of the engineered objects: fingerprint -> (severity, occurrences).
fn open_alerts(db: &mut Client) -> BTreeMap<String, (String, i32)> {
    db.query(
        "SELECT fingerprint, severity, occurrences FROM steward.performance_alerts
          WHERE resolved_at IS NULL
            AND (fingerprint LIKE 'slow_query:query_performance_logs %'
                 OR fingerprint IN ('high_bloat:public.alert_bloat', 'unused_index:public.alert_bloat_note_idx')
                 OR fingerprint LIKE 'idle_in_transaction:pid %')",
        &[],
    )
    .expect("alerts")
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

fn check(db: &mut Client) {
    db.batch_execute("SELECT steward.check_alerts()").expect("check_alerts");
}

/// Everything received on steward_alerts so far, as (event, rule, fingerprint-ish object).
fn drain(listener: &mut Client, into: &mut Vec<serde_json::Value>) {
    let mut n = listener.notifications();
    let mut it = n.timeout_iter(Duration::from_millis(300));
    while let Ok(Some(note)) = it.next() {
        assert_eq!(note.channel(), "steward_alerts");
        into.push(serde_json::from_str(note.payload()).expect("payload is JSON"));
    }
}

#[test]
fn engineered_conditions_raise_one_alert_each_escalate_and_resolve_with_notifications() {
    let mut db = fresh_db();
    let mut listener = connect(ALERT_DB, "postgres");
    listener.batch_execute("LISTEN steward_alerts").expect("listen");
    let mut events: Vec<serde_json::Value> = Vec::new();

    // Thresholds that make the conditions quick to engineer: an index unused after 0 days, a
    // transaction idle for more than 1 second.
    for sql in [
        "SELECT steward.set_setting('unusedIndexDays', '0')",
        "SELECT steward.set_setting('idleInTransactionSeconds', '1')",
        // The bloated table: half of 200 000 rows deleted and vacuumed (~50 % free space).
        "CREATE TABLE public.alert_bloat (id bigint, customer int, note text, amount numeric)",
        "INSERT INTO public.alert_bloat SELECT g, g % 1000, 'note ' || md5(g::text), g * 1.5 FROM generate_series(1, 200000) g",
        "DELETE FROM public.alert_bloat WHERE id % 2 = 0",
        "VACUUM public.alert_bloat",
        "ANALYZE public.alert_bloat",
        // An index nobody scans.
        "CREATE INDEX alert_bloat_note_idx ON public.alert_bloat (note)",
        "SELECT pg_stat_force_next_flush()",
        // A slow query in the application's log (warning: above 1 s).
        "INSERT INTO steward.query_performance_logs (query_text, duration_ms)
           SELECT 'SELECT * FROM orders WHERE note = $1', 1500 FROM generate_series(1, 3)",
    ] {
        db.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // A session idle in a transaction.
    let mut idle = connect(ALERT_DB, "postgres");
    idle.batch_execute("BEGIN; SELECT 1").expect("idle transaction");
    let idle_pid: i32 = idle.query_one("SELECT pg_backend_pid()", &[]).expect("pid").get(0);
    std::thread::sleep(Duration::from_millis(1500));
    // An index's idle time is a lower bound taken from its file (nothing is called unused too
    // early): wait until index_health() calls the new index unused.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !db
        .query_one("SELECT coalesce(bool_or(is_unused), false) FROM steward.index_health() WHERE indexrelname = 'alert_bloat_note_idx'", &[])
        .expect("index_health")
        .get::<_, bool>(0)
    {
        assert!(Instant::now() < deadline, "the new index never counted as unused");
        std::thread::sleep(Duration::from_millis(500));
    }

    check(&mut db);
    let first = open_alerts(&mut db);
    let kinds: Vec<&str> = first.keys().map(|k| k.split(':').next().unwrap_or("")).collect();
    assert_eq!(
        kinds,
        vec!["high_bloat", "idle_in_transaction", "slow_query", "unused_index"],
        "exactly one alert per engineered condition: {first:?}"
    );
    let idle_key = first.keys().find(|k| k.starts_with("idle_in_transaction:")).cloned().unwrap_or_default();
    assert!(idle_key.starts_with(&format!("idle_in_transaction:pid {idle_pid} since ")), "{idle_key}");
    let bloat = &first["high_bloat:public.alert_bloat"];
    assert!(bloat.0 == "error" || bloat.0 == "critical", "~50 % bloat is above 35: {bloat:?}");
    assert!(first.values().all(|(_, n)| *n == 1));

    // A second check updates, never duplicates.
    check(&mut db);
    let second = open_alerts(&mut db);
    assert_eq!(second.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>());
    assert!(second.values().all(|(_, n)| *n == 2), "{second:?}");

    // Worse: the slow query now takes 5 s on average (error above 2 s): the same alert escalates.
    db.batch_execute(
        "INSERT INTO steward.query_performance_logs (query_text, duration_ms)
           SELECT 'SELECT * FROM orders WHERE note = $1', 8000 FROM generate_series(1, 3)",
    )
    .expect("slower");
    check(&mut db);
    let third = open_alerts(&mut db);
    let slow: Vec<_> = third.iter().filter(|(k, _)| k.starts_with("slow_query:")).collect();
    assert_eq!(slow.len(), 1, "{third:?}");
    assert_eq!(slow[0].1 .0, "error");

    // The facade's list shows them to the service role as PostgREST would call it.
    let listed: serde_json::Value = as_role(&mut db, "service_role", SERVICE_CLAIMS, |tx| {
        tx.query_one("SELECT public.list_alerts(filters := '{\"rule\": \"slow_query\"}')::text", &[])
            .map(|r| serde_json::from_str(&r.get::<_, String>(0)).expect("json"))
    })
    .expect("list_alerts as service_role");
    assert_eq!(listed["totalCount"], 1, "{listed}");
    assert_eq!(listed["alerts"][0]["severity"], "error");

    // Clear every condition: the log emptied, the transaction ended, the table rewritten, the
    // index scanned.  Two checks later (alertResolveAfterChecks) every alert is resolved.
    idle.batch_execute("COMMIT").expect("commit");
    for sql in [
        "DELETE FROM steward.query_performance_logs",
        "VACUUM FULL public.alert_bloat",
        "ANALYZE public.alert_bloat",
        "SET enable_seqscan = off",
        "SELECT count(*) FROM public.alert_bloat WHERE note = 'note x'",
        "RESET enable_seqscan",
        "SELECT pg_stat_force_next_flush()",
    ] {
        db.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    check(&mut db);
    assert_eq!(open_alerts(&mut db).len(), 4, "one clear check is not enough");
    check(&mut db);
    let left = open_alerts(&mut db);
    assert!(left.is_empty(), "all resolved after two clear checks: {left:?}");
    let auto: i64 = db
        .query_one(
            "SELECT count(*) FROM steward.performance_alerts
              WHERE resolved_at IS NOT NULL AND resolved_by IS NULL AND resolution_notes LIKE 'Resolved automatically%'",
            &[],
        )
        .expect("resolved")
        .get(0);
    assert!(auto >= 4, "{auto}");

    // The listener saw each transition of the engineered alerts; no statement text in them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        drain(&mut listener, &mut events);
        let resolved = events.iter().filter(|e| e["event"] == "resolved").count();
        if resolved >= 4 {
            break;
        }
    }
    let of = |event: &str, rule: &str| events.iter().filter(|e| e["event"] == event && e["rule"] == rule).count();
    for rule in ["slow_query", "high_bloat", "unused_index", "idle_in_transaction"] {
        assert!(of("opened", rule) >= 1, "opened {rule}: {events:?}");
        assert!(of("resolved", rule) >= 1, "resolved {rule}: {events:?}");
    }
    assert_eq!(of("escalated", "slow_query"), 1, "{events:?}");
    let text = serde_json::to_string(&events).unwrap_or_default();
    assert!(!text.contains("orders WHERE"), "no statement text in notifications: {text}");
    for e in &events {
        for key in ["event", "id", "rule", "severity", "object", "object_kind"] {
            assert!(!e[key].is_null(), "{key} in {e}");
        }
    }
}

/// A check that cannot read a source says so and raises or resolves nothing for it: with too
/// few block reads since a statistics reset the cache hit ratio is unknown, not low.
#[test]
fn check_results_say_which_rules_could_not_be_evaluated() {
    setup();
    let mut db = connect(DB, "postgres");
    let unavailable: String = db
        .query_one(
            "SELECT (steward._report_findings('{\"overview\": {\"datname\": \"x\", \"cache_hit_ratio\": 10, \"blks_hit\": 1, \"blks_read\": 9}}',
                                              steward._alert_rules_json()) -> 'unavailable')::text",
            &[],
        )
        .expect("findings")
        .get(0);
    assert!(unavailable.contains("low_cache_hit_ratio"), "{unavailable}");
    let fired: i64 = db
        .query_one(
            "SELECT jsonb_array_length(steward._report_findings('{\"overview\": {\"datname\": \"x\", \"cache_hit_ratio\": 10, \"blks_hit\": 1, \"blks_read\": 9}}',
                                                                 steward._alert_rules_json()) -> 'findings')::bigint",
            &[],
        )
        .expect("findings")
        .get(0);
    assert_eq!(fired, 0);
}

/// The index-usage trend across `pg_stat_reset()` (issue #16 item 4): counters that go
/// backwards are a reset, not negative use — scans before and after it both count.
#[test]
fn index_usage_trend_counts_scans_across_a_statistics_reset() {
    setup();
    let mut root = connect("postgres", "postgres");
    root.batch_execute("DROP DATABASE IF EXISTS steward_trend_it WITH (FORCE)").expect("drop");
    root.batch_execute("CREATE DATABASE steward_trend_it").expect("create");
    let mut db = connect("steward_trend_it", "postgres");
    db.batch_execute(
        "CREATE EXTENSION pg_steward;
         CREATE TABLE public.trend_t (id int PRIMARY KEY, v text);
         INSERT INTO public.trend_t SELECT g, 'x' FROM generate_series(1, 1000) g;
         ANALYZE public.trend_t;",
    )
    .expect("table");
    let scans = |db: &mut Client, n: i32| {
        for k in 0..n {
            db.batch_execute(&format!("SET enable_seqscan = off; SELECT v FROM public.trend_t WHERE id = {}; RESET enable_seqscan", k + 1))
                .expect("index scan");
        }
        db.batch_execute("SELECT pg_stat_force_next_flush()").expect("flush");
    };
    let idx_scan = |db: &mut Client| -> i64 {
        db.query_one("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'trend_t_pkey'", &[]).expect("idx_scan").get(0)
    };
    db.batch_execute("SELECT steward.capture_index_usage_snapshot()").expect("snapshot 1");
    scans(&mut db, 5);
    db.batch_execute("SELECT steward.capture_index_usage_snapshot()").expect("snapshot 2");
    let before_reset = idx_scan(&mut db);
    db.batch_execute("SELECT pg_stat_reset()").expect("reset");
    scans(&mut db, 3);
    db.batch_execute("SELECT steward.capture_index_usage_snapshot()").expect("snapshot 3");
    let after_reset = idx_scan(&mut db);
    assert!(after_reset < before_reset, "the counter went backwards: {before_reset} -> {after_reset}");
    let trend: String = db
        .query_one("SELECT steward.index_usage_trend('public.trend_t_pkey', 1, 24)::text", &[])
        .expect("trend")
        .get(0);
    let trend: serde_json::Value = serde_json::from_str(&trend).expect("json");
    assert_eq!(trend["resets"], 1, "{trend}");
    assert_eq!(trend["snapshots"], 3, "{trend}");
    assert_eq!(trend["totalScans"], 8, "5 scans before the reset and 3 after: {trend}");
    let points = trend["points"].as_array().cloned().unwrap_or_default();
    assert!(points.iter().all(|p| p["scans"].as_i64().unwrap_or(-1) >= 0), "never negative: {trend}");
}
