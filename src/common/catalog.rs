//! Small readers of catalog facts shared by the code that works below SQL (the audit
//! writer, the direct configuration reads, rollback's statements), and `QuotedName`, the
//! only form in which a name becomes part of a statement text.

use std::ffi::CStr;

use pgrx::prelude::*;

/// A name read from the catalog (or a column name given as data) quoted with pgrx's
/// identifier quoting: the only form in which a name can become part of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedName(String);

impl QuotedName {
    /// Quote a catalog name (`pg_namespace.nspname`, `pg_class.relname`).
    pub fn from_catalog(schema: &str, name: &str) -> QuotedName {
        QuotedName(pgrx::spi::quote_qualified_identifier(schema, name))
    }

    /// Quote one identifier (a column name).
    pub fn identifier(name: &str) -> QuotedName {
        QuotedName(pgrx::spi::quote_identifier(name))
    }

    /// `schema.table` of a relation OID, from the catalog; None when it does not exist.
    pub fn relation(relid: pg_sys::Oid) -> Option<QuotedName> {
        // SAFETY: syscache look-ups by OID inside the caller's transaction; get_rel_name and get_namespace_name return
        // NULL or a palloc'd NUL-terminated copy in the current memory context, checked for NULL and copied into
        // Strings (quoted) before this returns.
        unsafe {
            let name = pg_sys::get_rel_name(relid);
            let namespace = pg_sys::get_rel_namespace(relid);
            if name.is_null() || namespace == pg_sys::Oid::INVALID {
                return None;
            }
            let schema = pg_sys::get_namespace_name(namespace);
            if schema.is_null() {
                return None;
            }
            let (schema, name) = (CStr::from_ptr(schema).to_string_lossy(), CStr::from_ptr(name).to_string_lossy());
            Some(QuotedName::from_catalog(&schema, &name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For unit tests, which run without a server to quote with.
    #[cfg(test)]
    pub fn already_quoted(text: &str) -> QuotedName {
        QuotedName(text.to_string())
    }
}

impl std::fmt::Display for QuotedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The attribute number of a live column, by name.
pub fn attnum(desc: pg_sys::TupleDesc, name: &str) -> Option<i32> {
    // SAFETY: NOT enforced by this safe fn's signature: every caller (config/direct.rs, audit/writer.rs) passes the
    // rd_att of a relation it holds open, valid for this call; from_pg_unchecked neither frees nor releases it.
    let tupdesc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(desc) };
    tupdesc.iter().position(|a| !a.attisdropped && a.name() == name).map(|i| i as i32 + 1)
}

/// The relation `name` in `namespace`, if it exists.
pub fn relid(namespace: pg_sys::Oid, name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: `name` is a &CStr, NUL-terminated and alive for the call; a syscache look-up inside the caller's
    // transaction that returns InvalidOid when there is no such relation.
    let oid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), namespace) };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// The 16 bytes of a uuid datum.
///
/// # Safety
/// `d` must be a non-null uuid datum.
pub unsafe fn uuid_bytes(d: pg_sys::Datum) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: per the contract `d` points at a uuid value: exactly 16 bytes (by reference, fixed length, no varlena
    // header); `out` is a distinct 16-byte local.
    unsafe { std::ptr::copy_nonoverlapping(d.cast_mut_ptr::<u8>(), out.as_mut_ptr(), 16) };
    out
}
