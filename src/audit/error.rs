//! Errors of the audit capability, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("too many configuration changes: {count} in the last minute (limit {limit})")]
    RateLimited { count: i64, limit: i64 },
    #[error("steward.configuration_audit_log is append-only")]
    AppendOnly { operation: String },
    #[error("the audit trigger on {table} is misconfigured")]
    Misconfigured { table: String, detail: String },
    #[error("permission denied to continue the audit history of configuration {config_id}")]
    ForeignChain { config_id: String },
}

impl From<AuditError> for ErrorReport {
    fn from(err: AuditError) -> Self {
        let message = err.to_string();
        match err {
            AuditError::RateLimited { .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, message, "pg_steward.audit")
                    .set_detail("Nothing was changed.")
                    .set_hint("Wait a minute and try again; an administrator can raise the setting auditRateLimitPerMinute.")
            }
            AuditError::AppendOnly { operation } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "pg_steward.audit")
                    .set_detail(format!("{operation} on the audit log is refused for every role, its owner included."))
                    .set_hint("Entries are written by the audit trigger and removed only by steward.audit_purge().")
            }
            AuditError::ForeignChain { .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "pg_steward.audit")
                    .set_detail("The audit history of that configuration id records another owner; a new row cannot continue it.")
                    .set_hint("Insert the row without choosing its id (the server assigns a new one).")
            }
            AuditError::Misconfigured { detail, .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_TRIGGERED_ACTION_EXCEPTION, message, "pg_steward.audit")
                    .set_detail(detail)
                    .set_hint("Attach the trigger with steward.audit_enable(table, config_type, document_column, owner_column).")
            }
        }
    }
}
