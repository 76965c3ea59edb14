//! Upgrades without losing data (issue #14): a database created by the released 0.1.0
//! (its frozen install script, sql/pg_steward--0.1.0.sql) and written to — configurations with
//! audit chains, settings, snapshots, maintenance records, a checkpoint — is brought forward by
//! `ALTER EXTENSION pg_steward UPDATE`.  Afterwards every row is still there, the audit chains
//! verify, the extension keeps working, and its catalog equals a fresh install of the current
//! version (upgrade_catalog.sql).  Downgrades and unknown versions are refused by PostgreSQL.

mod common;

use std::collections::BTreeMap;

use common::*;

const OLD: &str = "0.1.0";
const CATALOG: &str = include_str!("upgrade_catalog.sql");
/// Member tables whose rows are state the extension keeps while it runs (not reference data):
/// their definitions are compared, their rows only kept.
const RUNTIME_TABLES: &[&str] = &["steward.audit_rate", "steward.index_usage_state"];

fn current_version(db: &mut postgres::Client) -> String {
    db.query_one("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_steward'", &[])
        .expect("available")
        .get(0)
}

/// The tables whose rows are data (the application's tables in public, the extension's
/// configuration tables that pg_dump keeps, and its runtime state): their column lists (as of
/// now) for a fingerprint of their rows over those columns, so a column added by the upgrade
/// does not change it.  The extension's reference tables (setting defaults, grant rules) are
/// the upgrade's to change; they are compared with a fresh install's instead (catalog()).
fn table_columns(db: &mut postgres::Client) -> BTreeMap<String, Vec<String>> {
    let rows = db
        .query(
            "SELECT c.oid::regclass::text, array_agg(quote_ident(a.attname) ORDER BY a.attnum)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p')
                AND (n.nspname = 'public'
                     OR c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'pg_steward')::oid[])
                     OR c.oid::regclass::text = ANY ($1))
              GROUP BY 1",
            &[&RUNTIME_TABLES.iter().map(|s| s.to_string()).collect::<Vec<String>>()],
        )
        .expect("tables");
    rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Vec<String>>(1))).collect()
}

fn fingerprints(db: &mut postgres::Client, tables: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, (i64, String)> {
    tables
        .iter()
        .map(|(t, cols)| {
            // Names come from the catalog, already quoted (regclass text, quote_ident).
            let sql = format!(
                "SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '') FROM (SELECT {} FROM {t}) r",
                cols.join(", ")
            );
            let row = db.query_one(&sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
            (t.clone(), (row.get(0), row.get(1)))
        })
        .collect()
}

fn catalog(db: &mut postgres::Client) -> Vec<String> {
    let mut lines: Vec<String> = db.query(CATALOG, &[]).expect("catalog dump").iter().map(|r| r.get(0)).collect();
    // The rows of the extension's own reference tables (setting defaults, grant rules, the
    // facade's lists): an upgrade must add and change them as a fresh install has them.
    let reference: Vec<String> = db
        .query(
            "SELECT c.oid::regclass::text
               FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steward'
               JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
              WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND c.relkind = 'r'
                AND c.oid <> ALL (e.extconfig)
              ORDER BY 1",
            &[],
        )
        .expect("reference tables")
        .iter()
        .map(|r| r.get(0))
        .filter(|t: &String| !RUNTIME_TABLES.contains(&t.as_str()))
        .collect();
    for t in reference {
        // A member table's name from the catalog, already quoted by regclass.
        for r in db.query(&format!("SELECT r::text FROM {t} r ORDER BY 1"), &[]).expect("rows") {
            lines.push(format!("row {t} {}", r.get::<_, String>(0)));
        }
    }
    lines
}

fn write_data(db: &mut postgres::Client) {
    db.batch_execute(
        "SELECT steward.install_train_schema('public');
         SELECT steward.set_setting('slowQueryThresholdMs', '750');
         INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         SELECT ('e0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'c', jsonb_build_object('model', jsonb_build_object('maxTokens', g))
           FROM generate_series(1, 20) g;
         UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,temperature}', '0.5');
         DELETE FROM public.ai_configurations WHERE configuration #>> '{model,maxTokens}' = '3';
         SELECT steward.audit_checkpoint();
         UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topP}', '0.9')
          WHERE configuration #>> '{model,maxTokens}' IN ('1', '2');
         CREATE TABLE public.upgrade_t (id int PRIMARY KEY, v text);
         INSERT INTO public.upgrade_t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
         CREATE INDEX upgrade_t_v ON public.upgrade_t (v);
         ANALYZE public.upgrade_t;
         SELECT steward.capture_index_usage_snapshot();
         SELECT steward.capture_table_bloat_snapshot();",
    )
    .expect("data with audit chains, settings and snapshots");
    // Committed first: the maintenance worker reads the catalog in its own transaction.
    db.batch_execute("SELECT steward.vacuum('public.upgrade_t')").expect("a maintenance record");
}

fn audit_verify(db: &mut postgres::Client) -> serde_json::Value {
    let v: String = db.query_one("SELECT steward.audit_verify()::text", &[]).expect("audit_verify").get(0);
    serde_json::from_str(&v).expect("json")
}

#[test]
fn an_upgrade_from_0_1_0_keeps_every_row_and_equals_a_fresh_install() {
    setup(); // the shared roles (anon, authenticated, service_role) exist in both databases
    let mut root = connect("postgres", "postgres");
    let current = current_version(&mut root);
    assert_ne!(current, OLD, "the version under development is not the released one");
    for sql in [
        "DROP DATABASE IF EXISTS steward_upg_old WITH (FORCE)",
        "DROP DATABASE IF EXISTS steward_upg_new WITH (FORCE)",
        "CREATE DATABASE steward_upg_old",
        "CREATE DATABASE steward_upg_new",
    ] {
        root.batch_execute(sql).expect(sql);
    }

    let mut old = connect("steward_upg_old", "postgres");
    old.batch_execute(&format!("CREATE EXTENSION pg_steward VERSION '{OLD}'")).expect("install the released 0.1.0");
    let v: String = old.query_one("SELECT extversion FROM pg_extension WHERE extname = 'pg_steward'", &[]).unwrap().get(0);
    assert_eq!(v, OLD);
    write_data(&mut old);
    let columns = table_columns(&mut old);
    let before = fingerprints(&mut old, &columns);
    let verified = audit_verify(&mut old);
    assert_eq!(verified["ok"], serde_json::json!(true), "{verified}");
    let entries = before["steward.audit_entries"].0;
    assert!(entries >= 43, "the test wrote audit chains: {entries}");
    for t in ["steward.settings", "steward.maintenance_operations", "steward.index_usage_snapshots", "steward.table_bloat_snapshots"] {
        assert!(before[t].0 > 0, "{t} has rows before the upgrade");
    }

    old.batch_execute("ALTER EXTENSION pg_steward UPDATE").expect("ALTER EXTENSION pg_steward UPDATE");
    let v: String = old.query_one("SELECT extversion FROM pg_extension WHERE extname = 'pg_steward'", &[]).unwrap().get(0);
    assert_eq!(v, current);

    // Every row of every table that existed is still there, column for column.
    let after = fingerprints(&mut old, &columns);
    for (t, fp) in &before {
        assert_eq!(after.get(t), Some(fp), "rows of {t} changed by the upgrade");
    }
    let verified = audit_verify(&mut old);
    assert_eq!(verified["ok"], serde_json::json!(true), "{verified}");
    assert_eq!(verified["checked"].as_i64(), Some(entries), "{verified}");

    // The upgraded extension works: audited writes continue the chains, maintenance runs,
    // the report answers, the setting survived.
    old.batch_execute("UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topP}', '0.7')")
        .expect("audited update after the upgrade");
    old.batch_execute("SELECT steward.vacuum('public.upgrade_t')").expect("maintenance after the upgrade");
    let verified = audit_verify(&mut old);
    assert_eq!(verified["ok"], serde_json::json!(true), "{verified}");
    assert!(verified["checked"].as_i64().unwrap_or(0) > entries, "{verified}");
    let (ok, n): (String, i64) = {
        let r = old
            .query_one(
                "SELECT steward.setting_number('slowQueryThresholdMs')::text,
                        (SELECT count(*) FROM steward.maintenance_operations WHERE status = 'completed')",
                &[],
            )
            .expect("setting and history");
        (r.get(0), r.get(1))
    };
    assert_eq!(ok, "750");
    assert_eq!(n, 2, "both VACUUMs recorded as completed");
    let report: String = old.query_one("SELECT steward.health_report()::text", &[]).expect("report").get(0);
    assert!(report.contains("\"tables\""), "{report}");

    // The same runtime calls in a fresh install of the current version, then the catalogs.
    let mut new = connect("steward_upg_new", "postgres");
    new.batch_execute("CREATE EXTENSION pg_steward; SELECT steward.install_train_schema('public');").expect("fresh install");
    let upgraded = catalog(&mut old);
    let fresh = catalog(&mut new);
    let only_upgraded: Vec<&String> = upgraded.iter().filter(|l| !fresh.contains(l)).collect();
    let only_fresh: Vec<&String> = fresh.iter().filter(|l| !upgraded.contains(l)).collect();
    assert!(
        only_upgraded.is_empty() && only_fresh.is_empty(),
        "the upgraded catalog differs from a fresh {current} install — sql/pg_steward--{OLD}--{current}.sql is missing a change.\n\
         only after the upgrade:\n{}\nonly in a fresh install:\n{}",
        only_upgraded.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n---\n"),
        only_fresh.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n---\n"),
    );
    assert!(upgraded.len() > 300, "the comparison covers the extension ({} lines)", upgraded.len());

    // A downgrade has no script: PostgreSQL refuses it and nothing changes.
    let err = old.batch_execute(&format!("ALTER EXTENSION pg_steward UPDATE TO '{OLD}'")).expect_err("no downgrade");
    assert!(err.to_string().contains("no update path") || format!("{err:?}").contains("no update path"), "{err:?}");
    // An unknown version neither installs nor upgrades.
    let err = new.batch_execute("ALTER EXTENSION pg_steward UPDATE TO '9.9.9'").expect_err("unknown version");
    assert_eq!(sqlstate(&err), "22023", "{err:?}");
    drop(old);
    drop(new);
    root.batch_execute("CREATE DATABASE steward_upg_bad").ok();
    let mut bad = connect("steward_upg_bad", "postgres");
    let err = bad.batch_execute("CREATE EXTENSION pg_steward VERSION '0.0.1'").expect_err("unknown version");
    assert_eq!(sqlstate(&err), "22023", "{err:?}");
    let n: i64 = bad.query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'steward'", &[]).unwrap().get(0);
    assert_eq!(n, 0, "nothing installed");
    drop(bad);
    for sql in [
        "DROP DATABASE steward_upg_old WITH (FORCE)",
        "DROP DATABASE steward_upg_new WITH (FORCE)",
        "DROP DATABASE steward_upg_bad WITH (FORCE)",
    ] {
        root.batch_execute(sql).expect(sql);
    }
}
