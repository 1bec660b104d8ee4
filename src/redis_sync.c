/*-------------------------------------------------------------------------
 *
 * redis_sync.c
 *		  Library entry points: _PG_init (GUCs, the scheduler when preloaded)
 *		  and the redis_zset foreign data wrapper handler.  The callbacks live
 *		  in fdw_plan.c (planning), fdw_scan.c (scans, parallel scans),
 *		  fdw_modify.c (writes) and fdw_import.c (IMPORT FOREIGN SCHEMA).
 *
 * The foreign data wrapper and sync_run() work without
 * shared_preload_libraries; only the scheduler needs it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

#include "fdw.h"
#include "redis_sync.h"
#include "sync.h"

PG_MODULE_MAGIC;

char	   *rs_scheduler_database = NULL;
char	   *rs_scheduler_timezone = NULL;
int			rs_max_workers = 16;
int			rs_max_workers_per_role = -1;
int			rs_max_runs = 4;
int			rs_max_runs_per_role = -1;
int			rs_copy_key_members = 1000000;
static char *rs_run_retention_text = NULL;

/* redis_sync.worker_wal_compression; lz4 by default where the server has it. */
typedef enum RsWalCompression
{
	RS_WAL_COMPRESSION_INHERIT,
	RS_WAL_COMPRESSION_OFF,
	RS_WAL_COMPRESSION_PGLZ,
	RS_WAL_COMPRESSION_LZ4,
	RS_WAL_COMPRESSION_ZSTD
} RsWalCompression;

#ifdef USE_LZ4
#define RS_WAL_COMPRESSION_DEFAULT RS_WAL_COMPRESSION_LZ4
#else
#define RS_WAL_COMPRESSION_DEFAULT RS_WAL_COMPRESSION_INHERIT
#endif

static int	rs_worker_wal_compression = RS_WAL_COMPRESSION_DEFAULT;

/* Its values; see rs_wal_compression_name. */
static const struct config_enum_entry rs_wal_compression_options[] = {
	{"inherit", RS_WAL_COMPRESSION_INHERIT, false},
	{"off", RS_WAL_COMPRESSION_OFF, false},
	{"pglz", RS_WAL_COMPRESSION_PGLZ, false},
#ifdef USE_LZ4
	{"lz4", RS_WAL_COMPRESSION_LZ4, false},
#endif
#ifdef USE_ZSTD
	{"zstd", RS_WAL_COMPRESSION_ZSTD, false},
#endif
	{NULL, 0, false}
};

void		_PG_init(void);

static bool rs_check_timezone(char **newval, void **extra, GucSource source);

/*
 * rs_check_timezone
 *		redis_sync.timezone must be empty or a zone the server knows.
 */
static bool
rs_check_timezone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || pg_tzset(*newval) != NULL)
		return true;
	GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
	return false;
}

PG_FUNCTION_INFO_V1(redis_zset_handler);

/*
 * rs_wal_compression_name
 *		The wal_compression value that redis_sync.worker_wal_compression asks
 *		workers to use, or NULL for "inherit".
 */
const char *
rs_wal_compression_name(void)
{
	for (const struct config_enum_entry *e = rs_wal_compression_options; e->name; e++)
		if (e->val == rs_worker_wal_compression)
			return e->val == RS_WAL_COMPRESSION_INHERIT ? NULL : e->name;
	return NULL;
}

/*
 * _PG_init
 *		Define the redis_sync.* settings, and register the scheduler when
 *		loaded through shared_preload_libraries.
 */
void
_PG_init(void)
{
	DefineCustomStringVariable("redis_sync.database",
							   "Database in which the redis_sync scheduler runs.",
							   NULL, &rs_scheduler_database, "postgres",
	/* PGC_POSTMASTER settings can only be defined while preloading. */
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							   0, NULL, NULL, NULL);
	DefineCustomStringVariable("redis_sync.timezone",
							   "Time zone in which job schedules are evaluated.",
							   "An empty value means the server's TimeZone setting.",
							   &rs_scheduler_timezone, "",
							   PGC_USERSET, 0, rs_check_timezone, NULL, NULL);
	DefineCustomIntVariable("redis_sync.max_workers",
							"Maximum number of sync workers running at once, over all runs.",
							NULL, &rs_max_workers, 16, 1, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("redis_sync.max_workers_per_role",
							"Maximum number of sync workers running at once as one role.",
							"-1 means half of redis_sync.max_workers, rounded up.",
							&rs_max_workers_per_role, -1, -1, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("redis_sync.max_runs",
							"Maximum number of runs (coordinators) going at once, over all roles.",
							"Each run needs one background worker for its coordinator, besides its sync workers.",
							&rs_max_runs, 4, 1, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("redis_sync.max_runs_per_role",
							"Maximum number of runs going at once whose jobs belong to one role.",
							"-1 means half of redis_sync.max_runs, rounded up.",
							&rs_max_runs_per_role, -1, -1, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("redis_sync.copy_key_members",
							"Members in one key of the copy of a live day.",
							"A larger copy spreads over several keys of this many members each. "
							"Set at server start (with shared_preload_libraries); otherwise a reload applies to the runs started after it, "
							"and a run whose copy was cut with another value starts anew.",
							&rs_copy_key_members, 1000000, 1000, 100000000,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomStringVariable("redis_sync.run_retention",
							   "How long the scheduler keeps finished runs in redis_sync.run.",
							   "An interval; 0 keeps them forever.",
							   &rs_run_retention_text, "30 days",
							   PGC_SIGHUP, 0, rs_check_run_retention,
							   rs_assign_run_retention, NULL);

	/*
	 * wal_compression itself is superuser-only, so this is too: whoever may
	 * set it decides for the job owners' workers, which may not.
	 */
	DefineCustomEnumVariable("redis_sync.worker_wal_compression",
							 "Compression of full-page images in the WAL that sync workers write.",
							 "\"inherit\" leaves the server's wal_compression setting as it is.",
							 &rs_worker_wal_compression, RS_WAL_COMPRESSION_DEFAULT,
							 rs_wal_compression_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("redis_sync");

	/* DROP ROLE, REASSIGN OWNED and DROP OWNED know about job owners. */
	rs_install_owner_hook();

	if (process_shared_preload_libraries_in_progress)
		rs_register_scheduler();
}

/*
 * redis_zset_handler
 *		The foreign data wrapper's callback table.
 */
Datum
redis_zset_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = rsGetForeignRelSize;
	routine->GetForeignPaths = rsGetForeignPaths;
	routine->GetForeignPlan = rsGetForeignPlan;
	routine->BeginForeignScan = rsBeginForeignScan;
	routine->IterateForeignScan = rsIterateForeignScan;
	routine->ReScanForeignScan = rsReScanForeignScan;
	routine->EndForeignScan = rsEndForeignScan;
	routine->ExplainForeignScan = rsExplainForeignScan;

	routine->AddForeignUpdateTargets = rsAddForeignUpdateTargets;
	routine->PlanForeignModify = rsPlanForeignModify;
	routine->BeginForeignModify = rsBeginForeignModify;
	routine->ExecForeignInsert = rsExecForeignInsert;
	routine->ExecForeignBatchInsert = rsExecForeignBatchInsert;
	routine->GetForeignModifyBatchSize = rsGetForeignModifyBatchSize;
	routine->ExecForeignUpdate = rsExecForeignUpdate;
	routine->ExecForeignDelete = rsExecForeignDelete;
	routine->EndForeignModify = rsEndForeignModify;
	routine->BeginForeignInsert = rsBeginForeignInsert;
	routine->EndForeignInsert = rsEndForeignModify;
	routine->IsForeignRelUpdatable = rsIsForeignRelUpdatable;
	routine->ExplainForeignModify = rsExplainForeignModify;
	routine->ExecForeignTruncate = rsExecForeignTruncate;

	routine->ImportForeignSchema = rsImportForeignSchema;

	routine->IsForeignScanParallelSafe = rsIsForeignScanParallelSafe;
	routine->EstimateDSMForeignScan = rsEstimateDSMForeignScan;
	routine->InitializeDSMForeignScan = rsInitializeDSMForeignScan;
	routine->ReInitializeDSMForeignScan = rsReInitializeDSMForeignScan;
	routine->InitializeWorkerForeignScan = rsInitializeWorkerForeignScan;
	PG_RETURN_POINTER(routine);
}
