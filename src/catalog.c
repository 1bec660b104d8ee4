/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		  SPI access to the redis_sync catalog (jobs, runs, partitions) and
 *		  the transaction helpers that background workers share.
 *
 * The catalog belongs to the engine.  Roles may only read it (row-level
 * security shows them their own jobs and runs); every statement here runs
 * as the catalog's owner, with search_path = pg_catalog, pg_temp, so that
 * neither the caller's privileges nor its search_path decide what it does
 * (rs_engine_enter).  Callers check the caller's rights on a job
 * themselves (rs_check_job_access) before they act on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"

/* Lock key space of redis_sync (field 1 of its user locks): 'RSJB'. */
#define RS_LOCK_CLASS	0x52534A42

#define RS_JOB_COLUMNS \
	"job_id, job_name, owner::oid, server_name, daily_key, total_key, " \
	"member_table::oid, daily_table::oid, partitions, workers, chunk_size, " \
	"schedule, day_offset, enabled, max_rejects, max_retries, " \
	"(extract(epoch FROM retry_delay) * 1000)::int8, shards"

static RsJob *rs_job_from_spi(void);

/*
 * rs_catalog_owner
 *		The role that owns the catalog tables (the role that created the
 *		extension).
 */
Oid
rs_catalog_owner(void)
{
	Oid			nsp = get_namespace_oid("redis_sync", false);
	Oid			relid = get_relname_relid("job", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "table redis_sync.job does not exist");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * rs_engine_enter / rs_engine_exit
 *		Act as the catalog's owner, in a restricted security context and
 *		with search_path = pg_catalog, pg_temp, until rs_engine_exit.  An
 *		error in between is cleaned up by the (sub)transaction's abort, which
 *		restores the user id and the settings.
 */
void
rs_engine_enter(RsEngineState *st)
{
	GetUserIdAndSecContext(&st->save_userid, &st->save_sec_context);
	SetUserIdAndSecContext(rs_catalog_owner(),
						   st->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	st->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void
rs_engine_exit(RsEngineState *st)
{
	AtEOXact_GUC(true, st->guc_nest_level);
	SetUserIdAndSecContext(st->save_userid, st->save_sec_context);
}

/*
 * rs_spi_exec
 *		Run a parameterized catalog statement as the engine; raise an
 *		internal error if it fails.  "expected" is the SPI result code the
 *		caller expects.
 */
void
rs_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
			const char *nulls, int expected)
{
	MemoryContext cxt = CurrentMemoryContext;
	RsEngineState st;
	int			rc;

	rs_engine_enter(&st);
	rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
	rs_engine_exit(&st);

	/* SPI leaves its procedure context current; go back to the caller's. */
	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "redis_sync catalog statement failed (SPI code %d): %s", rc, sql);
}

/*
 * rs_spi_execute_plan
 *		Run a prepared statement as the current role (a write to a target
 *		table), keeping the caller's memory context, and return the number
 *		of rows it processed.
 */
uint64
rs_spi_execute_plan(SPIPlanPtr plan, Datum *values, int expected)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, values, NULL, false, 0);

	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "redis_sync prepared statement failed (SPI code %d)", rc);
	return SPI_processed;
}

/*
 * rs_catalog_execute_plan
 *		Run a prepared catalog statement as the engine, like rs_spi_exec.
 */
uint64
rs_catalog_execute_plan(SPIPlanPtr plan, Datum *values, int expected)
{
	RsEngineState st;
	uint64		n;

	rs_engine_enter(&st);
	n = rs_spi_execute_plan(plan, values, expected);
	rs_engine_exit(&st);
	return n;
}

/*
 * rs_spi_getdatum
 *		Column "col" (1-based) of row "row" of the last SPI result.
 */
Datum
rs_spi_getdatum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* Text column of row 0, copied into the caller's (pre-SPI) context. */
static char *
rs_spi_text(int col)
{
	bool		isnull;
	Datum		d = rs_spi_getdatum(0, col, &isnull);
	char	   *s;
	char	   *copy;

	if (isnull)
		return NULL;
	s = TextDatumGetCString(d);
	copy = SPI_palloc(strlen(s) + 1);
	strcpy(copy, s);
	return copy;
}

static int32
rs_spi_int32(int col)
{
	bool		isnull;

	return DatumGetInt32(rs_spi_getdatum(0, col, &isnull));
}

static Oid
rs_spi_oid(int col)
{
	bool		isnull;
	Datum		d = rs_spi_getdatum(0, col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/* The job in row 0 of the last SPI result (RS_JOB_COLUMNS), or NULL. */
static RsJob *
rs_job_from_spi(void)
{
	RsJob	   *job;
	bool		isnull;

	if (SPI_processed == 0)
		return NULL;
	job = SPI_palloc(sizeof(RsJob));
	job->job_id = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	job->job_name = rs_spi_text(2);
	job->owner = rs_spi_oid(3);
	job->server_name = rs_spi_text(4);
	job->daily_key = rs_spi_text(5);
	job->total_key = rs_spi_text(6);
	job->member_table = rs_spi_oid(7);
	job->daily_table = rs_spi_oid(8);
	job->partitions = rs_spi_int32(9);
	job->workers = rs_spi_int32(10);
	job->chunk_size = rs_spi_int32(11);
	job->schedule = rs_spi_text(12);
	job->day_offset = rs_spi_int32(13);
	job->enabled = DatumGetBool(rs_spi_getdatum(0, 14, &isnull));
	job->max_rejects = DatumGetInt64(rs_spi_getdatum(0, 15, &isnull));
	job->max_retries = rs_spi_int32(16);
	job->retry_delay_ms = DatumGetInt64(rs_spi_getdatum(0, 17, &isnull));
	job->shards = rs_spi_int32(18);
	return job;
}

/*
 * rs_lookup_job_by_name
 *		The job of that name, if the current role has the privileges of its
 *		owner (superusers have all); else an error as if there were none.
 *		With "for_update", the job's row is locked until the end of the
 *		transaction.  Must be called between SPI_connect and SPI_finish; the
 *		result lives in the caller's context.
 */
RsJob *
rs_lookup_job_by_name(const char *job_name, bool for_update)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(job_name)};
	RsJob	   *job;

	rs_spi_exec(for_update ?
				"SELECT " RS_JOB_COLUMNS " FROM redis_sync.job WHERE job_name = $1 FOR UPDATE" :
				"SELECT " RS_JOB_COLUMNS " FROM redis_sync.job WHERE job_name = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	job = rs_job_from_spi();
	if (job == NULL || !has_privs_of_role(GetUserId(), job->owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job \"%s\" does not exist", job_name)));
	return job;
}

/*
 * rs_lookup_job_by_id
 *		Like rs_lookup_job_by_name, by id.
 */
RsJob *
rs_lookup_job_by_id(int64 job_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	RsJob	   *job;

	rs_spi_exec("SELECT " RS_JOB_COLUMNS " FROM redis_sync.job WHERE job_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	job = rs_job_from_spi();
	if (job == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job with id " INT64_FORMAT " does not exist", job_id)));
	return job;
}

/*
 * rs_qualified_relname
 *		The quoted, schema-qualified name of a job's target table; an error
 *		naming the job if the table was dropped.
 */
char *
rs_qualified_relname(Oid relid, const char *job_name)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table of job \"%s\" no longer exists", job_name),
				 errhint("Point the job at an existing table with redis_sync.alter_job().")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname);
}

/*
 * rs_begin_xact / rs_commit_xact
 *		A background worker's transaction with SPI and a snapshot, following
 *		worker_spi: StartTransactionCommand, SPI_connect, PushActiveSnapshot;
 *		then SPI_finish, PopActiveSnapshot, CommitTransactionCommand.
 *
 *		rs_begin_xact returns the caller's memory context (current at the
 *		call), and SPI_connect is called with it current, so that SPI_palloc
 *		copies results out to it.  In between, SPI's procedure context is
 *		current, as SPI_connect leaves it: what is allocated there goes away
 *		with SPI_finish.  What must outlive the transaction is allocated in
 *		the caller's context: by SPI_palloc (as the catalog lookups here do)
 *		or after an explicit MemoryContextSwitchTo.  rs_commit_xact makes
 *		the caller's context current again (SPI_finish restores it, and the
 *		commit leaves TopMemoryContext current).
 */
MemoryContext
rs_begin_xact(const char *activity)
{
	MemoryContext caller_cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* SPI_palloc'd results go to the caller's context, which outlives the transaction. */
	MemoryContextSwitchTo(caller_cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity)
		pgstat_report_activity(STATE_RUNNING, activity);
	return caller_cxt;
}

void
rs_commit_xact(void)
{
	MemoryContext caller_cxt;

	SPI_finish();
	/* SPI_finish made the context current at SPI_connect current again. */
	caller_cxt = CurrentMemoryContext;
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * rs_set_safe_search_path
 *		Background workers run internal SQL with a search_path that no user
 *		can hijack.
 */
void
rs_set_safe_search_path(void)
{
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
}

/*
 * rs_job_lock_tag
 *		The lock that serializes runs of one job (job_id > 0), or that
 *		serializes the counting and starting of workers (job_id 0).
 *
 *		It is a "userlock": a lock type that no SQL function can take, so
 *		that no role can hold a job's runs up (as any role could with the
 *		advisory locks of 0.1).  It shows in pg_locks with locktype
 *		"userlock", classid 1381190210 ('RSJB'), and the job id in objid
 *		(its low 32 bits) and objsubid (the next 16).
 */
void
rs_job_lock_tag(LOCKTAG *tag, int64 job_id)
{
	tag->locktag_field1 = MyDatabaseId;
	tag->locktag_field2 = RS_LOCK_CLASS;
	tag->locktag_field3 = (uint32) job_id;
	tag->locktag_field4 = (uint16) ((uint64) job_id >> 32);
	tag->locktag_type = LOCKTAG_USERLOCK;
	/* the user lock method: session locks are released at backend exit */
	tag->locktag_lockmethodid = USER_LOCKMETHOD;
}
