/*-------------------------------------------------------------------------
 *
 * redis_sentinel.c
 *		  Redis Sentinel: find the current primary of a standalone server
 *		  (and a replica, for read_from) by asking its sentinels, and check
 *		  that each has the role it should.
 *
 * A server with the options sentinels 'h:p,h:p' and sentinel_master 'name'
 * has no fixed address: each new connection asks the sentinels, in the
 * order given, "SENTINEL get-master-addr-by-name <name>" until one names a
 * primary, connects to that address as to any standalone server
 * (rs_open_node: connect_timeout, AUTH, SELECT, on the latch), and sends
 * ROLE.  A node that does not say "master" was named by a sentinel that
 * has not yet seen the end of a failover (or a failover has just begun):
 * the sentinels are asked again after a pause that doubles, a bounded
 * number of times.  A named primary that cannot be reached (it died, and
 * the sentinels have not yet agreed that it is down) is asked about again
 * in the same way.
 *
 * Following a failover needs nothing more: a lost connection, a timeout
 * or a READONLY error reply (rs_check_reply) discards the connection, and
 * the next one asks the sentinels again.  The sync workers and the
 * coordinator retry such errors on a new connection.
 *
 * With read_from 'replica' or 'replica_preferred', the routing layer
 * (redis_cluster.c, rc_open_sentinel) also opens a replica for reads:
 * rs_sentinel_open_replica asks the sentinels for the primary's replicas
 * ("SENTINEL replicas <name>") and takes the first healthy one that
 * replies to ROLE with "slave".
 *
 * Each sentinel is asked over a connection of its own, opened with
 * rs_open_node too (so with connect_timeout, command_timeout, the TLS
 * options, and the user mapping's sentinel_user and sentinel_password, but
 * no SELECT: a sentinel has no databases), and closed at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#include "options.h"
#include "redis_cluster.h"
#include "redis_conn.h"
#include "redis_sentinel.h"

/* Rounds of asking the sentinels and connecting to the primary named. */
#define RSN_MAX_ATTEMPTS	6
/* Pause before the second round, doubled each time up to RSN_MAX_DELAY_MS. */
#define RSN_FIRST_DELAY_MS	100
#define RSN_MAX_DELAY_MS	1000

/* A sentinel: an entry of the option "sentinels". */
typedef RsHostPort RsnSentinel;

/* What one round of asking the sentinels found. */
typedef struct RsnAnswer
{
	char	   *host;			/* the primary; NULL if no sentinel named one */
	int			port;
	char	   *addr;			/* "host:port" of the primary */
	const char *sentinel;		/* the sentinel that named it */
	int			nunknown;		/* sentinels that do not know the name */
	int			nauth;			/* sentinels that refused our credentials */
	StringInfoData reasons;		/* why the others named none, as sentences */
} RsnAnswer;

/* For the error context of the primary's connection. */
typedef struct RsnContext
{
	const RsServerOptions *opts;
	RsnAnswer  *answer;
} RsnContext;

static void rsn_open(RsConnection *conn, const RsServerOptions *opts);
static void rsn_ask_sentinels(const RsServerOptions *opts, List *sentinels,
							  RsnAnswer *answer);
static bool rsn_ask_sentinel(const RsServerOptions *opts, RsnSentinel *s,
							 RsnAnswer *answer);
static redisReply *rsn_sentinel_command(const RsServerOptions *opts, RsnSentinel *s,
										int argc, const char **argv,
										StringInfo reasons, bool *auth_failed);
static bool rsn_open_replica(RsConnection *conn, const RsServerOptions *opts,
							 StringInfo reasons);
static bool rsn_try_replica(RsConnection *conn, const RsServerOptions *opts,
							RsHostPort *r, StringInfo reasons);
static bool rsn_list_replicas(const RsServerOptions *opts, RsnSentinel *s,
							  List **candidates, StringInfo reasons);
static char *rsn_role(RsConnection *conn);
static void rsn_pause(int attempt);
static void rsn_error_context(void *arg);

/*
 * rs_sentinel_open
 *		Open "conn" to the current primary of a server with the option
 *		sentinels: ask the sentinels for it, connect, and check with ROLE
 *		that it is a primary; ask again, after a pause, while the node named
 *		is not a primary or cannot be reached, at most RSN_MAX_ATTEMPTS
 *		times.  Raises a connection error (which the sync workers retry) if
 *		no primary was found, naming the sentinels and what each said.  On
 *		an error the caller discards "conn".
 */
void
rs_sentinel_open(RsConnection *conn, const RsServerOptions *opts)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "redis_sync sentinel",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	/* what the rounds allocate goes with cxt, on success or error */
	PG_TRY();
	{
		rsn_open(conn, opts);
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
}

/*
 * rsn_open
 *		The rounds of rs_sentinel_open, in its memory context.
 */
static void
rsn_open(RsConnection *conn, const RsServerOptions *opts)
{
	List	   *volatile sentinels = rs_host_port_list(opts->sentinels);
	MemoryContext cxt = CurrentMemoryContext;
	volatile int attempt;

	for (attempt = 1;; attempt++)
	{
		RsnAnswer	answer;
		RsServerOptions nopts = *opts;
		RsnContext	ctxarg;
		ErrorContextCallback errcallback;
		char	   *volatile role = NULL;
		char	   *volatile failure = NULL;

		rsn_ask_sentinels(opts, sentinels, &answer);
		nopts.host = answer.host;
		nopts.port = answer.port;
		ctxarg.opts = opts;
		ctxarg.answer = &answer;

		PG_TRY();
		{
			errcallback.callback = rsn_error_context;
			errcallback.arg = &ctxarg;
			errcallback.previous = error_context_stack;
			error_context_stack = &errcallback;
			rs_open_node(conn, &nopts);
			role = rsn_role(conn);
			error_context_stack = errcallback.previous;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			rs_discard_connection(conn);
			if (attempt >= RSN_MAX_ATTEMPTS)
				PG_RE_THROW();
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (!rs_is_transient_error(edata->sqlerrcode))
				PG_RE_THROW();
			FlushErrorState();
			failure = psprintf("%s%s%s", edata->message,
							   edata->detail ? ": " : "",
							   edata->detail ? edata->detail : "");
			FreeErrorData(edata);
		}
		PG_END_TRY();

		if (role != NULL && strcmp(role, "master") == 0)
		{
			ereport(DEBUG1,
					(errmsg_internal("redis_sync sentinel: primary \"%s\" of server \"%s\" is %s, named by sentinel %s",
									 opts->sentinel_master, opts->servername,
									 answer.addr, answer.sentinel)));
			return;
		}
		if (role != NULL)
		{
			rs_discard_connection(conn);
			if (attempt >= RSN_MAX_ATTEMPTS)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("the node that the sentinels of Redis server \"%s\" name as primary \"%s\" is not a primary",
								opts->servername, opts->sentinel_master),
						 errdetail("Sentinel %s named node %s, which replied to ROLE with \"%s\", after %d attempts.",
								   answer.sentinel, answer.addr, role, attempt),
						 errhint("A failover may be in progress; retry once the sentinels have promoted a replica.")));
			failure = psprintf("node %s is not a primary: it replied to ROLE with \"%s\"",
							   answer.addr, role);
		}
		ereport(LOG,
				(errmsg("redis_sync sentinel: server \"%s\": sentinel %s named %s as primary \"%s\", but %s; asking the sentinels again (attempt %d of %d)",
						opts->servername, answer.sentinel, answer.addr,
						opts->sentinel_master, failure, attempt + 1,
						RSN_MAX_ATTEMPTS)));
		rsn_pause(attempt);
	}
}

/*
 * rsn_ask_sentinels
 *		Ask the sentinels in order for the primary's address, until one
 *		names it.  Raises an error naming every sentinel and what it said if
 *		none does: a connection error if some could not be asked, an
 *		authentication error if all refused the credentials, and an
 *		undefined-object error if all of them answered that they monitor
 *		no primary of that name.
 */
static void
rsn_ask_sentinels(const RsServerOptions *opts, List *sentinels, RsnAnswer *answer)
{
	ListCell   *lc;
	int			errcode_used;

	memset(answer, 0, sizeof(RsnAnswer));
	initStringInfo(&answer->reasons);
	foreach(lc, sentinels)
	{
		if (rsn_ask_sentinel(opts, (RsnSentinel *) lfirst(lc), answer))
			return;
	}

	if (answer->nunknown == list_length(sentinels))
		errcode_used = ERRCODE_UNDEFINED_OBJECT;
	else if (answer->nauth == list_length(sentinels))
		errcode_used = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	else
		errcode_used = ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
	ereport(ERROR,
			(errcode(errcode_used),
			 errmsg("could not find primary \"%s\" of Redis server \"%s\" through its sentinels",
					opts->sentinel_master, opts->servername),
			 errdetail("%s", answer->reasons.data),
			 errcode_used == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
			 ? errhint("Set the options sentinel_user and sentinel_password of the user mapping to what the sentinels require.")
			 : errcode_used == ERRCODE_UNDEFINED_OBJECT
			 ? errhint("Set the server option sentinel_master to the name given in the sentinels' \"sentinel monitor\" setting.")
			 : errhint("Check the server option sentinels, and that the sentinels are running.")));
}

/*
 * rsn_ask_sentinel
 *		Ask one sentinel for the primary's address.  Returns true, with the
 *		address in *answer, if it named one; false, with the reason added
 *		to answer->reasons, if it could not be reached, refused us, or
 *		named none.
 */
static bool
rsn_ask_sentinel(const RsServerOptions *opts, RsnSentinel *s, RsnAnswer *answer)
{
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", opts->sentinel_master};
	bool		auth_failed = false;
	redisReply *reply;
	bool		named = false;

	reply = rsn_sentinel_command(opts, s, 3, argv, &answer->reasons, &auth_failed);
	if (reply == NULL)
	{
		if (auth_failed)
			answer->nauth++;
		return false;
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
		reply->element[0]->type == REDIS_REPLY_STRING &&
		reply->element[1]->type == REDIS_REPLY_STRING &&
		atoi(reply->element[1]->str) > 0 && atoi(reply->element[1]->str) <= 65535)
	{
		answer->host = pstrdup(reply->element[0]->str);
		answer->port = atoi(reply->element[1]->str);
		answer->addr = psprintf("%s:%d", answer->host, answer->port);
		answer->sentinel = s->addr;
		named = true;
	}
	else if (reply->type == REDIS_REPLY_NIL)
	{
		answer->nunknown++;
		appendStringInfo(&answer->reasons, "%sSentinel %s monitors no primary named \"%s\".",
						 answer->reasons.len > 0 ? " " : "",
						 s->addr, opts->sentinel_master);
	}
	else
		appendStringInfo(&answer->reasons, "%sSentinel %s gave a reply that is not an address.",
						 answer->reasons.len > 0 ? " " : "", s->addr);
	freeReplyObject(reply);
	return named;
}

/*
 * rsn_sentinel_command
 *		Send one command to one sentinel, over a connection of its own, and
 *		return its reply (the caller frees it).  Returns NULL, with the
 *		reason added to "reasons" as a sentence, if the sentinel could not
 *		be reached, refused us (*auth_failed is then set for an
 *		authentication failure) or replied with an error.  A cancel, and
 *		errors that are not this sentinel's alone, are raised.
 */
static redisReply *
rsn_sentinel_command(const RsServerOptions *opts, RsnSentinel *s, int argc,
					 const char **argv, StringInfo reasons, bool *auth_failed)
{
	MemoryContext cxt = CurrentMemoryContext;
	RsConnection tmp;
	RsServerOptions sopts = *opts;
	redisReply *volatile reply = NULL;

	sopts.host = s->host;
	sopts.port = s->port;
	sopts.db = -1;
	sopts.user = opts->sentinel_user;
	sopts.password = opts->sentinel_password;
	sopts.sentinels = NULL;
	memset(&tmp, 0, sizeof(tmp));
	PG_TRY();
	{
		rs_open_node(&tmp, &sopts);
		reply = rs_command(&tmp, NULL, argc, argv, NULL);
		rs_discard_connection(&tmp);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *detail;
		size_t		addrlen = strlen(tmp.addr);

		rs_discard_connection(&tmp);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!rs_is_transient_error(edata->sqlerrcode) &&
			edata->sqlerrcode != ERRCODE_FDW_ERROR &&
			edata->sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION &&
			edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
			PG_RE_THROW();
		FlushErrorState();
		if (edata->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
			*auth_failed = true;

		/*
		 * A connection error says enough in its detail, which may start
		 * with the address we name anyway; others need their message too.
		 */
		detail = edata->detail;
		if (detail != NULL && addrlen > 0 && strncmp(detail, tmp.addr, addrlen) == 0 &&
			strncmp(detail + addrlen, ": ", 2) == 0)
			detail += addrlen + 2;
		if (reasons->len > 0)
			appendStringInfoChar(reasons, ' ');
		appendStringInfo(reasons, "Sentinel %s: ", s->addr);
		if (detail == NULL || !rs_is_transient_error(edata->sqlerrcode))
			appendStringInfo(reasons, "%s%s", edata->message,
							 detail ? ": " : "");
		if (detail != NULL)
			appendStringInfoString(reasons, detail);
		if (reasons->data[reasons->len - 1] != '.')
			appendStringInfoChar(reasons, '.');
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return reply;
}

/*
 * rs_sentinel_open_replica
 *		Open "conn" to a healthy replica of the server's primary, for reads
 *		(read_from 'replica' or 'replica_preferred'): the first sentinel
 *		that answers "SENTINEL replicas <name>" lists the candidates, those
 *		whose flags hold none of s_down, o_down and disconnected and whose
 *		master-link-status is ok; the first of them that can be reached and
 *		replies to ROLE with "slave" is taken.  Returns false, with "conn"
 *		closed and the reasons as sentences in *why (palloc'd), if there is
 *		none.  A cancel, and errors that are not one node's alone, are
 *		raised; the caller then discards "conn".
 */
bool
rs_sentinel_open_replica(RsConnection *conn, const RsServerOptions *opts, char **why)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(caller,
											  "redis_sync sentinel replicas",
											  ALLOCSET_SMALL_SIZES);
	StringInfoData reasons;
	volatile bool found = false;

	PG_TRY();
	{
		MemoryContextSwitchTo(cxt);
		initStringInfo(&reasons);
		found = rsn_open_replica(conn, opts, &reasons);
		MemoryContextSwitchTo(caller);
		if (!found)
			*why = pstrdup(reasons.data);
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(caller);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	return found;
}

/*
 * rsn_open_replica
 *		The work of rs_sentinel_open_replica, in its memory context.
 */
static bool
rsn_open_replica(RsConnection *conn, const RsServerOptions *opts, StringInfo reasons)
{
	List	   *candidates = NIL;
	ListCell   *lc;
	bool		listed = false;

	foreach(lc, rs_host_port_list(opts->sentinels))
	{
		if (rsn_list_replicas(opts, (RsnSentinel *) lfirst(lc), &candidates, reasons))
		{
			listed = true;
			break;
		}
	}
	if (listed && candidates == NIL)
		appendStringInfo(reasons, "%sNo replica of primary \"%s\" is healthy (up, connected, with its link to the primary up).",
						 reasons->len > 0 ? " " : "", opts->sentinel_master);

	foreach(lc, candidates)
	{
		if (rsn_try_replica(conn, opts, (RsHostPort *) lfirst(lc), reasons))
			return true;
	}
	return false;
}

/*
 * rsn_try_replica
 *		Open "conn" to replica "r" and check that it replies to ROLE with
 *		"slave".  Returns false, with "conn" closed and the reason added to
 *		"reasons", if it could not be reached or has another role.
 */
static bool
rsn_try_replica(RsConnection *conn, const RsServerOptions *opts, RsHostPort *r,
				StringInfo reasons)
{
	MemoryContext cxt = CurrentMemoryContext;
	RsServerOptions ropts = *opts;
	char	   *volatile role = NULL;

	ropts.host = r->host;
	ropts.port = r->port;
	PG_TRY();
	{
		rs_open_node(conn, &ropts);
		role = rsn_role(conn);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		rs_discard_connection(conn);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!rs_is_transient_error(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		appendStringInfo(reasons, "%sReplica %s: %s%s%s.",
						 reasons->len > 0 ? " " : "", r->addr, edata->message,
						 edata->detail ? ": " : "",
						 edata->detail ? edata->detail : "");
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (role != NULL && strcmp(role, "slave") == 0)
	{
		ereport(DEBUG1,
				(errmsg_internal("redis_sync sentinel: replica of \"%s\" for the reads of server \"%s\" is %s",
								 opts->sentinel_master, opts->servername, r->addr)));
		return true;
	}
	if (role != NULL)
	{
		rs_discard_connection(conn);
		appendStringInfo(reasons, "%sReplica %s replied to ROLE with \"%s\".",
						 reasons->len > 0 ? " " : "", r->addr, role);
	}
	return false;
}

/*
 * rsn_list_replicas
 *		Ask one sentinel for the replicas of the primary, and append the
 *		healthy ones (see rs_sentinel_open_replica) to *candidates as
 *		RsHostPort.  Returns false, with the reason added to "reasons", if
 *		the sentinel gave no list.
 */
static bool
rsn_list_replicas(const RsServerOptions *opts, RsnSentinel *s, List **candidates,
				  StringInfo reasons)
{
	const char *argv[3] = {"SENTINEL", "replicas", opts->sentinel_master};
	bool		auth_failed = false;
	redisReply *reply;
	size_t		i;

	reply = rsn_sentinel_command(opts, s, 3, argv, reasons, &auth_failed);
	if (reply == NULL)
		return false;
	if (reply->type != REDIS_REPLY_ARRAY)
	{
		freeReplyObject(reply);
		appendStringInfo(reasons, "%sSentinel %s gave a reply to SENTINEL replicas that is not a list.",
						 reasons->len > 0 ? " " : "", s->addr);
		return false;
	}
	for (i = 0; i < reply->elements; i++)
	{
		redisReply *r = reply->element[i];
		const char *ip = NULL;
		const char *port = NULL;
		const char *flags = NULL;
		const char *link = NULL;
		size_t		j;

		if (r->type != REDIS_REPLY_ARRAY)
			continue;
		/* field, value, field, value, ... */
		for (j = 0; j + 1 < r->elements; j += 2)
		{
			redisReply *f = r->element[j];
			redisReply *v = r->element[j + 1];

			if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(f->str, "ip") == 0)
				ip = v->str;
			else if (strcmp(f->str, "port") == 0)
				port = v->str;
			else if (strcmp(f->str, "flags") == 0)
				flags = v->str;
			else if (strcmp(f->str, "master-link-status") == 0)
				link = v->str;
		}
		if (ip != NULL && port != NULL && flags != NULL && link != NULL &&
			strstr(flags, "s_down") == NULL && strstr(flags, "o_down") == NULL &&
			strstr(flags, "disconnected") == NULL && strcmp(link, "ok") == 0 &&
			atoi(port) > 0 && atoi(port) <= 65535)
		{
			RsHostPort *hp = palloc(sizeof(RsHostPort));

			hp->host = pstrdup(ip);
			hp->port = atoi(port);
			hp->addr = psprintf("%s:%d", hp->host, hp->port);
			*candidates = lappend(*candidates, hp);
		}
	}
	freeReplyObject(reply);
	return true;
}

/*
 * rsn_role
 *		The role a node reports (the first element of its ROLE reply:
 *		"master", "slave" or "sentinel"), palloc'd.
 */
static char *
rsn_role(RsConnection *conn)
{
	const char *argv[1] = {"ROLE"};
	redisReply *reply = rs_command(conn, NULL, 1, argv, NULL);
	char	   *role;

	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
		(reply->element[0]->type == REDIS_REPLY_STRING ||
		 reply->element[0]->type == REDIS_REPLY_STATUS))
		role = pnstrdup(reply->element[0]->str, reply->element[0]->len);
	else
		role = pstrdup("(not a role)");
	freeReplyObject(reply);
	return role;
}

/*
 * rsn_pause
 *		Wait before the next round: RSN_FIRST_DELAY_MS after the first,
 *		doubling up to RSN_MAX_DELAY_MS, on the latch (a cancel ends it).
 */
static void
rsn_pause(int attempt)
{
	long		delay = RSN_FIRST_DELAY_MS;

	while (--attempt > 0 && delay < RSN_MAX_DELAY_MS)
		delay *= 2;
	delay = Min(delay, RSN_MAX_DELAY_MS);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 delay, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* Error context of the connection to the primary a sentinel named. */
static void
rsn_error_context(void *arg)
{
	RsnContext *c = (RsnContext *) arg;

	errcontext("primary \"%s\" at %s, named by sentinel %s",
			   c->opts->sentinel_master, c->answer->addr, c->answer->sentinel);
}
