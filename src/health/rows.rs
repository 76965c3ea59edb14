//! The rows of `table_health()`, `index_health()` / `unused_indexes()` and the two bloat
//! lists, built in one pass.
//!
//! The first versions joined `pg_stat_user_tables` / `pg_stat_user_indexes` with the size scan
//! in SQL.  On 10 000 tables that cost more than the budget of the whole function: every row of
//! those views calls a dozen `pg_stat_get_*` functions, each of which looks the relation up in
//! the statistics snapshot again, and the sizes had to be joined as 30 000-row CTEs.  Here
//! each relation's statistics entry is fetched once (`table_counters`, `index_counters`), the catalog comes from
//! `catalog.rs`, sizes from the per-statement scan (`storage::snapshot`, started early on a
//! helper thread by `storage::prefetch`) and the bloat estimates from their per-statement
//! cache; the rows are returned already sorted.  The row sets match the statistics views':
//! tables are the relkinds `r`, `t`, `m`, `p` and indexes those of `r`, `t`, `m` outside the
//! system schemas.


use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use super::catalog::OidMap;
use super::storage;
use super::{cached_estimates, round_to, compute_index_estimates, compute_table_estimates, EstimateKind};
use crate::common::SpiContext;

/// What the cumulative statistics system knows about one relation (zeros and `None` when it
/// has no entry, as the `pg_stat_get_*` functions report).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub scans: i64,
    pub tuples_returned: i64,
    pub tuples_fetched: i64,
    pub live: i64,
    pub dead: i64,
    pub mod_since_analyze: i64,
    pub last_vacuum: Option<i64>,
    pub vacuum_count: i64,
    pub last_autovacuum: Option<i64>,
    pub autovacuum_count: i64,
    pub last_analyze: Option<i64>,
    pub analyze_count: i64,
    pub last_autoanalyze: Option<i64>,
    pub autoanalyze_count: i64,
}

fn timestamp(ts: pg_sys::TimestampTz) -> Option<i64> {
    (ts != 0).then_some(ts)
}

/// Copies the fields we report out of a statistics entry; the field names changed in 16.
macro_rules! counters_from_entry {
    ($e:expr, $live:ident, $dead:ident, $mods:ident, $vac:ident, $vacn:ident, $avac:ident, $avacn:ident,
     $ana:ident, $anan:ident, $aana:ident, $aanan:ident) => {
        Counters {
            scans: $e.numscans,
            tuples_returned: $e.tuples_returned,
            tuples_fetched: $e.tuples_fetched,
            live: $e.$live,
            dead: $e.$dead,
            mod_since_analyze: $e.$mods,
            last_vacuum: timestamp($e.$vac),
            vacuum_count: $e.$vacn,
            last_autovacuum: timestamp($e.$avac),
            autovacuum_count: $e.$avacn,
            last_analyze: timestamp($e.$ana),
            analyze_count: $e.$anan,
            last_autoanalyze: timestamp($e.$aana),
            autoanalyze_count: $e.$aanan,
        }
    };
}

/// One lookup in the cumulative statistics for everything the views' dozen functions return.
fn counters(relid: u32) -> Counters {
    // SAFETY: pgstat_fetch_stat_tabentry returns NULL or a pointer to a copy of the entry
    // (palloc'd in the current memory context in `none` mode, in the backend's statistics
    // snapshot otherwise), valid at least until that context is reset; we copy what we need.
    unsafe {
        let entry = pg_sys::pgstat_fetch_stat_tabentry(pg_sys::Oid::from_u32(relid));
        if entry.is_null() {
            return Counters::default();
        }
        let e = &*entry;
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
        {
            counters_from_entry!(e, n_live_tuples, n_dead_tuples, changes_since_analyze, vacuum_timestamp, vacuum_count,
                autovac_vacuum_timestamp, autovac_vacuum_count, analyze_timestamp, analyze_count,
                autovac_analyze_timestamp, autovac_analyze_count)
        }
        #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
        {
            counters_from_entry!(e, live_tuples, dead_tuples, mod_since_analyze, last_vacuum_time, vacuum_count,
                last_autovacuum_time, autovacuum_count, last_analyze_time, analyze_count,
                last_autoanalyze_time, autoanalyze_count)
        }
    }
}

/// Runs `f` with `stats_fetch_consistency = none` (PostgreSQL 15+), restoring the caller's
/// setting afterwards as a function's SET clause would.  In `snapshot` mode the first fetch
/// copies every statistics entry of the database (catalogs and TOAST included) into a local
/// hash: on 100 000 tables (~600 000 entries) that alone took longer than the whole budget,
/// ~2.5× the cost of looking up only the 300 000 user relations directly (measured: the same
/// 300 000 look-ups took 0.93–1.36 s in `snapshot` mode against 0.62–0.71 s in a new
/// connection and 0.30–0.43 s in a used one in `none` mode).  In `none` mode each fetch copies
/// one entry into the current memory context, which `counters_of` resets as it goes, and
/// nothing is cached for the transaction.  Changing the setting makes the caller's next fetch
/// drop whatever it had cached, so the caller sees what it would have seen.
fn with_stats_uncached<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: the same calls a function's SET clause makes (fmgr_security_definer); an error
    // in `f` unwinds the nest level with the (sub)transaction.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"stats_fetch_consistency".as_ptr(),
            c"none".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let out = f();
        pg_sys::AtEOXact_GUC(true, level);
        out
    }
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    f()
}

thread_local! {
    static TABLE_COUNTERS: std::cell::RefCell<Option<(storage::CacheKey, std::rc::Rc<OidMap<Counters>>)>> =
        const { std::cell::RefCell::new(None) };
    static INDEX_COUNTERS: std::cell::RefCell<Option<(storage::CacheKey, std::rc::Rc<OidMap<Counters>>)>> =
        const { std::cell::RefCell::new(None) };
}

type CounterCache = std::thread::LocalKey<std::cell::RefCell<Option<(storage::CacheKey, std::rc::Rc<OidMap<Counters>>)>>>;

/// The counters of the user relations whose kind is in `kinds`, one fetch each, cached in
/// `cache` for the current client statement.
fn counters_of(cache: &'static CounterCache, kinds: &[u8]) -> Result<std::rc::Rc<OidMap<Counters>>, ErrorReport> {
    let stamp = storage::statement_stamp();
    if let Some(hit) = cache.with(|c| c.borrow().as_ref().filter(|(s, _)| *s == stamp).map(|(_, v)| std::rc::Rc::clone(v))) {
        return Ok(hit);
    }
    let catalog = super::catalog::catalog()?;
    let wanted: Vec<u32> = catalog
        .rels
        .iter()
        .filter(|r| kinds.contains(&r.kind) && catalog.is_user_namespace(r.namespace))
        .map(|r| r.oid)
        .collect();
    let mut map: OidMap<Counters> = OidMap::default();
    map.reserve(wanted.len());
    // Each fetch pallocs a copy of its entry: a scratch context, reset every few thousand
    // fetches, keeps that from growing with the catalog (300 000 copies are ~60 MB).
    let mut scratch = pgrx::PgMemoryContexts::new("pg_steward statistics fetches");
    with_stats_uncached(|| {
        for chunk in wanted.chunks(4096) {
            // SAFETY: the context was created above and lives until `scratch` is dropped; the
            // closure copies the counters out of each entry before the context is reset, and
            // nothing allocated in it is used after the reset.
            unsafe {
                scratch.switch_to(|_| {
                    for oid in chunk {
                        map.insert(*oid, counters(*oid));
                    }
                });
                scratch.reset();
            }
        }
    });
    drop(scratch);
    let map = std::rc::Rc::new(map);
    cache.with(|c| *c.borrow_mut() = Some((stamp, std::rc::Rc::clone(&map))));
    Ok(map)
}

/// The counters of every user table (and TOAST table, materialized view, partitioned table),
/// cached for the current client statement.  Tables and indexes are fetched separately: at
/// 100 000 tables with 200 000 indexes the table functions need a third of the look-ups.
pub fn table_counters() -> Result<std::rc::Rc<OidMap<Counters>>, ErrorReport> {
    counters_of(&TABLE_COUNTERS, b"rtmp")
}

/// The counters of every index of a user table, cached for the current client statement.
pub fn index_counters() -> Result<std::rc::Rc<OidMap<Counters>>, ErrorReport> {
    counters_of(&INDEX_COUNTERS, b"i")
}

fn oid(o: u32) -> pg_sys::Oid {
    pg_sys::Oid::from_u32(o)
}

fn get_oid(row: &pgrx::spi::SpiHeapTupleData<'_>, i: usize) -> Result<u32, pgrx::spi::SpiError> {
    Ok(row.get::<pg_sys::Oid>(i)?.map(|o| o.to_u32()).unwrap_or(0))
}

fn tstz(ts: Option<i64>) -> Option<TimestampWithTimeZone> {
    ts.and_then(|t| TimestampWithTimeZone::try_from(t).ok())
}

/// Seconds since the Unix epoch of a PostgreSQL timestamp (microseconds since 2000-01-01).
fn epoch_seconds(ts: pg_sys::TimestampTz) -> f64 {
    ts as f64 / 1_000_000.0 + 946_684_800.0
}

/// `round(dead * 100.0 / live, 2)` as PostgreSQL's numeric computes it, in exact integer
/// arithmetic (hundredths, halves rounded away from zero); 0 when there are no live tuples.
pub fn dead_ratio_hundredths(dead: i64, live: i64) -> i128 {
    if live <= 0 {
        return 0;
    }
    let (dead, live) = (i128::from(dead.max(0)), i128::from(live));
    (dead * 20_000 + live) / (2 * live)
}

pub type TableRow = (
    String,                        // schemaname
    String,                        // relname
    i64,                           // n_live_tup
    i64,                           // n_dead_tup
    i64,                           // table_size
    Option<TimestampWithTimeZone>, // last_vacuum
    Option<TimestampWithTimeZone>, // last_autovacuum
    Option<TimestampWithTimeZone>, // last_analyze
    Option<TimestampWithTimeZone>, // last_autoanalyze
    i64,                           // vacuum_count
    i64,                           // autovacuum_count
    i64,                           // analyze_count
    i64,                           // autoanalyze_count
    Option<f64>,                   // bloat_pct
    pg_sys::Oid,                   // relid
    i64,                           // heap_size
    i64,                           // toast_size
    i64,                           // indexes_size
    f64,                           // dead_tuple_ratio
    bool,                          // needs_vacuum
    bool,                          // needs_analyze
    bool,                          // vacuum_overdue
    &'static str,                  // bloat_confidence
    Option<i64>,                   // bloat_bytes
    i64,                           // n_mod_since_analyze
    Option<TimestampWithTimeZone>, // last_vacuum_any
    Option<TimestampWithTimeZone>, // last_analyze_any
);

/// Every user table with its statistics, sizes and bloat estimate, largest first.
/// `analyze_cutoff`/`vacuum_cutoff` are `now()` minus the overdue intervals (computed by the
/// caller in SQL, so calendar days follow the session's time zone as before).
pub fn table_rows(
    dead_ratio_threshold: f64,
    analyze_cutoff: Option<i64>,
    vacuum_cutoff: Option<i64>,
    analyze_days: f64,
) -> Result<Vec<TableRow>, ErrorReport> {
    // The files are looked at on a helper thread while the statistics are read.
    storage::prefetch(storage::HEAP | storage::TOAST | storage::INDEX);
    let catalog = super::catalog::catalog()?;
    let stats = table_counters()?;
    let estimates = cached_estimates(EstimateKind::Table, analyze_days, || compute_table_estimates(analyze_days))?;
    let tables: Vec<&super::catalog::Rel> = catalog
        .rels
        .iter()
        .filter(|r| matches!(r.kind, b'r' | b't' | b'm' | b'p') && catalog.is_user_namespace(r.namespace))
        .collect();

    let sizes = storage::snapshot(storage::HEAP | storage::TOAST | storage::INDEX).map_err(ErrorReport::from)?;
    let size_of = |o: u32| sizes.by_oid.get(&o).map(|s| s.all_bytes).unwrap_or(0);
    // Bytes of the indexes of each table (user tables' and TOAST tables').
    let mut index_bytes: OidMap<i64> = OidMap::default();
    for index in &catalog.indexes {
        *index_bytes.entry(index.table).or_default() += size_of(index.oid);
    }
    let bloat: OidMap<&super::BloatRow> = estimates.iter().map(|r| (r.0.to_u32(), r)).collect();

    let mut out: Vec<TableRow> = Vec::with_capacity(tables.len());
    for rel in tables {
        let (relid, toast) = (rel.oid, rel.toast);
        let c = stats.get(&relid).copied().unwrap_or_default();
        let heap = size_of(relid);
        let toast_bytes = if toast != 0 { size_of(toast) + index_bytes.get(&toast).copied().unwrap_or(0) } else { 0 };
        let indexes = index_bytes.get(&relid).copied().unwrap_or(0);
        let ratio = dead_ratio_hundredths(c.dead, c.live);
        let vac_any = c.last_vacuum.max(c.last_autovacuum);
        let ana_any = c.last_analyze.max(c.last_autoanalyze);
        let older = |t: Option<i64>, cutoff: Option<i64>| match (t, cutoff) {
            (None, _) => true,
            (Some(t), Some(cut)) => t < cut,
            (Some(_), None) => false,
        };
        let b = bloat.get(&relid);
        out.push((
            catalog.namespace_name(rel.namespace).to_string(),
            rel.name.clone(),
            c.live,
            c.dead,
            heap + toast_bytes + indexes,
            tstz(c.last_vacuum),
            tstz(c.last_autovacuum),
            tstz(c.last_analyze),
            tstz(c.last_autoanalyze),
            c.vacuum_count,
            c.autovacuum_count,
            c.analyze_count,
            c.autoanalyze_count,
            b.and_then(|r| r.5),
            oid(relid),
            heap,
            toast_bytes,
            indexes,
            ratio as f64 / 100.0,
            ratio as f64 / 100.0 > dead_ratio_threshold,
            older(ana_any, analyze_cutoff),
            c.dead > 0 && older(vac_any, vacuum_cutoff),
            b.map_or("unknown", |r| r.6),
            b.and_then(|r| r.4),
            c.mod_since_analyze,
            tstz(vac_any),
            tstz(ana_any),
        ));
    }
    out.sort_by(|a, b| b.4.cmp(&a.4).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)));
    Ok(out)
}

pub type IndexRow = (
    String,             // schemaname
    String,             // relname
    String,             // indexrelname
    i64,                // index_size
    i64,                // idx_scan
    i64,                // idx_tup_read
    i64,                // idx_tup_fetch
    Option<f64>,        // days_since_last_use
    Option<f64>,        // bloat_pct
    pg_sys::Oid,        // indexrelid
    pg_sys::Oid,        // relid
    String,             // index_type
    bool,               // is_unique
    bool,               // is_primary
    bool,               // enforces_constraint
    bool,               // is_valid
    bool,               // is_unused
    Option<&'static str>, // bloat_confidence (None when bloat was not asked for)
    Option<i64>,        // bloat_bytes
);

/// Every index of a user table with its usage, size and (with `bloat`) bloat estimate,
/// largest first.  "Days since last use": for an index never scanned, the time since the
/// statistics window began (stats reset, else server start) or since the index file was
/// created, whichever is later — a lower bound; for a scanned index, the time since
/// `capture_index_usage_snapshot()` last saw its count move.
pub fn index_rows(bloat: bool, unused_days: f64, overdue_days: f64) -> Result<Vec<IndexRow>, ErrorReport> {
    storage::prefetch(storage::INDEX | storage::MAIN_ONLY);
    let catalog = super::catalog::catalog()?;
    let backing = super::catalog::constraint_indexes();
    let state = Spi::connect(|client| {
        let mut state: OidMap<(i64, Option<f64>)> = OidMap::default();
        for row in client.select(
            "SELECT u.indexrelid, u.idx_scan, extract(epoch FROM u.unchanged_since)::float8 FROM steward.index_usage_state u",
            None,
            &[],
        )? {
            state.insert(get_oid(&row, 1)?, (row.get::<i64>(2)?.unwrap_or(-1), row.get::<f64>(3)?));
        }
        Ok(state)
    })
    .ctx("index usage state")?;

    // SAFETY: plain reads of backend-local state (transaction start, server start, database).
    let (now, server_start, db) = unsafe {
        (
            epoch_seconds(pg_sys::GetCurrentTransactionStartTimestamp()),
            epoch_seconds(pg_sys::PgStartTime),
            pg_sys::MyDatabaseId,
        )
    };
    // SAFETY: pg_stat_get_db_stat_reset_time takes one oid and returns a timestamptz or NULL.
    let reset = unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::pg_stat_get_db_stat_reset_time, &[Some(pg_sys::Datum::from(db))])
    };
    let window_start = reset.map(|d| epoch_seconds(d.value() as i64)).unwrap_or(server_start);

    let estimates = if bloat {
        let rows = cached_estimates(EstimateKind::Index, overdue_days, || compute_index_estimates(overdue_days))?;
        Some(rows)
    } else {
        None
    };
    let by_index: OidMap<&super::BloatRow> =
        estimates.iter().flat_map(|rows| rows.iter()).map(|r| (r.0.to_u32(), r)).collect();

    let stats = index_counters()?;
    // Last: the helper thread started above has had the most time to finish.
    let sizes = storage::snapshot(storage::INDEX | storage::MAIN_ONLY).map_err(ErrorReport::from)?;
    let mut out: Vec<IndexRow> = Vec::with_capacity(catalog.indexes.len());
    for index in &catalog.indexes {
        let (Some(table), Some(own)) = (catalog.rel(index.table), catalog.rel(index.oid)) else { continue };
        if !matches!(table.kind, b'r' | b't' | b'm') || !catalog.is_user_namespace(table.namespace) {
            continue;
        }
        let (indexrelid, relid) = (index.oid, index.table);
        let (unique, primary, exclusion, valid) = (index.unique, index.primary, index.exclusion, index.valid);
        let c = stats.get(&indexrelid).copied().unwrap_or_default();
        let size = sizes.by_oid.get(&indexrelid).copied().unwrap_or_default();
        let enforces = primary || unique || exclusion || backing.contains(&indexrelid);
        let since = if c.scans == 0 {
            Some(size.born_epoch.map_or(window_start, |born| born.max(window_start)))
        } else {
            match state.get(&indexrelid) {
                Some((seen, unchanged)) if *seen == c.scans => *unchanged,
                Some(_) => Some(now),
                None => None,
            }
        };
        let idle_days = since.map(|t| round_to((now - t) / 86_400.0, 4));
        let unused = c.scans == 0 && !enforces && valid && idle_days.is_some_and(|d| d > unused_days);
        let b = by_index.get(&indexrelid);
        out.push((
            catalog.namespace_name(table.namespace).to_string(),
            table.name.clone(),
            own.name.clone(),
            size.main_bytes,
            c.scans,
            c.tuples_returned,
            c.tuples_fetched,
            idle_days,
            b.and_then(|r| r.5),
            oid(indexrelid),
            oid(relid),
            catalog.access_methods.get(&own.am).cloned().unwrap_or_default(),
            unique,
            primary,
            enforces,
            valid,
            unused,
            bloat.then(|| b.map_or("unknown", |r| r.6)),
            b.and_then(|r| r.4),
        ));
    }
    out.sort_by(|a, b| {
        b.3.cmp(&a.3).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2))
    });
    Ok(out)
}

/// Orders bloat rows largest first, unknown estimates last.
fn by_bloat_desc(a: Option<i64>, b: Option<i64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

pub type TableBloatRow =
    (String, String, i64, Option<i64>, Option<i64>, Option<f64>, String, Option<i64>, i64, Option<f64>, pg_sys::Oid);

/// `table_bloat()`'s rows: the estimates with names and dead tuples, most bloat first.
pub fn table_bloat_rows(overdue_days: f64) -> Result<Vec<TableBloatRow>, ErrorReport> {
    let catalog = super::catalog::catalog()?;
    let estimates = cached_estimates(EstimateKind::Table, overdue_days, || compute_table_estimates(overdue_days))?;
    let stats = table_counters()?;
    let mut out: Vec<TableBloatRow> = Vec::with_capacity(estimates.len());
    for r in estimates.iter() {
        let Some(rel) = catalog.rel(r.0.to_u32()) else { continue };
        out.push((
            catalog.namespace_name(rel.namespace).to_string(),
            rel.name.clone(),
            r.2,
            r.3,
            r.4,
            r.5,
            r.6.to_string(),
            r.1.map(|live| live.round_ties_even() as i64),
            stats.get(&rel.oid).map_or(0, |c| c.dead),
            r.7,
            r.0,
        ));
    }
    out.sort_by(|a, b| by_bloat_desc(a.4, b.4).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)));
    Ok(out)
}

pub type IndexBloatRow = (String, String, String, i64, Option<i64>, Option<i64>, Option<f64>, String, pg_sys::Oid);

/// `index_bloat()`'s rows: the B-tree estimates with names, most bloat first.
pub fn index_bloat_rows(overdue_days: f64) -> Result<Vec<IndexBloatRow>, ErrorReport> {
    let catalog = super::catalog::catalog()?;
    let table_of: OidMap<u32> = catalog.indexes.iter().map(|i| (i.oid, i.table)).collect();
    let estimates = cached_estimates(EstimateKind::Index, overdue_days, || compute_index_estimates(overdue_days))?;
    let mut out: Vec<IndexBloatRow> = Vec::with_capacity(estimates.len());
    for r in estimates.iter() {
        let index = r.0.to_u32();
        let (Some(own), Some(table)) = (catalog.rel(index), table_of.get(&index).and_then(|t| catalog.rel(*t))) else {
            continue;
        };
        out.push((
            catalog.namespace_name(table.namespace).to_string(),
            table.name.clone(),
            own.name.clone(),
            r.2,
            r.3,
            r.4,
            r.5,
            r.6.to_string(),
            r.0,
        ));
    }
    out.sort_by(|a, b| by_bloat_desc(a.5, b.5).then_with(|| a.0.cmp(&b.0)).then_with(|| a.2.cmp(&b.2)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_ratio_rounds_like_numeric() {
        assert_eq!(dead_ratio_hundredths(0, 0), 0);
        assert_eq!(dead_ratio_hundredths(5, 0), 0);
        assert_eq!(dead_ratio_hundredths(1, 3), 3333); // 33.333… → 33.33
        assert_eq!(dead_ratio_hundredths(2, 3), 6667); // 66.666… → 66.67
        assert_eq!(dead_ratio_hundredths(1, 800), 13); // 0.125 → 0.13 (half away from zero)
        assert_eq!(dead_ratio_hundredths(3, 1), 30000);
        assert_eq!(dead_ratio_hundredths(i64::MAX, 1), i128::from(i64::MAX) * 10_000);
    }

    #[test]
    fn rounds_days_to_places() {
        assert_eq!(round_to(1.23456, 4), 1.2346);
        assert_eq!(round_to(0.0, 4), 0.0);
    }
}
