/*-------------------------------------------------------------------------
 *
 * sync.h
 *		  The sync engine: job definitions (jobs.c, job_owner_hook.c), runs
 *		  and their history (sync_run.c, coordinator.c, history.c), the
 *		  limits on runs and workers (worker_slots.c), the sync workers
 *		  (sync_worker.c), the target-table probes (target_probe.c) and the
 *		  scheduler (scheduler.c).
 *
 * The worker's own state, shared with its chunk writer, is in
 * sync_worker.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_SYNC_H
#define RS_SYNC_H

#include "datatype/timestamp.h"
#include "foreign/foreign.h"
#include "postmaster/bgworker.h"
#include "utils/date.h"
#include "utils/guc.h"

#include "catalog.h"

/* ---------------------------------------------------------------------
 * in jobs.c
 * ---------------------------------------------------------------------
 */
extern char *rs_format_key(const char *key_template, DateADT run_date);
extern char *rs_format_shard_key(const char *key_template, DateADT run_date, int shard);
extern bool rs_template_has_shard(const char *key_template);
extern char *rs_shard_total_key(const char *total_key, int shards, int shard);
extern void rs_validate_target_table(Oid relid, bool daily, Oid role, Oid *count_type);
extern void rs_check_job_definition(Oid owner, const char *server_name, const char *daily_key,
									const char *total_key, Oid member_table, Oid daily_table,
									const char *schedule, int shards);
extern void rs_check_server_access(ForeignServer *server, Oid owner);
extern void rs_check_job_owner(RsJob *job);
extern int	rs_disable_orphaned_jobs(void);

/* ---------------------------------------------------------------------
 * in job_owner_hook.c
 * ---------------------------------------------------------------------
 */
extern void rs_install_owner_hook(void);

/* ---------------------------------------------------------------------
 * in history.c
 * ---------------------------------------------------------------------
 */
extern int64 rs_purge_runs(Interval *older_than, Oid role);
extern Interval *rs_run_retention(void);
extern bool rs_check_run_retention(char **newval, void **extra, GucSource source);
extern void rs_assign_run_retention(const char *newval, void *extra);

/* ---------------------------------------------------------------------
 * in target_probe.c
 * ---------------------------------------------------------------------
 */
typedef struct RsProbe RsProbe;

extern RsProbe *rs_probe_create(Oid relid, bool daily, Oid count_type, MemoryContext cxt);
extern bool rs_probe_begin(RsProbe *p, DateADT date);
extern bool rs_probe_same(RsProbe *p, Datum name, Datum count);
extern void rs_probe_end(RsProbe *p);

/* ---------------------------------------------------------------------
 * in sync_run.c (the caller) and coordinator.c (the run)
 * ---------------------------------------------------------------------
 */

/* What a coordinator is asked to do; passed in bgw_extra. */
typedef struct RsRunRequest
{
	int64		job_id;
	Oid			owner;
	Oid			dboid;
	DateADT		run_date;
	bool		resume;
	char		trigger;		/* RS_TRIGGER_* */
	uint32		dsm;			/* result segment of a waiting caller, or 0 */
} RsRunRequest;

/* How a run was started: redis_sync.run.trigger. */
#define RS_TRIGGER_MANUAL	'm'
#define RS_TRIGGER_SCHEDULE 's'

/* bgw_type of a run's processes, as pg_stat_activity shows them */
#define RS_COORDINATOR_TYPE	"redis_sync coordinator"
#define RS_WORKER_TYPE		"redis_sync worker"

/* The most workers a run has (the job's workers column is at most 64). */
#define RS_MAX_RUN_WORKERS 64

/* Result of a run, left by the coordinator for a waiting sync_run(), in DSM. */
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
	/* processes of the run, for a caller that checks what blocks them */
	pid_t		coordinator_pid;
	int			nworker_pids;
	pid_t		worker_pids[RS_MAX_RUN_WORKERS];
} RsRunShared;

extern bool rs_start_coordinator(const RsRunRequest *req, BackgroundWorkerHandle **handle);
PGDLLEXPORT void rs_coordinator_main(Datum main_arg);

/* ---------------------------------------------------------------------
 * in worker_slots.c
 * ---------------------------------------------------------------------
 */
extern bool rs_start_coordinator_limited(const RsRunRequest *req,
										 BackgroundWorkerHandle **handle,
										 const char **limit);
extern int	rs_start_workers_limited(BackgroundWorker *worker, Oid role, int wanted,
									 List **handles, const char **limit);

/* ---------------------------------------------------------------------
 * in sync_worker.c
 * ---------------------------------------------------------------------
 */

/* What a sync worker is asked to do; passed in bgw_extra. */
typedef struct RsWorkerRequest
{
	int64		run_id;
	int64		job_id;
	Oid			owner;
	Oid			dboid;
	int			copy_key_members;	/* the coordinator's: its copies' parts */
} RsWorkerRequest;

PGDLLEXPORT void rs_sync_worker_main(Datum main_arg);

/* ---------------------------------------------------------------------
 * in scheduler.c
 * ---------------------------------------------------------------------
 */
extern void rs_register_scheduler(void);
extern DateADT rs_today(TimestampTz now);
PGDLLEXPORT void rs_scheduler_main(Datum main_arg);

#endif							/* RS_SYNC_H */
