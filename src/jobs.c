/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		  create_job(), alter_job() and drop_job(), and the checks behind
 *		  them: the foreign server, the key template, the target tables, the
 *		  schedule, and the job's owner.
 *
 * A job is checked when it is defined rather than when it first runs.  Runs
 * check the server, the target tables and the owner again, since they may
 * have changed since.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "compat.h"
#include "cron.h"
#include "fdw.h"
#include "options.h"
#include "sync.h"

PG_FUNCTION_INFO_V1(rs_format_key_sql);
PG_FUNCTION_INFO_V1(rs_check_job_sql);

/*
 * rs_format_key
 *		Expand a key template for a date: %Y (4-digit year), %m and %d
 *		(2 digits) and %% (a literal %).  Any other escape is an error.
 */
char *
rs_format_key(const char *key_template, DateADT run_date)
{
	return rs_format_shard_key(key_template, run_date, -1);
}

/*
 * rs_format_shard_key
 *		Expand a key template for a date, as rs_format_key does, and for a
 *		shard: %s is the shard number.  With shard < 0 (a job of one shard)
 *		%s is an error, as any other escape, so that such a job's keys are
 *		formatted as they always were.
 */
char *
rs_format_shard_key(const char *key_template, DateADT run_date, int shard)
{
	StringInfoData buf;
	int			year,
				month,
				day;
	const char *p;

	j2date(run_date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	initStringInfo(&buf);
	for (p = key_template; *p; p++)
	{
		if (*p != '%')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		p++;
		switch (*p)
		{
			case 'Y':
				appendStringInfo(&buf, "%04d", year);
				break;
			case 'm':
				appendStringInfo(&buf, "%02d", month);
				break;
			case 'd':
				appendStringInfo(&buf, "%02d", day);
				break;
			case '%':
				appendStringInfoChar(&buf, '%');
				break;
			case 's':
				if (shard >= 0)
				{
					appendStringInfo(&buf, "%d", shard);
					break;
				}
				/* FALLTHROUGH */
			default:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid escape \"%%%.*s\" in key template \"%s\"",
								*p ? pg_mblen(p) : 0, p, key_template),
						 shard >= 0 ?
						 errhint("Valid escapes are %%Y, %%m, %%d, %%s and %%%%.") :
						 errhint("Valid escapes are %%Y, %%m, %%d and %%%%.")));
		}
	}
	if (buf.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key template must not be empty")));
	return buf.data;
}

/*
 * rs_template_has_shard
 *		Does a key template hold the shard escape %s (not %%s)?
 */
bool
rs_template_has_shard(const char *key_template)
{
	for (const char *p = key_template; *p; p++)
	{
		if (*p != '%')
			continue;
		p++;
		if (*p == 's')
			return true;
		if (*p == '\0')
			break;
	}
	return false;
}

/*
 * rs_shard_total_key
 *		The total key of a shard of a sharded job: a total_key template with
 *		%s has %s replaced by the shard number and %% by %; any other escape
 *		is an error.  A total_key without %s is one key for all shards,
 *		taken as it is, as is every total_key of a job of one shard.
 */
char *
rs_shard_total_key(const char *total_key, int shards, int shard)
{
	StringInfoData buf;

	if (shards <= 1 || !rs_template_has_shard(total_key))
		return pstrdup(total_key);
	initStringInfo(&buf);
	for (const char *p = total_key; *p; p++)
	{
		if (*p != '%')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		p++;
		if (*p == 's')
			appendStringInfo(&buf, "%d", shard);
		else if (*p == '%')
			appendStringInfoChar(&buf, '%');
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid escape \"%%%.*s\" in total key template \"%s\"",
							*p ? pg_mblen(p) : 0, p, total_key),
					 errhint("A total_key with %%s takes only the escapes %%s and %%%%.")));
	}
	return buf.data;
}

/*
 * redis_sync.format_key(key_template text, run_date date) returns text
 */
Datum
rs_format_key_sql(PG_FUNCTION_ARGS)
{
	char	   *tmpl = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DateADT		d = PG_GETARG_DATEADT(1);

	if (DATE_NOT_FINITE(d))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("run date must be finite")));
	PG_RETURN_TEXT_P(cstring_to_text(rs_format_key(tmpl, d)));
}

/* Type of column "colname" of the relation, or InvalidOid; *attnum set. */
static Oid
rs_column_type(Relation rel, const char *colname, AttrNumber *attnum)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
		{
			*attnum = att->attnum;
			return att->atttypid;
		}
	}
	*attnum = InvalidAttrNumber;
	return InvalidOid;
}

/* Does the relation have a valid, non-partial unique index on exactly these columns? */
static bool
rs_has_unique_key(Relation rel, AttrNumber a1, AttrNumber a2)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index idx;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		if (idx->indisunique && idx->indisvalid && idx->indimmediate &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(tup, Anum_pg_index_indexprs, NULL) &&
			idx->indnkeyatts == (a2 ? 2 : 1))
		{
			int16	   *keys = idx->indkey.values;

			if (a2 == 0 ? keys[0] == a1 :
				((keys[0] == a1 && keys[1] == a2) || (keys[0] == a2 && keys[1] == a1)))
				found = true;
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	return found;
}

/*
 * rs_validate_target_table
 *		Check that a member table (name, click_count, unique name) or a daily
 *		table (name, click_date, click_count, unique (name, click_date))
 *		can take upserts from "role".  Returns the type of click_count.
 */
void
rs_validate_target_table(Oid relid, bool daily, Oid role, Oid *count_type)
{
	Relation	rel;
	const char *kind = daily ? "daily" : "member";
	AttrNumber	name_att,
				date_att = 0,
				count_att;
	Oid			t;

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s table with OID %u does not exist", kind, relid)));
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("The %s table of a job must be a plain or partitioned table.", kind)));

	if (pg_class_aclmask(relid, role, ACL_SELECT | ACL_INSERT | ACL_UPDATE, ACLMASK_ALL) !=
		(ACL_SELECT | ACL_INSERT | ACL_UPDATE))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s table \"%s\"", kind, RelationGetRelationName(rel)),
				 errdetail("The owner of a job needs SELECT, INSERT and UPDATE on its target tables.")));

	t = rs_column_type(rel, "name", &name_att);
	if (!OidIsValid(t))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s table \"%s\" has no column \"name\"", kind, RelationGetRelationName(rel))));
	if (t != TEXTOID && t != VARCHAROID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"name\" of %s table \"%s\" has type %s", kind,
						RelationGetRelationName(rel), format_type_be(t)),
				 errdetail("The name column must be text or varchar.")));
	if (daily)
	{
		t = rs_column_type(rel, "click_date", &date_att);
		if (!OidIsValid(t))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("daily table \"%s\" has no column \"click_date\"",
							RelationGetRelationName(rel))));
		if (t != DATEOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"click_date\" of daily table \"%s\" has type %s",
							RelationGetRelationName(rel), format_type_be(t)),
					 errdetail("The click_date column must be of type date.")));
	}
	t = rs_column_type(rel, "click_count", &count_att);
	if (!OidIsValid(t))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s table \"%s\" has no column \"click_count\"", kind,
						RelationGetRelationName(rel))));
	if (!rs_is_numeric_type(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"click_count\" of %s table \"%s\" has type %s", kind,
						RelationGetRelationName(rel), format_type_be(t)),
				 errdetail("The click_count column must be smallint, integer, bigint, real, double precision or numeric.")));
	*count_type = t;

	if (!rs_has_unique_key(rel, name_att, date_att))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s table \"%s\" has no unique key on %s", kind,
						RelationGetRelationName(rel), daily ? "(name, click_date)" : "(name)"),
				 errhint("Add one with ALTER TABLE %s ADD UNIQUE %s.",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)),
						 daily ? "(name, click_date)" : "(name)")));
	table_close(rel, AccessShareLock);
}

/*
 * rs_check_job_definition
 *		Raise an error for anything that would stop a job owned by "owner"
 *		from running: a server that is not a redis_zset server, or on which
 *		the owner has no USAGE or no user mapping; an invalid key template;
 *		target tables it cannot write; an invalid schedule.  member_table is
 *		InvalidOid when total_key is NULL.  A job of several shards needs
 *		%s in its daily_key; its total_key may have %s (a total key per
 *		shard) or not (one total key).
 */
void
rs_check_job_definition(Oid owner, const char *server_name, const char *daily_key,
						const char *total_key, Oid member_table, Oid daily_table,
						const char *schedule, int shards)
{
	ForeignServer *server;
	Oid			count_type;

	if (server_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server_name must not be NULL")));
	if (daily_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("daily_key must not be NULL")));
	server = GetForeignServerByName(server_name, false);
	rs_check_server_access(server, owner);
	if (shards <= 1)
		(void) rs_format_key(daily_key, 0);
	else
	{
		(void) rs_format_shard_key(daily_key, 0, 0);
		if (!rs_template_has_shard(daily_key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("daily_key \"%s\" has no %%s", daily_key),
					 errdetail("A job of %d shards reads one key per shard: %%s in daily_key is the shard number.",
							   shards),
					 errhint("Put %%s in daily_key, such as \"clicks:daily:{%%s}:%%Y-%%m-%%d\".")));
	}
	if (total_key != NULL && total_key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_key must not be empty"),
				 errhint("Pass NULL to leave the member table untouched.")));
	if (total_key != NULL && shards > 1)
		(void) rs_shard_total_key(total_key, shards, 0);
	if (OidIsValid(member_table))
		rs_validate_target_table(member_table, false, owner, &count_type);
	if (!OidIsValid(daily_table))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("daily_table must not be NULL")));
	rs_validate_target_table(daily_table, true, owner, &count_type);
	if (schedule != NULL)
		rs_validate_schedule(schedule);
}

/*
 * rs_check_server_access
 *		The checks that CREATE FOREIGN TABLE and a scan would make for a job
 *		owner on a job's server, made when the job is defined and again by
 *		every run: the server belongs to redis_zset (a job never sends
 *		another wrapper's user mapping to a host), the owner has USAGE on it,
 *		and a user mapping applies to the owner.
 */
void
rs_check_server_access(ForeignServer *server, Oid owner)
{
	AclResult	aclresult;

	if (!rs_is_redis_server(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a redis_zset server", server->servername)));
	aclresult = pg_foreign_server_aclcheck(server->serverid, owner, ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	/* The owner's user mapping (or PUBLIC's) must exist: this errors if not. */
	(void) GetUserMapping(owner, server->serverid);
}

/*
 * rs_check_job_owner
 *		Raise an error if the job's owner role no longer exists (it was
 *		dropped in a session that had not loaded redis_sync, so that the
 *		DROP ROLE check of job_owner_hook.c did not run).  A job never runs
 *		as another role; the scheduler disables such jobs
 *		(rs_disable_orphaned_jobs).
 */
void
rs_check_job_owner(RsJob *job)
{
	if (SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(job->owner)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("owner of job \"%s\" no longer exists", job->job_name),
			 errdetail("The job belonged to the role with OID %u, which has been dropped; a job never runs as another role.",
					   job->owner),
			 errhint("Drop the job with redis_sync.drop_job(), and create it again as another role.")));
}

/*
 * rs_disable_orphaned_jobs
 *		Disable the enabled jobs whose owner role no longer exists, with the
 *		reason in disabled_reason, and log each.  Returns how many.  Must be
 *		called in a transaction; it writes as the engine.
 */
int
rs_disable_orphaned_jobs(void)
{
	int			n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rs_spi_exec("UPDATE redis_sync.job j SET enabled = false, "
				"disabled_reason = format('Its owner, the role with OID %s, has been dropped.', j.owner::oid) "
				"WHERE j.enabled AND NOT EXISTS "
				"(SELECT 1 FROM pg_roles r WHERE r.oid = j.owner::oid) "
				"RETURNING j.job_name, j.owner::oid",
				0, NULL, NULL, NULL, SPI_OK_UPDATE_RETURNING);
	n = (int) SPI_processed;
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *name = TextDatumGetCString(rs_spi_getdatum(i, 1, &isnull));
		Oid			owner = DatumGetObjectId(rs_spi_getdatum(i, 2, &isnull));

		ereport(LOG,
				(errmsg("redis_sync job \"%s\" is disabled: its owner no longer exists", name),
				 errdetail("The role with OID %u has been dropped.", owner)));
	}
	SPI_finish();
	return n;
}

/*
 * redis_sync._check_job(server_name, daily_key, total_key, member_table,
 *						 daily_table, schedule)
 *		Version 0.1's check behind its SQL create_job() and alter_job(),
 *		kept so that the 0.1 install script (the start of the update path)
 *		still finds it; version 0.2 drops the SQL function.
 */
Datum
rs_check_job_sql(PG_FUNCTION_ARGS)
{
	rs_check_job_definition(GetUserId(),
							PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
							PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
							PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
							PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3),
							PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4),
							PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)), 1);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * create_job, alter_job and drop_job
 *
 * Roles cannot write the catalog; these functions check what the caller
 * may do and then write as the engine (rs_spi_exec).  A job belongs to the
 * role that created it; a role with the privileges of a job's owner (the
 * owner itself, its members, superusers) may alter, drop and run it.
 * ---------------------------------------------------------------------
 */

/* A job's definition, as create_job and alter_job take it. */
typedef struct RsJobDef
{
	char	   *job_name;
	char	   *server_name;
	char	   *daily_key;
	char	   *total_key;		/* NULL: member table untouched */
	Oid			member_table;
	Oid			daily_table;
	int			partitions;
	int			workers;
	int			chunk_size;
	char	   *schedule;		/* normalized; NULL: on demand only */
	int			day_offset;
	bool		enabled;
	int64		max_rejects;
	int			max_retries;
	Interval   *retry_delay;
	int			shards;
} RsJobDef;

PG_FUNCTION_INFO_V1(create_job);
PG_FUNCTION_INFO_V1(alter_job);
PG_FUNCTION_INFO_V1(drop_job);

static char *
rs_text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * rs_normalize_schedule
 *		A schedule as it is stored: leading and trailing white space dropped
 *		and each run of white space made one space, so that one schedule has
 *		one form.
 */
static char *
rs_normalize_schedule(const char *schedule)
{
	StringInfoData buf;
	bool		space = false;

	initStringInfo(&buf);
	for (const char *p = schedule; *p; p++)
	{
		if (isspace((unsigned char) *p))
		{
			space = (buf.len > 0);
			continue;
		}
		if (space)
			appendStringInfoChar(&buf, ' ');
		space = false;
		appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/* An error for a numeric job setting outside its range. */
static void
rs_check_range(const char *name, int64 value, int64 min, int64 max)
{
	if (value < min || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for %s: " INT64_FORMAT, name, value),
				 errdetail("The value must be an integer from " INT64_FORMAT " to " INT64_FORMAT ".",
						   min, max)));
}

/*
 * rs_check_job_def
 *		Check a whole job definition for its owner.
 */
static void
rs_check_job_def(RsJobDef *def, Oid owner)
{
	Interval	zero;
	Interval	day;

	rs_check_range("partitions", def->partitions, 1, 10000);
	rs_check_range("workers", def->workers, 1, 64);
	rs_check_range("chunk_size", def->chunk_size, 1, 1000000);
	rs_check_range("day_offset", def->day_offset, -3650, 3650);
	rs_check_range("max_rejects", def->max_rejects, 0, PG_INT64_MAX);
	rs_check_range("max_retries", def->max_retries, 0, 100);
	rs_check_range("shards", def->shards, 1, 1024);
	memset(&zero, 0, sizeof(zero));
	memset(&day, 0, sizeof(day));
	day.day = 1;
	if (DatumGetBool(DirectFunctionCall2(interval_le, IntervalPGetDatum(def->retry_delay),
										 IntervalPGetDatum(&zero))) ||
		DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(def->retry_delay),
										 IntervalPGetDatum(&day))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for retry_delay: \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(def->retry_delay)))),
				 errdetail("The value must be an interval greater than zero and at most 1 day.")));
	if (def->schedule != NULL)
		def->schedule = rs_normalize_schedule(def->schedule);
	rs_check_job_definition(owner, def->server_name, def->daily_key, def->total_key,
							def->total_key != NULL ? def->member_table : InvalidOid,
							def->daily_table, def->schedule, def->shards);
}

/* The table named "name" in the caller's search_path, or InvalidOid. */
static Oid
rs_default_table(const char *name)
{
	return RangeVarGetRelid(makeRangeVar(NULL, pstrdup(name), -1), NoLock, true);
}

/*
 * rs_job_is_running
 *		Does a coordinator hold the job's lock?  If not, the lock is now
 *		held by this transaction, so that no run starts before it ends.
 */
static bool
rs_job_is_running(int64 job_id)
{
	LOCKTAG		tag;

	rs_job_lock_tag(&tag, job_id);
	return LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL;
}

/* Parameters $2 to $16 of the job statements: a definition's columns. */
#define RS_JOB_DEF_TYPES \
	TEXTOID, TEXTOID, TEXTOID, OIDOID, OIDOID, INT4OID, INT4OID, INT4OID, TEXTOID, \
	INT4OID, BOOLOID, INT8OID, INT4OID, INTERVALOID, INT4OID
#define RS_JOB_DEF_COLUMNS \
	"server_name = $2, daily_key = $3, total_key = $4, " \
	"member_table = $5::pg_catalog.regclass, daily_table = $6::pg_catalog.regclass, " \
	"partitions = $7, workers = $8, chunk_size = $9, schedule = $10, day_offset = $11, " \
	"enabled = $12, max_rejects = $13, max_retries = $14, retry_delay = $15, shards = $16"

/*
 * rs_job_def_params
 *		Fill values[1..15] and nulls[1..15] with a definition, in the order
 *		of RS_JOB_DEF_TYPES and RS_JOB_DEF_COLUMNS.
 */
static void
rs_job_def_params(const RsJobDef *def, Datum *values, char *nulls)
{
	values[1] = CStringGetTextDatum(def->server_name);
	values[2] = CStringGetTextDatum(def->daily_key);
	values[3] = def->total_key ? CStringGetTextDatum(def->total_key) : (Datum) 0;
	nulls[3] = def->total_key ? ' ' : 'n';
	values[4] = ObjectIdGetDatum(def->member_table);
	nulls[4] = OidIsValid(def->member_table) ? ' ' : 'n';
	values[5] = ObjectIdGetDatum(def->daily_table);
	values[6] = Int32GetDatum(def->partitions);
	values[7] = Int32GetDatum(def->workers);
	values[8] = Int32GetDatum(def->chunk_size);
	values[9] = def->schedule ? CStringGetTextDatum(def->schedule) : (Datum) 0;
	nulls[9] = def->schedule ? ' ' : 'n';
	values[10] = Int32GetDatum(def->day_offset);
	values[11] = BoolGetDatum(def->enabled);
	values[12] = Int64GetDatum(def->max_rejects);
	values[13] = Int32GetDatum(def->max_retries);
	values[14] = IntervalPGetDatum(def->retry_delay);
	values[15] = Int32GetDatum(def->shards);
}

/*
 * rs_lock_job_arg
 *		The job named by the function's first argument, locked until the end
 *		of the transaction, if the caller has its owner's privileges (else
 *		an error as if it did not exist); SPI is connected for the caller.
 */
static RsJob *
rs_lock_job_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job name must not be NULL")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return rs_lookup_job_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
}

/*
 * redis_sync.create_job(job_name, server_name, daily_key, total_key,
 *		member_table, daily_table, partitions, workers, chunk_size, schedule,
 *		day_offset, max_rejects, max_retries, retry_delay, shards) returns bigint
 */
Datum
create_job(PG_FUNCTION_ARGS)
{
	RsJobDef	def;
	Oid			owner = GetUserId();
	Oid			argtypes[17] = {TEXTOID, RS_JOB_DEF_TYPES, OIDOID};
	Datum		values[17];
	char		nulls[18] = "                 ";
	bool		isnull;
	int64		job_id;

	memset(&def, 0, sizeof(def));
	def.job_name = rs_text_arg(fcinfo, 0);
	def.server_name = rs_text_arg(fcinfo, 1);
	def.daily_key = rs_text_arg(fcinfo, 2);
	def.total_key = rs_text_arg(fcinfo, 3);
	def.member_table = PG_ARGISNULL(4) ? rs_default_table("member") : PG_GETARG_OID(4);
	def.daily_table = PG_ARGISNULL(5) ? rs_default_table("daily_click_count") : PG_GETARG_OID(5);
	def.schedule = rs_text_arg(fcinfo, 9);
	def.enabled = true;
	if (def.job_name == NULL || def.job_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job name must not be empty")));
	if (!OidIsValid(def.member_table) && def.total_key != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member_table must be given"),
				 errhint("Pass member_table, or create a table named \"member\".")));
	if (!OidIsValid(def.daily_table))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("daily_table must be given"),
				 errhint("Pass daily_table, or create a table named \"daily_click_count\".")));
	for (int i = 6; i <= 14; i++)
	{
		static const char *const names[] = {"partitions", "workers", "chunk_size", "schedule",
		"day_offset", "max_rejects", "max_retries", "retry_delay", "shards"};

		if (PG_ARGISNULL(i) && i != 9)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", names[i - 6])));
	}
	def.partitions = PG_GETARG_INT32(6);
	def.workers = PG_GETARG_INT32(7);
	def.chunk_size = PG_GETARG_INT32(8);
	def.day_offset = PG_GETARG_INT32(10);
	def.max_rejects = PG_GETARG_INT64(11);
	def.max_retries = PG_GETARG_INT32(12);
	def.retry_delay = PG_GETARG_INTERVAL_P(13);
	def.shards = PG_GETARG_INT32(14);
	rs_check_job_def(&def, owner);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(def.job_name);
	rs_spi_exec("SELECT 1 FROM redis_sync.job WHERE job_name = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("job \"%s\" already exists", def.job_name),
				 errdetail("Job names are unique across all roles.")));
	rs_job_def_params(&def, values, nulls);
	values[16] = ObjectIdGetDatum(owner);
	rs_spi_exec("INSERT INTO redis_sync.job (job_name, server_name, daily_key, total_key, "
				"member_table, daily_table, partitions, workers, chunk_size, schedule, day_offset, "
				"enabled, max_rejects, max_retries, retry_delay, shards, owner) "
				"VALUES ($1, $2, $3, $4, $5::pg_catalog.regclass, $6::pg_catalog.regclass, "
				"$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::pg_catalog.regrole) RETURNING job_id",
				17, argtypes, values, nulls, SPI_OK_INSERT_RETURNING);
	job_id = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(job_id);
}

/*
 * redis_sync.alter_job(job_name, server_name, daily_key, total_key,
 *		member_table, daily_table, partitions, workers, chunk_size, schedule,
 *		day_offset, enabled, max_rejects, max_retries, retry_delay, shards)
 *		NULL leaves a value as it is; '' removes a schedule or total_key.
 *
 *		A change to what a run reads or writes (server, keys, tables,
 *		partitions, shards) is refused while the job runs, and makes the job's
 *		unfinished runs "superseded": a run never resumes with another
 *		definition than the one it started with.
 */
Datum
alter_job(PG_FUNCTION_ARGS)
{
	RsJob	   *job;
	RsJobDef	def;
	char	   *s;
	bool		redefined;
	Oid			argtypes[16] = {INT8OID, RS_JOB_DEF_TYPES};
	Datum		values[16];
	char		nulls[17] = "                ";

	job = rs_lock_job_arg(fcinfo);
	rs_check_job_owner(job);

	memset(&def, 0, sizeof(def));
	def.job_name = job->job_name;
	def.server_name = PG_ARGISNULL(1) ? job->server_name : rs_text_arg(fcinfo, 1);
	def.daily_key = PG_ARGISNULL(2) ? job->daily_key : rs_text_arg(fcinfo, 2);
	s = rs_text_arg(fcinfo, 3);
	def.total_key = s == NULL ? job->total_key : (s[0] == '\0' ? NULL : s);
	def.member_table = PG_ARGISNULL(4) ? job->member_table : PG_GETARG_OID(4);
	def.daily_table = PG_ARGISNULL(5) ? job->daily_table : PG_GETARG_OID(5);
	def.partitions = PG_ARGISNULL(6) ? job->partitions : PG_GETARG_INT32(6);
	def.workers = PG_ARGISNULL(7) ? job->workers : PG_GETARG_INT32(7);
	def.chunk_size = PG_ARGISNULL(8) ? job->chunk_size : PG_GETARG_INT32(8);
	s = rs_text_arg(fcinfo, 9);
	def.schedule = s == NULL ? job->schedule : (s[0] == '\0' ? NULL : s);
	def.day_offset = PG_ARGISNULL(10) ? job->day_offset : PG_GETARG_INT32(10);
	def.enabled = PG_ARGISNULL(11) ? job->enabled : PG_GETARG_BOOL(11);
	def.max_rejects = PG_ARGISNULL(12) ? job->max_rejects : PG_GETARG_INT64(12);
	def.max_retries = PG_ARGISNULL(13) ? job->max_retries : PG_GETARG_INT32(13);
	if (PG_ARGISNULL(14))
	{
		def.retry_delay = palloc0(sizeof(Interval));
		def.retry_delay->time = job->retry_delay_ms * 1000;
	}
	else
		def.retry_delay = PG_GETARG_INTERVAL_P(14);
	def.shards = PG_ARGISNULL(15) ? job->shards : PG_GETARG_INT32(15);
	if (def.total_key != NULL && !OidIsValid(def.member_table))
		def.member_table = rs_default_table("member");
	if (def.total_key != NULL && !OidIsValid(def.member_table))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member_table must be given"),
				 errhint("Pass member_table, or create a table named \"member\".")));
	/* The job's owner must be able to run it, whoever alters it. */
	rs_check_job_def(&def, job->owner);

	redefined = strcmp(def.server_name, job->server_name) != 0 ||
		strcmp(def.daily_key, job->daily_key) != 0 ||
		(def.total_key == NULL) != (job->total_key == NULL) ||
		(def.total_key != NULL && strcmp(def.total_key, job->total_key) != 0) ||
		(def.total_key != NULL && def.member_table != job->member_table) ||
		def.daily_table != job->daily_table ||
		def.partitions != job->partitions ||
		def.shards != job->shards;
	if (redefined && rs_job_is_running(job->job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("job \"%s\" is running", job->job_name),
				 errdetail("Its server, keys, tables, partitions and shards cannot change during a run."),
				 errhint("Wait for the run to end, or cancel it, and alter the job then.")));

	values[0] = Int64GetDatum(job->job_id);
	rs_job_def_params(&def, values, nulls);
	rs_spi_exec("UPDATE redis_sync.job SET " RS_JOB_DEF_COLUMNS ", "
				"disabled_reason = CASE WHEN $12 THEN NULL ELSE disabled_reason END "
				"WHERE job_id = $1",
				16, argtypes, values, nulls, SPI_OK_UPDATE);
	if (redefined)
		rs_spi_exec("UPDATE redis_sync.run SET status = 'superseded', retry_at = NULL, "
					"finished_at = coalesce(finished_at, now()), "
					"error = coalesce(error || ' ', '') || 'The job was altered after this run started.' "
					"WHERE job_id = $1 AND status IN ('failed', 'cancelled', 'interrupted')",
					1, argtypes, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * redis_sync.drop_job(job_name)
 *		Drop a job with its runs.  A job that is running is not dropped: the
 *		caller gets an error and cancels the run (or waits for it) first.
 */
Datum
drop_job(PG_FUNCTION_ARGS)
{
	RsJob	   *job;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	job = rs_lock_job_arg(fcinfo);
	if (rs_job_is_running(job->job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("job \"%s\" is running", job->job_name),
				 errhint("Wait for the run to end, or cancel it, and drop the job then.")));
	values[0] = Int64GetDatum(job->job_id);
	rs_spi_exec("DELETE FROM redis_sync.job WHERE job_id = $1",
				1, argtypes, values, NULL, SPI_OK_DELETE);
	SPI_finish();
	PG_RETURN_VOID();
}
