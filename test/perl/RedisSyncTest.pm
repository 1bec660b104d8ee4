
# Helpers for redis_sync's TAP tests: a throwaway redis-server on a free
# loopback port, a PostgreSQL node with redis_sync set up against it, and
# exact comparisons of the target tables with Redis.

package RedisSyncTest;

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IO::Socket::INET;
use IPC::Run ();
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(start_redis new_sync_node setup_job load_day expect_tables_match
  wait_for wait_value wait_progress background_psql_query start_mute_server
  start_fake_server wait_on_redis signal_query);

# pids of mute servers, killed when the test ends
my @mute_pids;
END { kill 'KILL', @mute_pids if @mute_pids; }

# start_redis(%opts): start redis-server; returns a hash with port, dir and
# methods cli(@args), stop(), start().  opts: extra => [redis-server args],
# password => a password to require.
sub start_redis
{
	my (%opts) = @_;
	my $self = bless {
		port => PostgreSQL::Test::Cluster::get_free_port(),
		dir => PostgreSQL::Test::Utils::tempdir(),
		extra => $opts{extra} || [],
		password => $opts{password},
	}, 'RedisSyncTest::Redis';
	push @{ $self->{extra} }, '--requirepass', $opts{password} if $opts{password};
	$self->start;
	return $self;
}

# new_sync_node($name, %opts): a started node with redis_sync, a server
# "redis" pointing at $opts{redis} and a PUBLIC user mapping.
sub new_sync_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "max_worker_processes = 24\nrestart_after_crash = on\n");
	$node->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	$node->start;
	my $port = $opts{redis}->{port};
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION redis_sync;
		CREATE SERVER redis FOREIGN DATA WRAPPER redis_zset
		  OPTIONS (port '$port', command_timeout '10000');
		CREATE USER MAPPING FOR PUBLIC SERVER redis;
	});
	return $node;
}

# setup_job($node, %args): member/daily tables and a job "clicks" reading
# clicks:daily:%Y-%m-%d and clicks:total.
sub setup_job
{
	my ($node, %args) = @_;
	my $partitions = $args{partitions} || 8;
	my $workers = $args{workers} || 3;
	my $chunk = $args{chunk_size} || 500;
	my $schedule = defined $args{schedule} ? "'$args{schedule}'" : 'NULL';
	my $owner = $args{owner} ? "SET ROLE $args{owner};" : '';
	$node->safe_psql('postgres', qq{
		CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
		CREATE TABLE daily_click_count (name text NOT NULL REFERENCES member,
		  click_date date NOT NULL, click_count bigint NOT NULL,
		  PRIMARY KEY (name, click_date));
		$owner
		SELECT redis_sync.create_job('clicks', 'redis', 'clicks:daily:%Y-%m-%d',
		  'clicks:total', 'member', 'daily_click_count', partitions => $partitions,
		  workers => $workers, chunk_size => $chunk, schedule => $schedule,
		  day_offset => 0);
	});
}

# load_day($redis, $date, $n, $seed): $n members on clicks:daily:$date with
# deterministic scores, and totals for all of them.
sub load_day
{
	my ($redis, $date, $n, $seed) = @_;
	$seed ||= 1;
	# chunks of 50,000 keep each script short
	for (my $start = 0; $start < $n; $start += 50000)
	{
		my $count = $n - $start > 50000 ? 50000 : $n - $start;
		my $l = "for i=" . ($start + 1) . "," . ($start + $count) . " do "
		  . "redis.call('ZADD', KEYS[1], (i * tonumber(ARGV[1])) % 1009, 'user:' .. i); "
		  . "redis.call('ZADD', KEYS[2], i * 10 + tonumber(ARGV[1]), 'user:' .. i) end";
		$redis->cli('EVAL', $l, '2', "clicks:daily:$date", 'clicks:total', $seed);
	}
	return;
}

# expect_tables_match($node, $key, $date, $name): both tables equal Redis,
# row by row, through foreign tables over the day's key and the total key.
sub expect_tables_match
{
	my ($node, $key, $date, $name) = @_;
	my $res = $node->safe_psql('postgres', qq{
		DROP FOREIGN TABLE IF EXISTS chk_day, chk_total;
		CREATE FOREIGN TABLE chk_day (member text, score bigint) SERVER redis OPTIONS (key '$key');
		CREATE FOREIGN TABLE chk_total (member text, score bigint) SERVER redis OPTIONS (key 'clicks:total');
		SELECT (SELECT count(*) FROM chk_day d
		          FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '$date') c
		            ON c.name = d.member
		         WHERE c.click_count IS DISTINCT FROM d.score)
		     + (SELECT count(*) FROM chk_day d
		          JOIN chk_total t USING (member)
		          LEFT JOIN member m ON m.name = d.member
		         WHERE m.click_count IS DISTINCT FROM t.score)
		     || ' ' || (SELECT count(*) FROM chk_day);
	});
	my ($mismatch, $count) = split / /, $res;
	is($mismatch, '0', "$name: tables equal Redis ($count members compared)");
	return $count;
}

# wait_for($node, $sql, $expected, $seconds): poll until $sql returns $expected.
sub wait_for
{
	my ($node, $sql, $expected, $seconds) = @_;
	$seconds ||= 60;
	for (my $i = 0; $i < $seconds * 20; $i++)
	{
		# psql may exit (server restarting) before IPC::Run has written the
		# query to its stdin, and IPC::Run then dies of the broken pipe
		my ($ret, $out) = eval { $node->psql('postgres', $sql) };
		return 1 if defined $ret && $ret == 0 && $out eq $expected;
		usleep(50_000);
	}
	return 0;
}

# wait_value($node, $sql, $seconds): poll until $sql returns something
# non-empty, and return it ('' if it never does).
sub wait_value
{
	my ($node, $sql, $seconds) = @_;
	for (1 .. ($seconds || 5) * 100)
	{
		my $v = $node->safe_psql('postgres', $sql);
		return $v if $v ne '';
		usleep(10_000);
	}
	return '';
}

# wait_progress($node, $min): wait until a running run has committed at
# least $min members; returns its run id, or undef if none did in 30 s.
sub wait_progress
{
	my ($node, $min) = @_;
	for (1 .. 1500)
	{
		my $p = $node->safe_psql('postgres',
			"SELECT run_id FROM redis_sync.progress WHERE members_done >= $min");
		return $p if $p ne '';
		usleep(20_000);
	}
	return undef;
}

# wait_on_redis($node, $pattern): wait until a backend whose query is LIKE
# $pattern waits on Redis (wait event Extension); true if one did in 30 s.
sub wait_on_redis
{
	my ($node, $pattern) = @_;
	$pattern =~ s/'/''/g;
	return wait_for($node,
		"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '$pattern' AND wait_event = 'Extension'",
		'1', 30);
}

# signal_query($node, $h, $how, $pattern): send $how (pg_cancel_backend or
# pg_terminate_backend) to the backends whose query is LIKE $pattern, wait
# for the harness $h to end, and return the seconds that took.
sub signal_query
{
	my ($node, $h, $how, $pattern) = @_;
	$pattern =~ s/'/''/g;
	my $t0 = time;
	$node->safe_psql('postgres', "SELECT $how(pid) FROM pg_stat_activity WHERE query LIKE '$pattern'");
	$h->finish;
	return time - $t0;
}

# start_mute_server(): a TCP server on a free loopback port that accepts
# connections and never says a word (a hung Redis); returns its port.
sub start_mute_server
{
	my $sock = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
		LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my @held;
		while (my $c = $sock->accept) { push @held, $c; }
		exit 0;
	}
	push @mute_pids, $pid;
	return $sock->sockport;
}

# start_fake_server(%opts): a TCP server on a free loopback port that speaks
# just enough of the Redis protocol: it answers AUTH, SELECT, CLIENT and PING
# with +OK, a command named in $opts{replies} (uppercase name => raw reply)
# with that reply, and any other command with $opts{reply}, followed, if
# $opts{trickle} is set, by that many bytes every 100 ms until the client
# hangs up.  Each client gets a process of its own.  Returns the port.
sub start_fake_server
{
	my (%opts) = @_;
	my $sock = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
		LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		$SIG{CHLD} = 'IGNORE';
		while (my $c = $sock->accept)
		{
			my $session = fork();
			if (defined $session && $session == 0)
			{
				close $sock;
				_fake_session($c, %opts);
				# skip the END blocks, which would stop the test's nodes
				POSIX::_exit(0);
			}
			close $c;
		}
		POSIX::_exit(0);
	}
	push @mute_pids, $pid;
	return $sock->sockport;
}

sub _fake_session
{
	my ($c, %opts) = @_;
	my $buf = '';
	$SIG{PIPE} = 'DEFAULT';
	binmode $c;
	while (defined(my $cmd = _fake_read_command($c, \$buf)))
	{
		$cmd = uc $cmd;
		if ($cmd =~ /^(AUTH|SELECT|CLIENT|PING)$/)
		{
			syswrite($c, "+OK\r\n") or return;
			next;
		}
		my $reply = $opts{replies} && exists $opts{replies}{$cmd}
		  ? $opts{replies}{$cmd} : $opts{reply};
		syswrite($c, $reply) or return;
		next unless $opts{trickle};
		while (1)
		{
			usleep(100_000);
			syswrite($c, 'x' x $opts{trickle}) or return;
		}
	}
	return;
}

# read one command (an array of bulk strings); returns its name, or undef
# when the client hangs up
sub _fake_read_command
{
	my ($c, $buf) = @_;
	while (1)
	{
		if ($$buf =~ /^\*(\d+)\r\n/)
		{
			my ($n, $pos, @args) = ($1, length("*$1\r\n"));
			for (1 .. $n)
			{
				last unless substr($$buf, $pos) =~ /^\$(\d+)\r\n/;
				my ($len, $head) = ($1, length("\$$1\r\n"));
				last if length($$buf) < $pos + $head + $len + 2;
				push @args, substr($$buf, $pos + $head, $len);
				$pos += $head + $len + 2;
			}
			if (@args == $n)
			{
				substr($$buf, 0, $pos) = '';
				return $args[0];
			}
		}
		my $got = sysread($c, $$buf, 65536, length $$buf);
		return undef unless $got;
	}
}

# background_psql_query($node, $sql): start psql running $sql; returns the
# IPC::Run harness and refs to its stdout and stderr.
sub background_psql_query
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

package RedisSyncTest::Redis;

use strict;
use warnings;
use Time::HiRes qw(usleep);

sub start
{
	my ($self) = @_;
	my $server = $ENV{REDIS_SERVER} || 'redis-server';
	system($server, '--port', $self->{port}, '--bind', '127.0.0.1', '--save', '',
		'--appendonly', 'no', '--daemonize', 'yes', '--dir', $self->{dir},
		'--pidfile', "$self->{dir}/redis.pid", '--logfile', "$self->{dir}/redis.log",
		@{ $self->{extra} }) == 0
	  or die "could not start redis-server";
	for (1 .. 100)
	{
		return if $self->ping;
		usleep(50_000);
	}
	die "redis-server did not answer on port $self->{port}";
}

sub ping
{
	my ($self) = @_;
	my $out = `redis-cli -p $self->{port} @{[ $self->auth_args ]} ping 2>/dev/null`;
	return defined $out && $out =~ /PONG/;
}

sub auth_args
{
	my ($self) = @_;
	return $self->{password} ? ('-a', $self->{password}, '--no-auth-warning') : ();
}

# cli(@args): run one redis-cli command; returns its raw output.
sub cli
{
	my ($self, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '-p', $self->{port}, $self->auth_args, '--raw', @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

sub stop
{
	my ($self) = @_;
	$self->cli('SHUTDOWN', 'NOSAVE');
	for (1 .. 100)
	{
		return unless $self->ping;
		usleep(50_000);
	}
}

sub DESTROY
{
	my ($self) = @_;
	$self->stop if $self->{port} && $self->ping;
}

1;
