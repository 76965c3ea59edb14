//! Layered resolution: objects merge key by key, recursively; scalars and arrays from a
//! higher layer replace lower ones; a JSON `null` in an override layer means "inherit".
//! `explain` keeps, for every leaf, the layer it came from.
//!
//! Every walker descends through `common::jsonb::descend` (depth limit and PostgreSQL's stack
//! test: 54001); their callers take no `Result`, so a limit is raised as a PostgreSQL error
//! through `ConfigError` (pgrx turns it into an ereport with that SQLSTATE).  The documents
//! themselves were read within the size limit, and a merge holds each of their parts at
//! most once; `explain`, whose paths grow with depth, counts what it builds (54000).

use serde_json::{Map, Value};

use super::error::ConfigError;
use crate::common::jsonb::{descend, within_size, LimitError};

/// Descend or raise (54001).
fn guard(depth: usize) {
    if let Err(e) = descend(depth) {
        ConfigError::from(e).raise();
    }
}

/// Merge `over` onto `base` in place.
pub fn merge_into(base: &mut Value, over: &Value) {
    merge_at(base, over, 0)
}

fn merge_at(base: &mut Value, over: &Value, depth: usize) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            guard(depth);
            for (key, value) in o {
                match b.get_mut(key) {
                    Some(slot) => merge_at(slot, value, depth + 1),
                    None if !value.is_null() => {
                        let mut fresh = Value::Object(Map::new());
                        if value.is_object() {
                            merge_at(&mut fresh, value, depth + 1);
                        } else {
                            fresh = value.clone();
                        }
                        b.insert(key.clone(), fresh);
                    }
                    None => {}
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// Apply a partial update to a stored document: objects merge recursively, scalars and arrays
/// replace, and `null` removes the key (so the value is inherited again) — RFC 7396 semantics.
pub fn apply_update(doc: &mut Value, update: &Value) {
    update_at(doc, update, 0)
}

fn update_at(doc: &mut Value, update: &Value, depth: usize) {
    match (doc, update) {
        (Value::Object(d), Value::Object(u)) => {
            guard(depth);
            for (key, value) in u {
                if value.is_null() {
                    d.remove(key);
                } else if let Some(slot) = d.get_mut(key).filter(|s| s.is_object() && value.is_object()) {
                    update_at(slot, value, depth + 1);
                } else {
                    let mut fresh = Value::Object(Map::new());
                    if value.is_object() {
                        update_at(&mut fresh, value, depth + 1);
                    } else {
                        fresh = value.clone();
                    }
                    d.insert(key.clone(), fresh);
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// API keys shown to anyone but the service role: the last four characters only (a vault
/// token shows the mask it carries; see `keys.rs`).
pub fn mask_api_keys(doc: &mut Value) {
    if let Some(Value::Object(keys)) = doc.get_mut("apiKeys") {
        for name in super::keys::KEY_FIELDS {
            if let Some(Value::String(key)) = keys.get_mut(name) {
                if !key.is_empty() {
                    *key = super::keys::masked(key);
                }
            }
        }
    }
}

/// The older flat AI configuration form (`model` as a string, top-level `temperature`,
/// `maxTokens`, `topP`, `streaming`) read as the nested form; anything else is kept.
/// `normalize_ai_config` without copying a document that is already in the nested form.
pub fn normalized_ai_config(doc: &Value) -> std::borrow::Cow<'_, Value> {
    let legacy = ["temperature", "maxTokens", "topP", "streaming"];
    match doc {
        Value::Object(map) if map.get("model").is_some_and(Value::is_string) || legacy.iter().any(|k| map.contains_key(*k)) => {
            std::borrow::Cow::Owned(normalize_ai_config(doc))
        }
        _ => std::borrow::Cow::Borrowed(doc),
    }
}

pub fn normalize_ai_config(doc: &Value) -> Value {
    let Value::Object(map) = doc else { return doc.clone() };
    let legacy = ["temperature", "maxTokens", "topP", "streaming"];
    if !map.get("model").is_some_and(Value::is_string) && !legacy.iter().any(|k| map.contains_key(*k)) {
        return doc.clone();
    }
    let mut out = map.clone();
    let mut model = match out.remove("model") {
        Some(Value::Object(m)) => m,
        Some(Value::String(name)) => {
            let mut m = Map::new();
            m.insert("model".into(), Value::String(name));
            m
        }
        Some(other) => {
            // Neither form: leave it for the validator to report.
            out.insert("model".into(), other);
            return Value::Object(out);
        }
        None => Map::new(),
    };
    for key in legacy {
        if let Some(v) = out.remove(key) {
            // The nested value wins when both forms are present.
            model.entry(key.to_string()).or_insert(v);
        }
    }
    out.insert("model".into(), Value::Object(model));
    Value::Object(out)
}

/// One leaf of a resolved document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub path: String,
    pub value: Value,
    pub source: String,
    pub source_id: Option<String>,
}

/// Resolve `layers` (lowest first: (source, id, document)) and return every leaf with the
/// layer that set it last.
/// Paths grow with depth: a deep layer with long keys would make the paths quadratic in
/// the layer's size, so what `explain` builds is counted against `MAX_BYTES`.
pub fn explain(layers: &[(String, Option<String>, Value)]) -> (Value, Vec<Leaf>) {
    let mut doc = Value::Object(Map::new());
    let mut origin: std::collections::BTreeMap<String, (String, Option<String>)> = Default::default();
    let mut budget = 0usize;
    let raise = |e: LimitError| -> ! { ConfigError::from(e).raise() };
    for (source, id, layer) in layers {
        merge_into(&mut doc, layer);
        record_origin(layer, "", source, id, &mut origin, &mut budget, 0).unwrap_or_else(|e| raise(e));
    }
    let mut leaves = Vec::new();
    collect_leaves(&doc, "", &origin, &mut leaves, &mut budget, 0).unwrap_or_else(|e| raise(e));
    (doc, leaves)
}

/// Count `bytes` more of what `explain` builds.
fn spend(budget: &mut usize, bytes: usize) -> Result<(), LimitError> {
    *budget = budget.saturating_add(bytes);
    within_size("the resolved configuration with its provenance", *budget)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn record_origin(
    layer: &Value,
    prefix: &str,
    source: &str,
    id: &Option<String>,
    origin: &mut std::collections::BTreeMap<String, (String, Option<String>)>,
    budget: &mut usize,
    depth: usize,
) -> Result<(), LimitError> {
    if let Value::Object(map) = layer {
        descend(depth)?;
        for (key, value) in map {
            let path = join(prefix, key);
            match value {
                Value::Null => {}
                Value::Object(inner) if !inner.is_empty() => record_origin(value, &path, source, id, origin, budget, depth + 1)?,
                _ => {
                    spend(budget, 64 + path.len() + source.len())?;
                    origin.insert(path, (source.to_string(), id.clone()));
                }
            }
        }
    }
    Ok(())
}

fn collect_leaves(
    doc: &Value,
    prefix: &str,
    origin: &std::collections::BTreeMap<String, (String, Option<String>)>,
    out: &mut Vec<Leaf>,
    budget: &mut usize,
    depth: usize,
) -> Result<(), LimitError> {
    match doc {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            descend(depth)?;
            for (key, value) in map {
                collect_leaves(value, &join(prefix, key), origin, out, budget, depth + 1)?;
            }
        }
        _ => {
            // The leaf's value is copied too (arrays are leaves and may be large).
            spend(budget, 64 + prefix.len() + crate::common::jsonb::jsonb_size(doc, crate::common::jsonb::MAX_BYTES))?;
            let (source, source_id) = origin.get(prefix).cloned().unwrap_or_else(|| ("default".into(), None));
            out.push(Leaf { path: prefix.to_string(), value: doc.clone(), source, source_id });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_scalars_and_arrays_replace_null_inherits() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": 5});
        merge_into(&mut base, &json!({"a": {"c": [3], "n": null}, "d": null, "e": {"deep": true}}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3]}, "d": "x", "e": {"deep": true}}));
    }

    #[test]
    fn updates_merge_and_null_removes() {
        let mut doc = json!({"theme": "dark", "notifications": {"email": true, "toast": false}});
        apply_update(&mut doc, &json!({"theme": null, "notifications": {"email": false}, "rowsPerPage": 50}));
        assert_eq!(doc, json!({"notifications": {"email": false, "toast": false}, "rowsPerPage": 50}));
    }

    #[test]
    fn keys_are_masked_to_their_last_four_characters() {
        let mut doc = json!({"apiKeys": {"primaryKey": "sk-ant-1234567890abcd", "secondaryKey": "short", "keyVersion": 2}});
        mask_api_keys(&mut doc);
        assert_eq!(doc, json!({"apiKeys": {"primaryKey": "••••abcd", "secondaryKey": "••••", "keyVersion": 2}}));
    }

    #[test]
    fn legacy_flat_form_reads_as_nested() {
        let flat = json!({"model": "claude-3-opus-20240229", "temperature": 0.2, "maxTokens": 100, "rateLimiting": {"requestsPerMinute": 5}});
        assert_eq!(
            normalize_ai_config(&flat),
            json!({"model": {"model": "claude-3-opus-20240229", "temperature": 0.2, "maxTokens": 100}, "rateLimiting": {"requestsPerMinute": 5}})
        );
        let nested = json!({"model": {"temperature": 0.5}});
        assert_eq!(normalize_ai_config(&nested), nested);
        // Both forms: the nested value wins.
        assert_eq!(normalize_ai_config(&json!({"model": {"topP": 0.1}, "topP": 0.9})), json!({"model": {"topP": 0.1}}));
    }

    #[test]
    fn provenance_names_the_last_layer_that_set_each_leaf() {
        let layers = vec![
            ("default".to_string(), None, json!({"model": {"temperature": 0.7, "topP": 0.9}, "x": [1]})),
            ("database".to_string(), None, json!({"model": {"topP": 0.5}})),
            ("user".to_string(), Some("u1".to_string()), json!({"model": {"temperature": null}, "x": [2]})),
        ];
        let (doc, leaves) = explain(&layers);
        assert_eq!(doc, json!({"model": {"temperature": 0.7, "topP": 0.5}, "x": [2]}));
        let find = |p: &str| leaves.iter().find(|l| l.path == p).map(|l| (l.source.clone(), l.source_id.clone()));
        assert_eq!(find("model.temperature"), Some(("default".into(), None)));
        assert_eq!(find("model.topP"), Some(("database".into(), None)));
        assert_eq!(find("x"), Some(("user".into(), Some("u1".into()))));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::config::defaults;
    use proptest::prelude::*;

    /// An override shaped like `template`: for each key absent, null, a scalar of any kind
    /// where the template has a scalar, or (recursively) an override where it has an object.
    fn override_like(template: Value) -> BoxedStrategy<Value> {
        match template {
            Value::Object(map) => {
                let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = map
                    .into_iter()
                    .map(|(key, value)| {
                        let k = key.clone();
                        prop_oneof![
                            Just(None),
                            Just(Some((key, Value::Null))),
                            override_like(value).prop_map(move |v| Some((k.clone(), v))),
                        ]
                        .boxed()
                    })
                    .collect();
                fields.prop_map(|entries| Value::Object(entries.into_iter().flatten().collect())).boxed()
            }
            _ => prop_oneof![
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(|n| Value::from(n)),
                "[a-z]{0,8}".prop_map(Value::String),
                prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| Value::from(v)),
            ]
            .boxed(),
        }
    }

    fn leaf_paths(doc: &Value, prefix: &str, out: &mut Vec<String>) {
        match doc {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    leaf_paths(v, &if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }

    fn has_path(doc: &Value, path: &str) -> bool {
        path.split('.').try_fold(doc, |d, k| d.get(k)).is_some()
    }

    proptest! {
        #[test]
        fn merging_layers_never_loses_a_default_key(
            org in override_like(defaults::ai_config()),
            user in override_like(defaults::ai_config()),
        ) {
            let (doc, leaves) = explain(&[
                ("default".into(), None, defaults::ai_config()),
                ("organization".into(), None, org),
                ("user".into(), None, user),
            ]);
            let mut paths = Vec::new();
            leaf_paths(&defaults::ai_config(), "", &mut paths);
            for path in &paths {
                prop_assert!(has_path(&doc, path), "lost {}", path);
                prop_assert!(leaves.iter().any(|l| &l.path == path), "no provenance for {}", path);
            }
        }

        #[test]
        fn user_preferences_keep_every_default_key(update in override_like(defaults::user_preferences())) {
            let mut doc = defaults::user_preferences();
            merge_into(&mut doc, &update);
            let mut paths = Vec::new();
            leaf_paths(&defaults::user_preferences(), "", &mut paths);
            for path in &paths {
                prop_assert!(has_path(&doc, path), "lost {}", path);
            }
        }
    }
}
