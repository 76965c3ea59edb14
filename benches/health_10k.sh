#!/usr/bin/env bash
# Health metrics on a database with 10 000 tables and 20 000 indexes (issue #2), side by side
# with the naive table list: benches/health_catalog.sh at 10 000 tables, all in `public`, with
# this bench's historical directory, port and shared_buffers (budgets 300 ms, report 1 000 ms).
#   bash benches/health_10k.sh            (PROFILE=release by default)
#   REUSE=1 bash benches/health_10k.sh    (keep the database of the previous run)
# RUNS (the calls per connection, as before) is passed on as CALLS; see health_catalog.sh.
export TABLES=${TABLES:-10000}
export TABLES_PER_SCHEMA=${TABLES_PER_SCHEMA:-0}
export CALLS=${CALLS:-${RUNS:-3}}
export SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
export PG_STEWARD_BENCH_DIR=${PG_STEWARD_BENCH_DIR:-/tmp/pg_steward_bench}
export PG_STEWARD_BENCH_PORT=${PG_STEWARD_BENCH_PORT:-54331}
exec bash "$(dirname "${BASH_SOURCE[0]}")/health_catalog.sh" "$@"
