//! Recommendations from a health report, and the report as aligned text.
//!
//! The report itself is assembled in SQL (`sql/report.sql`); this module only reads it.
//! Missing parts read as empty, so an older or partial report still renders.

use serde_json::{json, Value};

use super::error::HealthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
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

struct Rec {
    priority: Priority,
    category: &'static str,
    title: String,
    description: String,
    action: String,
    impact: &'static str,
    effort: &'static str,
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_f64().or_else(|| cur.as_str().and_then(|s| s.parse().ok()))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The items of list `key` whose boolean `flag` is `value` (missing flags never match).
fn flagged(v: &Value, key: &str, flag: &str, value: bool) -> Vec<Value> {
    list(v, key).iter().filter(|item| item.get(flag).and_then(Value::as_bool) == Some(value)).cloned().collect()
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `count` of the list at `key`: the summary's count when present (lists are capped), else the
/// list's length.
fn count(report: &Value, key: &str) -> usize {
    num(report, &["summary", key])
        .map(|n| n as usize)
        .unwrap_or_else(|| list(report, key).len())
}

/// Up to five names from a list of objects, for the description.
fn names(items: &[Value], field: &str) -> String {
    let mut shown: Vec<String> = items.iter().take(5).map(|i| text(i, field)).collect();
    if items.len() > 5 {
        shown.push(format!("and {} more", items.len() - 5));
    }
    shown.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The recommendations of CONTRACT §1 plus one per finding the report carries, high first.
pub fn recommendations(report: &Value) -> Result<Value, HealthError> {
    if !report.is_object() {
        return Err(HealthError::NotAReport(format!("expected an object, got {}", kind_of(report))));
    }
    let t = |k: &str, default: f64| num(report, &["thresholds", k]).unwrap_or(default);
    let mut recs: Vec<Rec> = Vec::new();

    if let Some(ratio) = num(report, &["overview", "cache_hit_ratio"]) {
        let threshold = t("lowCacheHitRatioThreshold", 90.0);
        if ratio < threshold {
            recs.push(Rec {
                priority: Priority::High,
                category: "performance",
                title: "Low cache hit ratio".into(),
                description: format!("Only {ratio:.1}% of block reads are served from shared buffers (threshold {threshold}%)."),
                action: "Increase shared_buffers (typically 25% of RAM) and review queries that scan large tables.".into(),
                impact: "Fewer disk reads and faster queries",
                effort: "low",
            });
        }
    }

    let slow = count(report, "slowQueries");
    if slow > 0 {
        recs.push(Rec {
            priority: Priority::High,
            category: "performance",
            title: format!("{} above {} ms", plural(slow, "slow query", "slow queries"), t("slowQueryThresholdMs", 500.0)),
            description: "Queries whose mean execution time exceeds the slow-query threshold.".into(),
            action: "EXPLAIN (ANALYZE, BUFFERS) the slowest queries; add missing indexes or rewrite them.".into(),
            impact: "Lower latency for the affected endpoints",
            effort: "medium",
        });
    }

    if let (Some(total), Some(max)) = (
        num(report, &["connectionPool", "total"]),
        num(report, &["connectionPool", "max_connections"]),
    ) {
        let threshold = t("highConnectionUsageThreshold", 80.0);
        let used = if max > 0.0 { total / max * 100.0 } else { 0.0 };
        if used > threshold {
            recs.push(Rec {
                priority: Priority::High,
                category: "capacity",
                title: "High connection usage".into(),
                description: format!("{total} of {max} connections in use ({used:.1}%, threshold {threshold}%)."),
                action: "Raise max_connections or pool connections with PgBouncer.".into(),
                impact: "Avoids refused connections at peak load",
                effort: "medium",
            });
        }
    }

    let invalid = list(report, "invalidIndexes");
    if !invalid.is_empty() {
        recs.push(Rec {
            priority: Priority::High,
            category: "maintenance",
            title: plural(invalid.len(), "invalid index", "invalid indexes"),
            description: format!(
                "Invalid indexes are maintained on every write but never used: {}.",
                names(invalid, "index")
            ),
            action: "DROP INDEX CONCURRENTLY the leftover (often a failed CREATE/REINDEX CONCURRENTLY, named *_ccnew), then rebuild it if it is needed.".into(),
            impact: "Removes write overhead and restores the intended index",
            effort: "low",
        });
    }

    let wrap_db = list(report.get("wraparound").unwrap_or(&Value::Null), "databases");
    if let Some(worst) = wrap_db
        .iter()
        .filter_map(|d| num(d, &["pct_towards_wraparound"]).map(|p| (p, d)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        if worst.0 > 50.0 {
            recs.push(Rec {
                priority: Priority::High,
                category: "maintenance",
                title: "Transaction ID wraparound approaching".into(),
                description: format!(
                    "Database {} has used {:.1}% of the transaction IDs before wraparound.",
                    text(worst.1, "datname"),
                    worst.0
                ),
                action: "VACUUM (FREEZE) the oldest tables; check for long transactions, stale replication slots and prepared transactions holding back the horizon.".into(),
                impact: "Prevents a forced shutdown to avoid wraparound",
                effort: "medium",
            });
        }
    }
    let wrap_tables = list(report.get("wraparound").unwrap_or(&Value::Null), "tables");
    if !wrap_tables.is_empty() {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "maintenance",
            title: format!("{} past autovacuum_freeze_max_age", plural(wrap_tables.len(), "table", "tables")),
            description: format!("Anti-wraparound vacuum is due on: {}.", names(wrap_tables, "table")),
            action: "VACUUM (FREEZE) these tables in a quiet period.".into(),
            impact: "Keeps the database far from wraparound",
            effort: "low",
        });
    }

    let sequences = list(report, "sequences");
    if !sequences.is_empty() {
        recs.push(Rec {
            priority: Priority::High,
            category: "capacity",
            title: plural(sequences.len(), "sequence close to exhaustion", "sequences close to exhaustion"),
            description: format!("Sequences (or the columns they feed) above 75% of their range: {}.", names(sequences, "sequence")),
            action: "Convert the column and sequence to bigint before they run out.".into(),
            impact: "Prevents failing inserts",
            effort: "high",
        });
    }

    let blocking = list(report, "blocking");
    if !blocking.is_empty() {
        recs.push(Rec {
            priority: Priority::High,
            category: "performance",
            title: plural(blocking.len(), "blocked session", "blocked sessions"),
            description: "Sessions are waiting on locks held by other sessions.".into(),
            action: "Inspect the blocking sessions (steward.blocking_chains()); end or shorten the transactions that hold the locks.".into(),
            impact: "Unblocks waiting requests",
            effort: "low",
        });
    }

    // Replication (absent from reports of older pg_steward versions: nothing to say then).
    let replication = report.get("replication").unwrap_or(&Value::Null);
    let retaining = flagged(replication, "slots", "retains_too_much", true);
    if !retaining.is_empty() {
        recs.push(Rec {
            priority: Priority::High,
            category: "capacity",
            title: plural(retaining.len(), "replication slot retains too much WAL", "replication slots retain too much WAL"),
            description: format!(
                "WAL is kept for {} (above replicationSlotRetainedBytes); a slot nobody consumes fills the disk.",
                names(&retaining, "slot_name")
            ),
            action: "Reconnect the consumer, or drop the slot if it is abandoned (SELECT pg_drop_replication_slot(name)); consider max_slot_wal_keep_size.".into(),
            impact: "Prevents a full disk and a stopped server",
            effort: "low",
        });
    }
    let inactive = flagged(replication, "slots", "active", false);
    if !inactive.is_empty() {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "capacity",
            title: plural(inactive.len(), "inactive replication slot", "inactive replication slots"),
            description: format!("No consumer is connected to {}; the WAL they hold back keeps growing.", names(&inactive, "slot_name")),
            action: "Reconnect the consumer or drop the slot.".into(),
            impact: "Stops WAL accumulating",
            effort: "low",
        });
    }
    let mut lagging = flagged(replication, "senders", "lagging", true);
    if replication.get("standby").and_then(|s| s.get("lagging")).and_then(Value::as_bool).unwrap_or(false) {
        lagging.push(serde_json::json!({"application_name": "this standby"}));
    }
    if !lagging.is_empty() {
        recs.push(Rec {
            priority: Priority::High,
            category: "capacity",
            title: plural(lagging.len(), "standby lags behind", "standbys lag behind"),
            description: format!(
                "Replay is behind by more than replicationLagBytes / replicationLagSeconds: {}.",
                names(&lagging, "application_name")
            ),
            action: "Check the standby's I/O and network, long queries on it (hot_standby_feedback, max_standby_streaming_delay) and its WAL apply rate.".into(),
            impact: "Keeps reads on standbys fresh and failover fast",
            effort: "medium",
        });
    }

    let vacuum = count(report, "tablesNeedingVacuum");
    if vacuum > 0 {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "maintenance",
            title: format!("{} need VACUUM", plural(vacuum, "table", "tables")),
            description: format!(
                "Dead tuples exceed 10% of live tuples in: {}.",
                names(list(report, "tablesNeedingVacuum"), "table")
            ),
            action: "VACUUM (ANALYZE) these tables and lower autovacuum_vacuum_scale_factor for the busiest ones.".into(),
            impact: "Reclaims space and keeps scans fast",
            effort: "low",
        });
    }

    let bloated = count(report, "bloatedTables");
    if bloated > 0 {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "maintenance",
            title: format!("{} with high bloat", plural(bloated, "table", "tables")),
            description: format!(
                "Estimated bloat above {}%: {}.",
                t("highBloatThresholdPercent", 20.0),
                names(list(report, "bloatedTables"), "table")
            ),
            action: "Rewrite in a quiet window (VACUUM FULL takes an exclusive lock; pg_repack does not).".into(),
            impact: "Returns disk space and shortens scans",
            effort: "medium",
        });
    }

    let unused = count(report, "unusedIndexes");
    if unused > 0 {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "optimization",
            title: plural(unused, "unused index", "unused indexes"),
            description: format!(
                "No scans for more than {} days: {}.",
                t("unusedIndexDays", 30.0),
                names(list(report, "unusedIndexes"), "index")
            ),
            action: "Confirm on replicas too, then DROP INDEX CONCURRENTLY.".into(),
            impact: "Faster writes, less storage and vacuum work",
            effort: "low",
        });
    }

    let dups = list(report, "duplicateIndexes");
    if !dups.is_empty() {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "optimization",
            title: plural(dups.len(), "duplicate or redundant index", "duplicate or redundant indexes"),
            description: format!("Covered by another index on the same table: {}.", names(dups, "index")),
            action: "DROP INDEX CONCURRENTLY the index; the covering index serves the same queries.".into(),
            impact: "Faster writes, less storage",
            effort: "low",
        });
    }

    let long = list(report, "longRunning").len() + list(report, "idleInTransaction").len();
    if long > 0 {
        recs.push(Rec {
            priority: Priority::Medium,
            category: "performance",
            title: plural(long, "long-running or idle-in-transaction session", "long-running or idle-in-transaction sessions"),
            description: "Long transactions hold locks and stop VACUUM from removing dead rows.".into(),
            action: "Set idle_in_transaction_session_timeout and statement_timeout; fix the application code paths that leave transactions open.".into(),
            impact: "Lets VACUUM keep up and releases locks",
            effort: "low",
        });
    }

    let analyze = count(report, "tablesNeedingAnalyze");
    if analyze > 0 {
        recs.push(Rec {
            priority: Priority::Low,
            category: "maintenance",
            title: format!("{} need ANALYZE", plural(analyze, "table", "tables")),
            description: format!(
                "Never analysed or not analysed for {} days: {}.",
                t("analyzeOverdueDays", 7.0),
                names(list(report, "tablesNeedingAnalyze"), "table")
            ),
            action: "ANALYZE these tables; planner estimates and bloat estimates depend on it.".into(),
            impact: "Better query plans",
            effort: "low",
        });
    }

    if report.pointer("/capabilities/pg_stat_statements") == Some(&Value::Bool(false)) {
        recs.push(Rec {
            priority: Priority::Low,
            category: "optimization",
            title: "pg_stat_statements is not enabled".into(),
            description: "Slow queries are only known from the application's query_performance_logs.".into(),
            action: "Add pg_stat_statements to shared_preload_libraries, restart, and CREATE EXTENSION pg_stat_statements.".into(),
            impact: "Server-side view of every slow query",
            effort: "low",
        });
    }

    recs.sort_by_key(|r| r.priority);
    Ok(Value::Array(
        recs.into_iter()
            .map(|r| {
                json!({
                    "priority": r.priority.as_str(),
                    "category": r.category,
                    "title": r.title,
                    "description": r.description,
                    "action": r.action,
                    "impact": r.impact,
                    "effort": r.effort,
                })
            })
            .collect(),
    ))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Render rows as a table with a header line; numeric-looking cells are right-aligned.
pub fn aligned(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let numeric = |s: &str| !s.is_empty() && s.trim_end_matches('%').replace([',', '.', ' ', '-'], "").chars().all(|c| c.is_ascii_digit() || "kMGTB".contains(c)) && s.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-');
    let fmt_row = |cells: &[String]| -> String {
        let mut line = String::from("  ");
        for (i, w) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = w.saturating_sub(cell.chars().count());
            if numeric(cell) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line.trim_end().to_string()
    };
    let mut out = fmt_row(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push('\n');
    out.push_str("  ");
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for row in rows {
        out.push_str(&fmt_row(row));
        out.push('\n');
    }
    out
}

fn bytes(v: Option<f64>) -> String {
    let Some(b) = v else { return "-".into() };
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = b;
    let mut unit = 0;
    while value.abs() >= 10240.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{:.0} {}", value.round(), units[unit])
}

fn pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}

fn int(v: Option<f64>) -> String {
    v.map(|n| format!("{n:.0}")).unwrap_or_else(|| "-".into())
}

fn when(v: &Value, key: &str) -> String {
    let s = text(v, key);
    if s.is_empty() {
        "never".into()
    } else {
        // "2026-11-23T10:00:00.123+00:00" -> "2026-11-23 10:00"
        s.replace('T', " ").chars().take(16).collect()
    }
}

fn section(out: &mut String, title: &str, body: &str) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    out.push_str(body);
}

/// The whole report as readable, aligned text.
pub fn render_text(report: &Value) -> Result<String, HealthError> {
    if !report.is_object() || report.get("overview").is_none() {
        return Err(HealthError::NotAReport(format!(
            "expected an object with an \"overview\", got {}",
            kind_of(report)
        )));
    }
    let ov = &report["overview"];
    let pool = &report["connectionPool"];
    let mut out = format!(
        "pg_steward health report for database {} at {}\n",
        text(ov, "datname"),
        text(report, "timestamp").replace('T', " ").chars().take(19).collect::<String>()
    );

    let total = num(pool, &["total"]);
    let max = num(pool, &["max_connections"]);
    let overview_rows = vec![
        vec!["Database size".into(), bytes(num(ov, &["database_size"]))],
        vec![
            "Connections".into(),
            format!(
                "{} of {} ({})",
                int(total),
                int(max),
                pct(total.zip(max).map(|(t, m)| if m > 0.0 { t / m * 100.0 } else { 0.0 }))
            ),
        ],
        vec!["Cache hit ratio".into(), pct(num(ov, &["cache_hit_ratio"]))],
        vec!["Commits / rollbacks".into(), format!("{} / {}", int(num(ov, &["xact_commit"])), int(num(ov, &["xact_rollback"])))],
        vec!["Deadlocks".into(), int(num(ov, &["deadlocks"]))],
        vec!["Temp files".into(), format!("{} ({})", int(num(ov, &["temp_files"])), bytes(num(ov, &["temp_bytes"])))],
        vec!["Tables / indexes".into(), format!("{} / {}", int(num(report, &["summary", "tableCount"])), int(num(report, &["summary", "indexCount"])))],
    ];
    section(&mut out, "Overview", &aligned(&["metric", "value"], &overview_rows));

    let recs = list(report, "recommendations");
    let mut body = String::new();
    if recs.is_empty() {
        body.push_str("  none: nothing needs attention\n");
    }
    for r in recs {
        body.push_str(&format!(
            "  [{:<6}] {:<12} {}\n           {}\n           action: {}\n",
            text(r, "priority").to_uppercase(),
            text(r, "category"),
            text(r, "title"),
            text(r, "description"),
            text(r, "action")
        ));
    }
    section(&mut out, &format!("Recommendations ({})", recs.len()), &body);

    let tables = list(report, "tables");
    let rows: Vec<Vec<String>> = tables
        .iter()
        .map(|t| {
            let mut flags = Vec::new();
            if t.get("needs_vacuum") == Some(&Value::Bool(true)) {
                flags.push("vacuum");
            }
            if t.get("needs_analyze") == Some(&Value::Bool(true)) {
                flags.push("analyze");
            }
            vec![
                format!("{}.{}", text(t, "schemaname"), text(t, "relname")),
                bytes(num(t, &["table_size"])),
                int(num(t, &["n_live_tup"])),
                int(num(t, &["n_dead_tup"])),
                pct(num(t, &["dead_tuple_ratio"])),
                pct(num(t, &["bloat_pct"])),
                text(t, "bloat_confidence"),
                when(t, "last_vacuum_any"),
                when(t, "last_analyze_any"),
                flags.join(","),
            ]
        })
        .collect();
    section(
        &mut out,
        &format!("Tables (largest {} of {})", tables.len(), int(num(report, &["summary", "tableCount"]))),
        &aligned(&["table", "size", "live", "dead", "dead%", "bloat", "stats", "vacuumed", "analyzed", "needs"], &rows),
    );

    let index_rows = |items: &[Value], reason: &dyn Fn(&Value) -> String| -> Vec<Vec<String>> {
        items
            .iter()
            .map(|i| vec![text(i, "index"), text(i, "table"), bytes(num(i, &["index_size"])), reason(i)])
            .collect()
    };
    let mut idx: Vec<Vec<String>> = Vec::new();
    idx.extend(index_rows(list(report, "unusedIndexes"), &|i| {
        format!("unused: 0 scans, observed {} days", num(i, &["days_since_last_use"]).map(|d| format!("{d:.1}")).unwrap_or_else(|| "?".into()))
    }));
    idx.extend(index_rows(list(report, "duplicateIndexes"), &|i| format!("{} of {}", text(i, "kind"), text(i, "covered_by"))));
    idx.extend(index_rows(list(report, "invalidIndexes"), &|_| "invalid".into()));
    idx.extend(index_rows(list(report, "bloatedIndexes"), &|i| format!("bloat {}", pct(num(i, &["bloat_pct"])))));
    section(
        &mut out,
        &format!("Index findings ({})", idx.len()),
        &if idx.is_empty() { "  none\n".into() } else { aligned(&["index", "table", "size", "finding"], &idx) },
    );

    let slow = list(report, "slowQueries");
    let slow_rows: Vec<Vec<String>> = slow
        .iter()
        .map(|q| {
            let query: String = text(q, "query_text").split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = query.chars().take(60).collect();
            vec![
                text(q, "source"),
                int(num(q, &["execution_count"])),
                format!("{:.1}", num(q, &["avg_duration_ms"]).unwrap_or(0.0)),
                format!("{:.1}", num(q, &["max_duration_ms"]).unwrap_or(0.0)),
                if query.chars().count() > 60 { format!("{short}…") } else { short },
            ]
        })
        .collect();
    section(
        &mut out,
        &format!("Slow queries ({})", slow.len()),
        &if slow.is_empty() { "  none\n".into() } else { aligned(&["source", "calls", "avg ms", "max ms", "query"], &slow_rows) },
    );

    let pool_rows = vec![vec![
        int(num(pool, &["total"])),
        int(num(pool, &["active"])),
        int(num(pool, &["idle"])),
        int(num(pool, &["idle_in_transaction"])),
        int(num(pool, &["waiting"])),
        format!("{:.1}", num(pool, &["longest_query_seconds"]).unwrap_or(0.0)),
    ]];
    section(&mut out, "Connections", &aligned(&["total", "active", "idle", "idle in xact", "waiting", "longest query s"], &pool_rows));

    let replication = report.get("replication").unwrap_or(&Value::Null);
    if !replication.is_null() {
        let sender_rows: Vec<Vec<String>> = list(replication, "senders")
            .iter()
            .map(|r| {
                vec![
                    text(r, "application_name"),
                    text(r, "state"),
                    bytes(num(r, &["replay_lag_bytes"])),
                    num(r, &["replay_lag_seconds"]).map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let slot_rows: Vec<Vec<String>> = list(replication, "slots")
            .iter()
            .map(|r| {
                vec![
                    text(r, "slot_name"),
                    if r.get("active").and_then(Value::as_bool).unwrap_or(false) { "yes".into() } else { "no".into() },
                    bytes(num(r, &["retained_wal_bytes"])),
                    text(r, "wal_status"),
                ]
            })
            .collect();
        let mut body = format!("  role: {}\n", text(replication, "role"));
        if let Some(sb) = replication.get("standby").filter(|v| !v.is_null()) {
            body.push_str(&format!(
                "  replay behind receive: {}, last replayed transaction: {}\n",
                bytes(num(sb, &["replay_lag_bytes"])),
                when(sb, "last_replayed_transaction_at")
            ));
        }
        if !sender_rows.is_empty() {
            body.push_str(&aligned(&["standby", "state", "replay lag", "replay lag s"], &sender_rows));
        }
        if !slot_rows.is_empty() {
            body.push_str(&aligned(&["slot", "active", "WAL retained", "wal_status"], &slot_rows));
        }
        section(&mut out, "Replication", &body);
    }

    let wrap = list(report.get("wraparound").unwrap_or(&Value::Null), "databases");
    let wrap_rows: Vec<Vec<String>> = wrap
        .iter()
        .map(|d| vec![text(d, "datname"), int(num(d, &["xid_age"])), pct(num(d, &["pct_towards_wraparound"])), int(num(d, &["mxid_age"]))])
        .collect();
    section(&mut out, "Transaction ID wraparound", &aligned(&["database", "xid age", "towards wraparound", "multixact age"], &wrap_rows));

    let alerts = list(report, "alerts");
    let alert_rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| vec![text(a, "severity"), text(a, "alert_type"), text(a, "message")])
        .collect();
    section(
        &mut out,
        &format!("Open alerts ({})", alerts.len()),
        &if alerts.is_empty() { "  none\n".into() } else { aligned(&["severity", "type", "message"], &alert_rows) },
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(v: &Value) -> Vec<(String, String)> {
        v.as_array()
            .map(|a| a.iter().map(|r| (text(r, "priority"), text(r, "category"))).collect())
            .unwrap_or_default()
    }

    #[test]
    fn seed_rules_fire_and_sort_high_first() {
        let report = json!({
            "thresholds": {"lowCacheHitRatioThreshold": 90, "highConnectionUsageThreshold": 80},
            "overview": {"cache_hit_ratio": 50.0},
            "connectionPool": {"total": 90, "max_connections": 100},
            "tablesNeedingVacuum": [{"table": "public.a"}],
            "unusedIndexes": [{"index": "public.i"}],
            "slowQueries": [{"query_text": "select 1"}],
        });
        let recs = recommendations(&report).unwrap_or(Value::Null);
        let got = titles(&recs);
        assert_eq!(got.len(), 5, "{recs}");
        assert_eq!(got[0].0, "high");
        assert!(got.contains(&("high".into(), "capacity".into())));
        assert!(got.contains(&("medium".into(), "maintenance".into())));
        assert!(got.contains(&("medium".into(), "optimization".into())));
        let ranks: Vec<u8> = got.iter().map(|(p, _)| match p.as_str() { "high" => 0, "medium" => 1, _ => 2 }).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn healthy_report_has_no_recommendations() {
        let report = json!({"overview": {"cache_hit_ratio": 99.9}, "connectionPool": {"total": 1, "max_connections": 100}});
        assert_eq!(recommendations(&report).ok(), Some(json!([])));
        assert!(recommendations(&json!([1])).is_err());
    }

    #[test]
    fn text_rendering_is_aligned() {
        let t = aligned(&["name", "size"], &[vec!["a".into(), "1 kB".into()], vec!["longer".into(), "100 MB".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "  name    size");
        assert_eq!(lines[2], "  a         1 kB");
        assert_eq!(lines[3], "  longer  100 MB");
        assert!(render_text(&json!({"x": 1})).is_err());
        let text = render_text(&json!({"overview": {"datname": "db", "database_size": 2048}})).unwrap_or_default();
        assert!(text.contains("database db"));
        assert!(text.contains("2048 bytes"));
    }
}
