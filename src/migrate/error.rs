//! Errors of the migration capability, each with its SQLSTATE, DETAIL and HINT.  Failures of
//! a migration's own statements are recorded in steward.migration_runs by the worker and
//! raised by steward.migration_apply / migration_rollback with the statement's SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// PostgreSQL's parser refused the script.
    #[error("the script does not parse: {message}")]
    Parse { message: String, position: Option<i32>, excerpt: Option<String> },

    /// The request document is not what the SQL functions build.
    #[error("invalid migration request: {0}")]
    BadRequest(String),
}

impl MigrateError {
    /// Add the line of the script the parser stopped at.
    pub fn with_excerpt(self, script: &str) -> Self {
        match self {
            MigrateError::Parse { message, position: Some(p), .. } => {
                let chars: Vec<char> = script.chars().collect();
                let at = (p as usize).saturating_sub(1).min(chars.len());
                let line_start = chars[..at].iter().rposition(|c| *c == '\n').map(|i| i + 1).unwrap_or(0);
                let line_end = chars[at..].iter().position(|c| *c == '\n').map(|i| at + i).unwrap_or(chars.len());
                let line_no = chars[..at].iter().filter(|c| **c == '\n').count() + 1;
                let line: String = chars[line_start..line_end].iter().take(200).collect();
                let excerpt = format!("line {line_no}: {line}");
                MigrateError::Parse { message, position: Some(p), excerpt: Some(excerpt) }
            }
            other => other,
        }
    }
}

impl From<MigrateError> for ErrorReport {
    fn from(err: MigrateError) -> Self {
        let message = err.to_string();
        match err {
            MigrateError::Parse { position, excerpt, .. } => {
                let detail = match (position, excerpt) {
                    (Some(p), Some(e)) => format!("At character {p} ({e})."),
                    (Some(p), None) => format!("At character {p}."),
                    _ => "The parser gave no position.".into(),
                };
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.migrate")
                    .set_detail(detail)
                    .set_hint("Fix the script; it was checked with the server's own SQL parser and nothing was stored or run.")
            }
            MigrateError::BadRequest(detail) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.migrate")
                    .set_detail(detail)
                    .set_hint("Call steward.migration_apply() or migration_rollback() instead of the internal function.")
            }
        }
    }
}
