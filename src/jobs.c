/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		  Validation behind create_job() and alter_job(): the foreign server,
 *		  the key template, the target tables and the schedule.
 *
 * The job functions themselves are SQL (redis_sync--*.sql); they call
 * redis_sync._check_job(), defined here, so that a job is checked when it
 * is defined rather than when it first runs.  Runs check the target tables
 * again, since they may have changed since.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "redis_sync.h"

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
			default:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid escape \"%%%.*s\" in key template \"%s\"",
								*p ? pg_mblen(p) : 0, p, key_template),
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
 *		can take upserts.  Returns the type of click_count.
 */
void
rs_validate_target_table(Oid relid, bool daily, Oid *count_type)
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

	if (pg_class_aclmask(relid, GetUserId(), ACL_SELECT | ACL_INSERT | ACL_UPDATE, ACLMASK_ALL) !=
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
 * redis_sync._check_job(server_name, daily_key, total_key, member_table,
 *						 daily_table, schedule)
 *		Raise an error for anything that would stop the job from running.
 *		member_table is NULL when total_key is NULL.
 */
Datum
rs_check_job_sql(PG_FUNCTION_ARGS)
{
	ForeignServer *server;
	Oid			count_type;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server_name must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("daily_key must not be NULL")));

	server = GetForeignServerByName(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	if (!rs_is_redis_server(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a redis_zset server", server->servername)));
	/* The job owner's user mapping (or PUBLIC's) must exist: this errors if not. */
	(void) GetUserMapping(GetUserId(), server->serverid);

	(void) rs_format_key(text_to_cstring(PG_GETARG_TEXT_PP(1)), 0);
	if (!PG_ARGISNULL(2) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(2)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_key must not be empty"),
				 errhint("Pass NULL to leave the member table untouched.")));
	if (!PG_ARGISNULL(3))
		rs_validate_target_table(PG_GETARG_OID(3), false, &count_type);
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("daily_table must not be NULL")));
	rs_validate_target_table(PG_GETARG_OID(4), true, &count_type);
	if (!PG_ARGISNULL(5))
		rs_validate_schedule(text_to_cstring(PG_GETARG_TEXT_PP(5)));
	PG_RETURN_VOID();
}
