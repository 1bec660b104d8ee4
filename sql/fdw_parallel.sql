--
-- Parallel scans: the workers share one rank window
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER par_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER par_redis;
-- this file's keys start with "par:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'par:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,20000 do redis.call('ZADD', KEYS[1], i % 977, 'user' .. i) end" 1 par:set > /dev/null

CREATE FOREIGN TABLE par (member text, score float8, rank bigint)
  SERVER par_redis OPTIONS (key 'par:set', page_size '100');

-- the serial result
SET max_parallel_workers_per_gather = 0;
CREATE TABLE par_serial AS SELECT * FROM par;
SELECT count(*), sum(score), sum(rank), count(DISTINCT member) FROM par_serial;

SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(score) FROM par;
SELECT count(*), sum(score), sum(rank), count(DISTINCT member) FROM par;

-- every row once, with the same rank as in the serial scan
SELECT count(*) AS missing FROM (SELECT * FROM par_serial EXCEPT ALL SELECT * FROM par) d;
SELECT count(*) AS extra FROM (SELECT * FROM par EXCEPT ALL SELECT * FROM par_serial) d;

-- the workers really took part
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM par;

-- a rescan of a parallel scan (the inner side of a nested loop) starts over
SELECT g, (SELECT count(*) FROM par WHERE score < g) FROM generate_series(1, 3) g;

-- a key column table, or member lookups, are not parallel: serial plan
CREATE FOREIGN TABLE par_keys (key text, member text, score float8) SERVER par_redis;
EXPLAIN (COSTS OFF) SELECT count(*) FROM par_keys WHERE key = 'par:set';
SELECT count(*) FROM par_keys WHERE key = 'par:set';

-- with debug_parallel_query (force_parallel_mode before PostgreSQL 16), a
-- small scan runs in a worker
SELECT current_setting('server_version_num')::int >= 160000 AS debug_parallel_query \gset
\if :debug_parallel_query
SET debug_parallel_query = on;
\else
SET force_parallel_mode = on;
\endif
SELECT count(*), sum(score) FROM par WHERE rank < 10;
SELECT member, score FROM par ORDER BY score DESC, member LIMIT 3;
\if :debug_parallel_query
RESET debug_parallel_query;
\else
RESET force_parallel_mode;
\endif
DROP TABLE par_serial;

SET client_min_messages = warning;
DROP SERVER par_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'par:*' > /dev/null
