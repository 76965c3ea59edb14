//! Errors of the configuration capability, each with its SQLSTATE, DETAIL and HINT.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::common::jsonb::LimitError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown document kind \"{0}\"")]
    UnknownKind(String),
    #[error("invalid {kind}")]
    Invalid { kind: &'static str, problems: Vec<String> },
    #[error("unknown model \"{0}\"")]
    UnknownModel(String),
    #[error("permission denied for the configuration of another user")]
    NotYours,
    /// A document or a resolution nested too deeply (54001) or too large (54000).
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl ConfigError {
    /// Raise this as a PostgreSQL error, for the walkers whose callers take no `Result`.
    #[cfg(not(test))]
    pub fn raise(self) -> ! {
        ErrorReport::from(self).report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }

    /// Outside a server (unit tests) there is no error machinery to raise into.
    #[cfg(test)]
    pub fn raise(self) -> ! {
        panic!("{self}")
    }
}

impl From<ConfigError> for ErrorReport {
    fn from(err: ConfigError) -> Self {
        let message = err.to_string();
        match err {
            ConfigError::UnknownKind(_) => ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.config")
                .set_hint("Use user_preferences or ai_config."),
            ConfigError::Invalid { problems, .. } => {
                let count = problems.len();
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{message}: {count} problem{}", if count == 1 { "" } else { "s" }), "pg_steward.config")
                    .set_detail(problems.join("\n"))
                    .set_hint("Nothing was stored. steward.validate_user_preferences() / validate_ai_config() list the same problems.")
            }
            ConfigError::NotYours => ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "pg_steward.config")
                .set_hint("End users read their own configuration; steward_admin and service_role read anyone's."),
            ConfigError::Limit(limit) => ErrorReport::new(limit.code(), message, "pg_steward.config")
                .set_detail(limit.detail())
                .set_hint(limit.hint()),
            ConfigError::UnknownModel(_) => ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_steward.config")
                .set_hint(format!("Known models: {}.", super::defaults::model_list())),
        }
    }
}
