# A live day's copy in several keys (#18 item 1): with
# redis_sync.copy_key_members = 1000, a copy of tens of thousands of members
# spreads over tens of keys, as a copy of millions does over a few with the
# default of a million.
#   1. under two clients incrementing members (a fifth of them new), a run
#      of 20,000 members writes every member present at its start with a
#      count at least as new, and leaves no key of its copy behind;
#   2. chunks of 300 and partitions that do not end at a part's end: a
#      quiet live day is synced exactly (each chunk ends at its part's end);
#   3. a run that failed after its copy was complete, whose copy then lost a
#      part, or had members moved between parts (the same number in all),
#      is not resumed from it: the next sync_run starts a new run, exact.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $redis = start_redis();
my $node = new_sync_node('parts', redis => $redis, conf => "redis_sync.copy_key_members = 1000\n");
setup_job($node, partitions => 7, workers => 3, chunk_size => 300);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";
is($node->safe_psql('postgres', 'SHOW redis_sync.copy_key_members'), '1000', 'parts of 1000 members');

# the keys of the run's copy that exist now
sub copy_keys
{
	my ($copy) = @_;
	my @keys = grep { $_ eq $copy || index($_, "$copy:") == 0 }
	  split /\n/, $redis->cli('KEYS', 'redis_sync:snapshot:*');
	return scalar @keys;
}

# 1. Under increments: every member present at the start, at least as new.
my $n = 20000;
load_day($redis, $today, $n, 1);
$redis->cli('COPY', $key, 'at_start');
my @load;
for my $c (1 .. 2)
{
	push @load, IPC::Run::start(
		[ 'redis-benchmark', '-p', $redis->{port}, '-c', '1', '-P', '4', '-n', '1000000000',
		  '-r', $n * 5 / 4, '-q', 'ZINCRBY', $key, '1', 'user:__rand_int__' ],
		'<', \undef, '>', '/dev/null', '2>', '/dev/null');
}
my ($h, $out, $err) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
my $run = wait_value($node,
	"SELECT r.run_id FROM redis_sync.run r WHERE r.status = 'running' AND r.read_key IS NOT NULL", 30);
my $copy = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $run");
my $most = 0;
while (1)
{
	my $k = copy_keys($copy);
	$most = $k if $k > $most;
	last if $node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $run") ne 'running';
}
$h->finish;
$_->kill_kill for @load;
is($$out, "$run succeeded\n", 'under increments: the run succeeded') or diag($$err);
my $members = $node->safe_psql('postgres', "SELECT members FROM redis_sync.run WHERE run_id = $run");
cmp_ok($members, '>=', $n, "under increments: the copy held $members members");
cmp_ok($most, '>=', 15, "under increments: the copy spread over $most keys");
$node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE at_start (member text, score bigint) SERVER redis OPTIONS (key 'at_start');
});
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM at_start s
	  LEFT JOIN daily_click_count d ON d.name = s.member AND d.click_date = '$today'
	 WHERE d.click_count IS NULL OR d.click_count < s.score}),
	'0', "under increments: each of the $n members present at the start written, at least as new");
is($node->safe_psql('postgres',
	"SELECT sum(members_read) = $members FROM redis_sync.run_partition WHERE run_id = $run"),
	't', 'under increments: every rank of the copy read once');
is(copy_keys($copy), 0, 'under increments: no key of the copy is left');

# 2. A quiet live day: exact, with chunks that straddle no part.
$redis->cli('DEL', $key);
load_day($redis, $today, 5500, 2);
$node->safe_psql('postgres', "DELETE FROM daily_click_count WHERE click_date = '$today'");
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)"),
	'succeeded', 'quiet day: the run succeeded');
expect_tables_match($node, $key, $today, 'quiet day in 6 parts');

# 3. A run that fails after its copy is complete (a member that does not fit
# bigint sorts last), then its copy changes; the next sync_run starts anew.
sub failed_after_copy
{
	my ($seed) = @_;
	$redis->cli('DEL', $key);
	load_day($redis, $today, 5500, $seed);
	$redis->cli('ZADD', $key, '1000000.5', 'bad');
	$redis->cli('ZADD', 'clicks:total', '1', 'bad');
	$node->psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
	my $r = $node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run");
	my $c = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $r");
	is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.run WHERE run_id = $r"),
		'failed 5501', "seed $seed: the run failed after its copy of 6 keys was complete");
	$redis->cli('ZREM', $key, 'bad');
	return ($r, $c);
}

sub resumed_anew
{
	my ($r, $name) = @_;
	is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
		'succeeded', "$name: the next sync_run succeeded");
	cmp_ok($node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run"), '>', $r,
		"$name: it started a new run");
	like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $r"),
		qr/snapshot/, "$name: the old run says why it was not resumed");
	expect_tables_match($node, $key, $today, $name);
}

my ($r3, $c3) = failed_after_copy(3);
is($redis->cli('DEL', "$c3:2"), '1', 'a part lost: the copy\'s third key deleted');
resumed_anew($r3, 'a part lost');
is(copy_keys($c3), 0, 'a part lost: the parts after it were dropped too');

my ($r4, $c4) = failed_after_copy(4);
my ($moved) = split /\n/, $redis->cli('ZRANGE', "$c4:1", '0', '0');
$redis->cli('ZREM', "$c4:1", $moved);
$redis->cli('ZADD', "$c4:2", '1', 'intruder');
resumed_anew($r4, 'members moved between parts');
is($node->safe_psql('postgres', "SELECT count(*) FROM daily_click_count WHERE name = 'intruder'"),
	'0', 'members moved between parts: nothing read from the changed copy');

done_testing();
