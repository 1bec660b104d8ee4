--
-- create_job, alter_job, drop_job and their validation
--
\set SHOW_CONTEXT never
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER jobs_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER jobs_redis;
CREATE ROLE rs_jobs_other LOGIN;
-- (a job owned by the role that runs this file shows "(current user)" as
-- its owner, whatever that role's name)
CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL DEFAULT 0);
CREATE TABLE daily_click_count (
    name text NOT NULL REFERENCES member,
    click_date date NOT NULL,
    click_count bigint NOT NULL,
    PRIMARY KEY (name, click_date));

SELECT redis_sync.create_job(
    job_name     => 'daily_clicks',
    server_name  => 'jobs_redis',
    daily_key    => 'clicks:daily:%Y-%m-%d',
    total_key    => 'clicks:total',
    member_table => 'member',
    daily_table  => 'daily_click_count',
    partitions   => 7,
    workers      => 3,
    chunk_size   => 100,
    schedule     => '5 0 * * *',
    day_offset   => -1) > 0 AS created;
SELECT job_name, CASE WHEN owner = current_user::regrole THEN '(current user)' ELSE owner::text END AS owner, server_name, daily_key, total_key, member_table, daily_table,
       partitions, workers, chunk_size, schedule, day_offset, enabled
  FROM redis_sync.job;
SELECT redis_sync.create_job('daily_clicks', 'jobs_redis', 'x');

-- defaults: member and daily_click_count, 10 partitions, 4 workers, chunks of 1000
SELECT redis_sync.create_job('defaults', 'jobs_redis', 'k:%Y%m%d', 'clicks:total') > 0 AS created;
SELECT partitions, workers, chunk_size, schedule, day_offset, member_table, daily_table
  FROM redis_sync.job WHERE job_name = 'defaults';
SELECT redis_sync.drop_job('defaults');

-- key templates
SELECT redis_sync.format_key('clicks:daily:%Y-%m-%d', '2026-02-03');
SELECT redis_sync.format_key('100%%:%Y', '2026-02-03');
SELECT redis_sync.format_key('bad:%q', '2026-02-03');
SELECT redis_sync.format_key('bad:%', '2026-02-03');
SELECT redis_sync.create_job('j', 'jobs_redis', 'clicks:%H');
SELECT redis_sync.create_job('j', 'jobs_redis', '');

-- servers
SELECT redis_sync.create_job('j', 'no_such_server', 'k');
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other_srv FOREIGN DATA WRAPPER other_fdw;
SELECT redis_sync.create_job('j', 'other_srv', 'k');

-- numbers
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', partitions => 0);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', workers => 65);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', workers => -1);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', chunk_size => 0);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', chunk_size => NULL);

-- schedules
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', schedule => '61 * * * *');
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', schedule => 'every day');
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', schedule => '@fortnightly');

-- target tables
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', daily_table => 'no_such_table');
CREATE TABLE no_unique (name text, click_date date, click_count bigint);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', daily_table => 'no_unique');
CREATE TABLE wrong_types (name text, click_date text, click_count bigint, UNIQUE (name, click_date));
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', daily_table => 'wrong_types');
CREATE TABLE no_count (name text PRIMARY KEY);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', 'clicks:total', member_table => 'no_count');
CREATE TABLE text_count (name text PRIMARY KEY, click_count text);
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', 'clicks:total', member_table => 'text_count');
CREATE TABLE partial_unique (name text, click_count bigint);
CREATE UNIQUE INDEX ON partial_unique (name) WHERE click_count > 0;
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', 'clicks:total', member_table => 'partial_unique');
CREATE VIEW member_view AS SELECT * FROM member;
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', 'clicks:total', member_table => 'member_view');
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', total_key => '');
-- a varchar name column and an int count are fine
CREATE TABLE "Odd ""Daily""" (name varchar(100), click_date date, click_count int, UNIQUE (click_date, name));
SELECT redis_sync.create_job('odd', 'jobs_redis', 'k:%Y', daily_table => '"Odd ""Daily"""') > 0 AS created;
SELECT redis_sync.drop_job('odd');

-- alter_job: NULL keeps a value, '' removes a schedule
SELECT redis_sync.alter_job('daily_clicks', schedule => '*/10 * * * *', day_offset => 0);
SELECT schedule, day_offset, workers, enabled FROM redis_sync.job WHERE job_name = 'daily_clicks';
SELECT redis_sync.alter_job('daily_clicks', enabled => false, workers => 2);
SELECT schedule, day_offset, workers, enabled FROM redis_sync.job WHERE job_name = 'daily_clicks';
SELECT redis_sync.alter_job('daily_clicks', schedule => '');
SELECT schedule FROM redis_sync.job WHERE job_name = 'daily_clicks';
SELECT redis_sync.alter_job('daily_clicks', schedule => 'bad');
SELECT redis_sync.alter_job('daily_clicks', workers => 0);
SELECT redis_sync.alter_job('no_such_job', workers => 1);
SELECT redis_sync.alter_job('daily_clicks', schedule => '5 0 * * *', workers => 3, enabled => true);
SELECT redis_sync.drop_job('no_such_job');
-- a schedule is stored normalized: 300 spaces and tabs do not make it long
SELECT redis_sync.alter_job('daily_clicks', schedule => E'\t*' || repeat(' ', 300) || E'*\t* *  * ');
SELECT schedule, length(schedule) FROM redis_sync.job WHERE job_name = 'daily_clicks';
SELECT redis_sync.alter_job('daily_clicks', schedule => '5 0 * * *');

-- jobs belong to their owner: other roles neither see nor change them, and
-- the catalog is read-only to everyone (changes go through the functions)
GRANT SELECT, INSERT, UPDATE ON member, daily_click_count TO rs_jobs_other;
SET ROLE rs_jobs_other;
-- no USAGE on the server: no job on it
SELECT redis_sync.create_job('others_job', 'jobs_redis', 'other:%Y-%m-%d');
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER jobs_redis TO rs_jobs_other;
SET ROLE rs_jobs_other;
SELECT count(*) FROM redis_sync.job;
SELECT redis_sync.alter_job('daily_clicks', workers => 1);
SELECT redis_sync.drop_job('daily_clicks');
SELECT * FROM redis_sync.sync_run('daily_clicks', '2020-01-21');
UPDATE redis_sync.job SET workers = 1;
INSERT INTO redis_sync.job (job_name, owner, server_name, daily_key, daily_table)
VALUES ('stolen', session_user::regrole, 'jobs_redis', 'k', 'daily_click_count');
DELETE FROM redis_sync.run;
UPDATE redis_sync.run_partition SET next_offset = 0;
SELECT redis_sync.create_job('daily_clicks', 'jobs_redis', 'k');
SELECT redis_sync.create_job('others_job', 'jobs_redis', 'other:%Y-%m-%d') > 0 AS created;
SELECT job_name, owner FROM redis_sync.job;
RESET ROLE;
SELECT job_name, CASE WHEN owner = current_user::regrole THEN '(current user)' ELSE owner::text END AS owner
  FROM redis_sync.job ORDER BY job_id;
SELECT redis_sync.drop_job('others_job');
-- a role without privileges on a table cannot make it a target
CREATE TABLE private_daily (name text, click_date date, click_count bigint, PRIMARY KEY (name, click_date));
SET ROLE rs_jobs_other;
SELECT redis_sync.create_job('j', 'jobs_redis', 'k', daily_table => 'private_daily');
RESET ROLE;

-- sharded jobs: daily_key has %s, the shard number; total_key may have it
SELECT redis_sync.create_job('sharded', 'jobs_redis', 'c:{%s}:%Y-%m-%d', 'c:total:{%s}',
                             shards => 16) > 0 AS created;
SELECT shards, daily_key, total_key FROM redis_sync.job WHERE job_name = 'sharded';
SELECT redis_sync.create_job('one_total', 'jobs_redis', 'c:%s:%Y', 'c:total', shards => 2) > 0 AS created;
SELECT redis_sync.drop_job('one_total');
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%Y-%m-%d', shards => 4);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%%s:%Y', shards => 4);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s:%q', shards => 4);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s', 't:%s:%Y', shards => 4);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s', shards => 0);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s', shards => 1025);
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s', shards => NULL);
-- with one shard, %s is no escape, as before shards existed
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s:%Y');
SELECT redis_sync.create_job('j', 'jobs_redis', 'c:%s:%Y', shards => 1);
-- alter_job: shards and templates are checked together
SELECT redis_sync.alter_job('sharded', shards => 1);
SELECT redis_sync.alter_job('sharded', shards => -1);
SELECT redis_sync.alter_job('sharded', shards => 4);
SELECT redis_sync.alter_job('daily_clicks', shards => 4);
SELECT redis_sync.alter_job('daily_clicks', daily_key => 'clicks:{%s}:%Y-%m-%d', shards => 4);
SELECT job_name, shards, daily_key FROM redis_sync.job ORDER BY job_id;
SELECT redis_sync.alter_job('daily_clicks', daily_key => 'clicks:daily:%Y-%m-%d', shards => 1);
SELECT redis_sync.drop_job('sharded');

SELECT redis_sync.drop_job('daily_clicks');
SET client_min_messages = warning;
DROP TABLE daily_click_count, member, no_unique, wrong_types, no_count, text_count,
           partial_unique, "Odd ""Daily""", private_daily CASCADE;
DROP SERVER jobs_redis, other_srv CASCADE;
DROP FOREIGN DATA WRAPPER other_fdw;
DROP OWNED BY rs_jobs_other;
DROP ROLE rs_jobs_other;
RESET client_min_messages;
