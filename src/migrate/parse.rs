//! Splitting a migration script with PostgreSQL's own raw parser (`raw_parser`, the grammar
//! the server itself runs), never with regular expressions: one entry per statement with its
//! byte span in the script and the parse tree's kind.  The trees live in the current memory
//! context; `rules.rs` reads them.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::panic::AssertUnwindSafe;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::{PgList, PgTryBuilder};

/// A script too large to be a migration is refused before it is parsed (the parse tree of a
/// 64 MB script is several times that).
pub const MAX_SCRIPT_BYTES: usize = 16 * 1024 * 1024;

/// One statement of a script.
pub struct RawStatement {
    /// 1-based position among the script's statements.
    pub no: i32,
    /// Byte span in the script, from just after the previous `;` (leading comments belong to
    /// the statement they precede) to the end of the statement.
    pub start: usize,
    pub end: usize,
    pub node: *mut pg_sys::Node,
}

impl RawStatement {
    /// The statement's text without the leading whitespace and comments.
    pub fn text<'a>(&self, script: &'a str) -> &'a str {
        strip_leading_comments(script.get(self.start..self.end).unwrap_or(""))
    }

    /// The full span (comments included), where `steward:ignore` annotations are looked for.
    pub fn span<'a>(&self, script: &'a str) -> &'a str {
        script.get(self.start..self.end).unwrap_or("")
    }
}

/// `s` from its first token on (leading whitespace and comments skipped), end kept as it is.
pub fn strip_leading_comments_keep_end(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            return s;
        }
    }
}

fn strip_leading_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            return s.trim_end();
        }
    }
}

/// The parser's complaint: its message and the 1-based character position in the script.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub message: String,
    pub position: Option<i32>,
}

thread_local! {
    static ERROR_POSITION: Cell<i32> = const { Cell::new(0) };
}

/// Error-context callback: runs while the parser's error is being reported and keeps its
/// cursor position (which the error report pgrx hands back does not carry).
unsafe extern "C-unwind" fn remember_position(_arg: *mut std::ffi::c_void) {
    // SAFETY: called by errfinish while the error is current, which geterrposition reads.
    let at = unsafe { pg_sys::geterrposition() };
    ERROR_POSITION.with(|p| p.set(at));
}

/// Parse `script` into its statements.  A syntax error comes back as a `ParseError`; any
/// other error (out of memory) is raised.
pub fn parse(script: &str) -> Result<Vec<RawStatement>, ParseError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(ParseError {
            message: format!("the script has {} bytes; at most {} are accepted", script.len(), MAX_SCRIPT_BYTES),
            position: None,
        });
    }
    let text = CString::new(script).map_err(|_| ParseError { message: "the script contains a NUL byte".into(), position: None })?;
    ERROR_POSITION.with(|p| p.set(0));
    // SAFETY: reads the backend's error context stack head, restored below whichever way the parse ends
    // (an error's longjmp does not restore it, and the entry pushed below lives in a frame that is gone then).
    let saved = unsafe { pg_sys::error_context_stack };
    let outcome = PgTryBuilder::new(AssertUnwindSafe(|| {
        let mut callback = pg_sys::ErrorContextCallback {
            previous: std::ptr::null_mut(),
            callback: Some(remember_position),
            arg: std::ptr::null_mut(),
        };
        // SAFETY: the callback is pushed on the error context stack for the parse only and
        // popped right after (on an error the stack is reset to the catching frame's, which
        // is below this entry); `text` outlives the call.
        unsafe {
            callback.previous = pg_sys::error_context_stack;
            pg_sys::error_context_stack = &mut callback;
            let list = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
            pg_sys::error_context_stack = callback.previous;
            Ok(list)
        }
    }))
    .catch_others(|e| {
        // SAFETY: the head saved above; the callback entry's frame is gone.
        unsafe { pg_sys::error_context_stack = saved };
        let report = match &e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        // Resource errors (out of memory, stack depth, cancel) are the server's: raised as they are.
        let resource = matches!(
            report.sql_error_code(),
            PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY
                | PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX
                | PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED
                | PgSqlErrorCode::ERRCODE_QUERY_CANCELED
                | PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN
        );
        if resource {
            e.rethrow()
        } else {
            let at = ERROR_POSITION.with(|p| p.get());
            Err(ParseError { message: report.message().to_string(), position: (at > 0).then_some(at) })
        }
    })
    // SAFETY: as above, on every path (also when an error is re-thrown).
    .finally(|| unsafe { pg_sys::error_context_stack = saved })
    .execute()?;

    // SAFETY: raw_parser returned a List of RawStmt (or NIL), allocated in the current context.
    let list = unsafe { PgList::<pg_sys::RawStmt>::from_pg(outcome) };
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.iter_ptr().enumerate() {
        // SAFETY: raw_parser returns a List of RawStmt nodes.
        let (loc, len, node) = unsafe { ((*raw).stmt_location, (*raw).stmt_len, (*raw).stmt) };
        let start = usize::try_from(loc.max(0)).unwrap_or(0).min(script.len());
        let end = if len > 0 { start.saturating_add(len as usize).min(script.len()) } else { script.len() };
        out.push(RawStatement { no: i as i32 + 1, start, end, node });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Reading parse nodes
// ---------------------------------------------------------------------------------------

/// The node's tag, or None for a null pointer.
pub fn tag(node: *const pg_sys::Node) -> Option<pg_sys::NodeTag> {
    if node.is_null() {
        None
    } else {
        // SAFETY: non-null parse nodes start with their tag.
        Some(unsafe { (*node).type_ })
    }
}

/// A C string of the parse tree, as Rust text (None for NULL).
pub fn cstr(p: *const std::ffi::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: parse trees hold NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// The text of a `String` value node.
pub fn string_value(node: *const pg_sys::Node) -> Option<String> {
    if tag(node)? != pg_sys::NodeTag::T_String {
        return None;
    }
    // SAFETY: tag checked.
    cstr(unsafe { (*(node as *const pg_sys::String)).sval })
}

/// A list of `String` nodes (a qualified name, a type name) as texts.
pub fn names(list: *mut pg_sys::List) -> Vec<String> {
    nodes(list).into_iter().filter_map(|n| string_value(n)).collect()
}

/// The nodes of a list.
pub fn nodes(list: *mut pg_sys::List) -> Vec<*mut pg_sys::Node> {
    // SAFETY: `list` is a node List of the parse tree (or NIL), read only.
    unsafe { PgList::<pg_sys::Node>::from_pg(list) }.iter_ptr().collect()
}

/// (schema, name) of a RangeVar.
pub fn range_var(rv: *const pg_sys::RangeVar) -> Option<(Option<String>, String)> {
    if rv.is_null() {
        return None;
    }
    // SAFETY: non-null RangeVar of the parse tree.
    unsafe { Some((cstr((*rv).schemaname), cstr((*rv).relname)?)) }
}
