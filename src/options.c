/*-------------------------------------------------------------------------
 *
 * options.c
 *		  Validation and lookup of redis_zset options.
 *
 * The validator rejects unrecognized options for each kind of object and
 * invalid values when they are set, so that a scan never meets a bad
 * option.  The lookup functions fill in defaults.
 *
 * A server is reached at host and port, or, with cluster 'on', through
 * the seeds of a Redis Cluster (redis_cluster.c), or, with sentinels and
 * sentinel_master, at the primary that its Redis Sentinels name
 * (redis_sentinel.c); the sentinels' own credentials are the user
 * mapping's sentinel_user and sentinel_password.
 *
 * The TLS options that name files (tls_ca_file, tls_cert_file,
 * tls_key_file) make the backend open those files as the database server's
 * operating system user, so only superusers may set them, as only they may
 * read server files with pg_read_file().  The validator sees a server's
 * whole option list, so a server holding such an option can then only be
 * altered by a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "options.h"
#include "redis_cluster.h"
#include "redis_conn.h"

#define RS_FDW_NAME			"redis_zset"

/* Largest page_size of a foreign table. */
#define RS_MAX_PAGE_SIZE	1000000

/* Largest shards of a foreign table. */
#define RS_MAX_SHARDS		1024

/* Rows per pipelined batch of an INSERT, unless batch_size says otherwise. */
#define RS_DEFAULT_BATCH_SIZE	1000
#define RS_MAX_BATCH_SIZE		100000

/* Bounds and default of the server option max_reply_bytes. */
#define RS_MIN_REPLY_BYTES		((int64) 1024)
#define RS_MAX_REPLY_BYTES		((int64) 4 * 1024 * 1024 * 1024)
#define RS_DEFAULT_REPLY_BYTES	((int64) 256 * 1024 * 1024)

/* Kinds of option value. */
typedef enum RsOptionType
{
	RS_OPT_STRING,				/* any non-empty string */
	RS_OPT_INT,					/* integer within [min, max] */
	RS_OPT_BYTES,				/* a size in bytes, with optional unit */
	RS_OPT_FIELD,				/* member, score, rank or key */
	RS_OPT_BOOL,				/* on/off, as parse_bool reads it */
	RS_OPT_TLS_VERIFY,			/* full, ca or none */
	RS_OPT_FILE,				/* a file on the database server */
	RS_OPT_ONOFF,				/* on/off, as parse_bool reads it */
	RS_OPT_NODES,				/* "host:port,host:port" */
	RS_OPT_READ_FROM			/* primary, replica or replica_preferred */
} RsOptionType;

typedef struct RsOption
{
	const char *name;
	Oid			context;		/* catalog the option belongs to */
	RsOptionType type;
	int			min;
	int			max;
} RsOption;

static const RsOption rs_options[] = {
	{"host", ForeignServerRelationId, RS_OPT_STRING, 0, 0},
	{"port", ForeignServerRelationId, RS_OPT_INT, 1, 65535},
	{"db", ForeignServerRelationId, RS_OPT_INT, 0, INT_MAX},
	{"connect_timeout", ForeignServerRelationId, RS_OPT_INT, 1, 3600000},
	{"command_timeout", ForeignServerRelationId, RS_OPT_INT, 1, 3600000},
	{"batch_size", ForeignServerRelationId, RS_OPT_INT, 1, RS_MAX_BATCH_SIZE},
	{"max_reply_bytes", ForeignServerRelationId, RS_OPT_BYTES, 0, 0},
	{"tls", ForeignServerRelationId, RS_OPT_BOOL, 0, 0},
	{"tls_verify", ForeignServerRelationId, RS_OPT_TLS_VERIFY, 0, 0},
	{"tls_ca_file", ForeignServerRelationId, RS_OPT_FILE, 0, 0},
	{"tls_cert_file", ForeignServerRelationId, RS_OPT_FILE, 0, 0},
	{"tls_key_file", ForeignServerRelationId, RS_OPT_FILE, 0, 0},
	{"tls_server_name", ForeignServerRelationId, RS_OPT_STRING, 0, 0},
	{"cluster", ForeignServerRelationId, RS_OPT_ONOFF, 0, 0},
	{"nodes", ForeignServerRelationId, RS_OPT_NODES, 0, 0},
	{"read_from", ForeignServerRelationId, RS_OPT_READ_FROM, 0, 0},
	{"sentinels", ForeignServerRelationId, RS_OPT_NODES, 0, 0},
	{"sentinel_master", ForeignServerRelationId, RS_OPT_STRING, 0, 0},
	{"user", UserMappingRelationId, RS_OPT_STRING, 0, 0},
	{"password", UserMappingRelationId, RS_OPT_STRING, 0, 0},
	{"sentinel_user", UserMappingRelationId, RS_OPT_STRING, 0, 0},
	{"sentinel_password", UserMappingRelationId, RS_OPT_STRING, 0, 0},
	{"key", ForeignTableRelationId, RS_OPT_STRING, 0, 0},
	{"page_size", ForeignTableRelationId, RS_OPT_INT, 1, RS_MAX_PAGE_SIZE},
	{"batch_size", ForeignTableRelationId, RS_OPT_INT, 1, RS_MAX_BATCH_SIZE},
	{"shards", ForeignTableRelationId, RS_OPT_INT, 1, RS_MAX_SHARDS},
	{"column_name", AttributeRelationId, RS_OPT_FIELD, 0, 0},
	{NULL, InvalidOid, RS_OPT_STRING, 0, 0}
};

static const RsOption *rs_find_option(const char *name, Oid context);
static int	rs_parse_int_option(const RsOption *opt, const char *value);
static int64 rs_parse_bytes_option(const RsOption *opt, const char *value);
static bool rs_parse_bool_option(const RsOption *opt, const char *value);
static RsTlsVerify rs_parse_tls_verify(const RsOption *opt, const char *value);
static void rs_check_nodes(const RsOption *opt, const char *value);
static RsReadFrom rs_parse_read_from(const RsOption *opt, const char *value);
static void rs_check_cluster_options(List *options);
static void rs_check_shard_template(const char *key);

PG_FUNCTION_INFO_V1(redis_zset_validator);

/*
 * redis_zset_validator
 *		Validate the options given to a CREATE or ALTER of a redis_zset
 *		wrapper, server, user mapping, foreign table or column.
 */
Datum
redis_zset_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const RsOption *opt = rs_find_option(def->defname, catalog);
		char	   *value;

		if (opt == NULL)
		{
			StringInfoData buf;
			const RsOption *o;

			initStringInfo(&buf);
			for (o = rs_options; o->name; o++)
			{
				if (o->context == catalog)
					appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", o->name);
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 buf.len > 0
					 ? errhint("Valid options in this context are: %s.", buf.data)
					 : errhint("There are no valid options in this context.")));
		}

		value = defGetString(def);
		switch (opt->type)
		{
			case RS_OPT_STRING:
				if (value[0] == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must not be empty", opt->name)));
				break;
			case RS_OPT_INT:
				(void) rs_parse_int_option(opt, value);
				break;
			case RS_OPT_BYTES:
				(void) rs_parse_bytes_option(opt, value);
				break;
			case RS_OPT_FIELD:
				if (strcmp(value, "member") != 0 && strcmp(value, "score") != 0 &&
					strcmp(value, "rank") != 0 && strcmp(value, "key") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"%s\": \"%s\"",
									opt->name, value),
							 errhint("Valid values are \"member\", \"score\", \"rank\" and \"key\".")));
				break;
			case RS_OPT_BOOL:
				/* tls is the only one; a build without TLS cannot use it */
				if (rs_parse_bool_option(opt, value) && !rs_tls_available())
					rs_tls_unsupported();
				break;
			case RS_OPT_TLS_VERIFY:
				(void) rs_parse_tls_verify(opt, value);
				break;
			case RS_OPT_ONOFF:
				(void) rs_parse_bool_option(opt, value);
				break;
			case RS_OPT_NODES:
				rs_check_nodes(opt, value);
				break;
			case RS_OPT_READ_FROM:
				(void) rs_parse_read_from(opt, value);
				break;
			case RS_OPT_FILE:
				if (value[0] == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must not be empty", opt->name)));
				if (!superuser())
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("permission denied to set option \"%s\"", opt->name),
							 errdetail("Only superusers may set options that name files on the database server.")));
				break;
		}
	}
	if (catalog == ForeignServerRelationId)
		rs_check_cluster_options(options);

	/* A sharded table's key is a template with one %s. */
	if (catalog == ForeignTableRelationId)
	{
		const char *key = NULL;
		int			shards = 1;

		foreach(cell, options)
		{
			DefElem    *def = (DefElem *) lfirst(cell);

			if (strcmp(def->defname, "key") == 0)
				key = defGetString(def);
			else if (strcmp(def->defname, "shards") == 0)
				shards = rs_parse_int_option(rs_find_option("shards", catalog),
											 defGetString(def));
		}
		if (shards > 1 && key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("option \"shards\" requires option \"key\""),
					 errdetail("A sharded table reads the keys that its \"key\" template names, one per shard."),
					 errhint("Set \"key\" to a template with %%s in place of the shard number, such as 'clicks:{%%s}:2026-11-21'.")));
		if (shards > 1)
			rs_check_shard_template(key);
	}
	PG_RETURN_VOID();
}

/*
 * rs_check_nodes
 *		Check a list of seeds or sentinels, "host:port" separated by commas:
 *		each with a host and a port from 1 to 65535, and no "@" (credentials,
 *		which the error must not echo either).
 */
static void
rs_check_nodes(const RsOption *opt, const char *value)
{
	char	   *copy;
	char	   *item;
	int			n = 0;

	/*
	 * "user:password@host:port" would put a password where every role can
	 * read it (pg_foreign_server); checked first, so that no other error
	 * echoes it either.
	 */
	if (strchr(value, '@') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\"", opt->name),
				 errdetail("The value holds \"@\": a server's options are readable by every role, so they must not hold a user name or password."),
				 strcmp(opt->name, "sentinels") == 0
				 ? errhint("Give the sentinels as host:port, and their user and password as the options sentinel_user and sentinel_password of a user mapping.")
				 : errhint("Give the nodes as host:port, and the user and password as the options user and password of a user mapping.")));

	copy = pstrdup(value);
	item = copy;
	for (;;)
	{
		char	   *comma = strchr(item, ',');
		char	   *colon;
		char	   *end;
		long		port;

		if (comma != NULL)
			*comma = '\0';
		while (*item == ' ')
			item++;
		colon = strrchr(item, ':');
		errno = 0;
		port = colon ? strtol(colon + 1, &end, 10) : 0;
		if (colon == NULL || colon == item || colon[1] == '\0' || *end != '\0' ||
			errno != 0 || port < 1 || port > 65535)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
					 errdetail("Entry %d, \"%s\", is not of the form host:port with a port from 1 to 65535.",
							   n + 1, item),
					 strcmp(opt->name, "sentinels") == 0
					 ? errhint("Give the sentinels as a comma-separated list, such as \"10.0.0.2:26379,10.0.0.3:26379\".")
					 : errhint("Give the nodes as a comma-separated list, such as \"10.0.0.2:6379,10.0.0.3:6379\".")));
		n++;
		if (comma == NULL)
			break;
		item = comma + 1;
	}
	pfree(copy);
}

/*
 * rs_parse_read_from
 *		Parse read_from: "primary", "replica" or "replica_preferred".
 */
static RsReadFrom
rs_parse_read_from(const RsOption *opt, const char *value)
{
	if (strcmp(value, "primary") == 0)
		return RS_READ_PRIMARY;
	if (strcmp(value, "replica") == 0)
		return RS_READ_REPLICA;
	if (strcmp(value, "replica_preferred") == 0)
		return RS_READ_REPLICA_PREFERRED;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
			 errhint("Valid values are \"primary\", \"replica\" and \"replica_preferred\".")));
	return RS_READ_PRIMARY;		/* keep compiler quiet */
}

/*
 * rs_check_cluster_options
 *		Check the options of a server that only make sense together: nodes
 *		needs cluster 'on', read_from (other than 'primary') cluster 'on' or
 *		sentinels, a cluster has only database 0, and sentinels and
 *		sentinel_master go together, on a server that is not a cluster.
 */
static void
rs_check_cluster_options(List *options)
{
	bool		cluster = false;
	bool		has_nodes = false;
	bool		has_sentinels = false;
	bool		has_master = false;
	RsReadFrom	read_from = RS_READ_PRIMARY;
	int			db = 0;
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "cluster") == 0)
			cluster = rs_parse_bool_option(rs_find_option("cluster", ForeignServerRelationId),
										   defGetString(def));
		else if (strcmp(def->defname, "nodes") == 0)
			has_nodes = true;
		else if (strcmp(def->defname, "sentinels") == 0)
			has_sentinels = true;
		else if (strcmp(def->defname, "sentinel_master") == 0)
			has_master = true;
		else if (strcmp(def->defname, "read_from") == 0)
			read_from = rs_parse_read_from(rs_find_option("read_from", ForeignServerRelationId),
										   defGetString(def));
		else if (strcmp(def->defname, "db") == 0)
			db = rs_parse_int_option(rs_find_option("db", ForeignServerRelationId),
									 defGetString(def));
	}
	if (has_nodes && !cluster)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"nodes\" requires option \"cluster\" to be \"on\""),
				 errdetail("The nodes are seeds of a Redis Cluster; a standalone server is reached at host and port only."),
				 errhint("Set the option cluster 'on' in the same command.")));
	if (read_from != RS_READ_PRIMARY && !cluster && !has_sentinels)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("option \"read_from\" requires option \"cluster\" to be \"on\" or option \"sentinels\""),
				 errdetail("Replicas are found by redis_sync in a Redis Cluster or through Redis Sentinel; a standalone server is read at host and port."),
				 errhint("Set the option cluster 'on' or the options sentinels and sentinel_master in the same command, or read_from 'primary'.")));
	if (cluster && db != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"db\" must be 0 when option \"cluster\" is \"on\""),
				 errdetail("A Redis Cluster has only database 0.")));
	if (has_sentinels && !has_master)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"sentinels\" requires option \"sentinel_master\""),
				 errdetail("The sentinels are asked for the primary by the name they monitor it under."),
				 errhint("Set the option sentinel_master in the same command.")));
	if (has_master && !has_sentinels)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"sentinel_master\" requires option \"sentinels\""),
				 errdetail("The name of a primary is only looked up with the sentinels that monitor it."),
				 errhint("Set the option sentinels in the same command.")));
	if (has_sentinels && cluster)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"sentinels\" and \"cluster\" cannot be used together"),
				 errdetail("Redis Sentinel watches standalone servers; a Redis Cluster promotes its replicas itself."),
				 errhint("Set cluster 'off', or drop the options sentinels and sentinel_master.")));
}

/*
 * rs_check_shard_template
 *		The key of a sharded table must contain exactly one "%s" (the shard
 *		number) and no other "%" conversion; "%%" stands for a literal "%".
 */
static void
rs_check_shard_template(const char *key)
{
	int			nshard = 0;
	const char *p;

	for (p = key; *p; p++)
	{
		if (*p != '%')
			continue;
		if (p[1] == '%')
			p++;
		else if (p[1] == 's')
		{
			nshard++;
			p++;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid key template \"%s\" of a sharded table", key),
					 errdetail("The template contains \"%%%.1s\", but only %%s (the shard number) and %%%% (a literal %%) may follow a %%.",
							   p + 1),
					 errhint("Write %%%% for a literal %% in the key.")));
	}
	if (nshard != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key template \"%s\" of a sharded table", key),
				 errdetail("The template of a table with more than one shard must contain %%s exactly once, but it contains it %d times.",
						   nshard),
				 errhint("Put %%s where the shard number goes, such as 'clicks:{%%s}:2026-11-21'.")));
}

/*
 * rs_shard_key
 *		The key of shard "shard" of a sharded table: its key template with
 *		%s replaced by the shard number and %% by %.  A table with one shard
 *		reads its key option as it is (it may contain "%").
 */
char *
rs_shard_key(const RsTableOptions *opts, int shard)
{
	StringInfoData buf;
	const char *p;

	if (opts->shards <= 1)
		return pstrdup(opts->key);
	initStringInfo(&buf);
	for (p = opts->key; *p; p++)
	{
		if (*p == '%' && p[1] == 's')
		{
			appendStringInfo(&buf, "%d", shard);
			p++;
		}
		else if (*p == '%' && p[1] == '%')
		{
			appendStringInfoChar(&buf, '%');
			p++;
		}
		else
			appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

static const RsOption *
rs_find_option(const char *name, Oid context)
{
	const RsOption *o;

	for (o = rs_options; o->name; o++)
	{
		if (o->context == context && strcmp(o->name, name) == 0)
			return o;
	}
	return NULL;
}

/*
 * rs_parse_int_option
 *		Parse an integer option value, raising an error that names the option
 *		if it is not an integer within the option's bounds.
 */
static int
rs_parse_int_option(const RsOption *opt, const char *value)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (value[0] == '\0' || *end != '\0' || errno != 0 || v < opt->min || v > opt->max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 errdetail("The value must be an integer from %d to %d.",
						   opt->min, opt->max)));
	return (int) v;
}

/*
 * rs_parse_bytes_option
 *		Parse a size in bytes, with an optional memory unit as in
 *		postgresql.conf ("1024", "64kB", "256MB", "4GB"), raising an error
 *		that names the option if it is not a size from RS_MIN_REPLY_BYTES to
 *		RS_MAX_REPLY_BYTES.
 */
static int64
rs_parse_bytes_option(const RsOption *opt, const char *value)
{
	double		v;
	const char *hintmsg = NULL;

	if (!parse_real(value, &v, GUC_UNIT_BYTE, &hintmsg) ||
		v < RS_MIN_REPLY_BYTES || v > RS_MAX_REPLY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 errdetail("The value must be a size from 1kB to 4GB, in bytes or with a unit (B, kB, MB or GB)."),
				 hintmsg ? errhint("%s", _(hintmsg)) : 0));
	return (int64) v;
}

/*
 * rs_parse_bool_option
 *		Parse on/off (or true/false, yes/no, 1/0), raising an error that
 *		names the option otherwise.
 */
static bool
rs_parse_bool_option(const RsOption *opt, const char *value)
{
	bool		result;

	if (!parse_bool(value, &result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 errhint("Valid values are \"on\" and \"off\".")));
	return result;
}

/*
 * rs_parse_tls_verify
 *		Parse a tls_verify level: "full" (the certificate chains to a trusted
 *		CA and names the server), "ca" (it chains to a trusted CA) or "none".
 */
static RsTlsVerify
rs_parse_tls_verify(const RsOption *opt, const char *value)
{
	if (strcmp(value, "full") == 0)
		return RS_TLS_VERIFY_FULL;
	if (strcmp(value, "ca") == 0)
		return RS_TLS_VERIFY_CA;
	if (strcmp(value, "none") == 0)
		return RS_TLS_VERIFY_NONE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
			 errhint("Valid values are \"full\", \"ca\" and \"none\".")));
	return RS_TLS_VERIFY_FULL;	/* keep compiler quiet */
}

/* Parse an already validated integer option. */
static int
rs_int_option(const char *name, Oid context, DefElem *def)
{
	return rs_parse_int_option(rs_find_option(name, context), defGetString(def));
}

/*
 * rs_get_server_options
 *		Resolve the connection settings of a server and (optional) user
 *		mapping, with defaults for what is not set.
 */
void
rs_get_server_options(ForeignServer *server, UserMapping *user, RsServerOptions *opts)
{
	ListCell   *lc;

	opts->servername = server->servername;
	opts->host = "127.0.0.1";
	opts->port = 6379;
	opts->db = 0;
	opts->connect_timeout = 2000;
	opts->command_timeout = 10000;
	opts->max_reply_bytes = RS_DEFAULT_REPLY_BYTES;
	opts->user = NULL;
	opts->password = NULL;
	opts->tls = false;
	opts->tls_verify = RS_TLS_VERIFY_FULL;
	opts->tls_ca_file = NULL;
	opts->tls_cert_file = NULL;
	opts->tls_key_file = NULL;
	opts->tls_server_name = NULL;
	opts->cluster = false;
	opts->nodes = NULL;
	opts->read_from = RS_READ_PRIMARY;
	opts->sentinels = NULL;
	opts->sentinel_master = NULL;
	opts->sentinel_user = NULL;
	opts->sentinel_password = NULL;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "host") == 0)
			opts->host = defGetString(def);
		else if (strcmp(def->defname, "port") == 0)
			opts->port = rs_int_option("port", ForeignServerRelationId, def);
		else if (strcmp(def->defname, "db") == 0)
			opts->db = rs_int_option("db", ForeignServerRelationId, def);
		else if (strcmp(def->defname, "connect_timeout") == 0)
			opts->connect_timeout = rs_int_option("connect_timeout", ForeignServerRelationId, def);
		else if (strcmp(def->defname, "command_timeout") == 0)
			opts->command_timeout = rs_int_option("command_timeout", ForeignServerRelationId, def);
		else if (strcmp(def->defname, "max_reply_bytes") == 0)
			opts->max_reply_bytes =
				rs_parse_bytes_option(rs_find_option("max_reply_bytes", ForeignServerRelationId),
									  defGetString(def));
		else if (strcmp(def->defname, "tls") == 0)
			opts->tls = rs_parse_bool_option(rs_find_option("tls", ForeignServerRelationId),
											 defGetString(def));
		else if (strcmp(def->defname, "tls_verify") == 0)
			opts->tls_verify =
				rs_parse_tls_verify(rs_find_option("tls_verify", ForeignServerRelationId),
									defGetString(def));
		else if (strcmp(def->defname, "tls_ca_file") == 0)
			opts->tls_ca_file = defGetString(def);
		else if (strcmp(def->defname, "tls_cert_file") == 0)
			opts->tls_cert_file = defGetString(def);
		else if (strcmp(def->defname, "tls_key_file") == 0)
			opts->tls_key_file = defGetString(def);
		else if (strcmp(def->defname, "tls_server_name") == 0)
			opts->tls_server_name = defGetString(def);
		else if (strcmp(def->defname, "cluster") == 0)
			opts->cluster = rs_parse_bool_option(rs_find_option("cluster", ForeignServerRelationId),
												 defGetString(def));
		else if (strcmp(def->defname, "nodes") == 0)
			opts->nodes = defGetString(def);
		else if (strcmp(def->defname, "read_from") == 0)
			opts->read_from = rs_parse_read_from(rs_find_option("read_from", ForeignServerRelationId),
												 defGetString(def));
		else if (strcmp(def->defname, "sentinels") == 0)
			opts->sentinels = defGetString(def);
		else if (strcmp(def->defname, "sentinel_master") == 0)
			opts->sentinel_master = defGetString(def);
	}
	if (user != NULL)
	{
		foreach(lc, user->options)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "user") == 0)
				opts->user = defGetString(def);
			else if (strcmp(def->defname, "password") == 0)
				opts->password = defGetString(def);
			else if (strcmp(def->defname, "sentinel_user") == 0)
				opts->sentinel_user = defGetString(def);
			else if (strcmp(def->defname, "sentinel_password") == 0)
				opts->sentinel_password = defGetString(def);
		}
	}
}

/*
 * rs_get_table_options
 *		Resolve the options of a redis_zset foreign table.
 */
void
rs_get_table_options(Oid foreigntableid, RsTableOptions *opts)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	ListCell   *lc;

	opts->key = NULL;
	opts->page_size = 10000;
	opts->shards = 1;
	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "key") == 0)
			opts->key = defGetString(def);
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = rs_int_option("page_size", ForeignTableRelationId, def);
		else if (strcmp(def->defname, "shards") == 0)
			opts->shards = rs_int_option("shards", ForeignTableRelationId, def);
	}
}

/*
 * rs_get_batch_size
 *		Rows per pipelined INSERT batch of a foreign table: its batch_size
 *		option, else its server's, else RS_DEFAULT_BATCH_SIZE.
 */
int
rs_get_batch_size(Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	List	   *levels[2] = {table->options, GetForeignServer(table->serverid)->options};
	Oid			contexts[2] = {ForeignTableRelationId, ForeignServerRelationId};
	int			i;

	for (i = 0; i < 2; i++)
	{
		ListCell   *lc;

		foreach(lc, levels[i])
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "batch_size") == 0)
				return rs_int_option("batch_size", contexts[i], def);
		}
	}
	return RS_DEFAULT_BATCH_SIZE;
}

/*
 * rs_column_name
 *		The Redis field a column maps to: its column_name option, or else
 *		the column's own name.
 */
char *
rs_column_name(Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(relid, attnum))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "column_name") == 0)
			return defGetString(def);
	}
	return get_attname(relid, attnum, false);
}

/*
 * rs_is_redis_server
 *		True if the server belongs to the redis_zset foreign data wrapper.
 */
bool
rs_is_redis_server(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

	return strcmp(fdw->fdwname, RS_FDW_NAME) == 0;
}

/*
 * rs_host_port_list
 *		The entries (RsHostPort *, palloc'd) of a "host:port,host:port"
 *		option value that rs_check_nodes has accepted, in order.
 */
List *
rs_host_port_list(const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *save = NULL;
	char	   *item;
	List	   *result = NIL;

	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save))
	{
		RsHostPort *hp;
		char	   *colon;

		while (*item == ' ')
			item++;
		colon = strrchr(item, ':');
		if (colon == NULL)
			continue;
		hp = palloc(sizeof(RsHostPort));
		hp->addr = pstrdup(item);
		*colon = '\0';
		hp->host = item;
		hp->port = atoi(colon + 1);
		result = lappend(result, hp);
	}
	return result;
}
