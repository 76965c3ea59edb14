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

    /// The effective configurations of the 45 test users, in order.
    fn all_effective() -> serde_json::Value {
        Spi::get_one::<pgrx::JsonB>(
            "SELECT jsonb_agg(steward.effective_ai_config(md5('u' || u)::uuid) ORDER BY u) FROM generate_series(1, 45) u",
        )
        .expect("effective configurations")
        .expect("rows")
        .0
    }

    /// The direct index probes (src/config/direct.rs) give what the SPI path over
    /// `_ai_config_rows` gives, for users with every mix of layers: inactive rows, equal
    /// priorities (updated_at, then id decide), several organisations, none at all.
    #[pg_test]
    fn direct_layers_agree_with_the_spi_path() {
        Spi::run("SELECT steward.install_train_schema('public')").expect("install");
        Spi::run(
            r#"INSERT INTO steward.config_overrides (kind, document) VALUES ('ai_config', '{"rateLimiting": {"requestsPerMinute": 25}}')
               ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document;
               INSERT INTO public.organizations (id, name) SELECT md5('o' || g)::uuid, 'org ' || g FROM generate_series(1, 6) g;
               INSERT INTO public.organization_members (organization_id, user_id)
               SELECT md5('o' || (1 + (u + k) % 6))::uuid, md5('u' || u)::uuid
                 FROM generate_series(1, 40) u, generate_series(0, u % 3) k;
               INSERT INTO public.ai_configurations (organization_id, config_name, configuration, priority, is_active)
               SELECT md5('o' || o)::uuid, 'org-' || p, jsonb_build_object('model', jsonb_build_object('temperature', (o * p % 10) / 10.0), 'costBudget', jsonb_build_object('dailyBudget', o * 10 + p)), p % 2, p <> 3
                 FROM generate_series(1, 6) o, generate_series(1, 4) p;
               INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority, is_active, updated_at)
               SELECT md5('u' || u)::uuid, 'cfg-' || p, jsonb_build_object('model', jsonb_build_object('maxTokens', 100 * u + p)), (u + p) % 2, (u + p) % 5 <> 0,
                      '2026-01-01'::timestamptz + ((u * p) % 3) * interval '1 hour'
                 FROM generate_series(1, 40) u, generate_series(1, u % 4) p;"#,
        )
        .expect("data");
        let direct_before = crate::config::direct::DIRECT_CALLS.with(|c| c.get());
        let direct = all_effective();
        assert_eq!(crate::config::direct::DIRECT_CALLS.with(|c| c.get()) - direct_before, 45, "the direct path answered");
        Spi::run("SET LOCAL steward.effective_config_direct = off").expect("switch");
        let spi = all_effective();
        assert_eq!(crate::config::direct::DIRECT_CALLS.with(|c| c.get()) - direct_before, 45, "the SPI path answered");
        assert_eq!(direct, spi);
        let distinct = Spi::get_one::<i64>(
            "SELECT count(DISTINCT steward.effective_ai_config(md5('u' || u)::uuid)) FROM generate_series(1, 45) u",
        )
        .expect("distinct");
        assert!(distinct.unwrap_or(0) > 20, "the data gives users different configurations: {distinct:?}");

        // An index the direct path uses disappears: the cached OIDs are forgotten and the
        // call falls back to SPI with the same answer, no error.
        Spi::run("RESET steward.effective_config_direct").expect("switch back");
        let before = crate::config::direct::DIRECT_CALLS.with(|c| c.get());
        Spi::run("DROP INDEX public.ai_configurations_user_active_idx").expect("drop index");
        let after_drop = all_effective();
        assert_eq!(crate::config::direct::DIRECT_CALLS.with(|c| c.get()), before, "the SPI path answered");
        assert_eq!(after_drop, spi);
    }

    /// Answers kept per backend (src/config/cache.rs) follow every change of a layer made in
    /// this transaction: the user's row, a membership, an organisation row, the database
    /// layer; the cache is not used when switched off.
    #[pg_test]
    fn cached_answers_follow_every_change() {
        Spi::run("SELECT steward.install_train_schema('public')").expect("install");
        let user = "c0c0c0c0-0000-4000-8000-000000000001";
        let org = "c0c0c0c0-0000-4000-8000-0000000000aa";
        Spi::run(&format!(
            r#"INSERT INTO public.organizations (id, name) VALUES ('{org}', 'cache org');
               INSERT INTO public.ai_configurations (organization_id, config_name, configuration)
               VALUES ('{org}', 'org', '{{"model": {{"temperature": 0.3}}}}');
               INSERT INTO public.ai_configurations (user_id, config_name, configuration)
               VALUES ('{user}', 'mine', '{{"model": {{"topP": 0.5}}}}');"#
        ))
        .expect("data");
        // Each read as its own statement with a fresh snapshot, as a request would have
        // (a read-only SPI statement would keep this test's first snapshot).
        let leaf = |path: &str| -> String {
            Spi::connect_mut(|c| {
                c.update(&format!("SELECT steward.effective_ai_config('{user}') #>> '{path}'"), Some(1), &[])?
                    .first()
                    .get::<String>(1)
            })
            .expect("effective")
            .unwrap_or_default()
        };
        let hits = || crate::config::cache::HITS.with(|h| h.get());
        // Tests run in parallel: another test's DDL (a new function, say) is an invalidation
        // that rightly keeps an answer out of the cache; a quiet moment comes soon.
        let cached = (0..50).any(|_| {
            let h0 = hits();
            assert_eq!(leaf("{model,topP}"), "0.5");
            assert_eq!(leaf("{model,topP}"), "0.5");
            hits() > h0
        });
        assert!(cached, "a repeated call is answered from the cache");
        let defaults_temperature = leaf("{model,temperature}");
        assert_ne!(defaults_temperature, "0.3");

        Spi::run(&format!(r#"UPDATE public.ai_configurations SET configuration = '{{"model": {{"topP": 0.7}}}}' WHERE user_id = '{user}'"#))
            .expect("update");
        assert_eq!(leaf("{model,topP}"), "0.7");
        Spi::run(&format!("INSERT INTO public.organization_members (organization_id, user_id) VALUES ('{org}', '{user}')"))
            .expect("join");
        assert_eq!(leaf("{model,temperature}"), "0.3");
        Spi::run(&format!(r#"UPDATE public.ai_configurations SET configuration = '{{"model": {{"temperature": 0.4}}}}' WHERE organization_id = '{org}'"#))
            .expect("org row");
        assert_eq!(leaf("{model,temperature}"), "0.4");
        Spi::run(
            r#"INSERT INTO steward.config_overrides (kind, document) VALUES ('ai_config', '{"rateLimiting": {"requestsPerMinute": 7}}')
               ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document"#,
        )
        .expect("database layer");
        assert_eq!(leaf("{rateLimiting,requestsPerMinute}"), "7");
        Spi::run(&format!("DELETE FROM public.organization_members WHERE user_id = '{user}'")).expect("leave");
        assert_eq!(leaf("{model,temperature}"), defaults_temperature);

        Spi::run("SET LOCAL steward.effective_config_cache = off").expect("off");
        let h1 = hits();
        for _ in 0..5 {
            assert_eq!(leaf("{model,topP}"), "0.7");
        }
        assert_eq!(hits(), h1, "switched off: never answered from the cache");
    }

    use crate::common::jsonb::MAX_DEPTH;
    use crate::diff::diff_test::{alive, deep_array_sql, deep_object_sql, sqlstate_of};

    fn fails_with(sql: &str, expected: &str) {
        assert_eq!(sqlstate_of(sql).as_deref(), Some(expected), "{sql}");
        assert!(alive(), "the backend answers after {sql}");
    }

    /// Validators, layered resolution (the effective-configuration merge), provenance and
    /// updates refuse documents nested beyond the limit with 54001; the backend goes on.
    #[pg_test]
    fn configuration_walkers_refuse_deep_documents_with_54001() {
        for doc in [deep_object_sql(MAX_DEPTH + 1), deep_array_sql(MAX_DEPTH + 1), deep_object_sql(100_000)] {
            for sql in [
                format!("SELECT steward.validate_ai_config({doc})"),
                format!("SELECT steward.validate_user_preferences({doc})"),
                format!("SELECT steward._resolve_layers('ai_config', ARRAY[{doc}])"),
                format!("SELECT steward._resolve_layers('user_preferences', ARRAY['{{}}'::jsonb, {doc}])"),
                format!("SELECT * FROM steward._explain_layers('ai_config', ARRAY[{doc}], ARRAY['user'], ARRAY[NULL::uuid])"),
                format!("SELECT steward._apply_update('user_preferences', '{{}}', jsonb_build_object('x', {doc}))"),
                format!("SELECT steward._check_document('ai_config', {doc})"),
            ] {
                fails_with(&sql, "54001");
            }
        }
        // Just inside the limit: deep layers merge (an unknown key is only a warning).
        let deep = deep_object_sql(MAX_DEPTH - 10);
        let depth = Spi::get_one::<i32>(&format!(
            "SELECT length(t) - length(replace(t, '{{', '')) FROM (SELECT steward._resolve_layers('user_preferences', ARRAY[jsonb_build_object('x', {deep}), jsonb_build_object('x', {deep})])::text AS t) s"
        ))
        .expect("resolves");
        assert!(depth.unwrap_or(0) >= (MAX_DEPTH - 10) as i32, "{depth:?}");
        let problems = Spi::get_one::<Vec<String>>(&format!("SELECT steward.validate_user_preferences(jsonb_build_object('x', {deep}))"))
            .expect("validates")
            .unwrap_or_default();
        assert_eq!(problems, vec!["warning: unknown key x".to_string()]);
    }

    /// Provenance paths grow with depth: 900 levels of 200-character keys with a leaf on each
    /// level would be ~80 MB of paths from 180 kB of input.  Refused with 54000.
    #[pg_test]
    fn provenance_of_a_quadratic_layer_fails_with_54000() {
        let key = "k".repeat(4000);
        let layer = format!("(repeat('{{\"v\": 1, \"{key}\": ', 200) || '1' || repeat('}}', 200))::jsonb");
        fails_with(&format!("SELECT count(*) FROM steward._explain_layers('user_preferences', ARRAY[{layer}], ARRAY['user'], ARRAY[NULL::uuid])"), "54000");
        // A long list of problems stays short per problem: a 1 MB wrong value is described
        // in a few dozen characters.
        let problems = Spi::get_one::<Vec<String>>("SELECT steward.validate_user_preferences(jsonb_build_object('theme', repeat('x', 1048576)))")
            .expect("validates")
            .unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].chars().count() < 200, "{}", problems[0]);
    }

    /// The switches are registered GUCs with their documented defaults, typed (a non-boolean
    /// is refused by PostgreSQL) and read by the code (turning one off changes behaviour).
    #[pg_test]
    fn switches_are_typed_gucs_with_their_defaults() {
        for name in ["steward.effective_config_cache", "steward.effective_config_direct", "steward.audit_notify"] {
            let (setting, vartype) = Spi::get_two_with_args::<String, String>(
                "SELECT setting, vartype FROM pg_catalog.pg_settings WHERE name = $1",
                &[name.into()],
            )
            .expect("pg_settings");
            assert_eq!(setting.as_deref(), Some("on"), "{name}");
            assert_eq!(vartype.as_deref(), Some("bool"), "{name}");
        }
        // A non-boolean value is refused (22023); were it accepted, the block would raise P0001.
        Spi::run(
            "DO $$ BEGIN
                 SET steward.audit_notify = 'maybe';
                 RAISE EXCEPTION 'a non-boolean value was accepted';
             EXCEPTION WHEN invalid_parameter_value THEN NULL;
             END $$",
        )
        .expect("refused");
        Spi::run("SET steward.effective_config_cache = off").expect("set");
        assert!(!crate::gucs::EFFECTIVE_CONFIG_CACHE.get());
        Spi::run("RESET steward.effective_config_cache").expect("reset");
        assert!(crate::gucs::EFFECTIVE_CONFIG_CACHE.get());
    }
}
