//! Errors of the alert rules, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// A document handed to the evaluator was not the shape `health_report()` produces.
    #[error("not a pg_steward health report: {0}")]
    NotAReport(String),

    /// A document handed to the monthly renderer was not a stored monthly report.
    #[error("not a pg_steward monthly report: {0}")]
    NotAMonthlyReport(String),

    /// The rule list did not have the shape of `steward.effective_alert_rules`.
    #[error("not a list of pg_steward alert rules: {0}")]
    BadRules(String),
}

impl From<AlertsError> for ErrorReport {
    fn from(err: AlertsError) -> Self {
        match err {
            AlertsError::NotAReport(detail) => ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "argument is not a pg_steward health report",
                "pg_steward.alerts",
            )
            .set_detail(detail)
            .set_hint("Pass the result of steward.health_report()."),
            AlertsError::NotAMonthlyReport(detail) => ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "argument is not a pg_steward monthly report",
                "pg_steward.alerts",
            )
            .set_detail(detail)
            .set_hint("Pass the report column of steward.health_reports (steward.monthly_report(month))."),
            AlertsError::BadRules(detail) => ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "argument is not a list of pg_steward alert rules",
                "pg_steward.alerts",
            )
            .set_detail(detail)
            .set_hint("Pass the rows of steward.effective_alert_rules as a JSON array."),
        }
    }
}
