/* redis_sync--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION redis_sync" to load this file. \quit

------------------------------------------------------------------------
-- Foreign data wrapper
------------------------------------------------------------------------
CREATE FUNCTION redis_sync.redis_zset_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION redis_sync.redis_zset_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER redis_zset
  HANDLER redis_sync.redis_zset_handler
  VALIDATOR redis_sync.redis_zset_validator;

------------------------------------------------------------------------
-- Catalog
--
-- Rows are visible to, and changeable by, the role that owns the job
-- (row-level security); superusers see everything.  Workers run as the
-- job's owner, so they pass the same policies.
------------------------------------------------------------------------
CREATE TABLE redis_sync.job (
    job_id       bigserial PRIMARY KEY,
    job_name     text NOT NULL UNIQUE CHECK (job_name <> ''),
    owner        regrole NOT NULL DEFAULT current_user::regrole,
    server_name  text NOT NULL,
    daily_key    text NOT NULL CHECK (daily_key <> ''),
    total_key    text CHECK (total_key <> ''),
    member_table regclass,           -- NULL only when total_key is NULL
    daily_table  regclass NOT NULL,
    partitions   integer NOT NULL DEFAULT 10 CHECK (partitions BETWEEN 1 AND 10000),
    workers      integer NOT NULL DEFAULT 4 CHECK (workers BETWEEN 1 AND 64),
    chunk_size   integer NOT NULL DEFAULT 1000 CHECK (chunk_size BETWEEN 1 AND 1000000),
    schedule     text,
    day_offset   integer NOT NULL DEFAULT -1 CHECK (day_offset BETWEEN -3650 AND 3650),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE redis_sync.job IS 'redis_sync jobs: what to sync from Redis, into which tables, and when';

CREATE TABLE redis_sync.run (
    run_id       bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES redis_sync.job ON DELETE CASCADE,
    run_date     date NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',
                                                 'cancelled', 'interrupted', 'skipped')),
    members      bigint,
    rows_written bigint NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text,
    trigger      text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'resume')),
    source_key   text,          -- the day's key
    read_key     text,          -- the key the run reads: source_key or its snapshot
    missing_total bigint NOT NULL DEFAULT 0,  -- members absent from total_key
    resumed_at   timestamptz,
    resumed_done bigint NOT NULL DEFAULT 0,  -- members done when last resumed
    error_detail text,
    error_sqlstate text,
    error_context text,
    error_partition integer
);
CREATE INDEX run_job_date_idx ON redis_sync.run (job_id, run_date);
COMMENT ON TABLE redis_sync.run IS 'redis_sync runs: one row per sync of a job and day';

CREATE TABLE redis_sync.run_partition (
    run_id       bigint NOT NULL REFERENCES redis_sync.run ON DELETE CASCADE,
    partition_no integer NOT NULL,
    start_offset bigint NOT NULL,
    end_offset   bigint NOT NULL,
    next_offset  bigint NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    rows_written bigint NOT NULL DEFAULT 0,
    missing_total bigint NOT NULL DEFAULT 0,
    worker_pid   integer,
    PRIMARY KEY (run_id, partition_no),
    CHECK (start_offset <= next_offset AND next_offset <= end_offset + 1)
);
COMMENT ON TABLE redis_sync.run_partition IS 'redis_sync partitions: committed offsets of each rank range of a run';

SELECT pg_catalog.pg_extension_config_dump('redis_sync.job', '');
SELECT pg_catalog.pg_extension_config_dump('redis_sync.job_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('redis_sync.run', '');
SELECT pg_catalog.pg_extension_config_dump('redis_sync.run_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('redis_sync.run_partition', '');

ALTER TABLE redis_sync.job ENABLE ROW LEVEL SECURITY;
ALTER TABLE redis_sync.run ENABLE ROW LEVEL SECURITY;
ALTER TABLE redis_sync.run_partition ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_owner ON redis_sync.job
    USING (owner = current_user::regrole)
    WITH CHECK (owner = current_user::regrole);
CREATE POLICY run_owner ON redis_sync.run
    USING (EXISTS (SELECT 1 FROM redis_sync.job j WHERE j.job_id = run.job_id));
CREATE POLICY run_partition_owner ON redis_sync.run_partition
    USING (EXISTS (SELECT 1 FROM redis_sync.run r WHERE r.run_id = run_partition.run_id));

GRANT USAGE ON SCHEMA redis_sync TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON redis_sync.job, redis_sync.run,
      redis_sync.run_partition TO PUBLIC;
GRANT USAGE ON SEQUENCE redis_sync.job_job_id_seq, redis_sync.run_run_id_seq TO PUBLIC;

CREATE VIEW redis_sync.progress AS
SELECT r.run_id,
       j.job_name,
       r.run_date,
       r.members,
       d.done AS members_done,
       round(100.0 * d.done / nullif(r.members, 0), 1) AS percent,
       round((d.done - r.resumed_done)
             / nullif(extract(epoch FROM now() - coalesce(r.resumed_at, r.started_at)), 0))::bigint
           AS members_per_second,
       CASE WHEN d.done > r.resumed_done THEN
           (now() - coalesce(r.resumed_at, r.started_at))
             * ((r.members - d.done)::float8 / (d.done - r.resumed_done))
       END AS eta
FROM redis_sync.run r
JOIN redis_sync.job j USING (job_id)
CROSS JOIN LATERAL (
    SELECT coalesce(sum(p.next_offset - p.start_offset), 0)::bigint AS done
    FROM redis_sync.run_partition p WHERE p.run_id = r.run_id) d
WHERE r.status = 'running';
COMMENT ON VIEW redis_sync.progress IS 'redis_sync runs in progress, from committed offsets';

CREATE VIEW redis_sync.history AS
SELECT r.run_id, j.job_name, r.run_date, r.status, r.trigger, r.members, r.rows_written,
       r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::float8 AS seconds,
       r.error
FROM redis_sync.run r
JOIN redis_sync.job j USING (job_id)
ORDER BY r.run_id DESC;
COMMENT ON VIEW redis_sync.history IS 'redis_sync runs, newest first';

GRANT SELECT ON redis_sync.progress, redis_sync.history TO PUBLIC;

------------------------------------------------------------------------
-- Helpers implemented in C
------------------------------------------------------------------------
CREATE FUNCTION redis_sync.format_key(key_template text, run_date date)
RETURNS text
AS 'MODULE_PATHNAME', 'rs_format_key_sql'
LANGUAGE C STRICT IMMUTABLE;
COMMENT ON FUNCTION redis_sync.format_key(text, date) IS
  'expand %Y, %m, %d and %% in a key template for a date';

CREATE FUNCTION redis_sync.next_run(schedule text, after timestamptz DEFAULT now())
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'rs_next_run_sql'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION redis_sync.next_run(text, timestamptz) IS
  'the first time after "after" at which a cron schedule is due, in redis_sync.timezone';

CREATE FUNCTION redis_sync._check_job(server_name text, daily_key text, total_key text,
                                      member_table regclass, daily_table regclass,
                                      schedule text)
RETURNS void
AS 'MODULE_PATHNAME', 'rs_check_job_sql'
LANGUAGE C;

------------------------------------------------------------------------
-- Jobs
------------------------------------------------------------------------
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
    day_offset   integer DEFAULT -1)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_member regclass := coalesce(member_table, pg_catalog.to_regclass('member'));
    v_daily  regclass := coalesce(daily_table, pg_catalog.to_regclass('daily_click_count'));
    v_id     bigint;
BEGIN
    IF job_name IS NULL OR job_name = '' THEN
        RAISE EXCEPTION 'job name must not be empty' USING ERRCODE = '22023';
    END IF;
    IF v_member IS NULL AND total_key IS NOT NULL THEN
        RAISE EXCEPTION 'member_table must be given'
            USING ERRCODE = '22023',
                  HINT = 'Pass member_table, or create a table named "member".';
    END IF;
    IF v_daily IS NULL THEN
        RAISE EXCEPTION 'daily_table must be given'
            USING ERRCODE = '22023',
                  HINT = 'Pass daily_table, or create a table named "daily_click_count".';
    END IF;
    PERFORM redis_sync._check_job_numbers(partitions, workers, chunk_size, day_offset);
    PERFORM redis_sync._check_job(server_name, daily_key, total_key,
                                  CASE WHEN total_key IS NULL THEN NULL ELSE v_member END,
                                  v_daily, schedule);
    IF EXISTS (SELECT 1 FROM redis_sync.job j WHERE j.job_name = create_job.job_name) THEN
        RAISE EXCEPTION 'job "%" already exists', job_name USING ERRCODE = '42710';
    END IF;
    INSERT INTO redis_sync.job (job_name, owner, server_name, daily_key, total_key,
                                member_table, daily_table, partitions, workers,
                                chunk_size, schedule, day_offset)
    VALUES (job_name, current_user::regrole, server_name, daily_key, total_key,
            v_member, v_daily, partitions, workers, chunk_size, schedule, day_offset)
    RETURNING job_id INTO v_id;
    RETURN v_id;
EXCEPTION
    WHEN unique_violation THEN
        RAISE EXCEPTION 'job "%" already exists', job_name
            USING ERRCODE = '42710',
                  DETAIL = 'Job names are unique across all roles.';
END;
$$;

CREATE FUNCTION redis_sync._check_job_numbers(partitions integer, workers integer,
                                              chunk_size integer, day_offset integer)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF partitions IS NULL OR partitions NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'invalid value for partitions: %', coalesce(partitions::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'The value must be an integer from 1 to 10000.';
    END IF;
    IF workers IS NULL OR workers NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'invalid value for workers: %', coalesce(workers::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'The value must be an integer from 1 to 64.';
    END IF;
    IF chunk_size IS NULL OR chunk_size NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'invalid value for chunk_size: %', coalesce(chunk_size::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'The value must be an integer from 1 to 1000000.';
    END IF;
    IF day_offset IS NULL OR day_offset NOT BETWEEN -3650 AND 3650 THEN
        RAISE EXCEPTION 'invalid value for day_offset: %', coalesce(day_offset::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'The value must be an integer from -3650 to 3650.';
    END IF;
END;
$$;

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
    enabled      boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    j redis_sync.job;
BEGIN
    SELECT * INTO j FROM redis_sync.job WHERE job.job_name = alter_job.job_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" does not exist', job_name USING ERRCODE = '42704';
    END IF;
    j.server_name  := coalesce(server_name, j.server_name);
    j.daily_key    := coalesce(daily_key, j.daily_key);
    j.total_key    := CASE WHEN total_key = '' THEN NULL ELSE coalesce(total_key, j.total_key) END;
    j.member_table := coalesce(member_table, j.member_table);
    j.daily_table  := coalesce(daily_table, j.daily_table);
    j.partitions   := coalesce(partitions, j.partitions);
    j.workers      := coalesce(workers, j.workers);
    j.chunk_size   := coalesce(chunk_size, j.chunk_size);
    j.schedule     := CASE WHEN schedule = '' THEN NULL ELSE coalesce(schedule, j.schedule) END;
    j.day_offset   := coalesce(day_offset, j.day_offset);
    j.enabled      := coalesce(enabled, j.enabled);
    IF j.total_key IS NOT NULL AND j.member_table IS NULL THEN
        j.member_table := pg_catalog.to_regclass('member');
    END IF;
    PERFORM redis_sync._check_job_numbers(j.partitions, j.workers, j.chunk_size, j.day_offset);
    PERFORM redis_sync._check_job(j.server_name, j.daily_key, j.total_key,
                                  CASE WHEN j.total_key IS NULL THEN NULL ELSE j.member_table END,
                                  j.daily_table, j.schedule);
    UPDATE redis_sync.job SET
        server_name = j.server_name, daily_key = j.daily_key, total_key = j.total_key,
        member_table = j.member_table, daily_table = j.daily_table,
        partitions = j.partitions, workers = j.workers, chunk_size = j.chunk_size,
        schedule = j.schedule, day_offset = j.day_offset, enabled = j.enabled
    WHERE job.job_id = j.job_id;
END;
$$;
COMMENT ON FUNCTION redis_sync.alter_job(text, text, text, text, regclass, regclass, integer,
                                         integer, integer, text, integer, boolean) IS
  'change a job; NULL leaves a value as it is, and '''' removes a schedule or total_key';

CREATE FUNCTION redis_sync.drop_job(job_name text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM redis_sync.job WHERE job.job_name = drop_job.job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" does not exist', job_name USING ERRCODE = '42704';
    END IF;
END;
$$;

------------------------------------------------------------------------
-- Runs
------------------------------------------------------------------------
CREATE FUNCTION redis_sync.sync_run(job_name text,
                                    run_date date DEFAULT current_date,
                                    resume boolean DEFAULT true,
                                    OUT run_id bigint, OUT status text, OUT members bigint,
                                    OUT rows_written bigint, OUT seconds float8)
RETURNS record
AS 'MODULE_PATHNAME', 'rs_sync_run'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION redis_sync.sync_run(text, date, boolean) IS
  'sync a day of a job from Redis into its tables, in parallel workers; resumes an unfinished run of that day';
