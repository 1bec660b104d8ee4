--
-- Extension and option validation
--
\getenv redis_host REDIS_HOST
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'redis_sync';
SELECT fdwname FROM pg_foreign_data_wrapper WHERE fdwname = 'redis_zset';

-- a valid server, user mapping and table
CREATE SERVER opt_redis FOREIGN DATA WRAPPER redis_zset
  OPTIONS (host :'redis_host', port :'redis_port', db '0',
           connect_timeout '2000', command_timeout '10000');
CREATE USER MAPPING FOR PUBLIC SERVER opt_redis;
CREATE FOREIGN TABLE opt_t (member text, score bigint, rank bigint)
  SERVER opt_redis OPTIONS (key 'rs:opt', page_size '100');

-- unrecognized options, for each kind of object
ALTER FOREIGN DATA WRAPPER redis_zset OPTIONS (host 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (hostname 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_redis OPTIONS (pass 'x');
CREATE FOREIGN TABLE bad (member text) SERVER opt_redis OPTIONS (keys 'x');
ALTER FOREIGN TABLE opt_t ALTER COLUMN member OPTIONS (name 'member');

-- invalid values
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (port 'abc');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (port '0');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (port '65536');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (db '-1');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (connect_timeout '-5');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (command_timeout '0');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (command_timeout '10s');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (host '');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '1023');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '4097MB');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '10 parsecs');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '');
CREATE FOREIGN TABLE bad (member text) SERVER opt_redis OPTIONS (key '');
CREATE FOREIGN TABLE bad (member text) SERVER opt_redis OPTIONS (key 'k', page_size '0');
CREATE FOREIGN TABLE bad (member text) SERVER opt_redis OPTIONS (key 'k', page_size '1000001');
CREATE FOREIGN TABLE bad (member text) SERVER opt_redis OPTIONS (key 'k', page_size '1e3');
ALTER FOREIGN TABLE opt_t ALTER COLUMN member OPTIONS (column_name 'value');
ALTER FOREIGN TABLE opt_t OPTIONS (SET page_size '-1');

-- valid changes are accepted
ALTER FOREIGN TABLE opt_t OPTIONS (SET page_size '1000000');
ALTER SERVER opt_redis OPTIONS (SET command_timeout '5000');
ALTER SERVER opt_redis OPTIONS (SET command_timeout '10000');
ALTER SERVER opt_redis OPTIONS (ADD max_reply_bytes '1024');
ALTER SERVER opt_redis OPTIONS (SET max_reply_bytes '64kB');
ALTER SERVER opt_redis OPTIONS (SET max_reply_bytes '4GB');
ALTER SERVER opt_redis OPTIONS (DROP max_reply_bytes);
DROP FOREIGN TABLE opt_t;

-- the password stays out of sight of other roles
CREATE ROLE rs_opt_other LOGIN;
CREATE USER MAPPING FOR rs_opt_other SERVER opt_redis OPTIONS (password 'secret-pw');
SET ROLE rs_opt_other;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'opt_redis' ORDER BY usename;
RESET ROLE;
CREATE ROLE rs_opt_third LOGIN;
SET ROLE rs_opt_third;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'opt_redis' ORDER BY usename;
RESET ROLE;
DROP USER MAPPING FOR rs_opt_other SERVER opt_redis;
DROP ROLE rs_opt_third;
DROP ROLE rs_opt_other;
DROP SERVER opt_redis CASCADE;
