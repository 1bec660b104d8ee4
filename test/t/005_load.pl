# Load: a sync of today's key (1,000,000 members in make test-full) while redis-benchmark keeps
# incrementing the daily and total keys as fast as it can and pgbench reads
# the member table.  The run must equal its snapshot, the next run must catch
# up with every increment, and both loads' throughput is reported with and
# without the sync running (reported, not asserted: timings are for
# make bench, not for tests).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep time);

# (make test: 100,000 members; make test-full: 1,000,000; SOAK=1: 5,000,000)
my $n = $ENV{RS_LOAD_MEMBERS} || ($ENV{RS_SOAK} ? 5000000 : $ENV{RS_FULL} ? 1000000 : 100000);
my $redis = start_redis();
my $node = new_sync_node('load', redis => $redis);
setup_job($node, partitions => 8, workers => 2, chunk_size => 5000);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $day_key = "clicks:daily:$today";

# Members are named as redis-benchmark's __rand_int__ writes them
# (12 digits), so that its increments hit existing members.
for (my $start = 0; $start < $n; $start += 100000)
{
	my $end = $start + 100000 < $n ? $start + 99999 : $n - 1;
	$redis->cli('EVAL',
		"for i=$start,$end do local m = string.format('m%012d', i); "
		  . "redis.call('ZADD', KEYS[1], (i * 7) % 1009, m); "
		  . "redis.call('ZADD', KEYS[2], i * 10, m) end",
		'2', $day_key, 'clicks:total');
}
is($redis->cli('ZCARD', $day_key), $n, "$n members on today's key");
$node->safe_psql('postgres', qq{
	INSERT INTO member SELECT format('m%s', lpad(i::text, 12, '0')), 0 FROM generate_series(0, $n - 1) i;
	VACUUM ANALYZE member;
});

my $pgbench_script = PostgreSQL::Test::Utils::tempdir() . '/read_member.sql';
open my $fh, '>', $pgbench_script or die $!;
print $fh "\\set id random(0, " . ($n - 1) . ")\n"
  . "SELECT click_count FROM member WHERE name = format('m%s', lpad(:id::text, 12, '0'));\n";
close $fh;

# One round of load: two redis-benchmark clients (pipelined ZINCRBY on the
# daily and the total key) and pgbench reads, side by side.  Returns
# (ZINCRBY per second, pgbench tps).
sub load_round
{
	my @bench;
	my @outs;
	foreach my $key ($day_key, 'clicks:total')
	{
		my $out = '';
		push @outs, \$out;
		push @bench, IPC::Run::start(
			[ 'redis-benchmark', '-p', $redis->{port}, '-n', '200000', '-r', $n, '-P', '16',
			  '-c', '2', '--csv', 'ZINCRBY', $key, '1', 'm__rand_int__' ],
			'<', \undef, '>', \$out, '2>', '/dev/null');
	}
	my ($pg_out, $pg_err) = ('', '');
	IPC::Run::run(
		[ 'pgbench', '-n', '-T', '3', '-c', '2', '-j', '1', '-f', $pgbench_script,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'<', \undef, '>', \$pg_out, '2>', \$pg_err);
	$_->finish foreach @bench;
	my $rps = 0;
	foreach my $o (@outs)
	{
		# CSV: a header line, then "ZINCRBY ...","<rps>",...
		$rps += $1 if $$o =~ /^"ZINCRBY[^"]*","([\d.]+)"/m;
	}
	my ($tps) = $pg_out =~ /tps = ([\d.]+)/;
	return ($rps, $tps || 0);
}

# Baseline: the loads without a sync.
my ($idle_rps, $idle_tps) = load_round();
cmp_ok($idle_rps, '>', 0, 'redis-benchmark ran');
cmp_ok($idle_tps, '>', 0, 'pgbench ran');
my $incr_before = $redis->cli('ZSCORE', $day_key, 'm000000000000');

# The sync, with the loads running until it ends.
my ($h, $out, $err) = background_psql_query($node,
	"SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', '$today')");
# the copy is complete once the run has its member count
my $snap = wait_value($node,
	"SELECT read_key FROM redis_sync.run WHERE run_date = current_date AND status = 'running' "
	. "AND members IS NOT NULL", 30);
like($snap, qr/^redis_sync:snapshot:/, 'the run reads a snapshot of today\'s key');
# keep a copy of the snapshot, to compare the result with after the run
is($redis->cli('COPY', $snap, 'check:snapshot'), '1', 'snapshot copied for the check');

my (@rps, @tps);
my $t0 = time;
while ($h->pumpable && time - $t0 < ($ENV{RS_SOAK} ? 1800 : 300))
{
	my ($r, $t) = load_round();
	push @rps, $r;
	push @tps, $t;
	$h->pump_nb;
}
$h->finish;
is($$out =~ s/\s+$//r, "succeeded " . $redis->cli('ZCARD', 'check:snapshot'),
	'the sync under load succeeded with every member of its snapshot');
my $avg = sub { my @v = @_; my $s = 0; $s += $_ foreach @v; return @v ? $s / @v : 0 };
my ($busy_rps, $busy_tps) = ($avg->(@rps), $avg->(@tps));
cmp_ok(scalar(@rps), '>', 0, 'the loads ran during the sync');
cmp_ok($redis->cli('ZSCORE', $day_key, 'm000000000000') + 0, '>=', $incr_before + 0,
	'increments kept arriving');
diag(sprintf('load without sync: %.0f ZINCRBY/s, %.0f pgbench tps; during the %d-member sync: %.0f ZINCRBY/s (%.0f%%), %.0f tps (%.0f%%), %d rounds',
	$idle_rps, $idle_tps, $n, $busy_rps, 100 * $busy_rps / $idle_rps, $busy_tps,
	100 * $busy_tps / $idle_tps, scalar(@rps)));

# The daily rows equal the snapshot, member by member.
my $mismatch = $node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE chk_snap (member text, score bigint) SERVER redis OPTIONS (key 'check:snapshot');
	SELECT count(*) FROM chk_snap s
	  FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '$today') c ON c.name = s.member
	 WHERE c.click_count IS DISTINCT FROM s.score;
});
is($mismatch, '0', 'the daily rows equal the snapshot exactly');
my $moved = $node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE chk_live (member text, score bigint) SERVER redis OPTIONS (key '$day_key');
	SELECT count(*) FROM chk_snap s JOIN chk_live l USING (member) WHERE l.score <> s.score;
});
cmp_ok($moved, '>', 0, "$moved members were incremented after the snapshot");

# With the load stopped, the next run catches up with every increment.
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'the catch-up run succeeded');
expect_tables_match($node, $day_key, $today, 'after the load: both tables equal Redis');

done_testing();
