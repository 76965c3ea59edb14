#!/usr/bin/env bash
# Maintenance executor overhead and weekly_maintenance() at scale (issue #3), in one run:
#   1. the same table, the same amount of dead tuples each time: VACUUM typed in psql versus
#      steward.vacuum() (background worker, records, checks) — budget: <= 1.1x + 50 ms;
#   2. steward.weekly_maintenance() on TABLES small tables (default 10 000): completes, time.
#   bash benches/maintenance.sh     (PROFILE=release by default; RUNS=5; TABLES=10000)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
RUNS=${RUNS:-5}
TABLES=${TABLES:-10000}
export PROFILE=${PROFILE:-release}
DIR=/tmp/pg_steward_bench_maint
PORT=${PG_STEWARD_BENCH_PORT:-54332}

ensure_all
install_extension
start_server "$DIR" "$PORT" "max_locks_per_transaction = 256" "shared_buffers = '256MB'" "autovacuum = off"
trap 'stop_server "$DIR"' EXIT
psql_at "$DIR" "$PORT" -c "CREATE EXTENSION pg_steward" \
    -c "SELECT steward.set_setting('maintenancePeakStartHour', '0'), steward.set_setting('maintenancePeakEndHour', '0'), steward.set_setting('maintenanceRateLimitPerMinute', '1000')" >/dev/null
psql_at "$DIR" "$PORT" -c "CREATE TABLE bench_t (id int PRIMARY KEY, v int, pad text)" \
    -c "INSERT INTO bench_t SELECT g, g, repeat('x', 100) FROM generate_series(1, 200000) g" -c "VACUUM ANALYZE bench_t" >/dev/null

# One psql session; each side gets the same fresh dead tuples (20 % of the rows updated).
script=$(mktemp)
{
    echo '\set QUIET on'
    for i in $(seq 1 "$RUNS"); do
        cat <<SQL
UPDATE bench_t SET v = v + 1 WHERE id % 5 = $((i % 5));
SELECT clock_timestamp() AS t0 \gset
VACUUM bench_t;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1) AS direct \gset
UPDATE bench_t SET v = v + 1 WHERE id % 5 = $((i % 5));
SELECT clock_timestamp() AS t0 \gset
SELECT status FROM steward.vacuum('bench_t') \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1) AS steward \gset
\echo run $i :direct :steward :status
SQL
    done
} > "$script"
results=$(psql_at "$DIR" "$PORT" -f "$script" | grep '^run')
rm -f "$script"
echo "$results"
echo "$results" | awk -v runs="$RUNS" '
    { d += $3; s += $4; if ($5 != "completed") bad = 1 }
    END {
        d /= runs; s /= runs
        printf "\nVACUUM of bench_t (200 000 rows, 40 000 dead each time), mean of %d runs:\n", runs
        printf "  direct in psql:      %8.1f ms\n", d
        printf "  steward.vacuum():    %8.1f ms   (%.2fx; budget 1.1x + 50 ms = %.1f ms) %s\n", s, s / d, d * 1.1 + 50,
               (s <= d * 1.1 + 50 && !bad) ? "ok" : "OVER BUDGET"
    }'

log "creating ${TABLES} small tables"
psql_at "$DIR" "$PORT" <<SQL >/dev/null
DO \$\$
BEGIN
    FOR i IN 1..${TABLES} LOOP
        EXECUTE format('CREATE TABLE public.%I (id int PRIMARY KEY, v int)', 'w' || i);
        EXECUTE format('INSERT INTO public.%I SELECT g, g FROM generate_series(1, 20) g', 'w' || i);
        IF i % 500 = 0 THEN COMMIT; END IF;
    END LOOP;
END
\$\$;
SQL
start=$(date +%s%N)
message=$(psql_at "$DIR" "$PORT" -At -c "SELECT steward.weekly_maintenance()")
end=$(date +%s%N)
echo
echo "steward.weekly_maintenance() on $((TABLES + 1)) tables: $(( (end - start) / 1000000 )) ms"
echo "  $message"
failed=$(psql_at "$DIR" "$PORT" -At -c "SELECT count(*) FROM steward.maintenance_operations WHERE status <> 'completed'")
echo "  operations not completed: $failed"
[ "$failed" = 0 ]
