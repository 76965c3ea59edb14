-- schedule_jobs() with pg_cron installed (the test server preloads it for this database).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
RESET client_min_messages;
SELECT jobname, schedule, command, jobid > 0 AS scheduled FROM steward.schedule_jobs() ORDER BY jobname;
-- Idempotent: the same jobs are updated, not duplicated.
SELECT count(*) AS jobs FROM steward.schedule_jobs();
SELECT jobname, schedule, database = current_database() AS this_database
  FROM cron.job WHERE jobname LIKE 'steward-%' ORDER BY jobname;
