# Least privilege (#17), tried as ordinary roles would try it: LOGIN roles
# alice, bob and carol (no superuser) attack the catalog, foreign servers,
# other roles' runs and the shared worker slots, and each attempt is refused
# or ends safely.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep);

my $redis = start_redis();
my $rport = $redis->{port};
# Caps small enough to reach with a few runs: 3 runs and 4 workers in all,
# 2 of each per role.
my $node = new_sync_node('security', redis => $redis, conf => q{
shared_preload_libraries = 'redis_sync'
redis_sync.max_runs = 3
redis_sync.max_runs_per_role = 2
redis_sync.max_workers = 4
redis_sync.max_workers_per_role = 2
});
my $date = '2020-05-05';

# as($role, $sql): run $sql connected as $role; returns ($ret, $out, $err)
sub as
{
	my ($role, $sql) = @_;
	return $node->psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

# in_background($role, $sql): start psql as $role; returns [harness, \out, \err]
sub in_background
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		  '-d', $node->connstr('postgres') . " user=$role", '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	return [ $h, \$out, \$err ];
}

# stderr_until($bg, $re): collect a background psql's output until its stderr
# matches $re (true) or 60 s pass (false)
sub stderr_until
{
	my ($bg, $re) = @_;
	for (1 .. 1200)
	{
		$bg->[0]->pump_nb;
		return 1 if ${ $bg->[2] } =~ $re;
		usleep(50_000);
	}
	return 0;
}

# load($key, $n): $n members "$key/1".. with scores 1..$n
sub load
{
	my ($key, $n) = @_;
	$redis->cli('EVAL', "for i=1,$n do redis.call('ZADD', KEYS[1], i, KEYS[1] .. '/' .. i) end", '1', $key);
	return;
}

# mismatches($key, $table[, $d]): rows of $table for $d ($date) that differ from the
# sorted set $key, plus members missing on either side
sub mismatches
{
	my ($key, $table, $d) = @_;
	$d //= $date;
	return $node->safe_psql('postgres', qq{
		DROP FOREIGN TABLE IF EXISTS chk;
		CREATE FOREIGN TABLE chk (member text, score bigint) SERVER redis OPTIONS (key '$key');
		SELECT count(*) FROM chk FULL JOIN (SELECT * FROM $table WHERE click_date = '$d') t
		  ON t.name = chk.member WHERE t.click_count IS DISTINCT FROM chk.score;
	});
}

# Roles, their schemas and daily tables, and a gate: a statement trigger on
# the daily tables that waits while public.gate is closed, so that runs can
# be held mid-way.
$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
	GRANT USAGE ON FOREIGN SERVER redis TO PUBLIC;
	CREATE TABLE public.gate (open boolean NOT NULL);
	INSERT INTO public.gate VALUES (true);
	GRANT SELECT ON public.gate TO PUBLIC;
	CREATE FUNCTION public.gate_wait() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  WHILE NOT (SELECT open FROM public.gate) LOOP PERFORM pg_sleep(0.05); END LOOP;
	  RETURN NULL;
	END $$;
	DO $$
	DECLARE r text[];
	BEGIN
	  FOREACH r SLICE 1 IN ARRAY ARRAY[['alice', 'daily'], ['alice', 'daily1'], ['alice', 'daily2'],
	                                   ['alice', 'daily3'], ['bob', 'daily'], ['carol', 'daily'],
	                                   ['carol', 'pay']] LOOP
	    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', r[1], r[1]);
	    EXECUTE format('CREATE TABLE %I.%I (name text, click_date date, click_count bigint,
	                    PRIMARY KEY (name, click_date))', r[1], r[2]);
	    EXECUTE format('CREATE TRIGGER gate BEFORE INSERT ON %I.%I
	                    FOR EACH STATEMENT EXECUTE FUNCTION public.gate_wait()', r[1], r[2]);
	    EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', r[1], r[2], r[1]);
	  END LOOP;
	END $$;
});
for my $r (qw(alice bob carol))
{
	my ($ret, $out, $err) = as($r, qq{SELECT redis_sync.create_job('${r}_job', 'redis', '$r:%Y-%m-%d',
		daily_table => '$r.daily', partitions => 2, workers => 2, chunk_size => 50) > 0});
	is($out, 't', "$r creates a job") or diag($err);
}
for my $j (1 .. 3)
{
	as('alice', qq{SELECT redis_sync.create_job('alice_job$j', 'redis', 'alice$j:%Y-%m-%d',
		daily_table => 'alice.daily$j', partitions => 2, workers => 2, chunk_size => 50)});
	load("alice$j:$date", 200);
}
load("$_:$date", 200) for qw(alice bob carol);
my $bob_job = $node->safe_psql('postgres', "SELECT job_id FROM redis_sync.job WHERE job_name = 'bob_job'");

# --- 1. the catalog is read-only to roles --------------------------------
$redis->cli('SET', 'bob:tenant:data', 'precious');
my @attacks = (
	"UPDATE redis_sync.run SET status = 'failed', read_key = 'bob:tenant:data'",
	"INSERT INTO redis_sync.run (job_id, run_date, status, trigger, source_key, read_key)
	   SELECT job_id, '$date', 'failed', 'manual', 'x', 'bob:tenant:data' FROM redis_sync.job",
	"DELETE FROM redis_sync.run",
	"UPDATE redis_sync.job SET daily_key = 'bob:%Y-%m-%d'",
	"INSERT INTO redis_sync.job (job_name, owner, server_name, daily_key, daily_table)
	   VALUES ('fake', 'bob', 'redis', 'bob:%Y-%m-%d', 'alice.daily')",
	"UPDATE redis_sync.run_partition SET next_offset = 0",
	"SELECT nextval('redis_sync.run_run_id_seq')");
for my $sql (@attacks)
{
	my ($ret, $out, $err) = as('alice', $sql);
	like($err, qr/permission denied for (table|sequence)/, "alice is refused: " . (split /\n/, $sql)[0]);
}
my ($ret, $out, $err) = as('alice', "SELECT status FROM redis_sync.sync_run('alice_job', '$date')");
is($out, 'succeeded', "alice's own run succeeds after her attempts") or diag($err);
# a run of today's key takes (and then drops) a snapshot: the only key the engine deletes
($ret, $out, $err) = as('alice', "SELECT status FROM redis_sync.sync_run('alice_job', current_date)");
is($out, 'succeeded', "alice's run of today (with a snapshot) succeeds") or diag($err);
is($redis->cli('GET', 'bob:tenant:data'), 'precious', "bob's plain string key still exists in Redis");
is($redis->cli('ZCARD', "bob:$date"), '200', "bob's sorted set is untouched");
is(mismatches("alice:$date", 'alice.daily'), '0', "alice's table equals her key, row by row");

# --- 2. jobs obey USAGE on the foreign server -----------------------------
$redis->cli('ZADD', 'secret:payroll', '5000', 'ceo', '3000', 'cfo');
$node->safe_psql('postgres', qq{
	CREATE SERVER redis_admin FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$rport');
	CREATE USER MAPPING FOR PUBLIC SERVER redis_admin;
});
($ret, $out, $err) = as('carol', qq{CREATE FOREIGN TABLE carol.payroll (member text, score bigint)
	SERVER redis_admin OPTIONS (key 'secret:payroll')});
like($err, qr/permission denied for foreign server redis_admin/, 'carol cannot create a foreign table on redis_admin');
($ret, $out, $err) = as('carol', q{SELECT redis_sync.create_job('carol_pay', 'redis_admin', 'secret:payroll',
	daily_table => 'carol.daily')});
like($err, qr/permission denied for foreign server redis_admin/, 'nor a job on it');
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER redis_admin TO carol');
($ret, $out, $err) = as('carol', q{SELECT redis_sync.create_job('carol_pay', 'redis_admin', 'secret:payroll',
	daily_table => 'carol.pay')});
($ret, $out, $err) = as('carol', "SELECT status FROM redis_sync.sync_run('carol_pay', '$date')");
is($out, 'succeeded', 'with USAGE granted her job runs') or diag($err);
$node->safe_psql('postgres', 'REVOKE USAGE ON FOREIGN SERVER redis_admin FROM carol');
$redis->cli('ZADD', 'secret:payroll', '7000', 'cto');
($ret, $out, $err) = as('carol', "SELECT status FROM redis_sync.sync_run('carol_pay', '$date')");
like($err, qr/permission denied for foreign server redis_admin/, 'a revoked USAGE stops the next run');
is($node->safe_psql('postgres', "SELECT string_agg(name, ',' ORDER BY name) FROM carol.pay"),
	'ceo,cfo', 'and the run copied nothing more');
($ret, $out, $err) = as('carol', "SELECT redis_sync.alter_job('carol_pay', workers => 1)");
like($err, qr/permission denied for foreign server redis_admin/, 'nor can she alter the job while she lacks USAGE');

# --- 3. a job never points at another wrapper's server ---------------------
$node->safe_psql('postgres', qq{
	CREATE FOREIGN DATA WRAPPER dummy;
	CREATE SERVER pgsrv FOREIGN DATA WRAPPER dummy OPTIONS (host '127.0.0.1', port '$rport');
	CREATE USER MAPPING FOR PUBLIC SERVER pgsrv OPTIONS (user 'svc', password 'pgsecret');
	GRANT USAGE ON FOREIGN SERVER pgsrv TO carol;
});
($ret, $out, $err) = as('carol', q{SELECT redis_sync.create_job('carol_pg', 'pgsrv', 'k', daily_table => 'carol.daily')});
like($err, qr/server "pgsrv" is not a redis_zset server/, "create_job refuses another wrapper's server");
($ret, $out, $err) = as('carol', "SELECT redis_sync.alter_job('carol_job', server_name => 'pgsrv')");
like($err, qr/server "pgsrv" is not a redis_zset server/, 'so does alter_job');
($ret, $out, $err) = as('carol', "UPDATE redis_sync.job SET server_name = 'pgsrv'");
like($err, qr/permission denied for table job/, 'and the catalog row cannot be edited');

# --- 5. no role can hold another role's runs up ----------------------------
my $locker = in_background('alice',
	"SELECT pg_advisory_lock(1381190210, $bob_job), pg_advisory_lock(1381190210, 0); SELECT pg_sleep(300)");
ok(wait_for($node, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted", '2'),
	"alice holds advisory locks on bob's job id and on 0");
($ret, $out, $err) = as('bob', "SELECT status FROM redis_sync.sync_run('bob_job', '$date')");
is($out, 'succeeded', "bob's run is not held up by alice's advisory locks") or diag($err);
is(mismatches("bob:$date", 'bob.daily'), '0', "bob's table equals his key, row by row");
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'alice'");
$locker->[0]->finish;

# --- 6. worker and run caps across roles; 4. views show the caller's runs ----
$node->safe_psql('postgres', 'UPDATE public.gate SET open = false');
my $use_sql = q{SELECT count(*) FILTER (WHERE backend_type = 'redis_sync coordinator') || ' ' ||
	count(*) FILTER (WHERE backend_type = 'redis_sync worker') || ' ' ||
	count(*) FILTER (WHERE backend_type = 'redis_sync coordinator' AND usename = 'alice') || ' ' ||
	count(*) FILTER (WHERE backend_type = 'redis_sync worker' AND usename = 'alice') || ' ' ||
	count(*) FILTER (WHERE backend_type = 'redis_sync coordinator' AND usename = 'bob') || ' ' ||
	count(*) FILTER (WHERE backend_type = 'redis_sync worker' AND usename = 'bob') FROM pg_stat_activity};
my @alice_runs = map { in_background('alice', "SELECT status FROM redis_sync.sync_run('alice_job$_', '$date')") } 1 .. 3;
ok(stderr_until($alice_runs[2], qr/waiting for a free run slot/) || stderr_until($alice_runs[1], qr/waiting for a free run slot/)
	|| stderr_until($alice_runs[0], qr/waiting for a free run slot/),
	"one of alice's three runs waits for a run slot");
ok(wait_for($node, $use_sql, '2 2 2 2 0 0'), 'alice holds 2 runs and 2 workers (her share), no more')
	or diag($node->safe_psql('postgres', $use_sql));
my ($waiting) = grep { ${ $_->[2] } =~ /waiting/ } @alice_runs;
like(${ $waiting->[2] }, qr/The limit redis_sync\.max_runs_per_role is reached/, 'the NOTICE names the per-role setting');

load('bob:2020-05-06', 200);
my $bob_run = in_background('bob', "SELECT status FROM redis_sync.sync_run('bob_job', '2020-05-06')");
ok(wait_for($node, $use_sql, '3 4 2 2 1 2'), "bob's run starts with 2 workers while alice's wait: 3 runs and 4 workers in all")
	or diag($node->safe_psql('postgres', $use_sql));
my $carol_run = in_background('carol', "SELECT status FROM redis_sync.sync_run('carol_job', '$date')");
ok(stderr_until($carol_run, qr/The limit redis_sync\.max_runs is reached/), "carol's run waits, and the NOTICE names redis_sync.max_runs");
is((split / /, $node->safe_psql('postgres', $use_sql))[0], '3', 'still 3 runs in all');

# 4. the views, while runs of alice and bob are going
($ret, $out, $err) = as('alice', 'SELECT string_agg(DISTINCT job_name, \',\') FROM redis_sync.progress');
like($out, qr/^alice_job\d(,alice_job\d)?$/, "alice's progress shows only her runs");
($ret, $out, $err) = as('bob', 'SELECT string_agg(DISTINCT job_name, \',\') FROM redis_sync.progress');
is($out, 'bob_job', "bob's progress shows only his run");
is($node->safe_psql('postgres', 'SELECT count(*) FROM redis_sync.progress'), '3', 'a superuser sees all 3');

# open the gate: every run ends, the caps holding all along
$node->safe_psql('postgres', 'UPDATE public.gate SET open = true');
my ($max_runs, $max_workers, $max_role_runs, $max_role_workers) = (0, 0, 0, 0);
for (1 .. 1200)
{
	my @u = split / /, $node->safe_psql('postgres', $use_sql);
	$max_runs = $u[0] if $u[0] > $max_runs;
	$max_workers = $u[1] if $u[1] > $max_workers;
	for my $i (2, 4) { $max_role_runs = $u[$i] if $u[$i] > $max_role_runs; }
	for my $i (3, 5) { $max_role_workers = $u[$i] if $u[$i] > $max_role_workers; }
	last if $u[0] == 0 && !grep { $_->[0]->pumpable } @alice_runs, $bob_run, $carol_run;
	$_->[0]->pump_nb for grep { $_->[0]->pumpable } @alice_runs, $bob_run, $carol_run;
	usleep(50_000);
}
$_->[0]->finish for @alice_runs, $bob_run, $carol_run;
is(join(',', map { ${ $_->[1] } =~ s/\n//r } @alice_runs, $bob_run, $carol_run),
	'succeeded,succeeded,succeeded,succeeded,succeeded', 'all five runs succeeded');
ok($max_runs <= 3 && $max_workers <= 4 && $max_role_runs <= 2 && $max_role_workers <= 2,
	"caps held while the runs ended (most seen: $max_runs runs, $max_workers workers; per role $max_role_runs and $max_role_workers)");
is(mismatches("alice$_:$date", "alice.daily$_"), '0', "alice_job$_ equals its key") for 1 .. 3;
is(mismatches('bob:2020-05-06', 'bob.daily', '2020-05-06'), '0', 'bob_job equals its key');
is(mismatches("carol:$date", 'carol.daily'), '0', 'carol_job equals its key');

# 4. history: each role sees only its runs
($ret, $out, $err) = as('alice', q{SELECT count(*) FILTER (WHERE job_name NOT LIKE 'alice%') || ' ' || count(*) FROM redis_sync.history});
is($out, '0 5', 'alice sees her 5 runs in history and none of the others');
($ret, $out, $err) = as('bob', q{SELECT string_agg(DISTINCT job_name, ',') FROM redis_sync.history});
is($out, 'bob_job', 'bob sees only his');
($ret, $out, $err) = as('alice', q{SELECT count(*) FROM redis_sync.run r JOIN redis_sync.job j USING (job_id) WHERE j.owner <> 'alice'::regrole});
is($out, '0', 'nor do the catalog tables show alice other roles\' runs');

# --- 8. a long schedule is stored normalized -----------------------------
($ret, $out, $err) = as('alice', q{SELECT redis_sync.alter_job('alice_job', enabled => false,
	schedule => '*' || repeat(' ', 300) || '* * * *');
	SELECT schedule FROM redis_sync.job WHERE job_name = 'alice_job'});
like($out, qr/^\* \* \* \* \*$/m, 'a schedule with 300 spaces is stored as "* * * * *"');

# --- 9. dropping a job's owner ------------------------------------------
$node->safe_psql('postgres', q{
	CREATE ROLE dave LOGIN; CREATE ROLE erin LOGIN;
	CREATE TABLE public.shared_daily (name text, click_date date, click_count bigint, PRIMARY KEY (name, click_date));
	GRANT SELECT, INSERT, UPDATE ON public.shared_daily TO PUBLIC;
	CREATE DATABASE other;
});
as('dave', q{SELECT redis_sync.create_job('dave_job', 'redis', 'dave:%Y-%m-%d', daily_table => 'public.shared_daily')});
as('erin', q{SELECT redis_sync.create_job('erin_job', 'redis', 'erin:%Y-%m-%d', daily_table => 'public.shared_daily')});
($ret, $out, $err) = $node->psql('postgres', 'DROP ROLE dave');
like($err, qr/role "dave" cannot be dropped because it owns redis_sync jobs/, 'DROP ROLE of a job owner is refused');
like($err, qr/The role owns 1 job in database "postgres": 'dave_job'/, 'the detail counts and names the jobs');
$node->safe_psql('postgres', 'REASSIGN OWNED BY dave TO carol');
is($node->safe_psql('postgres', "SELECT owner FROM redis_sync.job WHERE job_name = 'dave_job'"), 'carol',
	'REASSIGN OWNED BY moves the job to the new owner');
($ret, $out, $err) = $node->psql('postgres', 'DROP ROLE dave');
is($ret, 0, 'then the role can be dropped');
($ret, $out, $err) = $node->psql('postgres', 'DROP OWNED BY erin; DROP ROLE erin');
is($node->safe_psql('postgres', "SELECT count(*) FROM redis_sync.job WHERE job_name = 'erin_job'"), '0',
	'DROP OWNED BY drops the role\'s jobs, and the role can be dropped');

# dropped from a database without redis_sync, the check cannot see the jobs:
# the job is left with a bare owner OID, and never runs as anyone else
$node->safe_psql('postgres', 'CREATE ROLE frank LOGIN');
load("frank:$date", 10);
as('frank', q{SELECT redis_sync.create_job('frank_job', 'redis', 'frank:%Y-%m-%d', daily_table => 'public.shared_daily')});
($ret, $out, $err) = $node->psql('other', 'DROP ROLE frank');
is($ret, 0, 'DROP ROLE from a database without the extension succeeds');
($ret, $out, $err) = $node->psql('postgres', "SELECT status FROM redis_sync.sync_run('frank_job', '$date')");
isnt($ret, 0, "a run of the orphaned job fails");
is($node->safe_psql('postgres', "SELECT count(*) FROM public.shared_daily WHERE name LIKE 'frank%'"), '0',
	'and it wrote nothing');
like($err, qr/owner of job "frank_job" no longer exists/, 'the error says the owner is gone');
($ret, $out, $err) = $node->psql('postgres', "SELECT redis_sync.alter_job('frank_job', enabled => true)");
like($err, qr/owner of job "frank_job" no longer exists/, 'alter_job says the owner is gone');
$node->safe_psql('postgres', "SELECT redis_sync.drop_job('frank_job')");

# --- 10. purge_runs ------------------------------------------------------
# Fixture runs, finished 40 days ago unless said otherwise; job alice_hist
# has no other runs, so its newest fixture run is the job's newest.
as('alice', q{SELECT redis_sync.create_job('alice_hist', 'redis', 'h:%Y-%m-%d', daily_table => 'alice.daily')});
as('bob', q{SELECT redis_sync.create_job('bob_hist', 'redis', 'h:%Y-%m-%d', daily_table => 'bob.daily')});
my $ids = $node->safe_psql('postgres', q{
	WITH f(n, job, d, status, age) AS (VALUES
	  (1, 'alice_hist', '2020-01-01', 'succeeded', 40),
	  (2, 'alice_hist', '2020-01-01', 'failed', 40),
	  (3, 'alice_hist', '2020-01-01', 'failed', 40),
	  (4, 'alice_hist', '2020-01-02', 'cancelled', 40),
	  (5, 'alice_hist', '2020-01-02', 'skipped', 40),
	  (6, 'alice_hist', '2020-01-03', 'succeeded', 1),
	  (7, 'alice_hist', '2020-01-04', 'succeeded', 40),
	  (8, 'bob_hist', '2020-01-01', 'succeeded', 40),
	  (9, 'bob_hist', '2020-01-02', 'succeeded', 40)),
	ins AS (
	  INSERT INTO redis_sync.run (job_id, run_date, status, trigger, started_at, finished_at)
	  SELECT j.job_id, f.d::date, f.status, 'manual', now() - f.age * interval '1 day',
	         now() - f.age * interval '1 day'
	  FROM f JOIN redis_sync.job j ON j.job_name = f.job ORDER BY f.n
	  RETURNING run_id, job_id, run_date, status)
	SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM ins});
my ($r1, $r2, $r3, $r4, $r5, $r6, $r7, $b1, $b2) = split / /, $ids;
$node->safe_psql('postgres', qq{
	INSERT INTO redis_sync.run_partition (run_id, partition_no, start_offset, end_offset, next_offset)
	VALUES ($r1, 0, 0, 9, 10), ($b1, 0, 0, 9, 10);
	INSERT INTO redis_sync.rejected (run_id, partition_no, member, sqlstate, error)
	VALUES ($r1, 0, 'x', '22003', 'too big');
});
($ret, $out, $err) = as('alice', q{SELECT redis_sync.purge_runs('30 days')});
is($out, '3', 'alice purges 3 of her runs') or diag($err);
is($node->safe_psql('postgres', qq{SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM redis_sync.run
	WHERE run_id BETWEEN $r1 AND $b2}), "$r3 $r4 $r6 $r7 $b1 $b2",
	'kept: the newest unfinished run of each date, the young run, the job\'s newest, and all of bob\'s');
is($node->safe_psql('postgres', qq{SELECT (SELECT count(*) FROM redis_sync.run_partition WHERE run_id = $r1)
	+ (SELECT count(*) FROM redis_sync.rejected WHERE run_id = $r1)}), '0',
	'the purged run\'s partitions and rejects went with it');
($ret, $out, $err) = as('bob', q{SELECT redis_sync.purge_runs('30 days')});
is($out, '1', 'bob purges his one old run that is not his newest');
($ret, $out, $err) = as('alice', q{SELECT redis_sync.purge_runs('-1 day')});
like($err, qr/older_than must not be negative/, 'a negative age is refused');
($ret, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET redis_sync.run_retention = 'banana'});
like($err, qr/invalid value for parameter "redis_sync.run_retention"/, 'run_retention must be an interval');
($ret, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET redis_sync.run_retention = '7 days'; SELECT pg_reload_conf()});
is($ret, 0, 'an interval is accepted');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET redis_sync.run_retention; SELECT pg_reload_conf()');

# --- 11. smaller items ---------------------------------------------------
($ret, $out, $err) = as('bob', q{SELECT redis_sync.create_job('alice_job', 'redis', 'x', daily_table => 'bob.daily')});
like($err, qr/job "alice_job" already exists.*Job names are unique across all roles/s,
	'job names are unique across roles (documented)');
($ret, $out, $err) = as('alice', q{SELECT * FROM redis_sync.sync_run('alice_job', NULL)});
like($err, qr/run_date must not be NULL/, 'sync_run with a NULL date is an error');
($ret, $out, $err) = as('bob', q{SELECT * FROM redis_sync.sync_run('alice_job', '2020-05-05')});
like($err, qr/job "alice_job" does not exist/, 'bob cannot run alice\'s job');

done_testing();
