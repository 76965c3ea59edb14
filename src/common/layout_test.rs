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
}
