-- pg_steward 0.1.0 -> 0.2.0, run by ALTER EXTENSION pg_steward UPDATE (as the superuser who
-- owns the extension).  Hand-written: a database created by 0.1.0 must end up with exactly
-- the objects a fresh 0.2.0 install creates (pgrx-tests/tests/upgrade.rs compares the two
-- catalogs) and keep every row.  Until 0.2.0 is released (scripts/release.sh freeze), every
-- change to SQL objects is added here as well as in the sql/*.sql file that defines it.
\echo Use "ALTER EXTENSION pg_steward UPDATE" to load this file. \quit

-- Changes

-- Every upgrade script ends like the install script: nothing new is executable by PUBLIC,
-- steward.function_grants names only functions that exist, and the grants are re-applied.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA steward FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA steward FROM PUBLIC;
DO $check$
DECLARE
    v_missing text;
BEGIN
    SELECT pg_catalog.string_agg(signature, ', ') INTO v_missing FROM steward.function_grants
     WHERE pg_catalog.to_regprocedure(signature) IS NULL;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'steward.function_grants names functions that do not exist: %', v_missing;
    END IF;
END
$check$;
SELECT steward.refresh_grants();
