//! The monthly report (sql/monthly.sql) as aligned text, read as a typed struct.

use serde::Deserialize;
use serde_json::Value;

use super::error::AlertsError;
use crate::health::report::{aligned, bytes};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Monthly {
    pub month: String,
    pub database: Option<String>,
    #[serde(rename = "generatedAt")]
    pub generated_at: Option<String>,
    pub period: Period,
    pub overview: Overview,
    pub size: Size,
    pub alerts: Alerts,
    pub maintenance: Maintenance,
    pub queries: Queries,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<Recommendation>,
    pub comparison: Comparison,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Period {
    pub complete: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Overview {
    #[serde(rename = "databaseSize")]
    pub database_size: Option<f64>,
    #[serde(rename = "cacheHitRatio")]
    pub cache_hit_ratio: Option<f64>,
    #[serde(rename = "tableCount")]
    pub table_count: Option<f64>,
    #[serde(rename = "indexCount")]
    pub index_count: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Size {
    #[serde(rename = "trackedTables")]
    pub tracked_tables: Option<f64>,
    #[serde(rename = "startBytes")]
    pub start_bytes: Option<f64>,
    #[serde(rename = "endBytes")]
    pub end_bytes: Option<f64>,
    #[serde(rename = "growthBytes")]
    pub growth_bytes: Option<f64>,
    #[serde(rename = "topGrowth")]
    pub top_growth: Vec<Growth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Growth {
    pub table: String,
    #[serde(rename = "startBytes")]
    pub start_bytes: Option<f64>,
    #[serde(rename = "endBytes")]
    pub end_bytes: Option<f64>,
    #[serde(rename = "growthBytes")]
    pub growth_bytes: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Alerts {
    pub raised: Option<f64>,
    pub resolved: Option<f64>,
    #[serde(rename = "openAtEnd")]
    pub open_at_end: Option<f64>,
    #[serde(rename = "byRule")]
    pub by_rule: Vec<RuleCount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RuleCount {
    pub rule: String,
    pub severity: String,
    pub count: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Maintenance {
    pub total: Option<f64>,
    pub completed: Option<f64>,
    pub failed: Option<f64>,
    pub refused: Option<f64>,
    #[serde(rename = "successRate")]
    pub success_rate: Option<f64>,
    #[serde(rename = "totalDurationMs")]
    pub total_duration_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Queries {
    pub count: Option<f64>,
    #[serde(rename = "slowCount")]
    pub slow_count: Option<f64>,
    #[serde(rename = "avgMs")]
    pub avg_ms: Option<f64>,
    #[serde(rename = "p95Ms")]
    pub p95_ms: Option<f64>,
    #[serde(rename = "byWeek")]
    pub by_week: Vec<Week>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Week {
    pub week: String,
    pub count: Option<f64>,
    #[serde(rename = "slowCount")]
    pub slow_count: Option<f64>,
    #[serde(rename = "p95Ms")]
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Finding {
    pub rule: String,
    pub severity: String,
    pub object: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Recommendation {
    pub priority: String,
    pub title: String,
    pub action: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Delta {
    pub current: Option<f64>,
    pub previous: Option<f64>,
    pub change: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Comparison {
    #[serde(rename = "previousMonth")]
    pub previous_month: Option<String>,
    #[serde(rename = "growthBytes")]
    pub growth_bytes: Delta,
    #[serde(rename = "alertsRaised")]
    pub alerts_raised: Delta,
    #[serde(rename = "maintenanceCompleted")]
    pub maintenance_completed: Delta,
    #[serde(rename = "maintenanceFailed")]
    pub maintenance_failed: Delta,
    #[serde(rename = "slowQueries")]
    pub slow_queries: Delta,
    #[serde(rename = "p95Ms")]
    pub p95_ms: Delta,
    #[serde(rename = "newFindings")]
    pub new_findings: Vec<Finding>,
    #[serde(rename = "goneFindings")]
    pub gone_findings: Vec<Finding>,
}

fn int(v: Option<f64>) -> String {
    v.map(|x| format!("{}", x.round() as i64)).unwrap_or_else(|| "-".into())
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1} ms")).unwrap_or_else(|| "-".into())
}


fn signed(v: Option<f64>, unit: fn(Option<f64>) -> String) -> String {
    match v {
        Some(x) if x > 0.0 => format!("+{}", unit(Some(x))),
        Some(x) if x < 0.0 => format!("-{}", unit(Some(-x))),
        Some(_) => "0".into(),
        None => "-".into(),
    }
}

fn section(out: &mut String, title: &str, body: &str) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    out.push_str(body);
}

pub fn render(report: &Value) -> Result<String, AlertsError> {
    if !report.is_object() || report.get("month").is_none() {
        return Err(AlertsError::NotAMonthlyReport("expected an object with a \"month\"".into()));
    }
    // A part that is JSON null reads as absent (empty), as a missing one does.
    let mut parts = report.as_object().cloned().unwrap_or_default();
    parts.retain(|_, v| !v.is_null());
    let m = Monthly::deserialize(Value::Object(parts)).map_err(|e| AlertsError::NotAMonthlyReport(e.to_string()))?;
    let mut out = format!(
        "pg_steward monthly report for database {}, {}{}\ngenerated {}\n",
        m.database.as_deref().unwrap_or("?"),
        m.month.chars().take(7).collect::<String>(),
        if m.period.complete == Some(false) { " (month in progress)" } else { "" },
        m.generated_at.as_deref().unwrap_or("?").replace('T', " ").chars().take(19).collect::<String>()
    );

    let prev = m.comparison.previous_month.clone();
    let vs = |d: &Delta, unit: fn(Option<f64>) -> String| -> Vec<String> {
        vec![unit(d.current), if prev.is_some() { unit(d.previous) } else { "-".into() }, if prev.is_some() { signed(d.change, unit) } else { "-".into() }]
    };
    let mut summary = vec![
        [vec!["Table growth (tracked tables)".to_string()], vs(&m.comparison.growth_bytes, bytes)].concat(),
        [vec!["Alerts raised".to_string()], vs(&m.comparison.alerts_raised, int)].concat(),
        [vec!["Maintenance completed".to_string()], vs(&m.comparison.maintenance_completed, int)].concat(),
        [vec!["Maintenance failed".to_string()], vs(&m.comparison.maintenance_failed, int)].concat(),
        [vec!["Slow queries (logged)".to_string()], vs(&m.comparison.slow_queries, int)].concat(),
        [vec!["Query time p95 (logged)".to_string()], vs(&m.comparison.p95_ms, ms)].concat(),
    ];
    if prev.is_none() {
        // No stored report for the previous month: this month's own figures.
        summary[0][1] = bytes(m.size.growth_bytes);
        summary[1][1] = int(m.alerts.raised);
        summary[2][1] = int(m.maintenance.completed);
        summary[3][1] = int(m.maintenance.failed);
        summary[4][1] = int(m.queries.slow_count);
        summary[5][1] = ms(m.queries.p95_ms);
    }
    let previous_label = prev.as_deref().map(|p| p.chars().take(7).collect::<String>()).unwrap_or_else(|| "previous".into());
    section(&mut out, "Month over month", &aligned(&["", "this month", &previous_label, "change"], &summary));

    section(
        &mut out,
        "Database",
        &aligned(
            &["", "value"],
            &[
                vec!["Database size".into(), bytes(m.overview.database_size)],
                vec!["Cache hit ratio".into(), m.overview.cache_hit_ratio.map(|x| format!("{x:.1}%")).unwrap_or_else(|| "-".into())],
                vec!["Tables / indexes".into(), format!("{} / {}", int(m.overview.table_count), int(m.overview.index_count))],
                vec!["Tracked tables: start → end".into(), format!("{} → {}", bytes(m.size.start_bytes), bytes(m.size.end_bytes))],
            ],
        ),
    );
    if !m.size.top_growth.is_empty() {
        let rows: Vec<Vec<String>> = m
            .size
            .top_growth
            .iter()
            .map(|g| vec![g.table.clone(), bytes(g.start_bytes), bytes(g.end_bytes), signed(g.growth_bytes, bytes)])
            .collect();
        section(&mut out, "Fastest-growing tables", &aligned(&["table", "start", "end", "growth"], &rows));
    }
    let alert_rows: Vec<Vec<String>> = m.alerts.by_rule.iter().map(|r| vec![r.rule.clone(), r.severity.clone(), int(r.count)]).collect();
    section(
        &mut out,
        &format!(
            "Alerts: {} raised, {} resolved, {} open at the end of the month",
            int(m.alerts.raised),
            int(m.alerts.resolved),
            int(m.alerts.open_at_end)
        ),
        &if alert_rows.is_empty() { "  none\n".into() } else { aligned(&["rule", "severity", "count"], &alert_rows) },
    );
    section(
        &mut out,
        "Maintenance",
        &aligned(
            &["total", "completed", "failed", "refused", "success rate", "time"],
            &[vec![
                int(m.maintenance.total),
                int(m.maintenance.completed),
                int(m.maintenance.failed),
                int(m.maintenance.refused),
                m.maintenance.success_rate.map(|x| format!("{x:.1}%")).unwrap_or_else(|| "-".into()),
                ms(m.maintenance.total_duration_ms),
            ]],
        ),
    );
    let weeks: Vec<Vec<String>> = m
        .queries
        .by_week
        .iter()
        .map(|w| vec![w.week.clone(), int(w.count), int(w.slow_count), ms(w.p95_ms)])
        .collect();
    section(
        &mut out,
        &format!(
            "Logged queries: {} ({} slow), average {}, p95 {}",
            int(m.queries.count),
            int(m.queries.slow_count),
            ms(m.queries.avg_ms),
            ms(m.queries.p95_ms)
        ),
        &if weeks.is_empty() { "  none\n".into() } else { aligned(&["week", "queries", "slow", "p95"], &weeks) },
    );
    let findings = |list: &[Finding]| -> String {
        if list.is_empty() {
            "  none\n".into()
        } else {
            aligned(
                &["rule", "severity", "object"],
                &list.iter().map(|f| vec![f.rule.clone(), f.severity.clone(), f.object.clone()]).collect::<Vec<_>>(),
            )
        }
    };
    if prev.is_some() {
        section(&mut out, "New findings since the previous report", &findings(&m.comparison.new_findings));
        section(&mut out, "Findings gone since the previous report", &findings(&m.comparison.gone_findings));
    } else {
        section(&mut out, &format!("Findings ({})", m.findings.len()), &findings(&m.findings));
    }
    if !m.recommendations.is_empty() {
        let rows: Vec<Vec<String>> = m
            .recommendations
            .iter()
            .map(|r| vec![r.priority.clone(), r.title.clone(), r.action.clone()])
            .collect();
        section(&mut out, "Recommendations", &aligned(&["priority", "title", "action"], &rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_comparisons_and_sections() {
        let text = render(&json!({
            "month": "2026-11-01", "database": "app", "generatedAt": "2026-12-01T04:00:00+00:00",
            "period": {"complete": true},
            "size": {"growthBytes": 2097152, "topGrowth": [{"table": "public.a", "startBytes": 0, "endBytes": 2097152, "growthBytes": 2097152}]},
            "alerts": {"raised": 3, "resolved": 1, "openAtEnd": 2, "byRule": [{"rule": "slow_query", "severity": "error", "count": 3}]},
            "maintenance": {"total": 2, "completed": 1, "failed": 1, "successRate": 50},
            "queries": {"count": 10, "slowCount": 4, "p95Ms": 1200},
            "comparison": {"previousMonth": "2026-10-01", "alertsRaised": {"current": 3, "previous": 1, "change": 2},
                           "newFindings": [{"rule": "high_bloat", "severity": "error", "object": "public.a"}]}
        }))
        .expect("render");
        assert!(text.contains("database app, 2026-11"), "{text}");
        assert!(text.contains("2026-10"), "{text}");
        assert!(text.contains("+2"), "{text}");
        assert!(text.contains("public.a"), "{text}");
        assert!(text.contains("50.0%"), "{text}");
        assert!(render(&json!({"x": 1})).is_err());
        let empty = render(&json!({"month": "2026-10-01", "queries": null, "size": null})).expect("null parts read as empty");
        assert!(empty.contains("Logged queries: - (- slow)"), "{empty}");
    }
}
