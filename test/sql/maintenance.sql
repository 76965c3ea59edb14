-- Maintenance through the background worker: results, records, refusals (terse errors:
-- the DETAIL carries a random operation id).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;
-- No peak window, so the output does not depend on the time of day.
SELECT steward.set_setting('maintenancePeakStartHour', '0') IS NOT NULL AS peak_start_set;
SELECT steward.set_setting('maintenancePeakEndHour', '0') IS NOT NULL AS peak_end_set;

CREATE TABLE regress_m (id int PRIMARY KEY, v text);
INSERT INTO regress_m SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
CREATE TABLE "Regress Mixed" (id int);

-- The seed table's columns, in the seed's order.
SELECT id, operation_type, table_name, index_name, started_at, completed_at, duration_ms, status,
       initiated_by, error_message, options, created_at
  FROM steward.maintenance_operations LIMIT 0;

SELECT operation_type, table_name, index_name, status, refused, options ->> 'statement' AS statement,
       duration_ms >= 0 AS timed, worker_pid IS NOT NULL AS by_worker
  FROM steward.vacuum('regress_m');
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.vacuum('public.regress_m', "analyze" => true, verbose => true);
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.analyze('regress_m');
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.analyze('Regress Mixed');
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.reindex(index_name => 'regress_m_pkey');
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.reindex('"Regress Mixed"');
SELECT operation_type, status, options ->> 'statement' AS statement FROM steward.vacuum('regress_m', "full" => true, confirm => true);
SELECT operation_type, table_name, status, (options ->> 'relations_processed')::int > 0 AS processed_some
  FROM steward.vacuum();
SELECT steward.vacuum_analyze_table('regress_m') ~ '^VACUUM ANALYZE public.regress_m completed in [0-9]+ ms$' AS message_ok;
SELECT steward.vacuum_analyze_table('nope') AS message;
SELECT steward.reindex_if_bloated('regress_m', 20) AS message;

-- Refusals: each its own SQLSTATE, each recorded.
\set VERBOSITY sqlstate
SELECT * FROM steward.vacuum('no_such_table');
SELECT * FROM steward.vacuum('regress_m_pkey');
SELECT * FROM steward.reindex();
SELECT * FROM steward.vacuum('regress_m', "full" => true);
SELECT * FROM steward.reindex(index_name => 'no_such_index');
SELECT * FROM steward.analyze('regress_m; DROP TABLE regress_m');
SELECT * FROM steward.run_maintenance('TRUNCATE', 'regress_m');
SELECT * FROM steward.vacuum('regress_m', verbose => true) WHERE false;
SELECT * FROM steward.maintenance_history(0);
SELECT * FROM steward.maintenance_progress('00000000-0000-0000-0000-000000000000');
\set VERBOSITY terse
SELECT count(*) AS rows_still_there FROM regress_m;

SELECT operation_type, table_name, status, refused, error_sqlstate, error_message
  FROM steward.maintenance_history(100) WHERE refused ORDER BY created_at;
SELECT count(*) AS running FROM steward.maintenance_running();
SELECT status, percent FROM steward.maintenance_progress((SELECT id FROM steward.maintenance_history(1)));
SELECT steward.maintenance_cancel((SELECT id FROM steward.maintenance_history(1))) AS cancelled_finished_one;
SELECT count(*) AS jobs FROM steward.schedule_jobs();
