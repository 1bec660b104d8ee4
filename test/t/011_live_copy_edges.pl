# Edge cases of the paged copy of a live key (#18), found in review:
#   1. a run that fails before its copy is complete cannot be resumed; the
#      next run starts anew.  The old run's copy is dropped then (it would
#      otherwise stay in Redis for 7 days, one more for every failed
#      attempt), and the new run takes over the old one's attempts, so that
#      a scheduled run that keeps failing mid-copy runs out of retries;
#   2. a member at the top of the key that takes clicks all the time (the
#      leader of a busy key) does not keep the copy going: the script that
#      reaches the end of the key completes the copy, rather than another
#      script finding nothing past the position (which the leader, moving
#      past it between two scripts, could put off again and again);
#   3. Redis stalls longer than command_timeout mid-copy: the coordinator
#      gives up on a script that Redis then runs all the same, and sends it
#      again on a new connection; the copy must count the members that the
#      first one added (counted from ZADD's reply, they were lost, and the
#      run failed with "lost members" though nothing was lost);
#   4. a read_key edited by hand in a failed run is not read on resume.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep);

my $n = 100000;
my $redis = start_redis();
my $node = new_sync_node('edges', redis => $redis);
setup_job($node, partitions => 10, workers => 2, chunk_size => 1000);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";

# 1. A member whose score does not fit the bigint column fails partition 0
# while the copy is held still (CLIENT PAUSE WRITE), so the run fails
# before its copy is complete.
load_day($redis, $today, $n, 1);
$redis->cli('ZADD', $key, '0.5', 'bad');
$redis->cli('ZADD', 'clicks:total', '1', 'bad');
my ($h, $out, $err) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
my $run = wait_value($node,
	"SELECT r.run_id FROM redis_sync.run r WHERE r.status = 'running' AND r.members IS NULL "
	  . "AND EXISTS (SELECT FROM redis_sync.run_partition p WHERE p.run_id = r.run_id)", 30);
$redis->cli('CLIENT', 'PAUSE', '3000', 'WRITE');
$h->finish;
like($$err, qr/invalid input syntax for type bigint: "0.5"/, 'failed mid-copy: the caller got the error');
is($node->safe_psql('postgres',
	"SELECT status || ' ' || (members IS NULL) || ' ' || attempts FROM redis_sync.run WHERE run_id = $run"),
	'failed true 1', 'failed mid-copy: the run failed before its copy was complete');
my $copy = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $run");
is($redis->cli('EXISTS', $copy), '1', 'failed mid-copy: its incomplete copy is kept meanwhile');

# The next sync_run cannot resume it and starts a new run (which fails on
# the same member).
$node->psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $run"),
	qr/was not complete/, 'restarted: the old run says its copy was not complete');
my $next = $node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run");
cmp_ok($next, '>', $run, "restarted: run $next replaced run $run");
is($redis->cli('EXISTS', $copy), '0', 'restarted: the old run\'s copy was dropped');
is($node->safe_psql('postgres', "SELECT attempts FROM redis_sync.run WHERE run_id = $next"), '2',
	'restarted: the new run took over the old run\'s attempts');

# Without the bad member, the next run is exact and leaves no copy behind.
$redis->cli('ZREM', $key, 'bad');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)"),
	'succeeded', 'the bad member removed: the next sync_run succeeded');
expect_tables_match($node, $key, $today, 'after the restarts');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'no copy is left');

# 2. A hot leader: increments on the top member during the whole copy.
my $m = 5000;
$redis->cli('DEL', $key);
load_day($redis, $today, $m, 2);
$redis->cli('ZADD', $key, '5000', 'zz-leader');
$redis->cli('ZADD', 'clicks:total', '5000', 'zz-leader');
my $bench = IPC::Run::start(
	[ 'redis-benchmark', '-p', $redis->{port}, '-c', '4', '-P', '16', '-n', '1000000000', '-q',
	  'ZINCRBY', $key, '1', 'zz-leader' ],
	'<', \undef, '>', '/dev/null', '2>', '/dev/null');
for (1 .. 600)
{
	last if $redis->cli('ZSCORE', $key, 'zz-leader') > 10000;
	usleep(50_000);
}
cmp_ok($redis->cli('ZSCORE', $key, 'zz-leader'), '>', 10000, 'hot leader: the increments go on');
$redis->cli('CONFIG', 'RESETSTAT');
my ($ret, $o, $e) = $node->psql('postgres',
	"SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
my ($evals) = $redis->cli('INFO', 'commandstats') =~ /cmdstat_eval:calls=(\d+)/;
$bench->kill_kill;
is($o, 'succeeded', 'hot leader: the run succeeded') or diag($e);
# 5,001 members: 25 pages of 200 and a short one with the leader; then,
# before the run succeeds, one script for the copy's key and one for the key
# after it check that the complete copy still holds them (rs_copy_changed)
is($evals, 28, 'hot leader: the copy took one script per page, none after the end');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM daily_click_count WHERE click_date = '$today' "
	  . "AND (name = 'zz-leader' AND click_count > 10000 "
	  . "  OR name LIKE 'user:%' AND substr(name, 6)::int <= $m)"),
	$m + 1, 'hot leader: every member present at the start was written, the leader with a newer count');

# 3. A stall of Redis (a 3 s read-only script) mid-copy, command_timeout 1 s.
my $big = 300000;
$redis->cli('DEL', $key);
load_day($redis, $today, $big, 3);
# the leader of case 2 is no longer in the day's key
$node->safe_psql('postgres', "DELETE FROM daily_click_count WHERE name = 'zz-leader'");
$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (SET command_timeout '1000')");
my ($h3, $out3, $err3) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
my $run3 = wait_value($node,
	"SELECT r.run_id FROM redis_sync.run r WHERE r.status = 'running' AND r.members IS NULL "
	  . "AND r.read_key IS NOT NULL", 30);
my $copy3 = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $run3");
my $at_stall = $redis->cli('EVAL_RO',
	"local c = redis.call('ZCARD', KEYS[1]) local t0 = redis.call('TIME') "
	  . "while true do local t = redis.call('TIME') "
	  . "if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 3000000 then break end end return c",
	'1', $copy3);
$h3->finish;
cmp_ok($at_stall, '<', $big, "stall: Redis stalled mid-copy ($at_stall of $big copied)");
is($$out3, "$run3 succeeded\n", 'stall: the run went on and succeeded') or diag($$err3);
like(slurp_file($node->logfile), qr/run $run3: copying Redis key "\Q$key\E": .*retrying in \d+ ms/,
	'stall: the coordinator sent a copy script again');
expect_tables_match($node, $key, $today, 'stall mid-copy');
$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (SET command_timeout '10000')");

# 4. A failed run whose copy is complete is resumed from its copy, by the
# read_key recorded in the run.  A read_key edited by hand (a key the run did
# not make) is not read: sync_run starts a new run, which copies the day
# again.  The bad member sorts last, in the partition recorded only once the
# copy is complete, so the run fails after its copy is whole.
$redis->cli('DEL', $key);
load_day($redis, $today, 3000, 4);
$redis->cli('ZADD', $key, '1000000.5', 'bad');
$redis->cli('ZADD', 'clicks:total', '1', 'bad');
$node->psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
my $run4 = $node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run");
is($node->safe_psql('postgres',
	"SELECT status || ' ' || members FROM redis_sync.run WHERE run_id = $run4"),
	'failed 3001', 'edited read_key: the run failed after its copy was complete');
$redis->cli('ZADD', 'clicks:elsewhere', '7', 'intruder');
$node->safe_psql('postgres',
	"UPDATE redis_sync.run SET read_key = 'clicks:elsewhere' WHERE run_id = $run4");
$redis->cli('ZREM', $key, 'bad');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'edited read_key: the next sync_run succeeded');
cmp_ok($node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run"), '>', $run4,
	'edited read_key: it started a new run rather than resume from the edited key');
is($node->safe_psql('postgres', "SELECT count(*) FROM daily_click_count WHERE name = 'intruder'"),
	'0', 'edited read_key: nothing was read from the edited key');
$node->safe_psql('postgres', "DELETE FROM daily_click_count WHERE click_date = '$today' "
	  . "AND substr(name, 6)::int > 3000");
expect_tables_match($node, $key, $today, 'after an edited read_key');
is($redis->cli('EXISTS', 'clicks:elsewhere'), '1', 'edited read_key: the edited key was not dropped');

done_testing();
