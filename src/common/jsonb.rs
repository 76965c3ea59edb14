//! `jsonb` arguments read straight from PostgreSQL's binary form.
//!
//! pgrx's `JsonB` prints every document to text with `jsonb_out` and parses the text again
//! with serde; on the per-request paths (validation, effective configuration) that round trip
//! was most of the cost.  `Doc` walks the binary container with `JsonbIteratorNext` instead;
//! only numbers go through their text form (`numeric_out`), so every digit is kept.

use std::ffi::CStr;

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::{Datum, UnboxDatum};
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------------------
// Bounded resources (issue #13, family 6).
//
// Every document that enters Rust as a serde value, and every document or patch result that
// Rust builds, stays within two limits, checked before the work or the allocation they guard:
//
// * nesting: at most `MAX_DEPTH` containers deep.  serde_json's own recursion (Drop, Clone,
//   PartialEq, serialisation) and json-patch's are not stack-checked, so the depth of every
//   value is bounded where it is read or built; on top of that every recursive walker here
//   asks PostgreSQL whether the stack is too deep (`stack_is_too_deep`, the test behind
//   `check_stack_depth`), so a walker entered from an already deep stack fails cleanly too.
//   Both give SQLSTATE 54001.
// * size: at most `MAX_BYTES` (64 MB, a quarter of jsonb's own 255 MB limit) of jsonb, for
//   the binary payload of an argument and for the estimated size (`jsonb_size`) of a
//   result; larger gives SQLSTATE 54000 with the size and the limit in DETAIL.  A Rust
//   allocation failure aborts the whole server, so nothing input-driven may grow unbounded.

/// The deepest nesting of containers a document read into Rust or built by it may have.
/// (Configuration documents nest a few levels; 256 keeps the recursive serde and json-patch
/// code far inside PostgreSQL's default 2 MB max_stack_depth even in a debug build, where
/// 900 levels already reached it.)
pub const MAX_DEPTH: usize = 256;

/// The largest jsonb document (binary size, or estimated size of a result) handled in Rust.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A document beyond the resource limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("jsonb document nested too deeply")]
    TooDeep { limit: usize },
    #[error("stack depth limit exceeded")]
    StackTooDeep,
    #[error("{what} is too large")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    #[error("too many {what}")]
    TooMany { what: &'static str, count: usize, limit: usize },
}

impl From<LimitError> for pgrx::pg_sys::panic::ErrorReport {
    fn from(err: LimitError) -> Self {
        pgrx::pg_sys::panic::ErrorReport::new(err.code(), err.to_string(), "pg_steward.jsonb")
            .set_detail(err.detail())
            .set_hint(err.hint())
    }
}

impl LimitError {
    /// 54001 for nesting, 54000 for size.
    pub fn code(&self) -> PgSqlErrorCode {
        match self {
            LimitError::TooDeep { .. } | LimitError::StackTooDeep => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
            LimitError::TooLarge { .. } | LimitError::TooMany { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            LimitError::TooDeep { limit } => {
                format!("The document nests containers deeper than {limit} levels, the limit pg_steward handles.")
            }
            LimitError::StackTooDeep => "Walking the document would exceed the server's stack depth limit (max_stack_depth).".into(),
            LimitError::TooLarge { what, size, limit } => {
                format!("{what} would be about {size} bytes; the limit is {limit} bytes.")
            }
            LimitError::TooMany { what, count, limit } => format!("{count} {what} given; the limit is {limit}."),
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            LimitError::TooDeep { .. } | LimitError::StackTooDeep => {
                "Flatten the document; configuration documents are a few levels deep."
            }
            LimitError::TooLarge { .. } | LimitError::TooMany { .. } => "Split the document or the patch into smaller pieces.",
        }
    }

    /// Raise this as a PostgreSQL error (for walkers whose callers take no `Result`).
    #[cfg(not(test))]
    pub fn raise(self) -> ! {
        pgrx::pg_sys::panic::ErrorReport::from(self).report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }

    /// Outside a server (unit tests) there is no error machinery to raise into.
    #[cfg(test)]
    pub fn raise(self) -> ! {
        panic!("{self}: {}", self.detail())
    }
}

/// The guard every recursive walker calls before descending into a container at `depth`
/// (the root is depth 0, so at most `MAX_DEPTH` containers nest): the explicit depth limit, and every 16 levels PostgreSQL's own
/// stack test (16 levels of our frames are far below PostgreSQL's 512 kB stack slop, and
/// the shallow configuration documents of the per-request paths never pay the FFI call).
#[inline]
pub fn descend(depth: usize) -> Result<(), LimitError> {
    if depth >= MAX_DEPTH {
        return Err(LimitError::TooDeep { limit: MAX_DEPTH });
    }
    if depth % 16 == 15 && stack_too_deep() {
        return Err(LimitError::StackTooDeep);
    }
    Ok(())
}

/// PostgreSQL's `stack_is_too_deep()` (the test behind `check_stack_depth`).
#[cfg(not(test))]
fn stack_too_deep() -> bool {
    // SAFETY: a plain function of the backend reading its stack base and max_stack_depth;
    // it raises nothing, and pgrx guards the FFI boundary.  pg_steward runs only on the
    // backend's main thread, whose stack that base describes.
    unsafe { pg_sys::stack_is_too_deep() }
}

/// Outside a server (unit tests) only the explicit depth limit applies.
#[cfg(test)]
fn stack_too_deep() -> bool {
    false
}

/// Fail with 54000 when `size` is beyond `MAX_BYTES`.
pub fn within_size(what: &'static str, size: usize) -> Result<(), LimitError> {
    if size > MAX_BYTES {
        Err(LimitError::TooLarge { what, size, limit: MAX_BYTES })
    } else {
        Ok(())
    }
}

/// The approximate size of `v` stored as jsonb (a 4-byte entry per value, a 4-byte header per
/// container, string bytes, ~8 bytes per number), counted without recursion and without
/// allocating beyond a stack of pointers; stops counting as soon as `stop` is passed (the
/// result is then some number above `stop`).
pub fn jsonb_size(v: &Value, stop: usize) -> usize {
    let mut total = 0usize;
    let mut stack: Vec<&Value> = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(4 + match v {
            Value::Null | Value::Bool(_) => 0,
            Value::Number(_) => 8,
            Value::String(s) => s.len(),
            Value::Array(items) => {
                stack.extend(items.iter());
                4
            }
            Value::Object(map) => {
                let keys: usize = map.keys().map(|k| 4 + k.len()).sum();
                stack.extend(map.values());
                4 + keys
            }
        });
        if total > stop {
            break;
        }
    }
    total
}

/// The nesting depth of `v` (0 for a scalar, 1 for `[]`), without recursion; stops counting
/// once past `stop`.
pub fn jsonb_depth(v: &Value, stop: usize) -> usize {
    let mut deepest = 0usize;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, above)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                stack.extend(items.iter().filter(|i| i.is_array() || i.is_object()).map(|i| (i, above + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(above + 1);
                stack.extend(map.values().filter(|i| i.is_array() || i.is_object()).map(|i| (i, above + 1)));
            }
            _ => {}
        }
        if deepest > stop {
            break;
        }
    }
    deepest
}

/// A `jsonb` argument as a serde value.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc(pub Value);

/// # Safety
/// `v.type_` must be jbvString, `v.val.string` null or `len` readable bytes (a value from PostgreSQL's iterator).
unsafe fn string_of(v: &pg_sys::JsonbValue) -> String {
    // SAFETY: reading the string arm of a JsonbValue whose type_ the caller checked is jbvString.
    let s = unsafe { v.val.string };
    if s.val.is_null() || s.len <= 0 {
        return String::new();
    }
    // SAFETY: PostgreSQL's string value: `len` bytes at `val` (non-null, len > 0 checked above), alive while the document is.
    let bytes = unsafe { std::slice::from_raw_parts(s.val as *const u8, s.len as usize) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// # Safety
/// `v` must be a JsonbValue filled by PostgreSQL's iterator, its pointers valid while the document is.
unsafe fn scalar(v: &pg_sys::JsonbValue) -> Value {
    match v.type_ {
        // SAFETY: type_ is jbvString.
        pg_sys::jbvType::jbvString => Value::String(unsafe { string_of(v) }),
        // SAFETY: type_ is jbvBool.
        pg_sys::jbvType::jbvBool => Value::Bool(unsafe { v.val.boolean }),
        pg_sys::jbvType::jbvNumeric => {
            // SAFETY: type_ is jbvNumeric.
            let numeric = unsafe { v.val.numeric };
            // SAFETY: numeric_out takes a valid numeric datum (PostgreSQL's own, from the document) and returns a palloc'd C string.
            let text = unsafe {
                pgrx::direct_function_call::<&CStr>(pg_sys::numeric_out, &[Some(pg_sys::Datum::from(numeric))])
            };
            text.and_then(|t| t.to_str().ok().and_then(|s| s.parse::<Number>().ok()))
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

fn attach(stack: &mut [(Value, Option<String>)], value: Value, result: &mut Value) {
    match stack.last_mut() {
        Some((Value::Object(map), key)) => {
            if let Some(k) = key.take() {
                map.insert(k, value);
            }
        }
        Some((Value::Array(items), _)) => items.push(value),
        _ => *result = value,
    }
}

/// Walk a detoasted jsonb (iteratively: PostgreSQL's iterator keeps its own parent chain).
///
/// # Safety
/// `jsonb` must point at a detoasted (4-byte header) jsonb varlena alive for the call.
unsafe fn walk(jsonb: *mut pg_sys::Jsonb) -> Result<Value, LimitError> {
    // SAFETY: `jsonb` is a detoasted jsonb (the caller's contract); its root container is what the iterator walks.
    let mut iterator = unsafe { pg_sys::JsonbIteratorInit(&mut (*jsonb).root) };
    // SAFETY: JsonbValue is a plain C struct for which all-zero bytes are valid; the iterator fills it.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    let mut stack: Vec<(Value, Option<String>)> = Vec::new();
    let mut result = Value::Null;
    let mut raw_scalar = false;
    loop {
        // SAFETY: the iterator from JsonbIteratorInit above; `v` receives each token's value.
        let token = unsafe { pg_sys::JsonbIteratorNext(&mut iterator, &mut v, false) };
        match token {
            pg_sys::JsonbIteratorToken::WJB_DONE => break,
            pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT => {
                if stack.len() >= MAX_DEPTH {
                    return Err(LimitError::TooDeep { limit: MAX_DEPTH });
                }
                stack.push((Value::Object(Map::new()), None))
            }
            pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY => {
                if stack.len() >= MAX_DEPTH {
                    return Err(LimitError::TooDeep { limit: MAX_DEPTH });
                }
                // SAFETY: a WJB_BEGIN_ARRAY token sets the array arm.
                if stack.is_empty() && unsafe { v.val.array.rawScalar } {
                    raw_scalar = true;
                }
                stack.push((Value::Array(Vec::new()), None));
            }
            pg_sys::JsonbIteratorToken::WJB_KEY => {
                // SAFETY: a WJB_KEY token is a jbvString.
                let key = unsafe { string_of(&v) };
                if let Some(top) = stack.last_mut() {
                    top.1 = Some(key);
                }
            }
            pg_sys::JsonbIteratorToken::WJB_VALUE | pg_sys::JsonbIteratorToken::WJB_ELEM => {
                // SAFETY: `v` was filled by the iterator for this token.
                let value = unsafe { scalar(&v) };
                attach(&mut stack, value, &mut result);
            }
            pg_sys::JsonbIteratorToken::WJB_END_OBJECT | pg_sys::JsonbIteratorToken::WJB_END_ARRAY => {
                if let Some((container, _)) = stack.pop() {
                    attach(&mut stack, container, &mut result);
                }
            }
            _ => break,
        }
    }
    if raw_scalar {
        if let Value::Array(mut items) = result {
            return Ok(items.pop().unwrap_or(Value::Null));
        }
    }
    Ok(result)
}

/// PostgreSQL's iterator walk of a jsonb datum (the fallback reader), for tests.
///
/// # Safety
/// `datum` must be a jsonb datum alive for the call.
#[cfg(any(test, feature = "pg_test"))]
pub unsafe fn walk_for_tests(datum: pg_sys::Datum) -> Result<Value, LimitError> {
    // SAFETY: the caller's contract; detoasting copies into the current memory context.
    unsafe { walk(pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb) }
}

thread_local! {
    /// How often a document was read with PostgreSQL's iterator instead of the native
    /// reader (tests assert it stays 0 for documents PostgreSQL wrote).
    pub static SLOW_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The bytes of a detoasted varlena after its header.
///
/// # Safety
/// `v` must point at an inline, uncompressed varlena (1- or 4-byte header) that stays alive and unchanged for `'a`.
unsafe fn payload<'a>(v: *const pg_sys::varlena) -> &'a [u8] {
    // SAFETY: the contract above: varsize_any_exhdr and vardata_any decode the inline header (short or long), and
    // the `len` bytes after it belong to the same varlena.
    unsafe {
        let len = pgrx::varlena::varsize_any_exhdr(v);
        let data = pgrx::varlena::vardata_any(v) as *const u8;
        std::slice::from_raw_parts(data, len)
    }
}

/// A detoasted jsonb as a serde value: natively (`layout`), else with PostgreSQL's iterator.
/// Refused before any allocation when the document is larger than `MAX_BYTES`, and while
/// reading when it nests deeper than `MAX_DEPTH`.
///
/// # Safety
/// As `walk`: `jsonb` must point at a detoasted (4-byte header) jsonb varlena alive for the call.
unsafe fn read(jsonb: *mut pg_sys::Jsonb) -> Result<Value, LimitError> {
    // SAFETY: the caller passes a detoasted jsonb varlena.
    let bytes = unsafe { payload(jsonb as *const pg_sys::varlena) };
    within_size("the jsonb document", bytes.len())?;
    match super::layout::to_value(bytes)? {
        Some(v) => Ok(v),
        None => {
            SLOW_READS.with(|c| c.set(c.get() + 1));
            // SAFETY: same detoasted jsonb.
            unsafe { walk(jsonb) }
        }
    }
}

impl FromDatum for Doc {
    /// # Safety
    /// FromDatum's contract: `datum` is a jsonb datum alive for the call, unless `is_null`.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Doc> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is a jsonb varlena (the SQL signature says jsonb).
        unsafe {
            // Not the "packed" variant: the container must sit behind a 4-byte header.
            let detoasted = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
            // Argument conversion runs inside the function's pgrx guard: the report becomes
            // a PostgreSQL error with its SQLSTATE (54000/54001), never a crash.
            Some(Doc(read(detoasted).unwrap_or_else(|e| e.raise())))
        }
    }
}

/// A `jsonb` argument as its binary payload (detoasted, header stripped): what the audit hash
/// covers.  The stored form of a value never changes, so the bytes read back from the log
/// are the bytes that were hashed when the entry was written.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonbBytes(pub Vec<u8>);

impl FromDatum for JsonbBytes {
    /// # Safety
    /// FromDatum's contract: `datum` is a jsonb datum alive for the call, unless `is_null`.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<JsonbBytes> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is a jsonb varlena (the SQL signature says jsonb).
        unsafe {
            let detoasted = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
            Some(JsonbBytes(payload(detoasted).to_vec()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results: a serde value written straight into PostgreSQL's binary form.
//
// pgrx's `JsonB` return prints the value to text and has `jsonb_in` parse it again; on the
// per-request path (effective configuration) that parse was a sixth of the call
// (BENCHMARKS.md).  Here the value is pushed through `pushJsonbValue`, as `jsonb_in` itself
// does after lexing; numbers go through `numeric_in` on serde's shortest text form.

fn no_nul(s: &str) {
    if s.contains('\0') {
        pgrx::ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_UNTRANSLATABLE_CHARACTER,
            "a jsonb string cannot contain the character U+0000"
        );
    }
}

/// # Safety
/// In a backend (numeric_in pallocs); for a string the result points into `value`, which must outlive JsonbValueToJsonb.
unsafe fn scalar_value(value: &Value) -> pg_sys::JsonbValue {
    // SAFETY: JsonbValue is a plain C struct for which all-zero bytes are valid; every field read is set below.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    match value {
        Value::Null => v.type_ = pg_sys::jbvType::jbvNull,
        Value::Bool(b) => {
            v.type_ = pg_sys::jbvType::jbvBool;
            v.val.boolean = *b;
        }
        Value::Number(n) => {
            let text = std::ffi::CString::new(n.to_string()).unwrap_or_default();
            // SAFETY: numeric_in takes a NUL-terminated string (the CString lives across the call), a type oid and a typmod.
            let numeric = unsafe {
                pgrx::direct_function_call_as_datum(
                    pg_sys::numeric_in,
                    &[Some(pg_sys::Datum::from(text.as_ptr())), Some(pg_sys::Oid::INVALID.into()), Some((-1i32).into())],
                )
            };
            v.type_ = pg_sys::jbvType::jbvNumeric;
            v.val.numeric = numeric.map(|d| d.cast_mut_ptr()).unwrap_or(std::ptr::null_mut());
        }
        // The serde value outlives JsonbValueToJsonb (into_datum below borrows it).
        Value::String(s) => return borrowed_jsonb_string(s),
        Value::Array(_) | Value::Object(_) => v.type_ = pg_sys::jbvType::jbvNull,
    }
    v
}

/// # Safety
/// `state` is this conversion's parse state; `value` must outlive the JsonbValueToJsonb call that copies what is pushed.
unsafe fn push(
    state: &mut *mut pg_sys::JsonbParseState,
    value: &Value,
    token: pg_sys::JsonbIteratorToken::Type,
    depth: usize,
) -> *mut pg_sys::JsonbValue {
    use pg_sys::JsonbIteratorToken::*;
    if value.is_array() || value.is_object() {
        descend(depth).unwrap_or_else(|e| e.raise());
    }
    // SAFETY: `state` is the parse state of this one conversion; every pointer pushed
    // points into `value`, which outlives the JsonbValueToJsonb call that copies it.
    unsafe {
        match value {
            Value::Object(map) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
                for (key, item) in map {
                    let mut k = borrowed_jsonb_string(key);
                    pg_sys::pushJsonbValue(state, WJB_KEY, &mut k);
                    push(state, item, WJB_VALUE, depth + 1);
                }
                pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut())
            }
            Value::Array(items) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
                for item in items {
                    push(state, item, WJB_ELEM, depth + 1);
                }
                pg_sys::pushJsonbValue(state, WJB_END_ARRAY, std::ptr::null_mut())
            }
            scalar => {
                let mut v = scalar_value(scalar);
                pg_sys::pushJsonbValue(state, token, &mut v)
            }
        }
    }
}

impl IntoDatum for Doc {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        // SAFETY: one parse state, built only here; every pointer pushed points into self.0,
        // which outlives JsonbValueToJsonb (it copies); depth is guarded in `push`.
        unsafe {
            let root = match &self.0 {
                Value::Object(_) | Value::Array(_) => push(&mut state, &self.0, pg_sys::JsonbIteratorToken::WJB_VALUE, 0),
                scalar => {
                    // A top-level scalar is stored as a one-element "raw scalar" array.
                    let mut wrapper: pg_sys::JsonbValue = std::mem::zeroed();
                    wrapper.type_ = pg_sys::jbvType::jbvArray;
                    wrapper.val.array.rawScalar = true;
                    pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY, &mut wrapper);
                    push(&mut state, scalar, pg_sys::JsonbIteratorToken::WJB_ELEM, 0);
                    pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut())
                }
            };
            Some(pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(root)))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: box_into hands back a datum built for this call (or the call's NULL) through fcinfo's own methods.
unsafe impl pgrx::callconv::BoxRet for Doc {
    /// # Safety
    /// BoxRet's contract: `fcinfo` is the current call's (pgrx's wrapper passes it).
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: the datum was built for this call's result.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

/// A `jsonb` argument left in its binary form (detoasted for the duration of the call), for
/// functions that only look at parts of a document (`config_diff`).
#[derive(Debug, Clone, Copy)]
pub struct RawJsonb(pub *mut pg_sys::Jsonb);

impl RawJsonb {
    /// The root container's bytes (header, entries and data).
    pub fn root_bytes(&self) -> &[u8] {
        // SAFETY: a detoasted jsonb from FromDatum: a 4-byte varlena header, then the root container.  Not enforced by
        // the type (a pub raw pointer; NULL for a SQL NULL given as a plain RawJsonb): every parameter is Option<RawJsonb>.
        unsafe { payload(self.0 as *const pg_sys::varlena) }
    }

    /// The document as a serde value (for error messages and the slow paths), within the
    /// size and depth limits.
    pub fn to_value(&self) -> Result<Value, LimitError> {
        // SAFETY: a detoasted jsonb (FromDatum below), alive for the whole call; the same caveat as `root_bytes`.
        unsafe { read(self.0) }
    }
}

impl FromDatum for RawJsonb {
    /// # Safety
    /// FromDatum's contract: `datum` is a jsonb datum alive for the call, unless `is_null`.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<RawJsonb> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is a jsonb varlena (the SQL signature says jsonb).
        Some(RawJsonb(unsafe { pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) } as *mut pg_sys::Jsonb))
    }
}

/// A `jsonb` result already built in PostgreSQL's binary form (`JsonbValueToJsonb`).
#[derive(Debug, Clone, Copy)]
pub struct JsonbDatum(pub pg_sys::Datum);

impl IntoDatum for JsonbDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: box_into hands back the datum built for this call through fcinfo's own method.
unsafe impl pgrx::callconv::BoxRet for JsonbDatum {
    /// # Safety
    /// BoxRet's contract: `fcinfo` is the current call's (pgrx's wrapper passes it).
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> Datum<'fcx> {
        // SAFETY: the datum was built for this call's result by JsonbValueToJsonb.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

/// A jsonb string value pointing at `s` itself, for `pushJsonbValue` (which keeps the
/// pointer until `JsonbValueToJsonb` copies the bytes): `s` must outlive that call.  No
/// palloc, so no FFI call per key on the per-request paths.
pub fn borrowed_jsonb_string(s: &str) -> pg_sys::JsonbValue {
    no_nul(s);
    // SAFETY: JsonbValue is a plain C struct for which all-zero bytes are valid; the string arm is set below.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    v.type_ = pg_sys::jbvType::jbvString;
    v.val.string.len = s.len() as i32;
    v.val.string.val = s.as_ptr() as *mut std::ffi::c_char;
    v
}

/// The pgrx plumbing that makes a `FromDatum` type a `jsonb` argument (`$null` stands for a
/// SQL NULL reaching a non-strict function), and the SQL type name of each of these types.
macro_rules! jsonb_argument {
    ($t:ident, $null:expr) => {
        // SAFETY: both methods read the argument only through FromDatum for a jsonb parameter, the SQL type
        // jsonb_sql_type! declares for $t.
        unsafe impl<'fcx> ArgAbi<'fcx> for $t {
            /// # Safety
            /// ArgAbi's contract: `arg` is this call's argument for a parameter of SQL type jsonb.
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                // SAFETY: pgrx hands the argument of this jsonb parameter; FromDatum reads it as jsonb.
                unsafe { arg.unbox_arg_using_from_datum().unwrap_or($null) }
            }

            /// # Safety
            /// As `unbox_arg_unchecked`.
            unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
                // SAFETY: as above.
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }

        // SAFETY: `As` is $t itself, read through FromDatum as jsonb: Doc and JsonbBytes own their data; RawJsonb keeps a
        // raw pointer not tied to 'src (see `root_bytes`).
        unsafe impl UnboxDatum for $t {
            type As<'src> = $t where Self: 'src;
            /// # Safety
            /// UnboxDatum's contract: `d` is a non-null jsonb datum alive for `'src`.
            unsafe fn unbox<'src>(d: Datum<'src>) -> Self::As<'src>
            where
                Self: 'src,
            {
                // SAFETY: the datum is a jsonb of the current call (the SQL signature says jsonb).
                unsafe { $t::from_datum(d.sans_lifetime(), false).unwrap_or($null) }
            }
        }

        jsonb_sql_type!($t);
    };
}

macro_rules! jsonb_sql_type {
    ($t:ident) => {
        // SAFETY: the SQL type declared, jsonb, is the one the FromDatum/IntoDatum impls above read and write.
        unsafe impl SqlTranslatable for $t {
            const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!($t);
            const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
            const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
            const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
        }
    };
}

// A NULL never reaches a strict function; a non-strict one reads it as JSON null / no bytes.
jsonb_argument!(Doc, Doc(Value::Null));
jsonb_argument!(JsonbBytes, JsonbBytes(Vec::new()));
jsonb_argument!(RawJsonb, RawJsonb(std::ptr::null_mut()));
jsonb_sql_type!(JsonbDatum);
