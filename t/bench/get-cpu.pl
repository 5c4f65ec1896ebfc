#!/usr/bin/env perl
#
# t/bench/get-cpu.pl MODULE.so [MODULE.so ...]: nginx CPU per GET of a
# finished job, for each module given, beside `return 200` of the same
# body in the same nginx, side by side in one run (issue 19).
#
# One Redis, one nginx per module (two workers each, the bench's settings);
# a completed job seeded in Redis, its answer read once (so that it is in
# the zone) and put in a `return 200` location of that nginx.  Then ROUNDS
# times, for each nginx in turn: wrk on the job, wrk on the reference.  Per
# round: rps, p99 and the workers' CPU time over wrk's requests (µs per
# request).  At the end, per module, the medians: CPU per GET, CPU per
# reference answer, their ratio, and the rps and p99 ratios.  The box is
# shared, so the CPU figures are the ones to compare; interleaving cancels
# slow drift.
#
#   GET_SECS (5), GET_ROUNDS (5), GET_CONNS (64), GET_STATUS (completed or
#   failed), GET_ERROR (the failed job's error), GET_PATH (the path),
#   GET_PERF=DIR: perf record (cpu-clock) the workers during each module's
#   first round of each, reports in DIR/perf-get-N-{mod,ref}.txt

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use Cwd qw(abs_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use List::Util qw(sum);
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

$| = 1;

my @MODULES = map { abs_path($_) // die "no module $_\n" } @ARGV
    or die "usage: $0 MODULE.so [MODULE.so ...]\n";
our $SECS  = $ENV{GET_SECS} // 5;
my $ROUNDS = $ENV{GET_ROUNDS} // 5;
my $CONNS  = $ENV{GET_CONNS} // 64;
my $STATUS = $ENV{GET_STATUS} // 'completed';
my $KEY    = 'bench-service-key';
my $ID     = '3f2b8c1e-9a4d-4e5f-8a6b-7c8d9e0f1a2b';
my $PATH   = $ENV{GET_PATH} // '/1776/february/08/0900/france/ile-de-france/'
    . 'ile-de-la-cite/signing-of-the-declaration-of-independence-1776-2a09';
my $ERROR  = $ENV{GET_ERROR} // 'Flash API error: 422 Unprocessable Entity'
    . ' | response: {"detail":"Year must be a valid integer"}';
my $TCK    = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my $UA     = HTTP::Tiny->new(timeout => 10, keep_alive => 1);

sub nginx_quote {
    my ($s) = @_;
    $s =~ s/\$/\\u0024/g;
    $s =~ s/([\\'])/\\$1/g;
    return "'$s'";
}

# CPU seconds a process has run: the scheduler's count, in ns
# (/proc/PID/schedstat), finer than utime + stime, which are sampled at
# each tick; utime + stime where there is no schedstat
sub cpu_secs {
    my ($pid) = @_;
    if (open my $fh, '<', "/proc/$pid/schedstat") {
        my ($ns) = split ' ', scalar <$fh> // '';
        return $ns / 1e9 if defined $ns;
    }
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $st = <$fh>;
    $st =~ s/^.*\) //s;
    my @f = split ' ', $st;
    return ($f[11] + $f[12]) / $TCK;
}

sub ms {
    my ($v, $u) = @_;
    return $u eq 'us' ? $v / 1000 : $u eq 'ms' ? $v : $u eq 's' ? $v * 1000 : $v * 60000;
}

sub wrk {
    my ($url) = @_;
    open my $fh, '-|', 'wrk', '-t2', "-c$CONNS", "-d${SECS}s", '--latency',
        '-H', "X-Service-Key: $KEY", $url or die "wrk: $!\n";
    local $/;
    my $out = <$fh>;
    close $fh;
    die "wrk failed:\n$out" if $?;
    die "wrk: not 2xx:\n$out" if $out =~ /Non-2xx/;
    my %r;
    ($r{rps}) = $out =~ /^Requests\/sec:\s+([\d.]+)/m;
    ($r{n}) = $out =~ /^\s+(\d+) requests in/m;
    $out =~ /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m or die "wrk:\n$out";
    $r{p99} = ms($1, $2);
    return \%r;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

my $redis = start_redis();
my $now = time;
my $iso = sub {
    my ($t) = @_;
    return strftime('%Y-%m-%dT%H:%M:%S', gmtime $t) . sprintf('.%06dZ', ($t - int $t) * 1e6);
};
$redis->cmd('HSET', $JOB_PREFIX . $ID, 'id', $ID, 'status', $STATUS,
    $STATUS eq 'completed' ? ('path', $PATH) : ('error', $ERROR),
    'created_at', $iso->($now - 20), 'completed_at', $iso->($now - 5),
    'version', 3, 'query', 'moon landing');

my (@NG, %body);
for my $i (0 .. $#MODULES) {
    my $prefix = tempdir("cc-getcpu-$i-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $prefix;
    mkdir "$prefix/$_" for qw(logs conf);
    my ($port) = Clockchain::Test::_free_ports(1);
    my $ng = bless { prefix => $prefix, ports => [$port], n => "getcpu-$i" },
        'Clockchain::Test::Nginx';
    my $write = sub {
        my ($ref) = @_;
        open my $fh, '>', "$prefix/conf/nginx.conf" or die $!;
        print $fh <<"EOF";
load_module $MODULES[$i];
daemon on;
master_process on;
worker_processes 2;
worker_rlimit_nofile 16384;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    clockchain_zone getcpu:128m;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:$port reuseport;
        clockchain_service_key $KEY;
        location /api/jobs/ { clockchain_jobs; }
        location = /ref/job {
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 @{[ nginx_quote($ref) ]};
        }
    }
}
EOF
        close $fh;
    };
    $write->('{}');
    $ng->start;
    my $r = $UA->get("http://127.0.0.1:$port/api/jobs/$ID",
                     { headers => { 'X-Service-Key' => $KEY } });
    die "GET: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    $body{$i} = $r->{content};
    $ng->stop;
    $write->($r->{content});
    $ng->start;
    # once per worker into the zone (either worker caches it for both)
    for (1 .. 4) {
        my $g = $UA->get("http://127.0.0.1:$port/api/jobs/$ID",
                         { headers => { 'X-Service-Key' => $KEY } });
        die "GET again: $g->{status}\n" unless $g->{content} eq $body{$i};
        my $f = $UA->get("http://127.0.0.1:$port/ref/job");
        die "reference differs:\n$f->{content}\n$body{$i}\n"
            unless $f->{content} eq $body{$i};
    }
    push @NG, $ng;
}
for my $i (1 .. $#MODULES) {
    warn "note: module $i answers differently from module 0\n"
        if $body{$i} ne $body{0};
}
printf "body (%d bytes): %s\n", length $body{0}, $body{0};
for my $what ("/api/jobs/$ID", '/ref/job') {
    my ($raw) = raw_request($NG[0]{ports}[0], "GET $what HTTP/1.1\r\nHost: x\r\n"
                            . "X-Service-Key: $KEY\r\nConnection: close\r\n\r\n");
    my ($head) = split /\r\n\r\n/, $raw;
    $head =~ s/\r\n/ | /g;
    printf "%s: %d bytes of header: %s\n", $what, length($head), $head;
}

my %res;    # $i => { mod => [..], ref => [..] }
my $PERF = $ENV{GET_PERF};
sub round {
    my ($i, $what, $url) = @_;
    my @w = $NG[$i]->worker_pids;
    my $perf;
    if ($PERF && $what ne 'warm' && !$res{$i}{$what}) {
        $perf = fork // die "fork: $!";
        if ($perf == 0) {
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', '/dev/null';
            { exec 'perf', 'record', '-e', 'cpu-clock', '-F', '1999', '-g',
                   '-o', "$PERF/perf-get-$i-$what.data", '-p', join(',', @w) }
            POSIX::_exit(127);
        }
        sleep 0.3;
    }
    my $c0 = sum(map { cpu_secs($_) } @w);
    my $r = wrk($url);
    if ($perf) {
        kill 'INT', $perf;
        waitpid($perf, 0);
        system("perf report -i $PERF/perf-get-$i-$what.data --no-children "
               . "--stdio --percent-limit 0.3 --sort dso,symbol -g none "
               . "> $PERF/perf-get-$i-$what.txt 2>/dev/null");
    }
    $r->{cpu_us} = (sum(map { cpu_secs($_) } @w) - $c0) / $r->{n} * 1e6;
    push @{ $res{$i}{$what} }, $r;
    return $r;
}

for my $i (0 .. $#NG) {    # warm-up
    local $SECS = 1;
    round($i, 'warm', "http://127.0.0.1:$NG[$i]{ports}[0]/api/jobs/$ID");
    round($i, 'warm', "http://127.0.0.1:$NG[$i]{ports}[0]/ref/job");
}
for my $round (1 .. $ROUNDS) {
    my @order = $round % 2 ? (0 .. $#NG) : reverse(0 .. $#NG);
    for my $i (@order) {
        my $base = "http://127.0.0.1:$NG[$i]{ports}[0]";
        my ($m, $r) = $round % 2 ? (round($i, 'mod', "$base/api/jobs/$ID"), round($i, 'ref', "$base/ref/job"))
                                 : reverse(round($i, 'ref', "$base/ref/job"), round($i, 'mod', "$base/api/jobs/$ID"));
        printf "round %d module %d: GET %.0f rps p99 %.2f ms %.2f us/req | ref %.0f rps p99 %.2f ms %.2f us/req | cpu ratio %.3f rps ratio %.3f\n",
            $round, $i, $m->{rps}, $m->{p99}, $m->{cpu_us}, $r->{rps}, $r->{p99}, $r->{cpu_us},
            $m->{cpu_us} / $r->{cpu_us}, $m->{rps} / $r->{rps};
    }
}

print "\n";
for my $i (0 .. $#NG) {
    my ($m, $r) = ($res{$i}{mod}, $res{$i}{ref});
    my @k = 0 .. $#$m;
    my @c = map { $m->[$_]{cpu_us} / $r->[$_]{cpu_us} } @k;
    my $mean = sum(@c) / @c;
    my $se = @c > 1 ? sqrt(sum(map { ($_ - $mean) ** 2 } @c) / (@c - 1) / @c) : 0;
    printf "module %d (%s):\n  CPU per GET %.2f us, per reference %.2f us, ratio (median of rounds) %.3f"
         . " (mean %.3f, s.e. %.3f)\n"
         . "  rps ratio %.3f (%.0f vs %.0f), p99 ratio %.3f (%.2f vs %.2f ms)\n",
        $i, $MODULES[$i],
        median(map { $_->{cpu_us} } @$m), median(map { $_->{cpu_us} } @$r),
        median(@c), $mean, $se,
        median(map { $m->[$_]{rps} / $r->[$_]{rps} } @k),
        median(map { $_->{rps} } @$m), median(map { $_->{rps} } @$r),
        median(map { $m->[$_]{p99} / $r->[$_]{p99} } @k),
        median(map { $_->{p99} } @$m), median(map { $_->{p99} } @$r);
}

for my $ng (@NG) { $ng->stop }
for my $ng (@NG) {
    my @bad = grep { /\[(alert|emerg|crit)\]/ } split /\n/, $ng->error_log;
    warn "nginx $ng->{n}: error.log has:\n" . join("\n", @bad) . "\n" if @bad;
}
$redis->stop;
