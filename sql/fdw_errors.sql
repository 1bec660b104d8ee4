--
-- Errors: wrong types, unreachable servers, authentication, bad tables
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER err_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER err_redis;
-- this file's keys start with "err:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'err:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd err:small 1 a 2 b 3 c 3 d 10.5 e > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end" 1 err:big > /dev/null
CREATE FOREIGN TABLE big (member text, score bigint, rank bigint)
  SERVER err_redis OPTIONS (key 'err:big', page_size '7');
\set VERBOSITY default
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set err:string hello > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT hset err:hash f v > /dev/null
CREATE FOREIGN TABLE wrongtype (member text, score float8) SERVER err_redis OPTIONS (key 'err:string');
SELECT * FROM wrongtype;
CREATE FOREIGN TABLE wronghash (member text, score float8) SERVER err_redis OPTIONS (key 'err:hash');
SELECT * FROM wronghash WHERE member = 'f';
SELECT count(*) FROM big;  -- the connection still works

-- nothing listens on port 1
CREATE SERVER nowhere FOREIGN DATA WRAPPER redis_zset OPTIONS (port '1', connect_timeout '500');
CREATE USER MAPPING FOR PUBLIC SERVER nowhere;
CREATE FOREIGN TABLE unreachable (member text, score float8) SERVER nowhere OPTIONS (key 'k');
\set VERBOSITY terse
SELECT * FROM unreachable;
\set VERBOSITY default

-- a user and password that this Redis does not accept
CREATE SERVER redis_pw FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER redis_pw OPTIONS (user 'no_such_user', password 'wrong');
CREATE FOREIGN TABLE pw (member text, score float8) SERVER redis_pw OPTIONS (key 'err:small');
SELECT * FROM pw;

-- columns that do not map, or have types a field cannot take
CREATE FOREIGN TABLE badcol (member text, clicks int) SERVER err_redis OPTIONS (key 'err:small');
SELECT * FROM badcol;
CREATE FOREIGN TABLE badtype (member int, score int) SERVER err_redis OPTIONS (key 'err:small');
SELECT * FROM badtype;
CREATE FOREIGN TABLE badrank (member text, rank text) SERVER err_redis OPTIONS (key 'err:small');
SELECT * FROM badrank;
CREATE FOREIGN TABLE twice (member text, m2 text OPTIONS (column_name 'member')) SERVER err_redis OPTIONS (key 'err:small');
SELECT * FROM twice;
CREATE FOREIGN TABLE nokey (member text, score int) SERVER err_redis;
SELECT * FROM nokey;

SET client_min_messages = warning;
DROP SERVER err_redis, nowhere, redis_pw CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'err:*' > /dev/null
