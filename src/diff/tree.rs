//! The diff algorithms over JSON values (pure Rust, unit- and property-tested).

use serde_json::{json, Map, Value};

use super::error::DiffError;

/// Equality as jsonb defines it: numbers by value (1 = 1.0), objects by keys, arrays by order.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The seed's diff shape: `{added: [{path, value}], modified: [{path, oldValue, newValue}],
/// removed: [{path, value}]}`; objects present on both sides are walked, everything else is
/// compared as a whole value; JSON null is a value (distinct from a missing key).
pub fn config_diff(old: &Value, new: &Value) -> Result<Value, DiffError> {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        let (argument, found) = if !old.is_object() { ("old", kind(old)) } else { ("new", kind(new)) };
        return Err(DiffError::NotAnObject { argument, found });
    };
    let mut out = Changes::default();
    walk(old, new, &mut String::new(), &mut out);
    Ok(json!({"added": out.added, "modified": out.modified, "removed": out.removed}))
}

#[derive(Default)]
struct Changes {
    added: Vec<Value>,
    modified: Vec<Value>,
    removed: Vec<Value>,
}

fn walk(old: &Map<String, Value>, new: &Map<String, Value>, prefix: &mut String, out: &mut Changes) {
    let base = prefix.len();
    for (key, before) in old {
        prefix.truncate(base);
        if base > 0 {
            prefix.push('.');
        }
        prefix.push_str(key);
        match new.get(key) {
            None => out.removed.push(json!({"path": prefix.as_str(), "value": before})),
            Some(Value::Object(after)) if before.is_object() => {
                if let Value::Object(before) = before {
                    walk(before, after, prefix, out);
                }
            }
            Some(after) => {
                if !same(before, after) {
                    out.modified.push(json!({"path": prefix.as_str(), "oldValue": before, "newValue": after}));
                }
            }
        }
    }
    for (key, after) in new {
        if !old.contains_key(key) {
            prefix.truncate(base);
            if base > 0 {
                prefix.push('.');
            }
            prefix.push_str(key);
            out.added.push(json!({"path": prefix.as_str(), "value": after}));
        }
    }
    prefix.truncate(base);
}

/// The operation name of patch entry `index`, for error messages.
fn op_name(patch: &Value, index: usize) -> String {
    patch
        .get(index)
        .and_then(|op| op.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// Apply an RFC 6902 patch: all operations or none.
pub fn apply_patch(doc: &Value, patch: &Value) -> Result<Value, DiffError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| DiffError::MalformedPatch { detail: e.to_string() })?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| DiffError::OperationFailed {
        index: e.operation,
        op: op_name(patch, e.operation),
        detail: format!("{} (at {})", e.kind, e.path),
    })?;
    Ok(out)
}

/// An RFC 6902 patch turning `old` into `new`.
pub fn diff_patch(old: &Value, new: &Value) -> Value {
    serde_json::to_value(json_patch::diff(old, new)).unwrap_or(Value::Array(Vec::new()))
}

/// RFC 7396 merge patch.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_shape_paths_and_null() {
        let old = json!({"model": {"temperature": 0.7, "maxTokens": 4096}, "a": null, "gone": [1], "n": 1});
        let new = json!({"model": {"temperature": 0.2, "maxTokens": 4096, "topP": 0.9}, "a": 1, "n": 1.0, "x": null});
        let d = config_diff(&old, &new).expect("objects");
        assert_eq!(d["added"], json!([{"path": "model.topP", "value": 0.9}, {"path": "x", "value": null}]));
        assert_eq!(d["removed"], json!([{"path": "gone", "value": [1]}]));
        assert_eq!(
            d["modified"],
            json!([{"path": "a", "oldValue": null, "newValue": 1}, {"path": "model.temperature", "oldValue": 0.7, "newValue": 0.2}])
        );
        assert!(matches!(config_diff(&json!([1]), &json!({})), Err(DiffError::NotAnObject { argument: "old", .. })));
        // An object replacing a scalar is a modification of the whole value, not a walk.
        let d = config_diff(&json!({"k": 1}), &json!({"k": {"x": 1}})).expect("objects");
        assert_eq!(d["modified"], json!([{"path": "k", "oldValue": 1, "newValue": {"x": 1}}]));
    }

    #[test]
    fn failing_patch_applies_nothing_and_names_the_operation() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}]);
        match apply_patch(&doc, &patch) {
            Err(DiffError::OperationFailed { index, op, .. }) => {
                assert_eq!(index, 1);
                assert_eq!(op, "test");
            }
            other => panic!("expected a failed operation, got {other:?}"),
        }
        assert!(matches!(apply_patch(&doc, &json!({"op": "add"})), Err(DiffError::MalformedPatch { .. })));
        assert!(matches!(apply_patch(&doc, &json!([{"op": "frobnicate", "path": "/a"}])), Err(DiffError::MalformedPatch { .. })));
    }

    /// The RFC 6902 conformance suite (json-patch-tests), read from ../shared when present.
    #[test]
    fn rfc6902_conformance_suite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/json-patch-tests");
        let mut ran = 0;
        for file in ["tests.json", "spec_tests.json"] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                eprintln!("conformance suite not present at {}: skipped", dir.display());
                return;
            };
            let cases: Vec<Value> = serde_json::from_str(&text).expect("suite is JSON");
            for case in cases {
                if case.get("disabled").and_then(Value::as_bool) == Some(true) || case.get("patch").is_none() {
                    continue;
                }
                let name = case.get("comment").cloned().unwrap_or(Value::Null);
                let doc = case.get("doc").cloned().unwrap_or(Value::Null);
                let result = apply_patch(&doc, &case["patch"]);
                if case.get("error").is_some() {
                    assert!(result.is_err(), "{file} {name}: expected an error, got {result:?}");
                } else if let Some(expected) = case.get("expected") {
                    let got = result.unwrap_or_else(|e| panic!("{file} {name}: {e:?}"));
                    assert_eq!(&got, expected, "{file} {name}");
                } else {
                    assert!(result.is_ok(), "{file} {name}: {result:?}");
                }
                ran += 1;
            }
        }
        assert!(ran > 100, "only {ran} conformance cases ran");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(|n| json!(n)),
            "[a-z/~.]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z~/.]{1,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-z~/.]{1,4}", json_value(), 0..6).prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn patch_of_diff_turns_a_into_b(a in json_value(), b in json_value()) {
            let patch = diff_patch(&a, &b);
            prop_assert_eq!(apply_patch(&a, &patch).expect("own patch applies"), b);
        }

        #[test]
        fn diff_of_equal_documents_is_empty(a in json_object()) {
            let d = config_diff(&a, &a.clone()).expect("objects");
            prop_assert_eq!(d, json!({"added": [], "modified": [], "removed": []}));
        }

        #[test]
        fn merge_patch_is_idempotent(a in json_object(), p in json_object()) {
            let once = merge_patch(&a, &p);
            prop_assert_eq!(merge_patch(&once, &p), once);
        }

        #[test]
        fn config_diff_accounts_for_every_changed_leaf(a in json_object(), b in json_object()) {
            let d = config_diff(&a, &b).expect("objects");
            let n = |k: &str| d[k].as_array().map(Vec::len).unwrap_or(0);
            prop_assert_eq!(n("added") + n("modified") + n("removed") == 0, same(&a, &b));
        }
    }
}
