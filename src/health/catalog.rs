//! One read of the catalogs the health functions need, shared by everything in a statement.
//!
//! On 10 000 tables the SQL versions of these reads cost more than the metric they served:
//! the planner joins `pg_class` to itself, `pg_index` and `pg_attribute` with one index probe
//! per row, `pg_options_to_table()` runs as a sub-plan per row, and every value then crosses
//! SPI and pgrx's datum conversions.  Here each catalog is read once with a sequential
//! `systable` scan under the catalog snapshot (an AccessShareLock on the catalog only, as any
//! query on it takes: no user relation is opened or locked), the fixed-width fields are read
//! from the tuple's struct, and the result is cached for the current client statement
//! (`storage::statement_stamp`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::FromDatum;


/// Maps and sets keyed by OID: FxHash (a multiply and a rotate) instead of SipHash, whose
/// cost showed in profiles of the 30 000-relation catalogs.
pub type OidMap<V> = rustc_hash::FxHashMap<u32, V>;
pub type OidSet = rustc_hash::FxHashSet<u32>;

/// One relation of `pg_class`.
#[derive(Debug, Clone)]
pub struct Rel {
    pub oid: u32,
    pub name: String,
    pub namespace: u32,
    pub kind: u8,
    pub persistence: u8,
    pub filenode: u32,
    pub tablespace: u32,
    pub toast: u32,
    pub reltuples: f64,
    pub am: u32,
    /// `fillfactor` from the relation's options, when set.
    pub fillfactor: Option<f64>,
}

/// One index of `pg_index`.
#[derive(Debug, Clone)]
pub struct Index {
    pub oid: u32,
    pub table: u32,
    pub unique: bool,
    pub primary: bool,
    pub exclusion: bool,
    pub valid: bool,
    pub ready: bool,
    /// Table attribute numbers of the index's columns (0 for an expression), key columns first.
    pub keys: Vec<i16>,
    pub nkeyatts: usize,
    /// Operator classes, collations and sort options (`indoption`) of the key columns.
    pub opclasses: Vec<u32>,
    pub collations: Vec<u32>,
    pub options: Vec<i16>,
    pub has_exprs: bool,
    pub has_pred: bool,
}

/// What one statement learned from `pg_namespace`, `pg_class`, `pg_index` and `pg_am`.
#[derive(Debug, Default)]
pub struct Catalog {
    pub namespaces: HashMap<u32, String>,
    pub rels: Vec<Rel>,
    pub by_oid: OidMap<usize>,
    pub indexes: Vec<Index>,
    pub access_methods: HashMap<u32, String>,
    /// `pg_catalog`, `information_schema` and the TOAST schemas.
    pub system_namespaces: OidSet,
    /// Temporary schemas (`pg_temp_*`).
    pub temporary_namespaces: OidSet,
    /// `pg_toast`, where TOAST tables and their indexes live.
    pub toast_namespace: Option<u32>,
}

/// The B-tree access method's OID (`BTREE_AM_OID`).
pub const BTREE_AM: u32 = 403;

impl Catalog {
    pub fn rel(&self, oid: u32) -> Option<&Rel> {
        self.by_oid.get(&oid).and_then(|i| self.rels.get(*i))
    }

    pub fn namespace_name(&self, oid: u32) -> &str {
        self.namespaces.get(&oid).map(String::as_str).unwrap_or("")
    }

    /// Outside `pg_catalog`, `information_schema` and the TOAST schemas — the statistics
    /// views' "user" filter (which keeps other sessions' temporary schemas).
    pub fn is_user_namespace(&self, oid: u32) -> bool {
        !self.system_namespaces.contains(&oid)
    }

    /// The user filter of the estimators: also without temporary schemas.
    pub fn is_user_persistent_namespace(&self, oid: u32) -> bool {
        self.is_user_namespace(oid) && !self.temporary_namespaces.contains(&oid)
    }
}

/// A sequential scan of one catalog under the catalog snapshot; `each` sees every tuple.
///
/// # Safety
/// Inside a transaction, `catalog` the OID of an existing catalog; `each` must only read the tuple and keep no
/// pointer into it (it is valid until the next tuple is fetched).
unsafe fn scan_catalog(
    catalog: pg_sys::Oid,
    mut each: impl FnMut(pg_sys::HeapTuple, pg_sys::TupleDesc),
) {
    // SAFETY: the contract above: the catalog is opened and closed here with AccessShareLock, a NULL snapshot makes
    // systable_beginscan use the catalog snapshot, `desc` (the open relation's rd_att) is valid for the whole scan,
    // and each tuple goes to `each` only until the next systable_getnext.
    unsafe {
        let rel = pg_sys::table_open(catalog, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        let scan = pg_sys::systable_beginscan(rel, pg_sys::InvalidOid, false, std::ptr::null_mut(), 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            each(tuple, desc);
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
}

/// # Safety
/// `tuple` must be a tuple of the catalog whose row struct is `T`.
unsafe fn form<'a, T>(tuple: pg_sys::HeapTuple) -> &'a T {
    // SAFETY: per the contract `tuple` is a live tuple of the catalog whose row struct is T: its fixed-width part
    // starts, aligned, at t_data + t_hoff; callers use the reference only inside the scan callback, while it lives.
    unsafe { &*pg_sys::heap_tuple_get_struct::<T>(tuple) }
}

fn name_of(name: &pg_sys::NameData) -> String {
    // SAFETY: NameData is a NUL-terminated string of at most NAMEDATALEN bytes.
    unsafe { CStr::from_ptr(name.data.as_ptr()) }.to_string_lossy().into_owned()
}

/// The `fillfactor=N` entry of a `reloptions` array.
pub fn fillfactor_option(options: &[String]) -> Option<f64> {
    options.iter().find_map(|o| o.strip_prefix("fillfactor=")).and_then(|v| v.trim().parse::<f64>().ok())
}

/// The values of an `oidvector` datum.
///
/// # Safety
/// `datum` must be a non-NULL oidvector from a catalog tuple (stored plain: never compressed
/// or out of line, with a 4-byte header).
unsafe fn oid_vector(datum: pg_sys::Datum) -> Vec<u32> {
    // SAFETY: per the contract the datum points at a plain (typstorage 'p': 4-byte header, never toasted), int-aligned
    // oidvector inside a live tuple; `dim1` values follow its header (a negative dim1 reads none); copied at once.
    unsafe {
        let v = &*(datum.cast_mut_ptr::<pg_sys::oidvector>());
        v.values.as_slice(usize::try_from(v.dim1).unwrap_or(0)).iter().map(|o| o.to_u32()).collect()
    }
}

/// The values of an `int2vector` datum.
///
/// # Safety
/// As for `oid_vector`, for an int2vector.
unsafe fn int2_vector(datum: pg_sys::Datum) -> Vec<i16> {
    // SAFETY: as in `oid_vector`: a plain, int-aligned int2vector inside a live tuple, `dim1` values after its
    // header, copied at once.
    unsafe {
        let v = &*(datum.cast_mut_ptr::<pg_sys::int2vector>());
        v.values.as_slice(usize::try_from(v.dim1).unwrap_or(0)).to_vec()
    }
}

/// The planner's row count of a catalog (`reltuples`), to size the vectors read from it once
/// instead of growing them (each growth copies and touches fresh pages).
fn estimated_rows(catalog: pg_sys::Oid) -> usize {
    // SAFETY: opens the catalog with the lock its scan takes anyway and reads its pg_class row.
    unsafe {
        let rel = pg_sys::table_open(catalog, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let tuples = (*(*rel).rd_rel).reltuples;
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        if tuples > 0.0 { (tuples as usize).min(10_000_000) } else { 0 }
    }
}

fn read() -> Catalog {
    let mut cat = Catalog::default();
    let classes = estimated_rows(pg_sys::RelationRelationId);
    cat.rels.reserve(classes + classes / 8);
    cat.by_oid.reserve(classes + classes / 8);
    let indexes = estimated_rows(pg_sys::IndexRelationId);
    cat.indexes.reserve(indexes + indexes / 8);
    // SAFETY: each closure reads the row struct of the catalog it scans, and the variable
    // fields through heap_getattr/heap_attisnull with that catalog's descriptor.
    unsafe {
        scan_catalog(pg_sys::NamespaceRelationId, |t, _| {
            let f = form::<pg_sys::FormData_pg_namespace>(t);
            cat.namespaces.insert(f.oid.to_u32(), name_of(&f.nspname));
        });
        scan_catalog(pg_sys::AccessMethodRelationId, |t, _| {
            let f = form::<pg_sys::FormData_pg_am>(t);
            cat.access_methods.insert(f.oid.to_u32(), name_of(&f.amname));
        });
        for (oid, name) in &cat.namespaces {
            if name == "pg_catalog" || name == "information_schema" || name.starts_with("pg_toast") {
                cat.system_namespaces.insert(*oid);
            }
            if name.starts_with("pg_temp_") {
                cat.temporary_namespaces.insert(*oid);
            }
            if name == "pg_toast" {
                cat.toast_namespace = Some(*oid);
            }
        }
        // Names are kept for user relations only: nothing reports a catalog or TOAST relation
        // by name, and half of pg_class is TOAST tables and their indexes.
        let system = cat.system_namespaces.clone();
        scan_catalog(pg_sys::RelationRelationId, |t, desc| {
            let f = form::<pg_sys::FormData_pg_class>(t);
            let options_attnum = pg_sys::Anum_pg_class_reloptions as i32;
            // The null bitmap first: walking to reloptions (after relacl) costs a full deform.
            let fillfactor = if pg_sys::heap_attisnull(t, options_attnum, desc) {
                None
            } else {
                let mut isnull = false;
                let options = pg_sys::heap_getattr(t, options_attnum, desc, &mut isnull);
                if isnull { None } else { Vec::<String>::from_datum(options, false).and_then(|o| fillfactor_option(&o)) }
            };
            cat.by_oid.insert(f.oid.to_u32(), cat.rels.len());
            cat.rels.push(Rel {
                oid: f.oid.to_u32(),
                name: if system.contains(&f.relnamespace.to_u32()) { String::new() } else { name_of(&f.relname) },
                namespace: f.relnamespace.to_u32(),
                kind: f.relkind as u8,
                persistence: f.relpersistence as u8,
                filenode: f.relfilenode.to_u32(),
                tablespace: f.reltablespace.to_u32(),
                toast: f.reltoastrelid.to_u32(),
                reltuples: f64::from(f.reltuples),
                am: f.relam.to_u32(),
                fillfactor,
            });
        });
        // One deform per pg_index tuple: its vectors follow the variable-length indkey, so
        // reading them one by one would walk the tuple once per column.
        let mut values: Vec<pg_sys::Datum> = Vec::new();
        let mut nulls: Vec<bool> = Vec::new();
        scan_catalog(pg_sys::IndexRelationId, |t, desc| {
            let f = form::<pg_sys::FormData_pg_index>(t);
            let mut index = Index {
                oid: f.indexrelid.to_u32(),
                table: f.indrelid.to_u32(),
                unique: f.indisunique,
                primary: f.indisprimary,
                exclusion: f.indisexclusion,
                valid: f.indisvalid,
                ready: f.indisready,
                keys: Vec::new(),
                nkeyatts: 0,
                opclasses: Vec::new(),
                collations: Vec::new(),
                options: Vec::new(),
                has_exprs: false,
                has_pred: false,
            };
            // Catalog and TOAST indexes are only sized (never analysed): no vectors for them.
            let user_index = cat.rel(index.table).is_some_and(|r| !system.contains(&r.namespace));
            if user_index {
                let natts = usize::try_from((*desc).natts).unwrap_or(0);
                values.resize(natts, pg_sys::Datum::from(0));
                nulls.resize(natts, true);
                pg_sys::heap_deform_tuple(t, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
                let column = |anum: u32| {
                    let i = anum as usize - 1;
                    (i < natts && !nulls[i]).then(|| values[i])
                };
                let nkeys = usize::try_from(f.indkey.dim1).unwrap_or(0);
                index.keys = f.indkey.values.as_slice(nkeys).to_vec();
                index.nkeyatts = usize::try_from(f.indnkeyatts).unwrap_or(0).min(nkeys);
                index.opclasses = column(pg_sys::Anum_pg_index_indclass).map(|d| oid_vector(d)).unwrap_or_default();
                index.collations = column(pg_sys::Anum_pg_index_indcollation).map(|d| oid_vector(d)).unwrap_or_default();
                index.options = column(pg_sys::Anum_pg_index_indoption).map(|d| int2_vector(d)).unwrap_or_default();
                index.has_exprs = column(pg_sys::Anum_pg_index_indexprs).is_some();
                index.has_pred = column(pg_sys::Anum_pg_index_indpred).is_some();
            }
            cat.indexes.push(index);
        });
    }
    cat
}

thread_local! {
    /// The catalog as last read, with the invalidation generation it was read in.
    static CACHE: RefCell<Option<(u64, Rc<Catalog>)>> = const { RefCell::new(None) };
    /// Attributes of the relations last asked for, with their generation and the set asked for.
    static ATTRIBUTES: RefCell<Option<(u64, OidSet, Rc<Attributes>)>> = const { RefCell::new(None) };
    /// Constraint-backing indexes, kept like the catalog until the next invalidation.
    static CONSTRAINT_INDEXES: RefCell<Option<(u64, Rc<OidSet>)>> = const { RefCell::new(None) };
    /// Bumped by every relation-cache invalidation (any DDL, and the pg_class updates of
    /// VACUUM and ANALYZE), by namespace and access-method changes, and by changes of
    /// `pg_statistic` and `pg_constraint` rows (their syscaches' invalidations).  A plain counter in a
    /// Cell: the callbacks run whenever PostgreSQL processes invalidation messages, possibly
    /// while a cache above is borrowed, so they must not touch the caches themselves.
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static CALLBACKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: a relcache callback (registered in `generation`) run on the backend's thread; it dereferences nothing
// and only bumps a const-initialised thread-local Cell (no destructor, never borrowed), whatever code is running.
unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
}

// SAFETY: a syscache callback (NAMESPACEOID, AMOID, STATRELATTINH, CONSTROID), sound for the same reasons as
// `relation_changed`.
unsafe extern "C-unwind" fn catalog_changed(_arg: pg_sys::Datum, _cacheid: std::ffi::c_int, _hash: u32) {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
}

/// The current invalidation generation (registering the callbacks on first use).  Anything
/// derived only from catalog rows may be kept while it is unchanged (see `catalog`).
pub(crate) fn generation() -> u64 {
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: registered once per backend; the callbacks only bump a counter.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0));
            pg_sys::CacheRegisterSyscacheCallback(pg_sys::SysCacheIdentifier::NAMESPACEOID as i32, Some(catalog_changed), pg_sys::Datum::from(0));
            pg_sys::CacheRegisterSyscacheCallback(pg_sys::SysCacheIdentifier::AMOID as i32, Some(catalog_changed), pg_sys::Datum::from(0));
            // Column statistics (ANALYZE also updates pg_class, but a statistics restore need not)
            // and constraints (which indexes back one) are kept between calls too.
            pg_sys::CacheRegisterSyscacheCallback(pg_sys::SysCacheIdentifier::STATRELATTINH as i32, Some(catalog_changed), pg_sys::Datum::from(0));
            pg_sys::CacheRegisterSyscacheCallback(pg_sys::SysCacheIdentifier::CONSTROID as i32, Some(catalog_changed), pg_sys::Datum::from(0));
        }
        // Whatever was cached before the callbacks existed is not trusted.
        GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    }
    GENERATION.with(|g| g.get())
}

/// The catalog, read again only after an invalidation: every change of pg_class, pg_index
/// or pg_attribute sends a relation-cache invalidation for the relation concerned (PostgreSQL
/// processes other sessions' at the start of each transaction and at lock acquisition, and
/// this session's at each command), so a cached copy is dropped before it can be stale.
/// On a quiet database a monitoring connection reads the catalogs once.
pub fn catalog() -> Result<Rc<Catalog>, ErrorReport> {
    let current = generation();
    if let Some(hit) = CACHE.with(|c| c.borrow().as_ref().filter(|(g, _)| *g == current).map(|(_, v)| Rc::clone(v))) {
        return Ok(hit);
    }
    // Stored with the generation read *before* the scan: an invalidation during it makes
    // the next call read again.
    let fresh = Rc::new(read());
    CACHE.with(|c| *c.borrow_mut() = Some((current, Rc::clone(&fresh))));
    Ok(fresh)
}

/// (relation, attnum, attlen, attalign) of live user attributes, by relation and attnum.
pub type Attributes = Vec<(u32, i16, i16, u8)>;

/// `attributes(wanted)`, kept like the catalog until the next invalidation.
pub fn cached_attributes(wanted: &OidSet) -> Rc<Attributes> {
    let current = generation();
    let hit = ATTRIBUTES.with(|c| {
        c.borrow().as_ref().filter(|(g, set, _)| *g == current && set == wanted).map(|(_, _, v)| Rc::clone(v))
    });
    if let Some(hit) = hit {
        return hit;
    }
    let fresh = Rc::new(attributes(wanted));
    ATTRIBUTES.with(|c| *c.borrow_mut() = Some((current, wanted.clone(), Rc::clone(&fresh))));
    fresh
}

/// Indexes that back a constraint (`pg_constraint.conindid`): a foreign key's referenced
/// key, a primary key, a unique or exclusion constraint.  Kept until the next invalidation
/// (a change of a `pg_constraint` row bumps the generation): one scan of 100 000 constraints
/// per call showed in profiles at catalog scale.
pub fn constraint_indexes() -> Rc<OidSet> {
    let current = generation();
    if let Some(hit) = CONSTRAINT_INDEXES.with(|c| c.borrow().as_ref().filter(|(g, _)| *g == current).map(|(_, v)| Rc::clone(v))) {
        return hit;
    }
    let fresh = Rc::new(read_constraint_indexes());
    CONSTRAINT_INDEXES.with(|c| *c.borrow_mut() = Some((current, Rc::clone(&fresh))));
    fresh
}

fn read_constraint_indexes() -> OidSet {
    const CONSTRAINT_RELATION_ID: pg_sys::Oid = pg_sys::Oid::from_u32(2606);
    let mut out = OidSet::default();
    // SAFETY: pgrx has no row struct for pg_constraint: the column is found by name and read
    // with heap_getattr and the catalog's descriptor.
    unsafe {
        let attnum = pg_sys::get_attnum(CONSTRAINT_RELATION_ID, c"conindid".as_ptr());
        if attnum <= 0 {
            return out;
        }
        scan_catalog(CONSTRAINT_RELATION_ID, |t, desc| {
            let mut isnull = false;
            let datum = pg_sys::heap_getattr(t, i32::from(attnum), desc, &mut isnull);
            if !isnull {
                let index = datum.value() as u32;
                if index != 0 {
                    out.insert(index);
                }
            }
        });
    }
    out
}

/// Width and null fraction of every column that has statistics (`pg_statistic`, not inherited),
/// keyed by (relation, attribute number).
pub fn column_statistics() -> rustc_hash::FxHashMap<(u32, i16), (f64, f64)> {
    let mut out = rustc_hash::FxHashMap::default();
    // SAFETY: reads the fixed-width row struct of pg_statistic.
    unsafe {
        scan_catalog(pg_sys::StatisticRelationId, |t, _| {
            let f = form::<pg_sys::FormData_pg_statistic>(t);
            if !f.stainherit {
                out.insert((f.starelid.to_u32(), f.staattnum), (f64::from(f.stawidth), f64::from(f.stanullfrac)));
            }
        });
    }
    out
}

/// The live (not dropped) attributes with attnum > 0 of the relations in `wanted`:
/// (relation, attnum, attlen, attalign), ordered by relation and attnum.
pub fn attributes(wanted: &OidSet) -> Attributes {
    let mut out = Vec::new();
    // SAFETY: reads the fixed-width row struct of pg_attribute.
    unsafe {
        scan_catalog(pg_sys::AttributeRelationId, |t, _| {
            let f = form::<pg_sys::FormData_pg_attribute>(t);
            if f.attnum > 0 && !f.attisdropped && wanted.contains(&f.attrelid.to_u32()) {
                out.push((f.attrelid.to_u32(), f.attnum, f.attlen, f.attalign as u8));
            }
        });
    }
    out.sort_unstable_by_key(|a| (a.0, a.1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fillfactor_from_options() {
        assert_eq!(fillfactor_option(&["fillfactor=70".into()]), Some(70.0));
        assert_eq!(fillfactor_option(&["autovacuum_enabled=false".into(), "fillfactor=50".into()]), Some(50.0));
        assert_eq!(fillfactor_option(&["toast.fillfactor=70".into()]), None);
        assert_eq!(fillfactor_option(&[]), None);
    }
}
