--
-- IMPORT FOREIGN SCHEMA: a foreign table per sorted set matching a pattern
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER import_redis FOREIGN DATA WRAPPER redis_zset OPTIONS (host :'redis_host', port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER import_redis;
-- this file's keys start with "imp:"
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'imp:*' > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd imp:clicks:daily:2020-01-01 1 alice 2 bob > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd imp:clicks:daily:2020-01-02 3 carol > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd 'imp:clicks:daily:Odd "name"' 4 dave > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT set imp:clicks:daily:not-a-zset x > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT rpush imp:clicks:daily:a-list x > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT zadd imp:clicks:total 6 alice > /dev/null
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for i=1,3000 do redis.call('SET', 'imp:other:' .. i, i) end" 0 > /dev/null

CREATE SCHEMA clicks;
IMPORT FOREIGN SCHEMA "imp:clicks:daily:*" FROM SERVER import_redis INTO clicks;
\det+ clicks.*
\d clicks."imp:clicks:daily:2020-01-01"
SELECT * FROM clicks."imp:clicks:daily:2020-01-01";
SELECT * FROM clicks."imp:clicks:daily:Odd ""name""";

-- LIMIT TO and EXCEPT name keys; options choose the score type and page size
CREATE SCHEMA picked;
IMPORT FOREIGN SCHEMA "imp:clicks:*" LIMIT TO ("imp:clicks:total", "imp:clicks:daily:2020-01-02", "no:such:key")
  FROM SERVER import_redis INTO picked OPTIONS (score_type 'bigint', page_size '500');
\det+ picked.*
\d picked."imp:clicks:total"
SELECT * FROM picked."imp:clicks:total";
CREATE SCHEMA rest;
IMPORT FOREIGN SCHEMA "imp:clicks:*" EXCEPT ("imp:clicks:total") FROM SERVER import_redis INTO rest;
\det rest.*

-- nothing matches: nothing is created
CREATE SCHEMA empty;
IMPORT FOREIGN SCHEMA "imp:nothing:*" FROM SERVER import_redis INTO empty;
\det empty.*

-- bad options
IMPORT FOREIGN SCHEMA "imp:clicks:*" FROM SERVER import_redis INTO empty OPTIONS (score_type 'no_such_type');
IMPORT FOREIGN SCHEMA "imp:clicks:*" FROM SERVER import_redis INTO empty OPTIONS (score_type 'int); DROP TABLE x; --');
IMPORT FOREIGN SCHEMA "imp:clicks:*" FROM SERVER import_redis INTO empty OPTIONS (page_size '0');
IMPORT FOREIGN SCHEMA "imp:clicks:*" FROM SERVER import_redis INTO empty OPTIONS (colour 'red');
\det empty.*

DROP SCHEMA clicks, picked, rest, empty CASCADE;

SET client_min_messages = warning;
DROP SERVER import_redis CASCADE;
RESET client_min_messages;
\! redis-cli -h $REDIS_HOST -p $REDIS_PORT eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" 0 'imp:*' > /dev/null
