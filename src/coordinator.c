/*-------------------------------------------------------------------------
 *
 * coordinator.c
 *		  The run coordinator: a background worker that prepares a run (or
 *		  resumes one), copies a live key, records the partitions, launches
 *		  and watches the sync workers, proves the result and records the
 *		  run's end.
 *
 * sync_run() starts a coordinator and waits for it; the scheduler starts
 * one without waiting.  Runs of one job are serialized by a session-level
 * lock on the job that the coordinator holds: a second run fails at once
 * (or, when scheduled, is recorded as "skipped" if the running run is of the
 * same date, and owed, with a retry time, if not).
 *
 * A run row is committed before Redis is contacted, so every attempt leaves
 * its error.  A run ends "succeeded" only after the coordinator has checked
 * what the workers committed: every partition read every rank of its range,
 * each counted once, the copies it read still hold what they were cut from,
 * and the job is unchanged (rs_run_unproven, rs_copy_changed,
 * rs_job_changed).  A successful run supersedes the older unfinished runs
 * of its date, which are never resumed.
 *
 * A job of several shards reads one key per shard (daily_key with %s): each
 * shard's key is cut into partitions of its own, recorded with their shard,
 * and copied, if live, into a copy of its own, one shard after another; the
 * keys and counts of the shards are in run_shard, and the checks above hold
 * for each shard.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "redis_conn.h"
#include "redis_sync.h"
#include "sync.h"
#include "zset.h"
#include "redis_cluster.h"

/* Snapshot keys expire after 7 days, counted again from each resume. */
#define RS_SNAPSHOT_TTL_SECONDS 604800

/* Transient Redis errors retried during a copy, as the workers retry them. */
#define RS_COPY_RETRIES 5


/* A shard of a sharded run: its keys and the members it was cut from. */
typedef struct RsRunShard
{
	char	   *source_key;
	char	   *read_key;		/* source_key, or its copy */
	int64		members;		/* -1 while its copy is not complete */
} RsRunShard;

/*
 * What the coordinator knows about its run.  A run of a sharded job copies
 * and cuts its shards one after another: source_key, read_key, copy,
 * first_count, nparts and parts_recorded are then those of the shard being
 * cut (cur_shard), whose partitions are numbered from part_base.
 */
typedef struct RsRun
{
	RsJob	   *job;
	int64		run_id;
	TimestampTz started_at;		/* with run_id, names the run's copies */
	char	   *source_key;
	char	   *read_key;
	ForeignServer *server;
	UserMapping *user;
	RsConnection *conn;
	List	   *workers;		/* BackgroundWorkerHandle * */
	ZsetCopy   *copy;			/* a copy of a live key still being made, or NULL */
	int64		first_count;	/* the members that the partitions were cut from */
	int			nparts;			/* partitions of a new run */
	int			parts_recorded; /* of those, recorded in run_partition so far */
	int			nshards;		/* the job's shards; 1: the keys are in the run row */
	RsRunShard *shards;			/* [nshards] when nshards > 1 */
	int			cur_shard;
	int			part_base;
	DateADT		run_date;
	bool		scheduled;		/* started by the scheduler: retried if it fails */
} RsRun;

static volatile sig_atomic_t rs_got_sigterm = false;

static int64 rs_insert_run(const RsRunRequest *req, TimestampTz *started_at);
static void rs_init_bgworker(BackgroundWorker *worker, const char *function, const char *type,
							 const void *extra, Size len);

static void rs_coordinator_sigterm(SIGNAL_ARGS);
static void rs_coordinate(const RsRunRequest *req, RsRunShared *shared, RsRun *run);
static bool rs_prepare_run(const RsRunRequest *req, RsRunShared *shared, RsRun *run);
static void rs_new_run(const RsRunRequest *req, RsRun *run, MemoryContext cxt);
static void rs_job_busy(const RsRunRequest *req, RsRunShared *shared);
static List *rs_supersede_runs(int64 job_id, DateADT run_date, MemoryContext cxt);
static void rs_drop_snapshots(RsRun *run, List *keys);
static char *rs_snapshot_suffix(int64 run_id, TimestampTz started_at);
static char *rs_snapshot_key(RsRun *run);
static List *rs_single_snapshot_names(int64 run_id, TimestampTz started_at,
									  const char *source_key, List *keys);
static char *rs_shard_snapshot_key(int64 run_id, TimestampTz started_at, int shard,
								   const char *source_key);
static List *rs_run_snapshots(int64 run_id, List *keys, MemoryContext cxt);
static void rs_new_sharded_run(const RsRunRequest *req, RsRun *run, MemoryContext cxt);
static void rs_begin_shard(RsRun *run, int shard, int64 count);
static void rs_begin_shard_copy(RsRun *run, int shard, MemoryContext cxt);
static char *rs_resume_shards(RsRun *run, int64 members, MemoryContext cxt);
static const char *rs_job_changed(RsRun *run, ErrorData *edata);
static bool rs_run_unproven(RsRun *run, ErrorData *edata);
static bool rs_copy_changed(RsRun *run, ErrorData *edata);
static char *rs_copy_unfit(RsRun *run, const char *snap, int64 members, const char *cut);
static int	rs_launch_workers(RsRun *run, int wanted);
static void rs_start_run_workers(RsRun *run, RsRunShared *shared, int wanted);
static bool rs_copy_while_syncing(RsRun *run, RsRunShared *shared);
static void rs_record_partitions(RsRun *run, int64 copied, bool last);
static int	rs_partitions_failed(RsRun *run, int *remaining);
static void rs_partition_bounds(RsRun *run, int p, int64 *start, int64 *end);
static bool rs_partition_copied(RsRun *run);
static bool rs_copy_step_retrying(RsRun *run);
static void rs_stop_workers(RsRun *run);
static void rs_finish_run(RsRun *run, RsRunShared *shared, const char *status,
						  ErrorData *edata);

/*
 * rs_start_coordinator
 *		Register a coordinator background worker for the request.  False if
 *		no background worker slot is free.
 */
bool
rs_start_coordinator(const RsRunRequest *req, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	StaticAssertStmt(sizeof(RsRunRequest) <= BGW_EXTRALEN, "RsRunRequest too large");
	rs_init_bgworker(&worker, "rs_coordinator_main", "redis_sync coordinator", req,
					 sizeof(RsRunRequest));
	snprintf(worker.bgw_name, BGW_MAXLEN, "redis_sync coordinator for job " INT64_FORMAT,
			 req->job_id);
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * rs_init_bgworker
 *		Describe a dynamic background worker of redis_sync that connects to a
 *		database, never restarts, tells this process when it starts and
 *		stops, and gets "extra" (len bytes) in bgw_extra; the caller names it.
 */
static void
rs_init_bgworker(BackgroundWorker *worker, const char *function, const char *type,
				 const void *extra, Size len)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "redis_sync");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
	memcpy(worker->bgw_extra, extra, len);
	worker->bgw_notify_pid = MyProcPid;
}

/*
 * SIGTERM in the coordinator: treated as a query cancel, so that the next
 * CHECK_FOR_INTERRUPTS() raises an error that rs_coordinator_main() catches
 * to stop the workers and record the run's status.
 */
static void
rs_coordinator_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	rs_got_sigterm = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * rs_coordinator_main
 *		Entry point of the coordinator background worker.
 */
void
rs_coordinator_main(Datum main_arg)
{
	RsRunRequest req;
	RsRunShared local;
	RsRunShared *volatile shared = &local;
	dsm_segment *volatile seg = NULL;
	RsRun		run;
	MemoryContext run_cxt;

	memcpy(&req, MyBgworkerEntry->bgw_extra, sizeof(RsRunRequest));
	pqsignal(SIGTERM, rs_coordinator_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(req.dboid, req.owner, 0);
	pgstat_report_appname("redis_sync coordinator");
	rs_set_safe_search_path();

	memset(&local, 0, sizeof(local));
	if (req.dsm != 0)
	{
		seg = dsm_attach(req.dsm);
		if (seg == NULL)
			proc_exit(0);		/* the caller is already gone */
		shared = dsm_segment_address(seg);
	}
	shared->error_partition = -1;

	/*
	 * The run's context: the job, keys, server and worker handles, which
	 * outlive each of the run's transactions.  This process coordinates one
	 * run and exits, so the run's context lives as long as the process.
	 */
	run_cxt = AllocSetContextCreate(TopMemoryContext, "redis_sync run",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run_cxt);
	memset(&run, 0, sizeof(run));
	run.run_date = req.run_date;
	run.scheduled = (req.trigger == RS_TRIGGER_SCHEDULE);
	shared->coordinator_pid = MyProcPid;

	PG_TRY();
	{
		rs_coordinate(&req, (RsRunShared *) shared, &run);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *status;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(run_cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
			EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		QueryCancelPending = false;

		rs_stop_workers(&run);
		pg_read_barrier();
		if (shared->cancel_requested)
			status = "cancelled";
		else if (rs_got_sigterm)
			status = "interrupted";
		else
			status = "failed";
		if (run.run_id > 0 && shared->run_id > 0)
			rs_finish_run(&run, (RsRunShared *) shared, status, edata);
		else
		{
			shared->sqlerrcode = edata->sqlerrcode;
			strlcpy(shared->message, edata->message ? edata->message : "", sizeof(shared->message));
			strlcpy(shared->detail, edata->detail ? edata->detail : "", sizeof(shared->detail));
		}
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();

	pg_write_barrier();
	shared->done = true;
	if (seg != NULL)
		dsm_detach(seg);
	proc_exit(0);
}

/*
 * rs_coordinate
 *		Prepare the run, start its workers and wait for them, then record the
 *		run's end.  A run of a live key starts its workers while the key is
 *		still being copied, on the partitions copied so far.
 */
static void
rs_coordinate(const RsRunRequest *req, RsRunShared *shared, RsRun *run)
{
	int			pending;
	int			wanted;
	int			nfailed = 0;
	MemoryContext loop_cxt;
	MemoryContext run_cxt;

	if (!rs_prepare_run(req, shared, run))
		return;

	if (run->copy != NULL && !rs_copy_while_syncing(run, shared))
	{
		/* a partition failed during the copy */
		rs_stop_workers(run);
		rs_finish_run(run, shared, "failed", NULL);
		return;
	}

	/* Partitions left to do. */
	rs_begin_xact(NULL);
	(void) rs_partitions_failed(run, &pending);
	rs_commit_xact();

	wanted = Min(run->job->workers, pending);
	loop_cxt = AllocSetContextCreate(CurrentMemoryContext, "redis_sync coordinator loop",
									 ALLOCSET_SMALL_SIZES);
	run_cxt = MemoryContextSwitchTo(loop_cxt);
	while (pending > 0)
	{
		int			alive = 0;
		int			remaining;
		ListCell   *lc;

		MemoryContextReset(loop_cxt);

		if (run->workers == NIL)
		{
			/* the handles must outlive the loop's context */
			MemoryContextSwitchTo(run_cxt);
			rs_start_run_workers(run, shared, wanted);
			MemoryContextSwitchTo(loop_cxt);
			if (shared->workers_launched == 0)
			{
				ereport(LOG,
						(errmsg("redis_sync run " INT64_FORMAT " is waiting for a sync worker",
								run->run_id),
						 errdetail("The server log names the limit that is reached.")));
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 1000L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				continue;
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		foreach(lc, run->workers)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(lfirst(lc), &pid) != BGWH_STOPPED)
				alive++;
		}

		rs_begin_xact(NULL);
		nfailed = rs_partitions_failed(run, &remaining);
		rs_commit_xact();

		if (nfailed > 0 || remaining == 0 || alive == 0)
		{
			pending = remaining;
			break;
		}
	}

	MemoryContextSwitchTo(run_cxt);
	rs_stop_workers(run);
	if (nfailed > 0)
		rs_finish_run(run, shared, "failed", NULL);
	else if (pending > 0)
	{
		ErrorData	edata;

		memset(&edata, 0, sizeof(edata));
		edata.sqlerrcode = ERRCODE_INTERNAL_ERROR;
		edata.message = psprintf("sync workers exited with %d partitions unfinished", pending);
		edata.detail = pstrdup("A worker was terminated or could not start; the server log has the cause.");
		rs_finish_run(run, shared, "failed", &edata);
	}
	else
		rs_finish_run(run, shared, "succeeded", NULL);
}

/*
 * rs_partitions_failed
 *		The number of the run's partitions that failed; *remaining gets the
 *		number not yet succeeded.  Must be called in a transaction.
 */
static int
rs_partitions_failed(RsRun *run, int *remaining)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->run_id)};
	bool		isnull;

	rs_spi_exec("SELECT count(*) FILTER (WHERE status = 'failed')::int4, "
				"count(*) FILTER (WHERE status <> 'succeeded')::int4 "
				"FROM redis_sync.run_partition WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	*remaining = DatumGetInt32(rs_spi_getdatum(0, 2, &isnull));
	return DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
}

/*
 * rs_start_run_workers
 *		Start up to "wanted" workers for the run (rs_launch_workers), and
 *		publish how many started and their pids, for a caller that checks
 *		its locks.  The handles are allocated in the current context, which
 *		must last as long as the run.
 */
static void
rs_start_run_workers(RsRun *run, RsRunShared *shared, int wanted)
{
	ListCell   *lc;

	shared->workers_requested = wanted;
	shared->workers_launched = rs_launch_workers(run, wanted);
	shared->nworker_pids = 0;
	foreach(lc, run->workers)
	{
		pid_t		pid;

		if (shared->nworker_pids < RS_MAX_RUN_WORKERS &&
			GetBackgroundWorkerPid(lfirst(lc), &pid) == BGWH_STARTED)
			shared->worker_pids[shared->nworker_pids++] = pid;
	}
	pg_write_barrier();
}

/*
 * rs_copy_while_syncing
 *		Finish the copy of a live key that rs_new_run began, a page at a
 *		time, while the workers sync the ranks already copied: each partition
 *		is recorded (and so becomes claimable) once the copy has passed its
 *		end, the last one when the copy is complete, with every member that
 *		the copy got past the count it started from.  Then the run's member
 *		count is recorded, which tells the workers that no more partitions
 *		will come.  The shards of a sharded run are copied one after
 *		another, each shard's partitions recorded as they are copied, and
 *		each shard's member count once its copy is complete.  Returns false,
 *		leaving the copy, if a partition failed meanwhile.  Errors of the
 *		copy itself are raised.
 */
static bool
rs_copy_while_syncing(RsRun *run, RsRunShared *shared)
{
	MemoryContext step_cxt;
	MemoryContext old_cxt;
	TimestampTz last_check = GetCurrentTimestamp();
	Oid			argtypes[3] = {INT8OID, INT8OID, INT4OID};
	Datum		values[3];
	int64		members;
	int64		total = 0;
	bool		more = !run->copy->done;
	int			wanted;

	/* the workers a run asks for: no more than its partitions */
	if (run->nshards > 1)
		wanted = (int) Min((int64) run->job->workers, (int64) run->job->partitions * run->nshards);
	else
		wanted = Min(run->job->workers, run->nparts);

	step_cxt = AllocSetContextCreate(CurrentMemoryContext, "redis_sync copy step",
									 ALLOCSET_SMALL_SIZES);
	old_cxt = MemoryContextSwitchTo(step_cxt);
	for (;;)
	{
		MemoryContextReset(step_cxt);

		/* Record the partitions copied so far; start the workers on them. */
		if (rs_partition_copied(run))
		{
			int			before = run->parts_recorded;

			/* readers on replicas (read_from) must find these ranks there */
			rs_cluster_wait_replicas(run->conn, run->copy->copy);
			rs_begin_xact("redis_sync: copying a live key");
			rs_record_partitions(run, run->copy->copied, false);
			rs_commit_xact();
			if (run->parts_recorded > before && run->workers == NIL)
			{
				MemoryContextSwitchTo(old_cxt);
				rs_start_run_workers(run, shared, wanted);
				MemoryContextSwitchTo(step_cxt);
			}
		}

		/* Once a second: stop if a partition failed. */
		if (run->workers != NIL &&
			TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), 1000))
		{
			int			remaining;
			int			nfailed;

			rs_begin_xact(NULL);
			nfailed = rs_partitions_failed(run, &remaining);
			rs_commit_xact();
			if (nfailed > 0)
			{
				MemoryContextSwitchTo(old_cxt);
				MemoryContextDelete(step_cxt);
				return false;
			}
			last_check = GetCurrentTimestamp();
		}

		if (more)
		{
			more = rs_copy_step_retrying(run);
			continue;
		}

		/* This key's copy is complete: its last partition, its count. */
		members = zr_copy_end(run->conn, run->copy);
		total += members;
		rs_begin_xact("redis_sync: copying a live key");
		rs_record_partitions(run, members, true);
		values[0] = Int64GetDatum(run->run_id);
		if (run->nshards > 1)
		{
			run->shards[run->cur_shard].members = members;
			values[1] = Int64GetDatum(members);
			values[2] = Int32GetDatum(run->cur_shard);
			rs_spi_exec("UPDATE redis_sync.run_shard SET members = $2 "
						"WHERE run_id = $1 AND shard = $3",
						3, argtypes, values, NULL, SPI_OK_UPDATE);
		}
		if (run->nshards <= 1 || run->cur_shard == run->nshards - 1)
		{
			values[1] = Int64GetDatum(total);
			rs_spi_exec("UPDATE redis_sync.run SET members = $2 WHERE run_id = $1",
						2, argtypes, values, NULL, SPI_OK_UPDATE);
			rs_commit_xact();
			break;
		}
		rs_commit_xact();

		/* The next shard, in the run's context. */
		MemoryContextSwitchTo(old_cxt);
		rs_begin_shard_copy(run, run->cur_shard + 1, old_cxt);
		MemoryContextSwitchTo(step_cxt);
		more = !run->copy->done;
	}
	MemoryContextSwitchTo(old_cxt);
	MemoryContextDelete(step_cxt);
	run->copy = NULL;
	return true;
}

/*
 * rs_copy_step_retrying
 *		zr_copy_step, retrying transient Redis errors (a lost connection, a
 *		timeout) with exponential backoff on a new connection, as the
 *		workers do: the position is kept here, so the copy goes on where it
 *		was.  A Redis that came back
 *		without the source fails the step; one that came back without the
 *		copy fails the copy's end (zr_copy_end).
 */
static bool
rs_copy_step_retrying(RsRun *run)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int attempt = 0;

	for (;;)
	{
		ErrorData  *volatile edata = NULL;
		volatile bool more = false;

		PG_TRY();
		{
			if (attempt > 0)
			{
				/* a new connection, as the workers open one for each attempt */
				rs_begin_xact(NULL);
				run->conn = rs_get_connection(run->server, run->user);
				rs_commit_xact();
			}
			more = zr_copy_step(run->conn, run->copy);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (!rs_is_transient_error(edata->sqlerrcode) || attempt >= RS_COPY_RETRIES)
				PG_RE_THROW();
			FlushErrorState();
		}
		PG_END_TRY();

		if (edata == NULL)
			return more;

		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(cxt);
		rs_discard_connection(run->conn);
		attempt++;
		rs_retry_pause(psprintf("redis_sync run " INT64_FORMAT ": copying Redis key \"%s\"",
								run->run_id, run->copy->source),
					   edata, attempt, RS_COPY_RETRIES);
	}
}

/*
 * rs_record_partitions
 *		Record the new run's partitions (rs_partition_bounds) that the first
 *		"copied" ranks hold whole, from the first not yet recorded; with
 *		"last", the last one too, ending at rank copied - 1, so that it takes
 *		in whatever lies past first_count.  The partitions of a shard (of a
 *		sharded run) are numbered from run->part_base and carry the shard.
 *		Must be called in a transaction.
 */
static void
rs_record_partitions(RsRun *run, int64 copied, bool last)
{
	Oid			argtypes[5] = {INT8OID, INT4OID, INT8OID, INT8OID, INT4OID};
	Datum		values[5];

	values[0] = Int64GetDatum(run->run_id);
	values[4] = Int32GetDatum(run->cur_shard);
	while (run->parts_recorded < run->nparts)
	{
		int			p = run->parts_recorded;
		int64		start;
		int64		end;

		rs_partition_bounds(run, p, &start, &end);
		if (p == run->nparts - 1)
		{
			if (!last)
				break;
			end = copied - 1;
		}
		else if (end >= copied)
			break;
		values[1] = Int32GetDatum(run->part_base + p);
		values[2] = Int64GetDatum(start);
		values[3] = Int64GetDatum(end);
		rs_spi_exec("INSERT INTO redis_sync.run_partition "
					"(run_id, partition_no, start_offset, end_offset, next_offset, shard) "
					"VALUES ($1, $2, $3, $4, $3, $5)",
					5, argtypes, values, NULL, SPI_OK_INSERT);
		run->parts_recorded++;
	}
}

/*
 * rs_partition_copied
 *		Is the next partition to record, not the last, copied whole?
 */
static bool
rs_partition_copied(RsRun *run)
{
	int64		start;
	int64		end;

	if (run->parts_recorded >= run->nparts - 1)
		return false;
	rs_partition_bounds(run, run->parts_recorded, &start, &end);
	return end < run->copy->copied;
}

/*
 * rs_partition_bounds
 *		The first and last rank of partition p of a new run: run->first_count
 *		members cut into run->nparts contiguous ranges, the first
 *		first_count % nparts of them one rank longer.
 */
static void
rs_partition_bounds(RsRun *run, int p, int64 *start, int64 *end)
{
	int64		per = run->first_count / run->nparts;
	int64		extra = run->first_count % run->nparts;

	*start = p * per + Min(p, extra);
	*end = *start + per + (p < extra ? 1 : 0) - 1;
}

/*
 * rs_insert_run
 *		Insert a new, running run of the request's job and date, and return
 *		its id; *started_at gets its start.  Must be called in a transaction.
 */
static int64
rs_insert_run(const RsRunRequest *req, TimestampTz *started_at)
{
	Oid			argtypes[3] = {INT8OID, DATEOID, TEXTOID};
	Datum		values[3];
	bool		isnull;

	values[0] = Int64GetDatum(req->job_id);
	values[1] = DateADTGetDatum(req->run_date);
	values[2] = CStringGetTextDatum(req->trigger == RS_TRIGGER_SCHEDULE ? "schedule" : "manual");
	rs_spi_exec("INSERT INTO redis_sync.run (job_id, run_date, status, trigger) "
				"VALUES ($1, $2, 'running', $3) RETURNING run_id, started_at",
				3, argtypes, values, NULL, SPI_OK_INSERT_RETURNING);
	*started_at = DatumGetTimestampTz(rs_spi_getdatum(0, 2, &isnull));
	return DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
}

/*
 * rs_prepare_run
 *		Take the job's lock and record the run: resume the day's latest
 *		unfinished run that no later run has superseded, or insert a new
 *		one; commit that row first, so that every attempt leaves a row with
 *		its error, whatever fails next.  Then connect to Redis and, for a
 *		run not read before, snapshot the day's key if it may still change,
 *		count its members and record the partitions; commit again, so that
 *		the workers can see them.  Returns false if the run was not started
 *		because the job was busy (see rs_job_busy).
 */
static bool
rs_prepare_run(const RsRunRequest *req, RsRunShared *shared, RsRun *run)
{
	LOCKTAG		tag;
	Oid			argtypes[3] = {INT8OID, DATEOID, TEXTOID};
	Datum		values[3];
	bool		isnull;
	bool		prepared = false;
	char	   *source = NULL;
	char	   *readkey = NULL;
	char	   *restart_why = NULL;	/* why an unfinished run cannot resume */
	int64		members = 0;
	int			run_shards = 1; /* the shards of the run resumed */
	List	   *superseded;
	MemoryContext cxt;			/* the run's: what outlives a transaction */
	MemoryContext spi_cxt;

	cxt = rs_begin_xact("redis_sync: preparing a run");
	run->job = rs_lookup_job_by_id(req->job_id);
	strlcpy(shared->job_name, run->job->job_name, sizeof(shared->job_name));
	run->nshards = run->job->shards;
	if (run->nshards > 1)
		run->shards = MemoryContextAllocZero(cxt, sizeof(RsRunShard) * run->nshards);

	rs_job_lock_tag(&tag, req->job_id);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		if (req->trigger == RS_TRIGGER_SCHEDULE)
		{
			rs_job_busy(req, shared);
			rs_commit_xact();
			return false;
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("job \"%s\" is already running", run->job->job_name),
				 errhint("Wait for the running sync to end, or cancel it.")));
	}

	/* We hold the lock: a run still marked running was interrupted. */
	values[0] = Int64GetDatum(req->job_id);
	values[1] = DateADTGetDatum(req->run_date);
	rs_spi_exec("UPDATE redis_sync.run SET status = 'interrupted', finished_at = now() "
				"WHERE job_id = $1 AND status = 'running'",
				1, argtypes, values, NULL, SPI_OK_UPDATE);
	superseded = rs_supersede_runs(req->job_id, req->run_date, cxt);

	if (req->resume)
	{
		rs_spi_exec("SELECT run_id, source_key, read_key, members, shards, started_at FROM redis_sync.run r "
					"WHERE job_id = $1 AND run_date = $2 "
					"AND status IN ('failed', 'cancelled', 'interrupted') "
					"AND NOT EXISTS (SELECT 1 FROM redis_sync.run n WHERE n.job_id = r.job_id "
					"  AND n.run_date = r.run_date AND n.run_id > r.run_id AND n.status = 'succeeded') "
					"ORDER BY run_id DESC LIMIT 1",
					2, argtypes, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			Datum		d;

			run->run_id = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
			/* both are compared in the next transaction */
			d = rs_spi_getdatum(0, 2, &isnull);
			source = isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
			d = rs_spi_getdatum(0, 3, &isnull);
			readkey = isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
			prepared = (source != NULL && readkey != NULL);
			d = rs_spi_getdatum(0, 4, &isnull);
			members = isnull ? -1 : DatumGetInt64(d);
			run_shards = DatumGetInt32(rs_spi_getdatum(0, 5, &isnull));
			run->started_at = DatumGetTimestampTz(rs_spi_getdatum(0, 6, &isnull));
			if (run_shards > 1)
				prepared = true;	/* its keys are in run_shard */
			values[0] = Int64GetDatum(run->run_id);
			rs_spi_exec("UPDATE redis_sync.run r SET status = 'running', trigger = 'resume', "
						"resumed_at = now(), finished_at = NULL, error = NULL, error_detail = NULL, "
						"error_sqlstate = NULL, error_partition = NULL, error_context = NULL, "
						"attempts = attempts + 1, retry_at = NULL, "
						"resumed_done = (SELECT coalesce(sum(next_offset - start_offset), 0) "
						"FROM redis_sync.run_partition p WHERE p.run_id = r.run_id) "
						"WHERE run_id = $1",
						1, argtypes, values, NULL, SPI_OK_UPDATE);
		}
	}
	if (run->run_id == 0)
		run->run_id = rs_insert_run(req, &run->started_at);
	rs_commit_xact();
	shared->run_id = run->run_id;

	rs_begin_xact("redis_sync: preparing a run");
	spi_cxt = MemoryContextSwitchTo(cxt);
	run->server = GetForeignServerByName(run->job->server_name, false);
	/* USAGE may have been revoked, or the catalog row changed, since create_job. */
	rs_check_server_access(run->server, run->job->owner);
	run->user = GetUserMapping(run->job->owner, run->server->serverid);
	/* a sharded run's keys are its shards' (run_shard) */
	if (run->nshards <= 1)
		run->source_key = rs_format_key(run->job->daily_key, req->run_date);
	MemoryContextSwitchTo(spi_cxt);
	run->conn = rs_get_connection(run->server, run->user);
	if (prepared && run_shards != run->nshards)
		restart_why = psprintf("It read %d shards, and the job has %d.", run_shards, run->nshards);
	else if (prepared && run_shards > 1)
		restart_why = rs_resume_shards(run, members, cxt);
	else if (prepared && strcmp(source, readkey) != 0 && members < 0)
	{
		/* Its copy was never finished: the partitions past it were never cut. */
		restart_why = psprintf("Its copy \"%s\" of Redis key \"%s\" was not complete.",
							   readkey, source);
	}
	else if (prepared && strcmp(source, readkey) != 0 && members > 0)
	{
		/*
		 * A run that reads a snapshot: its key is derived from the run id
		 * and start, never taken from the catalog.  Refresh its expiry; if
		 * it is gone (expired, evicted, deleted, or lost in a Redis
		 * restart), or holds another number of members than the run was cut
		 * from (changed, restored from an older save, or replaced), the run
		 * cannot be finished: its partitions would read other ranks.  Start
		 * a new one.
		 */
		char	   *snap = rs_snapshot_key(run);

		/* the workers read the recorded name: it must be the derived one */
		if (strcmp(readkey, snap) != 0)
			restart_why = psprintf("It records the read key \"%s\", which is not its copy \"%s\".",
								   readkey, snap);
		else if ((restart_why = rs_copy_unfit(run, snap, members, "run")) == NULL)
			run->read_key = MemoryContextStrdup(cxt, snap);
	}
	else if (prepared)
	{
		/*
		 * A run that reads the day's key directly: its partitions were cut
		 * from the key's size when it started.  A key of another size now
		 * would shift ranks past its partitions (members added at the low
		 * end push the top ones past the last partition): start a new run.
		 */
		int64		card = zr_card(run->conn, run->source_key);

		if (card != members)
			restart_why = psprintf("Redis key \"%s\" holds " INT64_FORMAT " members, and the run started with " INT64_FORMAT ".",
								   run->source_key, card, members);
		else
			run->read_key = run->source_key;
	}
	if (restart_why != NULL)
	{
		ereport(NOTICE,
				(errmsg("run " INT64_FORMAT " cannot be resumed; starting a new run", run->run_id),
				 errdetail_internal("%s", restart_why)));
		values[0] = Int64GetDatum(run->run_id);
		values[1] = CStringGetTextDatum(restart_why);
		argtypes[1] = TEXTOID;
		/* never retried either: the new run takes over (retry_at NULL) */
		rs_spi_exec("UPDATE redis_sync.run SET status = 'failed', finished_at = now(), "
					"retry_at = NULL, error = $2 WHERE run_id = $1",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
		rs_commit_xact();

		/*
		 * The old run is never resumed now: drop its copy (a copy never
		 * completed would otherwise stay for its 7 days, one more for each
		 * restart).  The new run takes over its attempts, so that a
		 * scheduled run that keeps failing this way still runs out of
		 * retries.
		 */
		rs_begin_xact("redis_sync: preparing a run");
		if (run_shards > 1)
			superseded = rs_run_snapshots(run->run_id, superseded, cxt);
		else if (source != NULL && readkey != NULL && strcmp(source, readkey) != 0)
		{
			spi_cxt = MemoryContextSwitchTo(cxt);
			superseded = lappend(superseded, rs_snapshot_key(run));
			MemoryContextSwitchTo(spi_cxt);
		}
		values[1] = Int64GetDatum(run->run_id);
		run->run_id = rs_insert_run(req, &run->started_at);
		values[0] = Int64GetDatum(run->run_id);
		argtypes[0] = INT8OID;
		argtypes[1] = INT8OID;
		rs_spi_exec("UPDATE redis_sync.run n SET attempts = o.attempts "
					"FROM redis_sync.run o WHERE n.run_id = $1 AND o.run_id = $2",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
		rs_commit_xact();
		shared->run_id = run->run_id;
		prepared = false;
		rs_begin_xact("redis_sync: preparing a run");
	}
	if (prepared)
	{
		values[0] = Int64GetDatum(run->run_id);
		rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'pending', error = NULL "
					"WHERE run_id = $1 AND status <> 'succeeded'",
					1, argtypes, values, NULL, SPI_OK_UPDATE);
	}
	else
		rs_new_run(req, run, cxt);
	rs_commit_xact();
	rs_drop_snapshots(run, superseded);
	return true;
}

/*
 * rs_job_busy
 *		A scheduled run found its job's lock taken.  If the run that holds it
 *		is of the same date, this occurrence is recorded as "skipped": the
 *		running run syncs that day.  Otherwise the date is still owed: the
 *		date's unfinished run (or a new row) is left "interrupted" with a
 *		retry time, and the scheduler starts it once the job is free.
 */
static void
rs_job_busy(const RsRunRequest *req, RsRunShared *shared)
{
	Oid			argtypes[2] = {INT8OID, DATEOID};
	Datum		values[2];

	values[0] = Int64GetDatum(req->job_id);
	values[1] = DateADTGetDatum(req->run_date);
	rs_spi_exec("SELECT 1 FROM redis_sync.run WHERE job_id = $1 AND run_date = $2 "
				"AND status = 'running'",
				2, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		rs_spi_exec("INSERT INTO redis_sync.run (job_id, run_date, status, trigger, finished_at, error) "
					"VALUES ($1, $2, 'skipped', 'schedule', now(), "
					"'The previous run of the job was still running.')",
					2, argtypes, values, NULL, SPI_OK_INSERT);
		strlcpy(shared->status, "skipped", sizeof(shared->status));
		return;
	}
	rs_spi_exec("UPDATE redis_sync.run r SET retry_at = now() + interval '2 seconds', "
				"error = 'The job was busy with another run; the scheduler starts this one when it ends.' "
				"WHERE run_id = (SELECT max(run_id) FROM redis_sync.run r2 "
				"  WHERE r2.job_id = $1 AND r2.run_date = $2 "
				"  AND r2.status IN ('failed', 'cancelled', 'interrupted'))",
				2, argtypes, values, NULL, SPI_OK_UPDATE);
	if (SPI_processed == 0)
		rs_spi_exec("INSERT INTO redis_sync.run (job_id, run_date, status, trigger, finished_at, "
					"error, attempts, retry_at) "
					"VALUES ($1, $2, 'interrupted', 'schedule', now(), "
					"'The job was busy with another run; the scheduler starts this one when it ends.', "
					"0, now() + interval '2 seconds')",
					2, argtypes, values, NULL, SPI_OK_INSERT);
	strlcpy(shared->status, "interrupted", sizeof(shared->status));
}

/*
 * rs_supersede_runs
 *		Mark the job's unfinished runs of a date that a later run of that
 *		date has completed "superseded": resuming them would write their
 *		older values over the later run's.  Returns the names (a List of
 *		char *, allocated in cxt) of the snapshots that they read, which are
 *		no longer needed; the names are derived from the run ids and starts
 *		(and a sharded run's shards), never read from the catalog.
 */
static List *
rs_supersede_runs(int64 job_id, DateADT run_date, MemoryContext cxt)
{
	List	   *snapshots = NIL;
	List	   *sharded = NIL;
	Oid			argtypes[2] = {INT8OID, DATEOID};
	Datum		values[2];
	ListCell   *lc;

	values[0] = Int64GetDatum(job_id);
	values[1] = DateADTGetDatum(run_date);
	rs_spi_exec("UPDATE redis_sync.run r SET status = 'superseded', retry_at = NULL, "
				"finished_at = coalesce(r.finished_at, now()), "
				"error = coalesce(r.error || ' ', '') || 'Superseded by run ' || n.run_id || "
				"', a later run of the same date that succeeded; it can no longer be resumed.' "
				"FROM (SELECT max(run_id) AS run_id FROM redis_sync.run "
				"      WHERE job_id = $1 AND run_date = $2 AND status = 'succeeded') n "
				"WHERE r.job_id = $1 AND r.run_date = $2 AND r.run_id < n.run_id "
				"AND r.status IN ('failed', 'cancelled', 'interrupted') "
				"RETURNING r.run_id, r.read_key IS DISTINCT FROM r.source_key AND r.read_key IS NOT NULL, "
				"r.shards > 1, r.source_key, r.started_at",
				2, argtypes, values, NULL, SPI_OK_UPDATE_RETURNING);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		run_id = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
		MemoryContext spi_cxt = MemoryContextSwitchTo(cxt);

		if (DatumGetBool(rs_spi_getdatum(i, 3, &isnull)))
		{
			int64	   *id = palloc(sizeof(int64));

			*id = run_id;
			sharded = lappend(sharded, id);
		}
		else if (DatumGetBool(rs_spi_getdatum(i, 2, &isnull)))
			snapshots = rs_single_snapshot_names(run_id,
												 DatumGetTimestampTz(rs_spi_getdatum(i, 5, &isnull)),
												 TextDatumGetCString(rs_spi_getdatum(i, 4, &isnull)),
												 snapshots);
		MemoryContextSwitchTo(spi_cxt);
	}
	foreach(lc, sharded)
		snapshots = rs_run_snapshots(*(int64 *) lfirst(lc), snapshots, cxt);
	return snapshots;
}

/*
 * rs_snapshot_suffix
 *		What names a run's copies: the cluster's system identifier and the
 *		database's OID, so that runs of other databases and clusters that
 *		share the Redis server never use (or drop) them, then the run id and
 *		the run's start (in microseconds since 2000).  Clusters cloned from
 *		one another (a restored backup, a promoted standby) share the
 *		identifier, the OIDs and the run ids that follow the cloning; the
 *		start tells their runs apart.
 */
static char *
rs_snapshot_suffix(int64 run_id, TimestampTz started_at)
{
	return psprintf(":" UINT64_FORMAT ":%u:" INT64_FORMAT ":" INT64_FORMAT,
					GetSystemIdentifier(), MyDatabaseId, run_id, (int64) started_at);
}

/*
 * rs_snapshot_key
 *		The name of the run's snapshot key (rs_snapshot_suffix).  On a Redis
 *		Cluster the copy is made by scripts that name both keys, so the name
 *		also carries the day key's hash tag (or the whole day key as one),
 *		which puts it in the day key's slot.
 */
static char *
rs_snapshot_key(RsRun *run)
{
	char	   *suffix = rs_snapshot_suffix(run->run_id, run->started_at);

	if (run->conn != NULL && rs_is_cluster(run->conn) && run->source_key != NULL)
		return rs_colocated_key("redis_sync:snapshot:", run->source_key, suffix);
	return psprintf("redis_sync:snapshot%s", suffix);
}

/*
 * rs_single_snapshot_names
 *		Append to "keys" the names that the copy of a run of one key may
 *		have (rs_snapshot_key): on a standalone server, and on a cluster,
 *		where it carries its key's hash tag.  The run's server is not known
 *		here; dropping a name that does not exist costs nothing.
 */
static List *
rs_single_snapshot_names(int64 run_id, TimestampTz started_at, const char *source_key,
						 List *keys)
{
	char	   *suffix = rs_snapshot_suffix(run_id, started_at);
	const char *tag;
	size_t		taglen;

	keys = lappend(keys, psprintf("redis_sync:snapshot%s", suffix));
	if (rs_key_hash_tag(source_key, strlen(source_key), &tag, &taglen) ||
		(strchr(source_key, '{') == NULL && strchr(source_key, '}') == NULL))
		keys = lappend(keys, rs_colocated_key("redis_sync:snapshot:", source_key, suffix));
	return keys;
}

/*
 * rs_new_run
 *		Prepare a run that has not read anything yet: count the day's members
 *		and cut them into partitions.  A day's key that is read directly gets
 *		all its partitions now.  A key that may still change is copied
 *		(zset_snapshot.c): here the copy begins, and rs_copy_while_syncing
 *		finishes it, recording each partition once it is copied; the run's
 *		member count stays NULL until the copy is complete.  The run's
 *		read_key and copy are allocated in cxt, the run's context.
 */
static void
rs_new_run(const RsRunRequest *req, RsRun *run, MemoryContext cxt)
{
	Oid			argtypes[4] = {INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (run->nshards > 1)
	{
		rs_new_sharded_run(req, run, cxt);
		return;
	}

	/*
	 * Which date is live: today in redis_sync.timezone, or else in the
	 * coordinator's TimeZone (the server's, with the database's and the job
	 * owner's settings), as for the scheduler; the caller's session settings
	 * do not reach this process.
	 */
	if (req->run_date >= rs_today(GetCurrentTimestamp()))
	{
		run->read_key = MemoryContextStrdup(cxt, rs_snapshot_key(run));
		/* a page at a time, each with the expiry: Redis keeps serving its clients */
		run->copy = MemoryContextAllocZero(cxt, sizeof(ZsetCopy));
		zr_copy_begin(run->conn, run->copy, run->source_key, run->read_key, RS_SNAPSHOT_TTL_SECONDS);
		run->first_count = run->copy->card_at_start;
		nulls[1] = 'n';
	}
	else
	{
		run->read_key = run->source_key;
		run->first_count = zr_card(run->conn, run->read_key);
	}
	run->nparts = (int) Min((int64) run->job->partitions, run->first_count);
	run->parts_recorded = 0;

	values[0] = Int64GetDatum(run->run_id);
	values[1] = Int64GetDatum(run->first_count);
	values[2] = CStringGetTextDatum(run->source_key);
	values[3] = CStringGetTextDatum(run->read_key);
	rs_spi_exec("UPDATE redis_sync.run SET members = $2, source_key = $3, read_key = $4 "
				"WHERE run_id = $1",
				4, argtypes, values, nulls, SPI_OK_UPDATE);
	rs_spi_exec("DELETE FROM redis_sync.run_partition WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_DELETE);
	if (run->copy == NULL)
		rs_record_partitions(run, run->first_count, true);
}

/*
 * rs_new_sharded_run
 *		rs_new_run for a job of several shards: each shard's key (daily_key
 *		with %s the shard number) is recorded in run_shard, and cut into
 *		partitions as rs_new_run cuts one key, numbered on from the previous
 *		shard's.  Keys of a past date are counted and cut now; keys that may
 *		still change are copied one after another, each with its own copy
 *		(rs_shard_snapshot_key): here the first copy begins, and
 *		rs_copy_while_syncing goes on from there.
 */
static void
rs_new_sharded_run(const RsRunRequest *req, RsRun *run, MemoryContext cxt)
{
	Oid			argtypes[5] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		live = req->run_date >= rs_today(GetCurrentTimestamp());
	int64		total = 0;

	values[0] = Int64GetDatum(run->run_id);
	values[1] = Int32GetDatum(run->nshards);
	rs_spi_exec("UPDATE redis_sync.run SET members = NULL, shards = $2, source_key = NULL, "
				"read_key = NULL WHERE run_id = $1",
				2, argtypes, values, NULL, SPI_OK_UPDATE);
	rs_spi_exec("DELETE FROM redis_sync.run_partition WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_DELETE);
	rs_spi_exec("DELETE FROM redis_sync.run_shard WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_DELETE);

	run->part_base = 0;
	run->nparts = 0;
	for (int s = 0; s < run->nshards; s++)
	{
		RsRunShard *sh = &run->shards[s];

		sh->source_key = MemoryContextStrdup(cxt, rs_format_shard_key(run->job->daily_key,
																	  req->run_date, s));
		if (live)
		{
			sh->read_key = MemoryContextStrdup(cxt, rs_shard_snapshot_key(run->run_id, run->started_at,
																		 s, sh->source_key));
			sh->members = -1;
			nulls[4] = 'n';
		}
		else
		{
			sh->read_key = sh->source_key;
			sh->members = zr_card(run->conn, sh->source_key);
			values[4] = Int64GetDatum(sh->members);
		}
		values[1] = Int32GetDatum(s);
		values[2] = CStringGetTextDatum(sh->source_key);
		values[3] = CStringGetTextDatum(sh->read_key);
		rs_spi_exec("INSERT INTO redis_sync.run_shard (run_id, shard, source_key, read_key, members) "
					"VALUES ($1, $2, $3, $4, $5)",
					5, argtypes, values, nulls, SPI_OK_INSERT);
		if (!live)
		{
			rs_begin_shard(run, s, sh->members);
			rs_record_partitions(run, sh->members, true);
			total += sh->members;
		}
	}
	if (live)
		rs_begin_shard_copy(run, 0, cxt);
	else
	{
		values[1] = Int64GetDatum(total);
		argtypes[1] = INT8OID;
		rs_spi_exec("UPDATE redis_sync.run SET members = $2 WHERE run_id = $1",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
	}
}

/*
 * rs_begin_shard
 *		Make "shard", counted "count" members, the one whose partitions are
 *		cut next, numbered on from the previous shard's.
 */
static void
rs_begin_shard(RsRun *run, int shard, int64 count)
{
	run->part_base += run->nparts;
	run->cur_shard = shard;
	run->source_key = run->shards[shard].source_key;
	run->first_count = count;
	run->nparts = (int) Min((int64) run->job->partitions, count);
	run->parts_recorded = 0;
}

/*
 * rs_begin_shard_copy
 *		Begin the copy of a shard's key of a live date into its own copy;
 *		its partitions are cut from the key's size when the copy began.
 *		The copy's state is allocated in cxt, the run's context.
 */
static void
rs_begin_shard_copy(RsRun *run, int shard, MemoryContext cxt)
{
	RsRunShard *sh = &run->shards[shard];

	if (run->copy == NULL)
		run->copy = MemoryContextAllocZero(cxt, sizeof(ZsetCopy));
	zr_copy_begin(run->conn, run->copy, sh->source_key, sh->read_key, RS_SNAPSHOT_TTL_SECONDS);
	rs_begin_shard(run, shard, run->copy->card_at_start);
}

/*
 * rs_shard_snapshot_key
 *		The name of the copy of a shard's key: rs_snapshot_key's, with the
 *		shard number, and the shard key's hash tag (the text between its
 *		first "{" and the next "}", if not empty; else the whole key) in
 *		braces, so that on a Redis Cluster the copy lives in the key's slot.
 */
static char *
rs_shard_snapshot_key(int64 run_id, TimestampTz started_at, int shard, const char *source_key)
{
	const char *open = strchr(source_key, '{');
	const char *close = open ? strchr(open + 1, '}') : NULL;
	int			taglen;
	const char *tag;

	if (open != NULL && close != NULL && close > open + 1)
	{
		tag = open + 1;
		taglen = (int) (close - tag);
	}
	else
	{
		tag = source_key;
		taglen = (int) strlen(source_key);
	}
	return psprintf("redis_sync:snapshot:{%.*s}%s:%d",
					taglen, tag, rs_snapshot_suffix(run_id, started_at), shard);
}

/*
 * rs_run_snapshots
 *		Append to "keys" (allocated in cxt) the names of the copies that a
 *		sharded run made: derived from the run id and start, the shard and
 *		the shard's key, as rs_new_sharded_run named them.  Must be called in a
 *		transaction.
 */
static List *
rs_run_snapshots(int64 run_id, List *keys, MemoryContext cxt)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run_id)};

	rs_spi_exec("SELECT s.shard, s.source_key, r.started_at "
				"FROM redis_sync.run_shard s JOIN redis_sync.run r USING (run_id) "
				"WHERE s.run_id = $1 AND s.read_key <> s.source_key ORDER BY s.shard",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			shard = DatumGetInt32(rs_spi_getdatum(i, 1, &isnull));
		char	   *source = TextDatumGetCString(rs_spi_getdatum(i, 2, &isnull));
		TimestampTz started_at = DatumGetTimestampTz(rs_spi_getdatum(i, 3, &isnull));
		MemoryContext old = MemoryContextSwitchTo(cxt);

		keys = lappend(keys, rs_shard_snapshot_key(run_id, started_at, shard, source));
		MemoryContextSwitchTo(old);
	}
	return keys;
}

/*
 * rs_copy_unfit
 *		Why a resumed run cannot read again its complete copy "snap" of
 *		"members" members, or NULL if it can: zr_copy_renew renews the
 *		copy's expiry and finds it gone, laid out otherwise than it was
 *		copied, or of another size.  "cut" says what was cut from it ("run"
 *		or "shard").  A copy of no members was never created: its absence
 *		is not a loss.
 */
static char *
rs_copy_unfit(RsRun *run, const char *snap, int64 members, const char *cut)
{
	int64		held = zr_copy_renew(run->conn, snap, members, RS_SNAPSHOT_TTL_SECONDS);

	if (held == -1)
		return members > 0 ? psprintf("Its snapshot \"%s\" no longer exists in Redis.", snap) : NULL;
	if (held == -2)
		return psprintf("The keys of its snapshot \"%s\" no longer hold its members as they were copied.", snap);
	if (held != members)
		return psprintf("Its snapshot \"%s\" holds " INT64_FORMAT " members, and the %s was cut from " INT64_FORMAT ".",
						snap, held, cut, members);
	return NULL;
}

/*
 * rs_resume_shards
 *		Can an unfinished sharded run (that counted "members", -1 if its
 *		copies were not complete) be resumed?  Each shard's key must be the
 *		one the job's template names, and, as for a run of one key, a shard
 *		read directly must hold the members it was cut from, and a shard's
 *		copy must still exist and hold the members it was cut from (its
 *		expiry is refreshed).  Fills run->shards
 *		(in cxt) and returns NULL if so; else why not.  Must be called in a
 *		transaction.
 */
static char *
rs_resume_shards(RsRun *run, int64 members, MemoryContext cxt)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->run_id)};
	SPITupleTable *tuptable;
	uint64		n;

	if (members < 0)
		return psprintf("Its copies of the shards' keys were not complete.");
	rs_spi_exec("SELECT shard, source_key, read_key, members FROM redis_sync.run_shard "
				"WHERE run_id = $1 ORDER BY shard",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	tuptable = SPI_tuptable;
	n = SPI_processed;
	if (n != (uint64) run->nshards)
		return psprintf("It recorded " UINT64_FORMAT " shards, and the job has %d.", n, run->nshards);
	for (uint64 i = 0; i < n; i++)
	{
		RsRunShard *sh = &run->shards[i];
		bool		isnull;
		int			shard;
		char	   *source;
		char	   *readkey;
		int64		count;

		shard = DatumGetInt32(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &isnull));
		source = TextDatumGetCString(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &isnull));
		readkey = TextDatumGetCString(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 3, &isnull));
		count = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 4, &isnull));
		if (isnull)
			count = -1;
		sh->source_key = MemoryContextStrdup(cxt, rs_format_shard_key(run->job->daily_key,
																	  run->run_date, (int) i));
		if (shard != (int) i || strcmp(source, sh->source_key) != 0)
			return psprintf("Its shard %d read Redis key \"%s\", and the job's shard %d is \"%s\".",
							shard, source, (int) i, sh->source_key);
		if (count < 0)
			return psprintf("Its copy of Redis key \"%s\" was not complete.", source);
		sh->members = count;
		if (strcmp(readkey, source) != 0)
		{
			char	   *snap = rs_shard_snapshot_key(run->run_id, run->started_at, shard, source);
			char	   *why;

			/* the workers read the recorded name: it must be the derived one */
			if (strcmp(readkey, snap) != 0)
				return psprintf("Its shard %d records the read key \"%s\", which is not its copy \"%s\".",
								shard, readkey, snap);
			if ((why = rs_copy_unfit(run, snap, count, "shard")) != NULL)
				return why;
			sh->read_key = MemoryContextStrdup(cxt, snap);
		}
		else
		{
			int64		card = zr_card(run->conn, source);

			if (card != count)
				return psprintf("Redis key \"%s\" holds " INT64_FORMAT " members, and the run started with " INT64_FORMAT ".",
								source, card, count);
			sh->read_key = sh->source_key;
		}
	}
	return NULL;
}

/*
 * rs_launch_workers
 *		Start up to "wanted" sync workers for the run, as the job's owner,
 *		within redis_sync.max_workers (all roles), redis_sync.max_workers_per_role
 *		(the owner's workers) and the free background worker slots
 *		(rs_start_workers_limited).  Returns how many started.
 */
static int
rs_launch_workers(RsRun *run, int wanted)
{
	BackgroundWorker worker;
	RsWorkerRequest wreq;
	const char *limit;
	int			launched;

	memset(&wreq, 0, sizeof(wreq));
	wreq.run_id = run->run_id;
	wreq.job_id = run->job->job_id;
	wreq.owner = run->job->owner;
	wreq.dboid = MyDatabaseId;
	/* the workers read the parts as this process cut and checked them */
	wreq.copy_key_members = rs_copy_key_members;
	rs_init_bgworker(&worker, "rs_sync_worker_main", RS_WORKER_TYPE, &wreq, sizeof(wreq));
	snprintf(worker.bgw_name, BGW_MAXLEN, "redis_sync worker for run " INT64_FORMAT,
			 run->run_id);

	launched = rs_start_workers_limited(&worker, run->job->owner, wanted, &run->workers, &limit);
	if (launched < wanted)
		ereport(LOG,
				(errmsg("redis_sync run " INT64_FORMAT " started %d of %d sync workers",
						run->run_id, launched, wanted),
				 errdetail("The limit %s is reached.", limit)));
	return launched;
}

/*
 * rs_stop_workers
 *		Terminate the run's workers that are still running and wait until
 *		they have exited, so that their partitions are no longer touched.
 */
static void
rs_stop_workers(RsRun *run)
{
	ListCell   *lc;

	foreach(lc, run->workers)
		TerminateBackgroundWorker(lfirst(lc));
	foreach(lc, run->workers)
		(void) WaitForBackgroundWorkerShutdown(lfirst(lc));
	run->workers = NIL;
}

/*
 * rs_job_changed
 *		Before a run may succeed: is its job still there, with the
 *		definition the run started with?  If not, fill "edata" with why and
 *		return the status the run ends with instead ("cancelled" for a
 *		dropped job, "failed" for a redefined one); else NULL.
 */
static const char *
rs_job_changed(RsRun *run, ErrorData *edata)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->job->job_id)};
	RsJob	   *now;
	bool		same;

	rs_spi_exec("SELECT 1 FROM redis_sync.job WHERE job_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	memset(edata, 0, sizeof(ErrorData));
	edata->sqlerrcode = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	if (SPI_processed == 0)
	{
		edata->message = psprintf("job \"%s\" was dropped during run " INT64_FORMAT,
								  run->job->job_name, run->run_id);
		edata->detail = pstrdup("The run's result is not recorded.");
		return "cancelled";
	}
	now = rs_lookup_job_by_id(run->job->job_id);
	same = strcmp(now->server_name, run->job->server_name) == 0 &&
		strcmp(now->daily_key, run->job->daily_key) == 0 &&
		(now->total_key == NULL) == (run->job->total_key == NULL) &&
		(now->total_key == NULL || strcmp(now->total_key, run->job->total_key) == 0) &&
		now->member_table == run->job->member_table &&
		now->daily_table == run->job->daily_table &&
		now->partitions == run->job->partitions &&
		now->shards == run->job->shards &&
		now->owner == run->job->owner;
	if (same)
		return NULL;
	edata->message = psprintf("job \"%s\" was altered during run " INT64_FORMAT,
							  run->job->job_name, run->run_id);
	edata->detail = pstrdup("Its server, keys, tables, partitions, shards or owner changed while the run was going.");
	return "failed";
}

/*
 * rs_run_unproven
 *		Before a run may succeed: did every partition read every rank of its
 *		range, each counted once, and commit it (members_read, counted by the
 *		workers with the chunks), and do the partitions cover the members
 *		that the run counted when it started (in a sharded run, each
 *		shard's partitions the members of that shard)?  If not, fill "edata"
 *		naming the first partition that came up short, make those
 *		partitions read again on resume, and return true.
 */
static bool
rs_run_unproven(RsRun *run, ErrorData *edata)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->run_id)};
	bool		isnull;
	int64		members;
	int64		covered;
	int			part;
	int64		read;
	int64		size;
	char	   *key;

	memset(edata, 0, sizeof(ErrorData));
	edata->sqlerrcode = ERRCODE_DATA_EXCEPTION;
	rs_spi_exec("SELECT coalesce(r.members, -1), "
				"(SELECT coalesce(sum(end_offset - start_offset + 1), 0)::int8 "
				" FROM redis_sync.run_partition p WHERE p.run_id = r.run_id) "
				"FROM redis_sync.run r WHERE r.run_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return false;			/* the run is gone: rs_job_changed says why */
	members = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	covered = DatumGetInt64(rs_spi_getdatum(0, 2, &isnull));
	if (members != covered)
	{
		edata->message = psprintf("the partitions of run " INT64_FORMAT " cover " INT64_FORMAT " of its " INT64_FORMAT " members",
								  run->run_id, covered, members);
		return true;
	}
	if (run->nshards > 1)
	{
		rs_spi_exec("SELECT s.shard, s.read_key, coalesce(s.members, -1), "
					"(SELECT coalesce(sum(end_offset - start_offset + 1), 0)::int8 "
					" FROM redis_sync.run_partition p WHERE p.run_id = s.run_id AND p.shard = s.shard) c "
					"FROM redis_sync.run_shard s WHERE s.run_id = $1 "
					"AND coalesce(s.members, -1) <> (SELECT coalesce(sum(end_offset - start_offset + 1), 0)::int8 "
					" FROM redis_sync.run_partition p WHERE p.run_id = s.run_id AND p.shard = s.shard) "
					"ORDER BY s.shard LIMIT 1",
					1, argtypes, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			int			shard = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));

			key = TextDatumGetCString(rs_spi_getdatum(0, 2, &isnull));
			members = DatumGetInt64(rs_spi_getdatum(0, 3, &isnull));
			covered = DatumGetInt64(rs_spi_getdatum(0, 4, &isnull));
			edata->message = psprintf("the partitions of shard %d of run " INT64_FORMAT " cover " INT64_FORMAT " of its " INT64_FORMAT " members",
									  shard, run->run_id, covered, members);
			edata->detail = psprintf("The shard was read from Redis key \"%s\".", key);
			return true;
		}
	}
	rs_spi_exec("SELECT p.partition_no, p.members_read, p.end_offset - p.start_offset + 1, p.status, "
				"s.read_key "
				"FROM redis_sync.run_partition p LEFT JOIN redis_sync.run_shard s "
				"ON s.run_id = p.run_id AND s.shard = p.shard "
				"WHERE p.run_id = $1 "
				"AND (p.status <> 'succeeded' OR p.members_read <> p.end_offset - p.start_offset + 1) "
				"ORDER BY p.partition_no LIMIT 1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	part = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
	read = DatumGetInt64(rs_spi_getdatum(0, 2, &isnull));
	size = DatumGetInt64(rs_spi_getdatum(0, 3, &isnull));
	{
		Datum		d = rs_spi_getdatum(0, 5, &isnull);

		if (!isnull)
			key = TextDatumGetCString(d);
		else if (run->read_key != NULL)
			key = run->read_key;
		else
			key = run->source_key ? run->source_key : "";
	}
	edata->message = psprintf("partition %d of run " INT64_FORMAT " read " INT64_FORMAT " of " INT64_FORMAT " ranks",
							  part, run->run_id, read, size);
	edata->detail = psprintf("Redis key \"%s\" returned fewer members than the run counted when it started: "
							 "the key shrank or vanished during the run (deleted, evicted, or lost in a Redis restart). "
							 "A resumed run reads the short partitions again; one with resume => false reads the day anew.",
							 key);

	/* A resume reads the short partitions again, from their start. */
	rs_spi_exec("DELETE FROM redis_sync.rejected j USING redis_sync.run_partition p "
				"WHERE j.run_id = $1 AND p.run_id = $1 AND p.partition_no = j.partition_no "
				"AND p.status = 'succeeded' AND p.members_read <> p.end_offset - p.start_offset + 1",
				1, argtypes, values, NULL, SPI_OK_DELETE);
	rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'failed', next_offset = start_offset, "
				"members_read = 0, missing_total = 0, rejected = 0, "
				"error = 'It read fewer members than ranks.' "
				"WHERE run_id = $1 AND status = 'succeeded' "
				"AND members_read <> end_offset - start_offset + 1",
				1, argtypes, values, NULL, SPI_OK_UPDATE);
	return true;
}

/*
 * rs_copy_changed
 *		Before a run that read copies may succeed: does each copy still hold
 *		the members that its partitions were cut from?  A complete copy never
 *		changes; one that holds more or fewer members now was changed or
 *		replaced while the workers read it, and a partition may have read
 *		other ranks than its own in full (members added below its range
 *		push members past the last partition).  If so, fill "edata" and
 *		return true; the next sync_run then starts a new run.  A copy that
 *		is gone now is left to rs_run_unproven: if it vanished before a
 *		partition read it, that partition came up short.  Must be called in
 *		a transaction.
 */
static bool
rs_copy_changed(RsRun *run, ErrorData *edata)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->run_id)};

	run->conn = rs_get_connection(run->server, run->user);
	for (int s = 0; s < Max(run->nshards, 1); s++)
	{
		const char *source;
		const char *copy;
		int64		counted;
		int64		held;

		if (run->nshards > 1)
		{
			source = run->shards[s].source_key;
			copy = run->shards[s].read_key;
			counted = run->shards[s].members;
		}
		else
		{
			bool		isnull;

			source = run->source_key;
			copy = run->read_key;
			if (copy == NULL || source == NULL || strcmp(copy, source) == 0)
				continue;
			rs_spi_exec("SELECT members FROM redis_sync.run WHERE run_id = $1",
						1, argtypes, values, NULL, SPI_OK_SELECT);
			if (SPI_processed != 1)
				return false;	/* the run is gone: rs_job_changed says why */
			counted = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
		}
		if (copy == NULL || strcmp(copy, source) == 0)
			continue;
		held = zr_copy_renew(run->conn, copy, counted, RS_SNAPSHOT_TTL_SECONDS);
		if (held == -1 || held == counted)
			continue;
		memset(edata, 0, sizeof(ErrorData));
		edata->sqlerrcode = ERRCODE_DATA_EXCEPTION;
		edata->message = psprintf("the copy of Redis key \"%s\" changed during run " INT64_FORMAT,
								  source, run->run_id);
		if (held == -2)
			edata->detail = psprintf("The keys of the copy \"%s\" hold its " INT64_FORMAT " members in other numbers than they were copied: "
									 "members were moved between them while the run read them. "
									 "The next sync_run starts a new run.",
									 copy, counted);
		else
			edata->detail = psprintf("The copy \"%s\" holds " INT64_FORMAT " members, and the run's partitions were cut from " INT64_FORMAT ": "
									 "members were added to it or removed from it, or another sorted set took its name, while the run read it. "
									 "The next sync_run starts a new run.",
									 copy, held, counted);
		return true;
	}
	return false;
}

/*
 * rs_finish_run
 *		Record the run's final status and totals, drop the snapshot of a
 *		successful run, and fill in the caller's result.  edata is the
 *		coordinator's own error, if any; a failed partition's error is read
 *		from the catalog.  A run ends "succeeded" only if its job is
 *		unchanged and it proves its result (rs_run_unproven,
 *		rs_copy_changed).  A successful run supersedes the older unfinished
 *		runs of its date; a failed scheduled run gets a retry time while it
 *		has retries left.
 */
static void
rs_finish_run(RsRun *run, RsRunShared *shared, const char *status, ErrorData *edata)
{
	Oid			argtypes[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[6];
	char		nulls[7] = "      ";	/* 6 flags and the terminator */
	bool		isnull;
	ErrorData	check;
	int			check_partition = -1;
	List	   *superseded = NIL;
	MemoryContext cxt;			/* the caller's: the snapshots' list lives in it */

	cxt = rs_begin_xact("redis_sync: finishing a run");
	values[0] = Int64GetDatum(run->run_id);
	rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'pending' "
				"WHERE run_id = $1 AND status = 'running'",
				1, argtypes, values, NULL, SPI_OK_UPDATE);
	if (strcmp(status, "succeeded") == 0)
	{
		const char *changed = rs_job_changed(run, &check);

		if (changed != NULL)
		{
			status = changed;
			edata = &check;
		}
		else if (rs_run_unproven(run, &check))
		{
			status = "failed";
			edata = &check;
			if (sscanf(check.message, "partition %d of run", &check_partition) != 1)
				check_partition = -1;
		}
		else if (rs_copy_changed(run, &check))
		{
			status = "failed";
			edata = &check;
		}
	}

	values[1] = CStringGetTextDatum(status);
	if (edata != NULL && edata->message != NULL)
		values[2] = CStringGetTextDatum(edata->message);
	else
		nulls[2] = 'n';
	if (edata != NULL && edata->detail != NULL)
		values[3] = CStringGetTextDatum(edata->detail);
	else
		nulls[3] = 'n';
	if (edata != NULL)
		values[4] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	else
		nulls[4] = 'n';
	values[5] = Int32GetDatum(check_partition);
	if (check_partition < 0)
		nulls[5] = 'n';

	rs_spi_exec("UPDATE redis_sync.run r SET status = $2, finished_at = now(), "
				"error = coalesce(r.error, $3), error_detail = coalesce(r.error_detail, $4), "
				"error_sqlstate = coalesce(r.error_sqlstate, $5), "
				"error_partition = coalesce(r.error_partition, $6), "
				"rows_written = t.rows, missing_total = t.missing, rejected = t.rejected "
				"FROM (SELECT coalesce(sum(rows_written), 0)::int8 AS rows, "
				"             coalesce(sum(missing_total), 0)::int8 AS missing, "
				"             coalesce(sum(rejected), 0)::int8 AS rejected "
				"      FROM redis_sync.run_partition WHERE run_id = $1) t "
				"WHERE r.run_id = $1 "
				"RETURNING coalesce(r.members, 0), r.rows_written, "
				"extract(epoch FROM r.finished_at - coalesce(r.resumed_at, r.started_at))::float8, "
				"r.error, r.error_detail, r.error_sqlstate, r.error_partition, r.error_context",
				6, argtypes, values, nulls, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 1)
	{
		Datum		d;

		shared->members = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
		shared->rows_written = DatumGetInt64(rs_spi_getdatum(0, 2, &isnull));
		shared->seconds = DatumGetFloat8(rs_spi_getdatum(0, 3, &isnull));
		if (strcmp(status, "succeeded") != 0)
		{
			d = rs_spi_getdatum(0, 4, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), shared->message, sizeof(shared->message));
			d = rs_spi_getdatum(0, 5, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), shared->detail, sizeof(shared->detail));
			d = rs_spi_getdatum(0, 6, &isnull);
			shared->sqlerrcode = ERRCODE_INTERNAL_ERROR;
			if (!isnull)
			{
				char	   *code = TextDatumGetCString(d);

				/* the catalog's text is not trusted to be a whole SQLSTATE */
				if (strlen(code) == 5)
					shared->sqlerrcode = MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
			}
			d = rs_spi_getdatum(0, 7, &isnull);
			shared->error_partition = isnull ? -1 : DatumGetInt32(d);
			d = rs_spi_getdatum(0, 8, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), shared->context, sizeof(shared->context));
			if (shared->message[0] == '\0')
				snprintf(shared->message, sizeof(shared->message), "run " INT64_FORMAT " %s",
						 run->run_id, status);
		}
	}
	else
	{
		/* The run's row is gone with its job. */
		shared->sqlerrcode = edata ? edata->sqlerrcode : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		snprintf(shared->message, sizeof(shared->message), "%s",
				 edata && edata->message ? edata->message : "the run's catalog row no longer exists");
		snprintf(shared->detail, sizeof(shared->detail), "%s",
				 edata && edata->detail ? edata->detail : "");
	}

	if (strcmp(status, "succeeded") == 0)
	{
		superseded = rs_supersede_runs(run->job->job_id, run->run_date, cxt);
		if (run->nshards > 1)
			superseded = rs_run_snapshots(run->run_id, superseded, cxt);
		else if (run->read_key != NULL && strcmp(run->read_key, run->source_key) != 0)
		{
			MemoryContext spi_cxt = MemoryContextSwitchTo(cxt);

			superseded = lappend(superseded, rs_snapshot_key(run));
			MemoryContextSwitchTo(spi_cxt);
		}
	}
	else if (strcmp(status, "failed") == 0 && run->scheduled)
	{
		/* The scheduler retries it, with a delay that doubles each time. */
		rs_spi_exec("UPDATE redis_sync.run r SET retry_at = CASE WHEN r.attempts <= j.max_retries "
					"THEN now() + j.retry_delay * pg_catalog.power(2, greatest(r.attempts - 1, 0)) END "
					"FROM redis_sync.job j WHERE r.run_id = $1 AND j.job_id = r.job_id",
					1, argtypes, values, NULL, SPI_OK_UPDATE);
	}
	rs_commit_xact();
	strlcpy(shared->status, status, sizeof(shared->status));

	rs_drop_snapshots(run, superseded);
}

/*
 * rs_drop_snapshots
 *		UNLINK the snapshots given (a List of char *): of a run that
 *		succeeded and of the runs it superseded.  The names are derived from
 *		the run ids and starts (rs_snapshot_key, rs_shard_snapshot_key),
 *		never read from the catalog.
 *		Failing here changes no run's outcome: if Redis is unreachable now,
 *		the snapshots just expire on their own.
 */
static void
rs_drop_snapshots(RsRun *run, List *keys)
{
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *lc;

	if (keys == NIL)
		return;
	PG_TRY();
	{
		rs_begin_xact("redis_sync: dropping snapshots");
		run->conn = rs_get_connection(run->server, run->user);
		foreach(lc, keys)
			zr_copy_drop(run->conn, (char *) lfirst(lc));
		rs_commit_xact();
	}
	PG_CATCH();
	{
		ErrorData  *err;

		MemoryContextSwitchTo(cxt);
		err = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ereport(WARNING,
				(errmsg("could not drop the snapshot of run " INT64_FORMAT ": %s",
						run->run_id, err->message),
				 errdetail("The snapshot expires on its own within 7 days.")));
	}
	PG_END_TRY();
}
