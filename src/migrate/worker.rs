//! The migration side of the executor (src/common/executor.rs): a migration's up or down
//! script run by a background worker as the role that asked for it.
//!
//! * A script whose statements can all run in a transaction runs as ONE transaction: the
//!   statements (with `lock_timeout` from the request and a statement timeout armed per
//!   statement), then the registry update, then the run's record — committed together, so a
//!   failure anywhere leaves nothing of the migration behind and the version unapplied.
//! * A script with a statement that cannot run in a transaction block (CREATE/DROP INDEX
//!   CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM) holds only that statement and SET statements
//!   (migration_add enforces it): each runs top-level as the caller, like maintenance does;
//!   a failed CREATE INDEX CONCURRENTLY's invalid index is dropped again.
//!
//! Statements run with `search_path = "$user", public` (the script may SET its own) and show in
//! pg_stat_activity; the worker's own statements run with the pinned path as its own role.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use pgrx::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use super::parse::{self, cstr, range_var, tag};
use crate::common::catalog::QuotedName;
use crate::common::executor::{
    in_transaction, pin_search_path, report_activity, run_utility, set_lock_timeout, spi_failure, Accepted, Failure,
};

/// What `steward._migration_apply` / `_migration_rollback` hand to the worker.
#[derive(Debug, Clone, Deserialize)]
pub struct MigrationRequest {
    pub run_id: uuid::Uuid,
    pub version: i64,
    pub direction: String,
    pub caller_oid: u32,
    pub run_by: String,
    pub lock_timeout_ms: i64,
    pub statement_timeout_ms: i64,
    /// Why the caller refused the attempt (recorded as `refused`, never run).
    #[serde(default)]
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refusal {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

const MIGRATION_SEARCH_PATH: &str = "\"$user\", public";

pub fn accept(raw: &Value) -> Accepted {
    let req: MigrationRequest = serde_json::from_value(raw.clone()).map_err(|e| Failure::new("22023", e.to_string()))?;
    if req.direction != "up" && req.direction != "down" {
        return Err(Failure::new("22023", format!("unknown direction {}", req.direction)));
    }
    if let Some(r) = &req.refusal {
        in_transaction(|| {
            Spi::run_with_args(
                "INSERT INTO steward.migration_runs (id, version, direction, status, run_by, started_at, finished_at, duration_ms,
                                                    error_sqlstate, error_message, error_detail, error_hint)
                 VALUES ($1::uuid, $2, $3, 'refused', $4, pg_catalog.now(), pg_catalog.now(), 0, $5, $6, $7, $8)",
                &[
                    req.run_id.to_string().into(),
                    req.version.into(),
                    req.direction.as_str().into(),
                    req.run_by.as_str().into(),
                    r.sqlstate.as_str().into(),
                    r.message.as_str().into(),
                    r.detail.as_deref().into(),
                    r.hint.as_deref().into(),
                ],
            )
            .map_err(spi_failure)
        })?;
        return Ok(None);
    }
    let script = in_transaction(|| {
        let script = crate::common::read_one::<String>(
            if req.direction == "up" {
                "SELECT up_script FROM steward.schema_migrations WHERE version = $1"
            } else {
                "SELECT down_script FROM steward.schema_migrations WHERE version = $1"
            },
            &[req.version.into()],
        )
        .map_err(spi_failure)?
        .ok_or_else(|| Failure::new("P0002", format!("migration {} does not exist", req.version)))?;
        Spi::run_with_args(
            "INSERT INTO steward.migration_runs (id, version, direction, status, run_by, started_at, worker_pid, worker_started_at)
             VALUES ($1::uuid, $2, $3, 'running', $4, pg_catalog.now(), pg_catalog.pg_backend_pid(),
                     (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid()))",
            &[req.run_id.to_string().into(), req.version.into(), req.direction.as_str().into(), req.run_by.as_str().into()],
        )
        .map_err(spi_failure)?;
        Ok(script)
    })?;
    Ok(Some(Box::new(move || execute(&req, &script))))
}

/// Per statement: number, first line, milliseconds.
#[derive(Debug, Clone)]
struct Timing {
    no: i32,
    ms: f64,
}

fn timings_json(t: &[Timing]) -> Value {
    Value::Array(t.iter().map(|x| json!({"statement": x.no, "ms": (x.ms * 1000.0).round() / 1000.0})).collect())
}

/// The statements of a script as (number, text, cannot run in a transaction, IndexStmt name).
fn split(script: &str) -> Result<Vec<(i32, String, bool, Option<QuotedName>)>, Failure> {
    in_transaction(|| {
        let stmts = parse::parse(script).map_err(|e| Failure::new("42601", e.message))?;
        Ok(stmts
            .iter()
            .map(|s| {
                let nt = super::rules::non_transactional(s.node);
                (s.no, s.text(script).to_string(), nt, concurrent_index_name(s.node))
            })
            .collect())
    })
}

/// The (schema-qualified when given) name of a CREATE INDEX CONCURRENTLY's index.
fn concurrent_index_name(node: *mut pg_sys::Node) -> Option<QuotedName> {
    if tag(node)? != pg_sys::NodeTag::T_IndexStmt {
        return None;
    }
    // SAFETY: tag checked.
    let (concurrent, idxname, rv) = unsafe {
        let i = node as *mut pg_sys::IndexStmt;
        ((*i).concurrent, cstr((*i).idxname), (*i).relation)
    };
    if !concurrent {
        return None;
    }
    let name = idxname?;
    Some(match range_var(rv).and_then(|(s, _)| s) {
        Some(schema) => QuotedName::from_catalog(&schema, &name),
        None => QuotedName::identifier(&name),
    })
}

fn execute(req: &MigrationRequest, script: &str) {
    let started = Instant::now();
    let caller = pg_sys::Oid::from_u32(req.caller_oid);
    let failed_at = Cell::new(0i32);
    let timings: RefCell<Vec<Timing>> = RefCell::new(Vec::new());
    let statements = match split(script) {
        Ok(s) => s,
        Err(f) => return finish_failed(req, started, &f, 0, "", &[]),
    };
    let non_transactional = statements.iter().any(|s| s.2);

    let result: Result<(), Failure> = if !non_transactional {
        // One transaction: the statements as the caller, then the registry and the record.
        in_transaction(|| {
            // SAFETY: switches the current user to the requesting role for the statements below
            // (SECURITY_LOCAL_USERID_CHANGE also forbids SET ROLE / SET SESSION AUTHORIZATION in
            // them); an error aborts the transaction, which restores the worker's own identity.
            unsafe { pg_sys::SetUserIdAndSecContext(caller, pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32) };
            Spi::run_with_args(
                "SELECT pg_catalog.set_config('lock_timeout', $1, true), pg_catalog.set_config('search_path', $2, true)",
                &[format!("{}ms", req.lock_timeout_ms.max(0)).into(), MIGRATION_SEARCH_PATH.into()],
            )
            .map_err(spi_failure)?;
            for (no, text, _, _) in &statements {
                failed_at.set(*no);
                report_activity(Some(text));
                let t = Instant::now();
                arm_statement_timeout(req.statement_timeout_ms);
                let ran = Spi::run(text);
                disarm_statement_timeout();
                ran.map_err(|e| Failure::new("XX000", e.to_string()))?;
                timings.borrow_mut().push(Timing { no: *no, ms: t.elapsed().as_secs_f64() * 1000.0 });
            }
            failed_at.set(0);
            report_activity(None);
            // SAFETY: back to the worker's own role for its records.
            unsafe { pg_sys::SetUserIdAndSecContext(pg_sys::GetSessionUserId(), 0) };
            Spi::run("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)").map_err(spi_failure)?;
            record_success(req, started, &timings.borrow())
        })
    } else {
        // Runs in the background (the caller has returned): one migration at a time is this
        // session's advisory lock now, taken once the caller's transaction (which held it) ends.
        // Top-level statements, one transaction each, as the caller.
        let locked = in_transaction(|| {
            Spi::run("SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('pg_steward migrations'))").map_err(spi_failure)
        });
        if let Err(f) = locked {
            return finish_failed(req, started, &f, 0, "", &[]);
        }
        set_lock_timeout(req.lock_timeout_ms);
        let path = in_transaction(|| {
            Spi::run_with_args("SELECT pg_catalog.set_config('search_path', $1, false)", &[MIGRATION_SEARCH_PATH.into()])
                .map_err(spi_failure)
        });
        let mut outcome = path;
        if outcome.is_ok() {
            for (no, text, _, index) in &statements {
                failed_at.set(*no);
                let t = Instant::now();
                let ran = run_utility(text, req.statement_timeout_ms, caller);
                if let Err(f) = ran {
                    if let Some(name) = index {
                        drop_invalid_index(name, req.statement_timeout_ms, caller);
                    }
                    outcome = Err(f);
                    break;
                }
                timings.borrow_mut().push(Timing { no: *no, ms: t.elapsed().as_secs_f64() * 1000.0 });
            }
        }
        report_activity(None);
        let _ = in_transaction(pin_search_path);
        set_lock_timeout(0);
        match outcome {
            Ok(()) => {
                failed_at.set(0);
                in_transaction(|| record_success(req, started, &timings.borrow()))
            }
            Err(f) => Err(f),
        }
    };
    if let Err(f) = result {
        let no = failed_at.get();
        let text = statements.iter().find(|s| s.0 == no).map(|s| s.1.as_str()).unwrap_or("");
        finish_failed(req, started, &f, no, text, &timings.borrow());
    }
}

fn record_success(req: &MigrationRequest, started: Instant, timings: &[Timing]) -> Result<(), Failure> {
    let ms = started.elapsed().as_millis() as i64;
    if req.direction == "up" {
        Spi::run_with_args(
            "UPDATE steward.schema_migrations
                SET status = 'applied', applied_at = pg_catalog.now(), applied_by = $2, execution_time_ms = $3
              WHERE version = $1",
            &[req.version.into(), req.run_by.as_str().into(), ms.into()],
        )
        .map_err(spi_failure)?;
    } else {
        Spi::run_with_args(
            "UPDATE steward.schema_migrations
                SET status = 'pending', applied_at = NULL, applied_by = NULL, execution_time_ms = NULL
              WHERE version = $1",
            &[req.version.into()],
        )
        .map_err(spi_failure)?;
    }
    Spi::run_with_args(
        "UPDATE steward.migration_runs SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                duration_ms = $2, statements = $3 WHERE id = $1::uuid",
        &[req.run_id.to_string().into(), ms.into(), pgrx::JsonB(timings_json(timings)).into()],
    )
    .map_err(spi_failure)
}

fn finish_failed(req: &MigrationRequest, started: Instant, f: &Failure, no: i32, text: &str, timings: &[Timing]) {
    let ms = started.elapsed().as_millis() as i64;
    let done = in_transaction(|| {
        if req.direction == "up" {
            Spi::run_with_args(
                "UPDATE steward.schema_migrations SET status = 'failed' WHERE version = $1 AND status <> 'applied'",
                &[req.version.into()],
            )
            .map_err(spi_failure)?;
        }
        Spi::run_with_args(
            "UPDATE steward.migration_runs
                SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), duration_ms = $2,
                    error_sqlstate = $3, error_message = $4, error_detail = $5, error_hint = $6,
                    failed_statement = NULLIF($7, 0), failed_statement_text = NULLIF($8, ''), statements = $9
              WHERE id = $1::uuid",
            &[
                req.run_id.to_string().into(),
                ms.into(),
                f.sqlstate.as_str().into(),
                f.message.as_str().into(),
                f.detail.as_deref().into(),
                f.hint.as_deref().into(),
                no.into(),
                truncate(text, 4000).as_str().into(),
                pgrx::JsonB(timings_json(timings)).into(),
            ],
        )
        .map_err(spi_failure)
    });
    if let Err(e) = done {
        pgrx::log!("pg_steward migration {}: could not record the failure: {}", req.version, e.message);
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// After a failed CREATE INDEX CONCURRENTLY: its invalid index, dropped concurrently as the caller.
fn drop_invalid_index(name: &QuotedName, timeout_ms: i64, caller: pg_sys::Oid) {
    let invalid = in_transaction(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT NOT i.indisvalid FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass($1)",
            &[name.as_str().into()],
        )
        .map_err(spi_failure)
    });
    if matches!(invalid, Ok(Some(true))) {
        let sql = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", name.as_str());
        if let Err(f) = run_utility(&sql, timeout_ms, caller) {
            pgrx::log!("pg_steward migration: could not drop the invalid index {}: {}", name.as_str(), f.message);
        }
    }
}

fn arm_statement_timeout(ms: i64) {
    if ms > 0 {
        crate::common::executor::arm_statement_timeout(ms);
    }
}

fn disarm_statement_timeout() {
    crate::common::executor::disarm_statement_timeout();
}
