# The scheduler never loses a day (16.5, 16.6): a scheduled run that fails
# before it could read anything (Redis down) leaves a run row with its
# error, is retried with a doubling delay, and is resumed to the exact
# result once Redis is back; a date that falls due while the job is busy
# with another date is owed, not skipped, and runs when the job is free.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $redis = start_redis();
my $node = new_sync_node('retry', redis => $redis, conf => qq{
shared_preload_libraries = 'redis_sync'
redis_sync.database = 'postgres'
});
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync scheduler'", '1', 30),
	'the scheduler is running');

# Today's data, saved to disk; then Redis goes down.
my $today = $node->safe_psql('postgres', 'SELECT current_date');
load_day($redis, $today, 20000, 3);
$redis->cli('SHUTDOWN', 'SAVE');
ok(!$redis->ping, 'Redis is down');

# 1. Scheduled runs with Redis down: a run row with the error, retried.
setup_job($node, partitions => 4, workers => 2, chunk_size => 1000, schedule => '3 seconds');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', max_retries => 10, retry_delay => '1 second')");
my $run = wait_value($node, "SELECT run_id FROM redis_sync.run WHERE status = 'failed' AND error LIKE 'could not connect%'", 30);
ok($run ne '', "a scheduled run with Redis down left run $run with its error");
# From now on only retries start it (the next occurrence is a minute away).
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', schedule => '59 seconds')");
ok(wait_for($node, "SELECT attempts >= 3 FROM redis_sync.run WHERE run_id = $run", 't', 30),
	'the scheduler retried the failed run');
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.run WHERE run_date = '$today' AND status <> 'skipped'"),
	'1', 'every attempt is recorded on that one run');
is($node->safe_psql('postgres', "SELECT status = 'running' OR (retry_at > finished_at + interval '1 second' AND error LIKE 'could not connect%') FROM redis_sync.run WHERE run_id = $run"),
	't', 'the failed run has its error and a retry time more than a second after it failed');

# 2. Redis is back: the next retry resumes the run, which succeeds exactly.
$redis->start;
ok(wait_for($node, "SELECT status || ' ' || trigger FROM redis_sync.run WHERE run_id = $run", 'succeeded resume', 60),
	'a retry resumed the run once Redis was back, and it succeeded');
cmp_ok($node->safe_psql('postgres', "SELECT attempts FROM redis_sync.run WHERE run_id = $run"), '>=', 4,
	'it took at least four attempts');
expect_tables_match($node, "clicks:daily:$today", $today, 'scheduled run retried until Redis was back');

# 3. A date due while the job is busy with another date is owed, not
#    skipped: the manual backfill of a past day runs while today's
#    occurrence falls due; today runs when the backfill ends.
load_day($redis, '2020-06-01', 120000, 5);
load_day($redis, $today, 20000, 6);    # today's scores change
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', chunk_size => 100, workers => 1)");
my ($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '2020-06-01')");
ok(defined wait_progress($node, 1000), 'the backfill is running');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', schedule => '1 seconds')");
my $owed = wait_value($node, "SELECT run_id FROM redis_sync.run WHERE run_date = '$today' AND status = 'interrupted' AND retry_at IS NOT NULL", 30);
ok($owed ne '', "today's occurrence during the backfill is owed as run $owed");
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', schedule => '59 seconds')");
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.run WHERE run_date = '$today' AND status = 'skipped'"),
	'0', 'it was not recorded as skipped');
$h->finish;
is($$out, "succeeded\n", 'the backfill succeeded');
ok(wait_for($node, "SELECT status FROM redis_sync.run WHERE run_id = $owed", 'succeeded', 60),
	'the owed run of today ran once the job was free');
expect_tables_match($node, "clicks:daily:$today", $today, 'owed date after the backfill');
expect_tables_match($node, 'clicks:daily:2020-06-01', '2020-06-01', 'the backfill');

$node->stop;
done_testing();
