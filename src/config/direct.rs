//! The layer rows of `effective_ai_config`, read with index scans instead of the executor.
//!
//! Through SPI, one call spent most of its time starting and running a small plan (sort,
//! append, three subquery scans, a nested loop, a limit) for three index probes.  Here the
//! probes are made directly (`systable_beginscan` with the statement's snapshot) on the
//! indexes `install_train_schema()` creates, and the rows are ordered in Rust exactly as
//! `steward._ai_config_rows` orders them.
//!
//! Which rows: the database layer, the active rows of every organisation the user belongs
//! to, and the user's best active row — the same rows the standard row-level-security
//! policies give the user (the caller is the user, or an admin who may read anyone's; that is
//! checked before this runs).  Custom policies on these tables are not consulted by this path:
//! `SET steward.effective_config_direct = off` makes every call go through SPI and the
//! policies.  The direct path is also skipped when the caller lacks SELECT on a table, or
//! when a table or index is missing or renamed — the SPI path then raises what it raises.
//!
//! Relation OIDs are resolved once per backend and forgotten on any relcache invalidation
//! of one of them and on any change to a function (install_train_schema regenerates one).

use std::cell::Cell;

use pgrx::prelude::*;
use serde_json::Value;

use crate::common::catalog::{attnum, relid, uuid_bytes};
use crate::common::jsonb::Doc;

#[derive(Clone, Copy)]
struct Rels {
    ai: pg_sys::Oid,
    user_idx: pg_sys::Oid,
    org_idx: pg_sys::Oid,
    members: pg_sys::Oid,
    members_idx: pg_sys::Oid,
    overrides: pg_sys::Oid,
    overrides_pk: pg_sys::Oid,
}

thread_local! {
    /// Calls answered by the direct path (tests check it is taken).
    pub static DIRECT_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    // A Cell, not a RefCell: the invalidation callbacks below may run whenever PostgreSQL
    // processes invalidations, and must never find the value borrowed.
    static RELS: Cell<Option<Rels>> = const { Cell::new(None) };
    static CALLBACKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: a relcache callback (registered in `resolve`) run on the backend's only thread: it dereferences
// nothing (`_arg` and `relid` are plain values) and touches only const-initialised thread-local Cells (no
// destructor, never borrowed: RELS here, GENERATION in cache::forget), so it is sound whenever invalidations run.
unsafe extern "C-unwind" fn forget_relation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    match RELS.with(Cell::get) {
        Some(rels) => {
            let ours = [rels.ai, rels.user_idx, rels.org_idx, rels.members, rels.members_idx, rels.overrides, rels.overrides_pk];
            if relid == pg_sys::Oid::INVALID || ours.contains(&relid) {
                RELS.with(|r| r.set(None));
                super::cache::forget();
            }
        }
        // Not resolved (or being resolved): which relation this is cannot be told, so the
        // cached answers go too.
        None => super::cache::forget(),
    }
}

// SAFETY: a syscache callback (PROCOID, registered in `resolve`): as `forget_relation`, it dereferences
// nothing and only sets const-initialised thread-local Cells, so it cannot conflict with running code.
unsafe extern "C-unwind" fn forget_all(_arg: pg_sys::Datum, _cacheid: std::ffi::c_int, _hash: u32) {
    RELS.with(|r| r.set(None));
    super::cache::forget();
}

fn resolve() -> Option<Rels> {
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: both callbacks are static `extern "C-unwind"` fns with exactly PostgreSQL's callback
        // signatures, alive for the whole backend, with a dummy Datum argument; CALLBACKS makes this run once
        // per backend (running out of callback slots would be a FATAL error, not UB).
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_relation), pg_sys::Datum::from(0));
            pg_sys::CacheRegisterSyscacheCallback(pg_sys::SysCacheIdentifier::PROCOID as i32, Some(forget_all), pg_sys::Datum::from(0));
        }
    }
    if let Some(r) = RELS.with(Cell::get) {
        return Some(r);
    }
    let schema = crate::common::privilege::with_pinned_search_path(|| {
        crate::common::read_one::<String>("SELECT schema_name::text FROM steward.train_schema", &[]).ok().flatten()
    })?;
    let schema = std::ffi::CString::new(schema).ok()?;
    // SAFETY: a NUL-terminated literal; missing_ok = true returns InvalidOid instead of raising; a syscache
    // look-up inside the transaction of the SQL function this runs in.
    let steward = unsafe { pg_sys::get_namespace_oid(c"steward".as_ptr(), true) };
    // SAFETY: as above; `schema` is a CString that lives until the end of this function.
    let ns = unsafe { pg_sys::get_namespace_oid(schema.as_ptr(), true) };
    if ns == pg_sys::Oid::INVALID || steward == pg_sys::Oid::INVALID {
        return None;
    }
    let rels = Rels {
        ai: relid(ns, c"ai_configurations")?,
        user_idx: relid(ns, c"ai_configurations_user_active_idx")?,
        org_idx: relid(ns, c"ai_configurations_org_active_idx")?,
        members: relid(ns, c"organization_members")?,
        members_idx: relid(ns, c"organization_members_user_idx")?,
        overrides: relid(steward, c"config_overrides")?,
        overrides_pk: relid(steward, c"config_overrides_pkey")?,
    };
    RELS.with(|r| r.set(Some(rels)));
    Some(rels)
}

/// Open a table the cache names; None when it was dropped since (the invalidation that says
/// so is processed while its lock is taken — too late for this call, which then uses SPI).
///
/// # Safety
/// Inside a transaction; the caller must `table_close` the relation before the transaction ends and not use it after.
unsafe fn open(oid: pg_sys::Oid) -> Option<pg_sys::Relation> {
    // SAFETY: inside a transaction (the contract); try_table_open returns NULL for a relation that is gone, and
    // raises an ERROR (never UB) for one that is not a table; the lock and reference are released by the caller.
    let rel = unsafe { pg_sys::try_table_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    (!rel.is_null()).then_some(rel)
}

/// After the table's lock is held its indexes cannot be dropped (except concurrently).
fn exists(oid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache look-up by OID inside the caller's transaction; the result (NULL, or a palloc'd copy
    // of the name in the current memory context) is only tested for NULL.
    unsafe { !pg_sys::get_rel_name(oid).is_null() }
}

/// Every visible tuple of `rel` whose `column` equals `value`, through `index`.
///
/// # Safety
/// In a transaction: `rel` open and locked, `index` an index of it on heap column `column`, `proc` the `=` function of
/// that column's type and `value` a datum of that type, `snapshot` valid; `each` must not keep the tuple past its call.
unsafe fn scan_eq(
    snapshot: pg_sys::Snapshot,
    rel: pg_sys::Relation,
    index: pg_sys::Oid,
    column: i32,
    proc: u32,
    value: pg_sys::Datum,
    mut each: impl FnMut(*mut pg_sys::HeapTupleData),
) {
    // SAFETY: the contract above.  ScanKeyData is a plain C struct (all-zero is valid) filled by ScanKeyInit; the
    // scan runs on the open `rel` and is ended before returning (an ERROR in `each` ends it at abort); each tuple
    // is handed to `each` only until the next systable_getnext, which is as long as it stays valid.
    unsafe {
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        // systable scans take heap attribute numbers and map them to the index's columns.
        pg_sys::ScanKeyInit(&mut key, column as pg_sys::AttrNumber, pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber, pg_sys::Oid::from(proc), value);
        let scan = pg_sys::systable_beginscan(rel, index, true, snapshot, 1, &mut key);
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            each(tuple);
        }
        pg_sys::systable_endscan(scan);
    }
}

/// One `ai_configurations` row: (priority, updated_at, id, configuration).
type Row = (i32, i64, [u8; 16], Value);

fn allowed(rels: &Rels) -> bool {
    // SAFETY: GetUserId reads a backend global; pg_class_aclcheck is a syscache look-up by OID inside the current
    // transaction (an OID dropped since `resolve` makes it raise an ERROR, never read freed memory).
    unsafe {
        let user = pg_sys::GetUserId();
        pg_sys::pg_class_aclcheck(rels.ai, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            && pg_sys::pg_class_aclcheck(rels.members, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            && pg_sys::pg_class_aclcheck(rels.overrides, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// The relations, when the direct path answers this caller: not switched off, resolved, and
/// the caller may read the table.
fn direct_rels() -> Option<Rels> {
    if !crate::gucs::EFFECTIVE_CONFIG_DIRECT.get() {
        return None;
    }
    resolve().filter(allowed)
}

/// Whether the direct path answers this caller (and so may the cache of its answers).
pub fn applies() -> bool {
    direct_rels().is_some()
}

/// The layers as the statement's snapshot sees them.
pub fn layers(user: pgrx::Uuid) -> Option<Vec<Value>> {
    // SAFETY: called from a SQL function, so the executor has an active snapshot pushed (GetActiveSnapshot would
    // crash without one); it stays on the active stack, hence valid, for the whole call that uses it.
    layers_as_of(user, unsafe { pg_sys::GetActiveSnapshot() })
}

/// The layers as of now (a snapshot taken for this read), for answers the cache keeps: every
/// change committed before it is in the answer, and every later one sends an invalidation
/// this backend processes before it answers from the cache again (src/config/cache.rs).
pub fn layers_fresh(user: pgrx::Uuid) -> Option<Vec<Value>> {
    // SAFETY: inside a transaction; the latest snapshot is registered (with the current resource owner) before it
    // is used and unregistered after; if layers_as_of raises, the abort releases the registration.
    unsafe {
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let out = layers_as_of(user, snapshot);
        pg_sys::UnregisterSnapshot(snapshot);
        out
    }
}

/// The attribute number of live column `name` of `desc` when its type is `typid`.
fn typed(desc: pg_sys::TupleDesc, name: &str, typid: pg_sys::Oid) -> Option<i32> {
    let n = attnum(desc, name)?;
    // SAFETY: `desc` is the rd_att of a relation the caller holds open; `n` came from it, so
    // attribute n - 1 exists.
    let tupdesc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(desc) };
    let att = tupdesc.get((n - 1) as usize)?;
    (att.atttypid == typid).then_some(n)
}

/// The layer documents of `user`, lowest first; `None` when the direct path does not apply.
fn layers_as_of(user: pgrx::Uuid, snapshot: pg_sys::Snapshot) -> Option<Vec<Value>> {
    let rels = direct_rels()?;
    let user_datum = user.into_datum()?;
    let mut out = Vec::new();
    // Every column is found by name AND type (`typed`): a table whose owner altered a column's type is not read
    // here (the SPI path answers, through SQL's own type checks), so uuid_bytes, Doc::from_datum and the
    // F_UUID_EQ / F_TEXTEQ scan keys only ever meet datums of their type.  A NULL id skips the row.
    // SAFETY: inside a transaction; each relation is opened by `open` and closed on every return path (an ERROR
    // releases it at abort); `desc` is its rd_att, valid while it is open; the scans keep `scan_eq`'s contract
    // and heap_getattr reads each tuple only inside its callback, with attribute numbers taken from `desc`.
    unsafe {
        // Database layer.
        let rel = open(rels.overrides)?;
        let desc = (*rel).rd_att;
        let Some((kind, document)) = typed(desc, "kind", pg_sys::TEXTOID).zip(typed(desc, "document", pg_sys::JSONBOID)).filter(|_| exists(rels.overrides_pk)) else {
            pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
            return None;
        };
        let key = "ai_config".into_datum()?;
        scan_eq(snapshot, rel, rels.overrides_pk, kind, pg_sys::F_TEXTEQ, key, |t| {
            let mut isnull = false;
            let d = pg_sys::heap_getattr(t, document, desc, &mut isnull);
            if !isnull {
                if let Some(doc) = Doc::from_datum(d, false) {
                    out.push(doc.0);
                }
            }
        });
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);

        // The user's organisations.
        let rel = open(rels.members)?;
        let desc = (*rel).rd_att;
        let Some((m_user, m_org)) = typed(desc, "user_id", pg_sys::UUIDOID).zip(typed(desc, "organization_id", pg_sys::UUIDOID)).filter(|_| exists(rels.members_idx)) else {
            pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
            return None;
        };
        let mut orgs: Vec<[u8; 16]> = Vec::new();
        scan_eq(snapshot, rel, rels.members_idx, m_user, pg_sys::F_UUID_EQ, user_datum, |t| {
            let mut isnull = false;
            let u = pg_sys::heap_getattr(t, m_user, desc, &mut isnull);
            if isnull || uuid_bytes(u) != *user.as_bytes() {
                return;
            }
            let o = pg_sys::heap_getattr(t, m_org, desc, &mut isnull);
            if !isnull {
                orgs.push(uuid_bytes(o));
            }
        });
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);

        // Organisation rows and the user's rows.
        let rel = open(rels.ai)?;
        let desc = (*rel).rd_att;
        let names = [
            ("user_id", pg_sys::UUIDOID),
            ("organization_id", pg_sys::UUIDOID),
            ("is_active", pg_sys::BOOLOID),
            ("priority", pg_sys::INT4OID),
            ("updated_at", pg_sys::TIMESTAMPTZOID),
            ("id", pg_sys::UUIDOID),
            ("configuration", pg_sys::JSONBOID),
        ];
        let cols = names.iter().map(|(n, t)| typed(desc, n, *t)).collect::<Option<Vec<i32>>>();
        let Some(cols) = cols.filter(|_| exists(rels.user_idx) && exists(rels.org_idx)) else {
            pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
            return None;
        };
        let (c_user, c_org, c_active, c_priority, c_updated, c_id, c_config) = (cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6]);
        let row_of = |t: *mut pg_sys::HeapTupleData, owner_col: i32, owner: &[u8; 16]| -> Option<Row> {
            let mut isnull = false;
            let o = pg_sys::heap_getattr(t, owner_col, desc, &mut isnull);
            if isnull || uuid_bytes(o) != *owner {
                return None;
            }
            let active = pg_sys::heap_getattr(t, c_active, desc, &mut isnull);
            if isnull || active.value() & 0xFF == 0 {
                return None;
            }
            let priority = pg_sys::heap_getattr(t, c_priority, desc, &mut isnull).value() as i32;
            let updated = pg_sys::heap_getattr(t, c_updated, desc, &mut isnull).value() as i64;
            let id = pg_sys::heap_getattr(t, c_id, desc, &mut isnull);
            if isnull {
                return None;
            }
            let id = uuid_bytes(id);
            let config = pg_sys::heap_getattr(t, c_config, desc, &mut isnull);
            let doc = if isnull { Value::Null } else { Doc::from_datum(config, false).map(|d| d.0).unwrap_or(Value::Null) };
            Some((priority, updated, id, doc))
        };
        let mut org_rows: Vec<Row> = Vec::new();
        for org in &orgs {
            let Some(key) = pgrx::Uuid::from_bytes(*org).into_datum() else { continue };
            scan_eq(snapshot, rel, rels.org_idx, c_org, pg_sys::F_UUID_EQ, key, |t| {
                if let Some(row) = row_of(t, c_org, org) {
                    org_rows.push(row);
                }
            });
        }
        let mut best: Option<Row> = None;
        scan_eq(snapshot, rel, rels.user_idx, c_user, pg_sys::F_UUID_EQ, user_datum, |t| {
            if let Some(row) = row_of(t, c_user, user.as_bytes()) {
                // ORDER BY priority DESC, updated_at DESC, id LIMIT 1
                let better = match &best {
                    None => true,
                    Some(b) => (row.0, row.1, std::cmp::Reverse(row.2)) > (b.0, b.1, std::cmp::Reverse(b.2)),
                };
                if better {
                    best = Some(row);
                }
            }
        });
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);

        // ORDER BY priority, updated_at, id
        org_rows.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        out.extend(org_rows.into_iter().map(|r| r.3));
        if let Some(b) = best {
            out.push(b.3);
        }
    }
    DIRECT_CALLS.with(|c| c.set(c.get() + 1));
    Some(out)
}
