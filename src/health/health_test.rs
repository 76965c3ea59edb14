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
}
