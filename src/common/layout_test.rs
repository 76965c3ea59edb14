//! The native jsonb reader against PostgreSQL's own text output, inside a server.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    use crate::common::jsonb::{Doc, SLOW_READS};

    /// Every row: the document read natively (Doc) and through jsonb_out + serde (JsonB).
    fn compare(sql: &str) -> usize {
        let before = SLOW_READS.with(|c| c.get());
        let mut checked = 0;
        Spi::connect(|client| {
            for row in client.select(sql, None, &[]).expect("query runs") {
                let native = row.get::<Doc>(1).expect("doc").expect("not null").0;
                let text = row.get::<JsonB>(2).expect("jsonb").expect("not null").0;
                assert_eq!(native, text, "native reader differs on {text}");
                checked += 1;
            }
        });
        assert_eq!(SLOW_READS.with(|c| c.get()), before, "every document was read natively");
        checked
    }

    #[pg_test]
    fn native_reader_agrees_with_jsonb_out_on_numbers() {
        let n = compare(
            "SELECT d, d FROM (SELECT jsonb_build_object(
                 'a', g::numeric / 7, 'b', -g * 1000003, 'c', (g::numeric ^ 5) / 3,
                 'd', g::numeric / 10 ^ 12, 'e', round(g::numeric * 1.05, 2), 'f', 0,
                 'g', (-g)::numeric / 10000, 'h', (g::numeric * 10 ^ 20)::numeric(40, 3),
                 'i', 1.50, 'j', 100, 'k', 10000, 'l', 0.0001, 'm', 123456789.000000001,
                 -- long numeric headers: weight or display scale beyond the short form
                 'n', 10::numeric ^ (200 + g % 50), 'o', 1 / 10::numeric ^ (280 + g % 20), 'p', round(g / 3::numeric, 100)) AS d
               FROM generate_series(1, 500) g) x",
        );
        assert_eq!(n, 500);
    }

    #[pg_test]
    fn native_reader_agrees_on_shapes() {
        let n = compare(
            r#"SELECT d, d FROM (VALUES ('{}'::jsonb), ('[]'), ('1'), ('"s"'), ('null'), ('true'), ('[1, "x", null, false, {"a": []}]'),
                 ('{"": 1, "é": "ü", "nested": {"deep": {"deeper": [1, [2, [3]]]}}}'),
                 ((SELECT jsonb_object_agg('key' || g, g) FROM generate_series(1, 300) g)),
                 ((SELECT jsonb_agg(repeat('x', g)) FROM generate_series(1, 100) g))) v(d)"#,
        );
        assert_eq!(n, 10);
    }

    use crate::common::jsonb::{MAX_BYTES, MAX_DEPTH};
    use crate::diff::diff_test::{alive, deep_array_sql, deep_object_sql, sqlstate_of};

    fn fails_with(sql: &str, expected: &str) {
        assert_eq!(sqlstate_of(sql).as_deref(), Some(expected), "{sql}");
        assert!(alive(), "the backend answers after {sql}");
    }

    /// The reader (native layout and PostgreSQL's iterator alike) refuses documents nested
    /// deeper than the limit with 54001 and reads those just inside it exactly.
    #[pg_test]
    fn reader_refuses_deep_documents_with_54001() {
        for doc in [deep_array_sql(MAX_DEPTH + 1), deep_object_sql(MAX_DEPTH + 1), deep_array_sql(100_000)] {
            fails_with(&format!("SELECT steward._mask_api_keys({doc})"), "54001");
        }
        for doc in [deep_array_sql(MAX_DEPTH), deep_object_sql(MAX_DEPTH)] {
            let same = Spi::get_one::<bool>(&format!("SELECT steward._mask_api_keys({doc}) = {doc}")).expect("reads");
            assert_eq!(same, Some(true), "{doc}");
        }
        // The iterator fallback (layouts the native reader does not know) counts depth too.
        let n = MAX_DEPTH + 1;
        let text = std::ffi::CString::new(format!("{}1{}", "[".repeat(n), "]".repeat(n))).expect("no NUL");
        // SAFETY: jsonb_in takes a NUL-terminated string and returns a jsonb datum in the
        // current memory context, which outlives the walk below.
        let datum = unsafe { pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]) }
            .expect("jsonb_in returns a datum");
        // SAFETY: a jsonb datum built just above.
        let walked = unsafe { crate::common::jsonb::walk_for_tests(datum) };
        assert!(matches!(walked, Err(crate::common::jsonb::LimitError::TooDeep { .. })), "{walked:?}");
        let text = std::ffi::CString::new(format!("{}1{}", "[".repeat(n - 1), "]".repeat(n - 1))).expect("no NUL");
        // SAFETY: as above.
        let datum = unsafe { pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]) }
            .expect("jsonb_in returns a datum");
        // SAFETY: as above.
        assert!(unsafe { crate::common::jsonb::walk_for_tests(datum) }.is_ok(), "the iterator reads {} levels", n - 1);
    }

    /// Wide documents read natively and completely; documents beyond the size limit are
    /// refused with 54000 before anything is read.
    #[pg_test]
    fn reader_reads_wide_and_refuses_large_documents() {
        let n = compare("SELECT d, d FROM (SELECT jsonb_object_agg('k' || g, jsonb_build_array(g, 'x', g::numeric / 3)) AS d FROM generate_series(1, 100000) g) x");
        assert_eq!(n, 1);
        let n = compare("SELECT d, d FROM (SELECT jsonb_agg(g) AS d FROM generate_series(1, 200000) g) x");
        assert_eq!(n, 1);
        fails_with(&format!("SELECT steward._mask_api_keys(jsonb_build_array(repeat('x', {})))", MAX_BYTES + 1), "54000");
    }
}
