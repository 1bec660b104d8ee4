#!/usr/bin/env bash
# make bench-cluster: a day sharded over the primaries of a Redis Cluster
# against the same day as one key on one Redis (issue #21 item 6; figures
# only, no target on 2 cores).
#
# Starts one standalone Redis and a cluster of 3 primaries and 3 replicas on
# this machine, and a durable PostgreSQL.  Loads N members
# (BENCH_CLUSTER_N, default 1000000) as yesterday's key and its totals on
# the standalone Redis, and the same members in 3 shards (member i in shard
# i % 3, each shard with its own total key, hash tags chosen so that the
# shards are served by three different primaries) on the cluster.  Then,
# BENCH_CLUSTER_REPS times (default 3), alternating:
#   single          a first sync of the day from the standalone Redis
#   sharded         a first sync of the 3 shards from the cluster's primaries
#   sharded_replica the same with read_from 'replica': the primaries' and
#                   the replicas' read commands during the run are counted
#   scan_single / scan_sharded   SELECT count(*), sum(score) over a foreign
#                   table of the one key / of the 3 shards
# Every sync is checked against Redis (counts and sums of both tables).
# Writes bench/results-cluster.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

N=${BENCH_CLUSTER_N:-1000000}
REPS=${BENCH_CLUSTER_REPS:-3}

rs_install_packages || exit 1
rs_build_install || exit 1

WORK=$(rs_workdir cluster)
REDIS_PORT=$(rs_free_port)
PGPORT=$(rs_free_port)
NODES=()
cleanup() {
    rs_stop_pg "$WORK"
    rs_stop_redis "$REDIS_PORT"
    for p in "${NODES[@]}"; do rs_stop_redis "$p"; done
}
trap cleanup EXIT
rs_start_redis "$WORK" "$REDIS_PORT" || exit 1
for i in 1 2 3 4 5 6; do
    port=$(rs_free_port)
    bus=$(rs_free_port)
    mkdir -p "$WORK/node$i" && chown postgres:postgres "$WORK/node$i"
    rs_start_redis "$WORK/node$i" "$port" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-port "$bus" --cluster-node-timeout 2000 || exit 1
    NODES+=("$port")
done
redis-cli --cluster create $(for p in "${NODES[@]}"; do echo "127.0.0.1:$p"; done) \
    --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1 \
    || { cat "$WORK/cluster-create.log"; exit 1; }
for _ in $(seq 100); do
    ok=0
    for p in "${NODES[@]}"; do redis-cli -p "$p" CLUSTER INFO | grep -q 'cluster_state:ok' && ok=$((ok + 1)); done
    [ "$ok" = 6 ] && break
    sleep 0.2
done
[ "$ok" = 6 ] || { echo "the cluster did not come up" >&2; exit 1; }
SEED=${NODES[0]}
RC=(redis-cli -c -p "$SEED")

is_primary() { redis-cli -p "$1" ROLE | head -1 | grep -q master; }

# node_of TAG: the port of the primary serving the hash tag TAG
node_of() {
    "${RC[@]}" SET "bench:probe:{$1}" x >/dev/null
    for p in "${NODES[@]}"; do
        if [ "$(redis-cli -p "$p" EXISTS "bench:probe:{$1}")" = 1 ] &&
           redis-cli -p "$p" ROLE | head -1 | grep -q master; then
            echo "$p"
        fi
    done
    "${RC[@]}" DEL "bench:probe:{$1}" >/dev/null
}
# a tag prefix whose shards 0, 1 and 2 are served by three different primaries
PREFIX=
for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do
    n0=$(node_of "${c}0"); n1=$(node_of "${c}1"); n2=$(node_of "${c}2")
    if [ "$n0" != "$n1" ] && [ "$n0" != "$n2" ] && [ "$n1" != "$n2" ]; then PREFIX=$c; break; fi
done
[ -n "$PREFIX" ] || { echo "no tag prefix spreads 3 shards over 3 primaries" >&2; exit 1; }

RS_PG_DURABLE=1 rs_start_pg "$WORK" "$PGPORT" "max_worker_processes = 16" || exit 1
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
DAY=$("${PSQL[@]}" -c "SELECT current_date - 1")
OTHERS=$(printf '127.0.0.1:%s,127.0.0.1:%s' "${NODES[1]}" "${NODES[2]}")

"${PSQL[@]}" <<SQL
CREATE EXTENSION redis_sync;
CREATE SERVER single FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$REDIS_PORT', command_timeout '600000');
CREATE SERVER rc FOREIGN DATA WRAPPER redis_zset
  OPTIONS (port '$SEED', cluster 'on', nodes '$OTHERS', command_timeout '600000');
CREATE SERVER rcr FOREIGN DATA WRAPPER redis_zset
  OPTIONS (port '$SEED', cluster 'on', nodes '$OTHERS', read_from 'replica', command_timeout '600000');
CREATE USER MAPPING FOR PUBLIC SERVER single;
CREATE USER MAPPING FOR PUBLIC SERVER rc;
CREATE USER MAPPING FOR PUBLIC SERVER rcr;
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE daily_click_count (name text NOT NULL, click_date date NOT NULL,
                                click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
SELECT redis_sync.create_job('single', 'single', 'clicks:daily:%Y-%m-%d', 'clicks:total');
SELECT redis_sync.create_job('sharded', 'rc', 'clicks:daily:{$PREFIX%s}:%Y-%m-%d', 'clicks:total:{$PREFIX%s}',
                             shards => 3, partitions => 4);
SELECT redis_sync.create_job('sharded_replica', 'rcr', 'clicks:daily:{$PREFIX%s}:%Y-%m-%d', 'clicks:total:{$PREFIX%s}',
                             shards => 3, partitions => 4);
CREATE FOREIGN TABLE scan_single (member text, score bigint) SERVER single OPTIONS (key 'clicks:daily:$DAY');
CREATE FOREIGN TABLE scan_sharded (member text, score bigint) SERVER rc
  OPTIONS (key 'clicks:daily:{$PREFIX%s}:$DAY', shards '3');
SQL

# The data: member i has score (i * 7) % 1009 and total i.
for ((s = 0; s < N; s += 100000)); do
    e=$((s + 99999 < N ? s + 99999 : N - 1))
    redis-cli -p "$REDIS_PORT" EVAL "for i=$s,$e do local m = string.format('m%012d', i) \
        redis.call('ZADD', KEYS[1], (i * 7) % 1009, m) redis.call('ZADD', KEYS[2], i, m) end" \
        2 "clicks:daily:$DAY" clicks:total >/dev/null
    for sh in 0 1 2; do
        "${RC[@]}" EVAL "for i=$s,$e do if i % 3 == $sh then local m = string.format('m%012d', i) \
            redis.call('ZADD', KEYS[1], (i * 7) % 1009, m) redis.call('ZADD', KEYS[2], i, m) end end" \
            2 "clicks:daily:{$PREFIX$sh}:$DAY" "clicks:total:{$PREFIX$sh}" >/dev/null
    done
done
# wait until every replica has what its primary has
info_field() { redis-cli -p "$1" INFO replication | tr -d '\r' | sed -n "s/^$2://p"; }
for _ in $(seq 300); do
    behind=0
    for p in "${NODES[@]}"; do
        is_primary "$p" && continue
        mport=$(info_field "$p" master_port)
        [ "$(info_field "$p" slave_repl_offset)" -ge "$(info_field "$mport" master_repl_offset)" ] || behind=1
    done
    [ "$behind" = 0 ] && break
    sleep 0.2
done
EXPECT=$("${PSQL[@]}" -c "SELECT count(*) || ' ' || sum(score) FROM scan_single")

# read_calls PORT: the read commands a node has served since CONFIG RESETSTAT
read_calls() {
    redis-cli -p "$1" INFO commandstats | python3 -c '
import re, sys
print(sum(int(m.group(2)) for m in re.finditer(r"cmdstat_(zrange|zmscore|zcard|zcount|zscore|zrank|zrangebyscore|eval|evalsha):calls=(\d+)", sys.stdin.read())))'
}

RESULTS=$WORK/cluster.tsv
: >"$RESULTS"
for ((r = 1; r <= REPS; r++)); do
    for job in single sharded sharded_replica; do
        "${PSQL[@]}" -c "TRUNCATE member, daily_click_count"
        for p in "${NODES[@]}"; do redis-cli -p "$p" CONFIG RESETSTAT >/dev/null; done
        start=$(date +%s.%N)
        status=$("${PSQL[@]}" -c "SELECT status FROM redis_sync.sync_run('$job', '$DAY', resume => false)")
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        got=$("${PSQL[@]}" -c "SELECT count(*) || ' ' || sum(click_count) FROM daily_click_count")
        [ "$got" = "$EXPECT" ] || status="$status, but the table has $got of $EXPECT"
        prim=0 repl=0
        for p in "${NODES[@]}"; do
            c=$(read_calls "$p")
            if is_primary "$p"; then prim=$((prim + c)); else repl=$((repl + c)); fi
        done
        [ "$job" = single ] && prim=- repl=-
        printf '%s\t%s\t%s\t%s\t%s\n' "$job" "$secs" "$status" "$prim" "$repl" >>"$RESULTS"
    done
    for t in scan_single scan_sharded; do
        start=$(date +%s.%N)
        got=$("${PSQL[@]}" -c "SELECT count(*) || ' ' || sum(score) FROM $t")
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        status=ok
        [ "$got" = "$EXPECT" ] || status="wrong: $got of $EXPECT"
        printf '%s\t%s\t%s\t-\t-\n' "$t" "$secs" "$status" >>"$RESULTS"
    done
done

python3 - "$RESULTS" "$N" "$PREFIX" >bench/results-cluster.md <<'PY'
import sys, statistics, collections
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
n, prefix = int(sys.argv[2]), sys.argv[3]
print('# A day sharded over a Redis Cluster against one key on one Redis\n')
print('{:,} members of yesterday. single: one key on a standalone Redis. sharded: the same members in 3 keys `clicks:daily:{{{p}0}}:...` to `{{{p}2}}` on a cluster of 3 primaries and 3 replicas on this 2-core machine (one primary each), read by a job of `shards => 3, partitions => 4`; sharded_replica: the same with `read_from \'replica\'`. scan_*: `SELECT count(*), sum(score)` over a foreign table of the key, or of the 3 shards. Every sync is checked against Redis (counts and sums).'.format(n, p=prefix))
print('Reads on primaries / replicas: the read commands (ZRANGE, ZMSCORE, ZCARD, ZCOUNT, ZSCORE, ZRANK, EVAL) the nodes served during the run.\n')
print('| run | seconds | status | reads on primaries | reads on replicas |')
print('|---|---|---|---|---|')
for r in rows:
    r[1] = '{:.2f}'.format(float(r[1]))
    print('| ' + ' | '.join(r) + ' |')
by = collections.OrderedDict()
for r in rows:
    by.setdefault(r[0], []).append(float(r[1]))
print('\nMedians: ' + ', '.join('{} {:.2f} s'.format(k, statistics.median(v)) for k, v in by.items()) + '.')
PY
cat bench/results-cluster.md
