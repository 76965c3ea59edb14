//! Errors of rollback's row access, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("configuration {0} no longer exists")]
    RowGone(String),
    #[error("the audited table with OID {0} no longer exists")]
    TableGone(u32),
    #[error("column \"{0}\" of the audited table is missing or has another type")]
    ColumnType(String),
}

impl From<RollbackError> for ErrorReport {
    fn from(err: RollbackError) -> Self {
        let message = err.to_string();
        match err {
            RollbackError::RowGone(_) => ErrorReport::new(PgSqlErrorCode::ERRCODE_NO_DATA_FOUND, message, "pg_steward.rollback")
                .set_detail("It was deleted (or you may not see it); a deleted configuration is not rolled back."),
            RollbackError::ColumnType(_) => ErrorReport::new(PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, message, "pg_steward.rollback")
                .set_detail("The key column must be uuid and the document column jsonb, as steward.audit_enable() checked.")
                .set_hint("Re-register the table with steward.audit_enable() after changing its columns."),
            RollbackError::TableGone(_) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, message, "pg_steward.rollback")
                    .set_hint("steward.audit_disable() forgets a dropped table; its entries stay in the log.")
            }
        }
    }
}
