#!/usr/bin/env bash
# Applying a migration through pg_steward's executor against the same script typed at psql,
# interleaved (the machine's speed drifts), RUNS times each:
#   psql:      pgbench -t 1 of the script itself (one transaction, as migration_apply runs it)
#   executor:  pgbench -t 1 of SELECT steward.migration_apply(v) for a migration with that script
#              (checks, record, background worker as the caller, registry update, outcome)
# Budget (issue #15): executor <= 1.1 x psql + 50 ms.  Prints medians and the verdict.
#   RUNS=7 ROWS=200000 bash benches/migrate_apply.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
RUNS=${RUNS:-7}
ROWS=${ROWS:-200000}
export PROFILE=${PROFILE:-release}
DIR=/tmp/pg_steward_bench_migrate
PORT=${PG_STEWARD_BENCH_PORT:-54333}

ensure_all
install_extension
start_server "$DIR" "$PORT" "shared_buffers = '256MB'"
trap 'stop_server "$DIR"' EXIT
psql_at "$DIR" "$PORT" -c "CREATE EXTENSION pg_steward" >/dev/null

script() { # table name -> the migration's up script
    cat <<SQL
CREATE TABLE public.$1 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL, n int NOT NULL);
INSERT INTO public.$1 (label, n) SELECT 'row ' || g, g % 1000 FROM generate_series(1, ${ROWS}) g;
CREATE INDEX $1_n ON public.$1 (n);
ALTER TABLE public.$1 ADD COLUMN flagged boolean NOT NULL DEFAULT false;
SQL
}

latency() { # file -> ms of one transaction
    "${PG_BIN}/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -t 1 -f "$1" postgres 2>&1 \
        | awk -F' = ' '/number of failed transactions: [1-9]/ {bad=1} /latency average/ {ms=$2+0} END {if (!bad && ms > 0) print ms; else print "FAILED"}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

psql_ms=(); exec_ms=()
tmp=$(mktemp -d)
run_psql() { # i: the script in one transaction
    { echo "BEGIN;"; script "bench_psql_$1"; echo "COMMIT;"; } >"$tmp/psql.sql"
    psql_ms+=("$(latency "$tmp/psql.sql")")
    psql_at "$DIR" "$PORT" -c "DROP TABLE public.bench_psql_$1" >/dev/null
}
run_executor() { # i: the same script as migration i
    local i=$1
    # psql variables are interpolated in scripts, not in -c: the statement comes on stdin.
    echo "SELECT steward.migration_add(:v, 'bench', :'up', :'down') IS NOT NULL;" \
        | psql_at "$DIR" "$PORT" -v up="$(script "bench_mig_$i")" -v down="DROP TABLE public.bench_mig_$i" -v v="$i" >/dev/null
    echo "SELECT steward.migration_apply($i);" >"$tmp/apply.sql"
    exec_ms+=("$(latency "$tmp/apply.sql")")
    psql_at "$DIR" "$PORT" -c "SELECT steward.migration_rollback($i)" >/dev/null
    psql_at "$DIR" "$PORT" -c "DELETE FROM steward.schema_migrations WHERE version = $i" >/dev/null
}
for i in $(seq 1 "$RUNS"); do
    # Alternate which goes first, so neither always runs on a warmer cache.
    if [ $((i % 2)) = 1 ]; then run_psql "$i"; run_executor "$i"; else run_executor "$i"; run_psql "$i"; fi
done
rm -rf "$tmp"
for x in "${psql_ms[@]}" "${exec_ms[@]}"; do
    [ "$x" != FAILED ] || { echo "a run failed; no figures" >&2; exit 1; }
done
p=$(printf '%s\n' "${psql_ms[@]}" | median)
e=$(printf '%s\n' "${exec_ms[@]}" | median)
budget=$(awk -v p="$p" 'BEGIN {printf "%.1f", 1.1 * p + 50}')
printf '\n%-52s %10s\n' "measurement (${RUNS} runs each, interleaved, median)" "ms"
printf '%-52s %10.1f\n' "the script in one transaction (pgbench -t 1)" "$p"
printf '%-52s %10.1f\n' "steward.migration_apply(v) of the same script" "$e"
printf '%-52s %10s\n' "budget: 1.1 x psql + 50 ms" "$budget"
printf '%-52s %10s\n' "overhead (executor - psql)" "$(awk -v e="$e" -v p="$p" 'BEGIN {printf "%.1f", e - p}')"
printf '%-52s %10s\n' "ratio executor / psql" "$(awk -v e="$e" -v p="$p" 'BEGIN {printf "%.3f", e / p}')"
awk -v e="$e" -v b="$budget" 'BEGIN { if (e <= b) print "verdict: ok"; else { print "verdict: OVER BUDGET"; exit 1 } }'
