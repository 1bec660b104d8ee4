/*-------------------------------------------------------------------------
 *
 * zset_writer.c
 *		  Writing sorted sets: ZADD, ZREM, UNLINK, and the Lua scripts that
 *		  rename a member and delete one for RETURNING.  The commands are
 *		  built and their replies checked here, so that the foreign table's
 *		  writes (fdw_modify.c) never parse a reply.
 *
 * Sending and receiving are separate where a caller pipelines commands or
 * sends two before reading either.  Every receive frees the hiredis reply
 * on every path, and copies what it returns into palloc'd memory of the
 * caller's current context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <hiredis/hiredis.h>

#include "redis_conn.h"
#include "zset.h"

/*
 * Rename a member, possibly into another key, atomically.
 * KEYS: old key, new key.  ARGV: old member, new member, new score.
 * Returns {0} if the old member is gone, {-1} if the new member already
 * exists, else {1, rank of the new member}.
 */
static const char zr_rename_script[] =
"local old = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
"if not old then return {0} end\n"
"if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return {-1} end\n"
"redis.call('ZREM', KEYS[1], ARGV[1])\n"
"redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])\n"
"return {1, redis.call('ZRANK', KEYS[2], ARGV[2])}\n";

/*
 * Delete a member and return what it was, for DELETE ... RETURNING.
 * KEYS: key.  ARGV: member.  Returns nil if the member is gone, else
 * {score, rank}.
 */
static const char zr_delete_script[] =
"local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
"if not s then return nil end\n"
"local r = redis.call('ZRANK', KEYS[1], ARGV[1])\n"
"redis.call('ZREM', KEYS[1], ARGV[1])\n"
"return {s, r}\n";

static void zr_send_script(RsConnection *conn, const char *script, int nkeys, int nargs,
						   const char **args, const size_t *lens);

/*
 * zr_send_zadd
 *		Queue ZADD key <flag> score member (flag: NX or XX).
 */
void
zr_send_zadd(RsConnection *conn, const char *key, const char *flag, const char *score,
			 const char *member, int len)
{
	const char *argv[5] = {"ZADD", key, flag, score, member};
	size_t		lens[5] = {4, strlen(key), strlen(flag), strlen(score), (size_t) len};

	rs_send(conn, 5, argv, lens);
}

/*
 * zr_receive_added
 *		Receive the replies of n ZADD commands of one member each: added[i]
 *		says whether the i-th added its member (false: it existed).  Every
 *		reply is read before an error is raised, so that the connection
 *		stays usable; then the first error reply raises its error, naming
 *		keys[i].  A reply that is not 0 or 1 is a protocol error.
 */
void
zr_receive_added(RsConnection *conn, int n, const char *const *keys, bool *added)
{
	redisReply *volatile failed = NULL;
	volatile int failed_i = -1;

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			redisReply *reply = rs_receive(conn);

			added[i] = false;
			if (reply->type == REDIS_REPLY_ERROR)
			{
				if (failed == NULL)
				{
					failed = reply;
					failed_i = i;
				}
				else
					freeReplyObject(reply);
				continue;
			}
			/* ZADD of one member: 1 if added, 0 if it exists. */
			if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0 || reply->integer > 1)
			{
				freeReplyObject(reply);
				zr_protocol_error(conn, "ZADD", keys[i]);
			}
			added[i] = (reply->integer == 1);
			freeReplyObject(reply);
		}
	}
	PG_CATCH();
	{
		if (failed != NULL)
			freeReplyObject(failed);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (failed != NULL)
		rs_check_reply(conn, failed, "ZADD", keys[failed_i]);
}

/*
 * zr_send_rem
 *		Queue ZREM key member.
 */
void
zr_send_rem(RsConnection *conn, const char *key, const char *member, int len)
{
	const char *argv[3] = {"ZREM", key, member};
	size_t		lens[3] = {4, strlen(key), (size_t) len};

	rs_send(conn, 3, argv, lens);
}

/*
 * zr_send_script
 *		Queue EVAL of a Lua script with nkeys keys, the first of the nargs
 *		arguments (at most 5 in all).
 */
static void
zr_send_script(RsConnection *conn, const char *script, int nkeys, int nargs,
			   const char **args, const size_t *lens)
{
	const char *argv[8];
	size_t		argvlen[8];
	char		nkeys_text[2] = {'0' + nkeys, '\0'};
	int			i;

	Assert(nargs <= 5 && nkeys <= nargs);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = nkeys_text;
	argvlen[0] = 4;
	argvlen[1] = strlen(script);
	argvlen[2] = 1;
	for (i = 0; i < nargs; i++)
	{
		argv[3 + i] = args[i];
		argvlen[3 + i] = lens[i];
	}
	rs_send(conn, 3 + nargs, argv, argvlen);
}

/*
 * zr_send_rename
 *		Queue the script that moves old_member of old_key to new_member of
 *		new_key with the given score, atomically.
 */
void
zr_send_rename(RsConnection *conn, const char *old_key, const char *new_key,
			   const char *old_member, int old_len, const char *new_member, int new_len,
			   const char *score)
{
	const char *args[5] = {old_key, new_key, old_member, new_member, score};
	size_t		lens[5] = {strlen(old_key), strlen(new_key), (size_t) old_len,
	(size_t) new_len, strlen(score)};

	zr_send_script(conn, zr_rename_script, 2, 5, args, lens);
}

/*
 * zr_receive_rename
 *		Receive the reply of zr_send_rename: 1 if the member was renamed
 *		(*rank is then its new rank), 0 if the old member is gone, -1 if the
 *		new member already exists (*rank is -1 for both).  "key" (the new
 *		key) names the key in messages.
 */
int
zr_receive_rename(RsConnection *conn, const char *key, int64 *rank)
{
	redisReply *reply = rs_receive(conn);
	int			status;

	rs_check_reply(conn, reply, "EVAL", key);
	/* {0}, {-1}, or {1, rank}: see zr_rename_script */
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
		reply->element[0]->type != REDIS_REPLY_INTEGER ||
		reply->element[0]->integer < -1 || reply->element[0]->integer > 1 ||
		reply->elements != (reply->element[0]->integer == 1 ? 2 : 1) ||
		(reply->elements == 2 && (reply->element[1]->type != REDIS_REPLY_INTEGER ||
								  reply->element[1]->integer < 0)))
	{
		freeReplyObject(reply);
		zr_protocol_error(conn, "the rename of a member", key);
	}
	status = (int) reply->element[0]->integer;
	*rank = status == 1 ? reply->element[1]->integer : -1;
	freeReplyObject(reply);
	return status;
}

/*
 * zr_send_delete
 *		Queue the script that deletes a member and returns its score and
 *		rank (for DELETE ... RETURNING).
 */
void
zr_send_delete(RsConnection *conn, const char *key, const char *member, int len)
{
	const char *args[2] = {key, member};
	size_t		lens[2] = {strlen(key), (size_t) len};

	zr_send_script(conn, zr_delete_script, 1, 2, args, lens);
}

/*
 * zr_receive_delete
 *		Receive the reply of zr_send_delete: false if the member was already
 *		gone; else true, with the member's score text and rank before the
 *		delete.
 */
bool
zr_receive_delete(RsConnection *conn, const char *key, char **score, int64 *rank)
{
	redisReply *reply = rs_receive(conn);

	rs_check_reply(conn, reply, "EVAL", key);
	if (reply->type == REDIS_REPLY_NIL)
	{
		freeReplyObject(reply);
		return false;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		reply->element[0]->type != REDIS_REPLY_STRING ||
		reply->element[1]->type != REDIS_REPLY_INTEGER || reply->element[1]->integer < 0)
	{
		freeReplyObject(reply);
		zr_protocol_error(conn, "the delete of a member", key);
	}
	*score = pnstrdup(reply->element[0]->str, reply->element[0]->len);
	*rank = reply->element[1]->integer;
	freeReplyObject(reply);
	return true;
}

/*
 * zr_unlink
 *		UNLINK key (freed in the background by Redis).  An error reply
 *		raises its error; any other reply is accepted.
 */
void
zr_unlink(RsConnection *conn, const char *key)
{
	const char *argv[2] = {"UNLINK", key};

	freeReplyObject(rs_command(conn, key, 2, argv, NULL));
}
