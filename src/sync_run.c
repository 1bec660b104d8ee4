/*-------------------------------------------------------------------------
 *
 * sync_run.c
 *		  redis_sync.sync_run(): the caller's side of a run.
 *
 * A run's catalog rows must be committed before its workers can see them,
 * and its final status must be committed even when the caller's query is
 * cancelled, so the run is driven by a coordinator background worker with
 * transactions of its own (coordinator.c).  sync_run() checks that the
 * caller's transaction holds no lock the run needs (rs_check_caller_xact),
 * starts the coordinator, waits on its latch until the coordinator exits
 * (watching whether the run waits for the caller's own locks:
 * rs_check_blocked_by_caller), and reports the result that the coordinator
 * left in a small dynamic shared memory segment.
 *
 * Cancelling or terminating the caller terminates the coordinator; the
 * coordinator terminates its workers and marks the run "cancelled".  While
 * it waits, the caller stops advertising its snapshot's xmin when nothing can
 * read with that snapshot any more (rs_hide_caller_xmin).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

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
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "compat.h"
#include "sync.h"

/* State of the caller while it waits. */
typedef struct RsWaitState
{
	RsRunShared *shared;
	BackgroundWorkerHandle *handle;
	TransactionId hidden_xmin;	/* the caller's xmin, not advertised while
								 * it waits; InvalidTransactionId if none */
} RsWaitState;

PG_FUNCTION_INFO_V1(rs_sync_run);

static void rs_caller_cleanup(int code, Datum arg);
static bool rs_caller_needs_no_snapshot(Oid self);
static bool rs_not_immutable_or_self(Oid funcid, void *context);
static bool rs_calls_other_than(Node *node, void *context);
static void rs_hide_caller_xmin(RsWaitState *wait, Oid self);
static void rs_restore_caller_xmin(RsWaitState *wait);
static void rs_check_caller_xact(RsJob *job);
static void rs_check_blocked_by_caller(RsRunShared *shared, const char *job_name);

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
	/* A job whose owner was dropped never runs as anyone else. */
	rs_check_job_owner(job);
	SPI_finish();
	rs_check_caller_xact(job);

	memset(&req, 0, sizeof(req));
	req.job_id = job->job_id;
	req.owner = job->owner;
	req.dboid = MyDatabaseId;
	req.run_date = run_date;
	req.resume = resume;
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
							 250L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			rs_check_blocked_by_caller(shared, job_name);
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
				 errhint("redis_sync.max_workers, redis_sync.max_workers_per_role and max_worker_processes limit the workers that run at once; the server log names the limit that was reached.")));
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
 * rs_check_caller_xact
 *		Refuse to start a run that would wait on the caller's own locks.
 *		The run's coordinator and workers write in transactions of their
 *		own while the caller waits for them, so a lock that the caller's
 *		transaction holds on what they write (a row it changed, a table it
 *		truncated or locked, the job row it altered) would stop them for
 *		ever, and no deadlock detector sees a wait on a latch.  A transaction
 *		that has written anything has a transaction id; one that only locked
 *		a target table holds a lock stronger than AccessShareLock on it.
 */
static void
rs_check_caller_xact(RsJob *job)
{
	Oid			tables[2] = {job->daily_table, job->member_table};

	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot run job \"%s\" in a transaction that has written data", job->job_name),
				 errdetail("The run's workers write in transactions of their own, and would wait for the locks that this transaction holds."),
				 errhint("Commit or roll back first, then call redis_sync.sync_run().")));
	for (int i = 0; i < 2; i++)
	{
		LOCKTAG		tag;

		if (!OidIsValid(tables[i]))
			continue;
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, tables[i]);
		for (LOCKMODE mode = RowShareLock; mode <= AccessExclusiveLock; mode++)
			if (rs_lock_held_by_me(&tag, mode))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot run job \"%s\" in a transaction that locks its table \"%s\"",
								job->job_name, get_rel_name(tables[i])),
						 errdetail("The run's workers write to that table in transactions of their own, and would wait for this transaction's lock."),
						 errhint("Commit or roll back first, then call redis_sync.sync_run().")));
	}
}

/*
 * rs_check_blocked_by_caller
 *		While sync_run() waits: is the coordinator or a worker of the run
 *		waiting, directly or through other sessions, for a lock that the
 *		caller holds?  (Locks taken before the call that rs_check_caller_xact
 *		cannot see: on other tables that the run writes, or a weak lock that
 *		another session's stronger request queues behind.)  The caller waits
 *		for the run, so none of them would ever go on, and the deadlock
 *		detector cannot see a wait on a latch: raise an error, which cancels
 *		the run.
 */
static void
rs_check_blocked_by_caller(RsRunShared *shared, const char *job_name)
{
	List	   *queue = NIL;	/* pids whose blockers are to be looked at */
	List	   *seen = NIL;

	pg_read_barrier();
	if (shared->coordinator_pid != 0)
		queue = lappend_int(queue, shared->coordinator_pid);
	for (int i = 0; i < shared->nworker_pids && i < RS_MAX_RUN_WORKERS; i++)
		queue = lappend_int(queue, shared->worker_pids[i]);
	seen = list_copy(queue);

	/* breadth first along "is waiting for"; each pid is looked at once */
	for (int k = 0; k < list_length(queue); k++)
	{
		int			pid = list_nth_int(queue, k);
		ArrayType  *blockers;
		Datum	   *elems;
		int			nelems;

		blockers = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
														  Int32GetDatum(pid)));
		deconstruct_array(blockers, INT4OID, sizeof(int32), true, TYPALIGN_INT,
						  &elems, NULL, &nelems);
		for (int j = 0; j < nelems; j++)
		{
			int			blocker = DatumGetInt32(elems[j]);

			if (blocker == MyProcPid)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("run of job \"%s\" waits for a lock that this transaction holds", job_name),
						 errdetail("Process %d waits, directly or behind other sessions, for this session, which waits for the run; the run is cancelled.",
								   pid),
						 errhint("Commit or roll back first, then call redis_sync.sync_run().")));
			if (!list_member_int(seen, blocker) && list_length(seen) < 10000)
			{
				seen = lappend_int(seen, blocker);
				queue = lappend_int(queue, blocker);
			}
		}
		pfree(elems);
		pfree(blockers);
	}
	list_free(queue);
	list_free(seen);
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
 * wrote a new index entry and a new page, and a run wrote far more WAL
 * and full-page images than it writes otherwise, and left the dead
 * versions to the next reader.  sync_run() itself reads
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
 *		called it, and no other snapshot of the transaction can still be
 *		read, so that no one reads with the xmin's protection after
 *		sync_run() starts waiting: read committed (no later statement reuses
 *		the snapshot); no open cursor or other portal ready to read, whose
 *		snapshot (a registered one) would lose its rows to pruning and
 *		VACUUM; no exported snapshot; called by the portal's own query, not from inside a
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
	/* An open cursor (or any other ready portal) may still read. */
	if (!ThereAreNoReadyPortals())
		return false;
	/* Another session may still import an exported snapshot. */
	if (XactHasExportedSnapshots())
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
