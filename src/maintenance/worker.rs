//! The maintenance worker: one dynamic background worker per request.
//!
//! It runs the operation as a top-level utility statement in its own transaction, outside
//! any transaction block, the way the server runs a statement typed at psql: parse, wrap the
//! raw statement in a utility `PlannedStmt`, push a snapshot and call `ProcessUtility` with
//! `PROCESS_UTILITY_TOPLEVEL`.  (Through SPI the statement would not be top level, and
//! VACUUM would refuse to run.)  VACUUM of many tables runs one table per transaction.

use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::time::Instant;

use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::{JsonB, PgList, PgTryBuilder};
use serde_json::{json, Value};

use super::request::{drop_index_concurrently, statement, Operation, QuotedName, Request};
use super::{Handover, HANDOVER_HEADER, RECORDED};

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
    fn new(sqlstate: &str, message: impl Into<String>) -> Self {
        Failure { sqlstate: sqlstate.into(), message: message.into(), detail: None, hint: None }
    }

    fn from_caught(err: CaughtError) -> Self {
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
            "pg_steward maintenance worker: {} ({}, {}:{} {})",
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

    fn to_json(&self) -> Value {
        json!({"sqlstate": self.sqlstate, "message": self.message, "detail": self.detail, "hint": self.hint})
    }
}

/// Run `body` in a transaction of its own; on error the transaction is rolled back and the
/// error returned (the worker goes on).
fn in_transaction<R>(body: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
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

fn spi_failure(e: pgrx::spi::SpiError) -> Failure {
    Failure::new("XX000", format!("pg_steward maintenance worker: {e}"))
}

/// Run one utility statement as a top-level command in its own transaction, as `role` (the
/// requesting caller): PostgreSQL's own privilege checks apply to it, and VACUUM, ANALYZE and
/// REINDEX switch to the table's owner in a security-restricted operation themselves.
fn run_utility(sql: &str, statement_timeout_ms: i64, role: pg_sys::Oid) -> Result<(), Failure> {
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
            c"pg_steward maintenance statement".as_ptr(),
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

const RECORD_SQL: &str = "
    INSERT INTO steward.maintenance_operations
        (id, operation_type, table_name, index_name, status, initiated_by, options, relid, indexrelid,
         initiator, client_ip, user_agent, refused, error_sqlstate, error_message, error_detail,
         error_hint, completed_at, duration_ms, worker_pid, worker_started_at)
    SELECT (r ->> 'id')::uuid, r ->> 'operation_type', r ->> 'table_name', r ->> 'index_name',
           CASE WHEN refusal IS NULL THEN 'queued' ELSE 'failed' END,
           (r ->> 'initiated_by')::uuid,
           jsonb_strip_nulls(jsonb_build_object(
               'full', r -> 'full', 'analyze', r -> 'analyze', 'verbose', r -> 'verbose',
               'concurrently', r -> 'concurrently', 'async', r -> 'async', 'confirm', r -> 'confirm',
               'force', r -> 'force', 'all_tables', (r -> 'relid') IS NULL OR r -> 'relid' = 'null',
               'statement_timeout_ms', r -> 'statement_timeout_ms', 'lock_timeout_ms', r -> 'lock_timeout_ms')),
           (r ->> 'relid')::oid, (r ->> 'indexrelid')::oid,
           r ->> 'initiator', r ->> 'client_ip', r ->> 'user_agent',
           refusal IS NOT NULL, refusal ->> 'sqlstate', refusal ->> 'message', refusal ->> 'detail', refusal ->> 'hint',
           CASE WHEN refusal IS NOT NULL THEN now() END, CASE WHEN refusal IS NOT NULL THEN 0 END,
           pg_backend_pid(), (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid())
      FROM (SELECT $1::jsonb AS r, nullif(nullif($1::jsonb -> 'refusal', 'null'::jsonb), '{}'::jsonb) AS refusal) x";

const FINISH_SQL: &str = "
    UPDATE steward.maintenance_operations m
       SET status = o ->> 'status', completed_at = now(),
           duration_ms = (o ->> 'duration_ms')::bigint,
           error_sqlstate = o ->> 'sqlstate', error_message = o ->> 'message',
           error_detail = o ->> 'detail', error_hint = o ->> 'hint',
           options = m.options || coalesce(o -> 'options', '{}')
      FROM (SELECT $2::jsonb AS o) x
     WHERE m.id = $1::uuid";

/// Insert the record; a second live operation on the same relation violates the partial
/// unique index, which is recorded as a refused attempt instead.
fn record(raw: &Value) -> Result<(), Failure> {
    let first = in_transaction(|| {
        Spi::run("SELECT steward._reap_maintenance()").map_err(spi_failure)?;
        Spi::run_with_args(RECORD_SQL, &[JsonB(raw.clone()).into()]).map_err(spi_failure)
    });
    match first {
        Err(f) if f.sqlstate == "23505" => {
            let mut refused = raw.clone();
            refused["refusal"] = json!({
                "sqlstate": "23505",
                "message": format!("another maintenance operation is queued or running on {}",
                                   raw.get("table_name").and_then(Value::as_str).unwrap_or("every table")),
                "detail": "One operation per relation at a time.",
                "hint": "Wait for it (steward.maintenance_running()) or cancel it (steward.maintenance_cancel(id))."
            });
            in_transaction(|| Spi::run_with_args(RECORD_SQL, &[JsonB(refused.clone()).into()]).map_err(spi_failure))
        }
        other => other,
    }
}

fn finish(id: &str, outcome: &Value) {
    let done = in_transaction(|| {
        Spi::run_with_args(FINISH_SQL, &[id.to_string().into(), JsonB(outcome.clone()).into()]).map_err(spi_failure)
    });
    if let Err(f) = done {
        pgrx::log!("pg_steward maintenance {id}: could not record the outcome: {}", f.message);
    }
}

/// Quoted schema-qualified name of a relation, `None` when it no longer exists.
fn quoted_name(relid: u32) -> Result<Option<QuotedName>, Failure> {
    in_transaction(|| {
        let names = Spi::get_two_with_args::<String, String>(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[pg_sys::Oid::from_u32(relid).into()],
        );
        match names {
            Ok((Some(schema), Some(name))) => Ok(Some(QuotedName::from_catalog(&schema, &name))),
            Ok(_) | Err(pgrx::spi::SpiError::InvalidPosition) => Ok(None),
            Err(e) => Err(spi_failure(e)),
        }
    })
}

/// The user tables and materialized views `role` may maintain, as (oid, quoted name), in OID
/// order, and how many others were skipped.
fn maintainable_tables(role: pg_sys::Oid) -> Result<(Vec<(u32, QuotedName)>, usize), Failure> {
    let all = user_tables()?;
    in_transaction(|| {
        let total = all.len();
        let mine: Vec<_> = all
            .into_iter()
            .filter(|(oid, _)| {
                crate::common::privilege::check(role, pg_sys::Oid::from_u32(*oid),
                                                &[crate::common::privilege::Privilege::Maintain], "maintenance")
                    .is_ok()
            })
            .collect();
        let skipped = total - mine.len();
        Ok((mine, skipped))
    })
}

/// Every user table and materialized view, as (oid, quoted name), in OID order.
fn user_tables() -> Result<Vec<(u32, QuotedName)>, Failure> {
    in_transaction(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
                  ORDER BY c.oid",
                None,
                &[],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let oid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
                let schema = row.get::<String>(2)?.unwrap_or_default();
                let name = row.get::<String>(3)?.unwrap_or_default();
                out.push((oid, QuotedName::from_catalog(&schema, &name)));
            }
            Ok(out)
        })
        .map_err(spi_failure)
    })
}

/// After a failed REINDEX CONCURRENTLY: the invalid `_ccnew` copies it left behind on the
/// table, dropped concurrently.  Returns what was dropped (or could not be).
fn clean_up_ccnew(relid: u32, timeout_ms: i64, role: pg_sys::Oid) -> Vec<Value> {
    let leftovers = in_transaction(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE i.indrelid = $1 AND NOT i.indisvalid AND c.relname ~ '_ccnew[0-9]*$'",
                None,
                &[pg_sys::Oid::from_u32(relid).into()],
            )?;
            let mut out = Vec::new();
            for row in rows {
                let schema = row.get::<String>(1)?.unwrap_or_default();
                let name = row.get::<String>(2)?.unwrap_or_default();
                out.push(QuotedName::from_catalog(&schema, &name));
            }
            Ok(out)
        })
        .map_err(spi_failure)
    })
    .unwrap_or_default();
    leftovers
        .into_iter()
        .map(|name| match run_utility(&drop_index_concurrently(&name), timeout_ms, role) {
            Ok(()) => json!({"dropped": name.as_str()}),
            Err(f) => json!({"not_dropped": name.as_str(), "error": f.message}),
        })
        .collect()
}

fn set_lock_timeout(ms: i64) {
    let _ = in_transaction(|| {
        Spi::run_with_args("SELECT pg_catalog.set_config('lock_timeout', $1, false)", &[format!("{}ms", ms.max(0)).into()])
            .map_err(spi_failure)
    });
}

/// Entry point of the dynamic worker (see `maintenance_submit`).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_steward_maintenance_main(arg: pg_sys::Datum) {
    // Default background-worker signal handling: SIGTERM ends the worker (its record is then
    // marked failed by the next look), SIGINT cancels the running statement.
    // SAFETY: the worker's first step: unblocks the signals the postmaster left blocked, whose handlers
    // PostgreSQL installed for a worker with a database connection.
    unsafe { pg_sys::BackgroundWorkerUnblockSignals() };
    let Ok(db) = BackgroundWorker::get_extra().trim().parse::<u32>() else {
        pgrx::log!("pg_steward maintenance worker started without a database");
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from_u32(db)), None);
    // Every statement of this session resolves names in pg_catalog first and never in a
    // schema some role could create objects in.
    if let Err(f) = in_transaction(|| Spi::run("SET search_path = pg_catalog, pg_temp").map_err(spi_failure)) {
        pgrx::log!("pg_steward maintenance worker: could not pin search_path: {}", f.message);
        return;
    }

    // Copy the request out of the caller's segment.
    let handle = arg.value() as u32;
    // SAFETY: the caller keeps the segment until we flag it RECORDED (or until it sees
    // this worker stopped); the layout is `Handover` followed by `len` bytes.
    let segment = unsafe { pg_sys::dsm_attach(handle) };
    if segment.is_null() {
        pgrx::log!("pg_steward maintenance worker: the requesting session is gone");
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
    let request = Request::parse(&raw);

    let recorded = match &request {
        Ok(_) => record(&raw),
        Err(e) => Err(Failure::new("22023", e.clone())),
    };
    // Let the caller go on: the record is committed (or could not be written at all).
    // SAFETY: `header` points into the segment, still attached and detached here once (`base` and `header` are not
    // used after); the state word is an AtomicU32 the caller polls, stored with Release after the record committed.
    unsafe {
        if recorded.is_ok() {
            (*header).state.store(RECORDED, Ordering::Release);
        }
        pg_sys::dsm_detach(segment);
    }
    let (Ok(request), Ok(())) = (request, recorded) else {
        pgrx::log!("pg_steward maintenance worker: request not recorded");
        return;
    };
    if request.refusal.is_some() {
        return;
    }
    // Recorded but refused by the arbiter (a concurrent operation)?
    let live = in_transaction(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT status = 'queued' AND NOT refused FROM steward.maintenance_operations WHERE id = $1::uuid",
            &[request.id.to_string().into()],
        )
        .map_err(spi_failure)
    });
    if !matches!(live, Ok(Some(true))) {
        return;
    }
    execute(&request);
}

fn execute(request: &Request) {
    let started = Instant::now();
    let _ = in_transaction(|| {
        Spi::run_with_args(
            "UPDATE steward.maintenance_operations SET status = 'running', started_at = now() WHERE id = $1::uuid",
            &[request.id.to_string().into()],
        )
        .map_err(spi_failure)
    });
    let timeout = request.statement_timeout_ms.unwrap_or(300_000);
    // REINDEX CONCURRENTLY holds only a SHARE UPDATE EXCLUSIVE lock (nobody's reads or
    // writes wait for it) but itself waits for every older transaction to end: a lock
    // timeout would only make it fail; the statement timeout still bounds it.
    set_lock_timeout(if request.concurrently { 0 } else { request.lock_timeout_ms.unwrap_or(5_000) });

    let mut options = json!({});
    let result: Result<(), Failure> = (|| {
        let op = request.operation().map_err(|e| Failure::new("22023", e))?;
        let Some(role) = request.caller_oid.map(pg_sys::Oid::from_u32) else {
            return Err(Failure::new("42501", "the maintenance request names no caller"));
        };
        if request.all_tables() {
            // Only the tables the caller may maintain (as VACUUM without a table does).
            let (tables, skipped) = maintainable_tables(role)?;
            options["relations_skipped"] = json!(skipped);
            let mut failures = Vec::new();
            for (_, name) in &tables {
                if let Err(f) = run_utility(&statement(op, name), timeout, role) {
                    failures.push(json!({"table": name.as_str(), "sqlstate": f.sqlstate, "message": f.message}));
                }
            }
            options["relations_processed"] = json!(tables.len());
            options["relations_failed"] = json!(failures.len());
            if let Some(first) = failures.first().cloned() {
                options["failures"] = Value::Array(failures.iter().take(100).cloned().collect());
                return Err(Failure {
                    sqlstate: first["sqlstate"].as_str().unwrap_or("XX000").to_string(),
                    message: format!("{} of {} tables failed; first: {}: {}", failures.len(), tables.len(),
                                     first["table"].as_str().unwrap_or("?"), first["message"].as_str().unwrap_or("?")),
                    detail: None,
                    hint: Some("The failures are listed in options.failures.".into()),
                });
            }
            return Ok(());
        }
        let target_oid = request.indexrelid.or(request.relid).unwrap_or(0);
        let Some(name) = quoted_name(target_oid)? else {
            return Err(Failure::new("42P01", format!("relation with OID {target_oid} no longer exists")));
        };
        options["statement"] = json!(statement(op, &name));
        options["relations_processed"] = json!(1);
        // The caller's rights again, now (they may have changed since the request).
        let allowed = in_transaction(|| {
            crate::common::privilege::check(role, pg_sys::Oid::from_u32(request.relid.unwrap_or(target_oid)),
                                            &[crate::common::privilege::Privilege::Maintain], "maintenance")
                .map(|_| ())
                .map_err(|e| Failure::new("42501", e.to_string()))
        });
        allowed?;
        let outcome = run_utility(&statement(op, &name), timeout, role);
        if outcome.is_err() {
            if let (Operation::ReindexTable { concurrently: true } | Operation::ReindexIndex { concurrently: true }, Some(relid)) =
                (op, request.relid)
            {
                let cleaned = clean_up_ccnew(relid, timeout, role);
                if !cleaned.is_empty() {
                    options["cleanup"] = Value::Array(cleaned);
                }
            }
        }
        outcome
    })();

    let duration_ms = started.elapsed().as_millis() as i64;
    let mut outcome = match &result {
        Ok(()) => json!({"status": "completed"}),
        Err(f) => {
            let mut v = f.to_json();
            v["status"] = json!("failed");
            v
        }
    };
    outcome["duration_ms"] = json!(duration_ms);
    outcome["options"] = options;
    finish(&request.id.to_string(), &outcome);
}
