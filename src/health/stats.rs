//! Reading planner statistics for the bloat estimators.
//!
//! On a catalog of 10 000 tables the cost is in the catalog queries and in moving rows
//! through SPI, so the shape of the reads matters more than the arithmetic:
//! * one flat row per table column (no aggregated arrays), grouped here;
//! * one row per table with its counters (`pg_stat_get_*` once per table, not per index);
//! * one row per B-tree with its key attribute numbers: key columns take the width, null
//!   fraction and storage of the table column they store, so indexes need no per-column
//!   catalog join; only expression columns read the index's own attributes and statistics.
//!
//! Everything is cached for the current client statement (see `storage::statement_stamp`),
//! so a report that needs table and index estimates reads the table statistics once.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};

use super::bloat::Column;
use super::catalog;
use super::rows::table_counters;
use super::storage::statement_stamp;
use crate::common::SpiContext;

/// The columns of one relation, in attribute order, with their attribute numbers.
#[derive(Debug, Default, Clone)]
pub struct ColumnSet {
    pub attnums: Vec<i16>,
    pub columns: Vec<Column>,
    /// Every column has a width and a null fraction.
    pub complete: bool,
}

impl ColumnSet {
    pub fn by_attnum(&self, attnum: i16) -> Option<Column> {
        self.attnums.binary_search(&attnum).ok().and_then(|i| self.columns.get(i).copied())
    }
}

/// One user table as the estimators see it.
#[derive(Debug, Default, Clone)]
pub struct TableFacts {
    pub reltuples: f64,
    pub n_live: f64,
    pub n_dead: f64,
    pub n_mod: f64,
    /// Days since the last ANALYZE (manual or auto); `None` when never analysed.
    pub analyze_age_days: Option<f64>,
    pub fillfactor: f64,
    /// Shared with the per-backend cache of column sets (see `column_sets`).
    pub columns: Rc<ColumnSet>,
}

/// One B-tree on a user table.
#[derive(Debug, Clone)]
pub struct BtreeFacts {
    pub oid: u32,
    pub table: u32,
    pub reltuples: f64,
    pub fillfactor: f64,
    /// The index's columns (key and INCLUDE), resolved to widths; `complete` is false when
    /// any of them lacks statistics.
    pub columns: ColumnSet,
}

/// Whether the current role can read `pg_statistic` directly.  When it cannot (a managed
/// service where the extension owner is not a superuser), `pg_stats` is used instead, which
/// only shows columns the role may read: the others count as "no statistics".
fn statistic_readable() -> Result<bool, ErrorReport> {
    crate::common::read_one::<bool>("SELECT pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT')", &[])
        .ctx("privileges on pg_statistic")
        .map(|b| b.unwrap_or(false))
}

pub const USER_RELATION_FILTER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'";

/// Reads rows of (relid, attnum, attlen, attalign, stawidth, stanullfrac), ordered by relid
/// and attnum, into one column set per relation.
fn load_columns(client: &SpiClient<'_>, query: &str) -> Result<catalog::OidMap<ColumnSet>, SpiError> {
    let mut sets: catalog::OidMap<ColumnSet> = catalog::OidMap::default();
    let mut current: Option<(u32, ColumnSet)> = None;
    for row in client.select(query, None, &[])? {
        let relid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
        let attnum = row.get::<i16>(2)?.unwrap_or(0);
        let avg_width = row.get::<f64>(5)?;
        let null_frac = row.get::<f64>(6)?;
        let column = Column {
            attlen: row.get::<i16>(3)?.unwrap_or(-1),
            attalign: row.get::<i8>(4)?.map(|c| c as u8).unwrap_or(b'i'),
            avg_width,
            null_frac,
        };
        let known = avg_width.is_some() && null_frac.is_some();
        match current.as_mut() {
            Some((id, set)) if *id == relid => {
                set.attnums.push(attnum);
                set.columns.push(column);
                set.complete &= known;
            }
            _ => {
                if let Some((id, set)) = current.take() {
                    sets.insert(id, set);
                }
                current = Some((relid, ColumnSet { attnums: vec![attnum], columns: vec![column], complete: known }));
            }
        }
    }
    if let Some((id, set)) = current.take() {
        sets.insert(id, set);
    }
    Ok(sets)
}

fn table_columns_query(direct: bool) -> String {
    let stats_join = if direct {
        "LEFT JOIN pg_catalog.pg_statistic st ON st.starelid = a.attrelid AND st.staattnum = a.attnum AND NOT st.stainherit"
    } else {
        "LEFT JOIN (SELECT schemaname, tablename, attname, avg_width AS stawidth, null_frac AS stanullfrac \
                    FROM pg_catalog.pg_stats WHERE NOT inherited) st \
           ON st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname"
    };
    [
        "SELECT a.attrelid, a.attnum, a.attlen, a.attalign, st.stawidth::float8, st.stanullfrac::float8
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           ",
        stats_join,
        "
          WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ",
        USER_RELATION_FILTER,
        "
          ORDER BY a.attrelid, a.attnum",
    ]
    .concat()
}

fn tables_query() -> String {
    [
        "SELECT c.oid, c.reltuples::float8,
                pg_catalog.pg_stat_get_live_tuples(c.oid)::float8,
                pg_catalog.pg_stat_get_dead_tuples(c.oid)::float8,
                pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8,
                extract(epoch FROM now() - greatest(pg_catalog.pg_stat_get_last_analyze_time(c.oid),
                                                    pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)))::float8 / 86400,
                coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
                          WHERE o.option_name = 'fillfactor'), '100')::float8
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ",
        USER_RELATION_FILTER,
    ]
    .concat()
}

const USER_BTREES: &str = "FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
          WHERE ic.relam = 403 AND ic.relpersistence <> 't' AND tc.relkind IN ('r', 'm') AND ";

fn btrees_query() -> String {
    [
        "SELECT i.indexrelid, i.indrelid, i.indkey::int2[], ic.reltuples::float8,
                coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                          WHERE o.option_name = 'fillfactor'), '90')::float8
           ",
        USER_BTREES,
        USER_RELATION_FILTER,
    ]
    .concat()
}

/// The attributes of expression indexes, with the statistics ANALYZE gathers for them.
fn expression_columns_query(direct: bool) -> String {
    let stats_join = if direct {
        "LEFT JOIN pg_catalog.pg_statistic st ON st.starelid = ia.attrelid AND st.staattnum = ia.attnum AND NOT st.stainherit"
    } else {
        "LEFT JOIN (SELECT schemaname, tablename, attname, avg_width AS stawidth, null_frac AS stanullfrac \
                    FROM pg_catalog.pg_stats WHERE NOT inherited) st \
           ON st.schemaname = n.nspname AND st.tablename = ic.relname AND st.attname = ia.attname"
    };
    [
        "SELECT ia.attrelid, ia.attnum, ia.attlen, ia.attalign, st.stawidth::float8, st.stanullfrac::float8
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
           JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum > 0
           ",
        stats_join,
        "
          WHERE i.indexprs IS NOT NULL AND ic.relam = 403 AND tc.relkind IN ('r', 'm') AND ",
        USER_RELATION_FILTER,
        "
          ORDER BY ia.attrelid, ia.attnum",
    ]
    .concat()
}

/// Column sets of the relations in `wanted`, from one scan of `pg_attribute` and one of
/// `pg_statistic` (see `catalog.rs`).
fn direct_column_sets(wanted: &catalog::OidSet) -> catalog::OidMap<ColumnSet> {
    let statistics = catalog::column_statistics();
    let attributes = catalog::cached_attributes(wanted);
    let mut sets: catalog::OidMap<ColumnSet> = catalog::OidMap::default();
    for &(relid, attnum, attlen, attalign) in attributes.iter() {
        let known = statistics.get(&(relid, attnum)).copied();
        let set = sets.entry(relid).or_insert_with(|| ColumnSet { complete: true, ..ColumnSet::default() });
        set.attnums.push(attnum);
        set.columns.push(Column {
            attlen,
            attalign,
            avg_width: known.map(|k| k.0),
            null_frac: known.map(|k| k.1),
        });
        set.complete &= known.is_some();
    }
    sets
}

/// Days since a PostgreSQL timestamp, measured from the transaction's start (`now()`).
fn days_since(ts: i64) -> f64 {
    // SAFETY: reads the backend's transaction start time.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    (now - ts) as f64 / 1_000_000.0 / 86_400.0
}

/// The tables read from the catalog structs and the statistics snapshot (no SQL).
fn load_tables_direct() -> Result<catalog::OidMap<TableFacts>, ErrorReport> {
    let cat = catalog::catalog()?;
    let user_tables = user_tables(&cat);
    let (sets, _) = column_sets(&cat, &user_tables);
    let stats = table_counters()?;
    let mut tables = catalog::OidMap::default();
    for rel in user_tables {
        let c = stats.get(&rel.oid).copied().unwrap_or_default();
        tables.insert(
            rel.oid,
            TableFacts {
                reltuples: rel.reltuples,
                n_live: c.live as f64,
                n_dead: c.dead as f64,
                n_mod: c.mod_since_analyze as f64,
                analyze_age_days: c.last_analyze.max(c.last_autoanalyze).map(days_since),
                fillfactor: rel.fillfactor.unwrap_or(100.0),
                // A table without columns has nothing to lack statistics for.
                columns: sets.get(&rel.oid).cloned().unwrap_or_else(|| Rc::new(ColumnSet { complete: true, ..ColumnSet::default() })),
            },
        );
    }
    Ok(tables)
}

/// Column sets of user tables and of expression B-trees, keyed by relation.
type ColumnSets = (Rc<catalog::OidMap<Rc<ColumnSet>>>, Rc<catalog::OidMap<ColumnSet>>);

/// The column sets of `user_tables` and of the expression B-trees, kept per backend until the
/// next catalog invalidation: they are read from `pg_attribute` and `pg_statistic` only, and
/// any change of either (DDL, ANALYZE, a statistics restore) bumps the generation
/// (`catalog::generation`).  On 100 000 tables building them was a tenth of every call.
fn column_sets(cat: &catalog::Catalog, user_tables: &[&catalog::Rel]) -> ColumnSets {
    let current = catalog::generation();
    if let Some(hit) = COLUMN_SETS.with(|c| c.borrow().as_ref().filter(|(g, _)| *g == current).map(|(_, v)| v.clone())) {
        return hit;
    }
    // Expression B-trees' own attributes come from the same pg_attribute scan (a second
    // full scan for a handful of indexes cost as much as the first).
    let expression_indexes = expression_btrees(cat);
    let mut wanted: catalog::OidSet = user_tables.iter().map(|r| r.oid).collect();
    wanted.extend(expression_indexes.iter().copied());
    let mut sets = direct_column_sets(&wanted);
    let expression_sets: catalog::OidMap<ColumnSet> =
        expression_indexes.iter().filter_map(|oid| sets.remove(oid).map(|s| (*oid, s))).collect();
    let tables: catalog::OidMap<Rc<ColumnSet>> = sets.into_iter().map(|(oid, set)| (oid, Rc::new(set))).collect();
    let fresh: ColumnSets = (Rc::new(tables), Rc::new(expression_sets));
    COLUMN_SETS.with(|c| *c.borrow_mut() = Some((current, fresh.clone())));
    fresh
}

/// The tables the estimators look at: plain tables and materialized views, not temporary.
fn user_tables(cat: &catalog::Catalog) -> Vec<&catalog::Rel> {
    cat.rels
        .iter()
        .filter(|r| matches!(r.kind, b'r' | b'm') && r.persistence != b't' && cat.is_user_persistent_namespace(r.namespace))
        .collect()
}

/// B-trees on user tables, as the estimators choose them: (index, its relation entry).
fn user_btrees(cat: &catalog::Catalog) -> Vec<(&catalog::Index, &catalog::Rel)> {
    cat.indexes
        .iter()
        .filter_map(|i| {
            let own = cat.rel(i.oid)?;
            let table = cat.rel(i.table)?;
            let user = own.am == catalog::BTREE_AM
                && own.persistence != b't'
                && matches!(table.kind, b'r' | b'm')
                && cat.is_user_persistent_namespace(table.namespace);
            user.then_some((i, own))
        })
        .collect()
}

fn expression_btrees(cat: &catalog::Catalog) -> catalog::OidSet {
    user_btrees(cat).into_iter().filter(|(i, _)| i.has_exprs).map(|(i, _)| i.oid).collect()
}

fn load_tables() -> Result<catalog::OidMap<TableFacts>, ErrorReport> {
    let direct = statistic_readable()?;
    if direct {
        return load_tables_direct();
    }
    let columns_query = table_columns_query(direct);
    Spi::connect(|client| {
        let mut sets = load_columns(&client, &columns_query)?;
        let mut tables = catalog::OidMap::default();
        for row in client.select(&tables_query(), None, &[])? {
            let oid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
            let facts = TableFacts {
                reltuples: row.get::<f64>(2)?.unwrap_or(-1.0),
                n_live: row.get::<f64>(3)?.unwrap_or(0.0),
                n_dead: row.get::<f64>(4)?.unwrap_or(0.0),
                n_mod: row.get::<f64>(5)?.unwrap_or(0.0),
                analyze_age_days: row.get::<f64>(6)?,
                fillfactor: row.get::<f64>(7)?.unwrap_or(100.0),
                // A table without columns has nothing to lack statistics for.
                columns: Rc::new(sets.remove(&oid).unwrap_or(ColumnSet { complete: true, ..ColumnSet::default() })),
            };
            tables.insert(oid, facts);
        }
        Ok(tables)
    })
    .ctx("table statistics")
}

thread_local! {
    /// Column sets of user tables and expression B-trees, with the catalog generation they
    /// were read in (see `column_sets`).
    static COLUMN_SETS: RefCell<Option<(u64, ColumnSets)>> = const { RefCell::new(None) };
    /// The B-trees as `btrees_direct` resolved them, with the catalog generation.
    static BTREES: RefCell<Option<(u64, Rc<Vec<BtreeFacts>>)>> = const { RefCell::new(None) };
    static TABLES: RefCell<Option<(super::storage::CacheKey, Rc<catalog::OidMap<TableFacts>>)>> = const { RefCell::new(None) };
}

/// Every user table with its counters and column statistics, cached for the statement.
pub fn tables() -> Result<Rc<catalog::OidMap<TableFacts>>, ErrorReport> {
    let stamp = statement_stamp();
    if let Some(hit) = TABLES.with(|c| c.borrow().as_ref().filter(|(s, _)| *s == stamp).map(|(_, t)| Rc::clone(t))) {
        return Ok(hit);
    }
    let fresh = Rc::new(load_tables()?);
    TABLES.with(|c| *c.borrow_mut() = Some((stamp, Rc::clone(&fresh))));
    Ok(fresh)
}

/// Every B-tree on a user table, its columns resolved through the table's statistics.
pub fn btrees(tables: &catalog::OidMap<TableFacts>) -> Result<Rc<Vec<BtreeFacts>>, ErrorReport> {
    let direct = statistic_readable()?;
    if direct {
        return btrees_direct();
    }
    let expr_query = expression_columns_query(direct);
    Spi::connect(|client| {
        let expression_sets = load_columns(&client, &expr_query)?;
        let mut out = Vec::new();
        for row in client.select(&btrees_query(), None, &[])? {
            let oid = row.get::<pg_sys::Oid>(1)?.map(|o| o.to_u32()).unwrap_or(0);
            let table = row.get::<pg_sys::Oid>(2)?.map(|o| o.to_u32()).unwrap_or(0);
            let keys: Vec<i16> = row.get::<Vec<Option<i16>>>(3)?.unwrap_or_default().into_iter().map(|k| k.unwrap_or(0)).collect();
            out.push(BtreeFacts {
                oid,
                table,
                reltuples: row.get::<f64>(4)?.unwrap_or(-1.0),
                fillfactor: row.get::<f64>(5)?.unwrap_or(90.0),
                columns: index_columns(&keys, expression_sets.get(&oid), tables.get(&table).map(|t| &*t.columns)),
            });
        }
        Ok(Rc::new(out))
    })
    .ctx("index statistics")
}

/// An index's columns: key columns take the table column's figures, expressions the index's own.
fn index_columns(keys: &[i16], own: Option<&ColumnSet>, table_columns: Option<&ColumnSet>) -> ColumnSet {
    let mut set = ColumnSet { complete: true, ..ColumnSet::default() };
    for (position, key) in keys.iter().enumerate() {
        let index_attnum = position as i16 + 1;
        let column = if *key == 0 {
            own.and_then(|s| s.by_attnum(index_attnum))
        } else {
            table_columns.and_then(|s| s.by_attnum(*key))
        };
        let column = column.unwrap_or(Column { attlen: -1, attalign: b'i', avg_width: None, null_frac: None });
        set.complete &= column.avg_width.is_some() && column.null_frac.is_some();
        set.attnums.push(index_attnum);
        set.columns.push(column);
    }
    set
}

/// The B-trees read from the catalog structs (no SQL), their columns resolved through the
/// column sets of `column_sets`.  Everything here comes from catalog rows, so the result is
/// kept per backend until the next invalidation, like the column sets.
fn btrees_direct() -> Result<Rc<Vec<BtreeFacts>>, ErrorReport> {
    let current = catalog::generation();
    if let Some(hit) = BTREES.with(|c| c.borrow().as_ref().filter(|(g, _)| *g == current).map(|(_, v)| Rc::clone(v))) {
        return Ok(hit);
    }
    let cat = catalog::catalog()?;
    let user_tables = user_tables(&cat);
    let (table_sets, expression_sets) = column_sets(&cat, &user_tables);
    let chosen = user_btrees(&cat);
    let fresh = Rc::new(
        chosen
            .into_iter()
            .map(|(i, own)| BtreeFacts {
                oid: i.oid,
                table: i.table,
                reltuples: own.reltuples,
                fillfactor: own.fillfactor.unwrap_or(90.0),
                columns: index_columns(&i.keys, expression_sets.get(&i.oid), table_sets.get(&i.table).map(|s| &**s)),
            })
            .collect::<Vec<_>>(),
    );
    BTREES.with(|c| *c.borrow_mut() = Some((current, Rc::clone(&fresh))));
    Ok(fresh)
}
