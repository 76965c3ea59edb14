//! Errors of the maintenance capability, each with its SQLSTATE, DETAIL and HINT.
//!
//! These are the caller-side failures of handing a request to the worker.  Failures of the
//! operation itself are recorded by the worker in `maintenance_operations` and raised by
//! `steward.run_maintenance` with the operation's own SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The request document is not what `run_maintenance` builds.
    #[error("invalid maintenance request: {0}")]
    BadRequest(String),

    /// No background-worker slot was free.
    #[error("could not start a maintenance worker")]
    NoWorkerSlot,

    /// The worker stopped before it recorded the request (it could not connect, or was
    /// terminated at once).
    #[error("the maintenance worker stopped before recording the request")]
    WorkerVanished,
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
            MaintenanceError::NoWorkerSlot => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, message, "pg_steward.maintenance")
                    .set_detail("Every max_worker_processes slot is in use.")
                    .set_hint("Raise max_worker_processes (needs a restart) or retry when other workers have finished.")
            }
            MaintenanceError::WorkerVanished => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, message, "pg_steward.maintenance")
                    .set_detail("No record was written, so the operation did not run.")
                    .set_hint("See the server log for the worker's message, then retry.")
            }
        }
    }
}
