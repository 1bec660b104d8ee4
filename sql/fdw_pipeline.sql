--
-- The page pipeline of range reads: a scan keeps several pages requested
-- ahead on the connection it shares with every other scan and write of the
-- same user mapping.  Each case stops a scan early, interleaves two scans,
-- or fails mid-scan while pages are in flight, then checks that the
-- connection still answers exactly (a full read of a known set).
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER pipe_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER pipe_redis;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del pl:a pl:b pl:c pl:bad > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], i, 'user' .. i); redis.call('ZADD', KEYS[2], 2 * i, 'user' .. i) end" 2 pl:a pl:b > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,300 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end; redis.call('ZADD', KEYS[1], 10000000000, 'huge')" 1 pl:bad > /dev/null

-- pages of 7: a full read is 358 pages
CREATE FOREIGN TABLE pa (member text, score bigint, rank bigint)
  SERVER pipe_redis OPTIONS (key 'pl:a', page_size '7');
CREATE FOREIGN TABLE pb (member text, score bigint, rank bigint)
  SERVER pipe_redis OPTIONS (key 'pl:b', page_size '7');
-- "huge" (rank 300) does not fit an integer score
CREATE FOREIGN TABLE pbad (member text, score integer, rank bigint)
  SERVER pipe_redis OPTIONS (key 'pl:bad', page_size '7');

-- the check after each case: every member once, in rank order
CREATE FUNCTION pipe_check() RETURNS text LANGUAGE sql AS $$
  SELECT format('a: %s rows, sum %s, ranks ok %s; b: %s rows, sum %s',
                (SELECT count(*) FROM pa), (SELECT sum(score) FROM pa),
                (SELECT bool_and(score = rank + 1 AND member = 'user' || score) FROM pa),
                (SELECT count(*) FROM pb), (SELECT sum(score) FROM pb))
$$;
SELECT pipe_check();

-- the ZRANGE commands Redis has served since the last call
CREATE TEMP TABLE pipe_stats (line text);
CREATE FUNCTION pipe_zranges() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  calls bigint;
BEGIN
  TRUNCATE pipe_stats;
  EXECUTE format($c$COPY pipe_stats FROM PROGRAM 'redis-cli -h %s -p %s info commandstats; redis-cli -h %s -p %s config resetstat > /dev/null'$c$,
                 current_setting('pipe_test.redis_host'), current_setting('pipe_test.redis_port'),
                 current_setting('pipe_test.redis_host'), current_setting('pipe_test.redis_port'));
  SELECT coalesce(substring(line FROM 'cmdstat_zrange:calls=([0-9]+)')::bigint, 0) INTO calls
    FROM pipe_stats WHERE line LIKE 'cmdstat_zrange:%';
  RETURN coalesce(calls, 0);
END
$$;
SELECT set_config('pipe_test.redis_host', :'redis_host', false) IS NOT NULL AND
       set_config('pipe_test.redis_port', :'redis_port', false) IS NOT NULL AS port_set;
SELECT pipe_zranges() >= 0 AS reset;

-- a full read asks for each page once
SELECT count(*), sum(score) FROM pa;
SELECT pipe_zranges() AS pages_asked;

-- LIMIT with a condition kept local stops the scan with pages in flight;
-- it consumed 6 pages and asked for at most 4 more
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM pa WHERE member LIKE 'user%' LIMIT 40;
SELECT string_agg(member, ',') FROM (SELECT member FROM pa WHERE member LIKE 'user%' LIMIT 40) s;
SELECT pipe_zranges() BETWEEN 6 AND 10 AS pages_asked_bounded;
-- the next query on the same server reads its own replies
SELECT count(*), sum(score) FROM pb;
-- the same within one transaction, with another table of the server next
BEGIN;
SELECT member FROM pa WHERE member LIKE 'user%' OFFSET 100 LIMIT 2;
SELECT member, score FROM pb WHERE member LIKE 'user%' OFFSET 2000 LIMIT 2;
SELECT pipe_check();
COMMIT;

-- rescans: a subquery stopped early, run once per outer row, each time
-- with pages in flight
SELECT g, (SELECT member FROM pa WHERE member LIKE 'user%' AND score > g * 100 OFFSET 30 LIMIT 1)
  FROM generate_series(1, 5) g;
-- the inner side of a nested loop, read to the end each time
EXPLAIN (COSTS OFF)
SELECT g, s.* FROM generate_series(1, 3) g
  CROSS JOIN LATERAL (SELECT count(*), sum(score) FROM pa WHERE member LIKE 'user' || g || '%') s;
SELECT g, s.* FROM generate_series(1, 3) g
  CROSS JOIN LATERAL (SELECT count(*), sum(score) FROM pa WHERE member LIKE 'user' || g || '%') s;
SELECT pipe_check();

-- two scans interleaved on one connection: the outer range read has pages
-- in flight whenever the inner side looks a member up (ZMSCORE) ...
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*), sum(a.score), sum(b.score), bool_and(b.score = 2 * a.score) FROM pa a JOIN pb b ON b.member = a.member;
SELECT count(*), sum(a.score), sum(b.score), bool_and(b.score = 2 * a.score) FROM pa a JOIN pb b ON b.member = a.member;
-- ... or reads a rank window (ZCARD, ZRANGE) ...
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*), bool_and(b.score = 2 * a.score AND a.member = b.member)
  FROM pa a CROSS JOIN LATERAL (SELECT * FROM pb WHERE pb.rank = a.rank OFFSET 0) b;
SELECT count(*), bool_and(b.score = 2 * a.score AND a.member = b.member)
  FROM pa a CROSS JOIN LATERAL (SELECT * FROM pb WHERE pb.rank = a.rank OFFSET 0) b;
-- ... or reads pages of its own and stops early, with pages in flight too
EXPLAIN (COSTS OFF)
SELECT count(*), sum(a.score), bool_and(b.score = 2 * (a.score / 2 + 21))
  FROM (SELECT member, score FROM pa WHERE member LIKE 'user%' LIMIT 100) a
  CROSS JOIN LATERAL (SELECT score FROM pb WHERE member LIKE 'user%' AND score > a.score OFFSET 20 LIMIT 1) b;
SELECT count(*), sum(a.score), bool_and(b.score = 2 * (a.score / 2 + 21))
  FROM (SELECT member, score FROM pa WHERE member LIKE 'user%' LIMIT 100) a
  CROSS JOIN LATERAL (SELECT score FROM pb WHERE member LIKE 'user%' AND score > a.score OFFSET 20 LIMIT 1) b;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
SELECT pipe_check();

-- a cursor fetched partly, another query on the server while it is open,
-- then more rows of the cursor, then closed early
BEGIN;
DECLARE c CURSOR FOR SELECT member, score FROM pa;
FETCH 30 FROM c;
SELECT count(*), sum(score) FROM pb;
FETCH 3 FROM c;
INSERT INTO pb VALUES ('newcomer', 1);
FETCH 2 FROM c;
CLOSE c;
SELECT pipe_check();
DELETE FROM pb WHERE member = 'newcomer';
COMMIT;

-- a write fed by a scan of the same server: each batch of ZADDs waits
-- until the scan has read the pages it has in flight
CREATE FOREIGN TABLE pc (member text, score bigint)
  SERVER pipe_redis OPTIONS (key 'pl:c', page_size '7', batch_size '50');
INSERT INTO pc SELECT member, score * 3 FROM pa;
SELECT count(*), sum(c.score), bool_and(c.score = 3 * a.score)
  FROM pc c JOIN pa a USING (member);
TRUNCATE pc;
SELECT pipe_check();

-- an error mid-scan, with pages in flight, and then queries that work
SELECT member, score FROM pbad;
SELECT pipe_check();
BEGIN;
SAVEPOINT s;
SELECT sum(score) FROM pbad;
ROLLBACK TO SAVEPOINT s;
SELECT pipe_check();
COMMIT;
-- the same error from a scan interleaved with another
SELECT count(*) FROM pa a JOIN pbad b ON b.member = a.member;
SELECT pipe_check();

DROP FUNCTION pipe_check();
DROP FUNCTION pipe_zranges();
DROP SERVER pipe_redis CASCADE;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del pl:a pl:b pl:c pl:bad > /dev/null
