# Edge cases of the paged copy of a live key (#18), found in review:
#   1. a run that fails before its copy is complete cannot be resumed; the
#      next run starts anew.  The old run's copy is dropped then (it would
#      otherwise stay in Redis for 7 days, one more for every failed
#      attempt), and the new run takes over the old one's attempts, so that
#      a scheduled run that keeps failing mid-copy runs out of retries.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

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

done_testing();
