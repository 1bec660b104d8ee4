/*-------------------------------------------------------------------------
 *
 * redis_sync.h
 *		  What is module-wide: the settings (GUCs) that redis_sync.c defines
 *		  in _PG_init and the rest of the library reads.
 *
 * Each layer has its own header, and each .c file includes the ones it
 * uses.  Data flows one way, from Redis to tables, and the headers follow
 * it: options.h, redis_conn.h (the command layer) and cron.h at the
 * bottom; zset.h on the command layer; fdw.h for the foreign data wrapper;
 * catalog.h and sync.h (with sync_worker.h) for the sync engine.  compat.h
 * bridges the supported PostgreSQL and hiredis versions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIS_SYNC_H
#define REDIS_SYNC_H

/* in redis_sync.c */
extern char *rs_scheduler_database;
extern char *rs_scheduler_timezone;
extern int	rs_max_workers;
extern int	rs_max_workers_per_role;
extern int	rs_max_runs;
extern int	rs_max_runs_per_role;
extern int	rs_copy_key_members;	/* members in one key of a copy (zset_snapshot.c) */
/* wal_compression for sync workers (redis_sync.worker_wal_compression), or NULL */
extern const char *rs_wal_compression_name(void);

#endif							/* REDIS_SYNC_H */
