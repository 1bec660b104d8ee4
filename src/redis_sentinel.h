/*-------------------------------------------------------------------------
 *
 * redis_sentinel.h
 *		  Declarations of the Redis Sentinel layer (redis_sentinel.c): a
 *		  standalone server whose primary (and, for read_from, a replica) is
 *		  found by asking its sentinels.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_REDIS_SENTINEL_H
#define RS_REDIS_SENTINEL_H

#include "options.h"
#include "redis_conn.h"

/* ---------------------------------------------------------------------
 * in redis_sentinel.c
 * ---------------------------------------------------------------------
 */
extern void rs_sentinel_open(RsConnection *conn, const RsServerOptions *opts);
extern bool rs_sentinel_open_replica(RsConnection *conn, const RsServerOptions *opts,
									 char **why);

#endif							/* RS_REDIS_SENTINEL_H */
