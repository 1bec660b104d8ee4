#!/usr/bin/env bash
# make bench: redis_sync against the alternatives, side by side, in one run.
#
# Starts a throwaway Redis and PostgreSQL (default settings, durable), loads
# deterministic data (N daily members, 5N totals), and for each N runs every
# contender BENCH_REPS times, alternating, for a first sync of a new day and
# a re-sync of the unchanged day.  Every result is verified against Redis
# before its time counts.  Writes bench/results.md and bench/results.png.
#
#   BENCH_SIZES="100000 1000000"  BENCH_LARGE=1 (adds 5000000)  BENCH_REPS=3
#   BENCH_CONTENDERS="redis_sync_default redis_sync_tuned threadpool fdw_sql write_floor"
#   BENCH_FDW=0 skips the foreign table benchmarks (batched vs per-row INSERT of
#   BENCH_INSERT_N=1000000 rows; serial vs parallel scan of BENCH_PSCAN_N=5000000)
#   BENCH_ONLY=scan (make bench-scan): only the full scan of the foreign table
#   against the C reader of the same pages, alternating, N = 1,000,000 and
#   BENCH_REPS=7 unless set; writes bench/results_scan.md instead.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib.sh
. bench/data.sh

ONLY=${BENCH_ONLY:-}
case "$ONLY" in
    "") SIZES=${BENCH_SIZES:-"100000 1000000"}; REPS=${BENCH_REPS:-3} ;;
    scan) SIZES=${BENCH_SIZES:-1000000}; REPS=${BENCH_REPS:-7} ;;
    *) echo "BENCH_ONLY must be empty or \"scan\"" >&2; exit 2 ;;
esac
[ -n "${BENCH_LARGE:-}" ] && SIZES="$SIZES 5000000"
POOL_PARTITIONS=${BENCH_POOL_PARTITIONS:-"2 4 8"}
CONTENDERS=${BENCH_CONTENDERS:-"redis_sync_default redis_sync_tuned threadpool fdw_sql write_floor"}

rs_install_packages libpq-dev python3-redis python3-psycopg2 gnuplot-nox || exit 1
rs_build_install || exit 1
make -s -C bench >/dev/null || exit 1

WORK=$(rs_workdir bench)
REDIS_PORT=$(rs_free_port)
PGPORT=$(rs_free_port)
trap 'rs_stop_pg "$WORK"; rs_stop_redis "$REDIS_PORT"' EXIT
rs_start_redis "$WORK" "$REDIS_PORT" || exit 1
RS_PG_DURABLE=1 rs_start_pg "$WORK" "$PGPORT" "max_worker_processes = 16" || exit 1

DSN="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
RAW=$WORK/raw.tsv            # N scenario contender seconds peak_rss_mb
: > "$RAW"

{ bench_schema_sql "$REDIS_PORT"; cat <<SQL; } | "${PSQL[@]}"
SELECT redis_sync.create_job('tuned', 'redis', 'clicks:daily:%Y-%m-%d', 'clicks:total',
                             'member', 'daily_click_count', partitions => 8, workers => 2,
                             chunk_size => 5000);
SQL

# gen_data N DATE: N members on the day (names of 8 to 24 bytes, some
# non-ASCII, skewed counts) and 5N totals, with pipelined Lua scripts.
gen_data() {
    local n=$1 day=$2 total=$(( $1 * 5 ))
    # the scan alone needs only the day (the same members and scores)
    [ "$ONLY" = scan ] && total=$n
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    bench_clicks "$REDIS_PORT" "$day" "$n" "$total"
    "${PSQL[@]}" <<SQL
DROP FOREIGN TABLE IF EXISTS day_ft, total_ft;
CREATE FOREIGN TABLE day_ft (member text, score bigint) SERVER redis OPTIONS (key 'clicks:daily:$day');
CREATE FOREIGN TABLE total_ft (member text, score bigint) SERVER redis OPTIONS (key 'clicks:total');
SQL
    [ "$ONLY" = scan ] && return
    "${PSQL[@]}" -c "TRUNCATE member_seed" -c "INSERT INTO member_seed SELECT member, 0 FROM total_ft"
    expected_values
}

# reset: members exist with old totals, the day has no rows yet.
reset_tables() {
    "${PSQL[@]}" -c "TRUNCATE daily_click_count, member" \
        -c "INSERT INTO member SELECT * FROM member_seed" -c "VACUUM ANALYZE member" -c "CHECKPOINT"
}

# expected_values: what Redis holds for the day (rows, clicks, and the day's members' totals).
expected_values() {
    EXPECTED=$("${PSQL[@]}" -c "
        SELECT (SELECT count(*) || ' ' || sum(score) FROM day_ft) || ' ' ||
               (SELECT coalesce(sum(t.score), 0) FROM day_ft d JOIN total_ft t USING (member))")
}

# verify DATE: counts and sums of both tables equal Redis; prints "ok" or the mismatch.
verify() {
    local got
    got=$("${PSQL[@]}" -c "
        SELECT (SELECT count(*) || ' ' || coalesce(sum(click_count), 0) FROM daily_click_count
                 WHERE click_date = '$1') || ' ' ||
               (SELECT coalesce(sum(m.click_count), 0) FROM member m JOIN day_ft d ON d.member = m.name)")
    if [ "$got" = "$EXPECTED" ]; then echo ok; else echo "mismatch(got:$got,want:$EXPECTED)" | tr ' ' '_'; fi
}

# run_writes: new tuple versions in the target tables since the last
# call, then the WAL written (MB) and its full-page images, cluster-wide.
echo "0 0 0" > "$WORK/last_tup"
run_writes() {
    local now last
    sleep 0.5   # backends that just exited have flushed their counts by now
    now=$("${PSQL[@]}" -F ' ' -c "SELECT (SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0)
        FROM pg_stat_user_tables WHERE relname IN ('member', 'daily_click_count')),
        pg_current_wal_lsn() - '0/0', (SELECT wal_fpi FROM pg_stat_wal)")
    last=$(cat "$WORK/last_tup")
    echo "$now" > "$WORK/last_tup"
    awk -v a="$now" -v b="$last" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%d\t%.0f\t%d", x[1] - y[1], (x[2] - y[2]) / 1048576, x[3] - y[3] }'
}

# sample_rss PATTERN OUTFILE: peak RssAnon (kB) of processes matching PATTERN
# until killed.  It reads /proc with shell builtins every 50 ms and looks for
# new processes every 250 ms (every 50 ms while it has found none).  Spawning
# pgrep, awk and sleep in every round took about 0.24 of a core, time that
# the measured run lost on 2 cores.
sample_rss() {
    local pattern=$1 out=$2 peak=0 tick=0 pids= pid key val nap
    exec {nap}<> <(:)           # a pipe nobody writes to: read -t is the sleep
    while :; do
        if (( tick++ % 5 == 0 )) || [ -z "$pids" ]; then pids=$(pgrep -f "$pattern"); fi
        for pid in $pids; do
            while read -r key val _; do
                if [ "$key" = RssAnon: ]; then
                    (( val > peak )) && peak=$val && echo "$peak" > "$out"
                    break
                fi
            done 2>/dev/null < "/proc/$pid/status"
        done
        read -r -t 0.05 -u "$nap"
    done
}

# timed NAME PATTERN CMD...: run CMD, print "seconds peak_rss_mb".
timed() {
    local name=$1 pattern=$2
    shift 2
    echo 0 > "$WORK/rss"
    sample_rss "$pattern" "$WORK/rss" &
    local sampler=$! t0 t1
    t0=$(date +%s.%N)
    "$@" > "$WORK/out" 2>&1
    local rc=$?
    t1=$(date +%s.%N)
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    if [ $rc != 0 ]; then
        echo "FAILED $name" >&2
        cat "$WORK/out" >&2
        echo "nan 0"
        return
    fi
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $(( $(cat "$WORK/rss") / 1024 ))"
}

# sql_time QUERY: run QUERY in a session that is already connected (and has
# already planned against Redis once); the time of the second run goes to $WORK/sqltime.
sql_time() {
    "${PSQL[@]}" -c "$1" -c '\timing on' -c "$1" > "$WORK/sqlout"
    awk '/^Time:/ { printf "%.4f", $2 / 1000 }' "$WORK/sqlout" > "$WORK/sqltime"
    grep -v '^Time:' "$WORK/sqlout" | tail -n 1 > "$WORK/sqlresult"
}

run_contender() {
    local n=$1 day=$2 contender=$3 arg=${4:-}
    case $contender in
        redis_sync_default) timed "$contender" "redis_sync worker" "${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('defaults', '$day', resume => false)" ;;
        redis_sync_tuned)   timed "$contender" "redis_sync worker" "${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('tuned', '$day', resume => false)" ;;
        threadpool)         timed "$contender" "threadpool_sync.py" /usr/bin/python3 bench/peers/threadpool_sync.py --redis-port "$REDIS_PORT" --dsn "$DSN" --date "$day" --partitions "$arg" ;;
        fdw_sql)            timed "$contender" "postgres: postgres postgres .*INSERT" "${PSQL[@]}" \
                                -c "INSERT INTO member AS m (name, click_count) SELECT d.member, coalesce(t.score, 0) FROM day_ft d LEFT JOIN total_ft t USING (member)
                                    ON CONFLICT (name) DO UPDATE SET click_count = EXCLUDED.click_count WHERE m.click_count IS DISTINCT FROM EXCLUDED.click_count" \
                                -c "INSERT INTO daily_click_count AS c (name, click_date, click_count) SELECT member, '$day', score FROM day_ft
                                    ON CONFLICT (name, click_date) DO UPDATE SET click_count = EXCLUDED.click_count WHERE c.click_count IS DISTINCT FROM EXCLUDED.click_count" ;;
        write_floor)        timed "$contender" "bin/write_floor" bench/bin/write_floor "$REDIS_PORT" "$DSN" "clicks:daily:$day" clicks:total "$day" 10000 ;;
    esac
}

# record N scenario contender seconds rss_mb verdict [rows<TAB>wal_mb<TAB>fpi]
record() {
    local n=$1 scenario=$2 contender=$3 secs=$4 rss=$5 verdict=$6 changed=${7:--}
    local rows wal fpi
    IFS=$'\t' read -r rows wal fpi <<< "$changed"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$scenario" "$contender" "$secs" "$rss" "$verdict" \
        "$rows" "${wal:--}" "${fpi:--}" >> "$RAW"
    printf '  %-8s %-14s %-22s %9.4f s  %5s MB  %s  (rows written: %s, WAL: %s MB, full-page images: %s)\n' \
        "$n" "$scenario" "$contender" "$secs" "$rss" "$verdict" "$rows" "${wal:--}" "${fpi:--}"
}

for N in $SIZES; do
    DAY=2020-06-01
    echo "== N = $N: generating data"
    gen_data "$N" "$DAY"

    # read floor: pipelined pages of the day and its totals, straight from
    # Redis; and the foreign table's full scan of the day beside the reader
    # of the same pages, alternating, each checked against the reader's
    # count and sum
    for rep in $(seq "$REPS"); do
        if [ "$ONLY" != scan ]; then
            out=$(bench/bin/read_floor "$REDIS_PORT" "clicks:daily:$DAY" 10000 clicks:total)
            record "$N" read read_floor "$(echo "$out" | cut -d' ' -f1)" 0 ok -
        fi
        # under the same memory sampler as the scan, which costs some CPU
        read -r secs rss < <(timed read_floor_zrange "bin/read_floor" bench/bin/read_floor "$REDIS_PORT" "clicks:daily:$DAY" 10000)
        out=$(cat "$WORK/out")
        record "$N" scan read_floor_zrange "$(echo "$out" | cut -d' ' -f1)" "$rss" ok -
        want="$(echo "$out" | cut -d' ' -f2)|$(echo "$out" | cut -d' ' -f3)"
        read -r secs rss < <(timed fdw_scan "postgres: postgres postgres .*SELECT" sql_time "SELECT count(*), sum(score) FROM day_ft")
        v=bad; [ "$(cat "$WORK/sqlresult")" = "$want" ] && v=ok
        record "$N" scan fdw_full_scan "$(cat "$WORK/sqltime")" "$rss" "$v" -
        read -r secs rss < <(timed fdw_top10 "postgres: postgres postgres .*SELECT" sql_time "SELECT * FROM day_ft ORDER BY score DESC LIMIT 10")
        record "$N" scan fdw_top10 "$(cat "$WORK/sqltime")" "$rss" ok -
    done
    [ "$ONLY" = scan ] && continue

    # the thread pool's best partition count, measured once each
    best_p=4; best_t=999999
    case " $CONTENDERS " in *" threadpool "*) ;; *) POOL_PARTITIONS= ;; esac
    for p in $POOL_PARTITIONS; do
        reset_tables; run_writes >/dev/null
        read -r secs rss < <(run_contender "$N" "$DAY" threadpool "$p")
        v=$(verify "$DAY")
        record "$N" first "threadpool_p$p" "$secs" "$rss" "$v" "$(run_writes)"
        if [ "$v" = ok ] && awk -v a="$secs" -v b="$best_t" 'BEGIN { exit !(a < b) }'; then best_t=$secs; best_p=$p; fi
    done

    for rep in $(seq "$REPS"); do
        for c in $CONTENDERS; do
            reset_tables; run_writes >/dev/null
            read -r secs rss < <(run_contender "$N" "$DAY" "$c" "$best_p")
            record "$N" first "$c" "$secs" "$rss" "$(verify "$DAY")" "$(run_writes)"
            read -r secs rss < <(run_contender "$N" "$DAY" "$c" "$best_p")
            record "$N" resync "$c" "$secs" "$rss" "$(verify "$DAY")" "$(run_writes)"
            # the same re-sync once VACUUM has cleaned up after the first sync
            # (hint bits, dead row versions): what the first reader pays
            [ "$c" = fdw_sql ] && continue
            "${PSQL[@]}" -c "VACUUM member, daily_click_count"; run_writes >/dev/null
            read -r secs rss < <(run_contender "$N" "$DAY" "$c" "$best_p")
            record "$N" resync_settled "$c" "$secs" "$rss" "$(verify "$DAY")" "$(run_writes)"
        done
    done

    if [ "$N" = 1000000 ]; then
        echo "== ZINCRBY latency on Redis, without and with a running 1,000,000-member sync"
        redis-benchmark -p "$REDIS_PORT" -c 1 -n 50000 --csv ZINCRBY latency:key 1 somebody > "$WORK/lat_idle.csv"
        reset_tables
        "${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('tuned', '$DAY', resume => false)" > /dev/null &
        sync_pid=$!
        sleep 1
        redis-benchmark -p "$REDIS_PORT" -c 1 -n 50000 --csv ZINCRBY latency:key 1 somebody > "$WORK/lat_sync.csv"
        wait $sync_pid
    fi
done

# --- the foreign table itself: batched vs per-row INSERT, parallel vs serial scan
if [ "${BENCH_FDW:-1}" = 1 ] && [ -z "$ONLY" ]; then
    INS_N=${BENCH_INSERT_N:-1000000}
    PSCAN_N=${BENCH_PSCAN_N:-5000000}
    "${PSQL[@]}" <<SQL
CREATE FOREIGN TABLE ins_batch (member text, score bigint) SERVER redis OPTIONS (key 'bench:insert');
CREATE FOREIGN TABLE ins_row (member text, score bigint) SERVER redis OPTIONS (key 'bench:insert', batch_size '1');
CREATE FOREIGN TABLE pscan (member text, score float8, rank bigint) SERVER redis OPTIONS (key 'bench:pscan');
SQL
    echo "== INSERT of $INS_N rows through the foreign table: batches of 1,000 vs one command per row"
    for rep in $(seq "$REPS"); do
        for c in fdw_insert_batch1000 fdw_insert_per_row; do
            redis-cli -p "$REDIS_PORT" unlink bench:insert > /dev/null
            t=ins_batch; [ "$c" = fdw_insert_per_row ] && t=ins_row
            read -r secs rss < <(timed "$c" "postgres: postgres postgres .*INSERT" "${PSQL[@]}" \
                -c "INSERT INTO $t SELECT 'member' || g, g FROM generate_series(1, $INS_N) g")
            v=$("${PSQL[@]}" -c "SELECT CASE WHEN count(*) = $INS_N AND sum(score) = $INS_N::numeric * ($INS_N + 1) / 2 THEN 'ok' ELSE 'count ' || count(*) END FROM ins_batch")
            record "$INS_N" insert "$c" "$secs" "$rss" "$v" -
        done
    done
    redis-cli -p "$REDIS_PORT" unlink bench:insert > /dev/null

    echo "== SELECT count(*), sum(score) over $PSCAN_N members: serial vs 2 parallel workers"
    for start in $(seq 1 200000 "$PSCAN_N"); do
        redis-cli -p "$REDIS_PORT" eval "for i=tonumber(ARGV[1]),tonumber(ARGV[2]) do redis.call('ZADD', KEYS[1], i % 1000, 'user' .. i) end" \
            1 bench:pscan "$start" "$((start + 199999 < PSCAN_N ? start + 199999 : PSCAN_N))" > /dev/null
    done
    expect="$PSCAN_N|$("${PSQL[@]}" -c "SELECT sum(g % 1000) FROM generate_series(1, $PSCAN_N) g")"
    for rep in $(seq "$REPS"); do
        for w in 0 2; do
            c=fdw_scan_serial; [ "$w" = 2 ] && c=fdw_scan_parallel2
            "${PSQL[@]}" -c "SET max_parallel_workers_per_gather = $w" -c '\timing on' \
                -c "SELECT count(*), sum(score) FROM pscan" > "$WORK/pscan.out"
            secs=$(awk '/^Time:/ { printf "%.4f", $2 / 1000 }' "$WORK/pscan.out")
            v=bad; grep -qx "$expect" "$WORK/pscan.out" && v=ok
            record "$PSCAN_N" pscan "$c" "$secs" 0 "$v" -
        done
    done
    redis-cli -p "$REDIS_PORT" unlink bench:pscan > /dev/null
fi

python3 - "$RAW" "$WORK" "$ONLY" <<'PY'
import csv, statistics, sys, os, subprocess, platform, datetime
raw, work, only = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [l.rstrip('\n').split('\t') for l in open(raw) if l.strip()]
groups = {}
for n, scen, c, secs, rss, verdict, changed, wal, fpi in rows:
    if verdict != 'ok' or secs == 'nan':
        continue
    g = groups.setdefault((int(n), scen, c), {'t': [], 'rss': [], 'changed': [], 'wal': [], 'fpi': []})
    g['t'].append(float(secs)); g['rss'].append(int(rss)); g['changed'].append(changed)
    if wal != '-':
        g['wal'].append(int(wal)); g['fpi'].append(int(fpi))
unverified = sorted({(r[0], r[1], r[2]) for r in rows if r[5] != 'ok' or r[3] == 'nan'})
def scan_target(n):
    """The foreign table's full scan against the C reader of the same pages (issue #22)."""
    r, f = groups.get((n, 'scan', 'read_floor_zrange')), groups.get((n, 'scan', 'fdw_full_scan'))
    if not r or not f:
        return []
    rm, fm = statistics.median(r['t']), statistics.median(f['t'])
    pairs = [b / a for a, b in zip(r['t'], f['t']) if a > 0]
    return ['| {:,} | {:.4f} ({:.4f} to {:.4f}) | {:.4f} ({:.4f} to {:.4f}) | {:.2f} | {:.2f} to {:.2f} | {} | {} |'.format(
        n, rm, min(r['t']), max(r['t']), fm, min(f['t']), max(f['t']), fm / rm,
        min(pairs), max(pairs), max(f['rss']) or '-', 'met' if fm / rm <= 1.2 else 'NOT met')]
scan_head = ['| N | read_floor_zrange median s (range) | fdw_full_scan median s (range) | ratio of medians | ratio per run (range) | peak RssAnon MB of the backend | <= 1.2 |',
             '|---|---|---|---|---|---|---|']
if only == 'scan':
    out = ['# redis_sync benchmark: full scan of the foreign table against the reader\n',
           'Generated by `make bench-scan` on %s, %d cores, load average %s before the run.\n' % (
               datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC'), os.cpu_count(),
               ' '.join(open('/proc/loadavg').read().split()[:3])),
           '- read_floor_zrange: bench/src/read_floor.c, a C hiredis client reading the set in ZRANGE ... WITHSCORES pages of 10,000 (ZCARD first), summing the scores; it queues the next page before it processes the current one, and hiredis sends that request when the reader asks for the next reply.',
           '- fdw_full_scan: `SELECT count(*), sum(score)` over the redis_zset foreign table of the same key (default page_size 10,000), timed by psql on its second run in one session; every result equals the reader\'s count and sum.',
           '- The two alternate, one run of each per repetition, each watched by the same memory sampler; medians of %d runs.\n' % max(
               [len(g['t']) for k, g in groups.items() if k[1] == 'scan'] or [0])]
    out += scan_head
    for n in sorted({k[0] for k in groups}):
        out += scan_target(n)
    for n in sorted({k[0] for k in groups}):
        for c in ('read_floor_zrange', 'fdw_full_scan', 'fdw_top10'):
            g = groups.get((n, 'scan', c))
            if g:
                out.append('\n{:,} {}: {}'.format(n, c, ' '.join('%.4f' % t for t in g['t'])))
    if unverified:
        out.append('\nUnverified or failed runs, not counted: ' + ', '.join('%s/%s/%s' % u for u in unverified))
    open('bench/results_scan.md', 'w').write('\n'.join(out) + '\n')
    print('\n'.join(out))
    sys.exit(0)
out = []
out.append('# redis_sync benchmark results\n')
out.append('Generated by `make bench` on %s.\n' % datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC'))
out.append('- Machine: %s, %d cores, %s' % (platform.machine(), os.cpu_count(),
           subprocess.run(['sh', '-c', "free -g | awk '/Mem:/ {print $2 \" GiB\"}'"], capture_output=True, text=True).stdout.strip()))
out.append('- ' + subprocess.run(['sh', '-c', 'psql --version; redis-server --version | cut -d" " -f1-3; python3 --version'], capture_output=True, text=True).stdout.replace('\n', '; '))
out.append('- PostgreSQL with default settings (fsync on, shared_buffers 128MB) except max_worker_processes = 16; Redis defaults without persistence.')
out.append('- Data: N members on the day (names of 8 to 24 bytes, every 5th with non-ASCII), 5N members in the total set; skewed counts.')
out.append('- First sync: the day has no rows, every member row exists with an old total. Re-sync: the same day again, unchanged, right after the first sync. Re-sync settled: the same once more after a VACUUM of both tables (not timed), so that it does not pay for setting hint bits and skipping the dead row versions that the first sync left.')
out.append('- WAL MB and full-page images: medians of what the cluster wrote during the run (pg_current_wal_lsn, pg_stat_wal).')
out.append('- redis_sync_default: the job defaults (10 partitions, 4 workers, chunks of 1,000). redis_sync_tuned: 8 partitions, 2 workers, chunks of 5,000. Both with the default redis_sync.worker_wal_compression = lz4 (the workers compress the full-page images in their WAL; the server\'s wal_compression stays off).')
out.append('- threadpool: bench/peers/threadpool_sync.py (redis-py + psycopg2, pages of 1,000, commit per page) at its best partition count.')
out.append('- fdw_sql: two INSERT ... SELECT ... ON CONFLICT statements over redis_zset foreign tables.')
out.append('- write_floor: rows already in client memory, the same upserts in batches of 10,000 from 2 libpq connections (pipelined, synchronous_commit off).')
out.append('- read_floor: a C hiredis client reading the day (pipelined ZRANGE pages of 10,000) and its totals (ZMSCORE); read_floor_zrange reads the day only.')
out.append('- Times are medians of %s; only verified runs count (counts and sums of both tables equal Redis).\n' % 'the repetitions')
for n in sorted({k[0] for k in groups}):
    out.append('## N = {:,}\n'.format(n))
    out.append('| scenario | contender | runs | median s | members/s | peak RssAnon MB | x redis_sync_default | rows written | WAL MB | full-page images |')
    out.append('|---|---|---|---|---|---|---|---|---|---|')
    for scen in ('first', 'resync', 'resync_settled', 'read', 'scan', 'insert', 'pscan'):
        ref = groups.get((n, scen, 'redis_sync_default'))
        refm = statistics.median(ref['t']) if ref else None
        for (gn, gs, c), g in sorted(groups.items(), key=lambda kv: statistics.median(kv[1]['t'])):
            if gn != n or gs != scen:
                continue
            m = statistics.median(g['t'])
            ratio = '%.2f' % (m / refm) if refm else '-'
            out.append('| %s | %s | %d | %.4g | %s | %s | %s | %s | %s | %s |' % (
                scen, c, len(g['t']), m, '{:,.0f}'.format(n / m) if m > 0 else '-',
                max(g['rss']) or '-', ratio, ','.join(sorted(set(g['changed']))),
                statistics.median(g['wal']) if g['wal'] else '-',
                '{:,.0f}'.format(statistics.median(g['fpi'])) if g['fpi'] else '-'))
    out.append('')
def med(n, scen, c):
    g = groups.get((n, scen, c))
    return statistics.median(g['t']) if g else None
def target(label, value, limit, ok):
    if value is not None:
        out.append('| %s | %.2f | %s | %s |' % (label, value, limit, 'met' if ok(value) else 'NOT met'))
big, small = 1000000, 100000
out.append('## Targets at N = 1,000,000 (issue #5)\n')
out.append('| target | measured | limit | |')
out.append('|---|---|---|---|')
for c in ('redis_sync_default', 'redis_sync_tuned'):
    rs = med(big, 'first', c)
    if rs is None:
        continue
    wf, tp, fs = med(big, 'first', 'write_floor'), med(big, 'first', 'threadpool'), med(big, 'first', 'fdw_sql')
    target('%s first sync / write floor' % c, rs / wf if wf else None, '<= 1.2', lambda v: v <= 1.2)
    target('threadpool / %s' % c, tp / rs if tp else None, '>= 2', lambda v: v >= 2)
    target('fdw_sql / %s' % c, fs / rs if fs else None, '>= 2.5', lambda v: v >= 2.5)
    rr, rset = med(big, 'resync', c), med(big, 'resync_settled', c)
    target('%s re-sync / first sync' % c, rr / rs if rr else None, '< 0.333', lambda v: v < 1 / 3)
    target('%s settled re-sync / first sync' % c, rset / rs if rset else None, '< 0.333 (for reference)', lambda v: v < 1 / 3)
    s1 = med(small, 'first', c)
    target('%s time per member, 1,000,000 / 100,000' % c, (rs / big) / (s1 / small) if s1 else None, '<= 1.3', lambda v: v <= 1.3)
w1, w0 = med(big, 'first', 'write_floor'), med(small, 'first', 'write_floor')
if w1 and w0:
    target('write floor time per member, 1,000,000 / 100,000 (for reference)', (w1 / big) / (w0 / small), '-', lambda v: True)
out.append('')
out.append('## Full scan of the foreign table against the C reader of the same pages (issue #22)\n')
out += scan_head
for n in sorted({k[0] for k in groups}):
    out += scan_target(n)
out.append('')
for n in sorted({k[0] for k in groups}):
    a, b = med(n, 'insert', 'fdw_insert_per_row'), med(n, 'insert', 'fdw_insert_batch1000')
    if a and b:
        out.append('INSERT of {:,} rows through the foreign table: batches of 1,000 are {:.1f}x faster than one command per row ({:.2f} s vs {:.2f} s).'.format(n, a / b, b, a))
    a, b = med(n, 'pscan', 'fdw_scan_serial'), med(n, 'pscan', 'fdw_scan_parallel2')
    if a and b:
        out.append('count(*), sum(score) over {:,} members: 2 parallel workers take {:.2f} s, the serial scan {:.2f} s (speed-up {:.2f}x).'.format(n, b, a, a / b))
out.append('')
for f, label in (('lat_idle.csv', 'without a sync'), ('lat_sync.csv', 'during a 1,000,000-member sync')):
    p = os.path.join(work, f)
    if os.path.exists(p):
        r = list(csv.reader(open(p)))
        if len(r) > 1:
            h = dict(zip(r[0], r[1]))
            out.append('ZINCRBY latency %s: p50 %s ms, p99 %s ms, max %s ms (redis-benchmark, 1 client).' % (
                label, h.get('p50_latency_ms'), h.get('p99_latency_ms'), h.get('max_latency_ms')))
out.append('A sync of today\'s key under increment load (live against stable), each run\'s slowest Redis command and the side client\'s '
           'latency percentiles, with Redis alone on a core at 1,000,000 and 5,000,000 members: [results-live.md](results-live.md) '
           '(`make bench` runs bench/live_key.sh next); a past day against 0.1 side by side: [results-versions.md](results-versions.md).')
if unverified:
    out.append('\nUnverified or failed runs, not counted: ' + ', '.join('%s/%s/%s' % u for u in unverified))
open('bench/results.md', 'w').write('\n'.join(out) + '\n')
plots = []
for i, c in enumerate(('redis_sync_tuned', 'redis_sync_default', 'write_floor', 'threadpool', 'fdw_sql')):
    pts = [(n, n / statistics.median(groups[(n, 'first', c)]['t'])) for n in sorted({k[0] for k in groups})
           if (n, 'first', c) in groups]
    if pts:
        path = os.path.join(work, 'plot_%d.dat' % i)
        open(path, 'w').write(''.join('%d %f\n' % p for p in pts))
        plots.append("'%s' using 1:2 with linespoints title '%s'" % (path, c))
open(os.path.join(work, 'plot.gp'), 'w').write(
    "set terminal png size 900,560 noenhanced\nset output 'bench/results.png'\n"
    "set title 'First sync of a day: members per second (higher is better)'\n"
    "set logscale x\nset xlabel 'members in the day (N)'\nset ylabel 'members per second'\n"
    "set key left bottom\nset grid\nset yrange [0:*]\nplot " + ', '.join(plots) + "\n")
print('\n'.join(out))
PY

[ "$ONLY" = scan ] && { echo "results: bench/results_scan.md"; exit 0; }
gnuplot "$WORK/plot.gp" || echo "(gnuplot failed; no plot)"
echo "results: bench/results.md, bench/results.png"
