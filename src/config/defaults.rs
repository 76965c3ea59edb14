//! Built-in defaults (CONTRACT §4): every key, nested form.

use serde_json::{json, Value};

pub fn user_preferences() -> Value {
    json!({
        "theme": "system",
        "sidebarCollapsed": false,
        "tableDensity": "comfortable",
        "rowsPerPage": 25,
        "enableAnimations": true,
        "notifications": {
            "toast": true, "email": false, "inApp": true, "frequency": "immediate",
            "categories": {"generationComplete": true, "approvalRequired": true, "errors": true, "systemAlerts": true}
        },
        "defaultFilters": {"tier": null, "status": null, "qualityRange": [0, 10], "autoApply": false},
        "exportPreferences": {
            "defaultFormat": "json", "includeMetadata": true, "includeQualityScores": true,
            "includeTimestamps": true, "includeApprovalHistory": false, "autoCompression": true,
            "autoCompressionThreshold": 1000
        },
        "keyboardShortcuts": {
            "enabled": true,
            "customBindings": {
                "openSearch": "Ctrl+K", "generateAll": "Ctrl+G", "export": "Ctrl+E", "approve": "A",
                "reject": "R", "nextItem": "ArrowRight", "previousItem": "ArrowLeft"
            }
        },
        "qualityThresholds": {"autoApproval": 8.0, "flagging": 6.0, "minimumAcceptable": 4.0}
    })
}

pub fn ai_config() -> Value {
    json!({
        "model": {"model": "claude-sonnet-4-5-20250929", "temperature": 0.7, "maxTokens": 4096, "topP": 0.9, "streaming": false},
        "rateLimiting": {"requestsPerMinute": 50, "concurrentRequests": 3, "burstAllowance": 10},
        "retryStrategy": {"maxRetries": 3, "backoffType": "exponential", "baseDelay": 1000, "maxDelay": 16000},
        "costBudget": {"dailyBudget": 100.0, "weeklyBudget": 500.0, "monthlyBudget": 2000.0, "alertThresholds": [0.5, 0.75, 0.9]},
        "apiKeys": {"primaryKey": "", "keyVersion": 1, "rotationSchedule": "manual"},
        "timeouts": {"generationTimeout": 60000, "connectionTimeout": 10000, "totalRequestTimeout": 120000}
    })
}

/// Known models: (name, input price per 1k tokens, output price per 1k tokens, context, output limit).
pub const MODELS: &[(&str, f64, f64, u32, u32)] = &[
    ("claude-sonnet-4-5-20250929", 0.003, 0.015, 200_000, 4096),
    ("claude-3-opus-20240229", 0.015, 0.075, 200_000, 4096),
    ("claude-3-haiku-20240307", 0.00025, 0.00125, 200_000, 4096),
];
