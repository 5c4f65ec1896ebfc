# The state-changing Lua scripts, run by themselves against a real Redis:
# complete.lua's node, indexes and the six auto-edge types with their
# weights, themes and cap; fencing in complete.lua and fail.lua; claim.lua's
# reaping of expired leases and the stall limit.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
my $redis = start_redis();

my %lua = map { $_ => lua_script($_) } qw(create claim complete fail heartbeat requeue reveal);
my $json = JSON::PP->new->canonical;
my $n = 0;

# a claimed job with token 7
sub claimed_job {
    my $id = sprintf '00000000-0000-4000-8000-%012d', ++$n;
    $redis->cmd('HSET', "${P}job:$id", 'status', 'processing', 'token', '7',
                'created_at', '2026-01-01T00:00:00.000000Z');
    $redis->cmd('ZADD', "${P}processing", 1, $id);
    return $id;
}

sub node {
    my (%o) = @_;
    my ($y, $m, $d) = @o{qw(year month day)};
    my $path = "/$y/m$m/" . sprintf('%02d', $d) . "/1200/$o{country}/r/c/$o{slug}";
    my %node = (path => $path, year => $y, month => "m$m", month_num => $m,
                day => $d, time => '1200', country => $o{country},
                region => 'r', city => 'c', slug => $o{slug},
                figures => $o{figures} // [], tags => $o{tags} // [],
                image_url => undef, layer => 2, type => 'event',
                visibility => $o{visibility} // 'private',
                created_by => $o{created_by} // 'system',
                created_at => '2026-01-01T00:00:00.000000Z',
                sort_key => $y * 100000000 + $m * 1000000 + $d * 10000 + 1200);
    return ($path, $json->encode(\%node));
}

sub complete {
    my ($id, $token, $path, $node, $cap) = @_;
    return $redis->cmd('EVAL', $lua{complete}, 3, "${P}job:$id",
                       "${P}processing", "${P}confirming", $token, $id,
                       '2026-01-01T00:01:00.000000Z', $path, $node, $P,
                       $cap // 20, 1, "${P}events", 600);
}

sub edges { $redis->hash("${P}edges:$_[0]") }

# ---------------------------------------------------------------------------

my ($pa, $na) = node(year => 1776, month => 7, day => 4, country => 'us',
                     slug => 'a', figures => ['John Adams', 'Thomas Jefferson'],
                     tags => ['independence', 'law']);
my $ja = claimed_job();
# every nginx hears the change on the events channel, with the final state
my $sub = bless { %$redis, sock => undef }, ref $redis;
$sub->cmd('SUBSCRIBE', "${P}events", "${P}events:final");
Clockchain::Test::Redis::_read_reply($sub->{sock});   # the second confirmation
sub next_event {            # the next event that starts with "$id ": "channel: text"
    my ($id) = @_;
    local $SIG{ALRM} = sub { die "no event of $id in 5 s\n" };
    alarm 5;
    while (1) {
        my $m = Clockchain::Test::Redis::_read_reply($sub->{sock});
        next unless index($m->[2], "$id ") == 0;
        alarm 0;
        (my $ch = $m->[1]) =~ s/^\Q$P\E//;
        return "$ch: $m->[2]";
    }
}
is_deeply(complete($ja, '7', $pa, $na), [1, $pa],
          'first node: completed, version 1, at its canonical path');
is(next_event($ja), "events:final: $ja completed 1 2026-01-01T00:00:00.000000Z "
                   . "2026-01-01T00:01:00.000000Z $pa",
   'completed: first the final state, with created_at, completed_at and the path');
is(next_event($ja), "events: $ja completed 1",
   '... then the change as every version of the module reads it');

# the same outcome again (its reply was lost, the runner sent it again):
# acknowledged with the version it made, nothing written twice
{
    my $edges = $redis->cmd('HLEN', "${P}edges:$pa");
    my $node = $redis->hash("${P}node:$pa");
    is_deeply(complete($ja, '7', $pa, $na), [1, $pa],
              'the same outcome again: version 1 and its path, not FENCED');
    is($redis->hash("${P}job:$ja")->{version}, 1, '... the job not changed again');
    is($redis->cmd('HLEN', "${P}edges:$pa"), $edges, '... no edge written again');
    is_deeply($redis->hash("${P}node:$pa"), $node, '... the node as it was');
    eval { $redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$ja", "${P}processing", "${P}confirming",
                       '7', $ja, '2026-01-01T00:01:00.000000Z', 'x', 1,
                       "${P}events", 900) };
    like($@ // '', qr/FENCED/, 'another outcome with the same token: FENCED');
    eval { complete($ja, '8', $pa, $na) };
    like($@ // '', qr/FENCED/, 'the same outcome with another token: FENCED');
}
my $job = $redis->hash("${P}job:$ja");
is($job->{status}, 'completed', 'job completed');
is($job->{path}, $pa, 'job path');
ok(!exists $job->{token}, 'token cleared');
my $cttl = $redis->cmd('TTL', "${P}job:$ja");
ok($cttl > 590 && $cttl <= 600, "a completed job is kept for its retention ($cttl s)");
is($redis->cmd('TTL', "${P}node:$pa"), -1, 'the node never expires');
is($redis->cmd('ZSCORE', "${P}processing", $ja), undef, 'not processing');
my $node = $redis->hash("${P}node:$pa");
is($node->{year}, 1776, 'node year');
is($node->{figures}, '["John Adams","Thomas Jefferson"]', 'lists as JSON');
ok(!exists $node->{image_url}, 'nulls are absent');
is(scalar keys %{ edges($pa) }, 0, 'the first node has no edges');

# same day, other country, shares one figure and one tag
my ($pb, $nb) = node(year => 1776, month => 7, day => 4, country => 'fr',
                     slug => 'b', figures => ['Thomas Jefferson'],
                     tags => ['law', 'war']);
complete(claimed_job(), '7', $pb, $nb);

# 5 years later, same country/region/city as a
my ($pc, $nc) = node(year => 1781, month => 10, day => 19, country => 'us',
                     slug => 'c');
complete(claimed_job(), '7', $pc, $nc);

# 30 years earlier: no era edges
my ($pd, $nd) = node(year => 1746, month => 1, day => 1, country => 'xx',
                     slug => 'd');
complete(claimed_job(), '7', $pd, $nd);

my %e = map { $_ => $json->decode(edges($pb)->{$_}) } keys %{ edges($pb) };
is_deeply([sort grep { /\|\Q$pa\E$/ } keys %e],
          [sort "contemporaneous|$pa", "same_figure|$pa", "thematic|$pa"],
          'b: contemporaneous, same_figure and thematic with a');
is($e{"contemporaneous|$pa"}{weight}, 0.8, 'contemporaneous weight 0.8');
is($e{"same_figure|$pa"}{weight}, 0.6, 'same_figure weight 0.6');
is($e{"same_figure|$pa"}{theme}, 'Thomas Jefferson', 'same_figure theme');
is($e{"thematic|$pa"}{weight}, 0.3, 'thematic weight 0.3');
is($e{"thematic|$pa"}{theme}, 'law', 'thematic theme');
is($e{"thematic|$pa"}{created_by}, 'auto', 'created_by auto');
ok(exists edges($pa)->{"contemporaneous|$pb"}, 'a has the reverse edge');

my %c = map { $_ => $json->decode(edges($pc)->{$_}) } keys %{ edges($pc) };
ok(exists $c{"same_era|$pa"} && exists $c{"same_era|$pb"},
   'c: same_era with a and b (5 years, not the same date)');
is($c{"same_era|$pa"}{weight}, 0.3, 'same_era weight 0.3');
ok(exists $c{"follows|$pa"} && exists $c{"follows|$pb"},
   'c follows a and b');
is($c{"follows|$pa"}{weight}, 0.4, 'follows weight 0.4');
ok(exists edges($pa)->{"precedes|$pc"}, 'a precedes c');
ok(exists $c{"same_location|$pa"}, 'c: same_location with a');
is($c{"same_location|$pa"}{weight}, 0.5, 'same_location weight 0.5');
ok(!exists $c{"same_location|$pb"}, 'c: no same_location with b');
is(scalar(grep { /\Q$pd\E/ } keys %{ edges($pa) }), 0,
   'd, 30 years away, has no edge with a');
is(scalar keys %{ edges($pd) }, 0, 'd has no edges');

# the same path again updates the node, keeps created_at and visibility
$redis->cmd('HSET', "${P}node:$pa", 'visibility', 'public');
my $size = $redis->cmd('DBSIZE');
my ($pa2, $na2) = node(year => 1776, month => 7, day => 4, country => 'us',
                       slug => 'a', figures => ['John Adams'],
                       tags => ['independence']);
complete(claimed_job(), '7', $pa2, $na2);
is($redis->hash("${P}node:$pa")->{visibility}, 'public',
   'update keeps the visibility');
is($redis->hash("${P}node:$pa")->{figures}, '["John Adams"]',
   'update writes the new fields');
is($redis->cmd('DBSIZE'), $size + 1, 'update adds only the new job key');

# a path whose node another creator made: the node, its creator and its
# contents stay theirs; the later job gets a node of its own at the same
# path with the slug's hex suffix replaced by 4 hex digits of its job id
sub job_as {                # a claimed job with token 7 and the given id
    my ($id) = @_;
    $redis->cmd('HSET', "${P}job:$id", 'status', 'processing', 'token', '7',
                'created_at', '2026-01-01T00:00:00.000000Z');
    return $id;
}
my %w = (year => 1815, month => 6, day => 18, country => 'be',
         slug => 'waterloo-1a2b');
my ($pw, $nwa) = node(%w, created_by => 'alice', figures => ['Wellington']);
is_deeply(complete(claimed_job(), '7', $pw, $nwa), [1, $pw],
          'collision: alice makes the node at the canonical path');
my $alice_node = $redis->hash("${P}node:$pw");
(my $pw_bob = $pw) =~ s/1a2b$/3c4d/;
my (undef, $nwb) = node(%w, created_by => 'bob', figures => ['Napoleon']);
my $jbob = job_as('3c4d5e6f-0718-4293-a4b5-c6d7e8f90a1b');
is_deeply(complete($jbob, '7', $pw, $nwb), [1, $pw_bob],
          "collision: bob's job lands on a path of its own, slug suffix from "
          . 'its job id');
is_deeply($redis->hash("${P}node:$pw"), $alice_node,
          "collision: alice's node is untouched (creator and contents)");
my $bob_node = $redis->hash("${P}node:$pw_bob");
is($bob_node->{created_by}, 'bob', "collision: bob's node is bob's");
is($bob_node->{path}, $pw_bob, "collision: ... and names its own path");
is($bob_node->{slug}, 'waterloo-3c4d', "collision: ... and its own slug");
is($bob_node->{figures}, '["Napoleon"]', "collision: ... with bob's contents");
is($redis->hash("${P}job:$jbob")->{path}, $pw_bob,
   "collision: bob's job has the path of bob's node");
is(next_event("$jbob completed"),
   "events:final: $jbob completed 1 2026-01-01T00:00:00.000000Z "
   . "2026-01-01T00:01:00.000000Z $pw_bob",
   'collision: the final state published names that path');
ok($redis->cmd('ZSCORE', "${P}idx:time", $pw_bob), "collision: bob's node is indexed");

(my $pw_carol = $pw) =~ s/1a2b$/0718/;
my (undef, $nwc) = node(%w, created_by => 'carol');
is_deeply(complete(job_as('3c4d0718-aaaa-4bbb-8ccc-dddddddddddd'), '7', $pw,
                   $nwc), [1, $pw_carol],
          "collision: carol's first 4 digits are bob's path: the next 4");

my (undef, $nwa2) = node(%w, created_by => 'alice', figures => ['Blucher']);
my $nodes_before = scalar @{ $redis->cmd('KEYS', "${P}node:*") };
is_deeply(complete(claimed_job(), '7', $pw, $nwa2), [1, $pw],
          'collision: alice again updates her node');
is($redis->hash("${P}node:$pw")->{figures}, '["Blucher"]', '... with the new contents');
is(scalar @{ $redis->cmd('KEYS', "${P}node:*") }, $nodes_before, '... and no new node');

my ($ph, $nh) = node(year => 1066, month => 10, day => 14, country => 'gb',
                     slug => 'x' x 100, created_by => 'alice');
complete(claimed_job(), '7', $ph, $nh);
my (undef, $nhb) = node(year => 1066, month => 10, day => 14, country => 'gb',
                        slug => 'x' x 100, created_by => 'bob');
(my $ph_bob = $ph) =~ s/x{100}$/('x' x 95) . '-9f8e'/e;
is_deeply(complete(job_as('9f8e7d6c-5b4a-4392-8170-6a5b4c3d2e1f'), '7', $ph, $nhb),
          [1, $ph_bob],
          'collision: a slug with no hex suffix of 100 bytes keeps 95 and gets 4');

# cap: 30 nodes on one date, the 31st gets at most 5 contemporaneous edges,
# the nearest in time
for my $i (1 .. 30) {
    my ($p, $nn) = node(year => 1900, month => 1, day => 1, country => "z$i",
                        slug => "cap$i");
    complete(claimed_job(), '7', $p, $nn, 5);
}
my ($pz, $nz) = node(year => 1900, month => 1, day => 1, country => 'zz',
                     slug => 'capz');
complete(claimed_job(), '7', $pz, $nz, 5);
my @ct = grep { /^contemporaneous\|/ } keys %{ edges($pz) };
is(scalar @ct, 5, 'edges per type are capped');
# all 30 at the same distance (the same time): the first 5 in path order,
# whichever side of the time Redis listed them on
is_deeply([ sort @ct ],
          [ map { "contemporaneous|/1900/m1/01/1200/z$_/r/c/cap$_" }
                qw(1 10 11 12 13) ],
          'capped: of those as near, the first in path order');

# edges_max at its bound (1000): a node's own edges of one type go to
# Redis in one HSET, 2000 values through unpack(); 1000 others on its date
# (in the date's index, as complete.lua puts them there)
$redis->cmd('ZADD', "${P}idx:date:1950:1:1",
            map { (195001011200, "/1950/m1/01/1200/w$_/r/c/wide$_") } 1 .. 1000);
my $before = $redis->cmd('HGET', "${P}stats", 'edges:contemporaneous');
my ($pw, $nw) = node(year => 1950, month => 1, day => 1, country => 'ww',
                     slug => 'widez');
complete(claimed_job(), '7', $pw, $nw, 1000);
is(scalar(grep { /^contemporaneous\|/ } keys %{ edges($pw) }), 1000,
   'edges_max 1000: all 1000 of one type, written in one call');
is($redis->cmd('HGET', "${P}stats", 'edges:contemporaneous') - $before, 2000,
   'edges_max 1000: each counted once, both ways');

# the same distance before and after: nearer first, then path order across
# both sides
sub node_at {
    my ($hhmm, %o) = @_;
    my ($p, $j) = node(%o);
    my $n = $json->decode($j);
    $p =~ s{/1200/}{/$hhmm/};
    $n->{path} = $p;
    $n->{time} = $hhmm;
    $n->{sort_key} += $hhmm - 1200;
    return ($p, $json->encode($n));
}
my %at;
for my $t ([qw(a 1300)], [qw(b 1100)], [qw(c 1300)], [qw(d 1000)], [qw(e 1400)]) {
    my ($p, $nn) = node_at($t->[1], year => 1901, month => 1, day => 1,
                           country => 'q', slug => $t->[0]);
    complete(claimed_job(), '7', $p, $nn, 5);
    $at{ $t->[0] } = $p;
}
my ($pm, $nm) = node_at('1200', year => 1901, month => 1, day => 1,
                        country => 'q', slug => 'm');
complete(claimed_job(), '7', $pm, $nm, 2);
is_deeply([ sort grep { /^contemporaneous\|/ } keys %{ edges($pm) } ],
          [ sort map { "contemporaneous|$at{$_}" } qw(a b) ],
          'ties across both sides: of a, b, c 100 minutes away, b and a by path; '
          . 'd and e further');
my ($pm2, $nm2) = node_at('1200', year => 1901, month => 1, day => 1,
                          country => 'q', slug => 'n');
complete(claimed_job(), '7', $pm2, $nm2, 4);
is_deeply([ sort map { s/^contemporaneous\|//r } grep { /^contemporaneous\|/ }
                keys %{ edges($pm2) } ],
          [ sort @at{qw(a b c)}, $pm ],
          'cap 4: the node at the same time, then the three 100 minutes away');

# ---------------------------------------------------------------------------
# fencing

my $jf = claimed_job();
my ($pf, $nf) = node(year => 2000, month => 1, day => 1, country => 'f',
                     slug => 'f');
my $r = eval { complete($jf, '6', $pf, $nf) };
like($@ // '', qr/FENCED/, 'complete with a stale token: FENCED');
ok(!$redis->cmd('EXISTS', "${P}node:$pf"), 'fenced: no node written');
is($redis->hash("${P}job:$jf")->{status}, 'processing', 'fenced: job as it was');

eval { $redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jf", "${P}processing", "${P}confirming",
                   '6', $jf, '2026-01-01T00:01:00.000000Z', 'x', 1, "${P}events", 900) };
like($@ // '', qr/FENCED/, 'fail with a stale token: FENCED');
is($redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jf", "${P}processing", "${P}confirming",
               '7', $jf, '2026-01-01T00:01:00.000000Z', 'boom', 1,
               "${P}events", 900), 1, 'fail with the current token: version 1');
is(next_event($jf), "events:final: $jf failed 1 2026-01-01T00:00:00.000000Z "
                   . "2026-01-01T00:01:00.000000Z boom",
   'failed: first the final state, with created_at, completed_at and the error');
is(next_event($jf), "events: $jf failed 1", '... then the change');
is($redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jf", "${P}processing", "${P}confirming",
               '7', $jf, '2026-01-01T00:01:00.000000Z', 'boom', 1,
               "${P}events", 900), 1, 'the same failure again: version 1, not FENCED');
my $fttl = $redis->cmd('TTL', "${P}job:$jf");
ok($fttl > 890 && $fttl <= 900, "a failed job is kept for its retention ($fttl s)");
is($redis->hash("${P}job:$jf")->{error}, 'boom', 'failed with its error');
eval { complete($jf, '7', $pf, $nf) };
like($@ // '', qr/FENCED/, 'a failed job cannot complete afterwards');

# ---------------------------------------------------------------------------
# claim: expired leases go back to the queue, then fail past the stall limit

$redis->cmd('FLUSHALL');
my $id = '00000000-0000-4000-8000-999999999999';
$redis->cmd('HSET', "${P}job:$id", 'status', 'pending', 'query', 'q',
            'preset', 'hd', 'visibility', 'public', 'created_by', 'u',
            'created_at', '2026-01-01T00:00:00.000000Z');
# leases and run-at times are on Redis's clock, in ms
sub rtime { my $t = $redis->cmd('TIME'); $t->[0] * 1000 + int($t->[1] / 1000) }
sub expire_lease { $redis->cmd('ZADD', "${P}processing", rtime() - 1, $_[0]) }
$redis->cmd('ZADD', "${P}queue", rtime() + 60000, $id);

my @stalls;   # what each claim reported: [put back, failed]
# 128 random bits, as the runner draws them (getrandom() in C)
sub token { join '', map { sprintf '%x', int rand 16 } 1 .. 32 }
sub claim {
    my ($runner, $iso) = @_;
    my $r = $redis->cmd('EVAL', $lua{claim}, 3, "${P}queue", "${P}processing", "${P}confirming",
                        5000, "${P}job:", $runner // 'test:1', 2,
                        $iso // '2026-01-01T00:02:00.000000Z', "${P}events",
                        900, '', map { token() } 1 .. 10);
    @stalls = @$r[1, 2];
    return $r->[0];
}

is_deeply(claim(), [], 'nothing runnable before its run-at time');
$redis->cmd('ZADD', "${P}queue", rtime() - 1000, $id);
my $t0 = rtime();
my $got = claim();
is(scalar @$got, 1, 'claimed one job');
is_deeply([ @{ $got->[0] }[0, 2 .. 7] ],
          [ $id, 'q', 'hd', 'public', 'u', '2026-01-01T00:00:00.000000Z', 0 ],
          'claim returns id, query, preset, visibility, created_by, '
          . 'created_at, attempts');
my $token = $got->[0][1];
is($redis->hash("${P}job:$id")->{status}, 'processing', 'claimed: processing');
my $until = $redis->cmd('ZSCORE', "${P}processing", $id);
ok($until >= $t0 + 5000 && $until <= rtime() + 5000,
   "lease until now+5s on Redis's clock");
is_deeply(claim(), [], 'a claimed job is not claimed twice');

$t0 = rtime();
is_deeply($redis->cmd('EVAL', $lua{heartbeat}, 1, "${P}processing", 9000,
                      "${P}job:", $id, $token), [$id], 'heartbeat renews');
$until = $redis->cmd('ZSCORE', "${P}processing", $id);
ok($until >= $t0 + 9000 && $until <= rtime() + 9000,
   "lease renewed to now+9s on Redis's clock");
is_deeply($redis->cmd('EVAL', $lua{heartbeat}, 1, "${P}processing", 99999,
                      "${P}job:", $id, 'stale'), [], 'a stale token is not renewed');
is($redis->cmd('ZSCORE', "${P}processing", $id), $until, '... its lease as it was');

expire_lease($id);
$got = claim();
is(scalar @$got, 1, 'expired lease: the job is claimed again');
is_deeply(\@stalls, [1, 0], 'the claim reports one expired lease put back');
isnt($got->[0][1], $token, 'with a new token');
is($redis->hash("${P}job:$id")->{stalls}, 1, 'one stall counted');
expire_lease($id);
$got = claim();
is($redis->hash("${P}job:$id")->{stalls}, 2, 'two stalls');
is(scalar @$got, 1, 'claimed a third time');
expire_lease($id);
$got = claim();
is_deeply($got, [], 'past the stall limit: not claimed again');
is_deeply(\@stalls, [0, 1], 'the claim reports one job failed for stalling');
is(next_event("$id failed"),
   "events:final: $id failed 6 2026-01-01T00:00:00.000000Z 2026-01-01T00:02:00.000000Z "
   . "Job stalled: its runner stopped 3 times while processing it",
   'the stalled-out failure is published with its final state');
is(next_event("$id failed"), "events: $id failed 6", '... then as a change');
my $h = $redis->hash("${P}job:$id");
is($h->{status}, 'failed', 'past the stall limit: failed');
like($h->{error}, qr/stalled/, 'the error says it stalled');
is($h->{completed_at}, '2026-01-01T00:02:00.000000Z', 'completed_at set');
my $sttl = $redis->cmd('TTL', "${P}job:$id");
ok($sttl > 890 && $sttl <= 900, "a stalled-out job is kept as failed ($sttl s)");

# the status page's last failures (lib/failures.lua): the stalled-out job,
# then a runner's failure under wait= (fail.lua's ARGV[8] "1", which
# publishes nothing), newest first
my $jw = claimed_job();
is($redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jw", "${P}processing", "${P}confirming",
               '7', $jw, '2026-01-01T00:03:00.000000Z', '<b>bad</b>', 1,
               "${P}events", 900, '1'), 0, 'fail under wait=: the version unchanged (0)');
is_deeply([ map { my $f = JSON::PP::decode_json($_); "$f->{id} $f->{at} $f->{error}" }
            @{ $redis->cmd('LRANGE', "${P}failures", 0, -1) } ],
          [ "$jw 2026-01-01T00:03:00.000000Z <b>bad</b>",
            "$id 2026-01-01T00:02:00.000000Z Job stalled: its runner stopped "
            . '3 times while processing it' ],
          'every failure is on the status page\'s list, under wait= too');

# wait= (issue 17): an outcome is kept beside its job until WAIT confirmed
# it, then revealed; every reader sees the job as it was meanwhile
sub reveal {
    my ($id, $mark) = @_;
    return $redis->cmd('EVAL', $lua{reveal}, 2, "${P}job:$id", "${P}confirming",
                       $id, $mark, 600, 900);
}
{
    my $k = $redis->hash("${P}job:$jw");
    is_deeply([ @$k{qw(status kept kept_error kept_at outcome)} ],
              [ 'processing', 'failed', '<b>bad</b>', '2026-01-01T00:03:00.000000Z', '7 failed' ],
              'fail under wait=: kept beside the job, which is still processing');
    ok(!exists $k->{error} && !exists $k->{completed_at} && !exists $k->{token},
       '... no error nor completed_at shown, the token gone');
    ok(defined $redis->cmd('ZSCORE', "${P}confirming", $jw), '... and the job is in the confirming set');
    is($redis->cmd('TTL', "${P}job:$jw"), -1, '... kept for good until revealed');
    is($redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jw", "${P}processing", "${P}confirming",
                   '7', $jw, '2026-01-01T00:03:00.000000Z', '<b>bad</b>', 1,
                   "${P}events", 900, '1'), 0,
       'the same failure again (WAIT did not confirm it): its version, not FENCED');
    eval { reveal($jw, '8 failed') };
    like($@ // '', qr/FENCED/, 'reveal with another mark: FENCED');
    is($redis->hash("${P}job:$jw")->{status}, 'processing', '... and nothing changed');
    my $final = "$jw failed 1 2026-01-01T00:00:00.000000Z 2026-01-01T00:03:00.000000Z <b>bad</b>";
    is_deeply(reveal($jw, '7 failed'), [ 1, $final, "$jw failed 1" ],
              'reveal: the new version, and the messages to publish');
    $k = $redis->hash("${P}job:$jw");
    is_deeply([ @$k{qw(status error completed_at version)} ],
              [ 'failed', '<b>bad</b>', '2026-01-01T00:03:00.000000Z', 1 ],
              '... the outcome is the job\'s');
    ok(!grep({ exists $k->{$_} } qw(kept kept_error kept_at kept_path)), '... kept no more');
    ok(!defined $redis->cmd('ZSCORE', "${P}confirming", $jw), '... nor in the confirming set');
    my $t = $redis->cmd('TTL', "${P}job:$jw");
    ok($t > 890 && $t <= 900, "... kept as failed ($t s)");
    is_deeply(reveal($jw, '7 failed'), [ 1, $final, "$jw failed 1" ],
              'reveal again (its reply lost): the same answer, no new version');
    is($redis->cmd('EVAL', $lua{fail}, 3, "${P}job:$jw", "${P}processing", "${P}confirming",
                   '7', $jw, '2026-01-01T00:03:00.000000Z', '<b>bad</b>', 1,
                   "${P}events", 900, '1'), 1,
       'fail.lua again after the reveal: the version, not FENCED');

    my ($pk, $nk) = node(year => 1500, month => 1, day => 2, country => 'kept', slug => 'k');
    my $jc = claimed_job();
    is_deeply($redis->cmd('EVAL', $lua{complete}, 3, "${P}job:$jc", "${P}processing",
                          "${P}confirming", '7', $jc, '2026-01-01T00:04:00.000000Z',
                          $pk, $nk, $P, 20, 1, "${P}events", 600, '1'),
              [ 0, $pk ], 'complete under wait=: the path, the version unchanged');
    $k = $redis->hash("${P}job:$jc");
    is_deeply([ @$k{qw(status kept kept_path kept_at)} ],
              [ 'processing', 'completed', $pk, '2026-01-01T00:04:00.000000Z' ],
              '... kept beside the job, which is still processing');
    ok(!exists $k->{path}, '... no path shown');
    ok($redis->cmd('EXISTS', "${P}node:$pk"), '... the node is written all the same');
    is_deeply(reveal($jc, '7 completed'),
              [ 1, "$jc completed 1 2026-01-01T00:00:00.000000Z 2026-01-01T00:04:00.000000Z $pk",
                "$jc completed 1" ], 'reveal: completed, with its path');
    $k = $redis->hash("${P}job:$jc");
    is_deeply([ @$k{qw(status path completed_at)} ],
              [ 'completed', $pk, '2026-01-01T00:04:00.000000Z' ], '... the job\'s');
    $t = $redis->cmd('TTL', "${P}job:$jc");
    ok($t > 590 && $t <= 600, "... kept as completed ($t s)");
}

# claim.lua under wait=: the failures it decides are kept too, and the
# outcomes kept longer than a lease ago (their runner died) are given to
# reveal, each to one claim
{
    my $dead = claimed_job();       # kept by a runner that died since
    $redis->cmd('HSET', "${P}job:$dead", 'kept', 'completed', 'kept_path', '/x',
                'kept_at', '2026-01-01T00:05:00.000000Z', 'outcome', '5 completed');
    $redis->cmd('HDEL', "${P}job:$dead", 'token');
    $redis->cmd('ZREM', "${P}processing", $dead);
    $redis->cmd('ZADD', "${P}confirming", 1, $dead);
    my $gone = '00000000-0000-4000-8000-99999999999a';   # expired meanwhile
    $redis->cmd('ZADD', "${P}confirming", 1, $gone);
    my $last = claimed_job();       # its last attempt's outcome was lost
    $redis->cmd('HSET', "${P}job:$last", 'attempts', 3);
    $redis->cmd('ZADD', "${P}processing", 1, $last);
    my $dclaim = sub {
        $redis->cmd('EVAL', $lua{claim}, 3, "${P}queue", "${P}processing", "${P}confirming",
                    5000, "${P}job:", 'test:1', 2, '2026-01-01T00:06:00.000000Z',
                    "${P}events", 900, '3', map { token() } 1 .. 4);
    };
    my $r = $dclaim->();
    is(scalar @$r, 4, 'claim under wait=: four answers');
    my %rev = map { $_->[0] => $_->[1] } @{ $r->[3] };
    is($rev{$dead}, '5 completed', '... a dead runner\'s kept outcome, to reveal, with its mark');
    like($rev{$last} // '', qr/^claim \d+ failed$/, '... the failure it decided, to reveal');
    ok(!exists $rev{$gone}, '... not a job that is gone');
    ok(!defined $redis->cmd('ZSCORE', "${P}confirming", $gone), '... which leaves the set');
    my $k = $redis->hash("${P}job:$last");
    is_deeply([ @$k{qw(status kept outcome)} ], [ 'processing', 'failed', $rev{$last} ],
              '... the failure is kept, the job still processing');
    like($k->{kept_error}, qr/after 3 attempt/, '... with why');
    my $again = $dclaim->();
    ok(!grep({ $_->[0] eq $dead } @{ $again->[3] }),
       'the next claim does not give the same kept outcome again (put off a lease)');
    is(reveal($last, $rev{$last})->[2], "$last failed 1", 'the decided failure revealed');
    is($redis->hash("${P}job:$last")->{status}, 'failed', '... failed');
    is(reveal($dead, '5 completed')->[2], "$dead completed 1", 'the dead runner\'s revealed');
    is($redis->hash("${P}job:$dead")->{path}, '/x', '... with its path');
}
# the list's length is the Lua's LTRIM and the C's LRANGE: one number
{
    my ($c) = Clockchain::Test::_slurp('src/ngx_http_clockchain_status.h')
              =~ /#define\s+NGX_HTTP_CLOCKCHAIN_FAILURES\s+(\d+)/;
    my ($lua) = Clockchain::Test::_slurp('src/lua/lib/failures.lua')
                =~ /'LTRIM',\s*failures,\s*0,\s*(\d+)\)/;
    ok(defined $c && defined $lua && $lua == $c - 1,
       'failures.lua keeps NGX_HTTP_CLOCKCHAIN_FAILURES entries, as status.c '
       . 'reads (' . ($lua // '?') . ' + 1, ' . ($c // '?') . ')');
}

# lost writes: Redis acknowledged a claim, then lost it (the tail of its
# AOF, or a failover to a replica that had not received it). The job is
# pending again and is claimed again; the runner of the lost claim must be
# fenced out, so the new claim's token must differ from the lost one's.

$redis->cmd('FLUSHALL');
my $lost = '00000000-0000-4000-8000-aaaaaaaaaaaa';
$redis->cmd('HSET', "${P}job:$lost", 'status', 'pending', 'query', 'q',
            'preset', 'hd', 'visibility', 'public', 'created_by', 'u',
            'created_at', '2026-01-01T00:00:00.000000Z', 'version', 1);
$redis->cmd('ZADD', "${P}queue", rtime() - 1000, $lost);
# what the AOF holds before the claim: every key as it is now
my %before = map { $_ => $redis->cmd('DUMP', $_) } @{ $redis->cmd('KEYS', '*') };
$got = claim('stale:1');
my $t1 = $got->[0][1];
ok(defined $t1, 'lost writes: runner 1 claims the job');
$redis->cmd('FLUSHALL');    # the claim and everything after it is lost
$redis->cmd('RESTORE', $_, 0, $before{$_}) for keys %before;
is($redis->hash("${P}job:$lost")->{status}, 'pending',
   'lost writes: Redis is back to before the claim');
$got = claim('fresh:2');
my $t2 = $got->[0][1];
ok(defined $t2, 'lost writes: runner 2 claims the job again');
isnt($t2, $t1, 'lost writes: the new claim has a token never issued before');
my ($pl, $nl) = node(year => 1901, month => 1, day => 2, country => 'l',
                     slug => 'lost');
eval { complete($lost, $t1, $pl, $nl) };
like($@ // '', qr/FENCED/,
     'lost writes: the runner of the lost claim is fenced out');
ok(!$redis->cmd('EXISTS', "${P}node:$pl"), 'lost writes: it wrote no node');
is_deeply(complete($lost, $t2, $pl, $nl), [3, $pl],
   'lost writes: the runner of the current claim completes the job');

# clocks that disagree: a runner whose wall clock is an hour ahead claims
# while another runner's job has a healthy lease. Leases are on Redis's
# clock, so it does not take the job (on its own clock the lease ran out
# an hour ago).

$redis->cmd('FLUSHALL');
my $healthy = '00000000-0000-4000-8000-bbbbbbbbbbbb';
$redis->cmd('HSET', "${P}job:$healthy", 'status', 'pending', 'query', 'q',
            'preset', 'hd', 'visibility', 'public', 'created_by', 'u',
            'created_at', '2026-01-01T00:00:00.000000Z', 'version', 1);
$redis->cmd('ZADD', "${P}queue", rtime() - 1000, $healthy);
$got = claim('on-time:1');
my $th = $got->[0][1];
ok(defined $th, 'skewed clock: a runner on time claims the job');
my @ahead = gmtime(time + 3600);
$got = claim('ahead:2', sprintf('%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                                $ahead[5] + 1900, $ahead[4] + 1,
                                @ahead[3, 2, 1, 0]));
is_deeply($got, [], 'skewed clock: the runner an hour ahead claims nothing');
is_deeply(\@stalls, [0, 0], '... and puts no lease back as expired');
$h = $redis->hash("${P}job:$healthy");
is($h->{status}, 'processing', 'skewed clock: the job is still processing');
is($h->{token}, $th, '... with the token of the runner on time');
ok(!$h->{stalls}, '... and no stall counted');

# requeue: fenced, back to pending at its run-at time, attempts recorded

$redis->cmd('FLUSHALL');
$redis->cmd('HSET', "${P}job:$id", 'status', 'processing', 'token', '5');
$redis->cmd('ZADD', "${P}processing", 1, $id);
my @rq = ($lua{requeue}, 3, "${P}job:$id", "${P}processing", "${P}queue");
eval { $redis->cmd('EVAL', @rq, '4', $id, 5000, 2, 'boom', "${P}events") };
like($@ // '', qr/FENCED/, 'requeue with a stale token: FENCED');
$t0 = rtime();
is($redis->cmd('EVAL', @rq, '5', $id, 5000, 2, 'Flash API error: 500',
               "${P}events"), 1, 'requeue with the current token: version 1');
$h = $redis->hash("${P}job:$id");
is($h->{status}, 'pending', 'requeued: pending');
is($h->{attempts}, 2, 'requeued: attempts recorded');
is($h->{last_error}, 'Flash API error: 500', 'requeued: last error recorded');
ok(!exists $h->{token}, 'requeued: token cleared');
my $at = $redis->cmd('ZSCORE', "${P}queue", $id);
ok($at >= $t0 + 5000 && $at <= rtime() + 5000,
   "requeued: run at now+5s on Redis's clock");
is($redis->cmd('ZSCORE', "${P}processing", $id), undef, 'requeued: not processing');
$redis->cmd('HSET', "${P}job:$id", 'status', 'processing', 'token', '6');
$redis->cmd('EVAL', @rq, '6', $id, 6000, '', '', "${P}events");
is($redis->hash("${P}job:$id")->{attempts}, 2, 'a hand-back leaves attempts alone');

# create: one call for several requests, each all or none, in order
#
# create_call(max => N, replicas => N, requests => [ { jobs => [ids],
# idem => key, material => "...", token => record, user => ... }, ... ])
# sends create.lua's keys and arguments as its header lists them; the
# results come back one per request (errors as { err => ... })
sub create_call {
    my (%o) = @_;
    my @keys = ("${P}queue");
    my @args = ('v1', $o{max} // 0, 86400, $o{replicas} // 0,
                scalar @{ $o{requests} });
    for my $q (@{ $o{requests} }) {
        push @keys, "${P}idem:$q->{idem}" if defined $q->{idem};
        push @args, scalar @{ $q->{jobs} },
             defined $q->{idem} ? $q->{material} // "generate\nsystem\n{}" : '',
             defined $q->{token} ? "${P}agent:tok:$q->{token}" : '',
             $q->{user} // 'system';
        for my $id (@{ $q->{jobs} }) {
            push @keys, "${P}job:$id";
            push @args, $id, '2026-01-01T00:00:00.000000Z', "query $id",
                 'hd', 'private';
        }
    }
    return $redis->cmd('EVAL', $lua{create}, scalar @keys, @keys, @args);
}

sub err_of { ref $_[0] eq 'Clockchain::Test::Redis::Error' ? $_[0]{err} : '' }

sub jobs_there {
    return join ',', grep { $redis->cmd('EXISTS', "${P}job:$_") } @_;
}

$redis->cmd('FLUSHALL');
my $cr = create_call(max => 1, requests => [ { jobs => [qw(a b)] } ]);
like(err_of($cr->[0]), qr/^(ERR )?FULL$/, 'create past the queue cap: FULL');
is($redis->cmd('DBSIZE'), 0, 'FULL: nothing written');
$cr = create_call(replicas => 1, requests => [ { jobs => [qw(a b)] } ]);
like(err_of($cr->[0]), qr/^(ERR )?REPLICAS 0$/,
     'one replica must confirm, none is online: REPLICAS 0');
is($redis->cmd('DBSIZE'), 0, 'REPLICAS: nothing written');
$t0 = rtime();
is_deeply(create_call(requests => [ { jobs => [qw(a b)], user => 'u1' } ]), [2],
          'create two jobs: one result, the number created');
$at = $redis->cmd('ZSCORE', "${P}queue", 'a');
ok($at >= $t0 && $at <= rtime(),
   "created jobs are due now on Redis's clock, whatever created_at says");
is_deeply($redis->hash("${P}job:b"),
          { id => 'b', status => 'pending', query => 'query b', preset => 'hd',
            visibility => 'private', created_by => 'u1', schema => 'v1',
            version => 1, created_at => '2026-01-01T00:00:00.000000Z' },
          'a job hash: its own arguments, and its request\'s creator');
$cr = create_call(requests => [ { jobs => [qw(c a)] } ]);
like(err_of($cr->[0]), qr/^EXISTS \Q${P}job:a\E$/, 'an existing id: EXISTS and its key');
is($redis->cmd('ZCARD', "${P}queue"), 2, 'EXISTS: nothing more written');
is(jobs_there('c'), '', 'EXISTS: not the other job of the request either');

# neighbours in one call: each request decided as if alone, in order
$redis->cmd('FLUSHALL');
$cr = create_call(max => 4, requests => [
    { jobs => [qw(a b)] },      # 2 of 4
    { jobs => [qw(c d e)] },    # 5 > 4: FULL
    { jobs => [qw(i a)] },      # a was made by the first: EXISTS
    { jobs => ['f'] },          # 3
    { jobs => ['g'] },          # 4
    { jobs => ['h'] },          # 5 > 4: FULL
]);
is(scalar @$cr, 6, 'six requests, six results');
is_deeply([ map { ref $_ ? err_of($_) =~ s/^ERR //r =~ s/ .*//r : $_ } @$cr ],
          [2, 'FULL', 'EXISTS', 1, 1, 'FULL'],
          'each request its own result: the cap counts what went before it');
is(jobs_there(qw(a b c d e f g h i)), 'a,b,f,g',
   'exactly the jobs of the requests that succeeded');
is($redis->cmd('ZCARD', "${P}queue"), 4, 'and only they are queued');

# one Idempotency-Key twice, thrice in one call
$redis->cmd('FLUSHALL');
$cr = create_call(requests => [
    { jobs => ['x'], idem => 'k', material => "generate\nsystem\nM" },
    { jobs => ['y'], idem => 'k', material => "generate\nsystem\nM" },
    { jobs => ['z'], idem => 'k', material => "generate\nsystem\nN" },
    { jobs => ['w'] },
]);
is($cr->[0], 1, 'a key first seen: created');
is($cr->[1][0], 'REPLAY', 'the same key and request later in the call: a replay');
is_deeply([ @{ $cr->[1][1] }[0, 1, 4] ], ['x', 'pending', '2026-01-01T00:00:00.000000Z'],
          'the replay answers the job the first one made');
like(err_of($cr->[2]), qr/^(ERR )?CONFLICT$/, 'the same key with another request: CONFLICT');
is($cr->[3], 1, 'a request without a key beside them: created');
is(jobs_there(qw(x y z w)), 'x,w', 'the replay and the conflict made no job');
is($redis->cmd('HGET', "${P}idem:k", 'jobs'), 'x', 'the key holds the first request\'s job');

# a writer's token revoked: that request only; and before REPLICAS, as alone
$redis->cmd('FLUSHALL');
$redis->cmd('HSET', "${P}agent:tok:on", 'is_active', 1);
$redis->cmd('HSET', "${P}agent:tok:off", 'is_active', 0);
$cr = create_call(requests => [ { jobs => ['r1'], token => 'off' },
                               { jobs => ['r2'], token => 'on' },
                               { jobs => ['r3'] } ]);
is_deeply([ err_of($cr->[0]) =~ s/^ERR //r, @$cr[1, 2] ], ['REVOKED', 1, 1],
          'a revoked token fails its own request, not the others');
is(jobs_there(qw(r1 r2 r3)), 'r2,r3', 'REVOKED: its job not written');
$cr = create_call(replicas => 1, requests => [ { jobs => ['r4'], token => 'off' },
                                              { jobs => ['r5'] } ]);
is_deeply([ map { err_of($_) =~ s/^ERR //r } @$cr ], ['REVOKED', 'REPLICAS 0'],
          'REVOKED before REPLICAS, REPLICAS for each request');

# the search index: one set per whole word, not per prefix, and the
# vocabulary of words in use (complete.lua, publish.lua)
$redis->cmd('FLUSHALL');
sub with_words {
    my ($node, @w) = @_;
    my $n = $json->decode($node);
    $n->{search} = \@w;
    return $json->encode($n);
}
my ($pv, $nv) = node(year => 1900, month => 1, day => 2, country => 'fr',
                     slug => 'v', created_by => 'alice');
complete(claimed_job(), '7', $pv, with_words($nv, ['caesar', 0], ['rome', 1],
                                             ['senate', 2]));
is_deeply($redis->cmd('ZRANGE', "${P}idx:vocab", 0, -1),
          [qw(caesar rome senate)], 'the vocabulary: the words, once');
is_deeply([ sort grep { /idx:word:/ } @{ $redis->cmd('KEYS', "${P}idx:*") } ],
          [ map { ("${P}idx:word:$_", "${P}idx:word:$_|alice") }
                qw(caesar rome senate) ],
          'a set per whole word (and the user\'s own), none per prefix');
is_deeply($redis->cmd('ZRANGE', "${P}idx:word:rome", 0, -1, 'WITHSCORES'),
          [ $pv, 4 * 1 + 2 ], 'scored 4 x class + group');
is($redis->cmd('GET', "${P}words:$pv"), ' 0caesar 1rome 2senate',
   'the node\'s words as indexed');
complete(claimed_job(), '7', $pv, with_words($nv, ['caesar', 0], ['gaul', 2]));
is_deeply($redis->cmd('ZRANGE', "${P}idx:vocab", 0, -1), [qw(caesar gaul)],
          'an update: the words no node has left the vocabulary');
is($redis->cmd('EXISTS', "${P}idx:word:rome", "${P}idx:word:rome|alice"), 0,
   'an update: their sets are gone');
complete(claimed_job(), '7', $pv, with_words($nv, ['caesar', 1], ['gaul', 2]));
is_deeply([ map { $redis->cmd('ZSCORE', $_, $pv) }
                "${P}idx:word:caesar", "${P}idx:word:caesar|alice",
                "${P}idx:word:gaul" ],
          [ 4 * 1 + 2, 4 * 1 + 2, 4 * 2 + 2 ],
          'an update: a word of another class moves, in both sets; the others stay');
is($redis->cmd('GET', "${P}words:$pv"), ' 1caesar 2gaul',
   'an update: the words as indexed now');
my $digest = sub { join ',', map { @{ $redis->cmd('ZRANGE', $_, 0, -1, 'WITHSCORES') } }
                       "${P}idx:vocab", "${P}idx:word:caesar",
                       "${P}idx:word:caesar|alice", "${P}idx:word:gaul",
                       "${P}idx:word:gaul|alice" };
my $was = $digest->();
complete(claimed_job(), '7', $pv, with_words($nv, ['caesar', 1], ['gaul', 2]));
is($digest->(), $was, 'the same words again: every set as it was');
my $publish = lua_script('publish');
$redis->cmd('EVAL', $publish, 2, "${P}node:$pv", "${P}edges:$pv", '',
            'public', '2026-01-02T00:00:00Z', $pv, "${P}events:moments", $P,
            '');    # no writer token to check
is_deeply($redis->cmd('ZRANGE', "${P}idx:word:gaul", 0, -1, 'WITHSCORES'),
          [ $pv, 8 ], 'published: scored as public');
is($redis->cmd('EXISTS', "${P}idx:word:gaul|alice"), 0,
   'published: out of alice\'s own set');
is_deeply($redis->cmd('ZRANGE', "${P}idx:pub:time", 0, -1), [ $pv ],
          'published: in the public time index');
is_deeply($redis->cmd('HGETALL', "${P}idx:bs:/"), [ 1900, 1 ],
          'published: counted in the shared browse view');
is($redis->cmd('EXISTS', "${P}idx:bu:/|alice"), 0,
   'published: out of alice\'s own browse view');

done();
