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
 * copied; met again further on, it is not copied again (the script looks
 * each page up in every part of the copy), so the
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
 * A copy of more than redis_sync.copy_key_members members (a million
 * unless set otherwise) spreads over several keys, its parts (zr_copy_key):
 * the first that many ranks in the first part, the next as many in the
 * second, and so on, each part full before the next one starts.  A reader of
 * copy rank r reads rank r % copy_key_members of part r / copy_key_members.
 * One key of millions would double its hash table in one command (a pointer
 * per member, allocated at once and written in full when its memory is
 * reused), and that command would keep Redis busy far longer than a page.  The setting is
 * the run's coordinator's, which its workers get from it (a reload reaches
 * only processes started after it), and is at least a page, so that a page
 * fills at most two parts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <hiredis/hiredis.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "redis_cluster.h"
#include "redis_conn.h"
#include "redis_sync.h"
#include "zset.h"

/*
 * Members copied by one script: a short command, as Redis wants them.  Each
 * inserted member costs a skiplist insert and a hash insert into the copy, and
 * right after the copy's hash table doubles, page faults into the new table;
 * so the script's time grows with the page, not with the key's size (beyond
 * its log).  bench/results-live.md has what a page costs at 5,000,000 members.
 */
#define RS_SNAPSHOT_PAGE	"200"

/* Missing parts in a row after which zr_copy_drop stops looking. */
#define RS_COPY_DROP_GAP	4

/*
 * KEYS[1] source; KEYS[2] to KEYS[k + 3] the copy's parts 0 to k + 1,
 * where part k is the one being filled (the copy held ARGV[5] members,
 * k = ARGV[5] / ARGV[6]) and k + 1 the one a page may spill into.  ARGV[1]
 * score and ARGV[2] member of the last pair read from the source ('' for the
 * first page), ARGV[3] page size, ARGV[4] the copy's expiry in seconds,
 * ARGV[5] the members that the copy held after the previous script, ARGV[6]
 * the members a part holds when full.  Returns {added, ZCARD of the
 * source, last score, last member}; {added, ZCARD} once the page has reached
 * the end of the source (a short page, or none), which completes the copy;
 * {-1} if the source no longer exists; or {-2, members in the copy} if the
 * copy holds fewer members than ARGV[5] (deleted or evicted).
 *
 * The position after (s, m) is found with two ZCOUNTs (the members of score
 * below s, and of score s) and a binary search by member among the members
 * of score s, which Redis orders by their bytes: O(log^2 N) in all, however
 * far the copy has gone.  The page's members already in the copy (met again
 * after their score grew) are left out, by a ZMSCORE on each part; the
 * others fill part k up to ARGV[6] members and the rest go to part
 * k + 1.  Every part gets its expiry in the same script, so the copy never
 * exists without one.  "added" counts the members that the copy holds
 * beyond ARGV[5], which may be 0 for a page of members copied before; the
 * last pair moves the position on all the same.  Counted from the copy's
 * size rather than from what this script added, a script sent again after
 * its reply was lost (a timeout, a lost connection) counts the members that
 * the lost run added.
 *
 * A short page completes the copy at once: every pair past the position was
 * in it, so every member present at the start is now in the copy.  Another
 * script to find nothing after the position would not end while some member
 * past it takes a click between two scripts (the leader of a busy key moves
 * past the position again and again).
 */
static const char rs_snapshot_script[] =
"local src = KEYS[1]\n"
"local n, ttl = tonumber(ARGV[3]), ARGV[4]\n"
"local had, cap = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
"local cur = math.floor(had / cap)\n"
"local sizes, before = {}, 0\n"
"for i = 2, #KEYS do\n"
"  sizes[i] = redis.call('ZCARD', KEYS[i])\n"
"  before = before + sizes[i]\n"
"end\n"
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
"local members, seen = {}, {}\n"
"for i = 1, #page, 2 do members[#members + 1] = page[i] end\n"
"for i = 2, #KEYS do\n"
"  if sizes[i] > 0 then\n"
"    local sc = redis.call('ZMSCORE', KEYS[i], unpack(members))\n"
"    for j = 1, #members do if sc[j] then seen[j] = true end end\n"
"  end\n"
"end\n"
"local room = cap - sizes[cur + 2]\n"
"local fill, spill = {}, {}\n"
"for j = 1, #members do\n"
"  if not seen[j] then\n"
"    local t = spill\n"
"    if room > 0 then t = fill room = room - 1 end\n"
"    t[#t + 1] = page[2 * j] t[#t + 1] = members[j]\n"
"  end\n"
"end\n"
"local after = before\n"
"if #fill > 0 then after = after + redis.call('ZADD', KEYS[cur + 2], unpack(fill)) end\n"
"if #spill > 0 then after = after + redis.call('ZADD', KEYS[cur + 3], unpack(spill)) end\n"
"for i = 2, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end\n"
"if #page < 2 * n then return {after - had, card} end\n"
"return {after - had, card, page[#page], page[#page - 1]}\n";

/*
 * zr_copy_key
 *		The name of part "part" of the copy "copy" (palloc'd): the copy's
 *		own name for part 0, then the name with ":<part>" appended, which
 *		keeps the copy's hash tag and so its slot in a cluster.
 */
char *
zr_copy_key(const char *copy, int64 part)
{
	if (part == 0)
		return pstrdup(copy);
	return psprintf("%s:" INT64_FORMAT, copy, part);
}

/*
 * zr_copy_nkeys
 *		How many parts a copy of "members" members fills (at least one).
 */
int64
zr_copy_nkeys(int64 members)
{
	return members <= 0 ? 1 : (members - 1) / rs_copy_key_members + 1;
}

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
	memset(copy, 0, sizeof(ZsetCopy));
	copy->source = source;
	copy->copy = copy_key;
	snprintf(copy->ttl, sizeof(copy->ttl), "%d", ttl_seconds);
	copy->card_at_start = -1;
	/* ZCARD first, so that a key of another type is reported by its own name. */
	(void) zr_card(conn, source);
	zr_copy_drop(conn, copy_key);
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
	int64		cur = copy->copied / rs_copy_key_members;
	int			nkeys = (int) cur + 3;
	int			argc = nkeys + 9;
	const char **argv;
	size_t	   *lens;
	char		numkeys[32];
	char		had[32];
	char		cap[32];
	redisReply *reply;
	bool		ok;
	int64		added = 0;
	int			a = 0;

	if (copy->done)
		return false;
	CHECK_FOR_INTERRUPTS();
	argv = palloc(sizeof(char *) * argc);
	lens = palloc(sizeof(size_t) * argc);
	snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
	snprintf(had, sizeof(had), INT64_FORMAT, copy->copied);
	snprintf(cap, sizeof(cap), "%d", rs_copy_key_members);
	argv[a++] = "EVAL";
	argv[a++] = rs_snapshot_script;
	argv[a++] = numkeys;
	argv[a++] = copy->source;
	for (int64 part = 0; part <= cur + 1; part++)
		argv[a++] = zr_copy_key(copy->copy, part);
	argv[a++] = copy->score ? copy->score : "";
	argv[a++] = copy->member ? copy->member : "";
	argv[a++] = RS_SNAPSHOT_PAGE;
	argv[a++] = copy->ttl;
	argv[a++] = had;
	argv[a++] = cap;
	Assert(a == argc);
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	/* the member may hold any bytes, a zero byte too */
	lens[nkeys + 4] = copy->member ? copy->member_len : 0;

	reply = rs_command(conn, copy->source, argc, argv, lens);
	for (int i = 4; i < nkeys + 3; i++)
		pfree((char *) argv[i]);
	pfree(argv);
	pfree(lens);
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
	int64		in_copy = 0;

	Assert(copy->done);
	/* readers on replicas (read_from) must find the whole copy there */
	if (copy->copied > 0)
		rs_cluster_wait_replicas(conn, copy->copy);
	if (copy->copied > 0)
	{
		/* one part past the last, which a lost script may have filled */
		for (int64 part = 0; part <= zr_copy_nkeys(copy->copied); part++)
		{
			char	   *key = zr_copy_key(copy->copy, part);

			in_copy += zr_card(conn, key);
			pfree(key);
		}
	}
	if (in_copy != copy->copied || copy->copied < copy->card_at_start)
		rs_copy_fail(copy, in_copy);
	return in_copy;
}

/*
 * zr_copy_drop
 *		UNLINK the copy "copy": its parts in order, until RS_COPY_DROP_GAP
 *		parts in a row do not exist, so that parts past a few lost ones
 *		(evicted, deleted) are dropped too.  One key per command, as a
 *		cluster routes them.
 */
void
zr_copy_drop(RsConnection *conn, const char *copy)
{
	int			missing = 0;

	for (int64 part = 0; missing < RS_COPY_DROP_GAP; part++)
	{
		char	   *key = zr_copy_key(copy, part);
		const char *argv[2] = {"UNLINK", key};

		if (zr_integer_command(conn, key, 2, argv) == 0)
			missing++;
		else
			missing = 0;
		pfree(key);
	}
}

/*
 * zr_copy_renew
 *		A complete copy of "members" members that a run reads again (a
 *		resume) or is about to prove (a run about to succeed): renew the
 *		expiry of each of its parts and return its size; -1 if a part holds
 *		no sorted set (it expired, was evicted or deleted, or a key of
 *		another type took its name); -2 if the parts hold "members" members
 *		in all, but in other numbers than the copy gave them.  A complete
 *		copy never changes, so
 *		any other size than "members" means that members were added to it or
 *		removed from it, or that another sorted set took its name: its ranks
 *		are no longer those that the run's partitions were cut from.  The
 *		part past the last is counted too, as growth.
 */
int64
zr_copy_renew(RsConnection *conn, const char *copy_key, int64 members, int ttl_seconds)
{
	char		ttl[16];
	int64		nkeys = zr_copy_nkeys(members);
	int64		held = 0;
	bool		laid_out = true;

	snprintf(ttl, sizeof(ttl), "%d", ttl_seconds);
	for (int64 part = 0; part <= nkeys; part++)
	{
		char	   *key = zr_copy_key(copy_key, part);
		const char *argv[5] = {"EVAL", rs_renew_script, "1", key, ttl};
		int64		want = part < nkeys - 1 ? rs_copy_key_members
			: part == nkeys - 1 ? members - part * rs_copy_key_members : 0;
		int64		n = zr_integer_command(conn, key, 5, argv);

		pfree(key);
		if (n < 0 && part < nkeys)
			return -1;
		n = Max(n, 0);
		laid_out = laid_out && n == want;
		held += n;
	}
	if (!laid_out && held == members)
		return -2;
	return held;
}
