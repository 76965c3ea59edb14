//! Maintenance that really runs: VACUUM, ANALYZE and REINDEX (CONCURRENTLY) requested from
//! SQL, RPC or pg_cron, executed by a dynamic background worker as top-level statements.
//!
//! The request goes through the one executor (`src/common/executor.rs`), which migrations use
//! too: the worker records it in `maintenance_operations` in its own transaction (so the record
//! survives the caller's rollback) and runs the operation as the caller.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;

pub mod error;
pub mod request;
pub mod worker;

use error::MaintenanceError;

#[cfg(any(test, feature = "pg_test"))]
#[path = "maintenance_test.rs"]
mod maintenance_test;

/// Hand a request (built by `steward._run_maintenance`) to a new worker; returns the operation
/// id once the worker has recorded it, and (with `wait`) once it has finished.
#[pg_extern(name = "_maintenance_submit", volatile, parallel_unsafe)]
pub fn maintenance_submit(request: JsonB, wait: bool) -> Result<pgrx::Uuid, ErrorReport> {
    let parsed = request::Request::parse(&request.0).map_err(MaintenanceError::BadRequest)?;
    if parsed.refusal.is_none() {
        // A refused request is only recorded, whatever it asked for.
        parsed.operation().map_err(MaintenanceError::BadRequest)?;
    }
    crate::common::executor::submit(&request.0, wait)?;
    Ok(pgrx::Uuid::from_bytes(*parsed.id.as_bytes()))
}
