#!/usr/bin/env bash
# make bench-live: what a sync of today's key costs Redis, and how its time
# compares with a sync of the same day once the day is over.
#
# Loads N members (BENCH_LIVE_N, default 1000000) and their totals, then,
# BENCH_LIVE_REPS times (default 3), alternating:
#   stable  a first sync of the day under yesterday's date (read directly)
#   live    a first sync of the same day as today's key, while two clients
#           increment random members (a fifth of them new) as fast as they can
# During each run, a side client measures its ZINCRBY latency, and Redis's
# SLOWLOG records every command slower than 1 ms; the same side client also
# runs once with no sync going.  Writes bench/results-live.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

N=${BENCH_LIVE_N:-1000000}
REPS=${BENCH_LIVE_REPS:-3}

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

# slowest: the slowest command in the SLOWLOG ("command microseconds") and
# the number of commands slower than 1 ms
slowest() {
    "${RCLI[@]}" --no-raw SLOWLOG GET 1000000 | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
worst, cmd, n = 0, "-", 0
for i, l in enumerate(lines):
    m = re.match(r"^\s*3\) \(integer\) (\d+)$", l)
    c = re.search(r"\"([^\"]+)\"", lines[i + 1]) if m and i + 1 < len(lines) else None
    if c:
        n += 1
        if int(m.group(1)) > worst:
            worst, cmd = int(m.group(1)), c.group(1)
print(cmd, worst, n)'
}

RESULTS=$WORK/live.tsv
: >"$RESULTS"
side_rounds "$WORK/side" &
side=$!
sleep 10
kill "$side"; pkill -P "$side" redis-benchmark; wait "$side" 2>/dev/null
read -r p50 p99 mx < <(side_summary "$WORK/side")
printf 'idle\t-\t-\t%s\t%s\t%s\t-\t-\t-\n' "$p50" "$p99" "$mx" >>"$RESULTS"

for ((r = 1; r <= REPS; r++)); do
    for mode in stable live; do
        "${PSQL[@]}" -c "TRUNCATE member, daily_click_count"
        "${RCLI[@]}" DEL "clicks:daily:$TODAY" "clicks:daily:$YESTERDAY" bench:side >/dev/null
        if [ "$mode" = stable ]; then day=$YESTERDAY; else day=$TODAY; fi
        "${RCLI[@]}" COPY bench:day "clicks:daily:$day" >/dev/null
        "${RCLI[@]}" SLOWLOG RESET >/dev/null
        clients=()
        if [ "$mode" = live ]; then
            for c in 1 2; do
                redis-benchmark -p "$REDIS_PORT" -c 1 -P 4 -n 100000000 -r $((N * 5 / 4)) -q \
                    ZINCRBY "clicks:daily:$day" 1 m__rand_int__ >/dev/null 2>&1 &
                clients+=($!)
            done
        fi
        side_rounds "$WORK/side" &
        side=$!
        start=$(date +%s.%N)
        status=$("${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('live', '$day', resume => false)")
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        kill "${clients[@]}" 2>/dev/null
        kill "$side"; pkill -P "$side" redis-benchmark; wait "$side" 2>/dev/null
        read -r p50 p99 mx < <(side_summary "$WORK/side")
        read -r cmd us n < <(slowest)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$secs" "$status" "${p50:--}" "${p99:--}" \
            "${mx:--}" "${cmd:--}" "${us:-0}" "${n:-0}" >>"$RESULTS"
        wait "${clients[@]}" 2>/dev/null
    done
done

python3 - "$RESULTS" "$N" >bench/results-live.md <<'PY'
import sys, statistics
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
n = int(sys.argv[2])
print('# Live key: a sync of today\'s key against the same day once it is over\n')
print('{:,} members, default job settings; the live run has two clients incrementing random members as fast as they can.'.format(n))
print('Side client: one connection sending ZINCRBY one at a time (ms). Slowest: the slowest command in Redis\'s SLOWLOG during the run (microseconds), and how many took over 1 ms.\n')
print('| run | seconds | status | side p50 | side p99 | side max | slowest command | its µs | commands > 1 ms |')
print('|---|---|---|---|---|---|---|---|---|')
for r in rows:
    print('| ' + ' | '.join(r) + ' |')
st = [float(r[1]) for r in rows if r[0] == 'stable']
lv = [float(r[1]) for r in rows if r[0] == 'live']
if st and lv:
    print('\nMedians: stable {:.2f} s, live {:.2f} s, live / stable = {:.2f}.'.format(
        statistics.median(st), statistics.median(lv), statistics.median(lv) / statistics.median(st)))
PY
cat bench/results-live.md
