//! Errors of the diff/patch capability, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{argument} must be a JSON object")]
    NotAnObject { argument: &'static str, found: &'static str },
    #[error("malformed JSON Patch")]
    MalformedPatch { detail: String },
    #[error("JSON Patch operation {index} ({op}) failed")]
    OperationFailed { index: usize, op: String, detail: String },
}

impl From<DiffError> for ErrorReport {
    fn from(err: DiffError) -> Self {
        let message = err.to_string();
        let code = PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE;
        match err {
            DiffError::NotAnObject { found, .. } => ErrorReport::new(code, message, "pg_steward.diff")
                .set_detail(format!("The value given is {found}."))
                .set_hint("Configuration documents are JSON objects, e.g. '{}'::jsonb."),
            DiffError::MalformedPatch { detail } => ErrorReport::new(code, message, "pg_steward.diff")
                .set_detail(detail)
                .set_hint("A JSON Patch (RFC 6902) is an array of operations such as {\"op\": \"replace\", \"path\": \"/a\", \"value\": 1}."),
            DiffError::OperationFailed { detail, .. } => ErrorReport::new(code, message, "pg_steward.diff")
                .set_detail(detail)
                .set_hint("Nothing was applied: a patch applies completely or not at all."),
        }
    }
}
