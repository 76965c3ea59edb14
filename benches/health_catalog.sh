#!/usr/bin/env bash
# Health metrics at catalog scale (issue #14: "a schema per tenant reaches 100 000 tables"),
# side by side with the naive table list (pg_total_relation_size per table, sorted), in one run.
#
#   bash benches/health_catalog.sh                    100 000 tables, 2 indexes each (PK + one)
#   TABLES=10000 TABLES_PER_SCHEMA=0 bash benches/health_catalog.sh     (what health_10k.sh runs)
#   REUSE=1 bash benches/health_catalog.sh            keep the database (only reinstall the extension)
#
# The database is created by the bench: TABLES tables (id bigint identity primary key, v int,
# label text) with an index on v, TABLES_PER_SCHEMA to a schema tenant_<n> (0: all in public),
# one table in ten holding 200 rows, all analysed; created by JOBS sessions, committing every
# 250 tables.  An interrupted creation resumes where it stopped (REUSE=1 or not: a database
# whose creation did not finish is never thrown away).
#
# Measurements, ROUNDS rounds, the order of the functions rotated every round (this machine's
# speed drifts by tens of percent within minutes): each round measures the naive list once,
# then for every function opens a new connection and calls it CALLS times (psql \timing, client
# side).  Per function: the median over rounds of the mean of the CALLS calls of a connection
# (what the budgets are checked against, as health_10k.sh always measured: one cold call and
# warm ones), the median first (cold) call, the median warm call, the ratio of the per-round
# mean to the naive list of the same round (median over rounds), and the backend's memory after
# its calls, read from /proc/self/status by the backend itself (pg_read_file, superuser):
# VmHWM (peak resident set, which counts the shared buffers the backend touched), RssAnon
# (private memory still held after the calls: the per-backend catalog cache and what malloc
# kept) and "private peak" = VmHWM - RssShmem - RssFile at the end (a lower bound of the peak of
# private memory: shared and file pages only accumulate in a backend).
#
# Environment: PG_STEWARD_PG_BIN_DIR (another PostgreSQL installation, see scripts/lib.sh),
# PG_STEWARD_BENCH_PORT, PG_STEWARD_BENCH_DIR, CARGO_TARGET_DIR, SKIP_INSTALL=1 (use the
# installed build), CREATE_ONLY=1 (create the database and stop), NAIVE=0 (skip the naive
# list), SHARED_BUFFERS, BUDGET_MS / REPORT_BUDGET_MS (default by scale: 300/1000 up to
# 10 000 tables, 1000/2000 above).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
TABLES=${TABLES:-100000}
TABLES_PER_SCHEMA=${TABLES_PER_SCHEMA:-100}
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-3}
export PROFILE=${PROFILE:-release}
DIR=${PG_STEWARD_BENCH_DIR:-/tmp/pg_steward_bench_catalog}
PORT=${PG_STEWARD_BENCH_PORT:-54336}
SHARED_BUFFERS=${SHARED_BUFFERS:-2GB}
for v in TABLES TABLES_PER_SCHEMA JOBS ROUNDS CALLS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
if [ "$TABLES" -le 10000 ]; then
    BUDGET_MS=${BUDGET_MS:-300}; REPORT_BUDGET_MS=${REPORT_BUDGET_MS:-1000}
else
    BUDGET_MS=${BUDGET_MS:-1000}; REPORT_BUDGET_MS=${REPORT_BUDGET_MS:-2000}
fi
# The naive baseline opens every table, TOAST table and index and keeps each lock to the end
# of its transaction: 100 000 tables with 2 indexes are ~500 000 locks.  The shared lock table
# holds max_locks_per_transaction × (max_connections + max_prepared_transactions) of them.
LOCKS=$(( (TABLES * 6 / 100) + 512 ))
SETTINGS=("max_locks_per_transaction = ${LOCKS}" "shared_buffers = '${SHARED_BUFFERS}'" "work_mem = '4MB'")

ensure_all
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension

trap 'stop_server "$DIR"' EXIT
if [ -d "$DIR/data" ]; then
    # Keep the database (REUSE=1, or a creation that did not finish); settings as above.
    stop_server "$DIR"
    if [ "${REUSE:-0}" = 1 ] || [ ! -f "$DIR/created" ]; then
        opts=$(printf -- "-c %s " "max_locks_per_transaction=${LOCKS}" "shared_buffers=${SHARED_BUFFERS}")
        sudo -u postgres "${PG_BIN}/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -o "$opts" -w -t 120 start >/dev/null
    else
        start_server "$DIR" "$PORT" "${SETTINGS[@]}"
    fi
else
    start_server "$DIR" "$PORT" "${SETTINGS[@]}"
fi

if [ "$(cat "$DIR/created" 2>/dev/null)" != "${TABLES}/${TABLES_PER_SCHEMA}" ]; then
    log "creating ${TABLES} tables with 2 indexes each (${JOBS} sessions; resumes an interrupted creation)"
    psql_at "$DIR" "$PORT" -c "CREATE EXTENSION IF NOT EXISTS pgstattuple"
    create_range() { # first last
        psql_at "$DIR" "$PORT" <<SQL
DO \$\$
DECLARE
    s text;
    t text;
BEGIN
    FOR i IN $1..$2 LOOP
        s := CASE WHEN ${TABLES_PER_SCHEMA} > 0 THEN 'tenant_' || ((i - 1) / greatest(${TABLES_PER_SCHEMA}, 1) + 1) ELSE 'public' END;
        t := 't' || i;
        CONTINUE WHEN to_regclass(format('%I.%I', s, t)) IS NOT NULL;
        IF to_regnamespace(quote_ident(s)) IS NULL THEN EXECUTE format('CREATE SCHEMA %I', s); END IF;
        EXECUTE format('CREATE TABLE %I.%I (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int, label text)', s, t);
        EXECUTE format('CREATE INDEX %I ON %I.%I (v)', t || '_v', s, t);
        IF i % 10 = 0 THEN
            EXECUTE format('INSERT INTO %I.%I (v, label) SELECT g, md5(g::text) FROM generate_series(1, 200) g', s, t);
        END IF;
        IF i % 250 = 0 THEN COMMIT; END IF;
    END LOOP;
END
\$\$;
SQL
    }
    # Ranges aligned to whole schemas, so no two sessions create the same schema.
    unit=$(( TABLES_PER_SCHEMA > 0 ? TABLES_PER_SCHEMA : 1 ))
    per_job=$(( ( (TABLES + JOBS - 1) / JOBS + unit - 1) / unit * unit ))
    pids=()
    for ((j = 0; j < JOBS; j++)); do
        first=$(( j * per_job + 1 )); last=$(( (j + 1) * per_job < TABLES ? (j + 1) * per_job : TABLES ))
        [ "$first" -le "$last" ] || continue
        create_range "$first" "$last" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    # VACUUM too: after a mass creation autovacuum otherwise works through the catalogs and
    # the new tables for minutes, and every pg_class update it makes is an invalidation.
    log "VACUUM (ANALYZE)"
    psql_at "$DIR" "$PORT" -c "VACUUM (ANALYZE)"
    echo "${TABLES}/${TABLES_PER_SCHEMA}" | as_root tee "$DIR/created" >/dev/null
fi
[ "${CREATE_ONLY:-0}" = 1 ] && exit 0

psql_at "$DIR" "$PORT" -c "DROP EXTENSION IF EXISTS pg_steward CASCADE" -c "CREATE EXTENSION pg_steward" >/dev/null
psql_at "$DIR" "$PORT" -c "SELECT pg_stat_force_next_flush()" >/dev/null
# Measure a quiet database: wait (at most 5 minutes) until no autovacuum worker runs.
for ((i = 0; i < 300; i++)); do
    busy=$(psql_at "$DIR" "$PORT" -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
    [ "$busy" = 0 ] && break
    [ $((i % 30)) = 0 ] && log "waiting for ${busy} autovacuum worker(s) to finish"
    sleep 1
done
psql_at "$DIR" "$PORT" -At -c "SELECT format('database: %s tables, %s indexes, %s pg_class rows, %s pg_attribute rows; shared_buffers %s, max_locks_per_transaction %s',
    (SELECT count(*) FROM pg_stat_user_tables), (SELECT count(*) FROM pg_stat_user_indexes),
    (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute),
    current_setting('shared_buffers'), current_setting('max_locks_per_transaction'))"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; stop_server "$DIR"' EXIT

# session NAME SQL -> appends "NAME ms1 ms2 ... | VmHWM RssAnon RssShmem RssFile" (kB) to $WORK/raw.
# One new connection; a failed call stops psql (ON_ERROR_STOP) and the line says FAILED.
session() {
    local name=$1 sql=$2 calls=$3 out
    out=$({
        echo '\o /dev/null'
        echo '\timing on'
        for ((c = 0; c < calls; c++)); do echo "$sql"; done
        echo '\timing off'
        echo '\o'
        echo "SELECT 'mem', (SELECT string_agg(split_part(l, ':', 2), ' ' ORDER BY o) FROM unnest(string_to_array(pg_read_file('/proc/self/status'), E'\n')) WITH ORDINALITY AS u(l, o) WHERE split_part(l, ':', 1) IN ('VmHWM', 'RssAnon', 'RssFile', 'RssShmem'));"
    } | psql_at "$DIR" "$PORT" -At 2>&1) || { echo "$name FAILED" >> "$WORK/raw"; echo "$out" >&2; return 0; }
    # /proc/self/status lists VmHWM, then RssAnon, RssFile, RssShmem.
    echo "$name $(grep -o '^Time: [0-9.]*' <<<"$out" | awk '{printf "%s ", $2}')| $(grep '^mem|' <<<"$out" | tr -d 'kB' | awk -F'|' '{print $2}')" >> "$WORK/raw"
}

LIST=$(cat <<'LIST'
steward.table_health()|SELECT count(*) FROM steward.table_health();
steward.index_health()|SELECT count(*) FROM steward.index_health();
steward.database_overview()|SELECT count(*) FROM steward.database_overview();
steward.connection_pool_metrics()|SELECT count(*) FROM steward.connection_pool_metrics();
steward.slow_queries()|SELECT count(*) FROM steward.slow_queries();
steward.unused_indexes()|SELECT count(*) FROM steward.unused_indexes();
steward.duplicate_indexes()|SELECT count(*) FROM steward.duplicate_indexes();
steward.table_bloat()|SELECT count(*) FROM steward.table_bloat();
steward.index_bloat()|SELECT count(*) FROM steward.index_bloat();
steward.table_wraparound()|SELECT count(*) FROM steward.table_wraparound();
steward.sequence_usage()|SELECT count(*) FROM steward.sequence_usage();
steward.health_report()|SELECT length(steward.health_report()::text);
LIST
)
NAIVE_SQL="SELECT count(*) FROM (SELECT s.relid, pg_total_relation_size(s.relid) AS size FROM pg_stat_user_tables s ORDER BY size DESC) x;"
mapfile -t FUNCS <<<"$LIST"
for ((round = 1; round <= ROUNDS; round++)); do
    log "round ${round}/${ROUNDS}"
    if [ "${NAIVE:-1}" = 1 ]; then
        echo "round $round" >> "$WORK/raw"
        session naive "$NAIVE_SQL" 1
    fi
    n=${#FUNCS[@]}
    for ((k = 0; k < n; k++)); do
        entry=${FUNCS[$(( (k + round - 1) % n ))]}
        session "${entry%%|*}" "${entry#*|}" "$CALLS"
    done
done

# Summary: medians over rounds.
awk -v budget="$BUDGET_MS" -v rbudget="$REPORT_BUDGET_MS" -v calls="$CALLS" -v rounds="$ROUNDS" '
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    if (n == 0) return ""
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^round / { r = $2; next }
{
    name = $1
    if ($2 == "FAILED") { failed[name] = 1; if (!(name in seen)) { seen[name] = 1; order[++count] = name }; next }
    split($0, parts, "|"); nt = split(parts[1], t, " "); split(parts[2], m, " ")
    sum = 0; warm = 0
    for (i = 2; i <= nt; i++) { sum += t[i]; if (i > 2) warm += t[i] }
    mean = sum / (nt - 1)
    if (name == "naive") { naive[r] = mean; nlist = nlist " " mean; next }
    if (!(name in seen)) { seen[name] = 1; order[++count] = name }
    means[name] = means[name] " " mean
    cold[name] = cold[name] " " t[2]
    if (nt > 2) warms[name] = warms[name] " " warm / (nt - 2)
    if (r in naive && naive[r] > 0) ratios[name] = ratios[name] " " mean / naive[r]
    hwm[name] = hwm[name] " " m[1]; anon[name] = anon[name] " " m[2]
    priv[name] = priv[name] " " (m[1] - m[3] - m[4])
}
END {
    printf "\n%-34s %9s %9s %9s %7s %10s %9s %9s %9s  %s\n", "function (median of " rounds " rounds)", "mean ms", "cold ms", "warm ms", "budget", "vs naive", "VmHWM MB", "RssAnon", "priv.peak", "verdict"
    if (nlist != "") printf "%-34s %9.1f %9s %9s %7s %10s\n", "naive: pg_total_relation_size list", median(nlist), "-", "-", "-", "1.00x"
    status = 0
    for (i = 1; i <= count; i++) {
        name = order[i]; b = (name ~ /health_report/) ? rbudget : budget
        if (name in failed) { printf "%-34s %9s %9s %9s %7s %10s %9s %9s %9s  FAILED\n", name, "-", "-", "-", b, "-", "-", "-", "-"; status = 1; continue }
        mm = median(means[name]); v = (mm <= b) ? "ok" : "OVER BUDGET"
        if (mm > b) status = 1
        printf "%-34s %9.1f %9.1f %9s %7s %10s %9.0f %9.0f %9.0f  %s\n", name, mm, median(cold[name]),
            (warms[name] == "" ? "-" : sprintf("%.1f", median(warms[name]))), b,
            (ratios[name] == "" ? "-" : sprintf("%.3fx", median(ratios[name]))),
            median(hwm[name]) / 1024, median(anon[name]) / 1024, median(priv[name]) / 1024, v
    }
    exit status
}' "$WORK/raw" && status=0 || status=$?
if [ "${KEEP_RAW:-}" != "" ]; then cp "$WORK/raw" "$KEEP_RAW"; fi
exit "$status"
