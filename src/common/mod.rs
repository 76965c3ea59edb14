//! Small pieces every capability uses: turning SPI failures into reports, and reading
//! typed values out of SPI rows without `unwrap()`.

pub mod catalog;
pub mod executor;
pub mod identity;
pub mod jsonb;
pub mod layout;
pub mod privilege;

use pgrx::prelude::*;
use pgrx::spi::SpiError;
use pgrx::pg_sys::panic::ErrorReport;

/// An SPI failure inside pg_steward is a defect in our own SQL, never the caller's input:
/// it is reported as an internal error with the statement's purpose in DETAIL.
pub fn spi_failure(context: &'static str, err: SpiError) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("pg_steward could not read {context}"),
        "pg_steward",
    )
    .set_detail(err.to_string())
    .set_hint("This is a bug in pg_steward; please report it with the server log.")
}

/// Convenience: `.ctx("what")?` on any SPI result.
pub trait SpiContext<T> {
    fn ctx(self, context: &'static str) -> Result<T, ErrorReport>;
}

impl<T> SpiContext<T> for Result<T, SpiError> {
    fn ctx(self, context: &'static str) -> Result<T, ErrorReport> {
        self.map_err(|e| spi_failure(context, e))
    }
}

/// One value of the first row of a read-only query, or None (no row, or NULL).
///
/// pgrx's `Spi::get_one*` run through `connect_mut`/`update`, which assigns the transaction an
/// ID first: on a hot standby that fails ("cannot assign TransactionIds during recovery"), and
/// on a primary it makes a read-only call write a commit record.  Read paths use this instead.
pub fn read_one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<T>, SpiError> {
    Spi::connect(|client| {
        let rows = client.select(query, Some(1), args)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get_one::<T>()
    })
}

/// Block size of this server (BLCKSZ), as used by every page-based estimate.
pub fn block_size() -> u64 {
    pg_sys::BLCKSZ as u64
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "layout_test.rs"]
mod layout_test;

/// SQL `steward._xid_is_mine(xid text) → boolean`: whether a row's `xmin` (as text) is this
/// transaction or one of its subtransactions — a row written in it, which a worker's own
/// transaction cannot see yet.  Owner-only.
#[pgrx::pg_extern(name = "_xid_is_mine", stable, parallel_unsafe)]
fn xid_is_mine(xid: &str) -> bool {
    match xid.trim().parse::<u32>() {
        // SAFETY: a pure look-up in the backend's own transaction state.
        Ok(x) => unsafe { pgrx::pg_sys::TransactionIdIsCurrentTransactionId(x.into()) },
        Err(_) => false,
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with "…" when it was cut (texts
/// quoted in findings, alerts and messages).
pub fn truncate_with_ellipsis(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
