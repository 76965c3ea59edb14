//! Health metrics: the parts of CONTRACT §1 that need more than a catalog query.
//!
//! The public functions are SQL (`sql/health.sql`, `sql/report.sql`); the functions here are
//! their building blocks, created in schema `steward` with a leading underscore, EXECUTE
//! revoked from PUBLIC (`sql/finalize.sql`), and called by the SECURITY DEFINER SQL functions.

use pgrx::prelude::*;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::JsonB;

use crate::common::{block_size, SpiContext};

pub mod bloat;
pub mod error;
pub mod indexes;
pub mod report;
pub mod storage;

use bloat::{Column, Confidence};
use error::HealthError;

/// Sizes of every relation of this database, from one scan of its files (no locks taken).
#[pg_extern(name = "_relation_storage", volatile, parallel_unsafe)]
pub fn relation_storage() -> Result<
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
    let sizes = storage::sizes_by_oid().map_err(ErrorReport::from)?;
    let mut rows: Vec<_> = sizes
        .iter()
        .map(|(oid, s)| (pg_sys::Oid::from_u32(*oid), s.main_bytes, s.all_bytes, s.born_epoch))
        .collect();
    rows.sort_by_key(|r| r.0.to_u32());
    Ok(TableIterator::new(rows))
}

/// Columns of the statistics query, in order; shared by the table and index estimators.
struct StatRow {
    oid: u32,
    attlens: Vec<Option<i16>>,
    aligns: Vec<Option<String>>,
    widths: Vec<Option<f64>>,
    nullfracs: Vec<Option<f64>>,
}

impl StatRow {
    /// Columns 1–5 of the statistics queries: oid, attlen[], attalign[], stawidth[], stanullfrac[].
    fn read(row: &pgrx::spi::SpiHeapTupleData<'_>) -> Result<Self, pgrx::spi::SpiError> {
        Ok(StatRow {
            oid: row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0),
            attlens: row.get::<Vec<Option<i16>>>(2)?.unwrap_or_default(),
            aligns: row.get::<Vec<Option<String>>>(3)?.unwrap_or_default(),
            widths: row.get::<Vec<Option<f64>>>(4)?.unwrap_or_default(),
            nullfracs: row.get::<Vec<Option<f64>>>(5)?.unwrap_or_default(),
        })
    }

    fn columns(&self) -> Vec<Column> {
        self.attlens
            .iter()
            .enumerate()
            .map(|(i, len)| Column {
                attlen: len.unwrap_or(-1),
                attalign: self
                    .aligns
                    .get(i)
                    .and_then(|a| a.as_deref())
                    .and_then(|a| a.bytes().next())
                    .unwrap_or(b'i'),
                avg_width: self.widths.get(i).copied().flatten(),
                null_frac: self.nullfracs.get(i).copied().flatten(),
            })
            .collect()
    }

    fn complete(&self) -> bool {
        self.widths.iter().all(Option::is_some) && self.nullfracs.iter().all(Option::is_some)
    }
}

/// Whether the current role can read `pg_statistic` directly.  When it cannot (a managed
/// service where the extension owner is not a superuser), `pg_stats` is used instead, which
/// only shows columns the role may read: the others count as "no statistics".
fn statistic_readable() -> Result<bool, ErrorReport> {
    Spi::get_one::<bool>("SELECT pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT')")
        .ctx("privileges on pg_statistic")
        .map(|b| b.unwrap_or(false))
}

const USER_RELATION_FILTER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'";

fn table_stats_query(direct: bool) -> String {
    let stats_join = if direct {
        "LEFT JOIN pg_catalog.pg_statistic st ON st.starelid = c.oid AND st.staattnum = a.attnum AND NOT st.stainherit"
    } else {
        "LEFT JOIN (SELECT schemaname, tablename, attname, avg_width AS stawidth, null_frac AS stanullfrac \
                    FROM pg_catalog.pg_stats WHERE NOT inherited) st \
           ON st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname"
    };
    [
        "SELECT c.oid,
                array_agg(a.attlen ORDER BY a.attnum) AS attlens,
                array_agg(a.attalign::text ORDER BY a.attnum) AS aligns,
                array_agg(st.stawidth::float8 ORDER BY a.attnum) AS widths,
                array_agg(st.stanullfrac::float8 ORDER BY a.attnum) AS nullfracs,
                c.reltuples::float8 AS reltuples,
                pg_catalog.pg_stat_get_live_tuples(c.oid)::float8 AS n_live,
                pg_catalog.pg_stat_get_dead_tuples(c.oid)::float8 AS n_dead,
                pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8 AS n_mod,
                extract(epoch FROM now() - greatest(pg_catalog.pg_stat_get_last_analyze_time(c.oid),
                                                    pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)))::float8 / 86400 AS analyze_age_days,
                coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
                          WHERE o.option_name = 'fillfactor'), '100')::float8 AS fillfactor
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           ",
        stats_join,
        "
          WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ",
        USER_RELATION_FILTER,
        "
          GROUP BY c.oid",
    ]
    .concat()
}

fn index_stats_query(direct: bool) -> String {
    let stats_join = if direct {
        "LEFT JOIN pg_catalog.pg_statistic st_t ON i.indkey[ia.attnum - 1] <> 0 AND st_t.starelid = i.indrelid
                  AND st_t.staattnum = i.indkey[ia.attnum - 1] AND NOT st_t.stainherit
         LEFT JOIN pg_catalog.pg_statistic st_i ON i.indkey[ia.attnum - 1] = 0 AND st_i.starelid = i.indexrelid
                  AND st_i.staattnum = ia.attnum AND NOT st_i.stainherit"
    } else {
        "LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum - 1]
         LEFT JOIN (SELECT schemaname, tablename, attname, avg_width AS stawidth, null_frac AS stanullfrac
                      FROM pg_catalog.pg_stats WHERE NOT inherited) st_t
                ON i.indkey[ia.attnum - 1] <> 0 AND st_t.schemaname = n.nspname AND st_t.tablename = tc.relname
               AND st_t.attname = ta.attname
         LEFT JOIN (SELECT NULL::int AS stawidth, NULL::real AS stanullfrac) st_i ON false"
    };
    [
        "SELECT i.indexrelid,
                array_agg(ia.attlen ORDER BY ia.attnum) AS attlens,
                array_agg(ia.attalign::text ORDER BY ia.attnum) AS aligns,
                array_agg(coalesce(st_t.stawidth, st_i.stawidth)::float8 ORDER BY ia.attnum) AS widths,
                array_agg(coalesce(st_t.stanullfrac, st_i.stanullfrac)::float8 ORDER BY ia.attnum) AS nullfracs,
                min(ic.reltuples)::float8 AS idx_reltuples,
                min(tc.reltuples)::float8 AS tbl_reltuples,
                min(pg_catalog.pg_stat_get_live_tuples(tc.oid))::float8 AS n_live,
                min(pg_catalog.pg_stat_get_dead_tuples(tc.oid))::float8 AS n_dead,
                min(pg_catalog.pg_stat_get_mod_since_analyze(tc.oid))::float8 AS n_mod,
                min(extract(epoch FROM now() - greatest(pg_catalog.pg_stat_get_last_analyze_time(tc.oid),
                              pg_catalog.pg_stat_get_last_autoanalyze_time(tc.oid))))::float8 / 86400 AS analyze_age_days,
                min(coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                              WHERE o.option_name = 'fillfactor'), '90'))::float8 AS fillfactor
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
           JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
           JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum > 0
           ",
        stats_join,
        "
          WHERE ic.relpersistence <> 't' AND tc.relkind IN ('r', 'm') AND ",
        USER_RELATION_FILTER,
        "
          GROUP BY i.indexrelid",
    ]
    .concat()
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
    String,
    Option<f64>,
);

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn to_row(oid: u32, live: Option<f64>, actual: i64, est: Option<bloat::Estimate>, conf: Confidence) -> BloatRow {
    let known = if conf == Confidence::Unknown { None } else { est };
    (
        pg_sys::Oid::from_u32(oid),
        live,
        actual,
        known.map(|e| e.expected_bytes as i64),
        known.map(|e| e.bloat_bytes as i64),
        known.map(|e| round2(e.bloat_pct)),
        conf.as_str().to_string(),
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
    let sizes = storage::sizes_by_oid().map_err(ErrorReport::from)?;
    let query = table_stats_query(statistic_readable()?);
    let block = block_size() as f64;
    let rows = Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(query.as_str(), None, &[])? {
            let stats = StatRow::read(&row)?;
            let reltuples = row.get::<f64>(6)?.unwrap_or(-1.0);
            let n_live = row.get::<f64>(7)?.unwrap_or(0.0);
            let n_dead = row.get::<f64>(8)?.unwrap_or(0.0);
            let n_mod = row.get::<f64>(9)?.unwrap_or(0.0);
            let age = row.get::<f64>(10)?;
            let fillfactor = row.get::<f64>(11)?.unwrap_or(100.0);

            let actual = sizes.get(&stats.oid).map(|s| s.main_bytes).unwrap_or(0);
            let live = live_tuples(n_live, n_dead, reltuples);
            let columns = stats.columns();
            let (est, conf) = match live {
                _ if actual == 0 => (
                    Some(bloat::Estimate { expected_bytes: 0.0, bloat_bytes: 0.0, bloat_pct: 0.0, tuple_width: 0.0 }),
                    Confidence::Fresh,
                ),
                None => (None, Confidence::Unknown),
                Some(live) => (
                    bloat::heap_estimate(&columns, live, actual as f64, fillfactor, block),
                    bloat::confidence(stats.complete(), age, n_mod, live, overdue_days),
                ),
            };
            out.push(to_row(stats.oid, live, actual, est, conf));
        }
        Ok(out)
    })
    .ctx("table statistics")?;
    Ok(TableIterator::new(rows))
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
    let sizes = storage::sizes_by_oid().map_err(ErrorReport::from)?;
    let query = index_stats_query(statistic_readable()?);
    let block = block_size() as f64;
    let rows = Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(query.as_str(), None, &[])? {
            let stats = StatRow::read(&row)?;
            let idx_reltuples = row.get::<f64>(6)?.unwrap_or(-1.0);
            let tbl_reltuples = row.get::<f64>(7)?.unwrap_or(-1.0);
            let n_live = row.get::<f64>(8)?.unwrap_or(0.0);
            let n_dead = row.get::<f64>(9)?.unwrap_or(0.0);
            let n_mod = row.get::<f64>(10)?.unwrap_or(0.0);
            let age = row.get::<f64>(11)?;
            let fillfactor = row.get::<f64>(12)?.unwrap_or(90.0);

            let actual = sizes.get(&stats.oid).map(|s| s.main_bytes).unwrap_or(0);
            // The index's own count (partial indexes hold fewer rows), scaled by the table's
            // count relative to its reltuples: a factor of 1 whenever the table was measured
            // (live_tuples then returns reltuples), so it only matters for an unmeasured table.
            let table_live = live_tuples(n_live, n_dead, tbl_reltuples);
            let tuples = match (table_live, idx_reltuples, tbl_reltuples) {
                (Some(live), i, t) if i >= 0.0 && t > 0.0 => Some(i * live / t),
                (Some(live), i, _) if i < 0.0 => Some(live),
                (_, i, _) if i >= 0.0 => Some(i),
                _ => None,
            };
            let columns = stats.columns();
            let (est, conf) = match tuples {
                None => (None, Confidence::Unknown),
                Some(t) => (
                    bloat::btree_estimate(&columns, t, actual as f64, fillfactor, block),
                    bloat::confidence(stats.complete(), age, n_mod, table_live.unwrap_or(t), overdue_days),
                ),
            };
            out.push(to_row(stats.oid, tuples, actual, est, conf));
        }
        Ok(out)
    })
    .ctx("index statistics")?;
    Ok(TableIterator::new(rows))
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
    Ok(TableIterator::once((est.expected_bytes as i64, est.bloat_bytes as i64, round2(est.bloat_pct))))
}

/// Duplicate and prefix-covered (redundant) indexes; see `indexes.rs` for the rules.
#[pg_extern(name = "_index_redundancy", volatile, parallel_unsafe)]
pub fn index_redundancy() -> Result<
    TableIterator<'static, (name!(indexrelid, pg_sys::Oid), name!(kind, String), name!(covered_by, pg_sys::Oid))>,
    ErrorReport,
> {
    let query = [
        "SELECT i.indexrelid, i.indrelid, ic.relam, am.amname = 'btree', i.indnkeyatts::int,
                i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[], i.indoption::int2[],
                CASE WHEN i.indexprs IS NOT NULL THEN pg_catalog.pg_get_expr(i.indexprs, i.indrelid) END,
                CASE WHEN i.indpred IS NOT NULL THEN pg_catalog.pg_get_expr(i.indpred, i.indrelid) END,
                i.indisprimary OR i.indisunique OR i.indisexclusion
                  OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid),
                i.indisvalid AND i.indisready
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_am am ON am.oid = ic.relam
           JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
          WHERE ",
        USER_RELATION_FILTER,
    ]
    .concat();
    let defs = Spi::connect(|client| {
        let mut defs = Vec::new();
        for row in client.select(query.as_str(), None, &[])? {
            let nkey = row.get::<i32>(5)?.unwrap_or(0).max(0) as usize;
            let all: Vec<i16> = row.get::<Vec<Option<i16>>>(6)?.unwrap_or_default().into_iter().map(|k| k.unwrap_or(0)).collect();
            let split = nkey.min(all.len());
            defs.push(indexes::IndexDef {
                oid: row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0),
                table: row.get::<pg_sys::Oid>(2)?.map(|o| o.to_u32()).unwrap_or(0),
                am: row.get::<pg_sys::Oid>(3)?.map(|o| o.to_u32()).unwrap_or(0),
                is_btree: row.get::<bool>(4)?.unwrap_or(false),
                keys: all[..split].to_vec(),
                includes: all[split..].to_vec(),
                opclasses: row.get::<Vec<Option<pg_sys::Oid>>>(7)?.unwrap_or_default().into_iter().map(|o| o.map(|o| o.to_u32()).unwrap_or(0)).collect(),
                collations: row.get::<Vec<Option<pg_sys::Oid>>>(8)?.unwrap_or_default().into_iter().map(|o| o.map(|o| o.to_u32()).unwrap_or(0)).collect(),
                options: row.get::<Vec<Option<i16>>>(9)?.unwrap_or_default().into_iter().map(|o| o.unwrap_or(0)).collect(),
                exprs: row.get::<String>(10)?,
                pred: row.get::<String>(11)?,
                enforces: row.get::<bool>(12)?.unwrap_or(true),
                valid: row.get::<bool>(13)?.unwrap_or(false),
            });
        }
        Ok(defs)
    })
    .ctx("index definitions")?;
    let rows: Vec<_> = indexes::find_redundant(&defs)
        .into_iter()
        .map(|f| (pg_sys::Oid::from_u32(f.index), f.kind.as_str().to_string(), pg_sys::Oid::from_u32(f.kept)))
        .collect();
    Ok(TableIterator::new(rows))
}

/// Recommendations (CONTRACT §1 rules plus one per finding) for a report document.
#[pg_extern(name = "_report_recommendations", immutable, parallel_safe)]
pub fn report_recommendations(report: JsonB) -> Result<JsonB, ErrorReport> {
    report::recommendations(&report.0).map(JsonB).map_err(ErrorReport::from)
}

/// A report document as aligned, readable text.
#[pg_extern(name = "_render_report_text", immutable, parallel_safe)]
pub fn render_report_text(report: JsonB) -> Result<String, ErrorReport> {
    report::render_text(&report.0).map_err(ErrorReport::from)
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "health_test.rs"]
mod health_test;
