#!/usr/bin/env bash
# make test: install what is missing, build with -Werror, install, start a
# throwaway Redis and PostgreSQL on loopback ports, run the pg_regress suite
# and every TAP test, stop the servers, and end with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib.sh

rs_install_packages || { echo "0 passed, 1 failed"; exit 1; }
if ! rs_build_install; then
    make with_llvm=no RS_WERROR=1 2>&1 | tail -30
    echo "0 passed, 1 failed"
    exit 1
fi

WORK=$(rs_workdir test)
REDIS_PORT=$(rs_free_port)
PGPORT=$(rs_free_port)
cleanup() {
    rs_stop_pg "$WORK"
    rs_stop_redis "$REDIS_PORT"
}
trap cleanup EXIT

passed=0
failed=0

# --- pg_regress -------------------------------------------------------
if [ "${RS_REGRESS:-}" != none ]; then
    rs_start_redis "$WORK" "$REDIS_PORT" || { echo "0 passed, 1 failed"; exit 1; }
    rs_start_pg "$WORK" "$PGPORT" || { echo "0 passed, 1 failed"; exit 1; }
    export REDIS_PORT
    mkdir -p "$WORK/regress"
    # RS_REGRESS="file ..." runs only those pg_regress files; RS_TAP="NNN_* ..."
    # only the TAP files matching the patterns ("none" skips that part).
    regress_files=()
    [ -n "${RS_REGRESS:-}" ] && regress_files=("REGRESS=$RS_REGRESS")
    make -s with_llvm=no installcheck "${regress_files[@]}" PGHOST=127.0.0.1 PGPORT="$PGPORT" PGUSER=postgres \
        REGRESS_OPTS="--dbname=contrib_regression --outputdir=$WORK/regress" >"$WORK/regress.out" 2>&1
    cat "$WORK/regress.out"
    # "test x ... ok" up to PostgreSQL 15; "ok 1 - x" (TAP) from 16 on
    p=$(grep -cE '\.\.\. ok|^ok +[0-9]+ ' "$WORK/regress.out" || true)
    f=$(grep -cE '\.\.\. FAILED|\.\.\. failed|^not ok +[0-9]+ ' "$WORK/regress.out" || true)
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" != 0 ] || ! grep -q "tests passed" "$WORK/regress.out"; then
        [ -f "$WORK/regress/regression.diffs" ] && cat "$WORK/regress/regression.diffs"
        [ "$f" = 0 ] && failed=$((failed + 1))
    fi
    cleanup
fi

# --- TAP --------------------------------------------------------------
mkdir -p "$WORK/tap"
cp -r test/t test/perl "$WORK/tap/"
chown -R postgres:postgres "$WORK/tap"
PGXS_DIR=$(dirname "$("$RS_PG_CONFIG" --pgxs)")/..
# Whether this build has TLS (hiredis_ssl found): the TLS tests expect
# either working TLS or the error that says it is missing.
RS_TLS_BUILD=$(make -s print-tls)
# RS_FULL=1 (make test-full): the full sizes of the fault and load tests.
# SOAK=1: more fault seeds and a 5,000,000-member load test (about an hour).
tap_timeout=600
[ -n "${RS_FULL:-}" ] && tap_timeout=900
[ -n "${SOAK:-}" ] && tap_timeout=3600

# run_tap NAME: run one TAP file; its log goes to NAME.log, its status and
# wall time to NAME.status.
run_tap() {
    local name=$1 start rc
    start=$(date +%s)
    (cd "$WORK/tap" && rs_as_postgres env PATH="$RS_PGBIN:$PATH" \
        PERL5LIB="$PGXS_DIR/test/perl:$WORK/tap/perl" \
        TESTDIR="$WORK/tap" TESTLOGDIR="$WORK/tap/tmp_check/log" TESTDATADIR="$WORK/tap/tmp_check" \
        PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
        REDIS_SERVER="$(command -v redis-server)" RS_SOAK="${SOAK:-}" RS_FULL="${RS_FULL:-${SOAK:-}}" \
        RS_TLS_BUILD="$RS_TLS_BUILD" \
        timeout "$tap_timeout" prove -v "t/$name" >"$WORK/tap/$name.log" 2>&1)
    rc=$?
    echo "$rc $(( $(date +%s) - start ))" >"$WORK/tap/$name.status"
}

# RS_TAP may hold several patterns, separated by spaces; RS_TAP_SKIP is a
# pattern of TAP files to leave out (test/matrix.sh).
names=()
read -r -a tap_patterns <<<"${RS_TAP:-*}"
for t in $(for pat in "${tap_patterns[@]}"; do ls "$WORK"/tap/t/$pat.pl 2>/dev/null; done | sort -u); do
    name=$(basename "$t")
    # shellcheck disable=SC2254
    case $name in ${RS_TAP_SKIP:-none}) echo "TAP $name ... skipped"; continue ;; esac
    names+=("$name")
done
# The TAP files run RS_JOBS at a time (default 3): they wait on servers and
# workers much of the time.
for name in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "${RS_JOBS:-3}" ]; do
        wait -n
    done
    run_tap "$name" &
done
wait
for name in "${names[@]}"; do
    read -r rc secs <"$WORK/tap/$name.status"
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        echo "TAP $name ... ok ($(grep -cE '^ok ' "$WORK/tap/$name.log") checks, ${secs} s)"
        # measurements a test reports (not asserted), e.g. the load test's throughput
        grep -E '^# (load|measured)' "$WORK/tap/$name.log" | sed 's/^# /    /'
    else
        failed=$((failed + 1))
        echo "TAP $name ... FAILED (${secs} s)"
        cat "$WORK/tap/$name.log"
        for l in "$WORK"/tap/tmp_check/log/*"${name%.pl}"*.log; do
            [ -f "$l" ] && { echo "--- $l"; tail -50 "$l"; }
        done
    fi
done

echo
echo "$passed passed, $failed failed"
if [ "$failed" = 0 ]; then
    rm -rf "$WORK"
else
    echo "logs kept in $WORK"
fi
[ "$failed" = 0 ]
