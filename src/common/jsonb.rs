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

/// A `jsonb` argument as a serde value.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc(pub Value);

unsafe fn string_of(v: &pg_sys::JsonbValue) -> String {
    let s = unsafe { v.val.string };
    if s.val.is_null() || s.len <= 0 {
        return String::new();
    }
    let bytes = unsafe { std::slice::from_raw_parts(s.val as *const u8, s.len as usize) };
    String::from_utf8_lossy(bytes).into_owned()
}

unsafe fn scalar(v: &pg_sys::JsonbValue) -> Value {
    match v.type_ {
        pg_sys::jbvType::jbvString => Value::String(unsafe { string_of(v) }),
        pg_sys::jbvType::jbvBool => Value::Bool(unsafe { v.val.boolean }),
        pg_sys::jbvType::jbvNumeric => {
            let numeric = unsafe { v.val.numeric };
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

/// Walk a detoasted jsonb.
unsafe fn walk(jsonb: *mut pg_sys::Jsonb) -> Value {
    let mut iterator = unsafe { pg_sys::JsonbIteratorInit(&mut (*jsonb).root) };
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    let mut stack: Vec<(Value, Option<String>)> = Vec::new();
    let mut result = Value::Null;
    let mut raw_scalar = false;
    loop {
        let token = unsafe { pg_sys::JsonbIteratorNext(&mut iterator, &mut v, false) };
        match token {
            pg_sys::JsonbIteratorToken::WJB_DONE => break,
            pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT => stack.push((Value::Object(Map::new()), None)),
            pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY => {
                if stack.is_empty() && unsafe { v.val.array.rawScalar } {
                    raw_scalar = true;
                }
                stack.push((Value::Array(Vec::new()), None));
            }
            pg_sys::JsonbIteratorToken::WJB_KEY => {
                let key = unsafe { string_of(&v) };
                if let Some(top) = stack.last_mut() {
                    top.1 = Some(key);
                }
            }
            pg_sys::JsonbIteratorToken::WJB_VALUE | pg_sys::JsonbIteratorToken::WJB_ELEM => {
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
            return items.pop().unwrap_or(Value::Null);
        }
    }
    result
}

thread_local! {
    /// How often a document was read with PostgreSQL's iterator instead of the native
    /// reader (tests assert it stays 0 for documents PostgreSQL wrote).
    pub static SLOW_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The bytes of a detoasted varlena after its header.
unsafe fn payload<'a>(v: *const pg_sys::varlena) -> &'a [u8] {
    unsafe {
        let len = pgrx::varlena::varsize_any_exhdr(v);
        let data = pgrx::varlena::vardata_any(v) as *const u8;
        std::slice::from_raw_parts(data, len)
    }
}

/// A detoasted jsonb as a serde value: natively (`layout`), else with PostgreSQL's iterator.
unsafe fn read(jsonb: *mut pg_sys::Jsonb) -> Value {
    let bytes = unsafe { payload(jsonb as *const pg_sys::varlena) };
    match super::layout::to_value(bytes) {
        Some(v) => v,
        None => {
            SLOW_READS.with(|c| c.set(c.get() + 1));
            unsafe { walk(jsonb) }
        }
    }
}

impl FromDatum for Doc {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Doc> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is a jsonb varlena (the SQL signature says jsonb).
        unsafe {
            // Not the "packed" variant: the container must sit behind a 4-byte header.
            let detoasted = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
            Some(Doc(read(detoasted)))
        }
    }
}

/// A `jsonb` argument as its binary payload (detoasted, header stripped): what the audit hash
/// covers.  The stored form of a value never changes, so the bytes read back from the log
/// are the bytes that were hashed when the entry was written.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonbBytes(pub Vec<u8>);

impl FromDatum for JsonbBytes {
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

unsafe fn scalar_value(value: &Value) -> pg_sys::JsonbValue {
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    match value {
        Value::Null => v.type_ = pg_sys::jbvType::jbvNull,
        Value::Bool(b) => {
            v.type_ = pg_sys::jbvType::jbvBool;
            v.val.boolean = *b;
        }
        Value::Number(n) => {
            let text = std::ffi::CString::new(n.to_string()).unwrap_or_default();
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

unsafe fn push(state: &mut *mut pg_sys::JsonbParseState, value: &Value, token: pg_sys::JsonbIteratorToken::Type) -> *mut pg_sys::JsonbValue {
    use pg_sys::JsonbIteratorToken::*;
    unsafe {
        match value {
            Value::Object(map) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
                for (key, item) in map {
                    let mut k = borrowed_jsonb_string(key);
                    pg_sys::pushJsonbValue(state, WJB_KEY, &mut k);
                    push(state, item, WJB_VALUE);
                }
                pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut())
            }
            Value::Array(items) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
                for item in items {
                    push(state, item, WJB_ELEM);
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
        unsafe {
            let root = match &self.0 {
                Value::Object(_) | Value::Array(_) => push(&mut state, &self.0, pg_sys::JsonbIteratorToken::WJB_VALUE),
                scalar => {
                    // A top-level scalar is stored as a one-element "raw scalar" array.
                    let mut wrapper: pg_sys::JsonbValue = std::mem::zeroed();
                    wrapper.type_ = pg_sys::jbvType::jbvArray;
                    wrapper.val.array.rawScalar = true;
                    pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY, &mut wrapper);
                    push(&mut state, scalar, pg_sys::JsonbIteratorToken::WJB_ELEM);
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

unsafe impl pgrx::callconv::BoxRet for Doc {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
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
        // SAFETY: a detoasted jsonb: a 4-byte varlena header, then the root container.
        unsafe { payload(self.0 as *const pg_sys::varlena) }
    }

    /// The document as a serde value (for error messages and the slow paths).
    pub fn to_value(&self) -> Value {
        unsafe { read(self.0) }
    }
}

impl FromDatum for RawJsonb {
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

unsafe impl pgrx::callconv::BoxRet for JsonbDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

/// A jsonb string value pointing at `s` itself, for `pushJsonbValue` (which keeps the
/// pointer until `JsonbValueToJsonb` copies the bytes): `s` must outlive that call.  No
/// palloc, so no FFI call per key on the per-request paths.
pub fn borrowed_jsonb_string(s: &str) -> pg_sys::JsonbValue {
    no_nul(s);
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
        unsafe impl<'fcx> ArgAbi<'fcx> for $t {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                unsafe { arg.unbox_arg_using_from_datum().unwrap_or($null) }
            }

            unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }

        unsafe impl UnboxDatum for $t {
            type As<'src> = $t where Self: 'src;
            unsafe fn unbox<'src>(d: Datum<'src>) -> Self::As<'src>
            where
                Self: 'src,
            {
                unsafe { $t::from_datum(d.sans_lifetime(), false).unwrap_or($null) }
            }
        }

        jsonb_sql_type!($t);
    };
}

macro_rules! jsonb_sql_type {
    ($t:ident) => {
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
