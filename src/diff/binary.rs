//! `config_diff` over jsonb's binary form.
//!
//! The tree version (`tree::config_diff`) reads both documents into serde values first; for
//! two ~40-leaf configurations that read — every number through `numeric_out` — cost more
//! than printing both documents as text (BENCHMARKS.md).  Here the walk stays in the binary
//! containers: keys are looked up with jsonb's own binary search, equal subtrees are
//! recognised by `compareJsonbContainers` (jsonb's `=`: `1.0` equals `1.00`), and only the
//! values that changed are copied into the result, as binary, without a text round trip.
//! Same result as the tree version (a pg_test checks both on generated documents); entries
//! come in jsonb key order (shorter keys first), the order `jsonb_each` gives.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use pg_sys::JsonbIteratorToken::{WJB_BEGIN_ARRAY, WJB_BEGIN_OBJECT, WJB_DONE, WJB_END_ARRAY, WJB_END_OBJECT, WJB_KEY, WJB_VALUE};
use pg_sys::{jbvType, JsonbContainer, JsonbValue};

use super::tree;
use crate::common::jsonb::{jsonb_string, JsonbDatum, RawJsonb};

struct Changes {
    added: Vec<(String, JsonbValue)>,
    modified: Vec<(String, JsonbValue, JsonbValue)>,
    removed: Vec<(String, JsonbValue)>,
}

fn header(c: *const JsonbContainer) -> u32 {
    unsafe { (*c).header }
}

fn is_object(c: *const JsonbContainer) -> bool {
    header(c) & pg_sys::JB_FOBJECT != 0
}

/// The nested object behind a value, if it is one.
fn object_of(v: &JsonbValue) -> Option<*mut JsonbContainer> {
    if v.type_ == jbvType::jbvBinary {
        let data = unsafe { v.val.binary.data };
        if is_object(data) {
            return Some(data);
        }
    }
    None
}

fn key_bytes(v: &JsonbValue) -> &[u8] {
    unsafe {
        let s = v.val.string;
        if s.val.is_null() || s.len <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(s.val as *const u8, s.len as usize)
        }
    }
}

/// jsonb's `=` on two values of a container (scalars or nested containers).
fn equal(a: &JsonbValue, b: &JsonbValue) -> bool {
    if a.type_ != b.type_ {
        return false;
    }
    unsafe {
        match a.type_ {
            jbvType::jbvNull => true,
            jbvType::jbvBool => a.val.boolean == b.val.boolean,
            jbvType::jbvString => key_bytes(a) == key_bytes(b),
            jbvType::jbvNumeric => {
                let cmp = pgrx::direct_function_call::<i32>(
                    pg_sys::numeric_cmp,
                    &[Some(pg_sys::Datum::from(a.val.numeric)), Some(pg_sys::Datum::from(b.val.numeric))],
                );
                cmp == Some(0)
            }
            jbvType::jbvBinary => pg_sys::compareJsonbContainers(a.val.binary.data, b.val.binary.data) == 0,
            _ => false,
        }
    }
}

fn lookup(container: *mut JsonbContainer, key: &[u8]) -> Option<JsonbValue> {
    let found = unsafe {
        pg_sys::getKeyJsonValueFromContainer(container, key.as_ptr() as *const std::ffi::c_char, key.len() as i32, std::ptr::null_mut())
    };
    if found.is_null() { None } else { Some(unsafe { *found }) }
}

/// The (key, value) pairs of an object, nested containers left as binary values.
fn pairs(container: *mut JsonbContainer) -> Vec<(JsonbValue, JsonbValue)> {
    let mut out = Vec::new();
    unsafe {
        let mut it = pg_sys::JsonbIteratorInit(container);
        let mut v: JsonbValue = std::mem::zeroed();
        let mut key: Option<JsonbValue> = None;
        loop {
            match pg_sys::JsonbIteratorNext(&mut it, &mut v, true) {
                WJB_DONE => break,
                WJB_KEY => key = Some(v),
                WJB_VALUE => {
                    if let Some(k) = key.take() {
                        out.push((k, v));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn path_of(prefix: &str, key: &[u8]) -> String {
    let key = String::from_utf8_lossy(key);
    if prefix.is_empty() { key.into_owned() } else { format!("{prefix}.{key}") }
}

fn walk(old: *mut JsonbContainer, new: *mut JsonbContainer, prefix: &str, out: &mut Changes) {
    for (key, before) in pairs(old) {
        let name = key_bytes(&key);
        match lookup(new, name) {
            None => out.removed.push((path_of(prefix, name), before)),
            Some(after) => match (object_of(&before), object_of(&after)) {
                (Some(b), Some(a)) => walk(b, a, &path_of(prefix, name), out),
                _ => {
                    if !equal(&before, &after) {
                        out.modified.push((path_of(prefix, name), before, after));
                    }
                }
            },
        }
    }
    for (key, after) in pairs(new) {
        let name = key_bytes(&key);
        if lookup(old, name).is_none() {
            out.added.push((path_of(prefix, name), after));
        }
    }
}

unsafe fn push_key(state: &mut *mut pg_sys::JsonbParseState, key: &str) {
    let mut k = jsonb_string(key);
    unsafe { pg_sys::pushJsonbValue(state, WJB_KEY, &mut k) };
}

unsafe fn push_field(state: &mut *mut pg_sys::JsonbParseState, key: &str, value: &JsonbValue) {
    let mut v = *value;
    unsafe {
        push_key(state, key);
        pg_sys::pushJsonbValue(state, WJB_VALUE, &mut v);
    }
}

fn build(changes: &Changes) -> pg_sys::Datum {
    let null: *mut JsonbValue = std::ptr::null_mut();
    let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
    unsafe {
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, null);
        let one = |state: &mut *mut pg_sys::JsonbParseState, path: &str, fields: &[(&str, &JsonbValue)]| {
            pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
            let mut p = jsonb_string(path);
            push_key(state, "path");
            pg_sys::pushJsonbValue(state, WJB_VALUE, &mut p);
            for (name, value) in fields {
                push_field(state, name, value);
            }
            pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut());
        };
        push_key(&mut state, "added");
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_ARRAY, null);
        for (path, value) in &changes.added {
            one(&mut state, path, &[("value", value)]);
        }
        pg_sys::pushJsonbValue(&mut state, WJB_END_ARRAY, null);
        push_key(&mut state, "modified");
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_ARRAY, null);
        for (path, before, after) in &changes.modified {
            one(&mut state, path, &[("oldValue", before), ("newValue", after)]);
        }
        pg_sys::pushJsonbValue(&mut state, WJB_END_ARRAY, null);
        push_key(&mut state, "removed");
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_ARRAY, null);
        for (path, value) in &changes.removed {
            one(&mut state, path, &[("value", value)]);
        }
        pg_sys::pushJsonbValue(&mut state, WJB_END_ARRAY, null);
        let root = pg_sys::pushJsonbValue(&mut state, WJB_END_OBJECT, null);
        pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(root))
    }
}

/// `{added, modified, removed}` of two objects; anything else is the tree version's error.
pub fn config_diff(old: Option<RawJsonb>, new: Option<RawJsonb>) -> Result<JsonbDatum, ErrorReport> {
    match (old, new) {
        (Some(o), Some(n)) if is_object(o.root()) && is_object(n.root()) => {
            let mut changes = Changes { added: Vec::new(), modified: Vec::new(), removed: Vec::new() };
            walk(o.root(), n.root(), "", &mut changes);
            Ok(JsonbDatum(build(&changes)))
        }
        (o, n) => {
            let value = |d: Option<RawJsonb>| d.map(|d| d.to_value()).unwrap_or(serde_json::Value::Null);
            // Not two objects: the tree version names the culprit.
            tree::config_diff(&value(o), &value(n))?;
            Err(super::error::DiffError::NotAnObject { argument: "old", found: "not an object" }.into())
        }
    }
}
