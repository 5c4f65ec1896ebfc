#!/usr/bin/perl
#
# ./build.sh bench: the benchmarks of issue 7, as ratios measured side by
# side in one run (never absolute times).  Not part of ./build.sh test.
#
#   CLOCKCHAIN_MODULE=build/ngx_http_clockchain_module.so \
#       perl -I t/lib t/bench/bench.pl [measure ...]
#
# With no argument it runs the twelve measures, prints the table and
# rewrites the generated part of docs/benchmarks.md (between the
# "bench:begin" and "bench:end" markers; the hand-written analysis after
# them is kept).  With measure numbers (1 to 13) it runs only those and
# leaves the docs alone; the setup (Redis, the runner nginx, 10k completed
# jobs) always runs.  BENCH_SECS sets the length of one wrk round (5).
# BENCH_GRAPH_NODES sets the size of measure 9's graph (100000; see
# docs/benchmarks.md for how long that takes and how much Redis it needs).
# BENCH_INGEST_NODES sets how many moments measure 10 ingests (100000;
# 2000 for a quick run).
# BENCH_WAITERS sets how many long-poll waiters measure 12 holds on one
# nginx (10000); BENCH_WAITERS_CONF adds http-level directives to its two
# nginx (e.g. 'request_pool_size 6k;').
# BENCH_RUNNER_MOMENTS sets how many new moments measure 13's runner
# writes (3000).
# BENCH_PERF=1 records `perf record -g` on the workers and Redis during
# measure 3 and the first rounds of measures 1, 2 and 4, and on the
# workers of W during measure 12's wake, and writes
# the reports to build/bench/ (it slows those rounds down a little).
#
# Core Perl and the test harness (t/lib/Clockchain/Test.pm) only.  Needs
# wrk; perf only with BENCH_PERF.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use Clockchain::Chart ();
use Cwd qw(abs_path);
use Encode ();
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Poll qw(POLLIN POLLERR POLLHUP);
use IO::Socket::INET;
use JSON::PP;
use List::Util qw(min max sum);
use POSIX qw(strftime WNOHANG);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

$| = 1;
binmode STDOUT, ':encoding(UTF-8)';
binmode STDERR, ':encoding(UTF-8)';

my $REPO   = abs_path("$FindBin::Bin/../..");
my $SECS   = $ENV{BENCH_SECS} // 5;
my $ROUNDS = 3;
my $KEY    = 'bench-service-key';
my $ADMIN  = 'bench-admin-key';
my $OUT    = "$REPO/build/bench";
my $DOC    = "$REPO/docs/benchmarks.md";
my $PERF   = $ENV{BENCH_PERF} ? 1 : 0;
my $MAIN_PID = $$;
my $JSON   = JSON::PP->new->utf8->canonical;
my $T0     = time;
my $LOAD0  = do { open my $fh, '<', '/proc/loadavg'; my $l = <$fh> // ''; join ' ', (split ' ', $l)[0 .. 2] };

die "usage: $0 [1-13 ...]\n" if grep { !/^(?:[1-9]|1[0-3])$/ } @ARGV;
my %ONLY = map { $_ => 1 } @ARGV;
my $FULL = !%ONLY;
sub wanted { $FULL || $ONLY{ $_[0] } }

make_path($OUT);

sub say_ { printf STDERR "[bench %5.1fs] %s\n", time - $T0, join '', @_ }

###########################################################################
# nginx instances: the harness' Nginx objects, with a config of our own
# (worker_connections and keepalive_requests beyond the harness' fixed ones)

my @NG;

sub nginx_quote {
    my ($s) = @_;
    $s =~ s/\$/\\u0024/g;           # JSON escape: nginx would read a variable
    $s =~ s/([\\'])/\\$1/g;
    return "'$s'";
}

# start_ng(name => ..., ports => N, http => sub { my @ports = @_; ... },
#          connections => worker_connections (8192))
sub start_ng {
    my (%o) = @_;
    my $conns = $o{connections} // 8192;
    my $nofile = max(16384, 2 * $conns);
    my $prefix = tempdir("cc-bench-$o{name}-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $prefix;
    mkdir "$prefix/$_" for qw(logs conf);
    my @ports = Clockchain::Test::_free_ports($o{ports} // 1);
    my $module = module_path();
    die "module not found: $module (./build.sh builds it)\n" unless -f $module;
    $module = abs_path($module);
    my $http = $o{http}->(@ports);
    my $conf = <<"EOF";
load_module $module;
daemon on;
master_process on;
worker_processes 2;
worker_rlimit_nofile $nofile;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections $conns; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
$http
}
EOF
    open my $fh, '>', "$prefix/conf/nginx.conf" or die "$prefix: $!";
    print $fh $conf;
    close $fh;
    my $ng = bless { prefix => $prefix, ports => \@ports, n => "bench-$o{name}",
                     name => $o{name} }, 'Clockchain::Test::Nginx';
    push @NG, $ng;
    $ng->start;
    say_("nginx $o{name} up on :" . join(',', @ports) . " (workers "
         . join(' ', $ng->worker_pids) . ")");
    return $ng;
}

sub stop_ng {
    my ($ng) = @_;
    $ng->stop(quick => 1) if $ng->running;
    my @bad = grep { /\[(alert|emerg|crit)\]/ } split /\n/, $ng->error_log;
    warn "nginx $ng->{name}: error.log has:\n" . join("\n", @bad[0 .. min(9, $#bad)]) . "\n"
        if @bad;
}

my @KIDS;    # helper processes forked by the bench, killed at the end

# (a named loop variable: the harness reads ps output into $_)
sub stop_all {
    return unless $$ == $MAIN_PID;
    for my $ng (@NG) { eval { stop_ng($ng) } }
    for my $pid (@KIDS) { kill 'KILL', $pid; waitpid($pid, 0) }
    @KIDS = ();
}

END { local ($?, $!, $@); stop_all() }
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { stop_all(); Clockchain::Test::_cleanup(); POSIX::_exit(1) };
}

# the module's locations, with our keys
sub api_locations {
    return <<"EOF";
        clockchain_service_key $KEY;
        clockchain_admin_key $ADMIN;
        clockchain_bulk_max 1000;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location = /metrics           { clockchain_metrics; }
EOF
}

###########################################################################
# HTTP helpers

my $UA = HTTP::Tiny->new(timeout => 30, keep_alive => 1, agent => 'clockchain-bench/1');

sub req {
    my ($method, $url, $body, %h) = @_;
    my %a = (headers => { 'X-Service-Key' => $KEY, %h });
    if (defined $body) {
        $a{content} = ref $body ? $JSON->encode($body) : $body;
        $a{headers}{'Content-Type'} = 'application/json';
    }
    return $UA->request($method, $url, \%a);
}

sub metrics {
    my ($ng) = @_;
    my $r = $UA->get($ng->url('/metrics'));
    die "metrics: $r->{status}\n" unless $r->{status} == 200;
    return decode_json($r->{content});
}

# creates $n jobs with bulk-generate, 1000 a request; returns their ids;
# $extra->($i), when given, adds fields to the $i-th query (from 1)
sub bulk_create {
    my ($ng, $n, $query, $extra) = @_;
    my @ids;
    while (@ids < $n) {
        my $k = min(1000, $n - @ids);
        my $base = @ids;
        my $r = req(POST => $ng->url('/api/bulk-generate'),
                    { queries => [ map { { query => "$query " . ($base + $_),
                                           $extra ? $extra->($base + $_) : () } } 1 .. $k ] },
                    'X-Admin-Key' => $ADMIN);
        die "bulk-generate: $r->{status} $r->{content}\n" unless $r->{status} == 200;
        push @ids, map { $_->{job_id} } @{ decode_json($r->{content}) };
    }
    return @ids;
}

# GETs each path once on one keep-alive connection, pipelined $depth deep;
# returns { status => count }
sub get_each {
    my ($port, $paths, $depth) = @_;
    $depth //= 64;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp') or die "connect: $!\n";
    my (%status, $buf);
    $buf = '';
    my $i = 0;
    while ($i < @$paths) {
        my $n = min($depth, @$paths - $i);
        my $out = join '', map {
            "GET $paths->[$_] HTTP/1.1\r\nHost: bench\r\nX-Service-Key: $KEY\r\n\r\n"
        } $i .. $i + $n - 1;
        while (length $out) {
            my $w = syswrite($s, $out) // die "write: $!\n";
            substr($out, 0, $w) = '';
        }
        my $got = 0;
        while ($got < $n) {
            if ($buf =~ /\AHTTP\/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n/s) {
                my ($code, $hdr, $hlen) = ($1, $2, $+[0]);
                my $cl = $hdr =~ /^content-length:\s*(\d+)/im ? $1 : 0;
                if (length($buf) >= $hlen + $cl) {
                    substr($buf, 0, $hlen + $cl) = '';
                    $status{$code}++;
                    $got++;
                    next;
                }
            }
            sysread($s, $buf, 262144, length $buf) or die "read: connection closed\n";
        }
        $i += $n;
    }
    close $s;
    return \%status;
}

###########################################################################
# wrk

sub write_file {
    my ($file, $text) = @_;
    open my $fh, '>:encoding(UTF-8)', $file or die "$file: $!";
    print $fh $text;
    close $fh or die "$file: $!";
}

my $POST_LUA = "$OUT/post.lua";
write_file($POST_LUA, <<"LUA");
-- wrk script of ./build.sh bench: POST /api/generate as a client sends it
wrk.method = "POST"
wrk.body = '{"query":"moon landing"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Service-Key"] = "$KEY"
LUA

my %COMMANDS;    # command templates shown in the docs, by measure

sub _ms {
    my ($v, $u) = @_;
    return $v / 1000 if $u eq 'us';
    return $v if $u eq 'ms';
    return $v * 1000 if $u eq 's';
    return $v * 60000 if $u eq 'm';
    die "wrk: unit $u\n";
}

# wrk($url, secs => .., post => 1, conns => 64, nokey => 1, timeout => secs)
# -> { rps, p50, p99 (ms), n }
sub wrk {
    my ($url, %o) = @_;
    my @cmd = ('wrk', '-t2', '-c' . ($o{conns} // 64), '-d' . ($o{secs} // $SECS) . 's',
               '--latency', $o{nokey} ? () : ('-H', "X-Service-Key: $KEY"),
               $o{timeout} ? ('--timeout', "$o{timeout}s") : ());
    push @cmd, '-s', $POST_LUA if $o{post};
    push @cmd, $url;
    open my $fh, '-|', @cmd or die "wrk: $!\n";
    local $/;
    my $out = <$fh>;
    close $fh;
    die "wrk failed ($?):\n$out\n" if $?;
    my %r;
    ($r{rps}) = $out =~ /^Requests\/sec:\s+([\d.]+)/m or die "wrk output:\n$out\n";
    $out =~ /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m or die "wrk output:\n$out\n";
    $r{p50} = _ms($1, $2);
    $out =~ /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m or die "wrk output:\n$out\n";
    $r{p99} = _ms($1, $2);
    ($r{n}) = $out =~ /^\s+(\d+) requests in/m;
    my ($bad) = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    die "wrk $url: $bad answers were not 2xx:\n$out\n" if $bad;
    my ($err) = $out =~ /(Socket errors:.*)/;
    die "wrk $url: $err\n$out\n" if $err && $err =~ /[1-9]/;
    return \%r;
}

# least-squares slope of a series against its index
sub slope {
    my @y = @_;
    my $n = @y;
    return 0 if $n < 2;
    my $mx = ($n - 1) / 2;
    my $my = sum(@y) / $n;
    my ($sxy, $sxx) = (0, 0);
    for my $i (0 .. $n - 1) {
        $sxy += ($i - $mx) * ($y[$i] - $my);
        $sxx += ($i - $mx) ** 2;
    }
    return $sxy / $sxx;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return undef unless @s;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

sub pct {
    my ($p, @v) = @_;
    my @s = sort { $a <=> $b } @v;
    return undef unless @s;
    my $i = int($p / 100 * @s + 0.999999) - 1;
    return $s[ max(0, min($#s, $i)) ];
}

# perf record -g on $pids while $cb runs; the report goes to build/bench/
sub with_perf {
    my ($name, $pids, $cb) = @_;
    return $cb->() unless $PERF;
    my $data = "$OUT/perf-$name.data";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$OUT/perf-$name.log";
        { exec 'perf', 'record', '-g', '-F', '999', '-o', $data, '-p', join(',', @$pids) }
        POSIX::_exit(127);
    }
    sleep 0.5;
    my @r = $cb->();
    kill 'INT', $pid;
    waitpid($pid, 0);
    system("perf report -i $data --no-children --stdio --percent-limit 0.5 "
           . "--sort dso,symbol -g none > $OUT/perf-$name.txt 2>/dev/null");
    system("perf report -i $data --children --stdio --percent-limit 2 "
           . "-g caller,0.5,callee --sort symbol > $OUT/perf-$name-callers.txt 2>/dev/null");
    say_("perf: $OUT/perf-$name.txt");
    return wantarray ? @r : $r[0];
}

# interleaved rounds: module, reference, module, reference, ...
sub interleaved {
    my ($name, $mod_url, $ref_url, %o) = @_;
    my $before = $o{before} // sub {};
    my $after = $o{after} // sub {};    # after each module round
    $before->();
    wrk($mod_url, %o, secs => 1);
    $after->();
    wrk($ref_url, %o, secs => 1);
    my (@m, @r);
    my $procs = $o{procs} // {};
    for my $round (1 .. $ROUNDS) {
        $before->();
        my ($cpu, $m) = cpu_during($procs, sub {
            $round == 1 ? with_perf($name, [ values %$procs ], sub { wrk($mod_url, %o) })
                        : wrk($mod_url, %o);
        });
        $m->{cpu} = $cpu;
        $after->();
        my ($rcpu, $r) = cpu_during($procs, sub {
            $round == 1 ? with_perf("$name-ref", [ values %$procs ], sub { wrk($ref_url, %o) })
                        : wrk($ref_url, %o);
        });
        $r->{cpu} = $rcpu;
        push @m, $m;
        push @r, $r;
        say_(sprintf "%s round %d: module %.0f rps p99 %.3f ms (CPU: %s); reference %.0f rps p99 %.3f ms (CPU: %s)",
             $name, $round, $m->{rps}, $m->{p99}, cpu_text($cpu), $r->{rps}, $r->{p99}, cpu_text($rcpu));
    }
    return (\@m, \@r);
}

###########################################################################
# process memory

sub proc_mem {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return {};
    my %m;
    while (my $l = <$fh>) {
        $m{$1} = $2 if $l =~ /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/;
    }
    return \%m;
}

my $TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

# CPU seconds (user + system) a process has used
sub cpu_secs {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $st = <$fh>;
    $st =~ s/^.*\) //s;
    my @f = split ' ', $st;
    return ($f[11] + $f[12]) / $TCK;
}

# CPU seconds the whole machine has been busy (all CPUs)
sub box_busy {
    open my $fh, '<', '/proc/stat' or return 0;
    my (undef, @f) = split ' ', scalar <$fh>;
    # user nice system idle iowait irq softirq steal
    return ($f[0] + $f[1] + $f[2] + $f[5] + $f[6] + $f[7]) / $TCK;
}

# { name => CPU seconds } used by each process while $cb runs, and
# "others": what the rest of the machine used meanwhile (not this script,
# not wrk, not the processes named): other people's work on a shared box
sub cpu_during {
    my ($procs, $cb) = @_;
    my %c0 = map { $_ => cpu_secs($procs->{$_}) } keys %$procs;
    my @t0 = times;
    my $b0 = box_busy();
    my @r = $cb->();
    my $busy = box_busy() - $b0;
    my @t1 = times;
    my %d = map { $_ => cpu_secs($procs->{$_}) - $c0{$_} } keys %$procs;
    my $mine = sum(0, values %d) + sum(map { $t1[$_] - $t0[$_] } 0 .. 3);
    $d{others} = max(0, $busy - $mine);
    return (\%d, @r);
}

sub cpu_text {
    my ($d) = @_;
    return join ', ', map { sprintf '%s %.2f s', $_, $d->{$_} } sort keys %$d;
}

sub kib { sprintf '%.1f MiB', $_[0] / 1024 }

###########################################################################
# Redis helpers

my $P = 'clockchain:{cc}:v1:';
my $redis;    # the one Redis of the run

# a Redis durable as in production (AOF, fsync every second); no AOF
# rewrite, whose fork would land in some round and not in others
sub bench_redis {
    return start_redis(args => ['--appendfsync', 'everysec',
                                '--auto-aof-rewrite-percentage', '0']);
}

# { "redis" => pid, "runner worker" => pid, "other worker" => pid }
sub roles {
    my ($ng, $rd) = @_;
    my $runner = metrics($ng)->{runner_pid};
    my %p = (redis => ($rd // $redis)->pid);
    my $i = 0;
    for my $w ($ng->worker_pids) {
        my $role = !$runner ? 'worker ' . ++$i : $w == $runner ? 'runner worker' : 'other worker';
        $p{"$ng->{name} $role"} = $w;
    }
    return \%p;
}

sub pending_count {
    my ($redis) = @_;
    return $redis->cmd('ZCARD', "${P}queue") + $redis->cmd('ZCARD', "${P}processing");
}

sub clear_queue {
    my ($redis) = @_;
    $redis->cmd('DEL', "${P}queue", "${P}processing");
}

###########################################################################
# setup

my %RES;        # measure number -> { ... }
my %INFO;

say_("starting Redis, the Python Flash stand-in, the runner nginx R");
$redis = bench_redis();
my $pyflash = start_flash(delay => 0, key => 'flash-key');

# the canned scene: what the Python stand-in answers for one query
my $scene_res = HTTP::Tiny->new->request(POST => $pyflash->url . '/api/v1/timepoints/generate/sync', {
    headers => { 'X-Service-Key' => 'flash-key', 'Content-Type' => 'application/json' },
    content => $JSON->encode({ query => 'Signing of the Declaration of Independence 1776' }) });
die "stand-in: $scene_res->{status}\n" unless $scene_res->{status} == 200;
my $SCENE = JSON::PP->new->ascii->canonical->encode(decode_json($scene_res->{content}));

# an nginx with a runner whose Flash is a location of its own: the
# canned scene at once (port 2)
sub runner_http {
    my (%o) = @_;
    return sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench:$o{zone};
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_max_pending 0;
    clockchain_flash_url http://127.0.0.1:$p[1];
    clockchain_flash_key flash-key;
    clockchain_flash_max_calls @{[ $o{max_calls} // 256 ]};
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
    }
    server {
        listen 127.0.0.1:$p[1];
        location = /api/v1/timepoints/generate/sync {
            default_type application/json;
            return 200 @{[ nginx_quote($SCENE) ]};
        }
    }
EOF
    };
}

my $R = start_ng(name => 'R', ports => 2, http => runner_http(zone => '128m'));

# one job through it: its JSON, created and completed, is what the
# reference locations answer
my $res = req(POST => $R->url('/api/generate'), { query => 'moon landing' });
die "generate: $res->{status} $res->{content}\n" unless $res->{status} == 200;
my $CREATED_JSON = $res->{content};
my $SAMPLE = decode_json($res->{content})->{job_id};
my $COMPLETED_JSON;
wait_for(10, sub {
    my $r = req(GET => $R->url("/api/jobs/$SAMPLE"));
    return 0 unless $r->{status} == 200 && decode_json($r->{content})->{status} eq 'completed';
    $COMPLETED_JSON = $r->{content};
}) or die "the sample job did not complete\n";
$INFO{path} = decode_json($COMPLETED_JSON)->{path};
say_("sample job $SAMPLE: $COMPLETED_JSON");

###########################################################################
# 3. runner throughput, 10k jobs, then 7 (worker RSS, 10k vs 100k)

my @done_ids;
{
    my $n = 10_000;
    my $m0 = metrics($R);
    my $procs = roles($R);
    my ($t0, $t1, $created, @ids);
    my ($cpu) = cpu_during($procs, sub {
        with_perf('3-runner', [ values %$procs ], sub {
            $t0 = time;
            @ids = bulk_create($R, $n, 'bench runner');
            $created = time;
            my $end = time + 120;
            sleep 0.01 while pending_count($redis) > 0 && time < $end;
            $t1 = time;
        });
    });
    die "runner: jobs left\n" if pending_count($redis);
    my $m1 = metrics($R);
    my $completed = $m1->{jobs_completed} - $m0->{jobs_completed};
    my $failed = $m1->{jobs_failed} - $m0->{jobs_failed};
    my $jps = $n / ($t1 - $t0);
    $RES{3} = { jobs => $n, secs => $t1 - $t0, create_secs => $created - $t0,
                jps => $jps, completed => $completed, failed => $failed, cpu => $cpu };
    say_("3: CPU used: " . cpu_text($cpu));
    say_(sprintf "3: %d jobs created in %.2f s, all finished %.2f s after the first POST: "
         . "%.0f jobs/s (%d completed, %d failed)", $n, $created - $t0, $t1 - $t0,
         $jps, $completed, $failed);
    die "3: $failed jobs failed, " . ($n - $completed) . " not completed\n"
        unless $completed == $n;
    @done_ids = @ids;
    $COMMANDS{3} = "POST /api/bulk-generate ×10 (1000 queries each) on R; poll "
        . "`ZCARD queue` + `ZCARD processing` every 10 ms until 0";
}

if (wanted(7)) {
    my $st = get_each($R->port, [ map { "/api/jobs/$_" } @done_ids ]);
    die "7: GET answered " . join(',', %$st) . "\n" unless ($st->{200} // 0) == @done_ids;
    sleep 1;
    my @w = $R->worker_pids;
    my %mem10 = map { $_ => proc_mem($_) } @w;
    my %series = map { $_ => [ $mem10{$_}{RssAnon} ] } @w;
    my $t0 = time;
    # 90k more, 10k at a time: through the runner, then GET once each,
    # then the workers' memory read again (a leak grows with every step)
    for my $step (2 .. 10) {
        my @ids = bulk_create($R, 10_000, 'bench memory');
        wait_for(120, sub { pending_count($redis) == 0 }) or die "7: jobs left\n";
        $st = get_each($R->port, [ map { "/api/jobs/$_" } @ids ]);
        die "7: GET answered " . join(',', %$st) . "\n" unless ($st->{200} // 0) == @ids;
        sleep 0.5;
        for my $pid (@w) { push @{ $series{$pid} }, proc_mem($pid)->{RssAnon} }
    }
    sleep 1;
    my %mem100 = map { $_ => proc_mem($_) } @w;
    my $runner = metrics($R)->{runner_pid};
    my (@anon, @rss);
    for my $pid (@w) {
        push @anon, $mem100{$pid}{RssAnon} / $mem10{$pid}{RssAnon};
        push @rss, $mem100{$pid}{VmRSS} / $mem10{$pid}{VmRSS};
        say_(sprintf "7: worker %d%s: VmRSS %s -> %s, RssAnon %s -> %s, RssShmem %s -> %s",
             $pid, $pid == $runner ? ' (runner)' : '',
             kib($mem10{$pid}{VmRSS}), kib($mem100{$pid}{VmRSS}),
             kib($mem10{$pid}{RssAnon}), kib($mem100{$pid}{RssAnon}),
             kib($mem10{$pid}{RssShmem}), kib($mem100{$pid}{RssShmem}));
    }
    $RES{7} = { anon => max(@anon), rss => max(@rss), mem10 => \%mem10,
                mem100 => \%mem100, runner => $runner, workers => \@w,
                series => \%series, secs => time - $t0 };
    say_("7: RssAnon (MiB) after each 10k jobs: " . join('; ', map {
        "$_: " . join(' ', map { sprintf '%.1f', $_ / 1024 } @{ $series{$_} }) } @w));
}

stop_ng($R);

###########################################################################
# B: the API nginx, no runner, with the reference locations

my $B = start_ng(name => 'B', ports => 1, http => sub {
    my @p = @_;
    return <<"EOF";
    clockchain_zone bench:128m;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
        # nginx's own limit: the same answers, from memory
        location = /ref/job {
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 @{[ nginx_quote($COMPLETED_JSON) ]};
        }
        location = /ref/generate {
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 @{[ nginx_quote($CREATED_JSON) ]};
        }
    }
EOF
});

# 6. shared-zone bytes per cached job
if (wanted(6)) {
    my $n = @done_ids;
    my $m0 = metrics($B);
    my $st = get_each($B->port, [ map { "/api/jobs/$_" } @done_ids ]);
    die "6: GET answered " . join(',', %$st) . "\n" unless ($st->{200} // 0) == $n;
    my $m1 = metrics($B);
    my $completed = ($m0->{zone_pages_free} - $m1->{zone_pages_free}) * 4096 / $n;
    # the same for jobs just created (pending, no path)
    my @p = bulk_create($B, $n, 'bench zone');
    my $m2 = metrics($B);
    my $pending = ($m1->{zone_pages_free} - $m2->{zone_pages_free}) * 4096 / $n;
    clear_queue($redis);
    $RES{6} = { completed => $completed, pending => $pending, n => $n,
                pages => $m0->{zone_pages}, jobs => $m2->{zone_jobs} };
    say_(sprintf "6: %d completed jobs (path %d bytes): %.1f bytes each; %d pending: %.1f bytes each",
         $n, length $INFO{path}, $completed, $n, $pending);
    $COMMANDS{6} = "GET each of the 10k completed jobs once on B (a fresh zone); "
        . "`(zone_pages_free before − after) × 4096 ÷ 10000` from `GET /metrics`; "
        . "the same for 10k jobs created with bulk-generate (pending)";
}

###########################################################################
# 5. long-poll wake latency on B for changes made by A's runner

# $k clients in child processes, each with its share of the ids: GET
# ?wait=30 (wait => N) on one connection per job, answers awaited until
# 45 s (secs => N) after the last request was sent; each child writes
# "id arrival completed_at status" lines.  A child holds about
# @$ids / $k sockets: keep that under the fd limit (1024 by default).
# uri => sub { my ($id) = @_; ... } asks for another URI.  Returns a sub
# that waits for the children and returns their lines (and, in list
# context, the children's pids as well)
sub longpoll_clients {
    my ($port, $ids, $k, %o) = @_;
    my $wait = $o{wait} // 30;
    my $secs = $o{secs} // 45;
    my $uri = $o{uri} // sub { "/api/jobs/$_[0]?wait=$wait" };
    my $dir = tempdir('cc-bench-lp-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @kids;
    for my $c (0 .. $k - 1) {
        my @mine = @$ids[ grep { $_ % $k == $c } 0 .. $#$ids ];
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            # select() on a bit vector and the answer's two fields by
            # regex: IO::Poll (550 µs a call with 500 sockets) and
            # JSON::PP (165 µs an answer) took whole seconds of the CPUs
            # the wake is measured on
            my (%sock, %buf, @out);
            my $rin = '';
            for my $id (@mine) {
                my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                              Proto => 'tcp') or die "connect: $!";
                syswrite($s, "GET " . $uri->($id) . " HTTP/1.1\r\nHost: bench\r\n"
                             . "X-Service-Key: $KEY\r\nConnection: close\r\n\r\n");
                $s->blocking(0);
                die "fd " . fileno($s) . " is past select()'s 1024\n" if fileno($s) >= 1024;
                $sock{fileno $s} = [$s, $id];
                $buf{$id} = '';
                vec($rin, fileno $s, 1) = 1;
            }
            syswrite($wr, "READY\n");
            my $end = time + $secs;
            while (%sock && time < $end) {
                my $ready = select(my $rout = $rin, undef, undef, 1);
                next if $ready <= 0;
                my $now = time;
                my $bits = unpack('b*', $rout);
                while ($bits =~ /1/g) {
                    my $fd = pos($bits) - 1;
                    my ($s, $id) = @{ $sock{$fd} };
                    my $n = sysread($s, $buf{$id}, 65536, length $buf{$id});
                    next if !defined $n && $!{EAGAIN};
                    my $b = $buf{$id};
                    my $h = index($b, "\r\n\r\n");
                    my $complete = $h >= 0
                        && substr($b, 0, $h) =~ /^content-length:\s*(\d+)/im
                        && length($b) - $h - 4 >= $1;
                    if ($complete || !$n) {
                        my $body = $h >= 0 ? substr($b, $h + 4) : '';
                        my ($st) = $body =~ /"status":"([^"]*)"/;
                        my ($at) = $body =~ /"completed_at":"([^"]*)"/;
                        push @out, join ' ', $id, sprintf('%.6f', $now), $at // '-',
                            $st // 'none';
                        vec($rin, $fd, 1) = 0;
                        delete $sock{$fd};
                        close $s;
                    }
                }
            }
            push @out, map { "$_->[1] - - none" } values %sock;
            open my $fh, '>', "$dir/out.$c" or POSIX::_exit(1);
            print $fh map { "$_\n" } @out;
            close $fh;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    for my $kid (@kids) {
        my $line = readline($kid->[1]);
        die "a long-poll client did not start\n" unless defined $line && $line eq "READY\n";
    }
    my $collect = sub {
        my @lines;
        for my $c (0 .. $#kids) {
            waitpid($kids[$c][0], 0);
            open my $fh, '<', "$dir/out.$c" or die "client $c wrote nothing\n";
            push @lines, <$fh>;
        }
        return @lines;
    };
    return wantarray ? ($collect, [ map { $_->[0] } @kids ]) : $collect;
}

# a child that subscribes to the events channel and writes, for each
# "<id> completed <version>" heard, "id time" to a file; returns a sub that
# stops it and returns { id => time }
sub events_listener {
    my ($redis, $n, $secs) = @_;
    my $file = File::Temp->new(TMPDIR => 1);
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $redis->port,
                                      Proto => 'tcp') or POSIX::_exit(1);
        my $ch = "${P}events";
        print {$s} "*2\r\n\$9\r\nSUBSCRIBE\r\n\$" . length($ch) . "\r\n$ch\r\n";
        $s->flush;
        Clockchain::Test::Redis::_read_reply($s);    # the confirmation
        syswrite($wr, "READY\n");
        open my $fh, '>', $file->filename or POSIX::_exit(1);
        my $seen = 0;
        local $SIG{ALRM} = sub { close $fh; POSIX::_exit(0) };
        alarm($secs // 60);
        while ($seen < $n) {
            my $m = Clockchain::Test::Redis::_read_reply($s);
            my $t = time;
            next unless ref $m eq 'ARRAY' && $m->[2] =~ /^(\S+) completed /;
            printf $fh "%s %.6f\n", $1, $t;
            $seen++;
        }
        close $fh;
        POSIX::_exit(0);
    }
    close $wr;
    my $line = readline($rd);
    die "the events listener did not start\n" unless defined $line && $line eq "READY\n";
    return sub {
        wait_for(10, sub { waitpid($pid, WNOHANG) != 0 }) or do { kill 'KILL', $pid; waitpid($pid, 0) };
        open my $fh, '<', $file->filename or return {};
        my %t = map { split ' ' } <$fh>;
        return \%t;
    };
}

# the upper bound (ms) of the bucket holding quantile $q of what a
# histogram of /metrics counted between two readings
sub hist_quantile {
    my ($h0, $h1, $q) = @_;
    my $n = $h1->{count} - $h0->{count};
    return '-' unless $n > 0;
    my @le = sort { $a <=> $b } grep { $_ ne '+Inf' } keys %{ $h1->{buckets} };
    for my $le (@le) {
        return $le * 1000 if $h1->{buckets}{$le} - ($h0->{buckets}{$le} // 0) >= $q * $n;
    }
    return '∞';
}

sub iso_epoch {
    my ($ts) = @_;
    return undef unless defined $ts
        && $ts =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z$/;
    return timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1e6;
}

# the clients' lines and the times the changes were heard published ->
# latencies in ms (answer - completed_at; completed_at - PUBLISH heard;
# PUBLISH heard - answer), { status => count }, first and last arrival
sub longpoll_split {
    my ($lines, $pub) = @_;
    my (@lat, @a_part, @b_part, %st);
    for (@$lines) {
        my ($id, $arrival, $completed_at, $status) = split ' ';
        $st{$status}++;
        my $c = iso_epoch($completed_at);
        next unless $status eq 'completed' && defined $c;
        push @lat, ($arrival - $c) * 1000;
        next unless $pub->{$id};
        push @a_part, ($pub->{$id} - $c) * 1000;
        push @b_part, ($arrival - $pub->{$id}) * 1000;
    }
    my @arr = grep { $_ ne '-' } map { (split ' ')[1] } @$lines;
    return (\@lat, \@a_part, \@b_part, \%st, min(@arr), max(@arr));
}

# one run: 1000 jobs created on B, a waiter on B for each, then A (a
# runner nginx with clockchain_flash_max_calls $max) started to run them
sub longpoll_run {
    my ($max) = @_;
    clear_queue($redis);
    my $n = 1000;
    my @ids = bulk_create($B, $n, "bench longpoll $max");
    my $collect = longpoll_clients($B->port, \@ids, 4);
    # when each change reached Redis' subscribers: splits the latency into
    # A's part (its runner to the PUBLISH) and B's (the PUBLISH to the answer)
    my $heard = events_listener($redis, $n);
    sleep 1;    # B has read every request and holds every waiter
    my $h0 = metrics($B)->{redis_command_duration_seconds};
    my $t0 = time;
    my $A = start_ng(name => 'A', ports => 2,
                     http => runner_http(zone => '128m', max_calls => $max));
    my @lines = $collect->();
    my $pub = $heard->();
    # B's round trips to Redis meanwhile: the HMGET of each woken waiter
    my $h1 = metrics($B)->{redis_command_duration_seconds};
    stop_ng($A);
    my ($lat, $a_part, $b_part, $st, $first, $last) = longpoll_split(\@lines, $pub);
    my @lat = @$lat;
    my @a_part = @$a_part;
    my @b_part = @$b_part;
    my %st = %$st;
    say_(sprintf "5: max_calls %d: %d answers (%s), from %.2f to %.2f s after A was started",
         $max, scalar @lines, join(', ', map { "$_ $st{$_}" } sort keys %st),
         $first - $t0, $last - $t0);
    die "5: only " . scalar(@lat) . " of $n jobs answered completed\n" unless @lat == $n;
    my $x = { median => median(@lat), p99 => pct(99, @lat), max => max(@lat),
              min => min(@lat), n => scalar @lat, max_calls => $max,
              a_median => median(@a_part), a_p99 => pct(99, @a_part),
              b_median => median(@b_part), b_p99 => pct(99, @b_part),
              heard => scalar @a_part, span => $last - $first,
              rt_n => $h1->{count} - $h0->{count},
              rt_median => hist_quantile($h0, $h1, 0.5), rt_p99 => hist_quantile($h0, $h1, 0.99) };
    say_(sprintf "5: max_calls %d: wake latency median %.2f ms, p99 %.2f ms, max %.2f ms; "
         . "completed_at to PUBLISH heard: median %.2f p99 %.2f ms; PUBLISH heard "
         . "to B's answer: median %.2f p99 %.2f ms (%d heard)",
         $max, @$x{qw(median p99 max a_median a_p99 b_median b_p99 heard)});
    say_(sprintf "5: max_calls %d: B's %d Redis round trips meanwhile: median ≤ %s ms, p99 ≤ %s ms",
         $max, @$x{qw(rt_n rt_median rt_p99)});
    return $x;
}

if (wanted(5)) {
    # the measure: A as R (clockchain_flash_max_calls 256), three runs, the
    # median of their medians and of their p99s; then the default 64 and
    # 16, once each, to show where the time goes
    my @runs;
    for my $i (1 .. $ROUNDS) { push @runs, longpoll_run(256) }
    $RES{5} = { runs => \@runs, median => median(map { $_->{median} } @runs),
                p99 => median(map { $_->{p99} } @runs) };
    $RES{'5v'} = [];
    for my $max (64, 16) { push @{ $RES{'5v'} }, longpoll_run($max) }
    $COMMANDS{5} = "1000 jobs created on B; 1000 connections (4 client processes) "
        . "`GET /api/jobs/ID?wait=30` on B; then A (as R: runner, instant stand-in) is "
        . "started on the same Redis; latency = arrival of the answer − `completed_at` in it; "
        . "a SUBSCRIBE client notes when each change was published";
}

# 1. GET of a completed job against return 200
if (wanted(1)) {
    my $url = $B->url("/api/jobs/$SAMPLE");
    my $r = req(GET => $url);
    die "1: $r->{status}\n" unless $r->{status} == 200 && $r->{content} eq $COMPLETED_JSON;
    my ($m, $ref) = interleaved('1-get', $url, $B->url('/ref/job'),
                                procs => roles($B));
    $RES{1} = { m => $m, r => $ref,
                ratio => median(map { $m->[$_]{rps} / $ref->[$_]{rps} } 0 .. $#$m),
                p99 => median(map { $m->[$_]{p99} / $ref->[$_]{p99} } 0 .. $#$m) };
    $COMMANDS{1} = [ "`wrk -t2 -c64 -d${SECS}s --latency -H 'X-Service-Key: KEY' http://B/api/jobs/ID`",
                     "`wrk -t2 -c64 -d${SECS}s --latency -H 'X-Service-Key: KEY' http://B/ref/job`",
                     "a 1 s warm-up of each, then module, reference, module, ... (3 each); "
                     . "ratios per round, the median of the three" ];
}

# 2. POST /api/generate against return 200
if (wanted(2)) {
    my $jobs0 = metrics($B)->{jobs_created};
    # each module round starts from the same Redis: only the sample job
    my $key = "${P}job:$SAMPLE";
    my $dump = $redis->cmd('DUMP', $key);
    my $flush = sub {
        $redis->cmd('FLUSHALL');
        $redis->cmd('RESTORE', $key, 0, $dump);
    };
    my ($m, $ref) = interleaved('2-post', $B->url('/api/generate'), $B->url('/ref/generate'),
                                post => 1, procs => roles($B), before => $flush);
    my $created = metrics($B)->{jobs_created} - $jobs0;
    clear_queue($redis);
    $RES{2} = { m => $m, r => $ref, created => $created,
                ratio => median(map { $m->[$_]{rps} / $ref->[$_]{rps} } 0 .. $#$m) };
    $COMMANDS{2} = [ "`wrk -t2 -c64 -d${SECS}s --latency -H 'X-Service-Key: KEY' -s post.lua http://B/api/generate`",
                     "`wrk -t2 -c64 -d${SECS}s --latency -H 'X-Service-Key: KEY' -s post.lua http://B/ref/generate`",
                     "interleaved as in 1; `FLUSHALL` (and the sample job restored) before each module round" ];
}

stop_ng($B);

###########################################################################
# 12. 10 000 long-poll waiters on one nginx (issue 19).  W is B without
# the references, started for this measure alone so that no earlier
# measure has grown its workers' heaps.  10 000 jobs are created on W and
# each is read once by both workers (the zone's pages they will touch are
# then in the "before"); W's workers' memory is read; a GET ?wait=60 for
# each job on a connection of its own (client processes of 500 sockets,
# under the default limit of 1024 fds); when /metrics counts every waiter,
# the memory is read again; then A (a runner, as in 5) is started on the
# same Redis and finishes the jobs, and W wakes its waiters.  nginx's own
# limit is W0, a twin of W prepared the same way, holding as many requests
# that limit_req delays (the first passes): what nginx itself keeps for a
# request it holds.

my $WAITERS = $ENV{BENCH_WAITERS} // 10_000;
my $WAITERS_CONF = $ENV{BENCH_WAITERS_CONF} // '';    # e.g. 'request_pool_size 6k;'

# the sum over an nginx's workers of each /proc/PID/status field, and the
# sockets each worker holds
sub workers_mem {
    my ($ng) = @_;
    my (%sum, @socks);
    for my $pid ($ng->worker_pids) {
        my $m = proc_mem($pid);
        $sum{$_} += $m->{$_} // 0 for qw(VmRSS RssAnon RssShmem RssFile);
        opendir my $d, "/proc/$pid/fd" or next;
        push @socks, scalar grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $d;
    }
    $sum{socks} = \@socks;
    return \%sum;
}

# W and W0: $n jobs created, each read by both workers
sub waiters_ng {
    my ($name, $n) = @_;
    clear_queue($redis);
    # a worker may get more than half of the connections (reuseport)
    my $ng = start_ng(name => $name, ports => 1,
                      connections => max(8192, int($n * 0.6) + 512), http => sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench:128m;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_max_pending 0;
    limit_req_zone \$server_port zone=hold:1m rate=1r/m;
    $WAITERS_CONF
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
        # nginx's own held request: all but the first are delayed
        location = /ref/hold { limit_req zone=hold burst=1000000; stub_status; }
        location = /ref/status { stub_status; }
    }
EOF
    });
    my @ids = bulk_create($ng, $n, "bench waiters $name");
    # 8 connections, which reuseport spreads over the two workers
    for my $i (1 .. 8) {
        my $st = get_each($ng->port, [ map { "/api/jobs/$_" } @ids ]);
        die "12: GET answered " . join(',', %$st) . "\n" unless ($st->{200} // 0) == $n;
    }
    sleep 1;
    return ($ng, @ids);
}

# $n requests held by $ng, one a connection: its workers' memory before
# and after, the clients, how long it took
sub hold_requests {
    my ($ng, $ids, $uri, $count) = @_;
    my $n = @$ids;
    my $m0 = workers_mem($ng);
    my $k = int(($n + 499) / 500);
    my $t_sent = time;
    my ($collect, $pids) = longpoll_clients($ng->port, $ids, $k, wait => 60, secs => 120,
                                            $uri ? (uri => $uri) : ());
    my $held = wait_for(60, sub { $count->() >= $n });
    my $t_held = time;
    die "12: $ng->{name}: " . $count->() . " of $n requests held after 60 s\n" unless $held;
    sleep 1;
    my $m1 = workers_mem($ng);
    my $x = { m0 => $m0, m1 => $m1, clients => $k, hold_secs => $t_held - $t_sent,
              collect => $collect, pids => $pids, n => $n };
    $x->{$_} = ($m1->{$_} - $m0->{$_}) * 1024 / $n for qw(VmRSS RssAnon RssShmem);
    say_(sprintf "12: %s: %d requests held %.1f s after the first was sent, by %d client "
         . "processes; the workers hold %s sockets; summed over them VmRSS %s -> %s, RssAnon "
         . "%s -> %s, RssShmem %s -> %s: %.0f B (VmRSS), %.0f B (RssAnon) a request",
         $ng->{name}, $n, $x->{hold_secs}, $k, join(' and ', @{ $m1->{socks} }),
         kib($m0->{VmRSS}), kib($m1->{VmRSS}), kib($m0->{RssAnon}), kib($m1->{RssAnon}),
         kib($m0->{RssShmem}), kib($m1->{RssShmem}), @$x{qw(VmRSS RssAnon)});
    return $x;
}

if (wanted(12)) {
    my $n = $WAITERS;
    my $load0 = first_line('cat', '/proc/loadavg') =~ s/^(\S+ \S+ \S+).*/$1/r;

    # nginx's own: W0 holds $n - 1 requests delayed by limit_req (stub_status
    # counts them as writing, with its own request)
    my ($W0, @ids0) = waiters_ng('W0', $n);
    my $ref = hold_requests($W0, \@ids0, sub { "/ref/hold?$_[0]" }, sub {
        my $r = $UA->get($W0->url('/ref/status'));
        $r->{status} == 200 && $r->{content} =~ /Writing: (\d+)/ ? $1 : 0;
    });
    kill 'KILL', @{ $ref->{pids} };
    waitpid($_, 0) for @{ $ref->{pids} };
    delete @$ref{qw(collect pids)};
    stop_ng($W0);

    # the module's waiters on W
    my ($W, @ids) = waiters_ng('W', $n);
    my $x = hold_requests($W, \@ids, undef, sub { metrics($W)->{longpoll_waiters} });
    $x->{ref} = $ref;
    my $heard = events_listener($redis, $n, 120);
    my $h0 = metrics($W)->{redis_command_duration_seconds};
    my $procs = roles($W);
    my ($A, $t0, @lines);
    # how long W's workers waited for a CPU (run queue, /proc/PID/schedstat)
    my $run_delay = sub { sum(0, map { open my $fh, '<', "/proc/$_/schedstat" or return 0;
                                       (split ' ', scalar <$fh>)[1] / 1e9 } $W->worker_pids) };
    my $rd0 = $run_delay->();
    my @c0 = times;
    my ($cpu) = cpu_during($procs, sub {
        with_perf('12-wake', [ $W->worker_pids ], sub {
            $t0 = time;
            $A = start_ng(name => 'A', ports => 2,
                          http => runner_http(zone => '128m', max_calls => 256));
            @lines = $x->{collect}->();
        });
    });
    delete @$x{qw(collect pids)};
    my $w_waited = $run_delay->() - $rd0;
    my @c1 = times;
    # the client processes' whole life (connects, wait, answers): they
    # share the CPUs with W, A and Redis
    my $clients_cpu = $c1[2] + $c1[3] - $c0[2] - $c0[3];
    my $a_cpu = sum(0, map { cpu_secs($_) } $A->worker_pids);
    my $pub = $heard->();
    my $h1 = metrics($W)->{redis_command_duration_seconds};
    my $m2 = workers_mem($W);
    stop_ng($A);
    stop_ng($W);
    # each answer: id, arrival, completed_at, status, when its change was
    # heard published (epoch seconds), for a look at the tail
    write_file("$OUT/12-wake.txt", join '', map {
        chomp(my $l = $_); my $id = (split ' ', $l)[0];
        sprintf "%s %s\n", $l, $pub->{$id} // '-' } @lines);
    my ($lat, $a_part, $b_part, $st, $first, $last) = longpoll_split(\@lines, $pub);
    say_(sprintf "12: %d answers (%s), from %.2f to %.2f s after A was started",
         scalar @lines, join(', ', map { "$_ $st->{$_}" } sort keys %$st),
         $first - $t0, $last - $t0);
    # a waiter whose job A had not finished within the 60 s answers the
    # state there is: counted, not timed (on a busy machine A's runner, not
    # the wake, is what runs late)
    die "12: no job answered completed\n" unless @$lat;
    warn sprintf "12: only %d of %d jobs answered completed within the 60 s\n", scalar @$lat, $n
        unless @$lat == $n;
    my $wcpu = sum(0, map { $cpu->{$_} } grep { /worker/ } keys %$cpu);
    %$x = (%$x, m2 => $m2,
           median => median(@$lat), p99 => pct(99, @$lat), max => max(@$lat),
           a_median => median(@$a_part), a_p99 => pct(99, @$a_part), a_max => max(@$a_part),
           b_median => median(@$b_part), b_p99 => pct(99, @$b_part), b_max => max(@$b_part),
           heard => scalar @$a_part, first => $first - $t0, last => $last - $t0,
           cpu => $cpu, w_cpu => $wcpu, a_cpu => $a_cpu, w_us => $wcpu / $n * 1e6,
           clients_cpu => $clients_cpu, completed => scalar @$lat, states => $st,
           w_waited => $w_waited,
           rt_n => $h1->{count} - $h0->{count}, load0 => $load0,
           load => first_line('cat', '/proc/loadavg') =~ s/^(\S+ \S+ \S+).*/$1/r);
    $RES{12} = $x;
    say_(sprintf "12: wake latency median %.2f ms, p99 %.2f ms, max %.2f ms; completed_at to "
         . "PUBLISH heard: median %.2f p99 %.2f max %.2f ms; PUBLISH heard to W's answer: "
         . "median %.2f p99 %.2f max %.2f ms (%d heard)",
         @$x{qw(median p99 max a_median a_p99 a_max b_median b_p99 b_max heard)});
    say_(sprintf "12: CPU during the wake (%.2f s): %s; A's workers %.2f s; the clients %.2f s; "
         . "W's workers %.0f µs per waiter, and %.2f s waiting for a CPU; W's Redis round "
         . "trips meanwhile: %d; after the wake W's workers: VmRSS %s, RssAnon %s",
         $last - $t0, cpu_text($cpu), $a_cpu, $clients_cpu, $x->{w_us}, $w_waited, $x->{rt_n},
         kib($m2->{VmRSS}), kib($m2->{RssAnon}));
    $COMMANDS{12} = "W: B's configuration without the references, and `location = /ref/hold "
        . "{ limit_req zone=hold burst=1000000; stub_status; }` (`limit_req_zone \$server_port "
        . "zone=hold:1m rate=1r/m`) and a `stub_status` location; W0 a twin of W; each started "
        . "for this measure, with $n jobs created on it and each read once by both workers; "
        . "`/proc/<worker>/status` of both workers; on W0 `GET /ref/hold?ID` for each job on a "
        . "connection of its own ($x->{clients} client processes of 500 sockets), until "
        . "stub_status counts them, 1 s, `/proc/<worker>/status` again, clients killed; on W "
        . "the same with `GET /api/jobs/ID?wait=60`, until `longpoll_waiters` in `/metrics` "
        . "is $n; per request: (sum of VmRSS after − before) ÷ $n, the same for RssAnon; then "
        . "A (as in 5) started on the same Redis; latency = arrival of the answer − "
        . "`completed_at` in it, split as in 5; CPU of W's workers from A's start to the last "
        . "answer";
}

###########################################################################
# 4. GET p99 while 1000 Flash calls are in flight

# A Flash stand-in that answers the canned scene $delay seconds after each
# call, in one process that sleeps in poll() meanwhile.  (t/flash/standin.py
# wakes each of its waiting threads every 200 ms: with 1000 calls in flight
# it takes ~15% of a CPU, which on a small machine is taken from the nginx
# being measured.)  GET /_count answers the number of calls it holds.
sub start_slow_flash {
    my ($delay) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 4096, ReuseAddr => 1) or die "listen: $!\n";
    my $port = $l->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        my $answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($SCENE) . "\r\n\r\n$SCENE";
        $l->blocking(0);
        my $poll = IO::Poll->new;
        $poll->mask($l => POLLIN);
        my %c;    # fileno => { s, buf, due }
        while (1) {
            my @due = map { $_->{due} } grep { $_->{due} } values %c;
            my $now = time;
            $poll->poll(@due ? max(0, min(1, min(@due) - $now)) : 1);
            for my $s ($poll->handles(POLLIN | POLLHUP | POLLERR)) {
                if ($s == $l) {
                    while (my $n = $l->accept) {
                        $n->blocking(0);
                        $poll->mask($n => POLLIN);
                        $c{ fileno $n } = { s => $n, buf => '' };
                    }
                    next;
                }
                my $c = $c{ fileno $s } or next;
                my $r = sysread($s, $c->{buf}, 65536, length $c->{buf});
                next if !defined $r && $!{EAGAIN};
                if (!$r) {
                    $poll->remove($s);
                    delete $c{ fileno $s };
                    close $s;
                    next;
                }
                my $h = index($c->{buf}, "\r\n\r\n");
                next if $h < 0 || $c->{due};
                my $head = substr($c->{buf}, 0, $h);
                my $cl = $head =~ /^content-length:\s*(\d+)/im ? $1 : 0;
                next if length($c->{buf}) < $h + 4 + $cl;
                substr($c->{buf}, 0, $h + 4 + $cl) = '';
                if ($head =~ m{^GET /_count}) {
                    my $n = grep { $_->{due} } values %c;
                    syswrite($s, "HTTP/1.1 200 OK\r\nContent-Length: " . length($n)
                                 . "\r\nConnection: close\r\n\r\n$n");
                    next;
                }
                $c->{due} = time + $delay;
            }
            $now = time;
            for my $c (grep { $_->{due} && $_->{due} <= $now } values %c) {
                syswrite($c->{s}, $answer);
                $c->{due} = undef;
            }
        }
    }
    close $l;
    push @KIDS, $pid;
    return { port => $port, pid => $pid,
             count => sub { my $r = $UA->get("http://127.0.0.1:$port/_count");
                            $r->{status} == 200 ? $r->{content} : -1 } };
}

# F: a runner whose Flash answers after 60 s
sub flood_http {
    my ($slow) = @_;
    return sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench:128m;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_max_pending 0;
    clockchain_flash_url http://127.0.0.1:$slow->{port};
    clockchain_flash_key flash-key;
    clockchain_flash_max_calls 1000;
    clockchain_flash_timeout 300s;
    clockchain_drain_timeout 1s;
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
    }
EOF
    };
}

if (wanted(4)) {
    clear_queue($redis);
    my $slow = start_slow_flash(60);
    my $F = start_ng(name => 'F', ports => 1, http => flood_http($slow));
    wait_for(5, sub { metrics($F)->{runner_pid} }) or die "4: no runner\n";
    my $runner = metrics($F)->{runner_pid};
    my $round = sub {
        my ($ng, $perf) = @_;
        my $url = $ng->url("/api/jobs/$SAMPLE");
        my $procs = roles($ng);
        $procs->{'flash stand-in'} = $slow->{pid};
        my ($cpu, $r) = cpu_during($procs, sub {
            $perf ? with_perf($perf, [ values %$procs ], sub { wrk($url) }) : wrk($url);
        });
        $r->{cpu} = $cpu;
        return $r;
    };
    my $warm = sub {
        my ($ng) = @_;
        my $r = req(GET => $ng->url("/api/jobs/$SAMPLE"));
        die "4: $r->{status}\n" unless $r->{status} == 200;
        wrk($ng->url("/api/jobs/$SAMPLE"), secs => 1);
    };
    $warm->($F);
    # F idle first (shown, not used for the ratio)
    my (@before, @idle, @busy);
    for my $i (1 .. $ROUNDS) {
        push @before, $round->($F, $i == 1 ? '4-idle' : undef);
        say_(sprintf "4: F idle: %.0f rps p99 %.3f ms (CPU: %s)", $before[-1]{rps},
             $before[-1]{p99}, cpu_text($before[-1]{cpu}));
    }
    my $mem0 = proc_mem($runner);
    my $t0 = time;
    bulk_create($F, 1000, 'bench flood');
    wait_for(30, sub { metrics($F)->{flash_calls_in_flight} >= 1000
                       && $slow->{count}->() >= 1000 })
        or die "4: only " . $slow->{count}->() . " calls in flight\n";
    my $ready = time - $t0;
    my $mem1 = proc_mem($runner);
    say_(sprintf "4: 1000 calls in flight %.1f s after the POST; runner %d VmRSS %s -> %s",
         $ready, $runner, kib($mem0->{VmRSS}), kib($mem1->{VmRSS}));
    # the idle twin: the same configuration, started once F holds every
    # job (its runner finds the queue empty); rounds alternate between the
    # two so that both see the same neighbours on this machine
    my $F2 = start_ng(name => 'F2', ports => 1, http => flood_http($slow));
    $warm->($F2);
    for my $i (1 .. $ROUNDS) {
        push @idle, $round->($F2);
        push @busy, $round->($F, $i == 1 ? '4-flood' : undef);
        say_(sprintf "4: F2 idle %.0f rps p99 %.3f ms (CPU: %s); F with 1000 calls in flight "
             . "%.0f rps p99 %.3f ms (CPU: %s)", $idle[-1]{rps}, $idle[-1]{p99},
             cpu_text($idle[-1]{cpu}), $busy[-1]{rps}, $busy[-1]{p99}, cpu_text($busy[-1]{cpu}));
    }
    my $mem2 = proc_mem($runner);
    my $still = $slow->{count}->();
    my $inflight = metrics($F)->{flash_calls_in_flight};
    my $elapsed = time - $t0;
    die "4: the calls ended before the rounds did ($still in flight after $elapsed s)\n"
        if $still < 1000 || $inflight < 1000;
    $RES{4} = { before => \@before, idle => \@idle, busy => \@busy,
                ratio => median(map { $busy[$_]{p99} / $idle[$_]{p99} } 0 .. $#busy),
                rss0 => $mem0->{VmRSS}, rss1 => max($mem1->{VmRSS}, $mem2->{VmRSS}),
                anon0 => $mem0->{RssAnon}, anon1 => max($mem1->{RssAnon}, $mem2->{RssAnon}),
                ready => $ready, runner => $runner, elapsed => $elapsed };
    $RES{4}{growth} = ($RES{4}{rss1} - $RES{4}{rss0}) / 1024;
    stop_ng($F2);
    stop_ng($F);
    kill 'TERM', $slow->{pid};
    waitpid($slow->{pid}, 0);
    @KIDS = grep { $_ != $slow->{pid} } @KIDS;
    clear_queue($redis);
    $COMMANDS{4} = [ "`wrk -t2 -c64 -d${SECS}s --latency -H 'X-Service-Key: KEY' http://F/api/jobs/ID` (×3, F idle)",
                     "POST /api/bulk-generate of 1000 queries on F; wait for flash_calls_in_flight = 1000 "
                     . "in /metrics and 1000 calls held by the stand-in (a poll() loop in the bench "
                     . "that answers the canned scene after 60 s)",
                     "start F2 (F's configuration); 3 rounds of the same wrk on F2 (idle) then on F "
                     . "(1000 calls in flight), all within the 60 s; ratio = median of the 3 "
                     . "p99(F) ÷ p99(F2); VmRSS of runner_pid from /proc before the POST and after the rounds" ];
}

###########################################################################
# 8. public moments from the zone: a hot moment against return 200, and
# how soon a publish on A is seen on B (t/bench/moments.pl, on its own
# Redis and two nginx of its own)

if (wanted(8)) {
    say_('8: public moments (t/bench/moments.pl)');
    open my $fh, '-|', $^X, '-I', "$REPO/t/lib", "$REPO/t/bench/moments.pl", $SECS, 200
        or die "8: $!\n";
    my ($line) = grep { /^\{/ } <$fh>;
    close $fh;
    die "8: no result from t/bench/moments.pl\n" unless $line;
    $RES{8} = decode_json($line);
    say_(sprintf '8: hot moment %.0f vs %.0f rps (%.2f); publish seen on B: median %.2f ms, p99 %.2f ms',
         @{ $RES{8} }{qw(hot_rps ref_rps ratio median_ms p99_ms)});
    $COMMANDS{8} = "t/bench/moments.pl: a public moment of 16 edges (" . $RES{8}{body_bytes}
        . " bytes), `wrk -t2 -c64 -d${SECS}s` without a key on `/api/moments/PATH` and on "
        . "`location = /ref/moment { return 200 '<the same body>'; }` in the same nginx, "
        . "interleaved, 3 rounds each, the median of the ratios; then 200 private moments, each "
        . "read twice without a key on B (the 404 cached), published on A (`POST .../publish`), "
        . "and B polled without a key on a keep-alive connection from A's 200 until it answers 200";
}

###########################################################################
# 11. a writer's token revoked on A, refused on B (t/bench/agents.pl, on
# its own Redis and two nginx of its own)

if (wanted(11)) {
    say_('11: token revocation across two nginx (t/bench/agents.pl)');
    open my $fh, '-|', $^X, '-I', "$REPO/t/lib", "$REPO/t/bench/agents.pl", 200
        or die "11: $!\n";
    my ($line) = grep { /^\{/ } <$fh>;
    close $fh;
    die "11: no result from t/bench/agents.pl\n" unless $line;
    $RES{11} = decode_json($line);
    say_(sprintf '11: revoked on A, refused on B: median %.2f ms, p99 %.2f ms',
         @{ $RES{11} }{qw(median_ms p99_ms)});
    $COMMANDS{11} = "t/bench/agents.pl: 200 agents, each registered on A, its token cached by "
        . "both workers of B (a write on new connections until no HMGET reaches Redis), "
        . "revoked on A (`DELETE /api/agents/{id}`), and B asked again on a keep-alive "
        . "connection from A's 200 until it answers 401";
}

###########################################################################
# 9. graph reads on a graph of 100k nodes (issue 15): neighbours, browse,
# the anonymous list, search and a hot public moment, each against
# `return 200` of the same body in the same nginx, on a Redis of its own.
# The graph is built through the runner from a Flash made of nginx: a
# stand-in scene whose fields come from the hex digits of $request_id
# through map blocks, so that names, tags, figures, places and dates vary
# as real ones do (the Python stand-in makes ~340 scenes/s here).

my $GRAPH_N = $ENV{BENCH_GRAPH_NODES} // 100_000;

# the words scenes are made of (the stand-in's lists, made longer)
my @G_EVENT = qw(Siege Treaty Coronation Discovery Founding Fall Battle Council
    Voyage Wedding Funeral Eclipse Flood Fire Plague Revolt Election Trial Festival
    Expedition Conquest Surrender Uprising Exile Return Invention Premiere Debate
    Schism Reform Massacre Rescue Alliance Embargo Famine Earthquake Crossing
    Landing Abdication Assassination Proclamation Charter Excavation Census
    Pilgrimage Blockade Mutiny Armistice Launch Consecration Dedication Auction
    Strike Duel Heist Summit Migration Harvest Tournament Concert Lecture
    Exhibition Performance Reunion);
my @G_ADJ = qw(Golden Northern Silent Great Last First Hidden Burning Frozen Iron
    Crimson Eastern Western Southern Ancient Forgotten Royal Sacred Bitter Distant
    Lost Broken Shining Quiet Stormy Endless Long Little Black White Green Blue
    Silver Bronze Stone Glass Copper Marble Velvet Wooden Secret Final Second Third
    Holy Wild Free Young Old Grand Imperial Rebel Lonely Open Narrow High Low
    Bright Dark Early Late Red Salt Amber);
my @G_NOUN = qw(Harbor Bridge River Mountain Palace Cathedral Market Fortress
    Valley Island Desert Forest Garden Library Observatory Square Gate Tower Temple
    Monastery Canal Lighthouse Mine Mill Academy Court Parliament Theater Arena
    Port Coast Strait Plain Lake Bay Cape Citadel Abbey Castle Village Road Railway
    Station Factory Hospital University Senate Chapel Shrine Pass Glacier Volcano
    Delta Oasis Steppe Marsh Reef Ridge Meadow Quarry Forge Vineyard Archive Embassy);
my @G_TAG = qw(politics war science art religion exploration trade revolution
    architecture music law medicine philosophy literature astronomy engineering
    diplomacy navigation agriculture finance sport theatre education industry
    migration disaster colonialism independence monarchy democracy technology
    mathematics chemistry biology geography archaeology fashion cuisine painting
    sculpture poetry printing railways aviation espionage piracy slavery abolition
    suffrage labor plague famine climate ocean mountains rivers cities festivals
    ceremony royalty papacy crusades empire rebellion);
my @G_FIG = ('Benjamin Franklin', 'Thomas Jefferson', 'Marie Skłodowska-Curie',
    'Ada Lovelace', 'Nikola Tesla', 'Frédéric Chopin', 'Mikołaj Kopernik',
    'Søren Kierkegaard', 'José de San Martín', 'Hypatia', 'Zhang Heng',
    'Gaius Julius Caesar', 'Ibn Baṭṭūṭa', 'Hildegard von Bingen', 'Antonín Dvořák',
    'Leonardo da Vinci', 'Isaac Newton', 'Galileo Galilei', 'Elizabeth I',
    'Napoleon Bonaparte', 'Cleopatra', 'Confucius', 'Genghis Khan', 'Joan of Arc',
    'Simón Bolívar', 'Charles Darwin', 'Florence Nightingale', 'Mahatma Gandhi',
    'Wolfgang Amadeus Mozart', 'Johannes Gutenberg', 'Marco Polo',
    'Catherine the Great', 'Abraham Lincoln', 'Queen Victoria', 'Harriet Tubman',
    'Frida Kahlo', 'Albert Einstein', 'Sun Yat-sen', 'Mansa Musa',
    'Suleiman the Magnificent', 'Akbar', 'Saladin', 'Charlemagne',
    'Alexander the Great', 'Aristotle', 'Socrates', 'Plato', 'Archimedes',
    'Avicenna', 'Al-Khwarizmi', 'Murasaki Shikibu', 'Tokugawa Ieyasu',
    'Peter the Great', 'Ludwig van Beethoven', 'Miguel de Cervantes',
    'William Shakespeare', 'Rembrandt van Rijn', 'Ferdinand Magellan',
    'Christopher Columbus', 'Vasco da Gama', 'Hernán Cortés', 'Moctezuma',
    'Pachacuti', 'Nelson Mandela');
my @G_LOC = ('Philadelphia, Pennsylvania, United States', 'Zürich, Kanton Zürich, Schweiz',
    'São Paulo, São Paulo, Brasil', 'Kraków, Lesser Poland, Polska',
    'London, England, United Kingdom', 'Paris, Île-de-France, France',
    'Granada, Andalucía, España', 'İstanbul, Marmara, Türkiye', 'Beijing, China',
    'Kyoto, Kansai, Japan', 'Reykjavík, Ísland', 'Rome, Lazio, Italia',
    'Giza, Giza Governorate, Egypt', 'Delhi, Delhi, India', 'Cusco, Cusco Region, Perú',
    'Moscow, Moscow Oblast, Russia');
my @G_TOD = ('dawn', 'morning', 'late morning', 'noon', 'afternoon', 'evening', 'dusk', 'night');
my @G_MONTH = qw(January February March April May June July August September
    October November December);

# an nginx string of text that may name variables
sub nginx_text {
    my ($s) = @_;
    $s =~ s/([\\'])/\\$1/g;
    return "'$s'";
}

# the map blocks: $g_h<name> is a run of hex digits of $request_id,
# $g_<name> a value chosen by it; and the scene, a stand-in scene with
# those variables in its fields.  UTF-8 bytes.
sub graph_flash_http {
    my ($scene_json) = @_;
    my $conf = '';
    my $hex = sub {
        my ($name, $from, $len) = @_;
        $conf .= "    map \$request_id \$g_h$name { \"~^.{$from}(.{$len})\" \$1; }\n";
    };
    my $table = sub {
        my ($name, $src, $len, @values) = @_;
        $conf .= "    map \$g_h$src \$g_$name {\n";
        $conf .= sprintf "        %0*x %s;\n", $len, $_, nginx_text($values[$_ % @values])
            for 0 .. 16 ** $len - 1;
        $conf .= "    }\n";
    };
    $hex->(@$_) for [year => 0, 2], [month => 2, 1], [day => 3, 2], [loc => 5, 1],
        [event => 6, 2], [adj => 8, 2], [noun => 10, 2], [ntag => 12, 1], [tag1 => 13, 1],
        [tag2 => 14, 1], [tag3 => 15, 1], [tag4 => 16, 1], [nfig => 17, 1],
        [fig1 => 18, 2], [fig2 => 20, 2], [tod => 22, 1], [id => 20, 12];
    # 256 years from 500 BCE to 2020 (no year 0), and their era as the stand-in says
    my @years = map { my $y = -500 + int($_ * 2520 / 255 + 0.5); $y || 1 } 0 .. 255;
    my $era = sub { my $y = shift; $y < 500 ? 'Classical Antiquity' : $y < 1500 ? 'Medieval'
                    : $y < 1800 ? 'Early Modern' : $y < 1946 ? 'Modern' : 'Contemporary' };
    $table->(year => 'year', 2, @years);
    $table->(era => 'year', 2, map { $era->($_) } @years);
    $table->(month => 'month', 1, 1 .. 12);
    $table->(monthname => 'month', 1, @G_MONTH);
    $table->(day => 'day', 2, 1 .. 28);
    $table->(loc => 'loc', 1, @G_LOC);
    $table->(city => 'loc', 1, map { (split /,/)[0] } @G_LOC);
    $table->(event => 'event', 2, @G_EVENT);
    $table->(adj => 'adj', 2, @G_ADJ);
    $table->(noun => 'noun', 2, @G_NOUN);
    # four tags from four disjoint quarters of the list: never twice one tag
    $table->("tag$_" => "tag$_", 1, @G_TAG[16 * ($_ - 1) .. 16 * $_ - 1]) for 1 .. 4;
    $table->(tags => 'ntag', 1, '"$g_tag1","$g_tag2"', '"$g_tag1","$g_tag2","$g_tag3"',
             '"$g_tag1","$g_tag2","$g_tag3","$g_tag4"');
    $table->(tagtext => 'ntag', 1, '$g_tag1 and $g_tag2', '$g_tag1, $g_tag2 and $g_tag3',
             '$g_tag1, $g_tag2, $g_tag3 and $g_tag4');
    $table->(fig1 => 'fig1', 2, @G_FIG[0 .. 31]);
    $table->(fig2 => 'fig2', 2, @G_FIG[32 .. 63]);
    $table->(chars => 'nfig', 1, '{"name":"$g_fig1","role":"protagonist"}',
             '{"name":"$g_fig1","role":"protagonist"},{"name":"$g_fig2","role":"participant"}');
    $table->(figtext => 'nfig', 1, '$g_fig1 and the people around this figure',
             '$g_fig1, $g_fig2 and the people around them');
    $table->(tod => 'tod', 1, @G_TOD);

    # the stand-in's scene with the variables in its fields: strings are
    # placeholders "@<name>@" (quoted), numbers and lists "@<name>@" bare
    my $s = decode_json($scene_json);
    my $name = 'The $g_event of the $g_adj $g_noun';
    %$s = (%$s, id => '$request_id', name => $name, slug => "$name-\$g_hid",
           year => '@year@', month => '@month@', day => '@day@', time_of_day => '$g_tod',
           location => '$g_loc', tags => '@tags@', characters => '@chars@',
           moment => { plot_summary => "On \$g_monthname \$g_day, in the year \$g_year, at "
                       . "\$g_city: $name. \$g_figtext watch the moment take shape; the "
                       . "\$g_tod light falls on faces that will be remembered, and the air "
                       . "is thick with \$g_tagtext. The chroniclers disagree on every "
                       . "detail except the date." },
           grounding => { verified_year => '@year@' }, era => '$g_era',
           image_url => 'https://images.example/$request_id.png',
           share_url => 'https://flash.example/t/$g_hid', query => $name);
    my $t = JSON::PP->new->utf8->canonical->encode($s);
    $t =~ s/"\@(year|month|day)\@"/\${g_$1}/g;
    $t =~ s/"\@tags\@"/[\${g_tags}]/;
    $t =~ s/"\@chars\@"/{"characters":[\${g_chars}]}/;
    die "9: placeholder left in $t\n" if $t =~ /\@\w+\@/;
    die "9: scene template too long for a conf parameter\n" if length $t > 4000;
    my $flash = "        location = /api/v1/timepoints/generate/sync {\n"
        . "            default_type application/json;\n"
        . "            return 200 " . nginx_text($t) . ";\n        }\n";
    return (Encode::encode_utf8($conf), Encode::encode_utf8($flash));
}

sub graph_locations {
    return <<"EOF";
        location = /api/moments        { clockchain_moments_list; }
        location /api/moments/         { clockchain_moments; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
        location = /api/search         { clockchain_search; }
        location = /api/browse         { clockchain_browse; }
        location /api/browse/          { clockchain_browse; }
        location = /api/stats          { clockchain_stats; }
EOF
}

# a location answering what $res (an HTTP::Tiny answer of the module)
# did, with `return 200`: its body, its Content-Type, ETag and
# Cache-Control.  A conf parameter holds at most 4 KB: a longer body is
# the concatenation of map variables (map with a default only) of 3000
# bytes each.  Returns (http-level maps, the location).
sub ref_location {
    my ($name, $res) = @_;
    my $body = $res->{content};
    die "9: a \$ in the body of $name\n" if $body =~ /\$/;
    my $h = $res->{headers};
    my ($maps, $text) = ('', '');
    if (length $body <= 3000) {
        $text = nginx_text($body);
    } else {
        my $i = 0;
        for (my $off = 0; $off < length $body; $off += 3000) {
            $maps .= "    map \$host \$ref9_${name}_$i { default "
                . nginx_text(substr($body, $off, 3000)) . "; }\n";
            $text .= "\$ref9_${name}_$i";
            $i++;
        }
        $text = "\"$text\"";
    }
    my $loc = "        location = /ref/$name {\n"
        . "            default_type " . ($h->{'content-type'} // 'application/json') . ";\n";
    for my $k (qw(ETag Cache-Control)) {
        my $v = $h->{ lc $k };
        $loc .= "            add_header $k " . nginx_text($v) . ";\n" if defined $v;
    }
    $loc .= "            return 200 $text;\n        }\n";
    return ($maps, $loc);
}

# waits until Redis has used no CPU for 200 ms (at most 60 s)
sub redis_idle {
    my ($rd) = @_;
    my $end = time + 60;
    my $c = cpu_secs($rd->pid);
    while (time < $end) {
        sleep 0.2;
        my $c2 = cpu_secs($rd->pid);
        return if $c2 - $c < 0.01;
        $c = $c2;
    }
    say_('9: Redis still busy after 60 s');
}

# used_memory of a Redis
sub redis_used {
    my ($rd) = @_;
    my $info = $rd->cmd('INFO', 'memory');
    return $info =~ /^used_memory:(\d+)/m ? $1 : 0;
}

# what each kind of key costs: every key counted (SCAN), MEMORY USAGE of
# up to 300 of each kind, scaled; { kind => [keys, bytes] }
sub redis_breakdown {
    my ($rd) = @_;
    my (%keys, %sample);
    my $cursor = 0;
    do {
        my $r = $rd->cmd('SCAN', $cursor, 'COUNT', 5000);
        $cursor = $r->[0];
        for my $k (@{ $r->[1] }) {
            (my $kind = $k) =~ s/^\Q$P\E//;
            # an index by its name (idx:word, idx:ba, idx:pub:time ...),
            # anything else by its first segment (node, edges, words, job)
            $kind =~ s/^(idx:pub:time|idx:[a-z]+|[a-z]+).*/$1/s;
            $keys{$kind}++;
            push @{ $sample{$kind} }, $k if @{ $sample{$kind} // [] } < 300;
        }
    } while ($cursor ne '0');
    my %out;
    for my $kind (keys %keys) {
        my $b = sum(0, map { $rd->cmd('MEMORY', 'USAGE', $_) // 0 } @{ $sample{$kind} });
        $out{$kind} = [ $keys{$kind}, $b / @{ $sample{$kind} } * $keys{$kind} ];
    }
    return \%out;
}

if (wanted(9)) {
    my $rd = bench_redis();
    my ($maps, $flash) = graph_flash_http($SCENE);
    my $R9 = start_ng(name => 'R9', ports => 2, http => sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench9:128m;
    clockchain_redis 127.0.0.1:@{[ $rd->port ]};
    clockchain_max_pending 0;
    clockchain_flash_url http://127.0.0.1:$p[1];
    clockchain_flash_key flash-key;
    clockchain_flash_max_calls 256;
$maps
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
@{[ graph_locations() ]}
    }
    server {
        listen 127.0.0.1:$p[1];
$flash
    }
EOF
    });
    my $mem0 = redis_used($rd);
    # half the moments public, as if half had been published
    my $m0 = metrics($R9);
    my $bprocs = roles($R9, $rd);
    my ($t0, $created, @ids, @progress);
    my ($bcpu) = cpu_during($bprocs, sub {
    $t0 = time;
    @ids = bulk_create($R9, $GRAPH_N, 'bench graph',
                          sub { (visibility => $_[0] % 2 ? 'private' : 'public') });
    $created = time - $t0;
    my ($last, $lastn) = (time, 0);
    my $end = time + 1800;
    while ((my $left = pending_count($rd)) > 0) {
        die "9: $left jobs left after 30 minutes\n" if time > $end;
        sleep 0.05;
        next if time - $last < 10;
        my $nodes = $rd->cmd('HGET', "${P}stats", 'nodes') // 0;
        push @progress, [ time - $t0, $nodes ];
        say_(sprintf '9: %d nodes after %.0f s (%.0f nodes/s in the last %.0f s), %d jobs left',
             $nodes, time - $t0, ($nodes - $lastn) / (time - $last), time - $last, $left);
        ($last, $lastn) = (time, $nodes);
    }
    });
    my $secs = time - $t0;
    say_('9: CPU used by the build: ' . cpu_text($bcpu));
    my $m1 = metrics($R9);
    my $failed = $m1->{jobs_failed} - $m0->{jobs_failed};
    my $stats = decode_json(req(GET => $R9->url('/api/stats'))->{content});
    my $mem1 = redis_used($rd);
    die "9: $failed jobs failed\n" if $failed;
    say_(sprintf '9: %d jobs in %.1f s (%.0f jobs/s; bulk-generate took %.1f s): %d nodes, '
         . '%d edges; Redis used_memory %s → %s', $GRAPH_N, $secs, $GRAPH_N / $secs, $created,
         $stats->{total_nodes} // -1, $stats->{total_edges} // -1, kib($mem0 / 1024), kib($mem1 / 1024));
    my $kinds = redis_breakdown($rd);
    say_('9: Redis by kind of key: ' . join('; ', map {
        sprintf '%s %d keys %s', $_, $kinds->{$_}[0], kib($kinds->{$_}[1] / 1024) }
        sort { $kinds->{$b}[1] <=> $kinds->{$a}[1] } keys %$kinds));

    # what to read: the moment of the middle job (public: an even query
    # number, an odd index), and the middle year
    my $job = decode_json(req(GET => $R9->url("/api/jobs/$ids[ int($GRAPH_N / 2) | 1 ]"))
                          ->{content});
    my $path = $job->{path} or die "9: the middle job has no path\n";
    my $root = decode_json(req(GET => $R9->url('/api/browse'))->{content});
    my $year = $root->{items}[ @{ $root->{items} } / 2 ]{segment};
    my @reads = (
        [ neighbors => "/api/graph/neighbors$path", 0.3, 'GET /api/graph/neighbors/{path}' ],
        [ browse => '/api/browse', 0.3, 'GET /api/browse (the years)' ],
        [ year => "/api/browse/$year", 0.3, 'GET /api/browse/{year} (its months)' ],
        [ list => '/api/moments?limit=20', 0.3, 'GET /api/moments?limit=20, no key', 1 ],
        [ search => '/api/search?q=siege', 0.1, 'GET /api/search?q=siege (one word)' ],
        [ search2 => '/api/search?q=golden%20harbor', 0.1,
          'GET /api/search?q=golden harbor (two words)' ],
        [ moment => "/api/moments$path", 0.8, 'GET /api/moments/{path}, public, no key (zone hit)', 1 ],
    );
    my $ua = HTTP::Tiny->new(timeout => 30);
    my ($refmaps, $reflocs, %info) = ('', '');
    for my $x (@reads) {
        my ($name, $url, undef, undef, $nokey) = @$x;
        my $r = $ua->get($R9->url($url), { headers => $nokey ? {} : { 'X-Service-Key' => $KEY } });
        die "9: $url: $r->{status} $r->{content}\n" unless $r->{status} == 200;
        my ($m, $l) = ref_location($name, $r);
        $refmaps .= $m;
        $reflocs .= $l;
        my $j = decode_json($r->{content});
        my $n = ref $j eq 'ARRAY' ? @$j : exists $j->{items} ? @{ $j->{items} }
              : exists $j->{edges} ? @{ $j->{edges} } : 1;
        $info{$name} = { bytes => length $r->{content}, items => $n, url => $url };
        say_(sprintf '9: %s: %d bytes, %d items', $url, length $r->{content}, $n);
    }
    stop_ng($R9);

    my $G9 = start_ng(name => 'G9', ports => 1, http => sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench9:128m;
    clockchain_redis 127.0.0.1:@{[ $rd->port ]};
    clockchain_max_pending 0;
$refmaps
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
@{[ graph_locations() ]}
$reflocs
    }
EOF
    });
    my $procs = roles($G9, $rd);
    my %rows;
    for my $x (@reads) {
        my ($name, $url, $target, $label, $nokey) = @$x;
        my %h = $nokey ? () : ('X-Service-Key' => $KEY);
        my ($mb, $rb) = map { $ua->get($G9->url($_), { headers => \%h })->{content} }
                            $url, "/ref/$name";
        die "9: $url: the reference's body differs\n" unless $mb eq $rb;
        # one request at a time (keep-alive), at most 20 or 5 s of them:
        # what a read costs without a queue
        my $ka = HTTP::Tiny->new(timeout => 60, keep_alive => 1);
        my @alone;
        my $stop = time + 5;
        while (@alone < 20 && time < $stop) {
            my $t = time;
            my $r = $ka->get($G9->url($url), { headers => \%h });
            die "9: $url: $r->{status}\n" unless $r->{status} == 200;
            push @alone, (time - $t) * 1000;
        }
        say_(sprintf '9: %s alone: median %.2f ms, max %.2f ms (%d requests)', $url,
             median(@alone), max(@alone), scalar @alone);
        # a slow read leaves requests queued in Redis when wrk stops: each
        # round starts once Redis is idle
        my $idle = sub { redis_idle($rd) };
        my ($m, $ref) = interleaved("9-$name", $G9->url($url), $G9->url("/ref/$name"),
                                    procs => $procs, nokey => $nokey, timeout => 30,
                                    before => $idle, after => $idle);
        my $per = sub {    # µs of CPU per request: nginx, Redis
            my ($r) = @_;
            my $ng = sum(0, map { $r->{cpu}{$_} } grep { /worker/ } keys %{ $r->{cpu} });
            my $n = max(1, $r->{n});
            return ($ng / $n * 1e6, $r->{cpu}{redis} / $n * 1e6);
        };
        $rows{$name} = { m => $m, r => $ref, target => $target, label => $label,
                         ratio => median(map { $m->[$_]{rps} / max(1, $ref->[$_]{rps}) } 0 .. $#$m),
                         rps => median(map { $_->{rps} } @$m),
                         ref_rps => median(map { $_->{rps} } @$ref),
                         p99 => median(map { $_->{p99} } @$m),
                         ref_p99 => median(map { $_->{p99} } @$ref),
                         ng_us => median(map { ($per->($_))[0] } @$m),
                         redis_us => median(map { ($per->($_))[1] } @$m),
                         ref_us => median(map { ($per->($_))[0] } @$ref),
                         alone => median(@alone), alone_max => max(@alone),
                         %{ $info{$name} } };
    }
    my $zm = metrics($G9);
    stop_ng($G9);
    $RES{9} = { cpu => $bcpu, nodes => $stats->{total_nodes}, edges => $stats->{total_edges}, n => $GRAPH_N,
                secs => $secs, create_secs => $created, jps => $GRAPH_N / $secs,
                mem0 => $mem0, mem1 => $mem1, kinds => $kinds, progress => \@progress,
                rows => \%rows, order => [ map { $_->[0] } @reads ], path => $path,
                year => $year, hits => $zm->{moments_cache_hits} };
    $COMMANDS{9} = "a Redis and two nginx of its own: R9, a runner (`clockchain_flash_max_calls "
        . "256`) whose Flash is a location of its own answering `return 200 '<scene>'`, the "
        . "stand-in's scene with `map` variables of `\$request_id` in its fields (id and slug "
        . "suffix, one of 256 years from 500 BCE to 2020, month, day, one of 16 places, a name "
        . "\"The <event> of the <adjective> <noun>\" from three lists of 64 words, 2–4 of 64 "
        . "tags, 1–2 of 64 figures, the time of day); POST /api/bulk-generate ×"
        . ($GRAPH_N / 1000) . " (1000 queries each, every other one `\"visibility\": "
        . "\"public\"`) and wait until the queue is empty; `INFO memory` before and after; "
        . "each read's answer fetched once from R9 and put in a location `/ref/<read>` of G9 "
        . "(`return 200` of the same body, Content-Type, ETag and Cache-Control; a body over "
        . "3000 bytes is the concatenation of `map` variables of 3000 bytes, a conf parameter "
        . "holding at most 4 KB); G9 (no runner): module and reference interleaved as in 1, "
        . "`wrk -t2 -c64 -d${SECS}s --latency`, with `-H 'X-Service-Key: KEY'` except the "
        . "list and the moment; CPU per request = CPU seconds of the workers (of Redis) in "
        . "the round ÷ wrk's requests, the median of the three";
}

###########################################################################
# 10. ingest throughput: moments with their edges through POST
# /api/ingest/subgraph, batches within clockchain_max_body_size

if (wanted(10)) {
    my $n = $ENV{BENCH_INGEST_NODES} // 100_000;
    my $per = 100;      # moments a request: the most one may carry
    my $rd = bench_redis();
    my $N10 = start_ng(name => 'N10', ports => 1, http => sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench10:16m;
    clockchain_redis 127.0.0.1:@{[ $rd->port ]};
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
        location = /api/ingest/subgraph { clockchain_ingest_subgraph; }
        location = /api/stats           { clockchain_stats; }
    }
EOF
    });

    # moments as measure 9's: one of 256 years from 500 BCE, 16 places,
    # 2-4 of 64 tags, 1-2 of 64 figures; each with an edge named to the
    # one before it in its request
    my @places = map { [ "country-$_", "region-$_", "city-$_" ] } 0 .. 15;
    my @months = qw(january february march april may june july august
                    september october november december);
    my $node = sub {
        my ($i) = @_;
        my $h = ($i * 2654435761) % 4294967296;
        my $pl = $places[ $h % 16 ];
        my $year = -500 + 10 * (($h >> 4) % 256);
        return { id => sprintf('/%d/%s/%02d/%02d%02d/%s/%s/%s/ingest-%d', $year,
                               $months[ ($h >> 12) % 12 ], 1 + ($h >> 16) % 28,
                               ($h >> 8) % 24, $i % 60, @$pl, $i),
                 name => "The event $i of the bench", one_liner => "Ingested moment $i",
                 tags => [ map { 'tag' . (($h >> (20 + $_)) % 64) } 0 .. 1 + $h % 3 ],
                 figures => [ map { 'Figure ' . (($h >> (24 + $_)) % 64) } 0 .. $h % 2 ],
                 layer => 1, visibility => $i % 2 ? 'private' : 'public' };
    };
    my @bodies;
    for (my $i = 0; $i < $n; $i += $per) {
        my @nodes = map { $node->($_) } $i .. min($n, $i + $per) - 1;
        push @bodies, $JSON->encode({ nodes => \@nodes, edges => [ map {
            { source => $nodes[ $_ - 1 ]{id}, target => $nodes[$_]{id}, type => 'causes' }
        } 1 .. $#nodes ] });
    }
    my $bytes = max(map { length } @bodies);
    say_(sprintf '10: %d moments in %d requests of up to %d bytes', $n, scalar @bodies, $bytes);

    # two clients, each half of the requests, one at a time
    my $mem0 = redis_used($rd);
    my $procs = roles($N10, $rd);
    my ($t0, @lat);
    my $retries = 0;
    my ($cpu) = cpu_during($procs, sub {
        $t0 = time;
        my @bg = map {
            my $c = $_;
            background(sub {
                my @l;
                my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 120);
                my $retried = 0;
                for (my $k = $c; $k < @bodies; $k += 2) {
                    my $s = time;
                    my $r;
                    # a 503 may have been written or not: sending it
                    # again is safe, as a client would (docs/api.md)
                    for my $try (1 .. 5) {
                        $r = $ua->request(POST => $N10->url('/api/ingest/subgraph'),
                            { headers => { 'X-Service-Key' => $KEY,
                                           'Content-Type' => 'application/json' },
                              content => $bodies[$k] });
                        last unless $r->{status} == 503;
                        $retried++;
                        sleep 1;
                    }
                    # what went wrong, as the result: a child's die says nothing
                    return "10: $r->{status} " . substr($r->{content}, 0, 300)
                        unless $r->{status} == 200;
                    push @l, time - $s;
                }
                return ($retried, @l);
            })
        } 0, 1;
        for my $b (@bg) {
            my ($retried, @l) = $b->result;
            $retries += $retried // 0;
            push @lat, @l;
        }
    });
    my $secs = time - $t0;
    my ($failed) = grep { !/^[\d.e-]+$/ } @lat;
    if (defined $failed) {
        say_($_) for grep { /\[(error|alert|crit)\]/ } split /\n/, $N10->error_log;
        die "$failed\n";
    }
    die "10: a client failed\n" unless @lat == @bodies;
    my $stats = decode_json(req(GET => $N10->url('/api/stats'))->{content});
    die "10: $stats->{total_nodes} moments, not $n\n" unless $stats->{total_nodes} == $n;
    my $mem1 = redis_used($rd);
    @lat = sort { $a <=> $b } @lat;
    $RES{10} = { n => $n, per => $per, bytes => $bytes, secs => $secs, nps => $n / $secs,
                 edges => $stats->{total_edges}, named => $n - @bodies,
                 eps => $stats->{total_edges} / $secs, cpu => $cpu,
                 median => median(@lat) * 1000, p99 => pct(99, @lat) * 1000,
                 mem0 => $mem0, mem1 => $mem1, retries => $retries };
    say_("10: $retries request(s) sent again after a 503") if $retries;
    say_(sprintf '10: %d moments and %d edges (%d named) in %.1f s: %.0f moments/s, '
         . '%.0f edges/s; a request of %d moments: median %.0f ms, p99 %.0f ms; CPU %s',
         $n, $stats->{total_edges}, $n - @bodies, $secs, $n / $secs,
         $stats->{total_edges} / $secs, $per, $RES{10}{median}, $RES{10}{p99}, cpu_text($cpu));
    $COMMANDS{10} = "a Redis and an nginx of its own (no runner, `clockchain_edges_max 20`, "
        . "`clockchain_max_body_size 256k`): " . scalar(@bodies) . " × POST /api/ingest/subgraph "
        . "of $per moments (up to $bytes bytes; measure 9's years, places, tags and figures, "
        . "every other moment public) and an edge `causes` from each to the next in its "
        . "request, from two clients one request at a time each; moments/s = moments ÷ "
        . "seconds from the first request to the last answer, edges = `total_edges` of "
        . "/api/stats after (named and automatic)";
    stop_ng($N10);
    $rd->stop;
}

###########################################################################
# 13. the runner writing new moments: measure 3's runner answers one canned
# scene, so its 10k jobs rewrite one node; here each query is a moment of
# its own (the Python stand-in's scenes: a year from the query, one of 12
# places, 2-4 of 20 tags, 1-3 of 64 figures), so each completion writes a
# node, its auto-edges (up to clockchain_edges_max of each type, both
# ways) and its indexes into a graph that grows to BENCH_RUNNER_MOMENTS

if (wanted(13)) {
    my $n = $ENV{BENCH_RUNNER_MOMENTS} // 3000;
    my $rd = bench_redis();
    my $N13 = start_ng(name => 'N13', ports => 1, http => sub {
        my @p = @_;
        return <<"EOF";
    clockchain_zone bench13:16m;
    clockchain_redis 127.0.0.1:@{[ $rd->port ]};
    clockchain_max_pending 0;
    clockchain_flash_url @{[ $pyflash->url ]};
    clockchain_flash_key flash-key;
    clockchain_flash_max_calls 64;
    server {
        listen 127.0.0.1:$p[0] reuseport;
@{[ api_locations() ]}
    }
EOF
    });
    my $procs = roles($N13, $rd);
    $rd->cmd('CONFIG', 'RESETSTAT');
    my ($t0, $t1);
    my ($cpu) = cpu_during($procs, sub {
        with_perf('13-moments', [ values %$procs ], sub {
            $t0 = time;
            bulk_create($N13, $n, 'bench moment');
            wait_for(1800, sub { pending_count($rd) == 0 }) or die "13: jobs left\n";
            $t1 = time;
        });
    });
    my $m = metrics($N13);
    my %cs = map { /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/ ? ($1 => [$2, $3]) : () }
             split /\r?\n/, $rd->cmd('INFO', 'commandstats');
    my %st = @{ $rd->cmd('HGETALL', "${P}stats") };
    die "13: $m->{jobs_completed} of $n completed\n" unless $m->{jobs_completed} == $n;
    my $x = $RES{13} = { n => $n, secs => $t1 - $t0, jps => $n / ($t1 - $t0), cpu => $cpu,
                         redis_ms => 1000 * $cpu->{redis} / $n, nodes => $st{nodes},
                         edges => $st{edges},
                         script_ms => ($cs{evalsha}[1] // 0) / 1000 / $n };
    say_("13: CPU used: " . cpu_text($cpu));
    say_(sprintf '13: %d new moments through the runner in %.1f s: %.0f jobs/s; Redis %.2f ms of '
         . 'CPU a completion (its scripts ran %.2f ms, a time); %d nodes, %d edges',
         $n, $x->{secs}, $x->{jps}, $x->{redis_ms}, $x->{script_ms}, $x->{nodes}, $x->{edges});
    $COMMANDS{13} = "a Redis and an nginx of its own with a runner (`clockchain_flash_max_calls 64`) "
        . "whose Flash is the Python stand-in at once; POST /api/bulk-generate of $n queries "
        . "`bench moment <i>` (1000 a request), each a moment of its own; jobs/s = $n ÷ seconds "
        . "from the first POST until the queue and the processing set are empty; Redis CPU from "
        . "/proc; the scripts' run time from `INFO commandstats` (`EVALSHA`'s usec, a time, not CPU)";
    stop_ng($N13);
    $rd->stop;
}

###########################################################################
# the table

my @ROWS;    # [measure, target, measured, pass]

sub row { push @ROWS, [@_] }

sub fmt { sprintf '%.2f', $_[0] }

if ($RES{1}) {
    my $x = $RES{1};
    row('1. GET /api/jobs/{id} (completed), rps ÷ reference rps', '≥ 0.85',
        sprintf('%s (%.0f vs %.0f rps)', fmt($x->{ratio}),
                median(map { $_->{rps} } @{ $x->{m} }), median(map { $_->{rps} } @{ $x->{r} })),
        $x->{ratio} >= 0.85);
    row('1. GET /api/jobs/{id}, p99 ÷ reference p99', '≤ 1.2',
        sprintf('%s (%.2f vs %.2f ms)', fmt($x->{p99}),
                median(map { $_->{p99} } @{ $x->{m} }), median(map { $_->{p99} } @{ $x->{r} })),
        $x->{p99} <= 1.2);
}
if ($RES{2}) {
    my $x = $RES{2};
    row('2. POST /api/generate (durable in Redis), rps ÷ reference rps', '≥ 0.35',
        sprintf('%s (%.0f vs %.0f rps)', fmt($x->{ratio}),
                median(map { $_->{rps} } @{ $x->{m} }), median(map { $_->{rps} } @{ $x->{r} })),
        $x->{ratio} >= 0.35);
}
if ($RES{3}) {
    my $x = $RES{3};
    row('3. runner throughput, instant stand-in, 10k jobs', '≥ 2000 jobs/s',
        sprintf('%.0f jobs/s (%.2f s)', $x->{jps}, $x->{secs}), $x->{jps} >= 2000);
}
if ($RES{4}) {
    my $x = $RES{4};
    row('4. GET p99 with 1000 Flash calls in flight ÷ idle p99 (idle twin, interleaved)', '≤ 1.1',
        sprintf('%s (%.2f vs %.2f ms)', fmt($x->{ratio}),
                median(map { $_->{p99} } @{ $x->{busy} }), median(map { $_->{p99} } @{ $x->{idle} })),
        $x->{ratio} <= 1.1);
    row('4. runner worker RSS growth with 1000 calls in flight', '≤ 64 MiB',
        sprintf('%.1f MiB (%s → %s)', $x->{growth}, kib($x->{rss0}), kib($x->{rss1})),
        $x->{growth} <= 64);
}
if ($RES{5}) {
    my $x = $RES{5};
    row('5. long-poll wake on B for a change by A, median', '≤ 10 ms',
        sprintf('%.2f ms', $x->{median}), $x->{median} <= 10);
    row('5. long-poll wake on B for a change by A, p99', '≤ 50 ms',
        sprintf('%.2f ms', $x->{p99}), $x->{p99} <= 50);
}
if ($RES{6}) {
    my $x = $RES{6};
    row('6. shared-zone bytes per cached job (completed)', '≤ 512 B',
        sprintf('%.0f B (pending: %.0f B)', $x->{completed}, $x->{pending}),
        $x->{completed} <= 512);
}
if ($RES{7}) {
    my $x = $RES{7};
    row('7. worker RssAnon after 100k jobs ÷ after 10k', '≤ 1.05',
        sprintf('%.3f (VmRSS with the zone: %.3f)', $x->{anon}, $x->{rss}), $x->{anon} <= 1.05);
}

if ($RES{8}) {
    my $x = $RES{8};
    row('8. hot public moment (zone hit), rps ÷ return 200 of the same body', '≥ 0.8',
        sprintf('%s (%.0f vs %.0f rps)', fmt($x->{ratio}), $x->{hot_rps}, $x->{ref_rps}),
        $x->{ratio} >= 0.8);
    row('8. publish on A → 200 without a key on B, median', '—',
        sprintf('%.2f ms', $x->{median_ms}), 1);
    row('8. publish on A → 200 without a key on B, p99', '≤ 50 ms',
        sprintf('%.2f ms (max %.2f ms; B polled %s time(s) at the median)',
                $x->{p99_ms}, $x->{max_ms}, $x->{polls_median}),
        $x->{p99_ms} <= 50);
}

if ($RES{11}) {
    my $x = $RES{11};
    row('11. token revoked on A → 401 on B (which had it cached), median', '—',
        sprintf('%.2f ms', $x->{median_ms}), 1);
    row('11. token revoked on A → 401 on B, p99', '≤ 50 ms',
        sprintf('%.2f ms (max %.2f ms; B asked %s time(s) at the median)',
                $x->{p99_ms}, $x->{max_ms}, $x->{polls_median}),
        $x->{p99_ms} <= 50);
}

if ($RES{12}) {
    my $x = $RES{12};
    row(sprintf('12. %d long-poll waiters on one nginx: workers\' RSS growth ÷ waiters', $x->{n}),
        '≤ 8 KiB',
        sprintf('%.1f KiB (RssAnon %.1f KiB; VmRSS %s → %s, both workers; nginx\'s own '
                . 'held request, `limit_req` delay: %.1f KiB)', $x->{VmRSS} / 1024,
                $x->{RssAnon} / 1024, kib($x->{m0}{VmRSS}), kib($x->{m1}{VmRSS}),
                $x->{ref}{VmRSS} / 1024),
        $x->{VmRSS} <= 8192);
    row(sprintf('12. %d long-poll waiters woken by A\'s changes, answer − `completed_at`: max', $x->{n}),
        '≤ 100 ms',
        sprintf('%.2f ms (median %.2f ms, p99 %.2f ms)%s', @$x{qw(max median p99)},
                $x->{completed} == $x->{n} ? ''
                : sprintf('; only %d of %d finished by A within the 60 s', $x->{completed}, $x->{n})),
        $x->{max} <= 100 && $x->{completed} == $x->{n});
}

if ($RES{9}) {
    my $x = $RES{9};
    row(sprintf('9. graph of %dk moments built through the runner (nginx as Flash)', $x->{n} / 1000),
        '—', sprintf('%.0f jobs/s (%.0f s; %d nodes, %d edges); Redis %.0f bytes per node '
                     . '(used_memory %s → %s)', $x->{jps}, $x->{secs}, $x->{nodes}, $x->{edges},
                     ($x->{mem1} - $x->{mem0}) / $x->{nodes}, kib($x->{mem0} / 1024),
                     kib($x->{mem1} / 1024)), 1);
    for my $name (@{ $x->{order} }) {
        my $r = $x->{rows}{$name};
        row("9. $r->{label}, rps ÷ return 200 of the same body", "≥ $r->{target}",
            sprintf('%s (%.0f vs %.0f rps; p99 %.2f vs %.2f ms; CPU per request: nginx %.0f µs '
                    . '+ Redis %.0f µs vs %.0f µs)', fmt($r->{ratio}), @$r{qw(rps ref_rps p99
                    ref_p99 ng_us redis_us ref_us)}),
            $r->{ratio} >= $r->{target});
        row("9. $r->{label}, p99 (64 connections)", '≤ 20 ms', sprintf('%.2f ms', $r->{p99}),
            $r->{p99} <= 20)
            if $name =~ /^search/;
    }
}

if ($RES{10}) {
    my $x = $RES{10};
    row(sprintf('10. ingest: %gk moments with their edges, POST /api/ingest/subgraph of %d',
                $x->{n} / 1000, $x->{per}),
        '—', sprintf('%.0f moments/s, %.0f edges/s (%.0f s; %d edges, %d named); a request: '
                     . 'median %.0f ms, p99 %.0f ms; Redis %.0f bytes per moment; %d sent again',
                     $x->{nps}, $x->{eps}, $x->{secs}, $x->{edges}, $x->{named},
                     $x->{median}, $x->{p99}, ($x->{mem1} - $x->{mem0}) / $x->{n},
                     $x->{retries}), 1);
}

if ($RES{13}) {
    my $x = $RES{13};
    row(sprintf('13. runner throughput, %d new moments (Python stand-in), each with its '
                . 'auto-edges and indexes', $x->{n}),
        '—', sprintf('%.0f jobs/s (%.1f s); Redis %.2f ms of CPU a completion (its scripts '
                     . 'ran %.2f ms, a time that counts waits for a CPU); %d nodes, %d edges',
                     $x->{jps}, $x->{secs}, $x->{redis_ms}, $x->{script_ms}, $x->{nodes},
                     $x->{edges}), 1);
}

my @head = ('measure', 'target', 'measured', 'result');
my @w = map { my $i = $_; max(map { length($_->[$i]) } [@head], @ROWS) } 0 .. 2;
my $line = sub { sprintf "%-*s  %-*s  %-*s  %s\n", $w[0], $_[0], $w[1], $_[1], $w[2], $_[2], $_[3] };
print "\n", $line->(@head);
print $line->('-' x $w[0], '-' x $w[1], '-' x $w[2], '------');
print $line->(@$_[0 .. 2], $_->[3] ? 'pass' : 'MISS') for @ROWS;
my $elapsed = time - $T0;
printf "\n%d of %d met; %.0f s in all\n", scalar(grep { $_->[3] } @ROWS), scalar @ROWS, $elapsed;

###########################################################################
# the chart: each ratio against nginx's limit as a bar, with the target of
# the table above and the one of issue 19 (t/bench/bench.gp); the numbers
# are written first, a chart that fails to draw only warns

my @CHART;    # [label, ratio, kind (1 throughput, 2 p99), target, issue 19's]
push @CHART, ['1. GET /api/jobs/{id}, rps', $RES{1}{ratio}, 1, 0.85, 0.95],
             ['1. GET /api/jobs/{id}, p99', $RES{1}{p99}, 2, 1.2, 1.1] if $RES{1};
push @CHART, ['2. POST /api/generate, rps', $RES{2}{ratio}, 1, 0.35, 0.5] if $RES{2};
push @CHART, ['4. GET p99, 1000 Flash calls in flight ÷ idle twin', $RES{4}{ratio}, 2, 1.1, 1.1]
    if $RES{4};
push @CHART, ['8. hot public moment, rps', $RES{8}{ratio}, 1, 0.8, undef] if $RES{8};
if ($RES{9}) {
    for my $name (@{ $RES{9}{order} }) {
        my $r = $RES{9}{rows}{$name};
        (my $l = $r->{label}) =~ s/ \(.*\)$//;
        $l =~ s/, (?:public, )?no key$//;
        push @CHART, ["9. $l, rps", $r->{ratio}, 1, $r->{target}, undef];
    }
}
if (@CHART) {
    my $dat = "$OUT/bench-ratios.dat";
    my $svg = "$OUT/bench-ratios.svg";
    write_file($dat, "label\tratio\tkind\ttarget\ttarget_issue19\n" . join '', map {
        join("\t", $_->[0], sprintf('%.3f', $_->[1]), $_->[2],
             map { defined $_ ? $_ : '-' } @$_[3, 4]) . "\n" } @CHART);
    my $commit = first_line('git', '-C', $REPO, 'rev-parse', '--short', 'HEAD');
    my $sub = sprintf '%s, %s CPU (%s), commit %s, %d s rounds; measures %s',
        strftime('%Y-%m-%d %H:%M UTC', gmtime($T0)), first_line('nproc'), cpu_model(),
        $commit, $SECS, join(" ", sort { $a <=> $b } grep { /^\d+$/ } keys %RES);
    if (Clockchain::Chart::plot("$REPO/t/bench/bench.gp", $svg, datafile => $dat,
                                subtitle => Clockchain::Chart::gp_text($sub))) {
        say_("chart in $svg (data in $dat)");
        if ($FULL || $ENV{CHARTS_TO_DOCS}) {
            say_("copied to $_") for Clockchain::Chart::to_docs($svg, $dat);
        }
    }
}

exit 0 unless $FULL;

###########################################################################
# docs/benchmarks.md: the generated part

# "nginx / Redis / others" CPU seconds of one round
sub cpu_cell {
    my ($c) = @_;
    return '' unless $c;
    my $ng = sum(0, map { $c->{$_} } grep { /worker/ } keys %$c);
    return sprintf '%.1f / %.1f / %.1f s', $ng, $c->{redis} // 0, $c->{others} // 0;
}

sub first_line {
    my (@cmd) = @_;
    open my $fh, '-|', @cmd or return '?';
    local $/;
    my $o = <$fh> // '';
    close $fh;
    $o =~ s/\s+\z//;
    return (split /\n/, $o)[0] // '?';
}

sub cpu_model {
    open my $fh, '<', '/proc/cpuinfo' or return '?';
    while (my $l = <$fh>) { return $1 if $l =~ /^model name\s*:\s*(.*?)\s*$/ }
    return '?';
}

my $nproc = first_line('nproc');
my $model = cpu_model();
my $mem = first_line('sh', '-c', "awk '/MemTotal/ {printf \"%.1f GiB\", \$2/1048576}' /proc/meminfo");
my $kernel = first_line('uname', '-r');
my $nginx_v = first_line('sh', '-c', '/usr/sbin/nginx -v 2>&1');
$nginx_v =~ s/^nginx version: //;
my $redis_v = first_line('redis-server', '--version');
$redis_v =~ s/^Redis server v=(\S+).*/$1/;
my $wrk_v = first_line('sh', '-c', 'wrk -v 2>&1');
$wrk_v =~ s/ \[.*//;
my $module_v = first_line('cat', "$REPO/VERSION");
my $commit = first_line('git', '-C', $REPO, 'rev-parse', '--short', 'HEAD');
my $dirty = first_line('sh', '-c', "git -C '$REPO' status --porcelain -- src config ngx_clockchain_module.c | wc -l");
my $debian = first_line('cat', '/etc/debian_version');

my $gen = '';
$gen .= "Measured by `./build.sh bench` on " . strftime('%Y-%m-%d %H:%M UTC', gmtime($T0))
    . sprintf(" in %.0f s.\n\n", $elapsed);
$gen .= "| | |\n|---|---|\n";
$gen .= "| machine | $nproc CPU ($model), $mem RAM, Linux $kernel, Debian $debian |\n";
$gen .= "| nginx | $nginx_v (Debian), `worker_processes 2`, `access_log off` |\n";
$gen .= "| module | $module_v at commit $commit" . ($dirty ? " (with uncommitted changes to the C sources)" : '') . " |\n";
$gen .= "| Redis | $redis_v, AOF `appendfsync everysec`, no AOF rewrite, on the same host |\n";
$gen .= "| load | $wrk_v, on the same CPUs as nginx and Redis; load average $LOAD0 at the start, "
    . first_line('cat', '/proc/loadavg') =~ s/^(\S+ \S+ \S+).*/$1/r . " at the end |\n";
$gen .= "| path of the canned scene | `$INFO{path}` (" . length($INFO{path}) . " bytes) |\n\n";
$gen .= "| measure | target | measured | result |\n|---|---|---|---|\n";
$gen .= join '', map { "| $_->[0] | $_->[1] | $_->[2] | " . ($_->[3] ? 'pass' : '**miss**') . " |\n" } @ROWS;
$gen .= "\n### Rounds\n\n";
for my $k (1, 2) {
    next unless $RES{$k};
    $gen .= "Measure $k (module / reference, interleaved, $SECS s each; CPU seconds used in "
        . "each round by nginx's workers, by Redis, and by other people's processes on this "
        . "machine):\n\n"
        . "| round | module rps | reference rps | ratio | module p99 | reference p99 "
        . "| module CPU: nginx / Redis / others | reference CPU: nginx / Redis / others |\n"
        . "|---|---|---|---|---|---|---|---|\n";
    for my $i (0 .. $ROUNDS - 1) {
        my ($m, $r) = ($RES{$k}{m}[$i], $RES{$k}{r}[$i]);
        $gen .= sprintf "| %d | %.0f | %.0f | %.2f | %.2f ms | %.2f ms | %s | %s |\n",
            $i + 1, $m->{rps}, $r->{rps}, $m->{rps} / $r->{rps}, $m->{p99}, $r->{p99},
            cpu_cell($m->{cpu}), cpu_cell($r->{cpu});
    }
    $gen .= "\n";
}
$gen .= sprintf "Measure 2 created %d jobs in Redis in its module rounds and warm-up (Redis flushed before "
    . "each one, but for the sample job).\n\n", $RES{2}{created}
    if $RES{2};
$gen .= sprintf "Measure 3: %d jobs created in %.2f s; CPU seconds used meanwhile: %s.\n\n",
    $RES{3}{jobs}, $RES{3}{create_secs}, cpu_text($RES{3}{cpu})
    if $RES{3};
if ($RES{4}) {
    my $x = $RES{4};
    $gen .= "Measure 4 ($SECS s rounds; the 1000 calls were all in flight "
        . sprintf("%.1f s after the POST and still were %.0f s after it, when the rounds ended):\n\n",
                  $x->{ready}, $x->{elapsed})
        . "| round | nginx | rps | p99 | CPU: nginx / Redis / others |\n|---|---|---|---|---|\n";
    my @order = ((map { ['F, idle', $x->{before}[$_]] } 0 .. $ROUNDS - 1),
                 (map { (['F2, idle', $x->{idle}[$_]], ['F, 1000 calls in flight', $x->{busy}[$_]]) }
                  0 .. $ROUNDS - 1));
    my $i = 0;
    for my $o (@order) {
        $gen .= sprintf "| %d | %s | %.0f | %.2f ms | %s |\n", ++$i, $o->[0],
            $o->[1]{rps}, $o->[1]{p99}, cpu_cell($o->[1]{cpu});
    }
    $gen .= sprintf "\nRunner worker of F: VmRSS %s → %s with the calls in flight (RssAnon %s → %s).\n\n",
        kib($x->{rss0}), kib($x->{rss1}), kib($x->{anon0}), kib($x->{anon1});
}
if ($RES{5}) {
    $gen .= "Measure 5, split at the moment the change was published (heard by a "
        . "SUBSCRIBE client on the same Redis); the three runs at 256 are the measure (median of "
        . "their medians, median of their p99s), 64 (the default) and 16 show where the time goes:\n\n"
        . "| A's `clockchain_flash_max_calls` | answer − `completed_at`: median | p99 | max "
        . "| `completed_at` → PUBLISH: median | p99 | PUBLISH → B's answer: median | p99 "
        . "| B's Redis round trips meanwhile (`/metrics` histogram): median | p99 |\n"
        . "|---|---|---|---|---|---|---|---|---|---|\n";
    for my $x (@{ $RES{5}{runs} }, @{ $RES{'5v'} // [] }) {
        # no round trip at all: the waiters were answered from the events
        my @rt = map { $_ eq '-' ? 'none' : "≤ $_ ms" } @$x{qw(rt_median rt_p99)};
        $gen .= sprintf "| %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %s | %s |\n",
            @$x{qw(max_calls median p99 max a_median a_p99 b_median b_p99)}, @rt;
    }
    $gen .= "\n";
}
if ($RES{7}) {
    my $x = $RES{7};
    $gen .= "Measure 7, per worker of R (10k jobs → 100k jobs):\n\n"
        . "| worker | VmRSS | RssAnon | RssShmem (the zone) |\n|---|---|---|---|\n";
    for my $pid (@{ $x->{workers} }) {
        my ($m10, $m100) = ($x->{mem10}{$pid}, $x->{mem100}{$pid});
        $gen .= sprintf "| %s | %s → %s | %s → %s | %s → %s |\n",
            $pid == $x->{runner} ? 'runner' : 'other', kib($m10->{VmRSS}), kib($m100->{VmRSS}),
            kib($m10->{RssAnon}), kib($m100->{RssAnon}), kib($m10->{RssShmem}), kib($m100->{RssShmem});
    }
    $gen .= "\nRssAnon (MiB) after 10k, 20k, ... 100k jobs, and its least-squares slope: "
        . join('; ', map {
            ($_ == $x->{runner} ? 'runner' : 'other') . ' ' . join(' ', map { sprintf '%.1f', $_ / 1024 }
                                                                     @{ $x->{series}{$_} })
            . sprintf(' (%+.0f KiB per 10k jobs)', slope(@{ $x->{series}{$_} })) } @{ $x->{workers} })
        . ".\n\n";
}
if ($RES{12}) {
    my $x = $RES{12};
    my ($m0, $m1, $m2, $ref) = @$x{qw(m0 m1 m2 ref)};
    $gen .= sprintf "Measure 12: %d waiters on W, held %.1f s after the first request was sent "
        . "(%d client processes), W's two workers holding %s sockets; load average %s at its "
        . "start, %s at its end. Workers' memory, summed over the two, and the same for W0's "
        . "%d requests delayed by `limit_req` (nginx's own held request):\n\n",
        $x->{n}, $x->{hold_secs}, $x->{clients}, join(' and ', @{ $m1->{socks} }),
        $x->{load0}, $x->{load}, $ref->{n} - 1;
    $gen .= "| | W, no waiters | W, $x->{n} waiters held | per waiter | W, after the wake "
        . "| W0, per held request |\n|---|---|---|---|---|---|\n";
    for my $f (qw(VmRSS RssAnon RssShmem)) {
        $gen .= sprintf "| %s | %s | %s | %.0f B | %s | %.0f B |\n", $f, kib($m0->{$f}),
            kib($m1->{$f}), $x->{$f}, kib($m2->{$f}), $ref->{$f};
    }
    $gen .= sprintf "\nThe wake: %s; answers from %.2f to %.2f s after A was started; answer − "
        . "`completed_at` median %.2f ms, p99 %.2f ms, max %.2f ms; `completed_at` → PUBLISH "
        . "heard median %.2f ms, p99 %.2f ms, max %.2f ms; PUBLISH heard → W's answer median "
        . "%.2f ms, p99 %.2f ms, max %.2f ms (%d of %d changes heard). CPU seconds meanwhile: "
        . "%s; A's workers %.2f s; the client processes %.2f s (their whole life). W's "
        . "workers: %.0f µs per woken waiter, %.2f s waiting for a CPU (run queue), %d Redis "
        . "round trips.\n\n",
        join(', ', map { "$x->{states}{$_} answered $_" } sort keys %{ $x->{states} }),
        @$x{qw(first last median p99 max a_median a_p99 a_max b_median b_p99 b_max heard n)},
        cpu_text($x->{cpu}), $x->{a_cpu}, $x->{clients_cpu}, $x->{w_us}, $x->{w_waited},
        $x->{rt_n};
}
if ($RES{9}) {
    my $x = $RES{9};
    $gen .= sprintf "Measure 9, a graph of %d moments (%d edges, every other moment public) built "
        . "in %.0f s, %.0f jobs/s; CPU seconds used meanwhile: %s. Redis `used_memory` %s → %s, "
        . "%.0f bytes per moment, by kind of key (`MEMORY USAGE` of up to 300 keys of each "
        . "kind, scaled; jobs included): %s. Moments after each 10 s: %s. Module / reference, "
        . "interleaved, $SECS s rounds, medians of three; \"alone\": one request at a time on "
        . "a keep-alive connection, median of up to 20:\n\n",
        $x->{n}, $x->{edges}, $x->{secs}, $x->{jps}, cpu_text($x->{cpu}), kib($x->{mem0} / 1024),
        kib($x->{mem1} / 1024), ($x->{mem1} - $x->{mem0}) / $x->{nodes},
        join(', ', map { sprintf '%s %d keys %s', $_, $x->{kinds}{$_}[0], kib($x->{kinds}{$_}[1] / 1024) }
             sort { $x->{kinds}{$b}[1] <=> $x->{kinds}{$a}[1] } keys %{ $x->{kinds} }),
        join(' ', map { $_->[1] } @{ $x->{progress} });
    $gen .= "| read | body | items | alone | module rps | reference rps | ratio | module p99 "
        . "| reference p99 | module CPU per request: nginx / Redis | reference: nginx |\n"
        . "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for my $name (@{ $x->{order} }) {
        my $r = $x->{rows}{$name};
        (my $url = $r->{url}) =~ s{^(/api/(?:graph/neighbors|moments))/\S+$}{$1/{path}};
        $gen .= sprintf "| `%s` | %d B | %d | %.2f ms | %.0f | %.0f | %.3f | %.2f ms | %.2f ms "
            . "| %.0f / %.0f µs | %.0f µs |\n", $url, @$r{qw(bytes items alone rps ref_rps ratio
            p99 ref_p99 ng_us redis_us ref_us)};
    }
    $gen .= "\n";
}
$gen .= "### Commands\n\n";
$gen .= "R, A: nginx with the module's locations, a runner (`clockchain_flash_max_calls 256`) "
    . "and, on a second port, the Flash stand-in `location = /api/v1/timepoints/generate/sync "
    . "{ default_type application/json; return 200 '<scene>'; }`. B: the module's locations "
    . "without a runner, and the references `location = /ref/job` and `location = /ref/generate` "
    . "answering `return 200 '<the job JSON>'` (`default_type application/json`, "
    . "`add_header Cache-Control no-store`). F and its twin F2: a runner whose Flash answers "
    . "after 60 s (`clockchain_flash_max_calls 1000`, `clockchain_flash_timeout 300s`). "
    . "All: `clockchain_zone 128m`, "
    . "`clockchain_max_pending 0`, `worker_connections 8192`, `keepalive_requests 1000000`, "
    . "one Redis. `post.lua` sets `POST`, the body `{\"query\":\"moon landing\"}`, "
    . "`Content-Type` and `X-Service-Key`.\n\n";
for my $k (1 .. 12) {
    next unless $COMMANDS{$k};
    my $c = $COMMANDS{$k};
    $gen .= "- $k: " . (ref $c ? join('; ', @$c) : $c) . "\n";
}
$gen .= "- 7: after measure 3, GET each of its 10k jobs once (pipelined), read "
    . "`/proc/<worker>/status`; then 9 × (10k more jobs through the runner, GET each once, read again); "
    . "ratio of RssAnon (private memory) after 100k ÷ after 10k, the larger of the two workers\n"
    if $RES{7};

my $BEGIN = '<!-- bench:begin: written by ./build.sh bench, do not edit -->';
my $END   = '<!-- bench:end -->';
my $doc = '';
if (open my $fh, '<:encoding(UTF-8)', $DOC) { local $/; $doc = <$fh>; close $fh }
if ($doc =~ /\Q$BEGIN\E.*?\Q$END\E/s) {
    $doc =~ s/\Q$BEGIN\E.*?\Q$END\E/$BEGIN\n$gen$END/s;
} else {
    $doc = "# Benchmarks\n\n`./build.sh bench` (t/bench/bench.pl) measures the module against "
        . "nginx's own limit on the same machine, in the same run.\n\n"
        . "$BEGIN\n$gen$END\n";
}
write_file($DOC, $doc);
say_("wrote $DOC");
