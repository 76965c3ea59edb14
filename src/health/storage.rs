//! Relation sizes without opening relations.
//!
//! `pg_total_relation_size(oid)` opens every relation with an AccessShareLock: on 10 000
//! tables that is one lock-table entry per relation (the lock table can overflow) and a wait
//! behind any ACCESS EXCLUSIVE DDL.  Instead we read the database's directory once, sum the
//! segment files of every fork by relfilenode, and map relfilenodes to OIDs through
//! `pg_class` — no relation is opened, no lock is taken.
//!
//! The scan is cached for the duration of one client statement, so a full health report
//! that asks for table, index and bloat figures reads the directory once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use pgrx::prelude::*;

use super::error::HealthError;
use crate::common::SpiContext;

const DEFAULT_TABLESPACE_OID: u32 = 1663;
const GLOBAL_TABLESPACE_OID: u32 = 1664;

/// What the files of one relation add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RelStorage {
    /// Bytes in the main fork (what `pg_relation_size(oid)` reports).
    pub main_bytes: i64,
    /// Bytes in all forks: main, free-space map, visibility map, init.
    pub all_bytes: i64,
    /// Birth time of the main fork's first segment (seconds since the epoch), when the file
    /// system records it.  A rewrite (VACUUM FULL, REINDEX, TRUNCATE) renews it.
    pub born_epoch: Option<f64>,
}

/// Which fork a data file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Main,
    FreeSpace,
    Visibility,
    Init,
}

/// Parse a data file name: `<relfilenode>[_fsm|_vm|_init][.<segment>]`.
/// Anything else (`PG_VERSION`, `pg_filenode.map`, temporary `t<backend>_<n>` files) is `None`.
pub fn parse_data_file_name(name: &str) -> Option<(u32, Fork, u32)> {
    let (stem, segment) = match name.split_once('.') {
        Some((stem, seg)) => (stem, seg.parse::<u32>().ok()?),
        None => (name, 0),
    };
    let (number, fork) = match stem.split_once('_') {
        Some((n, "fsm")) => (n, Fork::FreeSpace),
        Some((n, "vm")) => (n, Fork::Visibility),
        Some((n, "init")) => (n, Fork::Init),
        Some(_) => return None,
        None => (stem, Fork::Main),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((number.parse::<u32>().ok()?, fork, segment))
}

/// Sum every data file of one directory by relfilenode.
pub fn scan_directory(dir: &Path) -> Result<HashMap<u32, RelStorage>, HealthError> {
    let mut sizes: HashMap<u32, RelStorage> = HashMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| HealthError::StorageUnreadable {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((filenode, fork, segment)) = name.to_str().and_then(parse_data_file_name) else {
            continue;
        };
        // A file dropped between readdir and stat is simply gone: skip it.
        let Ok(meta) = entry.metadata() else { continue };
        let len = i64::try_from(meta.len()).unwrap_or(i64::MAX);
        let slot = sizes.entry(filenode).or_default();
        slot.all_bytes = slot.all_bytes.saturating_add(len);
        if fork == Fork::Main {
            slot.main_bytes = slot.main_bytes.saturating_add(len);
            if segment == 0 {
                slot.born_epoch = meta
                    .created()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs_f64());
            }
        }
    }
    Ok(sizes)
}

fn data_directory() -> PathBuf {
    // SAFETY: DataDir is set once at postmaster start and never changes afterwards.
    unsafe {
        if pg_sys::DataDir.is_null() {
            PathBuf::from(".")
        } else {
            PathBuf::from(CStr::from_ptr(pg_sys::DataDir).to_string_lossy().into_owned())
        }
    }
}

/// The directory holding this database's files in tablespace `spc`.
fn tablespace_directory(spc: u32, db: u32) -> Result<PathBuf, HealthError> {
    let data = data_directory();
    if spc == DEFAULT_TABLESPACE_OID {
        return Ok(data.join("base").join(db.to_string()));
    }
    // pg_tblspc/<spc>/PG_<major>_<catversion>/<db>: find this server's version directory.
    let link = data.join("pg_tblspc").join(spc.to_string());
    let prefix = format!("PG_{}_", pg_sys::PG_VERSION_NUM / 10000);
    let entries = std::fs::read_dir(&link).map_err(|e| HealthError::StorageUnreadable {
        path: link.display().to_string(),
        reason: e.to_string(),
    })?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            return Ok(entry.path().join(db.to_string()));
        }
    }
    Err(HealthError::StorageUnreadable {
        path: link.display().to_string(),
        reason: format!("no {prefix}* directory"),
    })
}

thread_local! {
    static CACHE: RefCell<Option<(i64, Rc<HashMap<u32, RelStorage>>)>> = const { RefCell::new(None) };
}

/// Sizes of every relation with storage in this database, by OID.
/// Cached for the current client statement.
pub fn sizes_by_oid() -> Result<Rc<HashMap<u32, RelStorage>>, HealthError> {
    // SAFETY: plain reads of backend-local state.
    let stamp = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    if let Some(hit) = CACHE.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(s, _)| *s == stamp)
            .map(|(_, m)| Rc::clone(m))
    }) {
        return Ok(hit);
    }
    let fresh = Rc::new(scan_all()?);
    CACHE.with(|c| *c.borrow_mut() = Some((stamp, Rc::clone(&fresh))));
    Ok(fresh)
}

fn scan_all() -> Result<HashMap<u32, RelStorage>, HealthError> {
    // SAFETY: backend-local globals, set before any function can run.
    let (db, db_spc) = unsafe { (pg_sys::MyDatabaseId.to_u32(), pg_sys::MyDatabaseTableSpace.to_u32()) };

    // relfilenode -> oid, per effective tablespace.  Temporary relations live in other files
    // (t<backend>_<n>) and mapped catalogs have relfilenode 0: neither is ours to size.
    let rows: Vec<(u32, u32, u32)> = Spi::connect(|client| {
        let table = client.select(
            "SELECT c.oid, c.relfilenode, c.reltablespace FROM pg_catalog.pg_class c \
             WHERE c.relkind IN ('r','i','t','m','S') AND c.relpersistence <> 't' \
               AND c.relfilenode <> 0",
            None,
            &[],
        )?;
        let mut out = Vec::with_capacity(table.len());
        for row in table {
            let oid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
            let node = row.get::<pg_sys::Oid>(2)?.map(|o| o.to_u32()).unwrap_or(0);
            let spc = row.get::<pg_sys::Oid>(3)?.map(|o| o.to_u32()).unwrap_or(0);
            out.push((oid, node, spc));
        }
        Ok(out)
    })
    .ctx("pg_class")
    .map_err(HealthError::Report)?;

    let mut by_spc: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    for (oid, node, spc) in rows {
        let effective = if spc == 0 { db_spc } else { spc };
        if effective == GLOBAL_TABLESPACE_OID {
            continue;
        }
        by_spc.entry(effective).or_default().push((oid, node));
    }

    let mut result = HashMap::new();
    for (spc, rels) in by_spc {
        let dir = tablespace_directory(spc, db)?;
        let files = scan_directory(&dir)?;
        for (oid, node) in rels {
            result.insert(oid, files.get(&node).copied().unwrap_or_default());
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_data_file_names() {
        assert_eq!(parse_data_file_name("16384"), Some((16384, Fork::Main, 0)));
        assert_eq!(parse_data_file_name("16384.2"), Some((16384, Fork::Main, 2)));
        assert_eq!(parse_data_file_name("16384_fsm"), Some((16384, Fork::FreeSpace, 0)));
        assert_eq!(parse_data_file_name("16384_vm"), Some((16384, Fork::Visibility, 0)));
        assert_eq!(parse_data_file_name("16384_init"), Some((16384, Fork::Init, 0)));
        assert_eq!(parse_data_file_name("16384_fsm.1"), Some((16384, Fork::FreeSpace, 1)));
        assert_eq!(parse_data_file_name("PG_VERSION"), None);
        assert_eq!(parse_data_file_name("pg_filenode.map"), None);
        assert_eq!(parse_data_file_name("t3_16384"), None);
        assert_eq!(parse_data_file_name("16384_xyz"), None);
        assert_eq!(parse_data_file_name("16384.x"), None);
        assert_eq!(parse_data_file_name(""), None);
    }
}
