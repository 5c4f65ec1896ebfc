#!/usr/bin/perl
#
# ./build.sh soak [minutes]: minutes (10) of mixed traffic at 64
# connections against nginx with the module and its runner, a Flash
# stand-in that is slow (0.5-2 s a call) and sometimes wrong (429, 500,
# garbage, 422), and the workers' memory and file descriptors sampled
# every 30 s.  Prints a report and a verdict; exits 1 on FAIL.  Not part
# of ./build.sh test (docs/hardening.md, "Soak").  Also a chart over the
# soak's time (t/soak/soak.gp, gnuplot): every SOAK_CHART_SECS (5) the
# RSS and fds of each nginx process, 5 GETs of a finished job timed on
# one connection, the Flash calls' mean duration, and the queue; the
# data files, then soak.svg, in SOAK_DIR; with CHARTS_TO_DOCS=1 they are
# copied into docs/img/ as well.
#
#   CLOCKCHAIN_MODULE=build/ngx_http_clockchain_module.so \
#       perl -I t/lib t/soak/soak.pl [minutes]
#
# Environment: SOAK_POST_RPS (8), SOAK_BULK_RPS (0.2), SOAK_WAIT_RPS (4):
# POST /api/generate, POST /api/bulk-generate (5-20 jobs each) and
# ?wait=5 long-polls a second, for the whole run; every other request is
# a GET.  SOAK_ZONE (2m) sizes the shared zone: small, so that it is full
# within minutes and evicts.  SOAK_DIR (build/soak) keeps nginx's prefix
# (error.log), wrk's output and the report.
#
# Core Perl and the test harness (t/lib/Clockchain/Test.pm) only; wrk
# drives the load (t/soak/soak.lua).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use Clockchain::Chart ();
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use JSON::PP;
use List::Util qw(min max sum shuffle);
use POSIX qw(strftime WNOHANG);
use Time::HiRes qw(time sleep);

$| = 1;
binmode STDOUT, ':encoding(UTF-8)';
binmode STDERR, ':encoding(UTF-8)';

my $MINUTES = shift // 10;
die "usage: $0 [minutes]\n"
    unless $MINUTES =~ /^\d+(\.\d+)?$/ && $MINUTES > 0 && !@ARGV;

my $REPO     = abs_path("$FindBin::Bin/../..");
my $DURATION = int($MINUTES * 60 + 0.5);
my $SAMPLE   = 30;                           # seconds between samples
my $WARMUP   = min(60, int($DURATION / 2));  # RSS baseline: first sample after it
my $CONNS    = 64;
my $THREADS  = 2;
my $POST_RPS = $ENV{SOAK_POST_RPS} // 8;
my $BULK_RPS = $ENV{SOAK_BULK_RPS} // 0.2;
my $WAIT_RPS = $ENV{SOAK_WAIT_RPS} // 4;
my $ZONE     = $ENV{SOAK_ZONE} // '2m';
my $RSS_MAX  = 0.10;    # growth of a worker's RSS after the warm-up
my $FD_SLACK = 8;       # fds a process may hold at the end beyond the start
my $CHART_EVERY = $ENV{SOAK_CHART_SECS} // 5;
my $FLASH_CALLS = 64;   # clockchain_flash_max_calls (the default)
my $DRAIN    = 180;     # seconds the queue may take to empty after the load
my $KEY      = 'soak-service-key';
my $ADMIN    = 'soak-admin-key';
my $FLASH_KEY = 'soak-flash-key';
my $MODULE   = abs_path(module_path()) // module_path();
my $OUT      = $ENV{SOAK_DIR} // dirname($MODULE) . '/soak';
my $JSON     = JSON::PP->new->utf8->canonical;
my $P        = 'clockchain:{cc}:v1:';
my $MAIN_PID = $$;
my $T0       = time;

die "module not found: $MODULE (./build.sh builds it)\n" unless -f $MODULE;
for my $v ($POST_RPS, $BULK_RPS, $WAIT_RPS) {
    die "SOAK_*_RPS must be a number\n" unless $v =~ /^\d+(\.\d+)?$/;
}
die "SOAK_CHART_SECS must be a number of seconds, 1 or more\n"
    unless $CHART_EVERY =~ /^\d+(\.\d+)?$/ && $CHART_EVERY >= 1;

sub say_ { printf STDERR "[soak %6.1fs] %s\n", time - $T0, join '', @_ }

sub loadavg {
    open my $fh, '<', '/proc/loadavg' or return '?';
    my $l = <$fh> // '';
    return join ' ', (split ' ', $l)[0 .. 2];
}
my $LOAD0 = loadavg();

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    my $s = <$fh>;
    return $s;
}

sub spew {
    my ($f, $text) = @_;
    open my $fh, '>:encoding(UTF-8)', $f or die "$f: $!\n";
    print $fh $text;
    close $fh or die "$f: $!\n";
}

###########################################################################
# Redis, the Flash stand-in, nginx

remove_tree("$OUT/nginx");
make_path("$OUT/nginx/logs", "$OUT/nginx/conf");
chmod 0755, $OUT, "$OUT/nginx";

say_("starting Redis and the Flash stand-in (t/flash/standin.py)");
my $redis = start_redis(args => ['--appendfsync', 'everysec']);
# the default delay is for queries without a token; each soak query
# carries its own delay=0.5..2
my $flash = start_flash(delay => 1, key => $FLASH_KEY);

my ($PORT) = Clockchain::Test::_free_ports(1);
spew("$OUT/nginx/conf/nginx.conf", <<"EOF");
load_module $MODULE;
daemon on;
master_process on;
worker_processes 2;
worker_rlimit_nofile 16384;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    clockchain_zone soak:$ZONE;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    clockchain_flash_url @{[ $flash->url ]};
    clockchain_flash_key $FLASH_KEY;

    server {
        listen 127.0.0.1:$PORT;
        clockchain_service_key $KEY;
        clockchain_admin_key $ADMIN;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location = /metrics {
            clockchain_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }
}
EOF

my $NG = bless { prefix => "$OUT/nginx", ports => [$PORT], n => 'soak', name => 'soak' },
    'Clockchain::Test::Nginx';
my $WRK_PID;
my $STOPPED = 0;

sub stop_all {
    return unless $$ == $MAIN_PID;
    if ($WRK_PID) { kill 'TERM', $WRK_PID; waitpid($WRK_PID, 0); undef $WRK_PID }
    eval { $NG->stop(quick => 1) if $NG->running };
}

END { local ($?, $!, $@); stop_all() }
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { stop_all(); Clockchain::Test::_cleanup(); POSIX::_exit(1) };
}

$NG->start;
my $UA = HTTP::Tiny->new(timeout => 30, keep_alive => 1, agent => 'clockchain-soak/1');

sub metrics {
    my $r = $UA->get($NG->url('/metrics'));
    return undef unless $r->{status} == 200;
    return eval { decode_json($r->{content}) };
}

Clockchain::Test::wait_for(10, sub { my $m = metrics(); $m && $m->{runner_pid} })
    or die "no runner worker after 10 s\n";
say_("nginx up on :$PORT (master " . $NG->master_pid . ", workers "
     . join(' ', $NG->worker_pids) . ", runner " . metrics()->{runner_pid}
     . "), Redis :" . $redis->port . ", Flash " . $flash->url);

###########################################################################
# seed: finished jobs for the GETs (most completed, some failed)

sub queue_len {
    return $redis->cmd('ZCARD', "${P}queue") + $redis->cmd('ZCARD', "${P}processing");
}

# { state => count } over every job hash in Redis
my $COUNT_LUA = <<'LUA';
local c = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
    local s = redis.pcall('HGET', k, 'status')
    if type(s) == 'string' then c[s] = (c[s] or 0) + 1 end
end
local out = {}
for s, n in pairs(c) do out[#out + 1] = s; out[#out + 1] = n end
return out
LUA

sub job_states {
    my $l = $redis->cmd('EVAL', $COUNT_LUA, 0, "${P}job:*");
    return { @$l };
}

my @seed_ids;
{
    my @q;
    for my $i (1 .. 1000) {
        my $mode = $i % 20 == 0 ? 'delay=0.2,garbage' : $i % 20 == 10 ? 'delay=0.2,422'
                 : 'delay=0.2';
        push @q, { query => "soak seed $i moon landing 1969 [flash:$mode]" };
    }
    while (my @chunk = splice @q, 0, 100) {
        my $r = $UA->request(POST => $NG->url('/api/bulk-generate'), {
            headers => { 'X-Service-Key' => $KEY, 'X-Admin-Key' => $ADMIN,
                         'Content-Type' => 'application/json' },
            content => $JSON->encode({ queries => \@chunk }) });
        die "seed: bulk-generate answered $r->{status}: $r->{content}\n"
            unless $r->{status} == 200;
        push @seed_ids, map { $_->{job_id} } @{ decode_json($r->{content}) };
    }
    Clockchain::Test::wait_for(120, sub { queue_len() == 0 })
        or die "seed: " . queue_len() . " jobs still queued after 120 s\n";
    my $st = job_states();
    say_("seeded " . scalar(@seed_ids) . " jobs: "
         . join(', ', map { "$_ $st->{$_}" } sort keys %$st));
    open my $fh, '>', "$OUT/seed-ids.txt" or die "$OUT/seed-ids.txt: $!\n";
    print $fh map { "$_\n" } shuffle @seed_ids;
    close $fh;
}

###########################################################################
# sampling

my $TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

sub cpu_secs {
    my ($pid) = @_;
    my $st = slurp("/proc/$pid/stat") // return 0;
    $st =~ s/^.*\) //s;
    my @f = split ' ', $st;
    return ($f[11] + $f[12]) / $TCK;
}

# inode => [local port, remote port, state] of every TCP socket
sub tcp_sockets {
    my %s;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        <$fh>;
        while (my $l = <$fh>) {
            my @c = split ' ', $l;
            my ($lp) = $c[1] =~ /:([0-9A-F]+)$/;
            my ($rp) = $c[2] =~ /:([0-9A-F]+)$/;
            $s{ $c[9] } = [hex $lp, hex $rp, $c[3]];
        }
    }
    return \%s;
}

sub proc_sample {
    my ($pid, $tcp) = @_;
    my $status = slurp("/proc/$pid/status") // return undef;
    my %m;
    $m{$1} = $2 while $status =~ /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/mg;
    my %cat = (client => 0, flash => 0, redis => 0, listen => 0, other => 0);
    my $n = 0;
    if (opendir my $d, "/proc/$pid/fd") {
        for my $fd (grep { /^\d+$/ } readdir $d) {
            $n++;
            my $link = readlink("/proc/$pid/fd/$fd") // '';
            my $s = $link =~ /^socket:\[(\d+)\]$/ ? $tcp->{$1} : undef;
            if (!$s)                          { $cat{other}++ }
            elsif ($s->[2] eq '0A')           { $cat{listen}++ }
            elsif ($s->[0] == $PORT)          { $cat{client}++ }
            elsif ($s->[1] == $flash->port)   { $cat{flash}++ }
            elsif ($s->[1] == $redis->port)   { $cat{redis}++ }
            else                              { $cat{other}++ }
        }
        closedir $d;
    }
    return { rss => $m{VmRSS} // 0, anon => $m{RssAnon} // 0,
             shmem => $m{RssShmem} // 0, fds => $n, fdcat => \%cat,
             cpu => cpu_secs($pid) };
}

my @SAMPLES;
my %SEEN_WORKERS;     # every worker pid seen, in order
my $LOAD_T0;

sub sample {
    my ($phase) = @_;
    my $t = defined $LOAD_T0 ? time - $LOAD_T0 : 0;
    my $tcp = tcp_sockets();
    my $master = $NG->master_pid;
    my @w = $NG->worker_pids;
    my $m = metrics() // {};
    my %procs;
    $procs{$master} = proc_sample($master, $tcp) if $master;
    for my $pid (@w) {
        $SEEN_WORKERS{$pid} = scalar keys %SEEN_WORKERS unless exists $SEEN_WORKERS{$pid};
        $procs{$pid} = proc_sample($pid, $tcp);
    }
    delete $procs{$_} for grep { !$procs{$_} } keys %procs;
    my $info = $redis->cmd('INFO', 'memory');
    my ($used) = $info =~ /^used_memory:(\d+)/m;
    my $s = { t => $t, phase => $phase, master => $master, workers => \@w,
              procs => \%procs, metrics => $m, states => job_states(),
              queue => $redis->cmd('ZCARD', "${P}queue"),
              processing => $redis->cmd('ZCARD', "${P}processing"),
              redis_mem => $used // 0, dbsize => $redis->cmd('DBSIZE'),
              redis_rss => proc_sample($redis->pid, {})->{rss},
              load => loadavg() };
    push @SAMPLES, $s;
    my $runner = $m->{runner_pid} // 0;
    say_(sprintf "%-4s t=%4.0fs  %s | jobs created %s completed %s failed %s, "
         . "queue %d processing %d in flight %s | zone free %s/%s pages | load %s",
         $phase, $t,
         join('  ', map {
             my $p = $procs{$_};
             $p ? sprintf('%s %d: %.1f MiB %d fds', $_ == $runner ? 'runner' : 'worker',
                          $_, $p->{rss} / 1024, $p->{fds}) : "worker $_: gone"
         } @w),
         map({ $m->{$_} // '?' } qw(jobs_created jobs_completed jobs_failed)),
         $s->{queue}, $s->{processing}, $m->{flash_calls_in_flight} // '?',
         $m->{zone_pages_free} // '?', $m->{zone_pages} // '?', $s->{load});
    return $s;
}

# the chart's samples, every $CHART_EVERY s: cheaper than sample() (no
# Redis KEYS scan), so that they can be frequent
my @CHART;
my %CHART_PROCS;    # pid => order of first sight
my $CHART_PREV;     # the Flash histogram at the previous sample
my $PROBE = HTTP::Tiny->new(timeout => 30, keep_alive => 1, agent => 'clockchain-soak-probe/1');

sub chart_sample {
    my $t = defined $LOAD_T0 ? time - $LOAD_T0 : 0;
    my %procs;
    for my $pid (grep { $_ } $NG->master_pid, $NG->worker_pids) {
        my $p = proc_sample($pid, {}) or next;
        $CHART_PROCS{$pid} //= scalar keys %CHART_PROCS;
        $procs{$pid} = { rss => $p->{rss}, private => $p->{rss} - $p->{shmem},
                         fds => $p->{fds} };
    }
    my @lat;
    for (1 .. 5) {
        my $id = $seed_ids[ rand @seed_ids ];
        my $t0 = time;
        my $r = $PROBE->get($NG->url("/api/jobs/$id"), { headers => { 'X-Service-Key' => $KEY } });
        push @lat, (time - $t0) * 1000 if $r->{status} == 200;
    }
    @lat = sort { $a <=> $b } @lat;
    my $m = metrics() // {};
    my $f = $m->{flash_call_duration_seconds};
    my $mean;
    if ($f && $CHART_PREV && $f->{count} > $CHART_PREV->{count}) {
        $mean = ($f->{sum} - $CHART_PREV->{sum}) / ($f->{count} - $CHART_PREV->{count});
    }
    $CHART_PREV = $f if $f;
    push @CHART, { t => $t, procs => \%procs, runner => $m->{runner_pid} // 0,
                   p50 => @lat ? $lat[ $#lat / 2 ] : undef, max => @lat ? $lat[-1] : undef,
                   flash => $mean,
                   # Redis itself: /metrics' gauges lag by up to a second
                   queue => $redis->cmd('ZCARD', "${P}queue"),
                   processing => $redis->cmd('ZCARD', "${P}processing"),
                   in_flight => $m->{flash_calls_in_flight} };
}

###########################################################################
# the load

my $idle = sample('idle');
chart_sample();
my $wrk_out = "$OUT/wrk.out";
my @wrk = ('wrk', "-t$THREADS", "-c$CONNS", "-d${DURATION}s", '--timeout', '30s',
           '-s', "$REPO/t/soak/soak.lua", $NG->url(''), '--',
           "$OUT/seed-ids.txt", $KEY, $ADMIN, $POST_RPS, $BULK_RPS, $WAIT_RPS, $THREADS);
say_("load: " . join(' ', @wrk));
$LOAD_T0 = time;
$WRK_PID = fork // die "fork: $!\n";
if ($WRK_PID == 0) {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', $wrk_out or POSIX::_exit(127);
    open STDERR, '>&', \*STDOUT;
    { exec @wrk }
    POSIX::_exit(127);
}
my $wrk_rc;
my $next = $SAMPLE;
my $next_chart = $CHART_EVERY;
while (1) {
    my $now = time - $LOAD_T0;
    if (waitpid($WRK_PID, WNOHANG) == $WRK_PID) { $wrk_rc = $?; undef $WRK_PID; last }
    if ($now >= $next) {
        sample('load') if $now < $DURATION - 2;
        $next += $SAMPLE;
    }
    if ($now >= $next_chart) {
        chart_sample();
        $next_chart += $CHART_EVERY while $next_chart <= time - $LOAD_T0;
    }
    sleep 0.2;
}
my $load_secs = time - $LOAD_T0;
say_(sprintf "wrk ended after %.1f s (exit %d)", $load_secs, $wrk_rc >> 8);

# the runner finishes what is queued; then the final sample
my $drained = Clockchain::Test::wait_for($DRAIN, sub {
    if (time - $LOAD_T0 >= $next_chart) {
        chart_sample();
        $next_chart += $CHART_EVERY while $next_chart <= time - $LOAD_T0;
    }
    my $m = metrics() // {};
    queue_len() == 0 && ($m->{flash_calls_in_flight} // 1) == 0;
});
my $drain_secs = time - $LOAD_T0 - $load_secs;
say_($drained ? sprintf("queue empty %.1f s after the load", $drain_secs)
              : "queue NOT empty $DRAIN s after the load: " . queue_len() . " jobs");
sleep 3;
my $end = sample('end');
chart_sample();

###########################################################################
# stop, collect

my $flash_calls = eval { $flash->calls } // {};
my $graceful = $NG->stop;
$redis->stop;
my $LOAD1 = loadavg();

my %wrk;
my (%status, %sent, %states, @fivexx);
my $wrk_text = slurp($wrk_out) // '';
for (split /\n/, $wrk_text) {
    if    (/^SOAK requests (\d+)/)        { $wrk{requests} = $1 }
    elsif (/^SOAK duration_us (\d+)/)     { $wrk{duration} = $1 / 1e6 }
    elsif (/^SOAK errors (.*)/)           { @wrk{qw(connect read write status_err timeout)} = split ' ', $1 }
    elsif (/^SOAK latency_us (.*)/)       { $wrk{lat} = [ map { $_ / 1000 } split ' ', $1 ] }
    elsif (/^SOAK status (\d+) (\d+)/)    { $status{$1} = $2 }
    elsif (/^SOAK sent (\S+) (\d+)/)      { $sent{$1} = $2 }
    elsif (/^SOAK state (\S+) (\d+)/)     { $states{$1} = $2 }
    elsif (/^SOAK 5xx (\d+) (\d+) (.*)/)  { push @fivexx, [$2, $3, $1] }
    elsif (/^SOAK bulk (\d+) (\d+)/)      { @wrk{qw(bulk_ok bulk_jobs)} = ($1, $2) }
}

# intended: the module's own 503s (Redis down, no key configured, ...)
my ($intended, $other) = (0, 0);
for my $f (@fivexx) {
    my ($code, $detail, $n) = @$f;
    if ($code == 503 && $detail =~ /unavailable|not available/i) { $intended += $n }
    else { $other += $n }
}

my $errlog = slurp("$OUT/nginx/logs/error.log") // '';
my %level;
my %msgs;
for my $l (split /\n/, $errlog) {
    next unless $l =~ /^\S+ \S+ \[(\w+)\] \d+#\d+: (.*)$/;
    my ($lv, $m) = ($1, $2);
    $level{$lv}++;
    next unless $lv =~ /^(emerg|alert|crit|error)$/;
    $m =~ s/^\*\d+ //;
    $m =~ s/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/<id>/g;
    $m =~ s/\d+/N/g;
    $msgs{"[$lv] $m"}++;
}
my $bad_log = sum(0, map { $level{$_} // 0 } qw(emerg alert crit));
my @crashed = grep { /exited on signal/ } split /\n/, $errlog;

###########################################################################
# the report

my @R;
sub out { push @R, join '', @_ }

sub kib { sprintf '%.1f', $_[0] / 1024 }

sub pct_of { my ($a, $b) = @_; $b ? sprintf('%+.1f%%', 100 * ($a - $b) / $b) : '-' }

my ($base) = grep { $_->{phase} eq 'load' && $_->{t} >= $WARMUP } @SAMPLES;
$base //= $end;
my $runner_end = $end->{metrics}{runner_pid} // 0;

out(sprintf "Clockchain soak: %s min of mixed traffic, wrk -t%d -c%d, nginx worker_processes 2, access_log off,",
    $MINUTES, $THREADS, $CONNS);
out(sprintf "runner on; Flash stand-in answering in 0.5-2 s, ~15%% of jobs flaky (429/500 once, garbage, 422, 500 always);");
out(sprintf "zone %s; POST %s/s, bulk %s/s (5-20 jobs), long-poll %s/s; load average %s at the start, %s at the end (%s CPUs, shared)",
    $ZONE, $POST_RPS, $BULK_RPS, $WAIT_RPS, $LOAD0, $LOAD1, first_line('nproc'));
out('');

my $reqs = $wrk{requests} // 0;
out(sprintf "Requests: %d in %.1f s (%.0f/s); latency (long-polls included) p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.0f ms",
    $reqs, $wrk{duration} // 0, $reqs / (($wrk{duration} || 1)), @{ $wrk{lat} // [0, 0, 0, 0, 0] });
out("  sent: " . join(', ', map { "$_ $sent{$_}" } sort keys %sent));
out(sprintf "  socket errors: connect %s, read %s, write %s, timeout %s",
    map { $wrk{$_} // '?' } qw(connect read write timeout));
out("  job states in 200 job answers: " . join(', ', map { "$_ $states{$_}" } sort keys %states));
out(sprintf "  bulk-generate: %d answered 200 with %d jobs", $wrk{bulk_ok} // 0, $wrk{bulk_jobs} // 0);
out('');
out(sprintf "%-8s %10s", 'status', 'requests');
out(sprintf "%-8s %10d", $_, $status{$_}) for sort { $a <=> $b } keys %status;
out(sprintf "%-8s %10d", 'total', sum(0, values %status));
out('');
out(sprintf "5xx: %d intended 503 (Redis down / zone full / unavailable), %d other 5xx", $intended, $other);
out(sprintf "  %6d  %s %s", $_->[2], $_->[0], $_->[1]) for sort { $b->[2] <=> $a->[2] } @fivexx;
out('');

# processes: the master and every worker seen
my @pids = ($idle->{master}, sort { $SEEN_WORKERS{$a} <=> $SEEN_WORKERS{$b} } keys %SEEN_WORKERS);
out(sprintf "%-18s %7s | %-30s | %-36s | %-16s | %s",
    'process', 'pid', 'VmRSS MiB: start  min  max  end', 'growth after warm-up: VmRSS private',
    'fds: start max end', 'fds at the end');
my (@rss_bad, @fd_bad);
sub private { $_[0]{rss} - $_[0]{shmem} }
for my $pid (@pids) {
    my @mine = grep { $_->{procs}{$pid} } @SAMPLES;
    next unless @mine;
    my @rss = map { $_->{procs}{$pid}{rss} } @mine;
    my @fds = map { $_->{procs}{$pid}{fds} } @mine;
    my $first = $mine[0]{procs}{$pid};
    my $last = $end->{procs}{$pid};
    my $b = $base->{procs}{$pid};
    my $is_master = $pid == ($idle->{master} // 0);
    my $name = $is_master ? 'master'
        : sprintf('worker %d%s', $SEEN_WORKERS{$pid} + 1, $pid == $runner_end ? ' (runner)' : '');
    # the verdict's measure: private memory (VmRSS - RssShmem); the zone's
    # pages count in VmRSS as a worker touches them, up to the zone's size
    my $growth = ($b && $last) ? (private($last) - private($b)) / private($b) : undef;
    out(sprintf "%-18s %7d | %16s %5s %5s %5s | %10s %-8s %-8s %7s | %9d %3d %4s | %s",
        $name, $pid, kib($first->{rss}), kib(min @rss), kib(max @rss),
        $last ? kib($last->{rss}) : 'gone', '',
        ($b && $last) ? pct_of($last->{rss}, $b->{rss}) : '-',
        defined $growth ? sprintf('%+.1f%%', 100 * $growth) : '-',
        $b ? sprintf('(%s)', kib(private($b))) : '',
        $first->{fds}, max(@fds), $last ? $last->{fds} : 'gone',
        $last ? join(' ', map { "$_ $last->{fdcat}{$_}" } qw(client flash redis listen other)) : '');
    push @rss_bad, sprintf('%s: private RSS %s', $name, defined $growth ? sprintf('%+.1f%%', 100 * $growth) : 'gone')
        if !$is_master && (!defined $growth || $growth > $RSS_MAX);
    # the runner's idle keep-alive connections to Flash come and go (libcurl's
    # cache): the rest must not grow either, and those stay within the calls
    my $rest = sub { $_[0]{fds} - $_[0]{fdcat}{flash} };
    my $flash_max = max(map { $_->{procs}{$pid}{fdcat}{flash} } @mine);
    if (!$last || $last->{fds} > $first->{fds} + $FD_SLACK) {
        push @fd_bad, "$name: fds $first->{fds} -> " . ($last ? $last->{fds} : 'gone');
    } elsif ($rest->($last) > $rest->($first) + $FD_SLACK) {
        push @fd_bad, sprintf '%s: fds other than to Flash %d -> %d', $name,
            $rest->($first), $rest->($last);
    } elsif ($flash_max > $FLASH_CALLS) {
        push @fd_bad, "$name: $flash_max connections to Flash (at most $FLASH_CALLS calls)";
    }
}
out(sprintf "(start: idle, before the load; after warm-up: the first sample %d s or more into the load (t=%.0f s),",
    $WARMUP, $base->{t});
out(sprintf " its private MiB in brackets; end: idle, %.0f s after the load, once the queue was empty.  private =",
    $drain_secs + 3);
out(sprintf " VmRSS - RssShmem: the zone's pages count in VmRSS as a worker touches them (RssShmem at the end: %s))",
    join(', ', map { kib($end->{procs}{$_}{shmem}) . ' MiB' } grep { $end->{procs}{$_} } @pids));
out(sprintf "Redis: VmRSS %s -> %s MiB, used_memory %s -> %s MiB, %d -> %d keys",
    kib($idle->{redis_rss}), kib($end->{redis_rss}), kib($idle->{redis_mem} / 1024),
    kib($end->{redis_mem} / 1024), $idle->{dbsize}, $end->{dbsize});
out('');

my ($m0, $m1) = ($idle->{metrics}, $end->{metrics});
my %d = map { $_ => ($m1->{$_} // 0) - ($m0->{$_} // 0) }
    qw(jobs_created jobs_completed jobs_failed jobs_retried_status jobs_retried_connection
       jobs_retried_timeout jobs_retried_paused);
out(sprintf "Jobs during the soak (/metrics): created %d, completed %d, failed %d; retried: status %d, connection %d, timeout %d, paused %d",
    @d{qw(jobs_created jobs_completed jobs_failed jobs_retried_status jobs_retried_connection
          jobs_retried_timeout jobs_retried_paused)});
my $unfinished = $d{jobs_created} - $d{jobs_completed} - $d{jobs_failed};
out(sprintf "  left unfinished after the drain: %d (queue %d, processing %d)",
    $unfinished, $end->{queue}, $end->{processing});
out("  Redis job states, before -> after: " . join(', ', map {
    sprintf '%s %d -> %d', $_, $idle->{states}{$_} // 0, $end->{states}{$_} // 0
} sort { $a cmp $b } uniq(keys %{ $idle->{states} }, keys %{ $end->{states} })));
out(sprintf "  Flash stand-in: %s calls for %s jobs, at most %s at once",
    $flash_calls->{total} // '?', scalar(keys %{ $flash_calls->{by_job} // {} }),
    $flash_calls->{max_in_flight} // '?');
out(sprintf "  zone: %s entries, %s of %s pages free at the end",
    $m1->{zone_jobs} // '?', $m1->{zone_pages_free} // '?', $m1->{zone_pages} // '?');
out('');
out("error.log ($OUT/nginx/logs/error.log): "
    . join(', ', map { "[$_] " . ($level{$_} // 0) } qw(emerg alert crit error warn notice)));
out(sprintf "  %6d  %s", $msgs{$_}, substr($_, 0, 150))
    for (sort { $msgs{$b} <=> $msgs{$a} } keys %msgs)[0 .. min(9, scalar(keys %msgs) - 1)];
out("  nginx stopped " . ($graceful ? 'gracefully (QUIT)' : 'only after TERM/KILL'));
out('');

# timeline
out(sprintf "%6s %-5s %s | %8s %9s %6s %6s %6s | %s", 't (s)', 'phase',
    join(' ', map { sprintf '%-14s', "w$_ MiB/fds" } 1 .. scalar(keys %SEEN_WORKERS)),
    'created', 'completed', 'failed', 'queue', 'proc', 'load');
for my $s (@SAMPLES) {
    out(sprintf "%6.0f %-5s %s | %8s %9s %6s %6d %6d | %s", $s->{t}, $s->{phase},
        join(' ', map {
            my $p = $s->{procs}{$_};
            sprintf '%-14s', $p ? sprintf('%.1f/%d', $p->{rss} / 1024, $p->{fds}) : '-'
        } sort { $SEEN_WORKERS{$a} <=> $SEEN_WORKERS{$b} } keys %SEEN_WORKERS),
        map({ $s->{metrics}{$_} // '?' } qw(jobs_created jobs_completed jobs_failed)),
        $s->{queue}, $s->{processing}, $s->{load});
}
out('');

# verdict
my @why;
push @why, "$other non-503 5xx" if $other;
push @why, "wrk failed (exit " . (($wrk_rc // 0) >> 8) . ")" if ($wrk_rc // 0) || !defined $wrk{requests};
push @why, "a worker's private RSS grew more than " . 100 * $RSS_MAX . "% after the warm-up (" . join('; ', @rss_bad) . ")" if @rss_bad;
push @why, "fds grew by more than $FD_SLACK (" . join('; ', @fd_bad) . ")" if @fd_bad;
push @why, "a worker died (" . scalar(@crashed) . " 'exited on signal')" if @crashed;
push @why, "$bad_log [emerg]/[alert]/[crit] in error.log" if $bad_log;
push @why, "$unfinished jobs never finished" if $unfinished || !$drained;
my $pass = !@why;
out(sprintf "VERDICT: %s: %d non-503 5xx (%d intended 503), worker private RSS growth after warm-up ≤ %d%%: %s, "
    . "fds end ≤ start + %d (with and without Flash keep-alives): %s, no worker crash / [alert]/[crit]/[emerg]: %s, all jobs finished: %s",
    $pass ? 'PASS' : 'FAIL', $other, $intended, 100 * $RSS_MAX, @rss_bad ? 'no' : 'yes',
    $FD_SLACK, @fd_bad ? 'no' : 'yes', (@crashed || $bad_log) ? 'no' : 'yes',
    ($unfinished || !$drained) ? 'no' : 'yes');
out("  FAIL: $_") for @why;

my $report = join("\n", @R) . "\n";
print "\n$report";
spew("$OUT/report.txt", $report);
say_("report in $OUT/report.txt, wrk's output in $wrk_out");

###########################################################################
# the chart: the data files first, then gnuplot (t/soak/soak.gp); a chart
# that fails to draw only warns

{
    my $runner = $end->{metrics}{runner_pid} || $CHART[-1]{runner};
    my $n = 0;
    my @blocks;
    for my $pid (sort { $CHART_PROCS{$a} <=> $CHART_PROCS{$b} } keys %CHART_PROCS) {
        my $name = $pid == ($idle->{master} // 0) ? 'master'
                 : sprintf('worker %d%s', ++$n, $pid == $runner ? ' (runner)' : '');
        push @blocks, qq("$name"\n) . join '', map {
            my $p = $_->{procs}{$pid};
            sprintf "%.1f %.2f %.2f %d\n", $_->{t}, $p->{rss} / 1024, $p->{private} / 1024,
                $p->{fds}
        } grep { $_->{procs}{$pid} } @CHART;
    }
    my $fmt = sub { my ($f, $v) = @_; defined $v ? sprintf($f, $v) : '-' };
    my $procs = "$OUT/soak-procs.dat";
    my $series = "$OUT/soak-series.dat";
    my $svg = "$OUT/soak.svg";
    spew($procs, "# t_s VmRSS_MiB private_MiB fds, one block a process (t/soak/soak.gp)\n"
         . join("\n\n", @blocks));
    spew($series, "t_s\tget_p50_ms\tget_max_ms\tflash_mean_s\tqueued\tclaimed\tin_flight\n"
         . join '', map {
             join("\t", sprintf('%.1f', $_->{t}), $fmt->('%.2f', $_->{p50}),
                  $fmt->('%.2f', $_->{max}), $fmt->('%.3f', $_->{flash}),
                  map { $_ // '-' } @$_{qw(queue processing in_flight)}) . "\n"
         } @CHART);
    my $commit = first_line('git', '-C', $REPO, 'rev-parse', '--short', 'HEAD');
    my $cpu = first_line('sh', '-c', "sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1");
    my $sub = sprintf '%s, ./build.sh soak %s, %s CPU (%s, shared), commit %s',
        strftime('%Y-%m-%d %H:%M UTC', gmtime($T0)), $MINUTES, first_line('nproc'), $cpu,
        $commit;
    my $sub2 = sprintf 'wrk -c%d: POST %s/s, bulk %s/s, long-poll %s/s, the rest GETs; '
        . 'zone %s; Flash stand-in 0.5-2 s a call, ~15%% of jobs flaky',
        $CONNS, $POST_RPS, $BULK_RPS, $WAIT_RPS, $ZONE;
    if (Clockchain::Chart::plot("$REPO/t/soak/soak.gp", $svg, procs => $procs,
                                series => $series, loadend => sprintf('%.1f', $load_secs),
                                subtitle => Clockchain::Chart::gp_text($sub),
                                subtitle2 => Clockchain::Chart::gp_text($sub2))) {
        say_("chart in $svg (data in $procs, $series)");
        if ($ENV{CHARTS_TO_DOCS}) {
            say_("copied to $_") for Clockchain::Chart::to_docs($svg, $procs, $series);
        }
    }
}
exit($pass ? 0 : 1);

sub uniq { my %s; grep { !$s{$_}++ } @_ }

sub first_line {
    my (@cmd) = @_;
    open my $fh, '-|', @cmd or return '?';
    my $l = <$fh> // '?';
    close $fh;
    chomp $l;
    return $l;
}
