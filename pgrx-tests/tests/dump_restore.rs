//! pg_dump / pg_restore of a database with pg_steward keeps its data (issue #14): the
//! extension's configuration tables — settings, the audit log and its anchors, maintenance
//! records — come back, and the restored audit chains verify over every entry.

mod common;

use std::process::Command;

use common::*;

fn bin(name: &str) -> String {
    let dir = std::env::var("PG_STEWARD_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{name}")
}

fn port() -> String {
    std::env::var("PG_STEWARD_TEST_PORT").unwrap_or_else(|_| "25429".into())
}

fn counts(db: &mut postgres::Client) -> (i64, i64, i64, i64) {
    let r = db
        .query_one(
            "SELECT (SELECT count(*) FROM steward.audit_entries), (SELECT count(*) FROM public.ai_configurations),
                    (SELECT count(*) FROM steward.settings), (SELECT count(*) FROM steward.maintenance_operations)",
            &[],
        )
        .expect("counts");
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

#[test]
fn a_dump_and_restore_keeps_the_audit_log_and_it_verifies() {
    setup(); // the shared roles
    let mut root = connect("postgres", "postgres");
    for sql in [
        "DROP DATABASE IF EXISTS steward_dump WITH (FORCE)",
        "DROP DATABASE IF EXISTS steward_restored WITH (FORCE)",
        "CREATE DATABASE steward_dump",
        "CREATE DATABASE steward_restored",
    ] {
        root.batch_execute(sql).expect(sql);
    }
    let mut src = connect("steward_dump", "postgres");
    src.batch_execute(
        "CREATE EXTENSION pg_steward;
         SELECT steward.install_train_schema('public');
         SELECT steward.set_setting('slowQueryThresholdMs', '750');
         INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         SELECT ('d0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'c', jsonb_build_object('model', jsonb_build_object('maxTokens', g))
           FROM generate_series(1, 20) g;
         UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,temperature}', '0.5');
         DELETE FROM public.ai_configurations WHERE configuration #>> '{model,maxTokens}' = '3';
         CREATE TABLE public.dump_t (id int PRIMARY KEY);",
    )
    .expect("data with audit chains");
    // Committed first: the maintenance worker reads the catalog in its own transaction.
    src.batch_execute("SELECT steward.vacuum('public.dump_t')").expect("a maintenance record");
    let before = counts(&mut src);
    assert!(before.0 >= 41, "{before:?}");
    let verify_src: bool = src.query_one("SELECT (steward.audit_verify() ->> 'ok')::boolean", &[]).expect("verify").get(0);
    assert!(verify_src);
    let file = std::env::temp_dir().join(format!("steward_dump_{}.dump", std::process::id()));
    let dump = Command::new(bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &port(), "-U", "postgres", "-Fc", "-f"])
        .arg(&file)
        .arg("steward_dump")
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let restore = Command::new(bin("pg_restore"))
        .args(["-h", "127.0.0.1", "-p", &port(), "-U", "postgres", "-d", "steward_restored"])
        .arg(&file)
        .output()
        .expect("pg_restore runs");
    let _ = std::fs::remove_file(&file);
    assert!(restore.status.success(), "pg_restore exited {:?}: {}", restore.status.code(), String::from_utf8_lossy(&restore.stderr));
    let mut dst = connect("steward_restored", "postgres");
    assert_eq!(counts(&mut dst), before, "every row is back");
    let v = dst.query_one("SELECT steward.audit_verify()::text", &[]).expect("verify").get::<_, String>(0);
    let v: serde_json::Value = serde_json::from_str(&v).expect("json");
    assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    assert_eq!(v["checked"].as_i64(), Some(before.0), "{v}");
    // The log is append-only again after the restore (only a superuser's COPY is a restore).
    let err = dst.batch_execute("DELETE FROM steward.audit_entries").expect_err("append-only");
    assert_eq!(sqlstate(&err), "42501");
    // And writing through the restored triggers continues the chains.
    dst.batch_execute("UPDATE public.ai_configurations SET configuration = jsonb_set(configuration, '{model,topP}', '0.7')")
        .expect("audited update after the restore");
    let v: String = dst.query_one("SELECT steward.audit_verify()::text", &[]).expect("verify").get(0);
    assert!(v.contains("\"ok\": true"), "{v}");
    drop(dst);
    drop(src);
    for sql in ["DROP DATABASE steward_dump WITH (FORCE)", "DROP DATABASE steward_restored WITH (FORCE)"] {
        root.batch_execute(sql).expect(sql);
    }
}
