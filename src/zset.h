/*-------------------------------------------------------------------------
 *
 * zset.h
 *		  Sorted sets over the command layer: reading pages of rank windows,
 *		  member lookups, cardinalities and key scans (zset_reader.c),
 *		  writing members (zset_writer.c), snapshots of a key
 *		  (zset_snapshot.c), and the error context that names a member.
 *		  The foreign table and the sync engine reach Redis only through
 *		  these functions and redis_conn.h's connections.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_ZSET_H
#define RS_ZSET_H

#include "nodes/pg_list.h"

#include "compat.h"
#include "redis_conn.h"

/* ---------------------------------------------------------------------
 * in zset_reader.c
 * ---------------------------------------------------------------------
 */

/* One page of a sorted set, in the memory context current when it was read. */
typedef struct ZsetPage
{
	int			n;
	int64		first_rank;		/* rank of entry 0, or -1 if unknown */
	char	  **members;		/* not NUL-safe: use member_lens */
	int		   *member_lens;
	char	  **scores;			/* NUL-terminated score text, NULL for nil */
	int64	   *ranks;			/* only for member lookups, else NULL */
} ZsetPage;

extern void zr_send_range(RsConnection *conn, const char *key, int64 start, int64 stop);
extern void zr_receive_range(RsConnection *conn, const char *key, int64 start,
							 ZsetPage *page);
extern void zr_send_mscore(RsConnection *conn, const char *key, int n,
						   char **members, int *lens);
extern char **zr_receive_mscore(RsConnection *conn, const char *key, int n);
extern void zr_send_rank(RsConnection *conn, const char *key,
						 const char *member, int len);
extern int64 zr_receive_integer(RsConnection *conn, const char *command,
								const char *key, bool *isnull);
extern void zr_send_simple(RsConnection *conn, int argc, const char **argv);
extern int64 zr_integer_command(RsConnection *conn, const char *key, int argc,
								const char **argv);
extern int64 zr_card(RsConnection *conn, const char *key);
extern char *zr_scan_zsets(RsConnection *conn, const char *cursor, const char *pattern,
						   const char *count, List **keys);
pg_noreturn extern void zr_protocol_error(RsConnection *conn, const char *command, const char *key);
extern char *rs_hex_bytes(const char *data, int len, int maxbytes);

/* Error context for converting one member's values. */
typedef struct RsMemberContext
{
	const char *key;
	const char *member;
	int			len;
	int64		rank;			/* -1 if unknown */
	bool		clip;			/* name at most 64 bytes of the member */
} RsMemberContext;

extern char *rs_member_label(const char *member, int len);
extern char *rs_short_member_label(const char *member, int len);
extern void rs_member_error_callback(void *arg);
extern void rs_verify_member(const char *key, const char *member, int len,
							 int64 rank);

/* ---------------------------------------------------------------------
 * in zset_writer.c
 * ---------------------------------------------------------------------
 */
extern void zr_send_zadd(RsConnection *conn, const char *key, const char *flag,
						 const char *score, const char *member, int len);
extern void zr_receive_added(RsConnection *conn, int n, const char *const *keys,
							 bool *added);
extern void zr_send_rem(RsConnection *conn, const char *key, const char *member, int len);
extern void zr_send_rename(RsConnection *conn, const char *old_key, const char *new_key,
						   const char *old_member, int old_len, const char *new_member,
						   int new_len, const char *score);
extern int	zr_receive_rename(RsConnection *conn, const char *key, int64 *rank);
extern void zr_send_delete(RsConnection *conn, const char *key, const char *member, int len);
extern bool zr_receive_delete(RsConnection *conn, const char *key, char **score,
							  int64 *rank);
extern void zr_unlink(RsConnection *conn, const char *key);

/* ---------------------------------------------------------------------
 * in zset_snapshot.c
 * ---------------------------------------------------------------------
 */
/* A copy of a sorted set in progress (see zset_snapshot.c). */
typedef struct ZsetCopy
{
	const char *source;			/* the key copied */
	const char *copy;			/* the copy's key */
	char		ttl[16];		/* the copy's expiry in seconds */
	char	   *score;			/* the last pair read from the source */
	char	   *member;
	size_t		member_len;
	int64		card_at_start;	/* the source's size when the copy began */
	int64		copied;			/* members in the copy: ranks below are final */
	bool		done;			/* the copy reached the source's end */
} ZsetCopy;

extern void zr_copy_begin(RsConnection *conn, ZsetCopy *copy, const char *source,
						  const char *copy_key, int ttl_seconds);
extern bool zr_copy_step(RsConnection *conn, ZsetCopy *copy);
extern int64 zr_copy_end(RsConnection *conn, ZsetCopy *copy);
extern char *zr_copy_key(const char *copy, int64 part);
extern int64 zr_copy_nkeys(int64 members);
extern void zr_copy_drop(RsConnection *conn, const char *copy);
extern int64 zr_copy_renew(RsConnection *conn, const char *copy_key, int64 members,
						   int ttl_seconds);

#endif							/* RS_ZSET_H */
