//! API keys kept out of the configuration documents.
//!
//! A key written into `apiKeys.primaryKey` / `apiKeys.secondaryKey` is moved at write time
//! (the row guard trigger) into `steward.api_key_vault`, readable by the service role only,
//! and the document keeps a *token* in its place: the usual mask (`••••` and the last four
//! characters) followed by `#` and 16 hex digits of the key's SHA-256.  So a user reading
//! their own row, an admin reading the audit log, a backup, a diff or a rollback only ever
//! handles the token; the effective configuration resolves tokens back to keys for the
//! service role alone and shows everyone else the mask.  A rollback restores a token, which
//! still resolves: vault entries are never removed.  Each entry is bound to the owner of the
//! row the key was written into (a user or an organisation), and a token resolves only in
//! the configuration of that user (or of a member of that organisation): a user who copies
//! another user's token into her own row gets nothing for it.

use pgrx::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::SpiContext;

/// A single-value look-up: no row is None (pgrx reports it as InvalidPosition).
fn optional<T>(r: Result<Option<T>, pgrx::spi::SpiError>) -> Result<Option<T>, pgrx::spi::SpiError> {
    match r {
        Err(pgrx::spi::SpiError::InvalidPosition) => Ok(None),
        other => other,
    }
}
use pgrx::pg_sys::panic::ErrorReport;

pub const KEY_FIELDS: [&str; 2] = ["primaryKey", "secondaryKey"];
const MASK: &str = "••••";
const HASH_DIGITS: usize = 16;

/// The mask shown for a key: `••••` and its last four characters (only `••••` for keys of
/// eight characters or fewer, where four would be half the key).
pub fn mask_of(key: &str) -> String {
    if key.chars().count() > 8 {
        let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{MASK}{tail}")
    } else {
        MASK.to_string()
    }
}

/// The token stored in a document in place of `key`.
pub fn token_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut token = mask_of(key);
    token.push('#');
    for byte in digest.iter().take(HASH_DIGITS / 2) {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

/// Whether a stored value is a token (as opposed to a key in clear, or a bare mask).
pub fn is_token(value: &str) -> bool {
    value.starts_with(MASK)
        && value.rsplit_once('#').is_some_and(|(_, hex)| hex.len() == HASH_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What anyone but the service role sees for a stored value: the mask.
pub fn masked(value: &str) -> String {
    if is_token(value) {
        value.rsplit_once('#').map(|(mask, _)| mask.to_string()).unwrap_or_else(|| MASK.to_string())
    } else {
        mask_of(value)
    }
}

/// The keys in clear in a document's `apiKeys`, with the field each is in.
pub fn clear_keys(doc: &Value) -> Vec<(&'static str, String)> {
    let Some(Value::Object(keys)) = doc.get("apiKeys") else { return Vec::new() };
    KEY_FIELDS
        .iter()
        .filter_map(|field| match keys.get(*field) {
            Some(Value::String(v)) if !v.is_empty() && !is_token(v) => Some((*field, v.clone())),
            _ => None,
        })
        .collect()
}

/// The tokens in a document's `apiKeys`, with the field each is in.
pub fn tokens(doc: &Value) -> Vec<(&'static str, String)> {
    let Some(Value::Object(keys)) = doc.get("apiKeys") else { return Vec::new() };
    KEY_FIELDS
        .iter()
        .filter_map(|field| match keys.get(*field) {
            Some(Value::String(v)) if is_token(v) => Some((*field, v.clone())),
            _ => None,
        })
        .collect()
}

fn set_key(doc: &mut Value, field: &str, value: String) {
    if let Some(Value::Object(keys)) = doc.get_mut("apiKeys") {
        keys.insert(field.to_string(), Value::String(value));
    }
}

/// Who a vault entry belongs to: the user or the organisation whose row held the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User(pgrx::Uuid),
    Organization(pgrx::Uuid),
}

impl Owner {
    /// `kind` as the row guard passes it ('user' / 'organization').
    pub fn parse(kind: &str, id: pgrx::Uuid) -> Option<Owner> {
        match kind {
            "user" => Some(Owner::User(id)),
            "organization" => Some(Owner::Organization(id)),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Owner::User(_) => "user",
            Owner::Organization(_) => "organization",
        }
    }

    fn id(self) -> pgrx::Uuid {
        match self {
            Owner::User(id) | Owner::Organization(id) => id,
        }
    }
}

/// Moves the document's keys in clear into the vault, bound to `owner`, and returns it with
/// tokens in their place; `None` when there is nothing to move.  Runs inside the SECURITY
/// DEFINER `steward._vault_api_keys` (it touches `steward.api_key_vault` only).
pub fn vault(doc: &Value, owner: Owner) -> Result<Option<Value>, ErrorReport> {
    let clear = clear_keys(doc);
    if clear.is_empty() {
        return Ok(None);
    }
    let mut out = doc.clone();
    for (field, key) in clear {
        let token = token_of(&key);
        Spi::run_with_args(
            "INSERT INTO steward.api_key_vault (token, owner_kind, owner_id, secret) VALUES ($1, $2, $3, $4)
             ON CONFLICT (token, owner_kind, owner_id) DO NOTHING",
            &[token.as_str().into(), owner.kind().into(), owner.id().into(), key.as_str().into()],
        )
        .ctx("the API key vault")?;
        set_key(&mut out, field, token);
    }
    Ok(Some(out))
}

/// The vault entry of `token` that `user` may have resolved: one bound to the user, or to an
/// organisation the user is a member of (in the installed schema's organization_members).
/// A token copied from another user's or organisation's row finds nothing.
fn lookup(token: &str, user: pgrx::Uuid) -> Result<Option<(String, bool)>, ErrorReport> {
    crate::common::privilege::with_pinned_search_path(|| lookup_pinned(token, user))
}

fn lookup_pinned(token: &str, user: pgrx::Uuid) -> Result<Option<(String, bool)>, ErrorReport> {
    let own = optional(crate::common::read_one::<String>(
        "SELECT v.secret FROM steward.api_key_vault v
          WHERE v.token OPERATOR(pg_catalog.=) $1 AND v.owner_kind OPERATOR(pg_catalog.=) 'user'
            AND v.owner_id OPERATOR(pg_catalog.=) $2",
        &[token.into(), user.into()],
    ))
    .ctx("the API key vault")?;
    if let Some(secret) = own {
        return Ok(Some((secret, true)));
    }
    // Organisation keys: the membership is read from the installed tables (schema name from
    // steward.train_schema, quoted by quote_ident; the values are bound parameters).
    let members = optional(crate::common::read_one::<String>(
        "SELECT pg_catalog.quote_ident(t.schema_name) OPERATOR(pg_catalog.||) '.organization_members' FROM steward.train_schema t",
        &[],
    ))
    .ctx("the API key vault")?;
    let Some(members) = members else { return Ok(None) };
    let query = format!(
        "SELECT v.secret FROM steward.api_key_vault v
          WHERE v.token OPERATOR(pg_catalog.=) $1 AND v.owner_kind OPERATOR(pg_catalog.=) 'organization'
            AND v.owner_id OPERATOR(pg_catalog.=) ANY (SELECT m.organization_id FROM {members} m
                                                      WHERE m.user_id OPERATOR(pg_catalog.=) $2)
          LIMIT 1"
    );
    let org = optional(crate::common::read_one::<String>(&query, &[token.into(), user.into()])).ctx("the API key vault")?;
    Ok(org.map(|secret| (secret, false)))
}

/// For the service role: tokens replaced by their keys where the vault holds them for `user`
/// (the user whose configuration this is, or one of that user's organisations); any other
/// token is left as it is — it shows only the mask and a hash.  Without a user, nothing
/// resolves.  For everyone else: every key and token masked.
pub fn reveal_or_mask(doc: &mut Value, sees_keys: bool, user: Option<pgrx::Uuid>) -> Result<(), ErrorReport> {
    if !sees_keys {
        super::merge::mask_api_keys(doc);
        return Ok(());
    }
    let Some(user) = user else { return Ok(()) };
    for (field, token) in tokens(doc) {
        let cache_key = (token.clone(), user);
        if let Some(secret) = REVEALED.with(|c| c.borrow().get(&cache_key).cloned()) {
            set_key(doc, field, secret);
            continue;
        }
        if let Some((secret, users_own)) = lookup(&token, user)? {
            // Only user-bound entries are kept: they never go stale (entries are never
            // changed or removed), whereas an organisation's key depends on a membership.
            if users_own {
                REVEALED.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= REVEALED_LIMIT {
                        c.clear();
                    }
                    c.insert(cache_key, secret.clone());
                });
            }
            set_key(doc, field, secret);
        }
    }
    Ok(())
}

const REVEALED_LIMIT: usize = 1024;

thread_local! {
    /// (token, user) pairs this backend has resolved for the service role from entries bound
    /// to that user.  Read only after the caller was found to be the service role
    /// (`reveal_or_mask`), so a connection that switches roles per request (PostgREST) never
    /// shows it to anyone else.
    static REVEALED: std::cell::RefCell<std::collections::HashMap<(String, pgrx::Uuid), String>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_carry_the_mask_and_a_hash() {
        let t = token_of("sk-ant-1234567890abcd");
        assert!(t.starts_with("••••abcd#"), "{t}");
        assert!(is_token(&t));
        assert_eq!(masked(&t), "••••abcd");
        assert_ne!(token_of("sk-ant-1234567890abcd"), token_of("sk-ant-0000000000abcd"));
        assert!(token_of("short").starts_with("••••#"));
        assert_eq!(masked(&token_of("short")), "••••");
        assert!(!is_token("••••abcd"));
        assert!(!is_token("sk-ant-1234#0123456789abcdef"));
        assert_eq!(masked("sk-ant-1234567890abcd"), "••••abcd");
    }

    #[test]
    fn only_keys_in_clear_are_moved() {
        let t = token_of("sk-old-key-000000");
        let doc = json!({"apiKeys": {"primaryKey": "sk-new-key-111111", "secondaryKey": t, "keyVersion": 2}});
        assert_eq!(clear_keys(&doc), vec![("primaryKey", "sk-new-key-111111".to_string())]);
        assert_eq!(tokens(&doc), vec![("secondaryKey", t)]);
        assert!(clear_keys(&json!({"apiKeys": {"primaryKey": ""}})).is_empty());
        assert!(clear_keys(&json!({"model": {}})).is_empty());
    }

    #[test]
    fn masking_hides_keys_and_tokens() {
        let mut doc = json!({"apiKeys": {"primaryKey": token_of("sk-ant-1234567890abcd"), "secondaryKey": "sk-clear-99999999", "keyVersion": 3}});
        crate::config::merge::mask_api_keys(&mut doc);
        assert_eq!(doc, json!({"apiKeys": {"primaryKey": "••••abcd", "secondaryKey": "••••9999", "keyVersion": 3}}));
    }
}
