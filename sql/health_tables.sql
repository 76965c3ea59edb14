-- Monitoring tables of CONTRACT §6 and the alerts table of §2.
-- All are data the administrators own, so pg_dump keeps them (pg_extension_config_dump).

CREATE TABLE steward.query_performance_logs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    query_text          text NOT NULL,
    query_hash          text,
    duration_ms         numeric NOT NULL CHECK (duration_ms >= 0),
    execution_timestamp timestamptz NOT NULL DEFAULT now(),
    user_id             uuid,
    endpoint            text,
    parameters          jsonb,
    error_message       text,
    stack_trace         text,
    is_slow             boolean GENERATED ALWAYS AS (duration_ms > 500) STORED
);
CREATE INDEX query_performance_logs_time ON steward.query_performance_logs (execution_timestamp);
SELECT pg_catalog.pg_extension_config_dump('steward.query_performance_logs', '');

CREATE TABLE steward.index_usage_snapshots (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot_timestamp timestamptz NOT NULL DEFAULT now(),
    schemaname         name NOT NULL,
    tablename          name NOT NULL,
    indexname          name NOT NULL,
    idx_scan           bigint NOT NULL,
    idx_tup_read       bigint NOT NULL,
    idx_tup_fetch      bigint NOT NULL,
    index_size_bytes   bigint NOT NULL,
    table_size_bytes   bigint NOT NULL,
    indexrelid         oid
);
CREATE INDEX index_usage_snapshots_time ON steward.index_usage_snapshots (snapshot_timestamp);
CREATE INDEX index_usage_snapshots_index ON steward.index_usage_snapshots (schemaname, indexname, snapshot_timestamp);
SELECT pg_catalog.pg_extension_config_dump('steward.index_usage_snapshots', '');

-- Per index: the scan count last seen and since when it has not moved.  Maintained by
-- capture_index_usage_snapshot(); lets index health tell how long a used index has been idle.
CREATE TABLE steward.index_usage_state (
    indexrelid     oid PRIMARY KEY,
    idx_scan       bigint NOT NULL,
    unchanged_since timestamptz NOT NULL,
    observed_at    timestamptz NOT NULL
);

CREATE TABLE steward.table_bloat_snapshots (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot_timestamp   timestamptz NOT NULL DEFAULT now(),
    schemaname           name NOT NULL,
    tablename            name NOT NULL,
    actual_size_bytes    bigint NOT NULL,
    estimated_size_bytes bigint,
    bloat_bytes          bigint,
    bloat_ratio          numeric,       -- percent of the table that is bloat; NULL when unknown
    dead_tuples          bigint,
    live_tuples          bigint,
    confidence           text NOT NULL CHECK (confidence IN ('fresh', 'stale', 'unknown')),
    relid                oid
);
CREATE INDEX table_bloat_snapshots_time ON steward.table_bloat_snapshots (snapshot_timestamp);
CREATE INDEX table_bloat_snapshots_table ON steward.table_bloat_snapshots (schemaname, tablename, snapshot_timestamp DESC);
SELECT pg_catalog.pg_extension_config_dump('steward.table_bloat_snapshots', '');

CREATE TABLE steward.performance_alerts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_type       text NOT NULL CHECK (alert_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    message          text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  uuid,
    resolved_at      timestamptz,
    resolved_by      uuid,
    resolution_notes text,
    -- Kept by steward.check_alerts() (sql/alert_rules.sql): the rule and object an alert is
    -- about (fingerprint = rule:object, one open alert each), how often and how recently it
    -- fired, its current value, every severity it had, checks since it last fired.
    rule_id          text,
    fingerprint      text,
    object_kind      text,
    object_name      text,
    occurrences      integer NOT NULL DEFAULT 1,
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    current_value    numeric,
    severity_history jsonb NOT NULL DEFAULT '[]',
    clear_checks     integer NOT NULL DEFAULT 0
);
CREATE INDEX performance_alerts_open ON steward.performance_alerts (created_at DESC) WHERE resolved_at IS NULL;
CREATE UNIQUE INDEX performance_alerts_open_fingerprint ON steward.performance_alerts (fingerprint)
    WHERE resolved_at IS NULL AND fingerprint IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('steward.performance_alerts', '');
