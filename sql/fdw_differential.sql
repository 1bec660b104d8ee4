--
-- Differential test: thousands of generated queries on redis_zset foreign
-- tables, each compared with the same query on a local copy of the table.
-- Score types float8, numeric, numeric(12,2), real, bigint, int and text,
-- over sets with infinities, ties, tiny and huge scores and scores near
-- 2^53.  The seed is fixed; the output is the number of mismatches (0), and
-- the first mismatching query if there is one.
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER diff_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER diff_redis;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del df:float df:real df:cents df:big df:int > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd df:float -inf a inf b inf b2 0 c -0 c2 0.1 d 0.1 d2 0.1 d3 0.3 e 0.30000000000000004 e2 0.5 f 1.005 g 2.675 h 1e-300 i 5e-324 j -2.5 k 1.7976931348623157e308 l -1e308 m 9007199254740992 n 9007199254740994 o -9007199254740992 p 9007199254740991 q 99999999999999984 r 1e17 s 123456789.123 t 7 u 7 u2 2147483647 v 16777217 w 1.00 x 2.67 y > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd df:real -inf a inf b 0 c 0.1 d 0.1 d2 0.3 e 0.5 f 1.005 g 2.675 h 16777216 i 16777217 j 3.4e38 k -3.4e38 l 1e-30 m 7 n 7 n2 0.10000000149011612 o 0.099999994039535522 p 0.30000001192092896 q > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd df:cents 1.005 a 2.675 b 0.125 c 0.135 d -1.005 e 0 f 9999999999.99 g 0.005 h 0.004999 i 7 j 7 j2 1.004999 k 1.015 l -0.005 m 1 n 2.67 o 0.1 p > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd df:big 9007199254740992 a -9007199254740992 b 9007199254740994 c -9007199254740994 d 9007199254740991 e 99999999999999984 f -99999999999999984 g 0 h 5 i 5 j 5 k 2147483648 l -2147483649 m 9007199254740996 n 18014398509481984 o 7 p > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd df:int 2147483647 a -2147483648 b 0 c 7 d 7 e 16777217 f -1 g 1 h 2147483646 i 5 j > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i = 1, 40 do redis.call('ZADD', KEYS[1], string.format('%.17g', i * 0.1 - 1), 'r' .. i); redis.call('ZADD', KEYS[2], string.format('%.17g', i * 0.1 - 1), 'r' .. i); redis.call('ZADD', KEYS[3], string.format('%.17g', i * 0.013 - 0.2), 'r' .. i); redis.call('ZADD', KEYS[4], i * 1000003 - 20000000, 'r' .. i); redis.call('ZADD', KEYS[5], i * 7919 - 100000, 'r' .. i) end" 5 df:float df:real df:cents df:big df:int > /dev/null

CREATE FOREIGN TABLE d_f8 (member text, score float8, rank bigint) SERVER diff_redis OPTIONS (key 'df:float', page_size '7');
CREATE FOREIGN TABLE d_num (member text, score numeric, rank bigint) SERVER diff_redis OPTIONS (key 'df:float', page_size '7');
CREATE FOREIGN TABLE d_txt (member text, score text, rank bigint) SERVER diff_redis OPTIONS (key 'df:float', page_size '7');
CREATE FOREIGN TABLE d_real (member text, score real, rank bigint) SERVER diff_redis OPTIONS (key 'df:real', page_size '7');
CREATE FOREIGN TABLE d_cents (member text, score numeric(12,2), rank bigint) SERVER diff_redis OPTIONS (key 'df:cents', page_size '7');
CREATE FOREIGN TABLE d_big (member text, score bigint, rank bigint) SERVER diff_redis OPTIONS (key 'df:big', page_size '7');
CREATE FOREIGN TABLE d_int (member text, score int, rank int) SERVER diff_redis OPTIONS (key 'df:int', page_size '7');
CREATE TABLE l_f8 AS SELECT * FROM d_f8;
CREATE TABLE l_num AS SELECT * FROM d_num;
CREATE TABLE l_txt AS SELECT * FROM d_txt;
CREATE TABLE l_real AS SELECT * FROM d_real;
CREATE TABLE l_cents AS SELECT * FROM d_cents;
CREATE TABLE l_big AS SELECT * FROM d_big;
CREATE TABLE l_int AS SELECT * FROM d_int;
SELECT (SELECT count(*) FROM l_f8) AS f8, (SELECT count(*) FROM l_real) AS real,
       (SELECT count(*) FROM l_cents) AS cents, (SELECT count(*) FROM l_big) AS big,
       (SELECT count(*) FROM l_int) AS int;

-- A query's result, or its SQLSTATE if it fails.
CREATE FUNCTION pg_temp.diff_run(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, '<no rows>');
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE;
END $$;

CREATE FUNCTION pg_temp.pick(a text[]) RETURNS text LANGUAGE sql AS $$
    SELECT a[1 + floor(random() * array_length(a, 1))::int]
$$;

-- A comparison value: a literal from the pool, a score of the set as a
-- literal of the column's type or of another one, or a value known only at
-- execution (a scalar subquery, an executor parameter to the scan).
CREATE FUNCTION pg_temp.diff_value(t text, coltype text, vals text[], nrows int, generic text[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    c float8 := random();
BEGIN
    IF c < 0.35 THEN
        RETURN pg_temp.pick(generic);
    ELSIF c < 0.6 THEN
        RETURN format('%L::%s', pg_temp.pick(vals), coltype);
    ELSIF c < 0.7 THEN
        RETURN format('%L::%s', pg_temp.pick(vals), pg_temp.pick(ARRAY['float8', 'numeric', 'real', 'bigint', 'int']));
    ELSIF c < 0.8 THEN
        RETURN format('(SELECT score FROM l_%s ORDER BY member OFFSET %s LIMIT 1)', t, floor(random() * nrows)::int);
    ELSIF c < 0.85 THEN
        RETURN format('(SELECT %s(score) FROM l_%s)', pg_temp.pick(ARRAY['min', 'max']), t);
    END IF;
    -- Not the values whose implicit cast to the column type fails: the scan
    -- evaluates pushed values first (as an index scan would), where the
    -- local plan may never evaluate them.
    RETURN format('(SELECT %s)', pg_temp.pick(ARRAY(SELECT g FROM unnest(generic) g
        WHERE g NOT IN ('1e400', '-1e400', '1e-400', '1e308', '5e-324::float8', '''1e-300''::float8'))));
END $$;

CREATE TABLE diff_result (queries int, errors int, mismatches int, first_mismatch text);

DO $$
DECLARE
    tabs text[] := ARRAY['f8', 'num', 'txt', 'real', 'cents', 'big', 'int'];
    generic text[] := ARRAY[
        '''inf''', '''-inf''', '''NaN''', '''inf''::float8', '''-inf''::real', '''NaN''::numeric',
        '0', '-0.0::float8', '0.1', '0.3', '0.5', '0.1::real', '0.1::float8', '0.3::real',
        '0.10000000000000001', '0.29999999999999999', '0.30000000000000004',
        '1.005', '1.00', '1', '2.67', '2.675', '2.68', '0.005', '0.13', '0.1::numeric(12,2)',
        '7', '7::bigint', '7::smallint', '6.5', '-2.5', '5',
        '2147483647', '-2147483648', '2147483648', '16777217', '16777217::real', '16777216::real',
        '9007199254740991', '9007199254740992', '9007199254740993', '9007199254740994',
        '9007199254740995', '-9007199254740992', '-9007199254740993', '-9007199254740995',
        '9007199254740993::float8', '9007199254740993::numeric', '99999999999999984', '1e17',
        '9223372036854775807', '-9223372036854775808',
        '1e308', '1e400', '-1e400', '1e-400', '5e-324::float8', '''1e-300''::float8',
        '3.4e38::real', 'NULL'];
    ops text[] := ARRAY['<', '<=', '=', '>=', '>', '<>'];
    t text;
    coltype text;
    vals text[];
    members text[];
    nrows int;
    i int;
    shape int;
    cond text;
    q text;
    r_foreign text;
    r_local text;
    nq int := 0;
    nerr int := 0;
    nbad int := 0;
    first text;

BEGIN
    PERFORM setseed(0.2022);
    FOREACH t IN ARRAY tabs LOOP
        EXECUTE format('SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %L::regclass AND attname = ''score''', 'l_' || t) INTO coltype;
        EXECUTE format('SELECT array_agg(DISTINCT score::text), count(*) FROM l_%s', t) INTO vals, nrows;
        EXECUTE format('SELECT array_agg(quote_literal(member)) FROM l_%s', t) INTO members;
        FOR i IN 1..600 LOOP
            shape := floor(random() * 8)::int;
            cond := format('score %s %s', pg_temp.pick(ops), pg_temp.diff_value(t, coltype, vals, nrows, generic));
            IF shape = 1 THEN
                cond := cond || format(' AND score %s %s', pg_temp.pick(ops), pg_temp.diff_value(t, coltype, vals, nrows, generic));
            ELSIF shape = 2 THEN
                cond := format('score BETWEEN %s AND %s', pg_temp.diff_value(t, coltype, vals, nrows, generic),
                               pg_temp.diff_value(t, coltype, vals, nrows, generic));
            ELSIF shape = 3 THEN
                cond := cond || format(' AND member = ANY (ARRAY[%s, %s, %s])',
                                       pg_temp.pick(members), pg_temp.pick(members), pg_temp.pick(members));
            ELSIF shape = 4 THEN
                cond := cond || format(' AND member = %s', pg_temp.pick(members));
            ELSIF shape = 5 THEN
                cond := cond || format(' AND rank %s %s', pg_temp.pick(ops), floor(random() * (nrows + 2))::int - 1);
            END IF;
            IF shape >= 6 THEN
                q := format('SELECT string_agg(score::text, '','') FROM (SELECT score FROM %%I WHERE %s ORDER BY score %s LIMIT %s) s',
                            cond, pg_temp.pick(ARRAY['ASC', 'DESC']), 1 + floor(random() * 5)::int);
            ELSE
                q := format('SELECT string_agg(member || ''='' || score::text || ''@'' || rank, '','' ORDER BY member) FROM %%I WHERE %s', cond);
            END IF;
            r_foreign := pg_temp.diff_run(format(q, 'd_' || t));
            r_local := pg_temp.diff_run(format(q, 'l_' || t));
            nq := nq + 1;
            IF r_local LIKE 'ERROR%' THEN
                nerr := nerr + 1;
            END IF;
            IF r_foreign IS DISTINCT FROM r_local THEN
                nbad := nbad + 1;
                IF first IS NULL THEN
                    first := format('%s; foreign: %s; local: %s', format(q, 'd_' || t), r_foreign, r_local);
                END IF;
            END IF;
        END LOOP;
    END LOOP;
    INSERT INTO diff_result VALUES (nq, nerr, nbad, first);
END $$;

-- queries run on each side, of which fail on both (e.g. invalid input), and mismatches
SELECT queries, errors, mismatches FROM diff_result;
SELECT first_mismatch FROM diff_result WHERE mismatches > 0;

SET client_min_messages = warning;
DROP TABLE diff_result, l_f8, l_num, l_txt, l_real, l_cents, l_big, l_int;
DROP SERVER diff_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT del df:float df:real df:cents df:big df:int > /dev/null
