# Data of the benchmarks, sourced by run_bench.sh and versions.sh.

# bench_clicks PORT DAY N TOTAL: N members on clicks:DAY's key
# (clicks:daily:DAY; names of 8 to 24 bytes, some non-ASCII, skewed counts)
# and the first TOTAL of the same names in clicks:total, deterministic, with
# pipelined Lua scripts of 100,000 members each.
bench_clicks() {
    local port=$1 day=$2 n=$3 total=$4 start
    for start in $(seq 0 100000 $(( total - 1 ))); do
        redis-cli -p "$port" EVAL "
            local n, last = tonumber(ARGV[2]), math.min(ARGV[1] + 100000, ARGV[3])
            for i = ARGV[1] + 1, last do
                local name = 'user' .. i
                if i % 5 == 0 then name = name .. '-\195\188ber' end
                if i % 3 == 0 then name = name .. '-' .. string.rep('x', i % 9) end
                redis.call('ZADD', KEYS[2], math.floor(1000000 / (1 + (i * 7919) % 9973)) + i % 7, name)
                if i <= n then
                    redis.call('ZADD', KEYS[1], math.floor(10000 / (1 + (i * 104729) % 997)), name)
                end
            end" 2 "clicks:daily:$day" clicks:total "$start" "$n" "$total" >/dev/null || return 1
    done
}

# bench_schema_sql PORT: the SQL that makes a benchmark database: the
# extension, a server on Redis at PORT, the target tables (the daily rows
# reference their members), member_seed for the members' old totals, and
# the job "defaults" with the job defaults.
bench_schema_sql() {
    cat <<SQL
CREATE EXTENSION redis_sync;
CREATE SERVER redis FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$1', command_timeout '600000');
CREATE USER MAPPING FOR PUBLIC SERVER redis;
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE daily_click_count (name text NOT NULL REFERENCES member, click_date date NOT NULL,
                                click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
CREATE TABLE member_seed (name text, click_count bigint);
SELECT redis_sync.create_job('defaults', 'redis', 'clicks:daily:%Y-%m-%d', 'clicks:total',
                             'member', 'daily_click_count');
SQL
}
