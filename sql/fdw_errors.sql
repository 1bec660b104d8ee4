--
-- Errors: wrong types, unreachable servers, authentication, bad tables
--
\set VERBOSITY default
\getenv redis_port REDIS_PORT
\! redis-cli -p $REDIS_PORT set rs:string hello > /dev/null
\! redis-cli -p $REDIS_PORT hset rs:hash f v > /dev/null
CREATE FOREIGN TABLE wrongtype (member text, score float8) SERVER redis OPTIONS (key 'rs:string');
SELECT * FROM wrongtype;
CREATE FOREIGN TABLE wronghash (member text, score float8) SERVER redis OPTIONS (key 'rs:hash');
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
CREATE SERVER redis_pw FOREIGN DATA WRAPPER redis_zset OPTIONS (port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER redis_pw OPTIONS (user 'no_such_user', password 'wrong');
CREATE FOREIGN TABLE pw (member text, score float8) SERVER redis_pw OPTIONS (key 'rs:small');
SELECT * FROM pw;

-- columns that do not map, or have types a field cannot take
CREATE FOREIGN TABLE badcol (member text, clicks int) SERVER redis OPTIONS (key 'rs:small');
SELECT * FROM badcol;
CREATE FOREIGN TABLE badtype (member int, score int) SERVER redis OPTIONS (key 'rs:small');
SELECT * FROM badtype;
CREATE FOREIGN TABLE badrank (member text, rank text) SERVER redis OPTIONS (key 'rs:small');
SELECT * FROM badrank;
CREATE FOREIGN TABLE twice (member text, m2 text OPTIONS (column_name 'member')) SERVER redis OPTIONS (key 'rs:small');
SELECT * FROM twice;
CREATE FOREIGN TABLE nokey (member text, score int) SERVER redis;
SELECT * FROM nokey;
