-- One rule table for the report's recommendations and the alerts (issue #16; CONTRACT §1, §2).
-- A rule reads one metric of the health report (what each metric measures is Rust:
-- src/alerts/rules.rs), grades each object it is about by thresholds per severity, and says
-- what to write.  Findings of severity info only appear in the report; warning and above are
-- alerts, kept by steward.check_alerts(): one open alert per rule and object (its
-- fingerprint), updated while the rule fires, escalated or de-escalated when its severity
-- changes, resolved when the rule has not fired for alertResolveAfterChecks checks.  Every
-- open/escalate/de-escalate/resolve/acknowledge is sent with pg_notify on channel
-- steward_alerts (see the README for the payload).

-- Built-in rules.  Part of the extension script (never dumped); administrators change
-- thresholds and switch rules off through steward.set_alert_rule() (alert_rule_overrides).
CREATE TABLE steward.alert_rules (
    rule_id           text PRIMARY KEY CHECK (rule_id ~ '^[a-z][a-z0-9_]{0,62}$'),
    position          integer NOT NULL UNIQUE,
    alert_type        text NOT NULL CHECK (alert_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    metric            text NOT NULL CHECK (metric IN (
                          'cache_hit_ratio', 'query_mean_ms', 'query_p95_ms', 'connection_usage_pct',
                          'connection_held_pct', 'table_bloat_pct', 'index_bloat_pct', 'unused_index',
                          'duplicate_index', 'invalid_index', 'seq_scan_pct', 'dead_tuple_ratio',
                          'vacuum_overdue', 'analyze_overdue', 'xid_wraparound_pct', 'mxid_wraparound_pct',
                          'table_freeze_age_pct', 'sequence_used_pct', 'long_running_seconds',
                          'idle_in_transaction_seconds', 'blocked_seconds', 'slot_retained_bytes',
                          'slot_inactive', 'replication_lag_bytes', 'stat_statements_missing',
                          'ai_budget_share', 'api_key_overdue_days')),
    object_kind       text NOT NULL CHECK (object_kind IN ('database', 'table', 'index', 'query', 'session', 'sequence', 'slot', 'standby',
                                                           'user', 'configuration')),
    direction         text NOT NULL CHECK (direction IN ('above', 'below')),
    info_at           numeric,
    warning_at        numeric,
    error_at          numeric,
    critical_at       numeric,
    -- A setting that supplies one tier's threshold (changing the setting moves the rule).
    threshold_setting text REFERENCES steward.setting_defaults (key),
    threshold_tier    text CHECK (threshold_tier IN ('info', 'warning', 'error', 'critical')),
    category          text NOT NULL CHECK (category IN ('performance', 'maintenance', 'capacity', 'optimization')),
    priority          text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    title             text NOT NULL,
    description       text NOT NULL,
    message           text NOT NULL,
    action            text NOT NULL,
    impact            text NOT NULL,
    effort            text NOT NULL CHECK (effort IN ('low', 'medium', 'high')),
    -- Clear checks before an open alert resolves (NULL: the alertResolveAfterChecks setting).
    resolve_after_checks integer CHECK (resolve_after_checks BETWEEN 1 AND 1000),
    CHECK ((threshold_setting IS NULL) = (threshold_tier IS NULL)),
    CHECK (coalesce(info_at, warning_at, error_at, critical_at) IS NOT NULL OR threshold_setting IS NOT NULL)
);

-- Templates: {object} {value} {threshold} {n} {names}, a field of the object {field}, a size
-- {field:bytes}, fixed decimals {field:1}, a plural {n|one|many}.
INSERT INTO steward.alert_rules (rule_id, position, alert_type, metric, object_kind, direction, info_at, warning_at, error_at, critical_at,
                                 threshold_setting, threshold_tier, category, priority, title, description, message, action, impact, effort) VALUES
    ('low_cache_hit_ratio', 10, 'low_cache_hit_ratio', 'cache_hit_ratio', 'database', 'below', NULL, 90, 80, 60,
     'lowCacheHitRatioThreshold', 'warning', 'performance', 'high',
     'Low cache hit ratio',
     'Only {value:1}% of block reads are served from shared buffers (threshold {threshold}%).',
     'Cache hit ratio of {object} is {value:1}%',
     'Increase shared_buffers (typically 25% of RAM) and review queries that scan large tables.',
     'Fewer disk reads and faster queries', 'low'),
    ('slow_query', 20, 'slow_query', 'query_mean_ms', 'query', 'above', 500, 1000, 2000, NULL,
     'slowQueryThresholdMs', 'info', 'performance', 'high',
     '{n} {n|slow query|slow queries} above {threshold} ms',
     'Queries whose mean execution time exceeds the slow-query threshold: {names}.',
     'Query {object} averages {value:0} ms',
     'EXPLAIN (ANALYZE, BUFFERS) the slowest queries; add missing indexes or rewrite them.',
     'Lower latency for the affected endpoints', 'medium'),
    ('slow_query_p95', 30, 'slow_query_p95', 'query_p95_ms', 'database', 'above', NULL, 1000, 2000, NULL,
     NULL, NULL, 'performance', 'high',
     'Query time p95 above {threshold} ms',
     'The 95th percentile of the logged query times of the last {hours} hours is {value:0} ms.',
     'p95 of the logged query times of {object} is {value:0} ms over {count} queries',
     'Find the endpoints behind the slowest logged queries (query_performance_logs) and fix them first.',
     'Faster responses for most users', 'medium'),
    ('high_connection_usage', 40, 'high_connection_usage', 'connection_usage_pct', 'database', 'above', NULL, 80, 90, 95,
     'highConnectionUsageThreshold', 'warning', 'capacity', 'high',
     'High connection usage',
     '{total} of {max_connections} connections in use ({value:1}%, threshold {threshold}%).',
     '{total} of {max_connections} connections in use ({value:1}%)',
     'Raise max_connections or pool connections with PgBouncer.',
     'Avoids refused connections at peak load', 'medium'),
    ('connection_pool', 50, 'connection_pool', 'connection_held_pct', 'database', 'above', NULL, 10, 25, 50,
     NULL, NULL, 'capacity', 'medium',
     'Connections held idle in transaction or waiting',
     '{idle_in_transaction} idle in transaction and {waiting} waiting: {value:1}% of max_connections held without work.',
     '{value:1}% of max_connections held by sessions idle in transaction ({idle_in_transaction}) or waiting ({waiting})',
     'Set idle_in_transaction_session_timeout, release connections promptly, and use transaction pooling.',
     'Frees connection slots for real work', 'low'),
    ('invalid_index', 60, 'invalid_index', 'invalid_index', 'index', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'maintenance', 'high',
     '{n} invalid {n|index|indexes}',
     'Invalid indexes are maintained on every write but never used: {names}.',
     'Index {object} on {table} is invalid ({likely_cause})',
     'DROP INDEX CONCURRENTLY the leftover (often a failed CREATE/REINDEX CONCURRENTLY, named *_ccnew), then rebuild it if it is needed.',
     'Removes write overhead and restores the intended index', 'low'),
    ('xid_wraparound', 70, 'xid_wraparound', 'xid_wraparound_pct', 'database', 'above', NULL, 50, 75, 90,
     NULL, NULL, 'maintenance', 'high',
     'Transaction ID wraparound approaching',
     'Database {object} has used {value:1}% of the transaction IDs before wraparound.',
     'Database {object} has used {value:1}% of its transaction IDs (age {xid_age})',
     'VACUUM (FREEZE) the oldest tables; check for long transactions, stale replication slots and prepared transactions holding back the horizon.',
     'Prevents a forced shutdown to avoid wraparound', 'medium'),
    ('multixact_wraparound', 80, 'multixact_wraparound', 'mxid_wraparound_pct', 'database', 'above', NULL, 50, 75, 90,
     NULL, NULL, 'maintenance', 'high',
     'Multixact ID wraparound approaching',
     'Database {object} has used {value:1}% of the multixact IDs before wraparound.',
     'Database {object} has used {value:1}% of its multixact IDs (age {mxid_age})',
     'VACUUM (FREEZE) the tables with the oldest relminmxid; look for long transactions holding row locks.',
     'Prevents a forced shutdown to avoid wraparound', 'medium'),
    ('sequence_exhaustion', 90, 'sequence_exhaustion', 'sequence_used_pct', 'sequence', 'above', NULL, 75, 90, 95,
     'sequenceUsageThresholdPercent', 'warning', 'capacity', 'high',
     '{n} {n|sequence close to exhaustion|sequences close to exhaustion}',
     'Sequences (or the columns they feed) above {threshold}% of their range: {names}.',
     'Sequence {object} has used {value:1}% of its range ({last_value} of {effective_max})',
     'Convert the column and sequence to bigint before they run out.',
     'Prevents failing inserts', 'high'),
    ('blocking_chain', 100, 'blocking_chain', 'blocked_seconds', 'session', 'above', 0, 30, 300, NULL,
     NULL, NULL, 'performance', 'high',
     '{n} blocked {n|session|sessions}',
     'Sessions are waiting on locks held by other sessions: {names}.',
     'Session {object}: waiting {value:0} s for a lock',
     'Inspect the blocking sessions (steward.blocking_chains()); end or shorten the transactions that hold the locks.',
     'Unblocks waiting requests', 'low'),
    ('replication_slot_retained_wal', 110, 'replication_slot_retained_wal', 'slot_retained_bytes', 'slot', 'above', NULL, 1073741824, 10737418240, NULL,
     'replicationSlotRetainedBytes', 'warning', 'capacity', 'high',
     '{n} replication {n|slot retains|slots retain} too much WAL',
     'WAL is kept for {names} (above replicationSlotRetainedBytes); a slot nobody consumes fills the disk.',
     'Replication slot {object} retains {value:bytes} of WAL (wal_status {wal_status})',
     'Reconnect the consumer, or drop the slot if it is abandoned (SELECT pg_drop_replication_slot(name)); consider max_slot_wal_keep_size.',
     'Prevents a full disk and a stopped server', 'low'),
    ('replication_slot_inactive', 120, 'replication_slot_inactive', 'slot_inactive', 'slot', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'capacity', 'medium',
     '{n} inactive replication {n|slot|slots}',
     'No consumer is connected to {names}; the WAL they hold back keeps growing.',
     'Replication slot {object} has no consumer',
     'Reconnect the consumer or drop the slot.',
     'Stops WAL accumulating', 'low'),
    ('replication_lag', 130, 'replication_lag', 'replication_lag_bytes', 'standby', 'above', NULL, 67108864, 1073741824, NULL,
     'replicationLagBytes', 'warning', 'capacity', 'high',
     '{n} {n|standby lags|standbys lag} behind',
     'Replay is behind by more than replicationLagBytes: {names}.',
     'Standby {object} replays {value:bytes} behind',
     'Check the standby''s I/O and network, long queries on it (hot_standby_feedback, max_standby_streaming_delay) and its WAL apply rate.',
     'Keeps reads on standbys fresh and failover fast', 'medium'),
    ('dead_tuples', 140, 'vacuum_needed', 'dead_tuple_ratio', 'table', 'above', 10, 100, NULL, NULL,
     'deadTupleRatioThreshold', 'info', 'maintenance', 'medium',
     '{n} {n|table needs|tables need} VACUUM',
     'Dead tuples exceed {threshold}% of live tuples in: {names}.',
     'Table {object} has {n_dead_tup} dead tuples ({value:1}% of live)',
     'VACUUM (ANALYZE) these tables and lower autovacuum_vacuum_scale_factor for the busiest ones.',
     'Reclaims space and keeps scans fast', 'low'),
    ('vacuum_overdue', 150, 'vacuum_overdue', 'vacuum_overdue', 'table', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'maintenance', 'medium',
     '{n} {n|table|tables} overdue for VACUUM',
     'Tables with dead tuples and no VACUUM for more than vacuumOverdueDays: {names}.',
     'Table {object} has {n_dead_tup} dead tuples and no VACUUM since {last_vacuum_any}',
     'Check why autovacuum skips them (long transactions, autovacuum settings per table) and VACUUM them.',
     'Keeps bloat and wraparound risk down', 'low'),
    ('high_bloat', 160, 'high_bloat', 'table_bloat_pct', 'table', 'above', NULL, 20, 35, 50,
     'highBloatThresholdPercent', 'warning', 'maintenance', 'medium',
     '{n} {n|table|tables} with high bloat',
     'Estimated bloat above {threshold}%: {names}.',
     'Table {object} is {value:1}% bloat ({bloat_bytes:bytes} of {table_size:bytes}, confidence {confidence})',
     'Rewrite in a quiet window (VACUUM FULL takes an exclusive lock; pg_repack does not).',
     'Returns disk space and shortens scans', 'medium'),
    ('high_index_bloat', 170, 'high_bloat', 'index_bloat_pct', 'index', 'above', NULL, 20, 35, 50,
     'highBloatThresholdPercent', 'warning', 'maintenance', 'medium',
     '{n} {n|index|indexes} with high bloat',
     'Estimated bloat above {threshold}%: {names}.',
     'Index {object} is {value:1}% bloat ({bloat_bytes:bytes} of {index_size:bytes}, confidence {confidence})',
     'REINDEX INDEX CONCURRENTLY in a quiet window.',
     'Returns disk space and speeds up index scans', 'low'),
    ('unused_index', 180, 'unused_index', 'unused_index', 'index', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'optimization', 'medium',
     '{n} unused {n|index|indexes}',
     'No scans for more than unusedIndexDays days: {names}.',
     'Index {object} on {table} has not been scanned for {days_since_last_use:1} days ({index_size:bytes})',
     'Confirm on replicas too, then DROP INDEX CONCURRENTLY.',
     'Faster writes, less storage and vacuum work', 'low'),
    ('missing_index', 190, 'missing_index', 'seq_scan_pct', 'table', 'above', NULL, 50, 90, NULL,
     NULL, NULL, 'performance', 'medium',
     '{n} large {n|table is|tables are} mostly read by sequential scans',
     'Sequential scans dominate on: {names}.',
     'Table {object} ({table_size:bytes}): {value:1}% of its scans are sequential ({seq_scan} scans, {seq_tup_read} rows read)',
     'Find the queries that scan these tables (pg_stat_statements, EXPLAIN) and index their filter columns.',
     'Queries that read a few rows stop reading whole tables', 'medium'),
    ('duplicate_index', 200, 'duplicate_index', 'duplicate_index', 'index', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'optimization', 'medium',
     '{n} duplicate or redundant {n|index|indexes}',
     'Covered by another index on the same table: {names}.',
     'Index {object} is covered by {covered_by}',
     'DROP INDEX CONCURRENTLY the index; the covering index serves the same queries.',
     'Faster writes, less storage', 'low'),
    ('long_running_query', 210, 'long_running_query', 'long_running_seconds', 'session', 'above', NULL, 300, 1800, NULL,
     'longRunningQuerySeconds', 'warning', 'performance', 'medium',
     '{n} long-running {n|query|queries}',
     'Active queries running longer than {threshold} s: {names}.',
     'Session {object} ({usename}) has run one query for {value:0} s',
     'Check the query plan, set statement_timeout for the role, or cancel it (pg_cancel_backend).',
     'Releases locks and lets VACUUM keep up', 'low'),
    ('idle_in_transaction', 220, 'idle_in_transaction', 'idle_in_transaction_seconds', 'session', 'above', NULL, 60, 600, 3600,
     'idleInTransactionSeconds', 'warning', 'performance', 'medium',
     '{n} {n|session|sessions} idle in transaction',
     'Transactions left open longer than {threshold} s: {names}.',
     'Session {object} ({usename}) has been idle in a transaction for {value:0} s',
     'Set idle_in_transaction_session_timeout; fix the application code paths that leave transactions open.',
     'Lets VACUUM keep up and releases locks', 'low'),
    ('freeze_age', 230, 'freeze_age', 'table_freeze_age_pct', 'table', 'above', 100, 400, 800, NULL,
     NULL, NULL, 'maintenance', 'medium',
     '{n} {n|table|tables} past autovacuum_freeze_max_age',
     'Anti-wraparound vacuum is due on: {names}.',
     'Table {object} is at {value:0}% of autovacuum_freeze_max_age (xid age {xid_age})',
     'VACUUM (FREEZE) these tables in a quiet period.',
     'Keeps the database far from wraparound', 'low'),
    ('analyze_overdue', 240, 'analyze_overdue', 'analyze_overdue', 'table', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'maintenance', 'low',
     '{n} {n|table needs|tables need} ANALYZE',
     'Never analysed or not analysed for analyzeOverdueDays: {names}.',
     'Table {object} was last analysed {last_analyze_any} ({n_mod_since_analyze} rows changed since)',
     'ANALYZE these tables; planner estimates and bloat estimates depend on it.',
     'Better query plans', 'low'),
    ('pg_stat_statements_missing', 250, 'pg_stat_statements_missing', 'stat_statements_missing', 'database', 'above', 0, NULL, NULL, NULL,
     NULL, NULL, 'optimization', 'low',
     'pg_stat_statements is not enabled',
     'Slow queries are only known from the application''s query_performance_logs.',
     'pg_stat_statements is not loaded in {object}',
     'Add pg_stat_statements to shared_preload_libraries, restart, and CREATE EXTENSION pg_stat_statements.',
     'Server-side view of every slow query', 'low');

-- AI spending and API keys (issue #17): read by check_alerts() only (sources outside the
-- health report).  ai_budget: one alert per user, period (day, week, month), period start
-- and level — each of the user's effective costBudget.alertThresholds crossed (the highest
-- error, lower ones warning) and the budget exceeded (critical) — so each is raised once per
-- period; the rule's tiers are not used (warning_at 0 only marks it as an alert rule).  Both
-- resolve at the first check where they no longer hold (a new period, a raised budget, a
-- rotated key; rotate_api_key resolves its configuration's alert at once).
INSERT INTO steward.alert_rules (rule_id, position, alert_type, metric, object_kind, direction, info_at, warning_at, error_at, critical_at,
                                 threshold_setting, threshold_tier, category, priority, title, description, message, action, impact, effort,
                                 resolve_after_checks) VALUES
    ('ai_budget', 260, 'ai_budget', 'ai_budget_share', 'user', 'above', NULL, 0, NULL, NULL,
     NULL, NULL, 'capacity', 'high',
     'AI spending above the budget thresholds',
     'Users whose AI spending of the current day, week or month crossed an alert threshold of their budget.',
     'User {user_id} has spent {share_pct:0}% of the {budget_name} AI budget ({spend:2} of {budget:2} since {period_start}; level {level})',
     'Review the user''s usage (ai_spending), raise costBudget in the effective configuration, or switch on budgetEnforcement.',
     'Spending stays within what the configuration allows', 'low', 1),
    ('api_key_rotation_due', 270, 'api_key_rotation_due', 'api_key_overdue_days', 'configuration', 'above', NULL, 0, 30, NULL,
     NULL, NULL, 'maintenance', 'medium',
     'API keys due for rotation',
     'AI configurations whose API key is older than apiKeys.rotationSchedule allows (monthly: 30 days, quarterly: 90).',
     'The API key of AI configuration "{config_name}" ({owner}) is {value:0} days past its {rotation_schedule} rotation',
     'Rotate the key with steward.rotate_api_key(config_name, new_key[, reason, organization_id]).',
     'Limits what a leaked key can be used for', 'low', 1);

-- What administrators changed (dumped with the database).
CREATE TABLE steward.alert_rule_overrides (
    rule_id     text PRIMARY KEY REFERENCES steward.alert_rules (rule_id),
    enabled     boolean,
    info_at     numeric,
    warning_at  numeric,
    error_at    numeric,
    critical_at numeric,
    -- Which tiers were set explicitly (a tier set to null switches that tier off).
    tiers_set   text[] NOT NULL DEFAULT '{}',
    resolve_after_checks integer CHECK (resolve_after_checks BETWEEN 1 AND 1000),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by  text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.alert_rule_overrides', '');

CREATE VIEW steward.effective_alert_rules AS
SELECT r.rule_id, r.position, r.alert_type, r.metric, r.object_kind, r.direction,
       coalesce(o.enabled, true) AS enabled,
       CASE WHEN 'info' = ANY (o.tiers_set) THEN o.info_at
            WHEN r.threshold_tier = 'info' THEN (s.value #>> '{}')::numeric ELSE r.info_at END AS info_at,
       CASE WHEN 'warning' = ANY (o.tiers_set) THEN o.warning_at
            WHEN r.threshold_tier = 'warning' THEN (s.value #>> '{}')::numeric ELSE r.warning_at END AS warning_at,
       CASE WHEN 'error' = ANY (o.tiers_set) THEN o.error_at
            WHEN r.threshold_tier = 'error' THEN (s.value #>> '{}')::numeric ELSE r.error_at END AS error_at,
       CASE WHEN 'critical' = ANY (o.tiers_set) THEN o.critical_at
            WHEN r.threshold_tier = 'critical' THEN (s.value #>> '{}')::numeric ELSE r.critical_at END AS critical_at,
       coalesce(o.resolve_after_checks, r.resolve_after_checks,
                (SELECT (e.value #>> '{}')::integer FROM steward.effective_settings e
                  WHERE e.key OPERATOR(pg_catalog.=) 'alertResolveAfterChecks')) AS resolve_after_checks,
       r.threshold_setting, r.threshold_tier,
       r.category, r.priority, r.title, r.description, r.message, r.action, r.impact, r.effort,
       CASE WHEN o.rule_id IS NULL THEN 'default' ELSE 'database' END AS source,
       o.updated_at, o.updated_by
  FROM steward.alert_rules r
  LEFT JOIN steward.alert_rule_overrides o ON o.rule_id OPERATOR(pg_catalog.=) r.rule_id
  LEFT JOIN steward.effective_settings s ON s.key OPERATOR(pg_catalog.=) r.threshold_setting;

-- The rules as the evaluator reads them (src/alerts/rules.rs: Rule).
CREATE FUNCTION steward._alert_rules_json() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.position), '[]') FROM steward.effective_alert_rules r
$$;

-- Change a rule (admins): switch it on or off, set thresholds per severity (a JSON object with
-- any of info, warning, error, critical; a number, or null to switch that tier off), and how
-- many checks without the condition resolve its alerts.  Unknown rules, unknown tiers,
-- non-numbers and thresholds out of order (for an "above" rule warning above critical, say)
-- are refused with 22023 listing every problem.
CREATE FUNCTION steward._set_alert_rule_impl(
    p_rule_id text, p_enabled boolean DEFAULT NULL, p_thresholds jsonb DEFAULT NULL,
    p_resolve_after_checks integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r steward.alert_rules;
    o steward.alert_rule_overrides;
    v_problems text[] := '{}';
    v_key text;
    v_val jsonb;
    v_eff record;
    v_tiers numeric[];
    v_prev numeric;
    v_name text;
    i integer;
BEGIN
    PERFORM steward._require_writable();
    SELECT * INTO r FROM steward.alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown alert rule %', coalesce(quote_literal(p_rule_id), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Known rules: ' || (SELECT string_agg(rule_id, ', ' ORDER BY position) FROM steward.alert_rules);
    END IF;
    SELECT * INTO o FROM steward.alert_rule_overrides WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id FOR UPDATE;
    IF NOT FOUND THEN
        o.rule_id := p_rule_id;
        o.tiers_set := '{}';
    END IF;
    IF p_thresholds IS NOT NULL THEN
        IF jsonb_typeof(p_thresholds) <> 'object' THEN
            v_problems := v_problems || format('thresholds must be a JSON object, got %s', jsonb_typeof(p_thresholds));
        ELSE
            FOR v_key, v_val IN SELECT key, value FROM jsonb_each(p_thresholds) LOOP
                IF v_key NOT IN ('info', 'warning', 'error', 'critical') THEN
                    v_problems := v_problems || format('unknown severity %s (info, warning, error, critical)', quote_literal(v_key));
                ELSIF jsonb_typeof(v_val) NOT IN ('number', 'null') THEN
                    v_problems := v_problems || format('%s must be a number or null, got %s', v_key, jsonb_typeof(v_val));
                ELSIF jsonb_typeof(v_val) = 'number' AND abs((v_val #>> '{}')::numeric) > 1e15 THEN
                    v_problems := v_problems || format('%s is out of range', v_key);
                ELSE
                    CASE v_key
                        WHEN 'info' THEN o.info_at := (v_val #>> '{}')::numeric;
                        WHEN 'warning' THEN o.warning_at := (v_val #>> '{}')::numeric;
                        WHEN 'error' THEN o.error_at := (v_val #>> '{}')::numeric;
                        ELSE o.critical_at := (v_val #>> '{}')::numeric;
                    END CASE;
                    IF NOT v_key = ANY (o.tiers_set) THEN
                        o.tiers_set := o.tiers_set || v_key;
                    END IF;
                END IF;
            END LOOP;
        END IF;
    END IF;
    IF p_resolve_after_checks IS NOT NULL AND p_resolve_after_checks NOT BETWEEN 1 AND 1000 THEN
        v_problems := v_problems || format('resolve_after_checks must be between 1 and 1000, got %s', p_resolve_after_checks);
    END IF;
    IF cardinality(v_problems) = 0 THEN
        o.enabled := coalesce(p_enabled, o.enabled);
        o.resolve_after_checks := coalesce(p_resolve_after_checks, o.resolve_after_checks);
        o.updated_at := now();
        o.updated_by := steward.caller_id();
        INSERT INTO steward.alert_rule_overrides VALUES (o.*)
        ON CONFLICT (rule_id) DO UPDATE SET enabled = EXCLUDED.enabled, info_at = EXCLUDED.info_at,
            warning_at = EXCLUDED.warning_at, error_at = EXCLUDED.error_at, critical_at = EXCLUDED.critical_at,
            tiers_set = EXCLUDED.tiers_set, resolve_after_checks = EXCLUDED.resolve_after_checks,
            updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
        -- The result must still be a rule: some tier in use, tiers in order.
        SELECT * INTO v_eff FROM steward.effective_alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
        v_tiers := ARRAY[v_eff.info_at, v_eff.warning_at, v_eff.error_at, v_eff.critical_at];
        IF v_tiers = ARRAY[NULL, NULL, NULL, NULL]::numeric[] THEN
            v_problems := v_problems || 'every severity would be switched off (set enabled => false to switch the rule off)'::text;
        END IF;
        v_prev := NULL;
        FOR i IN 1 .. 4 LOOP
            CONTINUE WHEN v_tiers[i] IS NULL;
            v_name := (ARRAY['info', 'warning', 'error', 'critical'])[i];
            IF v_prev IS NOT NULL AND ((r.direction = 'above' AND v_tiers[i] < v_prev) OR (r.direction = 'below' AND v_tiers[i] > v_prev)) THEN
                v_problems := v_problems || format('%s (%s) is %s a lower severity''s threshold (%s): rule %s fires %s its thresholds',
                                                   v_name, v_tiers[i], CASE r.direction WHEN 'above' THEN 'below' ELSE 'above' END,
                                                   v_prev, p_rule_id, r.direction);
            END IF;
            v_prev := v_tiers[i];
        END LOOP;
    END IF;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid alert rule change for %', p_rule_id
            USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    RETURN (SELECT to_jsonb(e) FROM steward.effective_alert_rules e WHERE e.rule_id OPERATOR(pg_catalog.=) p_rule_id);
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.set_alert_rule(
    p_rule_id text, p_enabled boolean DEFAULT NULL, p_thresholds jsonb DEFAULT NULL,
    p_resolve_after_checks integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('rule', p_rule_id, 'enabled', p_enabled, 'thresholds', p_thresholds, 'resolveAfterChecks', p_resolve_after_checks);
BEGIN
    r := steward._set_alert_rule_impl(p_rule_id, p_enabled, p_thresholds, p_resolve_after_checks);
    PERFORM steward._admin_logged('steward.set_alert_rule', a, NULL);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.set_alert_rule', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Back to the built-in rule (admins).
CREATE FUNCTION steward._reset_alert_rule_impl(p_rule_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM steward.alert_rules WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id) THEN
        RAISE EXCEPTION 'unknown alert rule %', coalesce(quote_literal(p_rule_id), 'NULL') USING ERRCODE = '22023';
    END IF;
    DELETE FROM steward.alert_rule_overrides WHERE rule_id OPERATOR(pg_catalog.=) p_rule_id;
    RETURN (SELECT to_jsonb(e) FROM steward.effective_alert_rules e WHERE e.rule_id OPERATOR(pg_catalog.=) p_rule_id);
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.reset_alert_rule(p_rule_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('rule', p_rule_id);
BEGIN
    r := steward._reset_alert_rule_impl(p_rule_id);
    PERFORM steward._admin_logged('steward.reset_alert_rule', a, NULL);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.reset_alert_rule', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- One row per check: what it found and did, and which rules it could not evaluate.
CREATE TABLE steward.alert_checks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    checked_by  text NOT NULL,
    duration_ms numeric NOT NULL,
    findings    integer NOT NULL,
    opened      integer NOT NULL,
    escalated   integer NOT NULL,
    deescalated integer NOT NULL,
    updated     integer NOT NULL,
    resolved    integer NOT NULL,
    unavailable jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX alert_checks_time ON steward.alert_checks (checked_at);
SELECT pg_catalog.pg_extension_config_dump('steward.alert_checks', '');

-- The notification every transition sends (channel steward_alerts; ids, names and levels
-- only: no statement texts, no details).  Any role may LISTEN, so alerts about a user or a
-- user's configuration (budgets, API keys) carry no object: admins read it with list_alerts.
CREATE FUNCTION steward._alert_notify(p_event text, a steward.performance_alerts, p_previous text DEFAULT NULL) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_notify('steward_alerts', pg_catalog.jsonb_build_object(
        'event', p_event, 'id', a.id, 'rule', a.rule_id, 'alert_type', a.alert_type, 'severity', a.severity,
        'previous_severity', p_previous, 'object_kind', a.object_kind,
        'object', CASE WHEN a.object_kind OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'configuration'])
                       THEN NULL ELSE pg_catalog.left(a.object_name, 512) END,
        'at', pg_catalog.now())::text)
$$;

CREATE FUNCTION steward._severity_rank(p text) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE p WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'error' THEN 2 WHEN 'critical' THEN 3 END $$;

-- Evaluate every rule over one pass of the health report and keep the alerts (the lifecycle
-- at the top of this file).  Returns the number of alerts opened or escalated.
CREATE FUNCTION steward._check_alerts_for(caller oid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_start  timestamptz := clock_timestamp();
    v_rules  jsonb;
    v_eval   jsonb;
    v_report jsonb;
    f record;
    a steward.performance_alerts;
    v_opened integer := 0;
    v_escalated integer := 0;
    v_deescalated integer := 0;
    v_updated integer := 0;
    v_resolved integer := 0;
    v_findings integer := 0;
    v_default_after integer := steward.setting_number('alertResolveAfterChecks')::integer;
BEGIN
    PERFORM steward._require_writable();
    -- One check at a time (two would both open the same alert).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward check_alerts'));
    v_rules := steward._alert_rules_json();
    v_report := steward._health_report_for(caller, steward.setting_number('alertObjectLimit')::integer)
                || jsonb_build_object('aiBudgets', steward._ai_budget_usage(), 'apiKeysDue', steward._ai_keys_due());
    v_eval := steward._report_findings(v_report, v_rules);

    FOR f IN
        SELECT x.*, (x.details IS NOT NULL) AS has_details
          FROM jsonb_to_recordset(v_eval -> 'findings')
               AS x(rule_id text, alert_type text, severity text, object_kind text, object_name text,
                    fingerprint text, value numeric, threshold numeric, message text, details jsonb)
         WHERE x.severity <> 'info'
    LOOP
        v_findings := v_findings + 1;
        SELECT * INTO a FROM steward.performance_alerts p
         WHERE p.fingerprint OPERATOR(pg_catalog.=) f.fingerprint AND p.resolved_at IS NULL
         FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO steward.performance_alerts
                   (alert_type, severity, message, details, rule_id, fingerprint, object_kind, object_name,
                    current_value, severity_history)
            VALUES (f.alert_type, f.severity, f.message,
                    jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                    f.rule_id, f.fingerprint, f.object_kind, f.object_name, f.value,
                    jsonb_build_array(jsonb_build_object('severity', f.severity, 'at', now(), 'value', f.value)))
            RETURNING * INTO a;
            v_opened := v_opened + 1;
            PERFORM steward._alert_notify('opened', a);
        ELSIF a.severity <> f.severity THEN
            UPDATE steward.performance_alerts p
               SET severity = f.severity, message = f.message,
                   details = jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                   current_value = f.value, occurrences = p.occurrences + 1, last_seen_at = now(), clear_checks = 0,
                   severity_history = p.severity_history || jsonb_build_array(jsonb_build_object('severity', f.severity, 'at', now(), 'value', f.value)),
                   -- Escalation wakes an acknowledged alert; de-escalation keeps it quiet.
                   acknowledged_at = CASE WHEN steward._severity_rank(f.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_at END,
                   acknowledged_by = CASE WHEN steward._severity_rank(f.severity) > steward._severity_rank(p.severity) THEN NULL ELSE p.acknowledged_by END
             WHERE p.id OPERATOR(pg_catalog.=) a.id;
            IF steward._severity_rank(f.severity) > steward._severity_rank(a.severity) THEN
                v_escalated := v_escalated + 1;
                PERFORM steward._alert_notify('escalated', p, a.severity)
                   FROM steward.performance_alerts p WHERE p.id OPERATOR(pg_catalog.=) a.id;
            ELSE
                v_deescalated := v_deescalated + 1;
                IF a.acknowledged_at IS NULL THEN
                    PERFORM steward._alert_notify('deescalated', p, a.severity)
                       FROM steward.performance_alerts p WHERE p.id OPERATOR(pg_catalog.=) a.id;
                END IF;
            END IF;
        ELSE
            UPDATE steward.performance_alerts p
               SET message = f.message,
                   details = jsonb_build_object('value', f.value, 'threshold', f.threshold) || coalesce(f.details, '{}'),
                   current_value = f.value, occurrences = p.occurrences + 1, last_seen_at = now(), clear_checks = 0
             WHERE p.id OPERATOR(pg_catalog.=) a.id;
            v_updated := v_updated + 1;
        END IF;
    END LOOP;

    -- Open alerts of evaluated rules that did not fire this time: one more clear check, and
    -- resolved once they reach the rule's resolve_after_checks.
    FOR a IN
        WITH fired AS (
            SELECT x.fingerprint FROM jsonb_to_recordset(v_eval -> 'findings') AS x(fingerprint text, severity text)
             WHERE x.severity <> 'info'
        ), evaluated AS (
            SELECT e.rule_id FROM jsonb_array_elements_text(v_eval -> 'evaluated') AS e(rule_id)
        )
        UPDATE steward.performance_alerts p
           SET clear_checks = p.clear_checks + 1,
               resolved_at = CASE WHEN p.clear_checks + 1 >= coalesce(r.resolve_after_checks, v_default_after) THEN now() END,
               resolution_notes = CASE WHEN p.clear_checks + 1 >= coalesce(r.resolve_after_checks, v_default_after)
                                       THEN format('Resolved automatically: rule %s did not fire for %s consecutive checks (the condition cleared).',
                                                   p.rule_id, p.clear_checks + 1) END
          FROM steward.effective_alert_rules r
         WHERE p.resolved_at IS NULL AND p.fingerprint IS NOT NULL
           AND r.rule_id OPERATOR(pg_catalog.=) p.rule_id
           AND (p.rule_id IN (SELECT rule_id FROM evaluated) OR NOT r.enabled)
           AND p.fingerprint NOT IN (SELECT fingerprint FROM fired)
        RETURNING p.*
    LOOP
        IF a.resolved_at IS NOT NULL THEN
            v_resolved := v_resolved + 1;
            PERFORM steward._alert_notify('resolved', a);
        END IF;
    END LOOP;

    INSERT INTO steward.alert_checks (checked_by, duration_ms, findings, opened, escalated, deescalated, updated, resolved, unavailable)
    VALUES (steward.caller_id(), round((extract(epoch FROM clock_timestamp() - v_start) * 1000)::numeric, 1),
            v_findings, v_opened, v_escalated, v_deescalated, v_updated, v_resolved, coalesce(v_eval -> 'unavailable', '[]'));
    DELETE FROM steward.alert_checks WHERE checked_at < now() - interval '30 days';
    IF jsonb_array_length(coalesce(v_eval -> 'unavailable', '[]')) > 0 THEN
        RAISE NOTICE 'pg_steward: % alert rule(s) could not be evaluated; their alerts were neither raised nor resolved',
                     jsonb_array_length(v_eval -> 'unavailable')
            USING DETAIL = (SELECT string_agg(format('%s: %s', u ->> 'rule_id', u ->> 'reason'), '; ')
                              FROM jsonb_array_elements(v_eval -> 'unavailable') u);
    END IF;
    RETURN v_opened + v_escalated;
END
$$;

CREATE FUNCTION steward._check_alerts(tok bigint) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._check_alerts_for(steward._caller(tok, 'steward.check_alerts')) $$;

CREATE FUNCTION steward.check_alerts() RETURNS integer
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT steward._check_alerts(steward._enter()) $$;

-- The alert list of the dashboard (admins), newest first, with filters and pagination:
-- status (open | acknowledged | unacknowledged | resolved | all; default open), severity,
-- alertType, rule, object (substring), startDate, endDate (created_at).
CREATE FUNCTION steward.list_alerts(filters jsonb DEFAULT '{}', page integer DEFAULT 1, page_size integer DEFAULT 20)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problems text[] := '{}';
    v_status text;
    v_from timestamptz;
    v_to timestamptz;
    v_total bigint;
    v_rows jsonb;
    k text;
BEGIN
    PERFORM steward._check_page(page, page_size);
    filters := coalesce(filters, '{}');
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'filters must be a JSON object' USING ERRCODE = '22023', DETAIL = format('got %s', jsonb_typeof(filters));
    END IF;
    FOR k IN SELECT jsonb_object_keys(filters) LOOP
        IF k NOT IN ('status', 'severity', 'alertType', 'rule', 'object', 'startDate', 'endDate') THEN
            v_problems := v_problems || format('unknown filter %s (status, severity, alertType, rule, object, startDate, endDate)', quote_literal(k));
        ELSIF jsonb_typeof(filters -> k) NOT IN ('string', 'null') THEN
            v_problems := v_problems || format('filter %s must be a string', k);
        END IF;
    END LOOP;
    v_status := coalesce(filters ->> 'status', 'open');
    IF v_status NOT IN ('open', 'acknowledged', 'unacknowledged', 'resolved', 'all') THEN
        v_problems := v_problems || format('status %s is not one of open, acknowledged, unacknowledged, resolved, all', quote_literal(v_status));
    END IF;
    IF filters ->> 'severity' IS NOT NULL AND filters ->> 'severity' NOT IN ('info', 'warning', 'error', 'critical') THEN
        v_problems := v_problems || format('severity %s is not one of info, warning, error, critical', quote_literal(filters ->> 'severity'));
    END IF;
    BEGIN
        v_from := (filters ->> 'startDate')::timestamptz;
        v_to := (filters ->> 'endDate')::timestamptz;
    EXCEPTION WHEN OTHERS THEN
        v_problems := v_problems || 'startDate and endDate must be ISO 8601 timestamps'::text;
    END;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'invalid alert filters' USING ERRCODE = '22023', DETAIL = array_to_string(v_problems, '; ');
    END IF;
    WITH m AS (
        SELECT p.* FROM steward.performance_alerts p
         WHERE CASE v_status
                   WHEN 'open' THEN p.resolved_at IS NULL
                   WHEN 'acknowledged' THEN p.resolved_at IS NULL AND p.acknowledged_at IS NOT NULL
                   WHEN 'unacknowledged' THEN p.resolved_at IS NULL AND p.acknowledged_at IS NULL
                   WHEN 'resolved' THEN p.resolved_at IS NOT NULL
                   ELSE true END
           AND (filters ->> 'severity' IS NULL OR p.severity OPERATOR(pg_catalog.=) (filters ->> 'severity'))
           AND (filters ->> 'alertType' IS NULL OR p.alert_type OPERATOR(pg_catalog.=) (filters ->> 'alertType'))
           AND (filters ->> 'rule' IS NULL OR p.rule_id OPERATOR(pg_catalog.=) (filters ->> 'rule'))
           AND (filters ->> 'object' IS NULL OR strpos(lower(p.object_name), lower(filters ->> 'object')) > 0)
           AND (v_from IS NULL OR p.created_at >= v_from)
           AND (v_to IS NULL OR p.created_at <= v_to)
    )
    SELECT (SELECT count(*) FROM m),
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at DESC, x.id), '[]')
              FROM (SELECT * FROM m ORDER BY m.created_at DESC, m.id OFFSET (page - 1)::bigint * page_size LIMIT page_size) x)
      INTO v_total, v_rows;
    RETURN jsonb_build_object('alerts', v_rows, 'totalCount', v_total, 'page', page, 'pageSize', page_size,
                              'hasMore', (page::bigint * page_size) < v_total);
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('check_alerts',       'steward.check_alerts()',                      'volatile', '{steward_admin,service_role}'),
    ('acknowledge_alert',  'steward.acknowledge_alert(uuid)',             'volatile', '{steward_admin,service_role}'),
    ('resolve_alert',      'steward.resolve_alert(uuid,text)',            'volatile', '{steward_admin,service_role}'),
    ('list_alerts',        'steward.list_alerts(jsonb,integer,integer)',  'stable',   '{steward_admin,service_role}');
