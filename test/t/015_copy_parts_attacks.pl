# Attacks on a live day's copy in parts (redis_sync.copy_key_members), with
# the extension not preloaded, so that the setting is reloadable:
#   1. the setting reloaded (1000 to 2000) after the run's coordinator
#      started and before its workers did: the workers read the parts as
#      the coordinator cut them, and the run is exact; set back, the next
#      sync_run is exact too; a run that failed after its copy was
#      complete, with the setting then reloaded, is not resumed: the next
#      sync_run starts anew, exact;
#   2. a sharded live day whose shards' copies end at a part's end (2000
#      members), inside a part (2500, 700) or hold nothing: the workers
#      switch between the shards' parts, and the run is exact and leaves no
#      key of its copies behind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $redis = start_redis();
my $node = new_sync_node('partsatk', redis => $redis,
	conf => "redis_sync.copy_key_members = 1000\n");
setup_job($node, partitions => 11, workers => 3, chunk_size => 300);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";

# the keys of copies that exist now
sub snapshot_keys
{
	return scalar grep { $_ ne '' } split /\n/, $redis->cli('KEYS', 'redis_sync:snapshot:*');
}

# set copy_key_members in postgresql.conf and wait until the postmaster
# (and so every process it starts from now on) has it
sub set_key_members
{
	my ($n) = @_;
	$node->append_conf('postgresql.conf', "redis_sync.copy_key_members = $n\n");
	$node->reload;
	return wait_for($node, 'SHOW redis_sync.copy_key_members', $n, 60);
}

# 1. The setting reloaded between the coordinator's start and the workers'.
# Redis holds writes (CLIENT PAUSE WRITE), so the coordinator waits at the
# start of its copy while the setting changes; the partitions of ranks 2000
# to 2999 and 4000 to 4999 would read other parts' ranks in full with 2000.
load_day($redis, $today, 5500, 1);
$redis->cli('CLIENT', 'PAUSE', '8000', 'WRITE');
my ($h, $out, $err) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
my $run = wait_value($node, "SELECT run_id FROM redis_sync.run WHERE status = 'running'", 30);
ok($run ne '', "reloaded mid-run: run $run started");
ok(set_key_members(2000), 'reloaded mid-run: copy_key_members is 2000 for new processes');
is(snapshot_keys(), 0, 'reloaded mid-run: the reload came before the copy began');
$h->finish;
is($$out, "$run succeeded\n", 'reloaded mid-run: the run succeeded') or diag($$err);
is($node->safe_psql('postgres',
	"SELECT members || ' ' || (SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $run) "
	  . "FROM redis_sync.run WHERE run_id = $run"),
	'5500 5500', 'reloaded mid-run: every rank of the copy read once');
expect_tables_match($node, $key, $today, 'reloaded mid-run');

# The operator sets it back; a run left failed by the above must not be
# resumed into a success with wrong rows (partitions of ranks 2000 to 2999
# and 4000 to 4999 that read other ranks in full, never read again).
ok(set_key_members(1000), 'set back: copy_key_members is 1000 again');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'set back: the next sync_run succeeded');
expect_tables_match($node, $key, $today, 'set back');
is(snapshot_keys(), 0, 'set back: no key of a copy is left');

# 1b. A run that failed after its copy of 1000-member parts was complete (a
# member that does not fit bigint sorts last); the setting is then reloaded
# to 2000: the next sync_run finds parts of other sizes and starts anew.
$redis->cli('ZADD', $key, '1000000.5', 'bad');
$redis->cli('ZADD', 'clicks:total', '1', 'bad');
$node->psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
my $failed = $node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run");
is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.run WHERE run_id = $failed"),
	'failed 5501', 'reloaded before a resume: the run failed after its copy of 6 parts was complete');
$redis->cli('ZREM', $key, 'bad');
ok(set_key_members(2000), 'reloaded before a resume: copy_key_members is 2000');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded', 'reloaded before a resume: the next sync_run succeeded');
cmp_ok($node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run"), '>', $failed,
	'reloaded before a resume: it started a new run');
like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $failed"),
	qr/holds 4000 members, and the run was cut from 5501/, 'reloaded before a resume: the old run says why (its parts 0 to 3 counted for 2000 a part)');
expect_tables_match($node, $key, $today, 'reloaded before a resume');
is(snapshot_keys(), 0, 'reloaded before a resume: no key of a copy is left');
ok(set_key_members(1000), 'copy_key_members is 1000 again');

# 2. A sharded live day, shards of 2000, 2500, 700 and no members.
$node->safe_psql('postgres', q{
	SELECT redis_sync.create_job('sharded', 'redis', 'sc:{%s}:daily:%Y-%m-%d',
	  'sc:{%s}:total', 'member', 'daily_click_count', partitions => 3,
	  workers => 2, chunk_size => 400, day_offset => 0, shards => 4);
});
my @sizes = (2000, 2500, 700, 0);
for my $s (0 .. $#sizes)
{
	next if $sizes[$s] == 0;
	$redis->cli('EVAL',
		"for i=1,$sizes[$s] do redis.call('ZADD', KEYS[1], (i * 7 + $s) % 1009, 'u:$s:' .. i); "
		  . "redis.call('ZADD', KEYS[2], i * 10, 'u:$s:' .. i) end",
		'2', "sc:{$s}:daily:$today", "sc:{$s}:total");
}
is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.sync_run('sharded', '$today')"),
	'succeeded 5200', 'sharded: the run succeeded');
my $srun = $node->safe_psql('postgres', "SELECT max(run_id) FROM redis_sync.run");
is($node->safe_psql('postgres',
	"SELECT string_agg(shard || ':' || members, ' ' ORDER BY shard) FROM redis_sync.run_shard WHERE run_id = $srun"),
	'0:2000 1:2500 2:700 3:0', 'sharded: each shard copied whole');
is($node->safe_psql('postgres',
	"SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $srun"),
	'5200', 'sharded: every rank read once');
my $days = join ',', map { "'sc:{$_}:daily:$today'" } 0 .. $#sizes;
is($node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE sc_day (key text, member text, score bigint) SERVER redis;
	SELECT count(*) FROM (SELECT * FROM sc_day WHERE key = ANY (ARRAY[$days])) d
	  FULL JOIN (SELECT * FROM daily_click_count
	              WHERE click_date = '$today' AND name LIKE 'u:%') c
	    ON c.name = d.member
	 WHERE c.click_count IS DISTINCT FROM d.score}),
	'0', 'sharded: the daily table equals the shards\' keys, row by row');
is(snapshot_keys(), 0, 'sharded: no key of a copy is left');

done_testing();
