//! The diff algorithms over JSON values (pure Rust, unit- and property-tested).
//!
//! Every walker here is bounded (issue #13): it descends through `common::jsonb::descend`
//! (the depth limit and PostgreSQL's stack test, 54001) and counts what it is about to build
//! against `MAX_BYTES` (54000) before building it.  Patches are applied one operation at a
//! time, each one's effect on the document's size and depth estimated before it runs, so a
//! patch that copies a document into itself over and over fails on the first copy that would
//! pass the limit instead of exhausting memory.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::DiffError;
use crate::common::jsonb::{descend, jsonb_depth, jsonb_size, within_size, LimitError, MAX_BYTES, MAX_DEPTH};

/// The most operations one JSON Patch may have (each one walks a path; a few thousand is
/// already far more than any diff of a configuration produces).
pub const MAX_PATCH_OPERATIONS: usize = 100_000;

/// Equality as jsonb defines it: numbers by value (1 = 1.0), objects by keys, arrays by order.
#[cfg(test)]
pub fn same(a: &Value, b: &Value) -> Result<bool, LimitError> {
    same_at(a, b, 0)
}

fn same_at(a: &Value, b: &Value, depth: usize) -> Result<bool, LimitError> {
    Ok(match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            descend(depth)?;
            if x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y) {
                if !same_at(p, q, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Object(x), Value::Object(y)) => {
            descend(depth)?;
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if same_at(v, w, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        _ => a == b,
    })
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

/// What a result will take, counted before each piece is built (54000 past `MAX_BYTES`).
struct Budget {
    what: &'static str,
    used: usize,
}

impl Budget {
    fn new(what: &'static str) -> Budget {
        Budget { what, used: 0 }
    }

    /// Count `extra` bytes plus the jsonb size of each of `values`.
    fn spend(&mut self, extra: usize, values: &[&Value]) -> Result<(), LimitError> {
        self.used = self.used.saturating_add(extra);
        for v in values {
            let room = MAX_BYTES.saturating_sub(self.used);
            self.used = self.used.saturating_add(jsonb_size(v, room));
        }
        within_size(self.what, self.used)
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
    let mut budget = Budget::new("the diff");
    walk(old, new, &mut String::new(), &mut out, &mut budget, 0)?;
    Ok(json!({"added": out.added, "modified": out.modified, "removed": out.removed}))
}

#[derive(Default)]
struct Changes {
    added: Vec<Value>,
    modified: Vec<Value>,
    removed: Vec<Value>,
}

/// Each entry costs its path (paths grow with depth: a deep document with long keys could
/// otherwise make the result quadratic in the input) and its values.
const ENTRY_OVERHEAD: usize = 48;

fn walk(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    prefix: &mut String,
    out: &mut Changes,
    budget: &mut Budget,
    depth: usize,
) -> Result<(), LimitError> {
    descend(depth)?;
    let base = prefix.len();
    for (key, before) in old {
        prefix.truncate(base);
        if base > 0 {
            prefix.push('.');
        }
        prefix.push_str(key);
        match new.get(key) {
            None => {
                budget.spend(ENTRY_OVERHEAD + prefix.len(), &[before])?;
                out.removed.push(json!({"path": prefix.as_str(), "value": before}));
            }
            Some(Value::Object(after)) if before.is_object() => {
                if let Value::Object(before) = before {
                    walk(before, after, prefix, out, budget, depth + 1)?;
                }
            }
            Some(after) => {
                if !same_at(before, after, depth + 1)? {
                    budget.spend(ENTRY_OVERHEAD + prefix.len(), &[before, after])?;
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
            budget.spend(ENTRY_OVERHEAD + prefix.len(), &[after])?;
            out.added.push(json!({"path": prefix.as_str(), "value": after}));
        }
    }
    prefix.truncate(base);
    Ok(())
}

/// The operation name of patch entry `index`, for error messages.
fn op_name(patch: &Value, index: usize) -> String {
    patch
        .get(index)
        .and_then(|op| op.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .chars()
        .take(40)
        .collect()
}

/// Apply an RFC 6902 patch: all operations or none.  Operations run one at a time on a copy
/// of the document (discarded on any failure); before each one, what it adds is estimated
/// (the jsonb size of the value added or copied, the depth it lands at) and the patch fails
/// with 54000/54001 before the allocation that would pass a limit.
pub fn apply_patch(doc: &Value, patch: &Value) -> Result<Value, DiffError> {
    use json_patch::PatchOperation as Op;

    let ops = json_patch::Patch::deserialize(patch).map_err(|e| DiffError::MalformedPatch { detail: e.to_string() })?;
    if ops.0.len() > MAX_PATCH_OPERATIONS {
        return Err(LimitError::TooMany { what: "JSON Patch operations", count: ops.0.len(), limit: MAX_PATCH_OPERATIONS }.into());
    }
    let mut size = jsonb_size(doc, usize::MAX);
    within_size("the document", size)?;
    let mut out = doc.clone();
    for (index, op) in ops.0.iter().enumerate() {
        // A long patch stays cancellable (statement_timeout, pg_cancel_backend).
        #[cfg(not(test))]
        pgrx::check_for_interrupts!();
        let limited = |limit: LimitError| DiffError::OperationLimit { index, op: op_name(patch, index), limit };
        // The value this operation puts into the document, and where.
        let (inserted, at): (Option<&Value>, &json_patch::jsonptr::Pointer) = match op {
            Op::Add(a) => (Some(&a.value), &a.path),
            Op::Replace(r) => (Some(&r.value), &r.path),
            Op::Copy(c) => (out.pointer(c.from.as_str()), &c.path),
            Op::Move(m) => (out.pointer(m.from.as_str()), &m.path),
            Op::Remove(r) => (None, &r.path),
            Op::Test(t) => (None, &t.path),
        };
        if let Some(value) = inserted {
            // Each path token steps into one container: the value's own nesting lands below.
            let room = MAX_DEPTH.saturating_sub(at.count());
            if jsonb_depth(value, room) > room {
                return Err(limited(LimitError::TooDeep { limit: MAX_DEPTH }));
            }
            if !matches!(op, Op::Move(_)) {
                size = size.saturating_add(4 + at.as_str().len() + jsonb_size(value, MAX_BYTES.saturating_sub(size)));
            }
        }
        // What leaves the document (replace, remove) is counted out again.
        if matches!(op, Op::Replace(_) | Op::Remove(_)) {
            if let Some(gone) = out.pointer(at.as_str()) {
                size = size.saturating_sub(jsonb_size(gone, usize::MAX));
            }
        }
        within_size("the patched document", size).map_err(limited)?;
        json_patch::patch_unsafe(&mut out, std::slice::from_ref(op)).map_err(|e| DiffError::OperationFailed {
            index,
            op: op_name(patch, index),
            detail: format!("{} (at {})", e.kind, e.path),
        })?;
    }
    Ok(out)
}

/// An RFC 6902 patch turning `old` into `new` (json-patch's algorithm: objects key by key,
/// arrays index by index, anything else replaced), bounded in depth and size.
pub fn diff_patch(old: &Value, new: &Value) -> Result<Value, DiffError> {
    let mut ops = Vec::new();
    let mut budget = Budget::new("the patch");
    diff_into(old, new, &mut String::new(), &mut ops, &mut budget, 0)?;
    Ok(Value::Array(ops))
}

/// One pointer token, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn operation(budget: &mut Budget, op: &str, pointer: &str, value: Option<&Value>) -> Result<Value, LimitError> {
    budget.spend(ENTRY_OVERHEAD + pointer.len(), value.as_slice())?;
    let mut m = Map::new();
    m.insert("op".into(), Value::String(op.into()));
    m.insert("path".into(), Value::String(pointer.into()));
    if let Some(v) = value {
        m.insert("value".into(), v.clone());
    }
    Ok(Value::Object(m))
}

fn diff_into(
    left: &Value,
    right: &Value,
    pointer: &mut String,
    ops: &mut Vec<Value>,
    budget: &mut Budget,
    depth: usize,
) -> Result<(), LimitError> {
    let base = pointer.len();
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            descend(depth)?;
            for (key, rv) in r {
                push_token(pointer, key);
                match l.get(key) {
                    Some(lv) => diff_into(lv, rv, pointer, ops, budget, depth + 1)?,
                    None => ops.push(operation(budget, "add", pointer, Some(rv))?),
                }
                pointer.truncate(base);
            }
            for key in l.keys() {
                if !r.contains_key(key) {
                    push_token(pointer, key);
                    ops.push(operation(budget, "remove", pointer, None)?);
                    pointer.truncate(base);
                }
            }
        }
        (Value::Array(l), Value::Array(r)) => {
            descend(depth)?;
            let mut shift = 0usize;
            for idx in 0..l.len().max(r.len()) {
                push_token(pointer, &(idx - shift).to_string());
                match (l.get(idx), r.get(idx)) {
                    (Some(lv), Some(rv)) => diff_into(lv, rv, pointer, ops, budget, depth + 1)?,
                    (Some(_), None) => {
                        shift += 1;
                        ops.push(operation(budget, "remove", pointer, None)?);
                    }
                    (None, Some(rv)) => ops.push(operation(budget, "add", pointer, Some(rv))?),
                    (None, None) => {}
                }
                pointer.truncate(base);
            }
        }
        _ if scalar_or_equal(left, right, depth)? => {}
        _ => ops.push(operation(budget, "replace", pointer, Some(right))?),
    }
    Ok(())
}

/// json-patch's `left == right` for values that are not two objects or two arrays (serde's
/// equality: 1 and 1.0 differ), through the bounded comparison when containers are involved.
fn scalar_or_equal(left: &Value, right: &Value, depth: usize) -> Result<bool, LimitError> {
    match (left, right) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            // Different kinds (two of the same kind were walked above): never equal.
            descend(depth)?;
            Ok(false)
        }
        _ => Ok(left == right),
    }
}

/// RFC 7396 merge patch (json-patch's `merge`, with the depth guard), its result within
/// `MAX_BYTES`.
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, DiffError> {
    // Both inputs were read within the limits, and the result holds at most each of their
    // parts once, so memory stays bounded while merging; the result itself is judged after.
    let mut out = doc.clone();
    merge_at(&mut out, patch, 0)?;
    within_size("the merged document", jsonb_size(&out, MAX_BYTES))?;
    Ok(out)
}

fn merge_at(doc: &mut Value, patch: &Value, depth: usize) -> Result<(), LimitError> {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return Ok(());
    };
    descend(depth)?;
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(map) = doc {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key.as_str());
            } else {
                merge_at(map.entry(key.as_str()).or_insert(Value::Null), value, depth + 1)?;
            }
        }
    }
    Ok(())
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
            let patch = diff_patch(&a, &b).expect("small documents");
            prop_assert_eq!(apply_patch(&a, &patch).expect("own patch applies"), b);
        }

        #[test]
        fn diff_of_equal_documents_is_empty(a in json_object()) {
            let d = config_diff(&a, &a.clone()).expect("objects");
            prop_assert_eq!(d, json!({"added": [], "modified": [], "removed": []}));
        }

        #[test]
        fn merge_patch_is_idempotent(a in json_object(), p in json_object()) {
            let once = merge_patch(&a, &p).expect("small documents");
            prop_assert_eq!(merge_patch(&once, &p).expect("small documents"), once);
        }

        #[test]
        fn config_diff_accounts_for_every_changed_leaf(a in json_object(), b in json_object()) {
            let d = config_diff(&a, &b).expect("objects");
            let n = |k: &str| d[k].as_array().map(Vec::len).unwrap_or(0);
            prop_assert_eq!(n("added") + n("modified") + n("removed") == 0, same(&a, &b).expect("shallow"));
        }
    }
}
