/*
 * read_floor: the raw Redis read limit.  Reads a sorted set with pipelined
 * ZRANGE ... WITHSCORES pages (one page in flight ahead), optionally with
 * ZMSCORE of each page's members on a second key, and prints the elapsed
 * seconds, the member count and the score sum (for verification).
 *
 *   read_floor PORT KEY PAGE_SIZE [TOTAL_KEY]
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_clock.h"


static void
send_range(redisContext *c, const char *key, long start, long stop)
{
	char		a[32], b[32];
	const char *argv[5] = {"ZRANGE", key, a, b, "WITHSCORES"};

	snprintf(a, sizeof(a), "%ld", start);
	snprintf(b, sizeof(b), "%ld", stop);
	redisAppendCommandArgv(c, 5, argv, NULL);
}

int
main(int argc, char **argv)
{
	redisContext *c;
	redisReply *r;
	const char *key;
	const char *total_key;
	long		page;
	long		card;
	long		start = 0;
	long		n = 0;
	double		sum = 0;
	double		tsum = 0;
	double		t0;

	if (argc < 4)
	{
		fprintf(stderr, "usage: read_floor PORT KEY PAGE_SIZE [TOTAL_KEY]\n");
		return 2;
	}
	key = argv[2];
	page = atol(argv[3]);
	total_key = argc > 4 ? argv[4] : NULL;
	c = redisConnect("127.0.0.1", atoi(argv[1]));
	if (c == NULL || c->err)
	{
		fprintf(stderr, "connect failed\n");
		return 1;
	}
	t0 = now();
	r = redisCommand(c, "ZCARD %s", key);
	card = r->integer;
	freeReplyObject(r);
	if (card > 0)
		send_range(c, key, 0, page - 1);
	while (start < card)
	{
		size_t		i;
		long		next = start + page;

		if (redisGetReply(c, (void **) &r) != REDIS_OK)
			return 1;
		if (total_key && r->elements > 0)
		{
			const char **av = malloc(sizeof(char *) * (r->elements / 2 + 2));
			size_t	   *al = malloc(sizeof(size_t) * (r->elements / 2 + 2));

			av[0] = "ZMSCORE";
			al[0] = 7;
			av[1] = total_key;
			al[1] = strlen(total_key);
			for (i = 0; i < r->elements / 2; i++)
			{
				av[i + 2] = r->element[2 * i]->str;
				al[i + 2] = r->element[2 * i]->len;
			}
			redisAppendCommandArgv(c, (int) (r->elements / 2 + 2), av, al);
			free(av);
			free(al);
		}
		if (next < card)
			send_range(c, key, next, next + page - 1);
		for (i = 0; i < r->elements; i += 2)
		{
			sum += strtod(r->element[i + 1]->str, NULL);
			n++;
		}
		if (total_key && r->elements > 0)
		{
			redisReply *t;

			if (redisGetReply(c, (void **) &t) != REDIS_OK)
				return 1;
			for (i = 0; i < t->elements; i++)
				if (t->element[i]->type == REDIS_REPLY_STRING)
					tsum += strtod(t->element[i]->str, NULL);
			freeReplyObject(t);
		}
		freeReplyObject(r);
		start = next;
	}
	printf("%.6f %ld %.0f %.0f\n", now() - t0, n, sum, tsum);
	redisFree(c);
	return 0;
}
