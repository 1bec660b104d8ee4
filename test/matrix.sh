#!/usr/bin/env bash
# make test-matrix: the test suite on the other supported builds.
#
# Builds (or reuses from a cache) PostgreSQL 18 (and 17, when Debian's
# archive serves its source) and hiredis 1.x with TLS from Debian's source
# packages, then runs test/run_tests.sh against each PostgreSQL with
# hiredis 1.x, on a copy of this checkout; and against Debian 12's
# PostgreSQL 15 with hiredis 1.x (make test covers 15 with hiredis 0.14).
#
# Sources come through a private apt configuration under the cache: a
# deb-src list for the suites below, on the archive that the machine's own
# apt sources name, with its own package lists, so the system's apt setup is
# untouched.  Installed trees are kept under $RS_MATRIX_CACHE/<name>-<version>
# and reused by later runs; only the first run on a machine builds them.
#
# Variables:
#   RS_MATRIX_PG       PostgreSQL majors to test (default "18 17 15"); a major
#                      whose source cannot be downloaded is reported and
#                      skipped; 15 is Debian 12's package
#   RS_MATRIX_CACHE    cache folder (default /var/cache/redis_sync-matrix)
#   RS_MATRIX_SUBSET=1 only the pg_regress suite, the fault TAP file and the
#                      TLS TAP file (what .ci/run runs); otherwise every file
#   RS_PREFIX          private prefixes are made as $RS_PREFIX-pgNN
#   RS_REGRESS, RS_TAP as for make test
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RS_MATRIX_CACHE=${RS_MATRIX_CACHE:-/var/cache/redis_sync-matrix}
RS_MATRIX_PG=${RS_MATRIX_PG:-18 17 15}
RS_MATRIX_SUITES="sid trixie"
APT_DIR=$RS_MATRIX_CACHE/apt
SRC_DIR=$RS_MATRIX_CACHE/src
BUILD_DIR=$RS_MATRIX_CACHE/build
BUILD_PACKAGES="gcc make bison flex pkg-config libssl-dev liblz4-dev libzstd-dev zlib1g-dev libipc-run-perl bzip2 dpkg-dev redis-server redis-tools"

# say MESSAGE: progress lines with the time since the start.
START=$(date +%s)
say() { echo "[matrix $(( $(date +%s) - START ))s] $*"; }

# timed NAME CMD...: run CMD and record its wall time for the summary.
TIMES=()
timed() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    "$@"
    rc=$?
    TIMES+=("$(printf '%-34s %5ss%s' "$name" $(( $(date +%s) - t0 )) "$(case $rc in 0) ;; 2) echo '  (skipped)' ;; *) echo '  (failed)' ;; esac)")")
    return $rc
}

# The Debian archive of the machine's own apt sources (deb822 or one-line).
archive_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^Types:/{deb=($0 ~ /deb/)} /^Suites:/{sec=($0 ~ /security/)} /^URIs:/{u=$2}
             /^$/{ if (deb && !sec && u != "") { print u; exit } u="" }
             END{ if (deb && !sec && u != "") print u }' "$f" | head -1
    done | grep -m1 . && return 0
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }'
}

APT_OPTS=()
# apt_setup: the private deb-src list and package lists (refreshed daily).
apt_setup() {
    local uri
    uri=$(archive_uri)
    if [ -z "$uri" ]; then
        echo "no Debian archive found in /etc/apt; cannot fetch sources" >&2
        return 1
    fi
    mkdir -p "$APT_DIR/lists/partial" "$SRC_DIR" "$BUILD_DIR"
    : >"$APT_DIR/sources.list.new"
    for s in $RS_MATRIX_SUITES; do
        echo "deb-src $uri $s main" >>"$APT_DIR/sources.list.new"
    done
    mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
    APT_OPTS=(-o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o Dir::Etc::sourceparts=-
              -o "Dir::State::Lists=$APT_DIR/lists" -o Debug::NoLocking=1)
    if [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*Sources' -mtime -1 2>/dev/null)" ]; then
        apt-get "${APT_OPTS[@]}" -qq update >/dev/null 2>"$APT_DIR/update.err" ||
            { cat "$APT_DIR/update.err" >&2; return 1; }
    fi
}

# fetch PACKAGE[/SUITE]: download a source package into the cache (files
# already there are not downloaded again) and print its .dsc, or fail.
fetch() {
    local pkg=${1%%/*} dsc
    (cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" -qq source --download-only "$1" >"$SRC_DIR/$pkg.log" 2>&1)
    if grep -q '^E:' "$SRC_DIR/$pkg.log"; then
        return 1
    fi
    dsc=$(ls "$SRC_DIR/${pkg}"_*.dsc 2>/dev/null | sort -V | tail -1)
    [ -n "$dsc" ] && echo "$dsc"
}

# The upstream tarball named by a .dsc, and its version.
orig_tarball() { ls "$(dirname "$1")/$(basename "$1" | sed -E 's/_([^_-]+)-[^_]*\.dsc$/_\1/')".orig.tar.* 2>/dev/null | head -1; }
orig_version() { basename "$1" | sed -E 's/^[^_]+_([^_-]+)-.*\.dsc$/\1/'; }

# What PostgreSQL is configured with: the compression methods of Debian's
# packages (redis_sync.worker_wal_compression lists what the server has),
# OpenSSL and the TAP tests.  A cached tree built otherwise is rebuilt.
PG_CONFIGURE="--with-lz4 --with-zstd --with-openssl --enable-tap-tests --without-icu --without-readline"

# build_pg MAJOR: print the installed tree of PostgreSQL MAJOR, building it
# when the cache has none for the current source version and configuration.
build_pg() {
    local major=$1 dsc ver tree src
    dsc=$(fetch "postgresql-$major") || { say "postgresql-$major: source not available ($(grep -m1 '^E:' "$SRC_DIR/postgresql-$major.log"))" >&2; return 2; }
    ver=$(orig_version "$dsc")
    tree=$RS_MATRIX_CACHE/postgresql-$ver
    if [ "$(cat "$tree/.complete" 2>/dev/null)" = "$PG_CONFIGURE" ]; then
        echo "$tree"
        return 0
    fi
    say "building PostgreSQL $ver into $tree" >&2
    src=$BUILD_DIR/postgresql-$ver
    rm -rf "$src" "$tree"
    mkdir -p "$src"
    tar -xf "$(orig_tarball "$dsc")" -C "$src" --strip-components=1 || return 1
    (
        cd "$src" &&
        # shellcheck disable=SC2086
        ./configure --prefix="$tree" $PG_CONFIGURE >"$src/configure.log" 2>&1 &&
        nice -n 10 make -j2 -s >"$src/make.log" 2>&1 &&
        make -s install >"$src/install.log" 2>&1
    ) || { say "PostgreSQL $ver build failed; logs in $src" >&2; return 1; }
    chmod -R a+rX "$tree"
    echo "$PG_CONFIGURE" >"$tree/.complete"
    rm -rf "$src"
    echo "$tree"
}

# build_hiredis: print the installed tree of hiredis 1.x with TLS.
build_hiredis() {
    local dsc ver tree src
    dsc=$(fetch hiredis/trixie) || { say "hiredis: source not available" >&2; return 1; }
    ver=$(orig_version "$dsc")
    tree=$RS_MATRIX_CACHE/hiredis-$ver
    if [ -f "$tree/.complete" ]; then
        echo "$tree"
        return 0
    fi
    say "building hiredis $ver into $tree" >&2
    src=$BUILD_DIR/hiredis-$ver
    rm -rf "$src" "$tree"
    mkdir -p "$src"
    tar -xf "$(orig_tarball "$dsc")" -C "$src" --strip-components=1 || return 1
    (cd "$src" && nice -n 10 make -j2 USE_SSL=1 PREFIX="$tree" LIBRARY_PATH=lib install >"$src/make.log" 2>&1) ||
        { say "hiredis $ver build failed; logs in $src" >&2; return 1; }
    chmod -R a+rX "$tree"
    touch "$tree/.complete"
    rm -rf "$src"
    echo "$tree"
}

# run_on TREE HIREDIS NAME: the test suite against one PostgreSQL tree, on a
# copy of the checkout (so that objects built for another major never mix).
run_on() {
    local tree=$1 hiredis=$2 name=$3 copy rc
    copy=$(mktemp -d "/tmp/redis_sync_matrix_$name.XXXXXX")
    tar -C "$ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
        --exclude=./results --exclude=./bench/work -cf - . | tar -C "$copy" -xf -
    local prefix=${RS_PREFIX:-/tmp/redis_sync_matrix}-$name
    rm -rf "$prefix"
    local regress=${RS_REGRESS:-} tap=${RS_TAP:-} skip=""
    if [ -n "${RS_MATRIX_SUBSET:-}" ]; then
        tap=${RS_TAP:-002_* 020_*}
    fi
    # pg_cron is not built here: the scheduler test needs it.
    [ -z "$tap" ] && skip="003_*"
    (cd "$copy" && RS_PG_TREE="$tree" RS_PREFIX="$prefix" HIREDIS_PREFIX="$hiredis" \
        RS_REGRESS="$regress" RS_TAP="$tap" RS_TAP_SKIP="$skip" bash test/run_tests.sh)
    rc=$?
    if [ $rc = 0 ]; then
        rm -rf "$copy" "$prefix"
    else
        say "$name failed; checkout copy kept in $copy"
    fi
    return $rc
}

main() {
    local failed=0 tree hiredis major
    [ "$(id -u)" = 0 ] || { echo "make test-matrix builds into $RS_MATRIX_CACHE and runs tests as postgres: run it as root" >&2; exit 1; }
    . test/lib.sh
    rs_install_packages $BUILD_PACKAGES || exit 1
    timed "apt: private source lists" apt_setup || exit 1
    timed "hiredis 1.x (build or cache)" build_hiredis >"$APT_DIR/hiredis.path" || exit 1
    hiredis=$(cat "$APT_DIR/hiredis.path")
    say "hiredis: $hiredis"
    for major in $RS_MATRIX_PG; do
        if [ "$major" = "$RS_PG_VERSION" ]; then
            timed "tests on PostgreSQL $major (Debian) + hiredis $(basename "$hiredis" | sed 's/hiredis-//')" \
                run_on "" "$hiredis" "pg$major" || failed=1
            continue
        fi
        timed "PostgreSQL $major (build or cache)" build_pg "$major" >"$APT_DIR/pg$major.path"
        case $? in
            0) ;;
            2) TIMES+=("PostgreSQL $major: skipped, source not downloadable"); continue ;;
            *) failed=1; continue ;;
        esac
        tree=$(cat "$APT_DIR/pg$major.path")
        say "PostgreSQL $major: $tree"
        timed "tests on PostgreSQL $major + hiredis $(basename "$hiredis" | sed 's/hiredis-//')" \
            run_on "$tree" "$hiredis" "pg$major" || failed=1
    done
    echo
    echo "matrix wall times:"
    printf '  %s\n' "${TIMES[@]}"
    [ $failed = 0 ] && echo "matrix: all passed" || echo "matrix: FAILED"
    return $failed
}

if [ "${1:-}" = build-only ]; then
    . test/lib.sh
    rs_install_packages $BUILD_PACKAGES && apt_setup && build_hiredis && build_pg "${2:-18}"
    exit $?
fi
main
