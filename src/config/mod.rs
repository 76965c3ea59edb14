//! Configuration: built-in defaults, one validator per document kind, layered resolution
//! with provenance (CONTRACT §4).  The SQL surface is `sql/config.sql`.

pub mod cache;
pub mod defaults;
pub mod direct;
pub mod effective;
pub mod keys;
pub mod merge;
pub mod validate;
pub mod error;

#[cfg(any(test, feature = "pg_test"))]
#[path = "config_test.rs"]
mod config_test;

#[cfg(any(test, feature = "pg_test"))]
#[path = "keys_test.rs"]
mod keys_test;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

use crate::common::jsonb::Doc;
use error::ConfigError;

/// The document kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    UserPreferences,
    AiConfig,
}

impl DocKind {
    fn parse(text: &str) -> Result<DocKind, ConfigError> {
        match text {
            "user_preferences" | "user_preference" => Ok(DocKind::UserPreferences),
            "ai_config" | "ai_configuration" => Ok(DocKind::AiConfig),
            other => Err(ConfigError::UnknownKind(other.to_string())),
        }
    }

    fn defaults(self) -> Value {
        match self {
            DocKind::UserPreferences => defaults::user_preferences(),
            DocKind::AiConfig => defaults::ai_config(),
        }
    }

    fn normalize(self, doc: &Value) -> Value {
        match self {
            DocKind::UserPreferences => doc.clone(),
            DocKind::AiConfig => merge::normalize_ai_config(doc),
        }
    }

    fn validate(self, doc: &Value) -> Vec<String> {
        match self {
            DocKind::UserPreferences => validate::user_preferences(doc),
            DocKind::AiConfig => validate::ai_config(doc),
        }
    }
}

/// Every rule a user-preferences document breaks (warnings start with "warning:"); empty when valid.
#[pg_extern(immutable, parallel_safe, strict)]
pub fn validate_user_preferences(doc: Doc) -> Vec<String> {
    validate::user_preferences(&doc.0)
}

/// Every rule an AI configuration document breaks (nested or legacy flat form); empty when valid.
#[pg_extern(immutable, parallel_safe, strict)]
pub fn validate_ai_config(doc: Doc) -> Vec<String> {
    validate::ai_config(&doc.0)
}

#[pg_extern(immutable, parallel_safe)]
pub fn default_user_preferences() -> JsonB {
    JsonB(defaults::user_preferences())
}

#[pg_extern(immutable, parallel_safe)]
pub fn default_ai_config() -> JsonB {
    JsonB(defaults::ai_config())
}

/// Raise 22023 with every problem in DETAIL when `doc` is not a valid document of `kind`
/// (warnings do not fail); used by the write paths and the table triggers.
#[pg_extern(name = "_check_document", immutable, parallel_safe)]
pub fn check_document(kind: &str, doc: Option<Doc>) -> Result<bool, ErrorReport> {
    let kind = DocKind::parse(kind)?;
    let Some(doc) = doc else { return Err(ConfigError::Invalid { kind: "document", problems: vec!["document must not be null".into()] }.into()) };
    let errors = validate::errors(&kind.validate(&doc.0));
    if errors.is_empty() {
        Ok(true)
    } else {
        let name = match kind {
            DocKind::UserPreferences => "user preferences",
            DocKind::AiConfig => "AI configuration",
        };
        Err(ConfigError::Invalid { kind: name, problems: errors }.into())
    }
}

/// The defaults of `kind` with `layers` merged on top, lowest first (null layers skipped).
#[pg_extern(name = "_resolve_layers", immutable, parallel_safe)]
pub fn resolve_layers(kind: &str, layers: Vec<Option<Doc>>) -> Result<JsonB, ErrorReport> {
    let kind = DocKind::parse(kind)?;
    let mut doc = kind.defaults();
    for layer in layers.into_iter().flatten() {
        merge::merge_into(&mut doc, &kind.normalize(&layer.0));
    }
    Ok(JsonB(doc))
}

/// One row per leaf of the resolved document with the layer it came from.
#[pg_extern(name = "_explain_layers", immutable, parallel_safe)]
pub fn explain_layers(
    kind: &str,
    layers: Vec<Option<Doc>>,
    sources: Vec<Option<String>>,
    source_ids: Vec<Option<pgrx::Uuid>>,
) -> Result<
    TableIterator<'static, (name!(path, String), name!(value, JsonB), name!(source, String), name!(source_id, Option<pgrx::Uuid>))>,
    ErrorReport,
> {
    let kind = DocKind::parse(kind)?;
    let mut stack = vec![("default".to_string(), None, kind.defaults())];
    for (i, layer) in layers.into_iter().enumerate() {
        let Some(layer) = layer else { continue };
        let source = sources.get(i).cloned().flatten().unwrap_or_else(|| "override".into());
        let id = source_ids.get(i).copied().flatten().map(|u| u.to_string());
        stack.push((source, id, kind.normalize(&layer.0)));
    }
    let ids: std::collections::HashMap<String, pgrx::Uuid> =
        source_ids.into_iter().flatten().map(|u| (u.to_string(), u)).collect();
    let (_, leaves) = merge::explain(&stack);
    Ok(TableIterator::new(leaves.into_iter().map(move |l| {
        let id = l.source_id.as_ref().and_then(|s| ids.get(s).copied());
        (l.path, JsonB(l.value), l.source, id)
    })))
}

/// Cost in USD of a call from the contract's price table; unknown models are an error.
#[pg_extern(immutable, parallel_safe)]
pub fn calculate_cost(input_tokens: i64, output_tokens: i64, model: default!(&str, "'claude-sonnet-4-5-20250929'")) -> Result<pgrx::AnyNumeric, ErrorReport> {
    if input_tokens < 0 || output_tokens < 0 {
        return Err(ConfigError::Invalid { kind: "token counts", problems: vec![format!("token counts must not be negative (got {input_tokens}, {output_tokens})")] }.into());
    }
    let Some(m) = defaults::model(model) else {
        return Err(ConfigError::UnknownModel(model.to_string()).into());
    };
    // Prices have at most 5 decimals per 1k tokens: 8 decimals of the result are exact enough.
    let cost = (input_tokens as f64) / 1000.0 * m.input_per_1k + (output_tokens as f64) / 1000.0 * m.output_per_1k;
    pgrx::AnyNumeric::try_from(format!("{:.8}", cost).as_str())
        .map_err(|e| ConfigError::Invalid { kind: "cost", problems: vec![e.to_string()] }.into())
}

/// SQL `steward.ai_models()`: the model catalogue (issue #17) — the one table the validator,
/// `calculate_cost` and usage recording use; prices per million tokens.
#[pg_extern(stable, parallel_safe)]
pub fn ai_models() -> TableIterator<
    'static,
    (
        name!(model_id, String),
        name!(display_name, String),
        name!(context_window, i32),
        name!(output_limit, i32),
        name!(input_price_per_million, pgrx::AnyNumeric),
        name!(output_price_per_million, pgrx::AnyNumeric),
        name!(features, Vec<String>),
    ),
> {
    // Per 1k × 1 000, written with the catalogue's decimals (no binary rounding in the output).
    let per_million = |p: f64| {
        let v = (p * 1000.0 * 1e6).round() / 1e6;
        pgrx::AnyNumeric::try_from(format!("{v}").as_str()).unwrap_or_default()
    };
    TableIterator::new(defaults::MODELS.iter().map(move |m| {
        (
            m.id.to_string(),
            m.display_name.to_string(),
            m.context_window as i32,
            m.output_limit as i32,
            per_million(m.input_per_1k),
            per_million(m.output_per_1k),
            m.features.iter().map(|f| f.to_string()).collect(),
        )
    }))
}

/// `doc` with `update` applied (objects merged, `null` removes a key), normalised to the
/// nested form for AI configurations.
#[pg_extern(name = "_apply_update", immutable, parallel_safe)]
pub fn apply_update(kind: &str, doc: Option<Doc>, update: Doc) -> Result<JsonB, ErrorReport> {
    let kind = DocKind::parse(kind)?;
    if !update.0.is_object() {
        return Err(ConfigError::Invalid { kind: "update", problems: vec!["the update must be a JSON object".into()] }.into());
    }
    let mut base = kind.normalize(&doc.map(|d| d.0).unwrap_or_else(|| Value::Object(Default::default())));
    merge::apply_update(&mut base, &kind.normalize(&update.0));
    Ok(JsonB(base))
}

/// The document with its API keys in clear moved into `steward.api_key_vault`, bound to the
/// owner of the row (`owner_kind` 'user' or 'organization', `owner_id`), and tokens in their
/// place; NULL when it holds none (see `keys.rs`).  Called by the row guard, which runs as
/// the writer: this is the one privileged step, so it is SECURITY DEFINER with a pinned
/// search_path, takes plain values and touches steward's own vault table only.  Anyone who
/// may call it can only store a key they know, bound to an owner — which resolves a token
/// only in that owner's own rows, whose writers row-level security decides.
#[pg_extern(name = "_vault_api_keys", volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn vault_api_keys(doc: Option<Doc>, owner_kind: Option<&str>, owner_id: Option<pgrx::Uuid>) -> Result<Option<JsonB>, ErrorReport> {
    let (Some(doc), Some(kind), Some(id)) = (doc, owner_kind, owner_id) else { return Ok(None) };
    let Some(owner) = keys::Owner::parse(kind, id) else {
        return Err(ConfigError::Invalid { kind: "API key owner", problems: vec![format!("owner kind must be user or organization (got \"{kind}\")")] }.into());
    };
    Ok(keys::vault(&doc.0, owner)?.map(JsonB))
}

/// The document as the caller may see it: for the service role, tokens resolved through the
/// vault where they belong to `user_id` (the user whose configuration this is, or one of that
/// user's organisations); masked for everyone else.
#[pg_extern(name = "_reveal_api_keys", stable, parallel_safe)]
pub fn reveal_api_keys_for(doc: Option<Doc>, user_id: Option<pgrx::Uuid>) -> Result<Option<JsonB>, ErrorReport> {
    let Some(doc) = doc else { return Ok(None) };
    let mut doc = doc.0;
    keys::reveal_or_mask(&mut doc, crate::common::identity::sees_api_keys(), user_id)?;
    Ok(Some(JsonB(doc)))
}

/// The one-argument form kept for existing callers: resolves tokens for the calling user only
/// (the JWT subject), so a token resolves only in its owner's own requests.
#[pg_extern(name = "_reveal_api_keys", stable, parallel_safe, strict)]
pub fn reveal_api_keys(doc: Doc) -> Result<JsonB, ErrorReport> {
    let mut doc = doc.0;
    keys::reveal_or_mask(&mut doc, crate::common::identity::sees_api_keys(), crate::common::identity::caller_uuid())?;
    Ok(JsonB(doc))
}

/// API keys masked to their last four characters.
#[pg_extern(name = "_mask_api_keys", immutable, parallel_safe, strict)]
pub fn mask_api_keys(doc: Doc) -> JsonB {
    let mut doc = doc.0;
    merge::mask_api_keys(&mut doc);
    JsonB(doc)
}
