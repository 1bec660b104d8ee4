# Runs tell the truth (#16, #18 item 3): a superseded run is never resumed;
# a run whose key shrank or vanished under it fails instead of succeeding;
# counts are exact after a resume; drop_job during a run is refused; a
# caller whose transaction holds locks gets an error at once instead of a
# hang; a cursor of the caller keeps its rows; poison members are rejected
# within max_rejects; snapshot keys are per cluster and database; the live
# date follows redis_sync.timezone, not the session's TimeZone.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;

my $redis = start_redis();
my $node = new_sync_node('truth', redis => $redis);
setup_job($node, partitions => 6, workers => 2, chunk_size => 200);

my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $future = sub {
	$node->safe_psql('postgres', "SELECT current_date + $_[0]");
};

# Start sync_run in the background, wait until it committed $min members,
# and return (harness, stdout ref, stderr ref, run id).
sub start_run
{
	my ($date, $min, $extra) = @_;
	$extra = defined $extra ? ", $extra" : '';
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$date'$extra)");
	my $run = wait_progress($node, $min);
	return ($h, $out, $err, $run);
}

# 1. An older unfinished run is superseded when a newer run of its date
#    succeeds, and is never resumed afterwards (16.1).
load_day($redis, $today, 60000, 1);
my ($h, $out, $err, $r1) = start_run($today, 2000);
ok(defined $r1, 'supersede: the first run made progress');
signal_query($node, $h, 'pg_cancel_backend', "SELECT run_id || ' ' || status FROM redis_sync.sync_run%");
ok(wait_for($node, "SELECT status FROM redis_sync.run WHERE run_id = $r1", 'cancelled', 30),
	'supersede: the first run was cancelled');
load_day($redis, $today, 60000, 2);    # the scores change
my $r2 = $node->safe_psql('postgres',
	"SELECT run_id FROM redis_sync.sync_run('clicks', '$today', resume => false)");
ok($r2 > $r1, "supersede: a run with resume => false synced the new scores as run $r2");
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r1"),
	'superseded', 'supersede: the cancelled run is now superseded');
like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $r1"),
	qr/Superseded by run $r2/, 'supersede: its error says which run superseded it');
my $r3 = $node->safe_psql('postgres', "SELECT run_id FROM redis_sync.sync_run('clicks', '$today')");
ok($r3 > $r2, "supersede: a plain sync_run started run $r3 instead of resuming run $r1");
expect_tables_match($node, "clicks:daily:$today", $today, 'supersede: the new scores stay');

# 2. The snapshot vanishes mid-run: the run fails naming the partition that
#    came up short; the next sync_run starts over and is exact (#18 item 3).
my $d2 = $future->(1);
load_day($redis, $d2, 60000, 3);
($h, $out, $err, my $r) = start_run($d2, 2000);
# the copy is complete once the run has its member count (010 deletes it mid-copy)
wait_value($node, "SELECT 1 FROM redis_sync.run WHERE run_id = $r AND members IS NOT NULL", 30);
my @snaps = split /\n/, $redis->cli('KEYS', 'redis_sync:snapshot:*');
my $sysid = $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
# the run's start, in microseconds since 2000, tells apart the runs of clusters cloned from one another
my $stamp = $node->safe_psql('postgres',
	"SELECT ((extract(epoch FROM started_at) - 946684800) * 1000000)::bigint FROM redis_sync.run WHERE run_id = $r");
is_deeply(\@snaps, ["redis_sync:snapshot:$sysid:$dboid:$r:$stamp"],
	'snapshot: its name holds the system identifier, the database, the run and its start');
cmp_ok($redis->cli('TTL', $snaps[0]), '>', 0, 'snapshot: it has an expiry');
$redis->cli('DEL', $snaps[0]);
$h->finish;
like($$err, qr/partition \d+ of run $r read \d+ of \d+ ranks/, 'snapshot deleted: the run failed naming the short partition');
like($$err, qr/shrank or vanished/, 'snapshot deleted: the error says the key shrank or vanished');
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r"), 'failed',
	'snapshot deleted: the run is recorded failed');
my ($ret, $o, $e) = $node->psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d2')");
my ($rn, $st) = split / /, $o;
ok($rn > $r && $st eq 'succeeded', "snapshot deleted: the next sync_run started over as run $rn and succeeded");
like($node->safe_psql('postgres', "SELECT error FROM redis_sync.run WHERE run_id = $r"),
	qr/snapshot .*no longer exists/, 'snapshot deleted: the old run says its snapshot is gone');
expect_tables_match($node, "clicks:daily:$d2", $d2, 'snapshot deleted, then a new run');

# 2a. A past day's key (read live) is deleted mid-run: failed, never
#     succeeded; once the key is back, a resume reads the short partitions
#     again and the result is exact.
my $d3 = '2021-02-03';
load_day($redis, $d3, 60000, 4);
($h, $out, $err, $r) = start_run($d3, 2000);
$redis->cli('DEL', "clicks:daily:$d3");
$h->finish;
like($$err, qr/partition \d+ of run $r read \d+ of \d+ ranks/, 'key deleted: the run failed naming the short partition');
load_day($redis, $d3, 60000, 4);
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d3')"),
	"$r succeeded", 'key deleted: once the key is back, the resumed run succeeds');
is($node->safe_psql('postgres', "SELECT sum(members_read) FROM redis_sync.run_partition WHERE run_id = $r"),
	'60000', 'key deleted: each rank was counted once');
expect_tables_match($node, "clicks:daily:$d3", $d3, 'key deleted, then resumed');

# 2b. Redis restarts without persistence mid-run: failed, not succeeded.
my $d4 = '2021-02-04';
load_day($redis, $d4, 60000, 5);
($h, $out, $err, $r) = start_run($d4, 2000);
$redis->stop;
$redis->start;
$h->finish;
like($$err, qr/partition \d+ of run $r read \d+ of \d+ ranks/, 'Redis restart: the run failed naming the short partition');
isnt($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_id = $r"), 'succeeded',
	'Redis restart: the run is not recorded succeeded');

# 3. missing_total and members_read count each member once, though a
#    resumed partition reads its segment again (16.7).
my $d5 = '2021-02-05';
$redis->cli('EVAL', "for i=1,60000 do redis.call('ZADD', KEYS[1], i % 1009, 'm:' .. i) "
	  . "if i % 2 == 0 then redis.call('ZADD', KEYS[2], i, 'm:' .. i) end end",
	'2', "clicks:daily:$d5", 'clicks:total');
($h, $out, $err, $r) = start_run($d5, 3000);
signal_query($node, $h, 'pg_cancel_backend', "SELECT run_id || ' ' || status FROM redis_sync.sync_run%");
ok(wait_for($node, "SELECT status FROM redis_sync.run WHERE run_id = $r", 'cancelled', 30),
	'counts: the run was cancelled mid-way');
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d5')"),
	"$r succeeded", 'counts: the run resumed and succeeded');
is($node->safe_psql('postgres', "SELECT missing_total || ' ' || (SELECT sum(members_read) FROM redis_sync.run_partition p WHERE p.run_id = r.run_id) FROM redis_sync.run r WHERE run_id = $r"),
	'30000 60000', 'counts: 30,000 members without a total and 60,000 read, each counted once');
expect_tables_match($node, "clicks:daily:$d5", $d5, 'counts: after cancel and resume');

# 4. drop_job during a run is refused with a clear error; the run goes on
#    to the full result (16.2).
my $d6 = '2021-02-06';
load_day($redis, $d6, 60000, 6);
($h, $out, $err, $r) = start_run($d6, 2000);
($ret, $o, $e) = $node->psql('postgres', "SELECT redis_sync.drop_job('clicks')");
like($e, qr/job "clicks" is running/, 'drop_job: refused while the job runs');
$h->finish;
is($$out, "$r succeeded\n", 'drop_job: the run still succeeded');
expect_tables_match($node, "clicks:daily:$d6", $d6, 'drop_job refused during the run');

# 5. sync_run in a transaction that holds locks the run needs: a clear
#    error at once, not a hang until statement_timeout (16.3).
my $d7 = '2021-02-07';
load_day($redis, $d7, 2000, 7);
foreach my $case (
	[ 'UPDATE member SET click_count = click_count WHERE name = \'user:1\'', qr/transaction that has written data/ ],
	[ 'TRUNCATE daily_click_count', qr/transaction that has written data/ ],
	[ "SELECT redis_sync.alter_job('clicks', partitions => 5)", qr/transaction that has written data/ ],
	[ 'LOCK TABLE daily_click_count IN SHARE MODE', qr/transaction that locks its table "daily_click_count"/ ],
	[ 'LOCK TABLE redis_sync.run_partition IN EXCLUSIVE MODE', qr/waits for a lock that this transaction holds/ ])
{
	my ($stmt, $re) = @$case;
	($ret, $o, $e) = $node->psql('postgres', "SET statement_timeout = '120s'; BEGIN; $stmt; "
		  . "SELECT status FROM redis_sync.sync_run('clicks', '$d7'); COMMIT;");
	like($e, $re, "caller's locks: \"$stmt\" gets a clear error");
	unlike($e, qr/statement timeout/, "caller's locks: \"$stmt\" did not wait for statement_timeout");
	ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('redis_sync worker', 'redis_sync coordinator')", '0', 30),
		"caller's locks: no run process is left after \"$stmt\"");
}
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$d7')"), 'succeeded',
	"caller's locks: the same run outside the transaction succeeds");
expect_tables_match($node, "clicks:daily:$d7", $d7, "caller's locks: then the result is exact");

# 6. The caller's open cursor keeps its rows while sync_run waits, though
#    another session deletes them and runs VACUUM meanwhile (16.4).
my $d8 = '2021-02-08';
load_day($redis, $d8, 60000, 8);
$node->safe_psql('postgres', 'CREATE TABLE t (i int, pad text); INSERT INTO t SELECT i, repeat(\'x\', 100) FROM generate_series(1, 1000) i; VACUUM t');
my ($cout, $cerr) = ('', '');
$h = IPC::Run::start(
	[ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'),
	  '-c', 'BEGIN', '-c', 'DECLARE c CURSOR FOR SELECT i FROM t',
	  '-c', 'FETCH 1 FROM c',
	  '-c', "SELECT status FROM redis_sync.sync_run('clicks', '$d8')",
	  '-c', 'FETCH ALL FROM c', '-c', 'COMMIT' ],
	'<', \undef, '>', \$cout, '2>', \$cerr);
$r = wait_progress($node, 2000);
ok(defined $r, 'cursor: the run is going');
$node->safe_psql('postgres', 'DELETE FROM t WHERE i > 10');
$node->safe_psql('postgres', 'VACUUM t');
$h->finish;
my @lines = split /\n/, $cout;
is(scalar(grep { /^\d+$/ } @lines), 1000, 'cursor: it returned all 1000 rows of its snapshot');
ok((grep { $_ eq 'succeeded' } @lines), 'cursor: and the run succeeded');

# 7. Poison members: a 512 KB member and one with invalid UTF-8 among 10,000
#    good ones.  max_rejects => 0 fails naming the first bad member; with
#    max_rejects => 5 the run succeeds, both tables hold the good members
#    exactly, and redis_sync.rejected holds the two bad ones.
my $d9 = '2021-02-09';
$redis->cli('EVAL', "for i=1,10000 do redis.call('ZADD', KEYS[1], i % 997, 'g:' .. i) "
	  . "redis.call('ZADD', KEYS[2], i * 3, 'g:' .. i) end "
	  . "local t = {} for i=1,524288 do t[i] = string.char(97 + math.random(0, 25)) end "
	  . "local big = table.concat(t) "
	  . "redis.call('ZADD', KEYS[1], 500, big) redis.call('ZADD', KEYS[2], 1, big) "
	  . "redis.call('ZADD', KEYS[1], 600, 'bad\\255name') redis.call('ZADD', KEYS[2], 2, 'bad\\255name')",
	'2', "clicks:daily:$d9", 'clicks:total');
($ret, $o, $e) = $node->psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$d9')");
like($e, qr/member (0x626164ff6e616d65|"[a-z]{64}\.\.\.") at rank \d+ of Redis key "clicks:daily:$d9"/,
	'rejects: max_rejects => 0 fails naming the member (its first 64 bytes) and its rank');
like($e, qr/not valid in encoding|index row/, 'rejects: and the reason');
cmp_ok(length($e), '<', 4000, 'rejects: the error does not hold the whole 512 KB member');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', max_rejects => 5)");
$r = $node->safe_psql('postgres', "SELECT run_id FROM redis_sync.run WHERE run_date = '$d9'");
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d9')"),
	"$r succeeded", 'rejects: with max_rejects => 5 the resumed run succeeds');
is($node->safe_psql('postgres', "SELECT rejected FROM redis_sync.history WHERE run_id = $r"), '2',
	'rejects: history shows 2 rejected members');
is($node->safe_psql('postgres', "SELECT string_agg(sqlstate || ' ' || length(member) || ' ' || coalesce(score, '?'), ', ' ORDER BY sqlstate) FROM redis_sync.rejected WHERE run_id = $r"),
	'22021 8 600, 54000 524288 500', 'rejects: redis_sync.rejected holds the two bad members with their scores and reasons');
like($node->safe_psql('postgres', "SELECT string_agg(error, ' | ' ORDER BY sqlstate) FROM redis_sync.rejected WHERE run_id = $r"),
	qr/not valid in encoding "UTF8".*index row/, 'rejects: and their errors');
is($node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE chk_bday (member bytea, score bigint) SERVER redis OPTIONS (key 'clicks:daily:$d9');
	CREATE FOREIGN TABLE chk_btotal (member bytea, score bigint) SERVER redis OPTIONS (key 'clicks:total');
	SELECT (SELECT count(*) FROM (SELECT * FROM chk_bday WHERE member NOT IN (SELECT member FROM redis_sync.rejected)) d
	          FULL JOIN (SELECT * FROM daily_click_count WHERE click_date = '$d9') c
	            ON convert_to(c.name, 'UTF8') = d.member
	         WHERE c.click_count IS DISTINCT FROM d.score)
	     + (SELECT count(*) FROM chk_bday d JOIN chk_btotal t USING (member)
	          LEFT JOIN member m ON convert_to(m.name, 'UTF8') = d.member
	         WHERE d.member NOT IN (SELECT member FROM redis_sync.rejected)
	           AND m.click_count IS DISTINCT FROM t.score)
	     || ' ' || (SELECT count(*) FROM daily_click_count WHERE click_date = '$d9')}),
	'0 10000', 'rejects: both tables hold the 10,000 good members exactly');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', max_rejects => 0)");

# 8. Which date is live follows redis_sync.timezone, whatever the session's
#    TimeZone (#18 item 5): pick a zone whose date differs from the server's.
my ($zone, $date, $snap) = split / /, $node->safe_psql('postgres', q{
	SELECT CASE WHEN (now() AT TIME ZONE 'Pacific/Kiritimati')::date <> current_date
	            THEN 'Pacific/Kiritimati ' || current_date || ' t'
	            ELSE 'Etc/GMT+12 ' || (current_date - 1) || ' f' END});
load_day($redis, $date, 1000, 9);
$node->safe_psql('postgres', "SET timezone = '$zone'; SELECT redis_sync.sync_run('clicks', '$date', resume => false)");
is($node->safe_psql('postgres', "SELECT read_key LIKE 'redis_sync:snapshot:%' FROM redis_sync.run WHERE run_date = '$date' ORDER BY run_id DESC LIMIT 1"),
	$snap, "timezone: with the session in $zone, $date is read " . ($snap eq 't' ? 'from a snapshot' : 'live'));

# 9. The caller holds only ACCESS SHARE on a target table, and another
#    session's ALTER TABLE queues behind it: the workers wait for the ALTER,
#    which waits for the caller, which waits for the run.  sync_run finds
#    the chain and fails, instead of hanging (found by review).
my $d10 = '2020-10-10';
load_day($redis, $d10, 20000, 10);
my ($ch, $chout, $cherr) = background_psql_query($node,
	"BEGIN; SELECT count(*) FROM daily_click_count; SELECT pg_sleep(2); "
	  . "SELECT status FROM redis_sync.sync_run('clicks', '$d10'); COMMIT;");
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'BEGIN; SELECT count(*) FROM daily%' AND state = 'active'", '1', 30),
	'lock chain: the caller holds ACCESS SHARE');
my ($ah2, $aout2, $aerr2) = background_psql_query($node, 'ALTER TABLE daily_click_count ADD COLUMN note text');
$ch->finish;
like($$cherr, qr/waits for a lock that this transaction holds/, 'lock chain: sync_run fails instead of hanging');
$ah2->finish;
is($$aerr2, '', 'lock chain: the ALTER TABLE went through afterwards');
$node->safe_psql('postgres', 'ALTER TABLE daily_click_count DROP COLUMN note');
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('redis_sync worker', 'redis_sync coordinator')", '0', 30),
	'lock chain: no coordinator or worker is left');

# 10. A past day's key grew between an interrupted run and its resume: the
#     partitions, cut from the old size, would miss the top members, so the
#     resume starts a new run instead, and the result is exact (found by
#     review).
my $d11 = '2020-10-11';
$redis->cli('DEL', 'clicks:total');    # it holds part 7's poison member
load_day($redis, $d11, 60000, 11);
my ($gh, $gout, $gerr, $grun) = start_run($d11, 2000);
ok(defined $grun, 'grown key: the run made progress');
signal_query($node, $gh, 'pg_cancel_backend', "SELECT run_id || ' ' || status FROM redis_sync.sync_run%");
ok(wait_for($node, "SELECT status FROM redis_sync.run WHERE run_id = $grun", 'cancelled', 30),
	'grown key: the run was cancelled');
$redis->cli('EVAL', "for i=1,500 do redis.call('ZADD', KEYS[1], -1, 'early:' .. i) end", '1', "clicks:daily:$d11");
my $rerun = $node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '$d11')");
like($rerun, qr/^\d+ succeeded$/, 'grown key: the next sync_run succeeded');
isnt((split / /, $rerun)[0], $grun, 'grown key: as a new run, not a resume');
expect_tables_match($node, "clicks:daily:$d11", $d11, 'grown key: after the new run');

$node->stop;
done_testing();
