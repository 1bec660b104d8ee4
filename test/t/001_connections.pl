# Redis connections of the foreign data wrapper: cancel and terminate of a
# scan against a Redis that never answers, cancel of an INSERT that a paused
# Redis holds, command_timeout, authentication,
# and no descriptor leaks over many queries and reconnects.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $redis = start_redis();
my $node = new_sync_node('conn', redis => $redis);
$redis->cli('ZADD', 'k', '1', 'a', '2', 'b');

# A server that accepts connections and never says a word.
my $mute_port = start_mute_server();

$node->safe_psql('postgres', qq{
	CREATE SERVER mute FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$mute_port', connect_timeout '2000', command_timeout '600000');
	CREATE USER MAPPING FOR PUBLIC SERVER mute;
	CREATE FOREIGN TABLE hung (member text, score float8) SERVER mute OPTIONS (key 'k');
	CREATE SERVER mute_short FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$mute_port', command_timeout '500');
	CREATE USER MAPPING FOR PUBLIC SERVER mute_short;
	CREATE FOREIGN TABLE hung_short (member text, score float8) SERVER mute_short OPTIONS (key 'k');
	CREATE FOREIGN TABLE small (member text, score float8) SERVER redis OPTIONS (key 'k');
});

# cancel and terminate each end a hung scan within 2 seconds
foreach my $how ('pg_cancel_backend', 'pg_terminate_backend')
{
	my ($h, $out, $err) = background_psql_query($node, 'SELECT * FROM hung');
	ok(wait_on_redis($node, 'SELECT * FROM hung'), "$how: scan is waiting on Redis");
	my $elapsed = signal_query($node, $h, $how, 'SELECT * FROM hung');
	cmp_ok($elapsed, '<', 2, "$how: the scan ended in " . sprintf('%.2f', $elapsed) . ' s');
	like($$err, $how eq 'pg_cancel_backend' ? qr/canceling statement due to user request/
		: qr/terminating connection due to administrator command/, "$how: the expected error");
}

# command_timeout bounds every reply
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM hung_short');
isnt($ret, 0, 'a mute server fails the query');
like($err, qr/Redis server "mute_short" did not reply within 500 ms/, 'command_timeout names the server');

# a write that Redis holds (CLIENT PAUSE ... WRITE) is cancelled within
# 2 seconds too, mid-INSERT, and the connection is usable afterwards
$node->safe_psql('postgres',
	"CREATE FOREIGN TABLE paused (member text, score int) SERVER redis OPTIONS (key 'paused')");
$node->safe_psql('postgres', "INSERT INTO paused VALUES ('warm-up', 0)");
$redis->cli('CLIENT', 'PAUSE', '20000', 'WRITE');
my $insert = q{INSERT INTO paused SELECT 'm' || g, g FROM generate_series(1, 5000) g};
my ($wh, $wout, $werr) = background_psql_query($node, $insert);
ok(wait_on_redis($node, 'INSERT INTO paused SELECT%'), 'the INSERT is waiting on a paused Redis');
cmp_ok(signal_query($node, $wh, 'pg_cancel_backend', 'INSERT INTO paused SELECT%'), '<', 2,
	'the INSERT was cancelled within 2 s');
like($$werr, qr/canceling statement due to user request/, 'the INSERT got the cancel error');
$redis->cli('CLIENT', 'UNPAUSE');
is($node->safe_psql('postgres', "INSERT INTO paused VALUES ('after', 1); SELECT count(*) FROM paused WHERE member = 'after'"),
	'1', 'writes work again after the cancel');

# the backend keeps working after all that
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '2', 'a good server still answers');

# a password-protected Redis: no password, wrong password, right password
my $locked = start_redis(password => 's3cret');
$locked->cli('ZADD', 'k', '5', 'x');
my $lp = $locked->{port};
$node->safe_psql('postgres', qq{
	CREATE SERVER locked FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$lp');
	CREATE USER MAPPING FOR PUBLIC SERVER locked;
	CREATE FOREIGN TABLE locked_t (member text, score float8) SERVER locked OPTIONS (key 'k');
});
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM locked_t');
like($err, qr/could not authenticate to Redis server "locked".*NOAUTH/s, 'no password: NOAUTH is reported');
$node->safe_psql('postgres', "ALTER USER MAPPING FOR PUBLIC SERVER locked OPTIONS (ADD password 'nope')");
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM locked_t');
like($err, qr/could not authenticate to Redis server "locked"/, 'wrong password is reported');
unlike($err, qr/nope/, 'the password is not in the error');
$node->safe_psql('postgres', "ALTER USER MAPPING FOR PUBLIC SERVER locked OPTIONS (SET password 's3cret')");
is($node->safe_psql('postgres', 'SELECT member FROM locked_t'), 'x', 'the right password reads the set');
# (the test's own statements are logged verbatim; nothing else may show a password)
my $log = join "\n", grep { !/LOG:  statement: / } split /\n/, slurp_file($node->logfile);
unlike($log, qr/s3cret|nope/, 'passwords never reach the server log');

# unreachable port: a distinct error
($ret, $out, $err) = $node->psql('postgres', qq{
	CREATE SERVER closed FOREIGN DATA WRAPPER redis_zset OPTIONS (port '1');
	CREATE USER MAPPING FOR PUBLIC SERVER closed;
	CREATE FOREIGN TABLE closed_t (member text) SERVER closed OPTIONS (key 'k');
	SELECT * FROM closed_t;});
like($err, qr/could not connect to Redis server "closed"/, 'an unreachable server is reported as such');

# 1,000 queries and 100 reconnects in one backend do not grow its descriptors
my ($in, $bout, $berr) = ('', '', '');
my $bh = IPC::Run::start([ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$bout, '2>', \$berr);
$in .= "SELECT pg_backend_pid();\nSELECT count(*) FROM small;\n";
$bh->pump until $bout =~ /^(\d+)\n2\n/m;
my ($pid) = $bout =~ /^(\d+)$/m;
# sockets only: catalog files opened on first use are not leaks
my $count_fds = sub {
	opendir(my $d, "/proc/$pid/fd") or return -1;
	my @f = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir($d);
	return scalar @f;
};
my $before = $count_fds->();
$in .= q{DO $$ BEGIN FOR i IN 1..1000 LOOP PERFORM count(*) FROM small; END LOOP; END $$;} . "\n";
for my $i (1 .. 100)
{
	$in .= "ALTER SERVER redis OPTIONS (SET command_timeout '" . (10000 + $i) . "');\n";
	$in .= "SELECT 'q', count(*) FROM small;\n";
}
$in .= "SELECT 'done';\n";
$bh->pump until $bout =~ /^done$/m;
my $after = $count_fds->();
$in .= "\\q\n";
$bh->finish;
cmp_ok($after, '<=', $before, "open sockets: $before before, $after after 1,000 queries and 100 reconnects");
is(scalar(() = $bout =~ /^q\|2$/mg), 100, 'every query after a reconnect read the set');

$node->stop;
done_testing();
