//! Errors of the health capability, each with its SQLSTATE, DETAIL and HINT.

use pgrx::prelude::*;
use pgrx::pg_sys::panic::ErrorReport;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The database directory could not be listed (permissions, a missing tablespace link).
    #[error("cannot read relation storage at {path}")]
    StorageUnreadable { path: String, reason: String },

    /// A report document handed to a renderer was not the shape `health_report()` produces.
    #[error("not a pg_steward health report: {0}")]
    NotAReport(String),

    /// An argument outside its domain (negative counts, fillfactor outside 10..100).
    #[error("invalid argument {name}: {problem}")]
    InvalidArgument { name: &'static str, problem: String },

    /// Already a complete report (for instance an SPI failure with its context).
    #[error("{}", .0.message())]
    Report(ErrorReport),
}

impl From<HealthError> for ErrorReport {
    fn from(err: HealthError) -> Self {
        let message = err.to_string();
        match err {
            HealthError::StorageUnreadable { reason, .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_IO_ERROR, message, "pg_steward.health")
                    .set_detail(reason)
                    .set_hint("Check that the server can read its own data directory and tablespaces.")
            }
            HealthError::NotAReport(detail) => ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "argument is not a pg_steward health report",
                "pg_steward.health",
            )
            .set_detail(detail)
            .set_hint("Pass the result of steward.health_report()."),
            HealthError::InvalidArgument { problem, .. } => ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                message,
                "pg_steward.health",
            )
            .set_detail(problem),
            HealthError::Report(report) => report,
        }
    }
}
