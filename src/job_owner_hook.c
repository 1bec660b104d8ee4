/*-------------------------------------------------------------------------
 *
 * job_owner_hook.c
 *		  What happens to jobs when their owner role goes: a
 *		  ProcessUtility_hook that refuses DROP ROLE of a role that owns
 *		  jobs in the current database, moves jobs on REASSIGN OWNED BY and
 *		  drops them on DROP OWNED BY.
 *
 * The hook exists only in sessions that have loaded the library (through
 * shared_preload_libraries or session_preload_libraries, or by using the
 * extension earlier in the session), and it sees only the jobs of the
 * current database.  A role dropped elsewhere leaves its jobs with a bare
 * owner OID: no run starts for them (rs_check_job_owner), and the scheduler
 * disables them with a recorded reason (rs_disable_orphaned_jobs).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "sync.h"

static ProcessUtility_hook_type rs_prev_process_utility = NULL;

static void rs_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);

/*
 * rs_install_owner_hook
 *		Install the hook; called once from _PG_init.
 */
void
rs_install_owner_hook(void)
{
	rs_prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = rs_process_utility;
}

/* Does the current database have redis_sync's job table? */
static bool
rs_jobs_installed(void)
{
	Oid			nsp;

	if (!OidIsValid(get_extension_oid("redis_sync", true)))
		return false;
	nsp = get_namespace_oid("redis_sync", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("job", nsp));
}

/*
 * rs_check_drop_role
 *		Refuse to drop a role that owns jobs in this database.
 */
static void
rs_check_drop_role(DropRoleStmt *stmt)
{
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, stmt->roles)
	{
		RoleSpec   *spec = lfirst(lc);
		Oid			roleid;
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];
		bool		isnull;
		int64		njobs;

		/* Let DROP ROLE itself report CURRENT_USER and missing roles. */
		if (spec->roletype != ROLESPEC_CSTRING)
			continue;
		roleid = get_role_oid(spec->rolename, true);
		if (!OidIsValid(roleid))
			continue;
		values[0] = ObjectIdGetDatum(roleid);
		rs_spi_exec("SELECT count(*), string_agg(quote_literal(job_name), ', ' ORDER BY job_name) "
					"FROM redis_sync.job WHERE owner::oid = $1",
					1, argtypes, values, NULL, SPI_OK_SELECT);
		njobs = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
		if (njobs > 0)
		{
			char	   *names = TextDatumGetCString(rs_spi_getdatum(0, 2, &isnull));

			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("role \"%s\" cannot be dropped because it owns redis_sync jobs",
							spec->rolename),
					 errdetail_plural("The role owns " INT64_FORMAT " job in database \"%s\": %s.",
									  "The role owns " INT64_FORMAT " jobs in database \"%s\": %s.",
									  njobs, njobs, get_database_name(MyDatabaseId), names),
					 errhint("Drop the jobs with redis_sync.drop_job(), or give them to another role with REASSIGN OWNED BY %s TO ...",
							 quote_identifier(spec->rolename))));
		}
	}
	SPI_finish();
}

/*
 * rs_reassign_jobs
 *		REASSIGN OWNED BY ... TO newrole, after PostgreSQL has checked and
 *		done its part: the roles' jobs in this database now belong to
 *		newrole, and run as newrole from their next run on.
 */
static void
rs_reassign_jobs(ReassignOwnedStmt *stmt)
{
	Oid			newrole = get_rolespec_oid(stmt->newrole, false);
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, stmt->roles)
	{
		Oid			argtypes[2] = {OIDOID, OIDOID};
		Datum		values[2];

		values[0] = ObjectIdGetDatum(get_rolespec_oid(lfirst(lc), false));
		values[1] = ObjectIdGetDatum(newrole);
		rs_spi_exec("UPDATE redis_sync.job SET owner = $2::regrole WHERE owner::oid = $1",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
	}
	SPI_finish();
}

/*
 * rs_drop_owned_jobs
 *		DROP OWNED BY, after PostgreSQL has checked and done its part: drop
 *		the roles' jobs in this database with their runs, as drop_job()
 *		does, or fail if one of them is running.
 */
static void
rs_drop_owned_jobs(DropOwnedStmt *stmt)
{
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, stmt->roles)
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];
		uint64		n;
		int64	   *ids;
		char	  **names;

		values[0] = ObjectIdGetDatum(get_rolespec_oid(lfirst(lc), false));
		rs_spi_exec("SELECT job_id, job_name FROM redis_sync.job WHERE owner::oid = $1 FOR UPDATE",
					1, argtypes, values, NULL, SPI_OK_SELECT);
		n = SPI_processed;
		ids = palloc(sizeof(int64) * (n + 1));
		names = palloc(sizeof(char *) * (n + 1));
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = DatumGetInt64(rs_spi_getdatum(i, 1, &isnull));
			names[i] = TextDatumGetCString(rs_spi_getdatum(i, 2, &isnull));
		}
		for (uint64 i = 0; i < n; i++)
		{
			LOCKTAG		tag;
			Oid			idtype[1] = {INT8OID};
			Datum		id[1];

			/* Held until commit, so that no run of the job starts meanwhile. */
			rs_job_lock_tag(&tag, ids[i]);
			if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("job \"%s\" is running", names[i]),
						 errhint("Wait for the run to end, or cancel it, and run DROP OWNED again.")));
			id[0] = Int64GetDatum(ids[i]);
			rs_spi_exec("DELETE FROM redis_sync.job WHERE job_id = $1",
						1, idtype, id, NULL, SPI_OK_DELETE);
		}
	}
	SPI_finish();
}

/*
 * rs_process_utility
 *		The ProcessUtility_hook: the checks and changes above around DROP
 *		ROLE, REASSIGN OWNED and DROP OWNED, in databases with redis_sync.
 */
static void
rs_process_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		ours = (IsA(stmt, DropRoleStmt) || IsA(stmt, ReassignOwnedStmt) ||
						IsA(stmt, DropOwnedStmt)) && rs_jobs_installed();

	if (ours && IsA(stmt, DropRoleStmt))
		rs_check_drop_role((DropRoleStmt *) stmt);

	if (rs_prev_process_utility)
		rs_prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	if (ours && IsA(stmt, ReassignOwnedStmt))
		rs_reassign_jobs((ReassignOwnedStmt *) stmt);
	else if (ours && IsA(stmt, DropOwnedStmt))
		rs_drop_owned_jobs((DropOwnedStmt *) stmt);
}
