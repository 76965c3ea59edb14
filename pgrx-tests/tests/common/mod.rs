//! Connecting the way PostgREST does: one login role, then per request
//! `SET LOCAL ROLE <jwt role>` and `request.jwt.claims` / `request.headers` set locally.

use std::sync::OnceLock;

use postgres::{Client, NoTls, Transaction};

pub const DB: &str = "steward_it";

/// The server `scripts/test.sh` started (host, port) — or whatever PG_STEWARD_TEST_* says.
fn base() -> String {
    let host = std::env::var("PG_STEWARD_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PG_STEWARD_TEST_PORT").unwrap_or_else(|_| "25429".into());
    format!("host={host} port={port}")
}

pub fn connect(db: &str, user: &str) -> Client {
    let dsn = format!("{} dbname={db} user={user}", base());
    Client::connect(&dsn, NoTls).unwrap_or_else(|e| panic!("cannot connect with '{dsn}': {e} (run scripts/test.sh)"))
}

/// Create the test database once per test process: the extension, Supabase's roles, a
/// PostgREST-like login role, the facade in public.
pub fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let mut admin = connect("postgres", "postgres");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).expect("drop db");
        admin.batch_execute(&format!("CREATE DATABASE {DB}")).expect("create db");
        admin
            .batch_execute(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
                     CREATE ROLE authenticator LOGIN NOINHERIT;
                   END IF;
                 END $$;
                 GRANT anon, authenticated, service_role TO authenticator;",
            )
            .expect("roles");
        let mut db = connect(DB, "postgres");
        db.batch_execute(
            "CREATE EXTENSION pg_steward;
             CREATE EXTENSION IF NOT EXISTS pgstattuple;
             SELECT steward.install_rpc_facade('public');
             GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;",
        )
        .expect("extension and facade");
    });
}

/// Run `f` in a transaction as PostgREST would for a request made with `role` and `claims`.
pub fn as_role<T>(
    client: &mut Client,
    role: &str,
    claims: &str,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    let mut tx = client.transaction()?;
    // The role name is one of our fixed test roles, never input.
    tx.batch_execute(&format!("SET LOCAL ROLE {role}"))?;
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims])?;
    tx.execute(
        "SELECT set_config('request.headers', $1, true)",
        &[&r#"{"user-agent": "supabase-js/2", "x-forwarded-for": "203.0.113.7"}"#],
    )?;
    let out = f(&mut tx);
    tx.rollback()?;
    out
}

pub fn sqlstate(err: &postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {err}"))
}

pub const SERVICE_CLAIMS: &str = r#"{"role": "service_role"}"#;
pub const USER_CLAIMS: &str = r#"{"sub": "6f1d2c1e-1111-4a4a-9999-000000000001", "role": "authenticated"}"#;
pub const ANON_CLAIMS: &str = r#"{"role": "anon"}"#;
