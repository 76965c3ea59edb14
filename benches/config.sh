#!/usr/bin/env bash
# Effective configuration (issue #4), in one run on the same data:
#   1. steward.effective_ai_config(user) for a user with an organisation layer and a user layer,
#   2. the bare index lookups of the same rows (the user's best active row, the organisation's
#      rows through membership) — budget: 1. <= 1.5x 2.,
#   3. the seed's shallow PL/pgSQL function (defaults || user row) — 1. must be faster per call,
#   4. validation of a full document — budget: <= 10 us per call (measured through SQL, so an
#      upper bound).
# 1. is measured as shipped (answers kept per backend until a layer changes, src/config/cache.rs:
# after the first call per user and connection, a hit) and, beside it, with the cache off
# (every call resolves: the cost after each change, and the figure earlier runs reported).
#   bash benches/config.sh      (PROFILE=release by default; USERS=1000; SECONDS_EACH=40 per
#                                variant, split over ROUNDS=10 rounds in rotated order)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
USERS=${USERS:-1000}
SECONDS_EACH=${SECONDS_EACH:-40}
export PROFILE=${PROFILE:-release}
DIR=/tmp/pg_steward_bench_config
PORT=${PG_STEWARD_BENCH_PORT:-54333}

ensure_all
install_extension
start_server "$DIR" "$PORT" "shared_buffers = '256MB'"
trap 'stop_server "$DIR"' EXIT
psql_at "$DIR" "$PORT" >/dev/null <<SQL
CREATE EXTENSION pg_steward;
SELECT steward.install_train_schema('public');
INSERT INTO steward.config_overrides (kind, document) VALUES ('ai_config', '{"rateLimiting": {"requestsPerMinute": 20}}');
INSERT INTO organizations (id, name) SELECT md5('org' || o)::uuid, 'org ' || o FROM generate_series(1, 50) o;
INSERT INTO organization_members (organization_id, user_id)
SELECT md5('org' || (1 + u % 50))::uuid, md5(u::text)::uuid FROM generate_series(1, ${USERS}) u;
INSERT INTO ai_configurations (organization_id, config_name, configuration, priority)
SELECT md5('org' || o)::uuid, 'org-' || p, jsonb_build_object('model', jsonb_build_object('temperature', 0.1 * p), 'costBudget', jsonb_build_object('dailyBudget', 10 * p)), p
  FROM generate_series(1, 50) o, generate_series(1, 2) p;
INSERT INTO ai_configurations (user_id, config_name, configuration, priority)
SELECT md5(u::text)::uuid, 'cfg-' || p, jsonb_build_object('model', jsonb_build_object('topP', 0.1 * p, 'maxTokens', 1000 * p)), p
  FROM generate_series(1, ${USERS}) u, generate_series(1, 3) p;
ANALYZE;
-- The seed's function: a shallow merge of the defaults with the user's newest active row.
CREATE FUNCTION public.seed_get_effective_ai_config(p_user_id uuid) RETURNS jsonb LANGUAGE plpgsql STABLE AS \$\$
DECLARE v jsonb;
BEGIN
  SELECT configuration INTO v FROM public.ai_configurations
   WHERE user_id = p_user_id AND is_active ORDER BY priority DESC LIMIT 1;
  RETURN steward.default_ai_config() || coalesce(v, '{}');
END \$\$;
SQL

run() { # name sql -> mean latency in ms
    local f; f=$(mktemp)
    printf '\\set u random(1, %s)\n%s\n' "$USERS" "$2" > "$f"
    if [ "$1" = cold ]; then
        PGOPTIONS="-c steward.effective_config_cache=off" pgbench_latency "$PORT" "$f" "${SECONDS_EACH}"
    else
        pgbench_latency "$PORT" "$f" "${SECONDS_EACH}"
    fi
    rm -f "$f"
}
# Interleaved rounds (ours, bare, seed, ours, ...): this machine's speed drifts by tens of
# percent over a minute, and sequential runs would hand that drift to one side.
ROUNDS=${ROUNDS:-10}
round_secs=$(( SECONDS_EACH / ROUNDS > 0 ? SECONDS_EACH / ROUNDS : 1 ))
declare -A sql=(
  [ours]="SELECT steward.effective_ai_config(md5(:u::text)::uuid);"
  [cold]="SELECT steward.effective_ai_config(md5(:u::text)::uuid);"
  [bare]="SELECT (SELECT configuration FROM public.ai_configurations WHERE user_id = md5(:u::text)::uuid AND is_active ORDER BY priority DESC LIMIT 1), (SELECT array_agg(c.configuration ORDER BY c.priority) FROM public.ai_configurations c JOIN public.organization_members m ON m.organization_id = c.organization_id WHERE m.user_id = md5(:u::text)::uuid AND c.is_active);"
  [seed]="SELECT public.seed_get_effective_ai_config(md5(:u::text)::uuid);"
)
declare -A sum=([ours]=0 [cold]=0 [bare]=0 [seed]=0) per=([ours]="" [cold]="" [bare]="" [seed]="")
variants=(ours cold bare seed)
for ((r = 1; r <= ROUNDS; r++)); do
    declare -A this=()
    for ((k = 0; k < ${#variants[@]}; k++)); do   # order rotated round by round
        v=${variants[$(( (k + r) % ${#variants[@]} ))]}
        ms=$(SECONDS_EACH=$round_secs run "$v" "${sql[$v]}")
        this[$v]=$ms
        sum[$v]=$(awk -v a="${sum[$v]}" -v b="$ms" 'BEGIN{print a+b}')
    done
    per[ours_seed]+="$(awk -v a="${this[ours]}" -v b="${this[seed]}" 'BEGIN{printf "%.4f", a/b}') "
    per[ours_bare]+="$(awk -v a="${this[ours]}" -v b="${this[bare]}" 'BEGIN{printf "%.4f", a/b}') "
    per[cold_bare]+="$(awk -v a="${this[cold]}" -v b="${this[bare]}" 'BEGIN{printf "%.4f", a/b}') "
    per[cold_seed]+="$(awk -v a="${this[cold]}" -v b="${this[seed]}" 'BEGIN{printf "%.4f", a/b}') "
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR % 2) printf "%.2f", a[(NR+1)/2]; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2}'; }
ours=$(awk -v a="${sum[ours]}" -v n="$ROUNDS" 'BEGIN{print a/n}')
cold=$(awk -v a="${sum[cold]}" -v n="$ROUNDS" 'BEGIN{print a/n}')
bare=$(awk -v a="${sum[bare]}" -v n="$ROUNDS" 'BEGIN{print a/n}')
seed=$(awk -v a="${sum[seed]}" -v n="$ROUNDS" 'BEGIN{print a/n}')
r_ours_seed=$(echo "${per[ours_seed]}" | median); r_ours_bare=$(echo "${per[ours_bare]}" | median)
r_cold_bare=$(echo "${per[cold_bare]}" | median); r_cold_seed=$(echo "${per[cold_seed]}" | median)
# The same three, server side: each evaluated for every user of a 10 000-row table in one
# statement (no round trip), minus the bare scan — per call, far steadier than client latency
# on a noisy machine.
server_us() { # expression over u.id [setting] -> microseconds per call
    psql_at "$DIR" "$PORT" -At <<SQL2 | tail -1
${2:-}
CREATE TEMP TABLE u AS SELECT md5((1 + g % ${USERS})::text)::uuid AS id FROM generate_series(1, 10000) g;
\o /dev/null
SELECT count(*) FROM u WHERE id IS NOT NULL;
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM u WHERE ($1) IS NOT NULL;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) FROM u WHERE id IS NOT NULL;
SELECT clock_timestamp() AS t2 \gset
\o
SELECT round(((extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz) - extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz)) * 1e6 / 10000)::numeric, 2);
SQL2
}
# Three interleaved measurements of each server-side figure and of validation; the median
# of each is reported (this machine's speed drifts by tens of percent within a minute).
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
validate_once() {
psql_at "$DIR" "$PORT" -At <<'SQL' | tail -1
CREATE TEMP TABLE d AS SELECT steward.default_ai_config() || jsonb_build_object('costBudget', jsonb_build_object('dailyBudget', g % 50, 'weeklyBudget', 500, 'monthlyBudget', 2000, 'alertThresholds', '[0.5, 0.9]'::jsonb)) AS doc
  FROM generate_series(1, 100000) g;
SELECT count(*) FROM d;
\o /dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM d WHERE cardinality(steward.validate_ai_config(doc)) = 0;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) FROM d WHERE doc IS NOT NULL;
SELECT clock_timestamp() AS t2 \gset
\o
SELECT round(((extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz) - extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz)) * 1e6 / 100000)::numeric, 2);
SQL
}
bare_expr="(SELECT configuration FROM public.ai_configurations WHERE user_id = u.id AND is_active ORDER BY priority DESC LIMIT 1) IS NOT NULL OR (SELECT array_agg(c.configuration ORDER BY c.priority) FROM public.ai_configurations c JOIN public.organization_members m ON m.organization_id = c.organization_id WHERE m.user_id = u.id AND c.is_active) IS NOT NULL"
o=(); c=(); b=(); d=(); v=()
for r in 1 2 3; do
    o+=("$(server_us "steward.effective_ai_config(u.id)")")
    c+=("$(server_us "steward.effective_ai_config(u.id)" "SET steward.effective_config_cache = off;")")
    b+=("$(server_us "$bare_expr")")
    d+=("$(server_us "public.seed_get_effective_ai_config(u.id)")")
    v+=("$(validate_once)")
done
ours_us=$(median3 "${o[@]}"); cold_us=$(median3 "${c[@]}"); bare_us=$(median3 "${b[@]}"); seed_us=$(median3 "${d[@]}"); validate_us=$(median3 "${v[@]}")

printf '\nEffective AI configuration, %s users, %s rounds x %s s per variant (order rotated), pgbench -M prepared;\n' "$USERS" "$ROUNDS" "$round_secs"
printf 'mean latency over the rounds, ratios the median of the per-round ratios:\n'
printf '  steward.effective_ai_config(user)          %8.3f ms   %.2fx bare (budget 1.5x) %s, %.2fx seed %s\n' "$ours" \
    "$r_ours_bare" "$(awk -v x="$r_ours_bare" 'BEGIN{print (x <= 1.5) ? "ok" : "OVER BUDGET"}')" \
    "$r_ours_seed" "$(awk -v x="$r_ours_seed" 'BEGIN{print (x < 1) ? "(faster than the seed: ok)" : "(not faster than the seed: OVER BUDGET)"}')"
printf '    the same, cache off (every call resolves) %7.3f ms   %.2fx bare, %.2fx seed\n' "$cold" "$r_cold_bare" "$r_cold_seed"
printf '  bare index lookups of the same rows        %8.3f ms\n' "$bare"
printf '  seed shallow PL/pgSQL function             %8.3f ms\n' "$seed"
printf '  validate_ai_config(full document)          %8.2f us per call, median of 3 (budget 10 us) %s\n' "$validate_us" \
    "$(awk -v a="$validate_us" 'BEGIN{print (a <= 10) ? "ok" : "OVER BUDGET"}')"
printf 'Server side, per call (10 000 calls in one statement, scan subtracted, median of 3 interleaved):\n'
printf '  steward.effective_ai_config(user)          %8.2f us   (cache off: %.2f us)\n' "$ours_us" "$cold_us"
printf '  bare index lookups of the same rows        %8.2f us   ratio %.2fx\n' "$bare_us" "$(awk -v a="$ours_us" -v b="$bare_us" 'BEGIN{print a/b}')"
printf '  seed shallow PL/pgSQL function             %8.2f us   ratio %.2fx\n' "$seed_us" "$(awk -v a="$ours_us" -v b="$seed_us" 'BEGIN{print a/b}')"
