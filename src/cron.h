/*-------------------------------------------------------------------------
 *
 * cron.h
 *		  The cron parser (cron.c): parse a schedule and compute its next
 *		  start.  A leaf: no catalog access, no Redis, no workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_CRON_H
#define RS_CRON_H

#include "datatype/timestamp.h"
#include "pgtime.h"

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

extern bool rs_cron_parse(const char *expr, CronSchedule *sched, char **why);
extern bool rs_cron_schedule_equal(const CronSchedule *a, const CronSchedule *b);
extern pg_tz *rs_cron_timezone(const char *tzname);
extern TimestampTz rs_cron_next(const CronSchedule *sched, TimestampTz after,
							 const char *tzname);
extern void rs_validate_schedule(const char *expr);

#endif							/* RS_CRON_H */
