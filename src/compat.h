/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  What differs between the supported PostgreSQL majors and hiredis
 *		  versions, in one place.
 *
 * The rest of the code is written against one interface; each difference
 * is bridged here by a macro, named after what it does rather than after
 * a version.  Include after <hiredis/hiredis.h> (in the files that use
 * hiredis) and the PostgreSQL headers that declare what a macro uses
 * (access/nbtree.h for the nbtree ones).
 *
 * Tested combinations: PostgreSQL 15 with hiredis 0.14 (make test), and
 * PostgreSQL 15 and 18 with hiredis 1.x and TLS (make test-matrix).  The
 * branches for 16 and 17 follow those majors' API changes but are compiled
 * by no test here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_COMPAT_H
#define RS_COMPAT_H

/* ---------------------------------------------------------------------
 * hiredis
 * ---------------------------------------------------------------------
 */

/*
 * The reader's stack of tasks, the reply being parsed at each nesting
 * level: a fixed array "rstack" in 0.14, an array of pointers "task" from
 * 1.0 on.  RS_READER_TASK(reader, i) is a pointer to level i.
 */
#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
#define RS_READER_TASK(reader, i)	((reader)->task[(i)])
#else
#define RS_READER_TASK(reader, i)	(&(reader)->rstack[(i)])
#endif

/*
 * TLS needs hiredis_ssl, which exists from hiredis 1.0 on; the Makefile
 * defines RS_HAVE_TLS when it finds it.  Checked where hiredis is included
 * (the command layer); the other files do not see hiredis.
 */
#if defined(RS_HAVE_TLS) && defined(HIREDIS_MAJOR) && HIREDIS_MAJOR < 1
#error "RS_HAVE_TLS needs hiredis 1.0 or later"
#endif

/* ---------------------------------------------------------------------
 * PostgreSQL
 * ---------------------------------------------------------------------
 */

/*
 * The i-th (1-based) entry of this backend's copy of the backend status
 * array: PostgreSQL 17 renamed the function.
 */
#if PG_VERSION_NUM >= 170000
#define rs_local_beentry(i)	pgstat_get_local_beentry_by_index(i)
#else
#define rs_local_beentry(i)	pgstat_fetch_stat_local_beentry(i)
#endif

/*
 * Does this backend hold a lock of exactly this mode?  PostgreSQL 17 added
 * an "or stronger" argument to LockHeldByMe.
 */
#if PG_VERSION_NUM >= 170000
#define rs_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode), false)
#else
#define rs_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode))
#endif

/*
 * PostgreSQL 18 moved ExplainState to its own header, and the functions
 * that print EXPLAIN properties to another.
 */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/*
 * create_foreignscan_path() gained fdw_restrictinfo in 17 and disabled_nodes
 * in 18; rs_create_foreignscan_path takes the arguments of 15 and passes
 * none of either.
 */
#if PG_VERSION_NUM >= 180000
#define rs_create_foreignscan_path(root, rel, target, rows, startup, total, \
								   pathkeys, outer, outerpath, private) \
	create_foreignscan_path((root), (rel), (target), (rows), 0, (startup), (total), \
							(pathkeys), (outer), (outerpath), NIL, (private))
#elif PG_VERSION_NUM >= 170000
#define rs_create_foreignscan_path(root, rel, target, rows, startup, total, \
								   pathkeys, outer, outerpath, private) \
	create_foreignscan_path((root), (rel), (target), (rows), (startup), (total), \
							(pathkeys), (outer), (outerpath), NIL, (private))
#else
#define rs_create_foreignscan_path create_foreignscan_path
#endif

/* Whether a path key sorts ascending: a compare type from 18 on. */
#if PG_VERSION_NUM >= 180000
#define rs_pathkey_is_asc(pk)	((pk)->pk_cmptype == COMPARE_LT)
#else
#define rs_pathkey_is_asc(pk)	((pk)->pk_strategy == BTLessStrategyNumber)
#endif

/*
 * The role a foreign scan checks as (InvalidOid: the current user): kept
 * in the plan node from 16 on, in the range table entry before.
 */
#if PG_VERSION_NUM >= 160000
#define rs_scan_check_as_user(fsplan, estate)	((fsplan)->checkAsUser)
#else
#define rs_scan_check_as_user(fsplan, estate) \
	(exec_rt_fetch((fsplan)->scan.scanrelid, (estate))->checkAsUser)
#endif

/*
 * The role a foreign table is planned to be read as (InvalidOid: the current
 * user), which the executor checks as too: kept in the RelOptInfo from 16
 * on, in the range table entry before (planner_rt_fetch needs
 * parser/parsetree.h).
 */
#if PG_VERSION_NUM >= 160000
#define rs_rel_check_as_user(root, rel)	((rel)->userid)
#else
#define rs_rel_check_as_user(root, rel) \
	(planner_rt_fetch((rel)->relid, (root))->checkAsUser)
#endif

/*
 * The per-object ACL checks became object_aclcheck() in 16; the old name
 * of the one used here stays available.
 */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_foreign_server.h"
#define pg_foreign_server_aclcheck(srv_oid, roleid, mode) \
	object_aclcheck(ForeignServerRelationId, (srv_oid), (roleid), (mode))
#endif

/*
 * Functions that never return: PostgreSQL 18 marks them with pg_noreturn,
 * placed before the declaration, and no longer has pg_attribute_noreturn();
 * on earlier majors the latter expands to an attribute that may stand in
 * the same place.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * target_probe.c reads unique btree indexes with nbtree's own functions
 * (_bt_mkscankey, _bt_search, _bt_compare, _bt_relandgetbuf, the page
 * opaque and posting-list accessors).  It relies on: an insertion scan key
 * from _bt_mkscankey compares with _bt_compare against leaf entries and the
 * high key; _bt_search with BT_READ returns the leftmost leaf that may hold
 * the key, read-locked; a read lock on a leaf keeps its entries and its
 * right link stable; posting lists hold heap TIDs in key order.  The
 * functions, macros and structures used were checked against the nbtree
 * headers of 15 and 18, and the target_probe regress file (which compares
 * probes with SQL) passes on both; the probes are used only there
 * (RS_BTREE_PROBE), and other majors take the SQL path.
 */
#define RS_BTREE_PROBE \
	(PG_VERSION_NUM / 10000 == 15 || PG_VERSION_NUM / 10000 == 18)

/* _bt_search lost its snapshot in 17 and gained the heap relation in 16. */
#if PG_VERSION_NUM >= 170000
#define rs_bt_search(index, heap, key, bufp, snapshot) \
	_bt_search((index), (heap), (key), (bufp), BT_READ)
#elif PG_VERSION_NUM >= 160000
#define rs_bt_search(index, heap, key, bufp, snapshot) \
	_bt_search((index), (heap), (key), (bufp), BT_READ, (snapshot))
#else
#define rs_bt_search(index, heap, key, bufp, snapshot) \
	_bt_search((index), (key), (bufp), BT_READ, (snapshot))
#endif

/* old_snapshot_threshold, and with it TestForOldSnapshot, ended in 17. */
#if PG_VERSION_NUM >= 170000
#define rs_test_for_old_snapshot(snapshot, index, page) ((void) 0)
#else
#define rs_test_for_old_snapshot(snapshot, index, page) \
	TestForOldSnapshot((snapshot), (index), (page))
#endif

#endif							/* RS_COMPAT_H */
