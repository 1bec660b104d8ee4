/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *		  The redis_sync scheduler: a static background worker that starts
 *		  runs of enabled jobs when their cron schedule is due.
 *
 * It exists only when redis_sync is in shared_preload_libraries, and runs
 * in the database named by redis_sync.database.  Each pass of its loop
 * reads the enabled, scheduled jobs (so job changes need no restart),
 * starts a coordinator for every job that is due, and sleeps until the next
 * due time (at most RS_SCHEDULER_MAX_SLEEP_MS, so that new and changed jobs
 * are noticed).  A run is started with the same coordinator that sync_run()
 * uses, as the job's owner.  When the job's previous run still holds its
 * lock, the coordinator records the occurrence as "skipped" if that run is
 * of the same date; a different date stays owed, with a retry time.  A
 * scheduled run that fails gets a retry time too (max_retries, with a
 * retry_delay that doubles), and every pass starts the runs whose retry
 * time has come, resuming them.
 *
 * At start, runs left "running" by a crash (their job lock is free) are
 * marked "interrupted", and interrupted runs are resumed.  A scheduled time
 * that passed while the server was down runs once, with no backlog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "pgtime.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "cron.h"
#include "redis_sync.h"
#include "sync.h"

#define RS_SCHEDULER_MAX_SLEEP_MS	5000
#define RS_SCHEDULER_NO_EXTENSION_SLEEP_MS	30000
/* how often retry times are checked */
#define RS_SCHEDULER_RETRY_POLL_MS	1000

/* What the scheduler remembers of a job between passes. */
typedef struct RsScheduledJob
{
	int64		job_id;
	Oid			owner;
	CronSchedule parsed;		/* compared parsed, whatever the text's length */
	int			day_offset;
	TimestampTz next_due;
	bool		seen;			/* still enabled and scheduled in this pass */
	bool		due;			/* to be started at the end of this pass */
} RsScheduledJob;

static HTAB *scheduled_jobs = NULL;

/* When the scheduler last purged the run history (redis_sync.run_retention). */
static TimestampTz last_purge = 0;

static bool rs_extension_ready(void);
static void rs_record_scheduled_starts(List *job_ids, TimestampTz when);
static void rs_resume_interrupted_runs(void);
static long rs_schedule_pass(void);
static void rs_retry_runs(void);
static bool rs_start_scheduled_run(int64 job_id, Oid owner, DateADT run_date,
								   bool resume, const char *why);

/*
 * rs_register_scheduler
 *		Register the scheduler; called from _PG_init while preloading.
 */
void
rs_register_scheduler(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "redis_sync");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rs_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "redis_sync scheduler");
	snprintf(worker.bgw_type, BGW_MAXLEN, "redis_sync scheduler");
	RegisterBackgroundWorker(&worker);
}

/*
 * rs_scheduler_main
 *		Entry point of the scheduler background worker.
 */
void
rs_scheduler_main(Datum main_arg)
{
	MemoryContext loop_cxt;
	HASHCTL		ctl;
	bool		resumed = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(rs_scheduler_database, NULL, 0);
	pgstat_report_appname("redis_sync scheduler");
	rs_set_safe_search_path();

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(RsScheduledJob);
	scheduled_jobs = hash_create("redis_sync scheduled jobs", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	/* Each pass allocates in the loop's context, which is reset per pass. */
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "redis_sync scheduler loop",
									 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("redis_sync scheduler started in database \"%s\"", rs_scheduler_database)));

	for (;;)
	{
		long		sleep_ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		if (!rs_extension_ready())
			sleep_ms = RS_SCHEDULER_NO_EXTENSION_SLEEP_MS;
		else
		{
			if (!resumed)
			{
				rs_resume_interrupted_runs();
				resumed = true;
			}
			rs_retry_runs();
			sleep_ms = Min(rs_schedule_pass(), RS_SCHEDULER_RETRY_POLL_MS);
		}
		/* (nothing is allocated while waiting; the loop's context is reset next) */
		MemoryContextSwitchTo(TopMemoryContext);

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   sleep_ms, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

/*
 * rs_extension_ready
 *		Is redis_sync installed in the scheduler's database?
 */
static bool
rs_extension_ready(void)
{
	static bool warned = false;
	bool		ready;

	rs_begin_xact(NULL);
	rs_spi_exec("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'redis_sync'",
				0, NULL, NULL, NULL, SPI_OK_SELECT);
	ready = (SPI_processed == 1);
	rs_commit_xact();
	if (!ready && !warned)
		ereport(LOG,
				(errmsg("redis_sync scheduler is waiting for CREATE EXTENSION redis_sync in database \"%s\"",
						rs_scheduler_database)));
	warned = !ready;
	return ready;
}

/*
 * rs_resume_interrupted_runs
 *		Runs still marked running whose job lock is free were cut short by a
 *		crash or restart: mark them interrupted.  Then resume every
 *		interrupted run that is its job's latest run of that date.
 */
static void
rs_resume_interrupted_runs(void)
{
	uint64		i;
	uint64		n;
	int64	   *job_ids;
	Oid		   *owners;
	DateADT    *dates;

	rs_begin_xact("redis_sync: resuming interrupted runs");
	(void) rs_disable_orphaned_jobs();
	rs_spi_exec("SELECT DISTINCT r.job_id FROM redis_sync.run r WHERE r.status = 'running'",
				0, NULL, NULL, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	job_ids = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		job_ids[i] = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		LOCKTAG		tag;
		Oid			argtypes[1] = {INT8OID};
		Datum		values[1];

		rs_job_lock_tag(&tag, job_ids[i]);
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;			/* a coordinator is working on it */
		values[0] = Int64GetDatum(job_ids[i]);
		rs_spi_exec("UPDATE redis_sync.run SET status = 'interrupted', finished_at = now() "
					"WHERE job_id = $1 AND status = 'running'",
					1, argtypes, values, NULL, SPI_OK_UPDATE);
	}
	/* The locks taken above are transaction locks, released at commit. */

	rs_spi_exec("SELECT r.job_id, j.owner::oid, r.run_date FROM redis_sync.run r "
				"JOIN redis_sync.job j USING (job_id) "
				"WHERE r.status = 'interrupted' AND r.run_id = "
				"(SELECT max(r2.run_id) FROM redis_sync.run r2 "
				" WHERE r2.job_id = r.job_id AND r2.run_date = r.run_date "
				" AND r2.status <> 'skipped') "
				/* a run never starts as a role that was dropped */
				"AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.oid = j.owner::oid)",
				0, NULL, NULL, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	/* copied out of SPI: the runs start after the commit */
	job_ids = SPI_palloc(sizeof(int64) * (n + 1));
	owners = SPI_palloc(sizeof(Oid) * (n + 1));
	dates = SPI_palloc(sizeof(DateADT) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		job_ids[i] = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
		owners[i] = DatumGetObjectId(rs_spi_getdatum(i, 2, &isnull));
		dates[i] = DatumGetDateADT(rs_spi_getdatum(i, 3, &isnull));
	}
	rs_commit_xact();

	for (i = 0; i < n; i++)
		rs_start_scheduled_run(job_ids[i], owners[i], dates[i], true, "resuming an interrupted run");
}

/*
 * rs_retry_runs
 *		Start the runs whose retry time has come: scheduled runs that failed
 *		(retried with the job's max_retries and a retry_delay that doubles),
 *		and dates that were due while the job was busy with another date.
 *		Each is resumed; its retry time is pushed back first, so that it is
 *		not started twice while its coordinator starts (the coordinator
 *		clears or resets it).
 */
static void
rs_retry_runs(void)
{
	uint64		n;
	int64	   *job_ids;
	Oid		   *owners;
	DateADT    *dates;

	rs_begin_xact("redis_sync: retrying runs");
	rs_spi_exec("UPDATE redis_sync.run r SET retry_at = now() + interval '1 minute' "
				"FROM redis_sync.job j "
				"WHERE j.job_id = r.job_id AND j.enabled AND r.retry_at <= now() "
				"AND r.status IN ('failed', 'cancelled', 'interrupted') "
				"AND r.run_id = (SELECT max(r2.run_id) FROM redis_sync.run r2 "
				"  WHERE r2.job_id = r.job_id AND r2.run_date = r.run_date "
				"  AND r2.status IN ('failed', 'cancelled', 'interrupted')) "
				"RETURNING r.job_id, j.owner::oid, r.run_date",
				0, NULL, NULL, NULL, SPI_OK_UPDATE_RETURNING);
	n = SPI_processed;
	/* copied out of SPI: the runs start after the commit */
	job_ids = SPI_palloc(sizeof(int64) * (n + 1));
	owners = SPI_palloc(sizeof(Oid) * (n + 1));
	dates = SPI_palloc(sizeof(DateADT) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		job_ids[i] = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
		owners[i] = DatumGetObjectId(rs_spi_getdatum(i, 2, &isnull));
		dates[i] = DatumGetDateADT(rs_spi_getdatum(i, 3, &isnull));
	}
	rs_commit_xact();

	for (uint64 i = 0; i < n; i++)
		(void) rs_start_scheduled_run(job_ids[i], owners[i], dates[i], true, "its retry is due");
}

/*
 * rs_schedule_pass
 *		Start the runs that are due; return how long to sleep.
 */
static long
rs_schedule_pass(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = TimestampTzPlusMilliseconds(now, RS_SCHEDULER_MAX_SLEEP_MS);
	HASH_SEQ_STATUS seq;
	RsScheduledJob *sj;
	uint64		i;
	uint64		n;
	long		sleep_ms;
	List	   *started = NIL;	/* int64 * job ids started in this pass */

	hash_seq_init(&seq, scheduled_jobs);
	while ((sj = hash_seq_search(&seq)) != NULL)
		sj->seen = false;

	rs_begin_xact("redis_sync: scheduling");
	/* A job whose owner was dropped never runs as anyone else. */
	(void) rs_disable_orphaned_jobs();
	rs_spi_exec("SELECT j.job_id, j.owner::oid, j.schedule, j.day_offset, "
				"greatest(j.created_at, j.last_scheduled_at) "
				"FROM redis_sync.job j WHERE j.enabled AND j.schedule IS NOT NULL",
				0, NULL, NULL, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int64		job_id = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
		char	   *schedule = TextDatumGetCString(rs_spi_getdatum(i, 3, &isnull));
		CronSchedule cs;
		char	   *why;
		bool		found;

		sj = hash_search(scheduled_jobs, &job_id, HASH_ENTER, &found);
		sj->seen = true;
		sj->due = false;
		sj->owner = DatumGetObjectId(rs_spi_getdatum(i, 2, &isnull));
		sj->day_offset = DatumGetInt32(rs_spi_getdatum(i, 4, &isnull));
		if (!rs_cron_parse(schedule, &cs, &why))
		{
			sj->next_due = DT_NOEND;
			continue;
		}
		if (!found || !rs_cron_schedule_equal(&sj->parsed, &cs))
		{
			/*
			 * New to us (or rescheduled): due at the first time after the
			 * last scheduled run, or after the job's creation.  A time that
			 * passed while we were down is therefore due now, once.
			 */
			TimestampTz since = DatumGetTimestampTz(rs_spi_getdatum(i, 5, &isnull));

			sj->parsed = cs;
			sj->next_due = rs_cron_next(&cs, since, rs_scheduler_timezone);
		}
		sj->due = (sj->next_due <= now);
		if (sj->due)
			sj->next_due = rs_cron_next(&cs, now, rs_scheduler_timezone);
	}
	rs_commit_xact();

	/* Once an hour, runs older than redis_sync.run_retention go. */
	if (rs_run_retention() != NULL &&
		TimestampDifferenceExceeds(last_purge, now, 3600 * 1000))
	{
		int64		purged;

		rs_begin_xact("redis_sync: purging run history");
		purged = rs_purge_runs(rs_run_retention(), InvalidOid);
		rs_commit_xact();
		last_purge = now;
		if (purged > 0)
			ereport(LOG,
					(errmsg("redis_sync scheduler deleted " INT64_FORMAT " runs older than redis_sync.run_retention",
							purged)));
	}

	hash_seq_init(&seq, scheduled_jobs);
	while ((sj = hash_seq_search(&seq)) != NULL)
	{
		if (!sj->seen)
		{
			hash_search(scheduled_jobs, &sj->job_id, HASH_REMOVE, NULL);
			continue;
		}
		if (sj->due)
		{
			sj->due = false;
			/* No free slot: try again on the next pass rather than drop it. */
			if (!rs_start_scheduled_run(sj->job_id, sj->owner,
										rs_today(now) + sj->day_offset, true,
										"its schedule is due"))
				sj->next_due = TimestampTzPlusMilliseconds(now, 1000);
			else
			{
				int64	   *id = palloc(sizeof(int64));

				*id = sj->job_id;
				started = lappend(started, id);
			}
		}
		if (sj->next_due < wake)
			wake = sj->next_due;
	}

	/* (no transaction may end while the hash table is being scanned) */
	if (started != NIL)
		rs_record_scheduled_starts(started, now);

	sleep_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake);
	return Max(sleep_ms, 10);
}

/*
 * rs_record_scheduled_starts
 *		Keep the time of the jobs' last scheduled start on their rows, so
 *		that a pass finds when a job is next due without reading its run
 *		history (a time that passed while the server was down is due once).
 *		job_ids holds int64 * job ids.
 */
static void
rs_record_scheduled_starts(List *job_ids, TimestampTz when)
{
	Oid			argtypes[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	ListCell   *lc;

	rs_begin_xact("redis_sync: scheduling");
	values[1] = TimestampTzGetDatum(when);
	foreach(lc, job_ids)
	{
		values[0] = Int64GetDatum(*(int64 *) lfirst(lc));
		rs_spi_exec("UPDATE redis_sync.job SET last_scheduled_at = $2 WHERE job_id = $1",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
	}
	rs_commit_xact();
}

/*
 * rs_start_scheduled_run
 *		Start a coordinator for a job's run, without waiting for it.  False
 *		if no background worker slot is free.
 */
static bool
rs_start_scheduled_run(int64 job_id, Oid owner, DateADT run_date, bool resume,
					   const char *why)
{
	RsRunRequest req;
	BackgroundWorkerHandle *handle;
	const char *limit;

	memset(&req, 0, sizeof(req));
	req.job_id = job_id;
	req.owner = owner;
	req.dboid = MyDatabaseId;
	req.run_date = run_date;
	req.resume = resume;
	req.trigger = RS_TRIGGER_SCHEDULE;
	req.dsm = 0;
	if (!rs_start_coordinator_limited(&req, &handle, &limit))
	{
		ereport(LOG,
				(errmsg("redis_sync scheduler could not start a run of job " INT64_FORMAT " yet",
						job_id),
				 errdetail("The limit %s is reached.", limit)));
		return false;
	}
	ereport(DEBUG1,
			(errmsg("redis_sync scheduler started a run of job " INT64_FORMAT " because %s",
					job_id, why)));
	return true;
}

/*
 * rs_today
 *		The current date in redis_sync.timezone (or the server's zone): the
 *		one rule for which date is live, for scheduled and manual runs.
 */
DateADT
rs_today(TimestampTz now)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (timestamp2tm(now, &tzoff, &tm, &fsec, NULL, rs_cron_timezone(rs_scheduler_timezone)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}
