#!/usr/bin/env bash
# make bench-live: what a sync of today's key costs Redis, and how its time
# compares with a sync of the same day once the day is over.
#
# Loads N members (BENCH_LIVE_N, default 1000000) and their totals, then,
# BENCH_LIVE_REPS times (default 3), alternating:
#   stable  a first sync of the day under yesterday's date (read directly)
#   live    a first sync of the same day as today's key (copied a page at a
#           time, read while the copy is made)
# Both run under the same load: two clients increment random members (a
# fifth of them new) as fast as they can, of today's key in the live run and
# of another key of the same size in the stable run, so that the two differ
# only in what the sync reads.  During each run, a side client measures its
# ZINCRBY latency, Redis's SLOWLOG records every command slower than 1 ms,
# and INFO commandstats gives each command's mean time; the same side client
# also runs once with no sync going.
#
# Then, "pinned": Redis alone on CPU 1, PostgreSQL and the clients on CPU 0
# (as in production, where Redis has a host of its own): the same load for
# BENCH_LIVE_NOSYNC_SECS (default 30) without a sync, for the time Redis's
# slowest commands take on this machine anyway; then a live run of N members
# and one of BENCH_LIVE_BIG members (default 5000000; 0 skips it), for the
# time commands take inside Redis when Redis is not preempted by the sync's
# own processes on this 2-core machine; and at BENCH_LIVE_BIG, the copy's
# script alone under the same load (bench/copy_only.py sends it as the
# coordinator does), with no PostgreSQL work on the machine.  Writes
# bench/results-live.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

N=${BENCH_LIVE_N:-1000000}
REPS=${BENCH_LIVE_REPS:-3}
BIG=${BENCH_LIVE_BIG:-5000000}
NOSYNC_SECS=${BENCH_LIVE_NOSYNC_SECS:-30}

rs_install_packages || exit 1
rs_build_install || exit 1

WORK=$(rs_workdir live)
REDIS_PORT=$(rs_free_port)
PGPORT=$(rs_free_port)
trap 'kill $(jobs -p) 2>/dev/null; rs_stop_pg "$WORK"; rs_stop_redis "$REDIS_PORT"' EXIT
rs_start_redis "$WORK" "$REDIS_PORT" || exit 1
RS_PG_DURABLE=1 rs_start_pg "$WORK" "$PGPORT" "max_worker_processes = 16" || exit 1
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
RCLI=(redis-cli -p "$REDIS_PORT")

"${PSQL[@]}" <<SQL
CREATE EXTENSION redis_sync;
CREATE SERVER redis FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$REDIS_PORT', command_timeout '600000');
CREATE USER MAPPING FOR PUBLIC SERVER redis;
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE daily_click_count (name text NOT NULL, click_date date NOT NULL,
                                click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
SELECT redis_sync.create_job('live', 'redis', 'clicks:daily:%Y-%m-%d', 'clicks:total');
CREATE FOREIGN TABLE start_ft (member text, score bigint) SERVER redis OPTIONS (key 'bench:start');
SQL
TODAY=$("${PSQL[@]}" -c "SELECT (now() AT TIME ZONE current_setting('TimeZone'))::date")
YESTERDAY=$("${PSQL[@]}" -c "SELECT '$TODAY'::date - 1")

# the day's members, named as redis-benchmark writes __rand_int__
for ((s = 0; s < N; s += 100000)); do
    e=$((s + 99999 < N ? s + 99999 : N - 1))
    "${RCLI[@]}" EVAL "for i=$s,$e do local m = string.format('m%012d', i) \
        redis.call('ZADD', KEYS[1], (i * 7) % 1009, m) redis.call('ZADD', KEYS[2], i, m) end" \
        2 bench:day clicks:total >/dev/null
done
"${RCLI[@]}" CONFIG SET slowlog-log-slower-than 1000 >/dev/null
"${RCLI[@]}" CONFIG SET slowlog-max-len 1000000 >/dev/null

# side_rounds OUT: until stopped, rounds of 2,000 ZINCRBY sent one at a
# time by one client; one CSV line per round in OUT
side_rounds() {
    : >"$1"
    while :; do
        redis-benchmark -p "$REDIS_PORT" -c 1 -n 2000 -r "$N" --csv --precision 3 \
            ZINCRBY bench:side 1 m__rand_int__ 2>/dev/null | tail -1 >>"$1"
    done
}

# side_summary OUT: p50 (median of the rounds), p99 and max (the worst
# round's) in ms
side_summary() {
    python3 - "$1" <<'PY'
import csv, sys, statistics
rows = [r for r in csv.reader(open(sys.argv[1])) if r and r[0].startswith('ZINCRBY')]
if not rows:
    print('- - -')
else:
    print('{:.3f} {:.3f} {:.3f}'.format(statistics.median(float(r[4]) for r in rows),
                                        max(float(r[6]) for r in rows), max(float(r[7]) for r in rows)))
PY
}

# slowest: the slowest command in the SLOWLOG and its microseconds, the
# number of commands slower than 1 ms, and the slowest command that the sync
# itself sent (any but the clients' ZINCRBY), its microseconds, and for a copy
# script, how many members the copy held then ("-" otherwise)
slowest() {
    "${RCLI[@]}" --no-raw SLOWLOG GET 1000000 | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
worst, cmd, n = 0, "-", 0
sworst, scmd, sat = 0, "-", "-"
for i, l in enumerate(lines):
    m = re.match(r"^\s*3\) \(integer\) (\d+)$", l)
    c = re.search(r"\"([^\"]+)\"", lines[i + 1]) if m and i + 1 < len(lines) else None
    if c:
        n += 1
        us = int(m.group(1))
        if us > worst:
            worst, cmd = us, c.group(1)
        if c.group(1).upper() != "ZINCRBY" and us > sworst:
            sworst, scmd, sat = us, c.group(1), "-"
            # EVAL script numkeys source part... score member page ttl had
            # cap: ARGV[5] is the copy size before the script
            args = []
            for a in lines[i + 1:i + 48]:
                am = re.search(r"(\d+)\) \"(.*)\"$", a)
                if not am:
                    continue
                if args and int(am.group(1)) <= len(args):
                    break
                args.append(am.group(2))
            if scmd.upper() in ("EVAL", "EVALSHA") and len(args) > 2 and args[2].isdigit() \
                    and len(args) > 7 + int(args[2]):
                sat = args[7 + int(args[2])]
print(cmd, worst, n, scmd, sworst, sat)'
}

# preempted: how many times the kernel has taken Redis's main thread off
# its core so far (involuntary context switches): each is a wait that a
# command in progress then takes longer by
preempted() {
    local pid
    pid=$(cat "$WORK/redis.pid")
    sed -n 's/^nonvoluntary_ctxt_switches:\s*//p' "/proc/$pid/task/$pid/status"
}

# stolen: milliseconds that the hypervisor has taken from CPU 1 (Redis's core
# when pinned) so far: steal time of /proc/stat, in ticks of 10 ms
stolen() {
    awk '$1 == "cpu1" { print $9 * 10 }' /proc/stat
}

# cmdstats: the mean microseconds per call of the sync's commands since the
# last CONFIG RESETSTAT ("EVAL ZRANGE ZMSCORE", "-" for none)
cmdstats() {
    "${RCLI[@]}" INFO commandstats | python3 -c '
import re, sys
s = {m.group(1): m.group(2) for m in re.finditer(r"cmdstat_(\w+):calls=\d+,usec=\d+,usec_per_call=([\d.]+)", sys.stdin.read())}
s.setdefault("eval", s.get("evalsha", "-"))
print(" ".join(s.get(c, "-") for c in ("eval", "zrange", "zmscore")))'
}

# one_run MODE DAY LOADKEY: a first sync of DAY with the load on LOADKEY
# (DAY "-": no sync, the load alone for NOSYNC_SECS; DAY "copy": no sync,
# bench/copy_only.py copies LOADKEY as a live run would); appends a line to
# $RESULTS
one_run() {
    local mode=$1 day=$2 loadkey=$3 clients=() start secs status p50 p99 mx cmd us n scmd sus sat ev zr zm cs0 st0
    "${PSQL[@]}" -c "TRUNCATE member, daily_click_count"
    # the day as the run starts, to check every member of it afterwards
    [ "$day" != - ] && [ "$day" != copy ] && "${RCLI[@]}" COPY "clicks:daily:$day" bench:start REPLACE >/dev/null
    "${RCLI[@]}" SLOWLOG RESET >/dev/null
    "${RCLI[@]}" CONFIG RESETSTAT >/dev/null
    for c in 1 2; do
        $PIN_CLIENTS redis-benchmark -p "$REDIS_PORT" -c 1 -P 4 -n 100000000 -r $((N * 5 / 4)) -q \
            ZINCRBY "$loadkey" 1 m__rand_int__ >/dev/null 2>&1 &
        clients+=($!)
    done
    side_rounds "$WORK/side" &
    local side=$!
    # pinned: the side client (and what it starts) stays off Redis's core
    [ -n "$PIN_CLIENTS" ] && taskset -p -c 0 "$side" >/dev/null
    cs0=$(preempted)
    st0=$(stolen)
    start=$(date +%s.%N)
    if [ "$day" = - ]; then
        # the same load without a sync: what Redis's slowest commands take
        # on this machine anyway
        sleep "$NOSYNC_SECS"
        status=-
    elif [ "$day" = copy ]; then
        # the copy's script alone, as the coordinator sends it, without
        # PostgreSQL: what its own work costs inside Redis
        status=$($PIN_CLIENTS python3 bench/copy_only.py "$REDIS_PORT" "$loadkey" bench:copy_only | awk '{ print "copied " $2 }')
    else
        status=$("${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('live', '$day', resume => false)")
    fi
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    kill "${clients[@]}" 2>/dev/null
    kill "$side"; pkill -P "$side" redis-benchmark; wait "$side" 2>/dev/null
    wait "${clients[@]}" 2>/dev/null
    read -r p50 p99 mx < <(side_summary "$WORK/side")
    read -r cmd us n scmd sus sat < <(slowest)
    read -r ev zr zm < <(cmdstats)
    # members present at the start without a row, or with an older count
    local lost=-
    if [ "$day" != - ] && [ "$day" != copy ]; then
        lost=$("${PSQL[@]}" -c "SELECT count(*) FROM start_ft b
            LEFT JOIN daily_click_count d ON d.name = b.member AND d.click_date = '$day'
            WHERE d.click_count IS NULL OR d.click_count < b.score")
        "${RCLI[@]}" UNLINK bench:start >/dev/null
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$secs" "$status" "${p50:--}" "${p99:--}" \
        "${mx:--}" "${cmd:--}" "${us:-0}" "${n:-0}" "${scmd:--}" "${sus:-0}" "${sat:--}" "$ev" "$zr" "$zm" "$lost" \
        "$(( $(preempted) - cs0 ))" "$(( $(stolen) - st0 ))" >>"$RESULTS"
}

# load_set KEY FROM COUNT [TOTALS]: COUNT members from number FROM on, and
# their totals with TOTALS=1
load_set() {
    local key=$1 from=$2 count=$3 totals=${4:-0}
    for ((s = from; s < from + count; s += 100000)); do
        e=$((s + 99999 < from + count ? s + 99999 : from + count - 1))
        "${RCLI[@]}" EVAL "for i=$s,$e do local m = string.format('m%012d', i) \
            redis.call('ZADD', KEYS[1], (i * 7) % 1009, m) \
            if ARGV[1] == '1' then redis.call('ZADD', KEYS[2], i, m) end end" \
            2 "$key" clicks:total "$totals" >/dev/null
    done
}

RESULTS=$WORK/live.tsv
: >"$RESULTS"
PIN_CLIENTS=
side_rounds "$WORK/side" &
side=$!
sleep 10
kill "$side"; pkill -P "$side" redis-benchmark; wait "$side" 2>/dev/null
read -r p50 p99 mx < <(side_summary "$WORK/side")
printf 'idle\t-\t-\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$p50" "$p99" "$mx" >>"$RESULTS"

for ((r = 1; r <= REPS; r++)); do
    for mode in stable live; do
        "${RCLI[@]}" DEL "clicks:daily:$TODAY" "clicks:daily:$YESTERDAY" bench:side bench:noise >/dev/null
        "${RCLI[@]}" COPY bench:day bench:noise >/dev/null
        if [ "$mode" = stable ]; then
            "${RCLI[@]}" COPY bench:day "clicks:daily:$YESTERDAY" >/dev/null
            one_run stable "$YESTERDAY" bench:noise
        else
            "${RCLI[@]}" COPY bench:day "clicks:daily:$TODAY" >/dev/null
            one_run live "$TODAY" "clicks:daily:$TODAY"
        fi
    done
done

# Pinned: Redis on CPU 1, everything else on CPU 0.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    REDIS_PID=$(cat "$WORK/redis.pid")
    taskset -a -p -c 1 "$REDIS_PID" >/dev/null
    for pid in $(pgrep -f "postgres.*$WORK/pgdata" ; pgrep -P "$(head -1 "$WORK/pgdata/postmaster.pid")"); do
        taskset -a -p -c 0 "$pid" >/dev/null 2>&1
    done
    PIN_CLIENTS="taskset -c 0"
    "${RCLI[@]}" DEL "clicks:daily:$TODAY" bench:side >/dev/null
    "${RCLI[@]}" COPY bench:day "clicks:daily:$TODAY" >/dev/null
    one_run "pinned, load without a sync" - "clicks:daily:$TODAY"
    one_run "pinned live" "$TODAY" "clicks:daily:$TODAY"
    if [ "$BIG" -gt 0 ]; then
        "${RCLI[@]}" DEL "clicks:daily:$TODAY" bench:side bench:noise >/dev/null
        load_set "clicks:daily:$TODAY" 0 "$BIG" $((BIG > N ? 1 : 0))
        N_SAVED=$N; N=$BIG
        one_run "pinned live, $BIG" "$TODAY" "clicks:daily:$TODAY"
        one_run "pinned copy script only, $BIG" copy "clicks:daily:$TODAY"
        N=$N_SAVED
    fi
fi

python3 - "$RESULTS" "$N" >bench/results-live.md <<'PY'
import sys, statistics
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
n = int(sys.argv[2])
print('# Live key: a sync of today\'s key against the same day once it is over\n')
print('{:,} members, default job settings (10 partitions, 4 workers, chunks of 1,000). Every run has two clients incrementing random members as fast as they can (`redis-benchmark -P 4`): of today\'s key in the live runs, of another key of the same size in the stable runs.'.format(n))
print('Side client: one connection sending ZINCRBY one at a time (ms). Slowest: the slowest command in Redis\'s SLOWLOG during the run (microseconds), and how many took over 1 ms; then the slowest command that the sync itself sent (the clients\' ZINCRBY left out), and for a copy script, how many members the copy held when it ran. EVAL (the copy\'s steps), ZRANGE and ZMSCORE: mean µs per call inside Redis (INFO commandstats). Not written or older: members present when the run started (a copy of the key taken just before) without a row of the day afterwards, or with a count below their score at the start; must be 0. Preempted: how many times the kernel took Redis\'s main thread off its core during the run (involuntary context switches), and how many ms the hypervisor took from CPU 1 (steal time; Redis\'s core in the pinned runs); a command in progress then waits.')
print('Pinned: Redis alone on CPU 1, PostgreSQL and the clients on CPU 0.\n')
print('| run | seconds | status | side p50 | side p99 | side max | slowest command | its µs | commands > 1 ms | slowest sync command | its µs | copy size then | EVAL µs | ZRANGE µs | ZMSCORE µs | not written or older | preempted | stolen ms |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for r in rows:
    if r[1] != '-':
        r[1] = '{:.2f}'.format(float(r[1]))
    print('| ' + ' | '.join(r) + ' |')
st = [float(r[1]) for r in rows if r[0] == 'stable']
lv = [float(r[1]) for r in rows if r[0] == 'live']
if st and lv:
    print('\nMedians: stable {:.2f} s, live {:.2f} s, live / stable = {:.2f}.'.format(
        statistics.median(st), statistics.median(lv), statistics.median(lv) / statistics.median(st)))
PY
cat bench/results-live.md
