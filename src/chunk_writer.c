/*-------------------------------------------------------------------------
 *
 * chunk_writer.c
 *		  Writing one chunk of a sync worker: convert its members' scores,
 *		  upsert the member and daily tables, and move the partition's
 *		  offset, all in one transaction; with max_rejects, write the chunk
 *		  again row by row and record the members that cannot be written.
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "sync.h"
#include "sync_worker.h"
#include "zset.h"

typedef struct RsChunkContext
{
	const char *key;
	int64		first;			/* lowest and highest rank in the chunk */
	int64		last;
	int			n;
	bool		sorted;			/* in name order, not a range of ranks */
} RsChunkContext;

typedef struct RsChunkRows RsChunkRows;
typedef struct RsRejects RsRejects;

static void rs_chunk_error_callback(void *arg);
static int	rs_member_cmp(const void *a, const void *b, void *arg);
static int64 rs_write_rows(RsWorker *w, RsChunkRows *rows, int from, int to);
static bool rs_try_write_rows(RsWorker *w, RsChunkRows *rows, int64 *written,
							  MemoryContext outer_cxt);
static bool rs_convert_or_reject(RsWorker *w, ZsetPage *page, char **totals, int k,
								 int64 rank, RsChunkRows *rows, int j, RsRejects *rej);
static int64 rs_write_rows_one_by_one(RsWorker *w, RsChunkRows *rows, RsRejects *rej);
static void rs_record_rejects(RsWorker *w, RsRejects *rej);
static void rs_reject(RsRejects *rej, const char *member, int len, const char *score,
					  ErrorData *edata);
static bool rs_try_plain_insert(RsWorker *w, Datum *args, uint64 *written);
static uint64 rs_upsert(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, bool filter);
static Datum *rs_upsert_args(RsWorker *w, bool daily, Datum *names, Datum *counts, int n, Datum *args);

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
	mc.clip = true;
	errcb.callback = rs_member_error_callback;
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
			mc.key = w->total_key;
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
void
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
	MemoryContext chunk_cxt;

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

	chunk_cxt = rs_begin_xact(activity);
	if (rows.n > 0 && !rs_try_write_rows(w, &rows, &written, chunk_cxt))
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
 *		abort the transaction, make outer_cxt (the chunk's context, current
 *		when the transaction began) current, and return false.
 */
static bool
rs_try_write_rows(RsWorker *w, RsChunkRows *rows, int64 *written, MemoryContext outer_cxt)
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
		/* cxt, SPI's procedure context, went with the transaction */
		MemoryContextSwitchTo(outer_cxt);
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
		mc.clip = true;
		errcb.callback = rs_member_error_callback;
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
