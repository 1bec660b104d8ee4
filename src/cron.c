/*-------------------------------------------------------------------------
 *
 * cron.c
 *		  Parsing and evaluation of cron schedules.
 *
 * Accepted forms:
 *	 - five fields "minute hour day-of-month month day-of-week", each a
 *	   comma-separated list of "*", "N" or "N-M", optionally with "/step";
 *	   month and weekday names (JAN, mon), 0 or 7 for Sunday;
 *	 - @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually);
 *	 - pg_cron's interval form "N seconds" (1 to 59).
 * As in standard cron, when both day-of-month and day-of-week are
 * restricted, a day matches if either does.
 *
 * Next times are computed on local wall-clock fields in the given time
 * zone: a time skipped by a spring-forward change runs once, just after the
 * gap; a time repeated by a fall-back change runs once, the first time.
 *
 * This file is a leaf: no catalog access.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "cron.h"
#include "redis_sync.h"

PG_FUNCTION_INFO_V1(rs_next_run_sql);
PG_FUNCTION_INFO_V1(rs_cron_schedule_equal_sql);

typedef struct CronField
{
	const char *label;
	int			min;
	int			max;
	const char *const *names;	/* names[i] is value min + i, or NULL */
} CronField;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const CronField cron_fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 7, day_names},
};

/* Parse a value (number or name) at *p; false on error. */
static bool
cron_value(const char **p, const CronField *f, int *out)
{
	const char *s = *p;

	if (isdigit((unsigned char) *s))
	{
		long		v = 0;

		while (isdigit((unsigned char) *s))
		{
			v = v * 10 + (*s - '0');
			if (v > 1000)
				return false;
			s++;
		}
		*out = (int) v;
		*p = s;
		return true;
	}
	if (f->names != NULL && isalpha((unsigned char) *s))
	{
		int			i;

		for (i = 0; f->names[i]; i++)
		{
			if (pg_strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char) s[3]))
			{
				*out = f->min + i;
				*p = s + 3;
				return true;
			}
		}
	}
	return false;
}

/*
 * Parse one field into a bitmask.  On error, *why describes it.
 */
static bool
cron_field(const char *text, const CronField *f, uint64 *mask, bool *star, char **why)
{
	const char *p = text;

	*mask = 0;
	*star = (strcmp(text, "*") == 0);
	for (;;)
	{
		int			lo,
					hi,
					step = 1,
					v;

		if (*p == '*')
		{
			lo = f->min;
			hi = f->max;
			p++;
		}
		else
		{
			if (!cron_value(&p, f, &lo))
				goto bad;
			hi = lo;
			if (*p == '-')
			{
				p++;
				if (!cron_value(&p, f, &hi))
					goto bad;
			}
		}
		if (*p == '/')
		{
			p++;
			if (!isdigit((unsigned char) *p))
				goto bad;
			if (!cron_value(&p, &cron_fields[0], &step) || step < 1)
				goto bad;
			if (lo == hi && p[-1] != '*')
				hi = f->max;	/* "N/step" means N-max/step */
		}
		if (lo < f->min || hi > f->max || lo > hi)
		{
			*why = psprintf("Field \"%s\" (%s) is out of range %d-%d.",
							   text, f->label, f->min, f->max);
			return false;
		}
		for (v = lo; v <= hi; v += step)
			*mask |= UINT64CONST(1) << v;
		if (*p == '\0')
			return true;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	*why = psprintf("Field \"%s\" (%s) is not a valid list of values, ranges and steps.",
					   text, f->label);
	return false;
}

/*
 * rs_cron_parse
 *		Parse a schedule.  Returns false and sets *why (a full sentence)
 *		if it is invalid.
 */
bool
rs_cron_parse(const char *expr, CronSchedule *sched, char **why)
{
	char	   *copy;
	char	   *fields[6];
	int			nfields = 0;
	char	   *tok;
	char	   *save;
	int			i;
	int			secs;
	char		unit[16];

	memset(sched, 0, sizeof(CronSchedule));
	while (isspace((unsigned char) *expr))
		expr++;

	if (*expr == '@')
	{
		static const char *const macros[][2] = {
			{"@hourly", "0 * * * *"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
			{"@weekly", "0 0 * * 0"}, {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
			{"@annually", "0 0 1 1 *"}};

		for (i = 0; i < lengthof(macros); i++)
			if (pg_strcasecmp(expr, macros[i][0]) == 0)
				return rs_cron_parse(macros[i][1], sched, why);
		*why = psprintf("\"%s\" is not one of @hourly, @daily, @weekly, @monthly and @yearly.", expr);
		return false;
	}

	if (sscanf(expr, "%d %15s", &secs, unit) == 2 &&
		(pg_strcasecmp(unit, "seconds") == 0 || pg_strcasecmp(unit, "second") == 0))
	{
		const char *p = expr;

		while (isdigit((unsigned char) *p))
			p++;
		while (isspace((unsigned char) *p))
			p++;
		p += strlen(unit);
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
		{
			if (secs < 1 || secs > 59)
			{
				*why = pstrdup("An interval schedule must be from 1 to 59 seconds.");
				return false;
			}
			sched->interval_secs = secs;
			return true;
		}
	}

	copy = pstrdup(expr);
	for (tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
	{
		if (nfields == 5)
		{
			nfields++;
			break;
		}
		fields[nfields++] = tok;
	}
	if (nfields != 5)
	{
		*why = psprintf("A schedule has 5 fields (minute, hour, day of month, month, day of week), not %d.",
						   nfields > 5 ? 6 : nfields);
		return false;
	}
	for (i = 0; i < 5; i++)
	{
		uint64		mask;
		bool		star;

		if (!cron_field(fields[i], &cron_fields[i], &mask, &star, why))
			return false;
		switch (i)
		{
			case 0:
				sched->minutes = mask;
				break;
			case 1:
				sched->hours = (uint32) mask;
				break;
			case 2:
				sched->days = (uint32) mask;
				sched->dom_star = star;
				break;
			case 3:
				sched->months = (uint16) mask;
				break;
			case 4:
				if (mask & (1 << 7))
					mask |= 1;	/* 7 is Sunday too */
				sched->weekdays = (uint8) (mask & 0x7F);
				sched->dow_star = star;
				break;
		}
	}
	return true;
}

/*
 * rs_cron_schedule_equal
 *		Do two parsed schedules have the same fields?  Schedules that are
 *		written differently but parse the same ("0 0 * * 7" and "@weekly",
 *		or the same text with more spaces) are equal; the comparison does
 *		not depend on the length of the text.
 */
bool
rs_cron_schedule_equal(const CronSchedule *a, const CronSchedule *b)
{
	return a->minutes == b->minutes &&
		a->hours == b->hours &&
		a->days == b->days &&
		a->months == b->months &&
		a->weekdays == b->weekdays &&
		a->dom_star == b->dom_star &&
		a->dow_star == b->dow_star &&
		a->interval_secs == b->interval_secs;
}

/*
 * rs_validate_schedule
 *		Raise an error, naming the bad field, if a schedule is invalid.
 */
void
rs_validate_schedule(const char *expr)
{
	CronSchedule sched;
	char	   *why = NULL;

	if (!rs_cron_parse(expr, &sched, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cron schedule \"%s\"", expr),
				 errdetail_internal("%s", why),
				 errhint("Use 5 fields such as \"5 0 * * *\", a macro such as \"@daily\", or \"N seconds\".")));
}

static bool
cron_day_matches(const CronSchedule *s, int year, int month, int day)
{
	bool		dom = (s->days & (((uint32) 1) << day)) != 0;
	bool		dow = (s->weekdays & (1 << j2day(date2j(year, month, day)))) != 0;

	if (s->dom_star || s->dow_star)
		return dom && dow;
	return dom || dow;
}

/*
 * rs_cron_timezone
 *		The zone named tzname, or the session's zone for NULL or "".  The
 *		redis_sync.timezone setting is checked when it is set, so an error
 *		here means a caller passed an unchecked name.
 */
pg_tz *
rs_cron_timezone(const char *tzname)
{
	pg_tz	   *tz;

	if (tzname == NULL || tzname[0] == '\0')
		return session_timezone;
	tz = pg_tzset(tzname);
	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", tzname)));
	return tz;
}

/*
 * rs_cron_next
 *		The first time strictly after "after" at which the schedule is due,
 *		evaluated in time zone tzname (NULL or "" for the session's), or
 *		DT_NOEND if it never is (e.g. "0 0 30 2 *").
 */
TimestampTz
rs_cron_next(const CronSchedule *s, TimestampTz after, const char *tzname)
{
	pg_tz	   *tz;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	int			steps;

	if (s->interval_secs > 0)
		return after + (TimestampTz) s->interval_secs * USECS_PER_SEC;
	tz = rs_cron_timezone(tzname);
	if (timestamp2tm(after, &tzoff, &tm, &fsec, NULL, tz) != 0)
		return DT_NOEND;

	/* Start at the next whole minute of local time. */
	tm.tm_sec = 0;
	tm.tm_min++;

	for (steps = 0; steps < 200000; steps++)
	{
		int			mdays;
		TimestampTz result;

		/* Normalize the fields. */
		if (tm.tm_min > 59)
		{
			tm.tm_min = 0;
			tm.tm_hour++;
		}
		if (tm.tm_hour > 23)
		{
			tm.tm_hour = 0;
			tm.tm_mday++;
		}
		mdays = day_tab[isleap(tm.tm_year)][tm.tm_mon - 1];
		if (tm.tm_mday > mdays)
		{
			tm.tm_mday = 1;
			tm.tm_mon++;
		}
		if (tm.tm_mon > 12)
		{
			tm.tm_mon = 1;
			tm.tm_year++;
		}
		if (tm.tm_year > 9999)
			break;

		if (!(s->months & (1 << tm.tm_mon)))
		{
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = 0;
			tm.tm_min = 0;
			continue;
		}
		if (!cron_day_matches(s, tm.tm_year, tm.tm_mon, tm.tm_mday))
		{
			tm.tm_mday++;
			tm.tm_hour = 0;
			tm.tm_min = 0;
			continue;
		}
		if (!(s->hours & (((uint32) 1) << tm.tm_hour)))
		{
			tm.tm_hour++;
			tm.tm_min = 0;
			continue;
		}
		if (!(s->minutes & (UINT64CONST(1) << tm.tm_min)))
		{
			tm.tm_min++;
			continue;
		}

		tm.tm_sec = 0;
		tm.tm_isdst = -1;
		tzoff = DetermineTimeZoneOffset(&tm, tz);
		if (tm2timestamp(&tm, 0, &tzoff, &result) != 0)
			break;
		if (result > after)
			return result;
		tm.tm_min++;
	}
	return DT_NOEND;
}

/*
 * redis_sync.next_run(schedule text, after timestamptz) returns timestamptz
 *		NULL if the schedule is never due.
 */
Datum
rs_next_run_sql(PG_FUNCTION_ARGS)
{
	char	   *expr = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
	CronSchedule sched;
	TimestampTz next;

	rs_validate_schedule(expr);
	(void) rs_cron_parse(expr, &sched, NULL);
	if (TIMESTAMP_NOT_FINITE(after))
		PG_RETURN_NULL();
	next = rs_cron_next(&sched, after, rs_scheduler_timezone);
	if (TIMESTAMP_NOT_FINITE(next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

/*
 * redis_sync.cron_schedule_equal(a text, b text) returns boolean
 *		Whether two valid schedules mean the same (rs_cron_schedule_equal); an
 *		error names an invalid one.
 */
Datum
rs_cron_schedule_equal_sql(PG_FUNCTION_ARGS)
{
	char	   *a = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *b = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CronSchedule sa;
	CronSchedule sb;

	rs_validate_schedule(a);
	rs_validate_schedule(b);
	(void) rs_cron_parse(a, &sa, NULL);
	(void) rs_cron_parse(b, &sb, NULL);
	PG_RETURN_BOOL(rs_cron_schedule_equal(&sa, &sb));
}
