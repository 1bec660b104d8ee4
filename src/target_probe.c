/*-------------------------------------------------------------------------
 *
 * target_probe.c
 *		  Read-only probes of a target table's unique btree index: does a
 *		  visible row with this name (and date) already hold this count?
 *
 * A re-sync of an unchanged day is all such probes, two per member, and
 * through SQL (NOT EXISTS with an index scan per row) each one descends its
 * index from the root.  The sync worker asks for a chunk's members in name
 * order, so the next key is usually on the leaf page of the previous one,
 * or the page to its right.  A probe here keeps that leaf pinned, checks
 * whether the key falls inside it, and descends from the root only when it
 * does not; then it fetches the heap tuples through the table access method
 * with the transaction's snapshot, as an index scan does.
 *
 * The contract is one-sided, which keeps it simple to get right: "same" is
 * only answered for an index entry whose key compares equal under the
 * index's own support function and whose heap tuple is visible and holds
 * an equal count.  A key that is missed (say, its entries span two leaf
 * pages) is answered "not the same", and the caller then upserts it, whose
 * ON CONFLICT ... WHERE leaves an unchanged row unchanged.
 *
 * Probes are used only where they answer what the SQL filter would: a plain
 * table without row level security, that the job owner may SELECT from, with
 * a valid, non-partial unique btree index on exactly the key columns, whose
 * operator families and collations are the columns' defaults, outside
 * SERIALIZABLE transactions (which need the predicate locks that SQL takes).
 * Otherwise rs_probe_begin returns false and the caller uses SQL.  So it
 * does on PostgreSQL majors where these nbtree internals were not tested
 * (see RS_BTREE_PROBE in compat.h, which lists what the probes rely on).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "compat.h"
#include "sync.h"

/* At most this many index entries (row versions) are followed per key. */
#define RS_PROBE_MAX_TIDS 16

struct RsProbe
{
	/* fixed for the worker's life */
	Oid			relid;
	bool		daily;
	Oid			count_type;
	FmgrInfo	count_eq;		/* equality of count_type */

	/* valid between rs_probe_begin and rs_probe_end */
	Relation	heap;
	Relation	index;
	BTScanInsert skey;
	int			name_key;		/* position of name in the index key */
	AttrNumber	name_att;
	AttrNumber	date_att;		/* daily table only */
	AttrNumber	count_att;
	Oid			name_collation;
	Datum		date;
	IndexFetchTableData *fetch;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	Buffer		leaf;			/* pinned (not locked) leaf page, or invalid */
};

static Relation rs_probe_find_index(RsProbe *p, Relation heap);
static Buffer rs_probe_locate(RsProbe *p);
static bool rs_probe_leaf_covers(RsProbe *p, Page page);
static bool rs_probe_row_holds(RsProbe *p, Datum name, Datum count);

/*
 * rs_probe_create
 *		A prober for the member table (daily = false) or the daily table of
 *		a job, whose click_count has type count_type; allocated in cxt.
 *		NULL if that type has no equality operator.
 */
RsProbe *
rs_probe_create(Oid relid, bool daily, Oid count_type, MemoryContext cxt)
{
	TypeCacheEntry *tc = lookup_type_cache(count_type, TYPECACHE_EQ_OPR_FINFO);
	RsProbe    *p;

	if (!OidIsValid(tc->eq_opr_finfo.fn_oid))
		return NULL;
	p = MemoryContextAllocZero(cxt, sizeof(RsProbe));
	p->relid = relid;
	p->daily = daily;
	p->count_type = count_type;
	fmgr_info_cxt(tc->eq_opr_finfo.fn_oid, &p->count_eq, cxt);
	p->leaf = InvalidBuffer;
	return p;
}

/*
 * rs_probe_begin
 *		Open the table and its index for probes in the current transaction
 *		(for the daily table, of the given date), with its active snapshot.
 *		False, with nothing open, when the table cannot be probed directly;
 *		the caller then filters with SQL, which also reports any error.
 *		Allocations go to the current memory context.
 */
bool
rs_probe_begin(RsProbe *p, DateADT date)
{
	Relation	heap;
	Relation	index;

	if (p == NULL)
		return false;
	p->heap = NULL;
	p->leaf = InvalidBuffer;
	if (!RS_BTREE_PROBE || IsolationIsSerializable())
		return false;
	heap = try_table_open(p->relid, RowExclusiveLock);
	if (heap == NULL)
		return false;
	if (heap->rd_rel->relkind != RELKIND_RELATION ||
		check_enable_rls(p->relid, InvalidOid, true) != RLS_NONE ||
		pg_class_aclcheck(p->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		(p->count_att = get_attnum(p->relid, "click_count")) == InvalidAttrNumber ||
		get_atttype(p->relid, p->count_att) != p->count_type ||
		(p->name_att = get_attnum(p->relid, "name")) == InvalidAttrNumber ||
		(p->daily && (p->date_att = get_attnum(p->relid, "click_date")) == InvalidAttrNumber) ||
		(index = rs_probe_find_index(p, heap)) == NULL)
	{
		table_close(heap, RowExclusiveLock);
		return false;
	}

	p->heap = heap;
	p->index = index;
	p->date = DateADTGetDatum(date);
	/* An insertion scan key on all key columns; see _bt_mkscankey. */
	p->skey = _bt_mkscankey(index, NULL);
	_bt_metaversion(index, &p->skey->heapkeyspace, &p->skey->allequalimage);
	p->skey->keysz = IndexRelationGetNumberOfKeyAttributes(index);
	for (int i = 0; i < p->skey->keysz; i++)
		p->skey->scankeys[i].sk_flags &= ~SK_ISNULL;
	if (p->daily)
		p->skey->scankeys[1 - p->name_key].sk_argument = p->date;
	/* Counted as one index scan per chunk, in pg_stat_user_indexes.idx_scan. */
	pgstat_count_index_scan(index);
	p->fetch = table_index_fetch_begin(heap);
	p->slot = table_slot_create(heap, NULL);
	p->snapshot = GetActiveSnapshot();
	return true;
}

/*
 * rs_probe_find_index
 *		A unique btree index of heap on exactly (name) or, for the daily
 *		table, (name, click_date) in either order, that is valid, has no
 *		predicate and uses the columns' default operator families and
 *		collations (so that its equality is the SQL "=").  Opened with
 *		RowExclusiveLock, or NULL.  Needs p's attribute numbers; sets its
 *		name_key and name_collation.
 */
static Relation
rs_probe_find_index(RsProbe *p, Relation heap)
{
	bool		daily = p->daily;
	AttrNumber	name_att = p->name_att;
	AttrNumber	date_att = daily ? p->date_att : InvalidAttrNumber;
	List	   *indexes;
	ListCell   *lc;
	Relation	result = NULL;

	p->name_collation = TupleDescAttr(RelationGetDescr(heap), name_att - 1)->attcollation;
	indexes = RelationGetIndexList(heap);
	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index idx;
		bool		usable;
		int			nk = daily ? 2 : 1;
		int			nkey = -1;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		usable = idx->indisunique && idx->indisvalid && idx->indisready && idx->indislive &&
			idx->indnkeyatts == nk &&
			heap_attisnull(tup, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL);
		if (usable)
		{
			for (int i = 0; i < nk; i++)
			{
				if (idx->indkey.values[i] == name_att)
					nkey = i;
				else if (idx->indkey.values[i] != date_att)
					usable = false;
			}
			usable = usable && nkey >= 0;
		}
		ReleaseSysCache(tup);
		if (!usable)
			continue;

		result = index_open(indexoid, RowExclusiveLock);
		if (result->rd_rel->relam == BTREE_AM_OID &&
			result->rd_opfamily[nkey] == TEXT_BTREE_FAM_OID &&
			result->rd_indcollation[nkey] == p->name_collation &&
			(!daily || result->rd_opfamily[1 - nkey] ==
			 get_opclass_family(GetDefaultOpClass(DATEOID, BTREE_AM_OID))))
		{
			p->name_key = nkey;
			break;
		}
		index_close(result, RowExclusiveLock);
		result = NULL;
	}
	list_free(indexes);
	return result;
}

/*
 * rs_probe_same
 *		True if a row visible to the snapshot has this name (a text datum)
 *		and a click_count equal to count; false if there is none, it holds
 *		another count, or the probe missed it.
 */
bool
rs_probe_same(RsProbe *p, Datum name, Datum count)
{
	ItemPointerData tids[RS_PROBE_MAX_TIDS];
	int			ntids = 0;
	Buffer		buf;

	p->skey->scankeys[p->name_key].sk_argument = name;
	buf = rs_probe_locate(p);
	if (BufferIsValid(buf))
	{
		Page		page = BufferGetPage(buf);
		BTPageOpaque opaque = BTPageGetOpaque(page);
		OffsetNumber low = P_FIRSTDATAKEY(opaque);
		OffsetNumber high = PageGetMaxOffsetNumber(page) + 1;

		/* The first entry not below the key, then the entries equal to it. */
		while (low < high)
		{
			OffsetNumber mid = low + (high - low) / 2;

			if (_bt_compare(p->index, p->skey, page, mid) > 0)
				low = mid + 1;
			else
				high = mid;
		}
		for (OffsetNumber off = low; off <= PageGetMaxOffsetNumber(page) &&
			 ntids < RS_PROBE_MAX_TIDS; off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			IndexTuple	itup;

			if (_bt_compare(p->index, p->skey, page, off) != 0)
				break;
			if (ItemIdIsDead(iid))
				continue;
			itup = (IndexTuple) PageGetItem(page, iid);
			if (BTreeTupleIsPosting(itup))
			{
				for (int i = 0; i < BTreeTupleGetNPosting(itup) && ntids < RS_PROBE_MAX_TIDS; i++)
					tids[ntids++] = *BTreeTupleGetPostingN(itup, i);
			}
			else
				tids[ntids++] = itup->t_tid;
		}
		_bt_unlockbuf(p->index, buf);
	}
	p->leaf = buf;

	/* At most one version of a key is visible to an MVCC snapshot. */
	for (int i = 0; i < ntids; i++)
	{
		bool		call_again = false;
		bool		all_dead = false;

		if (table_index_fetch_tuple(p->fetch, &tids[i], p->snapshot, p->slot,
									&call_again, &all_dead))
		{
			bool		same = rs_probe_row_holds(p, name, count);

			ExecClearTuple(p->slot);
			return same;
		}
	}
	return false;
}

/*
 * rs_probe_row_holds
 *		Whether the fetched row has this name (and the date) and count.
 *		The index said so already; checking the row itself costs little and
 *		makes "same" independent of how the entry was found.
 */
static bool
rs_probe_row_holds(RsProbe *p, Datum name, Datum count)
{
	bool		isnull;
	Datum		value;

	value = slot_getattr(p->slot, p->name_att, &isnull);
	if (isnull || !DatumGetBool(DirectFunctionCall2Coll(texteq, p->name_collation, value, name)))
		return false;
	if (p->daily)
	{
		value = slot_getattr(p->slot, p->date_att, &isnull);
		if (isnull || DatumGetDateADT(value) != DatumGetDateADT(p->date))
			return false;
	}
	value = slot_getattr(p->slot, p->count_att, &isnull);
	return !isnull && DatumGetBool(FunctionCall2(&p->count_eq, value, count));
}

/*
 * rs_probe_locate
 *		The leaf page where the probe's key would be, locked for reading:
 *		the pinned leaf of the previous probe or its right sibling when the
 *		key falls inside, else the page found by descending from the root.
 *		InvalidBuffer for an empty index.
 */
static Buffer
rs_probe_locate(RsProbe *p)
{
	Buffer		buf = p->leaf;
	BTStack		stack;

	p->leaf = InvalidBuffer;
	if (BufferIsValid(buf))
	{
		Page		page;
		BTPageOpaque opaque;

		_bt_lockbuf(p->index, buf, BT_READ);
		page = BufferGetPage(buf);
		rs_test_for_old_snapshot(p->snapshot, p->index, page);
		opaque = BTPageGetOpaque(page);
		if (rs_probe_leaf_covers(p, page))
			return buf;
		/* Just past the high key: the key is likely on the next page. */
		if (P_ISLEAF(opaque) && !P_IGNORE(opaque) && !P_RIGHTMOST(opaque) &&
			_bt_compare(p->index, p->skey, page, P_HIKEY) > 0)
		{
			buf = _bt_relandgetbuf(p->index, buf, opaque->btpo_next, BT_READ);
			page = BufferGetPage(buf);
			rs_test_for_old_snapshot(p->snapshot, p->index, page);
			if (rs_probe_leaf_covers(p, page))
				return buf;
		}
		_bt_relbuf(p->index, buf);
	}

	stack = rs_bt_search(p->index, p->heap, p->skey, &buf, p->snapshot);
	_bt_freestack(stack);
	return buf;
}

/*
 * rs_probe_leaf_covers
 *		Whether page, locked, is a live leaf whose entries span the key:
 *		the key sorts after its first entry (so no equal entry is on a page
 *		to the left) and not after its high key.
 */
static bool
rs_probe_leaf_covers(RsProbe *p, Page page)
{
	BTPageOpaque opaque = BTPageGetOpaque(page);
	OffsetNumber first = P_FIRSTDATAKEY(opaque);

	return P_ISLEAF(opaque) && !P_IGNORE(opaque) &&
		first <= PageGetMaxOffsetNumber(page) &&
		_bt_compare(p->index, p->skey, page, first) > 0 &&
		(P_RIGHTMOST(opaque) || _bt_compare(p->index, p->skey, page, P_HIKEY) <= 0);
}

/*
 * rs_probe_end
 *		Release what rs_probe_begin opened; locks stay until commit.
 */
void
rs_probe_end(RsProbe *p)
{
	if (p == NULL || p->heap == NULL)
		return;
	if (BufferIsValid(p->leaf))
		ReleaseBuffer(p->leaf);
	p->leaf = InvalidBuffer;
	ExecDropSingleTupleTableSlot(p->slot);
	table_index_fetch_end(p->fetch);
	index_close(p->index, NoLock);
	table_close(p->heap, NoLock);
	p->heap = NULL;
}
