//! `#[pg_test]`s of the health building blocks, run inside a real server by `cargo pgrx test`.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn storage_scan_matches_pg_relation_size() {
        Spi::run("CREATE TABLE t_size AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 5000) g")
            .expect("create");
        Spi::run("CREATE INDEX t_size_id ON t_size (id)").expect("index");
        let same = Spi::get_one::<bool>(
            "SELECT bool_and(s.main_bytes = pg_relation_size(s.relid) AND s.total_bytes = pg_relation_size(s.relid, 'main')
                       + pg_relation_size(s.relid, 'fsm') + pg_relation_size(s.relid, 'vm') + pg_relation_size(s.relid, 'init'))
               FROM steward._relation_storage() s WHERE s.relid IN ('t_size'::regclass, 't_size_id'::regclass)",
        )
        .expect("query");
        assert_eq!(same, Some(true));
        let count = Spi::get_one::<i64>(
            "SELECT count(*) FROM steward._relation_storage() s WHERE s.relid IN ('t_size'::regclass, 't_size_id'::regclass)",
        )
        .expect("count");
        assert_eq!(count, Some(2));
    }

    #[pg_test]
    fn table_bloat_is_unknown_without_statistics_and_known_after_analyze() {
        Spi::run("CREATE TABLE t_bloat (id int, v text)").expect("create");
        Spi::run("INSERT INTO t_bloat SELECT g, md5(g::text) FROM generate_series(1, 20000) g").expect("insert");
        let before = Spi::get_two::<String, f64>(
            "SELECT confidence, bloat_pct FROM steward._table_bloat_estimates() WHERE relid = 't_bloat'::regclass",
        )
        .expect("before");
        assert_eq!(before, (Some("unknown".to_string()), None));
        Spi::run("ANALYZE t_bloat").expect("analyze");
        // The cumulative statistics are cached per transaction: look again.
        Spi::run("SELECT pg_stat_clear_snapshot()").expect("clear snapshot");
        let after = Spi::get_two::<String, f64>(
            "SELECT confidence, bloat_pct FROM steward._table_bloat_estimates() WHERE relid = 't_bloat'::regclass",
        )
        .expect("after");
        assert_eq!(after.0.as_deref(), Some("fresh"));
        let pct = after.1.unwrap_or(-1.0);
        assert!((0.0..5.0).contains(&pct), "untouched table estimated at {pct}%");
    }

    #[pg_test]
    fn heap_bloat_from_tuples_rejects_bad_input() {
        let ok = Spi::get_one::<f64>("SELECT bloat_pct FROM steward._heap_bloat_from_tuples(819200, 2260, 2260 * 28)")
            .expect("ok");
        // 2260 tuples of 32 bytes need 10 pages of the 100: 90 % bloat.
        assert_eq!(ok, Some(90.0));
    }

    #[pg_test(error = "invalid argument fillfactor: 5 is outside 10..100")]
    fn heap_bloat_from_tuples_rejects_fillfactor() {
        Spi::run("SELECT * FROM steward._heap_bloat_from_tuples(1, 1, 1, 5)").expect("must fail");
    }

    /// The one-pass rows agree with PostgreSQL's own size functions and statistics views, and
    /// leave the caller's stats_fetch_consistency as it was.
    #[pg_test]
    fn table_and_index_rows_match_postgres() {
        Spi::run("CREATE TABLE t_rows (id int PRIMARY KEY, v text)").expect("create");
        Spi::run(
            "INSERT INTO t_rows SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 100) i)
               FROM generate_series(1, 300) g",
        )
        .expect("insert");
        Spi::run("CREATE INDEX t_rows_left ON t_rows (left(v, 10))").expect("index");
        Spi::run("DELETE FROM t_rows WHERE id <= 50").expect("delete");
        let sizes = Spi::get_one::<bool>(
            "SELECT h.table_size = pg_total_relation_size('t_rows')
                AND h.heap_size = pg_relation_size('t_rows', 'main') + pg_relation_size('t_rows', 'fsm')
                                  + pg_relation_size('t_rows', 'vm') + pg_relation_size('t_rows', 'init')
                AND h.toast_size = pg_total_relation_size(c.reltoastrelid)
                AND h.toast_size > 0
                AND h.indexes_size = pg_indexes_size('t_rows')
               FROM steward.table_health() h JOIN pg_class c ON c.oid = h.relid
              WHERE h.relid = 't_rows'::regclass",
        )
        .expect("table sizes");
        assert_eq!(sizes, Some(true));
        let counters = Spi::get_one::<bool>(
            "SELECT (h.n_live_tup, h.n_dead_tup, h.vacuum_count, h.autovacuum_count, h.analyze_count,
                     h.autoanalyze_count, h.last_vacuum, h.last_analyze, h.n_mod_since_analyze)
                    IS NOT DISTINCT FROM
                    (s.n_live_tup, s.n_dead_tup, s.vacuum_count, s.autovacuum_count, s.analyze_count,
                     s.autoanalyze_count, s.last_vacuum, s.last_analyze, s.n_mod_since_analyze)
               FROM steward.table_health() h JOIN pg_stat_user_tables s ON s.relid = h.relid
              WHERE h.relid = 't_rows'::regclass",
        )
        .expect("table counters");
        assert_eq!(counters, Some(true));
        let indexes = Spi::get_one::<String>(
            "SELECT string_agg(format('%s:%s:%s:%s:%s', h.indexrelname, h.index_size = pg_relation_size(h.indexrelid),
                                      h.idx_scan IS NOT DISTINCT FROM s.idx_scan, h.is_primary, h.enforces_constraint)
                               || ':' || h.index_type, ' ' ORDER BY h.indexrelname)
               FROM steward.index_health() h JOIN pg_stat_user_indexes s ON s.indexrelid = h.indexrelid
              WHERE h.relid = 't_rows'::regclass",
        )
        .expect("index rows");
        assert_eq!(indexes.as_deref(), Some("t_rows_left:t:t:f:f:btree t_rows_pkey:t:t:t:t:btree"));
        let consistency = Spi::get_one::<String>("SELECT current_setting('stats_fetch_consistency')").expect("setting");
        assert_eq!(consistency.as_deref(), Some("cache"));
    }

    /// A scan started ahead (`_storage_prefetch`) serves the statement that started it, and a
    /// write in between makes the next look scan again instead of using the stale result.
    #[pg_test]
    fn prefetched_scan_is_used_once_and_never_stale() {
        Spi::run("CREATE TABLE t_pre AS SELECT g AS id FROM generate_series(1, 1000) g").expect("create");
        Spi::run("SELECT steward._storage_prefetch()").expect("prefetch");
        let same = Spi::get_one::<bool>(
            "SELECT s.total_bytes = pg_total_relation_size('t_pre') AND s.main_bytes = pg_relation_size('t_pre')
               FROM steward._relation_storage() s WHERE s.relid = 't_pre'::regclass",
        )
        .expect("prefetched");
        assert_eq!(same, Some(true));
        Spi::run("SELECT steward._storage_prefetch()").expect("prefetch again");
        Spi::run("INSERT INTO t_pre SELECT g FROM generate_series(1, 100000) g").expect("grow");
        let grown = Spi::get_one::<bool>(
            "SELECT s.main_bytes = pg_relation_size('t_pre') AND s.main_bytes > 8192 * 10
               FROM steward._relation_storage() s WHERE s.relid = 't_pre'::regclass",
        )
        .expect("after the write");
        assert_eq!(grown, Some(true));
        let index_sizes = Spi::get_one::<bool>(
            "SELECT bool_and(h.index_size = pg_relation_size(h.indexrelid)) FROM steward.index_health() h",
        )
        .expect("index sizes");
        assert_eq!(index_sizes, Some(true));
    }
}
