/*-------------------------------------------------------------------------
 *
 * redis_conn.h
 *		  The Redis command layer: cached non-blocking connections (plain
 *		  TCP in redis_conn.c, TLS in redis_tls.c), sending commands,
 *		  receiving and checking replies, waiting on the latch.
 *
 * hiredis's structures are declared here only by name: the files of the
 * command layer (redis_conn.c, redis_tls.c, redis_cluster.c,
 * redis_sentinel.c, zset_reader.c, zset_writer.c, zset_snapshot.c) include
 * hiredis itself, and no other file can parse a reply.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_REDIS_CONN_H
#define RS_REDIS_CONN_H

#include "datatype/timestamp.h"
#include "foreign/foreign.h"

#include "compat.h"
#include "options.h"

/* ---------------------------------------------------------------------
 * in redis_conn.c
 * ---------------------------------------------------------------------
 */

/*
 * A ZRANGE window in flight: zset_reader.c checks that its reply holds no
 * more members than the window has ranks.  "seq" numbers the command on its
 * connection (1 for the first one sent); 0 marks a free slot.
 */
typedef struct RsRangeRequest
{
	uint64		seq;
	int64		start;
	int64		stop;
} RsRangeRequest;

#define RS_RANGES_TRACKED	8

/*
 * A cached Redis connection.  "pending" counts replies still in flight; a
 * connection left with replies in flight after an error is discarded.
 * "owner" is the scan that has replies in flight, and "drain" reads them
 * into that scan's own buffer when another user needs the connection.
 * "spans_xacts" marks a pipeline that its user keeps across transactions
 * (a sync worker reading ahead): an abort then leaves the replies to that
 * user, which discards the connection itself when it gives up on them.
 *
 * "max_reply_bytes" bounds the protocol bytes of one reply while it is being
 * read; "reply_bytes" counts the bytes of the reply being read that hiredis
 * has already parsed.  "nsent" and "nreceived" count the commands sent and
 * the replies received since the connection was opened.
 */
typedef struct RsConnection
{
	struct redisContext *ctx;
	void	   *tls;			/* OpenSSL's SSL of a TLS connection, owned
								 * by ctx; NULL for plain TCP */
	char		desc[NAMEDATALEN];	/* foreign server name, for messages */
	char		addr[300];		/* "host:port", for details */
	int			command_timeout;
	int			pending;
	void	   *owner;
	void		(*drain) (void *owner);
	bool		spans_xacts;
	int64		max_reply_bytes;
	uint64		reply_bytes;
	uint64		nsent;
	uint64		nreceived;
	RsRangeRequest ranges[RS_RANGES_TRACKED];
	struct RsCluster *cluster;	/* cluster 'on': the routing state
								 * (redis_cluster.h), and ctx is NULL */
} RsConnection;

extern RsConnection *rs_get_connection(ForeignServer *server, UserMapping *user);
extern void rs_claim_connection(RsConnection *conn, void *owner,
								void (*drain) (void *owner));
extern void rs_release_connection(RsConnection *conn, void *owner);
extern void rs_discard_connection(RsConnection *conn);
extern void rs_send(RsConnection *conn, int argc, const char **argv,
					const size_t *argvlen);
extern void rs_flush(RsConnection *conn);
extern struct redisReply *rs_receive(RsConnection *conn);
extern void rs_check_reply(RsConnection *conn, struct redisReply *reply,
						   const char *command, const char *key);
extern struct redisReply *rs_command(RsConnection *conn, const char *key, int argc,
									 const char **argv, const size_t *argvlen);
extern bool rs_is_transient_error(int sqlerrcode);
extern void rs_retry_pause(const char *what, struct ErrorData *edata, int attempt, int max);
extern int	rs_wait_socket(RsConnection *conn, int events, TimestampTz deadline);

/* ---------------------------------------------------------------------
 * in redis_tls.c
 * ---------------------------------------------------------------------
 */

extern void rs_tls_start(RsConnection *conn, const RsServerOptions *opts,
						 TimestampTz deadline);
extern bool rs_tls_pending(RsConnection *conn);
extern void rs_tls_clear_errors(RsConnection *conn);
extern const char *rs_tls_io_reason(RsConnection *conn);
extern bool rs_tls_available(void);
pg_noreturn extern void rs_tls_unsupported(void);

#endif							/* RS_REDIS_CONN_H */
