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

/// A model the platform may call: the one catalogue the validator (`MODEL_IDS`),
/// `calculate_cost`, usage recording and `steward.ai_models()` read (CONTRACT §4 prices).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    pub id: &'static str,
    pub display_name: &'static str,
    /// USD per 1 000 input / output tokens.
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    pub context_window: u32,
    pub output_limit: u32,
    pub features: &'static [&'static str],
}

const FEATURES: &[&str] = &["text", "vision", "tool_use", "streaming"];

pub const MODELS: &[Model] = &[
    Model { id: "claude-sonnet-4-5-20250929", display_name: "Claude Sonnet 4.5", input_per_1k: 0.003, output_per_1k: 0.015, context_window: 200_000, output_limit: 4096, features: FEATURES },
    Model { id: "claude-3-opus-20240229", display_name: "Claude 3 Opus", input_per_1k: 0.015, output_per_1k: 0.075, context_window: 200_000, output_limit: 4096, features: FEATURES },
    Model { id: "claude-3-haiku-20240307", display_name: "Claude 3 Haiku", input_per_1k: 0.00025, output_per_1k: 0.00125, context_window: 200_000, output_limit: 4096, features: FEATURES },
];

/// The catalogue's ids, in its order (the validator's enumeration).
pub const MODEL_IDS: &[&str] = &[MODELS[0].id, MODELS[1].id, MODELS[2].id];

pub fn model(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// "a, b, c": the known ids for messages.
pub fn model_list() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod catalogue_tests {
    use super::*;

    #[test]
    fn the_ids_are_the_catalogues() {
        assert_eq!(MODEL_IDS.to_vec(), MODELS.iter().map(|m| m.id).collect::<Vec<_>>());
    }
}
