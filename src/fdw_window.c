/*-------------------------------------------------------------------------
 *
 * fdw_window.c
 *		  The rank and score window of a redis_zset scan, narrowed by the
 *		  pushed-down conditions' values.  The scan and EXPLAIN both call
 *		  rs_window_add(), so EXPLAIN shows the bounds the scan sends.
 *
 * Redis compares scores as doubles.  PostgreSQL compares the score column's
 * value: the column type's input function applied to the text Redis prints
 * (17 significant digits, "inf" and "-inf").  A score condition is pushed
 * exactly when the two comparisons agree for every double Redis can hold:
 *	 - a float8 column compared with a float8 or real value: the column
 *	   holds Redis's double itself;
 *	 - an integer column compared with an integer value: the column holds
 *	   the double's integer value, and a bound that is not a double (beyond
 *	   2^53) is rounded to the double on its inner side, which is exact too.
 * Every other score condition (numeric, numeric(p,s) and real columns, or
 * a value of another type) gets a widened window that holds every score
 * whose column value can satisfy it, and the planner keeps the condition
 * as a local qual, which rechecks it (see rs_score_cond_exact).  Text
 * columns compare as text and are never pushed.  A bound beyond the range
 * of double becomes an infinite one, never an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/numeric.h"

#include "fdw.h"

static bool rs_is_integer_type(Oid typid);
static double rs_value_double(Datum value, Oid typid, bool *is_int, int64 *ival);
static double rs_widen(double v, double dir, Oid coltype, int32 coltypmod);
static void rs_add_rank(RsWindow *w, RsCondOp op, double v);
static void rs_add_score(RsWindow *w, RsCondOp op, double v, bool is_int, int64 ival,
						 Oid coltype, int32 coltypmod, bool exact);
static void rs_min_bound(RsScoreBounds *sb, double v, bool incl);
static void rs_max_bound(RsScoreBounds *sb, double v, bool incl);

static bool
rs_is_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

/*
 * rs_score_cond_exact
 *		Does Redis's comparison of a score with a value of type valtype
 *		agree with PostgreSQL's comparison of the score column (of type
 *		coltype) with it, for every score?  If not, the condition is pushed
 *		as a widened window and rechecked locally.
 */
bool
rs_score_cond_exact(Oid coltype, Oid valtype)
{
	if (coltype == FLOAT8OID)
		return valtype == FLOAT8OID || valtype == FLOAT4OID;
	if (rs_is_integer_type(coltype))
		return rs_is_integer_type(valtype);
	return false;
}

/*
 * rs_value_double
 *		A comparison value as the nearest double: infinite beyond the range
 *		of double, NaN for NaN.  Integer values are also returned exactly in
 *		*ival.
 */
static double
rs_value_double(Datum value, Oid typid, bool *is_int, int64 *ival)
{
	*is_int = true;
	switch (typid)
	{
		case INT8OID:
			*ival = DatumGetInt64(value);
			return (double) *ival;
		case INT4OID:
			*ival = DatumGetInt32(value);
			return (double) *ival;
		case INT2OID:
			*ival = DatumGetInt16(value);
			return (double) *ival;
		default:
			break;
	}
	*is_int = false;
	if (typid == FLOAT4OID)
		return DatumGetFloat4(value);
	if (typid == FLOAT8OID)
		return DatumGetFloat8(value);

	/*
	 * numeric: strtod() of its text rounds correctly, and reads "NaN",
	 * "Infinity" and "-Infinity"; beyond the range of double it returns an
	 * infinity (or zero) where numeric_float8() would raise an error.
	 */
	Assert(typid == NUMERICOID);
	return strtod(DatumGetCString(DirectFunctionCall1(numeric_out, value)), NULL);
}

/*
 * rs_widen
 *		Move the bound v outwards (dir -1: down, +1: up) past every double
 *		whose column value may compare equal to v.  The column value differs
 *		from Redis's double by the rounding of 17 significant digits
 *		(numeric), of the column's scale (numeric(p,s)), or of a real; the
 *		bound itself by the rounding to double.  The margin is generous: the
 *		local recheck makes the result exact, the window only has to hold it.
 */
static double
rs_widen(double v, double dir, Oid coltype, int32 coltypmod)
{
	double		err;
	int			i;

	if (isinf(v))
		return v;
	if (coltype == FLOAT4OID)
		err = fabs(v) * 0x1p-22 + 0x1p-148;
	else if (coltype == NUMERICOID)
	{
		err = fabs(v) * 0x1p-50;
		if (coltypmod >= (int32) VARHDRSZ)
		{
			/* numeric(p,s) rounds to s decimal places (s may be negative) */
			int			scale = ((((coltypmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024);

			err += pow(10.0, -scale);
		}
	}
	else
		err = fabs(v) * 0x1p-50 + 1.0;
	v += dir * err;
	for (i = 0; i < 4; i++)
		v = nextafter(v, dir * HUGE_VAL);
	return v;
}

/*
 * rs_window_init
 *		The window of a scan with no condition: every rank.
 */
void
rs_window_init(RsWindow *w)
{
	memset(w, 0, sizeof(RsWindow));
	w->rank_lo = 0;
	w->rank_hi = -1;
}

/*
 * rs_window_add
 *		Narrow the window by one pushed rank or score condition, "column op
 *		value".  coltype and coltypmod describe the score column.
 */
void
rs_window_add(RsWindow *w, RsCondKind kind, RsCondOp op, Datum value, bool isnull,
			  Oid valtype, Oid coltype, int32 coltypmod)
{
	bool		is_int;
	int64		ival = 0;
	double		v;

	if (isnull)
	{
		w->empty = true;
		return;
	}
	v = rs_value_double(value, valtype, &is_int, &ival);
	if (isnan(v))
	{
		/* NaN sorts above every number in PostgreSQL. */
		if (op == RS_OP_EQ || op == RS_OP_GE || op == RS_OP_GT)
			w->empty = true;
		return;
	}
	if (kind == RS_COND_RANK)
		rs_add_rank(w, op, v);
	else
	{
		bool		exact = rs_score_cond_exact(coltype, valtype);

		if (!exact)
			w->widened = true;
		rs_add_score(w, op, v, is_int, ival, coltype, coltypmod, exact);
	}
}

/*
 * rs_window_add_unknown
 *		For EXPLAIN: a condition whose value is known only at execution.
 */
void
rs_window_add_unknown(RsWindow *w, RsCondKind kind, RsCondOp op, Oid valtype, Oid coltype)
{
	bool		lower = (op == RS_OP_GT || op == RS_OP_GE || op == RS_OP_EQ);
	bool		upper = (op == RS_OP_LT || op == RS_OP_LE || op == RS_OP_EQ);

	if (kind == RS_COND_RANK)
	{
		w->rank_lo_unknown |= lower;
		w->rank_hi_unknown |= upper;
	}
	else
	{
		w->score_min_unknown |= lower;
		w->score_max_unknown |= upper;
		if (!rs_score_cond_exact(coltype, valtype))
			w->widened = true;
	}
}

/*
 * rs_add_rank
 *		Ranks are integers: round a bound inwards.
 */
static void
rs_add_rank(RsWindow *w, RsCondOp op, double v)
{
	double		lo_v = -1,
				hi_v = -1;

	switch (op)
	{
		case RS_OP_LT:
			hi_v = ceil(v) - 1;
			break;
		case RS_OP_LE:
			hi_v = floor(v);
			break;
		case RS_OP_EQ:
			if (v != floor(v))
				w->empty = true;
			lo_v = hi_v = v;
			break;
		case RS_OP_GE:
			lo_v = ceil(v);
			break;
		case RS_OP_GT:
			lo_v = floor(v) + 1;
			break;
		default:
			break;
	}
	if (op == RS_OP_LT || op == RS_OP_LE || op == RS_OP_EQ)
	{
		if (hi_v < 0)
			w->empty = true;
		else if (hi_v < 9e18 && (w->rank_hi < 0 || hi_v < w->rank_hi))
			w->rank_hi = (int64) hi_v;
	}
	if ((op == RS_OP_GE || op == RS_OP_GT || op == RS_OP_EQ) && lo_v > w->rank_lo)
	{
		if (lo_v >= 9e18)
			w->empty = true;
		else
			w->rank_lo = (int64) lo_v;
	}
	if (w->rank_hi >= 0 && w->rank_hi < w->rank_lo)
		w->empty = true;
}

/*
 * rs_add_score
 *		Narrow the score bounds by "score op v".
 */
static void
rs_add_score(RsWindow *w, RsCondOp op, double v, bool is_int, int64 ival,
			 Oid coltype, int32 coltypmod, bool exact)
{
	double		lo = v,
				hi = v;
	bool		lo_incl = (op != RS_OP_GT),
				hi_incl = (op != RS_OP_LT);

	if (exact && is_int)
	{
		/*
		 * The doubles on either side of the integer ival: "below" is the
		 * largest double <= ival, "above" the smallest double >= ival.  The
		 * cast to double rounded to nearest; 2^63 is above every int64.
		 */
		double		below = v,
					above = v;

		if (v >= 0x1p63 || (int64) v > ival)
			below = nextafter(v, -HUGE_VAL);
		else if ((int64) v < ival)
			above = nextafter(v, HUGE_VAL);
		if (below != above)
		{
			/* No double equals ival: bounds become inclusive, on the inside. */
			if (op == RS_OP_EQ)
			{
				w->empty = true;
				return;
			}
			lo = above;
			hi = below;
			lo_incl = hi_incl = true;
		}
	}
	else if (!exact)
	{
		lo = rs_widen(v, -1.0, coltype, coltypmod);
		hi = rs_widen(v, 1.0, coltype, coltypmod);
		lo_incl = hi_incl = true;
	}

	if (op == RS_OP_GT || op == RS_OP_GE || op == RS_OP_EQ)
		rs_min_bound(&w->sb, lo, lo_incl);
	if (op == RS_OP_LT || op == RS_OP_LE || op == RS_OP_EQ)
		rs_max_bound(&w->sb, hi, hi_incl);
}

static void
rs_min_bound(RsScoreBounds *sb, double v, bool incl)
{
	if (!sb->has_min || v > sb->min || (v == sb->min && !incl))
	{
		sb->min = v;
		sb->min_incl = incl;
	}
	sb->has_min = true;
}

static void
rs_max_bound(RsScoreBounds *sb, double v, bool incl)
{
	if (!sb->has_max || v < sb->max || (v == sb->max && !incl))
	{
		sb->max = v;
		sb->max_incl = incl;
	}
	sb->has_max = true;
}

/*
 * rs_score_arg
 *		The last argument of "ZCOUNT key -inf <arg>", which counts the
 *		scores up to v ("incl") or below it: "5", "(5", "+inf", "(-inf"...
 *		17 significant digits read back as the same double.
 */
char *
rs_score_arg(double v, bool incl)
{
	if (isinf(v))
		return psprintf("%s%s", incl ? "" : "(", v < 0 ? "-inf" : "+inf");
	return psprintf("%s%.17g", incl ? "" : "(", v);
}

/*
 * rs_score_matches
 *		For member lookups, which read scores outside any window: is the
 *		score (Redis's text) inside the score bounds?
 */
bool
rs_score_matches(const RsScoreBounds *sb, const char *score)
{
	double		v;

	if (!sb->has_min && !sb->has_max)
		return true;
	v = strtod(score, NULL);
	if (sb->has_min && (v < sb->min || (v == sb->min && !sb->min_incl)))
		return false;
	if (sb->has_max && (v > sb->max || (v == sb->max && !sb->max_incl)))
		return false;
	return true;
}
