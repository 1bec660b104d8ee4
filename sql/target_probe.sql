--
-- Re-syncs find the rows that already hold their count by probing the target
-- tables' unique indexes directly (target_probe.c).  A probe must answer
-- exactly what SQL would, and tables it cannot probe fall back to SQL.
--
-- 600 members; a varchar name with a numeric count, and a daily table whose
-- unique key starts with the date
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER probe_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER probe_redis;
-- this file's keys start with "probe:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'probe:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,600 do redis.call('ZADD', KEYS[1], i % 37, 'p' .. i); redis.call('ZADD', KEYS[2], i * 2, 'p' .. i) end" 2 probe:daily:2020-04-01 probe:total > /dev/null
CREATE TABLE probe_member (name varchar(40) PRIMARY KEY, click_count numeric(12,2) NOT NULL);
CREATE TABLE probe_daily (click_date date NOT NULL, name text NOT NULL, click_count bigint NOT NULL,
                          CONSTRAINT probe_daily_key UNIQUE (click_date, name));
SELECT redis_sync.create_job('probe_job', 'probe_redis', 'probe:daily:%Y-%m-%d', 'probe:total',
                             'probe_member', 'probe_daily', partitions => 2, workers => 2,
                             chunk_size => 50) > 0 AS created;
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');

-- the statistics of the target indexes, once the run's workers have exited
-- (and so flushed them)
CREATE FUNCTION probe_stats() RETURNS TABLE (idx name, scans bigint, tuples bigint)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
                               WHERE backend_type IN ('redis_sync worker', 'redis_sync coordinator'));
        PERFORM pg_sleep(0.05);
    END LOOP;
    PERFORM pg_stat_clear_snapshot();
    RETURN QUERY SELECT indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes
                  WHERE relname IN ('probe_member', 'probe_daily');
END $$;
-- whether the last run probed an index directly: probes count one index scan
-- per chunk (12 chunks) and no tuples read; SQL counts none, or one per row,
-- or tuples read
CREATE TEMP TABLE stats AS SELECT * FROM probe_stats();
CREATE FUNCTION probed() RETURNS TABLE (idx name, probed boolean) LANGUAGE sql AS $$
    WITH n AS (SELECT * FROM probe_stats()),
         d AS (DELETE FROM stats RETURNING *),
         i AS (INSERT INTO stats SELECT * FROM n)
    SELECT n.idx, n.scans - d.scans BETWEEN 1 AND 24 AND n.tuples = d.tuples
      FROM n JOIN d USING (idx) ORDER BY 1 $$;
-- the counts in Redis and in the tables, side by side
CREATE FOREIGN TABLE probe_day (member text, score bigint) SERVER probe_redis OPTIONS (key 'probe:daily:2020-04-01');
CREATE FOREIGN TABLE probe_tot (member text, score bigint) SERVER probe_redis OPTIONS (key 'probe:total');
CREATE VIEW probe_mismatches AS
SELECT (SELECT count(*) FROM probe_day d
          FULL JOIN (SELECT * FROM probe_daily WHERE click_date = '2020-04-01') c ON c.name = d.member
         WHERE c.click_count IS DISTINCT FROM d.score) AS daily,
       (SELECT count(*) FROM probe_tot t JOIN probe_member m ON m.name = t.member
         WHERE m.click_count IS DISTINCT FROM t.score) AS member;
SELECT * FROM probe_mismatches;

-- an unchanged day: nothing is written or locked, and the probes count one
-- index scan per chunk and no tuples read (see probed above)
SELECT count(*) > 0 AS baseline FROM probed();
CREATE TEMP TABLE versions AS
SELECT 'm' AS t, name::text, xmin::text AS x, xmax::text AS xx FROM probe_member
UNION ALL SELECT 'd', name, xmin::text, xmax::text FROM probe_daily;
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
SELECT * FROM probed();
SELECT count(*) AS touched FROM versions v
  LEFT JOIN (SELECT 'm' AS t, name::text, xmin::text AS x, xmax::text AS xx FROM probe_member
             UNION ALL SELECT 'd', name, xmin::text, xmax::text FROM probe_daily) n USING (t, name)
 WHERE n.x IS DISTINCT FROM v.x OR n.xx IS DISTINCT FROM v.xx;

-- rows changed, deleted or added in the tables are found and put right,
-- and only they are written (numeric 4 and 4.00 are the same count)
UPDATE probe_member SET click_count = click_count + 0.5 WHERE name IN ('p1', 'p300');
UPDATE probe_member SET click_count = 1200.00 WHERE name = 'p600';
DELETE FROM probe_daily WHERE name = 'p7';
UPDATE probe_daily SET click_count = -1 WHERE name = 'p599';
INSERT INTO probe_daily VALUES ('2020-04-01', 'p0', 1);
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
-- (a row that is not in Redis stays: sync_run does not delete)
SELECT * FROM probe_daily WHERE name = 'p0';
DELETE FROM probe_daily WHERE name = 'p0';
SELECT * FROM probe_mismatches;

-- several versions of every key, some in posting lists: probes skip the dead
-- ones and find the live one
UPDATE probe_member SET click_count = click_count;
UPDATE probe_member SET click_count = click_count;
UPDATE probe_daily SET click_count = click_count;
UPDATE probe_daily SET click_count = click_count;
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby probe:total 1 p42 > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby probe:daily:2020-04-01 1 p43 > /dev/null
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
SELECT * FROM probe_mismatches;

-- tables that are not probed directly give the same results through SQL:
-- row level security (even for a role that bypasses it), a unique index in
-- another collation than its column, a partitioned table
ALTER TABLE probe_member ENABLE ROW LEVEL SECURITY;
ALTER TABLE probe_daily DROP CONSTRAINT probe_daily_key;
CREATE UNIQUE INDEX probe_daily_c ON probe_daily (name COLLATE "C", click_date);
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,600,50 do redis.call('ZINCRBY', KEYS[1], 1, 'p' .. i); redis.call('ZINCRBY', KEYS[2], 1, 'p' .. i) end" 2 probe:daily:2020-04-01 probe:total > /dev/null
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
SELECT * FROM probe_mismatches;
-- (an unchanged re-sync shows that SQL, not probes, filtered it)
SELECT count(*) > 0 AS baseline FROM probed();
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
SELECT * FROM probed();

CREATE TABLE probe_daily_p (name text NOT NULL, click_date date NOT NULL, click_count bigint NOT NULL,
                            PRIMARY KEY (name, click_date)) PARTITION BY RANGE (click_date);
CREATE TABLE probe_daily_p2020 PARTITION OF probe_daily_p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
ALTER TABLE probe_member DISABLE ROW LEVEL SECURITY;
SELECT redis_sync.alter_job('probe_job', daily_table => 'probe_daily_p');
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zincrby probe:daily:2020-04-01 1 p44 > /dev/null
SELECT status, rows_written FROM redis_sync.sync_run('probe_job', '2020-04-01');
SELECT count(*) AS mismatches FROM probe_day d
  FULL JOIN probe_daily_p c ON c.name = d.member
 WHERE c.click_count IS DISTINCT FROM d.score;

SELECT redis_sync.drop_job('probe_job');
DROP VIEW probe_mismatches;
DROP TABLE probe_member, probe_daily, probe_daily_p;
DROP FOREIGN TABLE probe_day, probe_tot;
DROP FUNCTION probed(), probe_stats();

SET client_min_messages = warning;
DROP SERVER probe_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'probe:*' > /dev/null
