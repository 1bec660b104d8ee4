/*-------------------------------------------------------------------------
 *
 * redis_conn.c
 *		  Connections to Redis: non-blocking hiredis I/O with latch waits,
 *		  timeouts, a per-backend cache, and Redis errors mapped to
 *		  PostgreSQL errors.
 *
 * Every wait goes through WaitLatchOrSocket() followed by
 * CHECK_FOR_INTERRUPTS(), so query cancel and pg_terminate_backend() work
 * while Redis is slow or hung; connect_timeout bounds a connection attempt
 * and command_timeout bounds the wait for each reply.
 *
 * Connections are cached per user mapping, as postgres_fdw does.  A
 * connection that still has replies in flight when a (sub)transaction
 * aborts is discarded, because the next reply read from it would belong to
 * an abandoned command.  Changes to the server or user mapping invalidate
 * the cached connection through syscache callbacks.
 *
 * Replies are malloc'd by hiredis, outside PostgreSQL's memory contexts:
 * whoever receives one frees it on every path, errors included.
 *
 * hiredis 0.14 has no limit on the size of a reply, so rs_receive watches
 * the reader while a reply arrives: the server option max_reply_bytes bounds
 * the protocol bytes of one reply (see rs_check_reply_size).
 *
 * With the server option tls 'on', rs_tls_start (redis_tls.c) runs the TLS
 * handshake on the connected socket, on the latch and within
 * connect_timeout, and hiredis then reads and writes through OpenSSL; a
 * read waits on the socket only when OpenSSL holds no decrypted bytes.
 *
 * A server with cluster 'on' gets a connection with no socket of its own:
 * rs_send, rs_receive, rs_flush and rs_discard_connection hand it to the
 * routing layer (redis_cluster.c), which opens one connection per node with
 * rs_open_node and sends each command to the node of its key's slot.
 *
 * A server with the option sentinels is found through Redis Sentinel:
 * rs_sentinel_open (redis_sentinel.c) asks the sentinels for the current
 * primary, opens it with rs_open_node and checks that it is a primary.
 * Since every new connection asks again, a failover is followed once a
 * lost connection, a timeout or a READONLY error reply (a primary turned
 * replica) has made the caller drop its connection.  With read_from
 * 'replica' or 'replica_preferred', such a server is routed by the cluster
 * layer over its primary and a replica (rc_open_sentinel).
 *
 * hiredis resolves host names with a blocking getaddrinfo(); rs_resolve_host
 * looks the name up first with getaddrinfo_a(), within connect_timeout and
 * open to cancel, and hiredis then connects to the numeric address.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <hiredis/hiredis.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "options.h"
#include "redis_conn.h"
#include "redis_cluster.h"
#include "redis_sentinel.h"

/* One cache entry per user mapping. */
typedef struct ConnCacheEntry
{
	Oid			umid;			/* hash key: user mapping OID */
	RsConnection conn;
	bool		invalidated;
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
} ConnCacheEntry;

static HTAB *ConnectionHash = NULL;

/* What failed, for rs_io_error. */
typedef enum RsIoFailure
{
	RS_IO_READ,
	RS_IO_WRITE,
	RS_IO_PARSE
} RsIoFailure;

/*
 * A host name lookup by getaddrinfo_a(), malloc'd because glibc's helper
 * thread writes into it.  A lookup abandoned by a timeout or a cancel
 * while that thread still works on it is kept on a list and freed once it
 * is done.
 */
typedef struct RsLookup
{
	struct gaicb cb;
	struct addrinfo hints;
	struct RsLookup *next;
	char		name[FLEXIBLE_ARRAY_MEMBER];
} RsLookup;

static RsLookup *AbandonedLookups = NULL;

static void rs_resolve_host(const RsServerOptions *opts, TimestampTz deadline,
							char *ip, size_t iplen);
static int	rs_wait_lookup(RsLookup *lookup, TimestampTz deadline, bool *timed_out);
static void rs_abandon_lookup(RsLookup *lookup);
static void rs_free_done_lookups(void);
static void rs_check_reply_size(RsConnection *conn);
static void rs_check_array_header(RsConnection *conn);
pg_noreturn static void rs_reply_too_large(RsConnection *conn, uint64 bytes,
										  bool announced);
pg_noreturn static void rs_io_error(RsConnection *conn, RsIoFailure what);
static void rs_xact_callback(XactEvent event, void *arg);
static void rs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static void rs_inval_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * rs_get_connection
 *		Return a ready connection for the given server and user mapping,
 *		opening (and authenticating) a new one if needed.
 *
 * The connection stays cached for the life of the backend.  Callers that
 * pipeline commands must claim it (rs_claim_connection) first.
 */
RsConnection *
rs_get_connection(ForeignServer *server, UserMapping *user)
{
	ConnCacheEntry *entry;
	bool		found;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ConnCacheEntry);
		ConnectionHash = hash_create("redis_sync connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		RegisterXactCallback(rs_xact_callback, NULL);
		RegisterSubXactCallback(rs_subxact_callback, NULL);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, rs_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, rs_inval_callback, (Datum) 0);
	}

	entry = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(&entry->conn, 0, sizeof(RsConnection));
		entry->invalidated = false;
	}

	/*
	 * A sync worker's read-ahead owns the pipeline until its replies are
	 * read; a foreign table read by a trigger on a target table would take
	 * them for its own.
	 */
	if (entry->conn.spans_xacts && entry->conn.pending > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("connection to Redis server \"%s\" is busy", server->servername),
				 errdetail("This redis_sync worker is reading ahead on the connection of the same user mapping."),
				 errhint("Give the foreign tables that triggers on the sync's target tables read a server of their own.")));

	/*
	 * A connection nobody is using may be reopened if it went stale (a
	 * cluster's nodes are checked one by one when they are used; a sentinel
	 * server's primary and replica here, since a new one asks the
	 * sentinels).
	 */
	if ((entry->conn.ctx != NULL || entry->conn.cluster != NULL) &&
		entry->conn.pending == 0 &&
		(entry->invalidated ||
		 (entry->conn.ctx != NULL && rs_connection_is_stale(&entry->conn)) ||
		 rc_is_stale(&entry->conn)))
		rs_discard_connection(&entry->conn);

	if (entry->conn.ctx == NULL && entry->conn.cluster == NULL)
	{
		RsServerOptions opts;

		rs_get_server_options(server, user, &opts);
		entry->invalidated = false;
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(server->serverid));
		entry->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user->umid));
		/* A connection interrupted half-way through its set-up is useless. */
		PG_TRY();
		{
			if (opts.cluster)
				rc_open(&entry->conn, &opts);
			else if (opts.sentinels != NULL && opts.read_from != RS_READ_PRIMARY)
				rc_open_sentinel(&entry->conn, &opts);
			else if (opts.sentinels != NULL)
				rs_sentinel_open(&entry->conn, &opts);
			else
				rs_open_node(&entry->conn, &opts);
		}
		PG_CATCH();
		{
			rs_discard_connection(&entry->conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return &entry->conn;
}

/*
 * rs_open_node
 *		Open a non-blocking connection to opts->host:opts->port, wait for it
 *		(and the TLS handshake) within connect_timeout, then send AUTH (when
 *		a password is set), SELECT (unless opts->db is negative, as for a
 *		Redis Sentinel, which has no databases) and CLIENT SETNAME as one
 *		pipeline and check their replies.  The cluster layer opens each
 *		node with it, and the Sentinel layer each sentinel and primary.
 */
void
rs_open_node(RsConnection *conn, const RsServerOptions *opts)
{
	redisContext *ctx;
	TimestampTz deadline;
	const char *argv[3];
	int			nsent = 0;
	char		dbtext[16];
	char		ip[NI_MAXHOST];
	int			i;

	memset(conn, 0, sizeof(RsConnection));
	strlcpy(conn->desc, opts->servername, sizeof(conn->desc));
	snprintf(conn->addr, sizeof(conn->addr), "%s:%d", opts->host, opts->port);
	conn->command_timeout = opts->command_timeout;
	conn->max_reply_bytes = opts->max_reply_bytes;

	/* connect_timeout bounds the name lookup and the TCP connection. */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), opts->connect_timeout);
	rs_resolve_host(opts, deadline, ip, sizeof(ip));
	ctx = redisConnectNonBlock(ip, opts->port);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (ctx->err)
	{
		char		errbuf[128];

		strlcpy(errbuf, ctx->errstr, sizeof(errbuf));
		redisFree(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to Redis server \"%s\"", conn->desc),
				 errdetail_internal("%s: %s", conn->addr, errbuf)));
	}
	conn->ctx = ctx;

	/* Wait until the TCP connection is established or fails. */
	for (;;)
	{
		int			rc = rs_wait_socket(conn, WL_SOCKET_WRITEABLE, deadline);
		int			sockerr = 0;
		socklen_t	len = sizeof(sockerr);

		if (rc & WL_TIMEOUT)
		{
			rs_discard_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to Redis server \"%s\"", conn->desc),
					 errdetail("The connection attempt to %s timed out after %d ms.",
							   conn->addr, opts->connect_timeout)));
		}
		if (!(rc & WL_SOCKET_WRITEABLE))
			continue;
		if (getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &sockerr, &len) < 0)
			sockerr = errno;
		if (sockerr != 0)
		{
			rs_discard_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to Redis server \"%s\"", conn->desc),
					 errdetail_internal("%s: %s", conn->addr, strerror(sockerr))));
		}
		break;
	}

	if (opts->tls)
		rs_tls_start(conn, opts, deadline);

	/* Authenticate, select the database and name the client, pipelined. */
	if (opts->password != NULL)
	{
		int			argc = 0;

		argv[argc++] = "AUTH";
		if (opts->user != NULL)
			argv[argc++] = opts->user;
		argv[argc++] = opts->password;
		rs_send(conn, argc, argv, NULL);
		nsent++;
	}
	if (opts->db >= 0)
	{
		snprintf(dbtext, sizeof(dbtext), "%d", opts->db);
		argv[0] = "SELECT";
		argv[1] = dbtext;
		rs_send(conn, 2, argv, NULL);
		nsent++;
	}
	argv[0] = "CLIENT";
	argv[1] = "SETNAME";
	argv[2] = "redis_sync";
	rs_send(conn, 3, argv, NULL);
	nsent++;

	for (i = 0; i < nsent; i++)
	{
		redisReply *reply = rs_receive(conn);

		if (reply->type == REDIS_REPLY_ERROR && i == 0 && opts->password != NULL)
		{
			char	   *msg = pstrdup(reply->str);

			freeReplyObject(reply);
			rs_discard_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("could not authenticate to Redis server \"%s\"", conn->desc),
					 errdetail_internal("Redis replied: %s", msg),
					 errhint("Check the user and password options of the user mapping.")));
		}
		rs_check_reply(conn, reply, i == nsent - 1 ? "CLIENT SETNAME" : "SELECT", NULL);
		freeReplyObject(reply);
	}
}

/*
 * rs_resolve_host
 *		Put the numeric address of the server's host into "ip".  A name is
 *		looked up with getaddrinfo_a() while we wait on the latch, so that
 *		connect_timeout ("deadline") and cancel end a slow lookup.  IPv4
 *		addresses are preferred, as hiredis does.
 */
static void
rs_resolve_host(const RsServerOptions *opts, TimestampTz deadline, char *ip, size_t iplen)
{
	unsigned char addrbuf[sizeof(struct in6_addr)];
	RsLookup   *lookup;
	struct gaicb *list[1];
	struct sigevent sev;
	struct addrinfo *ai;
	struct addrinfo *chosen = NULL;
	bool		timed_out = false;
	int			rc;

	rs_free_done_lookups();
	if (inet_pton(AF_INET, opts->host, addrbuf) == 1 ||
		inet_pton(AF_INET6, opts->host, addrbuf) == 1)
	{
		strlcpy(ip, opts->host, iplen);
		return;
	}

	lookup = malloc(offsetof(RsLookup, name) + strlen(opts->host) + 1);
	if (lookup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	memset(lookup, 0, offsetof(RsLookup, name));
	strcpy(lookup->name, opts->host);
	lookup->hints.ai_family = AF_UNSPEC;
	lookup->hints.ai_socktype = SOCK_STREAM;
	lookup->cb.ar_name = lookup->name;
	lookup->cb.ar_request = &lookup->hints;
	list[0] = &lookup->cb;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_NONE;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
	if (rc != 0)
	{
		free(lookup);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not look up host name \"%s\" of Redis server \"%s\"",
						opts->host, opts->servername),
				 errdetail_internal("%s", gai_strerror(rc))));
	}

	rc = rs_wait_lookup(lookup, deadline, &timed_out);
	if (timed_out)
	{
		rs_abandon_lookup(lookup);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to Redis server \"%s\"", opts->servername),
				 errdetail("The lookup of host name \"%s\" timed out after %d ms.",
						   opts->host, opts->connect_timeout)));
	}
	if (rc != 0)
	{
		const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);

		rs_abandon_lookup(lookup);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not look up host name \"%s\" of Redis server \"%s\"",
						opts->host, opts->servername),
				 errdetail_internal("%s", why)));
	}

	for (ai = lookup->cb.ar_result; ai != NULL; ai = ai->ai_next)
	{
		if (ai->ai_family == AF_INET)
		{
			chosen = ai;
			break;
		}
		if (ai->ai_family == AF_INET6 && chosen == NULL)
			chosen = ai;
	}
	rc = chosen ? getnameinfo(chosen->ai_addr, chosen->ai_addrlen, ip, iplen,
							  NULL, 0, NI_NUMERICHOST) : EAI_NONAME;
	rs_abandon_lookup(lookup);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not look up host name \"%s\" of Redis server \"%s\"",
						opts->host, opts->servername),
				 errdetail_internal("%s", gai_strerror(rc))));
}

/*
 * rs_wait_lookup
 *		Wait until the lookup is done or the deadline passes, polling on the
 *		latch (often at first) so that a cancel is seen at once.  Returns
 *		the lookup's gai_error() result.
 */
static int
rs_wait_lookup(RsLookup *lookup, TimestampTz deadline, bool *timed_out)
{
	int			rc;

	*timed_out = false;
	PG_TRY();
	{
		long		step = 1;

		while ((rc = gai_error(&lookup->cb)) == EAI_INPROGRESS)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			if (left <= 0)
			{
				*timed_out = true;
				break;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(step, left), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			step = Min(step * 2, 20);
		}
	}
	PG_CATCH();
	{
		rs_abandon_lookup(lookup);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return rc;
}

/*
 * rs_abandon_lookup
 *		Free a lookup, or, if glibc's thread is still working on it and it
 *		cannot be cancelled, keep it until rs_free_done_lookups sees it done.
 */
static void
rs_abandon_lookup(RsLookup *lookup)
{
	if (gai_error(&lookup->cb) == EAI_INPROGRESS &&
		gai_cancel(&lookup->cb) == EAI_NOTCANCELED)
	{
		lookup->next = AbandonedLookups;
		AbandonedLookups = lookup;
		return;
	}
	if (lookup->cb.ar_result != NULL)
		freeaddrinfo(lookup->cb.ar_result);
	free(lookup);
}

/* Free the abandoned lookups that have ended since. */
static void
rs_free_done_lookups(void)
{
	RsLookup  **link = &AbandonedLookups;

	while (*link != NULL)
	{
		RsLookup   *lookup = *link;

		if (gai_error(&lookup->cb) == EAI_INPROGRESS)
		{
			link = &lookup->next;
			continue;
		}
		*link = lookup->next;
		if (lookup->cb.ar_result != NULL)
			freeaddrinfo(lookup->cb.ar_result);
		free(lookup);
	}
}

/*
 * rs_discard_connection
 *		Close the socket and forget any replies in flight.  Safe to call on a
 *		connection that is already closed.
 */
void
rs_discard_connection(RsConnection *conn)
{
	if (conn->cluster != NULL)
		rc_free(conn);
	if (conn->ctx != NULL)
		redisFree(conn->ctx);
	conn->ctx = NULL;
	conn->tls = NULL;
	conn->pending = 0;
	conn->owner = NULL;
	conn->drain = NULL;
	conn->spans_xacts = false;
	conn->reply_bytes = 0;
	conn->nsent = 0;
	conn->nreceived = 0;
	memset(conn->ranges, 0, sizeof(conn->ranges));
}

/*
 * rs_claim_connection
 *		Make "owner" the user of the connection's pipeline.  If another scan
 *		still has replies in flight, its drain callback reads them into its
 *		own buffer first, so the replies are never confused.
 */
void
rs_claim_connection(RsConnection *conn, void *owner, void (*drain) (void *owner))
{
	if (conn->owner != NULL && conn->owner != owner && conn->pending > 0 &&
		conn->drain != NULL)
		conn->drain(conn->owner);
	conn->owner = owner;
	conn->drain = drain;
}

/*
 * rs_release_connection
 *		The owner is done with the pipeline (it has no replies in flight).
 */
void
rs_release_connection(RsConnection *conn, void *owner)
{
	if (conn->owner == owner)
	{
		conn->owner = NULL;
		conn->drain = NULL;
	}
}

/*
 * rs_send
 *		Append one command to the output buffer, argv-style.  argvlen may be
 *		NULL when every argument is a NUL-terminated string.  Nothing is
 *		written to the socket until the next rs_flush() or rs_receive().
 */
void
rs_send(RsConnection *conn, int argc, const char **argv, const size_t *argvlen)
{
	size_t		lens[16];

	if (argvlen == NULL)
	{
		int			i;

		Assert(argc <= lengthof(lens));
		for (i = 0; i < argc; i++)
			lens[i] = strlen(argv[i]);
		argvlen = lens;
	}
	if (conn->cluster != NULL)
	{
		rc_send(conn, argc, argv, argvlen);
		return;
	}
	if (conn->ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("connection to Redis server \"%s\" was reset", conn->desc)));
	if (redisAppendCommandArgv(conn->ctx, argc, argv, argvlen) != REDIS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	conn->pending++;
	conn->nsent++;
}

/*
 * rs_send_formatted
 *		Append one command already in the protocol's format (as
 *		redisFormatCommandArgv makes it) to the output buffer of a node's
 *		connection.  The cluster layer sends, and resends after a
 *		redirection, each command this way.
 */
void
rs_send_formatted(RsConnection *conn, const char *cmd, size_t len)
{
	if (conn->ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("connection to Redis server \"%s\" was reset", conn->desc),
				 errdetail_internal("%s", conn->addr)));
	if (redisAppendFormattedCommand(conn->ctx, cmd, len) != REDIS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	conn->pending++;
	conn->nsent++;
}

/*
 * rs_receive
 *		Return the next reply, flushing pending output first.  Waits at most
 *		command_timeout; raises an error (and discards the connection) on
 *		timeout, a closed connection, a protocol error or a reply larger than
 *		max_reply_bytes.  The reply may be an error reply: see rs_check_reply.
 *		The caller frees the reply.
 */
redisReply *
rs_receive(RsConnection *conn)
{
	TimestampTz deadline;
	bool		read_nothing = false;	/* the last read found no data */

	if (conn->cluster != NULL)
		return rc_receive(conn);
	if (conn->ctx == NULL || conn->pending <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("connection to Redis server \"%s\" was reset", conn->desc)));
	rs_flush(conn);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), conn->command_timeout);
	for (;;)
	{
		redisReader *reader = conn->ctx->reader;
		size_t		unparsed = reader->len - reader->pos;
		void	   *reply = NULL;
		int			rc;

		/*
		 * The reader parses at most one reply per call; what it consumed of
		 * its buffer belongs to the reply being read.  (It may compact the
		 * buffer, so count the unparsed bytes, not the position.)
		 */
		if (reader->ridx < 0 || (reader->ridx == 0 && RS_READER_TASK(reader, 0)->type < 0))
			rs_check_array_header(conn);
		if (redisGetReplyFromReader(conn->ctx, &reply) != REDIS_OK)
			rs_io_error(conn, RS_IO_PARSE);
		conn->reply_bytes += unparsed - (reader->len - reader->pos);
		if (reply != NULL)
		{
			uint64		size = conn->reply_bytes;

			conn->reply_bytes = 0;
			if (size > (uint64) conn->max_reply_bytes)
			{
				freeReplyObject(reply);
				rs_reply_too_large(conn, size, false);
			}
			conn->pending--;
			conn->nreceived++;
			return (redisReply *) reply;
		}
		rs_check_reply_size(conn);

		/*
		 * Read what has already arrived before waiting: a long reply comes
		 * in many reads, and a wait costs several system calls more.
		 */
		if (!read_nothing)
		{
			size_t		before = reader->len;

			rs_tls_clear_errors(conn);
			if (redisBufferRead(conn->ctx) != REDIS_OK)
				rs_io_error(conn, RS_IO_READ);
			read_nothing = conn->ctx->reader->len <= before;
			CHECK_FOR_INTERRUPTS();
			if (!read_nothing)
				continue;
		}
		read_nothing = false;

		rc = rs_tls_pending(conn) ? WL_SOCKET_READABLE :
			rs_wait_socket(conn, WL_SOCKET_READABLE, deadline);
		if (rc & WL_SOCKET_READABLE)
		{
			rs_tls_clear_errors(conn);
			if (redisBufferRead(conn->ctx) != REDIS_OK)
				rs_io_error(conn, RS_IO_READ);
		}
		else if (rc & WL_TIMEOUT)
		{
			int			timeout = conn->command_timeout;

			rs_discard_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("Redis server \"%s\" did not reply within %d ms",
							conn->desc, timeout),
					 errhint("Raise the server option \"command_timeout\" if the server is busy.")));
		}
	}
}

/*
 * rs_check_reply_size
 *		Raise an error if the reply being read is already known to be larger
 *		than max_reply_bytes: the bytes parsed so far, plus the whole bulk
 *		string whose length the server announced, or plus the unparsed bytes
 *		in the reader's buffer (which all belong to this reply, since the
 *		reader stopped inside it).
 *
 *		What is bounded is the reply as sent on the wire, headers included.
 *		hiredis holds a reply as objects of about 60 bytes per element plus
 *		the strings, so a reply of many short members takes a few times its
 *		wire size in memory; page_size bounds the number of members.
 */
static void
rs_check_reply_size(RsConnection *conn)
{
	redisReader *reader = conn->ctx->reader;
	uint64		limit = (uint64) conn->max_reply_bytes;
	uint64		unparsed = reader->len - reader->pos;

	/*
	 * hiredis has read the '$' of a bulk string and waits for the rest: the
	 * buffer then starts with the announced length and, when its line is
	 * complete, we can tell the final size now.
	 */
	if (reader->ridx >= 0 && RS_READER_TASK(reader, reader->ridx)->type == REDIS_REPLY_STRING &&
		unparsed > 0)
	{
		const char *line = reader->buf + reader->pos;
		const char *eol = memchr(line, '\n', unparsed);

		if (eol != NULL)
		{
			long long	len = strtoll(line, NULL, 10);

			if (len > 0 &&
				conn->reply_bytes + (eol - line + 1) + (uint64) len + 2 > limit)
				rs_reply_too_large(conn, (uint64) len, true);
		}
	}

	if (conn->reply_bytes + unparsed > limit)
		rs_reply_too_large(conn, conn->reply_bytes + unparsed, false);
}

/*
 * rs_check_array_header
 *		Before the reader starts on a reply: if it is an array whose header
 *		line has arrived, refuse it when its elements cannot fit within
 *		max_reply_bytes (each takes at least 3 bytes, as "+\r\n"), because
 *		hiredis allocates the array of element pointers when it parses the
 *		header.  Nested arrays are not checked ahead; their elements are
 *		counted as they arrive.
 */
static void
rs_check_array_header(RsConnection *conn)
{
	redisReader *reader = conn->ctx->reader;
	uint64		unparsed = reader->len - reader->pos;
	const char *line = reader->buf + reader->pos;
	long long	n;

	if (unparsed < 2 || line[0] != '*' || memchr(line, '\n', unparsed) == NULL)
		return;
	n = strtoll(line + 1, NULL, 10);
	if (n > 0 && (uint64) n > (uint64) conn->max_reply_bytes / 3)
	{
		int64		limit = conn->max_reply_bytes;

		rs_discard_connection(conn);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("reply from Redis server \"%s\" exceeds max_reply_bytes (" INT64_FORMAT " bytes)",
						conn->desc, limit),
				 errdetail("The server announced an array of %lld elements.", n),
				 errhint("Raise the server option \"max_reply_bytes\", or read fewer members per command.")));
	}
}

/*
 * rs_reply_too_large
 *		Discard the connection and report a reply over max_reply_bytes:
 *		"bytes" is the length of an announced bulk string, or else the size
 *		the reply is known to reach.
 */
static void
rs_reply_too_large(RsConnection *conn, uint64 bytes, bool announced)
{
	int64		limit = conn->max_reply_bytes;

	rs_discard_connection(conn);
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("reply from Redis server \"%s\" exceeds max_reply_bytes (" INT64_FORMAT " bytes)",
					conn->desc, limit),
			 announced
			 ? errdetail("The server announced a string of " UINT64_FORMAT " bytes.", bytes)
			 : errdetail("The reply is at least " UINT64_FORMAT " bytes long.", bytes),
			 errhint("Raise the server option \"max_reply_bytes\", or read fewer members per command.")));
}

/*
 * rs_command
 *		Send one command and return its reply, raising an error for an error
 *		reply.  "key" names the key in messages (NULL if none).  The caller
 *		frees the reply.
 */
redisReply *
rs_command(RsConnection *conn, const char *key, int argc, const char **argv,
		   const size_t *argvlen)
{
	redisReply *reply;

	rs_send(conn, argc, argv, argvlen);
	reply = rs_receive(conn);
	rs_check_reply(conn, reply, argv[0], key);
	return reply;
}

/*
 * rs_check_reply
 *		If the reply is an error reply, free it and raise the matching
 *		PostgreSQL error; otherwise return and leave the reply to the caller.
 */
void
rs_check_reply(RsConnection *conn, redisReply *reply, const char *command,
			   const char *key)
{
	char	   *msg;

	if (reply->type != REDIS_REPLY_ERROR)
		return;

	msg = pnstrdup(reply->str, reply->len);
	freeReplyObject(reply);

	if (strncmp(msg, "WRONGTYPE", 9) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("Redis key \"%s\" is not a sorted set", key ? key : ""),
				 errdetail_internal("Server \"%s\" replied: %s", conn->desc, msg),
				 errcontext("Redis command %s", command)));
	if (strncmp(msg, "NOAUTH", 6) == 0 || strncmp(msg, "WRONGPASS", 9) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not authenticate to Redis server \"%s\"", conn->desc),
				 errdetail_internal("Redis replied: %s", msg),
				 errhint("Set the user and password options of the user mapping.")));
	if (strncmp(msg, "NOPERM", 6) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied by Redis server \"%s\" for command %s",
						conn->desc, command),
				 errdetail_internal("Redis replied: %s", msg)));
	if (strncmp(msg, "READONLY", 8) == 0)
	{
		/*
		 * The primary was turned into a replica (a failover): the next
		 * connection finds the new primary, so this one must go.
		 */
		if (!rs_is_cluster(conn))
			rs_discard_connection(conn);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("Redis server \"%s\" is a read-only replica", conn->desc),
				 errdetail_internal("Redis replied: %s", msg),
				 errhint("If the server is managed by Redis Sentinel, a failover may be in progress; the next connection asks the sentinels for the new primary."),
				 errcontext("Redis command %s", command)));
	}
	if (strncmp(msg, "LOADING", 7) == 0 || strncmp(msg, "BUSY", 4) == 0 ||
		strncmp(msg, "TRYAGAIN", 8) == 0 || strncmp(msg, "MASTERDOWN", 10) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("Redis server \"%s\" is not ready", conn->desc),
				 errdetail_internal("Redis replied: %s", msg),
				 errcontext("Redis command %s", command)));
	if (key != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" returned an error for key \"%s\"",
						conn->desc, key),
				 errdetail_internal("Redis replied: %s", msg),
				 errcontext("Redis command %s", command)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Redis server \"%s\" returned an error", conn->desc),
			 errdetail_internal("Redis replied: %s", msg),
			 errcontext("Redis command %s", command)));
}

/*
 * rs_is_transient_error
 *		True for errors worth retrying after a pause: lost or refused
 *		connections, timeouts, a server that is loading or busy, and a
 *		server that turned out to be a replica (a READONLY reply, or a node
 *		that the sentinels named but is not a primary), all raised with
 *		ERRCODE_CONNECTION_FAILURE.
 */
bool
rs_is_transient_error(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_CONNECTION_FAILURE ||
		sqlerrcode == ERRCODE_CONNECTION_EXCEPTION ||
		sqlerrcode == ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
}

/*
 * rs_retry_pause
 *		After a transient error (rs_is_transient_error) of a background
 *		worker's attempt "attempt" (counted from 1) of at most "max": log
 *		"<what>: <message>; retrying in N ms" and wait N ms on the latch,
 *		N = 200 ms doubled for each attempt before.  Frees edata.  A cancel
 *		or a termination ends the wait with an error.
 */
void
rs_retry_pause(const char *what, ErrorData *edata, int attempt, int max)
{
	long		delay = 200L << (attempt - 1);

	ereport(LOG,
			(errmsg("%s: %s; retrying in %ld ms (attempt %d of %d)",
					what, edata->message, delay, attempt, max)));
	FreeErrorData(edata);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 delay, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * rs_flush
 *		Write the whole output buffer, waiting for the socket as needed, so
 *		that Redis works on the queued commands while the caller does
 *		something else.  rs_receive flushes by itself.
 */
void
rs_flush(RsConnection *conn)
{
	TimestampTz deadline = 0;
	int			done = 0;

	if (conn->cluster != NULL)
	{
		rc_flush(conn);
		return;
	}
	for (;;)
	{
		rs_tls_clear_errors(conn);
		if (redisBufferWrite(conn->ctx, &done) != REDIS_OK)
			rs_io_error(conn, RS_IO_WRITE);
		if (done)
			return;
		if (deadline == 0)
			deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   conn->command_timeout);
		if (rs_wait_socket(conn, WL_SOCKET_WRITEABLE, deadline) & WL_TIMEOUT)
		{
			int			timeout = conn->command_timeout;

			rs_discard_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("Redis server \"%s\" did not accept data within %d ms",
							conn->desc, timeout)));
		}
	}
}

/*
 * rs_wait_socket
 *		Wait until the socket is ready for "events", the latch is set, or the
 *		deadline passes.  Processes interrupts, so a cancel or terminate
 *		request ends the wait.  Returns the WaitLatchOrSocket() result.
 */
int
rs_wait_socket(RsConnection *conn, int events, TimestampTz deadline)
{
	long		timeout;
	int			rc;

	timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	if (timeout <= 0)
		return WL_TIMEOUT;

	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
						   conn->ctx->fd, timeout, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return rc;
}

/*
 * rs_io_error
 *		Report a failed read or write; the hiredis error text (or, over TLS,
 *		OpenSSL's reason) is copied before the context is freed.
 */
static void
rs_io_error(RsConnection *conn, RsIoFailure what)
{
	char		errbuf[128];
	const char *tls_reason = rs_tls_io_reason(conn);

	strlcpy(errbuf, tls_reason ? tls_reason :
			conn->ctx && conn->ctx->errstr[0] ? conn->ctx->errstr : "connection closed",
			sizeof(errbuf));
	rs_discard_connection(conn);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 what == RS_IO_READ
			 ? errmsg("lost connection to Redis server \"%s\"", conn->desc)
			 : what == RS_IO_WRITE
			 ? errmsg("could not send data to Redis server \"%s\"", conn->desc)
			 : errmsg("could not parse the reply of Redis server \"%s\"", conn->desc),
			 errdetail_internal("%s: %s", conn->addr, errbuf)));
}

/*
 * rs_connection_is_stale
 *		An idle connection should have nothing to read; if the socket is
 *		readable or hung up, the server closed it (timeout, restart).
 */
bool
rs_connection_is_stale(RsConnection *conn)
{
	struct pollfd pfd;

	if (conn->ctx->err)
		return true;
	pfd.fd = conn->ctx->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) < 0)
		return true;
	return (pfd.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/*
 * When a transaction aborts, a connection with replies in flight belongs to
 * a command abandoned by the error: close it.  At commit, replies may still
 * be legitimately in flight (a sync worker reads its next chunk while it
 * commits the current one), so only scan ownership, which never outlives a
 * transaction, is cleared.
 */
static void
rs_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;
	bool		abort = (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT);

	if (ConnectionHash == NULL)
		return;
	if (!abort && event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PREPARE)
		return;

	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (ConnCacheEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (abort && entry->conn.pending > 0 && !entry->conn.spans_xacts)
			rs_discard_connection(&entry->conn);
		entry->conn.owner = NULL;
		entry->conn.drain = NULL;
		rc_end_xact(&entry->conn);
	}
}

static void
rs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;

	if (ConnectionHash == NULL || event != SUBXACT_EVENT_ABORT_SUB)
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (ConnCacheEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (entry->conn.pending > 0 && !entry->conn.spans_xacts)
			rs_discard_connection(&entry->conn);
	}
}

/*
 * Mark connections whose server or user mapping changed; they are reopened
 * (with the new options) the next time they are idle and requested.
 */
static void
rs_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;

	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (ConnCacheEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID && entry->mapping_hashvalue == hashvalue))
			entry->invalidated = true;
	}
}
