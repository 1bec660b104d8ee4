# Live keys: a sync of today's key while clients keep incrementing it.
#
# Today's key is copied a page at a time (src/zset_snapshot.c) instead of
# with one long COPY.  The run must then write every member that the key
# held when it started, each with a count at least as new as its score at
# the start; brand-new members may or may not be in it, and the next run
# catches up with everything.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use RedisSyncTest;
use Test::More;

# (make test: 200,000 members; make test-full: 1,000,000)
my $n = $ENV{RS_FULL} ? 1000000 : 200000;
my $redis = start_redis();
my $node = new_sync_node('live', redis => $redis);
setup_job($node, partitions => 6, workers => 2, chunk_size => 1000);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";

# Members are named as redis-benchmark writes __rand_int__ (12 digits).
for (my $start = 0; $start < $n; $start += 100000)
{
	my $end = $start + 99999 < $n ? $start + 99999 : $n - 1;
	$redis->cli('EVAL',
		"for i=$start,$end do local m = string.format('m%012d', i) "
		  . "redis.call('ZADD', KEYS[1], i % 997, m) redis.call('ZADD', KEYS[2], i, m) end",
		'2', $key, 'clicks:total');
}
is($redis->cli('ZCARD', $key), $n, "$n members on today's key");

# What the key held before the run started.
$node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE live_day (member text, score bigint) SERVER redis OPTIONS (key '$key');
	CREATE TABLE at_start AS SELECT member, score FROM live_day;
});

# Two clients increment random members, a fifth of them brand new, until
# the run ends.
my @clients;
foreach my $c (1 .. 2)
{
	push @clients, IPC::Run::start(
		[ 'redis-benchmark', '-p', $redis->{port}, '-n', '100000000', '-r', int($n * 1.25),
		  '-c', '1', '-P', '4', '-q', 'ZINCRBY', $key, '1', 'm__rand_int__' ],
		'<', \undef, '>', '/dev/null', '2>', '/dev/null');
}
my ($h, $out, $err) = background_psql_query($node,
	"SELECT status FROM redis_sync.sync_run('clicks', '$today')");
$h->finish;
my $during = $redis->cli('ZCARD', $key);
$_->kill_kill foreach @clients;
is($$out, "succeeded\n", 'the run of the live key succeeded') or diag($$err);
cmp_ok($during, '>', $n, "the clients added members during the run ($during)");
like($node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_date = '$today'"),
	qr/^redis_sync:snapshot:/, 'the run read a copy of the key');

# Every member present at the start was written, with a count at least as
# new as its score at the start.
is($node->safe_psql('postgres', qq{
	SELECT count(*) FILTER (WHERE d.name IS NULL) || ' missing, '
	    || count(*) FILTER (WHERE d.click_count < s.score) || ' older'
	  FROM at_start s
	  LEFT JOIN daily_click_count d ON d.name = s.member AND d.click_date = '$today'}),
	'0 missing, 0 older', 'every member of the start was written, none older than at the start');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM daily_click_count d JOIN live_day l ON l.member = d.name
	 WHERE d.click_date = '$today' AND d.click_count > l.score}),
	'0', 'no count is newer than Redis');

# With the clients stopped, the next run catches up with every increment.
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'the next run succeeded');
expect_tables_match($node, $key, $today, 'after the catch-up run');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'no snapshot is left in Redis');

done_testing();
