//! The rule table's evaluator: one pass over a health report (read as a typed struct) gives
//! the findings — one per rule and object, with the severity its thresholds assign — from
//! which both the report's recommendations and `check_alerts()` are made.
//!
//! The rules themselves (thresholds, templates, categories) are rows of
//! `steward.alert_rules` merged with the settings and the administrators' overrides by the
//! view `steward.effective_alert_rules`; what each `metric` reads is the code below.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::AlertsError;
use crate::common::truncate_with_ellipsis as truncate;
use crate::health::report::kind_of;

// ---------------------------------------------------------------------------------------
// The report, as far as the rules read it.  Every part is optional: a report of an older
// version, or a part whose source is missing, reads as empty.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Report {
    pub database: Option<String>,
    pub capabilities: Capabilities,
    pub overview: Option<Overview>,
    pub summary: Summary,
    #[serde(rename = "connectionPool")]
    pub connection_pool: Option<Pool>,
    #[serde(rename = "slowQueries")]
    pub slow_queries: Vec<SlowQuery>,
    #[serde(rename = "queryStats")]
    pub query_stats: Option<QueryStats>,
    #[serde(rename = "tablesNeedingVacuum")]
    pub tables_needing_vacuum: Vec<TableItem>,
    #[serde(rename = "tablesVacuumOverdue")]
    pub tables_vacuum_overdue: Vec<TableItem>,
    #[serde(rename = "tablesNeedingAnalyze")]
    pub tables_needing_analyze: Vec<TableItem>,
    #[serde(rename = "bloatedTables")]
    pub bloated_tables: Vec<TableItem>,
    #[serde(rename = "missingIndexes")]
    pub missing_indexes: Vec<TableItem>,
    #[serde(rename = "unusedIndexes")]
    pub unused_indexes: Vec<IndexItem>,
    #[serde(rename = "bloatedIndexes")]
    pub bloated_indexes: Vec<IndexItem>,
    #[serde(rename = "duplicateIndexes")]
    pub duplicate_indexes: Vec<IndexItem>,
    #[serde(rename = "invalidIndexes")]
    pub invalid_indexes: Vec<IndexItem>,
    #[serde(rename = "longRunning")]
    pub long_running: Vec<Session>,
    #[serde(rename = "idleInTransaction")]
    pub idle_in_transaction: Vec<Session>,
    pub blocking: Vec<Blocked>,
    pub replication: Option<Replication>,
    pub wraparound: Wraparound,
    pub sequences: Vec<SequenceItem>,
    /// Spend of the current day, week and month per user with a budget (issue #17).  Not
    /// part of health_report(): check_alerts() adds it (steward._ai_budget_usage()).
    #[serde(rename = "aiBudgets")]
    pub ai_budgets: Option<Vec<BudgetUse>>,
    /// Configurations whose API key is older than its rotation schedule allows (added by
    /// check_alerts() from steward._ai_keys_due()).
    #[serde(rename = "apiKeysDue")]
    pub api_keys_due: Option<Vec<KeyDue>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct BudgetUse {
    pub user_id: String,
    /// day | week | month
    pub period: String,
    pub period_start: String,
    pub spend: f64,
    pub budget: f64,
    /// costBudget.alertThresholds of the user's effective configuration (shares of the budget).
    pub thresholds: Vec<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyDue {
    pub config_id: String,
    pub config_name: String,
    pub owner: String,
    pub rotation_schedule: String,
    pub key_stored_at: Option<String>,
    pub due_at: Option<String>,
    pub days_overdue: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    pub pg_stat_statements: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Overview {
    pub datname: Option<String>,
    pub cache_hit_ratio: Option<f64>,
    pub blks_hit: Option<f64>,
    pub blks_read: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_reset: Option<String>,
}

/// Exact counts (the lists are capped at `reportListLimit`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Summary {
    #[serde(rename = "tablesNeedingVacuum")]
    pub tables_needing_vacuum: Option<u64>,
    #[serde(rename = "tablesVacuumOverdue")]
    pub tables_vacuum_overdue: Option<u64>,
    #[serde(rename = "tablesNeedingAnalyze")]
    pub tables_needing_analyze: Option<u64>,
    #[serde(rename = "bloatedTables")]
    pub bloated_tables: Option<u64>,
    #[serde(rename = "unusedIndexes")]
    pub unused_indexes: Option<u64>,
    #[serde(rename = "bloatedIndexes")]
    pub bloated_indexes: Option<u64>,
    #[serde(rename = "slowQueries")]
    pub slow_queries: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Pool {
    pub total: Option<f64>,
    pub max_connections: Option<f64>,
    pub idle_in_transaction: Option<f64>,
    pub waiting: Option<f64>,
    pub utilization_pct: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SlowQuery {
    pub source: Option<String>,
    pub queryid: Option<i64>,
    #[serde(skip_serializing)]
    pub query_text: Option<String>,
    pub avg_duration_ms: Option<f64>,
    pub max_duration_ms: Option<f64>,
    pub execution_count: Option<f64>,
    pub calls: Option<f64>,
    pub last_execution: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct QueryStats {
    pub hours: Option<f64>,
    pub count: Option<f64>,
    pub slow_count: Option<f64>,
    pub avg_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TableItem {
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_dead_tup: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_live_tup: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_tuple_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_vacuum_any: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_since_vacuum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analyze_any: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_mod_since_analyze: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloat_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloat_bytes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_size: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_scan: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idx_scan: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_scan_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_tup_read: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IndexItem {
    pub index: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_size: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_since_last_use: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloat_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloat_bytes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likely_cause: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Session {
    pub pid: Option<i64>,
    pub usename: Option<String>,
    pub application_name: Option<String>,
    pub state: Option<String>,
    pub duration_seconds: Option<f64>,
    pub xact_seconds: Option<f64>,
    /// Identifies the session across checks with the pid (pids are reused).
    pub backend_start: Option<String>,
    #[serde(skip_serializing)]
    pub xact_start: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Blocked {
    pub blocked_pid: Option<i64>,
    pub blocked_user: Option<String>,
    pub wait_seconds: Option<f64>,
    pub blocking_pid: Option<i64>,
    pub blocking_user: Option<String>,
    pub blocking_state: Option<String>,
    pub blocking_xact_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Replication {
    pub senders: Vec<Sender>,
    pub slots: Vec<Slot>,
    pub standby: Option<Standby>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Sender {
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub replay_lag_bytes: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Slot {
    pub slot_name: String,
    pub slot_type: Option<String>,
    pub active: Option<bool>,
    pub retained_wal_bytes: Option<f64>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Standby {
    pub replay_lag_bytes: Option<f64>,
    pub replay_delay_seconds: Option<f64>,
    pub last_replayed_transaction_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Wraparound {
    pub databases: Vec<DatabaseWrap>,
    pub tables: Vec<TableWrap>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseWrap {
    pub datname: String,
    pub xid_age: Option<f64>,
    pub mxid_age: Option<f64>,
    pub pct_towards_wraparound: Option<f64>,
    pub pct_towards_mxid_wraparound: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TableWrap {
    pub table: String,
    pub xid_age: Option<f64>,
    pub pct_of_freeze_max_age: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SequenceItem {
    pub sequence: String,
    pub owned_by: Option<String>,
    pub pct_used: Option<f64>,
    pub last_value: Option<f64>,
    pub effective_max: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Rules (rows of steward.effective_alert_rules).
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Medium,
    Low,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
}

/// What a rule reads from the report.  The SQL rule table's CHECK lists the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    CacheHitRatio,
    QueryMeanMs,
    QueryP95Ms,
    ConnectionUsagePct,
    ConnectionHeldPct,
    TableBloatPct,
    IndexBloatPct,
    UnusedIndex,
    DuplicateIndex,
    InvalidIndex,
    SeqScanPct,
    DeadTupleRatio,
    VacuumOverdue,
    AnalyzeOverdue,
    XidWraparoundPct,
    MxidWraparoundPct,
    TableFreezeAgePct,
    SequenceUsedPct,
    LongRunningSeconds,
    IdleInTransactionSeconds,
    BlockedSeconds,
    SlotRetainedBytes,
    SlotInactive,
    ReplicationLagBytes,
    StatStatementsMissing,
    AiBudgetShare,
    ApiKeyOverdueDays,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub rule_id: String,
    pub alert_type: String,
    pub metric: Metric,
    pub object_kind: String,
    pub direction: Direction,
    pub enabled: bool,
    pub info_at: Option<f64>,
    pub warning_at: Option<f64>,
    pub error_at: Option<f64>,
    pub critical_at: Option<f64>,
    pub category: String,
    pub priority: Priority,
    pub title: String,
    pub description: String,
    pub message: String,
    pub action: String,
    pub impact: String,
    pub effort: String,
}

impl Rule {
    /// The highest tier the value reaches (strictly above / below its threshold).
    pub fn severity(&self, value: f64) -> Option<Severity> {
        let tiers = [
            (Severity::Critical, self.critical_at),
            (Severity::Error, self.error_at),
            (Severity::Warning, self.warning_at),
            (Severity::Info, self.info_at),
        ];
        tiers.into_iter().find_map(|(sev, at)| {
            let at = at?;
            let passes = match self.direction {
                Direction::Above => value > at,
                Direction::Below => value < at,
            };
            passes.then_some(sev)
        })
    }

    /// The threshold of the lowest tier in use (what "above N" in a text means).
    fn first_threshold(&self) -> Option<f64> {
        self.info_at.or(self.warning_at).or(self.error_at).or(self.critical_at)
    }

    fn threshold_of(&self, sev: Severity) -> Option<f64> {
        match sev {
            Severity::Info => self.info_at,
            Severity::Warning => self.warning_at,
            Severity::Error => self.error_at,
            Severity::Critical => self.critical_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Candidates: what a metric measured, per object.
// ---------------------------------------------------------------------------------------

struct Candidate {
    object: String,
    value: f64,
    details: Value,
    /// A severity and threshold the object carries itself (budget thresholds come from each
    /// user's configuration, not from the rule's tiers).
    graded: Option<(Severity, f64)>,
}

fn details<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// Evaluated or not: a metric whose source is missing from the report is "unavailable", and
/// `check_alerts()` then neither raises nor resolves its alerts.
enum Measured {
    Candidates(Vec<Candidate>),
    Unavailable(&'static str),
}

fn database_name(r: &Report) -> String {
    r.database
        .clone()
        .or_else(|| r.overview.as_ref().and_then(|o| o.datname.clone()))
        .unwrap_or_else(|| "database".into())
}

fn single(r: &Report, value: Option<f64>, details: Value, missing: &'static str) -> Measured {
    match value {
        Some(v) if v.is_finite() => Measured::Candidates(vec![Candidate { object: database_name(r), value: v, details, graded: None }]),
        _ => Measured::Unavailable(missing),
    }
}

fn tables(items: &[TableItem], value: impl Fn(&TableItem) -> Option<f64>) -> Measured {
    Measured::Candidates(
        items
            .iter()
            .filter_map(|t| value(t).filter(|v| v.is_finite()).map(|v| Candidate { object: t.table.clone(), value: v, details: details(t), graded: None }))
            .collect(),
    )
}

fn indexes(items: &[IndexItem], value: impl Fn(&IndexItem) -> Option<f64>) -> Measured {
    Measured::Candidates(
        items
            .iter()
            .filter_map(|i| value(i).filter(|v| v.is_finite()).map(|v| Candidate { object: i.index.clone(), value: v, details: details(i), graded: None }))
            .collect(),
    )
}

fn sessions(items: &[Session], value: impl Fn(&Session) -> Option<f64>) -> Measured {
    Measured::Candidates(
        items
            .iter()
            .filter_map(|s| {
                let v = value(s).filter(|v| v.is_finite())?;
                // pid + the session's start: a reused pid is another session.
                let object = format!(
                    "pid {} since {}",
                    s.pid.unwrap_or_default(),
                    s.backend_start.as_deref().unwrap_or("?")
                );
                Some(Candidate { object, value: v, details: details(s), graded: None })
            })
            .collect(),
    )
}

fn measure(metric: Metric, r: &Report) -> Measured {
    use Metric::*;
    match metric {
        CacheHitRatio => {
            let ov = r.overview.as_ref();
            // Too few block reads since the statistics reset say nothing about the cache.
            let reads = ov.map(|o| o.blks_hit.unwrap_or(0.0) + o.blks_read.unwrap_or(0.0)).unwrap_or(0.0);
            if ov.is_some() && reads < 1000.0 {
                return Measured::Unavailable("fewer than 1000 block reads since the statistics were reset");
            }
            single(r, ov.and_then(|o| o.cache_hit_ratio), ov.map(details).unwrap_or(Value::Null), "no database overview")
        }
        QueryMeanMs => Measured::Candidates(
            r.slow_queries
                .iter()
                .filter_map(|q| {
                    let v = q.avg_duration_ms.filter(|v| v.is_finite())?;
                    let source = q.source.as_deref().unwrap_or("query");
                    let object = match q.queryid {
                        Some(id) => format!("{source} {id}"),
                        None => format!("{source} {}", short_hash(q.query_text.as_deref().unwrap_or(""))),
                    };
                    // Alerts are read by every admin: a statement text goes into them only
                    // when it comes from the application's own log (which admins read anyway),
                    // never from pg_stat_statements, whose texts follow each reader's rights
                    // (steward.slow_queries() shows it to those who may see it, by queryid).
                    let mut d = details(q);
                    if let (Value::Object(m), Some(text), Some("query_performance_logs")) = (&mut d, &q.query_text, q.source.as_deref()) {
                        m.insert("query".into(), Value::String(truncate(text, 200)));
                    }
                    Some(Candidate { object, value: v, details: d, graded: None })
                })
                .collect(),
        ),
        // No query logged in the window: nothing is slow (the source was read).
        QueryP95Ms => match &r.query_stats {
            Some(qs) if qs.count.unwrap_or(0.0) > 0.0 => single(r, qs.p95_ms, details(qs), "no p95 in queryStats"),
            Some(_) => Measured::Candidates(Vec::new()),
            None => Measured::Unavailable("the report has no queryStats (query_performance_logs)"),
        },
        ConnectionUsagePct => {
            let pool = r.connection_pool.as_ref();
            let used = pool.and_then(|p| {
                p.utilization_pct.or_else(|| match (p.total, p.max_connections) {
                    (Some(t), Some(m)) if m > 0.0 => Some(t / m * 100.0),
                    _ => None,
                })
            });
            single(r, used, pool.map(details).unwrap_or(Value::Null), "no connection metrics")
        }
        ConnectionHeldPct => {
            let pool = r.connection_pool.as_ref();
            let held = pool.and_then(|p| match p.max_connections {
                Some(m) if m > 0.0 => Some((p.idle_in_transaction.unwrap_or(0.0) + p.waiting.unwrap_or(0.0)) / m * 100.0),
                _ => None,
            });
            single(r, held, pool.map(details).unwrap_or(Value::Null), "no connection metrics")
        }
        TableBloatPct => tables(&r.bloated_tables, |t| t.bloat_pct),
        IndexBloatPct => indexes(&r.bloated_indexes, |i| i.bloat_pct),
        // Listed means unused for more than unusedIndexDays (the list applies the setting to
        // the unrounded age): a flag, the days are in the details.
        UnusedIndex => indexes(&r.unused_indexes, |_| Some(1.0)),
        DuplicateIndex => indexes(&r.duplicate_indexes, |_| Some(1.0)),
        InvalidIndex => indexes(&r.invalid_indexes, |_| Some(1.0)),
        SeqScanPct => tables(&r.missing_indexes, |t| t.seq_scan_pct),
        DeadTupleRatio => tables(&r.tables_needing_vacuum, |t| t.dead_tuple_ratio),
        VacuumOverdue => tables(&r.tables_vacuum_overdue, |_| Some(1.0)),
        AnalyzeOverdue => tables(&r.tables_needing_analyze, |_| Some(1.0)),
        XidWraparoundPct => Measured::Candidates(
            r.wraparound
                .databases
                .iter()
                .filter_map(|d| d.pct_towards_wraparound.map(|v| Candidate { object: d.datname.clone(), value: v, details: details(d), graded: None }))
                .collect(),
        ),
        MxidWraparoundPct => Measured::Candidates(
            r.wraparound
                .databases
                .iter()
                .filter_map(|d| d.pct_towards_mxid_wraparound.map(|v| Candidate { object: d.datname.clone(), value: v, details: details(d), graded: None }))
                .collect(),
        ),
        TableFreezeAgePct => Measured::Candidates(
            r.wraparound
                .tables
                .iter()
                .filter_map(|t| t.pct_of_freeze_max_age.map(|v| Candidate { object: t.table.clone(), value: v, details: details(t), graded: None }))
                .collect(),
        ),
        SequenceUsedPct => Measured::Candidates(
            r.sequences
                .iter()
                .filter_map(|s| s.pct_used.map(|v| Candidate { object: s.sequence.clone(), value: v, details: details(s), graded: None }))
                .collect(),
        ),
        LongRunningSeconds => sessions(&r.long_running, |s| s.duration_seconds),
        IdleInTransactionSeconds => sessions(&r.idle_in_transaction, |s| s.xact_seconds.or(s.duration_seconds)),
        BlockedSeconds => Measured::Candidates(
            r.blocking
                .iter()
                .filter_map(|b| {
                    let v = b.wait_seconds?;
                    Some(Candidate {
                        object: format!("pid {} blocked by pid {}", b.blocked_pid.unwrap_or_default(), b.blocking_pid.unwrap_or_default()),
                        value: v,
                        details: details(b),
                        graded: None,
                    })
                })
                .collect(),
        ),
        SlotRetainedBytes | SlotInactive => match &r.replication {
            None => Measured::Unavailable("no replication section in the report"),
            Some(rep) => Measured::Candidates(
                rep.slots
                    .iter()
                    .filter_map(|s| {
                        let v = if metric == SlotInactive {
                            (s.active == Some(false)).then_some(1.0)?
                        } else {
                            s.retained_wal_bytes?
                        };
                        Some(Candidate { object: s.slot_name.clone(), value: v, details: details(s), graded: None })
                    })
                    .collect(),
            ),
        },
        ReplicationLagBytes => match &r.replication {
            None => Measured::Unavailable("no replication section in the report"),
            Some(rep) => {
                let mut out: Vec<Candidate> = rep
                    .senders
                    .iter()
                    .filter_map(|s| {
                        let v = s.replay_lag_bytes?;
                        let name = s.application_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "standby".into());
                        Some(Candidate { object: format!("{name} {}", s.client_addr.as_deref().unwrap_or("")).trim().to_string(), value: v, details: details(s), graded: None })
                    })
                    .collect();
                if let Some(sb) = &rep.standby {
                    if let Some(v) = sb.replay_lag_bytes {
                        out.push(Candidate { object: "this standby".into(), value: v, details: details(sb), graded: None });
                    }
                }
                Measured::Candidates(out)
            }
        },
        AiBudgetShare => match &r.ai_budgets {
            None => Measured::Unavailable("AI spending is read by check_alerts(), not by the health report"),
            Some(uses) => Measured::Candidates(uses.iter().flat_map(budget_candidates).collect()),
        },
        ApiKeyOverdueDays => match &r.api_keys_due {
            None => Measured::Unavailable("API key ages are read by check_alerts(), not by the health report"),
            Some(keys) => Measured::Candidates(
                keys.iter()
                    .filter(|k| k.days_overdue.is_finite())
                    .map(|k| Candidate {
                        object: format!("configuration {}", k.config_id),
                        value: k.days_overdue,
                        details: details(k),
                        graded: None,
                    })
                    .collect(),
            ),
        },
        StatStatementsMissing => match r.capabilities.pg_stat_statements {
            Some(false) => single(r, Some(1.0), Value::Null, ""),
            Some(true) => Measured::Candidates(Vec::new()),
            None => Measured::Unavailable("the report does not say whether pg_stat_statements is loaded"),
        },
    }
}

/// One candidate per level a user's spend of one period has reached: each alert threshold
/// crossed (the highest one error, the lower ones warning) and the budget itself exceeded
/// (critical).  Each is its own alert (user, period, period start, level), raised once.
fn budget_candidates(u: &BudgetUse) -> Vec<Candidate> {
    if !(u.budget.is_finite() && u.budget > 0.0 && u.spend.is_finite()) {
        return Vec::new();
    }
    let share = u.spend / u.budget;
    let mut levels: Vec<f64> = u.thresholds.iter().copied().filter(|t| t.is_finite() && *t > 0.0).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    // The validator allows 20; documents it never saw are cut to the same.
    levels.truncate(MAX_BUDGET_LEVELS);
    let top = levels.len();
    let mut out = Vec::new();
    let mut push = |label: String, sev: Severity, at: f64| {
        let details = json!({
            "user_id": u.user_id, "period": u.period, "period_start": u.period_start,
            "budget_name": match u.period.as_str() { "day" => "daily", "week" => "weekly", "month" => "monthly", other => other },
            "spend": u.spend, "budget": u.budget, "share_pct": share * 100.0, "level": label,
        });
        out.push(Candidate {
            object: format!("user {} {} {} {}", u.user_id, u.period, u.period_start, label),
            value: share,
            details,
            graded: Some((sev, at)),
        });
    };
    for (i, t) in levels.iter().enumerate() {
        // spend against threshold × budget, as ai_budget_status() compares (not the rounded share).
        if u.spend >= t * u.budget {
            let sev = if i + 1 == top { Severity::Error } else { Severity::Warning };
            push(percent_label(*t), sev, *t);
        }
    }
    if u.spend > u.budget {
        push("over budget".into(), Severity::Critical, 1.0);
    }
    out
}

const MAX_BUDGET_LEVELS: usize = 20;

/// A threshold as a percentage with up to two decimals and no trailing zeros ("75%",
/// "75.01%"): the label is part of the alert's fingerprint, so close thresholds stay apart.
fn percent_label(share: f64) -> String {
    let s = format!("{:.2}", share * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Which summary count counts this metric's objects exactly (its list may be capped).
fn exact_count(metric: Metric, r: &Report) -> Option<(u64, usize)> {
    use Metric::*;
    let s = &r.summary;
    match metric {
        TableBloatPct => s.bloated_tables.map(|n| (n, r.bloated_tables.len())),
        IndexBloatPct => s.bloated_indexes.map(|n| (n, r.bloated_indexes.len())),
        UnusedIndex => s.unused_indexes.map(|n| (n, r.unused_indexes.len())),
        DeadTupleRatio => s.tables_needing_vacuum.map(|n| (n, r.tables_needing_vacuum.len())),
        VacuumOverdue => s.tables_vacuum_overdue.map(|n| (n, r.tables_vacuum_overdue.len())),
        AnalyzeOverdue => s.tables_needing_analyze.map(|n| (n, r.tables_needing_analyze.len())),
        QueryMeanMs => s.slow_queries.map(|n| (n, r.slow_queries.len())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Findings and recommendations.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub alert_type: String,
    pub severity: Severity,
    pub object_kind: String,
    pub object_name: String,
    pub fingerprint: String,
    pub value: f64,
    pub threshold: Option<f64>,
    pub message: String,
    pub details: Value,
}

#[derive(Debug, Serialize)]
pub struct Unavailable {
    pub rule_id: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    /// Rules that were evaluated (their open alerts may be resolved when they did not fire).
    pub evaluated: Vec<String>,
    /// Rules whose source was missing: nothing raised, nothing resolved.
    pub unavailable: Vec<Unavailable>,
    #[serde(skip)]
    counts: Vec<(String, usize)>,
}

pub fn parse_report(report: &Value) -> Result<Report, AlertsError> {
    if !report.is_object() {
        return Err(AlertsError::NotAReport(format!("expected an object, got {}", kind_of(report))));
    }
    Report::deserialize(report).map_err(|e| AlertsError::NotAReport(e.to_string()))
}

pub fn parse_rules(rules: &Value) -> Result<Vec<Rule>, AlertsError> {
    match rules {
        Value::Null => Ok(Vec::new()),
        _ => Vec::<Rule>::deserialize(rules).map_err(|e| AlertsError::BadRules(e.to_string())),
    }
}

pub fn evaluate(report: &Report, rules: &[Rule]) -> Evaluation {
    let mut ev = Evaluation { findings: Vec::new(), evaluated: Vec::new(), unavailable: Vec::new(), counts: Vec::new() };
    for rule in rules.iter().filter(|r| r.enabled) {
        match measure(rule.metric, report) {
            Measured::Unavailable(reason) => ev.unavailable.push(Unavailable { rule_id: rule.rule_id.clone(), reason: reason.into() }),
            Measured::Candidates(cands) => {
                ev.evaluated.push(rule.rule_id.clone());
                let before = ev.findings.len();
                for c in cands {
                    let (sev, threshold) = match c.graded {
                        Some((sev, at)) => (sev, Some(at)),
                        None => {
                            let Some(sev) = rule.severity(c.value) else { continue };
                            (sev, rule.threshold_of(sev))
                        }
                    };
                    let vars = Vars { object: &c.object, value: c.value, threshold, details: &c.details, n: 1, names: "" };
                    ev.findings.push(Finding {
                        rule_id: rule.rule_id.clone(),
                        alert_type: rule.alert_type.clone(),
                        severity: sev,
                        object_kind: rule.object_kind.clone(),
                        fingerprint: format!("{}:{}", rule.rule_id, c.object),
                        message: render(&rule.message, &vars),
                        object_name: c.object,
                        value: c.value,
                        threshold,
                        details: c.details,
                    });
                }
                let fired = ev.findings.len() - before;
                // A capped list: the objects beyond it fire as the listed ones do.
                let n = match exact_count(rule.metric, report) {
                    Some((exact, listed)) if fired > 0 && exact as usize > listed => fired + (exact as usize - listed),
                    _ => fired,
                };
                ev.counts.push((rule.rule_id.clone(), n));
            }
        }
    }
    ev
}

/// One recommendation per rule that found something, high priority first (CONTRACT §1).
pub fn recommendations(ev: &Evaluation, rules: &[Rule]) -> Value {
    let mut recs: Vec<(Priority, usize, Value)> = Vec::new();
    for (order, rule) in rules.iter().enumerate() {
        let Some(&(_, n)) = ev.counts.iter().find(|(id, _)| id == &rule.rule_id) else { continue };
        if n == 0 {
            continue;
        }
        let found: Vec<&Finding> = ev.findings.iter().filter(|f| f.rule_id == rule.rule_id).collect();
        let worst = found.iter().max_by(|a, b| a.severity.cmp(&b.severity).then(a.value.total_cmp(&b.value)));
        let mut names: Vec<String> = found.iter().take(5).map(|f| f.object_name.clone()).collect();
        if n > 5 {
            names.push(format!("and {} more", n - names.len()));
        }
        let names = names.join(", ");
        let empty = Value::Null;
        let vars = Vars {
            object: worst.map(|f| f.object_name.as_str()).unwrap_or(""),
            value: worst.map(|f| f.value).unwrap_or(0.0),
            threshold: rule.first_threshold(),
            details: worst.map(|f| &f.details).unwrap_or(&empty),
            n,
            names: &names,
        };
        recs.push((
            rule.priority,
            order,
            json!({
                "priority": rule.priority.as_str(),
                "category": rule.category,
                "title": render(&rule.title, &vars),
                "description": render(&rule.description, &vars),
                "action": rule.action,
                "impact": rule.impact,
                "effort": rule.effort,
                "rule": rule.rule_id,
                "severity": worst.map(|f| f.severity.as_str()),
                "count": n,
            }),
        ));
    }
    recs.sort_by_key(|(p, order, _)| (*p, *order));
    Value::Array(recs.into_iter().map(|(_, _, v)| v).collect())
}

// ---------------------------------------------------------------------------------------
// Templates: {object} {value} {threshold} {n} {names}, a detail field {field}, a size
// {field:bytes}, one decimal {field:1}, and a plural {n|table|tables}.
// ---------------------------------------------------------------------------------------

struct Vars<'a> {
    object: &'a str,
    value: f64,
    threshold: Option<f64>,
    details: &'a Value,
    n: usize,
    names: &'a str,
}

fn number(v: f64, places: Option<usize>) -> String {
    match places {
        Some(p) => format!("{v:.p$}"),
        None if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        None => format!("{:.1}", v),
    }
}

/// A size as the text report writes it ("5120 kB").
pub fn pretty_bytes(v: f64) -> String {
    crate::health::report::bytes(Some(v))
}

fn lookup(key: &str, vars: &Vars) -> Option<Value> {
    match key {
        "object" => Some(Value::String(vars.object.into())),
        "value" => Some(json!(vars.value)),
        "threshold" => vars.threshold.map(|t| json!(t)),
        "n" => Some(json!(vars.n)),
        "names" => Some(Value::String(vars.names.into())),
        _ => vars.details.get(key).cloned(),
    }
}

fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        let parts: Vec<&str> = inner.split('|').collect();
        if parts.len() == 3 {
            let n = lookup(parts[0], vars).and_then(|v| v.as_f64()).unwrap_or(0.0);
            out.push_str(if n == 1.0 { parts[1] } else { parts[2] });
            continue;
        }
        let (key, fmt) = inner.split_once(':').unwrap_or((inner, ""));
        match lookup(key, vars) {
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(0.0);
                out.push_str(&match fmt {
                    "bytes" => pretty_bytes(v),
                    "" => number(v, None),
                    p => number(v, p.parse().ok()),
                });
            }
            Some(Value::String(s)) => out.push_str(&s),
            Some(Value::Bool(b)) => out.push_str(if b { "yes" } else { "no" }),
            Some(Value::Null) | None => out.push('?'),
            Some(other) => out.push_str(&other.to_string()),
        }
    }
    out.push_str(rest);
    out
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}



#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, metric: &str, dir: &str, tiers: [Option<f64>; 4], priority: &str) -> Value {
        json!({
            "rule_id": id, "alert_type": id, "metric": metric, "object_kind": "table", "direction": dir,
            "enabled": true, "info_at": tiers[0], "warning_at": tiers[1], "error_at": tiers[2], "critical_at": tiers[3],
            "category": "maintenance", "priority": priority,
            "title": "{n} {n|table|tables} over {threshold}%", "description": "Worst: {names}.",
            "message": "Table {object} is {bloat_pct:1}% bloat ({bloat_bytes:bytes})",
            "action": "do it", "impact": "less", "effort": "low"
        })
    }

    fn rules() -> Vec<Rule> {
        parse_rules(&json!([
            rule("high_bloat", "table_bloat_pct", "above", [None, Some(20.0), Some(35.0), Some(50.0)], "medium"),
            rule("low_cache_hit_ratio", "cache_hit_ratio", "below", [None, Some(90.0), Some(80.0), None], "high"),
        ]))
        .expect("rules")
    }

    #[test]
    fn tiers_pick_the_highest_reached_strictly() {
        let r = &rules()[0];
        assert_eq!(r.severity(20.0), None);
        assert_eq!(r.severity(20.1), Some(Severity::Warning));
        assert_eq!(r.severity(35.5), Some(Severity::Error));
        assert_eq!(r.severity(51.0), Some(Severity::Critical));
        let c = &rules()[1];
        assert_eq!(c.severity(95.0), None);
        assert_eq!(c.severity(85.0), Some(Severity::Warning));
        assert_eq!(c.severity(10.0), Some(Severity::Error));
    }

    #[test]
    fn findings_have_fingerprints_messages_and_recommendations_sort_high_first() {
        let report = parse_report(&json!({
            "database": "app",
            "overview": {"datname": "app", "cache_hit_ratio": 70.0, "blks_hit": 7000, "blks_read": 3000},
            "bloatedTables": [
                {"table": "public.a", "bloat_pct": 40.0, "bloat_bytes": 5242880},
                {"table": "public.b", "bloat_pct": 10.0, "bloat_bytes": 1}
            ],
            "summary": {"bloatedTables": 4}
        }))
        .expect("report");
        let rules = rules();
        let ev = evaluate(&report, &rules);
        assert_eq!(ev.findings.len(), 2, "{:?}", ev.findings);
        let bloat = ev.findings.iter().find(|f| f.rule_id == "high_bloat").expect("bloat");
        assert_eq!(bloat.severity, Severity::Error);
        assert_eq!(bloat.fingerprint, "high_bloat:public.a");
        assert_eq!(bloat.message, "Table public.a is 40.0% bloat (5120 kB)");
        let recs = recommendations(&ev, &rules);
        assert_eq!(recs[0]["priority"], "high");
        assert_eq!(recs[1]["title"], "3 tables over 20%", "one found, two more beyond the capped list: {recs}");
    }

    #[test]
    fn a_missing_source_is_unavailable_not_healthy() {
        let ev = evaluate(&parse_report(&json!({"overview": {"blks_hit": 1, "blks_read": 0, "cache_hit_ratio": 0}})).unwrap(), &rules());
        assert!(ev.findings.is_empty());
        assert_eq!(ev.unavailable.len(), 1, "too few reads to judge the cache");
        assert_eq!(ev.evaluated, vec!["high_bloat".to_string()]);
    }

    #[test]
    fn templates_render_plurals_sizes_and_unknown_fields() {
        let d = json!({"size": 3_221_225_472_i64, "flag": true});
        let vars = Vars { object: "x", value: 2.0, threshold: Some(1.5), details: &d, n: 1, names: "a, b" };
        assert_eq!(render("{n} {n|index|indexes} {size:bytes} {flag} {nope} {threshold} {value:2}", &vars), "1 index 3072 MB yes ? 1.5 2.00");
        assert_eq!(render("unclosed {brace", &vars), "unclosed {brace");
    }

    #[test]
    fn budget_levels_are_graded_by_the_users_own_thresholds() {
        let budget = parse_rules(&json!([{
            "rule_id": "ai_budget", "alert_type": "ai_budget", "metric": "ai_budget_share", "object_kind": "user",
            "direction": "above", "enabled": true, "info_at": null, "warning_at": 0, "error_at": null, "critical_at": null,
            "category": "capacity", "priority": "high", "title": "t", "description": "d",
            "message": "{share_pct:0}% of the {budget_name} budget, level {level}", "action": "a", "impact": "i", "effort": "low"
        }]))
        .expect("rule");
        let report = |spend: f64, thresholds: Value| {
            parse_report(&json!({"aiBudgets": [{"user_id": "u1", "period": "week", "period_start": "2026-11-30",
                                                "spend": spend, "budget": 100.0, "thresholds": thresholds}]}))
            .expect("report")
        };
        let levels = |ev: &Evaluation| ev.findings.iter().map(|f| (f.severity, f.details["level"].as_str().unwrap_or("").to_string())).collect::<Vec<_>>();
        // Below the lowest threshold: nothing; thresholds unsorted and repeated are read in order.
        assert!(evaluate(&report(49.0, json!([0.9, 0.5, 0.75, 0.5])), &budget).findings.is_empty());
        let ev = evaluate(&report(80.0, json!([0.9, 0.5, 0.75, 0.5])), &budget);
        assert_eq!(levels(&ev), vec![(Severity::Warning, "50%".into()), (Severity::Warning, "75%".into())]);
        assert_eq!(ev.findings[1].fingerprint, "ai_budget:user u1 week 2026-11-30 75%");
        assert_eq!(ev.findings[1].message, "80% of the weekly budget, level 75%");
        let ev = evaluate(&report(100.5, json!([0.5, 0.75, 0.9])), &budget);
        assert_eq!(
            levels(&ev),
            vec![(Severity::Warning, "50%".into()), (Severity::Warning, "75%".into()), (Severity::Error, "90%".into()), (Severity::Critical, "over budget".into())]
        );
        // Exactly the budget is not over it; no thresholds: only "over budget"; no budget: nothing.
        assert_eq!(levels(&evaluate(&report(100.0, json!([])), &budget)), vec![]);
        assert_eq!(levels(&evaluate(&report(101.0, json!([])), &budget)), vec![(Severity::Critical, "over budget".into())]);
        let none = parse_report(&json!({"aiBudgets": [{"user_id": "u1", "period": "day", "spend": 5.0, "budget": 0.0, "thresholds": [0.5]}]})).unwrap();
        assert!(evaluate(&none, &budget).findings.is_empty());
        // Close thresholds keep their own labels; a list longer than 20 is cut.
        assert_eq!(percent_label(0.7501), "75.01%");
        assert_eq!(percent_label(0.75), "75%");
        let many: Vec<f64> = (1..=500).map(|i| i as f64 / 1000.0).collect();
        assert_eq!(evaluate(&report(99.0, json!(many)), &budget).findings.len(), 20);
        // The health report has no spending: the rule is unavailable there, not "all clear".
        let ev = evaluate(&parse_report(&json!({})).unwrap(), &budget);
        assert_eq!(ev.unavailable.len(), 1);
        assert!(ev.evaluated.is_empty());
    }

    #[test]
    fn not_a_report_or_bad_rules_are_errors() {
        assert!(parse_report(&json!([1])).is_err());
        assert!(parse_rules(&json!([{"rule_id": "x"}])).is_err());
    }
}
