/*-------------------------------------------------------------------------
 *
 * history.c
 *		  Run history retention: the setting redis_sync.run_retention and
 *		  redis_sync.purge_runs(), which delete old finished runs with their
 *		  partitions and rejects.
 *
 * A run is kept, however old, while it may still be needed: a run that is
 * running, the newest run of its job (the scheduler and the views read
 * it), and the newest unfinished run (failed, cancelled or interrupted) of
 * a job and date, which sync_run() and the scheduler resume.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "sync.h"

PG_FUNCTION_INFO_V1(purge_runs);

/* redis_sync.run_retention, parsed; NULL until the setting is assigned. */
static Interval *rs_run_retention_value = NULL;

/*
 * rs_parse_interval
 *		Parse interval text as interval_in does, without raising an error:
 *		false if the text is not an interval.
 */
static bool
rs_parse_interval(const char *text, Interval *result)
{
	struct pg_itm_in itm;
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			dterr;
	char	   *copy;

	memset(&itm, 0, sizeof(itm));
	dterr = ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm);
	if (dterr == DTERR_BAD_FORMAT)
	{
		memset(&itm, 0, sizeof(itm));
		copy = pstrdup(text);
		dterr = DecodeISO8601Interval(copy, &dtype, &itm);
		pfree(copy);
	}
	if (dterr != 0 || dtype != DTK_DELTA)
		return false;
	return itmin2interval(&itm, result) == 0;
}

/* Is the interval below zero, or zero? (-1, 0 or 1, as interval_cmp.) */
static int
rs_interval_sign(Interval *span)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(span),
											 IntervalPGetDatum(&zero)));
}

/*
 * rs_check_run_retention
 *		GUC check hook of redis_sync.run_retention: an interval that is not
 *		negative.  The parsed value goes to the assign hook in *extra.
 */
bool
rs_check_run_retention(char **newval, void **extra, GucSource source)
{
	Interval	span;
	Interval   *copy;

	if (*newval == NULL || !rs_parse_interval(*newval, &span))
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval ? *newval : "");
		return false;
	}
	if (rs_interval_sign(&span) < 0)
	{
		GUC_check_errdetail("The retention must not be negative.");
		return false;
	}
	/* GUC frees "extra" with free() (PostgreSQL 15 exports no guc_malloc). */
	copy = malloc(sizeof(Interval));
	if (copy == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	*copy = span;
	*extra = copy;
	return true;
}

/* GUC assign hook of redis_sync.run_retention. */
void
rs_assign_run_retention(const char *newval, void *extra)
{
	rs_run_retention_value = (Interval *) extra;
}

/*
 * rs_run_retention
 *		redis_sync.run_retention, or NULL when it is zero (runs are kept
 *		forever).  The result is the setting's own copy: do not change it.
 */
Interval *
rs_run_retention(void)
{
	if (rs_run_retention_value == NULL || rs_interval_sign(rs_run_retention_value) == 0)
		return NULL;
	return rs_run_retention_value;
}

/*
 * rs_purge_runs
 *		Delete the runs that finished longer than "older_than" ago, with
 *		their partitions and rejects (by cascade), except a run that is its
 *		job's newest, or that is the newest unfinished run (failed,
 *		cancelled, interrupted) of its job and date, which a resume would
 *		continue.  With a valid "role", only runs of jobs whose owner's
 *		privileges that role has (pg_has_role USAGE; a superuser has all);
 *		with InvalidOid, the runs of every job.  Returns how many runs were
 *		deleted.  Must be called in a transaction; it writes as the engine.
 */
int64
rs_purge_runs(Interval *older_than, Oid role)
{
	Oid			argtypes[2] = {INTERVALOID, OIDOID};
	Datum		values[2];
	int64		deleted;

	values[0] = IntervalPGetDatum(older_than);
	values[1] = ObjectIdGetDatum(role);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rs_spi_exec("DELETE FROM redis_sync.run r "
				"WHERE r.finished_at < now() - $1 AND r.status <> 'running' "
				"AND r.run_id < (SELECT max(n.run_id) FROM redis_sync.run n "
				"                WHERE n.job_id = r.job_id) "
				"AND (r.status NOT IN ('failed', 'cancelled', 'interrupted') "
				"     OR EXISTS (SELECT 1 FROM redis_sync.run n "
				"                WHERE n.job_id = r.job_id AND n.run_date = r.run_date "
				"                AND n.run_id > r.run_id "
				"                AND n.status IN ('running', 'failed', 'cancelled', 'interrupted'))) "
				"AND ($2 = 0::oid OR EXISTS (SELECT 1 FROM redis_sync.job j "
				"     WHERE j.job_id = r.job_id AND pg_has_role($2, j.owner::oid, 'USAGE')))",
				2, argtypes, values, NULL, SPI_OK_DELETE);
	deleted = (int64) SPI_processed;
	SPI_finish();
	return deleted;
}

/*
 * redis_sync.purge_runs(older_than interval) returns bigint
 *		Delete the caller's finished runs older than older_than (all roles'
 *		runs for a superuser), as rs_purge_runs; returns how many.
 */
Datum
purge_runs(PG_FUNCTION_ARGS)
{
	Interval   *older_than;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be NULL")));
	older_than = PG_GETARG_INTERVAL_P(0);
	if (rs_interval_sign(older_than) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errdetail("The value was \"%s\".",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(older_than))))));
	PG_RETURN_INT64(rs_purge_runs(older_than, GetUserId()));
}
