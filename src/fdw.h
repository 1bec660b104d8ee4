/*-------------------------------------------------------------------------
 *
 * fdw.h
 *		  The redis_zset foreign data wrapper's callbacks and the state its
 *		  planner (fdw_plan.c), rank and score window (fdw_window.c), scan
 *		  (fdw_scan.c), merge of a sharded table's shards (fdw_shards.c),
 *		  writes (fdw_modify.c) and IMPORT FOREIGN SCHEMA
 *		  (fdw_import.c) share, such as the layout of fdw_private.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_FDW_H
#define RS_FDW_H

#include "access/parallel.h"
#include "commands/explain.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"

#include "compat.h"

/* ---------------------------------------------------------------------
 * in fdw_plan.c
 * ---------------------------------------------------------------------
 */

/* Fields of a redis_zset foreign table. */
typedef enum RsField
{
	RS_FIELD_MEMBER,
	RS_FIELD_SCORE,
	RS_FIELD_RANK,
	RS_FIELD_KEY,
	RS_NUM_FIELDS
} RsField;

/* Kinds of pushed-down condition; stored as integers in fdw_private. */
typedef enum RsCondKind
{
	RS_COND_RANK,
	RS_COND_SCORE,
	RS_COND_MEMBER,				/* member = x or member = ANY(x) */
	RS_COND_KEY					/* key = x or key = ANY(x) */
} RsCondKind;

typedef enum RsCondOp
{
	RS_OP_LT,
	RS_OP_LE,
	RS_OP_EQ,
	RS_OP_GE,
	RS_OP_GT,
	RS_OP_ANY					/* = ANY(array) */
} RsCondOp;

/* Order a scan delivers its rows in. */
typedef enum RsScanOrder
{
	RS_ORDER_NONE,
	RS_ORDER_ASC,				/* ascending rank */
	RS_ORDER_DESC				/* descending rank */
} RsScanOrder;

/* Indexes into the fdw_private list of a redis_zset ForeignScan. */
enum RsFdwPrivateIndex
{
	RS_PRIV_CONDKINDS,			/* integer List of RsCondKind, parallel to
								 * fdw_exprs */
	RS_PRIV_CONDOPS,			/* integer List of RsCondOp, parallel to
								 * fdw_exprs */
	RS_PRIV_ORDER,				/* Integer: RsScanOrder */
	RS_PRIV_LIMIT,				/* Integer: rows a LIMIT needs, or -1 */
	RS_PRIV_NEED_RANK,			/* Boolean */
	RS_PRIV_MATERIALIZE,		/* Boolean: read all before the first row */
	RS_PRIV_COUNT
};

extern void rs_field_attnums(Relation rel, AttrNumber *attnums, Oid *atttypes);
extern void rsGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
extern void rsGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
extern ForeignScan *rsGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid, ForeignPath *best_path,
										List *tlist, List *scan_clauses,
										Plan *outer_plan);
extern bool rs_is_numeric_type(Oid typid);

/* ---------------------------------------------------------------------
 * in fdw_window.c
 * ---------------------------------------------------------------------
 */

/* Score bounds of a scan, in doubles as Redis compares them. */
typedef struct RsScoreBounds
{
	bool		has_min;
	bool		has_max;
	double		min;
	double		max;
	bool		min_incl;
	bool		max_incl;
} RsScoreBounds;

/* The rank and score window that the pushed conditions leave. */
typedef struct RsWindow
{
	bool		empty;			/* the conditions match nothing */
	int64		rank_lo;
	int64		rank_hi;		/* -1: no upper bound */
	RsScoreBounds sb;
	bool		widened;		/* some score bound is widened, and rechecked */
	/* For EXPLAIN: bounds that depend on values known only at execution. */
	bool		rank_lo_unknown;
	bool		rank_hi_unknown;
	bool		score_min_unknown;
	bool		score_max_unknown;
} RsWindow;

extern bool rs_score_cond_exact(Oid coltype, Oid valtype);
extern void rs_window_init(RsWindow *w);
extern void rs_window_add(RsWindow *w, RsCondKind kind, RsCondOp op, Datum value,
						  bool isnull, Oid valtype, Oid coltype, int32 coltypmod);
extern void rs_window_add_unknown(RsWindow *w, RsCondKind kind, RsCondOp op,
								  Oid valtype, Oid coltype);
extern char *rs_score_arg(double v, bool incl);
extern bool rs_score_matches(const RsScoreBounds *sb, const char *score);

/* ---------------------------------------------------------------------
 * in fdw_scan.c
 * ---------------------------------------------------------------------
 */
extern void rsBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *rsIterateForeignScan(ForeignScanState *node);
extern void rsReScanForeignScan(ForeignScanState *node);
extern void rsEndForeignScan(ForeignScanState *node);
extern void rsExplainForeignScan(ForeignScanState *node, ExplainState *es);
extern bool rsIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel,
										RangeTblEntry *rte);
extern Size rsEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt);
extern void rsInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
									   void *coordinate);
extern void rsReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
										 void *coordinate);
extern void rsInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc,
										  void *coordinate);

/* ---------------------------------------------------------------------
 * in fdw_shards.c
 * ---------------------------------------------------------------------
 */
typedef struct RsShardMerge RsShardMerge;
struct RsConnection;
struct ZsetPage;

extern RsShardMerge *rs_merge_begin(struct RsConnection *conn, List *keys,
									const bool *wanted, const RsScoreBounds *sb,
									bool desc, int64 limit, int page_size);
extern bool rs_merge_next(RsShardMerge *m, const char **key, struct ZsetPage **page,
						  int *index, int64 *rank);
extern void rs_merge_end(RsShardMerge *m);
extern int64 rs_global_rank(struct RsConnection *conn, List *keys, const char *score,
							const char *member, int len);

/* ---------------------------------------------------------------------
 * in fdw_modify.c
 * ---------------------------------------------------------------------
 */
extern void rsAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
									  RangeTblEntry *target_rte, Relation target_relation);
extern List *rsPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
								 Index resultRelation, int subplan_index);
extern void rsBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								 List *fdw_private, int subplan_index, int eflags);
extern void rsBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo);
extern TupleTableSlot *rsExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot **rsExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
												 TupleTableSlot **slots,
												 TupleTableSlot **planSlots, int *numSlots);
extern int	rsGetForeignModifyBatchSize(ResultRelInfo *rinfo);
extern TupleTableSlot *rsExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot *rsExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern void rsEndForeignModify(EState *estate, ResultRelInfo *rinfo);
extern int	rsIsForeignRelUpdatable(Relation rel);
extern void rsExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								   List *fdw_private, int subplan_index,
								   ExplainState *es);
extern void rsExecForeignTruncate(List *rels, DropBehavior behavior, bool restart_seqs);

/* ---------------------------------------------------------------------
 * in fdw_import.c
 * ---------------------------------------------------------------------
 */
extern List *rsImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* RS_FDW_H */
