//! Catalog invariants behind the security model: checked over every function the extension
//! installs, so a function added later without its grant, its pinned search_path or with
//! PUBLIC access fails here.

use crate::{connect_as, sec_setup};

/// Every public steward function (name without "_") is executable by a plain steward_admin
/// member and by the service role — what the README says admins may call, they can call.
#[test]
fn a_plain_admin_can_call_every_public_function() {
    sec_setup();
    let mut root = connect_as("postgres");
    let missing: Vec<String> = root
        .query(
            "SELECT p.oid::regprocedure::text, r.rolname::text
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              CROSS JOIN (VALUES ('sec_admin'), ('service_role')) r(rolname)
              WHERE n.nspname = 'steward' AND p.proname !~ '^_'
                AND NOT (r.rolname = 'service_role' AND p.proname IN ('install_rpc_facade', 'drop_rpc_facade', 'refresh_grants'))
                AND NOT has_function_privilege(r.rolname, p.oid, 'EXECUTE')
              ORDER BY 1",
            &[],
        )
        .expect("privileges")
        .iter()
        .map(|r| format!("{} for {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(missing.is_empty(), "not executable: {missing:?}");
}

/// Nothing in steward is executable by PUBLIC, and the functions that take a role or run as
/// an owner are executable by nobody but the extension's owner.
#[test]
fn nothing_is_public_and_the_owner_only_helpers_stay_so() {
    sec_setup();
    let mut root = connect_as("postgres");
    let public: Vec<String> = root
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'steward'
                AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))",
            &[],
        )
        .expect("acl")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(public.is_empty(), "executable by PUBLIC: {public:?}");
    for f in [
        "steward._caller(bigint,text)",
        "steward._check_privileges(oid,oid,text[],text)",
        "steward._exec_as_owner(oid,text,text[])",
        "steward._select_as_owner(oid,text,text[])",
        "steward._maintenance_submit(jsonb,boolean)",
    ] {
        for role in ["sec_admin", "service_role", "authenticated", "pg_monitor", "sec_creator"] {
            let can: bool = root
                .query_one("SELECT has_function_privilege($1, $2, 'EXECUTE')", &[&role, &f])
                .expect("privilege")
                .get(0);
            assert!(!can, "{role} may execute {f}");
        }
    }
}

/// Every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp.
#[test]
fn every_security_definer_function_pins_its_search_path() {
    sec_setup();
    let mut root = connect_as("postgres");
    let unpinned: Vec<String> = root
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'steward' AND p.prosecdef
                AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)",
            &[],
        )
        .expect("definers")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(unpinned.is_empty(), "SECURITY DEFINER without search_path = pg_catalog, pg_temp: {unpinned:?}");
}

/// The entry points this stop added or changed that are for admins only are not executable by
/// end users or anonymous callers (through PostgREST they would get 42501).
#[test]
fn end_users_cannot_call_admin_entry_points() {
    sec_setup();
    let mut root = connect_as("postgres");
    for f in [
        "steward.replication_health()",
        "steward.audit_checkpoint()",
        "steward.audit_verify(jsonb)",
        "steward.run_maintenance(text,text,text,boolean,boolean,boolean,boolean,boolean,boolean,boolean)",
        "steward.retention_set(regclass,name,interval,text,regclass,integer)",
        "steward.config_restore(uuid,boolean)",
        "steward.table_bloat_exact(regclass)",
        "steward.slow_queries(integer,integer)",
        "steward._enter()",
    ] {
        for role in ["authenticated", "anon", "sec_creator"] {
            let can: bool = root
                .query_one("SELECT has_function_privilege($1, $2, 'EXECUTE')", &[&role, &f])
                .expect("privilege")
                .get(0);
            assert!(!can, "{role} may execute {f}");
        }
    }
}
