#!/usr/bin/env bash
# Trend queries over 90 days of hourly snapshots of 10 000 tables and 10 000 indexes (issue #16:
# one table ≤ 20 ms, the whole database ≤ 200 ms), side by side with the naive whole-database
# trend (the sum of every table's size per snapshot, what a client computes from
# table_bloat_snapshots alone), in the same run.
#
#   bash benches/trends.sh           fills database steward_trends (21.6 million rows in each
#                                    snapshot table, several minutes), then measures
# Environment: PG_STEWARD_PG_BIN_DIR, PG_STEWARD_BENCH_DIR (/tmp/pg_steward_bench_trends),
# PG_STEWARD_BENCH_PORT (54337), CARGO_TARGET_DIR, SKIP_INSTALL=1, PROFILE (release), ROUNDS (7),
# DAYS (90), TABLES (10000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
export PROFILE=${PROFILE:-release}
DIR=${PG_STEWARD_BENCH_DIR:-/tmp/pg_steward_bench_trends}
PORT=${PG_STEWARD_BENCH_PORT:-54337}
ROUNDS=${ROUNDS:-7}
DAYS=${DAYS:-90}
TABLES=${TABLES:-10000}
for v in ROUNDS DAYS TABLES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
DB=steward_trends

ensure_all
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension
trap 'stop_server "$DIR"' EXIT
if [ -d "$DIR/data" ]; then
    stop_server "$DIR"
    sudo -u postgres "${PG_BIN}/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 120 start >/dev/null
else
    start_server "$DIR" "$PORT" "shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
fi
q() { psql_at "$DIR" "$PORT" -d "$DB" "$@"; }
if ! psql_at "$DIR" "$PORT" -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    psql_at "$DIR" "$PORT" -d postgres -c "CREATE DATABASE $DB" >/dev/null
fi
q -q -c "DROP EXTENSION IF EXISTS pg_steward CASCADE" -c "CREATE EXTENSION pg_steward" >/dev/null 2>&1 || true
# The snapshot tables belong to the extension, which is re-created with the build under test:
# every run fills them again (timed).
log "filling ${DAYS} days of hourly snapshots for ${TABLES} tables and ${TABLES} indexes"
start=$(date +%s)
q -q <<SQL
SET synchronous_commit = off;
INSERT INTO steward.database_snapshots (snapshot_timestamp, database_size_bytes, next_xid, frozen_xid_age)
SELECT now() - make_interval(hours => h), 50e9 - h * 1e7, 10e6 - h * 5000, 1e6 FROM generate_series(0, ${DAYS} * 24 - 1) h;
INSERT INTO steward.table_bloat_snapshots (snapshot_timestamp, schemaname, tablename, actual_size_bytes, confidence)
SELECT now() - make_interval(hours => h), 'tenant_' || (t / 100), 't_' || t, 1000000 + t * 10 - h * 3, 'fresh'
  FROM generate_series(0, ${DAYS} * 24 - 1) h, generate_series(1, ${TABLES}) t;
INSERT INTO steward.index_usage_snapshots (snapshot_timestamp, schemaname, tablename, indexname, idx_scan, idx_tup_read,
                                           idx_tup_fetch, index_size_bytes, table_size_bytes)
SELECT now() - make_interval(hours => h), 'tenant_' || (t / 100), 't_' || t, 't_' || t || '_pkey',
       CASE WHEN h > 1000 THEN (${DAYS} * 24 - h) * 7 ELSE (1000 - h) * 7 END, 0, 0, 8192, 16384
  FROM generate_series(0, ${DAYS} * 24 - 1) h, generate_series(1, ${TABLES}) t;
VACUUM (ANALYZE) steward.database_snapshots, steward.table_bloat_snapshots, steward.index_usage_snapshots;
SQL
log "filled in $(( $(date +%s) - start )) s: $(q -At -c "SELECT format('%s table rows, %s index rows, %s database rows', (SELECT count(*) FROM steward.table_bloat_snapshots), (SELECT count(*) FROM steward.index_usage_snapshots), (SELECT count(*) FROM steward.database_snapshots))")"

# Each query: a new connection, 3 calls, the mean; ROUNDS rounds, the order rotated each round.
declare -A SQL=(
    [one_table]="SELECT steward.size_trend('tenant_50.t_5000', ${DAYS}, 100);"
    [one_index]="SELECT steward.index_usage_trend('tenant_50.t_5000_pkey', ${DAYS}, 100);"
    [database]="SELECT steward.size_trend(NULL, ${DAYS}, 100);"
    [xid]="SELECT steward.xid_trend(${DAYS}, 100);"
    [naive_database]="SELECT jsonb_agg(x) FROM (SELECT date_bin('21 hours 36 minutes', snapshot_timestamp, now() - interval '${DAYS} days') AS at, sum(actual_size_bytes) FROM steward.table_bloat_snapshots WHERE snapshot_timestamp >= now() - interval '${DAYS} days' GROUP BY 1 ORDER BY 1) x;"
)
NAMES=(one_table one_index database xid naive_database)
WORK=$(mktemp -d)
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        n=${NAMES[$(( (i + r) % ${#NAMES[@]} ))]}
        t=$({ echo '\o /dev/null'; echo '\timing on'; for c in 1 2 3; do echo "${SQL[$n]}"; done; } | q -At 2>&1 \
            | grep -o '^Time: [0-9.]*' | awk '{s += $2; n++} END {printf "%.2f", s / n}')
        echo "$r $n $t" >> "$WORK/raw"
    done
done
awk '
function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                   return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ v[$2, $1] = $3; rounds[$1] = 1 }
END {
  budget["one_table"] = 20; budget["one_index"] = 20; budget["database"] = 200; budget["xid"] = 200
  split("one_table one_index database xid naive_database", names, " ")
  printf "%-15s %10s %14s %10s %s\n", "query", "median ms", "vs naive (med)", "budget", "verdict"
  for (k = 1; k <= 5; k++) { n = names[k]; c = 0; delete a; delete q
    for (r in rounds) { c++; a[c] = v[n, r]; q[c] = v[n, r] / v["naive_database", r] }
    m = median(a, c); mq = median(q, c)
    printf "%-15s %10.2f %13.4fx %10s %s\n", n, m, mq, (n in budget ? budget[n] " ms" : "-"), (n in budget ? (m <= budget[n] ? "ok" : "over") : "baseline") }
}' "$WORK/raw"
rm -rf "$WORK"
