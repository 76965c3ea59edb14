//! Errors of the maintenance capability, each with its SQLSTATE, DETAIL and HINT.
//!
//! A request the worker cannot read; failures of handing it over are the executor's
//! (`common::executor::ExecutorError`).  Failures of the
//! operation itself are recorded by the worker in `maintenance_operations` and raised by
//! `steward.run_maintenance` with the operation's own SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The request document is not what `run_maintenance` builds.
    #[error("invalid maintenance request: {0}")]
    BadRequest(String),
}

impl From<MaintenanceError> for ErrorReport {
    fn from(err: MaintenanceError) -> Self {
        let message = err.to_string();
        match err {
            MaintenanceError::BadRequest(detail) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.maintenance")
                    .set_detail(detail)
                    .set_hint("Call steward.run_maintenance() (or the seed functions) instead of the internal function.")
            }
        }
    }
}
