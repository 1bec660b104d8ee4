--
-- What the scan pushes down to Redis, shown with EXPLAIN (VERBOSE, COSTS OFF),
-- and the results of each shape
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER push_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER push_redis;
-- this file's keys start with "push:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'push:*' > /dev/null
-- the sets and tables that fdw_scan reads
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd push:small 1 a 2 b 3 c 3 d 10.5 e > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end" 1 push:big > /dev/null
CREATE FOREIGN TABLE small (member text, score float8, rank bigint)
  SERVER push_redis OPTIONS (key 'push:small', page_size '2');
CREATE FOREIGN TABLE big (member text, score bigint, rank bigint)
  SERVER push_redis OPTIONS (key 'push:big', page_size '7');
CREATE FOREIGN TABLE anykey (key text, member text, score float8, rank bigint) SERVER push_redis;
CREATE TABLE people (name text PRIMARY KEY, team text);
INSERT INTO people VALUES ('a', 'red'), ('c', 'blue'), ('e', 'red'), ('zz', 'blue');
ANALYZE people;

-- rank windows
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE rank < 3;
SELECT * FROM big WHERE rank < 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE rank BETWEEN 10 AND 12;
SELECT * FROM big WHERE rank BETWEEN 10 AND 12;
SELECT * FROM big WHERE rank >= 2498;
SELECT * FROM big WHERE 2497 < rank;
SELECT * FROM big WHERE rank = 100;
SELECT * FROM big WHERE rank > 5 AND rank < 3;
SELECT count(*) FROM big WHERE rank < 0;
SELECT count(*) FROM big WHERE rank <= 2.5;
-- score windows
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE score > 2497;
SELECT * FROM big WHERE score > 2497;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE score >= 5 AND score < 8;
SELECT * FROM big WHERE score >= 5 AND score < 8;
SELECT * FROM big WHERE score = 42;
SELECT * FROM small WHERE score <= 3 AND score > 1;
SELECT count(*) FROM small WHERE score < 'NaN'::float8;
SELECT count(*) FROM small WHERE score > 'Infinity'::float8;
SELECT count(*) FROM small WHERE score > '-Infinity'::float8;
-- rank and score together
SELECT * FROM big WHERE score > 100 AND rank < 103;
-- member lookups
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE member = 'user42';
SELECT * FROM big WHERE member = 'user42';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, score FROM big WHERE member = ANY (ARRAY['user1', 'user9', 'nobody']);
SELECT member, score FROM big WHERE member = ANY (ARRAY['user1', 'user9', 'nobody']) ORDER BY member;
SELECT * FROM big WHERE member IN ('user3', 'user4') AND rank > 2;
SELECT * FROM big WHERE member = 'user3' AND member = 'user4';
SELECT * FROM big WHERE member = NULL;
-- ORDER BY served by Redis: no Sort node, and LIMIT bounds the window
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big ORDER BY score DESC LIMIT 3;
SELECT * FROM big ORDER BY score DESC LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big ORDER BY rank LIMIT 2 OFFSET 5;
SELECT * FROM big ORDER BY rank LIMIT 2 OFFSET 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE rank >= 100 ORDER BY score LIMIT 2;
SELECT * FROM big WHERE rank >= 100 ORDER BY score LIMIT 2;
SELECT * FROM big WHERE score < 50 ORDER BY score DESC LIMIT 2;
SELECT * FROM big ORDER BY rank DESC LIMIT 2;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big LIMIT 4;
SELECT * FROM big LIMIT 4;
-- conditions that cannot be pushed are evaluated locally, and then LIMIT is not pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big WHERE member LIKE 'user99%' ORDER BY score DESC LIMIT 2;
SELECT * FROM big WHERE member LIKE 'user99%' ORDER BY score DESC LIMIT 2;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM big ORDER BY member LIMIT 2;
SELECT * FROM big ORDER BY member LIMIT 2;
SELECT count(*) FROM big WHERE score + 1 > 2500;
-- parameters: prepared statements and nested-loop joins
PREPARE q(bigint, bigint) AS SELECT member FROM big WHERE rank >= $1 AND rank <= $2;
EXECUTE q(3, 5);
EXECUTE q(2499, 3000);
DEALLOCATE q;
PREPARE m(text) AS SELECT score FROM big WHERE member = $1;
EXECUTE m('user77');
DEALLOCATE m;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
INSERT INTO people VALUES ('user5', 'green'), ('user2000', 'green');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT p.name, b.score, b.rank FROM people p JOIN big b ON b.member = p.name;
SELECT p.name, b.score, b.rank FROM people p JOIN big b ON b.member = p.name ORDER BY 1;
SELECT p.name, b.score FROM people p LEFT JOIN big b ON b.member = p.name ORDER BY 1;
-- a paged scan and per-row lookups interleaved on one connection
EXPLAIN (COSTS OFF) SELECT count(*), sum(b2.score) FROM big b1 JOIN big b2 ON b2.member = b1.member;
SELECT count(*), sum(b2.score) FROM big b1 JOIN big b2 ON b2.member = b1.member;
RESET enable_hashjoin;
RESET enable_mergejoin;
-- key column conditions
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM anykey WHERE key = 'push:small' AND rank < 2;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM anykey WHERE key = ANY (ARRAY['push:a', 'push:b']);

SET client_min_messages = warning;
DROP TABLE people;
DROP SERVER push_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'push:*' > /dev/null
