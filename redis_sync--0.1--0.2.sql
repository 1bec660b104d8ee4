/* redis_sync--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION redis_sync UPDATE TO '0.2'" to load this file. \quit

------------------------------------------------------------------------
-- The catalog belongs to the engine.
--
-- In 0.1 every role could INSERT, UPDATE and DELETE catalog rows (row-level
-- security limited them to their own jobs), and the engine trusted what it
-- read there, keys to delete included.  From 0.2 on, roles only read the
-- catalog (their own jobs and runs; superusers all), and every change goes
-- through the extension's functions, which check the caller's privileges
-- and then write as the catalog's owner.
------------------------------------------------------------------------
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON redis_sync.job, redis_sync.run,
       redis_sync.run_partition FROM PUBLIC;
REVOKE USAGE ON SEQUENCE redis_sync.job_job_id_seq, redis_sync.run_run_id_seq FROM PUBLIC;

DROP POLICY job_owner ON redis_sync.job;
DROP POLICY run_owner ON redis_sync.run;
DROP POLICY run_partition_owner ON redis_sync.run_partition;
-- A role sees the jobs of the roles whose privileges it has (its own,
-- and those of roles it is a member of), as it could alter objects they own.
CREATE POLICY job_owner ON redis_sync.job FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY run_owner ON redis_sync.run FOR SELECT
    USING (EXISTS (SELECT 1 FROM redis_sync.job j WHERE j.job_id = run.job_id));
CREATE POLICY run_partition_owner ON redis_sync.run_partition FOR SELECT
    USING (EXISTS (SELECT 1 FROM redis_sync.run r WHERE r.run_id = run_partition.run_id));

------------------------------------------------------------------------
-- Jobs: reject and retry policies; what the scheduler keeps per job
------------------------------------------------------------------------
ALTER TABLE redis_sync.job
    ADD COLUMN max_rejects bigint NOT NULL DEFAULT 0 CHECK (max_rejects >= 0),
    ADD COLUMN max_retries integer NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    ADD COLUMN retry_delay interval NOT NULL DEFAULT '1 minute'
        CHECK (retry_delay > '0' AND retry_delay <= '1 day'),
    -- the last time the scheduler started (or skipped) the job: its next
    -- occurrence is computed from here, without reading the run history
    ADD COLUMN last_scheduled_at timestamptz,
    -- why the engine disabled the job (its owner was dropped, ...)
    ADD COLUMN disabled_reason text;
UPDATE redis_sync.job j SET last_scheduled_at =
    (SELECT max(r.started_at) FROM redis_sync.run r
     WHERE r.job_id = j.job_id AND (r.trigger = 'schedule' OR r.status = 'skipped'));

------------------------------------------------------------------------
-- Runs: superseded runs, rejects, retries
------------------------------------------------------------------------
ALTER TABLE redis_sync.run DROP CONSTRAINT run_status_check;
ALTER TABLE redis_sync.run ADD CONSTRAINT run_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted',
                      'skipped', 'superseded'));
ALTER TABLE redis_sync.run
    ADD COLUMN rejected bigint NOT NULL DEFAULT 0,      -- members recorded in redis_sync.rejected
    ADD COLUMN attempts integer NOT NULL DEFAULT 1,     -- starts and resumes of the run
    ADD COLUMN retry_at timestamptz;                    -- when the scheduler retries it
CREATE INDEX run_unfinished_idx ON redis_sync.run (job_id, run_date)
    WHERE status IN ('running', 'failed', 'cancelled', 'interrupted');
CREATE INDEX run_finished_at_idx ON redis_sync.run (finished_at);

ALTER TABLE redis_sync.run_partition
    ADD COLUMN members_read bigint NOT NULL DEFAULT 0,  -- ranks read and committed, each once
    ADD COLUMN rejected bigint NOT NULL DEFAULT 0;
-- Partitions of 0.1 runs read every rank up to their committed offset.
UPDATE redis_sync.run_partition SET members_read = next_offset - start_offset;

CREATE TABLE redis_sync.rejected (
    run_id       bigint NOT NULL REFERENCES redis_sync.run ON DELETE CASCADE,
    partition_no integer NOT NULL,
    member       bytea NOT NULL,
    score        text,
    sqlstate     text NOT NULL,
    error        text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_run_idx ON redis_sync.rejected (run_id, partition_no);
COMMENT ON TABLE redis_sync.rejected IS 'redis_sync: members that a run could not write, and why';
SELECT pg_catalog.pg_extension_config_dump('redis_sync.rejected', '');
ALTER TABLE redis_sync.rejected ENABLE ROW LEVEL SECURITY;
CREATE POLICY rejected_owner ON redis_sync.rejected FOR SELECT
    USING (EXISTS (SELECT 1 FROM redis_sync.run r WHERE r.run_id = rejected.run_id));
GRANT SELECT ON redis_sync.rejected TO PUBLIC;

------------------------------------------------------------------------
-- Sharded jobs: a day spread over several keys (daily_key has %s, the
-- shard number 0 .. shards - 1); each shard's ranks are partitioned
------------------------------------------------------------------------
ALTER TABLE redis_sync.job
    ADD COLUMN shards integer NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 1024);
-- the shards of the job when the run started; a run of one shard keeps its
-- keys and count in the run row, a sharded run in run_shard
ALTER TABLE redis_sync.run
    ADD COLUMN shards integer NOT NULL DEFAULT 1;
ALTER TABLE redis_sync.run_partition
    ADD COLUMN shard integer NOT NULL DEFAULT 0;     -- the shard whose ranks it holds
CREATE TABLE redis_sync.run_shard (
    run_id       bigint NOT NULL REFERENCES redis_sync.run ON DELETE CASCADE,
    shard        integer NOT NULL,
    source_key   text NOT NULL,     -- the shard's key of the day
    read_key     text NOT NULL,     -- the key its partitions read: source_key or its copy
    members      bigint,            -- members its partitions were cut from; NULL while copying
    PRIMARY KEY (run_id, shard)
);
COMMENT ON TABLE redis_sync.run_shard IS 'redis_sync: the keys and member counts of each shard of a sharded run';
SELECT pg_catalog.pg_extension_config_dump('redis_sync.run_shard', '');
ALTER TABLE redis_sync.run_shard ENABLE ROW LEVEL SECURITY;
CREATE POLICY run_shard_owner ON redis_sync.run_shard FOR SELECT
    USING (EXISTS (SELECT 1 FROM redis_sync.run r WHERE r.run_id = run_shard.run_id));
GRANT SELECT ON redis_sync.run_shard TO PUBLIC;

------------------------------------------------------------------------
-- Views show the caller's runs only (row-level security of the caller)
------------------------------------------------------------------------
CREATE OR REPLACE VIEW redis_sync.history AS
SELECT r.run_id, j.job_name, r.run_date, r.status, r.trigger, r.members, r.rows_written,
       r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::float8 AS seconds,
       r.error, r.rejected, r.attempts
FROM redis_sync.run r
JOIN redis_sync.job j USING (job_id)
ORDER BY r.run_id DESC;
ALTER VIEW redis_sync.history SET (security_invoker = true);
ALTER VIEW redis_sync.progress SET (security_invoker = true);

------------------------------------------------------------------------
-- Job functions, in C: they check the caller's privileges themselves
------------------------------------------------------------------------
DROP FUNCTION redis_sync.create_job(text, text, text, text, regclass, regclass, integer,
                                    integer, integer, text, integer);
DROP FUNCTION redis_sync.alter_job(text, text, text, text, regclass, regclass, integer,
                                   integer, integer, text, integer, boolean);
DROP FUNCTION redis_sync.drop_job(text);
DROP FUNCTION redis_sync._check_job(text, text, text, regclass, regclass, text);
DROP FUNCTION redis_sync._check_job_numbers(integer, integer, integer, integer);

CREATE FUNCTION redis_sync.create_job(
    job_name     text,
    server_name  text,
    daily_key    text,
    total_key    text DEFAULT NULL,
    member_table regclass DEFAULT NULL,
    daily_table  regclass DEFAULT NULL,
    partitions   integer DEFAULT 10,
    workers      integer DEFAULT 4,
    chunk_size   integer DEFAULT 1000,
    schedule     text DEFAULT NULL,
    day_offset   integer DEFAULT -1,
    max_rejects  bigint DEFAULT 0,
    max_retries  integer DEFAULT 3,
    retry_delay  interval DEFAULT '1 minute',
    shards       integer DEFAULT 1)
RETURNS bigint
AS 'MODULE_PATHNAME', 'create_job'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION redis_sync.create_job(text, text, text, text, regclass, regclass, integer,
                                          integer, integer, text, integer, bigint, integer,
                                          interval, integer) IS
  'define a job owned by the current role; returns its id';

CREATE FUNCTION redis_sync.alter_job(
    job_name     text,
    server_name  text DEFAULT NULL,
    daily_key    text DEFAULT NULL,
    total_key    text DEFAULT NULL,
    member_table regclass DEFAULT NULL,
    daily_table  regclass DEFAULT NULL,
    partitions   integer DEFAULT NULL,
    workers      integer DEFAULT NULL,
    chunk_size   integer DEFAULT NULL,
    schedule     text DEFAULT NULL,
    day_offset   integer DEFAULT NULL,
    enabled      boolean DEFAULT NULL,
    max_rejects  bigint DEFAULT NULL,
    max_retries  integer DEFAULT NULL,
    retry_delay  interval DEFAULT NULL,
    shards       integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'alter_job'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION redis_sync.alter_job(text, text, text, text, regclass, regclass, integer,
                                         integer, integer, text, integer, boolean, bigint,
                                         integer, interval, integer) IS
  'change a job; NULL leaves a value as it is, and '''' removes a schedule or total_key';

CREATE FUNCTION redis_sync.drop_job(job_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'drop_job'
LANGUAGE C VOLATILE;

-- sync_run: a NULL argument is an error, not a silent NULL row.
ALTER FUNCTION redis_sync.sync_run(text, date, boolean) CALLED ON NULL INPUT;

------------------------------------------------------------------------
-- Run history retention (redis_sync.run_retention; purge_runs on demand)
------------------------------------------------------------------------
-- the newest run of a job, which purge_runs keeps, in one index probe
CREATE INDEX run_job_run_idx ON redis_sync.run (job_id, run_id);

CREATE FUNCTION redis_sync.purge_runs(older_than interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'purge_runs'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION redis_sync.purge_runs(interval) IS
  'delete the caller''s runs that finished longer ago than older_than, except those a resume needs; returns how many';

------------------------------------------------------------------------
-- Schedules compared by meaning, not text
------------------------------------------------------------------------
CREATE FUNCTION redis_sync.cron_schedule_equal(a text, b text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rs_cron_schedule_equal_sql'
LANGUAGE C STRICT IMMUTABLE;
COMMENT ON FUNCTION redis_sync.cron_schedule_equal(text, text) IS
  'whether two cron schedules are due at the same times';
