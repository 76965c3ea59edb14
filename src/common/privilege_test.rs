use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::common::privilege::{caller_of, check, Privilege, PrivilegeError};

    fn role(name: &str) -> pg_sys::Oid {
        Spi::get_one_with_args::<pg_sys::Oid>("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1", &[name.into()])
            .ok()
            .flatten()
            .unwrap_or(pg_sys::Oid::INVALID)
    }

    fn rel(name: &str) -> pg_sys::Oid {
        Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regclass::oid", &[name.into()]).ok().flatten().unwrap_or(pg_sys::Oid::INVALID)
    }

    fn setup() {
        Spi::run(
            "CREATE ROLE priv_owner; CREATE ROLE priv_reader; CREATE ROLE priv_nobody;
             CREATE TABLE public.priv_t (id int PRIMARY KEY, at timestamptz);
             ALTER TABLE public.priv_t OWNER TO priv_owner;
             GRANT SELECT ON public.priv_t TO priv_reader;",
        )
        .expect("setup");
    }

    #[pg_test]
    fn the_caller_needs_each_privilege_itself() {
        setup();
        let t = rel("public.priv_t");
        // The owner holds everything, including maintain.
        assert!(check(role("priv_owner"), t, &[Privilege::Select, Privilege::Delete, Privilege::Maintain], "x").is_ok());
        // A reader may read, not delete, not maintain.
        assert!(check(role("priv_reader"), t, &[Privilege::Select], "x").is_ok());
        assert!(matches!(check(role("priv_reader"), t, &[Privilege::Delete], "x"), Err(PrivilegeError::Denied { .. })));
        assert!(matches!(check(role("priv_reader"), t, &[Privilege::Maintain], "x"), Err(PrivilegeError::Denied { .. })));
        assert!(matches!(check(role("priv_nobody"), t, &[Privilege::Select], "x"), Err(PrivilegeError::Denied { .. })));
        // The check answers with the owner: the work runs as that role.
        assert_eq!(check(role("priv_owner"), t, &[], "x").map(|x| x.owner).ok(), Some(role("priv_owner")));
    }

    /// PostgreSQL 17's MAINTAIN privilege and pg_maintain role give what ownership gives for
    /// maintenance, on the tables they cover, and nothing else (before 17: ownership only, above).
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    #[pg_test]
    fn maintain_grants_and_pg_maintain_count_on_17() {
        setup();
        Spi::run(
            "CREATE ROLE priv_maintainer; CREATE ROLE priv_maintain_all;
             GRANT MAINTAIN ON public.priv_t TO priv_maintainer;
             GRANT pg_maintain TO priv_maintain_all;
             CREATE TABLE public.priv_other (id int);",
        )
        .expect("grants");
        let (t, other) = (rel("public.priv_t"), rel("public.priv_other"));
        assert!(check(role("priv_maintainer"), t, &[Privilege::Maintain], "x").is_ok());
        // MAINTAIN is only MAINTAIN, and only on the table it was granted on.
        assert!(matches!(check(role("priv_maintainer"), t, &[Privilege::Select], "x"), Err(PrivilegeError::Denied { .. })));
        assert!(matches!(check(role("priv_maintainer"), other, &[Privilege::Maintain], "x"), Err(PrivilegeError::Denied { .. })));
        // pg_maintain covers every table, but not steward's own or the catalogs.
        for r in [t, other] {
            assert!(check(role("priv_maintain_all"), r, &[Privilege::Maintain], "x").is_ok());
            assert!(matches!(check(role("priv_maintain_all"), r, &[Privilege::Select], "x"), Err(PrivilegeError::Denied { .. })));
        }
        for name in ["pg_catalog.pg_authid", "steward.settings"] {
            let got = check(role("priv_maintain_all"), rel(name), &[Privilege::Maintain], "x");
            assert!(matches!(got, Err(PrivilegeError::Protected { .. })), "{name}: {got:?}");
        }
        // Revoked: gone at once (callers check again at run time).
        Spi::run("REVOKE MAINTAIN ON public.priv_t FROM priv_maintainer").expect("revoke");
        assert!(matches!(check(role("priv_maintainer"), t, &[Privilege::Maintain], "x"), Err(PrivilegeError::Denied { .. })));
    }

    #[pg_test]
    fn catalogs_and_steward_are_refused_to_non_superusers_even_with_grants() {
        setup();
        Spi::run("GRANT SELECT ON steward.settings TO priv_reader").expect("grant");
        for name in ["pg_catalog.pg_authid", "information_schema.sql_features", "steward.settings", "steward.api_key_vault"] {
            let got = check(role("priv_reader"), rel(name), &[Privilege::Select], "x");
            assert!(matches!(got, Err(PrivilegeError::Protected { .. })), "{name}: {got:?}");
        }
        // A superuser may.
        assert!(check(role("postgres"), rel("pg_catalog.pg_authid"), &[Privilege::Select], "x").is_ok());
    }

    #[pg_test]
    fn a_token_names_its_caller_once() {
        let token = Spi::get_one::<i64>("SELECT steward._enter()").ok().flatten().unwrap_or(0);
        // SAFETY: GetUserId reads a backend global set for the whole session; no pointer is involved.
        let me = unsafe { pg_sys::GetUserId() };
        assert_eq!(caller_of(token, "f").ok(), Some(me));
        // Taken: a second redemption, or a made-up token, is refused.
        assert!(matches!(caller_of(token, "f"), Err(PrivilegeError::NoCaller(_))));
        assert!(matches!(caller_of(token ^ 1, "f"), Err(PrivilegeError::NoCaller(_))));
    }

    #[pg_test]
    fn enter_records_the_role_in_effect_not_the_definer() {
        // Under SET ROLE, _enter() records that role.
        Spi::run("CREATE ROLE priv_caller; GRANT EXECUTE ON FUNCTION steward._enter() TO priv_caller; GRANT USAGE ON SCHEMA steward TO priv_caller")
            .expect("role");
        Spi::run("SET ROLE priv_caller").expect("set role");
        let token = Spi::get_one::<i64>("SELECT steward._enter()").ok().flatten().unwrap_or(0);
        Spi::run("RESET ROLE").expect("reset");
        assert_eq!(caller_of(token, "f").ok(), Some(role("priv_caller")));
    }

    #[pg_test]
    fn statements_run_as_the_owner_in_a_restricted_operation() {
        setup();
        // A trigger of the owner's records who it ran as and whether it could create a temporary
        // table (refused only inside a security-restricted operation).
        Spi::run(
            "CREATE TABLE public.priv_seen (who text, restricted boolean);
             ALTER TABLE public.priv_seen OWNER TO priv_owner;
             CREATE FUNCTION public.priv_trg() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 BEGIN
                     CREATE TEMP TABLE priv_tmp (x int);
                     INSERT INTO public.priv_seen VALUES (current_user, false);
                 EXCEPTION WHEN OTHERS THEN
                     INSERT INTO public.priv_seen VALUES (current_user, true);
                 END;
                 RETURN OLD;
             END $$;
             ALTER FUNCTION public.priv_trg() OWNER TO priv_owner;
             CREATE TRIGGER priv_trg BEFORE DELETE ON public.priv_t FOR EACH ROW EXECUTE FUNCTION public.priv_trg();
             INSERT INTO public.priv_t VALUES (1, now() - interval '2 days'), (2, now());",
        )
        .expect("trigger");
        let n = Spi::get_one::<i64>(
            "SELECT steward._exec_as_owner('public.priv_t'::regclass,
                 'DELETE FROM public.priv_t WHERE at < $1::pg_catalog.timestamptz', ARRAY[(now() - interval '1 day')::text])",
        )
        .ok()
        .flatten();
        assert_eq!(n, Some(1));
        let seen = Spi::get_two::<String, bool>("SELECT who, restricted FROM public.priv_seen").expect("seen");
        assert_eq!(seen, (Some("priv_owner".into()), Some(true)));
        // Back to ourselves, with our search_path.
        assert_eq!(Spi::get_one::<String>("SELECT current_user::text").ok().flatten().as_deref(), Some("postgres"));
    }
}
