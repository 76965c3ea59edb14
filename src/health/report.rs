//! The health report as aligned text.
//!
//! The report itself is assembled in SQL (`sql/report.sql`), its recommendations come from the
//! rule table (`src/alerts`); this module only renders it.
//! Missing parts read as empty, so an older or partial report still renders.

use serde_json::Value;

use super::error::HealthError;

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

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
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
    let numeric = |s: &str| !s.is_empty() && s.trim_end_matches('%').replace([',', '.', ' ', '-', '+'], "").chars().all(|c| c.is_ascii_digit() || "kMGTB".contains(c)) && s.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+');
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

/// A size in bytes, kB, MB, GB or TB (whole units; "-" when unknown).
pub(crate) fn bytes(v: Option<f64>) -> String {
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
    use serde_json::json;

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
