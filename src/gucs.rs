//! pg_steward's settings that are switches, registered once when the library loads
//! (`_PG_init`) as typed PostgreSQL GUCs: `SET`, `ALTER ROLE … SET`, `ALTER DATABASE … SET`
//! and `postgresql.conf` all work, and a value that is not a boolean is refused by PostgreSQL
//! itself instead of being parsed by hand in several places.
//!
//! Per-request values that are not switches (`steward.change_reason`, `steward.rollback_of`,
//! set with `set_config(…, true)` around one change) stay free-form placeholders, and the
//! prefix is not reserved, so those keep working as before.
//!
//! The thresholds an administrator tunes at run time live in `steward.settings` (one row per
//! key, validated by `steward.set_setting`), not here: they are data that the report and the
//! alert rules read in SQL, and they are dumped with the database.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `steward.effective_config_cache` (default on): keep effective AI configurations per
/// connection until a layer changes (src/config/cache.rs).
pub static EFFECTIVE_CONFIG_CACHE: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `steward.effective_config_direct` (default on): read the configuration layers with direct
/// index probes instead of SQL where that applies (src/config/direct.rs).
pub static EFFECTIVE_CONFIG_DIRECT: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `steward.audit_notify` (default on): announce every audited change with NOTIFY on the
/// `steward_config_changes` channel (src/audit/mod.rs).
pub static AUDIT_NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Register every switch.  Called once per process by `_PG_init`.
pub fn init() {
    GucRegistry::define_bool_guc(
        c"steward.effective_config_cache",
        c"Keep effective AI configurations per connection until a configuration layer changes.",
        c"Off: every call resolves the layers again (the answers are the same; only slower).",
        &EFFECTIVE_CONFIG_CACHE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steward.effective_config_direct",
        c"Read configuration layers with direct index probes where that applies.",
        c"Off: always read them through SQL (e.g. with custom row-level security policies).",
        &EFFECTIVE_CONFIG_DIRECT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steward.audit_notify",
        c"Announce every audited configuration change with NOTIFY.",
        c"Off silences the announcements, e.g. for bulk loads nobody listens to.",
        &AUDIT_NOTIFY,
        GucContext::Userset,
        GucFlags::default(),
    );
}
