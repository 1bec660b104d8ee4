/*-------------------------------------------------------------------------
 *
 * options.h
 *		  Options of the redis_zset foreign data wrapper: a server's and user
 *		  mapping's connection settings and a foreign table's settings, as
 *		  options.c validates and resolves them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_OPTIONS_H
#define RS_OPTIONS_H

#include "foreign/foreign.h"

/* ---------------------------------------------------------------------
 * in options.c
 * ---------------------------------------------------------------------
 */

/* Levels of the server option tls_verify. */
typedef enum RsTlsVerify
{
	RS_TLS_VERIFY_NONE,			/* encrypt only */
	RS_TLS_VERIFY_CA,			/* the certificate is signed by a trusted CA */
	RS_TLS_VERIFY_FULL			/* ... and names the server */
} RsTlsVerify;

/* Connection settings of one server + user mapping, resolved. */
typedef struct RsServerOptions
{
	char	   *servername;
	char	   *host;
	int			port;
	int			db;
	int			connect_timeout;	/* ms */
	int			command_timeout;	/* ms */
	int64		max_reply_bytes;	/* largest reply, in protocol bytes */
	char	   *user;			/* NULL: no ACL user */
	char	   *password;		/* NULL: no AUTH */
	bool		tls;			/* connect over TLS */
	RsTlsVerify tls_verify;
	char	   *tls_ca_file;	/* NULL: the system's trusted CAs */
	char	   *tls_cert_file;	/* NULL: no client certificate */
	char	   *tls_key_file;	/* NULL: the key is in tls_cert_file */
	char	   *tls_server_name;	/* NULL: host */
	bool		cluster;		/* a Redis Cluster: host/port is a seed */
	char	   *nodes;			/* more seeds, "h:p,h:p"; NULL: none */
	int			read_from;		/* RsReadFrom (redis_cluster.h) */
	char	   *sentinels;		/* Redis Sentinels, "h:p,h:p"; NULL: none,
								 * host/port is the server */
	char	   *sentinel_master;	/* the name the sentinels monitor */
	char	   *sentinel_user;	/* NULL: no ACL user on the sentinels */
	char	   *sentinel_password;	/* NULL: no AUTH on the sentinels */
} RsServerOptions;

/* Foreign table settings, resolved. */
typedef struct RsTableOptions
{
	char	   *key;			/* NULL: the table has a key column */
	int			page_size;
	int			shards;			/* > 1: key is a template with %s */
} RsTableOptions;

extern void rs_get_server_options(ForeignServer *server, UserMapping *user,
								  RsServerOptions *opts);
extern void rs_get_table_options(Oid foreigntableid, RsTableOptions *opts);
extern char *rs_shard_key(const RsTableOptions *opts, int shard);
extern int	rs_get_batch_size(Oid foreigntableid);
extern char *rs_column_name(Oid relid, AttrNumber attnum);
extern bool rs_is_redis_server(ForeignServer *server);


/* One entry of a "host:port,host:port" option (nodes, sentinels). */
typedef struct RsHostPort
{
	char	   *host;
	int			port;
	char	   *addr;			/* "host:port", as written */
} RsHostPort;

extern List *rs_host_port_list(const char *value);

#endif							/* RS_OPTIONS_H */
