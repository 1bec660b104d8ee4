--
-- Score conditions give the same rows as on a local copy, for every score
-- type: pushed exactly where Redis compares scores as PostgreSQL compares
-- the column (float8; integers), otherwise pushed as a widened window and
-- rechecked locally (numeric, numeric(p,s), real), or kept local (text).
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER score_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER score_redis;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del sc:inf sc:frac sc:cents sc:big sc:int > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sc:inf -inf a 0 b inf c > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sc:frac 0.1 a 0.3 b 0.5 c > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sc:cents 1.005 a 2.675 b > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sc:big 9007199254740992 a -9007199254740992 b > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sc:int -2147483648 a 0 b 7 c 7 d 2147483647 e > /dev/null

--
-- 1. Infinite bounds
--
CREATE FOREIGN TABLE f (member text, score float8, rank bigint)
  SERVER score_redis OPTIONS (key 'sc:inf');
SELECT * FROM f;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score = 'inf';
SELECT member FROM f WHERE score = 'inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score >= 'inf';
SELECT member FROM f WHERE score >= 'inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score < 'inf';
SELECT member FROM f WHERE score < 'inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score = '-inf';
SELECT member FROM f WHERE score = '-inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score >= '-inf';
SELECT member FROM f WHERE score >= '-inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score < '-inf';
SELECT member FROM f WHERE score < '-inf';
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f WHERE score = (SELECT max(score) FROM f);
SELECT member FROM f WHERE score = (SELECT max(score) FROM f);
SELECT member FROM f WHERE score > 'inf';
SELECT member FROM f WHERE score <= 'inf';
SELECT member FROM f WHERE score > '-inf' AND score < 'inf';
-- member lookups check the same bounds
SELECT member FROM f WHERE member = ANY (ARRAY['a', 'b', 'c']) AND score < 'inf';
SELECT member FROM f WHERE member = ANY (ARRAY['a', 'b', 'c']) AND score = '-inf';

-- numeric and real columns hold the infinities too
CREATE FOREIGN TABLE f_num (member text, score numeric) SERVER score_redis OPTIONS (key 'sc:inf');
CREATE FOREIGN TABLE f_real (member text, score real) SERVER score_redis OPTIONS (key 'sc:inf');
SELECT * FROM f_num;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f_num WHERE score = 'inf';
SELECT member FROM f_num WHERE score = 'inf';
SELECT member FROM f_num WHERE score >= 'inf';
SELECT member FROM f_num WHERE score < 'inf';
SELECT member FROM f_num WHERE score = '-inf';
SELECT member FROM f_num WHERE score >= '-inf';
SELECT member FROM f_num WHERE score < '-inf';
SELECT member FROM f_num WHERE score = (SELECT max(score) FROM f_num);
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM f_real WHERE score < '-inf';
SELECT member FROM f_real WHERE score = 'inf';
SELECT member FROM f_real WHERE score >= 'inf';
SELECT member FROM f_real WHERE score < 'inf';
SELECT member FROM f_real WHERE score = '-inf';
SELECT member FROM f_real WHERE score >= '-inf';
SELECT member FROM f_real WHERE score < '-inf';
SELECT member FROM f_real WHERE score = (SELECT max(score) FROM f_real);

--
-- 2. Columns that do not hold Redis's double: widened and rechecked
--
-- numeric reads Redis's 17 significant digits
CREATE FOREIGN TABLE n (member text, score numeric) SERVER score_redis OPTIONS (key 'sc:frac');
SELECT * FROM n;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM n WHERE score = 0.1;
SELECT member FROM n WHERE score = 0.1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM n WHERE score > 0.1;
SELECT member FROM n WHERE score > 0.1;
SELECT member FROM n WHERE score = 0.10000000000000001;
SELECT member FROM n WHERE score <= 0.29999999999999999;
SELECT member FROM n WHERE score < 0.3;

-- real rounds Redis's double to single precision
CREATE FOREIGN TABLE r (member text, score real) SERVER score_redis OPTIONS (key 'sc:frac');
SELECT * FROM r;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM r WHERE score = 0.1::real;
SELECT member FROM r WHERE score = 0.1::real;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM r WHERE score <= 0.1::float8;
SELECT member FROM r WHERE score <= 0.1::float8;
SELECT member FROM r WHERE score > 0.1::float8;

-- numeric(p,s) rounds to its scale
CREATE FOREIGN TABLE t (member text, score numeric(12,2)) SERVER score_redis OPTIONS (key 'sc:cents');
SELECT * FROM t;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM t WHERE score = 1.00;
SELECT member FROM t WHERE score = 1.00;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM t WHERE score = (SELECT max(score) FROM t);
SELECT member FROM t WHERE score = (SELECT max(score) FROM t);
SELECT member FROM t WHERE score > 1.00;
SELECT member FROM t WHERE score <= 2.67;
-- a rechecked condition keeps LIMIT local
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM t WHERE score >= 1 ORDER BY score LIMIT 1;
SELECT member FROM t WHERE score >= 1 ORDER BY score LIMIT 1;

-- bigint: exact beyond 2^53 too, bounds rounded to the doubles inside them
CREATE FOREIGN TABLE b (member text, score bigint) SERVER score_redis OPTIONS (key 'sc:big');
SELECT * FROM b;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM b WHERE score < 9007199254740993;
SELECT member FROM b WHERE score < 9007199254740993;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM b WHERE score = 9007199254740993;
SELECT member FROM b WHERE score = 9007199254740993;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM b WHERE score > -9007199254740993;
SELECT member FROM b WHERE score > -9007199254740993;
SELECT member FROM b WHERE score <= 9007199254740991;
SELECT member FROM b WHERE score >= 9007199254740992;
SELECT member FROM b WHERE score > 9007199254740992;
SELECT member FROM b WHERE score < 9223372036854775807 AND score > -9223372036854775808;
PREPARE bq(bigint) AS SELECT member FROM b WHERE score >= $1;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE bq(9007199254740993);
EXECUTE bq(9007199254740993);
EXECUTE bq(9007199254740991);
DEALLOCATE bq;

-- int: exact
CREATE FOREIGN TABLE i (member text, score int) SERVER score_redis OPTIONS (key 'sc:int');
SELECT * FROM i;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM i WHERE score = 7;
SELECT member FROM i WHERE score = 7;
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM i WHERE score >= 2147483647;
SELECT member FROM i WHERE score >= 2147483647;
SELECT member FROM i WHERE score < 7::bigint;
SELECT member FROM i WHERE score > 9007199254740993;
SELECT member FROM i WHERE score <= -2147483648::bigint;
-- compared with a numeric value, the column is cast and nothing is pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM i WHERE score > 6.5;
SELECT member FROM i WHERE score > 6.5;

-- text compares as text: never pushed
CREATE FOREIGN TABLE tx (member text, score text) SERVER score_redis OPTIONS (key 'sc:frac');
EXPLAIN (VERBOSE, COSTS OFF) SELECT member FROM tx WHERE score > '0.2';
SELECT member FROM tx WHERE score > '0.2';

--
-- 3. Bounds beyond the range of double: an open or empty window
--
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM n WHERE score < 1e400;
SELECT count(*) FROM n WHERE score < 1e400;
SELECT count(*) FROM n WHERE score > 1e-400;
SELECT count(*) FROM n WHERE score < -1e400;
SELECT count(*) FROM n WHERE score > 1e400;
SELECT count(*) FROM n WHERE score = 1e-400;
SELECT member FROM f_num WHERE score > 1e400;
SELECT member FROM f_num WHERE score < -1e400;
SELECT member FROM f_num WHERE score BETWEEN -1e400 AND 1e400;

SET client_min_messages = warning;
DROP SERVER score_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del sc:inf sc:frac sc:cents sc:big sc:int > /dev/null
