#!/usr/bin/env bash
# Freeze the current version's SQL as released, or check that nothing released has changed.
#
#   bash scripts/release.sh freeze   the version in Cargo.toml becomes a release: its generated
#                                    install script is written to sql/pg_steward--V.sql, and that
#                                    file and every upgrade script that leads to V are recorded
#                                    with their SHA-256 in sql/RELEASED.sha256.  Then commit and
#                                    `git tag -a vV`, and bump the version in Cargo.toml: from
#                                    then on every change to SQL objects goes into the new
#                                    sql/pg_steward--V--NEXT.sql (the upgrade test compares an
#                                    upgraded database's catalog with a fresh install's).
#   bash scripts/release.sh check    (scripts/test.sh runs it first) fails when a released script
#                                    was edited or deleted, when a tag vV disagrees with the
#                                    manifest, or when the version under development has no
#                                    upgrade script from the newest release.
# A released script never changes: users' databases were created from it, and PostgreSQL runs
# exactly the files on disk to bring them forward.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
MANIFEST=sql/RELEASED.sha256

die() { printf '\033[1;31m==> %s\033[0m\n' "$*" >&2; exit 1; }

cargo_version() { sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1; }

released_versions() { # from the manifest's install scripts, oldest first
    [ -f "$MANIFEST" ] || return 0
    sed -n 's/^[0-9a-f]\{64\}  sql\/pg_steward--\([^-]*\)\.sql$/\1/p' "$MANIFEST" | sort -V
}

check() {
    [ -f "$MANIFEST" ] || die "$MANIFEST is missing: the released scripts cannot be checked"
    # 1. Every recorded script is present and byte-for-byte what was released.
    if ! sha256sum --quiet -c "$MANIFEST" >&2; then
        die "a released SQL script was changed or deleted (listed above). Released scripts never change: put the change in an upgrade script to the next version."
    fi
    # 2. A tag agrees with the manifest (when the checkout has tags; CI may not).
    local v
    for v in $(released_versions); do
        if command -v git >/dev/null && git rev-parse -q --verify "refs/tags/v$v" >/dev/null 2>&1; then
            git diff --quiet "v$v" -- "sql/pg_steward--$v.sql" \
                || die "sql/pg_steward--$v.sql differs from tag v$v"
        fi
    done
    # 3. The version under development can be reached from the newest release.
    local cur newest
    cur=$(cargo_version)
    newest=$(released_versions | tail -n1)
    if [ -n "$newest" ] && [ "$cur" != "$newest" ]; then
        [ -f "sql/pg_steward--$newest--$cur.sql" ] \
            || die "version $cur has no upgrade script from release $newest (sql/pg_steward--$newest--$cur.sql)"
    fi
    log "released SQL scripts unchanged ($(released_versions | tr '\n' ' ')); $cur reachable from ${newest:-nothing}"
}

freeze() {
    local v out
    v=$(cargo_version)
    out="sql/pg_steward--$v.sql"
    if released_versions | grep -qx "$v"; then die "$v is already released"; fi
    ensure_all
    log "generating the install script of $v into $out"
    cargo pgrx schema "pg${PG_MAJOR}" --out "$out" >/dev/null
    {
        [ -f "$MANIFEST" ] && cat "$MANIFEST"
        sha256sum "$out"
        for f in sql/pg_steward--*--"$v".sql; do if [ -f "$f" ]; then sha256sum "$f"; fi; done
    } | sort -u -k2 >"$MANIFEST.new"
    mv "$MANIFEST.new" "$MANIFEST"
    log "recorded in $MANIFEST; now: git add $out $MANIFEST && git commit && git tag -a v$v, then bump Cargo.toml"
}

case "${1:-check}" in
    check) check ;;
    freeze) freeze ;;
    *) die "usage: scripts/release.sh [check|freeze]" ;;
esac
