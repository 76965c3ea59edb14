//! `#[pg_test]`s of the rule table and the evaluator inside a real server.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    use crate::alerts::rules;

    /// Every row of the SQL rule table is a rule the Rust evaluator understands (the metric
    /// names of the table's CHECK and of `Metric` agree), with every tier in order.
    #[pg_test]
    fn every_built_in_rule_parses_and_its_tiers_are_ordered() {
        let json = Spi::get_one::<JsonB>("SELECT steward._alert_rules_json()").expect("rules").expect("not null");
        let parsed = rules::parse_rules(&json.0).expect("the rule table parses");
        let count = Spi::get_one::<i64>("SELECT count(*) FROM steward.alert_rules").expect("count").unwrap_or(0);
        assert_eq!(parsed.len() as i64, count);
        for r in &parsed {
            let tiers: Vec<f64> = [r.info_at, r.warning_at, r.error_at, r.critical_at].into_iter().flatten().collect();
            assert!(!tiers.is_empty(), "{} has a tier", r.rule_id);
            let ordered = tiers.windows(2).all(|w| match r.direction {
                rules::Direction::Above => w[0] <= w[1],
                rules::Direction::Below => w[0] >= w[1],
            });
            assert!(ordered, "{}: {tiers:?}", r.rule_id);
        }
    }

    /// The report of this very database evaluates without error, and every finding names a
    /// rule of the table with a fingerprint made of the rule and the object.
    #[pg_test]
    fn the_live_report_evaluates_into_well_formed_findings() {
        Spi::run("CREATE TABLE t_alert (id int PRIMARY KEY, v text)").expect("create");
        Spi::run("INSERT INTO t_alert SELECT g, 'x' FROM generate_series(1, 100) g").expect("insert");
        let ok = Spi::get_one::<bool>(
            "WITH e AS (SELECT steward._report_findings(steward._health_report_for(10, 1000), steward._alert_rules_json()) AS v)
             SELECT coalesce(bool_and(f ->> 'fingerprint' = (f ->> 'rule_id') || ':' || (f ->> 'object_name')
                                      AND f ->> 'severity' IN ('info', 'warning', 'error', 'critical')
                                      AND EXISTS (SELECT 1 FROM steward.alert_rules r WHERE r.rule_id = f ->> 'rule_id')), true)
               FROM e, jsonb_array_elements(e.v -> 'findings') f",
        )
        .expect("findings");
        assert_eq!(ok, Some(true));
    }

    /// The budget source check_alerts() adds, over calls recorded in this server, graded by
    /// the rule table's ai_budget rule: 0.6 of a daily budget of 1 with thresholds 0.5 and 0.9
    /// is one warning (50 %); 0.95 adds the error (90 %); the week and month, far from their
    /// budgets, nothing.
    #[pg_test]
    fn the_budget_source_and_the_rule_raise_one_finding_per_level_crossed() {
        Spi::run(
            r#"INSERT INTO steward.config_overrides (kind, document)
               VALUES ('ai_config', '{"costBudget": {"dailyBudget": 1, "weeklyBudget": 1000, "monthlyBudget": 1000, "alertThresholds": [0.9, 0.5]}}')
               ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document"#,
        )
        .expect("budget");
        let levels = || {
            Spi::get_one::<String>(
                "SELECT string_agg(f ->> 'severity' || ' ' || (f -> 'details' ->> 'level'), ', ' ORDER BY f ->> 'object_name')
                   FROM jsonb_array_elements(steward._report_findings(
                            jsonb_build_object('aiBudgets', steward._ai_budget_usage()), steward._alert_rules_json()) -> 'findings') f
                  WHERE f ->> 'rule_id' = 'ai_budget'",
            )
            .expect("findings")
        };
        let user = "'5ba4db00-0000-4000-8000-0000000000b1'";
        Spi::run(&format!("SELECT steward.record_ai_usage('claude-3-opus-20240229', 40000, 0, {user})")).expect("0.60");
        assert_eq!(levels().as_deref(), Some("warning 50%"));
        Spi::run(&format!("SELECT steward.record_ai_usage('claude-3-opus-20240229', 23334, 0, {user})")).expect("0.95");
        assert_eq!(levels().as_deref(), Some("warning 50%, error 90%"));
    }
}
