/*-------------------------------------------------------------------------
 *
 * fdw_import.c
 *		  IMPORT FOREIGN SCHEMA for redis_zset: one foreign table per sorted
 *		  set whose key matches a pattern.
 *
 * The "remote schema" is a Redis glob pattern, e.g.
 *
 *		IMPORT FOREIGN SCHEMA "clicks:daily:*" FROM SERVER redis INTO clicks;
 *
 * Keys are found with SCAN ... MATCH ... TYPE zset, which walks the keyspace
 * in small steps and never blocks Redis the way KEYS does; on a Redis
 * Cluster every primary's keyspace is walked.  Each table is
 * named after its key and has the columns (member text, score <score_type>,
 * rank bigint).  LIMIT TO and EXCEPT name keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"

#include "fdw.h"
#include "redis_conn.h"
#include "zset.h"
#include "redis_cluster.h"

/* Keys asked for per SCAN step. */
#define RS_SCAN_COUNT "1000"

static int	rs_compare_keys(const ListCell *a, const ListCell *b);

/*
 * rsImportForeignSchema
 *		Return the CREATE FOREIGN TABLE commands for the sorted sets whose keys
 *		match stmt->remote_schema.  Options: score_type (a type name, default
 *		double precision) and page_size (passed on to every table).
 */
List *
rsImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	RsConnection *conn = rs_get_connection(server, GetUserMapping(GetUserId(), serverOid));
	const char *score_type = "double precision";
	char	   *table_opts = "";
	char	   *cursor = pstrdup("0");
	List	   *keys = NIL;
	List	   *commands = NIL;
	ListCell   *lc;
	char	   *prev = NULL;

	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "score_type") == 0)
		{
			char	   *name = defGetString(def);
			MemoryContext cxt = CurrentMemoryContext;
			Oid			typid = InvalidOid;
			int32		typmod = -1;

			/* Parse the name, so that only a real type reaches the SQL. */
			PG_TRY();
			{
				parseTypeString(name, &typid, &typmod, false);
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(cxt);
				edata = CopyErrorData();
				FlushErrorState();
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"score_type\": \"%s\"", name),
						 errdetail_internal("%s", edata->message),
						 errhint("Give the name of a type, such as bigint, numeric or double precision.")));
			}
			PG_END_TRY();
			score_type = format_type_with_typemod(typid, typmod);
		}
		else if (strcmp(def->defname, "page_size") == 0)
			table_opts = psprintf(", page_size %s", quote_literal_cstr(defGetString(def)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options in this context are: score_type, page_size.")));
	}

	/*
	 * Walk the keyspace of every primary (one for a standalone server);
	 * SCAN may return a key more than once.
	 */
	rs_claim_connection(conn, &keys, NULL);
	foreach(lc, rs_cluster_primaries(conn))
	{
		RsConnection *node = lfirst(lc);

		cursor = pstrdup("0");
		do
		{
			List	   *found = NIL;
			ListCell   *fc;

			cursor = zr_scan_zsets(node, cursor, stmt->remote_schema, RS_SCAN_COUNT, &found);
			foreach(fc, found)
			{
				text	   *k = lfirst(fc);
				const char *kstr = VARDATA_ANY(k);
				int			klen = VARSIZE_ANY_EXHDR(k);

				if (memchr(kstr, '\0', klen) != NULL)
					ereport(WARNING,
							(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
							 errmsg("skipping Redis key 0x%s: it contains a zero byte",
									rs_hex_bytes(kstr, klen, 64))));
				else
					keys = lappend(keys, text_to_cstring(k));
			}
		} while (strcmp(cursor, "0") != 0);
	}
	rs_release_connection(conn, &keys);

	list_sort(keys, rs_compare_keys);
	foreach(lc, keys)
	{
		char	   *key = lfirst(lc);
		int			len = strlen(key);

		if (prev != NULL && strcmp(prev, key) == 0)
			continue;
		prev = key;
		if (!pg_verify_mbstr(GetDatabaseEncoding(), key, len, true))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("skipping Redis key 0x%s: it is not valid in encoding \"%s\"",
							rs_hex_bytes(key, len, 64), GetDatabaseEncodingName())));
			continue;
		}
		if (len >= NAMEDATALEN)
		{
			ereport(WARNING,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("skipping Redis key \"%s\": it is too long for a table name", key),
					 errhint("Create its table with CREATE FOREIGN TABLE ... OPTIONS (key '...').")));
			continue;
		}
		if (!IsImportableForeignTable(key, stmt))
			continue;
		commands = lappend(commands,
						   psprintf("CREATE FOREIGN TABLE %s (member text, score %s, rank bigint) "
									"SERVER %s OPTIONS (key %s%s)",
									quote_identifier(key), score_type,
									quote_identifier(server->servername),
									quote_literal_cstr(key), table_opts));
	}
	return commands;
}

static int
rs_compare_keys(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}
