//! What a maintenance request says, and the one statement text it becomes.
//!
//! The statement is built only from catalog names of relations resolved to OIDs, quoted
//! with pgrx's identifier quoting (`QuotedName`, the only type `statement` accepts); nothing
//! the caller typed is ever part of it.

use serde::Deserialize;

pub use crate::common::catalog::QuotedName;

/// The request `steward.run_maintenance` builds (extra fields are kept in the record only).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Request {
    pub id: uuid::Uuid,
    pub operation_type: String,
    pub relid: Option<u32>,
    pub indexrelid: Option<u32>,
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub analyze: bool,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub concurrently: bool,
    pub statement_timeout_ms: Option<i64>,
    pub lock_timeout_ms: Option<i64>,
    pub refusal: Option<Refusal>,
    /// The role that asked (recorded by `steward._enter()`, never taken from the caller's
    /// text): the statement runs as this role.  A request without one is never run.
    pub caller_oid: Option<u32>,
}

/// Why the caller refused the request (recorded, never run).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Refusal {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// The operation, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Vacuum { full: bool, analyze: bool, verbose: bool },
    Analyze { verbose: bool },
    ReindexTable { concurrently: bool },
    ReindexIndex { concurrently: bool },
}

impl Request {
    pub fn parse(doc: &serde_json::Value) -> Result<Request, String> {
        serde_json::from_value(doc.clone()).map_err(|e| e.to_string())
    }

    pub fn operation(&self) -> Result<Operation, String> {
        match self.operation_type.as_str() {
            "VACUUM" | "VACUUM FULL" => Ok(Operation::Vacuum {
                full: self.full || self.operation_type == "VACUUM FULL",
                analyze: self.analyze,
                verbose: self.verbose,
            }),
            "ANALYZE" => Ok(Operation::Analyze { verbose: self.verbose }),
            "REINDEX" if self.indexrelid.is_some() => Ok(Operation::ReindexIndex { concurrently: self.concurrently }),
            "REINDEX" if self.relid.is_some() => Ok(Operation::ReindexTable { concurrently: self.concurrently }),
            "REINDEX" => Err("REINDEX needs a table or an index".into()),
            other => Err(format!("unknown operation type {other:?}")),
        }
    }

    /// Whether the operation runs over every user table (no relation given).
    pub fn all_tables(&self) -> bool {
        self.relid.is_none() && self.indexrelid.is_none()
    }
}

/// `DROP INDEX CONCURRENTLY` of an invalid index a failed `REINDEX CONCURRENTLY` left.
pub fn drop_index_concurrently(index: &QuotedName) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", index.as_str())
}

/// The statement for one target.
pub fn statement(op: Operation, target: &QuotedName) -> String {
    let quoted_target = target.as_str();
    fn options(list: &[(&str, bool)]) -> String {
        let on: Vec<&str> = list.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        if on.is_empty() {
            String::new()
        } else {
            format!(" ({})", on.join(", "))
        }
    }
    match op {
        Operation::Vacuum { full, analyze, verbose } => {
            format!("VACUUM{} {quoted_target}", options(&[("FULL", full), ("ANALYZE", analyze), ("VERBOSE", verbose)]))
        }
        Operation::Analyze { verbose } => format!("ANALYZE{} {quoted_target}", options(&[("VERBOSE", verbose)])),
        Operation::ReindexTable { concurrently } => {
            format!("REINDEX TABLE{} {quoted_target}", if concurrently { " CONCURRENTLY" } else { "" })
        }
        Operation::ReindexIndex { concurrently } => {
            format!("REINDEX INDEX{} {quoted_target}", if concurrently { " CONCURRENTLY" } else { "" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(doc: serde_json::Value) -> Request {
        Request::parse(&doc).unwrap_or_else(|e| panic!("{e}"))
    }

    const ID: &str = "00000000-0000-0000-0000-000000000001";

    #[test]
    fn statements_carry_only_the_options_asked_for() {
        let q = QuotedName::already_quoted;
        let plain = Operation::Vacuum { full: false, analyze: false, verbose: false };
        assert_eq!(statement(plain, &q("public.t")), "VACUUM public.t");
        let all = Operation::Vacuum { full: true, analyze: true, verbose: true };
        assert_eq!(statement(all, &q("\"My Schema\".\"T\"")), "VACUUM (FULL, ANALYZE, VERBOSE) \"My Schema\".\"T\"");
        assert_eq!(statement(Operation::Analyze { verbose: false }, &q("s.t")), "ANALYZE s.t");
        assert_eq!(statement(Operation::Analyze { verbose: true }, &q("s.t")), "ANALYZE (VERBOSE) s.t");
        assert_eq!(statement(Operation::ReindexTable { concurrently: true }, &q("s.t")), "REINDEX TABLE CONCURRENTLY s.t");
        assert_eq!(statement(Operation::ReindexIndex { concurrently: false }, &q("s.i")), "REINDEX INDEX s.i");
        assert_eq!(drop_index_concurrently(&q("s.i_ccnew")), "DROP INDEX CONCURRENTLY IF EXISTS s.i_ccnew");
    }

    #[test]
    fn requests_are_checked() {
        let r = req(serde_json::json!({"id": ID, "operation_type": "VACUUM FULL", "relid": 42}));
        assert_eq!(r.operation(), Ok(Operation::Vacuum { full: true, analyze: false, verbose: false }));
        assert!(!r.all_tables());
        let r = req(serde_json::json!({"id": ID, "operation_type": "REINDEX", "relid": 42, "indexrelid": 43, "concurrently": true}));
        assert_eq!(r.operation(), Ok(Operation::ReindexIndex { concurrently: true }));
        let r = req(serde_json::json!({"id": ID, "operation_type": "REINDEX"}));
        assert!(r.operation().is_err());
        let r = req(serde_json::json!({"id": ID, "operation_type": "DROP TABLE"}));
        assert!(r.operation().is_err());
        assert!(req(serde_json::json!({"id": ID, "operation_type": "ANALYZE"})).all_tables());
        assert!(Request::parse(&serde_json::json!({"id": "x", "operation_type": "ANALYZE"})).is_err());
        assert!(Request::parse(&serde_json::json!({"operation_type": "ANALYZE"})).is_err());
        assert!(Request::parse(&serde_json::json!("VACUUM")).is_err());
    }
}
