//! `config_diff` over jsonb's binary form.
//!
//! The tree version (`tree::config_diff`) reads both documents into serde values first; for
//! two ~40-leaf configurations that read — every number through `numeric_out` — cost more
//! than printing both documents as text.  A first binary version walked the documents with
//! PostgreSQL's iterator and key lookup: 15.8 µs a pair, most of it the guarded FFI call pgrx
//! wraps around every PostgreSQL function (a `sigsetjmp` each, hundreds per pair).  So the
//! container layout is read here in Rust (BENCHMARKS.md has the figures): keys by binary
//! search, equal subtrees by equal bytes, and only where bytes differ does PostgreSQL decide
//! (`numeric_cmp`, `compareJsonbContainers`: jsonb's `=`, so `1.0` equals `1.00`).  Changed
//! values go into the result as binary, without a text round trip.  Same result as the tree
//! version (a pg_test checks both on generated documents); entries come in jsonb key order
//! (shorter keys first), the order `jsonb_each` gives.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use pg_sys::JsonbIteratorToken::{WJB_BEGIN_ARRAY, WJB_BEGIN_OBJECT, WJB_END_ARRAY, WJB_END_OBJECT, WJB_KEY, WJB_VALUE};
use pg_sys::{jbvType, JsonbContainer, JsonbValue};

use super::error::DiffError;
use super::tree;
use crate::common::jsonb::{borrowed_jsonb_string, descend, within_size, JsonbDatum, LimitError, RawJsonb};
use crate::common::layout::{is_object, object_pairs, Val};

thread_local! {
    /// How often two objects took the slow path (tests assert it stays 0).
    pub static FALLBACKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct Changes {
    added: Vec<(String, JsonbValue)>,
    modified: Vec<(String, JsonbValue, JsonbValue)>,
    removed: Vec<(String, JsonbValue)>,
    /// What the result will take: each entry's path and values, counted before it is kept
    /// (paths grow with depth, so a deep document with long keys could otherwise make the
    /// result quadratic in its input).
    bytes: usize,
}

impl Changes {
    fn spend(&mut self, path: &str, values: &[&Val<'_>]) -> Result<(), LimitError> {
        let sizes: usize = values.iter().map(|v| size_of(v)).sum();
        self.bytes = self.bytes.saturating_add(48 + path.len() + sizes);
        within_size("the diff", self.bytes)
    }
}

fn size_of(v: &Val<'_>) -> usize {
    match v {
        Val::Str(s) | Val::Num(s) | Val::Container(s) => 4 + s.len(),
        Val::Bool(_) | Val::Null => 4,
    }
}

/// jsonb's `=`: equal bytes are equal values; different bytes may still be equal numbers
/// (`1.0` and `1.00`) or containers holding such numbers, which PostgreSQL decides.
fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Null, Val::Null) => true,
        (Val::Num(x), Val::Num(y)) => {
            // SAFETY: both slices are whole numeric varlenas inside the detoasted documents
            // (`layout::children` bounds-checked them), alive for the whole call.
            x == y || unsafe {
                pgrx::direct_function_call::<i32>(
                    pg_sys::numeric_cmp,
                    &[Some(pg_sys::Datum::from(x.as_ptr())), Some(pg_sys::Datum::from(y.as_ptr()))],
                ) == Some(0)
            }
        }
        (Val::Container(x), Val::Container(y)) => {
            // SAFETY: both slices are whole containers inside the detoasted documents; PostgreSQL
            // walks them with its iterator (no recursion on the C stack) and only reads them.
            x == y || unsafe {
                pg_sys::compareJsonbContainers(x.as_ptr() as *mut JsonbContainer, y.as_ptr() as *mut JsonbContainer) == 0
            }
        }
        _ => false,
    }
}

/// The value for `pushJsonbValue`, pointing into the document (alive for the whole call).
fn jsonb_value(v: &Val<'_>) -> JsonbValue {
    // SAFETY: JsonbValue is a plain C struct (a tag and a union) for which all-zero bytes are
    // a valid value; every field read later is set below.
    let mut out: JsonbValue = unsafe { std::mem::zeroed() };
    match *v {
        Val::Str(s) => {
            out.type_ = jbvType::jbvString;
            out.val.string.len = s.len() as i32;
            out.val.string.val = s.as_ptr() as *mut std::ffi::c_char;
        }
        Val::Num(n) => {
            out.type_ = jbvType::jbvNumeric;
            out.val.numeric = n.as_ptr() as pg_sys::Numeric;
        }
        Val::Bool(b) => {
            out.type_ = jbvType::jbvBool;
            out.val.boolean = b;
        }
        Val::Null => out.type_ = jbvType::jbvNull,
        Val::Container(c) => {
            out.type_ = jbvType::jbvBinary;
            out.val.binary.data = c.as_ptr() as *mut JsonbContainer;
            out.val.binary.len = c.len() as i32;
        }
    }
    out
}

/// Binary search of an object's sorted keys (jsonb orders them by length, then bytes).
fn find<'a>(pairs: &[(&[u8], Val<'a>)], key: &[u8]) -> Option<Val<'a>> {
    pairs
        .binary_search_by(|(k, _)| k.len().cmp(&key.len()).then_with(|| (*k).cmp(key)))
        .ok()
        .map(|i| pairs[i].1)
}

fn path_of(prefix: &str, key: &[u8]) -> String {
    let key = String::from_utf8_lossy(key);
    if prefix.is_empty() { key.into_owned() } else { format!("{prefix}.{key}") }
}

/// Walk two objects; `Ok(None)` when a container could not be read (the caller falls back),
/// an error when the documents nest too deeply or the diff would be too large.
fn walk(old: &[u8], new: &[u8], prefix: &str, out: &mut Changes, depth: usize) -> Result<Option<()>, LimitError> {
    descend(depth)?;
    let (Some(before_pairs), Some(after_pairs)) = (object_pairs(old), object_pairs(new)) else { return Ok(None) };
    for (key, before) in &before_pairs {
        match find(&after_pairs, key) {
            None => {
                let path = path_of(prefix, key);
                out.spend(&path, &[before])?;
                out.removed.push((path, jsonb_value(before)));
            }
            Some(after) => match (before, &after) {
                (Val::Container(b), Val::Container(a)) if is_object(b) && is_object(a) => {
                    if b != a && walk(b, a, &path_of(prefix, key), out, depth + 1)?.is_none() {
                        return Ok(None);
                    }
                }
                _ => {
                    if !equal(before, &after) {
                        let path = path_of(prefix, key);
                        out.spend(&path, &[before, &after])?;
                        out.modified.push((path, jsonb_value(before), jsonb_value(&after)));
                    }
                }
            },
        }
    }
    for (key, after) in &after_pairs {
        if find(&before_pairs, key).is_none() {
            let path = path_of(prefix, key);
            out.spend(&path, &[after])?;
            out.added.push((path, jsonb_value(after)));
        }
    }
    Ok(Some(()))
}

/// # Safety
/// `state` is the parse state of the one result being built; `key` must outlive the JsonbValueToJsonb call that copies it.
unsafe fn push_key(state: &mut *mut pg_sys::JsonbParseState, key: &str) {
    let mut k = borrowed_jsonb_string(key);
    // SAFETY: `state` is the parse state of the one result being built; `key` outlives the
    // JsonbValueToJsonb call that copies it (the caller's contract).
    unsafe { pg_sys::pushJsonbValue(state, WJB_KEY, &mut k) };
}

/// # Safety
/// As `push_key`; what `value` points at (a string, numeric or container of the argument documents) must too.
unsafe fn push_field(state: &mut *mut pg_sys::JsonbParseState, key: &str, value: &JsonbValue) {
    let mut v = *value;
    // SAFETY: as in push_key; `value` points into the argument documents, alive for the call.
    unsafe {
        push_key(state, key);
        pg_sys::pushJsonbValue(state, WJB_VALUE, &mut v);
    }
}

fn build(changes: &Changes) -> pg_sys::Datum {
    let null: *mut JsonbValue = std::ptr::null_mut();
    let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
    // SAFETY: one parse state, built only here, three levels deep; every path string and
    // value in `changes` outlives the JsonbValueToJsonb call that copies them, and the
    // result's size was counted (Changes::spend) before anything was pushed.
    unsafe {
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, null);
        let one = |state: &mut *mut pg_sys::JsonbParseState, path: &str, fields: &[(&str, &JsonbValue)]| {
            pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
            let mut p = borrowed_jsonb_string(path);
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
    if let (Some(o), Some(n)) = (old, new) {
        let (ob, nb) = (o.root_bytes(), n.root_bytes());
        // Same limit as every document read into a value (the binary path allocates the
        // result only, but the result can hold every value of both documents).
        within_size("the jsonb document", ob.len()).map_err(DiffError::from)?;
        within_size("the jsonb document", nb.len()).map_err(DiffError::from)?;
        if is_object(ob) && is_object(nb) {
            let mut changes = Changes { added: Vec::new(), modified: Vec::new(), removed: Vec::new(), bytes: 0 };
            if walk(ob, nb, "", &mut changes, 0).map_err(DiffError::from)?.is_some() {
                return Ok(JsonbDatum(build(&changes)));
            }
            FALLBACKS.with(|f| f.set(f.get() + 1));
        }
    }
    // Not two objects (the tree version names the culprit), or a layout this reader does not
    // know: the tree version computes the same result from the documents' values.
    let value = |d: Option<RawJsonb>| -> Result<serde_json::Value, DiffError> {
        Ok(match d {
            Some(d) => d.to_value()?,
            None => serde_json::Value::Null,
        })
    };
    let result = tree::config_diff(&value(old)?, &value(new)?)?;
    Ok(JsonbDatum(crate::common::jsonb::Doc(result).into_datum().unwrap_or(pg_sys::Datum::null())))
}
