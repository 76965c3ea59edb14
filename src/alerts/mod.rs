//! Alerts and recommendations from one rule table (issue #16).
//!
//! `steward.alert_rules` (sql/alert_rules.sql) says, per rule, which metric it reads, its
//! thresholds per severity (settings and administrators' overrides merged by the view
//! `steward.effective_alert_rules`), the object it is about and its texts.  This module
//! evaluates those rules over a health report; `health_report()` turns the findings into
//! recommendations and `check_alerts()` into the alert lifecycle (open, escalate, resolve).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;

mod error;
pub mod rules;

/// The findings of every enabled rule over a report: `{findings, evaluated, unavailable}`.
#[pg_extern(name = "_report_findings", immutable, parallel_safe)]
pub fn report_findings(report: JsonB, rules: JsonB) -> Result<JsonB, ErrorReport> {
    let report = rules::parse_report(&report.0)?;
    let rules = rules::parse_rules(&rules.0)?;
    let ev = rules::evaluate(&report, &rules);
    Ok(JsonB(serde_json::to_value(&ev).map_err(|e| error::AlertsError::BadRules(e.to_string()))?))
}

/// The report's recommendations (CONTRACT §1): one per rule that found something, high first.
#[pg_extern(name = "_report_recommendations", immutable, parallel_safe)]
pub fn report_recommendations(report: JsonB, rules: JsonB) -> Result<JsonB, ErrorReport> {
    let report = rules::parse_report(&report.0)?;
    let rules = rules::parse_rules(&rules.0)?;
    let ev = rules::evaluate(&report, &rules);
    Ok(JsonB(rules::recommendations(&ev, &rules)))
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "alerts_test.rs"]
mod alerts_test;

pub mod monthly;

/// A monthly report (`steward.health_reports.report`) as aligned text.
#[pg_extern(name = "_render_monthly_report", immutable, parallel_safe)]
pub fn render_monthly_report(report: JsonB) -> Result<String, ErrorReport> {
    monthly::render(&report.0).map_err(ErrorReport::from)
}
