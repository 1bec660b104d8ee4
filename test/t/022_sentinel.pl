# Redis Sentinel: 1 primary, 1 replica and 3 sentinels, started by this
# test on free loopback ports.
#
# 1. A foreign table on a server with the options sentinels and
#    sentinel_master (and a port where nothing listens, which is then
#    unused) reads the primary the sentinels name: the scan equals Redis,
#    and EXPLAIN VERBOSE shows that primary.
# 2. A sentinel that names a node which is not a primary (a fake one that
#    names the replica): the connection asks again a bounded number of
#    times and fails with an error naming the node and its role; a cancel
#    ends the rounds.
# 3. Sentinels that require a password: sentinel_password of the user
#    mapping is used, and its absence is a clear authentication error.
# 4. A sync of a past day while the primary is killed (SIGKILL): the
#    sentinels promote the replica, and the run (through the workers'
#    retries, or a resume) ends with the tables equal to Redis, row by row,
#    as redis-cli reads the new primary.
# 5. A scan after the failover reads the new primary; a server pointed
#    directly at a replica gets a READONLY write error as a connection
#    error.
# 6. Sentinels none of which answers: the error names each of them.
# 7. read_from 'replica' (run between 1 and 2, while the replica is up): a
#    scan and a past day's sync read no member from the primary (INFO
#    commandstats: no ZRANGE or ZMSCORE there, both on the replica) and
#    end equal to Redis row by row; a live (today's) sync, whose copy is
#    written on the primary and read from the replica after WAIT, too.
#    At the end, with the only replica down: read_from 'replica_preferred'
#    reads from the primary, and 'replica' is a clear connection error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep time);

my $t_start = time;

# --- Redis: a primary, its replica, three sentinels ---------------------
my $primary = start_redis();
my $replica = start_redis(extra => [ '--replicaof', '127.0.0.1', $primary->{port} ]);
my @sentinels;

# start_sentinel($name, $quorum, @extra_conf): a sentinel monitoring the
# primary as $name; returns { port, dir }.
sub start_sentinel
{
	my ($name, $quorum, @extra) = @_;
	my $s = {
		port => PostgreSQL::Test::Cluster::get_free_port(),
		dir => PostgreSQL::Test::Utils::tempdir(),
	};
	my $conf = "$s->{dir}/sentinel.conf";
	open my $fh, '>', $conf or die "$conf: $!";
	print $fh join("\n",
		"port $s->{port}", 'bind 127.0.0.1', 'daemonize yes',
		"pidfile $s->{dir}/sentinel.pid", "logfile $s->{dir}/sentinel.log",
		"dir $s->{dir}",
		"sentinel monitor $name 127.0.0.1 $primary->{port} $quorum",
		"sentinel down-after-milliseconds $name 1000",
		"sentinel failover-timeout $name 5000", @extra), "\n";
	close $fh;
	system('redis-server', $conf, '--sentinel') == 0 or die "could not start a sentinel";
	push @sentinels, $s;
	return $s;
}

# However the test ends, no server it started outlives it (by pid files).
END
{
	foreach my $dir ((map { $_->{dir} } @sentinels), grep { defined } map { $_ && $_->{dir} } $primary, $replica)
	{
		foreach my $pidfile ("$dir/sentinel.pid", "$dir/redis.pid")
		{
			next unless -f $pidfile;
			my $pid = slurp_file($pidfile) + 0;
			kill 'TERM', $pid if $pid > 0;
		}
	}
}

# cli($port, @args): one redis-cli command, raw output.
sub cli
{
	my ($port, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '-p', $port, '--raw', @args ], '<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

# poll(\&cond, $seconds): true once cond() is, false after $seconds.
sub poll
{
	my ($cond, $seconds) = @_;
	for (1 .. $seconds * 20)
	{
		return 1 if $cond->();
		usleep(50_000);
	}
	return 0;
}

start_sentinel('m', 2) for 1 .. 3;
my @sports = map { $_->{port} } @sentinels;

# each sentinel knows the replica and the two other sentinels
ok(poll(sub {
	foreach my $p (@sports)
	{
		my %m = split /\n/, cli($p, 'SENTINEL', 'MASTER', 'm');
		return 0 unless ($m{'num-slaves'} // 0) == 1 && ($m{'num-other-sentinels'} // 0) == 2;
		# and see its link to the primary up (they refresh that every 10 s):
		# read_from takes only a replica whose link they report up
		return 0 unless cli($p, 'SENTINEL', 'REPLICAS', 'm') =~ /^master-link-status\nok$/m;
	}
	return 1;
}, 60), 'the sentinels see the replica, its link up, and each other');
diag(sprintf('measured 022: sentinels ready after %.1f s', time - $t_start));

# --- PostgreSQL ----------------------------------------------------------
my $node = new_sync_node('sentinel', redis => $primary);
my $slist = join ',', map { "127.0.0.1:$_" } @sports;
my $nowhere = PostgreSQL::Test::Cluster::get_free_port();
$node->safe_psql('postgres',
	"ALTER SERVER redis OPTIONS (SET port '$nowhere', ADD sentinels '$slist', "
	  . "ADD sentinel_master 'm', ADD connect_timeout '1000')");

# zset($port, $key): { member => score } as redis-cli reads it.
sub zset
{
	my ($port, $key) = @_;
	my %h = split /\n/, cli($port, 'ZRANGE', $key, '0', '-1', 'WITHSCORES');
	return \%h;
}

# rows($sql): two-column rows as { first => second }.
sub rows
{
	my ($sql) = @_;
	my %h = map { split /\|/, $_, 2 } grep { length } split /\n/, $node->safe_psql('postgres', $sql);
	return \%h;
}

# same_set(\%got, \%want, $name): equal member by member.
sub same_set
{
	my ($got, $want, $name) = @_;
	my $diff = grep { !defined $got->{$_} || $got->{$_} != $want->{$_} } keys %$want;
	$diff += grep { !defined $want->{$_} } keys %$got;
	is($diff, 0, "$name: equal to Redis member by member (" . scalar(keys %$want) . ' members)');
}

# --- 1. a scan through the sentinels ---------------------------------------
my $date = '2026-01-10';
my $key = "clicks:daily:$date";
my $n = 40000;
load_day($primary, $date, $n, 7);
is(cli($primary->{port}, 'WAIT', '1', '10000'), '1', 'the replica holds the day');
$node->safe_psql('postgres',
	"CREATE FOREIGN TABLE day_ft (member text, score bigint) SERVER redis OPTIONS (key '$key')");
same_set(rows('SELECT member, score FROM day_ft'), zset($primary->{port}, $key),
	'a scan through the sentinels');
like($node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM day_ft'),
	qr/Redis Primary: 127\.0\.0\.1:$primary->{port} \(sentinel_master "m"\)/,
	'EXPLAIN VERBOSE shows the primary the sentinels named');

# calls($port): { command => calls } from INFO commandstats.
sub calls
{
	my ($port) = @_;
	my %c = map { /^cmdstat_(\w+):calls=(\d+)/ ? ($1 => $2) : () } split /\r?\n/,
	  cli($port, 'INFO', 'commandstats');
	return \%c;
}

# member_reads($calls): the ZRANGE and ZMSCORE calls of calls().
sub member_reads
{
	my ($c) = @_;
	return ($c->{zrange} // 0) + ($c->{zmscore} // 0);
}

# --- 7. read_from 'replica' ------------------------------------------------------
{
	my $pport = $primary->{port};
	my $rport = $replica->{port};
	$node->safe_psql('postgres', qq{
		CREATE SERVER rep FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (sentinels '$slist', sentinel_master 'm', read_from 'replica',
		           command_timeout '10000');
		CREATE USER MAPPING FOR PUBLIC SERVER rep;
		CREATE FOREIGN TABLE rep_ft (member text, score bigint) SERVER rep OPTIONS (key '$key');
		CREATE TABLE rmember (name text PRIMARY KEY, click_count bigint NOT NULL);
		CREATE TABLE rdaily (name text NOT NULL REFERENCES rmember,
		  click_date date NOT NULL, click_count bigint NOT NULL,
		  PRIMARY KEY (name, click_date));
		SELECT redis_sync.create_job('rclicks', 'rep', 'clicks:daily:%Y-%m-%d',
		  'clicks:total', 'rmember', 'rdaily', partitions => 4, workers => 2,
		  chunk_size => 1000, schedule => NULL, day_offset => 0);
	});
	like($node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM rep_ft'),
		qr/Redis Primary: 127\.0\.0\.1:$pport \(sentinel_master "m"\)\n\s*Redis Reads From: replica 127\.0\.0\.1:$rport\b/,
		"read_from 'replica': EXPLAIN VERBOSE shows the primary and the replica that serves the reads");
	# what Redis holds, read (by redis-cli, from the primary) before the
	# command counts are reset
	my $want_day = zset($pport, $key);
	my $total = zset($pport, 'clicks:total');
	my %want = map { $_ => $total->{$_} } keys %$want_day;
	cli($_, 'CONFIG', 'RESETSTAT') for ($pport, $rport);
	my $scanned = rows('SELECT member, score FROM rep_ft');
	is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('rclicks', '$date')"),
		'succeeded', "read_from 'replica': a past day's sync succeeded");
	my ($p, $r) = (calls($pport), calls($rport));
	diag(sprintf("measured 022: read_from 'replica', a scan and a past day's sync of %d members: primary ZRANGE %d, ZMSCORE %d; replica ZRANGE %d, ZMSCORE %d",
		$n, $p->{zrange} // 0, $p->{zmscore} // 0, $r->{zrange} // 0, $r->{zmscore} // 0));
	is(member_reads($p), 0, "read_from 'replica': no ZRANGE or ZMSCORE on the primary");
	cmp_ok($r->{zrange} // 0, '>', 0, "read_from 'replica': the replica served the ZRANGEs");
	cmp_ok($r->{zmscore} // 0, '>', 0, "read_from 'replica': the replica served the ZMSCOREs");
	same_set($scanned, $want_day, "read_from 'replica': a scan");
	same_set(rows("SELECT name, click_count FROM rdaily WHERE click_date = '$date'"),
		$want_day, "read_from 'replica': rdaily of the past day");
	same_set(rows('SELECT name, click_count FROM rmember'), \%want,
		"read_from 'replica': rmember of the past day");

	# a write through the server goes to the primary, and is read back
	# in the same transaction (then from the primary)
	is($node->safe_psql('postgres', qq{
		BEGIN;
		INSERT INTO rep_ft VALUES ('written:here', 42);
		SELECT score FROM rep_ft WHERE member = 'written:here';
		COMMIT;
	}), '42', "read_from 'replica': a write lands on the primary and is read back in its transaction");
	is(cli($pport, 'ZSCORE', $key, 'written:here'), '42', '... the primary holds it');
	cli($pport, 'ZREM', $key, 'written:here');

	# today's key, copied on the primary and read from the replica
	my $today = $node->safe_psql('postgres', 'SELECT current_date');
	my $tkey = "clicks:daily:$today";
	load_day($primary, $today, 20000, 3);
	is(cli($pport, 'WAIT', '1', '10000'), '1', 'the replica holds today');
	cli($_, 'CONFIG', 'RESETSTAT') for ($pport, $rport);
	is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('rclicks')"),
		'succeeded', "read_from 'replica': a live (today's) sync succeeded");
	($p, $r) = (calls($pport), calls($rport));
	diag(sprintf("measured 022: read_from 'replica', a live sync of 20000 members: primary EVAL %d, WAIT %d, ZRANGE %d (in the copy's scripts), ZMSCORE %d; replica ZRANGE %d, ZMSCORE %d",
		$p->{eval} // 0, $p->{wait} // 0, $p->{zrange} // 0, $p->{zmscore} // 0,
		$r->{zrange} // 0, $r->{zmscore} // 0));
	same_set(rows("SELECT name, click_count FROM rdaily WHERE click_date = '$today'"),
		zset($pport, $tkey), "read_from 'replica': rdaily of today");
	$total = zset($pport, 'clicks:total');
	%want = map { $_ => $total->{$_} } keys %{ zset($pport, $tkey) };
	my $got = rows('SELECT name, click_count FROM rmember');
	same_set({ map { $_ => $got->{$_} } grep { exists $want{$_} } keys %$got }, \%want,
		"read_from 'replica': rmember of today's members");
	cmp_ok($p->{eval} // 0, '>', 0, "read_from 'replica': the copy was written on the primary");
	cmp_ok($p->{wait} // 0, '>', 0, '... which waited (WAIT) for the replica to hold it');
	# the copy's scripts look up each page in the copy (one ZMSCORE inside a
	# script per key of the copy); the totals are read on the replica
	cmp_ok($p->{zmscore} // 0, '<=', $p->{eval} // 0, '... no ZMSCORE on the primary but in the copy\'s scripts');
	cmp_ok($r->{zmscore} // 0, '>', 0, '... the totals were read on the replica');
	cmp_ok($r->{zrange} // 0, '>', 0, '... and the workers read the copy from the replica');
	$node->safe_psql('postgres', "SELECT redis_sync.drop_job('rclicks')");
}

# --- 2. a sentinel that names a replica ---------------------------------------
{
	my $rport = $replica->{port};
	my $liar = start_fake_server(replies => {
		SENTINEL => "*2\r\n\$9\r\n127.0.0.1\r\n\$" . length($rport) . "\r\n$rport\r\n" });
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', qq{
		CREATE SERVER liar FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (sentinels '127.0.0.1:$liar,$slist', sentinel_master 'm');
		CREATE USER MAPPING FOR PUBLIC SERVER liar;
		CREATE FOREIGN TABLE liar_ft (member text, score bigint) SERVER liar OPTIONS (key '$key');
	});
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM liar_ft');
	like($err, qr/ERROR:  the node that the sentinels of Redis server "liar" name as primary "m" is not a primary/,
		'a node that is not a primary is refused');
	like($err, qr/DETAIL:  Sentinel 127\.0\.0\.1:$liar named node 127\.0\.0\.1:$rport, which replied to ROLE with "slave", after 6 attempts\./,
		'the error names the sentinel, the node and its role');
	my $asks = () = substr(slurp_file($node->logfile), $offset) =~ /redis_sync sentinel: server "liar".*asking the sentinels again/g;
	is($asks, 5, 'the sentinels were asked again 5 times, then the connection gave up');
	# the pauses between the rounds wait on the latch: a cancel ends them
	($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '300ms';\nSELECT count(*) FROM liar_ft");
	like($err, qr/canceling statement due to statement timeout/,
		'a cancel ends the rounds of asking the sentinels');
}

# --- 3. sentinels that require a password --------------------------------------
{
	# monitors the primary as "mauth" with a quorum it never reaches, so it
	# takes no part in the failover of case 4
	my $s = start_sentinel('mauth', 5, 'requirepass sentinel-secret');
	ok(poll(sub { cli($s->{port}, '-a', 'sentinel-secret', '--no-auth-warning', 'PING') eq 'PONG' }, 10),
		'a sentinel with a password is up');
	$node->safe_psql('postgres', qq{
		CREATE SERVER sauth FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (sentinels '127.0.0.1:$s->{port}', sentinel_master 'mauth');
		CREATE USER MAPPING FOR PUBLIC SERVER sauth;
		CREATE FOREIGN TABLE sauth_ft (member text, score bigint) SERVER sauth OPTIONS (key '$key');
	});
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM sauth_ft');
	like($err, qr/ERROR:  could not find primary "mauth" of Redis server "sauth" through its sentinels\n.*DETAIL:  Sentinel 127\.0\.0\.1:$s->{port}: could not authenticate/s,
		'without sentinel_password: an authentication error naming the sentinel');
	like($err, qr/HINT:  Set the options sentinel_user and sentinel_password/, '... with a hint');
	$node->safe_psql('postgres',
		"ALTER USER MAPPING FOR PUBLIC SERVER sauth OPTIONS (ADD sentinel_password 'sentinel-secret')");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM sauth_ft'), $n,
		'with sentinel_password the primary is found');
	cli($s->{port}, '-a', 'sentinel-secret', '--no-auth-warning', 'SHUTDOWN', 'NOSAVE');
}

# --- 4. the primary is killed during a sync ----------------------------------------
my $new;    # the new primary's port
{
	setup_job($node, partitions => 8, workers => 3, chunk_size => 500);
	my $offset = -s $node->logfile;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT status FROM redis_sync.sync_run('clicks', '$date')");
	ok(defined wait_progress($node, 1000), 'the run is under way');
	my $t_kill = time;
	kill 'KILL', slurp_file("$primary->{dir}/redis.pid") + 0;
	unlink "$primary->{dir}/redis.pid";
	$h->finish;
	my $first = $$out =~ s/\s+$//r;
	my $log = substr(slurp_file($node->logfile), $offset);
	my $retries = () = $log =~ /retrying in \d+ ms/g;
	my $asks = () = $log =~ /redis_sync sentinel: server "redis".*asking the sentinels again/g;
	my $done = $node->safe_psql('postgres',
		"SELECT coalesce(sum(next_offset - start_offset), 0) FROM redis_sync.run_partition p "
		  . "JOIN redis_sync.run r USING (run_id) WHERE r.run_date = '$date'");
	diag(sprintf("measured 022: killed the primary: the run ended \"%s\" %.1f s later %safter %d retries of a partition and %d re-asks of the sentinels (%s of %d members committed)",
		$first, time - $t_kill, ($$err =~ /ERROR:\s*(.*)/ ? "($1) " : ''), $retries, $asks, $done, $n));
	ok(poll(sub { cli($sports[0], 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'm') =~ /\n$replica->{port}$/ }, 30),
		'the sentinels promoted the replica');
	$new = $replica->{port};
	is((split /\n/, cli($new, 'ROLE'))[0], 'master', 'the replica is a primary now');
	if ($first ne 'succeeded')
	{
		is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$date')"),
			'succeeded', 'the resumed run succeeded');
	}
	else
	{
		# a worker that lost its connection either failed a chunk (and
		# retried) or found it closed before its next command, and then
		# asked the sentinels until they named the new primary
		cmp_ok($retries + $asks, '>', 0,
			'the run followed the failover (worker retries or re-asks of the sentinels) and succeeded');
	}
	# row by row, against the new primary as redis-cli reads it
	same_set(rows("SELECT name, click_count FROM daily_click_count WHERE click_date = '$date'"),
		zset($new, $key), 'daily_click_count after the failover');
	my $total = zset($new, 'clicks:total');
	my %want = map { $_ => $total->{$_} } keys %{ zset($new, $key) };
	same_set(rows('SELECT name, click_count FROM member'), \%want, 'member after the failover');
}

# --- 5. after the failover -------------------------------------------------------
{
	# a key written only on the new primary is read through the sentinels
	cli($new, 'ZADD', 'after:failover', '1', 'a', '2', 'b', '3', 'c');
	$node->safe_psql('postgres',
		"CREATE FOREIGN TABLE after_ft (member text, score bigint) SERVER redis OPTIONS (key 'after:failover')");
	is($node->safe_psql('postgres', "SELECT string_agg(member || '=' || score, ',' ORDER BY score) FROM after_ft"),
		'a=1,b=2,c=3', 'a scan after the failover reads the new primary');
	same_set(rows('SELECT member, score FROM day_ft'), zset($new, $key), 'the day, scanned after the failover');
	like($node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM day_ft'),
		qr/Redis Primary: 127\.0\.0\.1:$new \(sentinel_master "m"\)/,
		'EXPLAIN VERBOSE shows the new primary');
	# a write through the sentinels lands on the new primary
	$node->safe_psql('postgres', "INSERT INTO after_ft VALUES ('d', 4)");
	is(cli($new, 'ZSCORE', 'after:failover', 'd'), '4', 'a write after the failover reaches the new primary');

	# a server pointed at a replica: a write gets READONLY, a connection error
	my $ro = start_redis(extra => [ '--replicaof', '127.0.0.1', $new ]);
	$node->safe_psql('postgres', qq{
		CREATE SERVER ro FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$ro->{port}');
		CREATE USER MAPPING FOR PUBLIC SERVER ro;
		CREATE FOREIGN TABLE ro_ft (member text, score bigint) SERVER ro OPTIONS (key 'after:failover');
	});
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nINSERT INTO ro_ft VALUES ('e', 5)");
	like($err, qr/ERROR:  08006: Redis server "ro" is a read-only replica/,
		'READONLY is reported as a connection failure (SQLSTATE 08006), which runs retry');
	$ro->stop;
}

# --- 6. no sentinel answers ---------------------------------------------------------
{
	my @none = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. 2;
	$node->safe_psql('postgres', qq{
		CREATE SERVER nosent FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (sentinels '127.0.0.1:$none[0],127.0.0.1:$none[1]', sentinel_master 'm',
		           connect_timeout '500');
		CREATE USER MAPPING FOR PUBLIC SERVER nosent;
		CREATE FOREIGN TABLE nosent_ft (member text, score bigint) SERVER nosent OPTIONS (key '$key');
	});
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM nosent_ft');
	like($err, qr/ERROR:  could not find primary "m" of Redis server "nosent" through its sentinels/,
		'no sentinel answers: a clear error');
	like($err, qr/DETAIL:  Sentinel 127\.0\.0\.1:$none[0]: Connection refused\. Sentinel 127\.0\.0\.1:$none[1]: Connection refused\./,
		'... naming every sentinel and what went wrong');
	# a name that no sentinel monitors
	$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (SET sentinel_master 'nosuch')");
	($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM day_ft');
	like($err, qr/DETAIL:  Sentinel 127\.0\.0\.1:$sports[0] monitors no primary named "nosuch"\./,
		'a name that no sentinel monitors is named in the error');
}

# --- 7 (end). the only replica is down ------------------------------------------
{
	# the old primary, killed in 4, is the sentinels' only replica now (the
	# read-only node of 5 is stopped too)
	my $healthy = sub {
		my ($sport) = @_;
		my (@recs, $rec);
		my @l = split /\n/, cli($sport, 'SENTINEL', 'REPLICAS', 'm');
		while (my ($k, $v) = splice(@l, 0, 2))
		{
			push @recs, ($rec = {}) if $k eq 'name';
			$rec->{$k} = $v if $rec;
		}
		return scalar grep {
			($_->{flags} // "") !~ /s_down|o_down|disconnected/ && ($_->{'master-link-status'} // '') eq 'ok'
		} @recs;
	};
	ok(poll(sub { !grep { $healthy->($_) } @sports }, 60),
		'no sentinel lists a healthy replica');
	$node->safe_psql('postgres', qq{
		CREATE SERVER pref FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (sentinels '$slist', sentinel_master 'm', read_from 'replica_preferred',
		           connect_timeout '1000');
		CREATE USER MAPPING FOR PUBLIC SERVER pref;
		CREATE FOREIGN TABLE pref_ft (member text, score bigint) SERVER pref OPTIONS (key '$key');
	});
	cli($new, 'CONFIG', 'RESETSTAT');
	same_set(rows('SELECT member, score FROM pref_ft'), zset($new, $key),
		"read_from 'replica_preferred' with no replica up: a scan");
	cmp_ok(calls($new)->{zrange} // 0, '>', 0, '... read from the primary');
	like($node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM pref_ft'),
		qr/Redis Reads From: the primary \(no healthy replica\)/, '... as EXPLAIN VERBOSE says');
	$node->safe_psql('postgres', "ALTER SERVER pref OPTIONS (SET read_from 'replica')");
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT count(*) FROM pref_ft");
	like($err, qr/ERROR:  HV00N: could not find a replica of primary "m" of Redis server "pref" through its sentinels/,
		"read_from 'replica' with no replica up: a connection error (SQLSTATE HV00N, which runs retry)");
	like($err, qr/HINT:  Set read_from to "replica_preferred"/, '... with a hint');
}

diag(sprintf('measured 022: %.1f s in all', time - $t_start));
$node->stop;
done_testing();
