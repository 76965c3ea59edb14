//! Internals of the maintenance executor against a real server (the worker really starts).
//! Tables created inside a test are uncommitted, so the worker cannot see them: the tests
//! use the extension's own committed tables, or prove exactly that invisibility.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn worker_vacuums_a_committed_table_and_records_it() {
        Spi::run("SELECT steward.set_setting('maintenancePeakStartHour', '0'), steward.set_setting('maintenancePeakEndHour', '0')")
            .expect("no peak window");
        let status = Spi::get_one::<String>("SELECT status FROM steward.vacuum('steward.setting_defaults', \"analyze\" => true)")
            .expect("vacuum");
        assert_eq!(status.as_deref(), Some("completed"));
        let (statement, by_worker) = Spi::get_two::<String, bool>(
            "SELECT options ->> 'statement', worker_pid <> pg_backend_pid() FROM steward.maintenance_history(1000)
              WHERE table_name = 'steward.setting_defaults' ORDER BY created_at DESC LIMIT 1",
        )
        .expect("history");
        assert_eq!(statement.as_deref(), Some("VACUUM (ANALYZE) steward.setting_defaults"));
        assert_eq!(by_worker, Some(true));
    }

    #[pg_test]
    fn worker_records_a_relation_it_cannot_see_as_failed() {
        Spi::run("CREATE TABLE m_invisible (id int)").expect("create");
        // The error is caught in a subtransaction (a plpgsql exception block).
        Spi::run("CREATE TEMP TABLE caught (msg text)").expect("temp");
        Spi::run(
            "DO $$ BEGIN PERFORM * FROM steward.analyze('m_invisible');
             EXCEPTION WHEN OTHERS THEN INSERT INTO caught VALUES (SQLSTATE || ' ' || SQLERRM); END $$",
        )
        .expect("do");
        let caught = Spi::get_one::<String>("SELECT msg FROM caught").expect("caught").unwrap_or_default();
        assert!(caught.starts_with("42P01 ") && caught.contains("no longer exists"), "{caught}");
        // The caller's error rolled back nothing of the worker's: the record is there.  (Tests
        // run in parallel: look for this test's own record, not the newest one.)
        let (status, state) = Spi::get_two::<String, String>(
            "SELECT status, error_sqlstate FROM steward.maintenance_history(1000)
              WHERE table_name = 'public.m_invisible' ORDER BY created_at DESC LIMIT 1",
        )
        .expect("history");
        assert_eq!(status.as_deref(), Some("failed"));
        assert_eq!(state.as_deref(), Some("42P01"));
    }

    #[pg_test(error = "invalid maintenance request: unknown operation type \"DROP\"")]
    fn the_internal_entry_refuses_unknown_operations() {
        Spi::run(
            "SELECT steward._maintenance_submit('{\"id\": \"00000000-0000-0000-0000-000000000001\", \"operation_type\": \"DROP\"}', true)",
        )
        .expect("must fail");
    }
}
