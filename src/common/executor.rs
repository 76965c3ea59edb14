//! The one executor: a dynamic background worker per request, for maintenance (VACUUM,
//! ANALYZE, REINDEX) and for migrations alike.
//!
//! Hand-over: the caller writes the request (JSON) into a dynamic shared memory segment and
//! starts a worker with the segment's handle.  The worker copies the request, records it in
//! its own transaction (so the record survives the caller's rollback), flags the segment, and
//! runs it; the caller waits for the flag, and for the worker to finish unless asked not to.
//! Statements run as the requesting role (`SetUserIdAndSecContext`), never as the worker's
//! own superuser, and show in `pg_stat_activity` while they run (`pgstat_report_activity`).
//!
//! Statements that must run outside a transaction block (VACUUM, the CONCURRENTLY forms) run
//! as top-level utility statements in their own transactions, the way the server runs a
//! statement typed at psql: parse, wrap the raw statement in a utility `PlannedStmt`, push a
//! snapshot and call `ProcessUtility` with `PROCESS_UTILITY_TOPLEVEL`.  (Through SPI the
//! statement would not be top level, and VACUUM would refuse to run.)

use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus};
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::{PgList, PgTryBuilder};
use serde_json::{json, Value};

/// Why a request could not be handed to a worker (the request itself was not run).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("could not start a pg_steward worker")]
    NoWorkerSlot,
    #[error("the pg_steward worker stopped before recording the request")]
    WorkerVanished,
}

impl From<ExecutorError> for ErrorReport {
    fn from(err: ExecutorError) -> Self {
        let message = err.to_string();
        match err {
            ExecutorError::BadRequest(detail) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.executor")
                    .set_detail(detail)
                    .set_hint("Call the public functions (run_maintenance, migration_apply, ...) instead of the internal one.")
            }
            ExecutorError::NoWorkerSlot => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, message, "pg_steward.executor")
                    .set_detail("Every max_worker_processes slot is in use.")
                    .set_hint("Raise max_worker_processes (needs a restart) or retry when other workers have finished.")
            }
            ExecutorError::WorkerVanished => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, message, "pg_steward.executor")
                    .set_detail("No record was written, so nothing ran.")
                    .set_hint("See the server log for the worker's message, then retry.")
            }
        }
    }
}


// utils/timeout.h is not part of pgrx's bindings.  STATEMENT_TIMEOUT is the fourth member of
// `enum TimeoutId` in every supported major version (13-18).
const STATEMENT_TIMEOUT: std::os::raw::c_int = 3;
// SAFETY (declarations): these match utils/timeout.h of PostgreSQL 13-18 (TimeoutId is an int-sized C enum); both
// report failure only with FATAL (proc_exit), never with an ERROR longjmp across the Rust frames that call them.
extern "C-unwind" {
    fn enable_timeout_after(id: std::os::raw::c_int, delay_ms: std::os::raw::c_int);
    fn disable_timeout(id: std::os::raw::c_int, keep_indicator: bool);
}

/// An error of one step, as PostgreSQL reported it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(sqlstate: &str, message: impl Into<String>) -> Self {
        Failure { sqlstate: sqlstate.into(), message: message.into(), detail: None, hint: None }
    }

    pub fn from_caught(err: CaughtError) -> Self {
        let report = match &err {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        // SAFETY: unpack_sql_state returns a pointer to a static buffer of 5 characters.
        let sqlstate = unsafe {
            std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(report.sql_error_code() as i32))
                .to_string_lossy()
                .into_owned()
        };
        pgrx::log!(
            "pg_steward worker: {} ({}, {}:{} {})",
            report.message(),
            sqlstate,
            report.file(),
            report.line_number(),
            report.function_name().unwrap_or("")
        );
        Failure {
            sqlstate,
            message: report.message().to_string(),
            detail: report.detail().map(str::to_string),
            hint: report.hint().map(str::to_string),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"sqlstate": self.sqlstate, "message": self.message, "detail": self.detail, "hint": self.hint})
    }
}

/// Run `body` in a transaction of its own; on error the transaction is rolled back and the
/// error returned (the worker goes on).
pub fn in_transaction<R>(body: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    // SAFETY: the worker is between transactions whenever this is called.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(AssertUnwindSafe(body))
        .catch_others(|e| Err(Failure::from_caught(e)))
        .execute();
    // SAFETY: ends the transaction started above, either way.
    unsafe {
        match outcome {
            Ok(_) => {
                if pg_sys::ActiveSnapshotSet() {
                    pg_sys::PopActiveSnapshot();
                }
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    outcome
}

pub fn spi_failure(e: pgrx::spi::SpiError) -> Failure {
    Failure::new("XX000", format!("pg_steward worker: {e}"))
}

/// Run one utility statement as a top-level command in its own transaction, as `role` (the
/// requesting caller): PostgreSQL's own privilege checks apply to it, and VACUUM, ANALYZE and
/// REINDEX switch to the table's owner in a security-restricted operation themselves.
pub fn run_utility(sql: &str, statement_timeout_ms: i64, role: pg_sys::Oid) -> Result<(), Failure> {
    report_activity(Some(sql));
    let text = CString::new(sql).map_err(|_| Failure::new("22023", "statement contains a NUL byte"))?;
    // The statement's memory lives in a context of its own, not in the transaction's: VACUUM
    // and REINDEX CONCURRENTLY commit the transaction they were called in and start new
    // ones, and the server's utility processing still uses its parse state afterwards (the
    // server itself keeps it in a per-message context for the same reason).
    // SAFETY: between transactions; every path below ends the transaction it starts.  The new
    // context is a child of TopMemoryContext (it survives those commits) and is deleted below.
    let statement_context = unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        let context = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"pg_steward statement".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        pg_sys::MemoryContextSwitchTo(context);
        context
    };
    // SAFETY: in the transaction started above, with `statement_context` current: the parse tree and the palloc0'd
    // (zeroed, then filled) PlannedStmt live there until it is deleted below; `text` outlives the call; the user
    // switch, timeout and active snapshot set here are undone after the try, whichever way it ends.
    let outcome = PgTryBuilder::new(AssertUnwindSafe(|| unsafe {
        let parsed = PgList::<pg_sys::RawStmt>::from_pg(pg_sys::pg_parse_query(text.as_ptr()));
        let Some(raw) = parsed.get_ptr(0) else {
            return Err(Failure::new("42601", "empty maintenance statement"));
        };
        let planned = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlannedStmt>()) as *mut pg_sys::PlannedStmt;
        (*planned).type_ = pg_sys::NodeTag::T_PlannedStmt;
        (*planned).commandType = pg_sys::CmdType::CMD_UTILITY;
        (*planned).canSetTag = true;
        (*planned).utilityStmt = (*raw).stmt;
        (*planned).stmt_location = (*raw).stmt_location;
        (*planned).stmt_len = (*raw).stmt_len;

        // The caller's identity for the statement (the worker itself is connected as the
        // bootstrap superuser, for its records only).  VACUUM and REINDEX CONCURRENTLY keep the
        // current user across the transactions they start.
        pg_sys::SetUserIdAndSecContext(role, pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);

        // As the server does for a utility statement typed by a client: an active snapshot,
        // which VACUUM and REINDEX CONCURRENTLY pop when they start their own transactions.
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        if statement_timeout_ms > 0 {
            enable_timeout_after(STATEMENT_TIMEOUT, statement_timeout_ms.min(i32::MAX as i64) as i32);
        }
        #[cfg(feature = "pg13")]
        pg_sys::ProcessUtility(
            planned,
            text.as_ptr(),
            pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::None_Receiver,
            std::ptr::null_mut(),
        );
        #[cfg(not(feature = "pg13"))]
        pg_sys::ProcessUtility(
            planned,
            text.as_ptr(),
            false,
            pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::None_Receiver,
            std::ptr::null_mut(),
        );
        disable_timeout(STATEMENT_TIMEOUT, false);
        if pg_sys::ActiveSnapshotSet() {
            pg_sys::PopActiveSnapshot();
        }
        Ok(())
    }))
    .catch_others(|e| Err(Failure::from_caught(e)))
    .execute();
    // SAFETY: ends the transaction (the utility command may have replaced it with its own),
    // then frees the statement's memory; the worker is itself again for its records.
    unsafe {
        disable_timeout(STATEMENT_TIMEOUT, false);
        pg_sys::SetUserIdAndSecContext(pg_sys::GetSessionUserId(), 0);
        pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        match outcome {
            Ok(()) => pg_sys::CommitTransactionCommand(),
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        pg_sys::MemoryContextDelete(statement_context);
    }
    outcome
}

pub fn set_lock_timeout(ms: i64) {
    let _ = in_transaction(|| {
        Spi::run_with_args("SELECT pg_catalog.set_config('lock_timeout', $1, false)", &[format!("{}ms", ms.max(0)).into()])
            .map_err(spi_failure)
    });
}


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

/// Hand a request to a new worker; returns once the worker has recorded it, and (with `wait`)
/// once the worker has finished.
pub fn submit(request: &Value, wait: bool) -> Result<(), ExecutorError> {
    let text = serde_json::to_vec(request).map_err(|e| ExecutorError::BadRequest(e.to_string()))?;
    let len = u32::try_from(text.len()).map_err(|_| ExecutorError::BadRequest("request too large".into()))?;

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
    let kind = request.get("kind").and_then(Value::as_str).unwrap_or("maintenance");
    let started = BackgroundWorkerBuilder::new(&format!("pg_steward {kind}"))
        .set_type(&format!("pg_steward {kind}"))
        .set_library("pg_steward")
        .set_function("pg_steward_executor_main")
        .enable_spi_access()
        .set_restart_time(None)
        .set_argument(Some(pg_sys::Datum::from(handle as i64)))
        .set_extra(&db.to_string())
        .set_notify_pid(pid)
        .load_dynamic();
    let Ok(worker) = started else {
        // SAFETY: `segment` is attached (created above), detached once; `state` is not called after this.
        unsafe { pg_sys::dsm_detach(segment) };
        return Err(ExecutorError::NoWorkerSlot);
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
            return Err(ExecutorError::WorkerVanished);
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
    Ok(())
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

/// What a capability does with a request in the worker: record it (in its own committed
/// transaction) and return the work to run once the caller has been let go, or None when the
/// request was recorded as refused.
pub type Accepted = Result<Option<Box<dyn FnOnce()>>, Failure>;

/// Entry point of the dynamic worker (see `submit`).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_steward_executor_main(arg: pg_sys::Datum) {
    // Default background-worker signal handling: SIGTERM ends the worker (its record is then
    // marked failed by the next look), SIGINT cancels the running statement.
    // SAFETY: the worker's first step: unblocks the signals the postmaster left blocked, whose handlers
    // PostgreSQL installed for a worker with a database connection.
    unsafe { pg_sys::BackgroundWorkerUnblockSignals() };
    let Ok(db) = BackgroundWorker::get_extra().trim().parse::<u32>() else {
        pgrx::log!("pg_steward worker started without a database");
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from_u32(db)), None);
    // Every statement of this session resolves names in pg_catalog first and never in a
    // schema some role could create objects in.
    if let Err(f) = in_transaction(pin_search_path) {
        pgrx::log!("pg_steward worker: could not pin search_path: {}", f.message);
        return;
    }

    // Copy the request out of the caller's segment.
    let handle = arg.value() as u32;
    // SAFETY: the caller keeps the segment until we flag it RECORDED (or until it sees
    // this worker stopped); the layout is `Handover` followed by `len` bytes.
    let segment = unsafe { pg_sys::dsm_attach(handle) };
    if segment.is_null() {
        pgrx::log!("pg_steward worker: the requesting session is gone");
        return;
    }
    // SAFETY: `segment` is the non-null mapping just attached; pinning only detaches it from the current resource
    // owner (if any), so it stays mapped until the dsm_detach below.
    unsafe { pg_sys::dsm_pin_mapping(segment) };
    // SAFETY: the address of a mapped segment, valid until the dsm_detach below.
    let base = unsafe { pg_sys::dsm_segment_address(segment) as *const u8 };
    let header = base as *const Handover;
    // SAFETY: the caller wrote a Handover header and then `len` request bytes into a segment of exactly that size
    // before starting this worker, and keeps it until RECORDED; the page-aligned header is read once, the bytes copied.
    let bytes = unsafe { std::slice::from_raw_parts(base.add(HANDOVER_HEADER), (*header).len as usize).to_vec() };
    let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    let accepted: Accepted = match raw.get("kind").and_then(Value::as_str) {
        Some("migration") => crate::migrate::worker::accept(&raw),
        Some("admin_log") => crate::audit::admin_log::accept(&raw),
        _ => crate::maintenance::worker::accept(&raw),
    };
    // Let the caller go on: the record is committed (or could not be written at all).
    // SAFETY: `header` points into the segment, still attached and detached here once (`base` and `header` are not
    // used after); the state word is an AtomicU32 the caller polls, stored with Release after the record committed.
    unsafe {
        if accepted.is_ok() {
            (*header).state.store(RECORDED, Ordering::Release);
        }
        pg_sys::dsm_detach(segment);
    }
    match accepted {
        Ok(Some(work)) => work(),
        Ok(None) => {}
        Err(f) => pgrx::log!("pg_steward worker: request not recorded: {}", f.message),
    }
}

/// `search_path = pg_catalog, pg_temp` for the worker's own statements (session-wide).
pub fn pin_search_path() -> Result<(), Failure> {
    Spi::run("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)").map_err(spi_failure)
}

/// Show `text` as the worker's running statement in pg_stat_activity (None: idle).
pub fn report_activity(text: Option<&str>) {
    let c = text.map(|t| CString::new(t.replace('\0', " ")).unwrap_or_default());
    // SAFETY: pgstat_report_activity copies the string into the backend's status slot.
    unsafe {
        match &c {
            Some(s) => pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, s.as_ptr()),
            None => pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()),
        }
    }
}

/// Arm the statement timeout for the next statement run through SPI in the worker (SPI, unlike a
/// client's statement, starts no timer of its own).
pub fn arm_statement_timeout(ms: i64) {
    // SAFETY: enables the backend's statement timer; it fires as a query cancel.
    unsafe { enable_timeout_after(STATEMENT_TIMEOUT, ms.clamp(1, i32::MAX as i64) as i32) };
}

pub fn disarm_statement_timeout() {
    // SAFETY: disabling a timer that may not be armed is allowed.
    unsafe { disable_timeout(STATEMENT_TIMEOUT, false) };
}
