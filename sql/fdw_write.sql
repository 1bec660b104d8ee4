--
-- Writing to sorted sets through redis_zset foreign tables
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER write_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER write_redis;
-- this file's keys start with "wr:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'wr:*' > /dev/null

CREATE FOREIGN TABLE wr (member text, score bigint, rank bigint)
  SERVER write_redis OPTIONS (key 'wr:write');

-- INSERT is ZADD NX; the rows are in Redis when the statement ends
INSERT INTO wr VALUES ('a', 1), ('b', 2), ('c', 3);
SELECT * FROM wr;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zrange wr:write 0 -1 withscores

-- an existing member is a unique violation, unless ON CONFLICT DO NOTHING
INSERT INTO wr VALUES ('a', 100);
INSERT INTO wr VALUES ('a', 100), ('d', 4) ON CONFLICT DO NOTHING;
INSERT INTO wr VALUES ('a', 100) ON CONFLICT DO NOTHING;
SELECT * FROM wr;

-- RETURNING sees the rank Redis gave the new member
INSERT INTO wr VALUES ('e', 5) RETURNING *;
INSERT INTO wr (member, score) VALUES ('aa', 0) RETURNING member, rank;

-- UPDATE of the score is ZADD XX; of the member, an atomic rename
UPDATE wr SET score = score * 10 WHERE member = 'b' RETURNING *;
UPDATE wr SET member = 'bee' WHERE member = 'b' RETURNING *;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zscore wr:write b
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zscore wr:write bee
UPDATE wr SET member = 'a' WHERE member = 'bee';
UPDATE wr SET member = 'c', score = 30 WHERE member = 'c' RETURNING *;
UPDATE wr SET score = 1 WHERE member = 'no such member';

-- DELETE is ZREM
DELETE FROM wr WHERE member = 'c' RETURNING *;
DELETE FROM wr WHERE score >= 5;
DELETE FROM wr WHERE member = 'c';
SELECT * FROM wr;

-- what Redis cannot store or derive
UPDATE wr SET rank = 3;
INSERT INTO wr VALUES ('x', 1, 5);
INSERT INTO wr VALUES ('x', NULL);
INSERT INTO wr VALUES (NULL, 1);
CREATE FOREIGN TABLE wr_float (member text, score float8) SERVER write_redis OPTIONS (key 'wr:write');
INSERT INTO wr_float VALUES ('x', 'NaN');
INSERT INTO wr_float VALUES ('inf', 'Infinity'), ('-inf', '-Infinity'), ('half', 0.5);
SELECT * FROM wr_float ORDER BY score;
DELETE FROM wr_float WHERE member IN ('inf', '-inf', 'half');
CREATE FOREIGN TABLE wr_numeric (member text, score numeric) SERVER write_redis OPTIONS (key 'wr:write');
INSERT INTO wr_numeric VALUES ('huge', 1e400);
CREATE FOREIGN TABLE wr_fixed (key text, member text, score int) SERVER write_redis OPTIONS (key 'wr:write');
INSERT INTO wr_fixed VALUES ('wr:elsewhere', 'x', 1);
INSERT INTO wr_fixed VALUES ('wr:write', 'fixed', 1), (NULL, 'fixed2', 2);
DELETE FROM wr_fixed WHERE member LIKE 'fixed%' RETURNING *;
CREATE FOREIGN TABLE wr_text (member text, score text) SERVER write_redis OPTIONS (key 'wr:write');
INSERT INTO wr_text VALUES ('x', 'lots');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set wr:string hello > /dev/null
CREATE FOREIGN TABLE wr_string (member text, score int) SERVER write_redis OPTIONS (key 'wr:string');
INSERT INTO wr_string VALUES ('x', 1);
CREATE FOREIGN TABLE wr_noscore (member text) SERVER write_redis OPTIONS (key 'wr:write');
INSERT INTO wr_noscore VALUES ('x');
DELETE FROM wr_noscore WHERE member = 'aa';

-- writes are not transactional: a rollback does not undo them
BEGIN;
INSERT INTO wr VALUES ('kept', 7);
ROLLBACK;
SELECT * FROM wr WHERE member = 'kept';

-- EXPLAIN shows the commands and the batch size
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO wr SELECT 'm' || g, g FROM generate_series(1, 10) g;
EXPLAIN (VERBOSE, COSTS OFF) UPDATE wr SET score = 0 WHERE member = 'a';
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM wr WHERE score < 3;

-- batches: 2,500 rows in batches of 100, read back in pages of 7
CREATE FOREIGN TABLE many (member text, score int, rank bigint)
  SERVER write_redis OPTIONS (key 'wr:many', page_size '7', batch_size '100');
INSERT INTO many SELECT 'user' || g, g FROM generate_series(1, 2500) g;
SELECT count(*), count(DISTINCT member), sum(score), bool_and(score = rank + 1) FROM many;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zcard wr:many
-- a conflict in the middle of a batch: the other rows of the batch are written
INSERT INTO many SELECT 'new' || g, g FROM generate_series(1, 50) g
  UNION ALL SELECT 'user7', 7
  UNION ALL SELECT 'late' || g, g FROM generate_series(1, 20) g;
SELECT count(*) FILTER (WHERE member LIKE 'new%') AS new, count(*) FILTER (WHERE member LIKE 'late%') AS late FROM many;
ALTER FOREIGN TABLE many OPTIONS (SET batch_size '0');
ALTER FOREIGN TABLE many OPTIONS (SET batch_size '1');
INSERT INTO many SELECT 'one' || g, g FROM generate_series(1, 30) g;
SELECT count(*) FROM many;

-- a write to the key being scanned reads the whole window first, so no
-- row is missed or seen twice while ranks shift
UPDATE many SET score = score + 100000 WHERE score <= 500;
SELECT count(*) FILTER (WHERE score > 100000), sum(score) FROM many;
DELETE FROM many WHERE score <= 1000;
SELECT count(*), min(score) FROM many;
INSERT INTO many SELECT member || '_copy', score FROM many WHERE member LIKE 'user%';
SELECT count(*) FILTER (WHERE member LIKE '%_copy'), count(*) FROM many;
-- the same inside a writable CTE
WITH d AS (DELETE FROM many WHERE member LIKE '%_copy' RETURNING member)
SELECT count(*) FROM d;
SELECT count(*) FILTER (WHERE member LIKE '%_copy'), count(*) FROM many;

-- COPY FROM into a foreign table
COPY wr (member, score) FROM stdin;
copied1	11
copied2	12
\.
SELECT * FROM wr WHERE member LIKE 'copied%';

-- a table with a key column writes to the key of each row
CREATE FOREIGN TABLE wr_keys (key text, member text, score numeric, rank int) SERVER write_redis;
INSERT INTO wr_keys VALUES ('wr:k1', 'a', 1.5), ('wr:k2', 'a', 2), ('wr:k2', 'b', 3);
SELECT * FROM wr_keys WHERE key = ANY('{wr:k1,wr:k2}') ORDER BY key, member;
UPDATE wr_keys SET key = 'wr:k1' WHERE key = 'wr:k2' AND member = 'b' RETURNING *;
UPDATE wr_keys SET key = 'wr:k1' WHERE key = 'wr:k2' AND member = 'a';
DELETE FROM wr_keys WHERE key = 'wr:k1' AND score < 2 RETURNING key, member, score;
SELECT * FROM wr_keys WHERE key = ANY('{wr:k1,wr:k2}') ORDER BY key, member;
INSERT INTO wr_keys VALUES (NULL, 'a', 1);
INSERT INTO wr_keys VALUES ('', 'a', 1);
TRUNCATE wr_keys;

-- bytea members take any bytes; keys with spaces and quotes are just keys
CREATE FOREIGN TABLE wr_bytes (member bytea, score int) SERVER write_redis OPTIONS (key 'wr:it''s a "key"');
INSERT INTO wr_bytes VALUES ('\xff00fe', 1), ('plain', 2);
SELECT * FROM wr_bytes;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT --no-raw zrange "wr:it's a \"key\"" 0 -1
INSERT INTO wr_bytes VALUES ('\xff00fe', 3);

-- triggers fire per row, with the values Redis holds
CREATE TABLE wr_log (op text, member text, score bigint);
CREATE FUNCTION wr_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.score := NEW.score + 1000; RETURN NEW; END $$;
CREATE FUNCTION wr_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO wr_log VALUES (TG_OP, OLD.member, OLD.score);
  ELSE
    INSERT INTO wr_log VALUES (TG_OP, NEW.member, NEW.score);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER wr_before BEFORE INSERT ON wr FOR EACH ROW EXECUTE FUNCTION wr_before();
CREATE TRIGGER wr_after AFTER INSERT OR UPDATE OR DELETE ON wr FOR EACH ROW EXECUTE FUNCTION wr_after();
INSERT INTO wr VALUES ('t1', 1), ('t2', 2);
UPDATE wr SET score = score + 1 WHERE member = 't1';
DELETE FROM wr WHERE member = 't2';
SELECT * FROM wr_log;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zscore wr:write t1
DROP TRIGGER wr_before ON wr;
DROP TRIGGER wr_after ON wr;

-- TRUNCATE unlinks the key
TRUNCATE wr, wr_bytes;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT exists wr:write "wr:it's a \"key\""
SELECT count(*) FROM wr;

SET client_min_messages = warning;
DROP TABLE wr_log;
DROP FUNCTION wr_before(), wr_after();
DROP SERVER write_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'wr:*' > /dev/null
