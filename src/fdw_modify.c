/*-------------------------------------------------------------------------
 *
 * fdw_modify.c
 *		  Writes through redis_zset foreign tables: INSERT, UPDATE, DELETE,
 *		  RETURNING, batch insert and TRUNCATE.
 *
 * INSERT sends ZADD NX, so an existing member is a unique violation (or is
 * skipped under ON CONFLICT DO NOTHING).  UPDATE sends ZADD XX, or, when the
 * member or key changes, a Lua script that renames the member atomically.
 * DELETE sends ZREM.  TRUNCATE unlinks the key.  A batch of inserted rows
 * goes out as one pipeline of ZADD commands, one per row, so that each row's
 * reply says whether that member already existed.
 *
 * Redis has no transaction that spans statements: every command takes
 * effect when it is sent, and a rollback of the PostgreSQL transaction does
 * not undo it.  The README says so.
 *
 * UPDATE and DELETE identify the row by its member (and key, for a table
 * with a key column), which the scan passes up as junk columns "rs_member"
 * and "rs_key".  A scan that feeds a write to its own key reads all its rows
 * before the first write (see rs_feeds_own_write in fdw_plan.c), since the
 * writes shift the ranks of the pages it has not read yet.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fdw.h"
#include "options.h"
#include "redis_conn.h"
#include "zset.h"

/* Indexes into the fdw_private list of a redis_zset ModifyTable. */
enum RsModifyPrivateIndex
{
	RS_MPRIV_DO_NOTHING,		/* Boolean: INSERT ... ON CONFLICT DO NOTHING */
	RS_MPRIV_RETURNING,			/* Boolean: the statement has RETURNING */
	RS_MPRIV_COUNT
};

/* The values of one row to write, as Redis arguments. */
typedef struct RsWriteRow
{
	const char *key;
	const char *member;
	int			member_len;
	char	   *score;			/* Redis score text; NULL for DELETE */
} RsWriteRow;

typedef struct RsModifyState
{
	RsConnection *conn;			/* NULL under EXPLAIN without ANALYZE */
	CmdType		operation;
	Relation	rel;
	RsTableOptions topts;
	AttrNumber	attnums[RS_NUM_FIELDS];
	Oid			atttypes[RS_NUM_FIELDS];
	bool		do_nothing;
	bool		returning;		/* RETURNING needs the row back from Redis */
	AttrNumber	junk_member;	/* UPDATE/DELETE: old member in the plan slot */
	AttrNumber	junk_key;		/* ... and old key, for a key column table */
	FmgrInfo	score_out;
	FmgrInfo	score_in;
	Oid			score_ioparam;
	MemoryContext temp_cxt;		/* reset for every row or batch */
} RsModifyState;

static void rs_refuse_sharded_write(const char *relname, const RsTableOptions *topts);
static RsModifyState *rs_init_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
									 CmdType operation, bool do_nothing, bool returning,
									 bool explain_only);
static void rs_get_row(RsModifyState *st, TupleTableSlot *slot, RsWriteRow *row);
static void rs_get_old_row(RsModifyState *st, TupleTableSlot *planSlot, RsWriteRow *row);
static char *rs_score_text(RsModifyState *st, Datum value, const RsWriteRow *row);
static void rs_member_exists_error(const char *key, const char *member, int len);
static void rs_set_returned(RsModifyState *st, EState *estate, TupleTableSlot *slot,
							const RsWriteRow *row, const char *score, int64 rank);
static int64 rs_zadd_and_rank(RsModifyState *st, const RsWriteRow *row, const char *flag,
							  int64 *rank);

/*
 * rsAddForeignUpdateTargets
 *		UPDATE and DELETE find their row by its member (and key): add them
 *		to the scan's output as row identity columns.
 */
void
rsAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
						  RangeTblEntry *target_rte, Relation target_relation)
{
	AttrNumber	attnums[RS_NUM_FIELDS];
	Oid			atttypes[RS_NUM_FIELDS];
	RsTableOptions topts;
	int			f;

	rs_field_attnums(target_relation, attnums, atttypes);
	rs_get_table_options(RelationGetRelid(target_relation), &topts);
	if (attnums[RS_FIELD_MEMBER] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot update or delete from foreign table \"%s\" because it has no member column",
						RelationGetRelationName(target_relation))));

	for (f = RS_FIELD_MEMBER; f <= RS_FIELD_KEY; f++)
	{
		Form_pg_attribute att;

		if (f != RS_FIELD_MEMBER && (f != RS_FIELD_KEY || topts.key != NULL))
			continue;
		att = TupleDescAttr(RelationGetDescr(target_relation), attnums[f] - 1);
		add_row_identity_var(root,
							 makeVar(rtindex, attnums[f], att->atttypid, att->atttypmod,
									 att->attcollation, 0),
							 rtindex, f == RS_FIELD_MEMBER ? "rs_member" : "rs_key");
	}
}

/*
 * rs_refuse_sharded_write
 *		A sharded table is read-only: nothing says which shard a new member
 *		belongs to (TRUNCATE, which empties every shard, is allowed).
 */
static void
rs_refuse_sharded_write(const char *relname, const RsTableOptions *topts)
{
	if (topts->shards > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot write to foreign table \"%s\" because it is sharded", relname),
				 errdetail("The table reads %d shards (option \"shards\"), and no rule says which shard a member belongs to.",
						   topts->shards),
				 errhint("Write through a foreign table whose \"key\" option names one shard's key.")));
}

/*
 * rsPlanForeignModify
 *		Reject what Redis cannot do (ON CONFLICT DO UPDATE, setting rank) and
 *		record ON CONFLICT DO NOTHING.
 */
List *
rsPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
					int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel = table_open(rte->relid, NoLock);
	AttrNumber	attnums[RS_NUM_FIELDS];
	Oid			atttypes[RS_NUM_FIELDS];
	RsTableOptions topts;
	char	   *relname = pstrdup(RelationGetRelationName(rel));

	rs_field_attnums(rel, attnums, atttypes);
	rs_get_table_options(rte->relid, &topts);
	table_close(rel, NoLock);

	rs_refuse_sharded_write(relname, &topts);

	if (plan->onConflictAction == ONCONFLICT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ON CONFLICT DO UPDATE is not supported on redis_zset foreign table \"%s\"",
						relname),
				 errhint("Use ON CONFLICT DO NOTHING followed by an UPDATE.")));

	if (plan->operation == CMD_INSERT || plan->operation == CMD_UPDATE)
	{
		if (attnums[RS_FIELD_MEMBER] == 0 || attnums[RS_FIELD_SCORE] == 0 ||
			(topts.key == NULL && attnums[RS_FIELD_KEY] == 0))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot write to foreign table \"%s\" because it lacks a member, score or key column",
							relname),
					 errdetail("Writes need a member column, a score column, and a key column unless the table has a \"key\" option.")));
	}
	if (plan->operation == CMD_UPDATE && attnums[RS_FIELD_RANK] != 0)
	{
		RelOptInfo *baserel = find_base_rel(root, resultRelation);
		Bitmapset  *updated = get_rel_all_updated_cols(root, baserel);

		if (bms_is_member(attnums[RS_FIELD_RANK] - FirstLowInvalidHeapAttributeNumber, updated))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot update column \"%s\" of foreign table \"%s\"",
							get_attname(rte->relid, attnums[RS_FIELD_RANK], false), relname),
					 errdetail("The rank of a member follows from its score.")));
	}
	return list_make2(makeBoolean(plan->onConflictAction == ONCONFLICT_NOTHING),
					  makeBoolean(plan->returningLists != NIL &&
								  list_nth(plan->returningLists, subplan_index) != NIL));
}

/*
 * rs_init_modify
 *		Set up the state of a write to one result relation, and connect
 *		unless only EXPLAIN is wanted.
 */
static RsModifyState *
rs_init_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, CmdType operation,
			   bool do_nothing, bool returning, bool explain_only)
{
	EState	   *estate = mtstate->ps.state;
	Relation	rel = rinfo->ri_RelationDesc;
	RsModifyState *st = palloc0(sizeof(RsModifyState));

	st->operation = operation;
	st->rel = rel;
	st->do_nothing = do_nothing;
	st->returning = returning;
	rs_get_table_options(RelationGetRelid(rel), &st->topts);
	rs_field_attnums(rel, st->attnums, st->atttypes);
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt, "redis_zset write",
										 ALLOCSET_SMALL_SIZES);
	if (st->attnums[RS_FIELD_SCORE] != 0)
	{
		Oid			func;
		bool		isvarlena;

		getTypeOutputInfo(st->atttypes[RS_FIELD_SCORE], &func, &isvarlena);
		fmgr_info(func, &st->score_out);
		getTypeInputInfo(st->atttypes[RS_FIELD_SCORE], &func, &st->score_ioparam);
		fmgr_info(func, &st->score_in);
	}

	if (operation == CMD_UPDATE || operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->junk_member = ExecFindJunkAttributeInTlist(subplan->targetlist, "rs_member");
		if (!AttributeNumberIsValid(st->junk_member))
			elog(ERROR, "could not find junk rs_member column");
		if (st->topts.key == NULL)
		{
			st->junk_key = ExecFindJunkAttributeInTlist(subplan->targetlist, "rs_key");
			if (!AttributeNumberIsValid(st->junk_key))
				elog(ERROR, "could not find junk rs_key column");
		}
	}

	if (!explain_only)
	{
		ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
		ForeignServer *server = GetForeignServer(table->serverid);
		Oid			userid;

#if PG_VERSION_NUM >= 160000
		userid = ExecGetResultRelCheckAsUser(rinfo, estate);
#else
		{
			/* A partition routed to by tuple routing has no range table entry. */
			Index		rti = rinfo->ri_RangeTableIndex != 0 ? rinfo->ri_RangeTableIndex :
				(rinfo->ri_RootResultRelInfo ? rinfo->ri_RootResultRelInfo->ri_RangeTableIndex : 0);
			RangeTblEntry *rte = rti != 0 ? exec_rt_fetch(rti, estate) : NULL;

			userid = (rte && OidIsValid(rte->checkAsUser)) ? rte->checkAsUser : GetUserId();
		}
#endif
		st->conn = rs_get_connection(server, GetUserMapping(userid, server->serverid));
	}
	rinfo->ri_FdwState = st;
	return st;
}

/*
 * rsBeginForeignModify
 *		Prepare an INSERT, UPDATE or DELETE planned by rsPlanForeignModify.
 */
void
rsBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					 List *fdw_private, int subplan_index, int eflags)
{
	bool		do_nothing = boolVal(list_nth(fdw_private, RS_MPRIV_DO_NOTHING));
	bool		returning = boolVal(list_nth(fdw_private, RS_MPRIV_RETURNING));

	(void) rs_init_modify(mtstate, rinfo, mtstate->operation, do_nothing, returning,
						  (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
}

/*
 * rsBeginForeignInsert
 *		Prepare COPY FROM into the table, or tuple routing to it as a
 *		partition.
 */
void
rsBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	bool		do_nothing = false;
	RsTableOptions topts;

	rs_get_table_options(RelationGetRelid(rinfo->ri_RelationDesc), &topts);
	rs_refuse_sharded_write(RelationGetRelationName(rinfo->ri_RelationDesc), &topts);
	if (mtstate && mtstate->ps.plan &&
		((ModifyTable *) mtstate->ps.plan)->onConflictAction == ONCONFLICT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ON CONFLICT DO UPDATE is not supported on redis_zset foreign table \"%s\"",
						RelationGetRelationName(rinfo->ri_RelationDesc))));
	if (mtstate && mtstate->ps.plan)
		do_nothing = ((ModifyTable *) mtstate->ps.plan)->onConflictAction == ONCONFLICT_NOTHING;
	(void) rs_init_modify(mtstate, rinfo, CMD_INSERT, do_nothing,
						  rinfo->ri_returningList != NIL, false);
}

/*
 * rs_get_row
 *		The key, member and score of the new row in "slot", checked, in
 *		temp_cxt.
 */
static void
rs_get_row(RsModifyState *st, TupleTableSlot *slot, RsWriteRow *row)
{
	Datum	   *values;
	bool	   *isnull;
	const char *relname = RelationGetRelationName(st->rel);

	slot_getallattrs(slot);
	values = slot->tts_values;
	isnull = slot->tts_isnull;

	if (st->topts.key != NULL)
	{
		row->key = st->topts.key;
		/* A key column of a table with a key option can only say that key. */
		if (st->attnums[RS_FIELD_KEY] != 0 && !isnull[st->attnums[RS_FIELD_KEY] - 1])
		{
			char	   *k = TextDatumGetCString(values[st->attnums[RS_FIELD_KEY] - 1]);

			if (strcmp(k, row->key) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_CHECK_VIOLATION),
						 errmsg("key \"%s\" of a row written to foreign table \"%s\" differs from the table's key \"%s\"",
								k, relname, row->key),
						 errhint("Write to a table without a \"key\" option to choose the key per row.")));
		}
	}
	else if (isnull[st->attnums[RS_FIELD_KEY] - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of foreign table \"%s\"",
						get_attname(RelationGetRelid(st->rel), st->attnums[RS_FIELD_KEY], false),
						relname),
				 errdetail("Every row written to Redis needs a key.")));
	else
		row->key = TextDatumGetCString(values[st->attnums[RS_FIELD_KEY] - 1]);
	if (row->key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Redis key of a row written to foreign table \"%s\" is empty", relname)));

	if (isnull[st->attnums[RS_FIELD_MEMBER] - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of foreign table \"%s\"",
						get_attname(RelationGetRelid(st->rel), st->attnums[RS_FIELD_MEMBER], false),
						relname),
				 errdetail("A sorted set member cannot be null.")));
	else
	{
		struct varlena *m = pg_detoast_datum_packed((struct varlena *)
													DatumGetPointer(values[st->attnums[RS_FIELD_MEMBER] - 1]));

		row->member = VARDATA_ANY(m);
		row->member_len = VARSIZE_ANY_EXHDR(m);
	}

	if (st->operation == CMD_INSERT && st->attnums[RS_FIELD_RANK] != 0 &&
		!isnull[st->attnums[RS_FIELD_RANK] - 1])
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-null value into column \"%s\" of foreign table \"%s\"",
						get_attname(RelationGetRelid(st->rel), st->attnums[RS_FIELD_RANK], false),
						relname),
				 errdetail("The rank of a member follows from its score.")));

	if (isnull[st->attnums[RS_FIELD_SCORE] - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null score for %s of Redis key \"%s\"",
						rs_member_label(row->member, row->member_len), row->key),
				 errdetail("A sorted set member needs a score.")));
	row->score = rs_score_text(st, values[st->attnums[RS_FIELD_SCORE] - 1], row);
}

/*
 * rs_get_old_row
 *		The key and member of the row an UPDATE or DELETE replaces, from the
 *		junk columns of the plan slot.
 */
static void
rs_get_old_row(RsModifyState *st, TupleTableSlot *planSlot, RsWriteRow *row)
{
	bool		isnull;
	Datum		d;
	struct varlena *m;

	d = ExecGetJunkAttribute(planSlot, st->junk_member, &isnull);
	if (isnull)
		elog(ERROR, "rs_member is null");
	m = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
	row->member = VARDATA_ANY(m);
	row->member_len = VARSIZE_ANY_EXHDR(m);
	row->score = NULL;
	if (st->topts.key != NULL)
		row->key = st->topts.key;
	else
	{
		d = ExecGetJunkAttribute(planSlot, st->junk_key, &isnull);
		if (isnull)
			elog(ERROR, "rs_key is null");
		row->key = TextDatumGetCString(d);
	}
}

/*
 * rs_score_text
 *		A score value as Redis score text: a number that strtod() reads back
 *		exactly, or "+inf"/"-inf".  NaN and non-numbers are rejected.
 */
static char *
rs_score_text(RsModifyState *st, Datum value, const RsWriteRow *row)
{
	char	   *text = OutputFunctionCall(&st->score_out, value);
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(text, &end);
	while (*end == ' ')
		end++;
	if (end == text || *end != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("score \"%s\" for %s of Redis key \"%s\" is not a number",
						text, rs_member_label(row->member, row->member_len), row->key)));
	if (errno == ERANGE && isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("score for %s of Redis key \"%s\" is out of range for a Redis score",
						rs_member_label(row->member, row->member_len), row->key),
				 errdetail("Redis scores are double precision numbers.")));
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("score for %s of Redis key \"%s\" is NaN",
						rs_member_label(row->member, row->member_len), row->key),
				 errdetail("Redis scores must be numbers or infinities.")));
	if (isinf(v))
		return pstrdup(v > 0 ? "+inf" : "-inf");
	return psprintf("%.17g", v);
}

/* Raise the unique violation of a member that already exists. */
static void
rs_member_exists_error(const char *key, const char *member, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("%s already exists in Redis key \"%s\"", rs_member_label(member, len), key),
			 errdetail("Redis applies each row when it is sent: the rows this statement sent before the error stay written."),
			 errhint("Use INSERT ... ON CONFLICT DO NOTHING to skip existing members, or UPDATE to change their scores.")));
}

/*
 * rs_set_returned
 *		Make "slot" the row as it now is in Redis, for RETURNING: the key
 *		and member of "row", the score (text, or NULL to keep the slot's),
 *		and the rank (-1: unknown, null).  The values live in the per-tuple
 *		memory of "estate", until RETURNING and triggers are done with them.
 */
static void
rs_set_returned(RsModifyState *st, EState *estate, TupleTableSlot *slot,
				const RsWriteRow *row, const char *score, int64 rank)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	TupleDesc	tupdesc = slot->tts_tupleDescriptor;
	int			natts = tupdesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *isnull = palloc(sizeof(bool) * natts);
	int			a;

	/* Copy what the slot has now: clearing it may free its memory. */
	slot_getallattrs(slot);
	for (a = 0; a < natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);

		isnull[a] = slot->tts_isnull[a];
		values[a] = isnull[a] ? (Datum) 0 :
			datumCopy(slot->tts_values[a], att->attbyval, att->attlen);
	}
	if (st->attnums[RS_FIELD_MEMBER])
	{
		a = st->attnums[RS_FIELD_MEMBER] - 1;
		if (st->atttypes[RS_FIELD_MEMBER] == BYTEAOID)
		{
			bytea	   *b = palloc(VARHDRSZ + row->member_len);

			SET_VARSIZE(b, VARHDRSZ + row->member_len);
			memcpy(VARDATA(b), row->member, row->member_len);
			values[a] = PointerGetDatum(b);
		}
		else
			values[a] = PointerGetDatum(cstring_to_text_with_len(row->member, row->member_len));
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_KEY])
	{
		a = st->attnums[RS_FIELD_KEY] - 1;
		values[a] = CStringGetTextDatum(row->key);
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_SCORE] && score != NULL)
	{
		a = st->attnums[RS_FIELD_SCORE] - 1;
		values[a] = InputFunctionCall(&st->score_in, (char *) score, st->score_ioparam,
									  TupleDescAttr(tupdesc, a)->atttypmod);
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_RANK])
	{
		a = st->attnums[RS_FIELD_RANK] - 1;
		isnull[a] = (rank < 0);
		values[a] = st->atttypes[RS_FIELD_RANK] == INT4OID ?
			Int32GetDatum((int32) Min(rank, PG_INT32_MAX)) : Int64GetDatum(rank);
	}

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, isnull, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_zadd_and_rank
 *		ZADD key <flag> score member, and ZRANK of the member, in one round
 *		trip.  Returns ZADD's count of added members; *rank is the member's
 *		rank afterwards, or -1 if it is not in the set.
 */
static int64
rs_zadd_and_rank(RsModifyState *st, const RsWriteRow *row, const char *flag, int64 *rank)
{
	int64		added;
	bool		isnull;

	rs_claim_connection(st->conn, st, NULL);
	zr_send_zadd(st->conn, row->key, flag, row->score, row->member, row->member_len);
	zr_send_rank(st->conn, row->key, row->member, row->member_len);
	added = zr_receive_integer(st->conn, "ZADD", row->key, NULL);
	*rank = zr_receive_integer(st->conn, "ZRANK", row->key, &isnull);
	/* One member was given: ZADD counts 0 or 1 added. */
	if (added < 0 || added > 1 || (!isnull && *rank < 0))
		zr_protocol_error(st->conn, added < 0 || added > 1 ? "ZADD" : "ZRANK", row->key);
	if (isnull)
		*rank = -1;
	rs_release_connection(st->conn, st);
	return added;
}

/*
 * rsExecForeignBatchInsert
 *		Insert a batch of rows with one pipeline of ZADD NX commands.  On
 *		return, the first *numSlots entries of the arrays are the rows that
 *		were inserted (under ON CONFLICT DO NOTHING, existing members are
 *		skipped).  Every reply is read before an error is raised, so the
 *		connection stays usable.
 */
TupleTableSlot **
rsExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot **slots,
						 TupleTableSlot **planSlots, int *numSlots)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	RsWriteRow *rows;
	int			n = *numSlots;
	int			ninserted = 0;
	int			conflict = -1;
	const char **keys;
	bool	   *added;
	int			i;

	MemoryContextReset(st->temp_cxt);
	oldcxt = MemoryContextSwitchTo(st->temp_cxt);

	/* Check every row before anything is sent. */
	rows = palloc(sizeof(RsWriteRow) * n);
	keys = palloc(sizeof(char *) * n);
	added = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		rs_get_row(st, slots[i], &rows[i]);
		keys[i] = rows[i].key;
	}

	rs_claim_connection(st->conn, st, NULL);
	for (i = 0; i < n; i++)
		zr_send_zadd(st->conn, rows[i].key, "NX", rows[i].score, rows[i].member,
					 rows[i].member_len);
	zr_receive_added(st->conn, n, keys, added);
	rs_release_connection(st->conn, st);

	for (i = 0; i < n; i++)
	{
		if (added[i])
		{
			/*
			 * Keep inserted rows first, swapping slot pairs.  COPY (which
			 * batches from PostgreSQL 16 on) passes no plan slots.
			 */
			TupleTableSlot *tmp = slots[ninserted];

			slots[ninserted] = slots[i];
			slots[i] = tmp;
			if (planSlots != NULL)
			{
				tmp = planSlots[ninserted];
				planSlots[ninserted] = planSlots[i];
				planSlots[i] = tmp;
			}
			ninserted++;
		}
		else if (conflict < 0)
			conflict = i;
	}
	if (conflict >= 0 && !st->do_nothing)
		rs_member_exists_error(rows[conflict].key, rows[conflict].member,
							   rows[conflict].member_len);

	MemoryContextSwitchTo(oldcxt);
	*numSlots = ninserted;
	return slots;
}

/*
 * rsExecForeignInsert
 *		Insert one row (ZADD NX).  Returns NULL if the member existed and the
 *		statement says ON CONFLICT DO NOTHING.  For RETURNING, the row comes
 *		back with its rank.
 */
TupleTableSlot *
rsExecForeignInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *planSlot)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	RsWriteRow	row;
	int64		rank;

	if (!st->returning || st->attnums[RS_FIELD_RANK] == 0)
	{
		TupleTableSlot *s = slot;
		TupleTableSlot *p = planSlot;
		int			one = 1;

		(void) rsExecForeignBatchInsert(estate, rinfo, &s, &p, &one);
		return one == 1 ? slot : NULL;
	}

	MemoryContextReset(st->temp_cxt);
	oldcxt = MemoryContextSwitchTo(st->temp_cxt);
	rs_get_row(st, slot, &row);
	if (rs_zadd_and_rank(st, &row, "NX", &rank) == 0)
	{
		if (!st->do_nothing)
			rs_member_exists_error(row.key, row.member, row.member_len);
		MemoryContextSwitchTo(oldcxt);
		return NULL;
	}
	rs_set_returned(st, estate, slot, &row, NULL, rank);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

/*
 * rsGetForeignModifyBatchSize
 *		The batch_size option, or 1 when rows must be handled one at a time
 *		(RETURNING, row triggers).
 */
int
rsGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	TriggerDesc *trig = rinfo->ri_TrigDesc;

	if (rinfo->ri_projectReturning != NULL || (st != NULL && st->returning) ||
		(trig && (trig->trig_insert_before_row || trig->trig_insert_after_row)))
		return 1;
	return rs_get_batch_size(RelationGetRelid(rinfo->ri_RelationDesc));
}

/*
 * rsExecForeignUpdate
 *		Change the score (ZADD XX), or rename the member or move it to
 *		another key (a Lua script, atomic).  Returns NULL if the member has
 *		disappeared since the scan read it.
 */
TupleTableSlot *
rsExecForeignUpdate(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *planSlot)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	RsWriteRow	old;
	RsWriteRow	row;
	int64		rank;

	MemoryContextReset(st->temp_cxt);
	oldcxt = MemoryContextSwitchTo(st->temp_cxt);
	rs_get_old_row(st, planSlot, &old);
	rs_get_row(st, slot, &row);

	if (strcmp(old.key, row.key) == 0 && old.member_len == row.member_len &&
		memcmp(old.member, row.member, row.member_len) == 0)
		(void) rs_zadd_and_rank(st, &row, "XX", &rank);
	else
	{
		int			status;

		rs_claim_connection(st->conn, st, NULL);
		zr_send_rename(st->conn, old.key, row.key, old.member, old.member_len,
					   row.member, row.member_len, row.score);
		status = zr_receive_rename(st->conn, row.key, &rank);
		rs_release_connection(st->conn, st);
		if (status < 0)
			rs_member_exists_error(row.key, row.member, row.member_len);
		if (status == 0)
			rank = -1;			/* the old member is gone */
	}
	MemoryContextSwitchTo(oldcxt);
	if (rank < 0)
		return NULL;
	if (st->returning)
		rs_set_returned(st, estate, slot, &row, NULL, rank);
	return slot;
}

/*
 * rsExecForeignDelete
 *		Remove the member (ZREM), or, for RETURNING, remove it and return its
 *		score and rank (a Lua script).  Returns NULL if it was already gone.
 */
TupleTableSlot *
rsExecForeignDelete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *planSlot)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	RsWriteRow	old;
	char	   *score;
	int64		rank;
	int64		removed;

	MemoryContextReset(st->temp_cxt);
	oldcxt = MemoryContextSwitchTo(st->temp_cxt);
	rs_get_old_row(st, planSlot, &old);
	rs_claim_connection(st->conn, st, NULL);

	if (!st->returning)
	{
		zr_send_rem(st->conn, old.key, old.member, old.member_len);
		removed = zr_receive_integer(st->conn, "ZREM", old.key, NULL);
		/* One member was given: ZREM counts 0 or 1 removed. */
		if (removed < 0 || removed > 1)
			zr_protocol_error(st->conn, "ZREM", old.key);
		rs_release_connection(st->conn, st);
		MemoryContextSwitchTo(oldcxt);
		return removed == 0 ? NULL : slot;
	}

	zr_send_delete(st->conn, old.key, old.member, old.member_len);
	if (!zr_receive_delete(st->conn, old.key, &score, &rank))
	{
		rs_release_connection(st->conn, st);
		MemoryContextSwitchTo(oldcxt);
		return NULL;
	}
	rs_release_connection(st->conn, st);

	ExecStoreAllNullTuple(slot);
	rs_set_returned(st, estate, slot, &old, score, rank);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

/*
 * rsEndForeignModify
 *		Nothing stays in flight between rows; just let go of the connection.
 */
void
rsEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;

	if (st != NULL && st->conn != NULL)
		rs_release_connection(st->conn, st);
}

/*
 * rsIsForeignRelUpdatable
 *		Every redis_zset table takes INSERT, UPDATE and DELETE.
 */
int
rsIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/*
 * rsExplainForeignModify
 *		With VERBOSE, show the Redis commands each row sends and the batch
 *		size.
 */
void
rsExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					   List *fdw_private, int subplan_index, ExplainState *es)
{
	RsModifyState *st = (RsModifyState *) rinfo->ri_FdwState;
	const char *key = st->topts.key ? st->topts.key : "<key>";
	char	   *cmds;

	if (!es->verbose)
		return;
	switch (mtstate->operation)
	{
		case CMD_INSERT:
			cmds = psprintf("ZADD %s NX <score> <member>%s", key,
							st->returning && st->attnums[RS_FIELD_RANK] ? "; ZRANK" : "");
			break;
		case CMD_UPDATE:
			cmds = psprintf("ZADD %s XX <score> <member>; ZRANK (EVAL of a rename script when the member or key changes)",
							key);
			break;
		case CMD_DELETE:
			cmds = st->returning ? psprintf("EVAL of ZSCORE, ZRANK, ZREM %s <member>", key) :
				psprintf("ZREM %s <member>", key);
			break;
		default:
			return;
	}
	ExplainPropertyText("Redis Commands", cmds, es);
	if (rinfo->ri_BatchSize > 0)
		ExplainPropertyInteger("Batch Size", NULL, rinfo->ri_BatchSize, es);
}

/*
 * rsExecForeignTruncate
 *		TRUNCATE deletes each table's key, or every shard's key of a sharded
 *		table (UNLINK, freed in the background).
 *		Tables with a key column have no single key to delete.
 */
void
rsExecForeignTruncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	RsConnection *conn = NULL;
	List	   *keys = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		RsTableOptions topts;

		rs_get_table_options(RelationGetRelid(rel), &topts);
		if (topts.key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot truncate foreign table \"%s\" because it has no \"key\" option",
							RelationGetRelationName(rel)),
					 errhint("Delete the rows of one key with DELETE ... WHERE key = ....")));
		for (int shard = 0; shard < topts.shards; shard++)
			keys = lappend(keys, rs_shard_key(&topts, shard));
		if (conn == NULL)
		{
			ForeignServer *server = GetForeignServer(GetForeignTable(RelationGetRelid(rel))->serverid);

			conn = rs_get_connection(server, GetUserMapping(GetUserId(), server->serverid));
		}
	}

	/* All tables belong to one server (the executor groups them so). */
	foreach(lc, keys)
	{
		rs_claim_connection(conn, &keys, NULL);
		zr_unlink(conn, lfirst(lc));
		rs_release_connection(conn, &keys);
	}
}
