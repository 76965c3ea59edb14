//! The maintenance side of the executor (src/common/executor.rs): recording a request in
//! `maintenance_operations` and running VACUUM, ANALYZE or REINDEX as the caller.  VACUUM of
//! many tables runs one table per transaction.

use std::time::Instant;

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use super::request::{drop_index_concurrently, statement, Operation, QuotedName, Request};
use crate::common::executor::{in_transaction, run_utility, set_lock_timeout, spi_failure, Failure};


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


/// The executor's maintenance side: record the request, then (unless it was refused) the
/// operation to run.
pub fn accept(raw: &Value) -> crate::common::executor::Accepted {
    let request = Request::parse(raw).map_err(|e| Failure::new("22023", e))?;
    record(raw)?;
    if request.refusal.is_some() {
        return Ok(None);
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
        return Ok(None);
    }
    Ok(Some(Box::new(move || execute(&request))))
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
