//! The security suite (issue #13): every test here is an attack by a role that is not a
//! superuser — a `steward_admin` member owning a schema, the service role, two signed-in
//! users, a role with CREATE on one schema — and asserts both the SQLSTATE of the refusal
//! and that nothing changed (role attributes, catalog rows, other users' rows, the server's
//! start time).  Each family of attacks has its own module under `tests/security/`.
//!
//! The suite uses a database of its own (`steward_sec`), so its roles, grants and hostile
//! objects never meet the other client tests.

mod common;

use std::sync::OnceLock;

use postgres::Client;

pub const SEC_DB: &str = "steward_sec";
pub const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
pub const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
pub const ALICE_CLAIMS: &str = r#"{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}"#;
pub const BOB_CLAIMS: &str = r#"{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}"#;

/// A connection to the suite's database as `user` (the test server trusts local logins).
pub fn connect_as(user: &str) -> Client {
    common::connect(SEC_DB, user)
}

/// Create the suite's database once per test process: the extension, Supabase's roles, the
/// facade and the application's tables in public, and the attacker roles.
pub fn sec_setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The shared roles (anon, authenticated, service_role, authenticator) come from here.
        common::setup();
        let mut root = common::connect("postgres", "postgres");
        root.batch_execute(&format!("DROP DATABASE IF EXISTS {SEC_DB} WITH (FORCE)")).expect("drop db");
        root.batch_execute(&format!("CREATE DATABASE {SEC_DB}")).expect("create db");
        root.batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_admin') THEN CREATE ROLE sec_admin LOGIN; END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_service') THEN CREATE ROLE sec_service LOGIN; END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sec_creator') THEN CREATE ROLE sec_creator LOGIN; END IF;
             END $$;
             ALTER ROLE sec_admin NOSUPERUSER NOCREATEROLE NOCREATEDB;
             ALTER ROLE sec_service NOSUPERUSER NOCREATEROLE NOCREATEDB;
             ALTER ROLE sec_creator NOSUPERUSER NOCREATEROLE NOCREATEDB;",
        )
        .expect("attacker roles");
        let mut db = connect_as("postgres");
        db.batch_execute(
            "CREATE EXTENSION pg_steward;
             CREATE EXTENSION IF NOT EXISTS pgstattuple;
             GRANT steward_admin TO sec_admin;
             GRANT service_role TO sec_service;
             SELECT steward.install_train_schema('public');
             SELECT steward.install_rpc_facade('public');
             GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
             CREATE SCHEMA sec_admin_schema AUTHORIZATION sec_admin;
             CREATE SCHEMA sec_open;
             GRANT USAGE, CREATE ON SCHEMA sec_open TO sec_creator;
             -- Backups and restores in this suite touch only the suite's own tables.
             DELETE FROM steward.config_tables;
             -- No peak window (non-concurrent REINDEX and VACUUM FULL are refused 9-17 server
             -- time by default): the suite must not depend on the time of day it runs.
             SELECT steward.set_setting('maintenancePeakStartHour', '0');
             SELECT steward.set_setting('maintenancePeakEndHour', '0');",
        )
        .expect("extension, facade, application tables and schemas");
    });
}

/// Whether `role` is a superuser now (the first thing every escalation attempt is checked by).
pub fn is_superuser(db: &mut Client, role: &str) -> bool {
    db.query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1", &[&role])
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false)
}

/// A connection opened before an attack and used after it: a crashing backend makes the
/// postmaster terminate every other backend, so this one failing means the attack crashed one.
pub fn witness() -> Client {
    connect_as("postgres")
}

/// Whether the witness connection survived (see `witness`).
pub fn survived(witness: &mut Client) -> bool {
    witness.simple_query("SELECT 1").is_ok()
}

#[path = "security/privilege.rs"]
mod privilege;

#[path = "security/audit.rs"]
mod audit;

#[path = "security/install.rs"]
mod install;

#[path = "security/jsonb.rs"]
mod jsonb;

#[path = "security/grants.rs"]
mod grants;

#[path = "security/migrate.rs"]
mod migrate;

#[path = "security/alerts.rs"]
mod alerts;

#[path = "security/ai_usage.rs"]
mod ai_usage;

#[path = "security/ai_budget.rs"]
mod ai_budget;
