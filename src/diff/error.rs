//! Errors of the diff/patch capability, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::common::jsonb::LimitError;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{argument} must be a JSON object")]
    NotAnObject { argument: &'static str, found: &'static str },
    #[error("malformed JSON Patch")]
    MalformedPatch { detail: String },
    #[error("JSON Patch operation {index} ({op}) failed")]
    OperationFailed { index: usize, op: String, detail: String },
    /// Too deep (54001) or too large (54000): the shared limits of `common::jsonb`.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A limit hit by one operation of a patch: the operation is named in DETAIL.
    #[error("JSON Patch operation {index} ({op}) exceeds a resource limit")]
    OperationLimit { index: usize, op: String, limit: LimitError },
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
            DiffError::Limit(limit) => ErrorReport::from(limit),
            DiffError::OperationLimit { index, op, limit } => {
                ErrorReport::new(limit.code(), format!("{message}: {limit}"), "pg_steward.diff")
                    .set_detail(format!("Operation {index} ({op}): {}", limit.detail()))
                    .set_hint(format!("Nothing was applied: a patch applies completely or not at all. {}", limit.hint()))
            }
        }
    }
}
