//! The safety analysis against a real server: the parser's spans, silencing, the catalog's
//! view of type changes, and the parser's error position.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::migrate::{parse, rules};

    fn rules_of(sql: &str) -> Vec<String> {
        Spi::connect(|c| {
            c.select("SELECT rule FROM steward.migration_check($1)", None, &[sql.into()])
                .expect("check")
                .map(|r| r.get::<String>(1).expect("rule").expect("not null"))
                .collect()
        })
    }

    #[pg_test]
    fn pg_check_finds_a_blocking_index_build_and_not_on_a_new_table() {
        Spi::run("CREATE TABLE public.mt_big (id int, v int); INSERT INTO public.mt_big SELECT g, g FROM generate_series(1, 1000) g")
            .expect("table");
        assert_eq!(
            rules_of("CREATE INDEX ON public.mt_big (v); CREATE TABLE public.mt_new (id bigint); CREATE INDEX ON public.mt_new (id)"),
            vec!["index_not_concurrent".to_string(), "missing_lock_timeout".to_string()]
        );
    }

    #[pg_test]
    fn pg_statements_keep_their_spans_and_leading_comments() {
        let script = "-- first\nSELECT 1;\n/* second */ SELECT 2 ; SELECT 'a;b'";
        let stmts = parse::parse(script).expect("parses");
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[0].text(script), "SELECT 1");
        assert_eq!(stmts[1].text(script), "SELECT 2");
        assert_eq!(stmts[2].text(script), "SELECT 'a;b'");
        assert!(stmts[1].span(script).contains("/* second */"));
    }

    #[pg_test]
    fn pg_parse_errors_carry_the_position() {
        let err = parse::parse("SELECT 1;\nSELEC 2").err().expect("refused");
        assert!(err.message.contains("syntax error"), "{}", err.message);
        assert_eq!(err.position, Some(11));
        // The backend is fine afterwards: another error and another parse work.
        assert!(parse::parse("SELECT (").is_err());
        assert!(parse::parse("SELECT 1").is_ok());
    }

    #[pg_test]
    fn pg_type_changes_rewrite_only_when_the_storage_changes() {
        let v = |o: pg_sys::Oid, om: i32, n: pg_sys::Oid, nm: i32| rules::rewrite_verdict(o, om, n, nm).is_some();
        // varchar(50) -> varchar(100), -> varchar, -> text: catalog only.
        assert!(!v(pg_sys::VARCHAROID, 54, pg_sys::VARCHAROID, 104));
        assert!(!v(pg_sys::VARCHAROID, 54, pg_sys::VARCHAROID, -1));
        assert!(!v(pg_sys::VARCHAROID, 54, pg_sys::TEXTOID, -1));
        // Shorter, int -> bigint, timestamp -> timestamptz: rewrites.
        assert!(v(pg_sys::VARCHAROID, 104, pg_sys::VARCHAROID, 54));
        assert!(v(pg_sys::INT4OID, -1, pg_sys::INT8OID, -1));
        // timestamp -> timestamptz rewrites unless the session's TimeZone is UTC.
        Spi::run("SET LOCAL TimeZone = 'Europe/Berlin'").expect("zone");
        assert!(v(pg_sys::TIMESTAMPOID, -1, pg_sys::TIMESTAMPTZOID, -1));
        Spi::run("SET LOCAL TimeZone = 'UTC'").expect("zone");
        assert!(!v(pg_sys::TIMESTAMPOID, -1, pg_sys::TIMESTAMPTZOID, -1));
        // numeric(10,2) -> numeric(12,2): catalog only; numeric(10,2) -> numeric(10,3): rewrite.
        let nm = |p: i32, s: i32| ((p << 16) | s) + 4;
        assert!(!v(pg_sys::NUMERICOID, nm(10, 2), pg_sys::NUMERICOID, nm(12, 2)));
        assert!(v(pg_sys::NUMERICOID, nm(10, 2), pg_sys::NUMERICOID, nm(10, 3)));
    }

    #[pg_test]
    fn pg_an_ignore_comment_silences_only_its_statement() {
        Spi::run("CREATE TABLE public.mt_t (id int)").expect("table");
        assert_eq!(
            rules_of("SET lock_timeout = '1s';\nTRUNCATE public.mt_t; -- steward:ignore truncate\nTRUNCATE public.mt_t"),
            vec!["truncate".to_string()]
        );
        assert_eq!(rules_of("SET lock_timeout = '1s'; TRUNCATE public.mt_t /* steward:ignore all */"), Vec::<String>::new());
    }
}
