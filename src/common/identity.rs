//! Who is calling — the one implementation behind `steward.caller_id()`,
//! `steward.caller_uuid()`, the audit trigger's attribution and every per-request check in
//! Rust.
//!
//! The end user comes from the settings PostgREST sets per request, the same ones Supabase's
//! `auth.uid()` reads (`request.jwt.claim.sub`, then the `sub` of `request.jwt.claims`).  They
//! are read here directly rather than by calling `auth.uid()`: that function belongs to
//! whoever owns schema `auth`, and evaluating it from code that may run as the extension owner
//! (a SECURITY DEFINER function calling `caller_id()`) would run another role's code with the
//! owner's rights.
//!
//! Any session can set those settings, so they are believed only when the role in effect for
//! the session is one of the API roles (`anon`, `authenticated`, `service_role`) — PostgREST's
//! `SET LOCAL ROLE <jwt role>` after it verified the JWT.  The role checked is the *outer*
//! role (the login, or the role it `SET ROLE` to), which a SECURITY
//! DEFINER function or pg_steward's own switch to the log owner does not change, so an API
//! request stays attributed to its user inside the extension's definer functions, and a
//! directly connected login (an admin, a service's own login, a superuser) is attributed to
//! itself whatever it puts in `request.jwt.claims`.  Only the role itself counts, not
//! membership: a login that is a member of `service_role` is an API request only after
//! `SET ROLE service_role`.

use std::ffi::CStr;

use pgrx::prelude::*;
use serde_json::Value;

/// The roles PostgREST switches to for a request whose JWT it verified.
pub const API_ROLES: [&CStr; 3] = [c"anon", c"authenticated", c"service_role"];

/// A setting's value; None when unset or empty (GetConfigOption with missing_ok).
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: `name` is a NUL-terminated C string; missing_ok = true makes GetConfigOption
    // return NULL for an unknown setting instead of raising, and restrict_privileged = false
    // only matters for superuser-only settings, which these are not.
    let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result of GetConfigOption points at the setting's NUL-terminated
    // value, valid until the setting changes; it is copied at once.
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

/// The oid of a role, None when it does not exist.
fn role_oid(role: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: `role` is a NUL-terminated C string; missing_ok = true returns InvalidOid
    // instead of raising when the role does not exist.
    let oid = unsafe { pg_sys::get_role_oid(role.as_ptr(), true) };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// A role's name; None when the oid names no role (dropped meanwhile).
fn role_name(oid: pg_sys::Oid) -> Option<String> {
    // SAFETY: noerr = true makes GetUserNameFromId return NULL for an unknown oid; a non-NULL
    // result is a palloc'd NUL-terminated copy of the name, read at once.
    let name = unsafe { pg_sys::GetUserNameFromId(oid, true) };
    if name.is_null() {
        return None;
    }
    // SAFETY: checked non-NULL above; NUL-terminated by GetUserNameFromId.
    Some(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
}

/// The role in effect for the session's statements: the login, or the role it SET ROLE to.
/// Not changed by SECURITY DEFINER functions or SetUserIdAndSecContext.
/// (`GetCurrentRoleId()` is the role of `SET ROLE`, invalid after `RESET ROLE`; it exists in
/// every supported major version, where `GetOuterUserId()` does not.)
fn outer_role() -> pg_sys::Oid {
    // SAFETY: both read backend-globals that are set once the session is initialised.
    unsafe {
        let role = pg_sys::GetCurrentRoleId();
        if role == pg_sys::Oid::INVALID { pg_sys::GetSessionUserId() } else { role }
    }
}

fn session_role() -> pg_sys::Oid {
    // SAFETY: as for GetOuterUserId: a backend-global set at session start.
    unsafe { pg_sys::GetSessionUserId() }
}

/// Whether the pure rule holds: the outer role is one of the API roles (by oid).
pub fn is_api_role(outer: pg_sys::Oid, api_roles: &[Option<pg_sys::Oid>]) -> bool {
    outer != pg_sys::Oid::INVALID && api_roles.iter().any(|r| *r == Some(outer))
}

/// Whether this session's JWT settings may be believed: its outer role is an API role.
pub fn claims_trusted() -> bool {
    // No claims at all (a direct session, a job): nothing to believe, no role look-ups.
    if setting(c"request.jwt.claims").is_none() && setting(c"request.jwt.claim.sub").is_none() {
        return false;
    }
    let roles: Vec<Option<pg_sys::Oid>> = API_ROLES.iter().map(|r| role_oid(r)).collect();
    is_api_role(outer_role(), &roles)
}

/// The JWT subject of a trusted request (any text; not necessarily a uuid).
pub fn caller_sub() -> Option<String> {
    if !claims_trusted() {
        return None;
    }
    let claims: Option<Value> = setting(c"request.jwt.claims").and_then(|c| serde_json::from_str(&c).ok());
    jwt_sub_from(setting(c"request.jwt.claim.sub").as_deref(), claims.as_ref())
}

/// The calling end user as a uuid, when a trusted request carries one.  Never derived from a
/// role name (a role may be named like someone's uuid).
pub fn caller_uuid() -> Option<pgrx::Uuid> {
    caller_sub().as_deref().and_then(parse_uuid)
}

/// The session user's name (the login).
pub fn session_user_name() -> String {
    role_name(session_role()).unwrap_or_default()
}

/// Who is calling as text: the trusted JWT subject, else the session user (the login).
pub fn caller_id() -> String {
    caller_sub().unwrap_or_else(session_user_name)
}

/// `actor` of an audit entry: the real database role behind the change, never a claim.  The
/// outer role (the login, or the role it SET ROLE to), prefixed by the login when the two
/// differ: "authenticator/authenticated" for a PostgREST request, "sec_admin" for a direct
/// login, "postgres" for a superuser's psql session.  SECURITY DEFINER functions and
/// pg_steward's own switch to the log owner do not change it.
pub fn database_actor() -> String {
    let (session, outer) = (session_role(), outer_role());
    let session_name = role_name(session).unwrap_or_default();
    if session == outer {
        return session_name;
    }
    actor_text(&session_name, &role_name(outer).unwrap_or_default())
}

/// "login/role" when they differ, else the one name (pure, unit-tested).
pub fn actor_text(session: &str, outer: &str) -> String {
    if session == outer || outer.is_empty() { session.to_string() } else { format!("{session}/{outer}") }
}

/// SQL `steward.caller_id()`: the trusted JWT subject, else the session user.
#[pg_extern(name = "caller_id", stable, parallel_safe)]
pub fn caller_id_sql() -> String {
    caller_id()
}

/// SQL `steward.caller_uuid()`: the trusted JWT subject when it is a uuid, else NULL.
#[pg_extern(name = "caller_uuid", stable, parallel_safe)]
pub fn caller_uuid_sql() -> Option<pgrx::Uuid> {
    caller_uuid()
}

/// Whether the current role is a member of `role` (false when that role does not exist).
pub fn member_of(role: &CStr) -> bool {
    match role_oid(role) {
        // SAFETY: GetUserId reads a backend-global; is_member_of_role only reads the
        // catalogs' caches for two valid role oids.
        Some(oid) => unsafe { pg_sys::is_member_of_role(pg_sys::GetUserId(), oid) },
        None => false,
    }
}

/// API keys in clear: the service role and superusers only (as `steward._sees_api_keys()`).
pub fn sees_api_keys() -> bool {
    // SAFETY: superuser() reads the current user's role attributes from the syscache.
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

/// Whether `role` may act on anyone's configuration (steward_admin, service_role, superusers).
fn config_admin_of(role: pg_sys::Oid) -> bool {
    let member = |name: &CStr| match role_oid(name) {
        // SAFETY: is_member_of_role only reads the catalogs' caches for two role oids.
        Some(oid) => unsafe { pg_sys::is_member_of_role(role, oid) },
        None => false,
    };
    // SAFETY: superuser_arg reads the role's attributes from the syscache.
    let superuser = unsafe { pg_sys::superuser_arg(role) };
    superuser || member(c"service_role") || member(c"steward_admin")
}

/// SQL `steward._caller_config_admin()`: `_config_admin()` for the role the request acts as
/// (the session's `SET ROLE`, else its login) — what a SECURITY DEFINER body asks, inside which
/// the current role is the extension's owner.
#[pg_extern(name = "_caller_config_admin", stable, parallel_safe)]
pub fn caller_config_admin() -> bool {
    config_admin_of(outer_role())
}

/// SQL `steward._sees_api_keys()`: whether API keys may be shown to the current role in clear.
#[pg_extern(name = "_sees_api_keys", stable, parallel_safe)]
pub fn sees_api_keys_sql() -> bool {
    sees_api_keys()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_roles_themselves_are_trusted() {
        let (anon, authed, service) = (pg_sys::Oid::from(100u32), pg_sys::Oid::from(101u32), pg_sys::Oid::from(102u32));
        let roles = [Some(anon), Some(authed), Some(service)];
        assert!(is_api_role(authed, &roles));
        assert!(is_api_role(service, &roles));
        // A login (a member of service_role, an admin) is not.
        assert!(!is_api_role(pg_sys::Oid::from(200u32), &roles));
        assert!(!is_api_role(pg_sys::Oid::INVALID, &[None, None, None]));
        // Roles that do not exist never match.
        assert!(!is_api_role(pg_sys::Oid::from(101u32), &[None, None, None]));
    }

    #[test]
    fn actor_names_login_and_role() {
        assert_eq!(actor_text("authenticator", "authenticated"), "authenticator/authenticated");
        assert_eq!(actor_text("sec_admin", "sec_admin"), "sec_admin");
        assert_eq!(actor_text("postgres", ""), "postgres");
    }
}
