//! `#[pg_test]`s of the API-key vault's owner binding, server-chosen configuration ids and the
//! installers' refusals (issue #13, families 3 and 5, and the `$body$` of 8).  Each test runs
//! as the superuser inside its own transaction; the roles and schemas it creates disappear
//! with it.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// `q` run in a subtransaction (as `role`, when given): "ok" or the SQLSTATE it failed with.
    fn sqlstate_as(role: Option<&str>, q: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN
                 IF r IS NOT NULL THEN EXECUTE format('SET LOCAL ROLE %I', r); END IF;
                 EXECUTE q;
                 IF r IS NOT NULL THEN RESET ROLE; END IF;
                 RETURN 'ok';
             EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE;
             END $$",
        )
        .expect("helper");
        Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1, $2)", &[role.into(), q.into()])
            .expect("sqlstate")
            .unwrap_or_default()
    }

    fn sqlstate_of(q: &str) -> String {
        sqlstate_as(None, q)
    }

    fn text(q: &str) -> Option<String> {
        Spi::get_one::<String>(q).expect("query")
    }

    fn install_public() {
        Spi::run("SELECT steward.install_train_schema('public')").expect("install");
    }

    const ALICE: &str = "a11ce000-0000-4000-8000-0000000000a1";
    const BOB: &str = "b0b00000-0000-4000-8000-0000000000b2";
    const CAROL: &str = "c4401000-0000-4000-8000-0000000000c3";
    const ORG: &str = "0a900000-0000-4000-8000-0000000000f1";

    /// A token resolves only in its owner's configuration: BOB's key written by BOB resolves
    /// for BOB; the same token pasted into ALICE's row stays a token in ALICE's effective
    /// configuration; an organisation's key resolves for its member and not for a non-member
    /// who pasted its token.
    #[pg_test]
    fn tokens_resolve_only_for_their_owner() {
        install_public();
        Spi::run(&format!(
            r#"INSERT INTO public.ai_configurations (user_id, config_name, configuration)
               VALUES ('{BOB}', 'main', '{{"apiKeys": {{"primaryKey": "sk-bob-secret-000111"}}}}');
               INSERT INTO public.organizations (id, name) VALUES ('{ORG}', 'Org');
               INSERT INTO public.organization_members (organization_id, user_id) VALUES ('{ORG}', '{CAROL}');
               INSERT INTO public.ai_configurations (organization_id, config_name, configuration)
               VALUES ('{ORG}', 'org', '{{"apiKeys": {{"secondaryKey": "sk-org-secret-222333"}}}}');"#
        ))
        .expect("rows");
        let bob_token = text(&format!(
            "SELECT configuration #>> '{{apiKeys,primaryKey}}' FROM public.ai_configurations WHERE user_id = '{BOB}'"
        ))
        .expect("bob's token");
        assert!(crate::config::keys::is_token(&bob_token), "{bob_token}");
        let org_token = text(&format!(
            "SELECT configuration #>> '{{apiKeys,secondaryKey}}' FROM public.ai_configurations WHERE organization_id = '{ORG}'"
        ))
        .expect("org token");
        // ALICE pastes both tokens into her own row.
        Spi::run_with_args(
            &format!(
                "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
                 VALUES ('{ALICE}', 'main', jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', $1::text, 'secondaryKey', $2::text)))"
            ),
            &[bob_token.as_str().into(), org_token.as_str().into()],
        )
        .expect("alice's row");
        let bob_sees = text(&format!("SELECT steward.effective_ai_config('{BOB}') #>> '{{apiKeys,primaryKey}}'"));
        assert_eq!(bob_sees.as_deref(), Some("sk-bob-secret-000111"));
        let alice = Spi::get_one::<pgrx::JsonB>(&format!("SELECT steward.effective_ai_config('{ALICE}')"))
            .expect("alice")
            .expect("document")
            .0;
        let alice_text = alice.to_string();
        assert!(!alice_text.contains("sk-bob-secret"), "BOB's key resolved for ALICE: {alice_text}");
        assert!(!alice_text.contains("sk-org-secret"), "the organisation's key resolved for a non-member: {alice_text}");
        assert_eq!(alice["apiKeys"]["primaryKey"].as_str(), Some(bob_token.as_str()));
        let carol_sees = text(&format!("SELECT steward.effective_ai_config('{CAROL}') #>> '{{apiKeys,secondaryKey}}'"));
        assert_eq!(carol_sees.as_deref(), Some("sk-org-secret-222333"), "a member gets the organisation's key");
        // explain_ai_config and the two-argument reveal follow the same binding.
        let explained = text(&format!(
            "SELECT value #>> '{{}}' FROM steward.explain_ai_config('{ALICE}') WHERE path = 'apiKeys.primaryKey'"
        ));
        assert_eq!(explained.as_deref(), Some(bob_token.as_str()));
        let revealed = Spi::get_one_with_args::<String>(
            "SELECT steward._reveal_api_keys(jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', $1::text)), $2::uuid) #>> '{apiKeys,primaryKey}'",
            &[bob_token.as_str().into(), BOB.into()],
        )
        .expect("reveal");
        assert_eq!(revealed.as_deref(), Some("sk-bob-secret-000111"));
        // The vault holds one entry per owner; none for ALICE.
        let alice_entries = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM steward.api_key_vault WHERE owner_id = '{ALICE}'"
        ))
        .expect("count");
        assert_eq!(alice_entries, Some(0));
    }

    /// The owner kind is checked.
    #[pg_test]
    fn the_vault_helper_refuses_unknown_owner_kinds() {
        assert_eq!(
            sqlstate_of(&format!(
                "SELECT steward._vault_api_keys('{{\"apiKeys\": {{\"primaryKey\": \"sk-x-123456789\"}}}}', 'role', '{ALICE}')"
            )),
            "22023"
        );
        let nothing = Spi::get_one::<pgrx::JsonB>(&format!("SELECT steward._vault_api_keys('{{}}', 'user', '{ALICE}')")).expect("call");
        assert!(nothing.is_none());
    }

    /// An end user's INSERT never keeps a chosen id (unless it names her own visible row), and
    /// an UPDATE never changes it; the table owner keeps the ids it writes.
    #[pg_test]
    fn api_roles_get_server_chosen_ids() {
        // Supabase's end-user role (the test cluster has none; gone with the transaction).
        Spi::run(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
             END $$",
        )
        .expect("role");
        Spi::run("SELECT steward.refresh_grants()").expect("grants for the new role");
        install_public();
        let chosen = "11111111-2222-4333-8444-555555555555";
        Spi::run(&format!(
            "SET LOCAL ROLE authenticated;
             SELECT set_config('request.jwt.claims', '{{\"sub\": \"{ALICE}\", \"role\": \"authenticated\"}}', true);
             INSERT INTO public.user_preferences (id, user_id) VALUES ('{chosen}', '{ALICE}');
             INSERT INTO public.ai_configurations (id, user_id, config_name) VALUES ('{chosen}', '{ALICE}', 'x');"
        ))
        .expect("inserts as authenticated");
        let ids = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM (SELECT id FROM public.user_preferences UNION ALL SELECT id FROM public.ai_configurations) x WHERE id = '{chosen}'"
        ))
        .expect("count");
        assert_eq!(ids, Some(0), "a client-chosen id was kept");
        let own = text(&format!("SELECT id::text FROM public.ai_configurations WHERE user_id = '{ALICE}'")).expect("own id");
        Spi::run(&format!(
            "UPDATE public.ai_configurations SET id = '{chosen}', priority = 5 WHERE user_id = '{ALICE}';
             INSERT INTO public.ai_configurations (id, user_id, config_name) VALUES ('{own}', '{ALICE}', 'x')
             ON CONFLICT (id) DO UPDATE SET priority = 7;
             RESET ROLE;"
        ))
        .expect("update and upsert by own id");
        let after = text(&format!("SELECT id::text || ':' || priority FROM public.ai_configurations WHERE user_id = '{ALICE}'"));
        assert_eq!(after, Some(format!("{own}:7")));
        Spi::run(&format!("INSERT INTO public.user_preferences (id, user_id) VALUES ('{chosen}', '{BOB}')")).expect("owner insert");
        let kept = text(&format!("SELECT id::text FROM public.user_preferences WHERE user_id = '{BOB}'"));
        assert_eq!(kept.as_deref(), Some(chosen), "the table owner keeps its ids");
    }

    /// The installers refuse a schema the caller does not control and objects another role
    /// pre-created there — also for a superuser — and nothing of the attacker's runs.
    #[pg_test]
    fn installers_refuse_foreign_schemas_and_objects() {
        Spi::run(
            "CREATE ROLE steward_t_creator NOLOGIN;
             CREATE ROLE steward_t_admin NOLOGIN;
             GRANT steward_admin TO steward_t_admin;
             CREATE SCHEMA steward_t_open;
             GRANT USAGE, CREATE ON SCHEMA steward_t_open TO steward_t_creator;
             CREATE SCHEMA steward_t_mine AUTHORIZATION steward_t_admin;
             SET LOCAL ROLE steward_t_creator;
             CREATE TABLE steward_t_open.user_preferences (id uuid PRIMARY KEY, user_id uuid UNIQUE, preferences jsonb);
             CREATE FUNCTION steward_t_open.get_database_overview() RETURNS integer LANGUAGE sql AS 'SELECT 1';
             RESET ROLE;",
        )
        .expect("hostile objects");
        // The superuser owns the schema, but not the objects in it.
        assert_eq!(sqlstate_of("SELECT steward.install_train_schema('steward_t_open')"), "42501");
        assert_eq!(sqlstate_of("SELECT steward.install_rpc_facade('steward_t_open')"), "42501");
        // A steward_admin member does not control a schema the superuser owns.
        Spi::run("DROP TABLE steward_t_open.user_preferences; DROP FUNCTION steward_t_open.get_database_overview()").expect("drop");
        assert_eq!(
            sqlstate_as(Some("steward_t_admin"), "SELECT steward.install_rpc_facade('steward_t_open')"),
            "42501"
        );
        // The facade function stays unowned by the attacker: nothing was created.
        let created = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'steward_t_open'",
        )
        .expect("count");
        assert_eq!(created, Some(0));
        // A steward_admin member installs the facade into its own schema; everything belongs to it.
        assert_eq!(sqlstate_as(Some("steward_t_admin"), "SELECT steward.install_rpc_facade('steward_t_mine')"), "ok");
        let foreign = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'steward_t_mine' AND p.proowner <> 'steward_t_admin'::regrole",
        )
        .expect("count");
        assert_eq!(foreign, Some(0));
        let mine = Spi::get_one::<i64>(
            "SELECT count(*) FROM steward.facade_installed WHERE target_schema = 'steward_t_mine'",
        )
        .expect("count");
        assert!(mine.unwrap_or(0) > 10, "{mine:?}");
        assert_eq!(sqlstate_as(Some("steward_t_admin"), "SELECT steward.drop_rpc_facade('steward_t_mine')"), "ok");
    }

    /// A steward_admin member installs the configuration tables into its own schema when
    /// nothing is installed yet, but cannot move an installation the superuser made.
    #[pg_test]
    fn a_plain_admin_installs_into_its_own_schema_but_cannot_move_anothers() {
        install_public();
        Spi::run(
            "CREATE ROLE steward_t_admin2 NOLOGIN;
             GRANT steward_admin TO steward_t_admin2;
             CREATE SCHEMA steward_t_mine2 AUTHORIZATION steward_t_admin2;",
        )
        .expect("setup");
        assert_eq!(
            sqlstate_as(Some("steward_t_admin2"), "SELECT steward.install_train_schema('steward_t_mine2')"),
            "42501"
        );
        assert_eq!(text("SELECT schema_name::text FROM steward.train_schema").as_deref(), Some("public"));
        // Called directly, the privileged step checks the same.
        assert_eq!(sqlstate_as(Some("steward_t_admin2"), "SELECT steward._set_train_schema('public')"), "42501");
        Spi::run("RESET ROLE; DELETE FROM steward.train_schema").expect("reset");
        assert_eq!(
            sqlstate_as(Some("steward_t_admin2"), "SELECT steward.install_train_schema('steward_t_mine2')"),
            "ok"
        );
        assert_eq!(text("SELECT schema_name::text FROM steward.train_schema").as_deref(), Some("steward_t_mine2"));
        let foreign = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'steward_t_mine2' AND c.relowner <> 'steward_t_admin2'::regrole",
        )
        .expect("count");
        assert_eq!(foreign, Some(0));
    }

    /// A schema name with `$body$` in it is only ever a quoted identifier: the installation
    /// works and the SQL in the name never runs.
    #[pg_test]
    fn a_dollar_quote_in_the_schema_name_stays_a_name() {
        let schema = "e$body$;CREATE ROLE steward_t_evil SUPERUSER;$body$";
        Spi::run_with_args("SELECT pg_catalog.set_config('steward.t_schema', $1, true)", &[schema.into()]).expect("name");
        Spi::run("DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I', current_setting('steward.t_schema')); END $$").expect("schema");
        Spi::run("SELECT steward.install_train_schema(current_setting('steward.t_schema'))").expect("install");
        Spi::run("SELECT steward.install_rpc_facade(current_setting('steward.t_schema'))").expect("facade");
        let evil = Spi::get_one::<i64>("SELECT count(*) FROM pg_roles WHERE rolname = 'steward_t_evil'").expect("count");
        assert_eq!(evil, Some(0));
        let rows = Spi::get_one::<i64>(&format!("SELECT count(*) FROM steward._ai_config_rows('{ALICE}') r WHERE r.source <> 'database'"))
            .expect("rows");
        assert_eq!(rows, Some(0));
        let body = text("SELECT prosrc FROM pg_proc WHERE oid = 'steward._ai_config_rows(uuid)'::regprocedure").expect("body");
        assert!(body.contains("\"e$body$;CREATE ROLE steward_t_evil SUPERUSER;$body$\".ai_configurations"), "{body}");
    }

    /// With auth.users present, the signup trigger runs as the owner of the tables (never the
    /// extension's owner) and adds the new user's preferences row.
    #[pg_test]
    fn new_users_get_default_preferences() {
        Spi::run("CREATE SCHEMA auth; CREATE TABLE auth.users (id uuid PRIMARY KEY, encrypted_password text)").expect("auth");
        install_public();
        Spi::run(&format!("INSERT INTO auth.users (id) VALUES ('{CAROL}')")).expect("signup");
        let rows = Spi::get_one::<i64>(&format!("SELECT count(*) FROM public.user_preferences WHERE user_id = '{CAROL}'")).expect("count");
        assert_eq!(rows, Some(1));
        let definer = Spi::get_one::<bool>(
            "SELECT prosecdef AND proowner = (SELECT relowner FROM pg_class WHERE oid = 'public.user_preferences'::regclass)
               FROM pg_proc WHERE oid = 'public.steward_default_preferences()'::regprocedure",
        )
        .expect("function");
        assert_eq!(definer, Some(true));
        let guard_definer = Spi::get_one::<bool>("SELECT prosecdef FROM pg_proc WHERE oid = 'steward._config_row_guard()'::regprocedure")
            .expect("guard");
        assert_eq!(guard_definer, Some(false));
    }
}
