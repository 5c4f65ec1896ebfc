#!/usr/bin/env perl
#
# t/bench/create-floor.pl: what a job's creation costs Redis, in
# create.lua and in the least that writes the same (issue 19's POST).
#
# One Redis as the tests start it (AOF, every second), fed calls of
# FLOOR_BATCH jobs (16, about what group commit carries under wrk's 64
# connections), FLOOR_CALLS calls a round (3000), one call in flight, as a
# worker sends them.  Four ways of writing the same job hashes and queue
# entries, in turns, FLOOR_ROUNDS rounds (3):
#
#   create.lua  the module's script, as config compiles it
#   lua-min     a script with only the HSETs and the one ZADD: no lookup,
#               no limits, no idempotency, no per-request results
#   multi       HSET per job and the ZADD inside MULTI/EXEC, no script
#   plain       the same commands pipelined, no MULTI (not all or none)
#
# Prints Redis's own CPU (INFO cpu) per job, the median of the rounds:
# the busy box moves the client, not what Redis counts for itself.
#
# Each FILE given is a further way: a script called as create.lua is (a
# change to it, measured beside the current one).
#
#   perl -I t/lib t/bench/create-floor.pl [FILE.lua ...]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use IO::Socket::INET;

my $BATCH = $ENV{FLOOR_BATCH} // 16;
my $CALLS = $ENV{FLOOR_CALLS} // 3000;
my $ROUNDS = $ENV{FLOOR_ROUNDS} // 3;

chdir "$FindBin::Bin/../.." or die "chdir: $!";

my $redis = start_redis();
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $redis->port)
    or die "connect: $!";

sub resp {
    my $o = '*' . @_ . "\r\n";
    $o .= '$' . length($_) . "\r\n$_\r\n" for @_;
    return $o;
}

# the reply to what was sent, read until it ends as $done says
sub reply {
    my ($done) = @_;
    my $r = '';
    until ($done->($r)) {
        sysread($s, $r, 65536, length $r) or die "redis: $!";
        die "redis: $r" if $r =~ /^-/m;
    }
    return $r;
}

sub cmd { print {$s} resp(@_); return reply(sub { $_[0] =~ /\r\n\z/ }) }

sub cpu {
    my $i = cmd('INFO', 'cpu');
    my ($u) = $i =~ /used_cpu_user:([\d.]+)/;
    my ($y) = $i =~ /used_cpu_sys:([\d.]+)/;
    return $u + $y;
}

my $MIN = <<'LUA';
local due, a = {}, 6
for i = 2, #KEYS do
    a = a + 4
    redis.call('HSET', KEYS[i], 'id', ARGV[a], 'status', 'pending',
               'created_at', ARGV[a + 1], 'query', ARGV[a + 2],
               'preset', ARGV[a + 3], 'visibility', ARGV[a + 4],
               'created_by', 'system', 'schema', '1', 'version', '1')
    due[#due + 1] = '1764734400123'
    due[#due + 1] = ARGV[a]
    a = a + 5
end
redis.call('ZADD', KEYS[1], unpack(due))
local r = {}
for i = 1, tonumber(ARGV[5]) do r[i] = 1 end
return r
LUA

my @files = @ARGV;
my @scripts = ([ 'create.lua', lua_script('create') ], [ 'lua-min', $MIN ]);
for my $file (@files) {
    open my $fh, '<', $file or die "$file: $!";
    push @scripts, [ $file, do { local $/; <$fh> } ];
}
my %sha;
for (@scripts) {
    ($sha{ $_->[0] }) = cmd('SCRIPT', 'LOAD', $_->[1]) =~ /([0-9a-f]{40})/;
}

my $QUEUE = 'clockchain:{cc}:v1:queue';
my $n = 0;

# a call of $BATCH new jobs, each a request of one job, as create.c
# writes it for POST /api/generate without a key or a writer's token
sub call {
    my ($way) = @_;
    my (@keys, @args, @jobs);
    for (1 .. $BATCH) {
        my $id = sprintf '%08x-0000-4000-8000-%012x', $$, ++$n;
        push @jobs, [ "clockchain:{cc}:v1:job:$id", $id, '2026-12-03T06:00:00.123456Z',
                      "Signing of the declaration of independence $n", 'balanced', 'private' ];
    }
    if ($sha{$way}) {
        @keys = ($QUEUE, map { $_->[0] } @jobs);
        @args = (1, 0, 86400, 0, $BATCH, map { (1, '', '', 'system', @$_[1 .. 5]) } @jobs);
        print {$s} resp('EVALSHA', $sha{$way}, scalar @keys, @keys, @args);
        return reply(sub { $_[0] =~ /\A\*$BATCH\r\n(?::1\r\n){$BATCH}\z/ });
    }
    my $out = $way eq 'multi' ? resp('MULTI') : '';
    for my $j (@jobs) {
        $out .= resp('HSET', $j->[0], id => $j->[1], status => 'pending', created_at => $j->[2],
                     query => $j->[3], preset => $j->[4], visibility => $j->[5],
                     created_by => 'system', schema => 1, version => 1);
    }
    $out .= resp('ZADD', $QUEUE, map { ('1764734400123', $_->[1]) } @jobs);
    if ($way eq 'multi') {
        print {$s} $out . resp('EXEC');
        return reply(sub { $_[0] =~ /^\*\d+\r\n(?::\d+\r\n)+\z/m });
    }
    print {$s} $out;
    return reply(sub { (() = $_[0] =~ /^:\d+\r\n/mg) == $BATCH + 1 });
}

my @ways = ('create.lua', 'lua-min', @files, 'multi', 'plain');
my %us;
for my $round (1 .. $ROUNDS) {
    for my $way (@ways) {
        my $c0 = cpu();
        call($way) for 1 .. $CALLS;
        push @{ $us{$way} }, (cpu() - $c0) * 1e6 / ($CALLS * $BATCH);
        cmd('FLUSHALL');
    }
}

sub median { my @v = sort { $a <=> $b } @_; $v[$#v / 2] }

printf "Redis CPU per job, calls of %d jobs, %d calls a round, median of %d rounds:\n",
    $BATCH, $CALLS, $ROUNDS;
for my $way (@ways) {
    printf "  %-24s %6.2f us  (%s)\n", $way, median(@{ $us{$way} }),
        join(', ', map { sprintf '%.2f', $_ } @{ $us{$way} });
}
$redis->stop;
