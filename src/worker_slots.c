/*-------------------------------------------------------------------------
 *
 * worker_slots.c
 *		  How many coordinators and sync workers may run, over all roles and
 *		  per role: the counting behind redis_sync.max_runs,
 *		  redis_sync.max_runs_per_role, redis_sync.max_workers and
 *		  redis_sync.max_workers_per_role.
 *
 * Coordinators and workers are counted from the backend status array (what
 * pg_stat_activity shows a superuser), whoever asks, with each entry's
 * background worker type and role: every role sees the same count.  The
 * count and the registration of new coordinators or workers happen under
 * one user lock of the whole cluster (rs_slots_lock), and the lock is held
 * until each new process shows in the status array, so that the next count
 * includes it.
 *
 * The per-role caps keep one role from taking every slot: with their
 * defaults (half of the global cap, rounded up) two roles can always run
 * side by side.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "compat.h"
#include "redis_sync.h"
#include "sync.h"

/* How long to wait for a started process to show in the status array. */
#define RS_SLOT_VISIBLE_TIMEOUT_MS	10000

/* Coordinators and workers running now, over all roles and of one role. */
typedef struct RsSlotUse
{
	int			runs;
	int			role_runs;
	int			workers;
	int			role_workers;
} RsSlotUse;

static void rs_slots_lock(void);
static void rs_slots_unlock(void);
static void rs_count_slots(Oid role, RsSlotUse *use);
static bool rs_pid_is_visible(pid_t pid);
static void rs_wait_until_counted(BackgroundWorkerHandle *handle);

/*
 * rs_role_run_cap / rs_role_worker_cap
 *		The per-role caps: the settings, or for -1 half of the global caps,
 *		rounded up, and never more than one role's half of the background
 *		worker slots (max_worker_processes, less two for the scheduler and
 *		another worker such as the logical replication launcher), so that
 *		with the defaults two roles can run side by side on any server.
 */
static int
rs_slots_half(void)
{
	return Max(2, (max_worker_processes - 2) / 2);
}

static int
rs_role_run_cap(void)
{
	if (rs_max_runs_per_role >= 0)
		return rs_max_runs_per_role;
	return Max(1, Min((rs_max_runs + 1) / 2, rs_slots_half() / 3));
}

static int
rs_role_worker_cap(void)
{
	if (rs_max_workers_per_role >= 0)
		return rs_max_workers_per_role;
	return Max(1, Min((rs_max_workers + 1) / 2, rs_slots_half() - rs_role_run_cap()));
}

/*
 * rs_slots_lock_tag
 *		The lock that serializes counting and starting coordinators and
 *		workers: a user lock (which no SQL function can take) of no
 *		database, since the caps hold across databases.  It is job 0's key
 *		in the redis_sync lock class, with database 0.
 */
static void
rs_slots_lock_tag(LOCKTAG *tag)
{
	rs_job_lock_tag(tag, 0);
	tag->locktag_field1 = InvalidOid;
}

static void
rs_slots_lock(void)
{
	LOCKTAG		tag;

	rs_slots_lock_tag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
}

static void
rs_slots_unlock(void)
{
	LOCKTAG		tag;

	rs_slots_lock_tag(&tag);
	LockRelease(&tag, ExclusiveLock, true);
}

/*
 * rs_count_slots
 *		Count the redis_sync coordinators and workers that run now, in all
 *		databases, and those of them that run as "role".
 *
 * The local copy of the status array is read afresh (a copy taken earlier
 * in the transaction would not show processes started since) and dropped
 * again, so the caller's next read of pg_stat_activity is fresh too.
 */
static void
rs_count_slots(Oid role, RsSlotUse *use)
{
	int			n;

	memset(use, 0, sizeof(RsSlotUse));
	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = rs_local_beentry(i);
		PgBackendStatus *be;
		const char *type;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_backendType != B_BG_WORKER || be->st_procpid <= 0)
			continue;
		type = GetBackgroundWorkerTypeByPid(be->st_procpid);
		if (type == NULL)
			continue;
		if (strcmp(type, RS_COORDINATOR_TYPE) == 0)
		{
			use->runs++;
			if (be->st_userid == role)
				use->role_runs++;
		}
		else if (strcmp(type, RS_WORKER_TYPE) == 0)
		{
			use->workers++;
			if (be->st_userid == role)
				use->role_workers++;
		}
	}
	pgstat_clear_backend_activity_snapshot();
}

/* Does a process with this pid show in the backend status array? */
static bool
rs_pid_is_visible(pid_t pid)
{
	int			n;
	bool		found = false;

	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n && !found; i++)
	{
		LocalPgBackendStatus *local = rs_local_beentry(i);

		if (local != NULL && local->backendStatus.st_procpid == pid)
			found = true;
	}
	pgstat_clear_backend_activity_snapshot();
	return found;
}

/*
 * rs_wait_until_counted
 *		Wait until a background worker that was just registered shows in
 *		the status array (or has exited, or a timeout passed), so that the
 *		next count includes it.
 */
static void
rs_wait_until_counted(BackgroundWorkerHandle *handle)
{
	pid_t		pid;
	TimestampTz deadline;

	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RS_SLOT_VISIBLE_TIMEOUT_MS);
	while (!rs_pid_is_visible(pid))
	{
		if (GetBackgroundWorkerPid(handle, &pid) != BGWH_STARTED ||
			GetCurrentTimestamp() >= deadline)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * rs_start_coordinator_limited
 *		Start a coordinator for the request (rs_start_coordinator) if the
 *		caps allow one more run: fewer than redis_sync.max_runs coordinators
 *		run in all, and fewer than redis_sync.max_runs_per_role run as the
 *		job's owner.  Returns false, with *limit naming the setting that is
 *		reached (max_worker_processes when no background worker slot is
 *		free), if not.  The caller waits and tries again.
 */
bool
rs_start_coordinator_limited(const RsRunRequest *req, BackgroundWorkerHandle **handle,
							 const char **limit)
{
	volatile bool started = false;

	*limit = NULL;
	rs_slots_lock();
	PG_TRY();
	{
		RsSlotUse	use;

		rs_count_slots(req->owner, &use);
		if (use.runs >= rs_max_runs)
			*limit = "redis_sync.max_runs";
		else if (use.role_runs >= rs_role_run_cap())
			*limit = "redis_sync.max_runs_per_role";
		else if (!rs_start_coordinator(req, handle))
			*limit = "max_worker_processes";
		else
		{
			started = true;
			rs_wait_until_counted(*handle);
		}
	}
	PG_FINALLY();
	{
		rs_slots_unlock();
	}
	PG_END_TRY();
	return started;
}

/*
 * rs_start_workers_limited
 *		Register up to "wanted" sync workers described by "worker", running
 *		as "role", within redis_sync.max_workers (all roles) and
 *		redis_sync.max_workers_per_role (this role), and append their
 *		handles to *handles (in the current memory context).  Returns how
 *		many were registered; when fewer than wanted, *limit names the
 *		setting that stopped them.
 */
int
rs_start_workers_limited(BackgroundWorker *worker, Oid role, int wanted, List **handles,
						 const char **limit)
{
	volatile int launched = 0;

	*limit = NULL;
	rs_slots_lock();
	PG_TRY();
	{
		RsSlotUse	use;
		int			global_free;
		int			role_free;
		ListCell   *lc;
		List	   *started = NIL;

		rs_count_slots(role, &use);
		global_free = rs_max_workers - use.workers;
		role_free = rs_role_worker_cap() - use.role_workers;
		if (role_free < wanted && role_free <= global_free)
		{
			wanted = Max(role_free, 0);
			*limit = "redis_sync.max_workers_per_role";
		}
		else if (global_free < wanted)
		{
			wanted = Max(global_free, 0);
			*limit = "redis_sync.max_workers";
		}
		while (launched < wanted)
		{
			BackgroundWorkerHandle *handle;

			if (!RegisterDynamicBackgroundWorker(worker, &handle))
			{
				*limit = "max_worker_processes";
				break;
			}
			started = lappend(started, handle);
			*handles = lappend(*handles, handle);
			launched++;
		}
		foreach(lc, started)
			rs_wait_until_counted(lfirst(lc));
	}
	PG_FINALLY();
	{
		rs_slots_unlock();
	}
	PG_END_TRY();
	return launched;
}
