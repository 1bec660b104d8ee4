#!/usr/bin/env bash
# make bench-versions: a past day's first sync and re-sync by two builds of
# redis_sync side by side in one run, on the same data: the working tree
# ("head") and an earlier commit ("base", BENCH_BASE, default the last commit
# of 0.1).  Each build is installed into a private copy of PostgreSQL and runs
# its own cluster (same settings, both durable), against one Redis; only one
# cluster works at a time, and the two take turns, BENCH_VERSIONS_REPS times
# (default 5), so that a slow spell of the machine falls on both.
#
# Data as in run_bench.sh: BENCH_VERSIONS_N members on the day (default
# 1000000), 5N totals.  First sync: the day has no rows, every member row
# exists with an old total (a CHECKPOINT before, not timed).  Re-sync: the
# same day again, right after.  Every run is verified (counts and sums equal
# Redis's).  Then BENCH_VERSIONS_RESYNC_PAIRS (default 10) more re-syncs of
# each build, alternating.  Writes bench/results-versions.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh
. bench/data.sh

BASE=${BENCH_BASE:-$(git rev-parse 'f1a0da6^')}
N=${BENCH_VERSIONS_N:-1000000}
REPS=${BENCH_VERSIONS_REPS:-5}
PAIRS=${BENCH_VERSIONS_RESYNC_PAIRS:-10}
DAY=2026-11-21

rs_install_packages || exit 1

# head: this tree, into its own prefix
HEAD_PREFIX=${RS_PREFIX:-/tmp/rs-bench-head}
BASE_PREFIX=/tmp/rs-bench-base
RS_PREFIX=$HEAD_PREFIX
RS_PGBIN=$HEAD_PREFIX/usr/lib/postgresql/$RS_PG_VERSION/bin
rs_build_install || exit 1
HEAD_BIN=$RS_PGBIN

# base: the earlier commit's tree, built into a second prefix
BASE_SRC=$(mktemp -d /tmp/rs-bench-base-src.XXXXXX)
git archive "$BASE" | tar -x -C "$BASE_SRC" || exit 1
rm -rf "$BASE_PREFIX"
rs_make_prefix "$BASE_PREFIX" || exit 1
make -s -C "$BASE_SRC" with_llvm=no >/dev/null &&
    make -s -C "$BASE_SRC" with_llvm=no install DESTDIR="$BASE_PREFIX" >/dev/null || exit 1
BASE_BIN=$BASE_PREFIX/usr/lib/postgresql/$RS_PG_VERSION/bin
BASE_VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$BASE_SRC/redis_sync.control")
HEAD_VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" redis_sync.control)

WORK=$(rs_workdir versions)
REDIS_PORT=$(rs_free_port)
declare -A PORT BIN
PORT[base]=$(rs_free_port)
PORT[head]=$(rs_free_port)
BIN[base]=$BASE_BIN
BIN[head]=$HEAD_BIN
stop_all() {
    for v in base head; do
        RS_PGBIN=${BIN[$v]} rs_stop_pg "$WORK/$v"
    done
    rs_stop_redis "$REDIS_PORT"
    rm -rf "$BASE_SRC"
}
trap stop_all EXIT
rs_start_redis "$WORK" "$REDIS_PORT" || exit 1
for v in base head; do
    mkdir -p "$WORK/$v" && chown postgres "$WORK/$v"
    RS_PGBIN=${BIN[$v]} RS_PG_DURABLE=1 rs_start_pg "$WORK/$v" "${PORT[$v]}" "max_worker_processes = 16" || exit 1
done

psql_v() {
    local v=$1
    shift
    psql -X -q -A -t -h 127.0.0.1 -p "${PORT[$v]}" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

# the day and the totals, as run_bench.sh makes them
bench_clicks "$REDIS_PORT" "$DAY" "$N" $(( N * 5 )) || exit 1

for v in base head; do
    { bench_schema_sql "$REDIS_PORT"; cat <<SQL; } | psql_v "$v" || exit 1
CREATE FOREIGN TABLE day_ft (member text, score bigint) SERVER redis OPTIONS (key 'clicks:daily:$DAY');
CREATE FOREIGN TABLE total_ft (member text, score bigint) SERVER redis OPTIONS (key 'clicks:total');
INSERT INTO member_seed SELECT member, 0 FROM total_ft;
SQL
done
EXPECTED=$(psql_v head -c "
    SELECT (SELECT count(*) || ' ' || sum(score) FROM day_ft) || ' ' ||
           (SELECT coalesce(sum(t.score), 0) FROM day_ft d JOIN total_ft t USING (member))")

# verify V: "ok", or what V's tables hold instead of what Redis holds
verify() {
    local got
    got=$(psql_v "$1" -c "
        SELECT (SELECT count(*) || ' ' || coalesce(sum(click_count), 0) FROM daily_click_count
                 WHERE click_date = '$DAY') || ' ' ||
               (SELECT coalesce(sum(m.click_count), 0) FROM member m JOIN day_ft d ON d.member = m.name)")
    if [ "$got" = "$EXPECTED" ]; then echo ok; else echo "mismatch:$got"; fi
}

# timed_sync V: seconds of one sync_run of the day (a new run), or "failed"
timed_sync() {
    local start status secs
    start=$(date +%s.%N)
    status=$(psql_v "$1" -c "SELECT status FROM redis_sync.sync_run('defaults', '$DAY', resume => false)")
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    if [ "$status" = succeeded ]; then echo "$secs"; else echo failed; fi
}

RAW=$WORK/raw.tsv           # rep version scenario seconds verified
: >"$RAW"
for ((r = 1; r <= REPS; r++)); do
    # alternate which build goes first
    if (( r % 2 )); then order="base head"; else order="head base"; fi
    for v in $order; do
        psql_v "$v" -c "TRUNCATE daily_click_count, member" \
            -c "INSERT INTO member SELECT * FROM member_seed" -c "VACUUM ANALYZE member" -c "CHECKPOINT"
        first=$(timed_sync "$v")
        printf '%s\t%s\tfirst\t%s\t%s\n' "$r" "$v" "$first" "$(verify "$v")" >>"$RAW"
        resync=$(timed_sync "$v")
        printf '%s\t%s\tresync\t%s\t%s\n' "$r" "$v" "$resync" "$(verify "$v")" >>"$RAW"
        echo "rep $r $v: first $first s, re-sync $resync s"
    done
done

# Then PAIRS more re-syncs of each build, alternating, back to back: a
# re-sync takes a few seconds, so many pairs fit where a first sync fits one,
# and a difference of a few percent needs many.
for ((p = 1; p <= PAIRS; p++)); do
    if (( p % 2 )); then order="base head"; else order="head base"; fi
    for v in $order; do
        resync=$(timed_sync "$v")
        printf 'p%s\t%s\tresync_pair\t%s\t%s\n' "$p" "$v" "$resync" "$(verify "$v")" >>"$RAW"
    done
done

python3 - "$RAW" "$N" "$BASE" "$BASE_VERSION" "$(git rev-parse --short HEAD)" "$HEAD_VERSION" "$REPS" "$PAIRS" \
    >bench/results-versions.md <<'PY'
import sys, statistics, datetime, platform
raw, n, base, bver, head, hver, reps, pairs = sys.argv[1:9]
rows = [l.rstrip('\n').split('\t') for l in open(raw)]
print('# A past day by two builds side by side: first sync and re-sync\n')
print('Generated on {} UTC by `make bench-versions` (bench/versions.sh).'.format(
    datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M')))
print('base: commit {} (redis_sync {}); head: the working tree at {} (redis_sync {}).'.format(base[:7], bver, head, hver))
print('{:,} members on a past day, 5x as many totals; the job defaults (10 partitions, 4 workers, chunks of 1,000).'.format(int(n)))
print('Each build has its own PostgreSQL 15 cluster (fsync on, max_worker_processes = 16) on the same 2-core machine and the same Redis; '
      'the two take turns, {} repetitions, the first build of each repetition alternating. '
      'Only verified runs count (counts and sums of both tables equal Redis).\n'.format(reps))
print('| scenario | build | seconds, in repetition order | median | head / base (medians) |')
print('|---|---|---|---|---|')
for sc in ('first', 'resync'):
    med = {}
    for v in ('base', 'head'):
        xs = [r[3] if r[4] == 'ok' else r[3] + ' (' + r[4] + ')' for r in rows if r[1] == v and r[2] == sc]
        ok = [float(r[3]) for r in rows if r[1] == v and r[2] == sc and r[4] == 'ok' and r[3] != 'failed']
        med[v] = statistics.median(ok) if ok else None
        ratio = ''
        if v == 'head' and med['base'] and med['head']:
            ratio = '{:.3f}'.format(med['head'] / med['base'])
        print('| {} | {} | {} | {} | {} |'.format(
            sc, v, ', '.join('{:.2f}'.format(float(x)) if x.replace('.', '', 1).isdigit() else x for x in xs),
            '{:.2f}'.format(med[v]) if med[v] else '-', ratio))
# per-repetition ratios: each pair ran back to back
print('\nPer repetition, head / base (each pair ran back to back):\n')
print('| scenario | ' + ' | '.join(str(i) for i in range(1, int(reps) + 1)) + ' |')
print('|---|' + '---|' * int(reps))
for sc in ('first', 'resync'):
    cells = []
    for i in range(1, int(reps) + 1):
        b = [r for r in rows if r[0] == str(i) and r[1] == 'base' and r[2] == sc and r[4] == 'ok']
        h = [r for r in rows if r[0] == str(i) and r[1] == 'head' and r[2] == sc and r[4] == 'ok']
        cells.append('{:.3f}'.format(float(h[0][3]) / float(b[0][3])) if b and h else '-')
    print('| {} | {} |'.format(sc, ' | '.join(cells)))
pr = [r for r in rows if r[2] == 'resync_pair']
if pr:
    print('\n{} more re-syncs of each build, alternating, back to back (the day unchanged since the last first sync):\n'.format(pairs))
    ratios = []
    for i in range(1, int(pairs) + 1):
        b = [float(r[3]) for r in pr if r[0] == 'p%d' % i and r[1] == 'base' and r[4] == 'ok']
        h = [float(r[3]) for r in pr if r[0] == 'p%d' % i and r[1] == 'head' and r[4] == 'ok']
        if b and h:
            ratios.append(h[0] / b[0])
    for v in ('base', 'head'):
        xs = [float(r[3]) for r in pr if r[1] == v and r[4] == 'ok']
        bad = len([r for r in pr if r[1] == v and r[4] != 'ok'])
        print('- {}: median {:.3f} s, from {:.3f} to {:.3f} s ({} verified{})'.format(
            v, statistics.median(xs), min(xs), max(xs), len(xs), ', {} not'.format(bad) if bad else ''))
    hb = statistics.median([float(r[3]) for r in pr if r[1] == 'head' and r[4] == 'ok']) / \
        statistics.median([float(r[3]) for r in pr if r[1] == 'base' and r[4] == 'ok'])
    print('- head / base: {:.3f} (medians); per pair, median {:.3f}, from {:.3f} to {:.3f}'.format(
        hb, statistics.median(ratios), min(ratios), max(ratios)))
PY
cat bench/results-versions.md
