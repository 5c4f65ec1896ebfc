#!/usr/bin/env perl
#
# t/bench/complete-replay.pl TREE [TREE ...]: what complete.lua costs Redis
# for real completions, for the scripts of several source trees side by
# side, and whether they write the same data (issue 19).
#
# Captures once: a runner (this tree's build) writes REPLAY_CALLS new
# moments (300) through the Python Flash stand-in while a MONITOR client
# records its complete.lua calls.  Then, for each TREE, for each of two
# workloads (the captured calls, each a new moment; and the first of them
# REPLAY_CALLS times, one node written again): a fresh Redis, TREE's
# complete.lua loaded, each job made claimable and its call replayed.
# Prints per call: Redis CPU, EVALSHA's time, the commands the script ran
# (INFO commandstats), and DEBUG DIGEST of the data written, which is the
# same for two trees that write the same graph.  With REPLAY_CALLGRIND=1
# Redis runs under callgrind, counting only what it does inside EVALSHA:
# instructions, the same on a busy machine as on a quiet one.
#
#   perl -I t/lib t/bench/complete-replay.pl /path/to/old-tree .
#   REPLAY_CALLGRIND=1 perl -I t/lib t/bench/complete-replay.pl old .

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use Cwd qw(abs_path getcwd);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

$| = 1;

my @TREES = map { abs_path($_) // die "no tree $_\n" } @ARGV
    or die "usage: $0 TREE [TREE ...]\n";
my $N = $ENV{REPLAY_CALLS} // 300;
my $CALLGRIND = $ENV{REPLAY_CALLGRIND} ? 1 : 0;
my $HERE = getcwd();
my $TMP = tempdir('cc-replay-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $TMP;
# MONITOR's line: a time, [db client], then each argument quoted with
# C-style escapes
sub monitor_args {
    my ($line) = @_;
    my @a;
    while ($line =~ /"((?:[^"\\]|\\.)*)"/g) {
        my $s = $1;
        $s =~ s{\\x([0-9a-fA-F]{2})|\\(.)}{defined $1 ? chr(hex $1)
            : ({ n => "\n", r => "\r", t => "\t", a => "\a", b => "\b" }->{$2} // $2)}ge;
        push @a, $s;
    }
    return @a;
}

# the complete.lua calls of $N new moments, each [numkeys, KEYS, ARGV]
sub capture {
    my $redis = start_redis();
    my $flash = start_flash(delay => 0, key => 'fk');
    my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:16m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_max_calls 64;
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_bulk_max 1000;
        $JOBS_LOCATIONS
    }
CONF
    my $mon = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                    PeerPort => $redis->port)
        or die "monitor: $!\n";
    print {$mon} "MONITOR\r\n";
    my $log = "$TMP/monitor";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open my $fh, '>', $log or POSIX::_exit(1);
        while (my $l = <$mon>) { print {$fh} $l }
        POSIX::_exit(0);
    }
    for (my $i = 0; $i < $N; $i += 1000) {
        my $k = $N - $i > 1000 ? 1000 : $N - $i;
        my $r = bulk($ng, { queries => [ map { { query => 'replay moment ' . ($i + $_) } }
                                         1 .. $k ] });
        die "bulk-generate: $r->{status}\n" unless $r->{status} == 200;
    }
    wait_for(600, sub {
        $redis->cmd('ZCARD', $QUEUE_KEY) == 0
            && $redis->cmd('ZCARD', 'clockchain:{cc}:v1:processing') == 0
    }) or die "the jobs did not finish\n";
    sleep 0.5;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    $ng->stop;
    my @calls;
    open my $fh, '<', $log or die "$log: $!\n";
    while (my $l = <$fh>) {
        next unless $l =~ /\] "evalsha" "[0-9a-f]{40}" "3" /i;
        my @a = monitor_args($l);
        # EVALSHA, sha, 3, KEYS[1..3], ARGV[1..]: ARGV[5] is the node
        push @calls, [ @a[2 .. $#a] ] if @a >= 11 && $a[10] =~ /^\{/;
    }
    die "captured " . scalar(@calls) . " of $N calls\n" unless @calls == $N;
    return \@calls;
}

sub info {
    my ($redis, $section) = @_;
    return { map { /^(\w+):(.*?)\r?$/ ? ($1, $2) : () }
             split /\n/, $redis->cmd('INFO', $section) };
}

# replays @$calls with $tree's complete.lua on a fresh Redis
sub replay {
    my ($tree, $calls) = @_;
    my %o = (args => ['--enable-debug-command', 'yes']);
    my $out;
    if ($CALLGRIND) {
        $out = "$TMP/callgrind." . time;
        my $wrap = "$TMP/redis-callgrind";
        open my $fh, '>', $wrap or die "$wrap: $!\n";
        print {$fh} "#!/bin/sh\nexec valgrind --tool=callgrind "
            . "--toggle-collect=evalShaCommand --callgrind-out-file=$out "
            . "/usr/bin/redis-server \"\$@\"\n";
        close $fh;
        chmod 0755, $wrap;
        $o{server} = $wrap;
    }
    chdir $tree or die "$tree: $!\n";
    my $script = lua_script('complete');
    chdir $HERE;
    my $redis = start_redis(%o);
    my $sha = $redis->cmd('SCRIPT', 'LOAD', $script);
    $redis->cmd('CONFIG', 'RESETSTAT');
    my $c0 = info($redis, 'cpu');
    for my $call (@$calls) {
        my @a = @$call;
        # KEYS[1] the job, KEYS[2] processing; ARGV[1] token, ARGV[2] id
        $redis->cmd('HSET', $a[1], 'status', 'processing', 'token', $a[4],
                    'created_at', '2026-12-03T00:00:00.000000Z');
        $redis->cmd('ZADD', $a[2], 1, $a[5]);
        $a[14] = '';    # ARGV[11]: no wait=, the outcome shown at once
        $redis->cmd('EVALSHA', $sha, @a);
    }
    my $c1 = info($redis, 'cpu');
    my $cs = info($redis, 'commandstats');
    my $digest = $redis->cmd('DEBUG', 'DIGEST');
    $redis->stop;
    my $n = @$calls;
    my %r = (cpu => 1e6 * ($c1->{used_cpu_user} + $c1->{used_cpu_sys}
                           - $c0->{used_cpu_user} - $c0->{used_cpu_sys}) / $n,
             digest => $digest);
    for my $k (sort keys %$cs) {
        my ($cmd) = $k =~ /^cmdstat_(.*)$/ or next;
        my ($calls, $us) = $cs->{$k} =~ /calls=(\d+),usec=(\d+)/ or next;
        next if $cmd =~ /^(?:config|script|info|debug|ping)/;
        if ($cmd eq 'evalsha') {
            $r{evalsha} = $us / $n;
            next;
        }
        # the replay's own HSET and ZADD of each job: one of each a call
        $calls -= $n if $cmd eq 'hset' || $cmd eq 'zadd';
        push @{ $r{cmds} }, sprintf '%s %.1f', $cmd, $calls / $n;
    }
    if ($CALLGRIND) {
        sleep 0.5;
        my ($ir) = `callgrind_annotate $out 2>/dev/null` =~ /^([\d,]+)\s.*PROGRAM TOTALS/m;
        $ir =~ tr/,//d if defined $ir;
        $r{ir} = defined $ir ? $ir / $n : undef;
    }
    return \%r;
}

print "capturing $N completions of new moments (this tree's module) ...\n";
my $calls = capture();
my $first = $calls->[0];
my @same = map { my @a = @$_; @a[7, 8] = @$first[7, 8]; \@a } @$calls;

for my $w ([ 'new moments', $calls ], [ 'one node again', \@same ]) {
    print "\n$w->[0], $N calls:\n";
    for my $tree (@TREES) {
        my $r = replay($tree, $w->[1]);
        printf "  %s\n    Redis CPU %.0f us a call, EVALSHA %.0f us%s\n    digest %s\n"
               . "    commands a call: %s\n",
               $tree, $r->{cpu}, $r->{evalsha},
               defined $r->{ir} ? sprintf(', %.2f M instructions in EVALSHA', $r->{ir} / 1e6) : '',
               $r->{digest}, join(', ', @{ $r->{cmds} });
    }
}
