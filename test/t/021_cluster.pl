# Redis Cluster: a real cluster of 3 primaries and 3 replicas, started by
# this test on free loopback ports and shared by its cases.
#
# 1. Foreign tables on the cluster: full scans of keys on every primary,
#    pushdown, ORDER BY ... LIMIT, EXPLAIN's node, writes and IMPORT FOREIGN
#    SCHEMA, each compared with Redis.
# 2. A sync of today's key (read through its snapshot copy, which must share
#    the day key's slot) with the total key on another primary.
# 3. The day key's slot migrates during a scan (a cursor): the scan meets
#    ASK while the key is migrating, then MOVED once the slot is reassigned.
# 4. The same during a sync.
# 5. With read_from 'replica', a sync and a scan read no member from a
#    primary (INFO commandstats of every node).
# 6. A sharded foreign table (shards 3) whose shards' hash tags are served
#    by three primaries: count and sum, the global rank of every member,
#    ORDER BY score [DESC] LIMIT k, member lookups with rank, each against
#    the union of the shards read with redis-cli; EXPLAIN names each shard's
#    node and slot.
# 7. A sharded job (shards 3) of a past day, read from the three primaries
#    (INFO commandstats), and of today, each shard through a copy in its
#    key's slot, in parts of 1000 members (redis_sync.copy_key_members),
#    none left behind.
# 8. The sharded job with read_from 'replica': no primary serves a read.
# 9. One shard's slot migrates during a sharded sync: ASK, then MOVED.
# 10. The day key's primary is killed during a sync; its replica takes over
#    and the run retries (or a resume ends it).
# 11. The user mapping's password is used on every node.
# 12. A slot that no node serves (CLUSTER DELSLOTS): a scan waits on
#    CLUSTERDOWN and ends once the slot is served again, and fails with an
#    error naming the key if it stays unserved.
# Every case ends in a row-by-row comparison with Redis, read with
# redis-cli, not through the foreign data wrapper.  Redirections are
# counted in the server log (redis_sync logs each at DEBUG1).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(usleep time);

my $t_start = time;

# --- the cluster -------------------------------------------------------
my @nodes;
foreach my $i (1 .. 6)
{
	my $bus = PostgreSQL::Test::Cluster::get_free_port();
	push @nodes, start_redis(extra => [
		'--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
		'--cluster-port', $bus, '--cluster-node-timeout', '1000' ]);
}
my @ports = map { $_->{port} } @nodes;
my %dead;    # port => 1 for the node case 6 kills

sub live_nodes { return grep { !$dead{ $_->{port} } } @nodes; }

# However the test ends, no node it started outlives it (by their pid
# files; a node that requires a password cannot be shut down by stop()).
END
{
	foreach my $n (@nodes)
	{
		my $pidfile = "$n->{dir}/redis.pid";
		next unless -f $pidfile;
		my $pid = slurp_file($pidfile) + 0;
		kill 'TERM', $pid if $pid > 0;
	}
}
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '--cluster', 'create', (map { "127.0.0.1:$_" } @ports),
		'--cluster-replicas', '1', '--cluster-yes' ], '<', \undef, '>', \$out, '2>', \$err);
	like($out, qr/All 16384 slots covered/, 'the cluster was created') or diag($out, $err);
}
ok(wait_cluster_ok(@nodes), 'every node reports cluster_state:ok');
diag(sprintf('measured 021: cluster up after %.1f s', time - $t_start));

# the password the nodes require (case 7)
my @auth = ();

# cli($port, @args): one redis-cli command on one node, raw output.
sub cli
{
	my ($port, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '-p', $port, @auth, '--raw', @args ], '<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

# ccli(@args): a command on whichever node serves its key (redis-cli -c).
sub ccli
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $port = (live_nodes())[0]->{port};
	IPC::Run::run([ 'redis-cli', '-c', '-p', $port, @auth, '--raw', @args ], '<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

sub wait_cluster_ok
{
	my (@which) = @_;
	for (1 .. 600)
	{
		my $ok = grep { cli($_->{port}, 'CLUSTER', 'INFO') =~ /cluster_state:ok/ } @which;
		return 1 if $ok == @which;
		usleep(50_000);
	}
	return 0;
}

# The primary that serves a slot, as a live primary sees it: its port.
sub slot_owner
{
	my ($slot) = @_;
	my $port = (live_nodes())[0]->{port};
	foreach my $line (split /\n/, cli($port, 'CLUSTER', 'NODES'))
	{
		my @f = split / /, $line;
		next unless $f[2] =~ /master/ && $f[2] !~ /fail/;
		foreach my $range (@f[8 .. $#f])
		{
			next if $range =~ /^\[/;
			my ($lo, $hi) = split /-/, $range;
			$hi = $lo unless defined $hi;
			return ($f[1] =~ /:(\d+)@/)[0] if $slot >= $lo && $slot <= $hi;
		}
	}
	return undef;
}

sub key_slot { return cli($ports[0], 'CLUSTER', 'KEYSLOT', $_[0]); }
sub node_id { return cli($_[0], 'CLUSTER', 'MYID'); }

# zset($key): the sorted set as { member => score }, read from Redis.
sub zset
{
	my ($key) = @_;
	my %h = split /\n/, ccli('ZRANGE', $key, '0', '-1', 'WITHSCORES');
	return \%h;
}

# rows($node, $sql): two-column rows as { first => second }.
sub rows
{
	my ($node, $sql) = @_;
	my %h = map { split /\|/, $_, 2 } grep { length } split /\n/, $node->safe_psql('postgres', $sql);
	return \%h;
}

# same_set(\%got, \%want, $name): equal member by member.
sub same_set
{
	my ($got, $want, $name) = @_;
	my $diff = grep { !defined $got->{$_} || $got->{$_} != $want->{$_} } keys %$want;
	$diff += grep { !defined $want->{$_} } keys %$got;
	is($diff, 0, "$name: equal to Redis member by member (" . scalar(keys %$want) . ' members)');
}

# load($key, $n, $mul, $mod): members user:1..user:$n with score (i*$mul) % $mod.
sub load
{
	my ($key, $n, $mul, $mod) = @_;
	ccli('EVAL', "for i=1,$n do redis.call('ZADD', KEYS[1], (i * $mul) % $mod, 'user:' .. i) end",
		'1', $key);
}

# Lines of the PostgreSQL log written since offset $from that match $re.
sub log_count
{
	my ($node, $from, $re) = @_;
	my $log = slurp_file($node->logfile);
	return scalar(() = substr($log, $from) =~ /$re/g);
}

# migrate_slot($slot, $from, $to, $between): move a slot's keys with
# SETSLOT IMPORTING/MIGRATING and MIGRATE (clients now get ASK), call
# $between, then assign the slot with SETSLOT NODE on every node (MOVED).
sub migrate_slot
{
	my ($slot, $from, $to, $between) = @_;
	my ($from_id, $to_id) = (node_id($from), node_id($to));
	cli($to, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $from_id);
	cli($from, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $to_id);
	my @keys = split /\n/, cli($from, 'CLUSTER', 'GETKEYSINSLOT', $slot, '1000');
	is(cli($from, 'MIGRATE', '127.0.0.1', $to, '', '0', '10000', 'KEYS', @keys), 'OK',
		"slot $slot: keys migrated from $from to $to (@keys)");
	$between->();
	foreach my $p ($to, $from, grep { $_ != $to && $_ != $from } map { $_->{port} } live_nodes())
	{
		cli($p, 'CLUSTER', 'SETSLOT', $slot, 'NODE', $to_id);
	}
	ok(wait_cluster_ok(live_nodes()), "slot $slot: assigned to $to");
}

# --- PostgreSQL --------------------------------------------------------
my $node = new_sync_node('cluster', redis => $nodes[0],
	conf => "log_min_messages = debug1\n");
my $seeds = join ',', map { "127.0.0.1:$_" } @ports[1 .. 2];
$node->safe_psql('postgres',
	"ALTER SERVER redis OPTIONS (ADD cluster 'on', ADD nodes '$seeds', ADD connect_timeout '1000')");

# --- 1. foreign tables ---------------------------------------------------
my $log_start = -s $node->logfile;
# The slot of keys with and without hash tags, as EXPLAIN shows it, is the
# one Redis computes.
{
	my @keys = ('foo', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}',
		'{}', 'a{b', 'b}a{', "cl\x{e9}:\x{263a}", 'clicks:daily:2026-11-21');
	my $i = 0;
	my $bad = 0;
	foreach my $k (@keys)
	{
		$i++;
		my $lit = $k =~ s/'/''/gr;
		my $plan = $node->safe_psql('postgres', "CREATE FOREIGN TABLE slot_$i (member text) SERVER redis OPTIONS (key '$lit');
			EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM slot_$i");
		my ($slot) = $plan =~ /\(slot (\d+)\)/;
		my $want = key_slot($k);
		$bad++, diag("key $k: EXPLAIN says slot $slot, Redis $want") unless defined $slot && $slot == $want;
	}
	is($bad, 0, 'the slots of ' . scalar(@keys) . ' keys, tagged and not, equal CLUSTER KEYSLOT');
}
# Three keys on three primaries (their tags hash to slots 15495, 3300, 7365).
my @scan_keys = ('{a}:scan', '{b}:scan', '{c}:scan');
my %owners = map { slot_owner(key_slot($_)) => 1 } @scan_keys;
is(scalar(keys %owners), 3, 'the three scanned keys are on three primaries');
# 3001 is prime: the scores of user:1..3000 are distinct
load($_, 3000, 7 + length($_), 3001) foreach @scan_keys;
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE zk (key text, member text, score bigint, rank bigint) SERVER redis;
	CREATE FOREIGN TABLE za (member text, score bigint, rank bigint) SERVER redis
	  OPTIONS (key '{a}:scan', page_size '500');
});
foreach my $k (@scan_keys)
{
	same_set(rows($node, "SELECT member, score FROM zk WHERE key = '$k'"), zset($k), "full scan of $k");
}
my $all = $node->safe_psql('postgres',
	"SELECT count(*), count(DISTINCT key) FROM zk WHERE key = ANY (ARRAY['{a}:scan', '{b}:scan', '{c}:scan'])");
is($all, '9000|3', 'key = ANY reads the keys of three primaries');
{
	my $want = zset('{a}:scan');
	my @top = (sort { $want->{$b} <=> $want->{$a} } keys %$want)[0 .. 9];
	is($node->safe_psql('postgres', 'SELECT string_agg(member, \',\') FROM (SELECT member FROM za ORDER BY score DESC LIMIT 10) s'),
		join(',', @top), 'ORDER BY score DESC LIMIT 10 equals the top of Redis');
	my %range = map { $_ => $want->{$_} } grep { $want->{$_} >= 100 && $want->{$_} < 200 } keys %$want;
	same_set(rows($node, 'SELECT member, score FROM za WHERE score >= 100 AND score < 200'), \%range,
		'pushed-down score range');
	same_set(rows($node, "SELECT member, score FROM za WHERE member = ANY (ARRAY['user:1', 'user:77', 'nobody'])"),
		{ map { $_ => $want->{$_} } 'user:1', 'user:77' }, 'pushed-down member = ANY');
	my @by_rank = sort { $want->{$a} <=> $want->{$b} } keys %$want;
	is($node->safe_psql('postgres', 'SELECT member FROM za WHERE rank = 1234'), $by_rank[1234],
		'pushed-down rank');
	my $owner = slot_owner(key_slot('{a}:scan'));
	like($node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM za ORDER BY score DESC LIMIT 5'),
		qr/Redis Node: 127\.0\.0\.1:$owner \(slot 15495\)/, 'EXPLAIN VERBOSE names the node that serves the key');
}
# writes on a key of another primary
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE zw (member text, score bigint) SERVER redis OPTIONS (key '{c}:writes');
	INSERT INTO zw SELECT 'w:' || i, i FROM generate_series(1, 500) i;
	UPDATE zw SET score = score * 10 WHERE score <= 100;
	UPDATE zw SET member = 'renamed:' || member WHERE member IN ('w:400', 'w:401');
	DELETE FROM zw WHERE score > 450;
	INSERT INTO zk VALUES ('{b}:writes', 'x', 1), ('{a}:writes', 'y', 2), ('{c}:writes', 'z', 3);
});
{
	my %want = map { ('w:' . $_) => ($_ <= 100 ? $_ * 10 : $_) } grep { $_ <= 450 } 1 .. 500;
	delete $want{$_} foreach grep { $want{$_} > 450 } keys %want;
	$want{"renamed:w:$_"} = delete $want{"w:$_"} foreach 400, 401;
	$want{z} = 3;
	same_set(zset('{c}:writes'), \%want, 'INSERT, UPDATE and DELETE on the cluster');
	is(ccli('ZSCORE', '{b}:writes', 'x') . ccli('ZSCORE', '{a}:writes', 'y'), '12',
		'one INSERT writes keys of other primaries');
}
# INSERT ... RETURNING rank (ZADD and ZRANK in one pipeline), TRUNCATE
is($node->safe_psql('postgres', "INSERT INTO zk VALUES ('{c}:writes', 'w:top', 1000000) RETURNING rank"),
	ccli('ZCARD', '{c}:writes') - 1, 'INSERT ... RETURNING rank on the cluster');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE zt1 (member text, score bigint) SERVER redis OPTIONS (key '{a}:trunc');
	CREATE FOREIGN TABLE zt2 (member text, score bigint) SERVER redis OPTIONS (key '{b}:trunc');
	INSERT INTO zt1 VALUES ('m', 1); INSERT INTO zt2 VALUES ('m', 1);
	TRUNCATE zt1, zt2;
});
is(ccli('EXISTS', '{a}:trunc') . ccli('EXISTS', '{b}:trunc'), '00', 'TRUNCATE of keys on two primaries');
# a parallel scan: every worker reads the key from its node
{
	my $par = $node->safe_psql('postgres', q{
		SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0;
		SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
		EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM za;
		CREATE TABLE za_par AS SELECT member, score FROM za;
	});
	like($par, qr/Workers Launched: [12]/, 'the scan ran in parallel');
	same_set(rows($node, 'SELECT member, score FROM za_par'), zset('{a}:scan'), 'a parallel scan on the cluster');
}
$node->safe_psql('postgres', 'CREATE SCHEMA imp; IMPORT FOREIGN SCHEMA "*:scan" FROM SERVER redis INTO imp;');
is($node->safe_psql('postgres',
		"SELECT string_agg(foreign_table_name, ',' ORDER BY foreign_table_name) FROM information_schema.foreign_tables WHERE foreign_table_schema = 'imp'"),
	'{a}:scan,{b}:scan,{c}:scan', 'IMPORT FOREIGN SCHEMA scans every primary');
diag(sprintf('measured 021: foreign tables done after %.1f s', time - $t_start));

# --- 2. a sync with the total key on another primary --------------------
my $today = $node->safe_psql('postgres', 'SELECT current_date');
my $day_key = "clicks:daily:$today";
my $day_owner = slot_owner(key_slot($day_key));
my ($total_key) = grep { slot_owner(key_slot($_)) != $day_owner } ('{a}:total', '{b}:total', '{c}:total');
$node->safe_psql('postgres', qq{
	CREATE TABLE member (name text PRIMARY KEY, click_count bigint NOT NULL);
	CREATE TABLE daily_click_count (name text NOT NULL REFERENCES member,
	  click_date date NOT NULL, click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
	SELECT redis_sync.create_job('clicks', 'redis', 'clicks:daily:%Y-%m-%d', '$total_key',
	  'member', 'daily_click_count', partitions => 10, workers => 2, chunk_size => 500);
});
load($day_key, 30000, 13, 100003);
load($total_key, 40000, 31, 1000003);

sub expect_synced
{
	my ($date, $key, $name) = @_;
	same_set(rows($node, "SELECT name, click_count FROM daily_click_count WHERE click_date = '$date'"),
		zset($key), "$name: the daily table");
	my $totals = zset($total_key);
	my $day = zset($key);
	same_set(rows($node, "SELECT m.name, m.click_count FROM member m JOIN daily_click_count d USING (name) WHERE d.click_date = '$date'"),
		{ map { $_ => $totals->{$_} } keys %$day }, "$name: the member table");
}

isnt(slot_owner(key_slot($total_key)), $day_owner, "the total key $total_key is on another primary than $day_key");
is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', '$today')"),
	'succeeded 30000', "today's run succeeded");
like($node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_date = '$today'"),
	qr/^redis_sync:snapshot:\{\Q$day_key\E\}:\d+:\d+:\d+:\d+$/, "the snapshot's name carries the day key as its hash tag");
expect_synced($today, $day_key, "today's run");
is(ccli('EXISTS', $node->safe_psql('postgres', "SELECT read_key FROM redis_sync.run WHERE run_date = '$today'")),
	'0', 'the snapshot was dropped');
is(log_count($node, $log_start, qr/redis_sync cluster: (MOVED|ASK)/), 0,
	'no command was redirected while the slots stayed put: each went to its node at once');
diag(sprintf('measured 021: sync done after %.1f s', time - $t_start));

# --- 3. a slot migration during a scan ------------------------------------
{
	my $key = '{b}:scan';
	my $slot = key_slot($key);
	my $from = slot_owner($slot);
	my ($to) = grep { $_ != $from } map { slot_owner(key_slot($_)) } @scan_keys;
	$node->safe_psql('postgres',
		"CREATE FOREIGN TABLE zb (member text, score bigint) SERVER redis OPTIONS (key '$key', page_size '100')");
	my $offset = -s $node->logfile;
	my $bg = $node->background_psql('postgres');
	$bg->query_safe('BEGIN; DECLARE c CURSOR FOR SELECT member, score FROM zb;');
	my $part1 = $bg->query_safe('FETCH 1000 FROM c');
	my ($ask, $part2);
	migrate_slot($slot, $from, $to, sub {
		$part2 = $bg->query_safe('FETCH 1000 FROM c');
		$ask = log_count($node, $offset, qr/ASK for key "\Q$key\E"/);
	});
	my $part3 = $bg->query_safe('FETCH ALL FROM c');
	$bg->query_safe('COMMIT');
	$bg->quit;
	my $moved = log_count($node, $offset, qr/MOVED for key "\Q$key\E"/);
	cmp_ok($ask, '>', 0, "the scan met ASK while the slot was migrating ($ask times)");
	cmp_ok($moved, '>', 0, "the scan met MOVED once the slot was reassigned ($moved times)");
	my %got = map { split /\|/, $_, 2 } grep { length } split /\n/, "$part1\n$part2\n$part3";
	same_set(\%got, zset($key), 'the scan across the migration');
	diag("measured 021: scan migration: ASK $ask, MOVED $moved");
}

# Syncs of past days are slowed down by a statement trigger, so that the
# faults below happen while they read.
$node->safe_psql('postgres', q{
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END$$;
	CREATE TRIGGER slow AFTER INSERT ON daily_click_count FOR EACH STATEMENT EXECUTE FUNCTION slow();
});

# --- 4. a slot migration during a sync --------------------------------------
{
	my $date = '2026-01-15';
	my $key = "clicks:daily:$date";
	my $slot = key_slot($key);
	my $from = slot_owner($slot);
	my ($to) = grep { $_ != $from } map { slot_owner(key_slot($_)) } @scan_keys;
	load($key, 20000, 17, 100003);
	my $offset = -s $node->logfile;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', '$date')");
	ok(defined wait_progress($node, 1500), 'the run is under way');
	my $ask;
	migrate_slot($slot, $from, $to, sub {
		my $done = $node->safe_psql('postgres', 'SELECT members_done FROM redis_sync.progress');
		ok(defined wait_progress($node, $done + 3000), 'the run read on while the key was migrating');
		$ask = log_count($node, $offset, qr/ASK for key "\Q$key\E"/);
	});
	my $still = $node->safe_psql('postgres', 'SELECT count(*) FROM redis_sync.progress');
	$h->finish;
	is($$out, "succeeded 20000\n", 'the run across the migration succeeded') or diag($$err);
	my $moved = log_count($node, $offset, qr/MOVED for key "\Q$key\E"/);
	cmp_ok($ask, '>', 0, "the sync met ASK while the slot was migrating ($ask times)");
	is($still, '1', 'the run was still going when the slot was reassigned');
	cmp_ok($moved, '>', 0, "the sync met MOVED once the slot was reassigned ($moved times)");
	expect_synced($date, $key, 'the run across the migration');
	diag("measured 021: sync migration: ASK $ask, MOVED $moved");
}

# --- 5. reads from replicas ----------------------------------------------------
{
	my $date = '2026-01-17';
	my $key = "clicks:daily:$date";
	load($key, 20000, 23, 100003);
	my @live = live_nodes();
	my %role = map { $_->{port} => (cli($_->{port}, 'ROLE') =~ /^master/ ? 'primary' : 'replica') } @live;
	# the replicas hold the loaded keys before the counts start
	cli(slot_owner(key_slot($_)), 'WAIT', '1', '5000') foreach $key, '{a}:scan';
	cli($_->{port}, 'CONFIG', 'RESETSTAT') foreach @live;
	$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (ADD read_from 'replica')");
	is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', '$date')"),
		'succeeded 20000', 'the run with read_from replica succeeded');
	my $scanned = rows($node, "SELECT member, score FROM zk WHERE key = '{a}:scan'");
	my %reads;
	foreach my $p (keys %role)
	{
		my $stats = cli($p, 'INFO', 'commandstats');
		$reads{$p} = 0;
		$reads{$p} += $1 while $stats =~ /^cmdstat_(?:zrange|zmscore|zcard|zcount|zrank|zscore):calls=(\d+)/mg;
	}
	my ($on_primaries, $on_replicas) = (0, 0);
	$role{$_} eq 'primary' ? ($on_primaries += $reads{$_}) : ($on_replicas += $reads{$_}) foreach keys %reads;
	is($on_primaries, 0, 'read_from replica: the primaries served no read');
	cmp_ok($on_replicas, '>', 0, "read_from replica: the replicas served the reads ($on_replicas commands)");
	same_set($scanned, zset('{a}:scan'), 'a scan with read_from replica');
	expect_synced($date, $key, 'the run with read_from replica');
	# today's key again: its copy is written on the primary, and the
	# workers read it from a replica once the replicas confirmed it
	ccli('ZINCRBY', $day_key, '5', 'user:7');
	is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.sync_run('clicks', '$today')"),
		'succeeded 30000', "today's run again, with read_from replica, succeeded");
	expect_synced($today, $day_key, "today's run with read_from replica");
	$node->safe_psql('postgres', 'ALTER SERVER redis OPTIONS (DROP read_from)');
	diag("measured 021: read_from replica: $on_replicas reads on replicas, $on_primaries on primaries");
}

# --- sharded sets and sharded jobs on the cluster (cases 6 to 9) ------------
# The shards' hash tags {<p>0}, {<p>1}, {<p>2}: the first prefix <p> whose
# three tags are served by three different primaries.
my $p;
foreach my $cand (map { "s$_" } 1 .. 200)
{
	my %o = map { slot_owner(key_slot("{$cand$_}")) => 1 } 0 .. 2;
	$p = $cand, last if keys(%o) == 3;
}
ok(defined $p, "the tags {${p}0}, {${p}1}, {${p}2} are served by three primaries");
my @shard_slot = map { key_slot("{$p$_}") } 0 .. 2;
my @shard_owner = map { slot_owner($_) } @shard_slot;

# read_calls($port, $re): calls of the commands matching $re (lower case,
# as INFO commandstats names them) that a node served since CONFIG RESETSTAT.
sub read_calls
{
	my ($port, $re) = @_;
	my $stats = cli($port, 'INFO', 'commandstats');
	my $n = 0;
	$n += $1 while $stats =~ /^cmdstat_(?:$re):calls=(\d+)/mg;
	return $n;
}

# replica_of($port): the port of a replica of the primary on $port.
sub replica_of
{
	my ($port) = @_;
	my $id = node_id($port);
	foreach my $line (split /\n/, cli($port, 'CLUSTER', 'NODES'))
	{
		my @f = split / /, $line;
		return ($f[1] =~ /:(\d+)@/)[0] if $f[2] =~ /slave/ && $f[3] eq $id;
	}
	return undef;
}

# wait_replicated($port): wait until every replica of the primary on $port
# has its replication offset (so a read from a replica sees what was written).
sub wait_replicated
{
	my ($port) = @_;
	my ($want) = cli($port, 'INFO', 'replication') =~ /master_repl_offset:(\d+)/;
	for (1 .. 400)
	{
		my @off = cli($port, 'INFO', 'replication') =~ /^slave\d+:.*offset=(\d+)/mg;
		return 1 if @off && !grep { $_ < $want } @off;
		usleep(25_000);
	}
	return 0;
}

# --- 6. a sharded foreign table over three primaries --------------------------
diag(sprintf('measured 021: sharded cases start after %.1f s', time - $t_start));
{
	my @keys = map { "sh:{$p$_}:set" } 0 .. 2;
	# scores (7i + shard) mod 1009: many ties, within and across shards
	ccli('EVAL', "for i=1,4000 do redis.call('ZADD', KEYS[1], (i * 7 + $_) % 1009, 'm:$_:' .. i) end",
		'1', $keys[$_]) foreach 0 .. 2;
	my %union = map { %{ zset($_) } } @keys;
	# the global order: score, then member bytes; rank is the position in it
	my @asc = sort { $union{$a} <=> $union{$b} || $a cmp $b } keys %union;
	my %rank = map { $asc[$_] => $_ } 0 .. $#asc;
	my $sum = 0;
	$sum += $_ foreach values %union;
	$node->safe_psql('postgres', "CREATE FOREIGN TABLE shz (member text, score bigint, rank bigint) SERVER redis
		OPTIONS (key 'sh:{$p%s}:set', shards '3', page_size '500')");
	my $offset = -s $node->logfile;
	cli($_, 'CONFIG', 'RESETSTAT') foreach @shard_owner;
	is($node->safe_psql('postgres', 'SELECT count(*) || \' \' || sum(score) FROM shz'), scalar(@asc) . " $sum",
		'sharded table: count and sum of the union of three shards');
	my @zr = map { read_calls($_, 'zrange') } @shard_owner;
	is(scalar(grep { $_ > 0 } @zr), 3, "sharded table: each shard read from its own primary (ZRANGE calls @zr)");
	same_set(rows($node, 'SELECT member, score FROM shz'), \%union, 'sharded table: full scan');
	same_set(rows($node, 'SELECT member, rank FROM shz'), \%rank, 'sharded table: the global rank of every member');
	is($node->safe_psql('postgres', 'SELECT member, score, rank FROM shz ORDER BY score DESC LIMIT 25'),
		join("\n", map { "$_|$union{$_}|$rank{$_}" } reverse @asc[ $#asc - 24 .. $#asc ]),
		'sharded table: ORDER BY score DESC LIMIT 25 (a merge of three primaries) equals the union\'s top');
	is($node->safe_psql('postgres', 'SELECT member, score, rank FROM shz ORDER BY score LIMIT 10'),
		join("\n", map { "$_|$union{$_}|$rank{$_}" } @asc[ 0 .. 9 ]),
		'sharded table: ORDER BY score LIMIT 10 equals the union\'s bottom');
	my %seen;
	my @look = grep { !$seen{$_}++ } ($asc[0], $asc[1], $asc[6000], $asc[-1], 'm:1:77', 'm:2:4000', 'm:0:1');
	is($node->safe_psql('postgres',
			'SELECT member, score, rank FROM shz WHERE member = ANY (ARRAY[' . join(',', map { "'$_'" } @look, 'nobody')
			  . ']) ORDER BY member COLLATE "C"'),
		join("\n", map { "$_|$union{$_}|$rank{$_}" } sort @look),
		'sharded table: member lookups with their global rank');
	is($node->safe_psql('postgres', "SELECT rank FROM shz WHERE member = '$asc[7777]'"), 7777,
		'sharded table: one member\'s global rank');
	my $nodes = join ', ', map { "shard $_: 127.0.0.1:$shard_owner[$_] (slot $shard_slot[$_])" } 0 .. 2;
	my $plan = $node->safe_psql('postgres', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT member, score, rank FROM shz ORDER BY score DESC LIMIT 25');
	like($plan, qr/Redis Shards: 3 .*\n.*Redis Shard Read: k-way merge by score descending/,
		'sharded table: EXPLAIN VERBOSE shows the merge of three shards');
	like($plan, qr/Redis Nodes: \Q$nodes\E$/m, 'sharded table: EXPLAIN VERBOSE names the node and slot of each shard')
		or diag($plan);
	$plan = $node->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM shz WHERE member = 'm:0:1'");
	ok($plan =~ /Redis Shard Read: every shard at once/ && $plan =~ /Redis Nodes: \Q$nodes\E$/m,
		'sharded table: EXPLAIN VERBOSE of a member lookup') or diag($plan);
	is(log_count($node, $offset, qr/redis_sync cluster: (MOVED|ASK)/), 0,
		'sharded table: no command was redirected');
	diag(sprintf('measured 021: sharded table (tags {%s0..2} on %s) done after %.1f s',
		$p, join(',', @shard_owner), time - $t_start));
}

# --- 7. a sharded job: a past day and today -----------------------------------
$node->safe_psql('postgres', qq{
	CREATE TABLE shm (name text PRIMARY KEY, click_count bigint NOT NULL);
	CREATE TABLE shd (name text NOT NULL REFERENCES shm, click_date date NOT NULL,
	  click_count bigint NOT NULL, PRIMARY KEY (name, click_date));
	SELECT redis_sync.create_job('sharded', 'redis', 'x:{$p%s}:daily:%Y-%m-%d', 'x:{$p%s}:total',
	  'shm', 'shd', partitions => 10, workers => 3, chunk_size => 500, shards => 3);
});

# load_shards($date, $n, $seed): members u:<shard>:1..$n on each shard's
# key of $date, and their totals on the shard's total key; the replicas
# have them once it returns.
sub load_shards
{
	my ($date, $n, $seed) = @_;
	foreach my $s (0 .. 2)
	{
		ccli('EVAL', "for i=1,$n do redis.call('ZADD', KEYS[1], (i * $seed + $s) % 100003, 'u:$s:' .. i); "
			  . "redis.call('ZADD', KEYS[2], i * 10 + $seed, 'u:$s:' .. i) end",
			'2', "x:{$p$s}:daily:$date", "x:{$p$s}:total");
	}
	ok(!grep({ !wait_replicated(slot_owner($_)) } @shard_slot), "$date: the replicas have the shards");
}

# Both tables equal the shards' keys in Redis, member by member.
sub expect_sharded
{
	my ($date, $name) = @_;
	my (%day, %total);
	foreach my $s (0 .. 2)
	{
		my $d = zset("x:{$p$s}:daily:$date");
		my $t = zset("x:{$p$s}:total");
		@day{ keys %$d } = values %$d;
		$total{$_} = $t->{$_} foreach keys %$d;
	}
	same_set(rows($node, "SELECT name, click_count FROM shd WHERE click_date = '$date'"), \%day,
		"$name: the daily table");
	same_set(rows($node, "SELECT m.name, m.click_count FROM shm m JOIN shd d USING (name) WHERE d.click_date = '$date'"),
		\%total, "$name: the member table");
}

{
	my $date = '2026-02-01';
	load_shards($date, 10000, 7);
	my $offset = -s $node->logfile;
	cli($_, 'CONFIG', 'RESETSTAT') foreach @shard_owner;
	my ($r, $st) = split / /, $node->safe_psql('postgres',
		"SELECT run_id || ' ' || status || ' ' || members FROM redis_sync.sync_run('sharded', '$date')"), 2;
	is($st, 'succeeded 30000', 'sharded job, past day: the run succeeded');
	my @zr = map { read_calls($_, 'zrange') } @shard_owner;
	is(scalar(grep { $_ > 0 } @zr), 3,
		"sharded job, past day: the three shards were read from three primaries (ZRANGE calls @zr)");
	is($node->safe_psql('postgres',
			"SELECT string_agg(read_key || '=' || members, ' ' ORDER BY shard) FROM redis_sync.run_shard WHERE run_id = $r"),
		join(' ', map { "x:{$p$_}:daily:$date=10000" } 0 .. 2), 'sharded job, past day: each shard\'s key read directly');
	expect_sharded($date, 'sharded job, past day');
	is(log_count($node, $offset, qr/redis_sync cluster: (MOVED|ASK)/), 0,
		'sharded job, past day: no command was redirected');

	# today's copies in parts of 1000 members (the extension is not
	# preloaded: a reload sets it for the runs started after it), each part
	# in its copy's slot, or the copy's scripts would fail with CROSSSLOT
	$node->append_conf('postgresql.conf', "redis_sync.copy_key_members = 1000\n");
	$node->reload;
	ok(wait_for($node, 'SHOW redis_sync.copy_key_members', '1000', 60),
		'sharded job, today: copies in parts of 1000 members');
	load_shards($today, 10000, 11);
	$offset = -s $node->logfile;
	($r, $st) = split / /, $node->safe_psql('postgres',
		"SELECT run_id || ' ' || status || ' ' || members FROM redis_sync.sync_run('sharded', '$today')"), 2;
	is($st, 'succeeded 30000', 'sharded job, today: the run succeeded');
	my @copies = split /\n/, $node->safe_psql('postgres',
		"SELECT read_key FROM redis_sync.run_shard WHERE run_id = $r ORDER BY shard");
	is(scalar(grep { $copies[$_] =~ /^redis_sync:snapshot:\{\Q$p$_\E\}:\d+:\d+:$r:\d+:$_$/ } 0 .. 2), 3,
		'sharded job, today: each shard read a copy named with its key\'s hash tag') or diag("@copies");
	is(join(' ', map { key_slot($_) } @copies), "@shard_slot",
		'sharded job, today: each copy is in its shard key\'s slot');
	is(join('', map { ccli('EXISTS', $_) } @copies), '000', 'sharded job, today: the copies were dropped');
	my @primaries = grep { cli($_->{port}, 'ROLE') =~ /^master/ } live_nodes();
	is(join('', map { scalar grep { /^redis_sync:snapshot:/ } split /\n/, cli($_->{port}, 'KEYS', '*') } @primaries),
		'000', 'sharded job, today: no part of a copy is left on any primary');
	$node->append_conf('postgresql.conf', "redis_sync.copy_key_members = 1000000\n");
	$node->reload;
	ok(wait_for($node, 'SHOW redis_sync.copy_key_members', '1000000', 60),
		'copy_key_members is a million again');
	expect_sharded($today, 'sharded job, today');
	is(log_count($node, $offset, qr/redis_sync cluster: (MOVED|ASK)/), 0,
		'sharded job, today: no command was redirected');
	diag(sprintf('measured 021: sharded job done after %.1f s', time - $t_start));
}

# --- 8. a sharded job with read_from 'replica' ---------------------------------
{
	my $date = '2026-02-02';
	load_shards($date, 10000, 13);
	my @live = live_nodes();
	my %role = map { $_->{port} => (cli($_->{port}, 'ROLE') =~ /^master/ ? 'primary' : 'replica') } @live;
	cli($_->{port}, 'CONFIG', 'RESETSTAT') foreach @live;
	$node->safe_psql('postgres', "ALTER SERVER redis OPTIONS (ADD read_from 'replica')");
	is($node->safe_psql('postgres', "SELECT status || ' ' || members FROM redis_sync.sync_run('sharded', '$date')"),
		'succeeded 30000', 'sharded job, read_from replica: the run succeeded');
	$node->safe_psql('postgres', 'ALTER SERVER redis OPTIONS (DROP read_from)');
	my $reads = 'zrange|zmscore|zcard|zcount|zrank|zscore';
	my $on_primaries = 0;
	$on_primaries += read_calls($_, $reads) foreach grep { $role{$_} eq 'primary' } keys %role;
	is($on_primaries, 0, 'sharded job, read_from replica: the primaries served no read');
	my @zr = map { read_calls(replica_of($_), 'zrange') } @shard_owner;
	is(scalar(grep { $_ > 0 } @zr), 3,
		"sharded job, read_from replica: each shard was read from its primary's replica (ZRANGE calls @zr)");
	expect_sharded($date, 'sharded job, read_from replica');
}

# --- 9. a slot migration of one shard's slot during a sharded sync -------------
{
	my $date = '2026-02-03';
	load_shards($date, 10000, 17);
	$node->safe_psql('postgres',
		'CREATE TRIGGER slow AFTER INSERT ON shd FOR EACH STATEMENT EXECUTE FUNCTION slow()');
	my ($slot, $from, $to) = ($shard_slot[1], $shard_owner[1], $shard_owner[2]);
	my $tag = qr/\{\Q${p}1\E\}/;
	my $offset = -s $node->logfile;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT status || ' ' || members FROM redis_sync.sync_run('sharded', '$date')");
	ok(defined wait_progress($node, 1500), 'sharded migration: the run is under way');
	# A worker reads a whole partition at once and then writes it in
	# chunks; with ten partitions a shard, the run reads shard 1's keys
	# (its partitions, and the other shards' checks of their members in
	# it) every few tenths of a second, until ASK is met.
	my $ask = 0;
	migrate_slot($slot, $from, $to, sub {
		for (1 .. 1200)
		{
			last if ($ask = log_count($node, $offset, qr/ASK for key "[^"]*$tag/)) > 0;
			usleep(25_000);
		}
	});
	my $still = $node->safe_psql('postgres', 'SELECT count(*) FROM redis_sync.progress');
	$h->finish;
	is($$out, "succeeded 30000\n", 'sharded migration: the run succeeded') or diag($$err);
	my $moved = log_count($node, $offset, qr/MOVED for key "[^"]*$tag/);
	cmp_ok($ask, '>', 0, "sharded migration: ASK was met while shard 1's slot was migrating ($ask times)");
	is($still, '1', 'sharded migration: the run was still going when the slot was reassigned');
	cmp_ok($moved, '>', 0, "sharded migration: MOVED was met once the slot was reassigned ($moved times)");
	expect_sharded($date, 'sharded migration');
	$node->safe_psql('postgres', 'DROP TRIGGER slow ON shd');
	diag("measured 021: sharded sync migration: ASK $ask, MOVED $moved");
	diag(sprintf('measured 021: sharded cases done after %.1f s', time - $t_start));
}

# --- 10. the day key's primary is killed during a sync ------------------------
{
	my $date = '2026-01-16';
	my $key = "clicks:daily:$date";
	my $owner = slot_owner(key_slot($key));
	my ($victim) = grep { $_->{port} == $owner } @nodes;
	load($key, 20000, 19, 100003);
	# let the replica catch up before its primary dies
	cli($owner, 'WAIT', '1', '5000');
	my $offset = -s $node->logfile;
	my ($h, $out, $err) = background_psql_query($node,
		"SELECT status FROM redis_sync.sync_run('clicks', '$date')");
	ok(defined wait_progress($node, 2000), 'the run is under way');
	$dead{$owner} = 1;
	kill 'KILL', slurp_file("$victim->{dir}/redis.pid") + 0;
	unlink "$victim->{dir}/redis.pid";
	$h->finish;
	my $first = $$out =~ s/\s+$//r;
	my $retries = log_count($node, $offset, qr/retrying in \d+ ms/);
	my $down = log_count($node, $offset, qr/redis_sync cluster: CLUSTERDOWN/);
	diag("measured 021: killed primary $owner: the run ended \"$first\" " . ($$err =~ /ERROR:\s*(.*)/ ? "($1) " : '')
		  . "after $retries retries of a partition and $down waits on CLUSTERDOWN");
	ok(wait_cluster_ok(grep { $_ != $victim } @nodes), 'a replica took over');
	isnt(slot_owner(key_slot($key)), $owner, 'the day key is served by the promoted replica');
	if ($first ne 'succeeded')
	{
		is($node->safe_psql('postgres', "SELECT status FROM redis_sync.sync_run('clicks', '$date')"),
			'succeeded', 'the resumed run succeeded');
	}
	else
	{
		cmp_ok($retries, '>', 0, 'the run retried and succeeded');
	}
	expect_synced($date, $key, 'the run across the failover');
}

# --- 11. credentials apply to every node ---------------------------------------
{
	my @live = live_nodes();
	foreach my $n (@live)
	{
		cli($n->{port}, 'CONFIG', 'SET', 'masterauth', 'cluster-secret');
		cli($n->{port}, 'CONFIG', 'SET', 'requirepass', 'cluster-secret');
	}
	@auth = ('-a', 'cluster-secret', '--no-auth-warning');
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM zk WHERE key = '{a}:scan'");
	like($err, qr/could not authenticate to Redis server "redis"/, 'without the password: an authentication error');
	$node->safe_psql('postgres', "ALTER USER MAPPING FOR PUBLIC SERVER redis OPTIONS (ADD password 'cluster-secret')");
	foreach my $k (@scan_keys)
	{
		same_set(rows($node, "SELECT member, score FROM zk WHERE key = '$k'"), zset($k),
			"with the user mapping's password: $k");
	}
	cli($_->{port}, 'CONFIG', 'SET', 'requirepass', '') foreach @live;
	@auth = ();
	$node->safe_psql('postgres', 'ALTER USER MAPPING FOR PUBLIC SERVER redis OPTIONS (DROP password)');
}

# --- 12. CLUSTERDOWN --------------------------------------------------------------
{
	my $key = '{c}:scan';
	my $slot = key_slot($key);
	my $owner = slot_owner($slot);
	my $offset = -s $node->logfile;
	cli($owner, 'CLUSTER', 'DELSLOTS', $slot);
	my ($h, $out, $err) = background_psql_query($node, "SELECT count(*) FROM zk WHERE key = '$key'");
	my $waited = 0;
	for (1 .. 200)
	{
		last if ($waited = log_count($node, $offset, qr/CLUSTERDOWN for key "\Q$key\E"/)) > 0;
		usleep(25_000);
	}
	cli($owner, 'CLUSTER', 'ADDSLOTS', $slot);
	$h->finish;
	cmp_ok($waited, '>', 0, 'the scan met CLUSTERDOWN while the slot was unserved');
	is($$out, "3000\n", 'and read the key once the slot was served again') or diag($$err);
	ok(wait_cluster_ok(live_nodes()), 'the cluster is whole again');

	cli($owner, 'CLUSTER', 'DELSLOTS', $slot);
	my $t0 = time;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT count(*) FROM zk WHERE key = '$key'");
	my $secs = time - $t0;
	cli($owner, 'CLUSTER', 'ADDSLOTS', $slot);
	like($stderr, qr/ERROR:  (Redis cluster "redis" is not ready for key "\Q$key\E"|no node of Redis cluster "redis" serves slot $slot)/,
		'a slot that stays unserved: an error that names the key or slot');
	diag(sprintf("measured 021: CLUSTERDOWN: %d waits, then an error after %.1f s: %s", $waited, $secs,
		join(' ', grep { /ERROR|DETAIL/ } split /\n/, $stderr)));
	ok(wait_cluster_ok(live_nodes()), 'the cluster is whole again');
}

diag(sprintf('measured 021: total %.1f s', time - $t_start));
$node->stop;
$_->stop foreach live_nodes();
done_testing();
