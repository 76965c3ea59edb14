//! One validator per document kind (CONTRACT §4 rules plus type checks and unknown-key
//! warnings).  Documents may be partial: each key present is checked against its spec; a
//! `null` means "inherit" and is accepted; rules across fields (autoApproval ≥ flagging,
//! maxDelay ≥ baseDelay, budgets ordered) are checked on the document merged over the
//! defaults, which is what the user gets.  Warnings start with "warning:" and do not make a
//! write fail; every other entry does.

use serde_json::Value;

use super::error::ConfigError;
use super::{defaults, merge};
use crate::common::jsonb::{descend, LimitError};

/// Run `check` from the root; a limit (which the spec's few levels never reach) is raised.
fn check_root(doc: &Value, kind: &Kind, out: &mut Vec<String>) {
    if let Err(e) = check(doc, kind, &mut String::new(), out, 0) {
        ConfigError::from(e).raise();
    }
}

#[derive(Debug)]
enum Kind {
    Bool,
    Str,
    Enum(&'static [&'static str]),
    Int { min: f64, max: f64 },
    Num { min: f64, max: f64 },
    IntOneOf(&'static [i64]),
    /// `null` or an array of strings.
    NullOrStrings,
    /// `[min, max]` within the bounds, min ≤ max.
    Range { min: f64, max: f64 },
    Nums { min: f64, max: f64 },
    Obj(&'static [(&'static str, Kind)]),
}

const INF: f64 = f64::INFINITY;
/// The longest array of numbers a document may hold (`costBudget.alertThresholds`).
const MAX_NUMS: usize = 20;

const USER_PREFERENCES: Kind = Kind::Obj(&[
    ("theme", Kind::Enum(&["light", "dark", "system"])),
    ("sidebarCollapsed", Kind::Bool),
    ("tableDensity", Kind::Enum(&["compact", "comfortable", "spacious"])),
    ("rowsPerPage", Kind::IntOneOf(&[10, 25, 50, 100])),
    ("enableAnimations", Kind::Bool),
    (
        "notifications",
        Kind::Obj(&[
            ("toast", Kind::Bool),
            ("email", Kind::Bool),
            ("inApp", Kind::Bool),
            ("frequency", Kind::Enum(&["immediate", "daily", "weekly"])),
            (
                "categories",
                Kind::Obj(&[
                    ("generationComplete", Kind::Bool),
                    ("approvalRequired", Kind::Bool),
                    ("errors", Kind::Bool),
                    ("systemAlerts", Kind::Bool),
                ]),
            ),
        ]),
    ),
    (
        "defaultFilters",
        Kind::Obj(&[
            ("tier", Kind::NullOrStrings),
            ("status", Kind::NullOrStrings),
            ("qualityRange", Kind::Range { min: 0.0, max: 10.0 }),
            ("autoApply", Kind::Bool),
        ]),
    ),
    (
        "exportPreferences",
        Kind::Obj(&[
            ("defaultFormat", Kind::Enum(&["json", "jsonl", "csv", "markdown"])),
            ("includeMetadata", Kind::Bool),
            ("includeQualityScores", Kind::Bool),
            ("includeTimestamps", Kind::Bool),
            ("includeApprovalHistory", Kind::Bool),
            ("autoCompression", Kind::Bool),
            ("autoCompressionThreshold", Kind::Int { min: 0.0, max: INF }),
        ]),
    ),
    (
        "keyboardShortcuts",
        Kind::Obj(&[
            ("enabled", Kind::Bool),
            (
                "customBindings",
                Kind::Obj(&[
                    ("openSearch", Kind::Str),
                    ("generateAll", Kind::Str),
                    ("export", Kind::Str),
                    ("approve", Kind::Str),
                    ("reject", Kind::Str),
                    ("nextItem", Kind::Str),
                    ("previousItem", Kind::Str),
                ]),
            ),
        ]),
    ),
    (
        "qualityThresholds",
        Kind::Obj(&[
            ("autoApproval", Kind::Num { min: 0.0, max: 10.0 }),
            ("flagging", Kind::Num { min: 0.0, max: 10.0 }),
            ("minimumAcceptable", Kind::Num { min: 0.0, max: 10.0 }),
        ]),
    ),
]);

const MODEL_NAMES: &[&str] = super::defaults::MODEL_IDS;

const AI_CONFIG: Kind = Kind::Obj(&[
    (
        "model",
        Kind::Obj(&[
            ("model", Kind::Enum(MODEL_NAMES)),
            ("temperature", Kind::Num { min: 0.0, max: 1.0 }),
            ("maxTokens", Kind::Int { min: 1.0, max: 4096.0 }),
            ("topP", Kind::Num { min: 0.0, max: 1.0 }),
            ("streaming", Kind::Bool),
        ]),
    ),
    (
        "rateLimiting",
        Kind::Obj(&[
            ("requestsPerMinute", Kind::Int { min: 1.0, max: INF }),
            ("concurrentRequests", Kind::Int { min: 1.0, max: INF }),
            ("burstAllowance", Kind::Int { min: 0.0, max: INF }),
        ]),
    ),
    (
        "retryStrategy",
        Kind::Obj(&[
            ("maxRetries", Kind::Int { min: 0.0, max: 10.0 }),
            ("backoffType", Kind::Enum(&["exponential", "linear", "fixed"])),
            ("baseDelay", Kind::Num { min: 0.0, max: INF }),
            ("maxDelay", Kind::Num { min: 0.0, max: INF }),
        ]),
    ),
    (
        "costBudget",
        Kind::Obj(&[
            ("dailyBudget", Kind::Num { min: 0.0, max: INF }),
            ("weeklyBudget", Kind::Num { min: 0.0, max: INF }),
            ("monthlyBudget", Kind::Num { min: 0.0, max: INF }),
            ("alertThresholds", Kind::Nums { min: 0.0, max: 1.0 }),
        ]),
    ),
    (
        "apiKeys",
        Kind::Obj(&[
            ("primaryKey", Kind::Str),
            ("secondaryKey", Kind::Str),
            ("keyVersion", Kind::Int { min: 1.0, max: 2147483646.0 }),
            ("rotationSchedule", Kind::Enum(&["manual", "monthly", "quarterly"])),
        ]),
    ),
    (
        "timeouts",
        Kind::Obj(&[
            ("generationTimeout", Kind::Int { min: 0.0, max: INF }),
            ("connectionTimeout", Kind::Int { min: 0.0, max: INF }),
            ("totalRequestTimeout", Kind::Int { min: 0.0, max: INF }),
        ]),
    ),
]);

/// A writer that keeps the first `room` bytes and then refuses more, so describing a value
/// costs at most that much however large the value is.
struct Prefix {
    text: Vec<u8>,
    room: usize,
}

impl std::io::Write for Prefix {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() >= self.room {
            return Err(std::io::Error::other("enough"));
        }
        let take = buf.len().min(self.room - self.text.len());
        self.text.extend_from_slice(&buf[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At most 57 characters of `v` as JSON (then "…"), without printing the whole value.
fn describe(v: &Value) -> String {
    let mut w = Prefix { text: Vec::with_capacity(64), room: 61 * 4 };
    // An error here only means the writer had enough.
    let _ = serde_json::to_writer(&mut w, v);
    let text = String::from_utf8_lossy(&w.text);
    if text.len() > 60 {
        let cut = text.char_indices().nth(57).map(|(i, _)| i).unwrap_or(text.len());
        format!("{}…", &text[..cut])
    } else {
        text.into_owned()
    }
}

fn bounds(min: f64, max: f64) -> String {
    match (min.is_finite(), max.is_finite()) {
        (true, true) => format!("between {min} and {max}"),
        (true, false) => format!("at least {min}"),
        _ => "a number".to_string(),
    }
}

/// Check `value` against `kind`; `path` is a buffer holding the dot-joined path (children
/// push their key and truncate it again, so the happy path allocates no path strings).
/// Recursion follows the spec (a few levels), never the document; the depth guard is there
/// all the same.  Each problem is one short line per key of the document, so the list is
/// linear in the document's size.
fn check(value: &Value, kind: &Kind, path: &mut String, out: &mut Vec<String>, depth: usize) -> Result<(), LimitError> {
    if value.is_null() {
        return Ok(()); // inherit
    }
    let number = value.as_f64();
    match kind {
        Kind::Bool if !value.is_boolean() => out.push(format!("{path} must be true or false (got {})", describe(value))),
        Kind::Str if !value.is_string() => out.push(format!("{path} must be a string (got {})", describe(value))),
        Kind::Enum(allowed) => {
            if !value.as_str().is_some_and(|s| allowed.contains(&s)) {
                out.push(format!("{path} must be one of {} (got {})", allowed.join(", "), describe(value)));
            }
        }
        Kind::Int { min, max } => match number {
            Some(n) if n.fract() == 0.0 && n >= *min && n <= *max => {}
            _ => out.push(format!("{path} must be a whole number {} (got {})", bounds(*min, *max), describe(value))),
        },
        Kind::Num { min, max } => match number {
            Some(n) if n >= *min && n <= *max => {}
            _ => out.push(format!("{path} must be a number {} (got {})", bounds(*min, *max), describe(value))),
        },
        Kind::IntOneOf(allowed) => {
            let ok = number.is_some_and(|n| n.fract() == 0.0 && allowed.contains(&(n as i64)));
            if !ok {
                let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                out.push(format!("{path} must be one of {} (got {})", list.join(", "), describe(value)));
            }
        }
        Kind::NullOrStrings => {
            if !value.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                out.push(format!("{path} must be null or an array of strings (got {})", describe(value)));
            }
        }
        Kind::Range { min, max } => {
            let pair: Option<Vec<f64>> = value.as_array().filter(|a| a.len() == 2).and_then(|a| a.iter().map(Value::as_f64).collect());
            match pair.as_deref() {
                Some([lo, hi]) if *lo >= *min && *hi <= *max && lo <= hi => {}
                _ => out.push(format!("{path} must be [min, max] with {min} ≤ min ≤ max ≤ {max} (got {})", describe(value))),
            }
        }
        Kind::Nums { min, max } => {
            let ok = value.as_array().is_some_and(|a| a.iter().all(|v| v.as_f64().is_some_and(|n| n >= *min && n <= *max)));
            if !ok {
                out.push(format!("{path} must be an array of numbers {} (got {})", bounds(*min, *max), describe(value)));
            } else if value.as_array().is_some_and(|a| a.len() > MAX_NUMS) {
                // Each number may become an alert (budget thresholds): a short list.
                out.push(format!("{path} must have at most {MAX_NUMS} numbers (got {})", value.as_array().map_or(0, |a| a.len())));
            }
        }
        Kind::Obj(fields) => match value.as_object() {
            None => out.push(format!("{} must be an object (got {})", if path.is_empty() { "document" } else { path.as_str() }, describe(value))),
            Some(map) => {
                descend(depth)?;
                let base = path.len();
                for (key, v) in map {
                    if base > 0 {
                        path.push('.');
                    }
                    path.push_str(key);
                    match fields.iter().find(|(name, _)| name == key) {
                        Some((_, k)) => check(v, k, path, out, depth + 1)?,
                        None => out.push(format!("warning: unknown key {path}")),
                    }
                    path.truncate(base);
                }
            }
        },
        _ => {}
    }
    Ok(())
}

/// The number at `pointer` in `doc`, or in the defaults when `doc` does not set it (absent or
/// null inherits) — what the merged document would hold, without building it.
fn effective_number(doc: &Value, defaults: &Value, pointer: &str) -> Option<f64> {
    // `pointer` is one of our own "/a/b" paths (no escapes): walk it without
    // `Value::pointer`, which allocates while unescaping every token.
    let at = |v: &'_ Value| -> Option<Value> {
        pointer.split('/').skip(1).try_fold(v, |v, key| v.get(key)).cloned()
    };
    match at(doc) {
        Some(Value::Null) | None => at(defaults).and_then(|v| v.as_f64()),
        Some(v) => v.as_f64(),
    }
}

fn ordered(doc: &Value, defaults: &Value, low: &str, high: &str, out: &mut Vec<String>, what: &str) {
    if let (Some(a), Some(b)) = (effective_number(doc, defaults, low), effective_number(doc, defaults, high)) {
        if a > b {
            out.push(format!("{what} ({a} > {b})"));
        }
    }
}

fn user_defaults() -> &'static Value {
    static D: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    D.get_or_init(defaults::user_preferences)
}

fn ai_defaults() -> &'static Value {
    static D: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    D.get_or_init(defaults::ai_config)
}

/// Every problem of a user-preferences document; empty when valid.
pub fn user_preferences(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_root(doc, &USER_PREFERENCES, &mut out);
    // Cross-field rules are reported with every other problem (a client fixing one error at a
    // time must not meet a new one after each save); they compare only numbers, so a field of
    // the wrong type is reported once, by its own rule.
    if doc.is_object() {
        ordered(doc, user_defaults(), "/qualityThresholds/flagging", "/qualityThresholds/autoApproval", &mut out,
                "qualityThresholds.autoApproval must be at least qualityThresholds.flagging");
    }
    out
}

/// Every problem of an AI configuration document (nested or legacy flat form); empty when valid.
pub fn ai_config(doc: &Value) -> Vec<String> {
    let normalized = merge::normalized_ai_config(doc);
    let normalized: &Value = &normalized;
    let mut out = Vec::new();
    check_root(normalized, &AI_CONFIG, &mut out);
    // As for user preferences: the cross-field rules with every other problem.
    if normalized.is_object() {
        let d = ai_defaults();
        ordered(normalized, d, "/retryStrategy/baseDelay", "/retryStrategy/maxDelay", &mut out,
                "retryStrategy.maxDelay must be at least retryStrategy.baseDelay");
        ordered(normalized, d, "/costBudget/dailyBudget", "/costBudget/weeklyBudget", &mut out,
                "costBudget.weeklyBudget must be at least costBudget.dailyBudget");
        ordered(normalized, d, "/costBudget/weeklyBudget", "/costBudget/monthlyBudget", &mut out,
                "costBudget.monthlyBudget must be at least costBudget.weeklyBudget");
    }
    out
}

/// Only the entries that make a write fail.
pub fn errors(problems: &[String]) -> Vec<String> {
    problems.iter().filter(|p| !p.starts_with("warning:")).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cross_field_rules_are_reported_with_every_other_problem() {
        let p = user_preferences(&json!({"theme": "neon", "qualityThresholds": {"autoApproval": 5, "flagging": 7}}));
        assert!(p.iter().any(|e| e.contains("theme")), "{p:?}");
        assert!(p.iter().any(|e| e.contains("autoApproval must be at least qualityThresholds.flagging")), "{p:?}");
        let p = ai_config(&json!({"model": {"temperature": 9}, "retryStrategy": {"baseDelay": 5000, "maxDelay": 100},
                                  "costBudget": {"dailyBudget": 10, "weeklyBudget": 5}}));
        assert!(p.iter().any(|e| e.contains("temperature")), "{p:?}");
        assert!(p.iter().any(|e| e.contains("maxDelay must be at least")), "{p:?}");
        assert!(p.iter().any(|e| e.contains("weeklyBudget must be at least")), "{p:?}");
        // A field of the wrong type is reported once, by its own rule, not by the comparison.
        let p = ai_config(&json!({"retryStrategy": {"baseDelay": "soon", "maxDelay": 100}}));
        assert_eq!(p.iter().filter(|e| e.contains("baseDelay")).count(), 1, "{p:?}");
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(user_preferences(&defaults::user_preferences()), Vec::<String>::new());
        assert_eq!(ai_config(&defaults::ai_config()), Vec::<String>::new());
        assert_eq!(user_preferences(&json!({})), Vec::<String>::new());
    }

    #[test]
    fn every_user_preference_rule_fails_when_broken() {
        let cases = [
            (json!({"theme": "blue"}), "theme must be one of"),
            (json!({"rowsPerPage": 30}), "rowsPerPage must be one of 10, 25, 50, 100"),
            (json!({"rowsPerPage": "25"}), "rowsPerPage must be one of"),
            (json!({"tableDensity": "dense"}), "tableDensity"),
            (json!({"qualityThresholds": {"flagging": 11}}), "qualityThresholds.flagging must be a number between 0 and 10"),
            (json!({"qualityThresholds": {"autoApproval": 5}}), "autoApproval must be at least qualityThresholds.flagging"),
            (json!({"defaultFilters": {"qualityRange": [7, 3]}}), "qualityRange"),
            (json!({"defaultFilters": {"qualityRange": [0, 11]}}), "qualityRange"),
            (json!({"defaultFilters": {"tier": [1]}}), "tier must be null or an array of strings"),
            (json!({"notifications": {"frequency": "hourly"}}), "notifications.frequency"),
            (json!({"exportPreferences": {"defaultFormat": "xml"}}), "exportPreferences.defaultFormat"),
            (json!({"sidebarCollapsed": "yes"}), "sidebarCollapsed must be true or false"),
            (json!([1, 2]), "document must be an object"),
        ];
        for (doc, expected) in cases {
            let problems = user_preferences(&doc);
            assert!(problems.iter().any(|p| p.contains(expected)), "{doc}: {problems:?}");
            assert!(!errors(&problems).is_empty(), "{doc}");
        }
        // Passing counterparts.
        for doc in [json!({"theme": "dark", "rowsPerPage": 100}), json!({"qualityThresholds": {"autoApproval": 6, "flagging": 6}}),
                    json!({"defaultFilters": {"qualityRange": [2, 2], "tier": ["gold"]}})] {
            assert_eq!(user_preferences(&doc), Vec::<String>::new(), "{doc}");
        }
    }

    #[test]
    fn every_ai_rule_fails_when_broken() {
        let cases = [
            (json!({"model": {"temperature": 3.0}}), "model.temperature must be a number between 0 and 1"),
            (json!({"model": {"temperature": "hot"}}), "model.temperature"),
            (json!({"temperature": 1.5}), "model.temperature"),
            (json!({"model": {"topP": -0.1}}), "model.topP"),
            (json!({"model": {"maxTokens": 5000}}), "model.maxTokens must be a whole number between 1 and 4096"),
            (json!({"model": {"maxTokens": 0}}), "model.maxTokens"),
            (json!({"model": {"model": "gpt-4"}}), "model.model must be one of"),
            (json!({"model": "gpt-4"}), "model.model must be one of"),
            (json!({"rateLimiting": {"requestsPerMinute": 0}}), "requestsPerMinute"),
            (json!({"rateLimiting": {"concurrentRequests": 0}}), "concurrentRequests"),
            (json!({"retryStrategy": {"maxRetries": 11}}), "maxRetries"),
            (json!({"retryStrategy": {"baseDelay": -1}}), "baseDelay"),
            (json!({"retryStrategy": {"maxDelay": 500}}), "maxDelay must be at least"),
            (json!({"costBudget": {"dailyBudget": -1}}), "dailyBudget"),
            (json!({"costBudget": {"weeklyBudget": 50}}), "weeklyBudget must be at least"),
            (json!({"costBudget": {"monthlyBudget": 400}}), "monthlyBudget must be at least"),
            (json!({"apiKeys": {"rotationSchedule": "weekly"}}), "rotationSchedule"),
            (json!("text"), "document must be an object"),
        ];
        for (doc, expected) in cases {
            let problems = ai_config(&doc);
            assert!(problems.iter().any(|p| p.contains(expected)), "{doc}: {problems:?}");
        }
        for doc in [json!({"model": {"temperature": 0, "maxTokens": 4096}}), json!({"model": "claude-3-haiku-20240307", "temperature": 1}),
                    json!({"retryStrategy": {"baseDelay": 0, "maxDelay": 0}}), json!({"costBudget": {"dailyBudget": 1, "weeklyBudget": 1, "monthlyBudget": 1}})] {
            assert_eq!(ai_config(&doc), Vec::<String>::new(), "{doc}");
        }
    }

    #[test]
    fn unknown_keys_are_warnings_not_errors() {
        let problems = ai_config(&json!({"model": {"temperature": 0.5, "colour": "red"}, "extra": 1}));
        assert_eq!(problems, vec!["warning: unknown key extra".to_string(), "warning: unknown key model.colour".to_string()]);
        assert!(errors(&problems).is_empty());
    }

    #[test]
    fn null_inherits_and_is_valid() {
        assert_eq!(ai_config(&json!({"model": {"temperature": null}, "costBudget": null})), Vec::<String>::new());
    }
}
