/*-------------------------------------------------------------------------
 *
 * sync_run.c
 *		  redis_sync.sync_run() and the run coordinator: snapshot, partitions,
 *		  launching and watching the workers, and the run's summary.
 *
 * A run's catalog rows must be committed before its workers can see them,
 * and its final status must be committed even when the caller's query is
 * cancelled, so the run is driven by a coordinator background worker with
 * transactions of its own.  sync_run() starts the coordinator, waits on its
 * latch until the coordinator exits, and reports the result that the
 * coordinator left in a small dynamic shared memory segment.  The
 * scheduler starts the same coordinator without waiting.
 *
 * Cancelling or terminating the caller terminates the coordinator; the
 * coordinator terminates its workers and marks the run "cancelled".  Runs of
 * one job are serialized by a session-level advisory lock that the
 * coordinator holds: a second run fails at once (or, when scheduled, is
 * recorded as "skipped").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "redis_sync.h"

/* Result of a run, left by the coordinator for a waiting sync_run(). */
typedef struct RsRunShared
{
	bool		cancel_requested;	/* set by the caller before terminating us */
	bool		done;			/* the fields below are final */
	int64		run_id;
	char		status[16];
	int64		members;
	int64		rows_written;
	double		seconds;
	int			workers_requested;
	int			workers_launched;
	int			sqlerrcode;		/* 0: no error */
	int			error_partition;	/* -1: not a partition's error */
	char		message[1024];
	char		detail[1024];
	char		context[1024];
	char		job_name[NAMEDATALEN * 2];
} RsRunShared;

/* State of the caller while it waits. */
typedef struct RsWaitState
{
	RsRunShared *shared;
	BackgroundWorkerHandle *handle;
	TransactionId hidden_xmin;	/* the caller's xmin, not advertised while
								 * it waits; InvalidTransactionId if none */
} RsWaitState;

/* What the coordinator knows about its run. */
typedef struct RsRun
{
	RsJob	   *job;
	int64		run_id;
	char	   *source_key;
	char	   *read_key;
	ForeignServer *server;
	UserMapping *user;
	RsConnection *conn;
	List	   *workers;		/* BackgroundWorkerHandle * */
} RsRun;

static volatile sig_atomic_t rs_got_sigterm = false;

PG_FUNCTION_INFO_V1(rs_sync_run);

static void rs_caller_cleanup(int code, Datum arg);
static bool rs_caller_needs_no_snapshot(Oid self);
static bool rs_not_immutable_or_self(Oid funcid, void *context);
static bool rs_calls_other_than(Node *node, void *context);
static void rs_hide_caller_xmin(RsWaitState *wait, Oid self);
static void rs_restore_caller_xmin(RsWaitState *wait);
static void rs_coordinator_sigterm(SIGNAL_ARGS);
static void rs_coordinate(const RsRunRequest *req, RsRunShared *shared, RsRun *run);
static bool rs_prepare_run(const RsRunRequest *req, RsRunShared *shared, RsRun *run);
static void rs_new_run(const RsRunRequest *req, RsRun *run);
static int	rs_launch_workers(RsRun *run, int wanted);
static void rs_stop_workers(RsRun *run);
static void rs_finish_run(RsRun *run, RsRunShared *shared, const char *status,
						  ErrorData *edata);
static int64 rs_redis_integer(RsConnection *conn, const char *key, int argc, const char **argv);

/*
 * redis_sync.sync_run(job_name text, run_date date, resume boolean)
 *		Run a job for a day and wait for the run to end.  Returns (run_id,
 *		status, members, rows_written, seconds), or raises the run's first
 *		error with the run and partition in its context.
 */
Datum
rs_sync_run(PG_FUNCTION_ARGS)
{
	char	   *job_name;
	DateADT		run_date;
	bool		resume;
	RsRunRequest req;
	RsJob	   *job;
	dsm_segment *seg;
	RsRunShared *shared;
	RsWaitState wait;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	bool		noticed = false;
	const char *limit;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", i == 0 ? "job_name" : i == 1 ? "run_date" : "resume")));
	job_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	run_date = PG_GETARG_DATEADT(1);
	resume = PG_GETARG_BOOL(2);
	if (DATE_NOT_FINITE(run_date))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("run date must be finite")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/* The job must be visible to the caller (row-level security). */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	job = rs_lookup_job_by_name(job_name, false);
	SPI_finish();

	memset(&req, 0, sizeof(req));
	req.job_id = job->job_id;
	req.owner = job->owner;
	req.dboid = MyDatabaseId;
	req.run_date = run_date;
	req.resume = resume;
	req.snapshot = (run_date >= GetSQLCurrentDate());
	req.trigger = RS_TRIGGER_MANUAL;

	seg = dsm_create(sizeof(RsRunShared), 0);
	shared = dsm_segment_address(seg);
	memset(shared, 0, sizeof(RsRunShared));
	shared->error_partition = -1;
	req.dsm = dsm_segment_handle(seg);

	wait.shared = shared;
	wait.handle = NULL;
	wait.hidden_xmin = InvalidTransactionId;

	/* A run cap or every background worker slot may be reached: wait. */
	while (!rs_start_coordinator_limited(&req, &wait.handle, &limit))
	{
		if (!noticed)
			ereport(NOTICE,
					(errmsg("waiting for a free run slot to start job \"%s\"", job_name),
					 errdetail("The limit %s is reached.", limit),
					 errhint("Each run needs one coordinator plus its workers; see %s.", limit)));
		noticed = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 200L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	rs_hide_caller_xmin(&wait, fcinfo->flinfo->fn_oid);
	PG_ENSURE_ERROR_CLEANUP(rs_caller_cleanup, PointerGetDatum(&wait));
	{
		for (;;)
		{
			pid_t		pid;
			BgwHandleStatus st = GetBackgroundWorkerPid(wait.handle, &pid);

			if (st == BGWH_STOPPED)
				break;
			if (st == BGWH_POSTMASTER_DIED)
				ereport(FATAL,
						(errcode(ERRCODE_ADMIN_SHUTDOWN),
						 errmsg("postmaster exited during a redis_sync run")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(rs_caller_cleanup, PointerGetDatum(&wait));
	rs_restore_caller_xmin(&wait);

	pg_read_barrier();
	if (!shared->done)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("redis_sync coordinator of job \"%s\" exited unexpectedly", job_name),
				 shared->run_id > 0 ?
				 errhint("Run redis_sync.sync_run() again to resume run " INT64_FORMAT ".",
						 shared->run_id) : 0));
	if (shared->workers_launched > 0 && shared->workers_launched < shared->workers_requested)
		ereport(NOTICE,
				(errmsg("run " INT64_FORMAT " used %d of %d workers",
						shared->run_id, shared->workers_launched, shared->workers_requested),
				 errhint("Raise max_worker_processes to run more workers at once.")));
	if (shared->sqlerrcode != 0)
	{
		RsRunShared copy = *shared;

		dsm_detach(seg);
		if (copy.run_id > 0 && copy.error_partition >= 0)
			ereport(ERROR,
					(errcode(copy.sqlerrcode),
					 errmsg_internal("%s", copy.message),
					 copy.detail[0] ? errdetail_internal("%s", copy.detail) : 0,
					 copy.context[0] ? errcontext("%s", copy.context) : 0,
					 errcontext("redis_sync run " INT64_FORMAT " of job \"%s\", partition %d",
								copy.run_id, job_name, copy.error_partition)));
		if (copy.run_id > 0)
			ereport(ERROR,
					(errcode(copy.sqlerrcode),
					 errmsg_internal("%s", copy.message),
					 copy.detail[0] ? errdetail_internal("%s", copy.detail) : 0,
					 errcontext("redis_sync run " INT64_FORMAT " of job \"%s\"",
								copy.run_id, job_name)));
		ereport(ERROR,
				(errcode(copy.sqlerrcode),
				 errmsg_internal("%s", copy.message),
				 copy.detail[0] ? errdetail_internal("%s", copy.detail) : 0));
	}

	values[0] = Int64GetDatum(shared->run_id);
	values[1] = CStringGetTextDatum(shared->status);
	values[2] = Int64GetDatum(shared->members);
	values[3] = Int64GetDatum(shared->rows_written);
	values[4] = Float8GetDatum(shared->seconds);
	dsm_detach(seg);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * rs_caller_cleanup
 *		The caller is leaving by error or exit (cancel, terminate): ask the
 *		coordinator to cancel the run.
 */
static void
rs_caller_cleanup(int code, Datum arg)
{
	RsWaitState *wait = (RsWaitState *) DatumGetPointer(arg);

	rs_restore_caller_xmin(wait);
	wait->shared->cancel_requested = true;
	pg_write_barrier();
	if (wait->handle != NULL)
		TerminateBackgroundWorker(wait->handle);
}

/*
 * rs_hide_caller_xmin
 *		While sync_run() waits for its run, stop advertising the caller's
 *		snapshot xmin, when nothing can read with that snapshot any more.
 *
 * A backend's xmin holds back the removal of every row version that dies
 * after it was taken.  The caller of sync_run() would hold it for the whole
 * run, so the versions that the workers' updates leave behind could not be
 * pruned during the run: no update could stay on its page (HOT), each
 * wrote a new index entry and a new page, and a 1,000,000-member run wrote
 * twice the WAL and twice the full-page images that it writes otherwise,
 * and left the dead versions to the next reader.  sync_run() itself reads
 * nothing after it starts waiting, so the xmin only matters if the query
 * around it does; rs_caller_needs_no_snapshot decides that it does not.
 * The xmin is advertised again before sync_run() returns or fails.
 */
static void
rs_hide_caller_xmin(RsWaitState *wait, Oid self)
{
	if (!TransactionIdIsValid(MyProc->xmin) || !rs_caller_needs_no_snapshot(self))
		return;
	/* The catalog snapshot would be read without the xmin's protection. */
	InvalidateCatalogSnapshot();
	wait->hidden_xmin = MyProc->xmin;
	MyProc->xmin = InvalidTransactionId;
}

/*
 * rs_restore_caller_xmin
 *		Advertise the caller's xmin again (if it was hidden).  It may be
 *		older than the removal horizon that others computed meanwhile; that
 *		only keeps more rows, and the snapshot it belongs to reads nothing.
 */
static void
rs_restore_caller_xmin(RsWaitState *wait)
{
	if (!TransactionIdIsValid(wait->hidden_xmin))
		return;
	if (!TransactionIdIsValid(MyProc->xmin))
		MyProc->xmin = wait->hidden_xmin;
	wait->hidden_xmin = InvalidTransactionId;
}

/*
 * rs_caller_needs_no_snapshot
 *		True when sync_run() (function "self") is the whole of the query that
 *		called it, so that no one reads with the query's snapshot after
 *		sync_run() starts waiting: read committed (no later statement reuses
 *		the snapshot); called by the portal's own query, not from inside a
 *		function (whose cursors could still read); a plan that is a Result
 *		or a scan of sync_run() itself, with no subplans, whose expressions
 *		call nothing but sync_run() and immutable functions.  That covers
 *		"SELECT redis_sync.sync_run(...)" and "SELECT ... FROM
 *		redis_sync.sync_run(...)", as psql, pg_cron and the README use it.
 */
static bool
rs_caller_needs_no_snapshot(Oid self)
{
	QueryDesc  *qd;
	Plan	   *plan;
	ListCell   *lc;

	if (IsolationUsesXactSnapshot() || ActivePortal == NULL ||
		ActivePortal->strategy != PORTAL_ONE_SELECT)
		return false;
	qd = ActivePortal->queryDesc;
	if (qd == NULL || qd->plannedstmt == NULL || !ActiveSnapshotSet() ||
		GetActiveSnapshot() != qd->snapshot)
		return false;
	if (qd->plannedstmt->subplans != NIL)
		return false;
	plan = qd->plannedstmt->planTree;
	if (plan == NULL || plan->lefttree != NULL || plan->righttree != NULL ||
		!(IsA(plan, Result) || IsA(plan, FunctionScan)))
		return false;
	if (IsA(plan, Result) && ((Result *) plan)->resconstantqual != NULL)
		return false;
	if (IsA(plan, FunctionScan))
	{
		foreach(lc, ((FunctionScan *) plan)->functions)
		{
			RangeTblFunction *rtfunc = lfirst_node(RangeTblFunction, lc);

			if (!IsA(rtfunc->funcexpr, FuncExpr) ||
				((FuncExpr *) rtfunc->funcexpr)->funcid != self ||
				rs_calls_other_than(rtfunc->funcexpr, &self))
				return false;
		}
	}
	foreach(lc, qd->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind != RTE_RESULT && rte->rtekind != RTE_FUNCTION)
			return false;
	}
	return !rs_calls_other_than((Node *) plan->targetlist, &self) &&
		!rs_calls_other_than((Node *) plan->qual, &self);
}

/* check_functions_in_node callback: true for a function that may read. */
static bool
rs_not_immutable_or_self(Oid funcid, void *context)
{
	return funcid != *(Oid *) context && func_volatile(funcid) != PROVOLATILE_IMMUTABLE;
}

/*
 * rs_calls_other_than
 *		Expression walker: true if the expression calls a function other than
 *		"self" that is not immutable, or contains a sublink or subplan.
 */
static bool
rs_calls_other_than(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan))
		return true;
	if (check_functions_in_node(node, rs_not_immutable_or_self, context))
		return true;
	return expression_tree_walker(node, rs_calls_other_than, context);
}

/*
 * rs_start_coordinator
 *		Register a coordinator background worker for the request.  False if
 *		no background worker slot is free.
 */
bool
rs_start_coordinator(const RsRunRequest *req, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "redis_sync");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rs_coordinator_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "redis_sync coordinator for job " INT64_FORMAT,
			 req->job_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "redis_sync coordinator");
	StaticAssertStmt(sizeof(RsRunRequest) <= BGW_EXTRALEN, "RsRunRequest too large");
	memcpy(worker.bgw_extra, req, sizeof(RsRunRequest));
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
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

	run_cxt = AllocSetContextCreate(TopMemoryContext, "redis_sync run",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run_cxt);
	memset(&run, 0, sizeof(run));

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
 *		run's end.
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

	/* Partitions left to do. */
	rs_begin_xact(NULL);
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(run->run_id)};
		bool		isnull;

		rs_spi_exec("SELECT count(*)::int4 FROM redis_sync.run_partition "
					"WHERE run_id = $1 AND status <> 'succeeded'",
					1, argtypes, values, NULL, SPI_OK_SELECT);
		pending = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
	}
	rs_commit_xact();

	wanted = Min(run->job->workers, pending);
	shared->workers_requested = wanted;
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
			shared->workers_launched = rs_launch_workers(run, wanted);
			MemoryContextSwitchTo(loop_cxt);
			if (shared->workers_launched == 0)
			{
				ereport(LOG,
						(errmsg("redis_sync run " INT64_FORMAT " is waiting for a sync worker",
								run->run_id),
						 errdetail("redis_sync.max_workers or max_worker_processes is reached.")));
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
		{
			Oid			argtypes[1] = {INT8OID};
			Datum		values[1] = {Int64GetDatum(run->run_id)};
			bool		isnull;

			rs_spi_exec("SELECT count(*) FILTER (WHERE status = 'failed')::int4, "
						"count(*) FILTER (WHERE status <> 'succeeded')::int4 "
						"FROM redis_sync.run_partition WHERE run_id = $1",
						1, argtypes, values, NULL, SPI_OK_SELECT);
			nfailed = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
			remaining = DatumGetInt32(rs_spi_getdatum(0, 2, &isnull));
		}
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
 * rs_prepare_run
 *		Take the job's lock, then resume the day's unfinished run or create a
 *		new one (with its snapshot and partitions), and commit it so that the
 *		workers can see it.  Returns false if the run was skipped.
 */
static bool
rs_prepare_run(const RsRunRequest *req, RsRunShared *shared, RsRun *run)
{
	LOCKTAG		tag;
	Oid			argtypes[3];
	Datum		values[3];
	bool		isnull;
	bool		resumed = false;

	rs_begin_xact("redis_sync: preparing a run");
	run->job = rs_lookup_job_by_id(req->job_id);
	strlcpy(shared->job_name, run->job->job_name, sizeof(shared->job_name));

	rs_job_lock_tag(&tag, req->job_id);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		if (req->trigger == RS_TRIGGER_SCHEDULE)
		{
			argtypes[0] = INT8OID;
			values[0] = Int64GetDatum(req->job_id);
			argtypes[1] = DATEOID;
			values[1] = DateADTGetDatum(req->run_date);
			rs_spi_exec("INSERT INTO redis_sync.run (job_id, run_date, status, trigger, finished_at, error) "
						"VALUES ($1, $2, 'skipped', 'schedule', now(), "
						"'The previous run of the job was still running.')",
						2, argtypes, values, NULL, SPI_OK_INSERT);
			rs_commit_xact();
			strlcpy(shared->status, "skipped", sizeof(shared->status));
			return false;
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("job \"%s\" is already running", run->job->job_name),
				 errhint("Wait for the running sync to end, or cancel it.")));
	}

	/* We hold the lock: a run still marked running was interrupted. */
	argtypes[0] = INT8OID;
	values[0] = Int64GetDatum(req->job_id);
	rs_spi_exec("UPDATE redis_sync.run SET status = 'interrupted', finished_at = now() "
				"WHERE job_id = $1 AND status = 'running'",
				1, argtypes, values, NULL, SPI_OK_UPDATE);

	run->server = GetForeignServerByName(run->job->server_name, false);
	/* USAGE may have been revoked, or the catalog row changed, since create_job. */
	rs_check_server_access(run->server, run->job->owner);
	run->user = GetUserMapping(run->job->owner, run->server->serverid);
	run->conn = rs_get_connection(run->server, run->user);

	if (req->resume)
	{
		argtypes[1] = DATEOID;
		values[1] = DateADTGetDatum(req->run_date);
		rs_spi_exec("SELECT run_id, source_key, read_key, members FROM redis_sync.run "
					"WHERE job_id = $1 AND run_date = $2 "
					"AND status IN ('failed', 'cancelled', 'interrupted') AND read_key IS NOT NULL "
					"ORDER BY run_id DESC LIMIT 1",
					2, argtypes, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			int64		old_run = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
			char	   *source = TextDatumGetCString(rs_spi_getdatum(0, 2, &isnull));
			char	   *readkey = TextDatumGetCString(rs_spi_getdatum(0, 3, &isnull));
			int64		members = DatumGetInt64(rs_spi_getdatum(0, 4, &isnull));
			const char *argv[2] = {"EXISTS", readkey};

			if (strcmp(source, readkey) != 0 && members > 0 &&
				rs_redis_integer(run->conn, readkey, 2, argv) == 0)
			{
				/* The snapshot is gone (expired, or Redis lost it): start over. */
				ereport(NOTICE,
						(errmsg("snapshot \"%s\" of run " INT64_FORMAT " no longer exists; starting a new run",
								readkey, old_run)));
				argtypes[0] = INT8OID;
				values[0] = Int64GetDatum(old_run);
				rs_spi_exec("UPDATE redis_sync.run SET status = 'failed', "
							"error = 'Its snapshot key no longer exists in Redis.' WHERE run_id = $1",
							1, argtypes, values, NULL, SPI_OK_UPDATE);
			}
			else
			{
				run->run_id = old_run;
				run->source_key = MemoryContextStrdup(TopMemoryContext, source);
				run->read_key = MemoryContextStrdup(TopMemoryContext, readkey);
				argtypes[0] = INT8OID;
				values[0] = Int64GetDatum(old_run);
				rs_spi_exec("UPDATE redis_sync.run r SET status = 'running', trigger = 'resume', "
							"resumed_at = now(), finished_at = NULL, error = NULL, error_detail = NULL, "
							"error_sqlstate = NULL, error_partition = NULL, "
							"resumed_done = (SELECT coalesce(sum(next_offset - start_offset), 0) "
							"FROM redis_sync.run_partition p WHERE p.run_id = r.run_id) "
							"WHERE run_id = $1",
							1, argtypes, values, NULL, SPI_OK_UPDATE);
				rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'pending', error = NULL "
							"WHERE run_id = $1 AND status <> 'succeeded'",
							1, argtypes, values, NULL, SPI_OK_UPDATE);
				resumed = true;
			}
		}
	}
	if (!resumed)
		rs_new_run(req, run);
	rs_commit_xact();

	shared->run_id = run->run_id;
	return true;
}

/*
 * rs_new_run
 *		Insert the run, snapshot the day's key if it may still change, count
 *		its members and record the partitions.
 */
static void
rs_new_run(const RsRunRequest *req, RsRun *run)
{
	Oid			argtypes[5];
	Datum		values[5];
	bool		isnull;
	int64		members;
	int			nparts;

	argtypes[0] = INT8OID;
	values[0] = Int64GetDatum(req->job_id);
	argtypes[1] = DATEOID;
	values[1] = DateADTGetDatum(req->run_date);
	argtypes[2] = TEXTOID;
	values[2] = CStringGetTextDatum(req->trigger == RS_TRIGGER_SCHEDULE ? "schedule" : "manual");
	rs_spi_exec("INSERT INTO redis_sync.run (job_id, run_date, status, trigger) "
				"VALUES ($1, $2, 'running', $3) RETURNING run_id",
				3, argtypes, values, NULL, SPI_OK_INSERT_RETURNING);
	run->run_id = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	run->source_key = MemoryContextStrdup(TopMemoryContext,
										  rs_format_key(run->job->daily_key, req->run_date));

	if (req->snapshot)
	{
		char		ttl[16];
		const char *argv[5];

		run->read_key = MemoryContextStrdup(TopMemoryContext,
											psprintf("redis_sync:snapshot:" INT64_FORMAT ":%s",
													 run->run_id, run->source_key));
		snprintf(ttl, sizeof(ttl), "%d", 7 * 24 * 3600);
		/* ZCARD first, so that a key of another type is reported by its own name. */
		argv[0] = "ZCARD";
		argv[1] = run->source_key;
		(void) rs_redis_integer(run->conn, run->source_key, 2, argv);
		argv[0] = "COPY";
		argv[1] = run->source_key;
		argv[2] = run->read_key;
		argv[3] = "REPLACE";
		(void) rs_redis_integer(run->conn, run->source_key, 4, argv);
		argv[0] = "EXPIRE";
		argv[1] = run->read_key;
		argv[2] = ttl;
		(void) rs_redis_integer(run->conn, run->read_key, 3, argv);
	}
	else
		run->read_key = run->source_key;
	members = zr_card(run->conn, run->read_key);

	nparts = (int) Min((int64) run->job->partitions, members);
	argtypes[0] = INT8OID;
	values[0] = Int64GetDatum(run->run_id);
	argtypes[1] = INT8OID;
	values[1] = Int64GetDatum(members);
	argtypes[2] = TEXTOID;
	values[2] = CStringGetTextDatum(run->source_key);
	argtypes[3] = TEXTOID;
	values[3] = CStringGetTextDatum(run->read_key);
	rs_spi_exec("UPDATE redis_sync.run SET members = $2, source_key = $3, read_key = $4 "
				"WHERE run_id = $1",
				4, argtypes, values, NULL, SPI_OK_UPDATE);
	if (nparts > 0)
	{
		/* The first members % nparts partitions are one rank longer. */
		argtypes[2] = INT4OID;
		values[2] = Int32GetDatum(nparts);
		rs_spi_exec("INSERT INTO redis_sync.run_partition "
					"(run_id, partition_no, start_offset, end_offset, next_offset) "
					"SELECT $1, p, s, s + len - 1, s FROM ("
					"  SELECT p, p * ($2 / $3) + least(p, $2 % $3) AS s, "
					"         $2 / $3 + (p < $2 % $3)::int AS len "
					"  FROM generate_series(0, $3 - 1) p) q",
					3, argtypes, values, NULL, SPI_OK_INSERT);
	}
}

/*
 * rs_redis_integer
 *		Send one command whose reply is an integer, and return it.
 */
static int64
rs_redis_integer(RsConnection *conn, const char *key, int argc, const char **argv)
{
	zr_send_simple(conn, argc, argv);
	return zr_receive_integer(conn, argv[0], key, NULL);
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

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "redis_sync");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rs_sync_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "redis_sync worker for run " INT64_FORMAT,
			 run->run_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, RS_WORKER_TYPE);
	memset(&wreq, 0, sizeof(wreq));
	wreq.run_id = run->run_id;
	wreq.job_id = run->job->job_id;
	wreq.owner = run->job->owner;
	wreq.dboid = MyDatabaseId;
	memcpy(worker.bgw_extra, &wreq, sizeof(wreq));
	worker.bgw_notify_pid = MyProcPid;

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
 * rs_finish_run
 *		Record the run's final status and totals, drop the snapshot of a
 *		successful run, and fill in the caller's result.  edata is the
 *		coordinator's own error, if any; a failed partition's error is read
 *		from the catalog.
 */
static void
rs_finish_run(RsRun *run, RsRunShared *shared, const char *status, ErrorData *edata)
{
	Oid			argtypes[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[6] = "     ";	/* 5 flags and the terminator */
	bool		isnull;

	values[0] = Int64GetDatum(run->run_id);
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

	rs_begin_xact("redis_sync: finishing a run");
	rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'pending' "
				"WHERE run_id = $1 AND status = 'running'",
				1, argtypes, values, NULL, SPI_OK_UPDATE);
	rs_spi_exec("UPDATE redis_sync.run r SET status = $2, finished_at = now(), "
				"error = coalesce(r.error, $3), error_detail = coalesce(r.error_detail, $4), "
				"error_sqlstate = coalesce(r.error_sqlstate, $5), "
				"rows_written = t.rows, missing_total = t.missing "
				"FROM (SELECT coalesce(sum(rows_written), 0)::int8 AS rows, "
				"             coalesce(sum(missing_total), 0)::int8 AS missing "
				"      FROM redis_sync.run_partition WHERE run_id = $1) t "
				"WHERE r.run_id = $1 "
				"RETURNING coalesce(r.members, 0), r.rows_written, "
				"extract(epoch FROM r.finished_at - coalesce(r.resumed_at, r.started_at))::float8, "
				"r.error, r.error_detail, r.error_sqlstate, r.error_partition, r.error_context",
				5, argtypes, values, nulls, SPI_OK_UPDATE_RETURNING);
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
			if (!isnull)
			{
				char	   *code = TextDatumGetCString(d);

				shared->sqlerrcode = MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
			}
			else
				shared->sqlerrcode = ERRCODE_INTERNAL_ERROR;
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
	rs_commit_xact();
	strlcpy(shared->status, status, sizeof(shared->status));

	/*
	 * A finished run no longer needs its snapshot.  The run has succeeded
	 * whatever happens here: if Redis is unreachable now, the snapshot just
	 * expires on its own.
	 */
	if (strcmp(status, "succeeded") == 0 && run->read_key != NULL &&
		strcmp(run->read_key, run->source_key) != 0)
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			const char *argv[2] = {"UNLINK", run->read_key};

			rs_begin_xact("redis_sync: dropping a snapshot");
			run->conn = rs_get_connection(run->server, run->user);
			(void) rs_redis_integer(run->conn, run->read_key, 2, argv);
			rs_commit_xact();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			ereport(WARNING,
					(errmsg("could not drop snapshot \"%s\" of run " INT64_FORMAT ": %s",
							run->read_key, run->run_id, edata->message),
					 errdetail("The snapshot expires on its own within 7 days.")));
		}
		PG_END_TRY();
	}
}
