/*-------------------------------------------------------------------------
 *
 * fdw_scan.c
 *		  Execution of redis_zset foreign scans: turning the pushed-down
 *		  conditions into Redis commands, paging, tuples and EXPLAIN.
 *
 * A scan reads one key after another.  For each key it either looks up the
 * requested members (ZMSCORE, and ZRANK when the rank is needed) or reads a
 * rank window page by page with ZRANGE ... WITHSCORES.  Score conditions are
 * turned into a rank window with ZCOUNT, so every page costs O(log n) in
 * Redis whatever its offset.
 *
 * Range reads are pipelined: while PostgreSQL consumes one page, up to
 * RS_SCAN_PAGES_AHEAD more are requested and sent at once, so that Redis
 * prepares them meanwhile.  Replies stay in the socket and in Redis until
 * the scan needs them, except when another scan or a write needs the
 * connection: then the scan reads every reply it still has in flight first
 * (rs_drain).  Either way the backend holds at most RS_SCAN_PAGES_AHEAD + 1
 * pages of at most page_size members each, in a ring of memory contexts,
 * one per page, each reset when its page is done.  A scan that stops early
 * (LIMIT, a cursor closed, a rescan) reads and drops the replies still in
 * flight, so that the connection stays usable; the number of pages it asks
 * for grows from one as pages are consumed, so that a scan stopped after
 * its first rows has asked for few pages it will not use.
 *
 * In a parallel scan, the participants share one rank window in the
 * parallel DSM: the first to arrive fixes the window, and each claims the
 * next page_size ranks under a spinlock.  A scan that feeds a write to its
 * own key reads every row into a tuplestore (spilling to disk beyond
 * work_mem) before returning the first, since the write would shift the
 * ranks of the pages not yet read.
 *
 * A sharded table (option shards > 1) reads its shards' keys as the scan
 * of several keys does, one after another (a parallel participant claims
 * whole shards from the counter in the DSM), and looks members up in every
 * shard at once.  When the scan is ordered or needs the rank, and has no
 * member condition, the shards are merged instead (fdw_shards.c), which
 * gives each row its global rank; a member lookup counts its global rank
 * in every shard (rs_global_rank).  See docs/sharding.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "storage/spin.h"

#include "compat.h"
#include "fdw.h"
#include "options.h"
#include "redis_conn.h"
#include "zset.h"
#include "redis_cluster.h"

/* The shared state of a parallel scan, in the parallel DSM. */
typedef struct RsParallelState
{
	slock_t		mutex;
	bool		window_set;		/* a participant has fixed the window */
	int64		next;			/* next rank (a sharded table: shard) to claim */
	int64		hi;				/* last rank of the window */
} RsParallelState;

/*
 * Pages a range read requests beyond the one being returned (the pipeline
 * depth).  The backend then holds at most RS_SCAN_PAGES_AHEAD + 1 pages,
 * each of at most page_size members.  It must not exceed RS_RANGES_TRACKED,
 * the ZRANGE windows a connection remembers to check their replies' sizes.
 */
#define RS_SCAN_PAGES_AHEAD		4
#define RS_SCAN_RING			(RS_SCAN_PAGES_AHEAD + 1)

StaticAssertDecl(RS_SCAN_PAGES_AHEAD <= RS_RANGES_TRACKED,
				 "the connection must track every ZRANGE window in flight");

/* A page of the ring: the current page, or one requested ahead. */
typedef struct RsPageSlot
{
	MemoryContext cxt;			/* holds the page; reset when it is done */
	ZsetPage	page;			/* valid once the reply is read */
	int64		start;			/* first rank requested */
} RsPageSlot;

typedef struct RsScanState
{
	RsConnection *conn;
	RsTableOptions topts;
	AttrNumber	attnums[RS_NUM_FIELDS];
	Oid			atttypes[RS_NUM_FIELDS];
	FmgrInfo	score_in;
	Oid			score_ioparam;
	int32		score_typmod;

	/* From the plan. */
	List	   *cond_kinds;
	List	   *cond_ops;
	List	   *cond_values;	/* ExprStates */
	List	   *cond_exprs;		/* the expressions, for EXPLAIN */
	RsScanOrder order;
	int64		limit;			/* -1: none */
	bool		need_rank;
	bool		materialize;	/* read everything before the first row */
	RsParallelState *pstate;	/* parallel scan, else NULL */

	/* For a materialized scan. */
	Tuplestorestate *store;
	TupleTableSlot *store_slot;

	/* Resolved from the conditions at (re)start. */
	bool		resolved;
	bool		empty;			/* the conditions match nothing */
	List	   *keys;			/* char * */
	bool		member_mode;
	int			nmembers;
	char	  **members;
	int		   *member_lens;
	RsWindow	win;			/* rank and score window */

	/*
	 * A sharded table read in a k-way merge (fdw_shards.c): all shard keys,
	 * and which of them the key conditions keep.
	 */
	bool		merge;
	List	   *all_keys;
	bool	   *wanted;
	RsShardMerge *merge_state;

	/* Progress. */
	ListCell   *key_cell;
	char	   *key;
	bool		key_started;
	int64		win_lo;			/* absolute rank window of the current key */
	int64		win_hi;
	int64		next_lo;		/* next page to request (ascending) */
	int64		next_hi;		/* next page to request (descending) */
	int			member_pos;		/* next member to look up */
	ZsetPage	page;			/* the current page (of ring[cur]) */
	const char **row_keys;		/* a sharded lookup's page: each row's key */
	int			pos;

	/*
	 * The page ring: ring[cur] holds the current page; the next "nahead"
	 * slots hold the pages requested after it, in order, of which the first
	 * "nready" have had their replies read (by rs_drain).  "pages_done"
	 * counts the pages of the key consumed, to grow the depth from one.
	 */
	RsPageSlot	ring[RS_SCAN_RING];
	int			cur;
	int			nahead;
	int			nready;
	int64		pages_done;

	MemoryContext resolve_cxt;	/* conditions and key set-up; reset per rescan */
	MemoryContext temp_cxt;
} RsScanState;

static List *rs_intersect(List *a, List *b);
static TupleTableSlot *rs_iterate_remote(ForeignScanState *node, RsScanState *st);
static TupleTableSlot *rs_iterate_stored(ForeignScanState *node, RsScanState *st);
static void rs_resolve_conditions(ForeignScanState *node, RsScanState *st);
static bool rs_start_key(RsScanState *st);
static bool rs_start_window(RsScanState *st);
static bool rs_next_page(RsScanState *st);
static void rs_fill_pipeline(RsScanState *st);
static bool rs_request_page(RsScanState *st, RsPageSlot *slot);
static void rs_receive_page(RsScanState *st, RsPageSlot *slot);
static void rs_drain(void *arg);
static void rs_drop_pages(RsScanState *st);
static void rs_lookup_members(RsScanState *st);
static void rs_lookup_sharded(RsScanState *st);
static void rs_next_key(RsScanState *st);
static bool rs_row_matches(RsScanState *st, const char *score, int64 rank);
static TupleTableSlot *rs_iterate_merge(ForeignScanState *node, RsScanState *st);
static bool rs_next_shard(RsScanState *st);
static bool rs_shared_window(RsScanState *st);
static void rs_store_tuple(RsScanState *st, TupleTableSlot *slot, const char *key,
						   ZsetPage *page, int i, int64 rank);

/*
 * rsBeginForeignScan
 *		Set up the scan state; no Redis traffic until the first row is asked
 *		for (and none at all under EXPLAIN without ANALYZE).
 */
void
rsBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	RsScanState *st = palloc0(sizeof(RsScanState));
	List	   *priv = fsplan->fdw_private;
	int			i;

	node->fdw_state = st;
	rs_get_table_options(RelationGetRelid(rel), &st->topts);
	rs_field_attnums(rel, st->attnums, st->atttypes);
	st->cond_kinds = list_nth(priv, RS_PRIV_CONDKINDS);
	st->cond_ops = list_nth(priv, RS_PRIV_CONDOPS);
	st->order = intVal(list_nth(priv, RS_PRIV_ORDER));
	st->limit = intVal(list_nth(priv, RS_PRIV_LIMIT));
	st->need_rank = boolVal(list_nth(priv, RS_PRIV_NEED_RANK));
	st->materialize = boolVal(list_nth(priv, RS_PRIV_MATERIALIZE));
	st->cond_exprs = fsplan->fdw_exprs;
	st->cond_values = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);

	if (st->attnums[RS_FIELD_SCORE] != 0)
	{
		Oid			infunc;

		getTypeInputInfo(st->atttypes[RS_FIELD_SCORE], &infunc, &st->score_ioparam);
		fmgr_info(infunc, &st->score_in);
		st->score_typmod = TupleDescAttr(RelationGetDescr(rel),
										 st->attnums[RS_FIELD_SCORE] - 1)->atttypmod;
	}

	st->resolve_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
											"redis_zset conditions", ALLOCSET_SMALL_SIZES);
	for (i = 0; i < RS_SCAN_RING; i++)
		st->ring[i].cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
												"redis_zset page", ALLOCSET_DEFAULT_SIZES);
	st->temp_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										 "redis_zset tuple data", ALLOCSET_SMALL_SIZES);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	{
		ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
		ForeignServer *server = GetForeignServer(table->serverid);
		Oid			userid = rs_scan_check_as_user(fsplan, node->ss.ps.state);

		if (!OidIsValid(userid))
			userid = GetUserId();

		st->conn = rs_get_connection(server, GetUserMapping(userid, server->serverid));
	}
}

/*
 * rsIterateForeignScan
 *		Return the next row, reading the next page or key as needed.
 */
TupleTableSlot *
rsIterateForeignScan(ForeignScanState *node)
{
	RsScanState *st = (RsScanState *) node->fdw_state;

	if (st->materialize)
		return rs_iterate_stored(node, st);
	return rs_iterate_remote(node, st);
}

/*
 * rs_iterate_stored
 *		For a scan that feeds a write to its own key: on the first call, read
 *		every row into a tuplestore; then return the stored rows.
 */
static TupleTableSlot *
rs_iterate_stored(ForeignScanState *node, RsScanState *st)
{
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (st->store == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(node->ss.ps.state->es_query_cxt);

		st->store = tuplestore_begin_heap(false, false, work_mem);
		if (st->store_slot == NULL)
			st->store_slot = MakeSingleTupleTableSlot(slot->tts_tupleDescriptor,
													  &TTSOpsMinimalTuple);
		MemoryContextSwitchTo(oldcxt);
		for (;;)
		{
			TupleTableSlot *row = rs_iterate_remote(node, st);

			if (TupIsNull(row))
				break;
			tuplestore_puttupleslot(st->store, row);
		}
	}
	ExecClearTuple(slot);

	/*
	 * A tuple read back from disk is allocated in the current context and
	 * freed by the next call: keep it out of the per-tuple context.
	 */
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(node->ss.ps.state->es_query_cxt);
		bool		found = tuplestore_gettupleslot(st->store, true, false, st->store_slot);

		MemoryContextSwitchTo(oldcxt);
		if (!found)
			return slot;
	}
	return ExecCopySlot(slot, st->store_slot);
}

/*
 * rs_iterate_remote
 *		The next row from Redis.
 */
static TupleTableSlot *
rs_iterate_remote(ForeignScanState *node, RsScanState *st)
{
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	MemoryContextReset(st->temp_cxt);

	if (!st->resolved)
		rs_resolve_conditions(node, st);
	if (st->empty)
		return slot;
	if (st->merge)
		return rs_iterate_merge(node, st);

	for (;;)
	{
		if (st->key == NULL)
		{
			if (st->key_cell == NULL)
				return slot;
			if (!rs_start_key(st))
			{
				st->key = NULL;
				rs_next_key(st);
				continue;
			}
		}
		while (st->pos < st->page.n)
		{
			int			i = st->order == RS_ORDER_DESC ? st->page.n - 1 - st->pos : st->pos;
			int64		rank = st->page.ranks ? st->page.ranks[i] :
				(st->page.first_rank >= 0 ? st->page.first_rank + i : -1);

			st->pos++;
			if (st->page.scores[i] == NULL || !rs_row_matches(st, st->page.scores[i], rank))
				continue;
			rs_store_tuple(st, slot, st->row_keys ? st->row_keys[i] : st->key,
						   &st->page, i, rank);
			return slot;
		}
		if (!rs_next_page(st))
		{
			st->key = NULL;
			rs_next_key(st);
		}
	}
}

/*
 * rs_next_key
 *		The current key is done: move to the next (a parallel participant
 *		of a sharded table claims one).  A sharded table's member lookups ask
 *		every shard at once, so they are done after the first "key".
 */
static void
rs_next_key(RsScanState *st)
{
	if (st->member_mode && st->topts.shards > 1)
		st->key_cell = NULL;
	else if (!rs_next_shard(st))
		st->key_cell = lnext(st->keys, st->key_cell);
}

/*
 * rs_shared_window
 *		Do the participants of a parallel scan share one rank window?  Those
 *		of a sharded table claim whole shards instead.
 */
static bool
rs_shared_window(RsScanState *st)
{
	return st->pstate != NULL && st->topts.shards <= 1;
}

/*
 * rs_next_shard
 *		In a parallel scan of a sharded table, claim the next shard that no
 *		participant has taken: point key_cell at it (NULL when none is left)
 *		and return true.  Returns false, leaving key_cell alone, in any other
 *		scan.
 */
static bool
rs_next_shard(RsScanState *st)
{
	int64		next;

	if (st->pstate == NULL || st->topts.shards <= 1)
		return false;
	SpinLockAcquire(&st->pstate->mutex);
	next = st->pstate->next++;
	SpinLockRelease(&st->pstate->mutex);
	st->key_cell = next < list_length(st->keys) ? list_nth_cell(st->keys, (int) next) : NULL;
	return true;
}

/*
 * rs_iterate_merge
 *		The next row of a sharded table read in a k-way merge, with its
 *		global rank; rank conditions apply here.
 */
static TupleTableSlot *
rs_iterate_merge(ForeignScanState *node, RsScanState *st)
{
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	const char *key;
	ZsetPage   *page;
	int			i;
	int64		rank;

	if (st->merge_state == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(st->resolve_cxt);
		/* a rank condition is on the global rank: no per-shard LIMIT clip */
		bool		ranked = st->win.rank_lo > 0 || st->win.rank_hi >= 0;

		st->merge_state = rs_merge_begin(st->conn, st->all_keys, st->wanted, &st->win.sb,
										 st->order == RS_ORDER_DESC,
										 ranked ? -1 : st->limit, st->topts.page_size);
		MemoryContextSwitchTo(oldcxt);
	}
	while (rs_merge_next(st->merge_state, &key, &page, &i, &rank))
	{
		/* past the rank window in the merge's direction: done */
		if (st->order == RS_ORDER_DESC ? rank < st->win.rank_lo :
			(st->win.rank_hi >= 0 && rank > st->win.rank_hi))
			break;
		if (rank < st->win.rank_lo || (st->win.rank_hi >= 0 && rank > st->win.rank_hi))
			continue;
		rs_store_tuple(st, slot, key, page, i, rank);
		return slot;
	}
	return slot;
}

/*
 * rs_intersect
 *		The varlena values of "a" that also appear in "b", byte for byte.
 */
static List *
rs_intersect(List *a, List *b)
{
	List	   *both = NIL;
	ListCell   *la;

	foreach(la, a)
	{
		ListCell   *lb;

		foreach(lb, b)
		{
			if (datumIsEqual(PointerGetDatum(lfirst(la)), PointerGetDatum(lfirst(lb)), false, -1))
			{
				both = lappend(both, lfirst(la));
				break;
			}
		}
	}
	return both;
}

/*
 * rs_resolve_conditions
 *		Evaluate the pushed conditions' values and reduce them to a list of
 *		keys, a member list or a rank window, and score bounds.
 */
static void
rs_resolve_conditions(ForeignScanState *node, RsScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext oldcxt;
	ListCell   *lk,
			   *lo,
			   *lv;
	List	   *members = NIL;	/* of text/bytea datums, intersected */
	bool		have_members = false;
	List	   *keys = NIL;
	bool		have_keys = false;

	MemoryContextReset(st->resolve_cxt);
	oldcxt = MemoryContextSwitchTo(st->resolve_cxt);

	st->empty = false;
	rs_window_init(&st->win);

	forthree(lk, st->cond_kinds, lo, st->cond_ops, lv, st->cond_values)
	{
		RsCondKind	kind = lfirst_int(lk);
		RsCondOp	op = lfirst_int(lo);
		bool		isnull;
		Datum		value = ExecEvalExpr((ExprState *) lfirst(lv), econtext, &isnull);

		if (isnull)
		{
			st->empty = true;
			continue;
		}
		if (kind == RS_COND_MEMBER || kind == RS_COND_KEY)
		{
			List	   *vals = NIL;

			if (op == RS_OP_ANY)
			{
				ArrayType  *arr = DatumGetArrayTypeP(value);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				int			i;

				deconstruct_array(arr, ARR_ELEMTYPE(arr), -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (i = 0; i < n; i++)
					if (!nulls[i])
						vals = lappend(vals, DatumGetTextPCopy(elems[i]));
			}
			else
				vals = list_make1(DatumGetTextPCopy(value));

			if (kind == RS_COND_MEMBER)
			{
				members = have_members ? rs_intersect(members, vals) : vals;
				have_members = true;
			}
			else
			{
				keys = have_keys ? rs_intersect(keys, vals) : vals;
				have_keys = true;
			}
		}
		else
			rs_window_add(&st->win, kind, op, value, false,
						  exprType((Node *) ((ExprState *) lfirst(lv))->expr),
						  st->atttypes[RS_FIELD_SCORE], st->score_typmod);
	}
	if (st->win.empty)
		st->empty = true;

	/*
	 * Keys: the table's own key (or each shard's), narrowed by any key
	 * conditions.
	 */
	st->keys = NIL;
	st->all_keys = NIL;
	if (st->topts.key != NULL)
	{
		int			shard;

		st->wanted = palloc(sizeof(bool) * st->topts.shards);
		for (shard = 0; shard < st->topts.shards; shard++)
		{
			char	   *k = rs_shard_key(&st->topts, shard);
			bool		keep = !have_keys;
			ListCell   *a;

			foreach(a, keys)
				if (strcmp(text_to_cstring(lfirst(a)), k) == 0)
					keep = true;
			st->wanted[shard] = keep;
			st->all_keys = lappend(st->all_keys, k);
			if (keep)
				st->keys = lappend(st->keys, k);
		}
	}
	else
	{
		ListCell   *a;

		foreach(a, keys)
		{
			char	   *k = text_to_cstring(lfirst(a));
			ListCell   *b;
			bool		dup = false;

			foreach(b, st->keys)
				if (strcmp(lfirst(b), k) == 0)
					dup = true;
			if (!dup)
				st->keys = lappend(st->keys, k);
		}
	}
	if (st->keys == NIL)
		st->empty = true;

	/*
	 * A sharded table is merged when the scan is ordered or needs the global
	 * rank, unless it looks members up (which is never ordered; their global
	 * rank is counted, see rs_global_rank).
	 */
	st->merge = st->topts.shards > 1 && !have_members &&
		(st->order != RS_ORDER_NONE || st->need_rank);

	/* Members to look up, without duplicates. */
	st->member_mode = have_members;
	if (have_members)
	{
		ListCell   *a;
		int			n = 0;

		st->members = palloc(sizeof(char *) * (list_length(members) + 1));
		st->member_lens = palloc(sizeof(int) * (list_length(members) + 1));
		foreach(a, members)
		{
			text	   *t = lfirst(a);
			int			i;
			bool		dup = false;

			for (i = 0; i < n; i++)
				if (st->member_lens[i] == VARSIZE_ANY_EXHDR(t) &&
					memcmp(st->members[i], VARDATA_ANY(t), st->member_lens[i]) == 0)
					dup = true;
			if (dup)
				continue;
			st->members[n] = VARDATA_ANY(t);
			st->member_lens[n] = VARSIZE_ANY_EXHDR(t);
			n++;
		}
		st->nmembers = n;
		if (n == 0)
			st->empty = true;
	}

	st->key_cell = list_head(st->keys);
	(void) rs_next_shard(st);	/* a parallel participant claims its first shard */
	st->key = NULL;
	st->merge_state = NULL;
	st->resolved = true;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_start_key
 *		Begin reading st->key_cell's key: look up the first members, or
 *		start the rank window and receive its first page.  Returns false if
 *		the key has nothing to read.
 */
static bool
rs_start_key(RsScanState *st)
{
	MemoryContext oldcxt;
	bool		found;

	st->key = lfirst(st->key_cell);
	st->pos = 0;
	st->page.n = 0;
	st->pages_done = 0;
	Assert(st->nahead == 0);
	rs_claim_connection(st->conn, st, rs_drain);

	if (st->member_mode)
	{
		st->member_pos = 0;
		return rs_next_page(st);
	}

	oldcxt = MemoryContextSwitchTo(st->resolve_cxt);
	found = rs_start_window(st);
	MemoryContextSwitchTo(oldcxt);
	return found && rs_next_page(st);
}

/*
 * rs_start_window
 *		Compute the current key's rank window (ZCARD, plus ZCOUNT for score
 *		bounds, and the LIMIT) and request its first page.  Returns false if
 *		the window is empty.
 */
static bool
rs_start_window(RsScanState *st)
{
	const char *argv[4];
	int64		card;
	int64		lo;
	int64		hi;

	argv[0] = "ZCARD";
	argv[1] = st->key;
	zr_send_simple(st->conn, 2, argv);
	if (st->win.sb.has_min)
	{
		argv[0] = "ZCOUNT";
		argv[2] = "-inf";
		argv[3] = rs_score_arg(st->win.sb.min, !st->win.sb.min_incl);
		zr_send_simple(st->conn, 4, argv);
	}
	if (st->win.sb.has_max)
	{
		argv[0] = "ZCOUNT";
		argv[2] = "-inf";
		argv[3] = rs_score_arg(st->win.sb.max, st->win.sb.max_incl);
		zr_send_simple(st->conn, 4, argv);
	}
	card = zr_receive_integer(st->conn, "ZCARD", st->key, NULL);
	lo = st->win.rank_lo;
	hi = card - 1;
	if (st->win.rank_hi >= 0 && st->win.rank_hi < hi)
		hi = st->win.rank_hi;
	if (st->win.sb.has_min)
	{
		int64		below = zr_receive_integer(st->conn, "ZCOUNT", st->key, NULL);

		lo = Max(lo, below);
	}
	if (st->win.sb.has_max)
	{
		int64		upto = zr_receive_integer(st->conn, "ZCOUNT", st->key, NULL);

		hi = Min(hi, upto - 1);
	}
	if (st->limit > 0)
	{
		if (st->order == RS_ORDER_DESC)
			lo = Max(lo, hi - st->limit + 1);
		else
			hi = Min(hi, lo + st->limit - 1);
	}
	if (rs_shared_window(st))
	{
		/* The first participant's window is everyone's. */
		SpinLockAcquire(&st->pstate->mutex);
		if (!st->pstate->window_set)
		{
			st->pstate->next = lo;
			st->pstate->hi = hi;
			st->pstate->window_set = true;
		}
		lo = st->pstate->next;
		hi = st->pstate->hi;
		SpinLockRelease(&st->pstate->mutex);
	}
	if (lo > hi)
		return false;

	st->win_lo = lo;
	st->win_hi = hi;
	st->next_lo = lo;
	st->next_hi = hi;
	rs_fill_pipeline(st);
	return st->nahead > 0;
}

/*
 * rs_fill_pipeline
 *		Request pages of the window until RS_SCAN_PAGES_AHEAD are requested
 *		beyond the current one (fewer while the key's first pages are
 *		consumed) or the window is exhausted, and send the requests at once
 *		so that Redis works on them while the current page is returned.
 */
static void
rs_fill_pipeline(RsScanState *st)
{
	int			depth = (int) Min(RS_SCAN_PAGES_AHEAD, st->pages_done + 1);
	bool		sent = false;

	while (st->nahead < depth)
	{
		RsPageSlot *slot = &st->ring[(st->cur + 1 + st->nahead) % RS_SCAN_RING];

		if (!rs_request_page(st, slot))
			break;
		st->nahead++;
		sent = true;
	}
	if (sent)
		rs_flush(st->conn);
}

/*
 * rs_request_page
 *		Queue the ZRANGE of the next page of the window for "slot".  Returns
 *		false if no rank of the window remains.
 */
static bool
rs_request_page(RsScanState *st, RsPageSlot *slot)
{
	int64		start;
	int64		stop;

	if (rs_shared_window(st))
	{
		/* Claim the next page_size ranks of the shared window. */
		SpinLockAcquire(&st->pstate->mutex);
		st->next_lo = st->pstate->next;
		st->next_hi = Min(st->pstate->hi, st->next_lo + st->topts.page_size - 1);
		st->pstate->next = st->next_hi + 1;
		SpinLockRelease(&st->pstate->mutex);
	}
	if (st->next_lo > st->next_hi)
		return false;
	/* Another scan may have used the connection since our last request. */
	rs_claim_connection(st->conn, st, rs_drain);
	if (st->order == RS_ORDER_DESC)
	{
		stop = st->next_hi;
		start = Max(st->next_lo, stop - st->topts.page_size + 1);
		st->next_hi = start - 1;
	}
	else
	{
		start = st->next_lo;
		stop = Min(st->next_hi, start + st->topts.page_size - 1);
		st->next_lo = stop + 1;
	}
	zr_send_range(st->conn, st->key, start, stop);
	slot->start = start;
	return true;
}

/*
 * rs_receive_page
 *		Read the reply of the page requested for "slot" (the oldest reply in
 *		flight) into the slot's context.
 */
static void
rs_receive_page(RsScanState *st, RsPageSlot *slot)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(slot->cxt);

	zr_receive_range(st->conn, st->key, slot->start, &slot->page);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_drain
 *		Another scan or a write needs the connection: read every page we
 *		still have in flight, in order, into its slot.
 */
static void
rs_drain(void *arg)
{
	RsScanState *st = (RsScanState *) arg;

	while (st->nready < st->nahead)
	{
		rs_receive_page(st, &st->ring[(st->cur + 1 + st->nready) % RS_SCAN_RING]);
		st->nready++;
	}
}

/*
 * rs_drop_pages
 *		Stop reading the key: read and drop the replies still in flight
 *		(unless the connection was lost meanwhile), let go of the connection
 *		and free every page.
 */
static void
rs_drop_pages(RsScanState *st)
{
	int			i;

	if (st->nready < st->nahead && (st->conn->ctx != NULL || st->conn->cluster != NULL))
	{
		rs_claim_connection(st->conn, st, rs_drain);
		rs_drain(st);
	}
	rs_release_connection(st->conn, st);
	st->nahead = 0;
	st->nready = 0;
	st->page.n = 0;
	st->row_keys = NULL;
	st->pos = 0;
	for (i = 0; i < RS_SCAN_RING; i++)
		MemoryContextReset(st->ring[i].cxt);
}

/*
 * rs_next_page
 *		Make the next page current and request more.  Returns false when
 *		the key is exhausted.
 */
static bool
rs_next_page(RsScanState *st)
{
	if (st->member_mode)
	{
		if (st->member_pos >= st->nmembers)
			return false;
		MemoryContextReset(st->ring[st->cur].cxt);
		st->row_keys = NULL;
		rs_claim_connection(st->conn, st, rs_drain);
		if (st->topts.shards > 1)
			rs_lookup_sharded(st);
		else
			rs_lookup_members(st);
		return true;
	}

	/* The current page is done: its memory is freed, its slot reused. */
	MemoryContextReset(st->ring[st->cur].cxt);
	st->row_keys = NULL;
	st->page.n = 0;
	st->pos = 0;
	if (st->nahead == 0)
	{
		rs_release_connection(st->conn, st);
		return false;
	}

	/* The oldest page requested becomes current, once its reply is read. */
	if (st->nready == 0)
	{
		rs_claim_connection(st->conn, st, rs_drain);
		rs_receive_page(st, &st->ring[(st->cur + 1) % RS_SCAN_RING]);
		st->nready = 1;
	}
	st->cur = (st->cur + 1) % RS_SCAN_RING;
	st->nahead--;
	st->nready--;
	st->pages_done++;
	st->page = st->ring[st->cur].page;

	/* Request more while this page is returned. */
	rs_fill_pipeline(st);
	if (st->nahead == 0)
		rs_release_connection(st->conn, st);
	return true;
}

/*
 * rs_lookup_members
 *		Look up the next page_size members with ZMSCORE (and ZRANK).
 */
static void
rs_lookup_members(RsScanState *st)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->ring[st->cur].cxt);
	int			n = Min(st->nmembers - st->member_pos, st->topts.page_size);
	char	  **members = st->members + st->member_pos;
	int		   *lens = st->member_lens + st->member_pos;
	int			i;

	zr_send_mscore(st->conn, st->key, n, members, lens);
	if (st->need_rank)
		for (i = 0; i < n; i++)
			zr_send_rank(st->conn, st->key, members[i], lens[i]);

	st->page.n = n;
	st->page.first_rank = -1;
	st->page.members = members;
	st->page.member_lens = lens;
	st->page.scores = zr_receive_mscore(st->conn, st->key, n);
	st->page.ranks = NULL;
	if (st->need_rank)
	{
		st->page.ranks = palloc(sizeof(int64) * n);
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			st->page.ranks[i] = zr_receive_integer(st->conn, "ZRANK", st->key, &isnull);
			if (isnull)
				st->page.scores[i] = NULL;	/* removed in between */
		}
	}
	st->member_pos += n;
	st->pos = 0;
	rs_release_connection(st->conn, st);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_lookup_sharded
 *		Look up the next page_size members in every shard of a sharded table
 *		(the shards the key conditions keep): one ZMSCORE per shard, all in
 *		one pipeline.  The page holds the members found, each with its key,
 *		and, when the rank is needed, its global rank (rs_global_rank).
 */
static void
rs_lookup_sharded(RsScanState *st)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->ring[st->cur].cxt);
	int			n = Min(st->nmembers - st->member_pos, st->topts.page_size);
	char	  **members = st->members + st->member_pos;
	int		   *lens = st->member_lens + st->member_pos;
	int			nkeys = list_length(st->keys);
	char	 ***scores = palloc(sizeof(char **) * nkeys);
	int			found = 0;
	ListCell   *lc;
	int			k;
	int			i;

	foreach(lc, st->keys)
		zr_send_mscore(st->conn, lfirst(lc), n, members, lens);
	k = 0;
	foreach(lc, st->keys)
	{
		scores[k] = zr_receive_mscore(st->conn, lfirst(lc), n);
		for (i = 0; i < n; i++)
			if (scores[k][i] != NULL)
				found++;
		k++;
	}
	rs_release_connection(st->conn, st);

	st->page.n = found;
	st->page.first_rank = -1;
	st->page.members = palloc(sizeof(char *) * Max(found, 1));
	st->page.member_lens = palloc(sizeof(int) * Max(found, 1));
	st->page.scores = palloc(sizeof(char *) * Max(found, 1));
	st->page.ranks = st->need_rank ? palloc(sizeof(int64) * Max(found, 1)) : NULL;
	st->row_keys = palloc(sizeof(char *) * Max(found, 1));
	found = 0;
	k = 0;
	foreach(lc, st->keys)
	{
		for (i = 0; i < n; i++)
		{
			if (scores[k][i] == NULL)
				continue;
			st->page.members[found] = members[i];
			st->page.member_lens[found] = lens[i];
			st->page.scores[found] = scores[k][i];
			st->row_keys[found] = lfirst(lc);
			if (st->need_rank)
				st->page.ranks[found] = rs_global_rank(st->conn, st->all_keys, scores[k][i],
													   members[i], lens[i]);
			found++;
		}
		k++;
	}
	st->member_pos += n;
	st->pos = 0;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_row_matches
 *		Rank windows and score windows are exact for range reads; member
 *		lookups check them here.
 */
static bool
rs_row_matches(RsScanState *st, const char *score, int64 rank)
{
	if (!st->member_mode)
		return true;
	if (rank >= 0 && (rank < st->win.rank_lo || (st->win.rank_hi >= 0 && rank > st->win.rank_hi)))
		return false;
	return rs_score_matches(&st->win.sb, score);
}

/*
 * rs_store_tuple
 *		Fill the slot with entry i of "page", read from "key", with the
 *		given rank (-1: unknown).
 */
static void
rs_store_tuple(RsScanState *st, TupleTableSlot *slot, const char *key, ZsetPage *page,
			   int i, int64 rank)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->temp_cxt);
	ErrorContextCallback errcb;
	RsMemberContext conv;
	const char *member = page->members[i];
	int			len = page->member_lens[i];
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;
	int			natts = slot->tts_tupleDescriptor->natts;
	int			a;

	for (a = 0; a < natts; a++)
		isnull[a] = true;

	conv.key = key;
	conv.member = member;
	conv.len = len;
	/* a sharded table's rank is global, not the member's rank in "key" */
	conv.rank = st->topts.shards > 1 ? -1 : rank;
	conv.clip = false;
	errcb.callback = rs_member_error_callback;
	errcb.arg = &conv;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	if (st->attnums[RS_FIELD_MEMBER])
	{
		a = st->attnums[RS_FIELD_MEMBER] - 1;
		if (st->atttypes[RS_FIELD_MEMBER] == BYTEAOID)
		{
			bytea	   *b = palloc(VARHDRSZ + len);

			SET_VARSIZE(b, VARHDRSZ + len);
			memcpy(VARDATA(b), member, len);
			values[a] = PointerGetDatum(b);
		}
		else
		{
			rs_verify_member(key, member, len, conv.rank);
			values[a] = PointerGetDatum(cstring_to_text_with_len(member, len));
		}
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_SCORE])
	{
		a = st->attnums[RS_FIELD_SCORE] - 1;
		values[a] = InputFunctionCall(&st->score_in, page->scores[i],
									  st->score_ioparam, st->score_typmod);
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_RANK] && rank >= 0)
	{
		a = st->attnums[RS_FIELD_RANK] - 1;
		if (st->atttypes[RS_FIELD_RANK] == INT4OID)
		{
			if (rank > PG_INT32_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("rank " INT64_FORMAT " is out of range for type integer", rank),
						 errhint("Declare the rank column as bigint.")));
			values[a] = Int32GetDatum((int32) rank);
		}
		else
			values[a] = Int64GetDatum(rank);
		isnull[a] = false;
	}
	if (st->attnums[RS_FIELD_KEY])
	{
		a = st->attnums[RS_FIELD_KEY] - 1;
		values[a] = CStringGetTextDatum(key);
		isnull[a] = false;
	}

	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(oldcxt);
	ExecStoreVirtualTuple(slot);
}

/*
 * rsReScanForeignScan
 *		Start over; parameters may have changed, so conditions are
 *		re-evaluated.  Pages still in flight are read and dropped.
 */
void
rsReScanForeignScan(ForeignScanState *node)
{
	RsScanState *st = (RsScanState *) node->fdw_state;

	rs_drop_pages(st);
	if (st->merge_state != NULL)
		rs_merge_end(st->merge_state);
	st->merge_state = NULL;
	st->resolved = false;
	st->key = NULL;
	if (st->store != NULL)
	{
		tuplestore_end(st->store);
		st->store = NULL;
	}
}

/*
 * rsEndForeignScan
 *		Read the pages still in flight (so the connection can be reused) and
 *		let go of the connection.
 */
void
rsEndForeignScan(ForeignScanState *node)
{
	RsScanState *st = (RsScanState *) node->fdw_state;

	if (st == NULL || st->conn == NULL)
		return;
	if (st->store != NULL)
		tuplestore_end(st->store);
	if (st->store_slot != NULL)
		ExecDropSingleTupleTableSlot(st->store_slot);
	if (st->merge_state != NULL)
		rs_merge_end(st->merge_state);
	st->merge_state = NULL;
	rs_drop_pages(st);
}

/*
 * rs_explain_value
 *		The text of a pushed value for EXPLAIN: the constant, or "$n" for a
 *		parameter.
 */
static char *
rs_explain_value(Expr *expr)
{
	if (IsA(expr, Const) && !((Const *) expr)->constisnull)
	{
		Const	   *c = (Const *) expr;
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(c->consttype, &outfunc, &isvarlena);
		return OidOutputFunctionCall(outfunc, c->constvalue);
	}
	if (IsA(expr, Param))
		return psprintf("$%d", ((Param *) expr)->paramid);
	return pstrdup("?");
}

/*
 * rs_explain_window
 *		The window of the pushed rank and score conditions, as the scan
 *		computes it: constants are applied, other values mark their bound
 *		as known only at execution.
 */
static void
rs_explain_window(RsScanState *st, RsWindow *w)
{
	ListCell   *lk,
			   *lo,
			   *le;

	rs_window_init(w);
	forthree(lk, st->cond_kinds, lo, st->cond_ops, le, st->cond_exprs)
	{
		RsCondKind	kind = lfirst_int(lk);
		RsCondOp	op = lfirst_int(lo);
		Expr	   *expr = lfirst(le);

		if (kind != RS_COND_RANK && kind != RS_COND_SCORE)
			continue;
		if (IsA(expr, Const))
			rs_window_add(w, kind, op, ((Const *) expr)->constvalue,
						  ((Const *) expr)->constisnull, exprType((Node *) expr),
						  st->atttypes[RS_FIELD_SCORE], st->score_typmod);
		else
			rs_window_add_unknown(w, kind, op, exprType((Node *) expr),
								  st->atttypes[RS_FIELD_SCORE]);
	}
}

/*
 * rsExplainForeignScan
 *		Show the Redis key and, with VERBOSE, the commands the scan sends,
 *		and whether its score bounds are exact or widened and rechecked.
 */
void
rsExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	RsScanState *st = (RsScanState *) node->fdw_state;
	StringInfoData cmds;
	const char *key = st->topts.key ? st->topts.key : "<key>";
	ListCell   *lk,
			   *lo,
			   *le;
	List	   *member_vals = NIL;
	bool		has_score = false;
	bool		sharded = st->topts.shards > 1;
	bool		merge;
	bool		ranked = false;
	RsWindow	w;

	if (!es->verbose)
		return;

	initStringInfo(&cmds);
	forthree(lk, st->cond_kinds, lo, st->cond_ops, le, st->cond_exprs)
	{
		RsCondKind	kind = lfirst_int(lk);
		RsCondOp	op = lfirst_int(lo);

		if (kind == RS_COND_KEY && st->topts.key == NULL)
		{
			char	   *txt = rs_explain_value(lfirst(le));

			key = (op == RS_OP_ANY) ? psprintf("<each of %s>", txt) : txt;
		}
		else if (kind == RS_COND_MEMBER)
			member_vals = lappend(member_vals, rs_explain_value(lfirst(le)));
		else if (kind == RS_COND_SCORE)
			has_score = true;
	}
	rs_explain_window(st, &w);
	merge = sharded && member_vals == NIL && (st->order != RS_ORDER_NONE || st->need_rank);
	if (merge)
	{
		/* The rank window is on the global rank: the merge applies it. */
		ranked = w.rank_lo > 0 || w.rank_hi >= 0 || w.rank_lo_unknown || w.rank_hi_unknown;
		w.rank_lo = 0;
		w.rank_hi = -1;
		w.rank_lo_unknown = w.rank_hi_unknown = false;
	}

	if (w.empty)
		appendStringInfoString(&cmds, "none (the conditions match no member)");
	else if (member_vals != NIL)
	{
		appendStringInfo(&cmds, "ZMSCORE %s %s", key, (char *) linitial(member_vals));
		if (st->need_rank && sharded)
			appendStringInfo(&cmds, "; ZCOUNT %s -inf (<score>; ZCOUNT %s <score> <score>; ZRANGE %s <r> <r> (a binary search of the equal scores)",
							 key, key, key);
		else if (st->need_rank)
			appendStringInfo(&cmds, "; ZRANK %s <member>", key);
	}
	else
	{
		bool		lo_known = !w.rank_lo_unknown;
		bool		hi_known = !w.rank_hi_unknown;
		int64		rlo = w.rank_lo;
		int64		rhi = w.rank_hi;

		appendStringInfo(&cmds, "ZCARD %s", key);
		if (w.score_min_unknown)
			appendStringInfo(&cmds, "; ZCOUNT %s -inf <lower score bound>", key);
		else if (w.sb.has_min)
			appendStringInfo(&cmds, "; ZCOUNT %s -inf %s", key,
							 rs_score_arg(w.sb.min, !w.sb.min_incl));
		if (w.score_max_unknown)
			appendStringInfo(&cmds, "; ZCOUNT %s -inf <upper score bound>", key);
		else if (w.sb.has_max)
			appendStringInfo(&cmds, "; ZCOUNT %s -inf %s", key,
							 rs_score_arg(w.sb.max, w.sb.max_incl));
		if (w.sb.has_min || w.score_min_unknown)
			lo_known = false;
		if (w.sb.has_max || w.score_max_unknown)
			hi_known = false;

		if (st->limit > 0 && !ranked && st->order == RS_ORDER_DESC)
			appendStringInfo(&cmds, "; ZRANGE %s <last %d ranks> WITHSCORES", key, (int) st->limit);
		else
		{
			if (st->limit > 0 && !ranked && !lo_known)
				hi_known = false;
			else if (st->limit > 0 && !ranked && hi_known)
				rhi = (rhi < 0) ? rlo + st->limit - 1 : Min(rhi, rlo + st->limit - 1);
			appendStringInfo(&cmds, "; ZRANGE %s ", key);
			if (lo_known)
				appendStringInfo(&cmds, INT64_FORMAT, rlo);
			else
				appendStringInfoString(&cmds, "<from>");
			if (hi_known)
				appendStringInfo(&cmds, " " INT64_FORMAT, rhi);
			else
				appendStringInfoString(&cmds, " <to>");
			appendStringInfoString(&cmds, " WITHSCORES");
		}
		appendStringInfo(&cmds, " (pages of %d%s%s)", st->topts.page_size,
						 st->order == RS_ORDER_DESC ? ", highest rank first" : "",
						 !node->ss.ps.plan->parallel_aware ? "" :
						 sharded ? ", whole shards per parallel worker" :
						 ", shared by parallel workers");
	}
	ExplainPropertyText("Redis Commands", cmds.data, es);
	{
		ForeignTable *table = GetForeignTable(RelationGetRelid(node->ss.ss_currentRelation));
		ForeignServer *server = GetForeignServer(table->serverid);
		RsServerOptions opts;

		rs_get_server_options(server, NULL, &opts);
		if (opts.cluster && st->topts.key != NULL && !sharded)
		{
			/* on a cluster, the node that serves the key's reads now */
			RsConnection *conn = st->conn ? st->conn :
				rs_get_connection(server, GetUserMapping(GetUserId(), server->serverid));

			ExplainPropertyText("Redis Node", rs_cluster_key_node(conn, st->topts.key), es);
		}
		else if (opts.cluster && st->topts.key != NULL)
		{
			/* on a cluster, the node that serves each shard's key now */
			RsConnection *conn = st->conn ? st->conn :
				rs_get_connection(server, GetUserMapping(GetUserId(), server->serverid));
			StringInfoData nodes;

			initStringInfo(&nodes);
			for (int shard = 0; shard < st->topts.shards; shard++)
				appendStringInfo(&nodes, "%sshard %d: %s", shard > 0 ? ", " : "", shard,
								 rs_cluster_key_node(conn, rs_shard_key(&st->topts, shard)));
			ExplainPropertyText("Redis Nodes", nodes.data, es);
		}
		else if (opts.sentinels != NULL)
		{
			/* with sentinels, the primary they named for this connection */
			RsConnection *conn = st->conn ? st->conn :
				rs_get_connection(server, GetUserMapping(GetUserId(), server->serverid));

			ExplainPropertyText("Redis Primary",
								psprintf("%s (sentinel_master \"%s\")", conn->addr,
										 opts.sentinel_master), es);
			/* with read_from, the replica that serves the reads, if any */
			if (opts.read_from != RS_READ_PRIMARY)
			{
				char	   *replica = rs_sentinel_replica(conn);

				ExplainPropertyText("Redis Reads From",
									replica ? psprintf("replica %s", replica) :
									"the primary (no healthy replica)", es);
			}
		}
	}
	if (sharded)
	{
		ExplainPropertyText("Redis Shards",
							psprintf("%d (the commands go to each shard's key, %%s = 0 to %d)",
									 st->topts.shards, st->topts.shards - 1),
							es);
		ExplainPropertyText("Redis Shard Read",
							!merge && member_vals != NIL && st->need_rank ?
							"every shard at once, one pipeline per page of members; the global rank of each member found is counted in every shard" :
							!merge && member_vals != NIL ?
							"every shard at once, one pipeline per page of members" :
							!merge ? "one shard after another" :
							st->order == RS_ORDER_DESC ?
							"k-way merge by score descending, one page per shard at a time; rank is the position in the ascending order of all shards" :
							"k-way merge by score ascending, one page per shard at a time; rank is the position in the ascending order of all shards",
							es);
		if (merge && ranked)
			ExplainPropertyText("Redis Rank Filter", "global rank, applied to the merged rows", es);
	}
	if (has_score)
		ExplainPropertyText("Redis Score Bounds",
							w.widened ? "widened, conditions rechecked by the Filter" : "exact",
							es);
	if (st->materialize)
		ExplainPropertyText("Redis Read", "all rows before the first write", es);
}

/*
 * rsIsForeignScanParallelSafe
 *		A redis_zset scan may run in a parallel worker: each process opens
 *		its own connection.
 */
bool
rsIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel, RangeTblEntry *rte)
{
	return true;
}

/* Size of the shared state of a parallel scan. */
Size
rsEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt)
{
	return sizeof(RsParallelState);
}

/* The leader sets up the shared state: no window yet. */
void
rsInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	RsScanState *st = (RsScanState *) node->fdw_state;
	RsParallelState *ps = (RsParallelState *) coordinate;

	SpinLockInit(&ps->mutex);
	rsReInitializeDSMForeignScan(node, pcxt, coordinate);
	st->pstate = ps;
}

/* Before a rescan, the window is forgotten, to be fixed again. */
void
rsReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	RsParallelState *ps = (RsParallelState *) coordinate;

	SpinLockAcquire(&ps->mutex);
	ps->window_set = false;
	ps->next = 0;
	ps->hi = -1;
	SpinLockRelease(&ps->mutex);
}

/* A worker attaches to the shared state. */
void
rsInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc, void *coordinate)
{
	RsScanState *st = (RsScanState *) node->fdw_state;

	st->pstate = (RsParallelState *) coordinate;
}
