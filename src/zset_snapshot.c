/*-------------------------------------------------------------------------
 *
 * zset_snapshot.c
 *		  A copy of a sorted set that still takes writes, made in short steps
 *		  so that Redis keeps serving its other clients.
 *
 * A run of a day whose key may still change reads a copy of the key, so
 * that ranks stay still while its workers read them.  COPY would make the
 * copy in one command, but that command runs for as long as the set is big
 * (about 0.7 s for 1,000,000 members), and Redis serves no one else
 * meanwhile.  zr_snapshot() copies the set a page at a time instead, each
 * page in one short script, in ascending (score, member) order: each script
 * finds where the previous page ended by its last (score, member) pair (not
 * by its rank, which shifts as scores change), and copies the next page.
 *
 * What the copy holds: every member that the key held when the copy began
 * and still holds when it ends, each with a score at least as new as that
 * member's score when the copy began.  A member whose score only grows
 * moves further ahead of the copy's position, never behind it, so it is
 * copied (possibly twice; the later copy wins).  Members added during the
 * copy may or may not be in it (the next run reads them).  A key that is
 * deleted, or that ends with fewer members than it had when the copy began,
 * is an error: the copy would then miss members that the key had.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "redis_cluster.h"
#include "redis_sync.h"

/* Members copied by one script: it runs well under a millisecond. */
#define RS_SNAPSHOT_PAGE	"1000"

/*
 * KEYS[1] source, KEYS[2] copy; ARGV[1] score and ARGV[2] member of the last
 * pair copied ('' for the first page), ARGV[3] page size, ARGV[4] the copy's
 * expiry in seconds.  Returns {copied, ZCARD of the source, last score, last
 * member}, {0, ZCARD} at the end, or {-1} if the source no longer exists.
 *
 * The position after (s, m) is found with two ZCOUNTs (the members of score
 * below s, and of score s) and a binary search by member among the members
 * of score s, which Redis orders by their bytes: O(log^2 N) in all, however
 * far the copy has gone.  The page and its expiry are written in the same
 * script, so the copy never exists without an expiry.
 */
static const char rs_snapshot_script[] =
"local src, dst = KEYS[1], KEYS[2]\n"
"local n, ttl = tonumber(ARGV[3]), ARGV[4]\n"
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
"if #page == 0 then return {0, card} end\n"
"local args = {}\n"
"for i = 1, #page, 2 do args[#args + 1] = page[i + 1] args[#args + 1] = page[i] end\n"
"redis.call('ZADD', dst, unpack(args))\n"
"redis.call('EXPIRE', dst, ttl)\n"
"return {#page / 2, card, page[#page], page[#page - 1]}\n";

/* What one step of the copy returned. */
typedef struct RsSnapshotStep
{
	int64		copied;			/* -1: the source is gone */
	int64		card;			/* ZCARD of the source */
	char	   *score;			/* the last pair copied, palloc'd */
	char	   *member;
	size_t		member_len;
} RsSnapshotStep;

/*
 * rs_snapshot_step
 *		Copy the page after (score, member) (the first page when score is
 *		NULL) and return what the script said.  The reply is freed on every
 *		path.
 */
static void
rs_snapshot_step(RsConnection *conn, const char *source, const char *snapshot,
				 const char *score, const char *member, size_t member_len,
				 const char *ttl, RsSnapshotStep *step)
{
	const char *argv[9];
	size_t		lens[9];
	redisReply *reply;
	bool		ok;

	argv[0] = "EVAL";
	argv[1] = rs_snapshot_script;
	argv[2] = "2";
	argv[3] = source;
	argv[4] = snapshot;
	argv[5] = score ? score : "";
	argv[6] = member ? member : "";
	argv[7] = RS_SNAPSHOT_PAGE;
	argv[8] = ttl;
	for (int i = 0; i < 9; i++)
		lens[i] = strlen(argv[i]);
	lens[6] = member ? member_len : 0;

	reply = rs_command(conn, source, 9, argv, lens);
	ok = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
		reply->element[0]->type == REDIS_REPLY_INTEGER;
	if (ok)
	{
		step->copied = reply->element[0]->integer;
		if (step->copied > 0)
			ok = reply->elements == 4 &&
				reply->element[1]->type == REDIS_REPLY_INTEGER &&
				reply->element[2]->type == REDIS_REPLY_STRING &&
				reply->element[3]->type == REDIS_REPLY_STRING;
		else if (step->copied == 0)
			ok = reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_INTEGER;
		else
			ok = step->copied == -1;
	}
	if (!ok)
	{
		freeReplyObject(reply);
		zr_protocol_error(conn, "EVAL", source);
	}
	step->card = step->copied >= 0 ? reply->element[1]->integer : 0;
	step->score = NULL;
	step->member = NULL;
	step->member_len = 0;
	if (step->copied > 0)
	{
		step->score = pnstrdup(reply->element[2]->str, reply->element[2]->len);
		step->member = palloc(reply->element[3]->len + 1);
		memcpy(step->member, reply->element[3]->str, reply->element[3]->len);
		step->member[reply->element[3]->len] = '\0';
		step->member_len = reply->element[3]->len;
	}
	freeReplyObject(reply);
}

/*
 * zr_snapshot
 *		Replace "snapshot" with a copy of the sorted set "source", made a
 *		page at a time (see the file header for what the copy holds), with
 *		an expiry of ttl_seconds.  Returns the number of members in the copy.
 *		Raises an error if the source vanished or lost members meanwhile.
 */
int64
zr_snapshot(RsConnection *conn, const char *source, const char *snapshot, int ttl_seconds)
{
	const char *unlink_argv[2] = {"UNLINK", snapshot};
	char		ttl[16];
	RsSnapshotStep step;
	char	   *score = NULL;
	char	   *member = NULL;
	size_t		member_len = 0;
	int64		card_at_start = -1;
	int64		copied;

	snprintf(ttl, sizeof(ttl), "%d", ttl_seconds);
	/* ZCARD first, so that a key of another type is reported by its own name. */
	(void) zr_card(conn, source);
	zr_send_simple(conn, 2, unlink_argv);
	(void) zr_receive_integer(conn, "UNLINK", snapshot, NULL);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		rs_snapshot_step(conn, source, snapshot, score, member, member_len, ttl, &step);
		if (step.copied < 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("Redis key \"%s\" was deleted while it was being copied", source),
					 errdetail("The copy \"%s\" would miss members that the key had.", snapshot),
					 errhint("Run the sync again once the key is back.")));
		if (card_at_start < 0)
			card_at_start = step.card;
		if (step.copied == 0)
			break;
		if (score)
			pfree(score);
		if (member)
			pfree(member);
		score = step.score;
		member = step.member;
		member_len = step.member_len;
	}

	/* readers on replicas (read_from) must find the whole copy there */
	rs_cluster_wait_replicas(conn, snapshot);
	copied = zr_card(conn, snapshot);
	if (copied < card_at_start)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Redis key \"%s\" lost members while it was being copied", source),
				 errdetail("The key held " INT64_FORMAT " members when the copy began, and the copy \"%s\" holds " INT64_FORMAT ".",
						   card_at_start, snapshot, copied),
				 errhint("Members were removed, or the key was replaced, during the run; run the sync again.")));
	return copied;
}
