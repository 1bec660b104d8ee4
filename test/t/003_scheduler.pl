# The scheduler background worker and pg_cron: scheduled runs, skipped
# occurrences, disabled jobs, resume after a crash, and sync_run() driven
# by pg_cron.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep);

my $redis = start_redis();
my $node = new_sync_node('sched', redis => $redis, conf => qq{
shared_preload_libraries = 'redis_sync, pg_cron'
redis_sync.database = 'postgres'
cron.database_name = 'postgres'
cron.use_background_workers = on
});

ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync scheduler'", '1', 30),
	'the scheduler is running');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'redis_sync scheduler'"),
	'1', 'it shows as "redis_sync scheduler"');

# A job due every 2 seconds runs by itself, as a scheduled run.
my $today = $node->safe_psql('postgres', 'SELECT current_date');
load_day($redis, $today, 20000, 3);
setup_job($node, partitions => 4, workers => 2, chunk_size => 1000, schedule => '2 seconds');
ok(wait_for($node, "SELECT count(*) > 0 FROM redis_sync.run WHERE trigger = 'schedule' AND status = 'succeeded'", 't', 60),
	'a scheduled run succeeded');
expect_tables_match($node, "clicks:daily:$today", $today, 'scheduled run');
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.run WHERE trigger = 'manual'"), '0',
	'no run was started by hand');

# Disabled jobs are not scheduled.
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', enabled => false)");
sleep 1;
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM redis_sync.run');
sleep 5;
is($node->safe_psql('postgres', 'SELECT count(*) FROM redis_sync.run'), $before, 'a disabled job does not run');

# A run longer than its period: the next occurrences are skipped, not doubled.
load_day($redis, $today, 200000, 5);
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', enabled => true, schedule => '1 seconds', chunk_size => 100, workers => 1)");
ok(wait_for($node, "SELECT count(*) > 0 FROM redis_sync.run WHERE status = 'skipped'", 't', 60),
	'an occurrence due during a run was recorded as skipped');
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.run WHERE status = 'running'"), '1',
	'only one run is going');

# SIGKILL of a worker during a scheduled run: after the restart the
# scheduler resumes the run, and the result is exact.
# (once its copy of today's key is complete: a run cut short mid-copy is
# started anew, not resumed; 010_live_copy.pl tests that)
my $run = wait_value($node, "SELECT run_id FROM redis_sync.run WHERE status = 'running' AND members IS NOT NULL", 30);
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', enabled => false)");
ok(wait_for($node, "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'redis_sync worker'", 't', 30),
	'a worker is running');
my $wpid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync worker' LIMIT 1");
kill 'KILL', $wpid;
ok(wait_for($node, 'SELECT 1', '1', 60), 'the server restarted');
ok(wait_for($node, "SELECT status || ' ' || trigger FROM redis_sync.run WHERE run_id = $run", 'succeeded resume', 120),
	'the scheduler resumed the interrupted run');
expect_tables_match($node, "clicks:daily:$today", $today, 'scheduled run after SIGKILL');

# pg_cron can drive sync_run() as well (pg_cron 1.4 in Debian 12 has no
# second schedules, so this waits for the next minute).
load_day($redis, '2020-05-05', 5000, 9);
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	SELECT cron.schedule('sync-clicks', '* * * * *', $$SELECT redis_sync.sync_run('clicks', '2020-05-05')$$);
});
ok(wait_for($node, "SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'succeeded'", 't', 90),
	'pg_cron ran sync_run and it succeeded');
$node->safe_psql('postgres', "SELECT cron.unschedule('sync-clicks')");
is($node->safe_psql('postgres', "SELECT status FROM redis_sync.run WHERE run_date = '2020-05-05' ORDER BY run_id LIMIT 1"),
	'succeeded', 'the pg_cron run is in the history');
expect_tables_match($node, 'clicks:daily:2020-05-05', '2020-05-05', 'run driven by pg_cron');

# A scheduled time that passes while the server is down runs once after the
# start, with no backlog.
load_day($redis, $today, 3000, 11);
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', enabled => true, schedule => '15 seconds', workers => 2, chunk_size => 1000)");
my $last = wait_value($node, "SELECT max(run_id) FROM redis_sync.run WHERE trigger = 'schedule' AND started_at > now() - interval '1 second'", 30);
ok($last ne '', 'the 15-second schedule ran');
ok(wait_for($node, "SELECT count(*) FROM redis_sync.run WHERE status = 'running'", '0', 30), 'no run is going');
$node->stop('fast');
sleep 35;    # two occurrences pass while the server is down
$node->start;
ok(wait_for($node, "SELECT count(*) FROM redis_sync.run WHERE run_id > $last AND trigger = 'schedule'", '1', 10),
	'the missed occurrences ran once after the start');
sleep 3;
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.run WHERE run_id > $last AND trigger = 'schedule'"),
	'1', 'and not once per missed occurrence');
$node->safe_psql('postgres', "SELECT redis_sync.alter_job('clicks', enabled => false)");

# SIGTERM stops the scheduler cleanly and the postmaster starts it again.
my $spid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'redis_sync scheduler'");
kill 'TERM', $spid;
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'redis_sync scheduler' AND pid <> $spid", '1', 40),
	'the scheduler came back after SIGTERM');

$node->stop;
done_testing();
