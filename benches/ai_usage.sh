#!/usr/bin/env bash
# AI usage (issue #17): record_ai_usage() against a plain INSERT of the same row into the same
# table, steward.ai_usage, as the superuser (budget: 2×),
# and ai_budget_status() with a year of usage for 1 000 users, 10 million calls (budget: 1 ms).
# Both timed inside the server (clock_timestamp around a loop of calls), so the client's round
# trips do not count; the two writers alternate over ROUNDS rounds and the ratio is the median
# of the per-round ratios.
#
#   bash benches/ai_usage.sh
# Environment: PG_STEWARD_PG_BIN_DIR, PG_STEWARD_BENCH_DIR (/tmp/pg_steward_bench_ai),
# PG_STEWARD_BENCH_PORT (54338), CARGO_TARGET_DIR, SKIP_INSTALL=1, PROFILE (release),
# ROUNDS (7), CALLS (2000 writes per round), USERS (1000), ROWS (10000000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
export PROFILE=${PROFILE:-release}
DIR=${PG_STEWARD_BENCH_DIR:-/tmp/pg_steward_bench_ai}
PORT=${PG_STEWARD_BENCH_PORT:-54338}
ROUNDS=${ROUNDS:-7}
CALLS=${CALLS:-2000}
USERS=${USERS:-1000}
ROWS=${ROWS:-10000000}
for v in ROUNDS CALLS USERS ROWS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done

ensure_all
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension
trap 'stop_server "$DIR"' EXIT
start_server "$DIR" "$PORT" "shared_buffers = '1GB'" "max_wal_size = '8GB'"
q() { psql_at "$DIR" "$PORT" -v ON_ERROR_STOP=1 "$@"; }
q -q -c "CREATE EXTENSION pg_steward" >/dev/null

log "filling ${ROWS} calls of ${USERS} users over 365 days, and rolling up the days that are over"
start=$(date +%s)
q -q <<SQL
SET synchronous_commit = off;
INSERT INTO steward.ai_usage (user_id, model, input_tokens, output_tokens, cost, recorded_at, recorded_by)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g % ${USERS}), 12, '0'))::uuid,
       'claude-3-haiku-20240307', 1000, 500, 0.000875,
       now() - make_interval(secs => (g::float8 / ${ROWS}) * 365 * 86400), 'bench'
  FROM generate_series(1, ${ROWS}) g;
SELECT steward.rollup_ai_usage();
VACUUM (ANALYZE) steward.ai_usage, steward.ai_usage_daily;
SQL
log "filled in $(( $(date +%s) - start )) s: $(q -At -c "SELECT format('%s calls, %s roll-up rows', (SELECT count(*) FROM steward.ai_usage), (SELECT count(*) FROM steward.ai_usage_daily))")"

# Per round: CALLS record_ai_usage() calls and CALLS plain INSERTs (alternating order), each
# loop in its own transaction; then 500 ai_budget_status() calls for users picked at random.
WORK=$(mktemp -d)
for ((r = 0; r < ROUNDS; r++)); do
    for kind in $( ((r % 2)) && echo "plain record" || echo "record plain" ); do
        if [ "$kind" = record ]; then
            body="PERFORM steward.record_ai_usage('claude-3-haiku-20240307', 1000, 500, ('00000000-0000-4000-8000-' || lpad(to_hex(i % ${USERS}), 12, '0'))::uuid, NULL, 'r${r}-' || i);"
        else
            body="INSERT INTO steward.ai_usage (user_id, model, input_tokens, output_tokens, cost, request_id, recorded_by)
                  VALUES (('00000000-0000-4000-8000-' || lpad(to_hex(i % ${USERS}), 12, '0'))::uuid, 'claude-3-haiku-20240307', 1000, 500, 0.000875, 'p${r}-' || i, 'bench');"
        fi
        us=$(q -At <<SQL 2>&1 | grep -o 'us [0-9.]*' | awk '{print $2}'
DO \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. ${CALLS} LOOP
        ${body}
    END LOOP;
    RAISE NOTICE 'us %', round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / ${CALLS}, 2);
END
\$\$;
SQL
)
        echo "$r $kind $us" >> "$WORK/raw"
    done
    us=$(q -At <<SQL 2>&1 | grep -o 'us [0-9.]*' | awk '{print $2}'
DO \$\$
DECLARE t0 timestamptz := clock_timestamp(); j jsonb;
BEGIN
    FOR i IN 1 .. 500 LOOP
        j := steward.ai_budget_status(('00000000-0000-4000-8000-' || lpad(to_hex((random() * ${USERS})::int % ${USERS}), 12, '0'))::uuid);
    END LOOP;
    RAISE NOTICE 'us %', round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / 500, 2);
END
\$\$;
SQL
)
    echo "$r status $us" >> "$WORK/raw"
done
# The budget alerts' source (check_alerts() adds it): every user active this month, budgets
# from the database layer (users without layers of their own share one resolution), 3 calls.
budget_us=$(q -At <<'SQL' 2>&1 | grep -o 'us [0-9.]*' | awk '{print $2}'
INSERT INTO steward.config_overrides (kind, document)
VALUES ('ai_config', '{"costBudget": {"dailyBudget": 0.01, "weeklyBudget": 0.05, "monthlyBudget": 0.1}}')
ON CONFLICT (kind) DO UPDATE SET document = EXCLUDED.document;
DO $$
DECLARE t0 timestamptz; n integer; best float8;
BEGIN
    FOR i IN 1 .. 3 LOOP
        t0 := clock_timestamp();
        n := jsonb_array_length(steward._ai_budget_usage());
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1e6);
    END LOOP;
    RAISE NOTICE 'us % (% user-periods)', round(best::numeric, 0), n;
END
$$;
SQL
)
echo "budget source (_ai_budget_usage, best of 3): ${budget_us} us"
awk '
function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                   return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ v[$2, $1] = $3; rounds[$1] = 1 }
END {
  n = 0; for (r in rounds) { n++; p[n] = v["plain", r]; c[n] = v["record", r]; q[n] = v["record", r] / v["plain", r]; s[n] = v["status", r] }
  mp = median(p, n); mc = median(c, n); mq = median(q, n); ms = median(s, n)
  printf "%-34s %12s %s\n", "measure", "median", "verdict"
  printf "%-34s %9.1f us %s\n", "plain INSERT of the same row", mp, "baseline"
  printf "%-34s %9.1f us %.2fx of plain (budget 2x): %s\n", "record_ai_usage()", mc, mq, (mq <= 2 ? "ok" : "over")
  printf "%-34s %9.1f us budget 1000 us: %s\n", "ai_budget_status()", ms, (ms <= 1000 ? "ok" : "over")
}' "$WORK/raw"
rm -rf "$WORK"
