/*-------------------------------------------------------------------------
 *
 * redis_sync.h
 *		  Private declarations shared by the redis_sync source files.
 *
 * Data flows one way, from Redis to tables, and the files follow it:
 * redis_conn.c, options.c and cron.c at the bottom; zset_reader.c on top of
 * the connection layer; the foreign data wrapper (fdw_plan.c, fdw_scan.c);
 * the sync engine (catalog.c, jobs.c, sync_run.c, sync_worker.c); and at the
 * top scheduler.c and redis_sync.c (_PG_init, GUCs).
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIS_SYNC_H
#define REDIS_SYNC_H

#include <hiredis/hiredis.h>

#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "access/parallel.h"
#include "commands/explain.h"
#include "executor/spi.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "pgtime.h"
#include "postmaster/bgworker.h"
#include "storage/lock.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"

#define RS_FDW_NAME			"redis_zset"

/* Largest page_size of a foreign table. */
#define RS_MAX_PAGE_SIZE	1000000

/* Rows per pipelined batch of an INSERT, unless batch_size says otherwise. */
#define RS_DEFAULT_BATCH_SIZE	1000
#define RS_MAX_BATCH_SIZE		100000

/* Bounds and default of the server option max_reply_bytes. */
#define RS_MIN_REPLY_BYTES		((int64) 1024)
#define RS_MAX_REPLY_BYTES		((int64) 4 * 1024 * 1024 * 1024)
#define RS_DEFAULT_REPLY_BYTES	((int64) 256 * 1024 * 1024)

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
} RsServerOptions;

/* Foreign table settings, resolved. */
typedef struct RsTableOptions
{
	char	   *key;			/* NULL: the table has a key column */
	int			page_size;
} RsTableOptions;

extern void rs_get_server_options(ForeignServer *server, UserMapping *user,
								  RsServerOptions *opts);
extern void rs_get_table_options(Oid foreigntableid, RsTableOptions *opts);
extern int	rs_get_batch_size(Oid foreigntableid);
extern char *rs_column_name(Oid relid, AttrNumber attnum);
extern bool rs_is_redis_server(ForeignServer *server);

/* ---------------------------------------------------------------------
 * in redis_conn.c
 * ---------------------------------------------------------------------
 */

/*
 * A cached Redis connection.  "pending" counts replies still in flight; a
 * connection left with replies in flight after an error is discarded.
 * "owner" is the scan that has replies in flight, and "drain" reads them
 * into that scan's own buffer when another user needs the connection.
 * "spans_xacts" marks a pipeline that its user keeps across transactions
 * (a sync worker reading ahead): an abort then leaves the replies to that
 * user, which discards the connection itself when it gives up on them.
 */
/*
 * A ZRANGE window in flight: zset_reader.c checks that its reply holds no
 * more members than the window has ranks.  "seq" numbers the command on its
 * connection (1 for the first one sent); 0 marks a free slot.
 */
typedef struct RsRangeRequest
{
	uint64		seq;
	int64		start;
	int64		stop;
} RsRangeRequest;

#define RS_RANGES_TRACKED	8

/*
 * "max_reply_bytes" bounds the protocol bytes of one reply while it is being
 * read; "reply_bytes" counts the bytes of the reply being read that hiredis
 * has already parsed.  "nsent" and "nreceived" count the commands sent and
 * the replies received since the connection was opened.
 */
typedef struct RsConnection
{
	redisContext *ctx;
	void	   *tls;			/* OpenSSL's SSL of a TLS connection, owned
								 * by ctx; NULL for plain TCP */
	char		desc[NAMEDATALEN];	/* foreign server name, for messages */
	char		addr[300];		/* "host:port", for details */
	int			command_timeout;
	int			pending;
	void	   *owner;
	void		(*drain) (void *owner);
	bool		spans_xacts;
	int64		max_reply_bytes;
	uint64		reply_bytes;
	uint64		nsent;
	uint64		nreceived;
	RsRangeRequest ranges[RS_RANGES_TRACKED];
	struct RsCluster *cluster;	/* cluster 'on': the routing state
								 * (redis_cluster.h), and ctx is NULL */
} RsConnection;

extern RsConnection *rs_get_connection(ForeignServer *server, UserMapping *user);
extern void rs_claim_connection(RsConnection *conn, void *owner,
								void (*drain) (void *owner));
extern void rs_release_connection(RsConnection *conn, void *owner);
extern void rs_discard_connection(RsConnection *conn);
extern void rs_send(RsConnection *conn, int argc, const char **argv,
					const size_t *argvlen);
extern void rs_flush(RsConnection *conn);
extern redisReply *rs_receive(RsConnection *conn);
extern void rs_check_reply(RsConnection *conn, redisReply *reply,
						   const char *command, const char *key);
extern redisReply *rs_command(RsConnection *conn, const char *key, int argc,
							  const char **argv, const size_t *argvlen);
extern bool rs_is_transient_error(int sqlerrcode);
extern int	rs_wait_socket(RsConnection *conn, int events, TimestampTz deadline);

/* ---------------------------------------------------------------------
 * in redis_tls.c
 * ---------------------------------------------------------------------
 */

extern void rs_tls_start(RsConnection *conn, const RsServerOptions *opts,
						 TimestampTz deadline);
extern bool rs_tls_pending(RsConnection *conn);
extern void rs_tls_clear_errors(RsConnection *conn);
extern const char *rs_tls_io_reason(RsConnection *conn);
extern bool rs_tls_available(void);
pg_noreturn extern void rs_tls_unsupported(void);

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
extern int64 zr_card(RsConnection *conn, const char *key);
pg_noreturn extern void zr_protocol_error(RsConnection *conn, const char *command, const char *key);
extern char *rs_hex_bytes(const char *data, int len, int maxbytes);

/* Error context for converting one member's values. */
typedef struct RsMemberContext
{
	const char *key;
	const char *member;
	int			len;
	int64		rank;			/* -1 if unknown */
} RsMemberContext;

extern char *rs_member_label(const char *member, int len);
extern void rs_member_error_callback(void *arg);
extern void rs_verify_member(const char *key, const char *member, int len,
							 int64 rank);

/* ---------------------------------------------------------------------
 * in zset_snapshot.c
 * ---------------------------------------------------------------------
 */
extern int64 zr_snapshot(RsConnection *conn, const char *source, const char *snapshot,
						 int ttl_seconds);

/* ---------------------------------------------------------------------
 * in fdw_plan.c
 * ---------------------------------------------------------------------
 */

/* Fields of a redis_zset foreign table. */
typedef enum RsField
{
	RS_FIELD_MEMBER,
	RS_FIELD_SCORE,
	RS_FIELD_RANK,
	RS_FIELD_KEY,
	RS_NUM_FIELDS
} RsField;

/* Kinds of pushed-down condition; stored as integers in fdw_private. */
typedef enum RsCondKind
{
	RS_COND_RANK,
	RS_COND_SCORE,
	RS_COND_MEMBER,				/* member = x or member = ANY(x) */
	RS_COND_KEY					/* key = x or key = ANY(x) */
} RsCondKind;

typedef enum RsCondOp
{
	RS_OP_LT,
	RS_OP_LE,
	RS_OP_EQ,
	RS_OP_GE,
	RS_OP_GT,
	RS_OP_ANY					/* = ANY(array) */
} RsCondOp;

/* Order a scan delivers its rows in. */
typedef enum RsScanOrder
{
	RS_ORDER_NONE,
	RS_ORDER_ASC,				/* ascending rank */
	RS_ORDER_DESC				/* descending rank */
} RsScanOrder;

/* Indexes into the fdw_private list of a redis_zset ForeignScan. */
enum RsFdwPrivateIndex
{
	RS_PRIV_CONDKINDS,			/* integer list, parallel to fdw_exprs */
	RS_PRIV_CONDOPS,			/* integer list, parallel to fdw_exprs */
	RS_PRIV_ORDER,				/* Integer: RsScanOrder */
	RS_PRIV_LIMIT,				/* Integer-ish: Float of limit_tuples or -1 */
	RS_PRIV_NEED_RANK,			/* Boolean */
	RS_PRIV_MATERIALIZE,		/* Boolean: read all before the first row */
	RS_PRIV_COUNT
};

extern void rs_field_attnums(Relation rel, AttrNumber *attnums, Oid *atttypes);
extern void rsGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
extern void rsGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
extern ForeignScan *rsGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid, ForeignPath *best_path,
										List *tlist, List *scan_clauses,
										Plan *outer_plan);
extern bool rs_is_numeric_type(Oid typid);

/* ---------------------------------------------------------------------
 * in fdw_window.c
 * ---------------------------------------------------------------------
 */

/* Score bounds of a scan, in doubles as Redis compares them. */
typedef struct RsScoreBounds
{
	bool		has_min;
	bool		has_max;
	double		min;
	double		max;
	bool		min_incl;
	bool		max_incl;
} RsScoreBounds;

/* The rank and score window that the pushed conditions leave. */
typedef struct RsWindow
{
	bool		empty;			/* the conditions match nothing */
	int64		rank_lo;
	int64		rank_hi;		/* -1: no upper bound */
	RsScoreBounds sb;
	bool		widened;		/* some score bound is widened, and rechecked */
	/* For EXPLAIN: bounds that depend on values known only at execution. */
	bool		rank_lo_unknown;
	bool		rank_hi_unknown;
	bool		score_min_unknown;
	bool		score_max_unknown;
} RsWindow;

extern bool rs_score_cond_exact(Oid coltype, Oid valtype);
extern void rs_window_init(RsWindow *w);
extern void rs_window_add(RsWindow *w, RsCondKind kind, RsCondOp op, Datum value,
						  bool isnull, Oid valtype, Oid coltype, int32 coltypmod);
extern void rs_window_add_unknown(RsWindow *w, RsCondKind kind, RsCondOp op,
								  Oid valtype, Oid coltype);
extern char *rs_score_arg(double v, bool incl);
extern bool rs_score_matches(const RsScoreBounds *sb, const char *score);

/* ---------------------------------------------------------------------
 * in fdw_scan.c
 * ---------------------------------------------------------------------
 */
extern void rsBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *rsIterateForeignScan(ForeignScanState *node);
extern void rsReScanForeignScan(ForeignScanState *node);
extern void rsEndForeignScan(ForeignScanState *node);
extern void rsExplainForeignScan(ForeignScanState *node, ExplainState *es);
extern bool rsIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel,
										RangeTblEntry *rte);
extern Size rsEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt);
extern void rsInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
									   void *coordinate);
extern void rsReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
										 void *coordinate);
extern void rsInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc,
										  void *coordinate);

/* ---------------------------------------------------------------------
 * in fdw_modify.c
 * ---------------------------------------------------------------------
 */
extern void rsAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
									  RangeTblEntry *target_rte, Relation target_relation);
extern List *rsPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
								 Index resultRelation, int subplan_index);
extern void rsBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								 List *fdw_private, int subplan_index, int eflags);
extern void rsBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo);
extern TupleTableSlot *rsExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot **rsExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
												 TupleTableSlot **slots,
												 TupleTableSlot **planSlots, int *numSlots);
extern int	rsGetForeignModifyBatchSize(ResultRelInfo *rinfo);
extern TupleTableSlot *rsExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot *rsExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);
extern void rsEndForeignModify(EState *estate, ResultRelInfo *rinfo);
extern int	rsIsForeignRelUpdatable(Relation rel);
extern void rsExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								   List *fdw_private, int subplan_index,
								   ExplainState *es);
extern void rsExecForeignTruncate(List *rels, DropBehavior behavior, bool restart_seqs);

/* ---------------------------------------------------------------------
 * in fdw_import.c
 * ---------------------------------------------------------------------
 */
extern List *rsImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

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
extern void rs_begin_xact(const char *activity);
extern void rs_commit_xact(void);
extern void rs_set_safe_search_path(void);
extern void rs_job_lock_tag(LOCKTAG *tag, int64 job_id);

/* ---------------------------------------------------------------------
 * in jobs.c
 * ---------------------------------------------------------------------
 */
extern char *rs_format_key(const char *key_template, DateADT run_date);
extern void rs_validate_target_table(Oid relid, bool daily, Oid role, Oid *count_type);
extern void rs_check_job_definition(Oid owner, const char *server_name, const char *daily_key,
									const char *total_key, Oid member_table, Oid daily_table,
									const char *schedule);
extern void rs_check_server_access(ForeignServer *server, Oid owner);
extern void rs_check_job_owner(RsJob *job);
extern int	rs_disable_orphaned_jobs(void);

/* ---------------------------------------------------------------------
 * in job_owner_hook.c
 * ---------------------------------------------------------------------
 */
extern void rs_install_owner_hook(void);

/* ---------------------------------------------------------------------
 * in history.c
 * ---------------------------------------------------------------------
 */
extern int64 rs_purge_runs(Interval *older_than, Oid role);
extern Interval *rs_run_retention(void);
extern bool rs_check_run_retention(char **newval, void **extra, GucSource source);
extern void rs_assign_run_retention(const char *newval, void *extra);

/* ---------------------------------------------------------------------
 * in target_probe.c
 * ---------------------------------------------------------------------
 */
typedef struct RsProbe RsProbe;

extern RsProbe *rs_probe_create(Oid relid, bool daily, Oid count_type, MemoryContext cxt);
extern bool rs_probe_begin(RsProbe *p, DateADT date);
extern bool rs_probe_same(RsProbe *p, Datum name, Datum count);
extern void rs_probe_end(RsProbe *p);

/* ---------------------------------------------------------------------
 * in sync_run.c (the caller) and coordinator.c (the run)
 * ---------------------------------------------------------------------
 */

/* What a coordinator is asked to do; passed in bgw_extra. */
typedef struct RsRunRequest
{
	int64		job_id;
	Oid			owner;
	Oid			dboid;
	DateADT		run_date;
	bool		resume;
	char		trigger;		/* RS_TRIGGER_* */
	uint32		dsm;			/* result segment of a waiting caller, or 0 */
} RsRunRequest;

/* How a run was started: redis_sync.run.trigger. */
#define RS_TRIGGER_MANUAL	'm'
#define RS_TRIGGER_SCHEDULE 's'

/* bgw_type of a run's processes, as pg_stat_activity shows them */
#define RS_COORDINATOR_TYPE	"redis_sync coordinator"
#define RS_WORKER_TYPE		"redis_sync worker"

/* The most workers a run has (the job's workers column is at most 64). */
#define RS_MAX_RUN_WORKERS 64

/* Result of a run, left by the coordinator for a waiting sync_run(), in DSM. */
typedef struct RsRunShared
{
	bool		cancel_requested;	/* set by the caller before terminating us */
	bool		done;			/* the fields below are final */
	int64		run_id;
	char		status[16];
	int64		members;
	int64		rows_written;
	double		seconds;
	int			workers_requested;
	int			workers_launched;
	int			sqlerrcode;		/* 0: no error */
	int			error_partition;	/* -1: not a partition's error */
	char		message[1024];
	char		detail[1024];
	char		context[1024];
	char		job_name[NAMEDATALEN * 2];
	/* processes of the run, for a caller that checks what blocks them */
	pid_t		coordinator_pid;
	int			nworker_pids;
	pid_t		worker_pids[RS_MAX_RUN_WORKERS];
} RsRunShared;

extern bool rs_start_coordinator(const RsRunRequest *req, BackgroundWorkerHandle **handle);
PGDLLEXPORT void rs_coordinator_main(Datum main_arg);

/* ---------------------------------------------------------------------
 * in worker_slots.c
 * ---------------------------------------------------------------------
 */
extern bool rs_start_coordinator_limited(const RsRunRequest *req,
										 BackgroundWorkerHandle **handle,
										 const char **limit);
extern int	rs_start_workers_limited(BackgroundWorker *worker, Oid role, int wanted,
									 List **handles, const char **limit);

/* ---------------------------------------------------------------------
 * in sync_worker.c
 * ---------------------------------------------------------------------
 */

/* What a sync worker is asked to do; passed in bgw_extra. */
typedef struct RsWorkerRequest
{
	int64		run_id;
	int64		job_id;
	Oid			owner;
	Oid			dboid;
} RsWorkerRequest;

PGDLLEXPORT void rs_sync_worker_main(Datum main_arg);

/* ---------------------------------------------------------------------
 * in cron.c (a leaf: no catalog access)
 * ---------------------------------------------------------------------
 */
typedef struct CronSchedule
{
	uint64		minutes;		/* bit i: minute i */
	uint32		hours;
	uint32		days;			/* bit i: day i (1..31) */
	uint16		months;			/* bit i: month i (1..12) */
	uint8		weekdays;		/* bit i: weekday i (0 = Sunday) */
	bool		dom_star;		/* day-of-month field was "*" */
	bool		dow_star;		/* day-of-week field was "*" */
	int			interval_secs;	/* > 0: "N seconds" form */
} CronSchedule;

extern bool cron_parse(const char *expr, CronSchedule *sched, char **why);
extern bool cron_schedule_equal(const CronSchedule *a, const CronSchedule *b);
extern pg_tz *cron_timezone(const char *tzname);
extern TimestampTz cron_next(const CronSchedule *sched, TimestampTz after,
							 const char *tzname);
extern void rs_validate_schedule(const char *expr);

/* ---------------------------------------------------------------------
 * in scheduler.c and redis_sync.c
 * ---------------------------------------------------------------------
 */
extern char *rs_scheduler_database;
extern char *rs_scheduler_timezone;
extern int	rs_max_workers;
extern int	rs_max_workers_per_role;
extern int	rs_max_runs;
extern int	rs_max_runs_per_role;
/* wal_compression for sync workers (redis_sync.worker_wal_compression), or NULL */
extern const char *rs_wal_compression_name(void);

extern void rs_register_scheduler(void);
extern DateADT rs_today(TimestampTz now);
PGDLLEXPORT void rs_scheduler_main(Datum main_arg);

#endif							/* REDIS_SYNC_H */
