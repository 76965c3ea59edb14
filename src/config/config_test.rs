//! `#[pg_test]`s of the configuration building blocks inside a real server.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The binary jsonb walker (`common::jsonb::Doc`) reads every kind of document exactly as
    /// jsonb holds it: `_mask_api_keys` returns a document without `apiKeys` unchanged.
    /// (Numbers become f64 in serde_json, as with pgrx's own JsonB: beyond 15–17 significant
    /// digits they round — irrelevant for configuration values, noted for other uses.)
    #[pg_test]
    fn jsonb_walker_reads_every_document_exactly() {
        let all_equal = Spi::get_one::<bool>(
            r#"SELECT bool_and(steward._mask_api_keys(d) = d) FROM (VALUES
                 ('{}'::jsonb), ('[]'), ('null'), ('true'), ('"text"'), ('0'), ('-1.5e-7'),
                 ('12345.678901234'), ('{"a": {"b": [1, "x", null, {"c": false}]}, "é": "ü\u00e9 \" \\ tab\t"}'),
                 ('[[[]], {}, [{"k": [1.0, 2.50]}]]'), ('{"apiKey": "not masked", "n": 1e3}'))
               AS v(d)"#,
        )
        .expect("compare");
        assert_eq!(all_equal, Some(true));
    }

    #[pg_test]
    fn validators_and_layers_through_sql() {
        let problems = Spi::get_one::<Vec<String>>(
            r#"SELECT steward.validate_ai_config('{"model": {"temperature": 3.0}}')"#,
        )
        .expect("validate")
        .unwrap_or_default();
        assert_eq!(problems, vec!["model.temperature must be a number between 0 and 1 (got 3.0)".to_string()]);
        let temperature = Spi::get_one::<String>(
            r#"SELECT steward._resolve_layers('ai_config', ARRAY['{"model": {"temperature": 0.2}}'::jsonb, NULL, '{"model": {"temperature": null}}'::jsonb]) #>> '{model,temperature}'"#,
        )
        .expect("resolve");
        assert_eq!(temperature.as_deref(), Some("0.2"));
    }
}
