//! One rule for acting on an object a caller names (issue #13).
//!
//! 1. **Who is calling.**  The public entry points that take a relation (retention,
//!    configuration backup/restore, maintenance) are SECURITY INVOKER wrappers that pass
//!    `steward._enter()` to their SECURITY DEFINER body.  `_enter()` runs with the caller's
//!    rights, so it records the caller's real role (`GetUserId()`) under a random token and
//!    returns the token; the body's first step, `steward._caller(token)`, takes the record
//!    back (once).  A role that calls a body directly can only present a token it made
//!    itself, which names itself: nobody can claim another role's identity.
//! 2. **May the caller do it.**  `check` refuses system catalogs, `information_schema`,
//!    TOAST, other sessions' temporary tables and the extension's own schema to everyone
//!    but a superuser, then asks PostgreSQL's ACL check whether the *caller* holds each
//!    privilege the operation needs (`maintain`: ownership, or MAINTAIN on PostgreSQL 17+).
//!    Callers check at registration and again at run time.
//! 3. **As whom the work runs.**  `as_owner` runs a statement as the relation's owner in a
//!    security-restricted operation with `search_path = pg_catalog, pg_temp` — what
//!    PostgreSQL's VACUUM and REFRESH MATERIALIZED VIEW do — so the owner's triggers,
//!    defaults and index expressions run with the owner's rights and nobody else's, and
//!    cannot change session state.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::panic::AssertUnwindSafe;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{JsonB, PgTryBuilder};

/// A privilege an operation needs on a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    Trigger,
    /// VACUUM, ANALYZE, REINDEX: the owner (or a member of its role), or on PostgreSQL 17+
    /// whoever holds MAINTAIN on the table (directly or through `pg_maintain`).
    Maintain,
}

impl Privilege {
    fn parse(word: &str) -> Option<Privilege> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "select" => Privilege::Select,
            "insert" => Privilege::Insert,
            "update" => Privilege::Update,
            "delete" => Privilege::Delete,
            "truncate" => Privilege::Truncate,
            "trigger" => Privilege::Trigger,
            "maintain" => Privilege::Maintain,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
            Privilege::Trigger => "TRIGGER",
            Privilege::Maintain => "MAINTAIN (ownership)",
        }
    }

    fn acl_mask(self) -> pg_sys::AclMode {
        (match self {
            Privilege::Select => pg_sys::ACL_SELECT,
            Privilege::Insert => pg_sys::ACL_INSERT,
            Privilege::Update => pg_sys::ACL_UPDATE,
            Privilege::Delete => pg_sys::ACL_DELETE,
            Privilege::Truncate => pg_sys::ACL_TRUNCATE,
            Privilege::Trigger => pg_sys::ACL_TRIGGER,
            Privilege::Maintain => 0,
        }) as pg_sys::AclMode
    }
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub enum PrivilegeError {
    #[error("relation with OID {0} does not exist")]
    NoRelation(u32),
    #[error("{relation} is a system or pg_steward relation")]
    Protected { relation: String, purpose: String },
    #[error("permission denied for {relation}")]
    Denied { relation: String, role: String, privilege: &'static str, purpose: String },
    #[error("{0} must be called through its public function")]
    NoCaller(String),
    #[error("unknown privilege \"{0}\"")]
    UnknownPrivilege(String),
    #[error("the statement run as the owner of {relation} failed: {message}")]
    Statement { relation: String, message: String },
}

impl From<PrivilegeError> for ErrorReport {
    fn from(e: PrivilegeError) -> Self {
        let message = e.to_string();
        match e {
            PrivilegeError::NoRelation(_) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, message, "steward")
            }
            PrivilegeError::Protected { purpose, .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "steward")
                    .set_detail(format!(
                        "{purpose} is refused on system catalogs, information_schema, TOAST tables, other sessions' temporary tables and the steward schema to everyone but a superuser."
                    ))
                    .set_hint("Name one of the application's tables.")
            }
            PrivilegeError::Denied { role, privilege, purpose, .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "steward")
                    .set_detail(format!("{purpose} needs {privilege} on it; role \"{role}\" does not hold it."))
                    .set_hint("pg_steward acts only with its caller's own rights: have the table's owner grant the privilege (or make the caller a member of the owning role).")
            }
            PrivilegeError::NoCaller(_) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, "steward")
                    .set_hint("Call the public steward function; its internal body cannot be called on its own.")
            }
            PrivilegeError::UnknownPrivilege(_) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "steward")
            }
            PrivilegeError::Statement { .. } => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message, "steward")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Who is calling
// ---------------------------------------------------------------------------------------

/// At most this many entries may wait for their body (a wrapper takes its own at once, so
/// more than a few means something called `_enter()` without a body).
const MAX_FRAMES: usize = 64;

thread_local! {
    /// (token, caller role) recorded by `_enter()` and taken back by `_caller(token)`.
    static FRAMES: RefCell<Vec<(i64, pg_sys::Oid)>> = const { RefCell::new(Vec::new()) };
    static CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[pg_guard]
// SAFETY: an XactCallback (registered once in `enter`) on the backend's thread; it dereferences nothing (`_arg` is the
// null it was registered with) and FRAMES is never borrowed across a PostgreSQL call, so borrow_mut cannot conflict.
unsafe extern "C-unwind" fn forget_frames(event: pg_sys::XactEvent::Type, _arg: *mut std::os::raw::c_void) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PREPARE
    ) {
        FRAMES.with(|f| f.borrow_mut().clear());
    }
}

fn random_token() -> i64 {
    let mut bytes = [0u8; 8];
    // SAFETY: pg_strong_random writes exactly `len` bytes into the buffer.
    let ok = unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) };
    if !ok {
        error!("pg_steward: could not generate a random token");
    }
    i64::from_ne_bytes(bytes)
}

/// SQL `steward._enter()`: record the calling role (this function runs with the caller's
/// rights) and return the token its SECURITY DEFINER body redeems with `_caller(token)`.
#[pg_extern(name = "_enter", volatile, parallel_unsafe)]
fn enter() -> i64 {
    if !CALLBACK.with(|c| c.replace(true)) {
        // SAFETY: registers a static callback once per backend; it only clears a thread-local.
        unsafe { pg_sys::RegisterXactCallback(Some(forget_frames), std::ptr::null_mut()) };
    }
    // SAFETY: reads the backend's current user id.
    let caller = unsafe { pg_sys::GetUserId() };
    let token = random_token();
    FRAMES.with(|f| {
        let mut frames = f.borrow_mut();
        if frames.len() >= MAX_FRAMES {
            frames.remove(0);
        }
        frames.push((token, caller));
    });
    token
}

/// Redeem a token of `_enter()`: the role that called the public function.
pub fn caller_of(token: i64, function: &str) -> Result<pg_sys::Oid, PrivilegeError> {
    FRAMES
        .with(|f| {
            let mut frames = f.borrow_mut();
            let at = frames.iter().rposition(|(t, _)| *t == token)?;
            Some(frames.remove(at).1)
        })
        .ok_or_else(|| PrivilegeError::NoCaller(function.to_string()))
}

/// SQL `steward._caller(token, function)`: see `caller_of`.  Owner-only (finalize.sql).
#[pg_extern(name = "_caller", volatile, parallel_unsafe)]
fn caller_sql(token: i64, function: &str) -> Result<pg_sys::Oid, ErrorReport> {
    Ok(caller_of(token, function)?)
}

// ---------------------------------------------------------------------------------------
// May the caller do it
// ---------------------------------------------------------------------------------------

/// What the catalog says of a relation.
#[derive(Debug, Clone)]
pub struct Target {
    pub relid: pg_sys::Oid,
    pub owner: pg_sys::Oid,
    pub namespace: pg_sys::Oid,
    pub display: String,
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId with noerr returns NULL or a palloc'd C string.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        return format!("OID {}", role.to_u32());
    }
    // SAFETY: non-null, NUL-terminated.
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// The relation's owner, schema and kind from the syscache.
pub fn target(relid: pg_sys::Oid) -> Result<Target, PrivilegeError> {
    // SAFETY: syscache look-up by OID; the tuple is released before returning and only
    // plain fields are copied out of it.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as _, pg_sys::Datum::from(relid));
        if tuple.is_null() {
            return Err(PrivilegeError::NoRelation(relid.to_u32()));
        }
        let header = (*tuple).t_data;
        let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_class;
        let out = Target {
            relid,
            owner: (*form).relowner,
            namespace: (*form).relnamespace,
            display: crate::common::catalog::QuotedName::relation(relid)
                .map(|q| q.as_str().to_string())
                .unwrap_or_else(|| format!("relation {}", relid.to_u32())),
        };
        pg_sys::ReleaseSysCache(tuple);
        Ok(out)
    }
}

/// The extension's own schema (fixed by the control file: `schema = steward`, not relocatable).
fn extension_schema() -> pg_sys::Oid {
    // SAFETY: catalog look-up by name with missing_ok.
    unsafe { pg_sys::get_namespace_oid(c"steward".as_ptr(), true) }
}

/// Whether the namespace is one only a superuser may have pg_steward act in.
fn protected_namespace(namespace: pg_sys::Oid) -> bool {
    // SAFETY: plain catalog predicates on an OID.
    unsafe {
        if pg_sys::IsCatalogNamespace(namespace) || pg_sys::IsToastNamespace(namespace) {
            return true;
        }
        if pg_sys::isOtherTempNamespace(namespace) {
            return true;
        }
        if namespace == extension_schema() {
            return true;
        }
        let info = pg_sys::get_namespace_oid(c"information_schema".as_ptr(), true);
        namespace == info
    }
}

fn holds(caller: pg_sys::Oid, t: &Target, privilege: Privilege) -> bool {
    // SAFETY: ACL and role-membership checks by OID.
    unsafe {
        if pg_sys::superuser_arg(caller) {
            return true;
        }
        match privilege {
            Privilege::Maintain => {
                if pg_sys::has_privs_of_role(caller, t.owner) {
                    return true;
                }
                #[cfg(any(feature = "pg17", feature = "pg18"))]
                {
                    pg_sys::pg_class_aclcheck(t.relid, caller, pg_sys::ACL_MAINTAIN as pg_sys::AclMode)
                        == pg_sys::AclResult::ACLCHECK_OK
                }
                #[cfg(not(any(feature = "pg17", feature = "pg18")))]
                {
                    false
                }
            }
            p => pg_sys::pg_class_aclcheck(t.relid, caller, p.acl_mask()) == pg_sys::AclResult::ACLCHECK_OK,
        }
    }
}

/// The one check: may `caller` have pg_steward do `purpose` on `relid`, needing `needs`?
pub fn check(caller: pg_sys::Oid, relid: pg_sys::Oid, needs: &[Privilege], purpose: &str) -> Result<Target, PrivilegeError> {
    let t = target(relid)?;
    // SAFETY: superuser_arg is a catalog look-up.
    let superuser = unsafe { pg_sys::superuser_arg(caller) };
    if !superuser && protected_namespace(t.namespace) {
        return Err(PrivilegeError::Protected { relation: t.display.clone(), purpose: purpose.to_string() });
    }
    for p in needs {
        if !holds(caller, &t, *p) {
            return Err(PrivilegeError::Denied {
                relation: t.display.clone(),
                role: role_name(caller),
                privilege: p.name(),
                purpose: purpose.to_string(),
            });
        }
    }
    Ok(t)
}

/// SQL `steward._check_privileges(caller, rel, privileges, purpose) → owner`: the check for
/// the PL/pgSQL bodies.  Owner-only (finalize.sql): it takes the caller as an argument.
#[pg_extern(name = "_check_privileges", stable, parallel_safe)]
fn check_sql(caller: pg_sys::Oid, rel: pg_sys::Oid, privileges: Vec<String>, purpose: &str) -> Result<pg_sys::Oid, ErrorReport> {
    let mut needs = Vec::with_capacity(privileges.len());
    for word in &privileges {
        needs.push(Privilege::parse(word).ok_or_else(|| PrivilegeError::UnknownPrivilege(word.clone()))?);
    }
    Ok(check(caller, rel, &needs, purpose)?.owner)
}

// ---------------------------------------------------------------------------------------
// As whom the work runs
// ---------------------------------------------------------------------------------------

/// Run `f` as `role` in a security-restricted operation with a pinned search_path; the
/// previous user, security context and settings are put back whatever happens.
pub fn as_role_restricted<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: standard save/switch of the current user, as vacuum.c does.
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let nest = pg_sys::NewGUCNestLevel();
        pin_search_path();
        nest
    };
    PgTryBuilder::new(AssertUnwindSafe(f))
        .finally(|| {
            // SAFETY: undoes the switch above (on error the (sub)transaction abort would do
            // it as well; doing it here keeps Rust code after the error correct).
            unsafe {
                pg_sys::AtEOXact_GUC(false, nest);
                pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
            }
        })
        .execute()
}

/// `search_path = pg_catalog, pg_temp` at the current GUC nest level (saved, so the level's
/// end puts the caller's back).
pub fn pin_search_path() {
    // SAFETY: set_config_option with constant, valid arguments.
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}

/// Run `f` with `search_path = pg_catalog, pg_temp`, the caller's put back afterwards: every
/// statement pg_steward prepares or executes on a caller's behalf goes through this, so an
/// operator or function a caller puts early in their path is never picked.
pub fn with_pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level opened and closed around `f`.
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    pin_search_path();
    PgTryBuilder::new(AssertUnwindSafe(f))
        // SAFETY: closes exactly the GUC nest level opened above, once, whether `f` returned or raised, putting the
        // caller's search_path back (as fmgr_security_definer does for a SET clause).
        .finally(|| unsafe { pg_sys::AtEOXact_GUC(false, nest) })
        .execute()
}

fn text_args(args: &[Option<String>]) -> Vec<pgrx::datum::DatumWithOid<'static>> {
    args.iter().map(|a| pgrx::datum::DatumWithOid::from(a.clone())).collect()
}

/// SQL `steward._exec_as_owner(rel, sql, args) → bigint`: run one statement (built by a
/// steward body from catalog names; values only as `$n::type` text parameters) as the owner
/// of `rel` in a security-restricted operation; returns the rows it processed.  Owner-only.
#[pg_extern(name = "_exec_as_owner", volatile, parallel_unsafe)]
fn exec_as_owner(rel: pg_sys::Oid, sql: &str, args: default!(Vec<Option<String>>, "'{}'")) -> Result<i64, ErrorReport> {
    let t = target(rel)?;
    let statement = CString::new(sql).map_err(|_| PrivilegeError::Statement { relation: t.display.clone(), message: "NUL byte".into() })?;
    let values = text_args(&args);
    let processed = as_role_restricted(t.owner, || {
        Spi::connect_mut(|client| client.update(statement.to_str().unwrap_or(""), None, &values).map(|r| r.len() as i64))
    });
    processed.map_err(|e| PrivilegeError::Statement { relation: t.display, message: e.to_string() }.into())
}

/// SQL `steward._select_as_owner(rel, sql, args) → jsonb`: the first column of the first row
/// of a query run like `_exec_as_owner`.  Owner-only.
#[pg_extern(name = "_select_as_owner", volatile, parallel_unsafe)]
fn select_as_owner(rel: pg_sys::Oid, sql: &str, args: default!(Vec<Option<String>>, "'{}'")) -> Result<Option<JsonB>, ErrorReport> {
    let t = target(rel)?;
    let values = text_args(&args);
    let value = as_role_restricted(t.owner, || {
        Spi::connect(|client| client.select(sql, Some(1), &values)?.first().get::<JsonB>(1))
    });
    value.map_err(|e| PrivilegeError::Statement { relation: t.display, message: e.to_string() }.into())
}

#[cfg(any(test, feature = "pg_test"))]
#[path = "privilege_test.rs"]
mod privilege_test;
