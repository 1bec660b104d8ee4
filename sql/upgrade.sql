--
-- Updating a 0.1 database that holds jobs and runs to 0.2: the jobs, runs
-- and partitions are kept, the catalog becomes read-only to roles, and an
-- unfinished 0.1 run resumes under 0.2 to the exact result.
--
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS rs_upgrade;
RESET client_min_messages;
CREATE DATABASE rs_upgrade;
\c rs_upgrade
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION redis_sync VERSION '0.1';
RESET client_min_messages;
CREATE SERVER up_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER up_redis;
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE daily_click_count (name text NOT NULL, click_date date NOT NULL,
  click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
-- this file's keys start with "up:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'up:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,40 do redis.call('ZADD', KEYS[1], i, 'up' .. i); redis.call('ZADD', KEYS[2], i * 10, 'up' .. i) end" 2 up:daily:2020-02-02 up:total > /dev/null

-- jobs made by 0.1's functions
SELECT redis_sync.create_job('up_job', 'up_redis', 'up:daily:%Y-%m-%d', 'up:total',
                             partitions => 2, workers => 1, chunk_size => 10,
                             schedule => '5 0 * * *') AS up_job \gset
SELECT redis_sync.create_job('up_other', 'up_redis', 'up:other:%Y-%m-%d') AS up_other \gset

-- what a 0.1 engine leaves behind: a succeeded run, and a failed run whose
-- first partition is committed and whose second stopped at rank 30
INSERT INTO redis_sync.run (job_id, run_date, status, members, rows_written, finished_at,
                            trigger, source_key, read_key)
VALUES (:up_job, '2020-02-01', 'succeeded', 0, 0, now(), 'schedule', 'up:daily:2020-02-01', 'up:daily:2020-02-01');
INSERT INTO redis_sync.run (job_id, run_date, status, members, rows_written, finished_at,
                            trigger, source_key, read_key)
VALUES (:up_job, '2020-02-02', 'failed', 40, 50, now(), 'manual', 'up:daily:2020-02-02', 'up:daily:2020-02-02')
RETURNING run_id AS failed_run \gset
INSERT INTO redis_sync.run_partition (run_id, partition_no, start_offset, end_offset, next_offset,
                                      status, attempts, rows_written)
VALUES (:failed_run, 0, 0, 19, 20, 'succeeded', 1, 40),
       (:failed_run, 1, 20, 39, 30, 'failed', 1, 10);
INSERT INTO member SELECT 'up' || i, i * 10 FROM generate_series(1, 30) i;
INSERT INTO daily_click_count SELECT 'up' || i, '2020-02-02', i FROM generate_series(1, 30) i;

ALTER EXTENSION redis_sync UPDATE TO '0.2';
SELECT extversion FROM pg_extension WHERE extname = 'redis_sync';

-- the jobs, with the new settings at their defaults
SELECT job_name, schedule, partitions, max_rejects, max_retries, retry_delay,
       last_scheduled_at IS NOT NULL AS scheduled_before, disabled_reason
  FROM redis_sync.job ORDER BY job_id;
SELECT run_date, status, members, rows_written, rejected, attempts FROM redis_sync.run ORDER BY run_id;
SELECT run_id = :failed_run AS of_failed_run, partition_no, next_offset, status, members_read
  FROM redis_sync.run_partition ORDER BY run_id, partition_no;
SELECT * FROM redis_sync.rejected;

-- the catalog is read-only to roles; the views run as the caller
CREATE ROLE rs_up_user;
SELECT t, has_table_privilege('rs_up_user', 'redis_sync.' || t, 'SELECT') AS sel,
       has_table_privilege('rs_up_user', 'redis_sync.' || t, 'INSERT, UPDATE, DELETE') AS write
  FROM unnest(ARRAY['job', 'run', 'run_partition', 'rejected']) t;
SELECT relname, reloptions FROM pg_class
 WHERE relnamespace = 'redis_sync'::regnamespace AND relkind = 'v' ORDER BY relname;
SET ROLE rs_up_user;
SELECT count(*) FROM redis_sync.history;
UPDATE redis_sync.run SET read_key = 'other:tenant:data';
RESET ROLE;

-- the 0.2 functions
SELECT redis_sync.alter_job('up_other', max_rejects => 5, retry_delay => '10 seconds');
SELECT max_rejects, retry_delay FROM redis_sync.job WHERE job_name = 'up_other';
SELECT redis_sync.drop_job('up_other');

-- the failed 0.1 run resumes where its partitions stopped, to the exact result
SELECT run_id = :failed_run AS same_run, status, members FROM redis_sync.sync_run('up_job', '2020-02-02');
SELECT status, trigger, attempts FROM redis_sync.run WHERE run_id = :failed_run;
SELECT count(*) AS rows, sum(click_count) AS clicks FROM daily_click_count WHERE click_date = '2020-02-02';
SELECT count(*) AS rows, sum(click_count) AS clicks FROM member;

\c :regress_db
DROP DATABASE rs_upgrade;
DROP ROLE rs_up_user;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'up:*' > /dev/null
