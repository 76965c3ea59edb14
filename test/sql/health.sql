-- Golden tests of the health SQL surface: result shapes, deterministic facts, errors.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_steward;
RESET client_min_messages;

-- Result shapes (LIMIT 0 prints the columns only).
SELECT * FROM steward.database_overview() LIMIT 0;
SELECT * FROM steward.table_health() LIMIT 0;
SELECT * FROM steward.index_health() LIMIT 0;
SELECT * FROM steward.unused_indexes() LIMIT 0;
SELECT * FROM steward.duplicate_indexes() LIMIT 0;
SELECT * FROM steward.invalid_indexes() LIMIT 0;
SELECT * FROM steward.table_bloat() LIMIT 0;
SELECT * FROM steward.index_bloat() LIMIT 0;
SELECT * FROM steward.connection_pool_metrics() LIMIT 0;
SELECT * FROM steward.long_running_sessions() LIMIT 0;
SELECT * FROM steward.blocking_chains() LIMIT 0;
SELECT * FROM steward.database_wraparound() LIMIT 0;
SELECT * FROM steward.table_wraparound() LIMIT 0;
SELECT * FROM steward.sequence_usage() LIMIT 0;
SELECT * FROM steward.table_bloat_exact('steward.settings') LIMIT 0;

-- Sample tables: an int4 serial close to exhaustion, duplicates that must and must not be flagged.
CREATE TABLE regress_orders (id serial PRIMARY KEY, customer int NOT NULL, note text COLLATE "C", placed date);
SELECT setval('regress_orders_id_seq', 2000000000);
CREATE INDEX regress_orders_customer ON regress_orders (customer);
CREATE INDEX regress_orders_customer_again ON regress_orders (customer);                 -- duplicate
CREATE INDEX regress_orders_customer_placed ON regress_orders (customer, placed);        -- covers customer
CREATE INDEX regress_orders_partial ON regress_orders (customer) WHERE placed IS NULL;   -- partial: kept
CREATE INDEX regress_orders_note_c ON regress_orders (note);                             -- collation C
CREATE INDEX regress_orders_note_posix ON regress_orders (note COLLATE "POSIX");         -- other collation: kept
CREATE INDEX regress_orders_note_pattern ON regress_orders (note text_pattern_ops);      -- other opclass: kept
CREATE INDEX regress_orders_lower ON regress_orders (lower(note));                       -- expression: kept
CREATE UNIQUE INDEX regress_orders_customer_unique ON regress_orders (customer, id);     -- unique: never dropped
INSERT INTO regress_orders (customer, note, placed) SELECT g % 100, 'n' || g, NULL FROM generate_series(1, 1000) g;
ANALYZE regress_orders;

SELECT indexname, kind, covered_by FROM steward.duplicate_indexes() WHERE tablename = 'regress_orders' ORDER BY indexname;
SELECT sequencename, owned_by, effective_max, pct_used > 90 AS nearly_exhausted
  FROM steward.sequence_usage() WHERE sequencename = 'regress_orders_id_seq';
SELECT relname, n_live_tup >= 0 AS has_counts, bloat_confidence, needs_analyze
  FROM steward.table_health() WHERE relname = 'regress_orders';
SELECT indexrelname, enforces_constraint, is_valid, is_unused
  FROM steward.index_health() WHERE relname = 'regress_orders' ORDER BY indexrelname;

-- Unused detection never flags an index that enforces something.
SELECT count(*) AS enforcing_flagged FROM steward.unused_indexes(0) u
  JOIN pg_index i ON i.indexrelid = u.indexrelid
 WHERE i.indisprimary OR i.indisunique OR i.indisexclusion;

-- Name look-ups: plain, qualified, quoted; anything else is simply absent.
SELECT steward.table_exists('regress_orders') AS plain,
       steward.table_exists('public.regress_orders') AS qualified,
       steward.table_exists('"regress_orders"') AS quoted,
       steward.table_exists('"Regress_Orders"') AS wrong_case,
       steward.table_exists('regress_orders; DROP TABLE regress_orders') AS injection,
       steward.table_exists('a.b.c.d') AS too_many_dots,
       steward.table_exists('other_db.public.regress_orders') AS cross_db,
       steward.table_exists('"unterminated') AS bad_quote,
       steward.table_exists('ünïcødé') AS unicode,
       steward.table_exists(NULL) AS null_name,
       steward.index_exists('regress_orders_pkey') AS index_found,
       steward.index_exists('regress_orders') AS table_is_not_index;
SELECT count(*) AS still_there FROM regress_orders;

-- Report: every documented key is present; recommendations are sorted high first.
SELECT array_agg(k ORDER BY k) AS report_keys FROM jsonb_object_keys(steward.health_report()) k;
SELECT bool_and(p.rank >= coalesce(p.prev, 0)) AS sorted_high_first
  FROM (SELECT CASE r ->> 'priority' WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END AS rank,
               lag(CASE r ->> 'priority' WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END) OVER (ORDER BY o) AS prev
          FROM jsonb_array_elements(steward.health_report() -> 'recommendations') WITH ORDINALITY e(r, o)) p;
SELECT steward.health_report_text() LIKE 'pg_steward health report for database %' AS text_report;
SELECT (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(r) k) AS recommendation_keys
  FROM jsonb_array_elements(steward.health_report() -> 'recommendations') r LIMIT 1;

-- Bad input: clear errors, never an internal error.
SELECT * FROM steward.slow_queries(0);
SELECT * FROM steward.slow_queries(24, -1);
SELECT * FROM steward.unused_indexes(-5);
SELECT * FROM steward.table_bloat_exact('regress_orders_pkey');
SELECT steward._render_report_text('[1,2]');
SELECT steward.set_setting('noSuchSetting', '1');
SELECT steward.set_setting('highBloatThresholdPercent', '"high"');
SELECT steward.set_setting('highBloatThresholdPercent', '250');
SELECT steward.set_setting('highBloatThresholdPercent', '30');
SELECT key, value, source FROM steward.effective_settings WHERE key = 'highBloatThresholdPercent';
SELECT steward.reset_setting('highBloatThresholdPercent');
SELECT steward.create_performance_alert('Bad Type!', 'severe', '', '[1]');
SELECT steward.acknowledge_alert('00000000-0000-0000-0000-000000000000');

-- Alerts: raised from bloat snapshots, one per table and severity.
SELECT steward.capture_table_bloat_snapshot() > 0 AS captured;
INSERT INTO steward.table_bloat_snapshots (schemaname, tablename, actual_size_bytes, estimated_size_bytes, bloat_bytes, bloat_ratio, dead_tuples, live_tuples, confidence)
VALUES ('public', 'regress_fake', 100000000, 40000000, 60000000, 60, 0, 10, 'fresh');
SELECT steward.check_table_bloat_alerts() AS raised;
SELECT steward.check_table_bloat_alerts() AS raised_again;
SELECT alert_type, severity, message FROM steward.performance_alerts WHERE details ->> 'tablename' = 'regress_fake';
SELECT resolved_at IS NOT NULL AS resolved, resolution_notes
  FROM steward.resolve_alert((SELECT id FROM steward.performance_alerts WHERE details ->> 'tablename' = 'regress_fake'), 'regress');
SELECT steward.capture_index_usage_snapshot() > 0 AS index_snapshot;

DROP TABLE regress_orders;
