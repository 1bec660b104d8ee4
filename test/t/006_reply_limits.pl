# Limits on what a Redis server can make a backend hold or believe:
# max_reply_bytes against a real key and against a fake server that
# announces a 1.2 GB string, replies larger than the request, and host
# name lookups.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisSyncTest;
use Test::More;
use Time::HiRes qw(time);

my $redis = start_redis();
my $node = new_sync_node('limits', redis => $redis);
my $rport = $redis->{port};

# peak resident memory of the backend that runs the statement before it, in kB
my $hwm_sql = q{SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s*(\d+)'))[1]};

# --- max_reply_bytes against a real key ---------------------------------
$redis->cli('ZADD', 'bigmember', '1', 'x' x 100_000);
$redis->cli('ZADD', 'k', '1', 'a', '2', 'b');
$redis->cli('EVAL', "for i=1,100 do redis.call('ZADD', KEYS[1], i, 'member-' .. i) end",
	'1', 'many');
$node->safe_psql('postgres', qq{
	CREATE SERVER small_replies FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$rport', max_reply_bytes '1kB');
	CREATE USER MAPPING FOR PUBLIC SERVER small_replies;
	CREATE FOREIGN TABLE big_member (member text, score float8)
	  SERVER small_replies OPTIONS (key 'bigmember');
	CREATE FOREIGN TABLE small_k (member text, score float8)
	  SERVER small_replies OPTIONS (key 'k');
	CREATE FOREIGN TABLE many_one_page (member text, score float8)
	  SERVER small_replies OPTIONS (key 'many');
	CREATE FOREIGN TABLE many_small_pages (member text, score float8)
	  SERVER small_replies OPTIONS (key 'many', page_size '10');
});

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT length(member) FROM big_member;\nSELECT count(*) FROM small_k;",
	on_error_stop => 0);
like($err, qr/reply from Redis server "small_replies" exceeds max_reply_bytes \(1024 bytes\)/,
	'a 100 kB member over a 1 kB limit: the error names the server and the limit');
like($err, qr/The server announced a string of 100000 bytes/,
	'the error reports the announced string length');
is($out, '2', 'the next query in the same session on the same server works');

# the limit is on one reply: 100 members (about 2.3 kB) in one ZRANGE reply
# are over it, the same members in pages of 10 are not
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM many_one_page');
like($err, qr/exceeds max_reply_bytes \(1024 bytes\).*The reply is at least \d+ bytes long/s,
	'many short members in one reply over the limit are refused');
is($node->safe_psql('postgres', 'SELECT count(*) FROM many_small_pages'), '100',
	'the same members in pages of 10 are read');

# raising the limit lets the big member through
$node->safe_psql('postgres',
	"ALTER SERVER small_replies OPTIONS (SET max_reply_bytes '200000')");
is($node->safe_psql('postgres', 'SELECT length(member) FROM big_member'), '100000',
	'after ALTER SERVER the 100 kB member is read');

# --- a fake server announcing a 1.2 GB string, then sending it slowly ----
my $fake_port = start_fake_server(reply => "\$1200000000\r\n", trickle => 65536);
$node->safe_psql('postgres', qq{
	CREATE SERVER huge FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$fake_port', command_timeout '60000');
	CREATE USER MAPPING FOR PUBLIC SERVER huge;
	CREATE FOREIGN TABLE huge_t (member text, score float8) SERVER huge OPTIONS (key 'k');
});
my $t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM huge_t;\n$hwm_sql;",
	on_error_stop => 0);
my $elapsed = time - $t0;
like($err, qr/reply from Redis server "huge" exceeds max_reply_bytes \(268435456 bytes\)/,
	'an announced 1.2 GB string fails at the default limit of 256 MB');
like($err, qr/The server announced a string of 1200000000 bytes/,
	'the error reports the announced length');
unlike($err, qr/did not reply within/, 'it failed on the limit, not on command_timeout');
cmp_ok($elapsed, '<', 50, sprintf('the scan failed before command_timeout (%.2f s)', $elapsed));
like($out, qr/^\d+$/, 'the backend reports its peak memory');
cmp_ok($out, '<', 150_000, "the backend's peak resident memory stayed small ($out kB)");

# a lowered limit catches slow data that never announces its size: an
# endless status line
my $line_port = start_fake_server(reply => '+', trickle => 512);
$node->safe_psql('postgres', qq{
	CREATE SERVER endless FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$line_port', command_timeout '60000', max_reply_bytes '4kB');
	CREATE USER MAPPING FOR PUBLIC SERVER endless;
	CREATE FOREIGN TABLE endless_t (member text, score float8) SERVER endless OPTIONS (key 'k');
});
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM endless_t');
like($err, qr/reply from Redis server "endless" exceeds max_reply_bytes \(4096 bytes\).*The reply is at least \d+ bytes long/s,
	'an endless line fails at the limit');

# an array header announcing more elements than can fit
my $array_port = start_fake_server(reply => "*1000000000\r\n", trickle => 512);
$node->safe_psql('postgres', qq{
	CREATE SERVER big_array FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (port '$array_port', command_timeout '60000');
	CREATE USER MAPPING FOR PUBLIC SERVER big_array;
	CREATE FOREIGN TABLE big_array_t (member text, score float8) SERVER big_array OPTIONS (key 'k');
});
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM big_array_t;\n$hwm_sql;",
	on_error_stop => 0);
like($err, qr/reply from Redis server "big_array" exceeds max_reply_bytes \(268435456 bytes\).*The server announced an array of 1000000000 elements/s,
	'an array of a billion elements is refused before hiredis allocates it');
cmp_ok($out, '<', 150_000, "the backend's peak resident memory stayed small ($out kB)");

# --- replies larger than the request ------------------------------------
my $pairs = join('', map { "\$2\r\nm$_\r\n\$1\r\n$_\r\n" } 0 .. 9)
  . join('', map { "\$3\r\nm$_\r\n\$2\r\n$_\r\n" } 10 .. 49);
my $liar_port = start_fake_server(reply => "-ERR unexpected\r\n",
	replies => { ZCARD => ":100\r\n", ZRANGE => "*100\r\n$pairs", ZADD => ":7\r\n" });
$node->safe_psql('postgres', qq{
	CREATE SERVER liar FOREIGN DATA WRAPPER redis_zset OPTIONS (port '$liar_port');
	CREATE USER MAPPING FOR PUBLIC SERVER liar;
	CREATE FOREIGN TABLE liar_t (member text, score float8, rank bigint)
	  SERVER liar OPTIONS (key 'lk');
});
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM liar_t WHERE rank < 4');
like($err, qr/unexpected reply from Redis server "liar" to ZRANGE of key "lk"/,
	'50 pairs for a window of 4 ranks are a protocol error naming command and key');
is($node->safe_psql('postgres', 'SELECT count(*) FROM liar_t WHERE rank < 60'), '50',
	'50 pairs for a window of 60 ranks are read');
$node->safe_psql('postgres',
	"CREATE FOREIGN TABLE liar_w (member text, score float8) SERVER liar OPTIONS (key 'lw')");
foreach my $insert ("INSERT INTO liar_w VALUES ('a', 1)",
	"INSERT INTO liar_w SELECT 'm' || g, g FROM generate_series(1, 3) g",
	"INSERT INTO liar_w VALUES ('a', 1) RETURNING *")
{
	($ret, $out, $err) = $node->psql('postgres', $insert);
	like($err, qr/unexpected reply from Redis server "liar" to ZADD of key "lw"/,
		"ZADD of one member answered with 7: $insert");
}

# --- host names ---------------------------------------------------------
$node->safe_psql('postgres', qq{
	CREATE SERVER by_name FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (host 'localhost', port '$rport');
	CREATE USER MAPPING FOR PUBLIC SERVER by_name;
	CREATE FOREIGN TABLE by_name_t (member text, score float8) SERVER by_name OPTIONS (key 'k');
	CREATE SERVER no_host FOREIGN DATA WRAPPER redis_zset
	  OPTIONS (host 'no-such-host.invalid', port '$rport', connect_timeout '3000');
	CREATE USER MAPPING FOR PUBLIC SERVER no_host;
	CREATE FOREIGN TABLE no_host_t (member text, score float8) SERVER no_host OPTIONS (key 'k');
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM by_name_t'), '2',
	'a host name is looked up and connected to');
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM no_host_t');
like($err,
	qr/could not look up host name "no-such-host.invalid" of Redis server "no_host"|lookup of host name "no-such-host.invalid" timed out/,
	'a name that does not resolve fails with a clear error');

# --- option validation --------------------------------------------------
($ret, $out, $err) = $node->psql('postgres',
	"CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '1000')");
like($err, qr/invalid value for option "max_reply_bytes": "1000"/, 'under 1 kB is refused');
($ret, $out, $err) = $node->psql('postgres',
	"CREATE SERVER bad FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '5GB')");
like($err, qr/invalid value for option "max_reply_bytes": "5GB"/, 'over 4 GB is refused');
$node->safe_psql('postgres',
	"CREATE SERVER good FOREIGN DATA WRAPPER redis_zset OPTIONS (max_reply_bytes '4GB')");
pass('4GB is accepted');

$node->stop;
done_testing();
