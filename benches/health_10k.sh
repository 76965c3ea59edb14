#!/usr/bin/env bash
# Health metrics on a database with 10 000 tables and 20 000 indexes, in one run, side by
# side with the naive table list (pg_total_relation_size per table, sorted).
#   bash benches/health_10k.sh            (PROFILE=release by default; TABLES=10000)
#   REUSE=1 bash benches/health_10k.sh    (keep the database of the previous run)
# Prints one line per function: median-free pgbench latency average over RUNS runs, the
# budget from the issue, and the ratio to the naive baseline measured in the same run.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
TABLES=${TABLES:-10000}
RUNS=${RUNS:-5}
export PROFILE=${PROFILE:-release}
DIR=/tmp/pg_steward_bench
PORT=${PG_STEWARD_BENCH_PORT:-54331}

ensure_all
install_extension
# The naive baseline opens every table and index (one lock each): it needs a lock table
# larger than the default to run at all.  pg_steward's functions open no relation.
if [ "${REUSE:-0}" = 1 ] && [ -d "$DIR/data" ]; then
    # Iterating on the extension: keep the 10 000-table database, reinstall the extension.
    stop_server "$DIR"
    sudo -u postgres "${PG_BIN}/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
    trap 'stop_server "$DIR"' EXIT
    psql_at "$DIR" "$PORT" -c "DROP EXTENSION IF EXISTS pg_steward CASCADE" -c "CREATE EXTENSION pg_steward"
else
    start_server "$DIR" "$PORT" "max_locks_per_transaction = 512" "shared_buffers = '512MB'"
    trap 'stop_server "$DIR"' EXIT

    log "creating ${TABLES} tables with 2 indexes each"
    psql_at "$DIR" "$PORT" -c "CREATE EXTENSION pg_steward; CREATE EXTENSION pgstattuple;"
    psql_at "$DIR" "$PORT" <<SQL
DO \$\$
BEGIN
    FOR i IN 1..${TABLES} LOOP
        EXECUTE format('CREATE TABLE public.%I (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int, label text)', 't' || i);
        EXECUTE format('CREATE INDEX %I ON public.%I (v)', 't' || i || '_v', 't' || i);
        IF i % 10 = 0 THEN
            EXECUTE format('INSERT INTO public.%I (v, label) SELECT g, md5(g::text) FROM generate_series(1, 200) g', 't' || i);
        END IF;
        IF i % 500 = 0 THEN COMMIT; END IF;
    END LOOP;
END
\$\$;
SQL
fi
psql_at "$DIR" "$PORT" -c "ANALYZE" -c "SELECT pg_stat_force_next_flush()" >/dev/null
psql_at "$DIR" "$PORT" -At -c "SELECT format('database: %s tables, %s indexes', (SELECT count(*) FROM pg_stat_user_tables), (SELECT count(*) FROM pg_stat_user_indexes))"

measure() { # name budget_ms sql -> prints "name ms"
    local f; f=$(mktemp); echo "$3" > "$f"
    local ms
    # A failed transaction makes pgbench report no latency (or exit non-zero): say FAILED,
    # never a fast-looking number.
    ms=$("${PG_BIN}/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -t "$RUNS" -f "$f" postgres 2>/dev/null \
          | awk -F' = ' '/number of failed transactions: [1-9]/ {failed=1} /latency average/ {ms=$2+0} END {if (!failed && ms > 0) print ms}')
    rm -f "$f"
    echo "${ms:-FAILED}"
}

NAIVE_SQL="SELECT count(*) FROM (SELECT s.relid, pg_total_relation_size(s.relid) AS size FROM pg_stat_user_tables s ORDER BY size DESC) x;"
status=0
naive=$(measure naive 0 "$NAIVE_SQL")
printf '\n%-44s %10s %10s %14s  %s\n' "function (${RUNS} runs each)" "ms" "budget" "vs naive list" "verdict"
printf '%-44s %10.1f %10s %14s\n' "naive: pg_total_relation_size per table" "$naive" "-" "1.00x"
while IFS='|' read -r name budget sql; do
    ms=$(measure "$name" "$budget" "$sql")
    if [ "$ms" = FAILED ]; then
        printf '%-44s %10s %10s %14s  %s\n' "$name" "-" "${budget}" "-" "FAILED"
        status=1
        continue
    fi
    verdict=$(awk -v m="$ms" -v b="$budget" 'BEGIN { print (m <= b) ? "ok" : "OVER BUDGET" }')
    printf '%-44s %10.1f %10s %13.2fx  %s\n' "$name" "$ms" "${budget}" "$(awk -v m="$ms" -v n="$naive" 'BEGIN{print m/n}')" "$verdict"
done <<'LIST'
steward.table_health()|300|SELECT count(*) FROM steward.table_health();
steward.index_health()|300|SELECT count(*) FROM steward.index_health();
steward.database_overview()|300|SELECT count(*) FROM steward.database_overview();
steward.connection_pool_metrics()|300|SELECT count(*) FROM steward.connection_pool_metrics();
steward.slow_queries()|300|SELECT count(*) FROM steward.slow_queries();
steward.unused_indexes()|300|SELECT count(*) FROM steward.unused_indexes();
steward.duplicate_indexes()|300|SELECT count(*) FROM steward.duplicate_indexes();
steward.table_bloat()|300|SELECT count(*) FROM steward.table_bloat();
steward.index_bloat()|300|SELECT count(*) FROM steward.index_bloat();
steward.table_wraparound()|300|SELECT count(*) FROM steward.table_wraparound();
steward.sequence_usage()|300|SELECT count(*) FROM steward.sequence_usage();
steward.health_report() (full report)|1000|SELECT length(steward.health_report()::text);
LIST
exit "$status"
