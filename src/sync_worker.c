/*-------------------------------------------------------------------------
 *
 * sync_worker.c
 *		  The sync worker: claims partitions of a run, reads them from Redis
 *		  a segment at a time and upserts them, in member name order, chunk
 *		  by chunk, each chunk together with its offset (the writing of one
 *		  chunk is in chunk_writer.c).
 *
 * A worker runs as the job's owner, so that role's privileges on the
 * target tables and its user mapping apply.  It takes its partition a
 * segment of ranks at a time, reads the segment whole (ZRANGE ... WITHSCORES
 * and ZMSCORE on the total key, a page per chunk, the next page in flight)
 * and sorts it by member name; then per chunk, in name order, it
 *	 1. (rank order only, for segments too large to hold: has the chunk's
 *		ZRANGE reply in flight and sends ZMSCORE of its members and the next
 *		chunk's ZRANGE, so Redis works while PostgreSQL writes),
 *	 2. converts the scores with the target columns' input functions (an
 *		error names the key, member and rank),
 *	 3. in one transaction: upserts the member and daily tables with
 *		set-based statements prepared once (rows whose values are unchanged
 *		are not rewritten, nor even locked while chunks are mostly
 *		unchanged: target_probe.c finds them), records the members it had
 *		to reject (max_rejects), and advances the partition's next_offset
 *		and the count of ranks it read (members_read).
 * A chunk therefore commits completely or not at all, and a resumed run
 * continues at the start of the segment that holds the committed offset,
 * so that no member is skipped, none is written twice and none is counted
 * twice (see rs_sync_partition_once).  A rank range that Redis answers with
 * fewer members than ranks (the key shrank or vanished) still moves the
 * offset, but not members_read: the coordinator then fails the run.  Lost
 * connections and timeouts are retried with backoff; other errors fail the
 * partition and are recorded for the coordinator.
 *
 * In a sharded run a partition reads its shard's key (or copy) and total
 * key, and each page's members are looked up in the other shards' keys as
 * well: a member in two shards fails the run (rs_check_shard_replies).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "redis_conn.h"
#include "redis_sync.h"
#include "sync.h"
#include "sync_worker.h"
#include "zset.h"

#define RS_MAX_RETRIES 5

/* How often a worker looks for the next partition of a live key being copied. */
#define RS_COPY_WAIT_MS 50L

/*
 * A partition is written a segment at a time: up to RS_SEGMENT_MEMBERS
 * consecutive ranks are read whole and written in member name order, so that
 * the upserts walk the target indexes (and the foreign key checks the member
 * index) in order instead of jumping around them.  A segment whose members
 * and scores take more than RS_SEGMENT_BYTES is written in rank order
 * instead, a chunk read at a time.
 */
#define RS_SEGMENT_MEMBERS 100000
#define RS_SEGMENT_BYTES (32 * 1024 * 1024)

/* A segment read whole: its members, scores, totals and ranks. */
typedef struct RsSegment
{
	int			n;
	int			size;			/* allocated entries */
	int64		bytes;			/* member and score bytes held */
	char	  **members;
	int		   *lens;
	char	  **scores;
	char	  **totals;			/* NULL entries for members without a total */
	int64	   *ranks;
} RsSegment;

static void rs_worker_setup(RsWorker *w);
static bool rs_claim_partition(RsWorker *w);
static void rs_sync_partition(RsWorker *w);
static void rs_sync_partition_once(RsWorker *w);
static bool rs_sync_segment_sorted(RsWorker *w, int64 first, int64 last);
static bool rs_read_segment(RsWorker *w, int64 first, RsSegment *seg);
static void rs_sync_ranks(RsWorker *w, int64 first, int64 last);
static int	rs_segment_cmp(const void *a, const void *b, void *arg);
static int64 rs_chunk_next(RsWorker *w, int64 offset);
static const char *rs_chunk_key(RsWorker *w, int64 offset, int64 *local);
static void rs_receive_chunk_range(RsWorker *w, int64 offset, ZsetPage *page);
static void rs_send_chunk_range(RsWorker *w, int64 offset);
static void rs_read_ahead(RsWorker *w, ZsetPage *page, int64 offset, MemoryContext cxt);
static void rs_send_shard_checks(RsWorker *w, ZsetPage *page);
static void rs_check_shard_replies(RsWorker *w, ZsetPage *page);
static void rs_record_failure(RsWorker *w, ErrorData *edata);
static void rs_count_type(Oid typid, RsCountType *ct, MemoryContext cxt);
static SPIPlanPtr rs_prepare_kept(const char *sql, int nargs, Oid *argtypes);
static char *rs_upsert_sql(const char *table, bool daily, bool filtered);

/*
 * rs_sync_worker_main
 *		Entry point of a sync worker.
 */
void
rs_sync_worker_main(Datum main_arg)
{
	RsWorker	w;
	MemoryContext worker_cxt;
	const char *wal_compression;

	memset(&w, 0, sizeof(w));
	memcpy(&w.req, MyBgworkerEntry->bgw_extra, sizeof(RsWorkerRequest));
	w.partition_no = -1;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(w.req.dboid, w.req.owner, 0);
	pgstat_report_appname("redis_sync worker");
	rs_set_safe_search_path();
	/* Data and offset commit together, so a lost commit loses nothing. */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);

	/*
	 * Most of a sync's WAL is full-page images of the pages that its upserts
	 * dirty first after each checkpoint; lz4 shrinks them for little CPU
	 * (bench/README.md has the measurements).  wal_compression needs
	 * superuser, which the worker is not: redis_sync.worker_wal_compression
	 * is the superuser's choice.
	 */
	wal_compression = rs_wal_compression_name();
	if (wal_compression != NULL)
		SetConfigOption("wal_compression", wal_compression, PGC_SUSET, PGC_S_SESSION);

	/*
	 * The filtered upserts must probe the unique index row by row with plain
	 * index scans: a hash or merge anti-join would read the whole target
	 * table for each chunk, a bitmap scan per probe costs twice an index
	 * scan, and JIT compilation would cost more than the chunk.  Nor may
	 * the probe scan the table: a daily table that was empty when last
	 * analyzed looks cheaper to scan than to probe, yet the other workers
	 * fill it while the plan runs, and the scan would read it once per row
	 * of the chunk.  The same holds for the foreign key checks.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);

	/*
	 * The worker's context: its job, key, server, type lookups and probes,
	 * and the chunk and segment contexts, which outlive each transaction.  The process syncs
	 * partitions of one run and exits, so it lives as long as the process.
	 */
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "redis_sync worker",
									   ALLOCSET_DEFAULT_SIZES);
	w.chunk_cxt[0] = AllocSetContextCreate(worker_cxt, "redis_sync chunk",
										   ALLOCSET_DEFAULT_SIZES);
	w.chunk_cxt[1] = AllocSetContextCreate(worker_cxt, "redis_sync next chunk",
										   ALLOCSET_DEFAULT_SIZES);
	w.segment_cxt = AllocSetContextCreate(worker_cxt, "redis_sync segment",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);

	PG_TRY();
	{
		rs_worker_setup(&w);
		while (rs_claim_partition(&w))
		{
			rs_sync_partition(&w);
			w.partition_no = -1;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		rs_record_failure(&w, edata);
		RESUME_INTERRUPTS();
		proc_exit(1);
	}
	PG_END_TRY();
	proc_exit(0);
}

/*
 * rs_worker_setup
 *		Read the job and run, check the target tables and prepare the
 *		upserts.  Redis is connected to by each attempt at a partition
 *		(rs_sync_partition_once), where a lost connection or a stall is
 *		retried: a worker that starts while Redis is restarting or stalled
 *		waits for it like the others.
 */
static void
rs_worker_setup(RsWorker *w)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	char	   *daily_name;
	char	   *sql;
	Oid			ptypes[3];
	MemoryContext cxt;			/* the worker's: w's fields live in it */
	MemoryContext spi_cxt;

	cxt = rs_begin_xact("redis_sync: starting");
	w->job = rs_lookup_job_by_id(w->req.job_id);

	values[0] = Int64GetDatum(w->req.run_id);
	rs_spi_exec("SELECT run_date, read_key, shards, read_key IS DISTINCT FROM source_key "
				"FROM redis_sync.run WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " does not exist", w->req.run_id)));
	w->run_date = DatumGetDateADT(rs_spi_getdatum(0, 1, &isnull));
	w->nshards = DatumGetInt32(rs_spi_getdatum(0, 3, &isnull));
	if (w->nshards <= 1)
	{
		w->nshards = 1;
		w->read_key = MemoryContextStrdup(cxt, TextDatumGetCString(rs_spi_getdatum(0, 2, &isnull)));
		w->reads_copy = DatumGetBool(rs_spi_getdatum(0, 4, &isnull));
		w->total_key = w->job->total_key;
	}
	else
	{
		/* each partition's keys are its shard's (rs_claim_partition) */
		w->shard_keys = MemoryContextAlloc(cxt, sizeof(char *) * w->nshards);
		for (int s = 0; s < w->nshards; s++)
			w->shard_keys[s] = MemoryContextStrdup(cxt, rs_format_shard_key(w->job->daily_key,
																			w->run_date, s));
	}

	/* Targets: checked again, since they may have changed since create_job. */
	daily_name = rs_qualified_relname(w->job->daily_table, w->job->job_name);
	{
		Oid			t;

		rs_validate_target_table(w->job->daily_table, true, w->req.owner, &t);
		rs_count_type(t, &w->daily_type, cxt);
		w->daily_probe = rs_probe_create(w->job->daily_table, true, t, cxt);
	}
	ptypes[0] = TEXTARRAYOID;
	ptypes[1] = get_array_type(w->daily_type.typid);
	ptypes[2] = DATEOID;
	w->daily_plan = rs_prepare_kept(rs_upsert_sql(daily_name, true, false), 3, ptypes);
	w->daily_filtered_plan = rs_prepare_kept(rs_upsert_sql(daily_name, true, true), 3, ptypes);
	w->daily_filter = true;
	sql = psprintf("INSERT INTO %s (name, click_date, click_count) "
				   "SELECT u.n, $3, u.c FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(n, c)",
				   daily_name);
	w->daily_insert_plan = rs_prepare_kept(sql, 3, ptypes);

	if (w->job->total_key != NULL)
	{
		char	   *member_name = rs_qualified_relname(w->job->member_table, w->job->job_name);
		Oid			t;

		rs_validate_target_table(w->job->member_table, false, w->req.owner, &t);
		rs_count_type(t, &w->member_type, cxt);
		w->member_probe = rs_probe_create(w->job->member_table, false, t, cxt);
		ptypes[1] = get_array_type(w->member_type.typid);
		w->member_plan = rs_prepare_kept(rs_upsert_sql(member_name, false, false), 2, ptypes);
		w->member_filtered_plan = rs_prepare_kept(rs_upsert_sql(member_name, false, true), 2, ptypes);
		w->member_filter = true;
		/* Members absent from the total key: new rows get 0, old rows stay. */
		sql = psprintf("INSERT INTO %s (name, click_count) "
					   "SELECT u.n, 0 FROM pg_catalog.unnest($1) AS u(n) "
					   "ON CONFLICT (name) DO NOTHING",
					   member_name);
		w->missing_plan = rs_prepare_kept(sql, 1, ptypes);
	}

	{
		Oid			otypes[7] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};

		w->offset_plan = rs_prepare_kept("UPDATE redis_sync.run_partition SET next_offset = greatest(next_offset, $3), "
										 "rows_written = rows_written + $4, "
										 "missing_total = missing_total + $5, "
										 "members_read = members_read + $6, rejected = rejected + $7, "
										 "updated_at = now(), "
										 "status = CASE WHEN $3 > end_offset THEN 'succeeded' ELSE status END "
										 "WHERE run_id = $1 AND partition_no = $2",
										 7, otypes);
	}

	spi_cxt = MemoryContextSwitchTo(cxt);
	w->server = GetForeignServerByName(w->job->server_name, false);
	rs_check_server_access(w->server, w->req.owner);
	w->user = GetUserMapping(w->req.owner, w->server->serverid);
	MemoryContextSwitchTo(spi_cxt);
	rs_commit_xact();
}

/*
 * rs_upsert_sql
 *		The set-based upsert of a chunk into the daily table (parameters:
 *		names, counts, date) or the member table (names, counts).  Rows whose
 *		count is unchanged are not updated; "filtered" also drops them before
 *		the insert, with a read-only probe, so that they are not even locked.
 */
static char *
rs_upsert_sql(const char *table, bool daily, bool filtered)
{
	const char *key = daily ? "name, click_date" : "name";
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS t (%s, click_count) "
					 "SELECT u.n, %su.c FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(n, c) ",
					 table, key, daily ? "$3, " : "");
	if (filtered)
		appendStringInfo(&sql, "WHERE NOT EXISTS (SELECT FROM %s AS o WHERE o.name = u.n%s "
						 "AND o.click_count = u.c) ",
						 table, daily ? " AND o.click_date = $3" : "");
	appendStringInfo(&sql, "ON CONFLICT (%s) DO UPDATE SET click_count = EXCLUDED.click_count "
					 "WHERE t.click_count IS DISTINCT FROM EXCLUDED.click_count", key);
	return sql.data;
}

/*
 * rs_prepare_kept
 *		Prepare a statement once for the life of the worker.
 */
static SPIPlanPtr
rs_prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	MemoryContextSwitchTo(cxt);
	return plan;
}

/*
 * Look up what is needed to build arrays of, and parse values into, a type;
 * the input function's cache lives in cxt.
 */
static void
rs_count_type(Oid typid, RsCountType *ct, MemoryContext cxt)
{
	Oid			infunc;

	ct->typid = typid;
	get_typlenbyvalalign(typid, &ct->typlen, &ct->typbyval, &ct->typalign);
	getTypeInputInfo(typid, &infunc, &ct->ioparam);
	fmgr_info_cxt(infunc, &ct->infunc, cxt);
}

/*
 * rs_claim_partition
 *		Take the first pending partition of the run that no other worker is
 *		claiming, and mark it running.  While the coordinator is still
 *		copying a live key (the running run has no member count yet), more
 *		partitions are to come: wait for them.  False when none is left.
 *		In a sharded run, a partition of a shard that fewer workers are
 *		reading comes first, and then the shards' partitions in turn (by
 *		start rank, then shard), so that workers claiming at the same moment
 *		(which see the same counts) take different shards too: the shards'
 *		keys, on a cluster their nodes, are read at once.  The partition's
 *		keys are its shard's.
 */
static bool
rs_claim_partition(RsWorker *w)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;

	for (;;)
	{
		bool		found = false;
		bool		more_to_come = false;
		MemoryContext cxt;

		cxt = rs_begin_xact("redis_sync: claiming a partition");
		values[0] = Int64GetDatum(w->req.run_id);

		/*
		 * Whether more partitions are to come is read first: the last
		 * partition and the member count are committed together, so once
		 * the count is seen, the next statement sees every partition.  Read
		 * the other way round, the last partition could be committed
		 * between the two statements, and the worker would leave it.
		 */
		rs_spi_exec("SELECT 1 FROM redis_sync.run WHERE run_id = $1 "
					"AND status = 'running' AND members IS NULL",
					1, argtypes, values, NULL, SPI_OK_SELECT);
		more_to_come = (SPI_processed == 1);
		if (w->nshards > 1)
			rs_spi_exec("SELECT partition_no, next_offset, end_offset, start_offset, shard "
						"FROM redis_sync.run_partition p "
						"WHERE run_id = $1 AND status = 'pending' "
						"ORDER BY (SELECT count(*) FROM redis_sync.run_partition q "
						"          WHERE q.run_id = p.run_id AND q.shard = p.shard "
						"          AND q.status = 'running'), start_offset, shard "
						"LIMIT 1 FOR UPDATE SKIP LOCKED",
						1, argtypes, values, NULL, SPI_OK_SELECT);
		else
			rs_spi_exec("SELECT partition_no, next_offset, end_offset, start_offset, 0 FROM redis_sync.run_partition "
						"WHERE run_id = $1 AND status = 'pending' "
						"ORDER BY partition_no LIMIT 1 FOR UPDATE SKIP LOCKED",
						1, argtypes, values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 1)
		{
			w->partition_no = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
			w->next_offset = DatumGetInt64(rs_spi_getdatum(0, 2, &isnull));
			w->end_offset = DatumGetInt64(rs_spi_getdatum(0, 3, &isnull));
			w->start_offset = DatumGetInt64(rs_spi_getdatum(0, 4, &isnull));
			w->shard = DatumGetInt32(rs_spi_getdatum(0, 5, &isnull));
			values[1] = Int32GetDatum(w->partition_no);
			rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'running', "
						"attempts = attempts + 1, worker_pid = pg_catalog.pg_backend_pid(), "
						"updated_at = now() WHERE run_id = $1 AND partition_no = $2",
						2, argtypes, values, NULL, SPI_OK_UPDATE);
			if (w->nshards > 1)
			{
				/* the key the coordinator recorded for the shard: the key or its copy */
				values[1] = Int32GetDatum(w->shard);
				rs_spi_exec("SELECT read_key, read_key <> source_key FROM redis_sync.run_shard "
							"WHERE run_id = $1 AND shard = $2",
							2, argtypes, values, NULL, SPI_OK_SELECT);
				if (SPI_processed != 1 || w->shard < 0 || w->shard >= w->nshards)
					elog(ERROR, "shard %d of run " INT64_FORMAT " is not recorded",
						 w->shard, w->req.run_id);
				if (w->read_key != NULL)
					pfree(w->read_key);
				if (w->total_key != NULL)
					pfree(w->total_key);
				w->read_key = MemoryContextStrdup(cxt, TextDatumGetCString(rs_spi_getdatum(0, 1, &isnull)));
				w->reads_copy = DatumGetBool(rs_spi_getdatum(0, 2, &isnull));
				w->part_no = -1;
				w->total_key = w->job->total_key == NULL ? NULL :
					MemoryContextStrdup(cxt, rs_shard_total_key(w->job->total_key, w->nshards, w->shard));
			}
			found = true;
		}
		rs_commit_xact();
		if (found || !more_to_come)
			return found;

		pgstat_report_activity(STATE_RUNNING, "redis_sync: waiting for the copy of a live key");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RS_COPY_WAIT_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * rs_sync_partition
 *		Sync the claimed partition from its committed offset, retrying
 *		transient Redis errors with exponential backoff.
 */
static void
rs_sync_partition(RsWorker *w)
{
	volatile int attempt = 0;
	MemoryContext cxt = CurrentMemoryContext;

	for (;;)
	{
		ErrorData  *volatile edata = NULL;

		PG_TRY();
		{
			rs_sync_partition_once(w);
		}
		PG_CATCH();
		{
			/* (no "continue" in here: PG_TRY is a do-while block) */
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (!rs_is_transient_error(edata->sqlerrcode) || attempt >= RS_MAX_RETRIES)
				PG_RE_THROW();
			FlushErrorState();
		}
		PG_END_TRY();

		if (edata == NULL)
			return;

		/* A transient error: start over from the committed offset. */
		AbortOutOfAnyTransaction();
		/* none yet if the attempt failed connecting (which closed it) */
		if (w->conn != NULL)
			rs_discard_connection(w->conn);
		attempt++;
		rs_retry_pause(psprintf("redis_sync run " INT64_FORMAT " partition %d",
								w->req.run_id, w->partition_no),
					   edata, attempt, RS_MAX_RETRIES);
	}
}

/*
 * rs_sync_partition_once
 *		(Re)connect, read the partition's committed offset, and sync it
 *		segment by segment to its end.
 *
 *		Segments start at the partition's start and every RS_SEGMENT_MEMBERS
 *		ranks after it.  A segment's chunks commit in name order, so a
 *		committed offset inside a segment counts the members written, not
 *		ranks: every rank before the segment's start is committed, and of
 *		the segment the first (offset - segment start) members in name
 *		order.  So the partition resumes at the start of the segment that
 *		holds its committed offset and reads that segment whole again: the
 *		members already committed are found unchanged and nothing is written
 *		twice, and they are not counted again (members_read, missing_total,
 *		rejects), since their ordinals lie below the offset the attempt
 *		started from; offsets never move backwards.  If the interrupted
 *		attempt wrote the segment in rank order, the offset is a rank, and
 *		the same holds with the ranks as ordinals.
 */
static void
rs_sync_partition_once(RsWorker *w)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int64		first;

	rs_begin_xact("redis_sync: resuming a partition");
	values[0] = Int64GetDatum(w->req.run_id);
	values[1] = Int32GetDatum(w->partition_no);
	rs_spi_exec("SELECT next_offset FROM redis_sync.run_partition "
				"WHERE run_id = $1 AND partition_no = $2",
				2, argtypes, values, NULL, SPI_OK_SELECT);
	w->next_offset = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	w->conn = rs_get_connection(w->server, w->user);
	/* The read-ahead outlives each chunk's transaction (and subtransaction). */
	w->conn->spans_xacts = true;
	rs_commit_xact();

	if (w->next_offset > w->end_offset)
		return;
	w->resume_offset = w->next_offset;
	first = w->start_offset +
		(w->next_offset - w->start_offset) / RS_SEGMENT_MEMBERS * RS_SEGMENT_MEMBERS;
	while (first <= w->end_offset)
	{
		int64		last = Min(first + RS_SEGMENT_MEMBERS - 1, w->end_offset);

		if (!rs_sync_segment_sorted(w, first, last))
			rs_sync_ranks(w, first, last);
		first = last + 1;
	}
}

/*
 * rs_sync_segment_sorted
 *		Read ranks first to last whole, with their totals, and write them in
 *		chunks in member name order; the last chunk moves the offset to
 *		last + 1 (even when the key has fewer members than that now).  False,
 *		having written nothing, when the segment is too large to hold
 *		(RS_SEGMENT_BYTES).
 */
static bool
rs_sync_segment_sorted(RsWorker *w, int64 first, int64 last)
{
	RsSegment	seg;
	int		   *order;
	int			pos;
	MemoryContext oldcxt;

	MemoryContextReset(w->segment_cxt);
	oldcxt = MemoryContextSwitchTo(w->segment_cxt);
	w->range_end = last;
	if (!rs_read_segment(w, first, &seg))
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(w->segment_cxt);
		return false;
	}
	order = palloc(sizeof(int) * Max(seg.n, 1));
	for (int i = 0; i < seg.n; i++)
		order[i] = i;
	qsort_arg(order, seg.n, sizeof(int), rs_segment_cmp, &seg);

	pos = 0;
	do
	{
		int			n = Min(w->job->chunk_size, seg.n - pos);
		ZsetPage	page;
		char	  **totals = NULL;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(w->chunk_cxt[0]);
		MemoryContextSwitchTo(w->chunk_cxt[0]);
		page.n = n;
		page.first_rank = first;	/* only shown for an empty chunk */
		page.members = palloc(sizeof(char *) * n);
		page.member_lens = palloc(sizeof(int) * n);
		page.scores = palloc(sizeof(char *) * n);
		page.ranks = palloc(sizeof(int64) * n);
		if (w->job->total_key != NULL)
			totals = palloc(sizeof(char *) * n);
		for (int k = 0; k < n; k++)
		{
			int			i = order[pos + k];

			page.members[k] = seg.members[i];
			page.member_lens[k] = seg.lens[i];
			page.scores[k] = seg.scores[i];
			page.ranks[k] = seg.ranks[i];
			if (totals != NULL)
				totals[k] = seg.totals[i];
		}
		/* The last chunk completes the segment: its offset is a rank again. */
		rs_write_chunk(w, &page, totals, pos + n == seg.n ? last + 1 : first + pos + n,
					   first + pos);
		pos += n;
	} while (pos < seg.n);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(w->segment_cxt);
	return true;
}

/*
 * rs_read_segment
 *		Read the ranks from "first" to w->range_end, and their totals, into
 *		"seg" in the current memory context, a chunk-sized page at a time
 *		with the next page's ZRANGE in flight.  False as soon as the segment
 *		holds more than RS_SEGMENT_BYTES; no reply is left pending either way.
 */
static bool
rs_read_segment(RsWorker *w, int64 first, RsSegment *seg)
{
	int64		offset = first;

	memset(seg, 0, sizeof(*seg));
	seg->size = Min(w->range_end - first + 1, RS_SEGMENT_MEMBERS);
	seg->members = palloc(sizeof(char *) * seg->size);
	seg->lens = palloc(sizeof(int) * seg->size);
	seg->scores = palloc(sizeof(char *) * seg->size);
	seg->totals = palloc0(sizeof(char *) * seg->size);
	seg->ranks = palloc(sizeof(int64) * seg->size);

	rs_send_chunk_range(w, offset);
	rs_flush(w->conn);
	while (offset <= w->range_end)
	{
		int64		next = rs_chunk_next(w, offset);
		ZsetPage	page;
		char	  **totals = NULL;

		CHECK_FOR_INTERRUPTS();
		rs_receive_chunk_range(w, offset, &page);
		if (w->job->total_key != NULL && page.n > 0)
			zr_send_mscore(w->conn, w->total_key, page.n, page.members, page.member_lens);
		rs_send_shard_checks(w, &page);
		if (next <= w->range_end)
			rs_send_chunk_range(w, next);
		rs_flush(w->conn);
		if (w->job->total_key != NULL && page.n > 0)
			totals = zr_receive_mscore(w->conn, w->total_key, page.n);
		rs_check_shard_replies(w, &page);
		if (seg->n + page.n > seg->size)
			elog(ERROR, "ZRANGE of Redis key \"%s\" returned more members than ranks " INT64_FORMAT " to " INT64_FORMAT,
				 w->read_key, offset, next - 1);
		for (int k = 0; k < page.n; k++)
		{
			int			i = seg->n++;

			seg->members[i] = page.members[k];
			seg->lens[i] = page.member_lens[k];
			seg->scores[i] = page.scores[k];
			seg->totals[i] = totals ? totals[k] : NULL;
			seg->ranks[i] = offset + k;
			seg->bytes += page.member_lens[k] + strlen(page.scores[k]) +
				(totals && totals[k] ? strlen(totals[k]) : 0);
		}
		if (seg->bytes > RS_SEGMENT_BYTES)
		{
			/* Too large: drain the ZRANGE in flight and give up. */
			if (next <= w->range_end)
				rs_receive_chunk_range(w, next, &page);
			return false;
		}
		offset = next;
	}
	return true;
}


/* qsort_arg comparator: members of a segment in byte order. */
static int
rs_segment_cmp(const void *a, const void *b, void *arg)
{
	RsSegment  *seg = (RsSegment *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	return rs_bytes_cmp(seg->members[i], seg->lens[i], seg->members[j], seg->lens[j]);
}

/*
 * rs_sync_ranks
 *		Sync ranks first to last in rank order, chunk by chunk.
 *
 *		Redis stays a chunk ahead of the writes: before chunk k is written,
 *		chunk k+1's members are already read and the requests for its totals
 *		and for chunk k+2's members are on their way, so Redis answers them
 *		while PostgreSQL writes and no read waits on the writes' path.  Two
 *		memory contexts alternate, one for the chunk being written and one
 *		for the chunk read ahead; each is reset before it is reused, so at
 *		most two chunks are in memory.
 */
static void
rs_sync_ranks(RsWorker *w, int64 first, int64 last)
{
	int64		offset = first;
	ZsetPage	page[2];
	int			cur = 0;

	w->range_end = last;
	if (offset > last)
		return;
	rs_send_chunk_range(w, offset);
	rs_read_ahead(w, &page[cur], offset, w->chunk_cxt[cur]);
	while (offset <= last)
	{
		int64		next = rs_chunk_next(w, offset);
		char	  **totals = NULL;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(w->chunk_cxt[cur]);
		if (w->job->total_key != NULL && page[cur].n > 0)
			totals = zr_receive_mscore(w->conn, w->total_key, page[cur].n);
		rs_check_shard_replies(w, &page[cur]);
		if (next <= last)
			rs_read_ahead(w, &page[1 - cur], next, w->chunk_cxt[1 - cur]);
		rs_write_chunk(w, &page[cur], totals, next, -1);
		MemoryContextSwitchTo(oldcxt);
		cur = 1 - cur;
		offset = next;
	}
}

/*
 * The offset that follows the chunk starting at "offset": a chunk ends at
 * the end of the range being read, and in a copy, at the end of the copy's
 * part that holds "offset", so that one command reads it.
 */
static int64
rs_chunk_next(RsWorker *w, int64 offset)
{
	int64		last = Min(offset + w->job->chunk_size - 1, w->range_end);

	if (w->reads_copy)
	{
		int64		cap = w->req.copy_key_members;

		last = Min(last, (offset / cap + 1) * cap - 1);
	}
	return last + 1;
}

/*
 * rs_chunk_key
 *		The key that holds rank "offset" of the run's read key, and the rank
 *		it has there: the read key itself, or in a copy, the part that holds
 *		it (zset_snapshot.c).
 */
static const char *
rs_chunk_key(RsWorker *w, int64 offset, int64 *local)
{
	int64		part;

	*local = offset;
	if (!w->reads_copy)
		return w->read_key;
	part = offset / w->req.copy_key_members;
	*local = offset - part * w->req.copy_key_members;
	if (w->part_key == NULL || w->part_no != part)
	{
		if (w->part_key != NULL)
			pfree(w->part_key);
		w->part_key = MemoryContextStrdup(TopMemoryContext, zr_copy_key(w->read_key, part));
		w->part_no = part;
	}
	return w->part_key;
}

/* Queue the ZRANGE of the chunk starting at "offset". */
static void
rs_send_chunk_range(RsWorker *w, int64 offset)
{
	int64		local;
	const char *key = rs_chunk_key(w, offset, &local);

	zr_send_range(w->conn, key, local, local + rs_chunk_next(w, offset) - 1 - offset);
}

/*
 * Receive the ZRANGE of the chunk starting at "offset" (sent by
 * rs_send_chunk_range) into "page", its ranks those of the run's read key.
 */
static void
rs_receive_chunk_range(RsWorker *w, int64 offset, ZsetPage *page)
{
	int64		local;
	const char *key = rs_chunk_key(w, offset, &local);

	zr_receive_range(w->conn, key, local, page);
	page->first_rank = offset;
}

/*
 * rs_read_ahead
 *		Reset "cxt" and receive in it the members of the chunk at "offset"
 *		(its ZRANGE is already sent) into "page"; then send the ZMSCORE of
 *		its totals and the ZRANGE of the chunk after it, and flush them, so
 *		that Redis works on both while the caller writes.
 */
static void
rs_read_ahead(RsWorker *w, ZsetPage *page, int64 offset, MemoryContext cxt)
{
	int64		next = rs_chunk_next(w, offset);
	MemoryContext oldcxt;

	MemoryContextReset(cxt);
	oldcxt = MemoryContextSwitchTo(cxt);
	rs_receive_chunk_range(w, offset, page);
	if (w->job->total_key != NULL && page->n > 0)
		zr_send_mscore(w->conn, w->total_key, page->n, page->members, page->member_lens);
	rs_send_shard_checks(w, page);
	if (next <= w->range_end)
		rs_send_chunk_range(w, next);
	rs_flush(w->conn);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * rs_send_shard_checks
 *		In a sharded run, queue a ZMSCORE of the page's members on every
 *		other shard's key of the day, after the page's other requests:
 *		members are disjoint across shards, and rs_check_shard_replies
 *		raises an error for a member that another shard's key holds.
 */
static void
rs_send_shard_checks(RsWorker *w, ZsetPage *page)
{
	if (w->nshards <= 1 || page->n == 0)
		return;
	for (int s = 0; s < w->nshards; s++)
		if (s != w->shard)
			zr_send_mscore(w->conn, w->shard_keys[s], page->n, page->members, page->member_lens);
}

/*
 * rs_check_shard_replies
 *		Receive the replies of rs_send_shard_checks for the page, and raise
 *		an error naming the member and both keys if another shard's key
 *		holds one of its members.
 */
static void
rs_check_shard_replies(RsWorker *w, ZsetPage *page)
{
	if (w->nshards <= 1 || page->n == 0)
		return;
	for (int s = 0; s < w->nshards; s++)
	{
		char	  **scores;

		if (s == w->shard)
			continue;
		scores = zr_receive_mscore(w->conn, w->shard_keys[s], page->n);
		for (int k = 0; k < page->n; k++)
			if (scores[k] != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("%s is in Redis keys \"%s\" and \"%s\"",
								rs_member_label(page->members[k], page->member_lens[k]),
								w->shard_keys[w->shard], w->shard_keys[s]),
						 errdetail("The shards of job \"%s\" must hold disjoint members: a member's count of the day is one shard's score.",
								   w->job->job_name),
						 errhint("Remove the member from all but one of the keys, and run the sync again.")));
	}
}

/*
 * rs_record_failure
 *		Mark the partition failed and, if it is the run's first error, record
 *		the error on the run, for the coordinator and for users.
 */
static void
rs_record_failure(RsWorker *w, ErrorData *edata)
{
	Oid			argtypes[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	char	   *message = edata->message ? edata->message : "unknown error";

	if (edata->context)
		values[5] = CStringGetTextDatum(edata->context);
	else
		nulls[5] = 'n';
	values[0] = Int64GetDatum(w->req.run_id);
	values[1] = Int32GetDatum(w->partition_no);
	values[2] = CStringGetTextDatum(message);
	if (edata->detail)
		values[3] = CStringGetTextDatum(edata->detail);
	else
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	if (w->partition_no < 0)
		nulls[1] = 'n';

	rs_begin_xact("redis_sync: recording a failure");
	if (w->partition_no >= 0)
		rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'failed', error = $3, "
					"updated_at = now() WHERE run_id = $1 AND partition_no = $2",
					6, argtypes, values, nulls, SPI_OK_UPDATE);
	else
	{
		/* Failed before claiming: fail a pending partition so the run stops. */
		rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'failed', error = $3, "
					"updated_at = now() WHERE run_id = $1 AND partition_no = "
					"(SELECT min(partition_no) FROM redis_sync.run_partition "
					" WHERE run_id = $1 AND status <> 'succeeded')",
					6, argtypes, values, nulls, SPI_OK_UPDATE);
	}
	rs_spi_exec("UPDATE redis_sync.run SET error = $3, error_detail = $4, error_sqlstate = $5, "
				"error_context = $6, error_partition = $2 WHERE run_id = $1 AND error IS NULL",
				6, argtypes, values, nulls, SPI_OK_UPDATE);
	rs_commit_xact();
}
