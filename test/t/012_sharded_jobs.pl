# Sharded jobs (#21 item 4): a day spread over 4 keys, daily_key
# 'sc:{%s}:daily:%Y-%m-%d' and total_key 'sc:{%s}:total', each shard's key
# cut into partitions of its own.
#   1. a past day: the run reads every shard, exact row by row;
#   2. today (live): each shard is copied into its own copy, named with the
#      shard key's hash tag; exact, and the copies are dropped; a live run
#      cancelled once copied resumes from its offsets to the exact result;
#      the workers sync the shards copied so far while the next is copied;
#   3. the workers read partitions of different shards at once; a worker
#      terminated mid-run: the run does not succeed; a resume finishes it,
#      each rank counted once, exact;
#   4. one shard's key deleted mid-run: failed, never succeeded; once the
#      key is back, the resumed run is exact;
#   5. a member in two shards' keys: the run fails naming the member and
#      both keys;
#   6. a total_key without %s is one total key for every shard.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $shards = 4;
my $per_shard = 20000;
my $redis = start_redis();
my $node = new_sync_node('sharded', redis => $redis);
$node->safe_psql('postgres', q{
	CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
	CREATE TABLE daily_click_count (name text NOT NULL REFERENCES member,
	  click_date date NOT NULL, click_count bigint NOT NULL,
	  PRIMARY KEY (name, click_date));
	SELECT redis_sync.create_job('sharded', 'redis', 'sc:{%s}:daily:%Y-%m-%d',
	  'sc:{%s}:total', 'member', 'daily_click_count', partitions => 3,
	  workers => 3, chunk_size => 500, day_offset => 0, shards => 4);
});
my $today = $node->safe_psql('postgres', 'SELECT current_date');

# $n members on each shard's key of $date (member u:<shard>:<i>), and their
# totals on the shard's total key.
sub load_shards
{
	my ($date, $n, $seed) = @_;
	for my $s (0 .. $shards - 1)
	{
		$redis->cli('EVAL',
			"for i=1,$n do redis.call('ZADD', KEYS[1], (i * tonumber(ARGV[1]) + $s) % 1009, 'u:$s:' .. i); "
			  . "redis.call('ZADD', KEYS[2], i * 10 + tonumber(ARGV[1]), 'u:$s:' .. i) end",
			'2', "sc:{$s}:daily:$date", "sc:{$s}:total", $seed);
	}
	return;
}

# Both tables equal the shards' keys in Redis, row by row.
sub expect_shards_match
{
	my ($date, $name) = @_;
	my $days = join ',', map { "'sc:{$_}:daily:$date'" } 0 .. $shards - 1;
	my $totals = join ',', map { "'sc:{$_}:total'" } 0 .. $shards - 1;
	my $res = $node->safe_psql('postgres', qq{
		DROP FOREIGN TABLE IF EXISTS chk_day, chk_total;
		CREATE FOREIGN TABLE chk_day (key text, member text, score bigint) SERVER redis;
		CREATE FOREIGN TABLE chk_total (key text, member text, score bigint) SERVER redis;
		SELECT (SELECT count(*) FROM (SELECT * FROM chk_day WHERE key = ANY (ARRAY[$days])) d
		          FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '$date') c
		            ON c.name = d.member
		         WHERE c.click_count IS DISTINCT FROM d.score)
		     + (SELECT count(*) FROM (SELECT * FROM chk_day WHERE key = ANY (ARRAY[$days])) d
		          JOIN (SELECT * FROM chk_total WHERE key = ANY (ARRAY[$totals])) t
		            ON t.member = d.member AND substr(t.key, 1, 6) = substr(d.key, 1, 6)
		          LEFT JOIN member m ON m.name = d.member
		         WHERE m.click_count IS DISTINCT FROM t.score)
		     || ' ' || (SELECT count(*) FROM chk_day WHERE key = ANY (ARRAY[$days]));
	});
	my ($mismatch, $count) = split / /, $res;
	is($mismatch, '0', "$name: tables equal Redis ($count members compared)");
	return $count;
}

# Start sync_run in the background and wait until it committed $min
# members; returns (harness, stdout ref, stderr ref, run id).
sub start_run
{
	my ($date, $min) = @_;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$date')");
	my $run = wait_progress($node, $min);
	return ($h, $out, $err, $run);
}

# 1. A past day.
my $d1 = '2021-03-01';
load_shards($d1, $per_shard, 1);
my ($r, $st) = split / /, $node->safe_psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$d1')");
is($st, 'succeeded', 'past day: the run succeeded');
is($node->safe_psql('postgres', "SELECT members || ' ' || shards FROM redis_sync.run WHERE run_id = $r"),
	($shards * $per_shard) . " $shards", 'past day: the run counted every shard\'s members');
is($node->safe_psql('postgres',
	"SELECT string_agg(shard || ':' || n || ':' || first || '-' || last || ':' || read, ' ' ORDER BY shard) FROM "
	  . "(SELECT shard, count(*) n, min(start_offset) first, max(end_offset) last, sum(members_read) read "
	  . " FROM redis_sync.run_partition WHERE run_id = $r GROUP BY shard) s"),
	join(' ', map { "$_:3:0-" . ($per_shard - 1) . ":$per_shard" } 0 .. $shards - 1),
	'past day: each shard cut into 3 partitions that cover its ranks, each read once');
is($node->safe_psql('postgres',
	"SELECT string_agg(source_key || '=' || read_key || '=' || members, ' ' ORDER BY shard) "
	  . "FROM redis_sync.run_shard WHERE run_id = $r"),
	join(' ', map { "sc:{$_}:daily:$d1=sc:{$_}:daily:$d1=$per_shard" } 0 .. $shards - 1),
	'past day: each shard\'s key is read directly');
expect_shards_match($d1, 'past day');

# 2. Today: each shard's key is copied, into a copy of its own.
load_shards($today, $per_shard, 2);
($r, $st) = split / /, $node->safe_psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$today')");
is($st, 'succeeded', 'live day: the run succeeded');
my $sysid = $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $stamp = $node->safe_psql('postgres',
	"SELECT ((extract(epoch FROM started_at) - 946684800) * 1000000)::bigint FROM redis_sync.run WHERE run_id = $r");
is($node->safe_psql('postgres',
	"SELECT string_agg(read_key || '=' || members, ' ' ORDER BY shard) FROM redis_sync.run_shard WHERE run_id = $r"),
	join(' ', map { "redis_sync:snapshot:{$_}:$sysid:$dboid:$r:$stamp:$_=$per_shard" } 0 .. $shards - 1),
	'live day: each shard read a copy named with its key\'s hash tag');
is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	$shards * $per_shard, 'live day: every member was read once');
expect_shards_match($today, 'live day');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'live day: the copies were dropped');

# 2b. Today again, cancelled once every shard is copied and while the
#     workers are held by a lock on the member table: the resume checks
#     each shard's copy, goes on from the committed offsets, and is exact.
load_shards($today, $per_shard, 6);
my ($h, $out, $err);
($h, $out, $err, $r) = start_run($today, 1000);
ok(defined $r, 'live day, resumed: the run made progress');
my ($lh, $lout, $lerr) = background_psql_query($node,
	'BEGIN; LOCK TABLE member IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(120)');
ok(wait_for($node, "SELECT members FROM redis_sync.run WHERE run_id = $r", $shards * $per_shard, 60),
	'live day, resumed: every shard was copied');
signal_query($node, $h, 'pg_cancel_backend', "SELECT run_id || ' ' || status FROM redis_sync.sync_run%");
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE member%'");
$lh->finish;
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r"), 'cancelled',
	'live day, resumed: the run was cancelled');
cmp_ok($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	'<', $shards * $per_shard, 'live day, resumed: the cancelled run had members left');
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$today')"),
	"$r succeeded", 'live day, resumed: the resumed run succeeded');
is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	$shards * $per_shard, 'live day, resumed: each rank was counted once');
expect_shards_match($today, 'live day, resumed');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'live day, resumed: the copies were dropped');

# 2c. Today, with the copy held still (CLIENT PAUSE WRITE: Redis runs no
#     script, reads go on) once shard 0's partitions are recorded and before
#     shard 3 is copied: the workers sync the shards copied so far meanwhile.
load_shards($today, 30000, 9);
($h, $out, $err) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$today')");
$r = wait_value($node,
	"SELECT r.run_id FROM redis_sync.run r WHERE r.status = 'running' AND r.members IS NULL "
	  . "AND EXISTS (SELECT FROM redis_sync.run_partition p WHERE p.run_id = r.run_id)", 30);
$redis->cli('CLIENT', 'PAUSE', 4000, 'WRITE');
ok($r ne '', 'live day, overlapped: the run recorded partitions while copying');
ok(wait_for($node,
	"SELECT (SELECT members IS NULL FROM redis_sync.run WHERE run_id = $r) "
	  . "AND NOT EXISTS (SELECT FROM redis_sync.run_partition WHERE run_id = $r AND shard = 3) "
	  . "AND (SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r) > 0",
	't', 3),
	'live day, overlapped: members were committed before the last shard was copied');
$redis->cli('CLIENT', 'UNPAUSE');
$h->finish;
is($$out, "$r succeeded\n", 'live day, overlapped: the run succeeded') or diag($$err);
is($node->safe_psql('postgres', "SELECT members FROM redis_sync.run WHERE run_id = $r"), 4 * 30000,
	'live day, overlapped: the run counted every shard\'s copy');
expect_shards_match($today, 'live day, overlapped');

# 3. A worker terminated mid-run, while it writes a chunk (held by a lock
#    on the member table); the run is resumed.
my $d3 = '2021-03-03';
load_shards($d3, $per_shard, 3);
($h, $out, $err, $r) = start_run($d3, 2000);
ok(defined $r, 'worker killed: the run made progress');
($lh, $lout, $lerr) = background_psql_query($node,
	'BEGIN; LOCK TABLE member IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(120)');
ok(wait_for($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync worker' AND wait_event_type = 'Lock'",
	'3', 30), 'worker killed: the three workers wait to write a chunk');
is($node->safe_psql('postgres',
	"SELECT count(DISTINCT shard) FROM redis_sync.run_partition WHERE run_id = $r AND status = 'running'"),
	'3', 'the three workers read three shards at once');
my $victim_pid = wait_value($node,
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync worker' "
	  . "AND wait_event_type = 'Lock' ORDER BY pid LIMIT 1", 30);
isnt($victim_pid, '', 'worker killed: a worker waits to write a chunk');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($victim_pid)");
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE member%'");
$lh->finish;
$h->finish;
like($$err, qr/sync workers exited with 1 partitions unfinished/,
	'worker killed: the run failed, with the terminated worker\'s partition unfinished');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r"), 'failed',
	'worker killed: the run is recorded failed');
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$d3')"),
	"$r succeeded", 'worker killed: the resumed run succeeded');
is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	$shards * $per_shard, 'worker killed: each rank was counted once');
expect_shards_match($d3, 'worker killed, then resumed');

# 4. A shard's key deleted mid-run: the shard of a partition not yet read.
my $d4 = '2021-03-04';
load_shards($d4, $per_shard, 4);
($h, $out, $err, $r) = start_run($d4, 1000);
my $victim = $node->safe_psql('postgres',
	"SELECT shard FROM redis_sync.run_partition WHERE run_id = $r AND status = 'pending' "
	  . "ORDER BY partition_no DESC LIMIT 1");
isnt($victim, '', "key deleted: shard $victim has a partition not yet read");
$redis->cli('DEL', "sc:{$victim}:daily:$d4");
$h->finish;
like($$err, qr/partition \d+ of run $r read \d+ of \d+ ranks/,
	'key deleted: the run failed naming a short partition');
like($$err, qr/Redis key "sc:\{$victim\}:daily:$d4"/, 'key deleted: the error names the shard\'s key');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r"), 'failed',
	'key deleted: the run is recorded failed');
load_shards($d4, $per_shard, 4);
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$d4')"),
	"$r succeeded", 'key deleted: once the key is back, the resumed run succeeds');
is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	$shards * $per_shard, 'key deleted: each rank was counted once');
expect_shards_match($d4, 'key deleted, then resumed');

# 5. A member in two shards.
my $d5 = '2021-03-05';
load_shards($d5, 2000, 5);
$redis->cli('ZADD', "sc:{1}:daily:$d5", '7', 'dup:1');
$redis->cli('ZADD', "sc:{3}:daily:$d5", '9', 'dup:1');
my ($ret, $o, $e) = $node->psql('postgres', "SELECT status FROM redis_sync.sync_run('sharded', '$d5')");
like($e, qr/member "dup:1" is in Redis keys "sc:\{(1|3)\}:daily:$d5" and "sc:\{(1|3)\}:daily:$d5"/,
	'duplicate: the error names the member and both keys');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run ORDER BY run_id DESC LIMIT 1"), 'failed',
	'duplicate: the run is recorded failed');
$redis->cli('ZREM', "sc:{3}:daily:$d5", 'dup:1');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('sharded', '$d5')"), 'succeeded',
	'duplicate: once the member is in one shard, the run succeeds');
is($node->safe_psql('postgres', "SELECT click_count FROM daily_click_count WHERE name = 'dup:1' AND click_date = '$d5'"),
	'7', 'duplicate: the member has its one shard\'s count');

# 6. One total key for all shards: total_key without %s.
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('sharded', total_key => 'sc:alltotal')");
my $d6 = '2021-03-06';
load_shards($d6, 2000, 7);
$redis->cli('EVAL', "for s=0,3 do for i=1,2000 do redis.call('ZADD', KEYS[1], s * 100000 + i, 'u:' .. s .. ':' .. i) end end",
	'1', 'sc:alltotal');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('sharded', '$d6')"), 'succeeded',
	'one total key: the run succeeded');
is($node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE chk_all (member text, score bigint) SERVER redis OPTIONS (key 'sc:alltotal');
	SELECT count(*) FILTER (WHERE m.click_count IS DISTINCT FROM t.score) || ' ' || count(*)
	  FROM chk_all t LEFT JOIN member m ON m.name = t.member}),
	'0 8000', 'one total key: every member\'s total is the one key\'s score');

done_testing();
