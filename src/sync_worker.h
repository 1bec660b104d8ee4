/*-------------------------------------------------------------------------
 *
 * sync_worker.h
 *		  What the sync worker (sync_worker.c) and its chunk writer
 *		  (chunk_writer.c) share: the worker's state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SYNC_WORKER_H
#define SYNC_WORKER_H

#include "executor/spi.h"
#include "fmgr.h"

#include "catalog.h"
#include "sync.h"
#include "zset.h"

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

typedef struct RsWorker
{
	RsWorkerRequest req;
	RsJob	   *job;
	DateADT		run_date;
	char	   *read_key;		/* the key of the claimed partition's shard */
	bool		reads_copy;		/* read_key is a copy, in parts (zset_snapshot.c) */
	int64		part_no;		/* the copy's part that part_key names; -1: none */
	char	   *part_key;
	char	   *total_key;		/* its shard's total key; NULL without total_key */
	int			nshards;		/* the run's shards */
	int			shard;			/* the claimed partition's shard */
	char	  **shard_keys;		/* of a sharded run: each shard's key of the day */
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

/* Compare two members in byte order (a prefix sorts first). */
static inline int
rs_bytes_cmp(const char *a, int la, const char *b, int lb)
{
	int			c = memcmp(a, b, Min(la, lb));

	return c != 0 ? c : (la > lb) - (la < lb);
}

/* in chunk_writer.c */
extern void rs_write_chunk(RsWorker *w, ZsetPage *page, char **totals, int64 next,
						   int64 ordinal0);

#endif							/* SYNC_WORKER_H */
