--
-- sync_run: results checked against Redis, re-runs, resume, errors
--
-- 2,500 members on 2020-01-21; totals for all but the last 100, plus others
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZADD', KEYS[1], (i * 7) % 101, 'user' .. i) end" 1 clicks:daily:2020-01-21 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2400 do redis.call('ZADD', KEYS[1], i * 3, 'user' .. i) end; for i=1,50 do redis.call('ZADD', KEYS[1], 1, 'other' .. i) end" 1 clicks:total > /dev/null
CREATE FOREIGN TABLE day21 (member text, score bigint, rank bigint) SERVER redis OPTIONS (key 'clicks:daily:2020-01-21');
CREATE FOREIGN TABLE totals (member text, score bigint) SERVER redis OPTIONS (key 'clicks:total');

-- 7 partitions, 3 workers, chunks of 100
SELECT run_id, status, members, rows_written, seconds > 0 AS timed
  FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT partition_no, start_offset, end_offset, next_offset, status, attempts
  FROM redis_sync.run_partition WHERE run_id = 1 ORDER BY partition_no;
SELECT run_id, status, members, rows_written, missing_total, trigger, source_key, read_key, error
  FROM redis_sync.run;
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
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT count(*) AS rewritten FROM daily_click_count d JOIN before b USING (name, click_date) WHERE d.xmin::text <> b.x;
SELECT count(*) AS rewritten FROM member m JOIN before_m b USING (name) WHERE m.xmin::text <> b.x;

-- a changed count is written, and only it
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby clicks:daily:2020-01-21 5 user10 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby clicks:total 5 user10 > /dev/null
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT m.click_count, d.click_count FROM member m JOIN daily_click_count d USING (name)
 WHERE name = 'user10';

-- every count changed: the chunks after the first try a plain INSERT, meet
-- the existing rows, and fall back to the upsert; the result is exact
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2500 do redis.call('ZINCRBY', KEYS[1], 1, 'user' .. i) end" 1 clicks:daily:2020-01-21 > /dev/null
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT count(*) AS mismatches FROM day21 d
  FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '2020-01-21') c ON c.name = d.member
 WHERE c.click_count IS DISTINCT FROM d.score;

-- a day without a key is an empty, successful run
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-19');

-- a missing total key: new members get 0, existing members keep their count
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd clicks:daily:2020-01-20 4 user1 6 newbie > /dev/null
SELECT redis_sync.alter_job('daily_clicks', total_key => 'clicks:none');
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-20');
SELECT name, click_count FROM member WHERE name IN ('user1', 'newbie') ORDER BY name;
SELECT missing_total FROM redis_sync.run WHERE run_date = '2020-01-20';
SELECT redis_sync.alter_job('daily_clicks', total_key => 'clicks:total');

-- the job's lock is no advisory lock: no role can take it (a run that is
-- already running is refused at once: test/t/007_run_truth.pl)
SELECT pg_advisory_lock(1381190210, 1);
SELECT run_id, status FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
SELECT pg_advisory_unlock(1381190210, 1);

-- a failed partition: earlier chunks stay, the error names the member and rank,
-- and the next sync_run resumes the same run
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,1000 do redis.call('ZADD', KEYS[1], i, 'm' .. i) end" 1 clicks:daily:2020-01-17 > /dev/null
ALTER TABLE daily_click_count ADD CONSTRAINT no_777 CHECK (click_count <> 777);
-- one worker takes the partitions in order, so the state at the failure is known
SELECT redis_sync.alter_job('daily_clicks', workers => 1);
\set VERBOSITY default
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-17');
\set VERBOSITY terse
SELECT run_id, status, members, error_partition, error FROM redis_sync.run WHERE run_date = '2020-01-17';
SELECT partition_no, start_offset, next_offset, end_offset, status FROM redis_sync.run_partition
 WHERE run_id = (SELECT run_id FROM redis_sync.run WHERE run_date = '2020-01-17') ORDER BY 1;
SELECT count(*) FROM daily_click_count WHERE click_date = '2020-01-17' AND click_count BETWEEN 701 AND 800;
ALTER TABLE daily_click_count DROP CONSTRAINT no_777;
SELECT redis_sync.alter_job('daily_clicks', workers => 3);
SELECT run_id, status, members FROM redis_sync.sync_run('daily_clicks', '2020-01-17');
SELECT run_id, status, trigger FROM redis_sync.run WHERE run_date = '2020-01-17';
SELECT count(*), sum(click_count) FROM daily_click_count WHERE click_date = '2020-01-17';
-- resume => false starts a new run instead
SELECT run_id, status, members, rows_written FROM redis_sync.sync_run('daily_clicks', '2020-01-17', resume => false);

-- a past day's key that lost members before a resume: its partitions no
-- longer fit the key, so a new run reads it (and the failed one is superseded
-- when that run succeeds); a key that shrinks during a run fails it (007)
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,1000 do redis.call('ZADD', KEYS[1], i, 'm' .. i) end" 1 clicks:daily:2020-01-18 > /dev/null
ALTER TABLE daily_click_count ADD CONSTRAINT no_555 CHECK (click_count <> 555) NOT VALID;
SELECT redis_sync.alter_job('daily_clicks', workers => 1);
SELECT status FROM redis_sync.sync_run('daily_clicks', '2020-01-18');
ALTER TABLE daily_click_count DROP CONSTRAINT no_555;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zremrangebyrank clicks:daily:2020-01-18 300 -1 > /dev/null
SELECT redis_sync.alter_job('daily_clicks', workers => 3);
SELECT status, members FROM redis_sync.sync_run('daily_clicks', '2020-01-18');
SELECT count(*) AS partitions, count(*) FILTER (WHERE status = 'succeeded') AS succeeded
  FROM redis_sync.run_partition WHERE run_id = (SELECT max(run_id) FROM redis_sync.run);
SELECT count(*), min(click_count), max(click_count) FROM daily_click_count WHERE click_date = '2020-01-18';

-- bad data in Redis
\set VERBOSITY default
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set clicks:daily:2020-01-16 oops > /dev/null
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-16');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "redis.call('ZADD', KEYS[1], 1, 'fine', 2, 'bad\255name')" 1 clicks:daily:2020-01-15 > /dev/null
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-15');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd clicks:daily:2020-01-14 1.5 fractional > /dev/null
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-14');
\set VERBOSITY terse
SELECT run_date, status, error_sqlstate, error FROM redis_sync.run WHERE status = 'failed' ORDER BY run_id;

-- a target table that lost its unique key since the job was created
ALTER TABLE daily_click_count DROP CONSTRAINT daily_click_count_pkey;
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-21', resume => false);
ALTER TABLE daily_click_count ADD PRIMARY KEY (name, click_date);

-- a trigger on a target table that reads a foreign table through the job's
-- server and user mapping shares the worker's connection: a worker writes a
-- segment read whole, with no reply in flight, so the trigger reads safely
-- (a worker reading ahead in rank order would refuse with a "busy" error)
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,2000 do redis.call('ZADD', KEYS[1], i, 'user' .. i) end" 1 clicks:daily:2020-01-13 > /dev/null
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
-- ("today" in redis_sync.timezone, by default the server's TimeZone, which
-- make test sets to UTC; the session's current_date must agree)
SET timezone = 'UTC';
SELECT redis_sync.format_key('clicks:daily:%Y-%m-%d', current_date) AS today_key \gset
\setenv TODAY_KEY :today_key
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd $TODAY_KEY 1 today1 2 today2 > /dev/null
SELECT status, members FROM redis_sync.sync_run('daily_clicks');
SELECT read_key LIKE 'redis_sync:snapshot:%' AS snapshot FROM redis_sync.run ORDER BY run_id DESC LIMIT 1;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT --raw keys 'redis_sync:*'
RESET timezone;

-- views
SELECT * FROM redis_sync.progress;
SELECT job_name, run_date, status, trigger FROM redis_sync.history WHERE run_date = '2020-01-21' ORDER BY run_id;

-- purge_runs: its argument; recent runs are never purged
SELECT redis_sync.purge_runs(NULL);
SELECT redis_sync.purge_runs('-1 day');
SELECT redis_sync.purge_runs('100 years');

-- clean up the roles other tests created
DROP OWNED BY rs_other;
DROP ROLE rs_other;
