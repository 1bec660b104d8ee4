#!/usr/bin/env python3
"""The client-side sync that teams write today: a thread pool over rank partitions.

Reads the day's sorted set in pages of 1,000 (ZRANGE ... WITHSCORES, then
ZMSCORE on the total key), upserts each page with psycopg2's execute_values,
and commits per page.  The rank range is split into --partitions ranges, run
by a ThreadPoolExecutor.  This is the contender redis_sync is compared with;
it is written the way such migrations usually are, not tuned.

usage: threadpool_sync.py --redis-port P --dsn DSN --date D [--partitions N]
"""
import argparse
import concurrent.futures
import time

import psycopg2
import psycopg2.extras
import redis

PAGE = 1000


def sync_partition(args, start, stop):
    r = redis.Redis(host="127.0.0.1", port=args.redis_port)
    conn = psycopg2.connect(args.dsn)
    key = "clicks:daily:" + args.date
    written = 0
    with conn.cursor() as cur:
        for page_start in range(start, stop + 1, PAGE):
            page_stop = min(page_start + PAGE - 1, stop)
            rows = r.zrange(key, page_start, page_stop, withscores=True)
            if not rows:
                continue
            names = [m for m, _ in rows]
            totals = r.zmscore("clicks:total", names)
            member_rows = [(m.decode(), int(t) if t is not None else 0) for m, t in zip(names, totals)]
            daily_rows = [(m.decode(), args.date, int(s)) for m, s in rows]
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO member AS t (name, click_count) VALUES %s "
                "ON CONFLICT (name) DO UPDATE SET click_count = EXCLUDED.click_count "
                "WHERE t.click_count IS DISTINCT FROM EXCLUDED.click_count",
                member_rows, page_size=PAGE)
            written += cur.rowcount
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO daily_click_count AS t (name, click_date, click_count) VALUES %s "
                "ON CONFLICT (name, click_date) DO UPDATE SET click_count = EXCLUDED.click_count "
                "WHERE t.click_count IS DISTINCT FROM EXCLUDED.click_count",
                daily_rows, page_size=PAGE)
            written += cur.rowcount
            conn.commit()
    conn.close()
    return written


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--partitions", type=int, default=4)
    args = p.parse_args()

    t0 = time.monotonic()
    n = redis.Redis(host="127.0.0.1", port=args.redis_port).zcard("clicks:daily:" + args.date)
    size, extra = divmod(n, args.partitions)
    ranges, start = [], 0
    for i in range(args.partitions):
        length = size + (1 if i < extra else 0)
        if length:
            ranges.append((start, start + length - 1))
        start += length
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.partitions) as pool:
        written = sum(f.result() for f in [pool.submit(sync_partition, args, a, b) for a, b in ranges])
    print("%.6f %d %d" % (time.monotonic() - t0, n, written))


if __name__ == "__main__":
    main()
