/*-------------------------------------------------------------------------
 *
 * zset_snapshot.c
 *		  A copy of a sorted set that still takes writes, made in short steps
 *		  so that Redis keeps serving its other clients.
 *
 * A run of a day whose key may still change reads a copy of the key, so
 * that ranks stay still while its workers read them.  COPY would make the
 * copy in one command, but that command runs for as long as the set is big,
 * and Redis serves no one else meanwhile.  zr_copy_begin(), zr_copy_step()
 * and zr_copy_end() copy the set a page at a time instead, each page in one
 * short script, in ascending (score, member) order: each script finds where
 * the previous page ended by its last (score, member) pair (not by its rank,
 * which shifts as scores change), and copies the next page.
 *
 * What the copy holds: every member that the key held when the copy began
 * and still holds when it ends, each with a score at least as new as that
 * member's score when the copy began.  A member whose score only grows
 * moves further ahead of the copy's position, never behind it, so it is
 * copied; met again further on, it is not copied again (ZADD NX), so the
 * copy keeps the score it was first copied with.  Members added during the
 * copy may or may not be in it (the next run reads them).  A key that is
 * deleted, or that ends with fewer members than it had when the copy began,
 * is an error: the copy would then miss members that the key had.
 *
 * The copy only grows at its end: every pair it receives sorts after the
 * pairs already in it (they sort at or before the position, the new ones
 * after it), and a member already in it is never moved.  So the ranks that
 * have been copied never change, and readers may read them while the copy
 * goes on (ZsetCopy.copied says how far they may read).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <hiredis/hiredis.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "redis_cluster.h"
#include "redis_conn.h"
#include "zset.h"

/* Members copied by one script: a short command, as Redis wants them. */
#define RS_SNAPSHOT_PAGE	"500"

/*
 * KEYS[1] source, KEYS[2] copy; ARGV[1] score and ARGV[2] member of the last
 * pair read from the source ('' for the first page), ARGV[3] page size,
 * ARGV[4] the copy's expiry in seconds, ARGV[5] the members that the copy
 * held after the previous script.  Returns {added, ZCARD of the source, last
 * score, last member}; {added, ZCARD} once the page has reached the end of
 * the source (a short page, or none), which completes the copy; {-1} if the
 * source no longer exists; or {-2, ZCARD of the copy} if the copy holds
 * fewer members than ARGV[5] (deleted or evicted).
 *
 * The position after (s, m) is found with two ZCOUNTs (the members of score
 * below s, and of score s) and a binary search by member among the members
 * of score s, which Redis orders by their bytes: O(log^2 N) in all, however
 * far the copy has gone.  The page and its expiry are written in the same
 * script, so the copy never exists without an expiry.  "added" counts the
 * members that the copy holds beyond ARGV[5] (ZADD NX adds only new ones),
 * which may be 0 for a page of members copied before; the last pair moves
 * the position on all the same.  Counted from the copy's size rather than
 * from ZADD's reply, a script sent again after its reply was lost (a
 * timeout, a lost connection) counts the members that the lost run added.
 *
 * A short page completes the copy at once: every pair past the position was
 * in it, so every member present at the start is now in the copy.  Another
 * script to find nothing after the position would not end while some member
 * past it takes a click between two scripts (the leader of a busy key moves
 * past the position again and again).
 */
static const char rs_snapshot_script[] =
"local src, dst = KEYS[1], KEYS[2]\n"
"local n, ttl = tonumber(ARGV[3]), ARGV[4]\n"
"local had = tonumber(ARGV[5])\n"
"local before = redis.call('ZCARD', dst)\n"
"if before < had then return {-2, before} end\n"
"local start = 0\n"
"if ARGV[1] ~= '' then\n"
"  if redis.call('EXISTS', src) == 0 then return {-1} end\n"
"  local s, m = ARGV[1], ARGV[2]\n"
"  local lo = redis.call('ZCOUNT', src, '-inf', '(' .. s)\n"
"  local hi = lo + redis.call('ZCOUNT', src, s, s)\n"
"  local lm = #m\n"
"  while lo < hi do\n"
"    local mid = math.floor((lo + hi) / 2)\n"
"    local e = redis.call('ZRANGE', src, mid, mid)[1]\n"
"    local le, la, k = true, #e, 1\n"
"    while k <= la and k <= lm do\n"
"      local x, y = string.byte(e, k), string.byte(m, k)\n"
"      if x ~= y then le = x < y break end\n"
"      k = k + 1\n"
"    end\n"
"    if k > la or k > lm then le = la <= lm end\n"
"    if le then lo = mid + 1 else hi = mid end\n"
"  end\n"
"  start = lo\n"
"end\n"
"local page = redis.call('ZRANGE', src, start, start + n - 1, 'WITHSCORES')\n"
"local card = redis.call('ZCARD', src)\n"
"if #page == 0 then return {before - had, card} end\n"
"local args = {'NX'}\n"
"for i = 1, #page, 2 do args[#args + 1] = page[i + 1] args[#args + 1] = page[i] end\n"
"redis.call('ZADD', dst, unpack(args))\n"
"redis.call('EXPIRE', dst, ttl)\n"
"local added = redis.call('ZCARD', dst) - had\n"
"if #page < 2 * n then return {added, card} end\n"
"return {added, card, page[#page], page[#page - 1]}\n";

/*
 * KEYS[1] a complete copy, ARGV[1] its expiry in seconds.  Renews the
 * expiry and returns the copy's size, or -1 if the key holds no sorted set
 * (ZCARD fails on a key of another type; EXPIRE finds no missing key).
 */
static const char rs_renew_script[] =
"local n = redis.pcall('ZCARD', KEYS[1])\n"
"if type(n) ~= 'number' or redis.call('EXPIRE', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
"return n\n";

/*
 * rs_copy_fail
 *		Report that the source (or the copy) lost members during the copy.
 */
static void
rs_copy_fail(ZsetCopy *copy, int64 now_in_copy)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("Redis key \"%s\" lost members while it was being copied", copy->source),
			 errdetail("The key held " INT64_FORMAT " members when the copy began; " INT64_FORMAT " were copied, and the copy \"%s\" holds " INT64_FORMAT ".",
					   copy->card_at_start, copy->copied, copy->copy, now_in_copy),
			 errhint("Members were removed, or the key or its copy was deleted or evicted, during the run; run the sync again.")));
}

/*
 * zr_copy_begin
 *		Start a copy of the sorted set "source" into "copy_key" (see the
 *		file header): check the source's type, drop what "copy_key" held, and
 *		copy the first page.  Fills "copy", which must be palloc'd: the
 *		position is kept in its memory context, and "source" and "copy_key"
 *		by reference.  copy->card_at_start is the source's size.
 */
void
zr_copy_begin(RsConnection *conn, ZsetCopy *copy, const char *source,
			  const char *copy_key, int ttl_seconds)
{
	const char *unlink_argv[2] = {"UNLINK", copy_key};

	memset(copy, 0, sizeof(ZsetCopy));
	copy->source = source;
	copy->copy = copy_key;
	snprintf(copy->ttl, sizeof(copy->ttl), "%d", ttl_seconds);
	copy->card_at_start = -1;
	/* ZCARD first, so that a key of another type is reported by its own name. */
	(void) zr_card(conn, source);
	zr_send_simple(conn, 2, unlink_argv);
	(void) zr_receive_integer(conn, "UNLINK", copy_key, NULL);
	(void) zr_copy_step(conn, copy);
}

/*
 * zr_copy_step
 *		Copy the next page.  Returns false once the copy has reached the end
 *		of the source (copy->done), true if there may be more.  Raises an
 *		error if the source was deleted.  copy->copied grows by the members
 *		new to the copy; the ranks below it are final.
 */
bool
zr_copy_step(RsConnection *conn, ZsetCopy *copy)
{
	const char *argv[10];
	size_t		lens[10];
	char		had[32];
	redisReply *reply;
	bool		ok;
	int64		added = 0;

	if (copy->done)
		return false;
	CHECK_FOR_INTERRUPTS();
	argv[0] = "EVAL";
	argv[1] = rs_snapshot_script;
	argv[2] = "2";
	argv[3] = copy->source;
	argv[4] = copy->copy;
	argv[5] = copy->score ? copy->score : "";
	argv[6] = copy->member ? copy->member : "";
	argv[7] = RS_SNAPSHOT_PAGE;
	argv[8] = copy->ttl;
	snprintf(had, sizeof(had), INT64_FORMAT, copy->copied);
	argv[9] = had;
	for (int i = 0; i < 10; i++)
		lens[i] = strlen(argv[i]);
	lens[6] = copy->member ? copy->member_len : 0;

	reply = rs_command(conn, copy->source, 10, argv, lens);
	ok = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
		reply->element[0]->type == REDIS_REPLY_INTEGER;
	if (ok)
	{
		added = reply->element[0]->integer;
		if (added == -1)
			ok = reply->elements == 1;
		else if (added == -2)
			ok = reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_INTEGER;
		else if (added >= 0 && reply->elements == 2)
			ok = reply->element[1]->type == REDIS_REPLY_INTEGER;
		else
			ok = added >= 0 && reply->elements == 4 &&
				reply->element[1]->type == REDIS_REPLY_INTEGER &&
				reply->element[2]->type == REDIS_REPLY_STRING &&
				reply->element[3]->type == REDIS_REPLY_STRING;
	}
	if (!ok)
	{
		freeReplyObject(reply);
		zr_protocol_error(conn, "EVAL", copy->source);
	}
	if (added == -1)
	{
		freeReplyObject(reply);
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Redis key \"%s\" was deleted while it was being copied", copy->source),
				 errdetail("The copy \"%s\" would miss members that the key had.", copy->copy),
				 errhint("Run the sync again once the key is back.")));
	}
	if (added == -2)
	{
		int64		now_in_copy = reply->element[1]->integer;

		freeReplyObject(reply);
		rs_copy_fail(copy, now_in_copy);
	}
	if (copy->card_at_start < 0)
		copy->card_at_start = reply->element[1]->integer;
	copy->copied += added;
	if (reply->elements == 2)
		copy->done = true;
	else
	{
		redisReply *s = reply->element[2];
		redisReply *m = reply->element[3];

		MemoryContext cxt = GetMemoryChunkContext(copy);

		if (copy->score)
			pfree(copy->score);
		if (copy->member)
			pfree(copy->member);
		copy->score = MemoryContextAlloc(cxt, s->len + 1);
		memcpy(copy->score, s->str, s->len);
		copy->score[s->len] = '\0';
		copy->member = MemoryContextAlloc(cxt, m->len + 1);
		memcpy(copy->member, m->str, m->len);
		copy->member[m->len] = '\0';
		copy->member_len = m->len;
	}
	freeReplyObject(reply);
	return !copy->done;
}

/*
 * zr_copy_end
 *		After the last step: check that the copy holds every member it was
 *		given (nothing deleted or evicted it meanwhile) and at least as many
 *		as the source held at the start, and return its size.  Raises an
 *		error otherwise.
 */
int64
zr_copy_end(RsConnection *conn, ZsetCopy *copy)
{
	int64		in_copy;

	Assert(copy->done);
	/* readers on replicas (read_from) must find the whole copy there */
	if (copy->copied > 0)
		rs_cluster_wait_replicas(conn, copy->copy);
	in_copy = copy->copied > 0 ? zr_card(conn, copy->copy) : 0;
	if (in_copy != copy->copied || copy->copied < copy->card_at_start)
		rs_copy_fail(copy, in_copy);
	return in_copy;
}

/*
 * zr_copy_renew
 *		A complete copy that a run reads again (a resume) or is about to
 *		prove (a run about to succeed): renew its expiry and return its
 *		size, or -1 if "copy_key" holds no sorted set (it expired, was
 *		evicted or deleted, or a key of another type took its name).  A
 *		complete copy never changes, so any other size than the one it was
 *		completed with means that members were added to it or removed from
 *		it, or that another sorted set took its name: its ranks are no
 *		longer those that the run's partitions were cut from.
 */
int64
zr_copy_renew(RsConnection *conn, const char *copy_key, int ttl_seconds)
{
	char		ttl[16];
	const char *argv[5] = {"EVAL", rs_renew_script, "1", copy_key, ttl};

	snprintf(ttl, sizeof(ttl), "%d", ttl_seconds);
	return zr_integer_command(conn, copy_key, 5, argv);
}
