/*-------------------------------------------------------------------------
 *
 * redis_cluster.h
 *		  Declarations of the Redis Cluster routing layer (redis_cluster.c)
 *		  and of the parts of the connection layer (redis_conn.c) that it
 *		  builds on.
 *
 * A server with the option cluster 'on' gets one RsConnection, as a
 * standalone server does, but that connection holds no socket of its own:
 * rs_send, rs_receive, rs_flush and rs_discard_connection hand it to the
 * functions below, which route each command by its key's slot to one of
 * the cluster's nodes.  Callers see one pipeline with replies in the order
 * their commands were sent.  A server with sentinels and read_from other
 * than 'primary' is routed the same way, over its primary and a replica
 * (rc_open_sentinel).
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIS_CLUSTER_H
#define REDIS_CLUSTER_H

#include "options.h"
#include "redis_conn.h"

/* The routing state of a cluster connection (RsConnection.cluster). */
typedef struct RsCluster RsCluster;

/* Where reads go: the server option read_from. */
typedef enum RsReadFrom
{
	RS_READ_PRIMARY,			/* every command goes to the primary */
	RS_READ_REPLICA,			/* reads go to a replica; an error if none */
	RS_READ_REPLICA_PREFERRED	/* reads go to a replica, else the primary */
} RsReadFrom;

/* Number of hash slots of a Redis Cluster. */
#define RS_CLUSTER_SLOTS	16384

/* ---------------------------------------------------------------------
 * in redis_cluster.c
 * ---------------------------------------------------------------------
 */
extern int	rs_key_slot(const char *key, size_t len);
extern bool rs_key_hash_tag(const char *key, size_t len, const char **tag,
							size_t *taglen);
extern char *rs_colocated_key(const char *prefix, const char *key,
							  const char *suffix);
extern bool rs_is_cluster(RsConnection *conn);
extern char *rs_cluster_key_node(RsConnection *conn, const char *key);
extern char *rs_sentinel_replica(RsConnection *conn);
extern List *rs_cluster_primaries(RsConnection *conn);
extern void rs_cluster_wait_replicas(RsConnection *conn, const char *key);
extern void rc_end_xact(RsConnection *conn);

extern void rc_open(RsConnection *conn, const RsServerOptions *opts);
extern void rc_open_sentinel(RsConnection *conn, const RsServerOptions *opts);
extern bool rc_is_stale(RsConnection *conn);
extern void rc_free(RsConnection *conn);
extern void rc_send(RsConnection *conn, int argc, const char **argv,
					const size_t *argvlen);
extern struct redisReply *rc_receive(RsConnection *conn);
extern void rc_flush(RsConnection *conn);

/* ---------------------------------------------------------------------
 * in redis_conn.c, for the routing layer
 * ---------------------------------------------------------------------
 */
extern void rs_open_node(RsConnection *conn, const RsServerOptions *opts);
extern void rs_send_formatted(RsConnection *conn, const char *cmd, size_t len);
extern bool rs_connection_is_stale(RsConnection *conn);

#endif							/* REDIS_CLUSTER_H */
