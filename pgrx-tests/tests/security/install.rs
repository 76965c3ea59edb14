//! Installers, the row guard, the signup trigger, configuration ids and API-key tokens
//! (issue #13, families 3 and 5, and the `$body$` of 8).
//!
//! * a role with only CREATE on a schema pre-creates the application's table (with a default
//!   and a trigger that would make it a superuser) and a facade function there: the
//!   installers refuse the schema (42501), for a superuser too, and nothing of hers runs;
//! * a plain `steward_admin` member installs the facade into a schema she owns, but cannot
//!   move the configuration tables everyone reads into her schema (42501);
//! * a schema name with `$body$` in it stays a name;
//! * an end user cannot choose configuration ids (also not another user's);
//! * a token copied from another user's row resolves to nothing for the service.

use crate::common::*;

const HOSTILE: &str = "
    CREATE OR REPLACE FUNCTION sec_open.steward_escalate() RETURNS uuid LANGUAGE plpgsql AS $$
    BEGIN
        ALTER ROLE sec_creator SUPERUSER;
        RETURN pg_catalog.gen_random_uuid();
    END $$;
    CREATE OR REPLACE FUNCTION sec_open.steward_escalate_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        ALTER ROLE sec_creator SUPERUSER;
        RETURN NEW;
    END $$;
    CREATE TABLE IF NOT EXISTS sec_open.user_preferences (
        id uuid PRIMARY KEY DEFAULT sec_open.steward_escalate(),
        user_id uuid NOT NULL UNIQUE,
        preferences jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now());
    CREATE OR REPLACE TRIGGER escalate BEFORE INSERT OR UPDATE ON sec_open.user_preferences
        FOR EACH ROW EXECUTE FUNCTION sec_open.steward_escalate_trigger();
    GRANT ALL ON sec_open.user_preferences TO PUBLIC;
    CREATE OR REPLACE FUNCTION sec_open.get_database_overview() RETURNS SETOF record LANGUAGE plpgsql AS $$
    BEGIN
        ALTER ROLE sec_creator SUPERUSER;
    END $$;";

/// What the attacker's objects look like in the catalogs: owner of the facade function, its
/// ACL, the triggers on her table, where the configuration tables are installed.
fn hostile_state(db: &mut postgres::Client) -> (String, Option<String>, i64, Option<String>) {
    let row = db
        .query_one(
            "SELECT pg_get_userbyid(p.proowner)::text, p.proacl::text,
                    (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = 'sec_open.user_preferences'::regclass),
                    (SELECT schema_name::text FROM steward.train_schema)
               FROM pg_proc p WHERE p.oid = 'sec_open.get_database_overview()'::regprocedure",
            &[],
        )
        .expect("catalog state");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[test]
fn installers_refuse_a_schema_with_objects_another_role_created() {
    crate::sec_setup();
    let mut creator = crate::connect_as("sec_creator");
    creator.batch_execute(HOSTILE).expect("the attacker's objects");
    let mut root = crate::connect_as("postgres");
    let before = hostile_state(&mut root);
    assert_eq!(before.0, "sec_creator");
    let mut w = crate::witness();

    // The superuser: the schema is its own, the objects in it are not.
    for call in ["SELECT steward.install_train_schema('sec_open')", "SELECT steward.install_rpc_facade('sec_open')"] {
        let err = root.batch_execute(call).expect_err(call);
        assert_eq!(sqlstate(&err), "42501", "{call}: {err:?}");
        let detail = err.as_db_error().and_then(|e| e.detail()).unwrap_or_default().to_string();
        assert!(detail.contains("sec_creator"), "DETAIL names the owner: {detail}");
    }
    // A steward_admin member controls neither the schema nor the objects.
    let mut admin = crate::connect_as("sec_admin");
    for call in ["SELECT steward.install_train_schema('sec_open')", "SELECT steward.install_rpc_facade('sec_open')"] {
        let err = admin.batch_execute(call).expect_err(call);
        assert_eq!(sqlstate(&err), "42501", "{call}: {err:?}");
    }
    // The attacker herself (CREATE on the schema, not its owner).
    let err = creator.batch_execute("SELECT steward.install_rpc_facade('sec_open')").expect_err("creator");
    assert_eq!(sqlstate(&err), "42501");

    assert!(crate::survived(&mut w));
    assert!(!crate::is_superuser(&mut root, "sec_creator"), "the attacker became a superuser");
    let after = hostile_state(&mut root);
    assert_eq!(after, before, "the attacker's objects were reused, replaced or granted");
    assert_eq!(after.3.as_deref(), Some("public"));
    let adopted: i64 = root
        .query_one("SELECT count(*) FROM steward.facade_installed WHERE target_schema = 'sec_open'", &[])
        .expect("facade record")
        .get(0);
    assert_eq!(adopted, 0);
}

#[test]
fn a_plain_admin_installs_the_facade_into_her_schema_but_cannot_move_the_tables() {
    crate::sec_setup();
    let mut admin = crate::connect_as("sec_admin");
    let mut root = crate::connect_as("postgres");
    let n: i32 = admin
        .query_one("SELECT steward.install_rpc_facade('sec_admin_schema')", &[])
        .expect("a steward_admin member installs the facade into her own schema")
        .get(0);
    assert!(n > 10, "{n}");
    let foreign: i64 = root
        .query_one(
            "SELECT (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'sec_admin_schema'::regnamespace AND p.proowner <> 'sec_admin'::regrole)
                  + (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'sec_admin_schema'::regnamespace AND c.relowner <> 'sec_admin'::regrole)",
            &[],
        )
        .expect("owners")
        .get(0);
    assert_eq!(foreign, 0, "everything the installer created belongs to the caller");

    // Moving everyone's configuration into her schema: refused, nothing changed.
    let err = admin.batch_execute("SELECT steward.install_train_schema('sec_admin_schema')").expect_err("move");
    assert_eq!(sqlstate(&err), "42501", "{err:?}");
    // Directly: refused too (there are no tables of hers to point at: 42P01; were there any,
    // 42501 — either way nothing moves).
    let err = admin.batch_execute("SELECT steward._set_train_schema('sec_admin_schema')").expect_err("direct");
    assert!(["42501", "42P01"].contains(&sqlstate(&err).as_str()), "{err:?}");
    let installed: String = root.query_one("SELECT schema_name::text FROM steward.train_schema", &[]).expect("pointer").get(0);
    assert_eq!(installed, "public");
    assert!(!crate::is_superuser(&mut root, "sec_admin"));
    admin.batch_execute("SELECT steward.drop_rpc_facade('sec_admin_schema')").expect("drop her facade");
}

#[test]
fn a_dollar_quote_in_a_schema_name_stays_a_name() {
    crate::sec_setup();
    let mut root = crate::connect_as("postgres");
    let mut w = crate::witness();
    let schema = "s$body$;ALTER ROLE sec_creator SUPERUSER;$body$";
    let mut tx = root.transaction().expect("begin");
    tx.execute("SELECT set_config('steward.t_schema', $1, true)", &[&schema]).expect("name");
    tx.batch_execute(
        "DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I AUTHORIZATION sec_admin', current_setting('steward.t_schema')); END $$;",
    )
    .expect("schema");
    // The superuser installs the tables (and so regenerates _ai_config_rows) and the facade.
    tx.batch_execute(
        "SELECT steward.install_train_schema(current_setting('steward.t_schema'));
         SELECT steward.install_rpc_facade(current_setting('steward.t_schema'));",
    )
    .expect("install into the odd schema");
    let superuser: bool = tx
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = 'sec_creator'", &[])
        .expect("role")
        .get(0);
    assert!(!superuser, "the schema name ran as SQL");
    let user_rows: i64 = tx
        .query_one("SELECT count(*) FROM steward._ai_config_rows($1::text::uuid) r WHERE r.source <> 'database'", &[&crate::ALICE])
        .expect("the generated function works")
        .get(0);
    assert_eq!(user_rows, 0, "the new (empty) tables are read");
    tx.rollback().expect("rollback");
    assert!(crate::survived(&mut w));
    assert!(!crate::is_superuser(&mut root, "sec_creator"));
}

#[test]
fn end_users_cannot_choose_configuration_ids() {
    crate::sec_setup();
    let mut root = crate::connect_as("postgres");
    // BOB's configuration (as the service would write it).
    root.batch_execute(&format!(
        "INSERT INTO public.ai_configurations (user_id, config_name, configuration)
         VALUES ('{}', 'sec_ids', '{{\"model\": {{\"topP\": 0.25}}}}') ON CONFLICT DO NOTHING",
        crate::BOB
    ))
    .expect("bob's row");
    let bob_id: String = root
        .query_one(
            "SELECT id::text FROM public.ai_configurations WHERE user_id = $1::text::uuid AND config_name = 'sec_ids'",
            &[&crate::BOB],
        )
        .expect("bob's id")
        .get(0);
    let chosen = "5ec00000-0000-4000-8000-00000000c0de";
    let mut c = crate::connect_as("authenticator");
    let (pref_id, own_id, stolen_id, updated_id): (String, String, String, String) =
        as_role(&mut c, "authenticated", crate::ALICE_CLAIMS, |tx| {
            let p: String = tx
                .query_one(
                    "INSERT INTO public.user_preferences (id, user_id) VALUES ($1::text::uuid, $2::text::uuid)
                     ON CONFLICT (user_id) DO UPDATE SET preferences = EXCLUDED.preferences RETURNING id::text",
                    &[&chosen, &crate::ALICE],
                )?
                .get(0);
            let own: String = tx
                .query_one(
                    "INSERT INTO public.ai_configurations (id, user_id, config_name) VALUES ($1::text::uuid, $2::text::uuid, 'sec_ids_a')
                     RETURNING id::text",
                    &[&chosen, &crate::ALICE],
                )?
                .get(0);
            // Another user's configuration id: a new id, BOB's row untouched.
            let stolen: String = tx
                .query_one(
                    "INSERT INTO public.ai_configurations (id, user_id, config_name) VALUES ($1::text::uuid, $2::text::uuid, 'sec_ids_b')
                     RETURNING id::text",
                    &[&bob_id, &crate::ALICE],
                )?
                .get(0);
            // An UPDATE cannot set it either.
            let updated: String = tx
                .query_one(
                    "UPDATE public.ai_configurations SET id = $1::text::uuid WHERE user_id = $2::text::uuid AND config_name = 'sec_ids_a'
                     RETURNING id::text",
                    &[&chosen, &crate::ALICE],
                )?
                .get(0);
            Ok((p, own, stolen, updated))
        })
        .expect("ALICE's writes");
    assert_ne!(pref_id, chosen);
    assert_ne!(own_id, chosen);
    assert_ne!(stolen_id, bob_id);
    assert_eq!(updated_id, own_id, "an update changed the id");
    // Nothing changed for BOB.
    let bob_rows: i64 = root
        .query_one(
            "SELECT count(*) FROM public.ai_configurations WHERE id = $1::text::uuid AND user_id = $2::text::uuid",
            &[&bob_id, &crate::BOB],
        )
        .expect("bob")
        .get(0);
    assert_eq!(bob_rows, 1);
}

#[test]
fn a_copied_api_key_token_does_not_resolve_for_another_user() {
    crate::sec_setup();
    let mut c = crate::connect_as("authenticator");
    let mut tx = c.transaction().expect("begin");
    // BOB stores his key; his row keeps a token.
    tx.batch_execute("SET LOCAL ROLE authenticated").expect("role");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&crate::BOB_CLAIMS]).expect("bob");
    tx.query_one(
        "SELECT public.upsert_ai_config('sec_keys', '{\"apiKeys\": {\"primaryKey\": \"sk-ant-bob-only-4242\"}}', 1000)",
        &[],
    )
    .expect("bob's key");
    let token: String = tx
        .query_one(
            "SELECT configuration #>> '{apiKeys,primaryKey}' FROM public.ai_configurations WHERE user_id = $1::text::uuid AND config_name = 'sec_keys'",
            &[&crate::BOB],
        )
        .expect("bob's token")
        .get(0);
    assert!(token.starts_with("••••4242#") && !token.contains("sk-ant"), "{token}");
    // ALICE copies the token into her own configuration.
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&crate::ALICE_CLAIMS]).expect("alice");
    tx.query_one(
        "SELECT public.upsert_ai_config('sec_keys', jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', $1::text)), 1000)",
        &[&token],
    )
    .expect("alice's copy");
    let alice_reply: String = tx
        .query_one("SELECT public.upsert_ai_config('sec_keys', '{}')::text", &[])
        .expect("alice reads her row")
        .get(0);
    assert!(!alice_reply.contains("sk-ant-bob-only"), "{alice_reply}");
    // The service resolves keys: BOB's for BOB, none of BOB's for ALICE.
    tx.batch_execute("RESET ROLE; SET LOCAL ROLE service_role").expect("service");
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&SERVICE_CLAIMS]).expect("claims");
    let for_bob: String = tx
        .query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{apiKeys,primaryKey}'", &[&crate::BOB])
        .expect("bob's effective")
        .get(0);
    assert_eq!(for_bob, "sk-ant-bob-only-4242", "the service gets the owner's key");
    let for_alice: String = tx
        .query_one("SELECT public.get_effective_ai_config($1::text::uuid)::text", &[&crate::ALICE])
        .expect("alice's effective")
        .get(0);
    assert!(!for_alice.contains("sk-ant-bob-only"), "BOB's key resolved for ALICE: {for_alice}");
    let explained: i64 = tx
        .query_one(
            "SELECT count(*) FROM steward.explain_ai_config($1::text::uuid) WHERE value::text ~ 'sk-ant-bob-only'",
            &[&crate::ALICE],
        )
        .expect("explain")
        .get(0);
    assert_eq!(explained, 0);
    tx.rollback().expect("rollback");

    // A login that is a member of service_role (not SET ROLE) is the service too.
    let mut service = crate::connect_as("sec_service");
    let mut tx = service.transaction().expect("begin");
    tx.execute(
        "INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority)
         VALUES ($1::text::uuid, 'sec_keys2', jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', 'sk-ant-bob-two-5151')), 1000)",
        &[&crate::BOB],
    )
    .expect("bob's key through the service");
    let token: String = tx
        .query_one(
            "SELECT configuration #>> '{apiKeys,primaryKey}' FROM public.ai_configurations WHERE user_id = $1::text::uuid AND config_name = 'sec_keys2'",
            &[&crate::BOB],
        )
        .expect("token")
        .get(0);
    tx.execute(
        "INSERT INTO public.ai_configurations (user_id, config_name, configuration, priority)
         VALUES ($1::text::uuid, 'sec_keys2', jsonb_build_object('apiKeys', jsonb_build_object('primaryKey', $2::text)), 1000)",
        &[&crate::ALICE, &token],
    )
    .expect("the token in ALICE's row");
    let for_alice: String = tx
        .query_one("SELECT public.get_effective_ai_config($1::text::uuid)::text", &[&crate::ALICE])
        .expect("alice")
        .get(0);
    assert!(!for_alice.contains("sk-ant-bob-two"), "{for_alice}");
    let for_bob: String = tx
        .query_one("SELECT public.get_effective_ai_config($1::text::uuid) #>> '{apiKeys,primaryKey}'", &[&crate::BOB])
        .expect("bob")
        .get(0);
    assert_eq!(for_bob, "sk-ant-bob-two-5151");
    tx.rollback().expect("rollback");
}
