//! Health metrics: the parts of CONTRACT §1 that need more than a catalog query.
//!
//! The public functions are SQL (`sql/health.sql`, `sql/report.sql`); the functions here are
//! their building blocks, created in schema `steward` with a leading underscore, EXECUTE
//! revoked from PUBLIC (`sql/finalize.sql`), and called by the SECURITY DEFINER SQL functions.

use pgrx::prelude::*;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::common::{block_size, SpiContext};

pub mod bloat;
pub mod catalog;
pub mod error;
pub mod indexes;
pub mod report;
pub mod rows;
pub mod stats;
pub mod storage;

use bloat::Confidence;
use error::HealthError;

/// Sizes of every relation of this database, from one scan of its files (no locks taken).
/// `heap`, `toast` and `index` choose which relations to size (fewer is faster).
#[pg_extern(name = "_relation_storage", volatile, parallel_unsafe)]
pub fn relation_storage(
    heap: default!(bool, true),
    toast: default!(bool, true),
    index: default!(bool, true),
) -> Result<
    TableIterator<
        'static,
        (
            name!(relid, pg_sys::Oid),
            name!(main_bytes, i64),
            name!(total_bytes, i64),
            name!(born_epoch, Option<f64>),
        ),
    >,
    ErrorReport,
> {
    let parts = (if heap { storage::HEAP } else { 0 })
        | (if toast { storage::TOAST } else { 0 })
        | (if index { storage::INDEX } else { 0 });
    let snapshot = storage::snapshot(parts).map_err(ErrorReport::from)?;
    let mut rows: Vec<_> = snapshot
        .by_oid
        .iter()
        .map(|(oid, s)| (pg_sys::Oid::from_u32(*oid), s.main_bytes, s.all_bytes, s.born_epoch))
        .collect();
    rows.sort_by_key(|r| r.0.to_u32());
    Ok(TableIterator::new(rows))
}

/// Starts the per-statement scan of every file of this database on a helper thread (see
/// `storage::prefetch`); the next health function of the statement uses its result.
#[pg_extern(name = "_storage_prefetch", volatile, parallel_unsafe)]
pub fn storage_prefetch() {
    storage::prefetch(storage::EVERYTHING);
}

/// Bytes of this database on disk, from the same per-statement scan as `_relation_storage`.
#[pg_extern(name = "_database_bytes", volatile, parallel_unsafe)]
pub fn database_bytes() -> Result<i64, ErrorReport> {
    Ok(storage::snapshot(storage::EVERYTHING).map_err(ErrorReport::from)?.database_bytes)
}

/// The live-tuple count to measure against: `reltuples`, which the last VACUUM or ANALYZE
/// measured together with the column widths the model uses; when the table was never
/// measured, the cumulative statistics' count if it has counted anything; else unknown.
/// (The cumulative count is not preferred: ANALYZE stores an absolute figure and a backend's
/// delayed flush of earlier inserts can land on top of it, doubling it.  Changes since the
/// measurement are what `confidence` reports as `stale`.)
fn live_tuples(n_live: f64, n_dead: f64, reltuples: f64) -> Option<f64> {
    if reltuples >= 0.0 {
        Some(reltuples)
    } else if n_live > 0.0 || n_dead > 0.0 {
        Some(n_live)
    } else {
        None
    }
}

type BloatRow = (
    pg_sys::Oid,
    Option<f64>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    &'static str,
    Option<f64>,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EstimateKind {
    Table,
    Index,
}

thread_local! {
    /// Estimates computed during the current client statement, so a report that asks for
    /// table health, index health and bloat lists reads the statistics once.
    static ESTIMATES: RefCell<(storage::CacheKey, HashMap<(EstimateKind, u64), Rc<Vec<BloatRow>>>)> =
        RefCell::new(((0, 0), HashMap::new()));
}

fn cached_estimates(
    kind: EstimateKind,
    overdue_days: f64,
    compute: impl FnOnce() -> Result<Vec<BloatRow>, ErrorReport>,
) -> Result<Rc<Vec<BloatRow>>, ErrorReport> {
    let stamp = storage::statement_stamp();
    let key = (kind, overdue_days.to_bits());
    let hit = ESTIMATES.with(|c| {
        let c = c.borrow();
        if c.0 == stamp { c.1.get(&key).cloned() } else { None }
    });
    if let Some(rows) = hit {
        return Ok(rows);
    }
    let rows = Rc::new(compute()?);
    ESTIMATES.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != stamp {
            *c = (stamp, HashMap::new());
        }
        c.1.insert(key, Rc::clone(&rows));
    });
    Ok(rows)
}

/// `v` rounded to `places` decimal places.
pub(crate) fn round_to(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

fn to_row(oid: u32, live: Option<f64>, actual: i64, est: Option<bloat::Estimate>, conf: Confidence) -> BloatRow {
    let known = if conf == Confidence::Unknown { None } else { est };
    (
        pg_sys::Oid::from_u32(oid),
        live,
        actual,
        known.map(|e| e.expected_bytes as i64),
        known.map(|e| e.bloat_bytes as i64),
        known.map(|e| round_to(e.bloat_pct, 2)),
        conf.as_str(),
        est.map(|e| e.tuple_width),
    )
}

/// Heap bloat of every user table, estimated from planner statistics.
/// `bloat_pct` is NULL when `confidence` is `unknown`: never a confident wrong number.
#[pg_extern(name = "_table_bloat_estimates", volatile, parallel_unsafe)]
pub fn table_bloat_estimates(
    overdue_days: default!(f64, 7.0),
) -> Result<
    TableIterator<
        'static,
        (
            name!(relid, pg_sys::Oid),
            name!(live_tuples, Option<f64>),
            name!(actual_bytes, i64),
            name!(expected_bytes, Option<i64>),
            name!(bloat_bytes, Option<i64>),
            name!(bloat_pct, Option<f64>),
            name!(confidence, String),
            name!(tuple_width, Option<f64>),
        ),
    >,
    ErrorReport,
> {
    let rows = cached_estimates(EstimateKind::Table, overdue_days, || compute_table_estimates(overdue_days))?;
    Ok(TableIterator::new(rows.iter().map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6.to_string(), r.7)).collect::<Vec<_>>()))
}

fn compute_table_estimates(overdue_days: f64) -> Result<Vec<BloatRow>, ErrorReport> {
    // The files are looked at on a helper thread while the statistics are read.
    storage::prefetch(storage::HEAP | storage::MAIN_ONLY);
    let tables = stats::tables()?;
    let snapshot = storage::snapshot(storage::HEAP | storage::MAIN_ONLY).map_err(ErrorReport::from)?;
    let block = block_size() as f64;
    let mut out = Vec::with_capacity(tables.len());
    for (oid, t) in tables.iter() {
        let actual = snapshot.by_oid.get(oid).map(|s| s.main_bytes).unwrap_or(0);
        let live = live_tuples(t.n_live, t.n_dead, t.reltuples);
        let (est, conf) = match live {
            _ if actual == 0 => (
                Some(bloat::Estimate { expected_bytes: 0.0, bloat_bytes: 0.0, bloat_pct: 0.0, tuple_width: 0.0 }),
                Confidence::Fresh,
            ),
            None => (None, Confidence::Unknown),
            Some(live) => (
                bloat::heap_estimate(&t.columns.columns, live, actual as f64, t.fillfactor, block),
                bloat::confidence(t.columns.complete, t.analyze_age_days, t.n_mod, live, overdue_days),
            ),
        };
        out.push(to_row(*oid, live, actual, est, conf));
    }
    out.sort_by_key(|r| r.0.to_u32());
    Ok(out)
}

/// B-tree bloat of every index on a user table, estimated from planner statistics of the
/// indexed columns (and of index expressions, which ANALYZE also samples).
#[pg_extern(name = "_index_bloat_estimates", volatile, parallel_unsafe)]
pub fn index_bloat_estimates(
    overdue_days: default!(f64, 7.0),
) -> Result<
    TableIterator<
        'static,
        (
            name!(indexrelid, pg_sys::Oid),
            name!(tuples, Option<f64>),
            name!(actual_bytes, i64),
            name!(expected_bytes, Option<i64>),
            name!(bloat_bytes, Option<i64>),
            name!(bloat_pct, Option<f64>),
            name!(confidence, String),
            name!(tuple_width, Option<f64>),
        ),
    >,
    ErrorReport,
> {
    let rows = cached_estimates(EstimateKind::Index, overdue_days, || compute_index_estimates(overdue_days))?;
    Ok(TableIterator::new(rows.iter().map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6.to_string(), r.7)).collect::<Vec<_>>()))
}

fn compute_index_estimates(overdue_days: f64) -> Result<Vec<BloatRow>, ErrorReport> {
    // The files are looked at on a helper thread while the statistics are read.
    storage::prefetch(storage::INDEX | storage::MAIN_ONLY);
    let tables = stats::tables()?;
    let btrees = stats::btrees(&tables)?;
    let snapshot = storage::snapshot(storage::INDEX | storage::MAIN_ONLY).map_err(ErrorReport::from)?;
    let block = block_size() as f64;
    let no_table = stats::TableFacts { reltuples: -1.0, ..stats::TableFacts::default() };
    let mut out = Vec::new();
    for idx in btrees.iter() {
        let actual = snapshot.by_oid.get(&idx.oid).map(|s| s.main_bytes).unwrap_or(0);
        let table = tables.get(&idx.table).unwrap_or(&no_table);
        // The index's own count (partial indexes hold fewer rows), scaled by the table's
        // count relative to its reltuples: a factor of 1 whenever the table was measured
        // (live_tuples then returns reltuples), so it only matters for an unmeasured table.
        let table_live = live_tuples(table.n_live, table.n_dead, table.reltuples);
        let tuples = match (table_live, idx.reltuples, table.reltuples) {
            (Some(live), i, t) if i >= 0.0 && t > 0.0 => Some(i * live / t),
            (Some(live), i, _) if i < 0.0 => Some(live),
            (_, i, _) if i >= 0.0 => Some(i),
            _ => None,
        };
        let (est, conf) = match tuples {
            None => (None, Confidence::Unknown),
            Some(t) => (
                bloat::btree_estimate(&idx.columns.columns, t, actual as f64, idx.fillfactor, block),
                bloat::confidence(idx.columns.complete, table.analyze_age_days, table.n_mod, table_live.unwrap_or(t), overdue_days),
            ),
        };
        out.push(to_row(idx.oid, tuples, actual, est, conf));
    }
    out.sort_by_key(|r| r.0.to_u32());
    Ok(out)
}

/// The rows of `table_health()`, largest first (see `rows.rs`).  The cut-offs are `now()`
/// minus the overdue intervals; NULL means "never overdue".
#[pg_extern(name = "_table_rows", volatile, parallel_unsafe)]
pub fn table_rows(
    dead_ratio_threshold: f64,
    analyze_cutoff: Option<TimestampWithTimeZone>,
    vacuum_cutoff: Option<TimestampWithTimeZone>,
    analyze_days: f64,
) -> Result<
    TableIterator<
        'static,
        (
            name!(schemaname, String),
            name!(relname, String),
            name!(n_live_tup, i64),
            name!(n_dead_tup, i64),
            name!(table_size, i64),
            name!(last_vacuum, Option<TimestampWithTimeZone>),
            name!(last_autovacuum, Option<TimestampWithTimeZone>),
            name!(last_analyze, Option<TimestampWithTimeZone>),
            name!(last_autoanalyze, Option<TimestampWithTimeZone>),
            name!(vacuum_count, i64),
            name!(autovacuum_count, i64),
            name!(analyze_count, i64),
            name!(autoanalyze_count, i64),
            name!(bloat_pct, Option<f64>),
            name!(relid, pg_sys::Oid),
            name!(heap_size, i64),
            name!(toast_size, i64),
            name!(indexes_size, i64),
            name!(dead_tuple_ratio, f64),
            name!(needs_vacuum, bool),
            name!(needs_analyze, bool),
            name!(vacuum_overdue, bool),
            name!(bloat_confidence, &'static str),
            name!(bloat_bytes, Option<i64>),
            name!(n_mod_since_analyze, i64),
            name!(last_vacuum_any, Option<TimestampWithTimeZone>),
            name!(last_analyze_any, Option<TimestampWithTimeZone>),
        ),
    >,
    ErrorReport,
> {
    let raw = |t: Option<TimestampWithTimeZone>| t.map(pg_sys::TimestampTz::from);
    Ok(TableIterator::new(rows::table_rows(dead_ratio_threshold, raw(analyze_cutoff), raw(vacuum_cutoff), analyze_days)?))
}

/// The rows of `index_health()` (with `bloat`) and of `unused_indexes()` (without: the
/// bloat columns are then NULL), largest first (see `rows.rs`).
#[pg_extern(name = "_index_rows", volatile, parallel_unsafe)]
pub fn index_rows(
    bloat: bool,
    unused_days: f64,
    overdue_days: f64,
) -> Result<
    TableIterator<
        'static,
        (
            name!(schemaname, String),
            name!(relname, String),
            name!(indexrelname, String),
            name!(index_size, i64),
            name!(idx_scan, i64),
            name!(idx_tup_read, i64),
            name!(idx_tup_fetch, i64),
            name!(days_since_last_use, Option<f64>),
            name!(bloat_pct, Option<f64>),
            name!(indexrelid, pg_sys::Oid),
            name!(relid, pg_sys::Oid),
            name!(index_type, String),
            name!(is_unique, bool),
            name!(is_primary, bool),
            name!(enforces_constraint, bool),
            name!(is_valid, bool),
            name!(is_unused, bool),
            name!(bloat_confidence, Option<&'static str>),
            name!(bloat_bytes, Option<i64>),
        ),
    >,
    ErrorReport,
> {
    Ok(TableIterator::new(rows::index_rows(bloat, unused_days, overdue_days)?))
}

/// The rows of `table_bloat()`, most bloat first (see `rows.rs`).
#[pg_extern(name = "_table_bloat_rows", volatile, parallel_unsafe)]
pub fn table_bloat_rows(
    overdue_days: f64,
) -> Result<
    TableIterator<
        'static,
        (
            name!(schemaname, String),
            name!(tablename, String),
            name!(actual_size_bytes, i64),
            name!(estimated_size_bytes, Option<i64>),
            name!(bloat_bytes, Option<i64>),
            name!(bloat_pct, Option<f64>),
            name!(confidence, String),
            name!(live_tuples, Option<i64>),
            name!(dead_tuples, i64),
            name!(tuple_width, Option<f64>),
            name!(relid, pg_sys::Oid),
        ),
    >,
    ErrorReport,
> {
    Ok(TableIterator::new(rows::table_bloat_rows(overdue_days)?))
}

/// The rows of `index_bloat()`, most bloat first (see `rows.rs`).
#[pg_extern(name = "_index_bloat_rows", volatile, parallel_unsafe)]
pub fn index_bloat_rows(
    overdue_days: f64,
) -> Result<
    TableIterator<
        'static,
        (
            name!(schemaname, String),
            name!(tablename, String),
            name!(indexname, String),
            name!(actual_size_bytes, i64),
            name!(estimated_size_bytes, Option<i64>),
            name!(bloat_bytes, Option<i64>),
            name!(bloat_pct, Option<f64>),
            name!(confidence, String),
            name!(indexrelid, pg_sys::Oid),
        ),
    >,
    ErrorReport,
> {
    Ok(TableIterator::new(rows::index_bloat_rows(overdue_days)?))
}

/// Heap bloat from exact tuple figures (pgstattuple's `table_len`, `tuple_count`,
/// `tuple_len`), with the same page model as the estimate so the two compare directly.
#[pg_extern(name = "_heap_bloat_from_tuples", immutable, parallel_safe)]
pub fn heap_bloat_from_tuples(
    table_len: i64,
    tuple_count: i64,
    tuple_len: i64,
    fillfactor: default!(i32, 100),
) -> Result<TableIterator<'static, (name!(expected_bytes, i64), name!(bloat_bytes, i64), name!(bloat_pct, f64))>, ErrorReport>
{
    if table_len < 0 || tuple_count < 0 || tuple_len < 0 {
        return Err(HealthError::InvalidArgument {
            name: "table_len/tuple_count/tuple_len",
            problem: "must not be negative".into(),
        }
        .into());
    }
    if !(10..=100).contains(&fillfactor) {
        return Err(HealthError::InvalidArgument { name: "fillfactor", problem: format!("{fillfactor} is outside 10..100") }.into());
    }
    let avg = if tuple_count > 0 { tuple_len as f64 / tuple_count as f64 } else { 0.0 };
    // Lengths vary when the average is not a whole number of bytes.
    let varying = tuple_count > 0 && tuple_len % tuple_count != 0;
    let width = bloat::pad_tuple(avg, varying);
    let est = bloat::heap_estimate_from_width(width, tuple_count as f64, table_len as f64, fillfactor as f64, block_size() as f64);
    Ok(TableIterator::once((est.expected_bytes as i64, est.bloat_bytes as i64, round_to(est.bloat_pct, 2))))
}

/// Duplicate and prefix-covered (redundant) indexes; see `indexes.rs` for the rules.
#[pg_extern(name = "_index_redundancy", volatile, parallel_unsafe)]
pub fn index_redundancy() -> Result<
    TableIterator<'static, (name!(indexrelid, pg_sys::Oid), name!(kind, String), name!(covered_by, pg_sys::Oid))>,
    ErrorReport,
> {
    let catalog = catalog::catalog()?;
    let backing = catalog::constraint_indexes();
    // Expressions and predicates as text (pg_get_expr), for the few indexes that have them.
    let any_text = catalog.indexes.iter().any(|i| i.has_exprs || i.has_pred);
    let texts: HashMap<u32, (Option<String>, Option<String>)> = Spi::connect(|client| {
        let mut texts = HashMap::new();
        if !any_text {
            return Ok(texts);
        }
        for row in client.select(
            "SELECT i.indexrelid,
                    CASE WHEN i.indexprs IS NOT NULL THEN pg_catalog.pg_get_expr(i.indexprs, i.indrelid) END,
                    CASE WHEN i.indpred IS NOT NULL THEN pg_catalog.pg_get_expr(i.indpred, i.indrelid) END
               FROM pg_catalog.pg_index i
              WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL",
            None,
            &[],
        )? {
            let oid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
            texts.insert(oid, (row.get::<String>(2)?, row.get::<String>(3)?));
        }
        Ok(texts)
    })
    .ctx("index expressions")?;
    let defs: Vec<indexes::IndexDef> = catalog
        .indexes
        .iter()
        .filter_map(|i| {
            let own = catalog.rel(i.oid)?;
            let table = catalog.rel(i.table)?;
            if !catalog.is_user_persistent_namespace(table.namespace) {
                return None;
            }
            let split = i.nkeyatts.min(i.keys.len());
            let (exprs, pred) = texts.get(&i.oid).cloned().unwrap_or((None, None));
            Some(indexes::IndexDef {
                oid: i.oid,
                table: i.table,
                am: own.am,
                is_btree: own.am == catalog::BTREE_AM,
                keys: i.keys[..split].to_vec(),
                includes: i.keys[split..].to_vec(),
                opclasses: i.opclasses.clone(),
                collations: i.collations.clone(),
                options: i.options.clone(),
                exprs,
                pred,
                enforces: i.primary || i.unique || i.exclusion || backing.contains(&i.oid),
                valid: i.valid && i.ready,
            })
        })
        .collect();
    let rows: Vec<_> = indexes::find_redundant(&defs)
        .into_iter()
        .map(|f| (pg_sys::Oid::from_u32(f.index), f.kind.as_str().to_string(), pg_sys::Oid::from_u32(f.kept)))
        .collect();
    Ok(TableIterator::new(rows))
}

/// A report document as aligned, readable text.
#[pg_extern(name = "_render_report_text", immutable, parallel_safe)]
pub fn render_report_text(report: JsonB) -> Result<String, ErrorReport> {
    report::render_text(&report.0).map_err(ErrorReport::from)
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "health_test.rs"]
mod health_test;
