--
-- sync_run: results checked against Redis, re-runs, resume, errors
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER sync_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER sync_redis;
-- this file's keys start with "sync:" (and the engine's snapshots with "redis_sync:snapshot:")
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'sync:*' > /dev/null
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL DEFAULT 0);
CREATE TABLE daily_click_count (
    name text NOT NULL REFERENCES member,
    click_date date NOT NULL,
    click_count bigint NOT NULL,
    PRIMARY KEY (name, click_date));
SELECT redis_sync.create_job('daily_clicks', 'sync_redis', 'sync:daily:%Y-%m-%d', 'sync:total',
                             partitions => 7, workers => 3, chunk_size => 100, day_offset => 0) AS job \gset

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

-- 2,500 members on 2020-01-21; totals for all but the last 100, plus others
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], (i * 7) % 101, 'user' .. i) end" 1 sync:daily:2020-01-21 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2400 do redis.call('ZADD', KEYS[1], i * 3, 'user' .. i) end; for i=1,50 do redis.call('ZADD', KEYS[1], 1, 'other' .. i) end" 1 sync:total > /dev/null
CREATE FOREIGN TABLE day21 (member text, score bigint, rank bigint) SERVER sync_redis OPTIONS (key 'sync:daily:2020-01-21');
CREATE FOREIGN TABLE totals (member text, score bigint) SERVER sync_redis OPTIONS (key 'sync:total');

-- 7 partitions, 3 workers, chunks of 100
SELECT status, members, rows_written, seconds > 0 AS timed
  FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT run_id AS first_run FROM redis_sync.run WHERE job_id = :job \gset
SELECT partition_no, start_offset, end_offset, next_offset, status, attempts
  FROM redis_sync.run_partition WHERE run_id = :first_run ORDER BY partition_no;
SELECT status, members, rows_written, missing_total, trigger, source_key, read_key, error
  FROM redis_sync.run WHERE job_id = :job;
-- the daily table equals the day's set exactly
SELECT count(*) AS mismatches FROM day21 d
  FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '2020-01-21') c ON c.name = d.member
 WHERE c.click_count IS DISTINCT FROM d.score;
-- each member's total, or 0 for members missing from the total key
SELECT count(*) AS mismatches FROM day21 d
  LEFT JOIN totals t ON t.member = d.member
  FULL JOIN member m ON m.name = d.member
 WHERE m.click_count IS DISTINCT FROM coalesce(t.score, 0);
SELECT count(*), sum(click_count) FROM member;

-- a second run of the same day rewrites no rows
CREATE TEMP TABLE before AS SELECT name, click_date, xmin::text AS x FROM daily_click_count;
CREATE TEMP TABLE before_m AS SELECT name, xmin::text AS x FROM member;
SELECT run_id > :first_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT count(*) AS rewritten FROM daily_click_count d JOIN before b USING (name, click_date) WHERE d.xmin::text <> b.x;
SELECT count(*) AS rewritten FROM member m JOIN before_m b USING (name) WHERE m.xmin::text <> b.x;

-- a changed count is written, and only it
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby sync:daily:2020-01-21 5 user10 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby sync:total 5 user10 > /dev/null
SELECT run_id > :first_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT m.click_count, d.click_count FROM member m JOIN daily_click_count d USING (name)
 WHERE name = 'user10';

-- every count changed: the chunks after the first try a plain INSERT, meet
-- the existing rows, and fall back to the upsert; the result is exact
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZINCRBY', KEYS[1], 1, 'user' .. i) end" 1 sync:daily:2020-01-21 > /dev/null
SELECT run_id > :first_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT count(*) AS mismatches FROM day21 d
  FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '2020-01-21') c ON c.name = d.member
 WHERE c.click_count IS DISTINCT FROM d.score;

-- a day without a key is an empty, successful run
SELECT run_id > :first_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-19');

-- a missing total key: new members get 0, existing members keep their count
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sync:daily:2020-01-20 4 user1 6 newbie > /dev/null
SELECT redis_sync.alter_job('daily_clicks', total_key => 'sync:none');
SELECT run_id > :first_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-20');
SELECT name, click_count FROM member WHERE name IN ('user1', 'newbie') ORDER BY name;
SELECT missing_total FROM redis_sync.run WHERE job_id = :job AND run_date = '2020-01-20';
SELECT redis_sync.alter_job('daily_clicks', total_key => 'sync:total');

-- the job's lock is no advisory lock: no role can take it (a run that is
-- already running is refused at once: test/t/007_run_truth.pl)
SELECT pg_advisory_lock(1381190210, 1);
SELECT run_id > :first_run AS new_run, status FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT pg_advisory_unlock(1381190210, 1);

-- a failed partition: earlier chunks stay, the error names the member and rank,
-- and the next sync_run resumes the same run
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,1000 do redis.call('ZADD', KEYS[1], i, 'm' .. i) end" 1 sync:daily:2020-01-17 > /dev/null
ALTER TABLE daily_click_count ADD CONSTRAINT no_777 CHECK (click_count <> 777);
-- one worker takes the partitions in order, so the state at the failure is known
SELECT redis_sync.alter_job('daily_clicks', workers => 1);
SELECT * FROM pg_temp.sync_error('daily_clicks', '2020-01-17');
\set VERBOSITY terse
SELECT run_id AS failed_run FROM redis_sync.run WHERE job_id = :job AND run_date = '2020-01-17' \gset
SELECT status, members, error_partition, error FROM redis_sync.run WHERE run_id = :failed_run;
SELECT partition_no, start_offset, next_offset, end_offset, status FROM redis_sync.run_partition
 WHERE run_id = :failed_run ORDER BY 1;
SELECT count(*) FROM daily_click_count WHERE click_date = '2020-01-17' AND click_count BETWEEN 701 AND 800;
ALTER TABLE daily_click_count DROP CONSTRAINT no_777;
SELECT redis_sync.alter_job('daily_clicks', workers => 3);
SELECT run_id = :failed_run AS same_run, status, members FROM redis_sync.sync_run('daily_clicks', '2020-01-17');
SELECT run_id = :failed_run AS same_run, status, trigger FROM redis_sync.run WHERE job_id = :job AND run_date = '2020-01-17';
SELECT count(*), sum(click_count) FROM daily_click_count WHERE click_date = '2020-01-17';
-- resume => false starts a new run instead
SELECT run_id > :failed_run AS new_run, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-17', resume => false);

-- a past day's key that lost members before a resume: its partitions no
-- longer fit the key, so a new run reads it (and the failed one is superseded
-- when that run succeeds); a key that shrinks during a run fails it (007)
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,1000 do redis.call('ZADD', KEYS[1], i, 'm' .. i) end" 1 sync:daily:2020-01-18 > /dev/null
ALTER TABLE daily_click_count ADD CONSTRAINT no_555 CHECK (click_count <> 555) NOT VALID;
SELECT redis_sync.alter_job('daily_clicks', workers => 1);
SELECT status FROM redis_sync.sync_run('daily_clicks', '2020-01-18');
ALTER TABLE daily_click_count DROP CONSTRAINT no_555;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zremrangebyrank sync:daily:2020-01-18 300 -1 > /dev/null
SELECT redis_sync.alter_job('daily_clicks', workers => 3);
SELECT status, members FROM redis_sync.sync_run('daily_clicks', '2020-01-18');
SELECT count(*) AS partitions, count(*) FILTER (WHERE status = 'succeeded') AS succeeded
  FROM redis_sync.run_partition WHERE run_id = (SELECT max(run_id) FROM redis_sync.run WHERE job_id = :job);
SELECT count(*), min(click_count), max(click_count) FROM daily_click_count WHERE click_date = '2020-01-18';

-- bad data in Redis
\set VERBOSITY default
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set sync:daily:2020-01-16 oops > /dev/null
SELECT * FROM pg_temp.sync_error('daily_clicks', '2020-01-16');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "redis.call('ZADD', KEYS[1], 1, 'fine', 2, 'bad\255name')" 1 sync:daily:2020-01-15 > /dev/null
SELECT * FROM pg_temp.sync_error('daily_clicks', '2020-01-15');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd sync:daily:2020-01-14 1.5 fractional > /dev/null
SELECT * FROM pg_temp.sync_error('daily_clicks', '2020-01-14');
\set VERBOSITY terse
SELECT run_date, status, error_sqlstate, error FROM redis_sync.run WHERE job_id = :job AND status = 'failed' ORDER BY run_id;

-- a target table that lost its unique key since the job was created
ALTER TABLE daily_click_count DROP CONSTRAINT daily_click_count_pkey;
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-21', resume => false);
ALTER TABLE daily_click_count ADD PRIMARY KEY (name, click_date);

-- a trigger on a target table that reads a foreign table through the job's
-- server and user mapping shares the worker's connection: a worker writes a
-- segment read whole, with no reply in flight, so the trigger reads safely
-- (a worker reading ahead in rank order would refuse with a "busy" error)
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2000 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end" 1 sync:daily:2020-01-13 > /dev/null
CREATE FUNCTION peek_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM count(*) FROM public.totals; RETURN NEW; END $$;
CREATE TRIGGER peek_totals BEFORE INSERT ON daily_click_count
  FOR EACH ROW EXECUTE FUNCTION peek_totals();
SELECT status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-13');
SELECT count(*), sum(click_count) FROM daily_click_count WHERE click_date = '2020-01-13';
DROP TRIGGER peek_totals ON daily_click_count;
DROP FUNCTION peek_totals();
SELECT status, members FROM redis_sync.sync_run('daily_clicks', '2020-01-13');

-- today's key is read from a snapshot, which is dropped when the run succeeds
-- ("today" in redis_sync.timezone, which the run's workers take from the
-- database's settings; the session's current_date must agree)
SELECT current_database() AS regress_db \gset
ALTER DATABASE :"regress_db" SET redis_sync.timezone = 'UTC';
SET timezone = 'UTC';
SELECT redis_sync.format_key('sync:daily:%Y-%m-%d', current_date) AS today_key \gset
\setenv TODAY_KEY :today_key
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd $TODAY_KEY 1 today1 2 today2 > /dev/null
SELECT status, members FROM redis_sync.sync_run('daily_clicks');
SELECT read_key LIKE 'redis_sync:snapshot:%' AS snapshot FROM redis_sync.run WHERE job_id = :job ORDER BY run_id DESC LIMIT 1;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT --raw keys 'redis_sync:*'
RESET timezone;
ALTER DATABASE :"regress_db" RESET redis_sync.timezone;

-- views
SELECT * FROM redis_sync.progress;
SELECT job_name, run_date, status, trigger FROM redis_sync.history
 WHERE job_name = 'daily_clicks' AND run_date = '2020-01-21' ORDER BY run_id;

-- purge_runs: its argument; recent runs are never purged
SELECT redis_sync.purge_runs(NULL);
SELECT redis_sync.purge_runs('-1 day');
SELECT redis_sync.purge_runs('100 years');

SELECT redis_sync.drop_job('daily_clicks');
SET client_min_messages = warning;
DROP TABLE daily_click_count, member;
DROP SERVER sync_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'sync:*' > /dev/null
