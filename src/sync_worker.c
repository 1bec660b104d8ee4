/*-------------------------------------------------------------------------
 *
 * sync_worker.c
 *		  The sync worker: claims partitions of a run, reads them from Redis
 *		  a segment at a time and upserts them, in member name order, chunk
 *		  by chunk, each chunk together with its offset.
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

#include "redis_sync.h"

#define RS_MAX_RETRIES 5

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

/* A target column's type, for building arrays and parsing scores. */
typedef struct RsCountType
{
	Oid			typid;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	FmgrInfo	infunc;
	Oid			ioparam;
} RsCountType;

typedef struct RsChunkContext
{
	const char *key;
	int64		first;			/* lowest and highest rank in the chunk */
	int64		last;
	int			n;
	bool		sorted;			/* in name order, not a range of ranks */
} RsChunkContext;

typedef struct RsWorker
{
	RsWorkerRequest req;
	RsJob	   *job;
	DateADT		run_date;
	char	   *read_key;
	ForeignServer *server;
	UserMapping *user;
	RsConnection *conn;
	RsCountType daily_type;
	RsCountType member_type;
	SPIPlanPtr	daily_plan;
	SPIPlanPtr	daily_filtered_plan;
	SPIPlanPtr	daily_insert_plan;	/* plain INSERT, for a day with no rows yet */
	bool		daily_insert;	/* try daily_insert_plan for the next chunk */
	bool		daily_insert_failed;	/* it met an existing row: never again */
	SPIPlanPtr	member_plan;	/* NULL without total_key */
	SPIPlanPtr	member_filtered_plan;	/* NULL without total_key */
	bool		daily_filter;	/* use the filtered upserts for the next chunk */
	bool		member_filter;
	SPIPlanPtr	missing_plan;	/* NULL without total_key */
	RsProbe    *daily_probe;	/* NULL: filter with SQL only */
	RsProbe    *member_probe;
	SPIPlanPtr	offset_plan;
	int			partition_no;	/* -1: none claimed */
	int64		start_offset;
	int64		next_offset;	/* the committed offset */
	int64		resume_offset;	/* committed when the partition was (re)started */
	int64		end_offset;
	int64		range_end;		/* last rank of the segment being read */
	MemoryContext chunk_cxt[2];	/* the chunk being written, the next one */
	MemoryContext segment_cxt;	/* a segment read whole */
} RsWorker;

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
static void rs_send_chunk_range(RsWorker *w, int64 offset);
static void rs_read_ahead(RsWorker *w, ZsetPage *page, int64 offset, MemoryContext cxt);
static void rs_chunk_error_callback(void *arg);
static int	rs_member_cmp(const void *a, const void *b, void *arg);
typedef struct RsChunkRows RsChunkRows;
typedef struct RsRejects RsRejects;
static void rs_write_chunk(RsWorker *w, ZsetPage *page, char **totals, int64 next,
						   int64 ordinal0);
static int64 rs_write_rows(RsWorker *w, RsChunkRows *rows, int from, int to);
static bool rs_try_write_rows(RsWorker *w, RsChunkRows *rows, int64 *written);
static bool rs_convert_or_reject(RsWorker *w, ZsetPage *page, char **totals, int k,
								 int64 rank, RsChunkRows *rows, int j, RsRejects *rej);
static int64 rs_write_rows_one_by_one(RsWorker *w, RsChunkRows *rows, RsRejects *rej);
static void rs_record_rejects(RsWorker *w, RsRejects *rej);
static void rs_reject(RsRejects *rej, const char *member, int len, const char *score,
					  ErrorData *edata);
static bool rs_try_plain_insert(RsWorker *w, Datum *args, uint64 *written);
static uint64 rs_upsert(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, bool filter);
static Datum *rs_upsert_args(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, Datum *args);
static void rs_record_failure(RsWorker *w, ErrorData *edata);
static void rs_count_type(Oid typid, RsCountType *ct);
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
	 * dirty first after each checkpoint; lz4 shrinks them for little CPU (a
	 * 1,000,000-member first sync in the benchmark: 1.46 GB of WAL down to
	 * 0.77 GB, 6% faster).  wal_compression needs superuser, which the worker
	 * is not: redis_sync.worker_wal_compression is the superuser's choice.
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
	 * fill it while the plan runs, once per row of the chunk (a 5,000-row
	 * chunk took 19 s that way).  The same holds for the foreign key checks.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);

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
 *		Read the job and run, check the target tables, prepare the upserts
 *		and connect to Redis.
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

	rs_begin_xact("redis_sync: starting");
	w->job = rs_lookup_job_by_id(w->req.job_id);

	values[0] = Int64GetDatum(w->req.run_id);
	rs_spi_exec("SELECT run_date, read_key FROM redis_sync.run WHERE run_id = $1",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " does not exist", w->req.run_id)));
	w->run_date = DatumGetDateADT(rs_spi_getdatum(0, 1, &isnull));
	w->read_key = TextDatumGetCString(rs_spi_getdatum(0, 2, &isnull));

	/* Targets: checked again, since they may have changed since create_job. */
	daily_name = rs_qualified_relname(w->job->daily_table, w->job->job_name);
	{
		Oid			t;

		rs_validate_target_table(w->job->daily_table, true, w->req.owner, &t);
		rs_count_type(t, &w->daily_type);
		w->daily_probe = rs_probe_create(w->job->daily_table, true, t, TopMemoryContext);
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
		rs_count_type(t, &w->member_type);
		w->member_probe = rs_probe_create(w->job->member_table, false, t, TopMemoryContext);
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

	w->server = GetForeignServerByName(w->job->server_name, false);
	rs_check_server_access(w->server, w->req.owner);
	w->user = GetUserMapping(w->req.owner, w->server->serverid);
	w->conn = rs_get_connection(w->server, w->user);
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

/* Look up what is needed to build arrays of, and parse values into, a type. */
static void
rs_count_type(Oid typid, RsCountType *ct)
{
	Oid			infunc;

	ct->typid = typid;
	get_typlenbyvalalign(typid, &ct->typlen, &ct->typbyval, &ct->typalign);
	getTypeInputInfo(typid, &infunc, &ct->ioparam);
	fmgr_info_cxt(infunc, &ct->infunc, TopMemoryContext);
}

/*
 * rs_claim_partition
 *		Take the first pending partition of the run that no other worker is
 *		claiming, and mark it running.  False when none is left.
 */
static bool
rs_claim_partition(RsWorker *w)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	bool		found = false;

	rs_begin_xact("redis_sync: claiming a partition");
	values[0] = Int64GetDatum(w->req.run_id);
	rs_spi_exec("SELECT partition_no, next_offset, end_offset, start_offset FROM redis_sync.run_partition "
				"WHERE run_id = $1 AND status = 'pending' "
				"ORDER BY partition_no LIMIT 1 FOR UPDATE SKIP LOCKED",
				1, argtypes, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		w->partition_no = DatumGetInt32(rs_spi_getdatum(0, 1, &isnull));
		w->next_offset = DatumGetInt64(rs_spi_getdatum(0, 2, &isnull));
		w->end_offset = DatumGetInt64(rs_spi_getdatum(0, 3, &isnull));
		w->start_offset = DatumGetInt64(rs_spi_getdatum(0, 4, &isnull));
		values[1] = Int32GetDatum(w->partition_no);
		rs_spi_exec("UPDATE redis_sync.run_partition SET status = 'running', "
					"attempts = attempts + 1, worker_pid = pg_catalog.pg_backend_pid(), "
					"updated_at = now() WHERE run_id = $1 AND partition_no = $2",
					2, argtypes, values, NULL, SPI_OK_UPDATE);
		found = true;
	}
	rs_commit_xact();
	return found;
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
		long		delay;

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
		rs_discard_connection(w->conn);
		attempt++;
		delay = 200L << (attempt - 1);
		ereport(LOG,
				(errmsg("redis_sync run " INT64_FORMAT " partition %d: %s; retrying in %ld ms (attempt %d of %d)",
						w->req.run_id, w->partition_no, edata->message, delay,
						attempt, RS_MAX_RETRIES)));
		FreeErrorData(edata);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 delay, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
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
		zr_receive_range(w->conn, w->read_key, offset, &page);
		if (w->job->total_key != NULL && page.n > 0)
			zr_send_mscore(w->conn, w->job->total_key, page.n, page.members, page.member_lens);
		if (next <= w->range_end)
			rs_send_chunk_range(w, next);
		rs_flush(w->conn);
		if (w->job->total_key != NULL && page.n > 0)
			totals = zr_receive_mscore(w->conn, w->job->total_key, page.n);
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
				zr_receive_range(w->conn, w->read_key, next, &page);
			return false;
		}
		offset = next;
	}
	return true;
}

/* Compare two members in byte order (a prefix sorts first). */
static inline int
rs_bytes_cmp(const char *a, int la, const char *b, int lb)
{
	int			c = memcmp(a, b, Min(la, lb));

	return c != 0 ? c : (la > lb) - (la < lb);
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
			totals = zr_receive_mscore(w->conn, w->job->total_key, page[cur].n);
		if (next <= last)
			rs_read_ahead(w, &page[1 - cur], next, w->chunk_cxt[1 - cur]);
		rs_write_chunk(w, &page[cur], totals, next, -1);
		MemoryContextSwitchTo(oldcxt);
		cur = 1 - cur;
		offset = next;
	}
}

/* The offset that follows the chunk starting at "offset". */
static int64
rs_chunk_next(RsWorker *w, int64 offset)
{
	return Min(offset + w->job->chunk_size - 1, w->range_end) + 1;
}

/* Queue the ZRANGE of the chunk starting at "offset". */
static void
rs_send_chunk_range(RsWorker *w, int64 offset)
{
	zr_send_range(w->conn, w->read_key, offset, rs_chunk_next(w, offset) - 1);
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
	zr_receive_range(w->conn, w->read_key, offset, page);
	if (w->job->total_key != NULL && page->n > 0)
		zr_send_mscore(w->conn, w->job->total_key, page->n, page->members, page->member_lens);
	if (next <= w->range_end)
		rs_send_chunk_range(w, next);
	rs_flush(w->conn);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * A chunk's rows, converted and in member name order.  "ordinal" places a
 * member on the partition's offset scale (its rank, or in a segment written
 * in name order the segment's first rank plus its position): members whose
 * ordinal is below the offset committed when the partition was (re)started
 * were read, counted and, if rejected, recorded by an earlier attempt.
 */
struct RsChunkRows
{
	int			n;
	Datum	   *names;
	Datum	   *counts;
	bool	   *has_total;		/* NULL without total_key */
	Datum	   *totals;
	const char **members;
	int		   *lens;
	char	  **scores;
	int64	   *ranks;
	bool	   *is_new;
};

/* Members a chunk could not write, for redis_sync.rejected. */
struct RsRejects
{
	int			n;
	Datum	   *members;		/* bytea */
	Datum	   *scores;			/* text */
	Datum	   *sqlstates;
	Datum	   *errors;
};

/*
 * rs_is_data_error
 *		Is this error about the member's own data (its value does not fit a
 *		column, an index or a constraint), so that leaving the member out
 *		lets the rest of the chunk through?  Connection, timeout, permission
 *		and resource errors are not.
 */
static bool
rs_is_data_error(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * rs_short_member_label
 *		"member \"name\"" with at most the member's first 64 bytes, or
 *		"member 0x..." if those are not printable text in the database
 *		encoding; for messages about members of any length.
 */
static char *
rs_short_member_label(const char *member, int len)
{
	int			clip = len;
	bool		printable;

	if (len > 64)
		clip = pg_mbcliplen(member, len, 64);
	printable = pg_verify_mbstr(GetDatabaseEncoding(), member, len, true);
	for (int i = 0; printable && i < clip; i++)
		if ((unsigned char) member[i] < 0x20 || member[i] == 0x7f)
			printable = false;
	if (!printable)
		return psprintf("member 0x%s", rs_hex_bytes(member, len, 64));
	return psprintf("member \"%.*s%s\"", clip, member, clip < len ? "..." : "");
}

/* Error context of one member's conversion or write. */
static void
rs_worker_member_callback(void *arg)
{
	RsMemberContext *mc = (RsMemberContext *) arg;
	char	   *who = rs_short_member_label(mc->member, mc->len);

	if (mc->rank >= 0)
		errcontext("%s at rank " INT64_FORMAT " of Redis key \"%s\"", who, mc->rank, mc->key);
	else
		errcontext("%s of Redis key \"%s\"", who, mc->key);
}

/*
 * rs_convert_member
 *		Check member k of the page and parse its scores into row j.
 */
static void
rs_convert_member(RsWorker *w, ZsetPage *page, char **totals, int k, int64 rank,
				  RsChunkRows *rows, int j)
{
	const char *m = page->members[k];
	int			len = page->member_lens[k];
	ErrorContextCallback errcb;
	RsMemberContext mc;

	mc.key = w->read_key;
	mc.member = m;
	mc.len = len;
	mc.rank = rank;
	errcb.callback = rs_worker_member_callback;
	errcb.arg = &mc;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	if (!pg_verify_mbstr(GetDatabaseEncoding(), m, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("member at rank " INT64_FORMAT " of Redis key \"%s\" is not valid in encoding \"%s\"",
						rank, w->read_key, GetDatabaseEncodingName()),
				 errdetail("The member's bytes are 0x%s.", rs_hex_bytes(m, len, 64)),
				 errhint("Declare the member column as bytea to read arbitrary bytes.")));
	rows->names[j] = PointerGetDatum(cstring_to_text_with_len(m, len));
	rows->counts[j] = InputFunctionCall(&w->daily_type.infunc, page->scores[k],
										w->daily_type.ioparam, -1);
	if (totals != NULL)
	{
		rows->has_total[j] = (totals[k] != NULL);
		if (totals[k] != NULL)
		{
			mc.key = w->job->total_key;
			mc.rank = -1;
			rows->totals[j] = InputFunctionCall(&w->member_type.infunc, totals[k],
												w->member_type.ioparam, -1);
		}
	}
	error_context_stack = errcb.previous;
}

/*
 * rs_convert_or_reject
 *		rs_convert_member, but a data error rejects the member instead
 *		(remembered in "rej" if it is new to the partition): false then.
 */
static bool
rs_convert_or_reject(RsWorker *w, ZsetPage *page, char **totals, int k, int64 rank,
					 RsChunkRows *rows, int j, RsRejects *rej)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		rs_convert_member(w, page, totals, k, rank, rows, j);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!rs_is_data_error(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		/* a member rejected by an earlier attempt is recorded already */
		if (rows->is_new[j])
			rs_reject(rej, page->members[k], page->member_lens[k], page->scores[k], edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * rs_reject
 *		Remember a member and the error that rejected it.
 */
static void
rs_reject(RsRejects *rej, const char *member, int len, const char *score, ErrorData *edata)
{
	bytea	   *b = palloc(VARHDRSZ + len);
	StringInfoData msg;

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), member, len);
	initStringInfo(&msg);
	appendStringInfoString(&msg, edata->message ? edata->message : "");
	if (edata->detail)
		appendStringInfo(&msg, " (%s)", edata->detail);
	rej->members[rej->n] = PointerGetDatum(b);
	rej->scores[rej->n] = CStringGetTextDatum(score ? score : "");
	rej->sqlstates[rej->n] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	rej->errors[rej->n] = CStringGetTextDatum(msg.data);
	rej->n++;
}

/*
 * rs_write_chunk
 *		Convert a chunk and, in one transaction, upsert it and move the
 *		partition's offset to "next".  "ordinal0" is the ordinal of the
 *		chunk's first member in a segment written in name order, or -1 when
 *		the chunk is a range of ranks (see RsChunkRows).
 *
 *		A member that fails for a data reason (rs_is_data_error) fails the
 *		partition, with an error that names it and its rank, unless the job
 *		allows rejects (max_rejects > 0): then it is left out and recorded in
 *		redis_sync.rejected in the chunk's transaction, and the run fails
 *		only once it has rejected more than max_rejects members.  The
 *		offending members of a chunk whose set-based upsert fails are found
 *		by writing the chunk again row by row, each row in a subtransaction.
 */
static void
rs_write_chunk(RsWorker *w, ZsetPage *page, char **totals, int64 next, int64 ordinal0)
{
	int			n = page->n;
	int			nalloc = Max(n, 1);
	RsChunkRows rows;
	RsRejects	rej;
	int		   *order;
	int64		members_new = 0;
	int64		missing_new = 0;
	int64		written = 0;
	bool		allow_rejects = (w->job->max_rejects > 0);
	char		activity[200];
	RsChunkContext chunk_cb;
	ErrorContextCallback errcb;

	/*
	 * Write the chunk in name order: the upserts' index probes then walk the
	 * unique indexes in order instead of jumping around them.
	 */
	order = palloc(sizeof(int) * nalloc);
	for (int i = 0; i < n; i++)
		order[i] = i;
	qsort_arg(order, n, sizeof(int), rs_member_cmp, page);

	memset(&rows, 0, sizeof(rows));
	rows.names = palloc(sizeof(Datum) * nalloc);
	rows.counts = palloc(sizeof(Datum) * nalloc);
	rows.members = palloc(sizeof(char *) * nalloc);
	rows.lens = palloc(sizeof(int) * nalloc);
	rows.scores = palloc(sizeof(char *) * nalloc);
	rows.ranks = palloc(sizeof(int64) * nalloc);
	rows.is_new = palloc(sizeof(bool) * nalloc);
	if (totals != NULL)
	{
		rows.has_total = palloc(sizeof(bool) * nalloc);
		rows.totals = palloc(sizeof(Datum) * nalloc);
	}
	memset(&rej, 0, sizeof(rej));
	rej.members = palloc(sizeof(Datum) * nalloc);
	rej.scores = palloc(sizeof(Datum) * nalloc);
	rej.sqlstates = palloc(sizeof(Datum) * nalloc);
	rej.errors = palloc(sizeof(Datum) * nalloc);

	for (int j = 0; j < n; j++)
	{
		int			k = order[j];
		int64		rank = page->ranks ? page->ranks[k] : page->first_rank + k;
		int64		ordinal = ordinal0 >= 0 ? ordinal0 + j : rank;
		int			r = rows.n;
		bool		is_new = (ordinal >= w->resume_offset);

		if (is_new)
			members_new++;
		rows.members[r] = page->members[k];
		rows.lens[r] = page->member_lens[k];
		rows.scores[r] = page->scores[k];
		rows.ranks[r] = rank;
		rows.is_new[r] = is_new;
		if (!allow_rejects)
			rs_convert_member(w, page, totals, k, rank, &rows, r);
		else if (!rs_convert_or_reject(w, page, totals, k, rank, &rows, r, &rej))
			continue;
		rows.n++;
	}
	for (int r = 0; r < rows.n; r++)
		if (totals != NULL && !rows.has_total[r] && rows.is_new[r])
			missing_new++;

	chunk_cb.key = w->read_key;
	chunk_cb.n = n;
	chunk_cb.sorted = (page->ranks != NULL && n > 0);
	chunk_cb.first = page->first_rank;
	chunk_cb.last = next - 1;
	if (chunk_cb.sorted)
	{
		chunk_cb.first = PG_INT64_MAX;
		chunk_cb.last = -1;
		for (int i = 0; i < n; i++)
		{
			chunk_cb.first = Min(chunk_cb.first, page->ranks[i]);
			chunk_cb.last = Max(chunk_cb.last, page->ranks[i]);
		}
	}
	snprintf(activity, sizeof(activity),
			 "redis_sync run " INT64_FORMAT " partition %d: %s" INT64_FORMAT " to " INT64_FORMAT,
			 w->req.run_id, w->partition_no, chunk_cb.sorted ? "members of ranks " : "ranks ",
			 chunk_cb.first, chunk_cb.last);
	errcb.callback = rs_chunk_error_callback;
	errcb.arg = &chunk_cb;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	rs_begin_xact(activity);
	if (rows.n > 0 && !rs_try_write_rows(w, &rows, &written))
	{
		/* Find the offending members: write the chunk row by row. */
		error_context_stack = &errcb;
		rs_begin_xact(activity);
		written = rs_write_rows_one_by_one(w, &rows, &rej);
	}
	if (rej.n > 0)
		rs_record_rejects(w, &rej);
	{
		Datum		args[7];

		args[0] = Int64GetDatum(w->req.run_id);
		args[1] = Int32GetDatum(w->partition_no);
		args[2] = Int64GetDatum(next);
		args[3] = Int64GetDatum(written);
		args[4] = Int64GetDatum(missing_new);
		args[5] = Int64GetDatum(members_new);
		args[6] = Int64GetDatum((int64) rej.n);
		if (rs_catalog_execute_plan(w->offset_plan, args, SPI_OK_UPDATE) != 1)
			elog(ERROR, "could not record offset " INT64_FORMAT " of run " INT64_FORMAT " partition %d",
				 next, w->req.run_id, w->partition_no);
	}
	rs_commit_xact();
	error_context_stack = errcb.previous;
	w->next_offset = next;
}

/*
 * rs_try_write_rows
 *		rs_write_rows of the whole chunk; but if it fails for a data reason,
 *		abort the transaction and return false.
 */
static bool
rs_try_write_rows(RsWorker *w, RsChunkRows *rows, int64 *written)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		*written = rs_write_rows(w, rows, 0, rows->n);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!rs_is_data_error(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		/* the whole chunk's transaction, with any subtransaction inside it */
		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(cxt);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * rs_write_rows
 *		Upsert rows from..to-1 of a chunk into the member and daily tables
 *		(in the current transaction); returns the rows written.
 *
 *		An upsert whose WHERE rejects an unchanged row still locks that row,
 *		which dirties its page and writes WAL.  So while chunks are mostly
 *		unchanged (a re-sync), the filtered upserts first drop the rows that
 *		already hold the same count, with read-only index probes; once a
 *		chunk writes at least half its rows (a new day), the next chunk goes
 *		straight to the plain upsert.
 */
static int64
rs_write_rows(RsWorker *w, RsChunkRows *rows, int from, int to)
{
	int			n = to - from;
	Datum	   *names = rows->names + from;
	Datum	   *counts = rows->counts + from;
	Datum	   *tot_names = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *tot_counts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *miss_names = palloc(sizeof(Datum) * Max(n, 1));
	int			ntot = 0;
	int			nmiss = 0;
	int64		total = 0;
	Datum		args[3];
	uint64		written;

	if (n <= 0)
		return 0;
	if (rows->has_total != NULL)
	{
		for (int i = from; i < to; i++)
		{
			if (rows->has_total[i])
			{
				tot_names[ntot] = rows->names[i];
				tot_counts[ntot++] = rows->totals[i];
			}
			else
				miss_names[nmiss++] = rows->names[i];
		}
	}
	if (ntot > 0)
	{
		written = rs_upsert(w, false, tot_names, tot_counts, ntot, w->member_filter);
		w->member_filter = (written * 2 < ntot);
		total += written;
	}
	if (nmiss > 0)
	{
		/* Members absent from the total key: new rows get 0, old rows stay. */
		args[0] = PointerGetDatum(construct_array(miss_names, nmiss, TEXTOID, -1, false, TYPALIGN_INT));
		total += rs_spi_execute_plan(w->missing_plan, args, SPI_OK_INSERT);
	}
	if (!(w->daily_insert &&
		  rs_try_plain_insert(w, rs_upsert_args(w, true, names, counts, n, args), &written)))
		written = rs_upsert(w, true, names, counts, n, w->daily_filter);
	w->daily_filter = (written * 2 < n);
	/* A chunk that was all new rows suggests a new day: insert plainly. */
	w->daily_insert = (written == n && !w->daily_insert_failed);
	total += written;
	return total;
}

/*
 * rs_write_rows_one_by_one
 *		Upsert a chunk's rows one at a time, each in a subtransaction, in the
 *		current transaction.  A row that fails for a data reason is rejected
 *		(remembered in "rej" if it is new to the partition) when the job
 *		allows rejects; otherwise its error propagates, naming the member and
 *		its rank.  Returns the rows written.
 */
static int64
rs_write_rows_one_by_one(RsWorker *w, RsChunkRows *rows, RsRejects *rej)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int64 total = 0;

	/* One row at a time: the plain insert and the filters do not pay. */
	w->daily_insert = false;
	for (int i = 0; i < rows->n; i++)
	{
		ErrorContextCallback errcb;
		RsMemberContext mc;

		CHECK_FOR_INTERRUPTS();
		mc.key = w->read_key;
		mc.member = rows->members[i];
		mc.len = rows->lens[i];
		mc.rank = rows->ranks[i];
		errcb.callback = rs_worker_member_callback;
		errcb.arg = &mc;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			total += rs_write_rows(w, rows, i, i + 1);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (!rs_is_data_error(edata->sqlerrcode) || w->job->max_rejects == 0)
				PG_RE_THROW();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			if (rows->is_new[i])
				rs_reject(rej, rows->members[i], rows->lens[i], rows->scores[i], edata);
		}
		PG_END_TRY();
		error_context_stack = errcb.previous;
	}
	w->daily_insert = false;
	return total;
}

/*
 * rs_record_rejects
 *		Record rejected members in redis_sync.rejected and count them on the
 *		run, in the chunk's transaction; fail once the run has rejected more
 *		than the job's max_rejects.
 */
static void
rs_record_rejects(RsWorker *w, RsRejects *rej)
{
	Oid			argtypes[6] = {INT8OID, INT4OID, BYTEAARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID};
	Datum		values[6];
	bool		isnull;
	int64		total;

	values[0] = Int64GetDatum(w->req.run_id);
	values[1] = Int32GetDatum(w->partition_no);
	values[2] = PointerGetDatum(construct_array(rej->members, rej->n, BYTEAOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(rej->scores, rej->n, TEXTOID, -1, false, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(rej->sqlstates, rej->n, TEXTOID, -1, false, TYPALIGN_INT));
	values[5] = PointerGetDatum(construct_array(rej->errors, rej->n, TEXTOID, -1, false, TYPALIGN_INT));
	rs_spi_exec("INSERT INTO redis_sync.rejected (run_id, partition_no, member, score, sqlstate, error) "
				"SELECT $1, $2, u.m, u.s, u.c, u.e FROM ROWS FROM "
				"(pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)) "
				"AS u(m, s, c, e)",
				6, argtypes, values, NULL, SPI_OK_INSERT);
	rs_spi_exec("UPDATE redis_sync.run SET rejected = rejected + pg_catalog.array_length($3, 1) "
				"WHERE run_id = $1 RETURNING rejected",
				3, argtypes, values, NULL, SPI_OK_UPDATE_RETURNING);
	total = DatumGetInt64(rs_spi_getdatum(0, 1, &isnull));
	if (total > w->job->max_rejects)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("run " INT64_FORMAT " rejected " INT64_FORMAT " members, more than max_rejects (" INT64_FORMAT ")",
						w->req.run_id, total, w->job->max_rejects),
				 errdetail("The last one rejected: %s.",
						   TextDatumGetCString(rej->errors[rej->n - 1])),
				 errhint("See redis_sync.rejected for the members and their errors; raise max_rejects with redis_sync.alter_job() to let the run go on.")));
}

/*
 * rs_upsert
 *		Upsert n rows (names and counts) into the daily table of the run's
 *		date or into the member table, returning the rows written.  With
 *		"filter", the rows that already hold their count are left out first:
 *		by direct index probes (target_probe.c) where the table allows them,
 *		else by the filtered statement's NOT EXISTS.
 */
static uint64
rs_upsert(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, bool filter)
{
	RsProbe    *probe = daily ? w->daily_probe : w->member_probe;
	SPIPlanPtr	plan = daily ? w->daily_plan : w->member_plan;
	Datum		args[3];

	if (filter && rs_probe_begin(probe, w->run_date))
	{
		Datum	   *changed_names = palloc(sizeof(Datum) * n);
		Datum	   *changed_counts = palloc(sizeof(Datum) * n);
		int			m = 0;

		for (int i = 0; i < n; i++)
		{
			if (rs_probe_same(probe, names[i], counts[i]))
				continue;
			changed_names[m] = names[i];
			changed_counts[m++] = counts[i];
		}
		rs_probe_end(probe);
		if (m == 0)
			return 0;
		names = changed_names;
		counts = changed_counts;
		n = m;
	}
	else if (filter)
		plan = daily ? w->daily_filtered_plan : w->member_filtered_plan;
	return rs_spi_execute_plan(plan, rs_upsert_args(w, daily, names, counts, n, args),
							   SPI_OK_INSERT);
}

/* Fill and return args: the arrays of names and counts, and the run date. */
static Datum *
rs_upsert_args(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, Datum *args)
{
	RsCountType *ct = daily ? &w->daily_type : &w->member_type;

	args[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(counts, n, ct->typid, ct->typlen, ct->typbyval,
											  ct->typalign));
	args[2] = DateADTGetDatum(w->run_date);
	return args;
}

/*
 * rs_try_plain_insert
 *		Insert the chunk's daily rows with a plain INSERT, which skips the
 *		speculative insertion of ON CONFLICT and is the cheapest write of a
 *		new day.  It runs in a subtransaction: if a row exists after all
 *		(a unique violation), the subtransaction is rolled back, plain
 *		inserts are given up for this worker, and false is returned so that
 *		the caller upserts instead.  Other errors propagate.
 */
static bool
rs_try_plain_insert(RsWorker *w, Datum *args, uint64 *written)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		*written = rs_spi_execute_plan(w->daily_insert_plan, args, SPI_OK_INSERT);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		{
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FlushErrorState();
		FreeErrorData(edata);
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		w->daily_insert_failed = true;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Error context of a chunk's writes: which ranks of which key. */
static void
rs_chunk_error_callback(void *arg)
{
	RsChunkContext *cc = (RsChunkContext *) arg;

	if (cc->sorted && cc->n == 1)
		errcontext("writing the member at rank " INT64_FORMAT " of Redis key \"%s\"",
				   cc->first, cc->key);
	else if (cc->sorted)
		errcontext("writing %d members in name order from ranks " INT64_FORMAT " to " INT64_FORMAT " of Redis key \"%s\"",
				   cc->n, cc->first, cc->last, cc->key);
	else
		errcontext("writing ranks " INT64_FORMAT " to " INT64_FORMAT " of Redis key \"%s\"",
				   cc->first, cc->last, cc->key);
}

/* qsort_arg comparator: members of a page in byte order. */
static int
rs_member_cmp(const void *a, const void *b, void *arg)
{
	ZsetPage   *page = (ZsetPage *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	return rs_bytes_cmp(page->members[i], page->member_lens[i],
						page->members[j], page->member_lens[j]);
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
