#!/usr/bin/env bash
# Run the whole test suite (the three tiers of scripts/test.sh) against PostgreSQL 17.
#
# Debian 12 has no PostgreSQL 17, so the tests run inside a Debian 13 (trixie) root made once
# with debootstrap from the mirror of the machine's apt sources, with PostgreSQL 17 installed
# from trixie's binary packages.  The host's Rust toolchain (~/.cargo with cargo-pgrx,
# ~/.rustup) and the project are bind-mounted into it, and scripts/test.sh runs there with
# PG_STEWARD_PG_MAJOR=17: the same tiers and the same test list as on 15, with
#   - pgrx's own configuration in the root's /root/.pgrx (the host's ~/.pgrx stays for 15),
#   - its own target directory (target-pg17/), so the PostgreSQL 15 build is never rebuilt,
#   - the test server on 127.0.0.1:25439 (the standby on the next port; pgrx's test server on a
#     free port it picks itself): the root shares the host's network, and 15 uses 25429/25430.
#     The ports are below the ephemeral range (32768-60999) on purpose: on this machine kind a
#     client connection's TIME_WAIT on a port blocks a server from listening there for 60 s,
#     SO_REUSEADDR notwithstanding (it once made the 17 standby fail to start on 54340).
# Idempotent and unattended: the root, its packages and pgrx's configuration are made only
# when missing; the mounts are undone on exit.  scripts/test.sh calls this after the 15 tiers.
# To delete the root, check first that nothing is mounted under it (findmnt | grep trixie): an
# rm -rf through a leftover bind mount would delete the project and ~/.cargo with it.
PG_STEWARD_PG_MAJOR=17 source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT, PGRX_VERSION, log

CHROOT="${PG_STEWARD_PG17_ROOT:-/var/lib/pg_steward/trixie}"
PORT="${PG_STEWARD_PG17_PORT:-25439}"
SUITE=trixie
PACKAGES=(postgresql-17 postgresql-server-dev-17 postgresql-17-cron libclang-dev sudo
          gcc libc6-dev pkg-config ca-certificates)
CARGO_DIR="${CARGO_HOME:-$HOME/.cargo}"
RUSTUP_DIR="${RUSTUP_HOME:-$HOME/.rustup}"

die() { printf '\033[1;31m==> [PostgreSQL 17] %s\033[0m\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and bind mounts)"

# The Debian mirror of the machine's apt sources (deb822 or one-line format).
debian_mirror() {
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ')
    echo "${m:-http://deb.debian.org/debian}"
}

# Everything mounted at or below a path, deepest first.
mounts_below() {
    findmnt -rn -o TARGET | awk -v p="$1" '$0 == p || index($0, p "/") == 1' | sort -r
}

unmount_below() {
    local m
    for m in $(mounts_below "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
}

# The Debian 13 root, made once.  It is built in DIR.partial and renamed when complete, so an
# interrupted debootstrap is started again rather than used.
ensure_root() {
    [ -f "$CHROOT/.pg_steward-root-complete" ] && return
    command -v debootstrap >/dev/null || {
        log "installing debootstrap on the host"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local partial="$CHROOT.partial" mirror
    mirror=$(debian_mirror)
    log "creating a Debian ${SUITE} root in ${CHROOT} from ${mirror} (once)"
    # An interrupted debootstrap may leave its proc/sys mounts behind; never delete through a mount.
    unmount_below "$partial"
    [ -z "$(mounts_below "$partial")" ] || die "$partial still has mounts; not deleting it"
    rm -rf "$partial"
    [ ! -e "$CHROOT" ] || die "$CHROOT exists but is not a complete root; move it away"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase "$SUITE" "$partial" "$mirror" >"$(dirname "$CHROOT")/debootstrap.log" 2>&1 \
        || { tail -n 20 "$(dirname "$CHROOT")/debootstrap.log" >&2; die "debootstrap failed"; }
    # Packages never start services in the root, and Debian's default cluster is not made:
    # the tests start their own servers.
    printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
    chmod 755 "$partial/usr/sbin/policy-rc.d"
    mkdir -p "$partial/etc/postgresql-common"
    echo "create_main_cluster = false" >"$partial/etc/postgresql-common/createcluster.conf"
    touch "$partial/.pg_steward-root-complete"
    mv "$partial" "$CHROOT"
}

MOUNTED=()
bind() { # bind SOURCE TARGET-INSIDE-THE-ROOT
    mkdir -p "$CHROOT$2"
    mount --bind "$1" "$CHROOT$2"
    MOUNTED+=("$CHROOT$2")
}

# Processes still running in the root (servers of a run that was interrupted or killed: pgrx's
# test cluster outlives a Ctrl-C) are stopped: SIGINT (a fast shutdown for a postmaster), then
# SIGKILL for whatever is left after 10 s.  Only this script starts processes in the root.
stop_root_processes() {
    local p pids=() i
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$CHROOT" ] && pids+=("${p#/proc/}")
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    log "stopping ${#pids[@]} processes left running in the root"
    kill -INT "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

cleanup() {
    local i
    stop_root_processes
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTED[$i]}" 2>/dev/null || umount -R -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
}

# One run at a time per root: two runs would share its mounts and servers.
mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"
flock 9

ensure_root

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Whatever a killed earlier run left running or mounted goes first (the root itself is never a mount).
stop_root_processes
unmount_below "$CHROOT"

mkdir -p "$CHROOT/proc"
mount -t proc proc "$CHROOT/proc"
MOUNTED+=("$CHROOT/proc")
mkdir -p "$CHROOT/dev"
mount --rbind /dev "$CHROOT/dev"
mount --make-rslave "$CHROOT/dev"
MOUNTED+=("$CHROOT/dev")
# Name resolution as on the host (apt, cargo; sudo looks up the host name).
cp -L /etc/resolv.conf /etc/hosts "$CHROOT/etc/"

missing=()
for p in "${PACKAGES[@]}"; do
    chroot "$CHROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian ${SUITE} packages in the root: ${missing[*]}"
    chroot "$CHROOT" apt-get update -qq
    chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# The root runs the host's cargo-pgrx: installed from inside, it would be linked against
# Debian 13's C library and no longer run on the host.
if ! cargo pgrx --version 2>/dev/null | grep -q "${PGRX_VERSION}"; then
    log "installing cargo-pgrx ${PGRX_VERSION} on the host (takes a few minutes once)"
    cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
fi

bind "$CARGO_DIR" /root/.cargo
bind "$RUSTUP_DIR" /root/.rustup
bind "$ROOT" "$ROOT"

log "$(chroot "$CHROOT" /usr/lib/postgresql/17/bin/pg_config --version) in ${CHROOT}; test server on port ${PORT}"
# A clean environment: nothing of the host's PostgreSQL 15 set-up (PGRX_HOME, PG*) leaks in.
chroot "$CHROOT" /usr/bin/env -i \
    HOME=/root USER=root LOGNAME=root \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG="${LANG:-C.UTF-8}" TERM="${TERM:-dumb}" \
    RUST_BACKTRACE="${RUST_BACKTRACE:-1}" RUSTUP_AUTO_INSTALL=0 \
    ${PROFILE:+PROFILE="$PROFILE"} ${CARGO_TERM_COLOR:+CARGO_TERM_COLOR="$CARGO_TERM_COLOR"} \
    PG_STEWARD_PG_MAJOR=17 \
    PG_STEWARD_TEST_PORT="$PORT" \
    CARGO_TARGET_DIR="$ROOT/target-pg17" \
    bash "$ROOT/scripts/test.sh"
