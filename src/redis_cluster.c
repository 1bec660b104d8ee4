/*-------------------------------------------------------------------------
 *
 * redis_cluster.c
 *		  Redis Cluster routing: hash slots, the slot map, redirections and
 *		  one connection per node, under the connection layer.
 *
 * hiredis 0.14 has no cluster client, so the routing is ours.  A key's
 * slot is CRC16 of the key (or of its {hash tag}) modulo 16384; the slot
 * map comes from CLUSTER SLOTS, asked of the seeds (the server's host/port
 * and its "nodes" option) or of any node known since.  Each command goes
 * to the primary of its key's slot over that node's own connection, opened
 * with rs_open_node (redis_conn.c) on first use, with the server's
 * credentials and TLS settings, and waited for on the latch like any
 * connection.
 *
 * The server's RsConnection stays the one pipeline its callers see: a
 * command is formatted once, appended to its node's output, and queued
 * twice, on the connection's FIFO (the order callers read replies in) and
 * on its node's queue (the order that node answers in).  Reading the next
 * reply reads the node of the FIFO's first command; replies that node
 * returns first, for commands that were resent to it after a redirection,
 * are kept with their commands until their turn.
 *
 * Redirections and waits:
 *	MOVED slot node		the slot has a new owner: the map is read again and
 *						the command resent to that node;
 *	ASK slot node		the key is being migrated and is on that node now:
 *						ASKING and the command are sent to it, the map is
 *						left as it is;
 *	TRYAGAIN, CLUSTERDOWN	the slot is busy or the cluster has no quorum:
 *						the command is resent after a pause that doubles,
 *						on the latch (a cancel ends it).
 * Each command follows at most RC_MAX_REDIRECTS redirections and waits at
 * most RC_MAX_RETRIES times; then its key, slot and node are named in an
 * error.  Commands of one key sent in one batch keep their order.
 *
 * An error on any node (lost connection, timeout) discards every node's
 * connection and the slot map, as a standalone connection is discarded:
 * the next use reads the map again, so a failover is followed once the
 * cluster has promoted a replica.
 *
 * Each redirection is logged at DEBUG1 with its kind, key, slot and node.
 *
 * With the server option read_from 'replica' (or 'replica_preferred'),
 * commands that only read go to a replica of their slot's primary (every
 * node connection is then put in READONLY mode); writes, and reads of a
 * slot this backend wrote in the current transaction, go to the primary.
 * A replica lags its primary: rs_cluster_wait_replicas waits (WAIT) until
 * the replicas hold what this backend wrote, before others read it there.
 *
 * A standalone server with the options sentinels and read_from 'replica'
 * (or 'replica_preferred') is routed here too (rc_open_sentinel): it is a
 * "cluster" of two nodes, the primary the sentinels name and a healthy
 * replica they list, with every slot owned by the primary and read from
 * the replica.  Writes go to the primary, and once this backend wrote
 * anything in the current transaction, so do all its reads.  There is no
 * slot map to read and no READONLY to send; a lost node, or a READONLY
 * error reply (the primary was demoted), discards the whole connection,
 * and the next one asks the sentinels again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lib/ilist.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#include "redis_cluster.h"
#include "redis_conn.h"
#include "redis_sentinel.h"

/* Redirections (MOVED, ASK) one command may follow. */
#define RC_MAX_REDIRECTS	16
/* Pauses (TRYAGAIN, CLUSTERDOWN, a slot with no owner) per command. */
#define RC_MAX_RETRIES		10
/* First pause, doubled each time up to RC_MAX_DELAY_MS. */
#define RC_FIRST_DELAY_MS	50
#define RC_MAX_DELAY_MS		1000

/* Longest key shown in messages. */
#define RC_KEY_LABEL		200

/* One node of the cluster. */
typedef struct RcNode
{
	char	   *host;
	int			port;
	char		addr[300];		/* "host:port" */
	RsConnection conn;			/* ctx NULL until first used */
	dlist_head	queue;			/* RcCommands sent here, awaiting a reply */
} RcNode;

/* One command in flight. */
typedef struct RcCommand
{
	dlist_node	fifo;			/* in RsCluster.fifo (not for ASKING) */
	dlist_node	queue;			/* in its node's queue while unanswered */
	char	   *cmd;			/* formatted by hiredis (malloc'd) */
	size_t		len;
	int			slot;			/* -1: the command has no key */
	bool		read;			/* it only reads: a replica may serve it */
	int			node;			/* index of the node it was last sent to */
	bool		internal;		/* ASKING: its reply is dropped */
	redisReply *reply;			/* arrived before its turn */
	int			redirects;
	int			retries;
	char		name[32];		/* command name, for messages */
	char	   *key;			/* key label, for messages */
} RcCommand;

struct RsCluster
{
	MemoryContext cxt;
	RsServerOptions opts;		/* copied; host/port replaced per node */
	RcNode	  **nodes;
	int			nnodes;
	int			maxnodes;		/* the seeds come first */
	int16		slots[RS_CLUSTER_SLOTS];	/* owner's node index, -1: none */
	int16		replicas[RS_CLUSTER_SLOTS];	/* a replica's index, -1: none */
	uint8		nreplicas[RS_CLUSTER_SLOTS];	/* how many the owner has */
	uint8		written[RS_CLUSTER_SLOTS / 8];	/* slots written in this
												 * transaction */
	bool		sentinel;		/* a standalone server found through its
								 * sentinels (rc_open_sentinel) */
	bool		wrote;			/* sentinel: something was written in this
								 * transaction */
	dlist_head	fifo;
};

static uint16 rc_crc16(const char *buf, size_t len);
static RsCluster *rc_new(RsConnection *conn, const RsServerOptions *opts);
static int	rc_online_replicas(RsConnection *conn, int idx);
static void rc_set_node_addr(RsCluster *cl, int idx);
static int	rc_add_node(RsCluster *cl, const char *host, int port);
static void rc_parse_nodes(RsCluster *cl, const char *nodes);
static void rc_refresh_map(RsConnection *conn, int first);
static bool rc_ask_map(RsCluster *cl, int idx, char **last_error);
static bool rc_read_map(RsCluster *cl, int idx, redisReply *reply);
static RsConnection *rc_node_conn(RsConnection *conn, int idx);
static int	rc_slot_node(RsConnection *conn, int slot, const char *key);
static void rc_send_to(RsConnection *conn, RcCommand *c, int idx);
static int	rc_route(RsConnection *conn, int slot, const char *key, bool read);
static redisReply *rc_wait_reply(RsConnection *conn, RcCommand *c);
static bool rc_is_redirect(redisReply *reply);
static void rc_redirect(RsConnection *conn, RcCommand *c, const char *msg);
static void rc_pause(int retries);
static void rc_free_command(RcCommand *c);
static void rc_command_key(int argc, const char **argv, const size_t *lens,
						   const char **key, size_t *keylen);
static bool rc_is_read(const char *command);
static int	rc_target(RsConnection *conn, int slot, const char *key, bool read);
pg_noreturn static void rc_fail(RsConnection *conn);


/*
 * rs_key_hash_tag
 *		The {hash tag} of a key as Redis finds it: the bytes between the
 *		first '{' and the first '}' after it, if there are any.  Returns
 *		false if the key has no such tag (then the whole key is hashed).
 */
bool
rs_key_hash_tag(const char *key, size_t len, const char **tag, size_t *taglen)
{
	const char *open = memchr(key, '{', len);
	const char *close;

	if (open == NULL)
		return false;
	close = memchr(open + 1, '}', len - (open + 1 - key));
	if (close == NULL || close == open + 1)
		return false;
	*tag = open + 1;
	*taglen = close - (open + 1);
	return true;
}

/*
 * rs_key_slot
 *		The hash slot of a key: CRC16 (XMODEM) of its hash tag, or of the
 *		whole key, modulo 16384.
 */
int
rs_key_slot(const char *key, size_t len)
{
	const char *tag;
	size_t		taglen;

	if (rs_key_hash_tag(key, len, &tag, &taglen))
		return rc_crc16(tag, taglen) & (RS_CLUSTER_SLOTS - 1);
	return rc_crc16(key, len) & (RS_CLUSTER_SLOTS - 1);
}

/* CRC16 with polynomial 0x1021 and initial value 0, as Redis computes it. */
static uint16
rc_crc16(const char *buf, size_t len)
{
	uint16		crc = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		int			bit;

		crc ^= (uint16) ((unsigned char) buf[i]) << 8;
		for (bit = 0; bit < 8; bit++)
			crc = (crc & 0x8000) ? (uint16) ((crc << 1) ^ 0x1021) : (uint16) (crc << 1);
	}
	return crc;
}

/*
 * rs_colocated_key
 *		A palloc'd key name made of "prefix", a hash tag and "suffix" that
 *		lies in the same slot as "key": the key's own {tag} if it has one,
 *		else {key}.  A key with no tag that holds a '}' (or a '{' with
 *		nothing after it closing) cannot be wrapped so; that is an error.
 */
char *
rs_colocated_key(const char *prefix, const char *key, const char *suffix)
{
	const char *tag;
	size_t		taglen;

	if (rs_key_hash_tag(key, strlen(key), &tag, &taglen))
		return psprintf("%s{%.*s}%s", prefix, (int) taglen, tag, suffix);
	if (strchr(key, '{') != NULL || strchr(key, '}') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot name a copy of Redis key \"%s\" in the same cluster slot", key),
				 errdetail("The key holds a brace but no hash tag, so no other name is known to hash to its slot %d.",
						   rs_key_slot(key, strlen(key))),
				 errhint("Give the key a hash tag, such as \"{clicks}:daily:%%Y-%%m-%%d\".")));
	return psprintf("%s{%s}%s", prefix, key, suffix);
}

/* True if the connection is to a Redis Cluster (not a sentinel server). */
bool
rs_is_cluster(RsConnection *conn)
{
	return conn->cluster != NULL && !conn->cluster->sentinel;
}

/*
 * rs_cluster_key_node
 *		"host:port (slot N)" of the node that serves reads of the key now
 *		(its primary, or with read_from a replica), or NULL for a
 *		standalone server.  For EXPLAIN.
 */
char *
rs_cluster_key_node(RsConnection *conn, const char *key)
{
	int			slot;
	int			idx;

	if (conn->cluster == NULL)
		return NULL;
	slot = rs_key_slot(key, strlen(key));
	idx = rc_target(conn, slot, key, true);
	return psprintf("%s (slot %d)", conn->cluster->nodes[idx]->addr, slot);
}

/*
 * rs_sentinel_replica
 *		The address ("host:port") of the replica that serves the reads of a
 *		sentinel server with read_from, or NULL if there is none (reads go
 *		to the primary) or the connection is of another kind.  For EXPLAIN.
 */
char *
rs_sentinel_replica(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;

	if (cl == NULL || !cl->sentinel || cl->replicas[0] < 0)
		return NULL;
	return pstrdup(cl->nodes[cl->replicas[0]]->addr);
}

/*
 * rs_cluster_primaries
 *		The connections of every primary that serves slots, opened as
 *		needed (for commands that must visit every node, such as SCAN), or
 *		the connection itself for a standalone server.  The caller must have
 *		no replies in flight on "conn".
 */
List *
rs_cluster_primaries(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;
	bool	   *seen;
	List	   *result = NIL;
	int			s;

	if (cl == NULL)
		return list_make1(conn);
	seen = palloc0(sizeof(bool) * cl->nnodes);
	for (s = 0; s < RS_CLUSTER_SLOTS; s++)
	{
		int			idx = cl->slots[s];

		if (idx >= 0 && !seen[idx])
		{
			seen[idx] = true;
			/* opened as a command's node is: a failure discards the map */
			idx = rc_route(conn, s, NULL, false);
			result = lappend(result, &cl->nodes[idx]->conn);
		}
	}
	pfree(seen);
	return result;
}

/*
 * rc_open
 *		Set up "conn" as the routing connection of a cluster whose seeds are
 *		opts->host:opts->port and opts->nodes, and read the slot map.
 */
void
rc_open(RsConnection *conn, const RsServerOptions *opts)
{
	RsCluster  *cl = rc_new(conn, opts);
	MemoryContext old = MemoryContextSwitchTo(cl->cxt);

	(void) rc_add_node(cl, opts->host, opts->port);
	if (opts->nodes != NULL)
		rc_parse_nodes(cl, opts->nodes);
	MemoryContextSwitchTo(old);

	/* the caller discards the connection if this fails */
	rc_refresh_map(conn, -1);
}

/*
 * rc_open_sentinel
 *		Set up "conn" as the routing connection of a server with the option
 *		sentinels and read_from 'replica' or 'replica_preferred': node 0 is
 *		the primary the sentinels name (rs_sentinel_open), and node 1, if
 *		there is one, a healthy replica they list (rs_sentinel_open_replica),
 *		which serves the reads of every slot.  With no such replica,
 *		'replica_preferred' reads from the primary, and 'replica' raises a
 *		connection error (which the sync workers retry).  On an error the
 *		caller discards "conn".
 */
void
rc_open_sentinel(RsConnection *conn, const RsServerOptions *opts)
{
	RsCluster  *cl = rc_new(conn, opts);
	char	   *why = NULL;
	int			primary;
	int			replica;

	cl->sentinel = true;
	primary = rc_add_node(cl, "", 0);
	rs_sentinel_open(&cl->nodes[primary]->conn, opts);
	rc_set_node_addr(cl, primary);
	strlcpy(conn->addr, cl->nodes[primary]->addr, sizeof(conn->addr));
	memset(cl->slots, 0, sizeof(cl->slots));
	Assert(primary == 0);

	replica = rc_add_node(cl, "", 0);
	if (rs_sentinel_open_replica(&cl->nodes[replica]->conn, opts, &why))
	{
		int			s;

		rc_set_node_addr(cl, replica);
		for (s = 0; s < RS_CLUSTER_SLOTS; s++)
		{
			cl->replicas[s] = (int16) replica;
			cl->nreplicas[s] = 1;
		}
		return;
	}
	cl->nnodes--;
	if (opts->read_from == RS_READ_REPLICA)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not find a replica of primary \"%s\" of Redis server \"%s\" through its sentinels",
						opts->sentinel_master, opts->servername),
				 errdetail("%s", why),
				 errhint("Set read_from to \"replica_preferred\" to read from the primary while no replica is healthy.")));
	ereport(DEBUG1,
			(errmsg_internal("redis_sync sentinel: server \"%s\" reads from primary %s: %s",
							 opts->servername, cl->nodes[primary]->addr, why)));
}

/*
 * rc_set_node_addr
 *		Set the host and port of node "idx" from the address its connection
 *		was opened to (a node whose address the sentinels named).
 */
static void
rc_set_node_addr(RsCluster *cl, int idx)
{
	RcNode	   *node = cl->nodes[idx];
	char	   *colon = strrchr(node->conn.addr, ':');

	Assert(colon != NULL);
	node->host = MemoryContextStrdup(cl->cxt, pnstrdup(node->conn.addr, colon - node->conn.addr));
	node->port = atoi(colon + 1);
	strlcpy(node->addr, node->conn.addr, sizeof(node->addr));
}

/*
 * rc_new
 *		Make "conn" a routing connection with no node and an empty map.
 */
static RsCluster *
rc_new(RsConnection *conn, const RsServerOptions *opts)
{
	MemoryContext cxt;
	MemoryContext old;
	RsCluster  *cl;

	memset(conn, 0, sizeof(RsConnection));
	strlcpy(conn->desc, opts->servername, sizeof(conn->desc));
	snprintf(conn->addr, sizeof(conn->addr), "%s:%d", opts->host, opts->port);
	conn->command_timeout = opts->command_timeout;
	conn->max_reply_bytes = opts->max_reply_bytes;

	cxt = AllocSetContextCreate(TopMemoryContext, "redis_sync cluster",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	cl = palloc0(sizeof(RsCluster));
	cl->cxt = cxt;
	cl->opts = *opts;
	cl->opts.servername = pstrdup(opts->servername);
	cl->opts.user = opts->user ? pstrdup(opts->user) : NULL;
	cl->opts.password = opts->password ? pstrdup(opts->password) : NULL;
	cl->opts.tls_ca_file = opts->tls_ca_file ? pstrdup(opts->tls_ca_file) : NULL;
	cl->opts.tls_cert_file = opts->tls_cert_file ? pstrdup(opts->tls_cert_file) : NULL;
	cl->opts.tls_key_file = opts->tls_key_file ? pstrdup(opts->tls_key_file) : NULL;
	cl->opts.tls_server_name = opts->tls_server_name ? pstrdup(opts->tls_server_name) : NULL;
	cl->opts.nodes = NULL;
	cl->opts.host = NULL;
	cl->opts.sentinels = NULL;
	cl->opts.sentinel_master = NULL;
	cl->opts.sentinel_user = NULL;
	cl->opts.sentinel_password = NULL;
	memset(cl->slots, -1, sizeof(cl->slots));
	memset(cl->replicas, -1, sizeof(cl->replicas));
	dlist_init(&cl->fifo);
	MemoryContextSwitchTo(old);

	conn->cluster = cl;
	return cl;
}

/*
 * rc_free
 *		Close every node's connection and forget the map and the commands
 *		in flight (their replies are never read).
 */
void
rc_free(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;
	dlist_mutable_iter it;
	int			i;

	if (cl == NULL)
		return;
	conn->cluster = NULL;
	for (i = 0; i < cl->nnodes; i++)
	{
		RcNode	   *node = cl->nodes[i];

		rs_discard_connection(&node->conn);
		dlist_foreach_modify(it, &node->queue)
		{
			RcCommand  *c = dlist_container(RcCommand, queue, it.cur);

			dlist_delete(&c->queue);
			if (c->internal)
				rc_free_command(c);
		}
	}
	dlist_foreach_modify(it, &cl->fifo)
	{
		RcCommand  *c = dlist_container(RcCommand, fifo, it.cur);

		dlist_delete(&c->fifo);
		rc_free_command(c);
	}
	MemoryContextDelete(cl->cxt);
}

/* Free a command, its formatted text and any reply kept for it. */
static void
rc_free_command(RcCommand *c)
{
	if (c->reply != NULL)
		freeReplyObject(c->reply);
	if (c->cmd != NULL)
		redisFreeCommand(c->cmd);
	if (c->key != NULL)
		pfree(c->key);
	pfree(c);
}

/*
 * rc_fail
 *		An error left the nodes' pipelines in an unknown state: discard the
 *		whole connection (the next rs_get_connection opens it again and
 *		reads the map anew), and re-throw the error.
 */
static void
rc_fail(RsConnection *conn)
{
	rs_discard_connection(conn);
	PG_RE_THROW();
}

/* Add a node (or find it) by host and port; returns its index. */
static int
rc_add_node(RsCluster *cl, const char *host, int port)
{
	MemoryContext old;
	RcNode	   *node;
	int			i;

	for (i = 0; i < cl->nnodes; i++)
	{
		if (cl->nodes[i]->port == port && strcmp(cl->nodes[i]->host, host) == 0)
			return i;
	}
	if (cl->nnodes >= INT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Redis cluster \"%s\" has too many nodes", cl->opts.servername)));
	old = MemoryContextSwitchTo(cl->cxt);
	if (cl->nnodes == cl->maxnodes)
	{
		cl->maxnodes = cl->maxnodes ? cl->maxnodes * 2 : 8;
		cl->nodes = cl->nodes ? repalloc(cl->nodes, sizeof(RcNode *) * cl->maxnodes)
			: palloc(sizeof(RcNode *) * cl->maxnodes);
	}
	node = palloc0(sizeof(RcNode));
	node->host = pstrdup(host);
	node->port = port;
	snprintf(node->addr, sizeof(node->addr), "%s:%d", host, port);
	dlist_init(&node->queue);
	cl->nodes[cl->nnodes] = node;
	MemoryContextSwitchTo(old);
	return cl->nnodes++;
}

/* Add the seeds of the "nodes" option, "h:p,h:p" (checked by options.c). */
static void
rc_parse_nodes(RsCluster *cl, const char *nodes)
{
	ListCell   *lc;

	foreach(lc, rs_host_port_list(nodes))
	{
		RsHostPort *hp = lfirst(lc);

		(void) rc_add_node(cl, hp->host, hp->port);
	}
}

/*
 * rc_refresh_map
 *		Read the slot map with CLUSTER SLOTS, asking node "first" (if >= 0)
 *		and then every known node, seeds first, until one answers; each is
 *		asked over a connection of its own, so that the pipelines of the
 *		nodes are left alone.  Raises a connection error, naming the
 *		cluster and the last node's error, if none answers.
 */
static void
rc_refresh_map(RsConnection *conn, int first)
{
	RsCluster  *cl = conn->cluster;
	char	   *last_error = NULL;
	int			n = cl->nnodes;
	int			i;

	if (first >= 0 && rc_ask_map(cl, first, &last_error))
		return;
	for (i = 0; i < n; i++)
	{
		if (i != first && rc_ask_map(cl, i, &last_error))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not read the slot map of Redis cluster \"%s\"", cl->opts.servername),
			 errdetail("No node answered CLUSTER SLOTS; the last one said: %s.",
					   last_error ? last_error : "nothing"),
			 errhint("Check the host, port and nodes options of the server, and that the nodes run with cluster-enabled yes.")));
}

/*
 * rc_ask_map
 *		Ask node "idx" for the slot map over a connection of its own.
 *		Returns true if the map was read; false, with the reason in
 *		*last_error, if the node could not be reached or gave no map.
 *		Other errors (a cancel, a failed authentication) are raised.
 */
static bool
rc_ask_map(RsCluster *cl, int idx, char **last_error)
{
	MemoryContext cxt = CurrentMemoryContext;
	RsConnection tmp;
	RsServerOptions opts = cl->opts;
	volatile bool ok = false;

	opts.host = cl->nodes[idx]->host;
	opts.port = cl->nodes[idx]->port;
	memset(&tmp, 0, sizeof(tmp));
	PG_TRY();
	{
		const char *argv[2] = {"CLUSTER", "SLOTS"};
		redisReply *reply;

		rs_open_node(&tmp, &opts);
		reply = rs_command(&tmp, NULL, 2, argv, NULL);
		ok = rc_read_map(cl, idx, reply);
		freeReplyObject(reply);
		rs_discard_connection(&tmp);
		if (!ok)
			*last_error = psprintf("%s: the reply to CLUSTER SLOTS describes no slot",
								   cl->nodes[idx]->addr);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		rs_discard_connection(&tmp);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		/* a cancel, or an error that is not this node's alone */
		if (!rs_is_transient_error(edata->sqlerrcode) &&
			edata->sqlerrcode != ERRCODE_FDW_ERROR)
			PG_RE_THROW();
		FlushErrorState();
		*last_error = psprintf("%s: %s%s%s", cl->nodes[idx]->addr, edata->message,
							   edata->detail ? ": " : "",
							   edata->detail ? edata->detail : "");
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/*
 * rc_read_map
 *		Replace the slot map with the one in a CLUSTER SLOTS reply from node
 *		"idx".  Each entry is {first slot, last slot, {host, port, id, ...}
 *		of the primary, replicas...}; an empty host means the node asked.
 *		Returns false (and leaves the map) if the reply is not such a map
 *		or maps no slot.
 */
static bool
rc_read_map(RsCluster *cl, int idx, redisReply *reply)
{
	int16		slots[RS_CLUSTER_SLOTS];
	int16		replicas[RS_CLUSTER_SLOTS];
	uint8		nreplicas[RS_CLUSTER_SLOTS];
	size_t		i;
	bool		any = false;

	if (reply->type != REDIS_REPLY_ARRAY)
		return false;
	memset(slots, -1, sizeof(slots));
	memset(replicas, -1, sizeof(replicas));
	memset(nreplicas, 0, sizeof(nreplicas));
	for (i = 0; i < reply->elements; i++)
	{
		redisReply *r = reply->element[i];
		redisReply *primary;
		const char *host;
		long long	s;

		if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
			r->element[0]->type != REDIS_REPLY_INTEGER ||
			r->element[1]->type != REDIS_REPLY_INTEGER ||
			r->element[2]->type != REDIS_REPLY_ARRAY)
			return false;
		primary = r->element[2];
		if (primary->elements < 2 || primary->element[0]->type != REDIS_REPLY_STRING ||
			primary->element[1]->type != REDIS_REPLY_INTEGER)
			return false;
		host = primary->element[0]->str;
		if (host[0] == '\0' || strcmp(host, "?") == 0)
			host = cl->nodes[idx]->host;
		for (s = r->element[0]->integer; s <= r->element[1]->integer; s++)
		{
			if (s < 0 || s >= RS_CLUSTER_SLOTS)
				return false;
			slots[s] = (int16) rc_add_node(cl, host, (int) primary->element[1]->integer);
			any = true;
		}
		/* the first replica serves this range's reads */
		if (r->elements >= 4 && r->element[3]->type == REDIS_REPLY_ARRAY &&
			r->element[3]->elements >= 2 &&
			r->element[3]->element[0]->type == REDIS_REPLY_STRING &&
			r->element[3]->element[1]->type == REDIS_REPLY_INTEGER)
		{
			redisReply *replica = r->element[3];
			const char *rhost = replica->element[0]->str;
			int			ridx;

			if (rhost[0] == '\0' || strcmp(rhost, "?") == 0)
				rhost = cl->nodes[idx]->host;
			ridx = rc_add_node(cl, rhost, (int) replica->element[1]->integer);
			for (s = r->element[0]->integer; s <= r->element[1]->integer; s++)
			{
				replicas[s] = (int16) ridx;
				nreplicas[s] = (uint8) Min(r->elements - 3, 255);
			}
		}
	}
	if (!any)
		return false;
	memcpy(cl->slots, slots, sizeof(slots));
	memcpy(cl->replicas, replicas, sizeof(replicas));
	memcpy(cl->nreplicas, nreplicas, sizeof(nreplicas));
	return true;
}

/*
 * rc_node_conn
 *		The connection of node "idx", opened if it is closed, and reopened
 *		if it is idle and the node closed it meanwhile.
 */
static RsConnection *
rc_node_conn(RsConnection *conn, int idx)
{
	RsCluster  *cl = conn->cluster;
	RcNode	   *node = cl->nodes[idx];

	if (node->conn.ctx != NULL && node->conn.pending == 0 &&
		dlist_is_empty(&node->queue) && rs_connection_is_stale(&node->conn))
		rs_discard_connection(&node->conn);
	if (node->conn.ctx == NULL)
	{
		RsServerOptions opts = cl->opts;

		opts.host = node->host;
		opts.port = node->port;
		PG_TRY();
		{
			rs_open_node(&node->conn, &opts);
			/* a replica then serves reads of its primary's slots */
			if (cl->opts.read_from != RS_READ_PRIMARY && !cl->sentinel)
			{
				const char *argv[1] = {"READONLY"};

				freeReplyObject(rs_command(&node->conn, NULL, 1, argv, NULL));
			}
		}
		PG_CATCH();
		{
			rs_discard_connection(&node->conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return &node->conn;
}

/*
 * rc_slot_node
 *		The index of the node that serves "slot" (-1: any node, for a
 *		command with no key).  A slot that no node serves makes the map be
 *		read again, after a pause, up to RC_MAX_RETRIES times.
 */
static int
rc_slot_node(RsConnection *conn, int slot, const char *key)
{
	RsCluster  *cl = conn->cluster;
	int			retries = 0;

	for (;;)
	{
		int			s;

		if (slot >= 0 && cl->slots[slot] >= 0)
			return cl->slots[slot];
		if (slot < 0)
		{
			for (s = 0; s < RS_CLUSTER_SLOTS; s++)
				if (cl->slots[s] >= 0)
					return cl->slots[s];
		}
		if (retries >= RC_MAX_RETRIES && slot < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("no node of Redis cluster \"%s\" serves any slot",
							cl->opts.servername),
					 errdetail("CLUSTER SLOTS still assigns no slot to any node after %d attempts.",
							   retries),
					 errhint("Check the cluster with redis-cli --cluster check.")));
		if (retries >= RC_MAX_RETRIES)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("no node of Redis cluster \"%s\" serves slot %d",
							cl->opts.servername, slot),
					 errdetail("Redis key \"%s\" hashes to slot %d, which CLUSTER SLOTS still assigns to no node after %d attempts.",
							   key ? key : "", slot, retries),
					 errhint("Check the cluster with redis-cli --cluster check.")));
		rc_pause(retries++);
		rc_refresh_map(conn, -1);
	}
}

/*
 * rc_target
 *		The node a command on "slot" goes to: the slot's primary, or for a
 *		read with read_from 'replica' or 'replica_preferred', a replica of
 *		it, unless this backend wrote the slot (on a sentinel server:
 *		anything) in the current transaction.  A slot with no replica is read from the primary with
 *		'replica_preferred', and is an error with 'replica'.
 */
static int
rc_target(RsConnection *conn, int slot, const char *key, bool read)
{
	RsCluster  *cl = conn->cluster;
	int			primary = rc_slot_node(conn, slot, key);

	if (!read || slot < 0 || cl->opts.read_from == RS_READ_PRIMARY ||
		(cl->written[slot / 8] & (1 << (slot % 8))) != 0 ||
		(cl->sentinel && cl->wrote))
		return primary;
	if (cl->replicas[slot] >= 0)
		return cl->replicas[slot];
	if (cl->opts.read_from == RS_READ_REPLICA_PREFERRED)
		return primary;
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("no replica of Redis cluster \"%s\" serves slot %d", cl->opts.servername, slot),
			 errdetail("Redis key \"%s\" hashes to slot %d, whose primary %s has no replica, and the server option read_from is \"replica\".",
					   key ? key : "", slot, cl->nodes[primary]->addr),
			 errhint("Set read_from to \"replica_preferred\" to read from the primary while a slot has no replica.")));
	return primary;				/* keep compiler quiet */
}

/* True for the commands that only read, which a replica may serve. */
static bool
rc_is_read(const char *command)
{
	static const char *const reads[] = {
		"ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZMSCORE",
		"ZSCORE", "ZRANK", "ZREVRANK", "ZCARD", "ZCOUNT", "EXISTS", "TYPE",
		"TTL", "PTTL", "SCAN", NULL
	};
	int			i;

	for (i = 0; reads[i] != NULL; i++)
	{
		if (pg_strcasecmp(command, reads[i]) == 0)
			return true;
	}
	return false;
}

/*
 * rs_cluster_wait_replicas
 *		With read_from 'replica' or 'replica_preferred', wait (WAIT, within
 *		command_timeout) until every replica of the primary that serves
 *		"key" holds what this backend wrote there, so that readers on
 *		replicas see it.  Raises a connection error if they do not confirm
 *		it in time.  A no-op for a standalone server, with read_from
 *		'primary', or for a slot with no replica.  On a sentinel server,
 *		the replicas waited for are those online now (ROLE on the primary):
 *		a replica that connects later gets the writes as it syncs.  The
 *		caller must have no replies in flight.
 */
void
rs_cluster_wait_replicas(RsConnection *conn, const char *key)
{
	RsCluster  *cl = conn->cluster;
	int			slot;
	int			idx;
	int			wanted;
	char		nbuf[16];
	char		tbuf[16];
	const char *argv[3] = {"WAIT", nbuf, tbuf};
	redisReply *reply;
	long long	acked;

	if (cl == NULL || cl->opts.read_from == RS_READ_PRIMARY)
		return;
	Assert(conn->pending == 0);
	slot = rs_key_slot(key, strlen(key));
	idx = rc_route(conn, slot, key, false);
	wanted = cl->sentinel ? rc_online_replicas(conn, idx) : cl->nreplicas[slot];
	if (wanted == 0)
		return;
	snprintf(nbuf, sizeof(nbuf), "%d", wanted);
	snprintf(tbuf, sizeof(tbuf), "%d", cl->opts.command_timeout);
	reply = rs_command(&cl->nodes[idx]->conn, key, 3, argv, NULL);
	acked = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
	freeReplyObject(reply);
	if (acked < wanted)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("replicas of Redis cluster \"%s\" did not confirm the writes to key \"%s\"",
						cl->opts.servername, key),
				 errdetail("Node %s serves slot %d with %d replicas, and %lld confirmed the writes within %d ms.",
						   cl->nodes[idx]->addr, slot, wanted, Max(acked, 0), cl->opts.command_timeout),
				 errhint("Reads from replicas need the replicas to keep up; set read_from to \"primary\" to read from the primaries.")));
}

/*
 * rc_online_replicas
 *		The number of replicas that primary "idx" lists as online in its
 *		reply to ROLE ("master", offset, one entry per online replica).
 */
static int
rc_online_replicas(RsConnection *conn, int idx)
{
	const char *argv[1] = {"ROLE"};
	RsConnection *node = &conn->cluster->nodes[idx]->conn;
	redisReply *reply = rs_command(node, NULL, 1, argv, NULL);
	int			n = 0;

	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 &&
		reply->element[2]->type == REDIS_REPLY_ARRAY)
		n = (int) reply->element[2]->elements;
	freeReplyObject(reply);
	return n;
}

/*
 * rc_is_stale
 *		For a sentinel server's routing connection that nobody is using: true
 *		if a node's connection was lost or closed by its server, so that the
 *		whole connection is opened again, through the sentinels.  False for
 *		any other connection.
 */
bool
rc_is_stale(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;
	int			i;

	if (cl == NULL || !cl->sentinel || conn->pending > 0)
		return false;
	for (i = 0; i < cl->nnodes; i++)
	{
		RsConnection *node = &cl->nodes[i]->conn;

		if (node->ctx == NULL || (node->pending == 0 && rs_connection_is_stale(node)))
			return true;
	}
	return false;
}

/*
 * rc_end_xact
 *		The transaction ended: reads may go to replicas again.
 */
void
rc_end_xact(RsConnection *conn)
{
	if (conn->cluster != NULL)
	{
		memset(conn->cluster->written, 0, sizeof(conn->cluster->written));
		conn->cluster->wrote = false;
	}
}

/*
 * rc_command_key
 *		The key a command is routed by: the first key of EVAL and EVALSHA,
 *		none for the commands that take none, else the first argument.
 */
static void
rc_command_key(int argc, const char **argv, const size_t *lens,
			   const char **key, size_t *keylen)
{
	static const char *const keyless[] = {
		"SCAN", "PING", "INFO", "CLUSTER", "ASKING", "READONLY", "CLIENT",
		"SELECT", "AUTH", "DBSIZE", "SCRIPT", "COMMAND", "TIME", "ECHO", NULL
	};
	int			i;

	*key = NULL;
	*keylen = 0;
	for (i = 0; keyless[i] != NULL; i++)
	{
		if (pg_strcasecmp(argv[0], keyless[i]) == 0)
			return;
	}
	if (pg_strcasecmp(argv[0], "EVAL") == 0 || pg_strcasecmp(argv[0], "EVALSHA") == 0)
	{
		if (argc > 3 && atoi(argv[2]) > 0)
		{
			*key = argv[3];
			*keylen = lens[3];
		}
		return;
	}
	if (argc > 1)
	{
		*key = argv[1];
		*keylen = lens[1];
	}
}

/*
 * rc_send
 *		Queue a command on the node that serves its key's slot.  Called by
 *		rs_send, with the arguments' lengths.
 */
void
rc_send(RsConnection *conn, int argc, const char **argv, const size_t *argvlen)
{
	RsCluster  *cl = conn->cluster;
	const char *key;
	size_t		keylen;
	RcCommand  *c;
	int			slot;
	bool		read;
	int			idx;
	int			len;
	char	   *cmd = NULL;

	Assert(argvlen != NULL);
	rc_command_key(argc, argv, argvlen, &key, &keylen);
	slot = key ? rs_key_slot(key, keylen) : -1;
	read = rc_is_read(argv[0]);
	if (slot >= 0 && !read)
		cl->written[slot / 8] |= (uint8) (1 << (slot % 8));
	if (!read)
		cl->wrote = true;

	idx = rc_route(conn, slot, key, read);

	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	c = MemoryContextAllocZero(cl->cxt, sizeof(RcCommand));
	c->cmd = cmd;
	c->len = len;
	c->slot = slot;
	c->read = read;
	strlcpy(c->name, argv[0], sizeof(c->name));
	if (key != NULL)
		c->key = MemoryContextStrdup(cl->cxt, pnstrdup(key, Min(keylen, RC_KEY_LABEL)));
	dlist_push_tail(&cl->fifo, &c->fifo);
	conn->pending++;
	conn->nsent++;
	rc_send_to(conn, c, idx);
}

/*
 * rc_route
 *		The index of the node that serves "slot", with its connection open.
 *		If that fails (the node is down), the whole connection is discarded,
 *		so that the next use reads the slot map again.
 */
static int
rc_route(RsConnection *conn, int slot, const char *key, bool read)
{
	volatile int idx = -1;

	PG_TRY();
	{
		idx = rc_target(conn, slot, key, read);
		(void) rc_node_conn(conn, idx);
	}
	PG_CATCH();
	{
		rc_fail(conn);
	}
	PG_END_TRY();
	return idx;
}

/* Append a command to node "idx" (open) and queue it there. */
static void
rc_send_to(RsConnection *conn, RcCommand *c, int idx)
{
	RcNode	   *node = conn->cluster->nodes[idx];

	rs_send_formatted(&node->conn, c->cmd, c->len);
	dlist_push_tail(&node->queue, &c->queue);
	c->node = idx;
}

/*
 * rc_flush
 *		Write every node's output, so that all of them work at once.
 */
void
rc_flush(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;

	PG_TRY();
	{
		int			i;

		for (i = 0; i < cl->nnodes; i++)
		{
			if (cl->nodes[i]->conn.ctx != NULL)
				rs_flush(&cl->nodes[i]->conn);
		}
	}
	PG_CATCH();
	{
		rc_fail(conn);
	}
	PG_END_TRY();
}

/*
 * rc_receive
 *		Return the reply of the oldest command in flight, after following
 *		its redirections and pauses.  Error replies other than those are
 *		returned, for the caller's rs_check_reply.  The caller frees the
 *		reply.
 */
redisReply *
rc_receive(RsConnection *conn)
{
	RsCluster  *cl = conn->cluster;
	RcCommand  *c;
	redisReply *volatile reply = NULL;

	if (dlist_is_empty(&cl->fifo))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("connection to Redis server \"%s\" was reset", conn->desc)));
	c = dlist_head_element(RcCommand, fifo, &cl->fifo);

	PG_TRY();
	{
		rc_flush(conn);
		for (;;)
		{
			char		msg[300];

			reply = rc_wait_reply(conn, c);
			if (!rc_is_redirect(reply))
				break;
			strlcpy(msg, reply->str, sizeof(msg));
			freeReplyObject(reply);
			reply = NULL;
			rc_redirect(conn, c, msg);
		}
	}
	PG_CATCH();
	{
		if (reply != NULL)
			freeReplyObject(reply);
		rc_fail(conn);
	}
	PG_END_TRY();

	dlist_delete(&c->fifo);
	rc_free_command(c);
	conn->pending--;
	conn->nreceived++;
	return reply;
}

/*
 * rc_wait_reply
 *		Read replies from the node of "c" until its own arrives; replies to
 *		the commands queued on that node before it are kept with them (and
 *		those of ASKING dropped).
 */
static redisReply *
rc_wait_reply(RsConnection *conn, RcCommand *c)
{
	RcNode	   *node = conn->cluster->nodes[c->node];
	redisReply *reply;

	while (c->reply == NULL)
	{
		RcCommand  *head;
		redisReply *r;

		if (dlist_is_empty(&node->queue))
			elog(ERROR, "redis_sync cluster: no command awaits a reply from %s", node->addr);
		head = dlist_head_element(RcCommand, queue, &node->queue);
		r = rs_receive(&node->conn);
		dlist_delete(&head->queue);
		if (head->internal)
		{
			freeReplyObject(r);
			rc_free_command(head);
		}
		else
			head->reply = r;
	}
	reply = c->reply;
	c->reply = NULL;
	return reply;
}

/* True for the error replies that rc_redirect follows. */
static bool
rc_is_redirect(redisReply *reply)
{
	return reply->type == REDIS_REPLY_ERROR &&
		(strncmp(reply->str, "MOVED ", 6) == 0 || strncmp(reply->str, "ASK ", 4) == 0 ||
		 strncmp(reply->str, "TRYAGAIN", 8) == 0 || strncmp(reply->str, "CLUSTERDOWN", 11) == 0);
}

/*
 * rc_redirect
 *		Follow the error reply "msg" (see rc_is_redirect): resend the
 *		command where it now belongs, after a pause for TRYAGAIN and
 *		CLUSTERDOWN.  Raises an error naming the key, slot and node once the
 *		command has been redirected or paused too often.
 */
static void
rc_redirect(RsConnection *conn, RcCommand *c, const char *msg)
{
	RsCluster  *cl = conn->cluster;
	bool		moved = strncmp(msg, "MOVED ", 6) == 0;
	char		buf[300];
	char	   *addr;
	char	   *colon;
	int			idx;
	int			from = c->node;

	if (!moved && strncmp(msg, "ASK ", 4) != 0)
	{
		bool		tryagain = strncmp(msg, "TRYAGAIN", 8) == 0;

		if (c->retries >= RC_MAX_RETRIES)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("Redis cluster \"%s\" is not ready for key \"%s\"",
							cl->opts.servername, c->key ? c->key : ""),
					 errdetail("Node %s still replied \"%s\" for slot %d after %d attempts.",
							   cl->nodes[from]->addr, msg, c->slot, c->retries + 1),
					 errcontext("Redis command %s", c->name)));
		ereport(DEBUG1,
				(errmsg_internal("redis_sync cluster: %s for key \"%s\" (slot %d) on node %s; retrying",
								 tryagain ? "TRYAGAIN" : "CLUSTERDOWN",
								 c->key ? c->key : "", c->slot, cl->nodes[from]->addr)));
		rc_pause(c->retries++);
		if (!tryagain)
			rc_refresh_map(conn, -1);
		idx = c->slot >= 0 ? rc_target(conn, c->slot, c->key, c->read) : from;
		(void) rc_node_conn(conn, idx);
		rc_send_to(conn, c, idx);
		return;
	}

	/* "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" */
	strlcpy(buf, msg, sizeof(buf));
	addr = strrchr(buf, ' ');
	colon = addr ? strrchr(addr, ':') : NULL;
	if (addr == NULL || colon == NULL || c->redirects >= RC_MAX_REDIRECTS)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not follow the redirection of key \"%s\" in Redis cluster \"%s\"",
						c->key ? c->key : "", cl->opts.servername),
				 addr && colon
				 ? errdetail("Slot %d was redirected %d times; node %s last replied \"%s\".",
							 c->slot, c->redirects, cl->nodes[from]->addr, msg)
				 : errdetail_internal("Node %s replied \"%s\".", cl->nodes[from]->addr, msg),
				 errcontext("Redis command %s", c->name)));
	c->redirects++;
	*colon = '\0';
	addr++;
	idx = rc_add_node(cl, addr[0] ? addr : cl->nodes[from]->host, atoi(colon + 1));
	ereport(DEBUG1,
			(errmsg_internal("redis_sync cluster: %s for key \"%s\" (slot %d) from node %s to node %s",
							 moved ? "MOVED" : "ASK", c->key ? c->key : "", c->slot,
							 cl->nodes[from]->addr, cl->nodes[idx]->addr)));

	(void) rc_node_conn(conn, idx);
	if (moved)
	{
		/*
		 * The slot has a new owner (or the replica asked no longer
		 * replicates it): learn it, and the rest of the map.
		 */
		if (c->slot >= 0 && (cl->slots[c->slot] != idx || cl->slots[c->slot] != from))
		{
			cl->slots[c->slot] = (int16) idx;
			rc_refresh_map(conn, idx);
		}
	}
	else
	{
		static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
		RcCommand  *a = MemoryContextAllocZero(cl->cxt, sizeof(RcCommand));
		char	   *copy = malloc(sizeof(asking) - 1);

		if (copy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		memcpy(copy, asking, sizeof(asking) - 1);
		a->cmd = copy;
		a->len = sizeof(asking) - 1;
		a->internal = true;
		a->slot = c->slot;
		strlcpy(a->name, "ASKING", sizeof(a->name));
		rc_send_to(conn, a, idx);
	}
	rc_send_to(conn, c, idx);
}

/*
 * rc_pause
 *		Wait RC_FIRST_DELAY_MS doubled "retries" times (at most
 *		RC_MAX_DELAY_MS) on the latch; a cancel ends the wait.
 */
static void
rc_pause(int retries)
{
	long		delay = RC_FIRST_DELAY_MS;

	while (retries-- > 0 && delay < RC_MAX_DELAY_MS)
		delay *= 2;
	delay = Min(delay, RC_MAX_DELAY_MS);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 delay, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}
