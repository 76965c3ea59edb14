//! Effective AI configuration in one Rust call: the layer rows read with direct index probes
//! (`direct.rs`) or, where those do not apply, through one prepared plan over the generated
//! SQL function `steward._ai_config_rows` (inlined by the planner); merged and masked here.  The PL/pgSQL version it replaces spent most of its time in function frames, the
//! caller-identity lookup and role checks, not in the rows.

use std::cell::RefCell;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;

use crate::common::identity::{caller_uuid, config_admin, sees_api_keys};
use crate::common::jsonb::{Doc, JsonbDatum};
use crate::common::SpiContext;

use super::error::ConfigError;
use super::{merge, DocKind};

thread_local! {
    static ROWS: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
}

/// The resolved AI configuration of `user_id`: defaults ← database ← organisations ← the
/// user's best active row.  Row-level security applies (the rows are read with the caller's
/// rights); another user's configuration is 42501 unless the caller is an admin.
pub fn resolve(user_id: Option<pgrx::Uuid>) -> Result<serde_json::Value, ErrorReport> {
    let admin = config_admin();
    if !admin && (user_id.is_none() || user_id != caller_uuid()) {
        return Err(ConfigError::NotYours.into());
    }
    // Index probes without the executor when they apply (src/config/direct.rs), else SPI.
    if let Some(layers) = user_id.and_then(super::direct::layers) {
        return finish(layers, user_id);
    }
    // Planned and run under search_path = pg_catalog, pg_temp (the plan is kept per backend).
    let layers = crate::common::privilege::with_pinned_search_path(|| Spi::connect(|client| {
        let missing = ROWS.with(|r| r.borrow().is_none());
        if missing {
            let plan = client
                .prepare(
                    "SELECT r.configuration FROM steward._ai_config_rows($1) r",
                    &[PgOid::BuiltIn(PgBuiltInOids::UUIDOID)],
                )
                .ctx("the configuration layers")?
                .keep();
            ROWS.with(|r| *r.borrow_mut() = Some(plan));
        }
        ROWS.with(|r| {
            let guard = r.borrow();
            let Some(plan) = guard.as_ref() else { return Ok(Vec::new()) };
            let mut rows = client.select(plan, None, &[user_id.into()]).ctx("the configuration layers")?;
            let mut layers = Vec::with_capacity(rows.len());
            // The raw datum (the typed getters insist on an IntoDatum type), read into a Doc
            // straight from the jsonb binary form while the SPI tuple is alive.
            while rows.next().is_some() {
                if let Some(d) = rows.get_datum_by_ordinal(1).ctx("the configuration layers")? {
                    // SAFETY: `d` is a non-null datum of the SPI row just fetched, alive while `rows` is; the
                    // column is `configuration`, declared jsonb by steward._ai_config_rows' RETURNS TABLE.
                    if let Some(doc) = unsafe { Doc::from_datum(d, false) } {
                        layers.push(doc.0);
                    }
                }
            }
            Ok::<_, ErrorReport>(layers)
        })
    }))?;
    finish(layers, user_id)
}

/// Defaults, then each layer merged in; keys in clear for the service role (resolved through
/// the vault, only where bound to `user_id` or one of its organisations), masked for everyone else.
fn finish(layers: Vec<serde_json::Value>, user_id: Option<pgrx::Uuid>) -> Result<serde_json::Value, ErrorReport> {
    let kind = DocKind::AiConfig;
    let mut doc = kind.defaults();
    for layer in &layers {
        merge::merge_into(&mut doc, &merge::normalized_ai_config(layer));
    }
    super::keys::reveal_or_mask(&mut doc, sees_api_keys(), user_id)?;
    Ok(doc)
}

/// The finished jsonb, answered from the per-backend cache (`cache.rs`) where it applies.
fn resolve_jsonb(user_id: Option<pgrx::Uuid>) -> Result<Option<JsonbDatum>, ErrorReport> {
    let cacheable = match user_id {
        Some(user) if super::direct::applies() => {
            // The same checks as resolve(), before anything is answered.
            let admin = config_admin();
            if !admin && Some(user) != caller_uuid() {
                return Err(ConfigError::NotYours.into());
            }
            Some(user)
        }
        _ => None,
    };
    if let Some(user) = cacheable {
        match super::cache::lookup(user, sees_api_keys()) {
            super::cache::Lookup::Hit(datum) => return Ok(Some(datum)),
            super::cache::Lookup::Miss(ticket) => {
                // Kept only when read by the direct path with a snapshot taken after the
                // ticket (see cache.rs); otherwise answered as below, not kept.
                if let Some(layers) = super::direct::layers_fresh(user) {
                    let Some(datum) = Doc(finish(layers, Some(user))?).into_datum() else { return Ok(None) };
                    super::cache::store(ticket, datum);
                    return Ok(Some(JsonbDatum(datum)));
                }
            }
            super::cache::Lookup::Off => {}
        }
    }
    Ok(Doc(resolve(user_id)?).into_datum().map(JsonbDatum))
}

#[pg_extern(stable)]
pub fn effective_ai_config(user_id: Option<pgrx::Uuid>) -> Result<Option<JsonbDatum>, ErrorReport> {
    resolve_jsonb(user_id)
}

/// Seed name (CONTRACT §4).
#[pg_extern(stable)]
pub fn get_effective_ai_config(p_user_id: Option<pgrx::Uuid>) -> Result<Option<JsonbDatum>, ErrorReport> {
    resolve_jsonb(p_user_id)
}
