//! The health facade as the web app reaches it: through the seed names, under Supabase roles.

mod common;

use common::*;

/// Every seed-named health RPC with named arguments, as supabase-js sends them.
const HEALTH_CALLS: &[&str] = &[
    "SELECT * FROM public.get_database_overview()",
    "SELECT * FROM public.get_table_health_metrics()",
    "SELECT * FROM public.get_index_health_metrics()",
    "SELECT * FROM public.get_slow_queries(hours_back := 24, min_duration_ms := 500)",
    "SELECT * FROM public.get_connection_pool_metrics()",
    "SELECT public.table_exists(p_table_name := 'public.x')",
    "SELECT public.index_exists(p_index_name := 'public.x')",
    "SELECT * FROM public.detect_unused_indexes(age_days := 30)",
    "SELECT public.capture_index_usage_snapshot()",
    "SELECT public.capture_table_bloat_snapshot()",
    "SELECT public.check_table_bloat_alerts()",
    "SELECT public.get_health_report()",
];

#[test]
fn anon_and_authenticated_are_refused_with_42501() {
    setup();
    let mut c = connect(DB, "authenticator");
    for (role, claims) in [("anon", ANON_CLAIMS), ("authenticated", USER_CLAIMS)] {
        for call in HEALTH_CALLS {
            let err = as_role(&mut c, role, claims, |tx| tx.query(*call, &[]).map(|_| ()))
                .expect_err(&format!("{role} must not run {call}"));
            assert_eq!(sqlstate(&err), "42501", "{role}: {call}: {err}");
        }
        let err = as_role(&mut c, role, claims, |tx| tx.query("SELECT * FROM public.performance_alerts", &[]).map(|_| ()))
            .expect_err("alerts table is admin-only");
        assert_eq!(sqlstate(&err), "42501");
    }
}

#[test]
fn service_role_is_served_every_health_rpc() {
    setup();
    let mut c = connect(DB, "authenticator");
    for call in HEALTH_CALLS {
        as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| tx.query(*call, &[]).map(|_| ()))
            .unwrap_or_else(|e| panic!("service_role: {call}: {e}"));
    }
    let (datname, ratio): (String, rust_decimal_free::Numeric) = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| {
        let row = tx.query_one("SELECT datname::text, cache_hit_ratio::text FROM public.get_database_overview()", &[])?;
        Ok((row.get(0), rust_decimal_free::Numeric(row.get::<_, String>(1))))
    })
    .expect("overview");
    assert_eq!(datname, DB);
    let ratio: f64 = ratio.0.parse().expect("ratio is a number");
    assert!((0.0..=100.0).contains(&ratio), "cache hit ratio {ratio}");
}

#[test]
fn report_json_carries_the_contract_keys() {
    setup();
    let mut c = connect(DB, "authenticator");
    let report: serde_json::Value = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| {
        let row = tx.query_one("SELECT public.get_health_report()::text", &[])?;
        Ok(serde_json::from_str(&row.get::<_, String>(0)).expect("report is JSON"))
    })
    .expect("report");
    for key in ["timestamp", "overview", "tables", "indexes", "slowQueries", "connectionPool", "alerts", "recommendations"] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
    for rec in report["recommendations"].as_array().expect("array") {
        for key in ["priority", "category", "title", "description", "action", "impact", "effort"] {
            assert!(rec.get(key).is_some(), "recommendation lacks {key}: {rec}");
        }
    }
}

#[test]
fn names_are_looked_up_never_executed() {
    setup();
    let mut admin = connect(DB, "postgres");
    admin
        .batch_execute("CREATE TABLE IF NOT EXISTS public.victim (id int); INSERT INTO public.victim VALUES (1);")
        .expect("victim");
    let hostile = [
        "victim; DROP TABLE public.victim",
        "victim'); DROP TABLE public.victim; --",
        "\"victim\"; DROP TABLE public.victim",
        "public.victim.extra.dots",
        "pg_catalog.pg_class; SELECT pg_sleep(10)",
        "ünïcødé-ταβλε",
        "",
        "\"\"",
        "\\",
        "a\u{0}b",
    ];
    let mut c = connect(DB, "authenticator");
    for name in hostile {
        if name.contains('\u{0}') {
            continue; // PostgreSQL text cannot hold NUL; the driver refuses it before the server sees it.
        }
        for call in ["SELECT public.table_exists($1)", "SELECT public.index_exists($1)"] {
            let exists: bool = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| Ok(tx.query_one(call, &[&name])?.get(0)))
                .unwrap_or_else(|e| panic!("{call} with {name:?} failed: {e}"));
            assert!(!exists, "{call} with {name:?}");
        }
        // A regclass argument resolves or fails as an undefined table (42P01) / bad name (42602).
        let err = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| {
            tx.query("SELECT * FROM steward.table_bloat_exact($1::text::regclass)", &[&name]).map(|_| ())
        })
        .expect_err("hostile regclass");
        assert_ne!(sqlstate(&err), "XX000", "{name:?}: {err}");
    }
    let still: i64 = admin.query_one("SELECT count(*) FROM public.victim", &[]).expect("victim intact").get(0);
    assert_eq!(still, 1);
}

#[test]
fn bad_input_is_a_clear_error_never_internal() {
    setup();
    let mut c = connect(DB, "authenticator");
    let cases = [
        ("SELECT * FROM public.get_slow_queries(hours_back := -1)", "22023"),
        ("SELECT * FROM public.get_slow_queries(min_duration_ms := -5)", "22023"),
        ("SELECT * FROM public.detect_unused_indexes(age_days := -1)", "22023"),
        ("SELECT public.create_performance_alert('x y', 'fatal', '')", "22023"),
        ("SELECT public.create_performance_alert('slow_query', 'info', 'm', '[1]')", "22023"),
        ("SELECT steward.acknowledge_alert('00000000-0000-0000-0000-000000000000')", "P0002"),
        ("SELECT steward.set_setting('unusedIndexDays', '-3')", "22023"),
        ("SELECT steward._render_report_text('\"text\"')", "42501"),
    ];
    for (sql, state) in cases {
        let err = as_role(&mut c, "service_role", SERVICE_CLAIMS, |tx| tx.query(sql, &[]).map(|_| ()))
            .expect_err(sql);
        assert_eq!(sqlstate(&err), state, "{sql}: {err}");
    }
}

#[test]
fn bloat_estimate_is_within_5_points_of_pgstattuple() {
    setup();
    let mut admin = connect(DB, "postgres");
    // One statement per call: a multi-statement batch is an implicit transaction block, and
    // VACUUM refuses to run in one.
    for sql in [
        "CREATE TABLE public.bloat_engineered (id bigint, customer int, note text, amount numeric, at timestamptz)",
        "INSERT INTO public.bloat_engineered
           SELECT g, g % 1000, 'note ' || md5(g::text), (g % 997) * 1.5, now() - make_interval(secs => g)
             FROM generate_series(1, 200000) g",
        "SELECT pg_stat_force_next_flush()",
        "DELETE FROM public.bloat_engineered WHERE id % 2 = 0",
        "SELECT pg_stat_force_next_flush()",
        "VACUUM public.bloat_engineered",
        "ANALYZE public.bloat_engineered",
        "CREATE TABLE public.bloat_untouched (id bigint, label text, flag boolean, payload jsonb)",
        "INSERT INTO public.bloat_untouched
           SELECT g, repeat('x', (g % 40) + 1), g % 3 = 0, jsonb_build_object('g', g) FROM generate_series(1, 100000) g",
        "SELECT pg_stat_force_next_flush()",
        "ANALYZE public.bloat_untouched",
        "SELECT pg_stat_force_next_flush()",
    ] {
        admin.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    for (table, expect_low, expect_high) in [("bloat_engineered", 40.0, 60.0), ("bloat_untouched", 0.0, 10.0)] {
        let row = admin
            .query_one(
                "SELECT e.bloat_pct::float8, e.confidence, x.bloat_pct::float8, x.method
                   FROM steward.table_bloat() e, steward.table_bloat_exact(e.relid) x
                  WHERE e.relid = $1::text::regclass",
                &[&format!("public.{table}")],
            )
            .expect("compare");
        let estimate: f64 = row.get(0);
        let confidence: String = row.get(1);
        let exact: f64 = row.get(2);
        let method: String = row.get(3);
        assert_eq!(method, "pgstattuple");
        assert_eq!(confidence, "fresh");
        assert!((estimate - exact).abs() <= 5.0, "{table}: estimate {estimate} vs pgstattuple {exact}");
        assert!((expect_low..=expect_high).contains(&exact), "{table}: pgstattuple says {exact}");
    }
}

#[test]
fn identity_comes_from_claims_and_survives_malformed_ones() {
    setup();
    let mut c = connect(DB, "authenticator");
    let id: String = as_role(&mut c, "service_role", USER_CLAIMS, |tx| Ok(tx.query_one("SELECT steward.caller_id()", &[])?.get(0)))
        .expect("caller id");
    assert_eq!(id, "6f1d2c1e-1111-4a4a-9999-000000000001");
    let id: String = as_role(&mut c, "service_role", "{broken", |tx| Ok(tx.query_one("SELECT steward.caller_id()", &[])?.get(0)))
        .expect("caller id with broken claims");
    assert_eq!(id, "authenticator");
}

/// Reading NUMERIC as text keeps the test crate free of a decimal dependency.
mod rust_decimal_free {
    pub struct Numeric(pub String);
}

/// A monitoring connection keeps the catalog between calls; another session's DDL (a new
/// index, a renamed table, a dropped index, an added column) must show in its next call.
#[test]
fn catalog_kept_between_calls_follows_other_sessions_ddl() {
    setup();
    let mut admin = connect(DB, "postgres");
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS public.cache_probe, public.cache_probe_renamed;
             CREATE TABLE public.cache_probe (id int PRIMARY KEY, v int);
             INSERT INTO public.cache_probe SELECT g, g FROM generate_series(1, 1000) g;
             ANALYZE public.cache_probe;",
        )
        .expect("setup table");
    let mut monitor = connect(DB, "postgres");
    let indexes = |c: &mut postgres::Client, table: &str| -> Vec<String> {
        c.query(
            "SELECT indexrelname::text FROM steward.index_health() WHERE schemaname = 'public' AND relname = $1::text::name ORDER BY 1",
            &[&table],
        )
        .expect("index_health")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(indexes(&mut monitor, "cache_probe"), vec!["cache_probe_pkey".to_string()]);

    admin.batch_execute("CREATE INDEX cache_probe_v ON public.cache_probe (v)").expect("create index");
    assert_eq!(indexes(&mut monitor, "cache_probe"), vec!["cache_probe_pkey".to_string(), "cache_probe_v".to_string()]);

    admin.batch_execute("ALTER TABLE public.cache_probe RENAME TO cache_probe_renamed").expect("rename");
    assert!(indexes(&mut monitor, "cache_probe").is_empty());
    assert_eq!(indexes(&mut monitor, "cache_probe_renamed").len(), 2);

    admin.batch_execute("DROP INDEX public.cache_probe_v").expect("drop index");
    assert_eq!(indexes(&mut monitor, "cache_probe_renamed"), vec!["cache_probe_pkey".to_string()]);

    // A new column without statistics makes the estimate unknown until ANALYZE.
    let confidence = |c: &mut postgres::Client| -> String {
        c.query_one("SELECT confidence FROM steward.table_bloat() WHERE tablename = 'cache_probe_renamed'", &[])
            .expect("table_bloat")
            .get(0)
    };
    let before = confidence(&mut monitor);
    assert!(before == "fresh" || before == "stale", "analysed table estimated as {before}");
    admin.batch_execute("ALTER TABLE public.cache_probe_renamed ADD COLUMN extra text DEFAULT 'x'").expect("add column");
    assert_eq!(confidence(&mut monitor), "unknown");
    admin.batch_execute("DROP TABLE public.cache_probe_renamed").expect("cleanup");
}
