//! Schema migrations inside the database: a registry (`steward.schema_migrations`, SQL in
//! sql/migrate.sql), apply and roll back through the executor's background worker
//! (worker.rs), a safety analysis with PostgreSQL's own parser against the live catalog
//! (parse.rs, rules.rs), and a trial run that observes the locks and rewrites a migration
//! really causes in a subtransaction that is always rolled back (trial.rs).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;

pub mod error;
pub mod parse;
pub mod rules;
pub mod trial;
pub mod worker;

use error::MigrateError;

fn setting(key: &str, fallback: i64) -> i64 {
    crate::common::read_one::<i64>("SELECT steward.setting_number($1)::bigint", &[key.into()])
        .ok()
        .flatten()
        .unwrap_or(fallback)
}

pub fn thresholds() -> rules::Thresholds {
    rules::Thresholds {
        medium_bytes: setting("migrationRiskMediumBytes", 10 * 1024 * 1024),
        high_bytes: setting("migrationRiskHighBytes", 100 * 1024 * 1024),
    }
}

fn analyse(sql: &str) -> Result<(Vec<rules::Finding>, rules::Shape), MigrateError> {
    rules::check(sql, thresholds()).map_err(|e| MigrateError::Parse { message: e.message, position: e.position, excerpt: None }.with_excerpt(sql))
}

/// `steward.migration_check(sql)`: one row per finding of the safety analysis.
#[pg_extern(stable, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn migration_check(
    sql: &str,
) -> Result<
    TableIterator<
        'static,
        (
            name!(rule, String),
            name!(risk, String),
            name!(statement_no, i32),
            name!(statement, String),
            name!(relation, Option<String>),
            name!(relation_bytes, Option<i64>),
            name!(row_estimate, Option<i64>),
            name!(lock_level, Option<String>),
            name!(rewrites, bool),
            name!(scans, bool),
            name!(message, String),
            name!(safe_pattern, String),
        ),
    >,
    ErrorReport,
> {
    let (findings, _) = analyse(sql)?;
    let rows: Vec<_> = findings
        .into_iter()
        .map(|f| {
            (
                f.rule.to_string(),
                f.risk.to_string(),
                f.statement_no,
                f.statement,
                f.relation,
                f.relation_bytes,
                f.row_estimate,
                f.lock_level.map(str::to_string),
                f.rewrites,
                f.scans,
                f.message,
                f.safe_pattern.to_string(),
            )
        })
        .collect();
    Ok(TableIterator::new(rows))
}

/// `steward._migration_lint(sql)`: the findings and the script's shape as jsonb (for
/// migration_add, which stores the findings and refuses what cannot run).
#[pg_extern(name = "_migration_lint", stable, parallel_unsafe)]
fn migration_lint(sql: &str) -> Result<JsonB, ErrorReport> {
    let (findings, shape) = analyse(sql)?;
    Ok(JsonB(serde_json::json!({ "findings": findings, "shape": shape })))
}

/// `steward._migration_submit(request, wait)`: hand a migration run to the executor's worker;
/// returns once the run is recorded, and with `wait` once it has finished (its outcome is in
/// steward.migration_runs).  CONCURRENTLY statements wait for every older transaction, the
/// caller's included, so they run without `wait`.
#[pg_extern(name = "_migration_submit", volatile, parallel_unsafe)]
fn migration_submit(request: JsonB, wait: bool) -> Result<(), ErrorReport> {
    let mut raw = request.0;
    serde_json::from_value::<worker::MigrationRequest>(raw.clone()).map_err(|e| MigrateError::BadRequest(e.to_string()))?;
    raw["kind"] = serde_json::json!("migration");
    crate::common::executor::submit(&raw, wait)?;
    Ok(())
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "migrate_test.rs"]
mod migrate_test;
