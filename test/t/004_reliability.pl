# Reliability and security: Redis restarted or stalled mid-run, PostgreSQL
# stopped in immediate mode mid-run, a Redis that never answers sync_run,
# jobs owned by unprivileged roles, odd identifiers and keys, concurrent
# jobs under a small worker budget, and random input to the validators.
# Every sync ends with a full comparison of both tables against Redis.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(time usleep);

# Redis with an append-only file, so that a restart keeps the data and
# the run's snapshot.
my $redis = start_redis(extra => [ '--appendonly', 'yes', '--appendfsync', 'always' ]);
my $node = new_sync_node('rel', redis => $redis, conf => "max_worker_processes = 10\n");
$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (SET command_timeout '1500')");
setup_job($node, partitions => 4, workers => 2, chunk_size => 200);

# 1. Redis restarts mid-run: the workers retry and the run completes.
my $today = $node->safe_psql('postgres', 'SELECT current_date');
load_day($redis, $today, 60000, 21);
my ($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks')");
ok(defined wait_progress($node, 2000), 'restart: the run made progress');
$redis->cli('SHUTDOWN');    # saves; the append-only file has everything
# Redis stays down until a worker (or the copy) has met it down and retried:
# the later partitions are read only once the first ones are written.
my $retried = 0;
for (1 .. 300)
{
	last if ($retried = slurp_file($node->logfile) =~ /retrying in \d+ ms/);
	usleep(50_000);
}
$redis->start;
$h->finish;
is($$out, "succeeded\n", 'restart: the run succeeded after Redis came back');
ok($retried, 'restart: the run met Redis down and retried');
expect_tables_match($node, "clicks:daily:$today", $today, 'after a Redis restart');

# 2. Redis stalls for 5 seconds mid-run: command_timeout fires, the workers
#    retry, and the run completes.
load_day($redis, '2020-07-01', 60000, 23);
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '2020-07-01')");
ok(defined wait_progress($node, 2000), 'stall: the run made progress');
my $rpid = $redis->cli('INFO', 'server') =~ /process_id:(\d+)/ ? $1 : 0;
kill 'STOP', $rpid;
sleep 5;
kill 'CONT', $rpid;
$h->finish;
is($$out, "succeeded\n", 'stall: the run succeeded once Redis answered again');
expect_tables_match($node, 'clicks:daily:2020-07-01', '2020-07-01', 'after a 5 s stall');

# 3. PostgreSQL stopped in immediate mode mid-run: the run is resumed by
#    the next sync_run (no scheduler on this node) to the exact result.
load_day($redis, '2020-07-02', 80000, 25);
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '2020-07-02')");
my $run = wait_progress($node, 5000);
ok(defined $run, 'immediate: the run made progress');
$node->stop('immediate');
$h->finish;
$node->start;
is($node->safe_psql('postgres', "SELECT run_id || ' ' || status FROM redis_sync.sync_run('clicks', '2020-07-02')"),
	"$run succeeded", 'immediate: the interrupted run was resumed');
expect_tables_match($node, 'clicks:daily:2020-07-02', '2020-07-02', 'after an immediate shutdown');

# 4. A Redis that accepts connections and never answers: sync_run fails with
#    the timeout, and a cancel returns within 2 seconds.
my $mute_port = start_mute_server();
$node->safe_psql('postgres', qq{
	CREATE SERVER mute FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$mute_port', command_timeout '600000');
	CREATE USER MAPPING FOR PUBLIC SERVER mute;
	SELECT redis_sync.create_job('mute_job', 'mute', 'k:%Y', NULL, NULL, 'daily_click_count');
	CREATE SERVER mute_short FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$mute_port', command_timeout '700');
	CREATE USER MAPPING FOR PUBLIC SERVER mute_short;
	SELECT redis_sync.create_job('mute_short_job', 'mute_short', 'k:%Y', NULL, NULL, 'daily_click_count');
});
my ($ret, $o, $e) = $node->psql('postgres', "SELECT * FROM redis_sync.sync_run('mute_short_job', '2020-01-01')");
like($e, qr/Redis server "mute_short" did not reply within 700 ms/, 'a mute Redis fails sync_run with the timeout');
($h, $out, $err) = background_psql_query($node, "SELECT * FROM redis_sync.sync_run('mute_job', '2020-01-01')");
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync coordinator'", '1', 30),
	'the coordinator is waiting on the mute Redis');
cmp_ok(signal_query($node, $h, 'pg_cancel_backend', "SELECT * FROM redis_sync.sync_run('mute_job'%"), '<', 2,
	'cancel of sync_run against a mute Redis returned within 2 s');
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync coordinator'", '0', 10),
	'the coordinator is gone');

# 5. A job owned by an unprivileged role: its workers run as that role, and
#    a privilege it lacks fails the run with a permission error.
$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE SCHEMA "Odd ""Schema""";
	CREATE TABLE "Odd ""Schema""".members (name text PRIMARY KEY, click_count numeric NOT NULL);
	CREATE TABLE "Odd ""Schema"""."Daily Clicks" (name varchar(64), click_date date,
	    click_count integer NOT NULL, PRIMARY KEY (click_date, name));
	GRANT USAGE ON SCHEMA "Odd ""Schema""" TO alice;
	GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "Odd ""Schema""" TO alice;
	GRANT USAGE ON FOREIGN SERVER redis TO alice;
	-- who writes the daily table: the workers must run as the job's owner
	CREATE TABLE public.writer_log (who name);
	GRANT INSERT ON public.writer_log TO alice;
	CREATE FUNCTION public.log_writer() RETURNS trigger LANGUAGE plpgsql
	  AS $$BEGIN INSERT INTO public.writer_log VALUES (current_user); RETURN NULL; END$$;
	CREATE TRIGGER log_writer AFTER INSERT OR UPDATE ON "Odd ""Schema"""."Daily Clicks"
	  FOR EACH STATEMENT EXECUTE FUNCTION public.log_writer();
});
my $odd_key = "odd key {with} \"quotes\" and\nnewline:%Y-%m-%d";
my $odd_day_key = "odd key {with} \"quotes\" and\nnewline:2020-07-03";
my $lua = q{for i=1,3000 do local m = "o'brien \"" .. i .. "\"" }
  . q{redis.call('ZADD', KEYS[1], i % 50, m) redis.call('ZADD', KEYS[2], i, m) end};
$redis->cli('EVAL', $lua, '2', $odd_day_key, 'odd total');
my $quoted_key = $odd_key =~ s/'/''/gr;
$node->safe_psql('postgres', qq{
	SET ROLE alice;
	SELECT redis_sync.create_job('alice_job', 'redis', E'@{[ $quoted_key =~ s/\n/\\n/gr ]}', 'odd total',
	  '"Odd ""Schema""".members', '"Odd ""Schema"""."Daily Clicks"', partitions => 3, workers => 2,
	  chunk_size => 100);
});
my $alice = $node->connstr('postgres') . ' user=alice';
my ($aout, $aerr) = ('', '');
my $ah = IPC::Run::start([ 'psql', '-X', '-A', '-t', '-d', $alice, '-c',
	"SELECT status FROM redis_sync.sync_run('alice_job', '2020-07-03')" ], '>', \$aout, '2>', \$aerr);
$ah->finish;
is($aout, "succeeded\n", 'a job owned by an unprivileged role succeeded');
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT who::text, ',') FROM writer_log"),
	'alice', 'its workers wrote as the owner');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || sum(click_count) FROM "Odd ""Schema"""."Daily Clicks" WHERE click_date = '2020-07-03'}),
	'3000 73500', 'quoted identifiers and an odd key synced every member');
is($node->safe_psql('postgres', q{SELECT click_count FROM "Odd ""Schema""".members WHERE name = 'o''brien "42"'}),
	'42', 'members with quotes synced');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT count(*) FROM redis_sync.job"), '1',
	'alice sees only her own job');
$node->safe_psql('postgres', q{REVOKE UPDATE ON "Odd ""Schema""".members FROM alice});
($ret, $o, $e) = $node->psql('postgres', "SET ROLE alice; SELECT * FROM redis_sync.sync_run('alice_job', '2020-07-03', resume => false)");
like($e, qr/permission denied for member table "members"/, 'a revoked privilege fails the run with a permission error');
$node->safe_psql('postgres', 'CREATE DATABASE ext_check OWNER alice');
($ret, $o, $e) = $node->psql('ext_check', "SET ROLE alice; CREATE EXTENSION redis_sync");
like($e, qr/permission denied to create extension "redis_sync"/, 'a non-superuser cannot create the extension');

# 6. Four jobs at once with room for only a few workers: all complete.
for my $j (1 .. 4)
{
	load_day($redis, "2020-08-0$j", 20000, 30 + $j);
	$node->safe_psql('postgres', "SELECT redis_sync.create_job('multi$j', 'redis', 'clicks:daily:2020-08-0$j', 'clicks:total', 'member', 'daily_click_count', partitions => 4, workers => 3, chunk_size => 500)");
}
my @hs;
for my $j (1 .. 4)
{
	push @hs, [ background_psql_query($node, "SELECT status FROM redis_sync.sync_run('multi$j', '2020-08-0$j')") ];
}
for my $j (1 .. 4)
{
	my ($bh, $bout, $berr) = @{ $hs[ $j - 1 ] };
	$bh->finish;
	is($$bout, "succeeded\n", "concurrent job $j succeeded") or diag($$berr);
}
for my $j (1 .. 4)
{
	expect_tables_match($node, "clicks:daily:2020-08-0$j", "2020-08-0$j", "concurrent job $j");
}

# 7. Random input to the option validator and the cron parser: every
#    rejection is a clean error, and the server keeps serving.
my $fuzz = $node->safe_psql('postgres', q{
	CREATE FUNCTION pg_temp.rnd() RETURNS text LANGUAGE sql AS $$
	  SELECT coalesce(string_agg(substr(' */-,0123456789@abcdefghijklmnopqrstuvwxyzJANMON%{}"''\\', (random() * 52)::int + 1, 1), ''), '')
	  FROM generate_series(1, (random() * 24)::int) $$;
	DO $$
	DECLARE ok int := 0; bad int := 0; s text;
	BEGIN
	  PERFORM setseed(0.42);
	  FOR i IN 1..3000 LOOP
	    s := pg_temp.rnd();
	    BEGIN PERFORM redis_sync.next_run(s, '2026-01-01'); ok := ok + 1;
	    EXCEPTION WHEN invalid_parameter_value THEN bad := bad + 1; END;
	    BEGIN EXECUTE format('CREATE SERVER fz FOREIGN DATA WRAPPER redis_zset OPTIONS (port %L, page_size %L)', s, s);
	      EXECUTE 'DROP SERVER fz'; ok := ok + 1;
	    EXCEPTION WHEN invalid_parameter_value OR fdw_invalid_option_name THEN bad := bad + 1; END;
	    BEGIN PERFORM redis_sync.format_key(s, '2026-01-01'); ok := ok + 1;
	    EXCEPTION WHEN invalid_parameter_value THEN bad := bad + 1; END;
	  END LOOP;
	  RAISE NOTICE 'fuzz: % accepted, % rejected', ok, bad;
	END $$;
	SELECT 'alive';
});
is($fuzz, 'alive', 'random schedules, options and key templates gave only clean errors');

# 8. A day re-synced after every count changed: the plain insert of the
#    day's rows meets the existing rows and falls back to the upsert inside
#    the chunk, without giving up the connection that reads ahead (once a
#    subtransaction's rollback closed it, and every worker retried).
load_day($redis, '2020-07-09', 5000, 31);
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '2020-07-09')"),
	'succeeded', 'changed counts: the first sync succeeded');
load_day($redis, '2020-07-09', 5000, 37);
my $log_offset = -s $node->logfile;
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '2020-07-09', resume => false)"),
	'succeeded', 'changed counts: the re-sync succeeded');
unlike(slurp_file($node->logfile, $log_offset), qr/retrying in/,
	'changed counts: no worker had to retry');
expect_tables_match($node, 'clicks:daily:2020-07-09', '2020-07-09', 'after every count changed');

# 9. While sync_run() waits, its caller holds no snapshot xmin (in read
#    committed, when sync_run() is the whole query), so the row versions
#    that the run's updates leave behind are pruned during the run, and the
#    updates of member rows stay on their pages (HOT) although every page
#    was full.  In repeatable read the caller's snapshot may be read again,
#    and it keeps its xmin.
$node->safe_psql('postgres', 'VACUUM FULL member');
load_day($redis, '2020-07-11', 60000, 41);
my $member_upd = q{SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'member'};
my ($upd0, $hot0) = split / /, $node->safe_psql('postgres', $member_upd);
($h, $out, $err) = background_psql_query($node, "SELECT status FROM redis_sync.sync_run('clicks', '2020-07-11')");
ok(defined wait_progress($node, 1000), 'xmin: the run made progress');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE backend_xmin IS NULL) || '/' || count(*)
	FROM pg_stat_activity WHERE query LIKE 'SELECT status FROM redis_sync.sync_run(''clicks'', ''2020-07-11'')%'}),
	'1/1', 'xmin: the waiting caller advertises no xmin');
$h->finish;
is($$out, "succeeded\n", 'xmin: the run succeeded');
# the workers' statistics reach the cumulative statistics when they exit
usleep(1_000_000);
my ($upd1, $hot1) = split / /, $node->safe_psql('postgres', $member_upd);
cmp_ok($upd1 - $upd0, '>=', 60000, 'xmin: every member total was updated');
cmp_ok(($hot1 - $hot0) / ($upd1 - $upd0), '>', 0.5, 'xmin: most member updates were HOT on full pages');
expect_tables_match($node, 'clicks:daily:2020-07-11', '2020-07-11', 'after a run with no caller xmin');

load_day($redis, '2020-07-12', 60000, 43);
($h, $out, $err) = background_psql_query($node, q{BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT status FROM redis_sync.sync_run('clicks', '2020-07-12'); COMMIT;});
ok(defined wait_progress($node, 1000), 'xmin: the repeatable read run made progress');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE backend_xmin IS NOT NULL) || '/' || count(*)
	FROM pg_stat_activity WHERE query LIKE '%SELECT status FROM redis_sync.sync_run(''clicks'', ''2020-07-12'')%'
	AND pid <> pg_backend_pid()}),
	'1/1', 'xmin: a repeatable read caller keeps its xmin');
$h->finish;
like($$out, qr/succeeded/, 'xmin: the repeatable read run succeeded');
expect_tables_match($node, 'clicks:daily:2020-07-12', '2020-07-12', 'after a repeatable read run');

$node->stop;
done_testing();
