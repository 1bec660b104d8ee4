--
-- Server options of a Redis Cluster: cluster, nodes and read_from
--
\getenv redis_port REDIS_PORT
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;

-- valid servers
CREATE SERVER rc_opt FOREIGN DATA WRAPPER redis_zset
  OPTIONS (host '127.0.0.1', port :'redis_port', cluster 'on');
ALTER SERVER rc_opt OPTIONS (ADD nodes '127.0.0.1:7001, localhost:7002,10.0.0.3:65535');
ALTER SERVER rc_opt OPTIONS (SET cluster 'off', DROP nodes);
ALTER SERVER rc_opt OPTIONS (SET cluster 'true', ADD db '0');
ALTER SERVER rc_opt OPTIONS (ADD read_from 'replica');
ALTER SERVER rc_opt OPTIONS (SET read_from 'replica_preferred');
ALTER SERVER rc_opt OPTIONS (SET read_from 'primary');
SELECT array_agg(o ORDER BY o) FROM pg_foreign_server, unnest(srvoptions) o
  WHERE srvname = 'rc_opt' AND o NOT LIKE 'port=%';

-- invalid values
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'yes please');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster '');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes '');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes '127.0.0.1');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes ':7001');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes '127.0.0.1:0');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes '127.0.0.1:7001,127.0.0.1:70000');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes '127.0.0.1:7001,');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes 'h:7001x');
-- credentials in a seed list are refused, and not echoed
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', nodes 'h1:7001,admin:s3cret@h2:7002');
-- combinations: nodes without cluster 'on', a database other than 0
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (nodes '127.0.0.1:7001');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'off', nodes '127.0.0.1:7001');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', db '3');
ALTER SERVER rc_opt OPTIONS (SET db '1');
ALTER SERVER rc_opt OPTIONS (ADD nodes '127.0.0.1:7001');
ALTER SERVER rc_opt OPTIONS (SET cluster 'off');
ALTER SERVER rc_opt OPTIONS (DROP cluster);
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', read_from 'secondary');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (cluster 'on', read_from 'Replica');
CREATE SERVER rc_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (read_from 'replica');
CREATE SERVER rc_ok FOREIGN DATA WRAPPER redis_zset OPTIONS (read_from 'primary');
DROP SERVER rc_ok;
ALTER SERVER rc_opt OPTIONS (SET read_from 'replica');
ALTER SERVER rc_opt OPTIONS (DROP cluster, DROP nodes);
ALTER SERVER rc_opt OPTIONS (DROP read_from);
-- the options belong to servers only
CREATE USER MAPPING FOR CURRENT_USER SERVER rc_opt OPTIONS (cluster 'on');
CREATE FOREIGN TABLE rc_bad_t (member text) SERVER rc_opt OPTIONS (key 'k', nodes 'h:1');
SELECT array_agg(o ORDER BY o) FROM pg_foreign_server, unnest(srvoptions) o
  WHERE srvname = 'rc_opt' AND o NOT LIKE 'port=%';

-- a standalone Redis is not a cluster: reading the slot map fails clearly
CREATE USER MAPPING FOR CURRENT_USER SERVER rc_opt;
CREATE FOREIGN TABLE rc_t (member text, score float8) SERVER rc_opt OPTIONS (key 'rs:cluster:k');
\set VERBOSITY terse
SELECT * FROM rc_t;
\set VERBOSITY default
-- seeds that are all unreachable: the error names the cluster
ALTER SERVER rc_opt OPTIONS (SET port '1', SET nodes '127.0.0.1:2', ADD connect_timeout '500');
\set VERBOSITY terse
SELECT * FROM rc_t;
\set VERBOSITY default
-- with cluster 'off' the same server reads the standalone Redis
ALTER SERVER rc_opt OPTIONS (SET port :'redis_port', DROP nodes, SET cluster 'off');
SELECT count(*) FROM rc_t;

DROP SERVER rc_opt CASCADE;

--
-- Redis Sentinel: sentinels and sentinel_master
--
CREATE SERVER rs_sent FOREIGN DATA WRAPPER redis_zset
  OPTIONS (sentinels '127.0.0.1:26379, localhost:26380', sentinel_master 'mymaster');
ALTER SERVER rs_sent OPTIONS (ADD connect_timeout '500', ADD db '2');
SELECT array_agg(o ORDER BY o) FROM pg_foreign_server, unnest(srvoptions) o
  WHERE srvname = 'rs_sent';
-- invalid values
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels '', sentinel_master 'm');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels '127.0.0.1', sentinel_master 'm');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels '127.0.0.1:26379,h:0', sentinel_master 'm');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels '127.0.0.1:26379', sentinel_master '');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels 'h1,admin:s3cret@h2', sentinel_master 'm');
-- sentinels and sentinel_master go together, and not with cluster 'on'
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinels '127.0.0.1:26379');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset OPTIONS (sentinel_master 'm');
CREATE SERVER rs_bad FOREIGN DATA WRAPPER redis_zset
  OPTIONS (sentinels '127.0.0.1:26379', sentinel_master 'm', cluster 'on');
ALTER SERVER rs_sent OPTIONS (DROP sentinel_master);
ALTER SERVER rs_sent OPTIONS (DROP sentinels);
ALTER SERVER rs_sent OPTIONS (ADD cluster 'on');
ALTER SERVER rs_sent OPTIONS (SET db '0', ADD cluster 'on');
-- read_from works with sentinels too (a replica they list serves the reads)
ALTER SERVER rs_sent OPTIONS (ADD read_from 'replica');
ALTER SERVER rs_sent OPTIONS (SET read_from 'replica_preferred');
-- ... and not without them (nor a cluster)
ALTER SERVER rs_sent OPTIONS (DROP sentinels, DROP sentinel_master);
ALTER SERVER rs_sent OPTIONS (DROP read_from);
-- the credentials of the sentinels belong to user mappings
CREATE USER MAPPING FOR CURRENT_USER SERVER rs_sent
  OPTIONS (user 'app', password 'secret', sentinel_user 'sent', sentinel_password 'sentsecret');
ALTER USER MAPPING FOR CURRENT_USER SERVER rs_sent OPTIONS (SET sentinel_password '');
ALTER SERVER rs_sent OPTIONS (ADD sentinel_password 'x');
CREATE FOREIGN TABLE rs_bad_t (member text) SERVER rs_sent OPTIONS (key 'k', sentinels 'h:1');
-- sentinels that do not answer: the error names each one
ALTER SERVER rs_sent OPTIONS (SET sentinels '127.0.0.1:1,127.0.0.1:2');
CREATE FOREIGN TABLE rs_sent_t (member text, score float8) SERVER rs_sent OPTIONS (key 'rs:sentinel:k');
SELECT * FROM rs_sent_t;
-- a Redis that is not a sentinel: its error reply is shown (port hidden)
SELECT '127.0.0.1:' || :'redis_port' AS not_a_sentinel \gset
SELECT set_config('rs.port', :'redis_port', false) IS NOT NULL AS port_set;
ALTER SERVER rs_sent OPTIONS (SET sentinels :'not_a_sentinel');
ALTER USER MAPPING FOR CURRENT_USER SERVER rs_sent
  OPTIONS (DROP user, DROP password, DROP sentinel_user, DROP sentinel_password);
DO $$
DECLARE
  msg text;
  detail text;
  state text;
BEGIN
  PERFORM * FROM rs_sent_t;
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
    state = RETURNED_SQLSTATE;
  RAISE NOTICE '% %: %', state, msg,
    replace(detail, current_setting('rs.port'), 'PORT');
END
$$;
DROP SERVER rs_sent CASCADE;
