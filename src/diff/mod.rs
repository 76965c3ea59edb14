//! Diff and patch of JSON documents (CONTRACT §5, §7): the seed's diff shape, RFC 6902 JSON
//! Patch (json-patch crate) and RFC 7396 merge patch.  Documents are read straight from
//! jsonb's binary form (`common::jsonb::Doc`), not printed and re-parsed.
//!
//! Resources are bounded (issue #13): arguments are read within `common::jsonb`'s depth and
//! size limits, and every walker and patch result is checked against them before it grows
//! (54001 too deep, 54000 too large) — see `tree.rs`.

pub mod binary;
pub mod error;
pub mod tree;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::common::jsonb::{Doc, JsonbDatum, RawJsonb};

/// `{added, modified, removed}` with dot-joined paths; both documents must be objects.
#[pg_extern(immutable, parallel_safe)]
fn config_diff(old: Option<RawJsonb>, new: Option<RawJsonb>) -> Result<JsonbDatum, ErrorReport> {
    binary::config_diff(old, new)
}

/// An RFC 6902 patch that turns `old` into `new`.
#[pg_extern(immutable, parallel_safe)]
fn jsonb_diff_patch(old: Doc, new: Doc) -> Result<Doc, ErrorReport> {
    Ok(Doc(tree::diff_patch(&old.0, &new.0)?))
}

/// Apply an RFC 6902 patch (all six operations, `test` included): all or nothing.
#[pg_extern(immutable, parallel_safe)]
fn jsonb_patch(doc: Doc, patch: Doc) -> Result<Doc, ErrorReport> {
    Ok(Doc(tree::apply_patch(&doc.0, &patch.0)?))
}

/// Apply an RFC 7396 merge patch.
#[pg_extern(immutable, parallel_safe)]
fn jsonb_merge_patch(doc: Doc, patch: Doc) -> Result<Doc, ErrorReport> {
    Ok(Doc(tree::merge_patch(&doc.0, &patch.0)?))
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "diff_test.rs"]
pub(crate) mod diff_test;
