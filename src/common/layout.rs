//! jsonb's on-disk container layout and numeric format, read in Rust.
//!
//! pgrx wraps every call into PostgreSQL in a guarded FFI boundary (a `sigsetjmp` each).
//! Walking a document with `JsonbIteratorNext` costs one such call per token and one
//! `numeric_out` per number — on the per-request paths (validation, effective configuration,
//! `config_diff`) those calls were most of the time (BENCHMARKS.md).  The formats are stable
//! since PostgreSQL 9.4 (`src/include/utils/jsonb.h`, `src/backend/utils/adt/numeric.c`):
//!
//! * a container is a header word (element count and kind flags), one JEntry word per child
//!   — an object's keys first, sorted by (length, bytes), then its values — and then the
//!   children's data; a JEntry holds the type and either the child's length or, every 32nd
//!   child, its end offset; numbers and nested containers start 4-byte aligned;
//! * a numeric is a varlena with a short (2-byte) or long (4-byte) header carrying sign,
//!   display scale and weight, then base-10 000 digits.
//!
//! Every read is bounds-checked against the bytes it was given: on anything unexpected the
//! readers return `None` and the callers fall back to PostgreSQL's own functions.

use serde_json::{Map, Number, Value};

use super::jsonb::{descend, LimitError};

pub const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
pub const JENTRY_TYPEMASK: u32 = 0x7000_0000;
pub const JENTRY_HAS_OFF: u32 = 0x8000_0000;
pub const JENTRY_ISSTRING: u32 = 0x0000_0000;
pub const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
pub const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
pub const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
pub const JENTRY_ISNULL: u32 = 0x4000_0000;
pub const JENTRY_ISCONTAINER: u32 = 0x5000_0000;

pub const JB_CMASK: u32 = 0x0FFF_FFFF;
pub const JB_FSCALAR: u32 = 0x1000_0000;
pub const JB_FOBJECT: u32 = 0x2000_0000;
pub const JB_FARRAY: u32 = 0x4000_0000;

pub fn word(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

/// One child of a container, as a slice of the container's own bytes.
#[derive(Clone, Copy, Debug)]
pub enum Val<'a> {
    Str(&'a [u8]),
    /// The whole numeric varlena, header included.
    Num(&'a [u8]),
    Bool(bool),
    Null,
    Container(&'a [u8]),
}

/// A container's header word and its children in order (an object: keys, then values).
pub fn children(c: &[u8]) -> Option<(u32, Vec<Val<'_>>)> {
    let header = word(c, 0)?;
    let n = (header & JB_CMASK) as usize;
    let count = if header & JB_FOBJECT != 0 { 2 * n } else { n };
    let base = 4usize.checked_add(count.checked_mul(4)?)?;
    if base > c.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut end = 0usize;
    for i in 0..count {
        let entry = word(c, 4 + 4 * i)?;
        let start = end;
        let field = (entry & JENTRY_OFFLENMASK) as usize;
        end = if entry & JENTRY_HAS_OFF != 0 { field } else { start.checked_add(field)? };
        if end < start || base + end > c.len() {
            return None;
        }
        let aligned = (start + 3) & !3;
        out.push(match entry & JENTRY_TYPEMASK {
            JENTRY_ISSTRING => Val::Str(&c[base + start..base + end]),
            JENTRY_ISNUMERIC => Val::Num(c.get(base + aligned..base + end)?),
            JENTRY_ISBOOL_FALSE => Val::Bool(false),
            JENTRY_ISBOOL_TRUE => Val::Bool(true),
            JENTRY_ISNULL => Val::Null,
            JENTRY_ISCONTAINER => Val::Container(c.get(base + aligned..base + end)?),
            _ => return None,
        });
    }
    Some((header, out))
}

/// An object's (key, value) pairs in jsonb order; `None` for anything but a readable object.
pub fn object_pairs(c: &[u8]) -> Option<Vec<(&[u8], Val<'_>)>> {
    let (header, kids) = children(c)?;
    if header & JB_FOBJECT == 0 {
        return None;
    }
    let n = kids.len() / 2;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Val::Str(key) = kids[i] else { return None };
        out.push((key, kids[n + i]));
    }
    Some(out)
}

pub fn is_object(c: &[u8]) -> bool {
    word(c, 0).is_some_and(|h| h & JB_FOBJECT != 0)
}

/// A numeric varlena as `numeric_out` prints it (`None` for NaN/Infinity, which jsonb cannot
/// hold, or for an unreadable value).
pub fn numeric_text(v: &[u8]) -> Option<String> {
    if !cfg!(target_endian = "little") {
        return None; // the varlena header decoding below is the little-endian one
    }
    // Varlena header: 1-byte ("short") when the low bit is set, else 4 bytes.
    let first = *v.first()?;
    let (total, skip) = if first & 1 == 1 {
        ((first >> 1) as usize, 1usize)
    } else {
        ((word(v, 0)? >> 2) as usize, 4usize)
    };
    let v = v.get(..total)?;
    let h16 = |at: usize| v.get(at..at + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let header = h16(skip)?;
    let (negative, dscale, weight, digits_at) = match header & 0xC000 {
        0x8000 => {
            // short: sign 0x2000, dscale 0x1F80 >> 7, weight 0x003F with sign 0x0040
            let weight = if header & 0x0040 != 0 { (header & 0x003F) as i32 - 64 } else { (header & 0x003F) as i32 };
            (header & 0x2000 != 0, ((header & 0x1F80) >> 7) as i32, weight, skip + 2)
        }
        0xC000 => return None,
        sign => {
            let weight = h16(skip + 2)? as i16 as i32;
            (sign == 0x4000, (header & 0x3FFF) as i32, weight, skip + 4)
        }
    };
    let digits: Vec<i32> = v
        .get(digits_at..)?
        .chunks_exact(2)
        .map(|b| i16::from_ne_bytes([b[0], b[1]]) as i32)
        .collect();
    if digits.iter().any(|d| !(0..10000).contains(d)) {
        return None;
    }
    let digit = |i: i32| if i >= 0 && (i as usize) < digits.len() { digits[i as usize] } else { 0 };
    let mut out = String::with_capacity(8 + 4 * digits.len() + dscale as usize);
    if negative && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for d in 0..=weight {
            let value = digit(d);
            if d == 0 {
                out.push_str(&value.to_string());
            } else {
                out.push_str(&format!("{value:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut written = 0;
        let mut d = weight + 1;
        while written < dscale {
            let four = format!("{:04}", digit(d));
            for ch in four.chars() {
                if written < dscale {
                    out.push(ch);
                    written += 1;
                }
            }
            d += 1;
        }
    }
    Some(out)
}

/// A container as a serde value; `Ok(None)` when anything cannot be read natively (the
/// caller falls back to PostgreSQL's iterator), an error when the document nests deeper
/// than `MAX_DEPTH` or the stack would overflow.
pub fn to_value(c: &[u8]) -> Result<Option<Value>, LimitError> {
    container_value(c, 0)
}

/// `Ok(None)` in the `Option`-returning closures below: "unreadable, fall back".
macro_rules! readable {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

fn container_value(c: &[u8], depth: usize) -> Result<Option<Value>, LimitError> {
    descend(depth)?;
    let (header, kids) = readable!(children(c));
    let one = |v: &Val<'_>| -> Result<Option<Value>, LimitError> {
        Ok(Some(match *v {
            Val::Str(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
            Val::Num(n) => Value::Number(readable!(readable!(numeric_text(n)).parse::<Number>().ok())),
            Val::Bool(b) => Value::Bool(b),
            Val::Null => Value::Null,
            Val::Container(inner) => readable!(container_value(inner, depth + 1)?),
        }))
    };
    if header & JB_FOBJECT != 0 {
        let n = kids.len() / 2;
        let mut map = Map::new();
        for i in 0..n {
            let Val::Str(key) = kids[i] else { return Ok(None) };
            let value = readable!(one(&kids[n + i])?);
            map.insert(String::from_utf8_lossy(key).into_owned(), value);
        }
        Ok(Some(Value::Object(map)))
    } else if header & JB_FARRAY != 0 {
        let mut items = Vec::with_capacity(kids.len());
        for kid in &kids {
            items.push(readable!(one(kid)?));
        }
        if header & JB_FSCALAR != 0 {
            Ok(items.into_iter().next())
        } else {
            Ok(Some(Value::Array(items)))
        }
    } else {
        Ok(None)
    }
}
