-- Snapshots and trends (issue #16 item 4) over history with known numbers.
SET client_min_messages = warning;
DELETE FROM steward.database_snapshots;
DELETE FROM steward.table_bloat_snapshots;
DELETE FROM steward.index_usage_snapshots;
DELETE FROM steward.query_performance_logs;

-- The hourly capture writes one database row, and a row per table and per index.
SELECT (c ->> 'database')::int AS database_rows, (c ->> 'tables')::int > 0 AS tables, (c ->> 'indexes')::int >= 0 AS indexes
  FROM steward.capture_snapshots() c;
SELECT database_size_bytes > 0 AS sized, next_xid > 0 AS xid, frozen_xid_age >= 0 AS aged FROM steward.database_snapshots;
DELETE FROM steward.database_snapshots;

-- The database grows by 1 MB a day for 10 days and uses 1 000 transaction IDs a day.
INSERT INTO steward.database_snapshots (snapshot_timestamp, database_size_bytes, next_xid)
SELECT now() - make_interval(days => 10 - d), 100 * 1048576 + d * 1048576, 50000 + d * 1000 FROM generate_series(0, 10) d;
SELECT t -> 'object' IS NOT NULL AS named, t -> 'growthBytesPerDay' AS per_day, t -> 'latestBytes' AS latest,
       t -> 'thresholdBytes' AS threshold, t -> 'daysUntilThreshold' AS days_left, jsonb_array_length(t -> 'points') AS points
  FROM steward.size_trend(NULL, 30, 100, 120 * 1048576) t;
-- At most `points` points: 11 daily snapshots in 5 buckets.
SELECT jsonb_array_length(steward.size_trend(NULL, 10, 5) -> 'points') AS five_points;
SELECT steward.size_trend(NULL, 30, 100) -> 'reachedAt' AS no_threshold_no_projection;
SELECT t -> 'xidsPerDay' AS xids_per_day, jsonb_path_query_array(t -> 'points', '$[*].xids') AS xids
  FROM steward.xid_trend(30, 100) t;

-- One table: 10 MB shrinking by 512 kB a day (no projection towards a threshold).
INSERT INTO steward.table_bloat_snapshots (snapshot_timestamp, schemaname, tablename, actual_size_bytes, confidence)
SELECT now() - make_interval(days => 4 - d), 'public', 'orders', 10485760 - d * 524288, 'fresh' FROM generate_series(0, 4) d;
SELECT t -> 'object' AS object, t -> 'growthBytesPerDay' AS per_day, t -> 'reachedAt' AS reached,
       jsonb_path_query_array(t -> 'points', '$[*].bytes') AS bytes
  FROM steward.size_trend('public.orders', 7, 100, 1073741824) t;
SELECT steward.size_trend('orders', 7) -> 'object' AS default_schema, steward.size_trend('nosuch.table', 7) -> 'points' AS none;

-- Index scans across a statistics reset: 10, 20, then 5 (reset), then 15: 10 + 5 + 10 scans.
INSERT INTO steward.index_usage_snapshots (snapshot_timestamp, schemaname, tablename, indexname, idx_scan, idx_tup_read, idx_tup_fetch, index_size_bytes, table_size_bytes)
VALUES (now() - interval '3 hours', 'public', 'orders', 'orders_pkey', 10, 0, 0, 8192, 8192),
       (now() - interval '2 hours', 'public', 'orders', 'orders_pkey', 20, 0, 0, 8192, 8192),
       (now() - interval '1 hour',  'public', 'orders', 'orders_pkey', 5, 0, 0, 8192, 8192),
       (now(),                      'public', 'orders', 'orders_pkey', 15, 0, 0, 8192, 8192);
SELECT t -> 'totalScans' AS total, t -> 'resets' AS resets, t -> 'snapshots' AS snapshots,
       jsonb_path_query_array(t -> 'points', '$[*].scans') AS scans
  FROM steward.index_usage_trend('public.orders_pkey', 1, 24) t;

-- Logged queries in a fixed range, in 2 buckets.
INSERT INTO steward.query_performance_logs (query_text, duration_ms, execution_timestamp) VALUES
    ('a', 100, '2024-06-01 00:10+00'), ('b', 700, '2024-06-01 00:20+00'), ('c', 1000, '2024-06-01 00:40+00'),
    ('d', 300, '2024-06-01 01:10+00'), ('e', 400, '2024-06-01 01:50+00');
SELECT t -> 'count' AS n, t -> 'slowCount' AS slow, t -> 'avgMs' AS avg, t -> 'p95Ms' AS p95,
       jsonb_path_query_array(t -> 'points', '$[*].count') AS per_bucket,
       jsonb_path_query_array(t -> 'points', '$[*].slowCount') AS slow_per_bucket
  FROM steward.query_trend('2024-06-01 00:00+00', '2024-06-01 02:00+00', 2) t;

-- History older than its retention is purged; newer history stays.
SELECT steward.set_setting('queryLogRetentionDays', '30');
SELECT steward.purge_history() -> 'query_performance_logs' AS purged_logs;
SELECT count(*) AS logs_left FROM steward.query_performance_logs;
SELECT steward.purge_history() -> 'database_snapshots' AS purged_recent_snapshots;
SELECT steward.reset_setting('queryLogRetentionDays');

-- Bad arguments.
\set VERBOSITY default
SELECT steward.size_trend(NULL, 0, 1);
SELECT steward.size_trend('a.b.c.d');
SELECT steward.size_trend(NULL, 30, 100, -5);
SELECT steward.index_usage_trend(NULL);
SELECT steward.query_trend('2024-06-02', '2024-06-01');
SELECT steward.xid_trend(5000, 5);
\set VERBOSITY terse

DELETE FROM steward.database_snapshots;
DELETE FROM steward.table_bloat_snapshots;
DELETE FROM steward.index_usage_snapshots;
DELETE FROM steward.query_performance_logs;
RESET client_min_messages;
