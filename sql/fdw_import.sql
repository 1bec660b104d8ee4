--
-- IMPORT FOREIGN SCHEMA: a foreign table per sorted set matching a pattern
--
\! redis-cli -p $REDIS_PORT flushall > /dev/null
\! redis-cli -p $REDIS_PORT zadd clicks:daily:2020-01-01 1 alice 2 bob > /dev/null
\! redis-cli -p $REDIS_PORT zadd clicks:daily:2020-01-02 3 carol > /dev/null
\! redis-cli -p $REDIS_PORT zadd 'clicks:daily:Odd "name"' 4 dave > /dev/null
\! redis-cli -p $REDIS_PORT set clicks:daily:not-a-zset x > /dev/null
\! redis-cli -p $REDIS_PORT rpush clicks:daily:a-list x > /dev/null
\! redis-cli -p $REDIS_PORT zadd clicks:total 6 alice > /dev/null
\! redis-cli -p $REDIS_PORT eval "for i=1,3000 do redis.call('SET', 'other:' .. i, i) end" 0 > /dev/null

CREATE SCHEMA clicks;
IMPORT FOREIGN SCHEMA "clicks:daily:*" FROM SERVER redis INTO clicks;
\det+ clicks.*
\d clicks."clicks:daily:2020-01-01"
SELECT * FROM clicks."clicks:daily:2020-01-01";
SELECT * FROM clicks."clicks:daily:Odd ""name""";

-- LIMIT TO and EXCEPT name keys; options choose the score type and page size
CREATE SCHEMA picked;
IMPORT FOREIGN SCHEMA "clicks:*" LIMIT TO ("clicks:total", "clicks:daily:2020-01-02", "no:such:key")
  FROM SERVER redis INTO picked OPTIONS (score_type 'bigint', page_size '500');
\det+ picked.*
\d picked."clicks:total"
SELECT * FROM picked."clicks:total";
CREATE SCHEMA rest;
IMPORT FOREIGN SCHEMA "clicks:*" EXCEPT ("clicks:total") FROM SERVER redis INTO rest;
\det rest.*

-- nothing matches: nothing is created
CREATE SCHEMA empty;
IMPORT FOREIGN SCHEMA "nothing:*" FROM SERVER redis INTO empty;
\det empty.*

-- bad options
IMPORT FOREIGN SCHEMA "clicks:*" FROM SERVER redis INTO empty OPTIONS (score_type 'no_such_type');
IMPORT FOREIGN SCHEMA "clicks:*" FROM SERVER redis INTO empty OPTIONS (score_type 'int); DROP TABLE x; --');
IMPORT FOREIGN SCHEMA "clicks:*" FROM SERVER redis INTO empty OPTIONS (page_size '0');
IMPORT FOREIGN SCHEMA "clicks:*" FROM SERVER redis INTO empty OPTIONS (colour 'red');
\det empty.*

DROP SCHEMA clicks, picked, rest, empty CASCADE;
