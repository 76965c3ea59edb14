#!/usr/bin/env bash
# Install whatever is missing, then run every test tier against real PostgreSQL 15, then the
# same tiers against PostgreSQL 17 (scripts/pg17.sh: in a Debian 13 root, since Debian 12 has no 17):
#   1. unit tests and #[pg_test]s        (cargo pgrx test, its own throw-away cluster)
#   2. pg_regress golden files            (test/sql, test/expected; NAME_1.out where 17 differs)
#   3. client integration tests           (pgrx-tests/: connect like PostgREST, switch roles)
# PG_STEWARD_SKIP_PG17=1 runs 15 only.  Idempotent and unattended; .ci/run calls exactly this.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# One run of the tiers at a time: runs share the test servers' ports and directories, pgrx's
# test cluster and the server's extension directory.  flock(1) holds the lock (-o: the servers
# started here do not, so a server left behind by a killed run never blocks the next run).
# The PostgreSQL 17 part runs after the lock is released; scripts/pg17.sh has a lock of its own.
if [ -z "${PG_STEWARD_TEST_LOCKED:-}" ]; then
    # Released SQL scripts never change, and the version under development has an upgrade path.
    bash "$ROOT/scripts/release.sh" check
    flock -n /tmp/pg_steward_test.lock true || log "waiting for another run of scripts/test.sh to finish"
    PG_STEWARD_TEST_LOCKED=1 flock -o /tmp/pg_steward_test.lock bash "$ROOT/scripts/test.sh"
    if [ "${PG_MAJOR}" = 15 ] && [ "${PG_STEWARD_SKIP_PG17:-0}" != 1 ]; then
        bash "$ROOT/scripts/pg17.sh"
    fi
    exit 0
fi
ensure_all
cd "$ROOT"

log "tier 1: unit tests and #[pg_test]s"
as_root mkdir -p /tmp/pg_steward_pgrx_test && as_root chown postgres:postgres /tmp/pg_steward_pgrx_test
CARGO_PGRX_TEST_RUNAS=postgres CARGO_PGRX_TEST_PGDATA=/tmp/pg_steward_pgrx_test/data \
    cargo pgrx test "pg${PG_MAJOR}"

install_extension
DIR=/tmp/pg_steward_test
PORT=${PG_STEWARD_TEST_PORT:-25429}
log "starting a test server on 127.0.0.1:${PORT}"
# pg_cron runs its scheduler in the regress database (created below), so schedule_jobs() is
# tested with pg_cron present; the other databases show the "not installed" path.
start_server "$DIR" "$PORT" "shared_preload_libraries = 'pg_stat_statements,pg_cron'" \
    "cron.database_name = 'steward_regress'"
trap 'stop_server "$DIR"' EXIT

log "tier 2: pg_regress golden files"
mkdir -p "$DIR/regress"
psql_at "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS steward_regress" -c "CREATE DATABASE steward_regress"
REGRESS="$("${PG_CONFIG}" --pkglibdir)/pgxs/src/test/regress/pg_regress"
if ! "$REGRESS" --use-existing --host=127.0.0.1 --port="$PORT" --user=postgres \
        --bindir="${PG_BIN}" --inputdir=test --outputdir="$DIR/regress" --dbname=steward_regress \
        health facade alerts maintenance maintenance_console retention monthly trends admin_log ai_usage cron config audit migrate; then
    cat "$DIR/regress/regression.diffs" >&2 || true
    exit 1
fi

# A streaming replica of the test server (pgrx-tests/tests/standby.rs): every read-only
# function must answer on a hot standby, every writer refuse with 25006.
SDIR=/tmp/pg_steward_test_standby
SPORT=$((PORT + 1))
log "starting a hot standby of it on 127.0.0.1:${SPORT} (pg_basebackup -R)"
stop_server "$SDIR"
as_root rm -rf "$SDIR" && as_root mkdir -p "$SDIR" && as_root chown postgres:postgres "$SDIR"
sudo -u postgres "${PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$SDIR/data" -R -X stream \
    --checkpoint=fast  # the default spread checkpoint made this wait 2-3 minutes
# The other client tests keep writing on the primary (DDL, VACUUM): the standby waits for its
# queries rather than cancelling them for replay.  No hot_standby_feedback: it would hold back the
# primary's VACUUM horizon, and the maintenance tests assert that VACUUM removes dead tuples.
printf "port = %s\nunix_socket_directories = '%s'\nmax_standby_streaming_delay = -1\n" "$SPORT" "$SDIR" \
    | sudo -u postgres tee -a "$SDIR/data/postgresql.conf" >/dev/null
sudo -u postgres "${PG_BIN}/pg_ctl" -D "$SDIR/data" -l "$SDIR/server.log" -w -t 60 start >/dev/null
# pgrx-tests/tests/crash.rs stops, kills and restarts a server of its own (PORT+2), made fresh.
CDIR=/tmp/pg_steward_test_crash
CPORT=$((PORT + 2))
trap 'stop_server "$SDIR"; stop_server "$CDIR"; stop_server "$DIR"' EXIT

log "tier 3: client integration tests (pgrx-tests/)"
PG_STEWARD_TEST_HOST=127.0.0.1 PG_STEWARD_TEST_PORT="$PORT" PG_STEWARD_STANDBY_PORT="$SPORT" PG_STEWARD_PG_BIN="${PG_BIN}" \
    PG_STEWARD_CRASH_DIR="$CDIR" PG_STEWARD_CRASH_PORT="$CPORT" \
    cargo test -p pg_steward_integration -- --test-threads=2
stop_server "$SDIR"
stop_server "$CDIR"
log "all three tiers passed on $("${PG_CONFIG}" --version)"
