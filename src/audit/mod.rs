//! Audit trail (CONTRACT §5): a trigger written in Rust records every change of a registered
//! configuration table into `steward.audit_entries`, attributed, chained by hash and announced
//! with NOTIFY; everyone reads the entries through the view `steward.configuration_audit_log`.
//! The SQL surface (tables, views, audit_enable, audit_verify, policies) is `sql/audit.sql`.
//!
//! Per row the trigger reads the configuration's previous entry through the chain index and
//! stores the new entry directly (`writer.rs`): no SPI, no executor, no PL/pgSQL, no text
//! round trip of the documents, and no second copy of a document the previous entry already
//! holds (old_values is elided where it equals the previous entry's new_values).  The log is append-only: a statement trigger refuses INSERT,
//! UPDATE, DELETE and TRUNCATE from any SQL session, the owner's included; only the purge
//! (the retention function) lifts it, with a flag no SQL can set.

pub mod admin_log;
pub mod export;
pub mod error;
pub mod writer;

#[cfg(any(test, feature = "pg_test"))]
#[path = "audit_test.rs"]
mod audit_test;

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::panic::AssertUnwindSafe;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgTryBuilder, PgTupleDesc};
use serde_json::Value;

use crate::common::identity::{self, parse_uuid, setting};
use crate::common::SpiContext;
use error::AuditError;

extern "C-unwind" {
    // utils/adt/datum.c: binary equality of two values of one type (never raises).
    fn datumIsEqual(value1: pg_sys::Datum, value2: pg_sys::Datum, typ_by_val: bool, typ_len: i32) -> bool;
}

thread_local! {
    /// True only while pg_steward itself writes to the log (trigger insert, purge).
    static WRITING: Cell<bool> = const { Cell::new(false) };
    static RATE_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
    /// (log relation, its owner), looked up once per backend.
    static LOG_OWNER: Cell<Option<(pg_sys::Oid, pg_sys::Oid)>> = const { Cell::new(None) };
}

/// One end user's window of changes (fixed one-minute windows), and the limit.
const RATE_SQL: &str = "
INSERT INTO steward.audit_rate AS r (user_id, window_start, changes) VALUES ($1, pg_catalog.now(), 1)
ON CONFLICT (user_id) DO UPDATE
   SET changes = CASE WHEN r.window_start OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 minute')
                      THEN r.changes OPERATOR(pg_catalog.+) 1 ELSE 1 END,
       window_start = CASE WHEN r.window_start OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 minute')
                           THEN r.window_start ELSE pg_catalog.now() END
RETURNING r.changes::bigint, steward.setting_number('auditRateLimitPerMinute')::bigint";

/// Who makes the change and from where, read from the settings PostgREST sets per request.
/// A malformed value is ignored field by field; it never breaks the write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Attribution {
    pub changed_by: Option<pgrx::Uuid>,
    pub actor: String,
    pub jwt_role: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub reason: Option<String>,
    pub rollback_of: Option<pgrx::Uuid>,
}

/// Read the attribution from the raw setting values (pure, so it is unit-tested).
///
/// `claim_sub`, `claims` and `headers` are PostgREST's per-request settings: the caller passes
/// them only for a session whose role is an API role (see `common::identity`), so a directly
/// connected login that sets `request.jwt.claims` is never attributed to someone else.
/// `actor` is always the database role behind the change (`identity::database_actor()`),
/// never a claim.
pub fn attribution_from(
    claim_sub: Option<&str>,
    claims: Option<&str>,
    headers: Option<&str>,
    reason: Option<&str>,
    rollback_of: Option<&str>,
    actor: &str,
) -> Attribution {
    let claims: Option<Value> = claims.and_then(|c| serde_json::from_str(c).ok());
    let sub = crate::common::identity::jwt_sub_from(claim_sub, claims.as_ref());
    let jwt_role = claims.as_ref().and_then(|c| c.get("role")).and_then(Value::as_str).map(str::to_string);
    let headers: Option<Value> = headers.and_then(|h| serde_json::from_str(h).ok());
    let header = |name: &str| headers.as_ref().and_then(|h| h.get(name)).and_then(Value::as_str);
    // x-forwarded-for: "client, proxy1, proxy2" — the first address is the client.
    let client_ip = header("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .and_then(|v| v.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string());
    let user_agent = header("user-agent").map(|ua| ua.chars().take(1000).collect());
    Attribution {
        changed_by: sub.as_deref().and_then(parse_uuid),
        actor: actor.to_string(),
        jwt_role,
        client_ip,
        user_agent,
        reason: reason.map(str::to_string),
        rollback_of: rollback_of.and_then(parse_uuid),
    }
}

/// The attribution of a change made now, in this session.  The request settings count only
/// for an API request (identity::claims_trusted); the change reason and rollback marker are
/// pg_steward's own settings.
pub fn current_attribution() -> Attribution {
    let trusted = identity::claims_trusted();
    let request = |name: &CStr| if trusted { setting(name) } else { None };
    attribution_from(
        request(c"request.jwt.claim.sub").as_deref(),
        request(c"request.jwt.claims").as_deref(),
        request(c"request.headers").as_deref(),
        setting(c"steward.change_reason").as_deref(),
        setting(c"steward.rollback_of").as_deref(),
        &identity::database_actor(),
    )
}

/// Run `f` as the owner of the audit log with the write flag raised; both are put back
/// whatever happens (an error inside unwinds through here).
fn as_log_writer<R>(f: impl FnOnce() -> R) -> R {
    let owner = log_owner();
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: both out-pointers are live locals; the call only reads backend globals.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };
    let was_writing = WRITING.with(|w| w.replace(true));
    // SAFETY: the log owner is a valid role oid from pg_class (or the current user); `finally` below restores the saved user and context whatever happens.
    unsafe {
        pg_sys::SetUserIdAndSecContext(owner, saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32)
    };
    PgTryBuilder::new(AssertUnwindSafe(f))
        .finally(|| {
            // SAFETY: restores exactly what GetUserIdAndSecContext returned above.
            unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
            WRITING.with(|w| w.set(was_writing));
        })
        .execute()
}

fn log_owner() -> pg_sys::Oid {
    if let Some((_, owner)) = LOG_OWNER.with(Cell::get) {
        return owner;
    }
    let found = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT c.oid, c.relowner FROM pg_catalog.pg_class c
                  WHERE c.oid = 'steward.audit_entries'::pg_catalog.regclass",
                Some(1),
                &[],
            )?
            .first();
        Ok::<_, pgrx::spi::SpiError>((row.get::<pg_sys::Oid>(1)?, row.get::<pg_sys::Oid>(2)?))
    });
    match found {
        Ok((Some(rel), Some(owner))) => {
            LOG_OWNER.with(|c| c.set(Some((rel, owner))));
            owner
        }
        // Without a readable owner the write runs as the caller and fails on privileges:
        // loud, never silent.
        // SAFETY: GetUserId only reads a backend global.
        _ => unsafe { pg_sys::GetUserId() },
    }
}

fn with_plan<R>(
    cache: &'static std::thread::LocalKey<RefCell<Option<OwnedPreparedStatement>>>,
    sql: &str,
    types: &[PgOid],
    client: &mut pgrx::spi::SpiClient<'_>,
    run: impl FnOnce(&mut pgrx::spi::SpiClient<'_>, &OwnedPreparedStatement) -> R,
) -> Result<R, ErrorReport> {
    let missing = cache.with(|c| c.borrow().is_none());
    if missing {
        let plan = client.prepare_mut(sql, types).ctx("the audit log statements")?.keep();
        cache.with(|c| *c.borrow_mut() = Some(plan));
    }
    cache.with(|c| {
        let guard = c.borrow();
        match guard.as_ref() {
            Some(plan) => Ok(run(client, plan)),
            None => Err(crate::common::spi_failure("the audit log statements", pgrx::spi::SpiError::NoTupleTable)),
        }
    })
}

/// Requests made as an end user (JWT role authenticated or anon) are rate limited; service
/// role, administrators and direct database sessions are not.
fn rate_limited_user(who: &Attribution) -> Option<pgrx::Uuid> {
    let end_user = matches!(who.jwt_role.as_deref(), Some("authenticated") | Some("anon"));
    if !end_user {
        return None;
    }
    let admin = crate::common::identity::member_of(c"steward_admin");
    if admin { None } else { who.changed_by }
}

fn check_rate(client: &mut pgrx::spi::SpiClient<'_>, user: pgrx::Uuid) -> Result<(), ErrorReport> {
    let args = [DatumWithOid::from(user)];
    let (count, limit) = with_plan(&RATE_PLAN, RATE_SQL, &[PgOid::BuiltIn(PgBuiltInOids::UUIDOID)], client, |c, plan| {
        let row = c.update(plan, Some(1), &args)?.first();
        Ok::<_, pgrx::spi::SpiError>((row.get::<i64>(1)?, row.get::<i64>(2)?))
    })?
    .ctx("the audit rate window")?;
    match (count, limit) {
        (Some(count), Some(limit)) if limit > 0 && count > limit => Err(AuditError::RateLimited { count, limit }.into()),
        _ => Ok(()),
    }
}

/// One column of a tuple as a raw datum (None for NULL).
///
/// # Safety
/// `tuple` is null or a live heap tuple described by `desc`, `desc` valid for the call, and `attnum` <= its natts.
unsafe fn column(tuple: *mut pg_sys::HeapTupleData, desc: pg_sys::TupleDesc, attnum: i32) -> Option<pg_sys::Datum> {
    if tuple.is_null() || attnum <= 0 {
        return None;
    }
    let mut isnull = false;
    // SAFETY: the caller guarantees a live tuple of `desc`; attnum is checked positive above.
    let value = unsafe { pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull) };
    if isnull { None } else { Some(value) }
}

/// Whether an UPDATE changed anything but `updated_at` (binary comparison, column by column).
///
/// # Safety
/// `old` and `new` are live, non-null tuples described by `desc`, the trigger relation's descriptor.
unsafe fn row_changed(old: *mut pg_sys::HeapTupleData, new: *mut pg_sys::HeapTupleData, desc: pg_sys::TupleDesc) -> bool {
    // SAFETY: the caller passes the trigger relation's descriptor, valid for the trigger call.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked(desc) };
    for (i, att) in tupdesc.iter().enumerate() {
        if att.attisdropped || att.name() == "updated_at" {
            continue;
        }
        let attnum = (i + 1) as i32;
        // SAFETY: `old` and `new` are live trigger tuples of `desc` (this function's contract).
        let (a, b) = unsafe { (column(old, desc, attnum), column(new, desc, attnum)) };
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                // SAFETY: both datums are of the attribute described by `att` (same descriptor), which datumIsEqual reads by its byval/len.
                if !unsafe { datumIsEqual(a, b, att.attbyval, att.attlen as i32) } {
                    return true;
                }
            }
            _ => return true,
        }
    }
    false
}

/// The xmin of a row version, unless it is frozen (then the writer is no longer known).
///
/// # Safety
/// `tuple` is null or a live HeapTuple whose `t_data` is null or its valid header.
unsafe fn xmin_of(tuple: *mut pg_sys::HeapTupleData) -> Option<pg_sys::TransactionId> {
    if tuple.is_null() {
        return None;
    }
    // SAFETY: a non-null tuple from the trigger has a valid header; only plain fields are read.
    unsafe {
        let header = (*tuple).t_data;
        if header.is_null() || u32::from((*header).t_infomask) & pg_sys::HEAP_XMIN_FROZEN == pg_sys::HEAP_XMIN_FROZEN {
            return None;
        }
        Some((*header).t_choice.t_heap.t_xmin)
    }
}

fn attnum_of(desc: pg_sys::TupleDesc, name: &str) -> i32 {
    // SAFETY: `desc` is the trigger relation's descriptor, valid for the trigger call.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked(desc) };
    tupdesc
        .iter()
        .position(|att| !att.attisdropped && att.name() == name)
        .map(|i| (i + 1) as i32)
        .unwrap_or(0)
}

/// The type of column `attnum` (1-based); InvalidOid when out of range.
fn type_of(desc: pg_sys::TupleDesc, attnum: i32) -> pg_sys::Oid {
    // SAFETY: `desc` is the trigger relation's descriptor, valid for the trigger call.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked(desc) };
    usize::try_from(attnum - 1)
        .ok()
        .and_then(|i| tupdesc.get(i))
        .map(|att| att.atttypid)
        .unwrap_or(pg_sys::Oid::INVALID)
}

pub struct Entry {
    /// The transaction that wrote the row version this change replaces (UPDATE, DELETE),
    /// when its header still says so (not frozen): see writer::HEADS.
    pub replaced_xmin: Option<pg_sys::TransactionId>,
    /// Whether this change leaves a row version behind (INSERT, UPDATE).
    pub leaves_row: bool,
    /// Whether a row arrives at its configuration id with this change (INSERT, or an UPDATE
    /// that changed the key): the chain it would continue must be its owner's.
    pub starts_row: bool,
    pub relid: pg_sys::Oid,
    pub config_type: String,
    pub config_id: Option<pg_sys::Datum>,
    pub owner: Option<pg_sys::Datum>,
    pub action: &'static str,
    pub old_doc: Option<pg_sys::Datum>,
    pub new_doc: Option<pg_sys::Datum>,
}

fn write_entry(entry: &Entry, who: &Attribution) -> Result<pgrx::Uuid, ErrorReport> {
    if let Some(user) = rate_limited_user(who) {
        // Planned and run as the log owner under search_path = pg_catalog, pg_temp: the
        // caller's path never picks an operator or function for it.
        as_log_writer(|| crate::common::privilege::with_pinned_search_path(|| Spi::connect_mut(|client| check_rate(client, user))))?;
    }
    writer::insert_entry(entry, who)
}

/// `SET steward.audit_notify = off` (per session, role or database) silences the
/// announcements, e.g. for bulk loads nobody listens to.
fn notifications_on() -> bool {
    crate::gucs::AUDIT_NOTIFY.get()
}

/// Announce a change: configuration type, configuration id, audit id and operation — never
/// document contents.
fn announce(config_type: &str, config_id: Option<pgrx::Uuid>, audit_id: pgrx::Uuid, action: &str) {
    let payload = serde_json::json!({
        "config_type": config_type,
        "config_id": config_id.map(|u| u.to_string()),
        "audit_id": audit_id.to_string(),
        "operation": action,
    })
    .to_string();
    // SAFETY: pg_notify takes two non-null text datums, built here from owned Rust strings.
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::pg_notify,
            &["steward_config_changed".into_datum(), payload.into_datum()],
        );
    }
}

fn misconfigured(trigger: &PgTrigger<'_>, detail: &str) -> ErrorReport {
    AuditError::Misconfigured {
        table: trigger.table_name().unwrap_or_default(),
        detail: detail.to_string(),
    }
    .into()
}

fn capture(trigger: &PgTrigger<'_>) -> Result<(), ErrorReport> {
    let data = trigger.trigger_data();
    let args = trigger.extra_args().map_err(|_| misconfigured(trigger, "its arguments cannot be read"))?;
    let [config_type, doc_column, owner_column, key_column] = args.as_slice() else {
        return Err(misconfigured(trigger, "it needs four arguments: config type, document, owner and key column"));
    };
    let relation = data.tg_relation;
    // SAFETY: `tg_relation` is the open relation of this trigger call, valid until it returns.
    let desc = unsafe { (*relation).rd_att };
    // SAFETY: the same open relation; a plain field read.
    let relid = unsafe { (*relation).rd_id };
    let event = data.tg_event;
    let (old, new) = if pgrx::trigger_support::trigger_fired_by_insert(event) {
        (std::ptr::null_mut(), data.tg_trigtuple)
    } else if pgrx::trigger_support::trigger_fired_by_update(event) {
        (data.tg_trigtuple, data.tg_newtuple)
    } else {
        (data.tg_trigtuple, std::ptr::null_mut())
    };
    // SAFETY: both tuples are the non-null trigger tuples of this relation.
    if !old.is_null() && !new.is_null() && !unsafe { row_changed(old, new, desc) } {
        return Ok(());
    }
    let key = attnum_of(desc, key_column);
    let doc = attnum_of(desc, doc_column);
    if key == 0 || doc == 0 {
        return Err(misconfigured(trigger, "its key or document column no longer exists"));
    }
    let owner = if owner_column.is_empty() { 0 } else { attnum_of(desc, owner_column) };
    // The values are read as raw datums of these types: a column whose type was changed
    // since audit_enable() is refused rather than misread.
    if type_of(desc, key) != pg_sys::UUIDOID
        || type_of(desc, doc) != pg_sys::JSONBOID
        || (owner > 0 && type_of(desc, owner) != pg_sys::UUIDOID)
    {
        return Err(misconfigured(trigger, "its key or owner column is no longer uuid, or its document column no longer jsonb"));
    }
    let active = attnum_of(desc, "is_active");
    let current = if new.is_null() { old } else { new };
    // SAFETY: `t` is one of this call's trigger tuples (or null) and `active` an attribute of `desc` (0 returns None).
    let flag = |t| unsafe { column(t, desc, active) }.map(|d| d.value() != 0);
    let action = match (old.is_null(), new.is_null()) {
        (true, _) => "created",
        (_, true) => "deleted",
        _ if active > 0 && flag(old) != flag(new) => {
            if flag(new) == Some(true) { "activated" } else { "deactivated" }
        }
        _ => "updated",
    };
    // SAFETY (this block and the `column` calls below): `old` and `new` are the trigger's
    // tuples (or null), `desc` their descriptor, `key` a uuid column of it (checked above).
    let starts_row = match (old.is_null(), new.is_null()) {
        (true, false) => true,
        // SAFETY: both tuples are non-null in this arm; `key` is a uuid column of `desc` (checked above), so each
        // non-null value is a pointer to the 16 bytes uuid_bytes copies.
        (false, false) => unsafe {
            match (column(old, desc, key), column(new, desc, key)) {
                (Some(a), Some(b)) => crate::common::catalog::uuid_bytes(a) != crate::common::catalog::uuid_bytes(b),
                (a, b) => a.is_some() != b.is_some(),
            }
        },
        _ => false,
    };
    let entry = Entry {
        // SAFETY: `old` is this call's trigger tuple or null (xmin_of checks).
        replaced_xmin: unsafe { xmin_of(old) },
        leaves_row: !new.is_null(),
        starts_row,
        relid,
        config_type: config_type.clone(),
        // SAFETY: `current` is a live trigger tuple; `key` is a uuid column of `desc` (checked above).
        config_id: unsafe { column(current, desc, key) },
        // SAFETY: `owner` is a uuid column of `desc` (checked above) or 0 (None).
        owner: unsafe { column(current, desc, owner) },
        action,
        // SAFETY: `old`/`new` are this call's trigger tuples or null; `doc` a jsonb column of `desc`.
        old_doc: unsafe { column(old, desc, doc) },
        new_doc: unsafe { column(new, desc, doc) },
    };
    let who = current_attribution();
    let audit_id = write_entry(&entry, &who)?;
    if notifications_on() {
        // SAFETY: the datum is the non-null uuid key read above.
        let config_id = entry.config_id.and_then(|d| unsafe { pgrx::Uuid::from_datum(d, false) });
        announce(config_type, config_id, audit_id, action);
    }
    Ok(())
}

/// AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW on a registered configuration table
/// (arguments: config type, document column, owner column, key column).
#[pg_trigger]
fn _audit_capture<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    if let Err(report) = capture(trigger) {
        report.report(PgLogLevel::ERROR);
    }
    Ok(None)
}

/// AFTER TRUNCATE … FOR EACH STATEMENT: one entry for the whole table.
#[pg_trigger]
fn _audit_truncate<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let outcome = (|| {
        let config_type = trigger.extra_args().ok().and_then(|a| a.into_iter().next()).unwrap_or_default();
        // SAFETY: `tg_relation` is the open relation of this trigger call.
        let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
        let entry = Entry { replaced_xmin: None, leaves_row: false, starts_row: false, relid, config_type: config_type.clone(), config_id: None, owner: None, action: "truncated", old_doc: None, new_doc: None };
        let audit_id = write_entry(&entry, &current_attribution())?;
        announce(&config_type, None, audit_id, "truncated");
        Ok::<_, ErrorReport>(())
    })();
    if let Err(report) = outcome {
        report.report(PgLogLevel::ERROR);
    }
    Ok(None)
}

/// BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE … FOR EACH STATEMENT on the log itself.
#[pg_trigger]
fn _audit_log_guard<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    if !WRITING.with(Cell::get) && !restoring(trigger) {
        let operation = trigger.op().map(|o| o.to_string()).unwrap_or_else(|_| "a change".into());
        ErrorReport::from(AuditError::AppendOnly { operation }).report(PgLogLevel::ERROR);
    }
    Ok(None)
}

/// A restore of the log (`pg_restore`, or `psql` replaying `pg_dump`'s output): a superuser's
/// `COPY … FROM` into the log's tables.  pg_dump writes the extension's configuration tables'
/// rows that way, and the append-only guard (part of the extension, so present while the data
/// loads) would otherwise refuse them and lose the whole log.  Only INSERT, only by a
/// superuser (who could disable the guard anyway), only from a COPY statement; the restored
/// chains verify because the hashes cover the documents, not the storage.
fn restoring(trigger: &PgTrigger<'_>) -> bool {
    if !matches!(trigger.op(), Ok(pgrx::PgTriggerOperation::Insert)) {
        return false;
    }
    // SAFETY: superuser() reads the current user's catalog entry; debug_query_string is the
    // backend's current top-level statement text (NULL outside a client statement), only read.
    unsafe {
        if !pg_sys::superuser() || pg_sys::debug_query_string.is_null() {
            return false;
        }
        let text = std::ffi::CStr::from_ptr(pg_sys::debug_query_string).to_string_lossy();
        let text = text.trim_start();
        text.len() >= 5 && text[..5].eq_ignore_ascii_case("COPY ")
    }
}

/// The hash of one entry: SHA-256 over every recorded field, each length-prefixed (NULL is
/// distinct from any value), chained to the previous entry of the same configuration.
/// Documents are hashed as their stored jsonb payload, timestamps as microseconds since
/// 2000-01-01 UTC, so nothing depends on a session's DateStyle or TimeZone.  The trigger
/// (writer::insert_entry) and audit_verify() compute it with this same code.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn _audit_hash(
    prev: Option<&[u8]>,
    id: Option<pgrx::Uuid>,
    config_type: Option<&str>,
    config_id: Option<pgrx::Uuid>,
    seq: Option<i64>,
    action: Option<&str>,
    changed_by: Option<pgrx::Uuid>,
    actor: Option<&str>,
    changed_at: Option<pgrx::datum::TimestampWithTimeZone>,
    old_values: Option<crate::common::jsonb::JsonbBytes>,
    new_values: Option<crate::common::jsonb::JsonbBytes>,
    change_reason: Option<&str>,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
) -> Vec<u8> {
    let bytes = |u: Option<pgrx::Uuid>| u.map(|u| *u.as_bytes());
    writer::entry_hash(&writer::HashFields {
        prev,
        id: bytes(id),
        config_type,
        config_id: bytes(config_id),
        seq,
        action,
        changed_by: bytes(changed_by),
        actor,
        changed_at: changed_at.map(pg_sys::TimestampTz::from),
        old_values: old_values.as_ref().map(|d| d.0.as_slice()),
        new_values: new_values.as_ref().map(|d| d.0.as_slice()),
        change_reason,
        client_ip,
        user_agent,
    })
}

/// Remove entries older than `cutoff` — the only way entries leave the log.  Each affected
/// chain keeps an anchor (the hash and sequence number of its last removed entry) so
/// audit_verify still proves the rest; the removal itself is recorded in steward.audit_purges.
/// Called by steward.audit_purge(), which checks the caller is an administrator.
#[pg_extern(volatile)]
fn _audit_purge(cutoff: pgrx::datum::TimestampWithTimeZone, dry_run: bool) -> Result<i64, ErrorReport> {
    let who = current_attribution();
    as_log_writer(|| {
        Spi::connect_mut(|client| {
            // No entry may be written while entries go: a writer could chain to (and elide
            // the document of) an entry this removes.  Writers wait until the purge commits;
            // its invalidation then makes every backend forget the chain heads it remembered.
            if !dry_run {
                client
                    .update("LOCK TABLE steward.audit_entries IN EXCLUSIVE MODE", None, &[])
                    .ctx("the audit log")?;
                let (log, _) = writer::log_relations()?;
                // SAFETY: `log` is the oid of the log relation; invalidating its relcache entry only queues a message.
                unsafe { pg_sys::CacheInvalidateRelcacheByRelid(log) };
            }
            let count = client
                .select(
                    "SELECT count(*) FROM steward.audit_entries WHERE changed_at < $1",
                    Some(1),
                    &[cutoff.into()],
                )
                .ctx("the audit entries to remove")?
                .first()
                .get::<i64>(1)
                .ctx("the audit entries to remove")?
                .unwrap_or(0);
            if dry_run || count == 0 {
                return Ok(count);
            }
            client
                .update(
                    "INSERT INTO steward.audit_chain_anchors AS a (config_id, seq, hash, anchored_at)
                     SELECT DISTINCT ON (l.config_id) l.config_id, l.seq, l.hash, pg_catalog.now()
                       FROM steward.audit_entries l
                      WHERE l.changed_at < $1 AND l.config_id IS NOT NULL
                      ORDER BY l.config_id, l.seq DESC
                     ON CONFLICT (config_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                                                           anchored_at = excluded.anchored_at",
                    None,
                    &[cutoff.into()],
                )
                .ctx("the chain anchors")?;
            // An entry that stays while the one before it goes keeps its old_values: it is
            // stored with the entry from now on (the same bytes, so its hash still holds).
            client
                .update(
                    "UPDATE steward.audit_entries k SET old_values = p.new_values, old_elided = false
                       FROM steward.audit_entries p
                      WHERE p.changed_at < $1 AND k.config_id = p.config_id AND k.seq = p.seq + 1
                        AND k.old_elided AND k.changed_at >= $1",
                    None,
                    &[cutoff.into()],
                )
                .ctx("the entries that stay")?;
            client
                .update(
                    "DELETE FROM steward.audit_entries WHERE changed_at < $1",
                    None,
                    &[cutoff.into()],
                )
                .ctx("the removal of old audit entries")?;
            client
                .update(
                    "INSERT INTO steward.audit_purges (cutoff, entries_removed, purged_by, purged_by_id)
                     VALUES ($1, $2, $3, $4)",
                    None,
                    &[cutoff.into(), count.into(), who.actor.as_str().into(), who.changed_by.into()],
                )
                .ctx("the record of the removal")?;
            Ok(count)
        })
    })
}
