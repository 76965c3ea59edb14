//! pg_steward — the Settings & Administration back end of a web platform, inside PostgreSQL.
//!
//! Every object lives in schema `steward` (see `pg_steward.control`).  The SQL surface is
//! assembled from `sql/*.sql` in a fixed order:
//!
//! 1. `bootstrap.sql`   — roles, the settings table, caller identity helpers
//! 2. `health_tables.sql` — monitoring tables of CONTRACT §6 and alerts of §2
//! 3. Rust functions of `health` (storage scan, bloat estimators, index analysis, report)
//! 4. `health.sql`      — the public health functions (SQL over the catalogs + the Rust parts)
//! 5. `alerts.sql`      — alert creation and bloat alerts
//! 6. `facade.sql`      — `install_rpc_facade(schema)`: the seed-named wrappers
//!    `alert_rules.sql` — the rule table of recommendations and alerts, check_alerts()
//! 7. `maintenance.sql` — VACUUM/ANALYZE/REINDEX through a background worker, history, pg_cron
//! 8. `retention.sql`   — retention policies, configuration backup/restore
//!    `monthly.sql`     — the monthly health report with history and comparisons
//!    `trends.sql`      — database snapshots, history retention, trend functions for charts
//!    `maintenance_console.sql` — maintenance history filters and pages, statistics, the menu
//!    `admin_log.sql`   — the append-only admin log every admin action writes, and its list
//!    `ai_usage.sql`    — AI usage per model call, spending per period, budget status
//! 9. `config.sql`      — configuration tables, validators, effective configuration, provenance
//! 10. `audit.sql`       — the audit log, audit_enable/verify/purge (trigger in `src/audit`)
//! 11. `history.sql`     — history, statistics, CSV, rollback (diff/patch in `src/diff`,
//!                          the row access of rollback in `src/rollback`)
//! 12. `migrate.sql`     — schema migrations (registry, apply/rollback through the executor, checks)
//! 13. `finalize.sql`    — grants: EXECUTE revoked from PUBLIC and granted explicitly

use pgrx::prelude::*;

mod common;
mod health;
mod alerts;
mod config;
mod audit;
mod diff;
mod rollback;
mod maintenance;
mod migrate;
mod gucs;

pgrx::pg_module_magic!();

/// Runs once per process that loads the library (a backend on first use, the maintenance
/// worker, or every process with shared_preload_libraries).
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
}

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!(
    "../sql/health_tables.sql",
    name = "health_tables",
    requires = [
        "bootstrap",
        // Every later file may use the caller's identity (table defaults, policies).
        common::identity::caller_id_sql,
        common::identity::caller_uuid_sql,
    ]
);
extension_sql_file!(
    "../sql/health.sql",
    name = "health",
    requires = [
        "health_tables",
        health::relation_storage,
        health::table_bloat_estimates,
        health::index_bloat_estimates,
        health::index_redundancy,
        health::heap_bloat_from_tuples,
        health::database_bytes,
        health::storage_prefetch,
        health::table_rows,
        health::index_rows,
        health::table_bloat_rows,
        health::index_bloat_rows,
    ]
);
extension_sql_file!("../sql/alerts.sql", name = "alerts", requires = ["health"]);
extension_sql_file!(
    "../sql/report.sql",
    name = "report",
    requires = [
        "alerts",
        alerts::report_recommendations,
        alerts::report_findings,
        health::render_report_text
    ]
);
extension_sql_file!("../sql/facade.sql", name = "facade", requires = ["report"]);
extension_sql_file!("../sql/alert_rules.sql", name = "alert_rules", requires = ["facade"]);
extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = [
        "alert_rules",
        maintenance::maintenance_submit,
        common::privilege::enter,
        common::privilege::caller_sql,
        common::privilege::check_sql,
        common::privilege::exec_as_owner,
        common::privilege::select_as_owner,
    ]
);
extension_sql_file!("../sql/retention.sql", name = "retention", requires = ["maintenance"]);
extension_sql_file!(
    "../sql/monthly.sql",
    name = "monthly",
    requires = ["retention", alerts::render_monthly_report]
);
extension_sql_file!("../sql/trends.sql", name = "trends", requires = ["monthly"]);
extension_sql_file!("../sql/maintenance_console.sql", name = "maintenance_console", requires = ["trends"]);
extension_sql_file!("../sql/ai_usage.sql", name = "ai_usage", requires = ["config", config::ai_models]);
extension_sql_file!(
    "../sql/admin_log.sql",
    name = "admin_log",
    requires = ["maintenance_console", audit::admin_log::request_identity, audit::admin_log::admin_log_submit]
);
extension_sql_file!(
    "../sql/config.sql",
    name = "config",
    requires = [
        "retention",
        config::check_document,
        config::resolve_layers,
        config::explain_layers,
        config::validate_user_preferences,
        config::validate_ai_config,
        config::calculate_cost,
        config::apply_update,
        config::mask_api_keys,
        config::vault_api_keys,
        config::reveal_api_keys,
        config::reveal_api_keys_for,
        config::effective::effective_ai_config,
        config::effective::get_effective_ai_config,
        config::cache::_effective_config_changed,
        config::cache::effective_config_cache_reset,
        config::cache::effective_config_cache_stats,
        common::identity::config_admin_sql,
        common::identity::sees_api_keys_sql,
    ]
);
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = [
        "config",
        audit::_audit_capture,
        audit::_audit_truncate,
        audit::_audit_log_guard,
        audit::_audit_purge,
        audit::_audit_hash,
        audit::writer::_audit_old_values,
    ]
);
extension_sql_file!(
    "../sql/history.sql",
    name = "history",
    requires = [
        "audit",
        diff::config_diff,
        diff::jsonb_diff_patch,
        diff::jsonb_patch,
        diff::jsonb_merge_patch,
        audit::export::_csv,
        rollback::rollback_read,
        rollback::rollback_write,
    ]
);
extension_sql_file!(
    "../sql/migrate.sql",
    name = "migrate",
    requires = [
        "history",
        migrate::migration_check,
        migrate::migration_lint,
        migrate::migration_submit,
        migrate::trial::migration_trial,
    ]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Hooks used by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// The test cluster preloads pg_stat_statements so the slow-query path is exercised with
    /// the extension both present and absent (absent until `CREATE EXTENSION` in a test).
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'pg_stat_statements'"]
    }
}
