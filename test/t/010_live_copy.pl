# The copy of a live key is read while it is being made (#18 item 6), and
# a run whose copy was cut short never succeeds (#18 item 3).
#
# The coordinator copies today's key a page at a time; each partition is
# recorded once the copy has passed its end, so the workers sync the first
# partitions while the rest is still being copied.  The tests hold the copy
# still with CLIENT PAUSE WRITE (Redis then runs no script, while reads go
# on), so that each case happens at a known point of the copy:
#   1. during the pause, the workers commit members while the run has no
#      member count yet (the copy is not complete); the run ends exact;
#   2. a run cancelled mid-copy cannot be resumed (its later partitions were
#      never cut): the next sync_run says so, starts a new run, and is exact;
#   3. the copy deleted mid-copy: the run fails naming the loss, never
#      succeeds; the next sync_run is exact;
#   4. Redis at maxmemory with a volatile-* policy evicts the copy (the only
#      key with an expiry): the run fails, never succeeds; exact once Redis
#      has room;
#   5. Redis restarts mid-copy (with its data): the coordinator retries the
#      copy where it was, and the run succeeds, exact.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep);

my $n = 100000;
my $redis = start_redis(extra => [ '--appendonly', 'yes' ]);
my $node = new_sync_node('copy', redis => $redis);
setup_job($node, partitions => 10, workers => 2, chunk_size => 1000);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";

# Start a sync of today in the background and wait until its copy has
# recorded a partition and is still going; then pause Redis's writes for
# $pause ms.  Returns (harness, stdout ref, stderr ref, run id, copy key).
sub start_paused
{
	my ($pause) = @_;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
	my $run = wait_value($node,
		"SELECT r.run_id FROM redis_sync.run r WHERE r.status = 'running' AND r.members IS NULL "
		  . "AND EXISTS (SELECT FROM redis_sync.run_partition p WHERE p.run_id = r.run_id)", 30);
	$redis->cli('CLIENT', 'PAUSE', $pause, 'WRITE');
	my $copy = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $run");
	return ($h, $out, $err, $run, $copy);
}

# 1. The workers sync the copied partitions while the copy goes on.
load_day($redis, $today, $n, 1);
my ($h, $out, $err, $run, $copy) = start_paused(4000);
ok($run ne '', 'the run recorded a partition while its copy was going');
like($copy, qr/^redis_sync:snapshot:/, 'the run reads a copy of today\'s key');
ok(wait_for($node,
	"SELECT (SELECT members IS NULL FROM redis_sync.run WHERE run_id = $run) "
	  . "AND (SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $run) > 0",
	't', 3),
	'members were committed before the copy was complete');
my $copied_during = $redis->cli('ZCARD', $copy);
cmp_ok($copied_during, '<', $n, "the copy was incomplete meanwhile ($copied_during of $n)");
$redis->cli('CLIENT', 'UNPAUSE');
$h->finish;
is($$out, "$run succeeded\n", 'the run succeeded') or diag($$err);
is($node->safe_psql('postgres', "SELECT members FROM redis_sync.run WHERE run_id = $run"), $n,
	'its member count is the size of the complete copy');
is($node->safe_psql('postgres',
	"SELECT count(*) || ' ' || min(start_offset) || ' ' || max(end_offset) || ' ' || sum(members_read) "
	  . "FROM redis_sync.run_partition WHERE run_id = $run"),
	"10 0 " . ($n - 1) . " $n", 'ten partitions cover every rank of the copy, each read once');
expect_tables_match($node, $key, $today, 'read during the copy');
is($redis->cli('EXISTS', $copy), '0', 'the copy was dropped');

# 2. Cancelled mid-copy: the next sync_run cannot resume it, starts anew.
load_day($redis, $today, $n, 2);
($h, $out, $err, $run, $copy) = start_paused(20000);
signal_query($node, $h, 'pg_cancel_backend', 'SELECT run_id || % FROM redis_sync.sync_run(%');
$redis->cli('CLIENT', 'UNPAUSE');
like($$err, qr/cancel/, 'cancelled mid-copy: the caller got the error');
is($node->safe_psql('postgres', "SELECT status || ' ' || (members IS NULL) FROM redis_sync.run WHERE run_id = $run"),
	'cancelled true', 'cancelled mid-copy: the run is cancelled, with no member count');
my ($ret, $o) = $node->psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
my ($rn, $st) = split / /, $o;
ok($rn > $run && $st eq 'succeeded', "cancelled mid-copy: the next sync_run started run $rn and succeeded");
like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $run"),
	qr/was not complete/, 'cancelled mid-copy: the old run says its copy was not complete');
expect_tables_match($node, $key, $today, 'cancelled mid-copy, then a new run');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'cancelled mid-copy: no copy is left');

# 3. The copy is deleted mid-copy: failed, never succeeded.
load_day($redis, $today, $n, 3);
($h, $out, $err, $run, $copy) = start_paused(1000);
# queued behind the pause; runs when it ends, between two pages
my $del = IPC::Run::start([ 'redis-cli', '-p', $redis->{port}, 'DEL', $copy ],
	'>', '/dev/null', '2>', '/dev/null');
$h->finish;
$del->finish;
like($$err, qr/Redis key "\Q$key\E" lost members while it was being copied/,
	'copy deleted mid-copy: the run failed naming the loss');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $run"), 'failed',
	'copy deleted mid-copy: the run is recorded failed');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'copy deleted mid-copy: the next sync_run succeeded');
expect_tables_match($node, $key, $today, 'copy deleted mid-copy, then a new run');

# 4. Eviction: maxmemory a little above what Redis holds, volatile-lru.
load_day($redis, $today, $n, 4);
my ($used) = $redis->cli('INFO', 'memory') =~ /used_memory:(\d+)/;
my ($evicted0) = $redis->cli('INFO', 'stats') =~ /evicted_keys:(\d+)/;
$redis->cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
$redis->cli('CONFIG', 'SET', 'maxmemory', $used + 2 * 1024 * 1024);
($ret, $o) = $node->psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')");
my ($evicted1) = $redis->cli('INFO', 'stats') =~ /evicted_keys:(\d+)/;
$redis->cli('CONFIG', 'SET', 'maxmemory', '0');
cmp_ok($evicted1, '>', $evicted0, 'eviction: Redis evicted the copy during the run');
isnt($o, 'succeeded', 'eviction: the run did not succeed');
like($node->safe_psql('postgres', "SELECT status || ' ' || error FROM redis_sync.run ORDER BY run_id DESC LIMIT 1"),
	qr/^failed .*(lost members|maxmemory|read \d+ of \d+ ranks)/, 'eviction: the run is recorded failed, naming the loss');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'eviction: once Redis has room, the next sync_run succeeded');
expect_tables_match($node, $key, $today, 'evicted, then a new run');

# 5. Redis restarts mid-copy; its append-only file keeps the key and the copy.
# The file is rewritten first (an RDB preamble), so that Redis loads it
# within the copy's retries: the cases before left a long log of commands.
load_day($redis, $today, $n, 5);
$redis->cli('BGREWRITEAOF');
for (1 .. 600)
{
	my $p = $redis->cli('INFO', 'persistence');
	last if $p =~ /aof_rewrite_in_progress:0/ && $p =~ /aof_rewrite_scheduled:0/;
	usleep(50_000);
}
($h, $out, $err, $run, $copy) = start_paused(5000);
$redis->cli('SHUTDOWN');
usleep(500_000);
$redis->start;
$h->finish;
is($$out, "$run succeeded\n", 'Redis restart mid-copy: the run went on and succeeded') or diag($$err);
like(slurp_file($node->logfile), qr/run $run: copying Redis key "\Q$key\E": .*retrying in \d+ ms/,
	'Redis restart mid-copy: the coordinator retried the copy');
expect_tables_match($node, $key, $today, 'Redis restart mid-copy');

done_testing();
