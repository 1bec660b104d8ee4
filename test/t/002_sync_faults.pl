# sync_run under faults: a worker killed with SIGKILL, the caller cancelled
# or terminated, and clicks arriving during a run of today's key.  Every
# case ends with a full comparison of both tables against Redis.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep);

my $redis = start_redis();
my $node = new_sync_node('faults', redis => $redis);
setup_job($node, partitions => 6, workers => 3, chunk_size => 200);

my $day = '2020-03-01';
load_day($redis, $day, 120000, 7);

# 1. SIGKILL one sync worker mid-run: the server restarts, the run resumes.
my ($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '$day')");
my $run = wait_progress($node, 5000);
ok(defined $run, 'the run made progress');
my $wpid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync worker' LIMIT 1");
ok($wpid =~ /^\d+$/, "a worker is running as pid $wpid");
kill 'KILL', $wpid;
$h->finish;
ok(wait_for($node, 'SELECT 1', '1', 60), 'the server came back after the crash');
my $done = $node->safe_psql('postgres',
	"SELECT sum(next_offset - start_offset) FROM redis_sync.run_partition WHERE run_id = $run");
cmp_ok($done, '<', 120000, "the killed run had committed $done of 120000 members");
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status || ' ' || members FROM redis_sync.sync_run('clicks', '$day')"),
	"$run succeeded 120000", 'sync_run resumed the interrupted run');
is($node->safe_psql('postgres', "SELECT trigger FROM redis_sync.run WHERE run_id = $run"), 'resume',
	'the run is marked as resumed');
expect_tables_match($node, "clicks:daily:$day", $day, 'after SIGKILL and resume');
# Nothing written twice: the resumed partitions re-read their segments from
# the start, but the members committed before the kill are found unchanged.
is($node->safe_psql('postgres', "SELECT sum(rows_written) FROM redis_sync.run_partition WHERE run_id = $run"),
	'240000', 'the resumed run wrote each daily row and member row once');

# 1a. A partition of several segments: a worker killed inside its second
#     segment resumes up to one segment back, and still writes each row once
#     (250,000 daily rows, and 250,000 member rows: 200,000 with a new total,
#     50,000 new).
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', partitions => 1, workers => 1, chunk_size => 1000)");
my $big = '2020-03-02';
load_day($redis, $big, 250000, 99);
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '$big')");
$run = wait_progress($node, 150000);
ok(defined $run, 'one partition: the run reached the second segment');
kill 'KILL', split /\n/, $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync worker'");
$h->finish;
ok(wait_for($node, 'SELECT 1', '1', 60), 'one partition: the server came back after the crash');
$done = $node->safe_psql('postgres', "SELECT next_offset FROM redis_sync.run_partition WHERE run_id = $run");
cmp_ok($done, '>', 100000, "one partition: the killed run had committed $done members");
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$big')"),
	"$run succeeded", 'one partition: the run resumed and succeeded');
is($node->safe_psql('postgres', "SELECT rows_written FROM redis_sync.run_partition WHERE run_id = $run"),
	'500000', 'one partition: the resumed run wrote each row once');
expect_tables_match($node, "clicks:daily:$big", $big, 'one partition: after SIGKILL and resume');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', partitions => 6, workers => 3, chunk_size => 200)");

# 1b. SIGKILL of one worker, of all workers, or of the calling backend, at
#     a random point of a 200,000-member run, with different seeds; each
#     time the next sync_run resumes to the exact result.
# (make test: 2 seeds; make test-full: 5; SOAK=1: 30)
my $seeds = $ENV{RS_SOAK} ? 30 : $ENV{RS_FULL} ? 5 : 2;
foreach my $seed (1 .. $seeds)
{
	my $d = sprintf('2020-%02d-%02d', 4 + int(($seed - 1) / 28), 1 + ($seed - 1) % 28);
	my $what = (qw(one-worker all-workers caller one-worker caller))[ ($seed - 1) % 5 ];
	srand($seed);
	my $point = 10000 + int(rand(150000));
	load_day($redis, $d, 200000, 100 + $seed);
	($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '$d')");
	my $r = wait_progress($node, $point);
	ok(defined $r, "seed $seed: the run reached $point members");
	if (defined $r)
	{
		my $pids = $node->safe_psql('postgres', $what eq 'caller'
			? "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT status FROM redis_sync.sync_run%'"
			: "SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync worker'"
			  . ($what eq 'one-worker' ? ' LIMIT 1' : ''));
		kill 'KILL', split /\n/, $pids;
	}
	$h->finish;
	ok(wait_for($node, 'SELECT 1', '1', 60), "seed $seed: the server is up after SIGKILL of $what at $point members");
	is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$d')"), 'succeeded',
		"seed $seed: the run completed");
	expect_tables_match($node, "clicks:daily:$d", $d, "seed $seed: after SIGKILL of $what");
}

# 2. cancel, then terminate, the caller mid-run: the run is cancelled, its
#    workers stop, and it resumes to the exact result.
foreach my $how ('pg_cancel_backend', 'pg_terminate_backend')
{
	# days of their own: 2020-03-02 already holds the 250,000 members of case 1a
	my $d = $how eq 'pg_cancel_backend' ? '2020-03-06' : '2020-03-03';
	load_day($redis, $d, 60000, 11);
	($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '$d')");
	my $r = wait_progress($node, 2000);
	ok(defined $r, "$how: the run made progress");
	signal_query($node, $h, $how, 'SELECT status FROM redis_sync.sync_run%');
	like($$err, qr/canceling statement|terminating connection/, "$how: the caller got the error");
	ok(wait_for($node, "SELECT status FROM redis_sync.run WHERE run_id = $r", 'cancelled', 30),
		"$how: the run is marked cancelled");
	ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('redis_sync worker', 'redis_sync coordinator')", '0', 30),
		"$how: no coordinator or worker is left");
	my $cdone = $node->safe_psql('postgres',
		"SELECT sum(next_offset - start_offset) FROM redis_sync.run_partition WHERE run_id = $r");
	cmp_ok($cdone, '<', 60000, "$how: $cdone of 60000 members were committed before the cancel");
	is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d')"),
		"$r succeeded", "$how: the cancelled run resumed");
	expect_tables_match($node, "clicks:daily:$d", $d, "$how and resume");
}

# 3. a second sync_run of a running job fails at once
load_day($redis, '2020-03-04', 60000, 13);
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '2020-03-04')");
ok(defined wait_progress($node, 1000), 'a run is going');
my ($ret, $o2, $e2) = $node->psql('postgres', "SELECT * FROM redis_sync.sync_run('clicks', '2020-03-04')");
like($e2, qr/job "clicks" is already running/, 'a concurrent run of the job fails');
$h->finish;
is($$out, "succeeded\n", 'the first run still succeeded');
expect_tables_match($node, 'clicks:daily:2020-03-04', '2020-03-04', 'after a refused concurrent run');

# 4. clicks keep arriving on today's key during the run: the run equals its
#    snapshot, and the next run catches up.
my $today = $node->safe_psql('postgres', 'SELECT current_date');
load_day($redis, $today, 60000, 17);
my $key = "clicks:daily:$today";
my $incr = IPC::Run::start([ 'redis-cli', '-p', $redis->{port}, '-r', '40000', '-i', '0.0002',
	'ZINCRBY', $key, '1', 'user:42' ], '>', '/dev/null', '2>', '/dev/null');
my $incr2 = IPC::Run::start([ 'redis-cli', '-p', $redis->{port}, '-r', '40000', '-i', '0.0002',
	'ZADD', $key, 'INCR', '1', 'late-arrival' ], '>', '/dev/null', '2>', '/dev/null');
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks')");
# the copy is complete once the run has its member count
my $snap = wait_value($node,
	"SELECT read_key FROM redis_sync.run WHERE run_date = current_date AND status = 'running' "
	. "AND members IS NOT NULL", 5);
like($snap, qr/^redis_sync:snapshot:\d+:\d+:\d+:\d+$/, 'the run reads a snapshot of today\'s key');
my %snapshot = split /\n/, $redis->cli('ZRANGE', $snap, '0', '-1', 'WITHSCORES');
$h->finish;
is($$out, "succeeded\n", 'the run with concurrent clicks succeeded');
my %synced = split /[|\n]/, $node->safe_psql('postgres',
	"SELECT name, click_count FROM daily_click_count WHERE click_date = current_date");
is(scalar(keys %synced), scalar(keys %snapshot), 'as many rows as the snapshot has members');
my $diff = grep { !defined $synced{$_} || $synced{$_} != $snapshot{$_} } keys %snapshot;
is($diff, 0, 'every row equals the snapshot');
is($redis->cli('EXISTS', $snap), '0', 'the snapshot was dropped');
$incr->finish;
$incr2->finish;
cmp_ok($redis->cli('ZSCORE', $key, 'user:42'), '>', $synced{'user:42'}, 'clicks arrived after the snapshot');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks')"), 'succeeded',
	'the next run succeeded');
expect_tables_match($node, $key, $today, 'the next run caught up with every click');

$node->stop;
done_testing();
