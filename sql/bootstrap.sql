-- pg_steward bootstrap: roles, settings, caller identity.
-- Objects live in schema steward (created by CREATE EXTENSION from the control file).

-- The admin role.  Roles are cluster-wide, so it survives DROP EXTENSION and is reused.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'steward_admin') THEN
        CREATE ROLE steward_admin NOLOGIN;
    END IF;
END
$roles$;

-- Built-in defaults.  Part of the extension script, so never dumped.
CREATE TABLE steward.setting_defaults (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    min_value   numeric,
    max_value   numeric,
    description text NOT NULL
);

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('slowQueryThresholdMs',          '500',  0, NULL, 'A query is slow when its mean execution time exceeds this many milliseconds'),
    ('highBloatThresholdPercent',     '20',   0, 100,  'A table or index is bloated above this estimated percentage'),
    ('lowCacheHitRatioThreshold',     '90',   0, 100,  'Cache hit ratio (percent) below which performance suffers'),
    ('highConnectionUsageThreshold',  '80',   0, 100,  'Connection utilisation (percent of max_connections) that needs attention'),
    ('vacuumOverdueDays',             '7',    0, NULL, 'Days without any VACUUM after which a table with dead tuples is overdue'),
    ('analyzeOverdueDays',            '7',    0, NULL, 'Days without any ANALYZE after which a table needs ANALYZE (and statistics count as stale)'),
    ('unusedIndexDays',               '30',   0, NULL, 'Days without a scan after which an index counts as unused'),
    ('deadTupleRatioThreshold',       '10',   0, NULL, 'Dead tuples as a percentage of live tuples above which a table needs VACUUM'),
    ('longRunningQuerySeconds',       '300',  0, NULL, 'An active query running longer than this is reported'),
    ('idleInTransactionSeconds',      '60',   0, NULL, 'A session idle in a transaction longer than this is reported'),
    ('sequenceUsageThresholdPercent', '75',   0, 100,  'A sequence (or the column it feeds) above this share of its range is reported'),
    ('sequenceCheckLimit',            '1000', 0, NULL, 'At most this many int2/int4-bounded sequences are read per call (each read takes a lock until the transaction ends)'),
    ('bloatMinimumBytes',             '1048576', 0, NULL, 'Tables and indexes smaller than this are never reported as bloated (percentages of a few pages mean little)'),
    ('reportTableLimit',              '50',   1, NULL, 'The report lists this many of the largest tables'),
    ('reportListLimit',               '100',  1, NULL, 'Each list of findings in the report is capped at this many entries (counts stay exact)'),
    ('auditPurgeMinimumDays',         '1',    1, NULL, 'steward.audit_purge() refuses to remove audit entries younger than this many days'),
    ('replicationSlotRetainedBytes',  '1073741824', 0, NULL, 'A replication slot keeping more WAL than this many bytes is reported (slots that retain WAL are a common cause of a full disk)'),
    ('replicationLagBytes',           '67108864', 0, NULL, 'A standby whose replay is behind the primary by more than this many bytes of WAL is reported'),
    ('replicationLagSeconds',         '60',   0, NULL, 'A standby whose replay is behind by more than this many seconds is reported'),
    ('alertResolveAfterChecks',       '2',    1, 1000, 'steward.check_alerts() resolves an alert after its rule has not fired for this many consecutive checks (rules may override it)'),
    ('alertObjectLimit',              '1000', 1, 100000, 'steward.check_alerts() evaluates at most this many objects per list of the report (the largest or worst first)'),
    ('missingIndexMinimumBytes',      '10485760', 0, NULL, 'Tables smaller than this are never reported as missing an index (a sequential scan of a small table is cheap)'),
    ('snapshotRetentionDays',         '90',   1, 3660, 'steward.purge_history() removes table, index and database snapshots (and alert check runs) older than this many days'),
    ('queryLogRetentionDays',         '30',   1, 3660, 'steward.purge_history() removes query_performance_logs rows older than this many days'),
    ('resolvedAlertRetentionDays',    '180',  1, 3660, 'steward.purge_history() removes alerts resolved more than this many days ago'),
    ('maintenanceRetentionDays',      '365',  1, 3660, 'steward.purge_history() removes finished maintenance records older than this many days'),
    ('diskCapacityBytes',             '0',    0, NULL, 'The size steward.size_trend() projects the database towards when no threshold is given (0: none)'),
    ('adminLogRetentionDays',         '365',  30, 36600, 'steward.purge_history() removes admin_log rows older than this many days (younger rows cannot be deleted)');

-- Values an administrator changed.  Dumped with the database (pg_extension_config_dump).
CREATE TABLE steward.settings (
    key        text PRIMARY KEY REFERENCES steward.setting_defaults (key),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.settings', '');

CREATE VIEW steward.effective_settings AS
SELECT d.key,
       coalesce(s.value, d.value) AS value,
       d.value AS default_value,
       CASE WHEN s.key IS NULL THEN 'default' ELSE 'database' END AS source,
       d.description,
       s.updated_at,
       s.updated_by
  FROM steward.setting_defaults d
  LEFT JOIN steward.settings s ON s.key = d.key;

-- Who is calling: steward.caller_id() (text) and steward.caller_uuid() (uuid or NULL) are
-- written in Rust (src/common/identity.rs), the one implementation the audit trigger and the
-- per-request checks share.  The JWT subject PostgREST sets (request.jwt.claim.sub, else the
-- "sub" of request.jwt.claims: what auth.uid() reads) counts only when the session's role is
-- an API role (anon, authenticated, service_role, reached by SET ROLE); otherwise, and when
-- there is none, caller_id() is the session user and caller_uuid() NULL.  They are created
-- right after this file (src/lib.rs orders them before health_tables.sql).

-- Writers call this first: on a hot standby (or in a read-only transaction) they refuse with
-- 25006 and a HINT that says where to go, before touching anything.
CREATE FUNCTION steward._require_writable() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pg_steward cannot change anything on a standby server'
            USING ERRCODE = '25006',
                  DETAIL = 'This server is a hot standby (in recovery): it only reads.',
                  HINT = 'Run this on the primary server; read-only functions (health, report, history, effective configuration, diff) work here.';
    END IF;
    IF pg_catalog.current_setting('transaction_read_only')::boolean THEN
        RAISE EXCEPTION 'pg_steward cannot change anything in a read-only transaction'
            USING ERRCODE = '25006',
                  HINT = 'Run it in a read-write transaction (default_transaction_read_only is on, or the transaction was started READ ONLY).';
    END IF;
END
$$;

-- A numeric setting (thresholds are all numbers).
CREATE FUNCTION steward.setting_number(p_key text) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (value #>> '{}')::numeric FROM steward.effective_settings WHERE key = p_key
$$;

-- Change a setting (admins).  Unknown keys and out-of-range values are refused with 22023.
CREATE FUNCTION steward._set_setting_impl(p_key text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d steward.setting_defaults;
    v numeric;
BEGIN
    PERFORM steward._require_writable();
    SELECT * INTO d FROM steward.setting_defaults WHERE key = p_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting "%"', p_key
            USING ERRCODE = '22023',
                  HINT = 'Known settings: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM steward.setting_defaults);
    END IF;
    IF p_value IS NULL OR jsonb_typeof(p_value) <> 'number' THEN
        RAISE EXCEPTION 'setting "%" must be a number', p_key
            USING ERRCODE = '22023', DETAIL = 'got ' || coalesce(jsonb_typeof(p_value), 'null');
    END IF;
    v := (p_value #>> '{}')::numeric;
    IF (d.min_value IS NOT NULL AND v < d.min_value) OR (d.max_value IS NOT NULL AND v > d.max_value) THEN
        RAISE EXCEPTION 'setting "%" out of range', p_key
            USING ERRCODE = '22023',
                  DETAIL = format('%s is outside [%s, %s]', v, coalesce(d.min_value::text, '-inf'), coalesce(d.max_value::text, 'inf'));
    END IF;
    INSERT INTO steward.settings (key, value, updated_at, updated_by)
    VALUES (p_key, p_value, now(), steward.caller_id())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
    RETURN p_value;
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.set_setting(p_key text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('key', p_key, 'value', p_value);
BEGIN
    r := steward._set_setting_impl(p_key, p_value);
    PERFORM steward._admin_logged('steward.set_setting', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.set_setting', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

-- Back to the built-in default (admins).
CREATE FUNCTION steward._reset_setting_impl(p_key text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM steward._require_writable();
    IF NOT EXISTS (SELECT 1 FROM steward.setting_defaults WHERE key = p_key) THEN
        RAISE EXCEPTION 'unknown setting "%"', p_key USING ERRCODE = '22023';
    END IF;
    DELETE FROM steward.settings WHERE key = p_key;
    RETURN (SELECT value FROM steward.setting_defaults WHERE key = p_key);
END
$$;

-- The entry point: the body above, and one row of steward.admin_log for its outcome.
CREATE FUNCTION steward.reset_setting(p_key text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    a jsonb := jsonb_build_object('key', p_key);
BEGIN
    r := steward._reset_setting_impl(p_key);
    PERFORM steward._admin_logged('steward.reset_setting', a, r);
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    PERFORM steward._admin_log_failed('steward.reset_setting', a, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
