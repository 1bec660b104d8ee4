/*-------------------------------------------------------------------------
 *
 * fdw_shards.c
 *		  The k-way merge of a sharded redis_zset table: the shards' sorted
 *		  sets read in pages and merged into one order by score, with ties
 *		  broken by member bytes as Redis orders them, and the global rank of
 *		  each row.
 *
 * A sharded table (table option shards > 1) reads the keys its key template
 * names, one per shard.  A scan that needs no order and no rank reads them
 * one after another (fdw_scan.c).  A scan ordered by score or rank, or one
 * that returns or filters on the rank, merges them here:
 *	 - each shard's window is its ranks inside the score bounds (ZCARD, and
 *	   ZCOUNT for each bound), sent to every shard in one pipeline;
 *	 - each shard is read in pages of page_size (one ZRANGE per page; the
 *	   first pages of all shards in one pipeline), so the merge holds at
 *	   most one page per shard;
 *	 - a binary heap over the shards' current page heads yields the rows in
 *	   ascending order (score, then member bytes as memcmp compares them, a
 *	   shorter member first when one is a prefix of the other, then shard
 *	   number), or in exactly the reverse order;
 *	 - the global rank is the row's position in the ascending order of the
 *	   union of all shards: the first row of an ascending merge has the rank
 *	   sum(members below the score window in each shard), the first row of a
 *	   descending merge sum(members up to the window's top in each shard) - 1.
 *	   It equals, for each row, the sum over the shards of the number of
 *	   members that sort before it in that shard.
 * With a LIMIT of k (and no rank condition), each shard's window is clipped
 * to its first (or last) k ranks, since no more of one shard can be among
 * the first k rows of the merge.
 *
 * Commands name one key each, so that a cluster layer can route them by key.
 * The merge keeps no reply in flight between calls: it claims the
 * connection, sends, reads every reply and lets go.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "fdw.h"
#include "redis_conn.h"
#include "zset.h"

/* One shard of a merge. */
typedef struct RsShardCursor
{
	const char *key;
	int			shard;
	bool		wanted;			/* its rows are returned (key conditions) */
	int64		lo;				/* ranks still to read: [lo, hi] */
	int64		hi;
	MemoryContext cxt;			/* holds the current page */
	ZsetPage	page;
	int			pos;			/* rows of the page consumed */
	bool		sent;			/* a page is requested, its reply unread */
	int64		sent_start;		/* first rank of that page */
	double		head_score;		/* the score of the current head */
} RsShardCursor;

struct RsShardMerge
{
	RsConnection *conn;
	bool		desc;
	int			page_size;
	int			ncursors;
	RsShardCursor *cursors;
	int		   *heap;			/* cursor indexes, the next row's at [0] */
	int			nheap;
	int64		next_rank;		/* global rank of the next row */
	bool		started;
	bool		returned;		/* the heap's head row was returned */
};

static int	rs_head_index(RsShardMerge *m, RsShardCursor *c);
static int	rs_cursor_cmp(RsShardMerge *m, int a, int b);
static void rs_heap_down(RsShardMerge *m, int i);
static void rs_advance(RsShardMerge *m);
static bool rs_cursor_load(RsShardMerge *m, RsShardCursor *c);
static void rs_send_page(RsShardMerge *m, RsShardCursor *c);
static void rs_receive_page(RsShardMerge *m, RsShardCursor *c);

/*
 * rs_merge_begin
 *		Set up the merge of the shards' keys "keys" (all shards of the table,
 *		in shard order); "wanted[i]" says whether shard i's rows are
 *		returned (its ranks count in either case).  "sb" bounds the scores,
 *		"limit" (or -1) clips each shard's window.  Reads every shard's
 *		window (one pipeline); the pages are read by rs_merge_next().  Memory
 *		comes from the current context.
 */
RsShardMerge *
rs_merge_begin(RsConnection *conn, List *keys, const bool *wanted,
			   const RsScoreBounds *sb, bool desc, int64 limit, int page_size)
{
	RsShardMerge *m = palloc0(sizeof(RsShardMerge));
	ListCell   *lc;
	int			i = 0;

	m->conn = conn;
	m->desc = desc;
	m->page_size = page_size;
	m->ncursors = list_length(keys);
	m->cursors = palloc0(sizeof(RsShardCursor) * m->ncursors);
	m->heap = palloc(sizeof(int) * m->ncursors);
	foreach(lc, keys)
	{
		RsShardCursor *c = &m->cursors[i];

		c->key = lfirst(lc);
		c->shard = i;
		c->wanted = wanted[i];
		c->cxt = AllocSetContextCreate(CurrentMemoryContext, "redis_zset shard page",
									   ALLOCSET_DEFAULT_SIZES);
		i++;
	}

	/* The windows: ZCARD and the score bounds' ZCOUNTs of every shard. */
	rs_claim_connection(conn, m, NULL);
	for (i = 0; i < m->ncursors; i++)
	{
		const char *argv[4];

		argv[0] = "ZCARD";
		argv[1] = m->cursors[i].key;
		zr_send_simple(conn, 2, argv);
		argv[0] = "ZCOUNT";
		argv[2] = "-inf";
		if (sb->has_min)
		{
			argv[3] = rs_score_arg(sb->min, !sb->min_incl);
			zr_send_simple(conn, 4, argv);
		}
		if (sb->has_max)
		{
			argv[3] = rs_score_arg(sb->max, sb->max_incl);
			zr_send_simple(conn, 4, argv);
		}
	}
	rs_flush(conn);
	m->next_rank = desc ? -1 : 0;
	for (i = 0; i < m->ncursors; i++)
	{
		RsShardCursor *c = &m->cursors[i];
		int64		card = zr_receive_integer(conn, "ZCARD", c->key, NULL);

		c->lo = 0;
		c->hi = card - 1;
		if (sb->has_min)
			c->lo = zr_receive_integer(conn, "ZCOUNT", c->key, NULL);
		if (sb->has_max)
		{
			int64		upto = zr_receive_integer(conn, "ZCOUNT", c->key, NULL);

			c->hi = Min(c->hi, upto - 1);
		}
		if (c->hi < c->lo)
			c->hi = c->lo - 1;
		/* members of this shard that sort before the merge's first row */
		m->next_rank += desc ? c->hi + 1 : c->lo;
		if (limit > 0)
		{
			if (desc)
				c->lo = Max(c->lo, c->hi - limit + 1);
			else
				c->hi = Min(c->hi, c->lo + limit - 1);
		}
	}
	rs_release_connection(conn, m);
	return m;
}

/*
 * rs_merge_next
 *		The next row of the merge: the shard's key, its current page and the
 *		entry's index in it (valid until the next call), and the row's global
 *		rank.  Rows of shards not wanted are skipped.  Returns false when
 *		every shard is exhausted.
 */
bool
rs_merge_next(RsShardMerge *m, const char **key, ZsetPage **page, int *index,
			  int64 *rank)
{
	if (!m->started)
	{
		int			i;

		/* The first page of every shard, in one pipeline. */
		rs_claim_connection(m->conn, m, NULL);
		for (i = 0; i < m->ncursors; i++)
			if (m->cursors[i].lo <= m->cursors[i].hi)
				rs_send_page(m, &m->cursors[i]);
		rs_flush(m->conn);
		for (i = 0; i < m->ncursors; i++)
			if (m->cursors[i].sent)
				rs_receive_page(m, &m->cursors[i]);
		rs_release_connection(m->conn, m);

		m->nheap = 0;
		for (i = 0; i < m->ncursors; i++)
		{
			RsShardCursor *c = &m->cursors[i];

			if (c->page.n > 0)
			{
				c->head_score = strtod(c->page.scores[rs_head_index(m, c)], NULL);
				m->heap[m->nheap++] = i;
			}
		}
		for (i = m->nheap / 2 - 1; i >= 0; i--)
			rs_heap_down(m, i);
		m->started = true;
	}
	else if (m->returned)
	{
		/* The row returned last is done: move its shard on. */
		rs_advance(m);
		m->returned = false;
	}

	while (m->nheap > 0)
	{
		RsShardCursor *c = &m->cursors[m->heap[0]];
		int64		r = m->next_rank;

		CHECK_FOR_INTERRUPTS();
		m->next_rank += m->desc ? -1 : 1;
		if (c->wanted)
		{
			*key = c->key;
			*page = &c->page;
			*index = rs_head_index(m, c);
			*rank = r;
			m->returned = true;
			return true;
		}
		rs_advance(m);
	}
	return false;
}

/*
 * rs_advance
 *		The head of the heap's first cursor is consumed: move to its next
 *		entry (reading its next page when the page is done) and restore the
 *		heap, dropping the cursor when its shard is exhausted.
 */
static void
rs_advance(RsShardMerge *m)
{
	RsShardCursor *c = &m->cursors[m->heap[0]];

	c->pos++;
	if (c->pos < c->page.n)
		c->head_score = strtod(c->page.scores[rs_head_index(m, c)], NULL);
	else if (!rs_cursor_load(m, c))
		m->heap[0] = m->heap[--m->nheap];
	if (m->nheap > 0)
		rs_heap_down(m, 0);
}

/*
 * rs_merge_end
 *		Free the merge's pages.
 */
void
rs_merge_end(RsShardMerge *m)
{
	int			i;

	for (i = 0; i < m->ncursors; i++)
		MemoryContextDelete(m->cursors[i].cxt);
}

/* Index in its page of a cursor's current head (pages are ascending). */
static int
rs_head_index(RsShardMerge *m, RsShardCursor *c)
{
	return m->desc ? c->page.n - 1 - c->pos : c->pos;
}

/*
 * rs_cursor_cmp
 *		Order of two cursors' heads in the merge: negative if a's comes
 *		first.  Ascending: score, then member bytes (memcmp, a prefix
 *		first), then shard; descending: the exact reverse.
 */
static int
rs_cursor_cmp(RsShardMerge *m, int a, int b)
{
	RsShardCursor *ca = &m->cursors[a];
	RsShardCursor *cb = &m->cursors[b];
	int			res;

	if (ca->head_score < cb->head_score)
		res = -1;
	else if (ca->head_score > cb->head_score)
		res = 1;
	else
	{
		int			ia = rs_head_index(m, ca);
		int			ib = rs_head_index(m, cb);
		int			la = ca->page.member_lens[ia];
		int			lb = cb->page.member_lens[ib];

		res = memcmp(ca->page.members[ia], cb->page.members[ib], Min(la, lb));
		if (res == 0)
			res = (la > lb) - (la < lb);
		if (res == 0)
			res = (ca->shard > cb->shard) - (ca->shard < cb->shard);
	}
	return m->desc ? -res : res;
}

/* Restore the heap property below position i. */
static void
rs_heap_down(RsShardMerge *m, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			best = i;
		int			tmp;

		if (l < m->nheap && rs_cursor_cmp(m, m->heap[l], m->heap[best]) < 0)
			best = l;
		if (r < m->nheap && rs_cursor_cmp(m, m->heap[r], m->heap[best]) < 0)
			best = r;
		if (best == i)
			return;
		tmp = m->heap[i];
		m->heap[i] = m->heap[best];
		m->heap[best] = tmp;
		i = best;
	}
}

/*
 * rs_cursor_load
 *		The cursor's page is done: read its next page, if any ranks remain.
 *		Returns false when the shard is exhausted.
 */
static bool
rs_cursor_load(RsShardMerge *m, RsShardCursor *c)
{
	if (c->lo > c->hi)
		return false;
	rs_claim_connection(m->conn, m, NULL);
	rs_send_page(m, c);
	rs_flush(m->conn);
	rs_receive_page(m, c);
	rs_release_connection(m->conn, m);
	if (c->page.n == 0)
		return false;
	c->head_score = strtod(c->page.scores[rs_head_index(m, c)], NULL);
	return true;
}

/*
 * rs_send_page
 *		Queue the ZRANGE of the cursor's next page: its lowest remaining
 *		ranks in an ascending merge, its highest in a descending one.
 */
static void
rs_send_page(RsShardMerge *m, RsShardCursor *c)
{
	int64		start;
	int64		stop;

	if (m->desc)
	{
		stop = c->hi;
		start = Max(c->lo, stop - m->page_size + 1);
		c->hi = start - 1;
	}
	else
	{
		start = c->lo;
		stop = Min(c->hi, start + m->page_size - 1);
		c->lo = stop + 1;
	}
	zr_send_range(m->conn, c->key, start, stop);
	c->sent = true;
	c->sent_start = start;
}

/*
 * rs_receive_page
 *		Read the reply of the cursor's requested page into its context,
 *		freeing the page before it.
 */
static void
rs_receive_page(RsShardMerge *m, RsShardCursor *c)
{
	MemoryContext oldcxt;

	MemoryContextReset(c->cxt);
	oldcxt = MemoryContextSwitchTo(c->cxt);
	zr_receive_range(m->conn, c->key, c->sent_start, &c->page);
	MemoryContextSwitchTo(oldcxt);
	c->sent = false;
	c->pos = 0;
}

/*
 * rs_global_rank
 *		The global rank of a member found with score "score" (Redis's text)
 *		in one shard of a sharded table whose shard keys are "keys": the
 *		number of members of all shards that sort before it, by score, then
 *		member bytes.  For each shard, that is the members with a lower score
 *		(ZCOUNT key -inf (score) plus those with the same score and a member
 *		that sorts before this one; the latter are found by a binary search
 *		over the shard's block of equal scores (ZRANGE key r r), all shards
 *		searched in step, so a lookup costs one round trip plus one per
 *		halving of the largest block of ties.  Members are compared as
 *		rs_cursor_cmp compares them, so the rank agrees with the merge's.
 */
int64
rs_global_rank(RsConnection *conn, List *keys, const char *score, const char *member,
			   int len)
{
	int			n = list_length(keys);
	int64	   *lo = palloc(sizeof(int64) * n);
	int64	   *hi = palloc(sizeof(int64) * n);
	const char **key = palloc(sizeof(char *) * n);
	char	   *below = psprintf("(%s", score);
	int64		rank = 0;
	bool		active;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, keys)
		key[i++] = lfirst(lc);

	rs_claim_connection(conn, &rank, NULL);
	for (i = 0; i < n; i++)
	{
		const char *argv[4] = {"ZCOUNT", key[i], "-inf", below};

		zr_send_simple(conn, 4, argv);
		argv[2] = score;
		argv[3] = score;
		zr_send_simple(conn, 4, argv);
	}
	rs_flush(conn);
	for (i = 0; i < n; i++)
	{
		int64		c = zr_receive_integer(conn, "ZCOUNT", key[i], NULL);
		int64		t = zr_receive_integer(conn, "ZCOUNT", key[i], NULL);

		/* the first rank of the ties that sort after the member is in [lo, hi] */
		lo[i] = c;
		hi[i] = c + t;
	}

	do
	{
		active = false;
		for (i = 0; i < n; i++)
			if (lo[i] < hi[i])
			{
				int64		mid = lo[i] + (hi[i] - lo[i]) / 2;

				zr_send_range(conn, key[i], mid, mid);
				active = true;
			}
		if (!active)
			break;
		rs_flush(conn);
		for (i = 0; i < n; i++)
			if (lo[i] < hi[i])
			{
				int64		mid = lo[i] + (hi[i] - lo[i]) / 2;
				ZsetPage	page;
				int			cmp;

				zr_receive_range(conn, key[i], mid, &page);
				if (page.n == 0)
				{
					/* the set shrank meanwhile: stop at what it holds */
					hi[i] = mid;
					continue;
				}
				cmp = memcmp(page.members[0], member, Min(page.member_lens[0], len));
				if (cmp == 0)
					cmp = (page.member_lens[0] > len) - (page.member_lens[0] < len);
				if (cmp < 0)
					lo[i] = mid + 1;
				else
					hi[i] = mid;
			}
		CHECK_FOR_INTERRUPTS();
	} while (active);
	rs_release_connection(conn, &rank);

	for (i = 0; i < n; i++)
		rank += lo[i];
	return rank;
}
