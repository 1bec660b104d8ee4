--
-- Cron schedules: parsing and next due times
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
SET timezone = 'UTC';
SELECT s, redis_sync.next_run(s, '2026-11-21 10:17:30+00') AS next
  FROM unnest(ARRAY[
    '* * * * *', '5 0 * * *', '*/10 * * * *', '0 */6 * * *', '30 2 1 * *',
    '0 9 * * mon-fri', '0 9 * * 1-5', '0 0 * * 7', '0 0 * * SUN', '15 14 1 JAN,jul *',
    '0 12 13 * 5', '0 0 29 2 *', '0 0 31 * *', '1-5/2 * * * *', '59 23 31 12 *',
    '@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '@midnight',
    '30 seconds', '1 second']) AS s;
-- month ends, leap days
SELECT redis_sync.next_run('0 0 31 * *', '2026-04-01 00:00+00');
SELECT redis_sync.next_run('0 0 29 2 *', '2026-03-01 00:00+00');
SELECT redis_sync.next_run('0 0 30 2 *', '2026-03-01 00:00+00');
-- day of month OR day of week when both are restricted, AND when one is *
SELECT redis_sync.next_run('0 0 13 * 5', '2026-11-01 00:00+00');
SELECT redis_sync.next_run('0 0 * 11 5', '2026-11-01 00:00+00');
-- DST in a named zone (America/New_York: spring forward 2026-03-08, fall back 2026-11-01)
SET redis_sync.timezone = 'America/New_York';
SELECT redis_sync.next_run('30 2 * * *', '2026-03-07 12:00+00') AS first,
       redis_sync.next_run('30 2 * * *', redis_sync.next_run('30 2 * * *', '2026-03-07 12:00+00')) AS second,
       redis_sync.next_run('30 2 * * *', redis_sync.next_run('30 2 * * *', redis_sync.next_run('30 2 * * *', '2026-03-07 12:00+00'))) AS third;
SELECT redis_sync.next_run('30 1 * * *', '2026-10-31 12:00+00') AS first,
       redis_sync.next_run('30 1 * * *', redis_sync.next_run('30 1 * * *', '2026-10-31 12:00+00')) AS second,
       redis_sync.next_run('30 1 * * *', redis_sync.next_run('30 1 * * *', redis_sync.next_run('30 1 * * *', '2026-10-31 12:00+00'))) AS third;
RESET redis_sync.timezone;
SET redis_sync.timezone = 'Mars/Olympus_Mons';
-- rejected expressions name the problem
SELECT redis_sync.next_run('60 * * * *');
SELECT redis_sync.next_run('* 24 * * *');
SELECT redis_sync.next_run('* * 0 * *');
SELECT redis_sync.next_run('* * * 13 *');
SELECT redis_sync.next_run('* * * * 8');
SELECT redis_sync.next_run('* * * *');
SELECT redis_sync.next_run('* * * * * *');
SELECT redis_sync.next_run('5-1 * * * *');
SELECT redis_sync.next_run('*/0 * * * *');
SELECT redis_sync.next_run('a * * * *');
SELECT redis_sync.next_run('1,,2 * * * *');
SELECT redis_sync.next_run('* * * FOO *');
SELECT redis_sync.next_run('60 seconds');
SELECT redis_sync.next_run('0 seconds');
SELECT redis_sync.next_run('@sometimes');
SELECT redis_sync.next_run('');
-- schedules compared by meaning (what the scheduler compares), whatever their length
SELECT redis_sync.cron_schedule_equal('* * * * *', '*' || repeat(' ', 300) || '* * * *') AS spaces,
       redis_sync.cron_schedule_equal('0 0 * * 0', '@weekly') AS macro,
       redis_sync.cron_schedule_equal('0 0 * * 7', '0 0 * * sun') AS sunday,
       redis_sync.cron_schedule_equal('0 0 * * *', '0 0 * * 1') AS weekday,
       redis_sync.cron_schedule_equal('10 seconds', '10' || repeat(' ', 300) || 'seconds') AS seconds,
       redis_sync.cron_schedule_equal('10 seconds', '20 seconds') AS other_seconds;
-- two long lists that differ only after the 255th byte
SELECT length(a) > 255 AS long, redis_sync.cron_schedule_equal(a, a) AS same,
       redis_sync.cron_schedule_equal(a, replace(a, '1-6', '1-5')) AS differ
  FROM (SELECT (SELECT string_agg(i::text, ',') FROM generate_series(0, 59) i) || ' ' ||
               (SELECT string_agg(i::text, ',') FROM generate_series(0, 23) i) || ' ' ||
               (SELECT string_agg(i::text, ',') FROM generate_series(1, 31) i) || ' * 1-6' AS a) s;
SELECT redis_sync.cron_schedule_equal('* * * * *', 'bad');
