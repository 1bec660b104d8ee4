# TLS to Redis: the foreign data wrapper and a sync_run against a TLS-only
# redis-server; full, ca and none verification; a wrong CA and a wrong
# server name; client certificates; a handshake stuck on a server that never
# answers, ended by connect_timeout and by a cancel.  In a build without TLS
# (hiredis 0.14) only the error that says so is checked.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $tls_build = ($ENV{RS_TLS_BUILD} // '') eq 'yes';

if (!$tls_build)
{
	my $node = PostgreSQL::Test::Cluster->new('notls');
	$node->init;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION redis_sync');
	my ($ret, $out, $err) = $node->psql('postgres',
		"CREATE SERVER t FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'on')");
	isnt($ret, 0, 'without TLS support, tls on is refused');
	like($err, qr/redis_sync was built without TLS support/, 'the error says why');
	like($err, qr/HINT:.*hiredis_ssl/, 'the hint says what to build with');
	$node->safe_psql('postgres',
		"CREATE SERVER plain FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'off')");
	pass('tls off is accepted');
	$node->stop;
	done_testing();
	exit 0;
}

# --- throwaway certificates -------------------------------------------
my $certs = PostgreSQL::Test::Utils::tempdir();

sub openssl
{
	my @cmd = ('openssl', @_);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err)
	  or die "@cmd failed: $err";
}

# make_ca($name): a self-signed CA
sub make_ca
{
	my ($name) = @_;
	openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
		'-subj', "/CN=redis_sync test $name", '-keyout', "$certs/$name.key",
		'-out', "$certs/$name.crt");
}

# make_cert($name, $ca, $san): a key and a certificate signed by $ca
sub make_cert
{
	my ($name, $ca, $san) = @_;
	openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', "/CN=$name",
		'-keyout', "$certs/$name.key", '-out', "$certs/$name.csr");
	my $ext = "$certs/$name.ext";
	open(my $fh, '>', $ext) or die;
	print $fh ($san ? "subjectAltName = $san\n" : "extendedKeyUsage = clientAuth\n");
	close $fh;
	openssl('x509', '-req', '-in', "$certs/$name.csr", '-CA', "$certs/$ca.crt",
		'-CAkey', "$certs/$ca.key", '-CAcreateserial', '-days', '2',
		'-extfile', $ext, '-out', "$certs/$name.crt");
}

make_ca('ca');
make_ca('other_ca');
make_cert('server', 'ca', 'DNS:localhost, IP:127.0.0.1');
make_cert('client', 'ca', undef);
# the backend runs as the test's user; the key files stay private to it
chmod 0600, glob("$certs/*.key");

# --- TLS-only redis-servers -------------------------------------------
# A RedisSyncTest::Redis whose redis-cli calls speak TLS (auth_args is put
# into every redis-cli command line).
package TlsRedis;
our @ISA = ('RedisSyncTest::Redis');
sub auth_args { return @{ $_[0]->{tls_args} }; }

package main;

sub start_tls_redis
{
	my (%opts) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $redis = bless {
		port => $port,
		dir => PostgreSQL::Test::Utils::tempdir(),
		extra => [
			'--port', '0', '--tls-port', $port,
			'--tls-cert-file', "$certs/server.crt", '--tls-key-file', "$certs/server.key",
			'--tls-ca-cert-file', "$certs/ca.crt",
			'--tls-auth-clients', $opts{auth_clients} ? 'yes' : 'no'
		],
		tls_args => [
			'--tls', '--cacert', "$certs/ca.crt",
			'--cert', "$certs/client.crt", '--key', "$certs/client.key"
		],
	}, 'TlsRedis';
	$redis->start;
	return $redis;
}

my $redis = start_tls_redis();
my $mtls = start_tls_redis(auth_clients => 1);
is($redis->cli('PING'), 'PONG', 'the TLS-only redis-server answers over TLS');
my ($plain_out, $plain_err) = ('', '');
IPC::Run::run([ 'redis-cli', '-p', $redis->{port}, 'PING' ],
	'<', \undef, '>', \$plain_out, '2>', \$plain_err);
unlike($plain_out, qr/PONG/, 'and not over plain TCP');

my $node = PostgreSQL::Test::Cluster->new('tls');
$node->init;
$node->append_conf('postgresql.conf', "max_worker_processes = 24\n");
$node->start;

my $rp = $redis->{port};
my $mp = $mtls->{port};
my $ca = "$certs/ca.crt";
$node->safe_psql('postgres', qq{
	CREATE EXTENSION redis_sync;
	CREATE SERVER redis FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$rp', tls 'on', tls_ca_file '$ca');
	CREATE USER MAPPING FOR PUBLIC SERVER redis;
});

# server options $opts on the TLS redis; returns psql's ($ret, $out, $err)
# of a count over a foreign table there
my $n = 0;
sub scan_with
{
	my ($opts, $port) = @_;
	$port ||= $rp;
	$n++;
	$node->safe_psql('postgres', qq{
		CREATE SERVER s$n FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$port', $opts);
		CREATE USER MAPPING FOR PUBLIC SERVER s$n;
		CREATE FOREIGN TABLE f$n (member text, score bigint) SERVER s$n OPTIONS (key 'tls:k');
	});
	return $node->psql('postgres', "SELECT count(*) || ' ' || sum(score) FROM f$n");
}

# --- the FDW and a sync_run over TLS ----------------------------------
$redis->cli('EVAL', "for i=1,5000 do redis.call('ZADD', KEYS[1], i, 'm' .. i) end", '1', 'tls:k');
$node->safe_psql('postgres',
	"CREATE FOREIGN TABLE k (member text, score bigint, rank bigint) SERVER redis OPTIONS (key 'tls:k', page_size '700')");
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE member = 'm' || score AND rank = score - 1) || ' ' || count(*)
	  FROM k}),
	'5000 5000', 'a scan over TLS reads every member, with its score and rank');
$node->safe_psql('postgres', "INSERT INTO k (member, score) VALUES ('written', 42)");
is($redis->cli('ZSCORE', 'tls:k', 'written'), '42', 'an INSERT over TLS reached Redis');
$redis->cli('ZREM', 'tls:k', 'written');

setup_job($node, partitions => 4, workers => 2, chunk_size => 400);
load_day($redis, '2026-12-01', 3000, 3);
is($node->safe_psql('postgres',
	"SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', run_date => '2026-12-01')"),
	'succeeded 3000', 'a sync_run over TLS succeeded');
expect_tables_match($node, 'clicks:daily:2026-12-01', '2026-12-01', 'sync_run over TLS');

# --- verification levels ----------------------------------------------
my ($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca', host 'localhost'");
is($out, '5000 12502500', 'full verification of a DNS name (localhost) passes');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$certs/other_ca.crt'");
isnt($ret, 0, 'a wrong CA fails');
like($err, qr/could not verify the TLS certificate of Redis server "s\d+"/, 'a wrong CA: the error names the server');
like($err, qr/DETAIL:  The certificate presented by 127\.0\.0\.1:$rp did not verify: (unable to get local issuer certificate|self-signed certificate in certificate chain)/,
	'a wrong CA: the detail gives OpenSSL\'s reason');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca', tls_server_name 'redis.example.org'");
isnt($ret, 0, 'a server name the certificate does not hold fails under full verification');
like($err, qr/did not verify: hostname mismatch/, 'the name mismatch is reported');
like($err, qr/HINT:  Set tls_server_name/, 'the name mismatch comes with a hint');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca', tls_server_name 'redis.example.org', tls_verify 'ca'");
is($out, '5000 12502500', 'tls_verify ca skips the name check');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$certs/other_ca.crt', tls_verify 'ca'");
isnt($ret, 0, 'tls_verify ca still checks the CA');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$certs/other_ca.crt', tls_verify 'none'");
is($out, '5000 12502500', 'tls_verify none encrypts without checks');

($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$certs/missing.crt'");
like($err, qr/could not load CA file ".*missing\.crt" for Redis server "s\d+"\nDETAIL:  No such file or directory/,
	'a missing CA file is reported by name and reason');

# --- client certificates (the server requires one) ---------------------
$mtls->cli('ZADD', 'tls:k', '1', 'only');
($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca'", $mp);
isnt($ret, 0, 'without a client certificate, a server that requires one refuses');
# (the server's alert is read when the first reply is; a write that comes
# after the server closed fails with the reset instead)
like($err, qr/Redis server "s\d+".*(certificate required|Connection reset by peer|Broken pipe)/s,
	'that error names the server and gives the reason');
($ret, $out, $err) = scan_with(
	"tls 'on', tls_ca_file '$ca', tls_cert_file '$certs/client.crt', tls_key_file '$certs/client.key'", $mp);
is($out, '1 1', 'with a client certificate (mutual TLS) the scan works');
($ret, $out, $err) = scan_with(
	"tls 'on', tls_ca_file '$ca', tls_cert_file '$certs/client.crt', tls_key_file '$certs/server.key'", $mp);
like($err, qr/could not load key file ".*server\.key" for Redis server "s\d+"\nDETAIL:  key values mismatch/,
	'a key that does not match the certificate is reported');

# --- a plain-TCP Redis, and a server that never answers the handshake ---
my $plain = start_redis();
($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca'", $plain->{port});
like($err, qr/could not establish a TLS connection to Redis server "s\d+"/,
	'a Redis without TLS on that port fails the handshake clearly');

my $mute = start_mute_server();
($ret, $out, $err) = scan_with("tls 'on', tls_ca_file '$ca', connect_timeout '500'", $mute);
like($err, qr/The TLS handshake with 127\.0\.0\.1:$mute did not end within 500 ms/,
	'connect_timeout bounds a stuck handshake');

$n++;
$node->safe_psql('postgres', qq{
	CREATE SERVER stuck FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$mute', tls 'on', tls_ca_file '$ca', connect_timeout '600000');
	CREATE USER MAPPING FOR PUBLIC SERVER stuck;
	CREATE FOREIGN TABLE stuck_t (member text, score bigint) SERVER stuck OPTIONS (key 'tls:k');
});
my ($h, $hout, $herr) = background_psql_query($node, 'SELECT * FROM stuck_t');
ok(wait_on_redis($node, 'SELECT * FROM stuck_t'), 'a scan waits in a stuck TLS handshake');
my $elapsed = signal_query($node, $h, 'pg_cancel_backend', 'SELECT * FROM stuck_t');
cmp_ok($elapsed, '<', 2, 'cancel ended the handshake in ' . sprintf('%.2f', $elapsed) . ' s');
like($$herr, qr/canceling statement due to user request/, 'the cancel error');
is($node->safe_psql('postgres', 'SELECT count(*) FROM k'), '5000', 'the backend still reads over TLS afterwards');

# --- only superusers name files -----------------------------------------
$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	GRANT USAGE ON FOREIGN DATA WRAPPER redis_zset TO alice;
});
foreach my $opt ('tls_ca_file', 'tls_cert_file', 'tls_key_file')
{
	($ret, $out, $err) = $node->psql('postgres',
		"SET ROLE alice; CREATE SERVER a_$opt FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'on', $opt '/etc/passwd')");
	like($err, qr/permission denied to set option "$opt"/, "a non-superuser cannot set $opt");
}
$node->safe_psql('postgres',
	"SET ROLE alice; CREATE SERVER a_ok FOREIGN DATA WRAPPER redis_zset OPTIONS (tls 'on', tls_verify 'ca', tls_server_name 'x')");
pass('a non-superuser can set the other TLS options');

$node->stop;
done_testing();
