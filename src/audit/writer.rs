//! Writing one audit entry without SPI or the executor.
//!
//! The trigger runs for every changed configuration row, so its cost is the product's cost.
//! Going through SPI meant parsing parameters, starting an executor for an INSERT … SELECT and
//! shutting it down again — a third of the write.  Here the entry is built as a heap tuple and
//! stored with the primitive PostgreSQL itself uses for its catalogs (`CatalogTupleInsert`:
//! heap insert plus every index, unique checks included), after reading the configuration's
//! previous entry through the chain index with a fresh snapshot.  No trigger, rule, policy or
//! privilege check applies to this write: that is the point of an append-only log only
//! pg_steward may write.  Expression or partial indexes cannot be maintained this way, so an
//! administrator who adds one gets a clear error instead of a silently incomplete index.

use std::ffi::CStr;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::common::catalog::{attnum, relid, uuid_bytes};

use super::error::AuditError;
use super::{Attribution, Entry};

/// The fields an entry's hash covers, in order.
pub struct HashFields<'a> {
    pub prev: Option<&'a [u8]>,
    pub id: Option<[u8; 16]>,
    pub config_type: Option<&'a str>,
    pub config_id: Option<[u8; 16]>,
    pub seq: Option<i64>,
    pub action: Option<&'a str>,
    pub changed_by: Option<[u8; 16]>,
    pub actor: Option<&'a str>,
    pub changed_at: Option<i64>,
    pub old_values: Option<&'a [u8]>,
    pub new_values: Option<&'a [u8]>,
    pub change_reason: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// SHA-256 over every field, each length-prefixed (NULL is distinct from any value).
pub fn entry_hash(f: &HashFields<'_>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |bytes: Option<&[u8]>| match bytes {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
    };
    field(f.prev);
    field(f.id.as_ref().map(|b| b.as_slice()));
    field(f.config_type.map(str::as_bytes));
    field(f.config_id.as_ref().map(|b| b.as_slice()));
    field(f.seq.map(i64::to_le_bytes).as_ref().map(|b| b.as_slice()));
    field(f.action.map(str::as_bytes));
    field(f.changed_by.as_ref().map(|b| b.as_slice()));
    field(f.actor.map(str::as_bytes));
    field(f.changed_at.map(i64::to_le_bytes).as_ref().map(|b| b.as_slice()));
    field(f.old_values);
    field(f.new_values);
    field(f.change_reason.map(str::as_bytes));
    field(f.client_ip.map(str::as_bytes));
    field(f.user_agent.map(str::as_bytes));
    h.finalize().to_vec()
}

/// The payload of a (possibly toasted or compressed) varlena, copied.
///
/// # Safety
/// `datum` must be a non-null varlena datum (inline, compressed or a TOAST pointer) readable in this transaction.
unsafe fn varlena_bytes(datum: pg_sys::Datum) -> Vec<u8> {
    // SAFETY: `datum` is a non-null varlena datum (the caller's contract); detoasting copies it if needed and the payload is copied out before returning.
    unsafe {
        let detoasted = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(detoasted);
        let data = pgrx::varlena::vardata_any(detoasted) as *const u8;
        std::slice::from_raw_parts(data, len).to_vec()
    }
}

fn broken(detail: String) -> ErrorReport {
    AuditError::Misconfigured { table: "steward.audit_entries".into(), detail }.into()
}

/// The newest entry of a configuration, read with a fresh snapshot so a change committed
/// while this transaction waited for the configuration's row lock is seen.
struct Head {
    seq: i64,
    hash: Option<Vec<u8>>,
    /// The configuration owner the head entry recorded (its owner_id).
    owner: Option<[u8; 16]>,
    /// The head's new_values equals the document before this change: the new entry need not
    /// store old_values.
    continues: bool,
}

/// The payload of a varlena attribute of a heap tuple compared with `bytes`, without a copy
/// unless the value is compressed or stored out of line.
///
/// # Safety
/// As `varlena_bytes`: a non-null varlena datum (inline, compressed or a TOAST pointer) readable in this transaction.
unsafe fn attribute_equals(datum: pg_sys::Datum, bytes: &[u8]) -> bool {
    // SAFETY: `datum` is a non-null varlena datum; the detoasted copy, if one was made, is freed after the comparison.
    unsafe {
        let raw: *mut pg_sys::varlena = datum.cast_mut_ptr();
        let detoasted = pg_sys::pg_detoast_datum_packed(raw);
        let len = pgrx::varlena::varsize_any_exhdr(detoasted);
        let same = len == bytes.len()
            && std::slice::from_raw_parts(pgrx::varlena::vardata_any(detoasted) as *const u8, len) == bytes;
        if detoasted != raw {
            pg_sys::pfree(detoasted.cast());
        }
        same
    }
}

/// # Safety
/// In a transaction: `rel` the open steward.audit_entries, `index` its open chain index, `config_id` a uuid datum.
unsafe fn chain_head(
    rel: pg_sys::Relation,
    index: pg_sys::Relation,
    config_id: pg_sys::Datum,
    old_doc: Option<&[u8]>,
) -> Head {
    // SAFETY: `rel`/`index` are the open log and its chain index; attribute numbers come from the log's own descriptor; the registered snapshot is unregistered and the scan ended before returning.
    unsafe {
        let desc = (*rel).rd_att;
        let seq_att = attnum(desc, "seq").unwrap_or(0);
        let hash_att = attnum(desc, "hash").unwrap_or(0);
        let new_att = attnum(desc, "new_values").unwrap_or(0);
        let owner_att = attnum(desc, "owner_id").unwrap_or(0);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        // systable scans take heap attribute numbers and map them to the index's columns.
        pg_sys::ScanKeyInit(
            &mut key,
            attnum(desc, "config_id").unwrap_or(0) as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_UUID_EQ),
            config_id,
        );
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let scan = pg_sys::systable_beginscan_ordered(rel, index, snapshot, 1, &mut key);
        let tuple = pg_sys::systable_getnext_ordered(scan, pg_sys::ScanDirection::BackwardScanDirection);
        let mut head = Head { seq: 0, hash: None, owner: None, continues: false };
        if !tuple.is_null() {
            let mut isnull = false;
            if owner_att > 0 {
                let owner = pg_sys::heap_getattr(tuple, owner_att, desc, &mut isnull);
                if !isnull {
                    head.owner = Some(uuid_bytes(owner));
                }
            }
            let seq = pg_sys::heap_getattr(tuple, seq_att, desc, &mut isnull);
            if !isnull {
                head.seq = seq.value() as i64;
            }
            let hash = pg_sys::heap_getattr(tuple, hash_att, desc, &mut isnull);
            if !isnull {
                head.hash = Some(varlena_bytes(hash));
            }
            let new_values = pg_sys::heap_getattr(tuple, new_att, desc, &mut isnull);
            head.continues = head.seq > 0
                && head.hash.is_some()
                && match (isnull, old_doc) {
                    (false, Some(old)) => attribute_equals(new_values, old),
                    _ => false,
                };
        }
        pg_sys::systable_endscan_ordered(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        head
    }
}

/// One entry of a chain as the old-values look-up needs it.
struct Linked {
    seq: i64,
    hash: Option<Vec<u8>>,
    prev_hash: Option<Vec<u8>>,
    owner: Option<[u8; 16]>,
    elided: bool,
    /// new_values, copied out of the buffer (a detoasted palloc'd copy).
    new_values: Option<pg_sys::Datum>,
}

/// `old_values` of an entry that elided it: the new_values of the entry before it in its
/// configuration's chain.  Answered only when every link holds, so the document returned is
/// exactly the named entry's own document before its change and never another owner's:
/// - the entry (config_id, seq) exists in the caller's snapshot, elided its old_values and
///   carries `prev_hash` (only a reader of that entry knows it: a SHA-256 is not guessed);
/// - the entry before it (seq - 1) carries that hash;
/// - both record the same owner (the writer never elides across owners, and refuses a new
///   row that would continue another owner's chain, so a user who re-inserts her row with
///   someone else's configuration id is never served their documents).
///
/// NULL otherwise (history edited behind pg_steward's back shows in audit_verify).
#[pg_extern(stable, strict, parallel_safe, cost = 50)]
fn _audit_old_values(config_id: pgrx::Uuid, seq: i64, prev_hash: &[u8]) -> Result<Option<crate::common::jsonb::JsonbDatum>, ErrorReport> {
    let (log_oid, chain_oid) = log_relations()?;
    let Some(config_datum) = config_id.into_datum() else { return Ok(None) };
    if seq < 2 {
        return Ok(None);
    }
    // SAFETY: the log and its chain index are opened and closed here under AccessShareLock;
    // the scan keys reference columns looked up by name in the log's own descriptor (0 only
    // if the column is missing, which heap_getattr is never called with: see `read`); every
    // datum kept past the scan is copied out of the buffer with pg_detoast_datum_copy; the
    // registered snapshot is unregistered before returning.
    // SAFETY: see `_audit_old_values` above: relations opened and closed here, keys on the log's own columns, kept datums copied.
    unsafe {
        let rel = pg_sys::table_open(log_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(chain_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        let att = |name: &str| attnum(desc, name).unwrap_or(0);
        let (seq_att, hash_att, prev_att, owner_att, elided_att, new_att) =
            (att("seq"), att("hash"), att("prev_hash"), att("owner_id"), att("old_elided"), att("new_values"));
        if [seq_att, hash_att, prev_att, owner_att, elided_att, new_att, att("config_id")].contains(&0) {
            pg_sys::index_close(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            return Err(broken("a column of the log is missing; reinstall pg_steward".into()));
        }
        let mut keys: [pg_sys::ScanKeyData; 3] = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut keys[0],
            att("config_id") as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_UUID_EQ),
            config_datum,
        );
        pg_sys::ScanKeyInit(
            &mut keys[1],
            seq_att as pg_sys::AttrNumber,
            pg_sys::BTGreaterEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_INT8GE),
            pg_sys::Datum::from(seq - 1),
        );
        pg_sys::ScanKeyInit(
            &mut keys[2],
            seq_att as pg_sys::AttrNumber,
            pg_sys::BTLessEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_INT8LE),
            pg_sys::Datum::from(seq),
        );
        // The caller's snapshot: the entry it is reading and the one before it are seen alike.
        let active = pg_sys::GetActiveSnapshot();
        let snapshot = pg_sys::RegisterSnapshot(if active.is_null() { pg_sys::GetTransactionSnapshot() } else { active });
        let scan = pg_sys::systable_beginscan(rel, chain_oid, true, snapshot, 3, keys.as_mut_ptr());
        let bytes_of = |tuple: *mut pg_sys::HeapTupleData, attnum: i32| {
            let mut isnull = false;
            let value = pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull);
            (!isnull).then(|| varlena_bytes(value))
        };
        let read = |tuple: *mut pg_sys::HeapTupleData, with_doc: bool| {
            let mut isnull = false;
            let seq = pg_sys::heap_getattr(tuple, seq_att, desc, &mut isnull);
            let seq = if isnull { -1 } else { seq.value() as i64 };
            let owner = pg_sys::heap_getattr(tuple, owner_att, desc, &mut isnull);
            let owner = (!isnull).then(|| uuid_bytes(owner));
            let elided = pg_sys::heap_getattr(tuple, elided_att, desc, &mut isnull);
            let elided = !isnull && elided.value() != 0;
            let new_values = if with_doc {
                let value = pg_sys::heap_getattr(tuple, new_att, desc, &mut isnull);
                (!isnull).then(|| pg_sys::Datum::from(pg_sys::pg_detoast_datum_copy(value.cast_mut_ptr())))
            } else {
                None
            };
            Linked { seq, hash: bytes_of(tuple, hash_att), prev_hash: bytes_of(tuple, prev_att), owner, elided, new_values }
        };
        let (mut entry, mut before) = (None, None);
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            let mut isnull = false;
            let this_seq = pg_sys::heap_getattr(tuple, seq_att, desc, &mut isnull);
            if isnull {
                continue;
            }
            if this_seq.value() as i64 == seq {
                entry = Some(read(tuple, false));
            } else {
                before = Some(read(tuple, true));
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::index_close(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let found = match (entry, before) {
            (Some(entry), Some(before)) if links(&entry, &before, prev_hash) => before.new_values,
            _ => None,
        };
        Ok(found.map(crate::common::jsonb::JsonbDatum))
    }
}

/// Whether `entry` may take its old_values from `before` (see `_audit_old_values`).
fn links(entry: &Linked, before: &Linked, prev_hash: &[u8]) -> bool {
    entry.elided
        && entry.seq == before.seq + 1
        && entry.prev_hash.as_deref() == Some(prev_hash)
        && before.hash.as_deref() == Some(prev_hash)
        && entry.owner == before.owner
}

/// The log's table and its chain index.
pub fn log_relations() -> Result<(pg_sys::Oid, pg_sys::Oid), ErrorReport> {
    // SAFETY: a NUL-terminated literal; missing_ok = false raises a clean error if the schema is gone.
    let namespace = unsafe { pg_sys::get_namespace_oid(c"steward".as_ptr(), false) };
    Ok((relation_oid(namespace, c"audit_entries")?, relation_oid(namespace, c"audit_entries_chain")?))
}

fn relation_oid(namespace: pg_sys::Oid, name: &CStr) -> Result<pg_sys::Oid, ErrorReport> {
    relid(namespace, name).ok_or_else(|| broken(format!("steward.{} is missing; reinstall pg_steward", name.to_string_lossy())))
}

fn text_datum(s: &str) -> pg_sys::Datum {
    s.into_datum().unwrap_or(pg_sys::Datum::from(0))
}

/// The client address as PostgreSQL prints it (what host(client_ip) gives back), and its datum.
fn inet(text: &str) -> Option<(String, pg_sys::Datum)> {
    let c = std::ffi::CString::new(text).ok()?;
    // SAFETY: inet_in takes a NUL-terminated C string that lives (`c`) for the call.
    let datum = unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::inet_in, &[Some(pg_sys::Datum::from(c.as_ptr()))])
    }?;
    // inet_out returns a C string, not text.
    // SAFETY: `datum` is the inet value inet_in just returned.
    let printed = unsafe { pgrx::direct_function_call::<&CStr>(pg_sys::inet_out, &[Some(datum)]) }?;
    Some((printed.to_string_lossy().into_owned(), datum))
}

thread_local! {
    /// ChaCha12 keyed once per backend from pg_strong_random (so after the postmaster's fork,
    /// never shared between backends): a cryptographically secure generator that costs
    /// nanoseconds per id, where pg_strong_random (OpenSSL's RAND_bytes) showed as 4 % of an
    /// audited UPDATE in perf.
    static ID_RNG: std::cell::RefCell<Option<rand_chacha::ChaCha12Rng>> = const { std::cell::RefCell::new(None) };
}

/// The 74 random bits (in 10 bytes) of an entry id.
fn entry_id_random() -> Result<[u8; 10], ErrorReport> {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    ID_RNG.with(|cell| {
        let mut rng = cell.borrow_mut();
        if rng.is_none() {
            let mut seed = [0u8; 32];
            // SAFETY: pg_strong_random writes exactly `len` bytes into the buffer.
            if !unsafe { pg_sys::pg_strong_random(seed.as_mut_ptr().cast(), seed.len()) } {
                return Err(broken("no random bytes for the entry id".into()));
            }
            *rng = Some(rand_chacha::ChaCha12Rng::from_seed(seed));
        }
        let mut random = [0u8; 10];
        if let Some(rng) = rng.as_mut() {
            rng.fill_bytes(&mut random);
        }
        Ok(random)
    })
}

/// The chain heads this backend wrote, by configuration id, with the transaction that wrote
/// the row version they describe.  When the row version a change replaces was written by
/// that same transaction (its xmin), no other change can have been recorded for the
/// configuration since: every recorded change makes a new row version, a rolled-back one
/// leaves the old version (and its xmin) in place, and a concurrent writer's version has its
/// own xmin.  Then the head is known without the index probe; anything else probes.  The
/// document is kept too, so a change made in between with triggers disabled (same row
/// version writer, different document) is not mistaken for a continuation.
struct CachedHead {
    generation: u64,
    relid: pg_sys::Oid,
    written_by: u64,
    seq: i64,
    hash: Vec<u8>,
    owner: Option<[u8; 16]>,
    new_doc: Option<Vec<u8>>,
}

const MAX_HEADS: usize = 4_096;

thread_local! {
    static HEADS: std::cell::RefCell<rustc_hash::FxHashMap<[u8; 16], CachedHead>> =
        std::cell::RefCell::new(rustc_hash::FxHashMap::default());
    /// Chain heads taken from HEADS instead of the index (tests check both ways are taken).
    pub static HEAD_HITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Bumped when the log is invalidated (steward.audit_purge() removed entries: a head may
    /// be gone); entries of an older generation are ignored.  A Cell, so the callback never
    /// finds anything borrowed.
    static HEADS_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static HEADS_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LOG_RELID: std::cell::Cell<pg_sys::Oid> = const { std::cell::Cell::new(pg_sys::Oid::INVALID) };
}

// SAFETY: a relcache callback (registered in `insert_entry`) run on the backend's thread; it dereferences nothing and
// only reads and bumps const-initialised thread-local Cells (no destructor, never borrowed), whatever code is running.
unsafe extern "C-unwind" fn forget_heads(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let log = LOG_RELID.with(std::cell::Cell::get);
    if relid == pg_sys::Oid::INVALID || log == pg_sys::Oid::INVALID || relid == log {
        HEADS_GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    }
}

/// The head this backend recorded for `config`, if the replaced row version proves it is
/// still the head.
fn remembered_head(config: [u8; 16], relid: pg_sys::Oid, replaced_xmin: pg_sys::TransactionId, old_doc: Option<&[u8]>) -> Option<Head> {
    // Full transaction ids: a 32-bit xmin is only compared with a writer less than 2^31
    // transactions old, which no unfrozen row version can be older than.
    // SAFETY: ReadNextFullTransactionId reads shared state under its own lock.
    let now = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
    let generation = HEADS_GENERATION.with(std::cell::Cell::get);
    HEADS.with(|h| {
        let heads = h.borrow();
        let head = heads.get(&config)?;
        let same_writer = head.generation == generation
            && head.relid == relid
            && head.written_by as u32 == u32::from(replaced_xmin)
            && now.wrapping_sub(head.written_by) < (1 << 31);
        same_writer.then(|| Head {
            seq: head.seq,
            hash: Some(head.hash.clone()),
            owner: head.owner,
            continues: old_doc.is_some() && head.new_doc.as_deref() == old_doc,
        })
    })
}

fn remember_head(config: [u8; 16], head: Option<CachedHead>) {
    HEADS.with(|h| {
        let mut heads = h.borrow_mut();
        match head {
            Some(head) => {
                if heads.len() >= MAX_HEADS {
                    heads.clear();
                }
                heads.insert(config, head);
            }
            None => {
                heads.remove(&config);
            }
        }
    });
}

/// Store one entry; returns its id.
pub fn insert_entry(e: &Entry, who: &Attribution) -> Result<pgrx::Uuid, ErrorReport> {
    let (log_oid, chain_oid) = log_relations()?;

    // A time-ordered id (UUID version 7: milliseconds since the epoch, then 74 random bits):
    // new entries land at the right edge of the primary-key index instead of on a random
    // leaf page, so a log of millions of entries does not read and dirty the whole index.
    let random = entry_id_random()?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let id_bytes = *id.as_bytes();
    // SAFETY: reads the current transaction's start time, a backend global.
    let changed_at: i64 = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    // SAFETY: assigns or reads this transaction's id; we are inside a writing transaction (a trigger).
    let txid = unsafe { pg_sys::GetTopFullTransactionId() }.value as i64;
    // SAFETY: the documents are non-null jsonb (varlena) datums of the changed row.
    let old_bytes = e.old_doc.map(|d| unsafe { varlena_bytes(d) });
    let new_bytes = e.new_doc.map(|d| unsafe { varlena_bytes(d) });
    // SAFETY: the key is a non-null uuid datum (the trigger checked its type).
    let config_bytes = e.config_id.map(|d| unsafe { uuid_bytes(d) });
    let changed_by = who.changed_by.map(|u| *u.as_bytes());
    // SAFETY: the owner datum is a non-null uuid datum of the changed row (see `capture`).
    let owner_bytes = e.owner.map(|d| unsafe { uuid_bytes(d) });
    let ip = who.client_ip.as_deref().and_then(inet);

    if !HEADS_CALLBACK.with(|c| c.replace(true)) {
        // SAFETY: registers a plain function pointer once per backend (HEADS_CALLBACK guards it).
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget_heads), pg_sys::Datum::from(0)) };
    }
    LOG_RELID.with(|r| r.set(log_oid));
    // SAFETY: the log and its chain index are opened under RowExclusive/AccessShare locks and closed on every path; the tuple is formed from datums matching the log's descriptor; indexes are maintained by CatalogTupleInsertWithInfo.
    unsafe {
        // Taking the lock processes pending invalidations, a purge's included (the purge holds
        // an EXCLUSIVE lock until it commits, so no entry is written against a head it removes).
        let rel = pg_sys::table_open(log_oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(chain_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        // A row that starts on a configuration id (INSERT, or an UPDATE of its key) is always
        // checked against the chain in the index: whose chain it would continue matters.
        let remembered = match (config_bytes, e.replaced_xmin) {
            (Some(cfg), Some(xmin)) if !e.starts_row => remembered_head(cfg, e.relid, xmin, old_bytes.as_deref()),
            _ => None,
        };
        if remembered.is_some() {
            HEAD_HITS.with(|h| h.set(h.get() + 1));
        }
        let head = match (remembered, e.config_id) {
            (Some(head), _) => head,
            (None, Some(cfg)) => chain_head(rel, index, cfg, old_bytes.as_deref()),
            (None, None) => Head { seq: 0, hash: None, owner: None, continues: false },
        };
        // Chains of different owners never link: a new row on a configuration id whose chain
        // records another owner (a user re-inserting her row under someone else's
        // configuration id, a table owner or the service doing the same) is refused, so the
        // entries of one chain, and the documents the log reads back through it, are one
        // owner's.  Changing the owner of an existing row (same row, same id) stays possible;
        // its entry stores its document before (see `elide`).
        if e.starts_row && head.seq > 0 && head.owner != owner_bytes {
            pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
            pg_sys::table_close(rel, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            return Err(AuditError::ForeignChain {
                config_id: config_bytes.map(|b| uuid::Uuid::from_bytes(b).to_string()).unwrap_or_default(),
            }
            .into());
        }
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        let seq = head.seq + 1;
        // An INSERT has no document before; anything else that continues its chain's last
        // document leaves old_values to the view.
        // Only within one owner's chain: the look-up that reads an elided document back
        // (`_audit_old_values`) requires the entry before to record the same owner.
        let elide = head.continues && e.old_doc.is_some() && head.owner == owner_bytes;
        let prev_hash = head.hash;
        let hash = entry_hash(&HashFields {
            prev: prev_hash.as_deref(),
            id: Some(id_bytes),
            config_type: Some(&e.config_type),
            config_id: config_bytes,
            seq: Some(seq),
            action: Some(e.action),
            changed_by,
            actor: Some(&who.actor),
            changed_at: Some(changed_at),
            old_values: old_bytes.as_deref(),
            new_values: new_bytes.as_deref(),
            change_reason: who.reason.as_deref(),
            client_ip: ip.as_ref().map(|(t, _)| t.as_str()),
            user_agent: who.user_agent.as_deref(),
        });

        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![true; natts];
        let tupdesc = pgrx::PgTupleDesc::from_pg_unchecked(desc);
        for (i, att) in tupdesc.iter().enumerate() {
            if att.attisdropped {
                continue;
            }
            let value: Option<pg_sys::Datum> = match att.name() {
                "id" => pgrx::Uuid::from_bytes(id_bytes).into_datum(),
                "config_type" => Some(text_datum(&e.config_type)),
                "config_id" => e.config_id,
                "changed_by" => who.changed_by.into_datum(),
                "changed_at" => Some(pg_sys::Datum::from(changed_at)),
                "old_values" => if elide { None } else { e.old_doc },
                "old_elided" => Some(pg_sys::Datum::from(elide)),
                "new_values" => e.new_doc,
                "change_reason" => who.reason.as_deref().map(text_datum),
                "client_ip" => ip.as_ref().map(|(_, d)| *d),
                "user_agent" => who.user_agent.as_deref().map(text_datum),
                "action" => Some(text_datum(e.action)),
                "actor" => Some(text_datum(&who.actor)),
                "relid" => Some(pg_sys::Datum::from(e.relid)),
                "owner_id" => e.owner,
                "rollback_of" => who.rollback_of.into_datum(),
                "txid" => Some(pg_sys::Datum::from(txid)),
                "seq" => Some(pg_sys::Datum::from(seq)),
                "prev_hash" => prev_hash.clone().into_datum(),
                "hash" => hash.clone().into_datum(),
                _ => None,
            };
            if let Some(v) = value {
                values[i] = v;
                nulls[i] = false;
            }
        }
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());

        let indexes = pg_sys::CatalogOpenIndexes(rel);
        let count = (*indexes).ri_NumIndices as usize;
        for i in 0..count {
            let info = *(*indexes).ri_IndexRelationInfo.add(i);
            if !(*info).ii_Expressions.is_null() || !(*info).ii_Predicate.is_null() {
                pg_sys::CatalogCloseIndexes(indexes);
                pg_sys::table_close(rel, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
                return Err(broken(
                    "the log has an expression or partial index, which pg_steward's writer cannot maintain; drop it".into(),
                ));
            }
        }
        pg_sys::CatalogTupleInsertWithInfo(rel, tuple, indexes);
        pg_sys::CatalogCloseIndexes(indexes);
        pg_sys::heap_freetuple(tuple);
        if let Some(cfg) = config_bytes {
            // The row version this change leaves behind is written by this (sub)transaction.
            remember_head(
                cfg,
                e.leaves_row.then(|| CachedHead {
                    generation: HEADS_GENERATION.with(std::cell::Cell::get),
                    relid: e.relid,
                    written_by: pg_sys::GetCurrentFullTransactionId().value,
                    seq,
                    hash: hash.clone(),
                    owner: owner_bytes,
                    new_doc: new_bytes.clone(),
                }),
            );
        }
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        // Later statements (and later rows of this one) see the entry, as after any INSERT.
        pg_sys::CommandCounterIncrement();
    }
    Ok(pgrx::Uuid::from_bytes(id_bytes))
}
