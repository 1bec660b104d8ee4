--
-- redis_sync.worker_wal_compression: how sync workers compress the
-- full-page images in the WAL they write
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER wal_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER wal_redis;
-- this file's keys start with "wal:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'wal:*' > /dev/null
-- (the library defines it when loaded; this suite does not preload it)
LOAD 'redis_sync';
SHOW redis_sync.worker_wal_compression;
SET redis_sync.worker_wal_compression = 'gzip';
-- superuser-only, like wal_compression itself
CREATE ROLE rs_settings_user;
SET ROLE rs_settings_user;
SET redis_sync.worker_wal_compression = off;
RESET ROLE;
DROP ROLE rs_settings_user;

-- Workers take it from the server's or the database's settings.  A re-sync
-- that changes every count after a checkpoint dirties every page of a wide
-- table (fillfactor 50, so the updates stay on their pages), and so writes a
-- full-page image of each; lz4 makes that WAL less than half as large (1.9 MB down
-- to 0.55 MB when this test was written).
CREATE TABLE wal_member (name text PRIMARY KEY, click_count bigint NOT NULL);
CREATE TABLE wal_daily (name text NOT NULL, click_date date NOT NULL, click_count bigint NOT NULL,
                        note text NOT NULL DEFAULT repeat('redis_sync ', 40),
                        PRIMARY KEY (name, click_date)) WITH (fillfactor = 50);
SELECT redis_sync.create_job('wal_job', 'wal_redis', 'wal:daily:%Y-%m-%d', 'wal:total',
                             'wal_member', 'wal_daily', workers => 2) > 0 AS created;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,3000 do redis.call('ZADD', KEYS[1], i, 'member' .. i); redis.call('ZADD', KEYS[2], i, 'member' .. i) end" 2 wal:daily:2020-03-01 wal:total > /dev/null
SELECT status, rows_written FROM redis_sync.sync_run('wal_job', '2020-03-01');

SELECT current_database() AS regress_db \gset
ALTER DATABASE :"regress_db" SET redis_sync.worker_wal_compression = off;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,3000 do redis.call('ZINCRBY', KEYS[1], 1, 'member' .. i) end" 1 wal:daily:2020-03-01 > /dev/null
CHECKPOINT;
SELECT pg_current_wal_lsn() AS lsn \gset
SELECT status, rows_written FROM redis_sync.sync_run('wal_job', '2020-03-01');
SELECT pg_current_wal_lsn() - :'lsn' AS wal_off \gset

ALTER DATABASE :"regress_db" SET redis_sync.worker_wal_compression = lz4;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,3000 do redis.call('ZINCRBY', KEYS[1], 1, 'member' .. i) end" 1 wal:daily:2020-03-01 > /dev/null
CHECKPOINT;
SELECT pg_current_wal_lsn() AS lsn \gset
SELECT status, rows_written FROM redis_sync.sync_run('wal_job', '2020-03-01');
SELECT pg_current_wal_lsn() - :'lsn' AS wal_lz4 \gset

SELECT :wal_off > 1000000 AS full_page_images, :wal_lz4 < :wal_off / 2 AS compressed;
SELECT count(*), sum(click_count) FROM wal_daily;

ALTER DATABASE :"regress_db" RESET redis_sync.worker_wal_compression;
SELECT redis_sync.drop_job('wal_job');
DROP TABLE wal_daily, wal_member;

SET client_min_messages = warning;
DROP SERVER wal_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'wal:*' > /dev/null
