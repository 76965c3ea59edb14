//! The admin log (issue #16 item 6): one row per admin action — who (the database role behind
//! it, the JWT subject and role under an API role), from where (client address and user agent
//! of the request), when, which action with which arguments, and its outcome.
//!
//! The entry points (SQL wrappers around each action's body, sql/admin_log.sql) call
//! `steward._admin_logged` when the body returned — the row is written in the caller's
//! transaction — and `steward._admin_log_failed` from their exception handler before
//! re-raising: that row goes through `_admin_log_submit` to the executor's worker, which writes
//! it in a transaction of its own, so it survives the failed call's rollback.  All are
//! owner-only (finalize.sql grants them to nobody): only the extension's SECURITY DEFINER
//! wrappers can write a row, and the identity in it is read here, never taken from arguments.

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use super::current_attribution;
use crate::common::executor::{self, in_transaction, spi_failure, Accepted};

const INSERT: &str = "INSERT INTO steward.admin_log
        (actor, actor_uuid, jwt_role, client_ip, user_agent, action, arguments, outcome, sqlstate, message, result)
    SELECT r ->> 'actor', (r ->> 'actor_uuid')::uuid, r ->> 'jwt_role', r ->> 'client_ip', r ->> 'user_agent',
           r ->> 'action', coalesce(r -> 'arguments', '{}'), r ->> 'outcome', r ->> 'sqlstate', r ->> 'message',
           r -> 'result'
      FROM (SELECT $1::jsonb AS r) x";

/// SQL `steward._request_identity() → jsonb`: who is acting and from where — the audit log's
/// attribution (`actor`, `actor_uuid`, `jwt_role`, `client_ip`, `user_agent`).  Owner-only.
#[pg_extern(name = "_request_identity", stable, parallel_safe)]
pub fn request_identity() -> JsonB {
    let who = current_attribution();
    JsonB(json!({
        "actor": who.actor,
        "actor_uuid": who.changed_by.map(|u| u.to_string()),
        "jwt_role": who.jwt_role,
        "client_ip": who.client_ip,
        "user_agent": who.user_agent,
    }))
}

/// SQL `steward._admin_log_submit(row text) → boolean`: write one admin-log row (the JSON text
/// `steward._admin_log_failed` builds) through a worker, in a transaction of its own, so it
/// outlives the failed call's rollback.  The row travels as text and is parsed by PostgreSQL
/// (numbers of any size).  Returns whether it was written: never on a standby (nothing can be
/// written there) and not when no worker slot is free (a WARNING says so).  Owner-only.
#[pg_extern(name = "_admin_log_submit", volatile, parallel_unsafe)]
pub fn admin_log_submit(row: &str) -> bool {
    // SAFETY: reads shared recovery state.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return false;
    }
    let request = json!({"kind": "admin_log", "row": row});
    match executor::submit(&request, false) {
        Ok(()) => true,
        Err(e) => {
            let report: pgrx::pg_sys::panic::ErrorReport = e.into();
            warning!("pg_steward: a failed admin action was not written to steward.admin_log: {}", report.message());
            false
        }
    }
}

/// The worker's part of `_admin_log_submit`: write the row and commit.
pub fn accept(raw: &Value) -> Accepted {
    let Some(row) = raw.get("row").and_then(Value::as_str) else {
        return Err(executor::Failure::new("22023", "admin log request without a row"));
    };
    in_transaction(|| Spi::run_with_args(INSERT, &[row.into()]).map_err(spi_failure))?;
    Ok(None)
}
