/*-------------------------------------------------------------------------
 *
 * fdw_plan.c
 *		  Planning of redis_zset foreign scans: which conditions, orderings
 *		  and limits Redis can serve, row estimates and costs.
 *
 * These conditions are pushed down (classified once, in
 * rsGetForeignRelSize):
 *	 - rank <op> value, with op one of < <= = >= > (a rank window);
 *	 - score <op> value, for numeric score columns (a score window, turned
 *	   into a rank window with ZCOUNT at execution);
 *	 - member = value and member = ANY(array) (ZMSCORE lookups), including
 *	   member = outer.column in parameterized nested loops;
 *	 - key = value and key = ANY(array) on tables with a key column.
 * Pushed conditions are removed from the local quals, except score
 * conditions that Redis cannot compare exactly (numeric, numeric(p,s) and
 * real columns; see fdw_window.c): their window is widened, and they stay
 * local to be rechecked.  Everything else is evaluated locally.  ORDER BY
 * score or rank (either direction) is served by reading ranks in order, and
 * a LIMIT bounds the rank window when the scan is the only relation and all
 * conditions are pushed (none is evaluated or rechecked locally).  On a
 * sharded table the same order comes from a merge of the shards, and the
 * LIMIT bounds each shard's window (see fdw_shards.c).
 *
 * A full scan of a table with a key option also gets a partial path: the
 * parallel workers share its rank window (see fdw_scan.c), or, on a sharded
 * table, claim whole shards (not when the global rank is needed, which only
 * a merge of all shards gives; see fdw_shards.c).  A scan that
 * feeds a write to the same key is read completely before the first row is
 * returned, so that the write cannot move rows into or out of pages the scan
 * has yet to read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "compat.h"
#include "fdw.h"
#include "options.h"
#include "redis_conn.h"
#include "zset.h"

/* Planner state kept in baserel->fdw_private. */
typedef struct RsRelInfo
{
	RsTableOptions topts;
	AttrNumber	attnums[RS_NUM_FIELDS]; /* 0 if the table lacks the field */
	Oid			atttypes[RS_NUM_FIELDS];
	List	   *pushed;			/* RsPushedCond of baserestrictinfo and of the
								 * join clauses of parameterized paths,
								 * classified once */
	List	   *local_conds;	/* RestrictInfos evaluated locally (with rechecks) */
	bool		has_member_cond;
	bool		has_multi_key;	/* key = ANY(...) */
	bool		need_rank;
	double		card;			/* estimated members per key */
} RsRelInfo;

/* A restriction that Redis evaluates, as rs_classify found it. */
typedef struct RsPushedCond
{
	RestrictInfo *ri;
	RsCondKind	kind;
	RsCondOp	op;
	Expr	   *value;
	bool		recheck;		/* a widened score window: also a local qual */
} RsPushedCond;

static const char *const rs_field_names[RS_NUM_FIELDS] = {"member", "score", "rank", "key"};

static bool rs_classify(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info,
						Expr *clause, RsCondKind *kind, RsCondOp *op, Expr **value);
static RsPushedCond *rs_classify_restriction(PlannerInfo *root, RelOptInfo *baserel,
											 RsRelInfo *info, RestrictInfo *ri);
static RsScanOrder rs_useful_order(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info);
static void rs_add_partial_path(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info);
static bool rs_feeds_own_write(PlannerInfo *root, RsRelInfo *info, Oid foreigntableid);
static bool rs_shares_key(const RsTableOptions *a, const RsTableOptions *b);
static bool rs_member_ec_matches(PlannerInfo *root, RelOptInfo *rel,
								 EquivalenceClass *ec, EquivalenceMember *em, void *arg);

/*
 * rs_is_numeric_type
 *		Types whose order agrees with Redis score order.
 */
bool
rs_is_numeric_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == FLOAT4OID || typid == FLOAT8OID || typid == NUMERICOID;
}

/*
 * rs_field_attnums
 *		Map the columns of a redis_zset foreign table to Redis fields, and
 *		check their types.  Columns are matched by name or column_name.
 */
void
rs_field_attnums(Relation rel, AttrNumber *attnums, Oid *atttypes)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < RS_NUM_FIELDS; i++)
	{
		attnums[i] = 0;
		atttypes[i] = InvalidOid;
	}

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *name;
		int			f;

		if (att->attisdropped)
			continue;
		name = rs_column_name(RelationGetRelid(rel), att->attnum);
		for (f = 0; f < RS_NUM_FIELDS; f++)
			if (strcmp(name, rs_field_names[f]) == 0)
				break;
		if (f == RS_NUM_FIELDS)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("column \"%s\" of foreign table \"%s\" does not match a Redis field",
							NameStr(att->attname), RelationGetRelationName(rel)),
					 errhint("Name the column member, score, rank or key, or set its column_name option.")));
		if (attnums[f] != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("foreign table \"%s\" maps more than one column to the Redis field \"%s\"",
							RelationGetRelationName(rel), rs_field_names[f])));
		if ((f == RS_FIELD_MEMBER &&
			 att->atttypid != TEXTOID && att->atttypid != VARCHAROID && att->atttypid != BYTEAOID) ||
			(f == RS_FIELD_RANK && att->atttypid != INT8OID && att->atttypid != INT4OID) ||
			(f == RS_FIELD_KEY && att->atttypid != TEXTOID && att->atttypid != VARCHAROID))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has invalid type %s for Redis field \"%s\"",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_be(att->atttypid), rs_field_names[f]),
					 errhint(f == RS_FIELD_MEMBER ? "A member column must be text, varchar or bytea." :
							 f == RS_FIELD_RANK ? "A rank column must be bigint or integer." :
							 "A key column must be text or varchar.")));
		attnums[f] = att->attnum;
		atttypes[f] = att->atttypid;
	}
}

/*
 * rsGetForeignRelSize
 *		Split the restrictions into pushed and local ones and estimate the
 *		number of rows.  For a table with a fixed key, the estimate comes from
 *		ZCARD.
 */
void
rsGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	RsRelInfo  *info = palloc0(sizeof(RsRelInfo));
	Relation	rel;
	ListCell   *lc;
	double		rows;
	double		nkeys = 1;
	double		nmembers = -1;
	int			nscore = 0;
	Bitmapset  *attrs_used = NULL;

	baserel->fdw_private = info;
	rs_get_table_options(foreigntableid, &info->topts);
	rel = table_open(foreigntableid, NoLock);
	rs_field_attnums(rel, info->attnums, info->atttypes);
	table_close(rel, NoLock);

	if (info->topts.key == NULL && info->attnums[RS_FIELD_KEY] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has neither a \"key\" option nor a key column",
						get_rel_name(foreigntableid)),
				 errhint("Set the table option \"key\", or add a column named \"key\".")));

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		RsPushedCond *pc = rs_classify_restriction(root, baserel, info, ri);
		RsCondKind	kind;
		RsCondOp	op;
		Expr	   *value;

		if (pc == NULL || pc->recheck)
			info->local_conds = lappend(info->local_conds, ri);
		if (pc == NULL)
			continue;
		info->pushed = lappend(info->pushed, pc);
		kind = pc->kind;
		op = pc->op;
		value = pc->value;
		if (kind == RS_COND_MEMBER)
		{
			info->has_member_cond = true;
			nmembers = (op == RS_OP_ANY) ? 10 : 1;
			if (op == RS_OP_ANY && IsA(value, Const) && !((Const *) value)->constisnull)
			{
				ArrayType  *arr = DatumGetArrayTypeP(((Const *) value)->constvalue);

				nmembers = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
			}
		}
		else if (kind == RS_COND_KEY && op == RS_OP_ANY)
		{
			info->has_multi_key = true;
			nkeys = 3;
		}
		else if (kind == RS_COND_RANK)
		{
			info->need_rank = true;
			if (op == RS_OP_EQ)
				nmembers = 1;
			else
				nscore++;
		}
		else if (kind == RS_COND_SCORE && !pc->recheck)
			nscore++;			/* a rechecked one counts in the local selectivity */
	}

	/* Columns needed from Redis: is the rank requested? */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs_used);
	foreach(lc, info->local_conds)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause, baserel->relid, &attrs_used);
	if (info->attnums[RS_FIELD_RANK] != 0 &&
		(bms_is_member(info->attnums[RS_FIELD_RANK] - FirstLowInvalidHeapAttributeNumber, attrs_used) ||
		 bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used)))
		info->need_rank = true;

	/*
	 * Estimate the set size: ZCARD for a fixed key (a sharded table's first
	 * shard, times the shards), else a default.
	 */
	info->card = 1000;
	if (info->topts.key != NULL)
	{
		ForeignTable *table = GetForeignTable(foreigntableid);
		ForeignServer *server = GetForeignServer(table->serverid);
		/* the role the executor reads as (a view's owner, say), as postgres_fdw does */
		Oid			userid = rs_rel_check_as_user(root, baserel);
		UserMapping *user = GetUserMapping(OidIsValid(userid) ? userid : GetUserId(),
										   server->serverid);
		RsConnection *conn = rs_get_connection(server, user);

		if (conn->pending == 0)
			info->card = (double) zr_card(conn, rs_shard_key(&info->topts, 0)) *
				info->topts.shards;
	}

	if (nmembers >= 0)
		rows = nmembers * nkeys;
	else
	{
		rows = info->card * nkeys;
		while (nscore-- > 0)
			rows *= 0.33;
	}
	rows *= clauselist_selectivity(root, extract_actual_clauses(info->local_conds, false),
								   baserel->relid, JOIN_INNER, NULL);
	baserel->rows = clamp_row_est(rows);
	baserel->tuples = info->card * nkeys;
}

/*
 * rs_field_of
 *		The Redis field of an expression that is a (possibly relabeled)
 *		Var of this relation, or -1.
 */
static int
rs_field_of(RelOptInfo *baserel, RsRelInfo *info, Expr *expr)
{
	Var		   *var;
	int			f;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return -1;
	var = (Var *) expr;
	if (var->varno != baserel->relid || var->varlevelsup != 0 || var->varattno <= 0)
		return -1;
	for (f = 0; f < RS_NUM_FIELDS; f++)
		if (info->attnums[f] == var->varattno)
			return f;
	return -1;
}

/*
 * rs_value_ok
 *		A comparison value can be pushed when it is computable before the
 *		scan: no Var of this relation and nothing volatile.
 */
static bool
rs_value_ok(PlannerInfo *root, RelOptInfo *baserel, Expr *value)
{
	return !bms_is_member(baserel->relid, pull_varnos(root, (Node *) value)) &&
		!contain_volatile_functions((Node *) value);
}

/*
 * rs_comparison_op
 *		Map a built-in comparison operator to an RsCondOp; false for others.
 */
static bool
rs_comparison_op(Oid opno, RsCondOp *op)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator form;
	bool		ok = true;

	if (!HeapTupleIsValid(tup))
		return false;
	form = (Form_pg_operator) GETSTRUCT(tup);
	if (form->oprnamespace != PG_CATALOG_NAMESPACE)
		ok = false;
	else if (strcmp(NameStr(form->oprname), "<") == 0)
		*op = RS_OP_LT;
	else if (strcmp(NameStr(form->oprname), "<=") == 0)
		*op = RS_OP_LE;
	else if (strcmp(NameStr(form->oprname), "=") == 0)
		*op = RS_OP_EQ;
	else if (strcmp(NameStr(form->oprname), ">=") == 0)
		*op = RS_OP_GE;
	else if (strcmp(NameStr(form->oprname), ">") == 0)
		*op = RS_OP_GT;
	else
		ok = false;
	ReleaseSysCache(tup);
	return ok;
}

/* Is opno the text or bytea equality operator, with a deterministic collation? */
static bool
rs_is_string_eq(Oid opno, Oid inputcollid)
{
	RegProcedure fn = get_opcode(opno);

	if (fn == F_BYTEAEQ)
		return true;
	return fn == F_TEXTEQ &&
		(!OidIsValid(inputcollid) || get_collation_isdeterministic(inputcollid));
}

/*
 * rs_classify
 *		Decide whether Redis can evaluate "clause" exactly; if so, return the
 *		condition's kind, operator and comparison value.
 */
static bool
rs_classify(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info, Expr *clause,
			RsCondKind *kind, RsCondOp *op, Expr **value)
{
	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *oe = (OpExpr *) clause;
		Expr	   *left = linitial(oe->args);
		Expr	   *right = lsecond(oe->args);
		int			field = rs_field_of(baserel, info, left);
		bool		commuted = false;

		if (field < 0)
		{
			field = rs_field_of(baserel, info, right);
			commuted = true;
			right = left;
		}
		if (field < 0 || !rs_value_ok(root, baserel, right) || !rs_comparison_op(oe->opno, op))
			return false;
		if (commuted)
			*op = (*op == RS_OP_LT) ? RS_OP_GT : (*op == RS_OP_LE) ? RS_OP_GE :
				(*op == RS_OP_GE) ? RS_OP_LE : (*op == RS_OP_GT) ? RS_OP_LT : *op;
		*value = right;

		switch (field)
		{
			case RS_FIELD_RANK:
				*kind = RS_COND_RANK;
				return rs_is_numeric_type(exprType((Node *) right));
			case RS_FIELD_SCORE:
				*kind = RS_COND_SCORE;
				return rs_is_numeric_type(info->atttypes[RS_FIELD_SCORE]) &&
					rs_is_numeric_type(exprType((Node *) right));
			case RS_FIELD_MEMBER:
			case RS_FIELD_KEY:
				*kind = (field == RS_FIELD_MEMBER) ? RS_COND_MEMBER : RS_COND_KEY;
				return *op == RS_OP_EQ && rs_is_string_eq(oe->opno, oe->inputcollid);
		}
		return false;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;
		int			field;

		if (!sa->useOr || list_length(sa->args) != 2)
			return false;
		field = rs_field_of(baserel, info, linitial(sa->args));
		if ((field != RS_FIELD_MEMBER && field != RS_FIELD_KEY) ||
			!rs_is_string_eq(sa->opno, sa->inputcollid) ||
			!rs_value_ok(root, baserel, lsecond(sa->args)))
			return false;
		*kind = (field == RS_FIELD_MEMBER) ? RS_COND_MEMBER : RS_COND_KEY;
		*op = RS_OP_ANY;
		*value = lsecond(sa->args);
		return true;
	}
	return false;
}

/*
 * rs_classify_restriction
 *		Classify a restriction once: NULL if it stays local, else how it is
 *		pushed.  A score condition that Redis cannot compare exactly (see
 *		rs_score_cond_exact) is pushed as a widened window and rechecked.
 */
static RsPushedCond *
rs_classify_restriction(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info,
						RestrictInfo *ri)
{
	RsPushedCond *pc = palloc0(sizeof(RsPushedCond));

	if (ri->pseudoconstant ||
		!rs_classify(root, baserel, info, ri->clause, &pc->kind, &pc->op, &pc->value))
	{
		pfree(pc);
		return NULL;
	}
	pc->ri = ri;
	pc->recheck = pc->kind == RS_COND_SCORE &&
		!rs_score_cond_exact(info->atttypes[RS_FIELD_SCORE], exprType((Node *) pc->value));
	return pc;
}

/*
 * rs_useful_order
 *		The rank order that satisfies the query's ORDER BY, if any: a single
 *		sort key on score (numeric types) or rank, in either direction.
 *		Member lookups and several keys have no useful order.
 */
static RsScanOrder
rs_useful_order(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info)
{
	PathKey    *pk;
	ListCell   *lc;

	if (list_length(root->query_pathkeys) != 1 || info->has_member_cond || info->has_multi_key)
		return RS_ORDER_NONE;
	pk = linitial(root->query_pathkeys);
	if (pk->pk_eclass->ec_has_volatile)
		return RS_ORDER_NONE;
	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *em = lfirst(lc);
		int			field = rs_field_of(baserel, info, em->em_expr);
		Oid			opclass;

		if (field != RS_FIELD_SCORE && field != RS_FIELD_RANK)
			continue;
		if (field == RS_FIELD_SCORE && !rs_is_numeric_type(info->atttypes[field]))
			continue;
		opclass = GetDefaultOpClass(info->atttypes[field], BTREE_AM_OID);
		if (!OidIsValid(opclass) || get_opclass_family(opclass) != pk->pk_opfamily)
			continue;
		return rs_pathkey_is_asc(pk) ? RS_ORDER_ASC : RS_ORDER_DESC;
	}
	return RS_ORDER_NONE;
}

static bool
rs_member_ec_matches(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					 EquivalenceMember *em, void *arg)
{
	return rs_field_of(rel, (RsRelInfo *) arg, em->em_expr) == RS_FIELD_MEMBER;
}

/* Cost of a scan returning "rows" rows in pages of page_size. */
static void
rs_cost(RsRelInfo *info, double rows, Cost *startup, Cost *total)
{
	double		pages = ceil(rows / info->topts.page_size) + 1;

	*startup = 10.0;
	*total = *startup + pages * 1.0 + rows * (cpu_tuple_cost * 2);
}

/*
 * rsGetForeignPaths
 *		An unordered path; an ordered one when the query's ORDER BY can be
 *		served by rank order; and parameterized paths for member = outer.x.
 */
void
rsGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	RsRelInfo  *info = (RsRelInfo *) baserel->fdw_private;
	RsScanOrder order;
	Cost		startup;
	Cost		total;
	List	   *clauses;
	ListCell   *lc;

	rs_cost(info, baserel->rows, &startup, &total);
	add_path(baserel, (Path *)
			 rs_create_foreignscan_path(root, baserel, NULL, baserel->rows, startup, total,
									 NIL, NULL, NULL,
									 list_make1(makeInteger(RS_ORDER_NONE))));

	order = rs_useful_order(root, baserel, info);
	if (order != RS_ORDER_NONE)
		add_path(baserel, (Path *)
				 rs_create_foreignscan_path(root, baserel, NULL, baserel->rows, startup, total,
										 root->query_pathkeys, NULL, NULL,
										 list_make1(makeInteger(order))));

	rs_add_partial_path(root, baserel, info);

	/* member = outer.column: one ZMSCORE per outer row. */
	if (info->attnums[RS_FIELD_MEMBER] == 0)
		return;
	clauses = generate_implied_equalities_for_column(root, baserel, rs_member_ec_matches,
													 info, baserel->lateral_referencers);
	foreach(lc, baserel->joininfo)
		clauses = lappend(clauses, lfirst(lc));
	foreach(lc, clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Relids		required_outer;
		RsPushedCond *pc;
		double		rows;

		if (!join_clause_is_movable_to(ri, baserel))
			continue;
		pc = rs_classify_restriction(root, baserel, info, ri);
		if (pc == NULL || pc->kind != RS_COND_MEMBER)
			continue;
		required_outer = bms_difference(ri->clause_relids, baserel->relids);
		if (bms_is_empty(required_outer))
			continue;
		/* rsGetForeignPlan finds it here if the path is chosen */
		info->pushed = lappend(info->pushed, pc);
		rows = (pc->op == RS_OP_ANY ? 10 : 1) * (info->has_multi_key ? 3 : 1);
		add_path(baserel, (Path *)
				 rs_create_foreignscan_path(root, baserel, NULL, rows, 10.0, 10.0 + rows * cpu_tuple_cost,
										 NIL, required_outer, NULL,
										 list_make1(makeInteger(RS_ORDER_NONE))));
	}
}

/*
 * rs_add_partial_path
 *		A parallel-aware full scan of a fixed key, its workers claiming pages
 *		of the rank window from a shared counter (on a sharded table, whole
 *		shards).  The worker count follows
 *		the set's size as compute_parallel_worker() sees a table of the same
 *		number of rows (about 32 bytes a member).
 */
static void
rs_add_partial_path(PlannerInfo *root, RelOptInfo *baserel, RsRelInfo *info)
{
	ForeignPath *path;
	double		pages;
	double		divisor;
	int			workers;
	Cost		startup;
	Cost		total;

	if (!baserel->consider_parallel || info->topts.key == NULL ||
		info->has_member_cond || info->has_multi_key ||
		(info->topts.shards > 1 && info->need_rank) ||
		max_parallel_workers_per_gather <= 0)
		return;
	pages = ceil(baserel->tuples * 32.0 / BLCKSZ);
	workers = compute_parallel_worker(baserel, pages, -1, max_parallel_workers_per_gather);
	if (workers <= 0)
		return;

	/* Rows per participant, counting the leader's share as the core does. */
	divisor = workers;
	if (parallel_leader_participation && 1.0 - 0.3 * workers > 0)
		divisor += 1.0 - 0.3 * workers;

	rs_cost(info, baserel->rows / divisor, &startup, &total);
	path = rs_create_foreignscan_path(root, baserel, NULL, baserel->rows / divisor,
								   startup, total, NIL, NULL, NULL,
								   list_make1(makeInteger(RS_ORDER_NONE)));
	path->path.parallel_aware = true;
	path->path.parallel_safe = true;
	path->path.parallel_workers = workers;
	add_partial_path(baserel, (Path *) path);
}

/*
 * rs_feeds_own_write
 *		True if the statement writes, at this query level or one around it
 *		(a subquery, or a writable CTE's own level), to this table or to a
 *		redis_zset table that may share its key.
 */
static bool
rs_feeds_own_write(PlannerInfo *root, RsRelInfo *info, Oid foreigntableid)
{
	PlannerInfo *r;

	for (r = root; r != NULL; r = r->parent_root)
	{
		RangeTblEntry *target;
		RsTableOptions topts;

		if (r->parse->resultRelation == 0 || r->parse->commandType == CMD_SELECT)
			continue;
		target = planner_rt_fetch(r->parse->resultRelation, r);
		if (target->relid == foreigntableid)
			return true;
		if (target->relkind != RELKIND_FOREIGN_TABLE ||
			!rs_is_redis_server(GetForeignServer(GetForeignTable(target->relid)->serverid)))
			continue;
		rs_get_table_options(target->relid, &topts);
		if (topts.key == NULL || info->topts.key == NULL ||
			rs_shares_key(&topts, &info->topts))
			return true;
	}
	return false;
}

/*
 * rs_shares_key
 *		Do two tables with a key option read a common key (a sharded table
 *		reads each of its shards' keys)?
 */
static bool
rs_shares_key(const RsTableOptions *a, const RsTableOptions *b)
{
	int			i;
	int			j;

	for (i = 0; i < a->shards; i++)
	{
		char	   *ka = rs_shard_key(a, i);

		for (j = 0; j < b->shards; j++)
			if (strcmp(ka, rs_shard_key(b, j)) == 0)
				return true;
	}
	return false;
}

/*
 * rsGetForeignPlan
 *		Put the pushed conditions' values in fdw_exprs (so that outer
 *		references become executor parameters) and describe them in
 *		fdw_private; keep the rest as local quals.
 */
ForeignScan *
rsGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				 ForeignPath *best_path, List *tlist, List *scan_clauses,
				 Plan *outer_plan)
{
	RsRelInfo  *info = (RsRelInfo *) baserel->fdw_private;
	RsScanOrder order = intVal(linitial(best_path->fdw_private));
	List	   *local = NIL;
	List	   *kinds = NIL;
	List	   *ops = NIL;
	List	   *values = NIL;
	bool		has_key_cond = false;
	int			limit = -1;
	ListCell   *lc;

	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		RsPushedCond *pc = NULL;
		ListCell   *pl;

		/*
		 * Restrictions were classified in rsGetForeignRelSize, and the join
		 * clauses of parameterized paths in rsGetForeignPaths; a join clause
		 * that the planner built anew for this path is classified here.
		 */
		foreach(pl, info->pushed)
			if (((RsPushedCond *) lfirst(pl))->ri == ri)
				pc = lfirst(pl);
		if (pc == NULL && !list_member_ptr(info->local_conds, ri))
			pc = rs_classify_restriction(root, baserel, info, ri);

		if (pc == NULL || pc->recheck)
			local = lappend(local, ri->clause);
		if (pc == NULL)
			continue;
		kinds = lappend_int(kinds, pc->kind);
		ops = lappend_int(ops, pc->op);
		values = lappend(values, pc->value);
		if (pc->kind == RS_COND_KEY)
			has_key_cond = true;
	}

	if (info->topts.key == NULL && !has_key_cond)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query on foreign table \"%s\" does not fix the Redis key",
						get_rel_name(foreigntableid)),
				 errhint("Add a condition key = ... or key = ANY(...), or set the table option \"key\".")));

	/*
	 * A LIMIT bounds the rank window when every condition is pushed, this
	 * scan is the query's only relation, and the scan's order is the one the
	 * query asks for (or the query asks for none).
	 */
	if (root->limit_tuples > 0 && root->limit_tuples < INT_MAX && local == NIL &&
		!info->has_member_cond && !info->has_multi_key &&
		root->parse->limitOption == LIMIT_OPTION_COUNT &&
		baserel->reloptkind == RELOPT_BASEREL && best_path->path.param_info == NULL &&
		bms_membership(root->all_baserels) == BMS_SINGLETON &&
		(root->query_pathkeys == NIL ||
		 (order != RS_ORDER_NONE && best_path->path.pathkeys == root->query_pathkeys)))
		limit = (int) root->limit_tuples;

	return make_foreignscan(tlist, local, baserel->relid, values,
							lappend(list_make5(kinds, ops, makeInteger(order), makeInteger(limit),
											   makeBoolean(info->need_rank)),
									makeBoolean(rs_feeds_own_write(root, info, foreigntableid))),
							NIL, NIL, outer_plan);
}
