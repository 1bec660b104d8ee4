--
-- TLS server options: values are checked when they are set, and only
-- superusers name files.  A build without TLS (hiredis 0.14) refuses
-- tls 'on' with an error that says so (expected/tls_1.out); connections
-- over TLS are tested in test/t/020_tls.pl.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_sync;
RESET client_min_messages;
CREATE SERVER tls_off FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'off');
CREATE SERVER tls_on FOREIGN DATA WRAPPER redis_zset
  OPTIONS (tls 'on', tls_verify 'ca', tls_server_name 'redis.example.org',
           tls_ca_file '/nonexistent/ca.crt', tls_cert_file 'client.crt', tls_key_file 'client.key');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname LIKE 'tls_%' ORDER BY srvname;

-- invalid values
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'maybe');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_verify 'verify-full');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_verify 'FULL');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_ca_file '');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_server_name '');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_mode 'on');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_off OPTIONS (tls_cert_file 'x');

-- a role that may create servers, but not name files on the server
CREATE ROLE rs_tls_user;
GRANT USAGE ON FOREIGN DATA WRAPPER redis_zset TO rs_tls_user;
SET ROLE rs_tls_user;
CREATE SERVER tls_user FOREIGN DATA WRAPPER redis_zset
  OPTIONS (tls_verify 'full', tls_server_name 'redis.example.org');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_ca_file '/etc/ssl/certs/ca-certificates.crt');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_cert_file '/etc/ssl/private/key.pem');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (tls_key_file 'server.key');
ALTER SERVER tls_user OPTIONS (ADD tls_ca_file 'root.crt');
RESET ROLE;
-- a server that names a file can then be altered by superusers only
ALTER SERVER tls_user OPTIONS (ADD tls_ca_file 'root.crt');
ALTER SERVER tls_user OWNER TO rs_tls_user;
SET ROLE rs_tls_user;
ALTER SERVER tls_user OPTIONS (SET tls_server_name 'other.example.org');
RESET ROLE;

DROP SERVER IF EXISTS tls_off, tls_on, tls_user;
REVOKE USAGE ON FOREIGN DATA WRAPPER redis_zset FROM rs_tls_user;
DROP ROLE rs_tls_user;
