/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		  SPI access to the redis_sync catalog (catalog.c): jobs, acting as
 *		  the catalog's owner, catalog and target-table statements, the
 *		  background workers' transactions, and the job lock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_CATALOG_H
#define RS_CATALOG_H

#include "executor/spi.h"
#include "storage/lock.h"

/* ---------------------------------------------------------------------
 * in catalog.c
 * ---------------------------------------------------------------------
 */

/* A row of redis_sync.job. */
typedef struct RsJob
{
	int64		job_id;
	char	   *job_name;
	Oid			owner;
	char	   *server_name;
	char	   *daily_key;
	char	   *total_key;		/* NULL: member table untouched */
	Oid			member_table;
	Oid			daily_table;
	int			partitions;
	int			workers;
	int			chunk_size;
	char	   *schedule;
	int			day_offset;
	bool		enabled;
	int64		max_rejects;
	int			max_retries;
	int64		retry_delay_ms;
	int			shards;			/* 1: daily_key names one key a day */
} RsJob;

/* Saved identity while acting as the catalog's owner (rs_engine_enter). */
typedef struct RsEngineState
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_nest_level;
} RsEngineState;

extern Oid	rs_catalog_owner(void);
extern void rs_engine_enter(RsEngineState *st);
extern void rs_engine_exit(RsEngineState *st);
extern RsJob *rs_lookup_job_by_name(const char *job_name, bool for_update);
extern RsJob *rs_lookup_job_by_id(int64 job_id);
extern char *rs_qualified_relname(Oid relid, const char *job_name);
extern void rs_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
						const char *nulls, int expected);
extern uint64 rs_spi_execute_plan(SPIPlanPtr plan, Datum *values, int expected);
extern uint64 rs_catalog_execute_plan(SPIPlanPtr plan, Datum *values, int expected);
extern Datum rs_spi_getdatum(int row, int col, bool *isnull);
extern MemoryContext rs_begin_xact(const char *activity);
extern void rs_commit_xact(void);
extern void rs_set_safe_search_path(void);
extern void rs_job_lock_tag(LOCKTAG *tag, int64 job_id);

#endif							/* RS_CATALOG_H */
