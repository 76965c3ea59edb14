//! Resolved effective AI configurations kept per backend, forgotten on every committed change.
//!
//! `get_effective_ai_config` runs on every request of the web app, with the same answer until
//! someone changes a configuration, a membership or the database layer — which is rare next
//! to reads.  Resolving means three index probes and a merge; answering from this cache is a
//! hash look-up and one copy of the finished jsonb.
//!
//! Staying correct:
//! - Every statement that writes `ai_configurations`, `organization_members` or
//!   `steward.config_overrides` (INSERT, UPDATE, DELETE, TRUNCATE, cascades included) fires
//!   `steward._effective_config_changed()`, which queues a relcache invalidation of the table.
//!   PostgreSQL delivers it to this backend at the writer's next command and to every other
//!   backend once the writer commits (before its COMMIT returns); the callback in
//!   `direct.rs` then calls [`forget`].  An aborted write re-delivers it locally, so this
//!   backend's cache never keeps a document that was rolled back.
//! - Each look-up first processes pending invalidations, so a change committed by another
//!   session is seen by the next call, inside a transaction too.
//! - An answer to keep is read with a snapshot taken after the look-up missed (not the
//!   statement's, which may be older), and kept only if no invalidation arrived while it was
//!   computed.  A writer's commit becomes visible to snapshots before its invalidation is
//!   sent, so a change is either in the kept answer or its invalidation is still to come and
//!   drops the answer before it is used again.
//! - Not used under REPEATABLE READ or SERIALIZABLE (the transaction's snapshot may be older
//!   than a cached answer), nor when the direct path does not apply (custom policies, no
//!   SELECT privilege), nor with `SET steward.effective_config_cache = off`.
//! - Writes that fire no triggers (`session_replication_role = replica`, disabled triggers)
//!   send no invalidation: sessions that do such writes should run
//!   `SELECT steward.effective_config_cache_reset()` after them, which signals every backend.
//!
//! The price, paid per writing statement, not per read: a relcache invalidation makes every
//! backend rebuild that table's relcache entry and re-plan its cached statements on the
//! table at their next use.  Configuration writes are rare next to reads; for bulk loads,
//! turn triggers off and reset once (above).
//!
//! One entry per (user, whether the caller sees API keys); at most `MAX_ENTRIES` per backend.

use std::cell::{Cell, RefCell};

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use crate::common::jsonb::JsonbDatum;

/// About 700 bytes per answer: at most ~3 MB per connection.
const MAX_ENTRIES: usize = 4_096;

struct Entry {
    generation: u64,
    /// The whole jsonb varlena, header included.
    bytes: Box<[u8]>,
}

thread_local! {
    // Cells only in what the invalidation callback touches: it may run whenever PostgreSQL
    // processes invalidations, also while the map below is borrowed.
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static ENTRIES: RefCell<Option<FxHashMap<([u8; 16], bool), Entry>>> = const { RefCell::new(None) };
    /// Answers served from the cache (tests check it is used and not used).
    pub static HITS: Cell<u64> = const { Cell::new(0) };
    /// Answers computed: [stored, not stored because something changed meanwhile].
    static COMPUTED: Cell<[u64; 2]> = const { Cell::new([0, 0]) };
}

/// Drop every entry.  Called from invalidation callbacks: touches Cells only.
pub fn forget() {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
}

fn usable() -> bool {
    // SAFETY: XactIsoLevel is a plain int backend global (this transaction's isolation level), read on the
    // backend's only thread.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        return false;
    }
    crate::gucs::EFFECTIVE_CONFIG_CACHE.get()
}

/// A cached answer, or a ticket to store the one about to be computed.
pub enum Lookup {
    Hit(JsonbDatum),
    Miss(Ticket),
    Off,
}

pub struct Ticket {
    generation: u64,
    key: ([u8; 16], bool),
}

pub fn lookup(user: pgrx::Uuid, keys: bool) -> Lookup {
    if !usable() {
        return Lookup::Off;
    }
    // Changes other sessions committed since this backend last looked.
    // SAFETY: inside the transaction of a SQL function; the callbacks it may run (direct.rs, health/catalog.rs,
    // audit/writer.rs) touch only Cells, and no RefCell of this module is borrowed at this point.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let generation = GENERATION.with(Cell::get);
    let key = (*user.as_bytes(), keys);
    let found = ENTRIES.with(|e| {
        let map = e.borrow();
        let entry = map.as_ref()?.get(&key)?;
        // SAFETY: palloc returns `len` writable bytes in the current memory context (the call's, which outlives the
        // returned datum) or raises; `entry.bytes` is a whole 4-byte-header jsonb varlena (see `store`) and cannot
        // overlap fresh palloc memory.  Nothing here processes invalidations, so the borrow of ENTRIES is not re-entered.
        (entry.generation == generation).then(|| unsafe {
            let copy = pg_sys::palloc(entry.bytes.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(entry.bytes.as_ptr(), copy, entry.bytes.len());
            JsonbDatum(pg_sys::Datum::from(copy))
        })
    });
    match found {
        Some(datum) => {
            HITS.with(|h| h.set(h.get() + 1));
            Lookup::Hit(datum)
        }
        None => Lookup::Miss(Ticket { generation, key }),
    }
}

/// Keep `datum`, computed from a snapshot taken after `ticket` was issued, unless an
/// invalidation arrived meanwhile (its change may or may not be in the answer).
pub fn store(ticket: Ticket, datum: pg_sys::Datum) {
    let count = |stored: bool| {
        COMPUTED.with(|c| {
            let mut v = c.get();
            v[usize::from(!stored)] += 1;
            c.set(v);
        })
    };
    if GENERATION.with(Cell::get) != ticket.generation {
        count(false);
        return;
    }
    // SAFETY: relies on the caller (effective.rs, the only one) passing the non-null jsonb datum it just built with
    // Doc::into_datum: an in-memory varlena; anything but a plain 4-byte header is refused below, and varsize_4b bytes
    // from `ptr` are that varlena.  Not enforced by this safe fn's signature.
    let bytes: Box<[u8]> = unsafe {
        let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
        // Results are built in memory with a plain 4-byte header; refuse anything else.
        if !pgrx::varlena::varatt_is_4b_u(ptr) {
            return;
        }
        let len = pgrx::varlena::varsize_4b(ptr);
        std::slice::from_raw_parts(ptr as *const u8, len).into()
    };
    ENTRIES.with(|e| {
        let mut map = e.borrow_mut();
        let map = map.get_or_insert_with(FxHashMap::default);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(ticket.key, Entry { generation: ticket.generation, bytes });
    });
    count(true);
}

/// This backend's cache: answers served from it, answers stored, answers not stored because
/// a change arrived while they were computed, and entries held (for operators: a low hit
/// count under a steady read load means something keeps invalidating).
#[pg_extern(volatile)]
fn effective_config_cache_stats() -> pgrx::JsonB {
    let generation = GENERATION.with(Cell::get);
    let entries = ENTRIES.with(|e| e.borrow().as_ref().map_or(0, |m| m.values().filter(|v| v.generation == generation).count()));
    let [stored, not_stored] = COMPUTED.with(Cell::get);
    pgrx::JsonB(serde_json::json!({
        "hits": HITS.with(Cell::get),
        "stored": stored,
        "not_stored": not_stored,
        "entries": entries,
    }))
}

/// AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE … FOR EACH STATEMENT on the tables the
/// effective configuration is read from: tell every backend (at commit) that it changed.
#[pg_trigger]
fn _effective_config_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    // SAFETY: the TriggerData of this call; tg_relation is the open, locked relation the trigger fired on, valid
    // until the trigger returns.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
    // SAFETY: inside the firing transaction, on an existing, locked relation; the call only queues an invalidation.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}

/// Make every backend forget its cached effective configurations (after writes that fired
/// no triggers).  Takes effect for other sessions when the caller's transaction commits.
#[pg_extern(volatile)]
fn effective_config_cache_reset() -> bool {
    // SAFETY: inside a SQL function's transaction; NUL-terminated literals; missing_ok = true and
    // get_relname_relid both return InvalidOid for a missing object instead of raising.
    let oid = unsafe {
        let ns = pg_sys::get_namespace_oid(c"steward".as_ptr(), true);
        if ns == pg_sys::Oid::INVALID {
            return false;
        }
        pg_sys::get_relname_relid(c"config_overrides".as_ptr(), ns)
    };
    if oid == pg_sys::Oid::INVALID {
        return false;
    }
    // SAFETY: `oid` was just found in pg_class in this transaction; the call only queues an invalidation (a relation
    // dropped concurrently makes it raise an ERROR, never read freed memory).
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    true
}
