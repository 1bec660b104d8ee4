--
-- Bad input: keys of other types, odd members and scores, objects dropped
-- under a job.  Each case must give a clean error, write nothing partial,
-- and leave the server serving.
--
\set VERBOSITY default
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER bad_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER bad_redis;
-- this file's keys start with "bad:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'bad:*' > /dev/null

-- A sync_run that fails, shown as psql shows an error, except that the run
-- the error context names is shown as "run <of DATE>" when it is the job's
-- run of that date (run ids depend on what ran before in the database).
CREATE FUNCTION pg_temp.sync_error(job text, day date, resume boolean DEFAULT true)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    det text;
    hint text;
    ctx text;
    run bigint;
BEGIN
    PERFORM redis_sync.sync_run(job, day, resume => resume);
    RETURN NEXT 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT, ctx = PG_EXCEPTION_CONTEXT;
    SELECT max(r.run_id) INTO run FROM redis_sync.run r JOIN redis_sync.job j USING (job_id)
     WHERE j.job_name = job AND r.run_date = day;
    RETURN NEXT 'ERROR:  ' || msg;
    IF det <> '' THEN
        RETURN NEXT 'DETAIL:  ' || det;
    END IF;
    IF hint <> '' THEN
        RETURN NEXT 'HINT:  ' || hint;
    END IF;
    -- (without the lines this function adds)
    ctx := regexp_replace(ctx, '\n?SQL statement "SELECT redis_sync.sync_run\(job, .*$', '');
    ctx := replace(ctx, format('redis_sync run %s of', run),
                   format('redis_sync run <of %s> of', to_char(day, 'YYYY-MM-DD')));
    RETURN QUERY SELECT CASE WHEN n = 1 THEN 'CONTEXT:  ' ELSE '' END || line
                   FROM unnest(string_to_array(ctx, E'\n')) WITH ORDINALITY AS c(line, n)
                  WHERE ctx <> '';
END $$;

CREATE SCHEMA bad;
SET search_path = bad, public;
CREATE TABLE bad.member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE bad.daily (name text NOT NULL, click_date date NOT NULL, click_count bigint NOT NULL,
                        PRIMARY KEY (name, click_date));
CREATE TABLE bad.small_daily (name text NOT NULL, click_date date NOT NULL, click_count int NOT NULL,
                              PRIMARY KEY (name, click_date));
SELECT redis_sync.create_job('bad', 'bad_redis', 'bad:%Y-%m-%d', 'bad:total', 'bad.member', 'bad.daily',
                             partitions => 2, workers => 2, chunk_size => 10) > 0 AS created;
SELECT redis_sync.create_job('bad_small', 'bad_redis', 'bad:%Y-%m-%d', NULL, NULL, 'bad.small_daily') > 0 AS created;
CREATE FOREIGN TABLE bad_ft (key text, member text, score bigint) SERVER bad_redis;

-- keys of every other Redis type: the scan and the sync name the key
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set bad:2020-03-01 a-string > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT rpush bad:2020-03-02 a b > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT sadd bad:2020-03-03 a b > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT hset bad:2020-03-04 a 1 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT xadd bad:2020-03-05 '*' a 1 > /dev/null
SELECT * FROM bad_ft WHERE key = 'bad:2020-03-02';
SELECT * FROM bad_ft WHERE key = 'bad:2020-03-05' AND member = 'a';
\set VERBOSITY terse
SELECT * FROM redis_sync.sync_run('bad', '2020-03-01');
SELECT * FROM redis_sync.sync_run('bad', '2020-03-02');
SELECT * FROM redis_sync.sync_run('bad', '2020-03-03');
SELECT * FROM redis_sync.sync_run('bad', '2020-03-04');
SELECT * FROM redis_sync.sync_run('bad', '2020-03-05');
\set VERBOSITY default
SELECT count(*) FROM bad.daily;

-- a total key of the wrong type fails the run too
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd bad:2020-03-06 1 a > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set bad:total x > /dev/null
\set VERBOSITY terse
SELECT * FROM redis_sync.sync_run('bad', '2020-03-06');
\set VERBOSITY default
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del bad:total > /dev/null

-- members with a NUL byte: not text, so the scan shows the bytes; bytea reads them
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "redis.call('ZADD', KEYS[1], 1, 'nul\0inside', 2, 'ok')" 1 bad:nul > /dev/null
SELECT member, score FROM bad_ft WHERE key = 'bad:nul';
CREATE FOREIGN TABLE bad_bytes (member bytea, score int) SERVER bad_redis OPTIONS (key 'bad:nul');
SELECT * FROM bad_bytes;

-- a 512 KB member goes through the scan and the sync whole
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "redis.call('ZADD', KEYS[1], 3, string.rep('x', 524288)); redis.call('ZADD', KEYS[1], 4, 'short')" 1 bad:2020-03-07 > /dev/null
SELECT length(member), score FROM bad_ft WHERE key = 'bad:2020-03-07' ORDER BY score;
-- (one partition of one-member chunks, so that the order of the writes is
-- known: "short" sorts first and commits, then the long member fails)
SELECT redis_sync.alter_job('bad', partitions => 1, chunk_size => 1);
SELECT * FROM pg_temp.sync_error('bad', '2020-03-07');
SELECT redis_sync.alter_job('bad', partitions => 2, chunk_size => 10, workers => 1);
SELECT length(name), click_count FROM bad.daily WHERE click_date = '2020-03-07' ORDER BY click_count;
SELECT length(name), click_count FROM bad.member ORDER BY click_count;

-- scores that do not fit the column: infinities, beyond bigint, beyond int
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd bad:inf 1 fine +inf up -inf down > /dev/null
SELECT * FROM bad_ft WHERE key = 'bad:inf' AND member = 'fine';
SELECT * FROM bad_ft WHERE key = 'bad:inf';
SELECT * FROM bad_ft WHERE key = 'bad:inf' AND member = 'down';
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd bad:2020-03-08 1 a 2 b 3 c 1e19 huge > /dev/null
SELECT * FROM pg_temp.sync_error('bad', '2020-03-08');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd bad:2020-03-09 1 a 3000000000 big-for-int > /dev/null
SELECT * FROM pg_temp.sync_error('bad_small', '2020-03-09');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd bad:2020-03-10 1 a +inf endless > /dev/null
SELECT * FROM pg_temp.sync_error('bad', '2020-03-10');
\set VERBOSITY terse
SELECT run_date, status, error_sqlstate, error_partition IS NOT NULL AS has_partition, error
  FROM redis_sync.run r JOIN redis_sync.job j USING (job_id)
 WHERE j.job_name LIKE 'bad%' AND status = 'failed' AND run_date >= '2020-03-08' ORDER BY run_id;
\set VERBOSITY default
-- the failing chunks wrote nothing: only rows from chunks before the bad member
-- (one worker: the partitions are read in order, so the first is complete)
SELECT click_date, count(*) FROM bad.daily WHERE click_date >= '2020-03-08' GROUP BY 1 ORDER BY 1;

-- a foreign server dropped under a live job
CREATE SERVER doomed FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER doomed;
SELECT redis_sync.create_job('doomed', 'doomed', 'bad:%Y-%m-%d', NULL, NULL, 'bad.daily') > 0 AS created;
DROP SERVER doomed CASCADE;
SELECT * FROM pg_temp.sync_error('doomed', '2020-03-07');
SELECT redis_sync.drop_job('doomed');

-- a target table dropped under a live job
CREATE TABLE bad.gone (name text, click_date date, click_count bigint, PRIMARY KEY (name, click_date));
SELECT redis_sync.create_job('gone', 'bad_redis', 'bad:%Y-%m-%d', NULL, NULL, 'bad.gone') > 0 AS created;
DROP TABLE bad.gone;
SELECT * FROM pg_temp.sync_error('gone', '2020-03-07');
SELECT redis_sync.drop_job('gone');

-- the server still serves
SELECT count(*) FROM bad_ft WHERE key = 'bad:2020-03-07';
SELECT redis_sync.drop_job('bad'), redis_sync.drop_job('bad_small');
RESET search_path;
DROP SCHEMA bad CASCADE;

SET client_min_messages = warning;
DROP SERVER bad_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'bad:*' > /dev/null
