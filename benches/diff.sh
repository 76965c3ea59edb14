#!/usr/bin/env bash
# Diff and rollback (issue #6), one run on the same data and server:
#   1. steward.config_diff on two ~40-leaf AI configurations, against the same algorithm in
#      PL/pgSQL (budget: at least 20x faster) and against printing both documents as text;
#   2. steward.rollback(audit_id) of one configuration, against a plain UPDATE of the same row
#      (which also writes its audit entry) — budget <= 2x;
#   3. steward.rollback_bulk() of 1 000 configurations — budget <= 1 s.
#   bash benches/diff.sh      (PROFILE=release; PAIRS=20000 ROWS=1000 SECONDS_EACH=8)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
PAIRS=${PAIRS:-20000}
ROWS=${ROWS:-1000}
SECONDS_EACH=${SECONDS_EACH:-8}
export PROFILE=${PROFILE:-release}
DIR=/tmp/pg_steward_bench_diff
PORT=${PG_STEWARD_BENCH_PORT:-54335}

ensure_all
install_extension
start_server "$DIR" "$PORT" "shared_buffers = '512MB'" "max_wal_size = '4GB'"
trap 'stop_server "$DIR"' EXIT
psql_at "$DIR" "$PORT" >/dev/null <<SQL
CREATE EXTENSION pg_steward;
-- The seed's algorithm in PL/pgSQL: walk objects present on both sides, compare the rest whole.
CREATE FUNCTION public.plpgsql_diff(old jsonb, new jsonb, prefix text DEFAULT '') RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS \$\$
DECLARE
  k text; added jsonb := '[]'; modified jsonb := '[]'; removed jsonb := '[]'; sub jsonb; p text;
BEGIN
  FOR k IN SELECT jsonb_object_keys(old) LOOP
    p := CASE WHEN prefix = '' THEN k ELSE prefix || '.' || k END;
    IF NOT new ? k THEN
      removed := removed || jsonb_build_object('path', p, 'value', old -> k);
    ELSIF jsonb_typeof(old -> k) = 'object' AND jsonb_typeof(new -> k) = 'object' THEN
      sub := public.plpgsql_diff(old -> k, new -> k, p);
      added := added || (sub -> 'added'); modified := modified || (sub -> 'modified'); removed := removed || (sub -> 'removed');
    ELSIF old -> k <> new -> k THEN
      modified := modified || jsonb_build_object('path', p, 'oldValue', old -> k, 'newValue', new -> k);
    END IF;
  END LOOP;
  FOR k IN SELECT jsonb_object_keys(new) LOOP
    IF NOT old ? k THEN
      added := added || jsonb_build_object('path', CASE WHEN prefix = '' THEN k ELSE prefix || '.' || k END, 'value', new -> k);
    END IF;
  END LOOP;
  RETURN jsonb_build_object('added', added, 'modified', modified, 'removed', removed);
END \$\$;
-- Order-insensitive form of a diff (the two implementations list keys in different orders).
CREATE FUNCTION public.norm(d jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS \$\$
  SELECT jsonb_object_agg(part, (SELECT coalesce(jsonb_agg(x ORDER BY x::text), '[]') FROM jsonb_array_elements(d -> part) x))
    FROM unnest(ARRAY['added', 'modified', 'removed']) part
\$\$;
CREATE TABLE public.pairs AS
SELECT steward.default_ai_config() AS a,
       jsonb_set(jsonb_set(steward.default_ai_config(), '{model,temperature}', to_jsonb((g % 10) / 10.0)),
                 '{costBudget,dailyBudget}', to_jsonb(g % 100)) - 'timeouts' || '{"extra": {"x": 1}}' AS b
  FROM generate_series(1, ${PAIRS}) g;
-- Rollback data: ROWS audited configurations, each with 50 entries of distinct old states.
CREATE TABLE public.cfg (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int UNIQUE NOT NULL, user_id uuid,
                         configuration jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.cfg (n, user_id, configuration) SELECT g, md5(g::text)::uuid, steward.default_ai_config() FROM generate_series(1, ${ROWS}) g;
SELECT steward.audit_enable('public.cfg', 'ai_config', 'configuration', 'user_id');
SET steward.audit_notify = off;
DO \$\$ BEGIN FOR k IN 1..50 LOOP
  UPDATE public.cfg SET configuration = jsonb_set(configuration, '{model,temperature}', to_jsonb(k / 100.0));
END LOOP; END \$\$;
CREATE TABLE public.targets AS
SELECT c.n, l.seq AS k, l.id AS audit_id FROM steward.configuration_audit_log l JOIN public.cfg c ON c.id = l.config_id
 WHERE l.action = 'updated';
CREATE UNIQUE INDEX ON public.targets (n, k);
VACUUM ANALYZE;
SQL

per_call_us() { # expression over the pairs table -> microseconds per row, minus the bare scan
    psql_at "$DIR" "$PORT" -At <<SQL | tail -1
\o /dev/null
SELECT count(*) FROM public.pairs WHERE a IS NOT NULL AND b IS NOT NULL;
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM public.pairs WHERE ($1) IS NOT NULL;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) FROM public.pairs WHERE a IS NOT NULL AND b IS NOT NULL;
SELECT clock_timestamp() AS t2 \gset
\o
SELECT round(((extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz) - extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz)) * 1e6 / ${PAIRS})::numeric, 2);
SQL
}
same=$(psql_at "$DIR" "$PORT" -At -c "SELECT bool_and(public.norm(steward.config_diff(a, b)) = public.norm(public.plpgsql_diff(a, b))) FROM public.pairs")
# Three interleaved measurements of each; the median of each is reported (this machine's
# speed drifts by tens of percent within a minute).
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
o=(); p=(); t=()
for r in 1 2 3; do
    o+=("$(per_call_us "steward.config_diff(a, b)")")
    p+=("$(per_call_us "public.plpgsql_diff(a, b)")")
    t+=("$(per_call_us "length(a::text) + length(b::text)")")
done
ours=$(median3 "${o[@]}"); plpgsql=$(median3 "${p[@]}"); text=$(median3 "${t[@]}")

latency() { # pgbench script -> mean latency in ms (stops the bench when a run fails)
    local f; f=$(mktemp)
    printf '%s\n' "$1" > "$f"
    pgbench_latency "$PORT" "$f" "$SECONDS_EACH"
    rm -f "$f"
}
# UPDATE and rollback alternate in ROUNDS rounds (this machine's speed drifts; sequential runs
# would hand the drift to one side); each figure is the mean of its rounds.
ROUNDS=${ROUNDS:-4}
round_secs=$(( SECONDS_EACH / ROUNDS > 0 ? SECONDS_EACH / ROUNDS : 1 ))
update_script="\\set n random(1, ${ROWS})
\\set k random(2, 51)
UPDATE public.cfg SET configuration = jsonb_set(configuration, '{model,temperature}', to_jsonb(:k / 100.0)) WHERE n = :n;"
rollback_script="\\set n random(1, ${ROWS})
\\set k random(1, 50)
SELECT steward.rollback((SELECT audit_id FROM public.targets WHERE n = :n AND k = :k));"
update=0; rollback=0
for ((r = 1; r <= ROUNDS; r++)); do
    u=$(SECONDS_EACH=$round_secs latency "$update_script")
    b=$(SECONDS_EACH=$round_secs latency "$rollback_script")
    update=$(awk -v a="$update" -v b="$u" -v n="$ROUNDS" 'BEGIN{print a + b / n}')
    rollback=$(awk -v a="$rollback" -v b="$b" -v n="$ROUNDS" 'BEGIN{print a + b / n}')
done
bulk_ms=$(psql_at "$DIR" "$PORT" -At <<'SQL' | tail -1
\o /dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT cardinality(steward.rollback_bulk(array_agg(audit_id), 'bench')) FROM public.targets WHERE k = 10;
SELECT clock_timestamp() AS t1 \gset
\o
SELECT round((extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz) * 1000)::numeric, 1);
SQL
)
verify=$(psql_at "$DIR" "$PORT" -At -c "SELECT steward.audit_verify() ->> 'ok'")

printf '\nconfig_diff on two ~40-leaf AI configurations (%s pairs, per call, scan subtracted, median of 3 interleaved; same results: %s):\n' "$PAIRS" "$same"
printf '  steward.config_diff (Rust, binary jsonb)   %8.2f us\n' "$ours"
printf '  same algorithm in PL/pgSQL                 %8.2f us   ours %.1fx faster (budget >= 20x) %s\n' "$plpgsql" \
    "$(awk -v a="$plpgsql" -v b="$ours" 'BEGIN{print a/b}')" "$(awk -v a="$plpgsql" -v b="$ours" 'BEGIN{print (a >= 20*b) ? "ok" : "OVER BUDGET"}')"
printf '  printing both documents as text            %8.2f us\n' "$text"
printf '\nRollback, %s audited configurations, pgbench -M prepared, %s interleaved rounds x %s s each, mean latency:\n' "$ROWS" "$ROUNDS" "$round_secs"
printf '  UPDATE of the row (+ its audit entry)      %8.3f ms\n' "$update"
printf '  steward.rollback(audit_id)                 %8.3f ms   %.2fx (budget <= 2x) %s\n' "$rollback" \
    "$(awk -v a="$rollback" -v b="$update" 'BEGIN{print a/b}')" "$(awk -v a="$rollback" -v b="$update" 'BEGIN{print (a <= 2*b) ? "ok" : "OVER BUDGET"}')"
printf '  rollback_bulk of %s configurations        %8.1f ms   (budget 1000 ms) %s\n' "$ROWS" "$bulk_ms" \
    "$(awk -v a="$bulk_ms" 'BEGIN{print (a <= 1000) ? "ok" : "OVER BUDGET"}')"
printf '  chains verify afterwards: %s\n' "$verify"
