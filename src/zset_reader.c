/*-------------------------------------------------------------------------
 *
 * zset_reader.c
 *		  Reading sorted sets in bounded pages: rank windows with ZRANGE,
 *		  score lookups with ZMSCORE, ranks with ZRANK, and counts.
 *
 * The foreign scan and the sync worker both read through these functions.
 * Sending and receiving are separate so that callers can keep the next
 * page in flight while they process the current one.  Every receive copies
 * the reply into palloc'd memory of the caller's current context and frees
 * the hiredis reply on every path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <hiredis/hiredis.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "redis_conn.h"
#include "zset.h"

static int64 zr_range_width(RsConnection *conn, int64 start);

/* Members looked up by one ZMSCORE: a short command, as Redis wants them. */
#define RS_MSCORE_BATCH 500

/*
 * zr_send_range
 *		Queue ZRANGE key start stop WITHSCORES (ranks, inclusive).
 */
void
zr_send_range(RsConnection *conn, const char *key, int64 start, int64 stop)
{
	char		startbuf[32];
	char		stopbuf[32];
	const char *argv[5];

	snprintf(startbuf, sizeof(startbuf), INT64_FORMAT, start);
	snprintf(stopbuf, sizeof(stopbuf), INT64_FORMAT, stop);
	argv[0] = "ZRANGE";
	argv[1] = key;
	argv[2] = startbuf;
	argv[3] = stopbuf;
	argv[4] = "WITHSCORES";
	rs_send(conn, 5, argv, NULL);

	/* Remember the window, so that its reply can be checked against it. */
	conn->ranges[conn->nsent % RS_RANGES_TRACKED].seq = conn->nsent;
	conn->ranges[conn->nsent % RS_RANGES_TRACKED].start = start;
	conn->ranges[conn->nsent % RS_RANGES_TRACKED].stop = stop;
}

/*
 * zr_range_width
 *		The number of ranks of the ZRANGE window whose reply was just
 *		received, or -1 if it is no longer known (more windows were in
 *		flight than are tracked).
 */
static int64
zr_range_width(RsConnection *conn, int64 start)
{
	RsRangeRequest *req = &conn->ranges[conn->nreceived % RS_RANGES_TRACKED];

	if (req->seq != conn->nreceived || req->start != start)
		return -1;
	req->seq = 0;
	return req->stop - req->start + 1;
}

/*
 * zr_receive_range
 *		Receive the reply of a ZRANGE ... WITHSCORES sent for ranks starting
 *		at "start" into "page".  A reply with more members than the window
 *		has ranks, or with a member and no score, is a protocol error.
 */
void
zr_receive_range(RsConnection *conn, const char *key, int64 start, ZsetPage *page)
{
	redisReply *reply = rs_receive(conn);
	int64		width = zr_range_width(conn, start);

	rs_check_reply(conn, reply, "ZRANGE", key);
	PG_TRY();
	{
		int			n;
		int			i;

		if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0 ||
			(width >= 0 && reply->elements / 2 > (uint64) width))
			zr_protocol_error(conn, "ZRANGE", key);
		n = reply->elements / 2;
		page->n = n;
		page->first_rank = start;
		page->members = palloc(sizeof(char *) * Max(n, 1));
		page->member_lens = palloc(sizeof(int) * Max(n, 1));
		page->scores = palloc(sizeof(char *) * Max(n, 1));
		page->ranks = NULL;
		for (i = 0; i < n; i++)
		{
			redisReply *m = reply->element[2 * i];
			redisReply *s = reply->element[2 * i + 1];

			if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING)
				zr_protocol_error(conn, "ZRANGE", key);
			page->members[i] = palloc(m->len + 1);
			memcpy(page->members[i], m->str, m->len);
			page->members[i][m->len] = '\0';
			page->member_lens[i] = m->len;
			page->scores[i] = pnstrdup(s->str, s->len);
		}
	}
	PG_FINALLY();
	{
		freeReplyObject(reply);
	}
	PG_END_TRY();
}

/*
 * zr_send_mscore
 *		Queue ZMSCORE key member... for n members, as one command per
 *		RS_MSCORE_BATCH members, so that no command keeps Redis busy long;
 *		zr_receive_mscore reads the same commands' replies.
 */
void
zr_send_mscore(RsConnection *conn, const char *key, int n, char **members, int *lens)
{
	const char **argv = palloc(sizeof(char *) * (Min(n, RS_MSCORE_BATCH) + 2));
	size_t	   *argvlen = palloc(sizeof(size_t) * (Min(n, RS_MSCORE_BATCH) + 2));

	argv[0] = "ZMSCORE";
	argvlen[0] = 7;
	argv[1] = key;
	argvlen[1] = strlen(key);
	for (int first = 0; first < n || first == 0; first += RS_MSCORE_BATCH)
	{
		int			count = Min(n - first, RS_MSCORE_BATCH);

		for (int i = 0; i < count; i++)
		{
			argv[i + 2] = members[first + i];
			argvlen[i + 2] = lens[first + i];
		}
		rs_send(conn, count + 2, argv, argvlen);
	}
	pfree(argv);
	pfree(argvlen);
}

/*
 * zr_receive_mscore_batch
 *		Receive one ZMSCORE reply for "count" members into scores[0..count).
 *		The reply is freed on every path.
 */
static void
zr_receive_mscore_batch(RsConnection *conn, const char *key, int count, char **scores)
{
	redisReply *reply = rs_receive(conn);

	rs_check_reply(conn, reply, "ZMSCORE", key);
	PG_TRY();
	{
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t) count)
			zr_protocol_error(conn, "ZMSCORE", key);
		for (int i = 0; i < count; i++)
		{
			redisReply *s = reply->element[i];

			if (s->type == REDIS_REPLY_NIL)
				scores[i] = NULL;
			else if (s->type == REDIS_REPLY_STRING)
				scores[i] = pnstrdup(s->str, s->len);
			else
				zr_protocol_error(conn, "ZMSCORE", key);
		}
	}
	PG_FINALLY();
	{
		freeReplyObject(reply);
	}
	PG_END_TRY();
}

/*
 * zr_receive_mscore
 *		Receive the ZMSCORE replies that zr_send_mscore queued for n
 *		members: an array of score strings, NULL where the member is not in
 *		the set.
 */
char	  **
zr_receive_mscore(RsConnection *conn, const char *key, int n)
{
	char	  **scores = palloc(sizeof(char *) * Max(n, 1));

	for (int first = 0; first < n || first == 0; first += RS_MSCORE_BATCH)
		zr_receive_mscore_batch(conn, key, Min(n - first, RS_MSCORE_BATCH), scores + first);
	return scores;
}

/*
 * zr_send_rank
 *		Queue ZRANK key member.
 */
void
zr_send_rank(RsConnection *conn, const char *key, const char *member, int len)
{
	const char *argv[3] = {"ZRANK", key, member};
	size_t		argvlen[3] = {5, strlen(key), (size_t) len};

	rs_send(conn, 3, argv, argvlen);
}

/*
 * zr_send_simple
 *		Queue a command whose arguments are all NUL-terminated strings.
 */
void
zr_send_simple(RsConnection *conn, int argc, const char **argv)
{
	rs_send(conn, argc, argv, NULL);
}

/*
 * zr_receive_integer
 *		Receive an integer reply (ZCARD, ZCOUNT, ZRANK, EXISTS, COPY...).
 *		A nil reply sets *isnull (if isnull is NULL, nil is a protocol error).
 */
int64
zr_receive_integer(RsConnection *conn, const char *command, const char *key,
				   bool *isnull)
{
	redisReply *reply = rs_receive(conn);
	int64		result = 0;
	bool		nil = false;

	rs_check_reply(conn, reply, command, key);
	if (reply->type == REDIS_REPLY_INTEGER)
		result = reply->integer;
	else if (reply->type == REDIS_REPLY_NIL && isnull != NULL)
		nil = true;
	else
	{
		freeReplyObject(reply);
		zr_protocol_error(conn, command, key);
	}
	freeReplyObject(reply);
	if (isnull)
		*isnull = nil;
	return result;
}

/*
 * zr_integer_command
 *		Send one command whose arguments are all NUL-terminated strings and
 *		whose reply is an integer (EXPIRE, UNLINK, ZCARD...), and return it.
 *		"key" names the key in messages.
 */
int64
zr_integer_command(RsConnection *conn, const char *key, int argc, const char **argv)
{
	zr_send_simple(conn, argc, argv);
	return zr_receive_integer(conn, argv[0], key, NULL);
}

/*
 * zr_card
 *		ZCARD key: the number of members (0 for a missing key).
 */
int64
zr_card(RsConnection *conn, const char *key)
{
	const char *argv[2] = {"ZCARD", key};

	return zr_integer_command(conn, key, 2, argv);
}

/*
 * zr_scan_zsets
 *		One step of SCAN over the sorted-set keys that match "pattern",
 *		asking for about "count" keys, from "cursor" ("0" to start).  Appends
 *		the keys found to *keys, as text (a key may hold any bytes, a zero
 *		byte too), and returns the next cursor, "0" when the walk is done.
 *		SCAN may return a key more than once.
 */
char *
zr_scan_zsets(RsConnection *conn, const char *cursor, const char *pattern,
			  const char *count, List **keys)
{
	const char *argv[8] = {"SCAN", cursor, "MATCH", pattern, "COUNT", count, "TYPE", "zset"};
	redisReply *reply = rs_command(conn, NULL, 8, argv, NULL);
	char	   *next;

	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		reply->element[0]->type != REDIS_REPLY_STRING ||
		reply->element[1]->type != REDIS_REPLY_ARRAY)
	{
		freeReplyObject(reply);
		rs_discard_connection(conn);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("unexpected reply from Redis server \"%s\" to SCAN",
						conn->desc)));
	}
	next = pnstrdup(reply->element[0]->str, reply->element[0]->len);
	for (size_t i = 0; i < reply->element[1]->elements; i++)
	{
		redisReply *k = reply->element[1]->element[i];

		if (k->type == REDIS_REPLY_STRING)
			*keys = lappend(*keys, cstring_to_text_with_len(k->str, k->len));
	}
	freeReplyObject(reply);
	return next;
}

/*
 * rs_hex_bytes
 *		Hex dump of at most maxbytes bytes, with "..." if truncated.
 */
char *
rs_hex_bytes(const char *data, int len, int maxbytes)
{
	int			n = Min(len, maxbytes);
	char	   *out = palloc(n * 2 + 4);

	hex_encode(data, n, out);
	strcpy(out + 2 * n, len > n ? "..." : "");
	return out;
}

/*
 * rs_verify_member
 *		Raise an error naming the key, the rank (if known) and the bytes of a
 *		member that is not valid text in the database encoding.
 */
void
rs_verify_member(const char *key, const char *member, int len, int64 rank)
{
	if (pg_verify_mbstr(GetDatabaseEncoding(), member, len, true))
		return;
	if (rank >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("member at rank " INT64_FORMAT " of Redis key \"%s\" is not valid in encoding \"%s\"",
						rank, key, GetDatabaseEncodingName()),
				 errdetail("The member's bytes are 0x%s.", rs_hex_bytes(member, len, 64)),
				 errhint("Declare the member column as bytea to read arbitrary bytes.")));
	ereport(ERROR,
			(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
			 errmsg("member of Redis key \"%s\" is not valid in encoding \"%s\"",
					key, GetDatabaseEncodingName()),
			 errdetail("The member's bytes are 0x%s.", rs_hex_bytes(member, len, 64)),
			 errhint("Declare the member column as bytea to read arbitrary bytes.")));
}

/*
 * rs_member_label
 *		"member \"name\"" for messages, or "member 0x..." (at most 64 bytes
 *		shown) if the member is not valid text in the database encoding.
 */
char *
rs_member_label(const char *member, int len)
{
	if (pg_verify_mbstr(GetDatabaseEncoding(), member, len, true))
		return psprintf("member \"%.*s\"", len, member);
	return psprintf("member 0x%s", rs_hex_bytes(member, len, 64));
}

/*
 * rs_short_member_label
 *		"member \"name\"" with at most the member's first 64 bytes, or
 *		"member 0x..." if those are not printable text in the database
 *		encoding; for messages about members of any length.
 */
char *
rs_short_member_label(const char *member, int len)
{
	int			clip = len;
	bool		printable;

	if (len > 64)
		clip = pg_mbcliplen(member, len, 64);
	printable = pg_verify_mbstr(GetDatabaseEncoding(), member, len, true);
	for (int i = 0; printable && i < clip; i++)
		if ((unsigned char) member[i] < 0x20 || member[i] == 0x7f)
			printable = false;
	if (!printable)
		return psprintf("member 0x%s", rs_hex_bytes(member, len, 64));
	return psprintf("member \"%.*s%s\"", clip, member, clip < len ? "..." : "");
}

/*
 * rs_member_error_callback
 *		Error context naming the member (as text, or in hex if it is not
 *		valid text; with "clip", its first 64 bytes only: rs_short_member_label),
 *		its rank if known, and the key.  arg is an RsMemberContext.
 */
void
rs_member_error_callback(void *arg)
{
	RsMemberContext *mc = (RsMemberContext *) arg;
	char	   *who = mc->clip ? rs_short_member_label(mc->member, mc->len) :
		rs_member_label(mc->member, mc->len);

	if (mc->rank >= 0)
		errcontext("%s at rank " INT64_FORMAT " of Redis key \"%s\"", who, mc->rank, mc->key);
	else
		errcontext("%s of Redis key \"%s\"", who, mc->key);
}

/*
 * zr_protocol_error
 *		A reply of the wrong shape or size for its command: drop the
 *		connection (its state is unknown) and raise an error naming the
 *		command and the key.  The caller frees the reply first.
 */
void
zr_protocol_error(RsConnection *conn, const char *command, const char *key)
{
	rs_discard_connection(conn);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("unexpected reply from Redis server \"%s\" to %s of key \"%s\"",
					conn->desc, command, key)));
}
