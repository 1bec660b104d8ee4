--
-- Reading sorted sets through redis_zset foreign tables
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER scan_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER scan_redis;
-- this file's keys start with "scan:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'scan:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd scan:small 1 a 2 b 3 c 3 d 10.5 e > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end" 1 scan:big > /dev/null

CREATE FOREIGN TABLE small (member text, score float8, rank bigint)
  SERVER scan_redis OPTIONS (key 'scan:small', page_size '2');
SELECT * FROM small;
SELECT member, score FROM small WHERE score > 2;
SELECT rank FROM small;

-- pages of 7 over 2,500 members: everything arrives once
CREATE FOREIGN TABLE big (member text, score bigint, rank bigint)
  SERVER scan_redis OPTIONS (key 'scan:big', page_size '7');
SELECT count(*), count(DISTINCT member), sum(score), min(rank), max(rank) FROM big;
SELECT bool_and(score = rank + 1) AS ranks_match FROM big;

-- missing and empty keys read as empty sets
CREATE FOREIGN TABLE missing (member text, score bigint) SERVER scan_redis OPTIONS (key 'scan:nothing');
SELECT count(*) FROM missing;
SELECT * FROM missing WHERE member = 'x';

-- columns mapped with column_name, and only some fields
CREATE FOREIGN TABLE renamed (who text OPTIONS (column_name 'member'),
                              clicks numeric OPTIONS (column_name 'score'))
  SERVER scan_redis OPTIONS (key 'scan:small');
SELECT * FROM renamed ORDER BY who;
CREATE FOREIGN TABLE only_scores (score int) SERVER scan_redis OPTIONS (key 'scan:big');
SELECT sum(score) FROM only_scores;

-- score types: every input function that accepts the Redis text
CREATE FOREIGN TABLE s_numeric (member text, score numeric) SERVER scan_redis OPTIONS (key 'scan:small');
CREATE FOREIGN TABLE s_text (member text, score text) SERVER scan_redis OPTIONS (key 'scan:small');
CREATE FOREIGN TABLE s_int (member varchar, score int, rank int) SERVER scan_redis OPTIONS (key 'scan:big');
SELECT sum(score) FROM s_numeric;
SELECT string_agg(score, ',') FROM s_text;
SELECT member, score, rank FROM s_int WHERE rank = 4;
-- a score that does not fit the column type names the member and key
CREATE FOREIGN TABLE s_bigint (member text, score bigint) SERVER scan_redis OPTIONS (key 'scan:small');
SELECT * FROM s_bigint;

-- bytea members take any bytes; text members must be valid in the encoding
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "redis.call('ZADD', KEYS[1], 1, 'ok', 2, 'bad\255x', 3, 'nul\0byte')" 1 scan:bytes > /dev/null
CREATE FOREIGN TABLE bytes_b (member bytea, score int) SERVER scan_redis OPTIONS (key 'scan:bytes');
SELECT * FROM bytes_b;
CREATE FOREIGN TABLE bytes_t (member text, score int, rank bigint) SERVER scan_redis OPTIONS (key 'scan:bytes');
SELECT * FROM bytes_t WHERE rank = 0;
SELECT * FROM bytes_t;

-- a table with a key column reads the keys the query names
CREATE FOREIGN TABLE anykey (key text, member text, score float8, rank bigint) SERVER scan_redis;
SELECT * FROM anykey WHERE key = 'scan:small' ORDER BY rank;
SELECT key, count(*), sum(score) FROM anykey
 WHERE key = ANY (ARRAY['scan:small', 'scan:big', 'scan:nothing', 'scan:small']) GROUP BY key ORDER BY key;
SELECT * FROM anykey WHERE key = 'scan:small' AND member = 'c';
SELECT * FROM anykey WHERE score > 2;
SELECT * FROM anykey;

-- joins with local tables, including parameterized member lookups
CREATE TABLE people (name text PRIMARY KEY, team text);
INSERT INTO people VALUES ('a', 'red'), ('c', 'blue'), ('e', 'red'), ('zz', 'blue');
ANALYZE people;
SELECT p.name, p.team, s.score, s.rank FROM people p JOIN small s ON s.member = p.name ORDER BY p.name;
SELECT p.team, sum(s.score) FROM people p LEFT JOIN small s ON s.member = p.name GROUP BY p.team ORDER BY 1;

-- a cursor that stops early, then more queries on the same connection
BEGIN;
DECLARE c CURSOR FOR SELECT member FROM big;
FETCH 3 FROM c;
SELECT count(*) FROM small;
FETCH 2 FROM c;
CLOSE c;
COMMIT;
SELECT count(*) FROM big;

-- two scans of the same server interleaved in one query
SELECT count(*) FROM big b1 JOIN big b2 ON b1.rank = b2.rank;

SET client_min_messages = warning;
DROP TABLE people;
DROP SERVER scan_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'scan:*' > /dev/null
