# Attacks on the truth of runs that read a live day through a copy (#18),
# found in review.  A complete copy never changes, and a run's partitions
# are ranks of it; a resumed run, and a run about to succeed, must find the
# copy it was cut from:
#   1. a run fails once its copy is complete (a score that does not fit
#      bigint, ranked last); before the resume, a later copy of the key,
#      with more members, takes the copy's name (as a run of a cloned
#      cluster, whose run ids are ours, leaves it).  The resume read the new
#      copy's ranks as the old ones and succeeded with members of the day
#      missing; now the next sync_run starts a new run, which is exact;
#   2. the same, the copy shrunk (restored from an older save of Redis):
#      every resume failed again; now a new run starts, exact;
#   3. the same, a key of another type in the copy's place: every resume
#      failed on WRONGTYPE; now a new run starts, exact;
#   4. a later, larger copy takes the name while the workers still read the
#      complete copy: the run succeeded with members missing; now it fails,
#      and the next sync_run starts a new run, exact;
#   5. the complete copy deleted while the workers still read it: the run
#      fails (short partitions), and the next sync_run starts anew;
#   6. a sharded job: case 1 with a shard's copy;
#   6b. a sharded job with a shard that has no key today (its copy, empty,
#      was never created): a run cancelled once copied was never resumed,
#      every resume found that copy missing and started a new run; now it
#      resumes, exact;
#   7. a clone of the cluster (same system identifier, database and run
#      ids) on the same Redis: its run of the same id leaves our run's copy
#      alone, and both runs are exact.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $n = 20000;
my $late = 100;
my $redis = start_redis();
my $node = new_sync_node('attacks', redis => $redis);
# one worker: the partitions are read in order, the last one last
setup_job($node, partitions => 10, workers => 1, chunk_size => 1000);
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $key = "clicks:daily:$today";

# A fresh day of $n members, nothing of it written yet.
sub new_day
{
	my ($seed) = @_;
	$redis->cli('DEL', $key);
	load_day($redis, $today, $n, $seed);
	$node->safe_psql('postgres', "DELETE FROM daily_click_count WHERE click_date = '$today'");
	return;
}

# Members that arrive after the run began, ranked first (score 0).
sub add_late
{
	$redis->cli('EVAL',
		"for i = 1, $late do redis.call('ZADD', KEYS[1], 0, 'aaa-late:' .. i) "
		  . "redis.call('ZADD', KEYS[2], i, 'aaa-late:' .. i) end",
		'2', $key, 'clicks:total');
	return;
}

# A live run that fails once its copy is complete: the member ranked last
# has a score that does not fit bigint, and the last partition, recorded
# when the copy is complete, fails on it.  The operator then removes the
# member from the day's key.  Returns the run id and its copy.
sub fail_after_copy
{
	my ($seed) = @_;
	new_day($seed);
	$redis->cli('ZADD', $key, '1e30', 'zzz-bad');
	$redis->cli('ZADD', 'clicks:total', '1', 'zzz-bad');
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
	like($err, qr/bigint/, "seed $seed: the run failed on the member ranked last");
	my ($run, $copy, $state) = split /\|/, $node->safe_psql('postgres',
		"SELECT run_id, read_key, status || ' ' || members || ' ' || "
		  . "(SELECT count(*) FILTER (WHERE status = 'succeeded') FROM redis_sync.run_partition p "
		  . " WHERE p.run_id = r.run_id) FROM redis_sync.run r ORDER BY run_id DESC LIMIT 1");
	is($state, 'failed ' . ($n + 1) . ' 9', "seed $seed: failed in its last partition, its copy complete");
	is($redis->cli('ZCARD', $copy), $n + 1, "seed $seed: its copy is kept for the resume");
	$redis->cli('ZREM', $key, 'zzz-bad');
	return ($run, $copy);
}

# sync_run of today, resuming; returns (run id, status, stderr).
sub sync_today
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today')");
	my ($run, $status) = split / /, $out;
	return ($run // '', $status // '', $err);
}

sub run_error
{
	my ($run) = @_;
	return $node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $run");
}

# 1. A later, larger copy in the copy's place before the resume.
my ($run, $copy) = fail_after_copy(1);
add_late();
$redis->cli('COPY', $key, $copy, 'REPLACE');
my ($next, $status, $err) = sync_today();
is($status, 'succeeded', 'replaced copy: the next sync_run succeeded');
cmp_ok($next, '>', $run, 'replaced copy: it did not resume the run, it started a new one');
like(run_error($run), qr/holds @{[ $n + $late ]} members, and the run was cut from @{[ $n + 1 ]}/,
	'replaced copy: the old run says why it was not resumed');
expect_tables_match($node, $key, $today, 'replaced copy');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'replaced copy: no copy is left');

# 2. The copy shrunk: its last 1,000 members gone, as in an older save.
($run, $copy) = fail_after_copy(2);
$redis->cli('ZREMRANGEBYRANK', $copy, '-1000', '-1');
($next, $status, $err) = sync_today();
is($status, 'succeeded', 'shrunk copy: the next sync_run succeeded') or diag($err);
cmp_ok($next, '>', $run, 'shrunk copy: it started a new run');
like(run_error($run), qr/holds @{[ $n + 1 - 1000 ]} members/, 'shrunk copy: the old run says why');
expect_tables_match($node, $key, $today, 'shrunk copy');

# 3. A key of another type in the copy's place.
($run, $copy) = fail_after_copy(3);
$redis->cli('DEL', $copy);
$redis->cli('SET', $copy, 'not a sorted set');
($next, $status, $err) = sync_today();
is($status, 'succeeded', 'copy of another type: the next sync_run succeeded') or diag($err);
cmp_ok($next, '>', $run, 'copy of another type: it started a new run');
like(run_error($run), qr/no longer exists in Redis/, 'copy of another type: the old run says why');
expect_tables_match($node, $key, $today, 'copy of another type');
is($redis->cli('EXISTS', $copy), '0', 'copy of another type: the key in the copy\'s place was dropped');

# A live run whose copy is complete while its worker waits for a lock on
# the daily table, held by another session until released.
sub start_held
{
	my ($seed) = @_;
	new_day($seed);
	my ($lh) = background_psql_query($node,
		"BEGIN; LOCK TABLE daily_click_count IN SHARE MODE; SELECT pg_sleep(300); COMMIT;");
	ok(wait_for($node,
		"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
		  . "WHERE c.relname = 'daily_click_count' AND l.mode = 'ShareLock' AND l.granted", '1', 30),
		"seed $seed: the daily table is locked");
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
	my ($r, $c) = split /\|/, wait_value($node,
		"SELECT run_id, read_key FROM redis_sync.run WHERE status = 'running' AND members IS NOT NULL", 60);
	is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
		'0', "seed $seed: the copy is complete, nothing is written yet");
	return ($lh, $h, $out, $err, $r, $c);
}

sub release
{
	my ($lh, $table) = @_;
	$table ||= 'daily_click_count';
	$node->safe_psql('postgres',
		"SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
		  . "WHERE query LIKE 'BEGIN; LOCK TABLE $table %' AND pid <> pg_backend_pid()");
	$lh->finish;
	return;
}

# 4. A later, larger copy takes the name while the worker reads.
my ($lh, $h, $out);
($lh, $h, $out, $err, $run, $copy) = start_held(4);
add_late();
$redis->cli('COPY', $key, $copy, 'REPLACE');
release($lh);
$h->finish;
is($$out, '', 'replaced while read: the run did not succeed');
like($$err, qr/the copy of Redis key "\Q$key\E" changed during run $run/,
	'replaced while read: the run failed, naming the copy');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $run"), 'failed',
	'replaced while read: the run is recorded failed');
($next, $status, $err) = sync_today();
is($status, 'succeeded', 'replaced while read: the next sync_run succeeded') or diag($err);
cmp_ok($next, '>', $run, 'replaced while read: it started a new run');
expect_tables_match($node, $key, $today, 'replaced while read');

# 5. The complete copy deleted while the worker reads.
($lh, $h, $out, $err, $run, $copy) = start_held(5);
$redis->cli('DEL', $copy);
release($lh);
$h->finish;
is($$out, '', 'deleted while read: the run did not succeed');
like($$err, qr/read 0 of \d+ ranks/, 'deleted while read: a partition read nothing');
($next, $status, $err) = sync_today();
is($status, 'succeeded', 'deleted while read: the next sync_run succeeded') or diag($err);
cmp_ok($next, '>', $run, 'deleted while read: it started a new run');
expect_tables_match($node, $key, $today, 'deleted while read');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'deleted while read: no copy is left');

# 6. A sharded job of two shards: shard 1's copy replaced before the resume.
$node->safe_psql('postgres', q{
	CREATE TABLE smember (name text PRIMARY KEY, click_count bigint NOT NULL);
	CREATE TABLE sdaily (name text NOT NULL REFERENCES smember,
	  click_date date NOT NULL, click_count bigint NOT NULL,
	  PRIMARY KEY (name, click_date));
	SELECT redis_sync.create_job('sharded', 'redis', 'sc:{%s}:daily:%Y-%m-%d',
	  'sc:{%s}:total', 'smember', 'sdaily', partitions => 4,
	  workers => 1, chunk_size => 1000, day_offset => 0, shards => 2);
});
my $per_shard = $n / 2;
for my $s (0, 1)
{
	$redis->cli('EVAL',
		"for i = 1, $per_shard do redis.call('ZADD', KEYS[1], (i * 7 + $s) % 1009, 'u:$s:' .. i) "
		  . "redis.call('ZADD', KEYS[2], i * 10, 'u:$s:' .. i) end",
		'2', "sc:{$s}:daily:$today", "sc:{$s}:total");
}
$redis->cli('ZADD', "sc:{1}:daily:$today", '1e30', 'zzz-bad');
$redis->cli('ZADD', 'sc:{1}:total', '1', 'zzz-bad');
my ($ret, $o);
($ret, $o, $err) = $node->psql('postgres', "SELECT status FROM redis_sync.sync_run('sharded', '$today')");
like($err, qr/bigint/, 'sharded: the run failed on the member ranked last in shard 1');
$run = $node->safe_psql('postgres',
	"SELECT r.run_id FROM redis_sync.run r JOIN redis_sync.job j USING (job_id) "
	  . "WHERE j.job_name = 'sharded' AND r.status = 'failed' AND r.members = @{[ $n + 1 ]}");
ok($run ne '', 'sharded: it failed once its copies were complete');
$copy = $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run_shard WHERE run_id = $run AND shard = 1");
$redis->cli('ZREM', "sc:{1}:daily:$today", 'zzz-bad');
$redis->cli('EVAL',
	"for i = 1, $late do redis.call('ZADD', KEYS[1], 0, 'aaa-late:1:' .. i) "
	  . "redis.call('ZADD', KEYS[2], i, 'aaa-late:1:' .. i) end",
	'2', "sc:{1}:daily:$today", 'sc:{1}:total');
$redis->cli('COPY', "sc:{1}:daily:$today", $copy, 'REPLACE');
($ret, $o, $err) = $node->psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sharded', '$today')");
($next, $status) = split / /, $o;
is($status, 'succeeded', 'sharded: the next sync_run succeeded') or diag($err);
cmp_ok($next, '>', $run, 'sharded: it did not resume the run, it started a new one');
like(run_error($run), qr/holds @{[ $per_shard + $late ]} members, and the shard was cut from @{[ $per_shard + 1 ]}/,
	'sharded: the old run says why it was not resumed');
is($node->safe_psql('postgres', qq{
	DROP FOREIGN TABLE IF EXISTS chk_sday;
	CREATE FOREIGN TABLE chk_sday (key text, member text, score bigint) SERVER redis;
	SELECT count(*) FILTER (WHERE c.click_count IS DISTINCT FROM d.score) || ' ' || count(d.member)
	  FROM (SELECT * FROM chk_sday WHERE key = ANY (ARRAY['sc:{0}:daily:$today', 'sc:{1}:daily:$today'])) d
	  FULL JOIN (SELECT * FROM sdaily WHERE click_date = '$today') c ON c.name = d.member}),
	'0 ' . ($n + $late), 'sharded: the daily table equals both shards\' keys, row by row');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'sharded: no copy is left');

# 6b. A sharded job whose shard 0 has no key today, cancelled once copied.
$node->safe_psql('postgres', q{
	CREATE TABLE spdaily (name text NOT NULL, click_date date NOT NULL,
	  click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
	SELECT redis_sync.create_job('sparse', 'redis', 'sp:{%s}:daily:%Y-%m-%d',
	  NULL, NULL, 'spdaily', partitions => 4, workers => 1, chunk_size => 1000,
	  day_offset => 0, shards => 2);
});
$redis->cli('EVAL', "for i = 1, $per_shard do redis.call('ZADD', KEYS[1], i % 1009, 'v:' .. i) end",
	'1', "sp:{1}:daily:$today");
($lh) = background_psql_query($node,
	"BEGIN; LOCK TABLE spdaily IN SHARE MODE; SELECT pg_sleep(300); COMMIT;");
ok(wait_for($node,
	"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
	  . "WHERE c.relname = 'spdaily' AND l.mode = 'ShareLock' AND l.granted", '1', 30),
	'sparse: the daily table is locked');
($h, $out, $err) = background_psql_query($node,
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sparse', '$today')");
$run = wait_value($node,
	"SELECT r.run_id FROM redis_sync.run r JOIN redis_sync.job j USING (job_id) "
	  . "WHERE j.job_name = 'sparse' AND r.status = 'running' AND r.members IS NOT NULL", 60);
is($node->safe_psql('postgres',
	"SELECT string_agg(shard || ':' || members, ' ' ORDER BY shard) FROM redis_sync.run_shard WHERE run_id = $run"),
	"0:0 1:$per_shard", 'sparse: both shards are copied, shard 0 empty');
signal_query($node, $h, 'pg_cancel_backend', "SELECT run_id || % FROM redis_sync.sync_run('sparse'%");
release($lh, 'spdaily');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $run"), 'cancelled',
	'sparse: the run was cancelled');
($ret, $o, $err) = $node->psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('sparse', '$today')");
is($o, "$run succeeded", 'sparse: the next sync_run resumed the run, and it succeeded') or diag($err);
is($node->safe_psql('postgres', qq{
	DROP FOREIGN TABLE IF EXISTS chk_sp;
	CREATE FOREIGN TABLE chk_sp (member text, score bigint) SERVER redis OPTIONS (key 'sp:{1}:daily:$today');
	SELECT count(*) FILTER (WHERE c.click_count IS DISTINCT FROM d.score) || ' ' || count(d.member)
	  FROM chk_sp d FULL JOIN (SELECT * FROM spdaily WHERE click_date = '$today') c ON c.name = d.member}),
	"0 $per_shard", 'sparse: the daily table equals shard 1\'s key, row by row');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'sparse: no copy is left');

# 7. A clone of the cluster (a restored backup) on the same Redis: the same
# system identifier, database and run ids.
$node->stop;
$node->backup_fs_cold('clone');
$node->start;
my $clone = PostgreSQL::Test::Cluster->new('clone');
$clone->init_from_backup($node, 'clone');
$clone->start;
my $sysid = 'SELECT system_identifier FROM pg_control_system()';
is($clone->safe_psql('postgres', $sysid), $node->safe_psql('postgres', $sysid),
	'clone: it has our system identifier');
($lh, $h, $out, $err, $run, $copy) = start_held(7);
$clone->safe_psql('postgres', "DELETE FROM daily_click_count WHERE click_date = '$today'");
($ret, $o, my $cerr) = $clone->psql('postgres',
	"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$today', resume => false)");
is($o, "$run succeeded", "clone: its run of today has our run's id, $run, and succeeded") or diag($cerr);
isnt($clone->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_id = $run"), $copy,
	'clone: its run read a copy of another name');
is($redis->cli('ZCARD', $copy), $n, 'clone: our run\'s copy is untouched');
release($lh);
$h->finish;
is($$out, "$run succeeded\n", 'clone: our run succeeded') or diag($$err);
expect_tables_match($node, $key, $today, 'clone: ours');
expect_tables_match($clone, $key, $today, 'clone: the clone\'s');
is($redis->cli('KEYS', 'redis_sync:snapshot:*'), '', 'clone: no copy is left');

done_testing();
