//! Rollback's row access (CONTRACT §5): lock-and-read and write-back of one audited
//! configuration row.
//!
//! The table and its key and document columns are data (`steward.audited_tables`), so the
//! PL/pgSQL version built both statements with `EXECUTE format(...)` — planned again on every
//! call, a quarter of a rollback's time.  Here each statement is prepared once per backend
//! per (table, columns, mode) and kept; PostgreSQL's plan cache re-plans it after DDL on the
//! table.  Names enter the statement only as `QuotedName`s (the table from the catalog by
//! OID, the columns through pgrx's identifier quoting); values are bound parameters.  Both functions run with the
//! caller's rights: row-level security and privileges apply as to a plain UPDATE.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgMemoryContexts;

use crate::common::catalog::QuotedName;
use crate::common::jsonb::{JsonbDatum, RawJsonb};
use crate::common::SpiContext;

pub mod error;
use error::RollbackError;

#[derive(Hash, PartialEq, Eq, Clone, Copy)]
enum Mode {
    Read,
    Lock,
    Write,
}

thread_local! {
    static PLANS: RefCell<HashMap<(u32, String, String, Mode), OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Refuse (42804) unless `column` of `tbl` exists and has type `expected`.
fn column_is(tbl: pg_sys::Oid, column: &str, expected: pg_sys::Oid) -> Result<(), ErrorReport> {
    let name = std::ffi::CString::new(column).map_err(|_| RollbackError::ColumnType(column.to_string()))?;
    // SAFETY: syscache look-ups by relation OID and a NUL-terminated name; both return
    // InvalidAttrNumber / InvalidOid for anything missing.
    let found = unsafe {
        let attnum = pg_sys::get_attnum(tbl, name.as_ptr());
        if attnum == pg_sys::InvalidAttrNumber as pg_sys::AttrNumber {
            pg_sys::Oid::INVALID
        } else {
            pg_sys::get_atttype(tbl, attnum)
        }
    };
    if found == expected { Ok(()) } else { Err(RollbackError::ColumnType(column.to_string()).into()) }
}

fn statement(mode: Mode, table: &QuotedName, key: &QuotedName, doc: &QuotedName) -> String {
    match mode {
        Mode::Read => format!("SELECT t.{doc} FROM {table} t WHERE t.{key} OPERATOR(pg_catalog.=) $1"),
        Mode::Lock => format!("SELECT t.{doc} FROM {table} t WHERE t.{key} OPERATOR(pg_catalog.=) $1 FOR UPDATE OF t"),
        Mode::Write => format!("UPDATE {table} t SET {doc} = $2 WHERE t.{key} OPERATOR(pg_catalog.=) $1"),
    }
}

/// Run `mode`'s statement for one configuration row; the number of rows and, for reads, the
/// document (NULL when the column is NULL).
fn run(
    mode: Mode,
    tbl: pg_sys::Oid,
    key_column: &str,
    document_column: &str,
    config_id: pgrx::Uuid,
    doc: Option<RawJsonb>,
) -> Result<(usize, Option<pg_sys::Datum>), ErrorReport> {
    // The columns' types, now (not only when the statement was prepared: an ALTER TYPE re-plans
    // it): the document is read as jsonb's binary form, so a column of another type must never
    // reach that reader.
    column_is(tbl, key_column, pg_sys::UUIDOID)?;
    column_is(tbl, document_column, pg_sys::JSONBOID)?;
    let cache_key = (tbl.to_u32(), key_column.to_string(), document_column.to_string(), mode);
    let missing = PLANS.with(|p| !p.borrow().contains_key(&cache_key));
    let table = if missing { Some(QuotedName::relation(tbl).ok_or(RollbackError::TableGone(tbl.to_u32()))?) } else { None };
    // The caller's memory context: SPI's own is gone when connect_mut returns.
    // SAFETY: CurrentMemoryContext is a backend global, always a valid context in a backend; the one it names (this
    // function call's) outlives the SPI connection below.
    let outer = unsafe { pg_sys::CurrentMemoryContext };
    // Planned and run under search_path = pg_catalog, pg_temp: the caller's path never picks
    // an operator or function for these statements (plans are kept per backend).
    crate::common::privilege::with_pinned_search_path(|| Spi::connect_mut(|client| {
        if let Some(table) = table {
            let sql = statement(mode, &table, &QuotedName::identifier(key_column), &QuotedName::identifier(document_column));
            let types = match mode {
                Mode::Write => vec![PgOid::BuiltIn(PgBuiltInOids::UUIDOID), PgOid::BuiltIn(PgBuiltInOids::JSONBOID)],
                _ => vec![PgOid::BuiltIn(PgBuiltInOids::UUIDOID)],
            };
            // A plain read is prepared and run read-only: it must answer on a hot standby, and
            // must not assign a transaction ID on a primary.
            let plan = if mode == Mode::Read {
                client.prepare(sql.as_str(), &types).ctx("the audited configuration row")?.keep()
            } else {
                client.prepare_mut(sql.as_str(), &types).ctx("the audited configuration row")?.keep()
            };
            PLANS.with(|p| p.borrow_mut().insert(cache_key.clone(), plan));
        }
        PLANS.with(|p| {
            let plans = p.borrow();
            let Some(plan) = plans.get(&cache_key) else {
                return Ok((0, None));
            };
            let mut args: Vec<pgrx::datum::DatumWithOid> = vec![config_id.into()];
            if mode == Mode::Write {
                args.push(doc.map(|d| JsonbDatum(pg_sys::Datum::from(d.0))).into());
                let status = client.update(plan, None, &args).ctx("the audited configuration row")?;
                return Ok((status.len(), None));
            }
            let rows = if mode == Mode::Read { client.select(plan, None, &args) } else { client.update(plan, None, &args) };
            let mut rows = rows.ctx("the audited configuration row")?;
            let count = rows.len();
            let mut value = None;
            if rows.next().is_some() {
                value = rows.get_datum_by_ordinal(1).ctx("the audited configuration row")?;
                // Copy into the caller's memory before SPI's goes.
                // SAFETY: `d` is a non-null datum of the SPI result, alive until SPI finishes; `outer` outlives SPI; the
                // column is jsonb (a varlena), checked by `column_is` at the top of this call.
                value = value.map(|d| unsafe {
                    PgMemoryContexts::For(outer).switch_to(|_| pg_sys::Datum::from(pg_sys::pg_detoast_datum_copy(d.cast_mut_ptr())))
                });
            }
            Ok((count, value))
        })
    }))
}

/// The document of configuration `config_id` in `tbl`, locked FOR UPDATE when `lock`;
/// P0002 when the row is gone (or invisible to the caller).
#[pg_extern(name = "_rollback_read", volatile, parallel_unsafe)]
pub fn rollback_read(
    tbl: pg_sys::Oid,
    key_column: &str,
    document_column: &str,
    config_id: pgrx::Uuid,
    lock: bool,
) -> Result<Option<JsonbDatum>, ErrorReport> {
    let mode = if lock { Mode::Lock } else { Mode::Read };
    let (count, value) = run(mode, tbl, key_column, document_column, config_id, None)?;
    if count == 0 {
        return Err(RollbackError::RowGone(config_id.to_string()).into());
    }
    Ok(value.map(JsonbDatum))
}

/// Write `doc` into the document column of configuration `config_id` (the audit trigger
/// records the change); the number of rows written.
#[pg_extern(name = "_rollback_write", volatile, parallel_unsafe)]
pub fn rollback_write(
    tbl: pg_sys::Oid,
    key_column: &str,
    document_column: &str,
    config_id: pgrx::Uuid,
    doc: Option<RawJsonb>,
) -> Result<i64, ErrorReport> {
    let (count, _) = run(Mode::Write, tbl, key_column, document_column, config_id, doc)?;
    Ok(count as i64)
}
