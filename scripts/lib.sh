# Shared by scripts/demo.sh, scripts/test.sh and benches/*.sh.  Source it; do not run it.
#
# Everything here is idempotent: each step checks whether its work is already done.
# The machine runs everything as root, and PostgreSQL refuses to run as root, so every
# server is initialised and started as the `postgres` OS user on a directory it owns.

set -euo pipefail

# 15 on the host; scripts/pg17.sh runs the same scripts with 17 inside a Debian 13 root.
PG_MAJOR=${PG_STEWARD_PG_MAJOR:-15}
# PG_STEWARD_PG_BIN_DIR points the scripts at another installation of the same major version
# (a relocated copy, with its own pg_config and extension directory); by default Debian's.
PG_BIN="${PG_STEWARD_PG_BIN_DIR:-/usr/lib/postgresql/${PG_MAJOR}/bin}"
PG_CONFIG="${PG_BIN}/pg_config"
PGRX_VERSION=0.18.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> [PostgreSQL %s] %s\033[0m\n' "$PG_MAJOR" "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: the server, its headers, pg_cron, libclang for bindgen, sudo.
ensure_packages() {
    local missing=() wanted=(libclang-dev sudo)
    # Another installation was named (PG_STEWARD_PG_BIN_DIR): the server packages are not needed.
    [ -n "${PG_STEWARD_PG_BIN_DIR:-}" ] || wanted+=(postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} postgresql-${PG_MAJOR}-cron)
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Debian starts a cluster of its own on 5432; we never use it, and it is not needed.
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "${PGRX_VERSION}"; then
        log "installing cargo-pgrx ${PGRX_VERSION} (takes a few minutes once)"
        cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
    fi
    if [ -n "${PG_STEWARD_PG_BIN_DIR:-}" ]; then
        # `cargo pgrx install --pg-config` needs a config.toml to exist, not an entry for this
        # installation: an existing one (whatever its pg15 entry points at) is left alone.
        if [ ! -f "${PGRX_HOME:-$HOME/.pgrx}/config.toml" ]; then
            log "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
            cargo pgrx init --pg${PG_MAJOR} "${PG_CONFIG}"
        fi
    elif ! grep -qs "pg${PG_MAJOR}" "$HOME/.pgrx/config.toml"; then
        log "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
        cargo pgrx init --pg${PG_MAJOR} "${PG_CONFIG}"
    fi
}

ensure_all() {
    ensure_packages
    ensure_cargo_pgrx
}

# Build and install the extension into the Debian server (release with PROFILE=release), or
# into the installation PG_STEWARD_PG_BIN_DIR names.  CARGO_TARGET_DIR, when set, is cargo's.
# cargo pgrx installs the current version's generated script and the upgrade scripts
# (sql/pg_steward--A--B.sql); the install scripts of released versions (sql/pg_steward--A.sql,
# frozen by scripts/release.sh) are copied here, so `CREATE EXTENSION pg_steward VERSION 'A'`
# works as it does on a server that was upgraded in place.
install_extension() {
    log "building and installing pg_steward into PostgreSQL ${PG_MAJOR}"
    (cd "$ROOT" && cargo pgrx install --pg-config "${PG_CONFIG}" $([ "${PROFILE:-dev}" = release ] && echo --release) >/dev/null)
    local f ext
    ext="$("${PG_CONFIG}" --sharedir)/extension"
    for f in "$ROOT"/sql/pg_steward--*.sql; do
        case "$(basename "$f")" in
            pg_steward--*--*) ;;                      # upgrade scripts: cargo pgrx copied them
            *) as_root install -m 0644 "$f" "$ext/" ;;
        esac
    done
}

# start_server DIR PORT [extra postgresql.conf lines...]
# A throw-away cluster owned by postgres, listening on 127.0.0.1:PORT and a socket in DIR.
start_server() {
    local dir="$1" port="$2"; shift 2
    stop_server "$dir"
    as_root rm -rf "$dir"
    as_root mkdir -p "$dir"
    as_root chown postgres:postgres "$dir"
    sudo -u postgres "${PG_BIN}/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_connections = 100"
        for line in "$@"; do echo "$line"; done
    } | sudo -u postgres tee -a "$dir/data/postgresql.conf" >/dev/null
    sudo -u postgres "${PG_BIN}/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

stop_server() {
    local dir="$1"
    if [ -f "$dir/data/postmaster.pid" ]; then
        sudo -u postgres "${PG_BIN}/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# psql against a server started above: psql_at DIR PORT [psql args...]
psql_at() {
    local dir="$1" port="$2"; shift 2
    "${PG_BIN}/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# pgbench_latency PORT SCRIPT_FILE [SECONDS] -> mean latency in ms.  A run in which any
# transaction failed or that aborted stops the caller: its figures would describe a handful
# of transactions, not the operation (a benchmark once reported a latency over 21 calls).
pgbench_latency() {
    local port=$1 file=$2 secs=${3:-${SECONDS_EACH:-5}} out
    out=$(mktemp)
    "${PG_BIN}/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -M prepared -T "$secs" -f "$file" postgres >"$out" 2>&1
    if grep -q -e 'error' -e 'aborted' -e 'number of failed transactions: [1-9]' "$out"; then
        echo "pgbench failed; its figures would be meaningless:" >&2
        cat "$out" >&2
        rm -f "$out"
        exit 1
    fi
    awk -F' = ' '/latency average/ {print $2+0}' "$out"
    rm -f "$out"
}
