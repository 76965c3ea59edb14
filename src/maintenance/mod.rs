//! Maintenance that really runs: VACUUM, ANALYZE and REINDEX (CONCURRENTLY) requested from
//! SQL, RPC or pg_cron, executed by a dynamic background worker as top-level statements.
//!
//! Hand-over: the caller (`steward.run_maintenance`, after its checks) writes the request
//! into a dynamic shared memory segment and starts a worker with the segment's handle.  The
//! worker copies the request, records it in `maintenance_operations` in its own transaction
//! (so the record survives the caller's rollback), flags the segment, and runs the
//! operation; the caller waits for the flag, and for the worker to finish unless `async`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorkerBuilder, BackgroundWorkerStatus};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;

pub mod error;
pub mod request;
pub mod worker;

use error::MaintenanceError;

/// Layout of the hand-over segment: a state word, the request length, the request bytes.
#[repr(C)]
pub(crate) struct Handover {
    pub state: AtomicU32,
    pub len: u32,
}

/// The worker has not recorded the request yet.
pub(crate) const PENDING: u32 = 0;
/// The request is recorded (queued, or refused and recorded as failed).
pub(crate) const RECORDED: u32 = 1;

pub(crate) const HANDOVER_HEADER: usize = std::mem::size_of::<Handover>();

/// Hand a request to a new maintenance worker; returns the operation id once the worker has
/// recorded it, and (with `wait`) once the worker has finished.
#[pg_extern(name = "_maintenance_submit", volatile, parallel_unsafe)]
pub fn maintenance_submit(request: JsonB, wait: bool) -> Result<pgrx::Uuid, ErrorReport> {
    let parsed = request::Request::parse(&request.0).map_err(MaintenanceError::BadRequest)?;
    if parsed.refusal.is_none() {
        // A refused request is only recorded, whatever it asked for.
        parsed.operation().map_err(MaintenanceError::BadRequest)?;
    }
    let id = pgrx::Uuid::from_bytes(*parsed.id.as_bytes());
    let text = serde_json::to_vec(&request.0).map_err(|e| MaintenanceError::BadRequest(e.to_string()))?;
    let len = u32::try_from(text.len()).map_err(|_| MaintenanceError::BadRequest("request too large".into()))?;

    // SAFETY: the segment is created here, written before the worker exists, read by the
    // worker only after it attaches, and detached here after the worker flagged it.
    let segment = unsafe { pg_sys::dsm_create(HANDOVER_HEADER + text.len(), 0) };
    // SAFETY: dsm_create raised or returned a segment mapped at dsm_segment_address with HANDOVER_HEADER +
    // text.len() bytes, page-aligned (Handover needs 4); the header is written there and `text` right after it,
    // before any worker exists to read it.
    let handle = unsafe {
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        let header = base as *mut Handover;
        std::ptr::write(header, Handover { state: AtomicU32::new(PENDING), len });
        std::ptr::copy_nonoverlapping(text.as_ptr(), base.add(HANDOVER_HEADER), text.len());
        pg_sys::dsm_segment_handle(segment)
    };
    // SAFETY: called only while `segment` is attached (each dsm_detach below ends its use); the header was
    // initialised above and its state word is an AtomicU32 shared with the worker.
    let state = || unsafe { (*(pg_sys::dsm_segment_address(segment) as *const Handover)).state.load(Ordering::Acquire) };

    // SAFETY: backend-local globals.
    let (db, pid) = unsafe { (pg_sys::MyDatabaseId.to_u32(), pg_sys::MyProcPid) };
    let started = BackgroundWorkerBuilder::new("pg_steward maintenance")
        .set_type("pg_steward maintenance")
        .set_library("pg_steward")
        .set_function("pg_steward_maintenance_main")
        .enable_spi_access()
        .set_restart_time(None)
        .set_argument(Some(pg_sys::Datum::from(handle as i64)))
        .set_extra(&db.to_string())
        .set_notify_pid(pid)
        .load_dynamic();
    let Ok(worker) = started else {
        // SAFETY: `segment` is attached (created above), detached once; `state` is not called after this.
        unsafe { pg_sys::dsm_detach(segment) };
        return Err(MaintenanceError::NoWorkerSlot.into());
    };

    // Wait for the record (the worker sets the flag after its INSERT committed).
    loop {
        if state() == RECORDED {
            break;
        }
        if matches!(worker.pid(), Err(BackgroundWorkerStatus::Stopped)) {
            // One more look: it may have flagged just before it stopped.
            if state() == RECORDED {
                break;
            }
            // SAFETY: as above: attached until here, detached once, not used after.
            unsafe { pg_sys::dsm_detach(segment) };
            return Err(MaintenanceError::WorkerVanished.into());
        }
        wait_a_moment(Duration::from_millis(2));
    }
    // SAFETY: as above: attached until here (the worker has copied the request and flagged it), detached once.
    unsafe { pg_sys::dsm_detach(segment) };

    if wait {
        // Interruptible: a cancelled caller stops waiting, the operation goes on and its
        // record says how it ended.
        let _ = worker.wait_for_shutdown();
    }
    Ok(id)
}

/// Sleep on the latch (woken early by the worker's start/stop notifications), honouring
/// query cancel and postmaster death.
fn wait_a_moment(timeout: Duration) {
    // SAFETY: standard latch wait of a backend.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            timeout.as_millis() as std::os::raw::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    check_for_interrupts!();
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "maintenance_test.rs"]
mod maintenance_test;
