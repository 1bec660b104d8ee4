#!/usr/bin/env bash
# make demo / make demo-stop: a throwaway PostgreSQL and Redis with a
# million demo clicks, a foreign table over them, and a sync into tables.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib.sh

DEMO=$ROOT/demo
STATE=$DEMO/state.env

stop_demo() {
    if [ -f "$STATE" ]; then
        . "$STATE"
        rs_stop_pg "$DATA"
        rs_stop_redis "$REDIS_PORT"
        [ "$DATA" != "$DEMO" ] && rm -rf "$DATA"
        rm -rf "$DEMO"
        echo "demo stopped"
    else
        echo "no demo is running"
    fi
}

if [ "${1:-start}" = stop ]; then
    stop_demo
    exit 0
fi
[ -f "$STATE" ] && stop_demo >/dev/null

rs_install_packages
rs_build_install

# The servers run as "postgres": keep their files in demo/ if that user can
# reach the checkout, else in a folder under /tmp that demo/ points to.
mkdir -p "$DEMO"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$DEMO"; then
    DATA=$(rs_workdir demo)
else
    DATA=$DEMO
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
fi
REDIS_PORT=$(rs_free_port)
PGPORT=$(rs_free_port)
printf 'DATA=%s\nREDIS_PORT=%s\nPGPORT=%s\n' "$DATA" "$REDIS_PORT" "$PGPORT" > "$STATE"

rs_start_redis "$DATA" "$REDIS_PORT"
rs_start_pg "$DATA" "$PGPORT" "max_worker_processes = 16" "shared_preload_libraries = 'redis_sync'" \
    "redis_sync.database = 'postgres'"

PSQL=(psql -X -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
DAY=$(date -u -d yesterday +%Y-%m-%d)

echo "== loading 1,000,000 demo members into Redis (clicks:daily:$DAY and clicks:total)"
for start in $(seq 0 100000 900000); do
    redis-cli -p "$REDIS_PORT" EVAL "
        for i = ARGV[1] + 1, ARGV[1] + 100000 do
            local name = 'user' .. i
            redis.call('ZADD', KEYS[1], (i * 7919) % 5000, name)
            redis.call('ZADD', KEYS[2], (i * 104729) % 100000, name)
        end" 2 "clicks:daily:$DAY" clicks:total "$start" >/dev/null
done
redis-cli -p "$REDIS_PORT" ZCARD "clicks:daily:$DAY"

"${PSQL[@]}" -q <<SQL
CREATE EXTENSION redis_sync;
CREATE SERVER redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host '127.0.0.1', port '$REDIS_PORT');
CREATE USER MAPPING FOR PUBLIC SERVER redis;
CREATE FOREIGN TABLE daily_clicks (member text, score bigint, rank bigint)
  SERVER redis OPTIONS (key 'clicks:daily:$DAY');
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE daily_click_count (
  name text NOT NULL REFERENCES member, click_date date NOT NULL,
  click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
SQL

run_sql() {
    echo
    echo "postgres=# $1"
    "${PSQL[@]}" -c "$1"
}
echo
echo "== the sorted set as a foreign table"
run_sql "SELECT * FROM daily_clicks ORDER BY score DESC LIMIT 10;"
run_sql "EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM daily_clicks ORDER BY score DESC LIMIT 10;"
run_sql "SELECT * FROM daily_clicks WHERE member = 'user4242';"
run_sql "SELECT count(*), sum(score) FROM daily_clicks;"

echo
echo "== a sync job, and a run of it while the progress view is watched"
run_sql "SELECT redis_sync.create_job(job_name => 'daily_clicks', server_name => 'redis',
           daily_key => 'clicks:daily:%Y-%m-%d', total_key => 'clicks:total',
           member_table => 'member', daily_table => 'daily_click_count',
           partitions => 8, workers => 2, chunk_size => 5000);"
"${PSQL[@]}" -c "SELECT * FROM redis_sync.sync_run('daily_clicks', '$DAY');" > "$DATA/run.out" 2>&1 &
RUN_PID=$!
while kill -0 "$RUN_PID" 2>/dev/null; do
    "${PSQL[@]}" -A -t -c "SELECT format('progress: run %s, %s of %s members (%s%%), %s members/s, eta %s',
        run_id, members_done, members, percent, members_per_second, date_trunc('second', eta))
        FROM redis_sync.progress" 2>/dev/null | grep . || true
    sleep 0.5
done
wait "$RUN_PID" || true
echo
echo "postgres=# SELECT * FROM redis_sync.sync_run('daily_clicks', '$DAY');"
cat "$DATA/run.out"
run_sql "SELECT d.name, d.click_date, d.click_count AS daily, m.click_count AS total
           FROM daily_click_count d JOIN member m USING (name) ORDER BY d.click_count DESC, d.name LIMIT 5;"
run_sql "SELECT * FROM redis_sync.sync_run('daily_clicks', '$DAY');"
echo "(the second run rewrote no rows: its counts had not changed)"

cat <<EOF

The demo is running:
  PostgreSQL: psql -h 127.0.0.1 -p $PGPORT -U postgres
  Redis:      redis-cli -p $REDIS_PORT
Stop it with: make demo-stop
EOF
