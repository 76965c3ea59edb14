#!/usr/bin/env bash
# Migration safety: steward.migration_check against squawk (https://squawkhq.com), on one corpus.
#
#   bash benches/migrations.sh
#
# 1. squawk-cli from npm (pinned, installed once into .tools/squawk; skipped with a message
#    when npm is missing) lints every file of benches/migrations/corpus/;
# 2. a server of its own (PG_STEWARD_BENCH_PORT, default 54332) with the extension
#    (PROFILE=release) and benches/migrations/setup.sql loaded into database `app`
#    (orders 120 MB, events 32 MB, users 13 MB, feature_flags 10 rows);
# 3. steward.migration_check on every file, against that catalog;
# 4. one table, file by file: squawk's rules, steward's rules with their risk, whether they agree,
#    and the explanation key of every difference (the file's `-- explain:` line); then the same
#    rule by rule; the file's `-- expect:` line is checked against steward's answer;
# 5. with APPLY=1 (default), every file is also applied to a fresh copy of `app`: each must
#    succeed, except those marked `-- fails:`;
# 6. migration_check on a 1 000-statement script made of the corpus statements (goal <= 100 ms).
#
# Exits non-zero when migration_check is missing, when steward's answer differs from a file's
# `-- expect:` line, when a squawk/steward difference has no `-- explain:` key, or when a file
# does not apply as designed.
#
# Knobs: PROFILE=release  PG_STEWARD_BENCH_PORT=54332  APPLY=1  STATEMENTS=1000  RUNS=7
#        SQUAWK=/path/to/squawk (use that binary)  SQUAWK_VERSION=2.66.0  SQUAWK_DIR=.tools/squawk
# Testing hooks (to run the squawk and corpus parts against another build of PostgreSQL, where
# the extension may not be installed): PG_STEWARD_PG_BIN=/some/bin  SKIP_INSTALL=1
#        MIGRATIONS_BENCH_DIR=/tmp/somewhere
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
export PROFILE=${PROFILE:-release}
PG_BIN=${PG_STEWARD_PG_BIN:-$PG_BIN}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/pg_steward_bench_migrations}
PORT=${PG_STEWARD_BENCH_PORT:-54332}
APPLY=${APPLY:-1}
STATEMENTS=${STATEMENTS:-1000}
RUNS=${RUNS:-7}
CORPUS="$ROOT/benches/migrations/corpus"
SETUP="$ROOT/benches/migrations/setup.sql"
SQUAWK_VERSION=${SQUAWK_VERSION:-2.66.0}
SQUAWK_DIR=${SQUAWK_DIR:-$ROOT/.tools/squawk}
WORK=$(mktemp -d)
FAILED=0
fail() { printf '!! %s\n' "$*" >&2; FAILED=1; }

# --------------------------------------------------------------------------------------------
# squawk rule -> steward rule(s).  "a|b" means squawk's rule stands for either (its
# constraint-missing-not-valid fires on FOREIGN KEY, CHECK and UNIQUE alike).  Rules not listed
# have no steward counterpart: they are reported, never counted as a disagreement on a rule.
# --------------------------------------------------------------------------------------------
declare -A MAP=(
    [require-concurrent-index-creation]=index_not_concurrent
    [require-concurrent-index-deletion]=drop_index_not_concurrent
    [adding-field-with-default]=volatile_default
    [adding-not-nullable-field]=set_not_null
    [adding-foreign-key-constraint]=foreign_key_validated
    [constraint-missing-not-valid]="foreign_key_validated|check_validated|unique_without_index"
    [disallowed-unique-constraint]=unique_without_index
    [adding-serial-primary-key-field]="unique_without_index|volatile_default"
    [changing-column-type]=column_type_rewrite
    [renaming-column]=rename_column
    [renaming-table]=rename_table
    [ban-drop-table]=drop_table
    [ban-drop-column]=drop_column
    [ban-truncate-cascade]=truncate
    [prefer-bigint-over-int]=int_primary_key
    [prefer-bigint-over-smallint]=int_primary_key
    [prefer-big-int]=int_primary_key
    [prefer-text-field]=varchar_length
    [ban-char-field]=char_type
    [prefer-timestamp-tz]=timestamp_without_tz
    [prefer-timestamptz]=timestamp_without_tz
    [require-lock-timeout]=missing_lock_timeout
    [ban-concurrent-index-creation-in-transaction]=concurrently_in_transaction
    [transaction-nesting]=transaction_control
    [ban-uncommitted-transaction]=transaction_control
)
# Fire on nearly every file and have no steward counterpart: kept out of the per-file column
# (the rule-by-rule table counts them).
NOISE=" prefer-robust-stmts require-statement-timeout "
STEWARD_RULES=(index_not_concurrent drop_index_not_concurrent volatile_default set_not_null
    foreign_key_validated check_validated unique_without_index column_type_rewrite rename_column
    rename_table drop_table drop_column truncate unbounded_delete unbounded_update int_primary_key
    varchar_length char_type timestamp_without_tz missing_lock_timeout multiple_locks_in_transaction
    concurrently_in_transaction transaction_control)

# --------------------------------------------------------------------------------------------
# squawk
# --------------------------------------------------------------------------------------------
ensure_squawk() {
    if [ -n "${SQUAWK:-}" ]; then
        "$SQUAWK" --version >/dev/null 2>&1 || { fail "SQUAWK=$SQUAWK does not run"; SQUAWK=""; }
        return
    fi
    local bin="$SQUAWK_DIR/node_modules/.bin/squawk"
    if ! "$bin" --version 2>/dev/null | grep -qx "squawk ${SQUAWK_VERSION}"; then
        if ! command -v npm >/dev/null 2>&1; then
            log "npm is not installed: the squawk side is skipped (install Node.js/npm, or set SQUAWK=/path/to/squawk)"
            SQUAWK=""
            return
        fi
        log "installing squawk-cli ${SQUAWK_VERSION} into ${SQUAWK_DIR} (npm; once)"
        mkdir -p "$SQUAWK_DIR"
        [ -f "$SQUAWK_DIR/package.json" ] || echo '{"name": "squawk-for-pg-steward-bench", "private": true}' >"$SQUAWK_DIR/package.json"
        (cd "$SQUAWK_DIR" && npm install --no-audit --no-fund --loglevel=error "squawk-cli@${SQUAWK_VERSION}" >/dev/null) \
            || { log "npm install squawk-cli failed: the squawk side is skipped"; SQUAWK=""; return; }
    fi
    if "$bin" --version >/dev/null 2>&1; then
        SQUAWK="$bin"
    else
        log "squawk was installed but does not run on this machine: the squawk side is skipped"
        SQUAWK=""
    fi
}

# squawk_rules FILE [squawk args...] -> "rule@line" lines (1-based line), in order.
squawk_rules() {
    local f="$1"; shift
    local out
    out=$("$SQUAWK" --pg-version="${PG_MAJOR}.0" --reporter json "$@" "$f" 2>/dev/null) || true
    if [ -z "$out" ] || [ "${out:0:1}" != "[" ]; then
        echo "squawk-error@0"
        return
    fi
    if command -v jq >/dev/null 2>&1; then
        jq -r '.[] | "\(.rule_name)@\(.line + 1)"' <<<"$out"
    else
        grep -o '"line":[0-9]*\|"rule_name":"[^"]*"' <<<"$out" \
            | awk -F: '/"line"/ {l = $2 + 1} /"rule_name"/ {gsub(/"/, "", $2); print $2 "@" l}'
    fi
}

# --------------------------------------------------------------------------------------------
# The corpus files' own annotations
# --------------------------------------------------------------------------------------------
header() { # header FILE KEY -> the value of the first `-- KEY:` line
    sed -n "s/^-- $2:[[:space:]]*//p" "$1" | head -1
}
expected_rules() { # -> "rule" or "rule(risk)" lines; nothing for "none"
    header "$1" expect | tr ',' '\n' | sed 's/[[:space:]]//g' | grep -v '^none$' | grep -v '^$' || true
}

# --------------------------------------------------------------------------------------------
# 1. squawk on the corpus
# --------------------------------------------------------------------------------------------
FILES=("$CORPUS"/*.sql)
[ "${#FILES[@]}" -ge 1 ] && [ -f "${FILES[0]}" ] || { echo "no corpus in $CORPUS" >&2; exit 1; }
ensure_squawk
SQUAWK_VER="not run"
if [ -n "$SQUAWK" ]; then
    SQUAWK_VER=$("$SQUAWK" --version)
    log "$SQUAWK_VER on ${#FILES[@]} files"
    for f in "${FILES[@]}"; do
        b=$(basename "$f" .sql)
        squawk_rules "$f" >"$WORK/$b.squawk"
        squawk_rules "$f" --assume-in-transaction >"$WORK/$b.squawk_tx"
    done
fi

# --------------------------------------------------------------------------------------------
# 2. the server, the extension, the schema
# --------------------------------------------------------------------------------------------
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    ensure_all
    install_extension
fi
start_server "$DIR" "$PORT" "shared_buffers = '512MB'" "max_wal_size = '4GB'"
trap 'stop_server "$DIR"; rm -rf "$WORK"' EXIT
log "loading setup.sql into database app"
psql_at "$DIR" "$PORT" -c "CREATE DATABASE app"
psql_at "$DIR" "$PORT" -d app -f "$SETUP" >/dev/null
psql_at "$DIR" "$PORT" -d app -c "CREATE EXTENSION IF NOT EXISTS pg_steward" >/dev/null 2>"$WORK/ext.err" || true
HAVE_STEWARD=$(psql_at "$DIR" "$PORT" -d app -At -c "SELECT to_regprocedure('steward.migration_check(text)') IS NOT NULL")
if [ "$HAVE_STEWARD" != t ]; then
    why=$(head -1 "$WORK/ext.err")
    [ -n "$why" ] || why="pg_steward $(psql_at "$DIR" "$PORT" -d app -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_steward'") is installed, without it"
    fail "steward.migration_check(text) does not exist: the steward side cannot run (${why})"
fi
psql_at "$DIR" "$PORT" -d app -At -F' ' -c \
    "SELECT relname, pg_size_pretty(pg_relation_size(oid)), reltuples::bigint FROM pg_class
      WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY pg_relation_size(oid) DESC" \
    | sed 's/^/    /' >"$WORK/sizes"

# --------------------------------------------------------------------------------------------
# 3. steward on the corpus
# --------------------------------------------------------------------------------------------
# The file reaches psql through `\set sql `cat FILE`` and the query through :'sql' (quoted by psql;
# no size limit of a command-line argument).
set_sql() { printf '%s\n' "\\set sql \`cat '$1'\`"; }
steward_check() { # FILE -> "rule|risk|relation|statement_no" lines
    { set_sql "$1"; echo "SELECT rule, risk, coalesce(relation, ''), statement_no FROM steward.migration_check(:'sql') ORDER BY statement_no, rule;"; } \
        | psql_at "$DIR" "$PORT" -d app -At -F'|'
}
if [ "$HAVE_STEWARD" = t ]; then
    log "steward.migration_check on ${#FILES[@]} files"
    for f in "${FILES[@]}"; do
        b=$(basename "$f" .sql)
        steward_check "$f" >"$WORK/$b.steward" 2>"$WORK/$b.steward_err" || echo "ERROR|$(head -1 "$WORK/$b.steward_err")||0" >"$WORK/$b.steward"
    done
fi

# --------------------------------------------------------------------------------------------
# 4. compare
# --------------------------------------------------------------------------------------------
risk_rank() { case "$1" in high) echo 3 ;; medium) echo 2 ;; low) echo 1 ;; info) echo 0 ;; *) echo -1 ;; esac; }
declare -A BOTH=() ONLY_STEWARD=() ONLY_SQUAWK=() UNMAPPED=() T=() MATCHED_T=() SEEN=() E=()

# compare BASE SUFFIX COUNT -> sets AGREE and SQ_COL; T must hold steward's rule -> risk.
# SUFFIX: squawk (default run) or squawk_tx (--assume-in-transaction).  COUNT=1 adds to the
# rule-by-rule tallies.
compare() {
    local b=$1 suffix=$2 count=$3 s _line targets t hit r low="" ts
    local -a shown=() sq_unmatched=() st_unmatched=()
    MATCHED_T=(); SEEN=()
    while IFS='@' read -r s _line; do
        [ -n "$s" ] && [ -z "${SEEN[$s]:-}" ] || continue
        SEEN[$s]=1
        if [[ "$NOISE" == *" $s "* ]]; then
            [ "$count" = 1 ] && UNMAPPED[$s]=$(( ${UNMAPPED[$s]:-0} + 1 ))
            continue
        fi
        shown+=("$s")
        targets=${MAP[$s]:-}
        if [ -z "$targets" ]; then
            [ "$count" = 1 ] && UNMAPPED[$s]=$(( ${UNMAPPED[$s]:-0} + 1 ))
            continue
        fi
        hit=""
        IFS='|' read -ra ts <<<"$targets"
        for t in "${ts[@]}"; do [ -z "${T[$t]:-}" ] || { MATCHED_T[$t]=1; hit=1; }; done
        if [ -z "$hit" ]; then
            sq_unmatched+=("$s")
            [ "$count" = 1 ] && ONLY_SQUAWK[${ts[0]}]=$(( ${ONLY_SQUAWK[${ts[0]}]:-0} + 1 ))
        fi
    done <"$WORK/$b.$suffix"
    SQ_COL="${shown[*]:-—}"
    for r in "${!T[@]}"; do
        if [ -n "${MATCHED_T[$r]:-}" ]; then
            [ "$count" = 1 ] && BOTH[$r]=$(( ${BOTH[$r]:-0} + 1 ))
            case "${T[$r]}" in low|info) low+=" $r" ;; esac
        else
            st_unmatched+=("$r")
            [ "$count" = 1 ] && ONLY_STEWARD[$r]=$(( ${ONLY_STEWARD[$r]:-0} + 1 ))
        fi
    done
    if [ "${#sq_unmatched[@]}" -eq 0 ] && [ "${#st_unmatched[@]}" -eq 0 ]; then
        if [ -n "$low" ]; then AGREE="yes, steward risk low"; else AGREE="yes"; fi
    else
        AGREE="no:"
        [ "${#st_unmatched[@]}" -eq 0 ] || AGREE+=" +steward $(printf '%s\n' "${st_unmatched[@]}" | sort | tr '\n' ' ')"
        [ "${#sq_unmatched[@]}" -eq 0 ] || AGREE+=" +squawk ${sq_unmatched[*]}"
        AGREE=${AGREE% }
    fi
}

ROWS="$WORK/rows.md"; : >"$ROWS"
for f in "${FILES[@]}"; do
    b=$(basename "$f" .sql)
    explain=$(header "$f" explain)
    # steward: rule -> highest risk
    T=()
    if [ -f "$WORK/$b.steward" ]; then
        while IFS='|' read -r rule risk _rel _no; do
            [ -n "$rule" ] || continue
            if [ -z "${T[$rule]:-}" ] || [ "$(risk_rank "$risk")" -gt "$(risk_rank "${T[$rule]}")" ]; then T[$rule]=$risk; fi
        done <"$WORK/$b.steward"
    fi
    # steward against the file's `-- expect:` line
    exp_note=""
    if [ "$HAVE_STEWARD" = t ]; then
        E=()
        while read -r e; do
            [ -n "$e" ] || continue
            r=${e%%(*}; k=""; [[ "$e" == *"("* ]] && { k=${e#*(}; k=${k%)}; }
            E[$r]=$k
        done < <(expected_rules "$f")
        for r in "${!E[@]}"; do
            if [ -z "${T[$r]:-}" ]; then exp_note+=" missing:$r"
            elif [ -n "${E[$r]}" ] && [ "${E[$r]}" != "${T[$r]}" ]; then exp_note+=" $r:${T[$r]}≠${E[$r]}"; fi
        done
        for r in "${!T[@]}"; do [ -n "${E[$r]+x}" ] || exp_note+=" extra:$r"; done
        [ -z "$exp_note" ] || fail "$b: steward differs from its -- expect: line:${exp_note}"
    fi
    st_col=""
    for r in "${STEWARD_RULES[@]}"; do [ -z "${T[$r]:-}" ] || st_col+="$r(${T[$r]}) "; done
    for r in "${!T[@]}"; do [[ " ${STEWARD_RULES[*]} " == *" $r "* ]] || st_col+="$r(${T[$r]}) "; done
    st_col=${st_col% }; st_col=${st_col:-—}
    [ "$HAVE_STEWARD" = t ] || st_col="pending (expect: $(header "$f" expect))"
    sq_col="n/a"; agree="n/a"; agree_tx="n/a"
    if [ -n "$SQUAWK" ]; then
        compare "$b" squawk_tx 0; agree_tx=$AGREE
        compare "$b" squawk "$([ "$HAVE_STEWARD" = t ] && echo 1 || echo 0)"; sq_col=$SQ_COL
        if [ "$HAVE_STEWARD" = t ]; then
            agree=$AGREE
            if { [[ "$agree" == no* ]] || [[ "$agree_tx" == no* ]]; } && [ -z "$explain" ]; then
                explain="UNEXPLAINED"; fail "$b: squawk and steward differ and the file has no -- explain: key"
            fi
        else
            agree_tx="n/a"
        fi
    fi
    [ -z "$exp_note" ] || explain+=" EXPECT≠${exp_note}"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$b" "$sq_col" "$st_col" "$agree" "$agree_tx" "${explain:-}" >>"$ROWS"
done

echo
echo "## steward.migration_check vs ${SQUAWK_VER} (PostgreSQL ${PG_MAJOR}, squawk --pg-version=${PG_MAJOR}.0)"
echo
echo "Tables of the schema (setup.sql): name, main fork, rows"
cat "$WORK/sizes"
echo
echo "squawk rules: its default run, without prefer-robust-stmts and require-statement-timeout (counted below)."
echo "agree (tx): the same comparison with squawk --assume-in-transaction (each file one transaction, as migration_apply runs it)."
echo
echo "| file | squawk rules | steward rules (risk) | agree? | agree (tx)? | explanation key |"
echo "|---|---|---|---|---|---|"
cat "$ROWS"

if [ -n "$SQUAWK" ] && [ "$HAVE_STEWARD" = t ]; then
    echo
    echo "### Rule by rule (number of files, squawk's default run)"
    echo
    echo "| steward rule | squawk counterpart | both | steward only | squawk only |"
    echo "|---|---|---|---|---|"
    for r in "${STEWARD_RULES[@]}"; do
        counterpart=""
        for s in $(printf '%s\n' "${!MAP[@]}" | sort); do [[ "|${MAP[$s]}|" == *"|$r|"* ]] && counterpart+="$s "; done
        counterpart=${counterpart% }
        printf '| %s | %s | %d | %d | %d |\n' "$r" "${counterpart:-—}" "${BOTH[$r]:-0}" "${ONLY_STEWARD[$r]:-0}" "${ONLY_SQUAWK[$r]:-0}"
    done
    for s in "${!UNMAPPED[@]}"; do
        printf '| — | %s (no steward counterpart) | — | — | %d |\n' "$s" "${UNMAPPED[$s]}"
    done | sort
fi

# --------------------------------------------------------------------------------------------
# 5. every file applies to a fresh copy of the schema (or fails where it says so)
# --------------------------------------------------------------------------------------------
if [ "$APPLY" = 1 ]; then
    log "applying each file to a fresh copy of app"
    applied=0
    for f in "${FILES[@]}"; do
        b=$(basename "$f" .sql)
        psql_at "$DIR" "$PORT" -c "DROP DATABASE IF EXISTS corpus_run" -c "CREATE DATABASE corpus_run TEMPLATE app STRATEGY FILE_COPY" >/dev/null
        if psql_at "$DIR" "$PORT" -d corpus_run -f "$f" >/dev/null 2>"$WORK/apply.err"; then
            [ -z "$(header "$f" fails)" ] || fail "$b applied, but it is marked -- fails:"
        else
            [ -n "$(header "$f" fails)" ] || fail "$b does not apply: $(grep -m1 ERROR "$WORK/apply.err")"
        fi
        applied=$((applied + 1))
    done
    psql_at "$DIR" "$PORT" -c "DROP DATABASE IF EXISTS corpus_run" >/dev/null
    echo
    echo "Applied: ${applied} files, each on a fresh copy of the schema."
fi

# --------------------------------------------------------------------------------------------
# 6. a 1 000-statement script
# --------------------------------------------------------------------------------------------
if [ "$HAVE_STEWARD" = t ]; then
    # The corpus's statements (a statement ends with a line ending in ';'), repeated until there are STATEMENTS.
    awk -v want="$STATEMENTS" '
        FNR == 1 { cur = "" }
        { cur = cur $0 "\n" }
        /;[[:space:]]*$/ { stmt[n++] = cur; cur = "" }
        END { for (i = 0; i < want; i++) printf "%s", stmt[i % n] }' "${FILES[@]}" >"$WORK/big.sql"
    log "migration_check on a ${STATEMENTS}-statement script ($(wc -c <"$WORK/big.sql") bytes), ${RUNS} runs"
    { set_sql "$WORK/big.sql"; cat <<'SQL'; } | psql_at "$DIR" "$PORT" -d app -At -F' ' -v "runs=$RUNS" >"$WORK/timing"
SELECT set_config('bench.sql', :'sql', false), set_config('bench.runs', :'runs', false) \g /dev/null
CREATE TEMP TABLE timing (ms float8, findings int);
DO $$
DECLARE s text := current_setting('bench.sql'); t0 timestamptz; n int;
BEGIN
  PERFORM count(*) FROM steward.migration_check(s);   -- warm-up
  FOR i IN 1 .. current_setting('bench.runs')::int LOOP
    t0 := clock_timestamp();
    SELECT count(*) INTO n FROM steward.migration_check(s);
    INSERT INTO timing VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000, n);
  END LOOP;
END $$;
SELECT round(min(ms)::numeric, 1), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
       round(max(ms)::numeric, 1), max(findings) FROM timing;
SQL
    read -r tmin tmed tmax nfind <"$WORK/timing"
    echo
    echo "migration_check on ${STATEMENTS} statements: median ${tmed} ms (min ${tmin}, max ${tmax}; ${nfind} findings) — goal <= 100 ms"
    awk -v m="$tmed" 'BEGIN { exit !(m <= 100) }' || fail "migration_check took ${tmed} ms on ${STATEMENTS} statements (goal <= 100 ms)"
fi

exit "$FAILED"
