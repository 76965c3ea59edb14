//! Who is calling, read in Rust from the settings PostgREST sets per request — the same
//! sources Supabase's `auth.uid()` reads (`request.jwt.claim.sub`, then the `sub` of
//! `request.jwt.claims`) — and role membership from the catalogs' caches.  Used on per-request
//! paths where calling the PL/pgSQL `steward.caller_uuid()` would cost more than the work.

use std::ffi::CStr;

use pgrx::prelude::*;
use serde_json::Value;

/// A setting's value; None when unset or empty (GetConfigOption with missing_ok).
pub fn setting(name: &CStr) -> Option<String> {
    let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    let text = unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned();
    if text.is_empty() { None } else { Some(text) }
}

pub fn parse_uuid(text: &str) -> Option<pgrx::Uuid> {
    uuid::Uuid::parse_str(text.trim()).ok().map(|u| pgrx::Uuid::from_bytes(*u.as_bytes()))
}

/// The JWT subject from raw setting values; malformed claims are ignored.
pub fn jwt_sub_from(claim_sub: Option<&str>, claims: Option<&Value>) -> Option<String> {
    claim_sub
        .map(str::to_string)
        .or_else(|| claims.and_then(|c| c.get("sub")).and_then(Value::as_str).map(str::to_string))
}

/// The calling end user as a uuid, when the request carries one.
pub fn caller_uuid() -> Option<pgrx::Uuid> {
    let claims: Option<Value> = setting(c"request.jwt.claims").and_then(|c| serde_json::from_str(&c).ok());
    jwt_sub_from(setting(c"request.jwt.claim.sub").as_deref(), claims.as_ref()).as_deref().and_then(parse_uuid)
}

/// Whether the current role is a member of `role` (false when that role does not exist).
pub fn member_of(role: &CStr) -> bool {
    unsafe {
        let oid = pg_sys::get_role_oid(role.as_ptr(), true);
        oid != pg_sys::Oid::INVALID && pg_sys::is_member_of_role(pg_sys::GetUserId(), oid)
    }
}

/// API keys in clear: the service role and superusers only (as `steward._sees_api_keys()`).
pub fn sees_api_keys() -> bool {
    let superuser = unsafe { pg_sys::superuser() };
    superuser || member_of(c"service_role")
}

/// Anyone's configuration: steward_admin members and whoever sees keys (as `steward._config_admin()`).
pub fn config_admin() -> bool {
    member_of(c"steward_admin") || sees_api_keys()
}

/// SQL `steward._config_admin()`: whether the current role may read anyone's configuration.
#[pg_extern(name = "_config_admin", stable, parallel_safe)]
pub fn config_admin_sql() -> bool {
    config_admin()
}

/// SQL `steward._sees_api_keys()`: whether API keys may be shown to the current role in clear.
#[pg_extern(name = "_sees_api_keys", stable, parallel_safe)]
pub fn sees_api_keys_sql() -> bool {
    sees_api_keys()
}
