/*
 * write_floor: the PostgreSQL write limit for a sync.  Reads the day's set
 * and its totals into memory first (not timed), then upserts the rows into
 * member and daily_click_count with the same set-based statements as
 * redis_sync, in batches, from two libpq connections working at once, and
 * prints the elapsed seconds of the writes.
 *
 *   write_floor REDIS_PORT PGCONNINFO KEY TOTAL_KEY DATE [BATCH]
 */
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_clock.h"

#define NCONN 2


/* Append s to an array literal, quoted. */
static void
append_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t		need = strlen(s) * 2 + 4;

	if (*len + need >= *cap)
	{
		*cap = (*cap + need) * 2;
		*buf = realloc(*buf, *cap);
	}
	(*buf)[(*len)++] = '"';
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = *s;
	}
	(*buf)[(*len)++] = '"';
}

static void
append_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t		l = strlen(s);

	if (*len + l + 2 >= *cap)
	{
		*cap = (*cap + l + 2) * 2;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, l);
	*len += l;
}

static void
check(PGresult *res, PGconn *conn)
{
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

int
main(int argc, char **argv)
{
	redisContext *rc;
	redisReply *members;
	redisReply *totals;
	PGconn	   *conns[NCONN];
	const char *date;
	long		batch;
	long		n;
	long		i;
	double		t0;
	int			k;
	long		next = 0;

	if (argc < 6)
	{
		fprintf(stderr, "usage: write_floor REDIS_PORT PGCONNINFO KEY TOTAL_KEY DATE [BATCH]\n");
		return 2;
	}
	date = argv[5];
	batch = argc > 6 ? atol(argv[6]) : 10000;
	rc = redisConnect("127.0.0.1", atoi(argv[1]));
	members = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", argv[3]);
	n = members->elements / 2;
	{
		const char **av = malloc(sizeof(char *) * (n + 2));
		size_t	   *al = malloc(sizeof(size_t) * (n + 2));

		av[0] = "ZMSCORE";
		al[0] = 7;
		av[1] = argv[4];
		al[1] = strlen(argv[4]);
		for (i = 0; i < n; i++)
		{
			av[i + 2] = members->element[2 * i]->str;
			al[i + 2] = members->element[2 * i]->len;
		}
		totals = redisCommandArgv(rc, (int) n + 2, av, al);
	}

	for (k = 0; k < NCONN; k++)
	{
		conns[k] = PQconnectdb(argv[2]);
		if (PQstatus(conns[k]) != CONNECTION_OK)
		{
			fprintf(stderr, "%s", PQerrorMessage(conns[k]));
			return 1;
		}
		check(PQexec(conns[k], "SET synchronous_commit = off"), conns[k]);
		check(PQprepare(conns[k], "m",
						"INSERT INTO member AS t (name, click_count) "
						"SELECT u.n, u.c FROM unnest($1::text[], $2::bigint[]) AS u(n, c) "
						"ON CONFLICT (name) DO UPDATE SET click_count = EXCLUDED.click_count "
						"WHERE t.click_count IS DISTINCT FROM EXCLUDED.click_count", 2, NULL), conns[k]);
		check(PQprepare(conns[k], "d",
						"INSERT INTO daily_click_count AS t (name, click_date, click_count) "
						"SELECT u.n, $3::date, u.c FROM unnest($1::text[], $2::bigint[]) AS u(n, c) "
						"ON CONFLICT (name, click_date) DO UPDATE SET click_count = EXCLUDED.click_count "
						"WHERE t.click_count IS DISTINCT FROM EXCLUDED.click_count", 3, NULL), conns[k]);
		if (!PQenterPipelineMode(conns[k]))
			return 1;
	}

	t0 = now();
	while (next < n)
	{
		int			busy = 0;

		/* one batch per connection, in a transaction each, at the same time */
		for (k = 0; k < NCONN && next < n; k++, busy++)
		{
			long		end = next + batch < n ? next + batch : n;
			char	   *names = NULL, *days = NULL, *tots = NULL;
			size_t		nl = 0, nc = 0, dl = 0, dc = 0, tl = 0, tc = 0;
			const char *params[3];

			append_raw(&names, &nl, &nc, "{");
			append_raw(&days, &dl, &dc, "{");
			append_raw(&tots, &tl, &tc, "{");
			for (i = next; i < end; i++)
			{
				redisReply *t = totals->element[i];

				if (i > next)
				{
					append_raw(&names, &nl, &nc, ",");
					append_raw(&days, &dl, &dc, ",");
					append_raw(&tots, &tl, &tc, ",");
				}
				append_quoted(&names, &nl, &nc, members->element[2 * i]->str);
				append_raw(&days, &dl, &dc, members->element[2 * i + 1]->str);
				append_raw(&tots, &tl, &tc, t->type == REDIS_REPLY_STRING ? t->str : "0");
			}
			append_raw(&names, &nl, &nc, "}");
			append_raw(&days, &dl, &dc, "}");
			append_raw(&tots, &tl, &tc, "}");
			names[nl] = days[dl] = tots[tl] = '\0';

			/* a pipeline of BEGIN, both upserts and COMMIT */
			params[0] = names;
			params[1] = tots;
			params[2] = date;
			if (!PQsendQueryParams(conns[k], "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
				!PQsendQueryPrepared(conns[k], "m", 2, params, NULL, NULL, 0))
				return 1;
			params[1] = days;
			if (!PQsendQueryPrepared(conns[k], "d", 3, params, NULL, NULL, 0) ||
				!PQsendQueryParams(conns[k], "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
				!PQpipelineSync(conns[k]))
				return 1;
			free(names);
			free(days);
			free(tots);
			next = end;
		}
		/* 4 results, each followed by NULL, then the sync */
		for (k = 0; k < busy; k++)
		{
			int			q;

			for (q = 0; q < 4; q++)
			{
				check(PQgetResult(conns[k]), conns[k]);
				if (PQgetResult(conns[k]) != NULL)
					return 1;
			}
			{
				PGresult   *sync = PQgetResult(conns[k]);

				if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
					return 1;
				PQclear(sync);
			}
		}
	}
	printf("%.6f %ld\n", now() - t0, n);
	return 0;
}
