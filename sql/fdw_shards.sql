--
-- Sharded sets as one foreign table: option shards with a key template
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER shard_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER shard_redis;
-- this file's keys start with "shd:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'shd:*' > /dev/null
-- three shards with overlapping score ranges and many ties across shards
-- (scores 0..39), members disjoint; plus ties broken by member bytes
-- ("B" < "a" < "ab" < "abc"), and infinite scores
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,600 do redis.call('ZADD', 'shd:t:{' .. (i % 3) .. '}', i % 40, 'm' .. i) end" 0 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:t:{0}' 5 ab 5 B inf top0 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:t:{1}' 5 a -inf bottom1 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:t:{2}' 5 abc inf top2 > /dev/null

-- option validation
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x:{%s}', shards '0');
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x:{%s}', shards '1025');
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x:{%s}', shards 'many');
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x', shards '4');
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x:{%s}:%s', shards '4');
CREATE FOREIGN TABLE bad (member text) SERVER shard_redis OPTIONS (key 'shd:x:{%s}:%d', shards '4');
CREATE FOREIGN TABLE bad (key text, member text) SERVER shard_redis OPTIONS (shards '4');
-- one shard: the key is literal, "%" and all
CREATE FOREIGN TABLE pct (member text, score float8) SERVER shard_redis OPTIONS (key 'shd:50%off', shards '1');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:50%off' 1 x > /dev/null
SELECT * FROM pct;
-- adding shards to a literal key is checked against the whole option list
ALTER FOREIGN TABLE pct OPTIONS (SET shards '2');
ALTER FOREIGN TABLE pct OPTIONS (SET key 'shd:p:{%s}:100%%', SET shards '2');
-- in a template, %% is a literal %
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:p:{1}:100%' 2 y > /dev/null
SELECT * FROM pct;
DROP FOREIGN TABLE pct;

-- the sharded table, and one table per shard to compare with
CREATE FOREIGN TABLE sh (member text, score float8, rank bigint)
  SERVER shard_redis OPTIONS (key 'shd:t:{%s}', shards '3', page_size '7');
CREATE FOREIGN TABLE s0 (member text, score float8, rank bigint) SERVER shard_redis OPTIONS (key 'shd:t:{0}');
CREATE FOREIGN TABLE s1 (member text, score float8, rank bigint) SERVER shard_redis OPTIONS (key 'shd:t:{1}');
CREATE FOREIGN TABLE s2 (member text, score float8, rank bigint) SERVER shard_redis OPTIONS (key 'shd:t:{2}');
CREATE VIEW shards_union AS
  SELECT member, score FROM s0 UNION ALL SELECT member, score FROM s1 UNION ALL SELECT member, score FROM s2;
-- the global order: score, then member bytes; rank is the position in it
CREATE VIEW global_ranked AS
  SELECT member, score, row_number() OVER (ORDER BY score, member COLLATE "C") - 1 AS rank FROM shards_union;

-- full scan: the union of the shards
SELECT count(*), count(DISTINCT member), sum(score) FILTER (WHERE score > -1e9 AND score < 1e9) FROM sh;
SELECT count(*), count(DISTINCT member), sum(score) FILTER (WHERE score > -1e9 AND score < 1e9) FROM shards_union;
SELECT count(*) AS missing FROM (SELECT member, score FROM shards_union EXCEPT ALL SELECT member, score FROM sh) d;
SELECT count(*) AS extra FROM (SELECT member, score FROM sh EXCEPT ALL SELECT member, score FROM shards_union) d;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, score FROM sh;

-- a key column shows each row's shard key; key conditions pick shards
CREATE FOREIGN TABLE shk (key text, member text, score float8)
  SERVER shard_redis OPTIONS (key 'shd:t:{%s}', shards '3', page_size '50');
SELECT key, count(*) FROM shk GROUP BY key ORDER BY key;
SELECT count(*) FROM shk WHERE key = 'shd:t:{1}';
SELECT count(*) FROM shk WHERE key = 'shd:t:{7}';

-- member = x asks every shard
SELECT member, score FROM sh WHERE member = 'm10';
SELECT member, score FROM sh WHERE member = ANY(ARRAY['m1', 'm2', 'm3', 'ab', 'nobody']) ORDER BY member COLLATE "C";
SELECT count(*) FROM sh WHERE member = 'nobody';
SELECT key, member, score FROM shk WHERE member = ANY(ARRAY['m1', 'm2', 'm3', 'm4']) ORDER BY member;
SELECT key, member FROM shk WHERE member = ANY(ARRAY['m1', 'm2', 'm3', 'm4']) AND key = 'shd:t:{1}';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, score FROM sh WHERE member = 'm10';

-- score ranges, pushed to every shard
SELECT count(*), sum(score) FROM sh WHERE score >= 10 AND score < 20;
SELECT count(*), sum(score) FROM shards_union WHERE score >= 10 AND score < 20;
SELECT count(*) FROM sh WHERE score > 1e300;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM sh WHERE score >= 10 AND score < 20;

-- ORDER BY score [DESC] LIMIT k: a k-way merge, ties by member bytes,
-- equal to the same query over the union of the shards
SELECT member, score FROM sh ORDER BY score DESC LIMIT 12;
SELECT array_agg(member) = (SELECT array_agg(member) FROM
         (SELECT member FROM shards_union ORDER BY score DESC, member COLLATE "C" DESC LIMIT 12) u) AS top12_equal
  FROM (SELECT member FROM sh ORDER BY score DESC LIMIT 12) s;
SELECT member, score FROM sh ORDER BY score LIMIT 8;
SELECT array_agg(member) = (SELECT array_agg(member) FROM
         (SELECT member FROM shards_union ORDER BY score, member COLLATE "C" LIMIT 100) u) AS bottom100_equal
  FROM (SELECT member FROM sh ORDER BY score LIMIT 100) s;
-- the ties at score 5, across the three shards, in byte order
SELECT member, rank FROM sh WHERE score >= 5 AND score <= 5 ORDER BY score LIMIT 6;
SELECT member, rank FROM global_ranked WHERE score = 5 ORDER BY rank LIMIT 6;
-- with a score range, and the whole merge in both directions
SELECT array_agg(member) = (SELECT array_agg(member) FROM
         (SELECT member FROM shards_union WHERE score < 30 ORDER BY score DESC, member COLLATE "C" DESC LIMIT 50) u) AS range_equal
  FROM (SELECT member FROM sh WHERE score < 30 ORDER BY score DESC LIMIT 50) s;
SELECT array_agg(member) = (SELECT array_agg(member) FROM
         (SELECT member FROM shards_union ORDER BY score DESC, member COLLATE "C" DESC) u) AS all_desc_equal
  FROM (SELECT member FROM sh ORDER BY score DESC) s;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, score FROM sh ORDER BY score DESC LIMIT 12;

-- rank is the global rank: the position in the ascending order of all
-- shards, the same on every query shape
SELECT count(*) AS rank_mismatches FROM
  (SELECT member, score, rank FROM sh EXCEPT ALL SELECT member, score, rank FROM global_ranked) d;
SELECT min(rank), max(rank), count(DISTINCT rank) FROM sh;
SELECT member, score, rank FROM sh ORDER BY score DESC LIMIT 3;
SELECT member, score, rank FROM sh WHERE member = ANY(ARRAY['m10', 'ab', 'top2', 'bottom1']) ORDER BY rank;
SELECT member, rank FROM global_ranked WHERE member = ANY(ARRAY['m10', 'ab', 'top2', 'bottom1']) ORDER BY rank;
-- member lookups count each found member's global rank in every shard:
-- every member's, looked up in pages, and one at a time in a subplan
SELECT count(*) AS found, count(*) FILTER (WHERE s.rank <> g.rank) AS rank_mismatches
  FROM sh s JOIN global_ranked g USING (member)
  WHERE s.member = ANY(ARRAY(SELECT member FROM shards_union));
EXPLAIN (VERBOSE, COSTS OFF) SELECT (SELECT rank FROM sh s WHERE s.member = g.member) FROM s0 g;
SELECT count(*) AS looked_up, count(*) FILTER (WHERE r IS DISTINCT FROM g.rank) AS rank_mismatches
  FROM (SELECT g.rank, (SELECT rank FROM sh s WHERE s.member = g.member) AS r FROM global_ranked g) g;
SELECT member, rank FROM sh WHERE member = ANY(ARRAY['m10', 'ab', 'top2']) AND rank < 100;
SELECT member, score, rank FROM sh WHERE rank BETWEEN 100 AND 104;
SELECT member, score, rank FROM global_ranked WHERE rank BETWEEN 100 AND 104;
SELECT member, rank FROM sh WHERE rank >= 600 ORDER BY rank DESC;
SELECT count(*) FROM sh WHERE score >= 10 AND score < 20 AND rank < 200;
SELECT count(*) FROM global_ranked WHERE score >= 10 AND score < 20 AND rank < 200;
SELECT member, rank FROM sh ORDER BY rank LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, rank FROM sh WHERE rank BETWEEN 100 AND 104;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member, rank FROM sh WHERE member = 'm10';

-- a rescan restarts the merge
SELECT g, (SELECT member FROM sh ORDER BY score DESC LIMIT 1 OFFSET g) FROM generate_series(0, 3) g;

-- a scan that stops early, then other scans on the same connection
BEGIN;
DECLARE c CURSOR FOR SELECT member FROM sh ORDER BY score;
FETCH 2 FROM c;
SELECT count(*) FROM sh;
FETCH 2 FROM c;
CLOSE c;
COMMIT;

-- a bytea member column merges by the same bytes
CREATE FOREIGN TABLE shb (member bytea, score float8, rank bigint)
  SERVER shard_redis OPTIONS (key 'shd:t:{%s}', shards '3');
SELECT member, rank FROM shb WHERE score >= 5 AND score <= 5 ORDER BY score LIMIT 4;

-- a shard key of another type: the error names that shard's key, in a
-- scan of the shards one after another and in a merge
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:w:{0}' 1 a > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set 'shd:w:{1}' text > /dev/null
CREATE FOREIGN TABLE wrong (member text, score float8, rank bigint)
  SERVER shard_redis OPTIONS (key 'shd:w:{%s}', shards '2');
\set VERBOSITY terse
SELECT count(*) FROM wrong;
SELECT member FROM wrong ORDER BY score DESC LIMIT 1;
SELECT rank FROM wrong WHERE member = 'a';
\set VERBOSITY default
SELECT count(*) FROM sh;

-- memory stays bounded: a merge of three shards of 20,000 members each, in
-- pages of 100, holds one page per shard; a scan of the shards one after
-- another holds a few pages of one shard
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for s=0,2 do for i=1,20000 do redis.call('ZADD', 'shd:big:{' .. s .. '}', i, 'member-number-' .. s .. '-' .. i) end end" 0 > /dev/null
CREATE FOREIGN TABLE big (member text, score float8, rank bigint)
  SERVER shard_redis OPTIONS (key 'shd:big:{%s}', shards '3', page_size '100');
BEGIN;
DECLARE m CURSOR FOR SELECT member, rank FROM big ORDER BY score DESC;
MOVE 30000 IN m;
FETCH 1 FROM m;
SELECT count(*) AS shard_pages, sum(total_bytes) < 200000 AS bounded
  FROM pg_backend_memory_contexts WHERE name = 'redis_zset shard page';
CLOSE m;
DECLARE f CURSOR FOR SELECT member FROM big;
MOVE 30000 IN f;
SELECT sum(total_bytes) < 200000 AS bounded
  FROM pg_backend_memory_contexts WHERE name = 'redis_zset page';
CLOSE f;
COMMIT;
SELECT count(*), count(DISTINCT member), min(rank), max(rank) FROM big;

-- parallel scans give each worker whole shards
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(score) FROM sh;
SELECT count(*), count(DISTINCT member) FROM sh;
SELECT count(*) AS missing FROM (SELECT member, score FROM shards_union EXCEPT ALL SELECT member, score FROM sh) d;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- writes to a sharded table are refused; TRUNCATE empties every shard
INSERT INTO sh (member, score) VALUES ('new', 1);
UPDATE sh SET score = 1 WHERE member = 'm10';
DELETE FROM sh WHERE member = 'm10';
COPY sh (member, score) FROM STDIN;
new	1
\.
SELECT count(*) FROM sh WHERE member = 'm10';
-- a write to one shard's table, fed by the sharded table, reads the whole
-- scan first (the write would move ranks under the pages still to read)
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO s1 (member, score) SELECT member || 'x', score FROM sh;
CREATE FOREIGN TABLE gone (member text, score float8)
  SERVER shard_redis OPTIONS (key 'shd:g:{%s}', shards '2');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:g:{0}' 1 a > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'shd:g:{1}' 1 b > /dev/null
SELECT count(*) FROM gone;
TRUNCATE gone;
SELECT count(*) FROM gone;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT exists 'shd:g:{0}' 'shd:g:{1}'

SET client_min_messages = warning;
DROP SERVER shard_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'shd:*' > /dev/null
