#!/usr/bin/perl
#
# ./build.sh chaos [MINUTES] [SEED]: a fleet under random, overlapping
# faults, and a checker of invariants over the whole history
# (docs/hardening.md, "Chaos").  Not part of ./build.sh test.
#
#   CLOCKCHAIN_MODULE=build/ngx_http_clockchain_module.so \
#       perl -I t/lib t/chaos/chaos.pl [minutes] [seed]
#
# The fleet: three nginx with the module (each one's workers run as their
# own unprivileged user, so that a partition can cut one nginx off from
# Redis with an iptables owner match), a Redis primary with a replica and
# three Sentinels, configured as docs/operations.md says to lose no
# acknowledged job (appendfsync always on both, wait=1 waitaof=on on a
# Redis with WAITAOF: CLOCKCHAIN_WAITAOF_SERVER, which build.sh finds; on
# Debian 12, Valkey 8 from backports; without one, wait=1 alone), and the Flash
# stand-in.  Clients create jobs (generate, bulk, with and without
# Idempotency-Key, retried as a careful client retries), poll, long-poll,
# read and publish moments, at a steady rate, and record every request
# and answer.  The faults come from a schedule drawn from the seed (the
# same seed, the same schedule): see @KINDS.  When the faults stop, every
# fault is undone, the acknowledged jobs are given time to finish, and
# t/chaos/check.pl reads the history and Redis and lists every breach.
#
# Environment: CHAOS_DIR (build/chaos) keeps the history, the logs and
# the report; CHAOS_CLIENTS (6) client processes; CHAOS_SETTLE (120) the
# most seconds the jobs get to finish once the faults stop; CHAOS_KINDS
# (all) a comma list of the fault kinds to draw from.
#
# Exit status: 0 with no breach, 1 with a breach, 2 when the harness
# itself could not run.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin";

use Clockchain::Test;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use JSON::PP;
use List::Util qw(max min sum);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use ChaosCheck;

$| = 1;

my $MINUTES = shift // 2;
my $SEED    = shift // int(rand(2**31));
die "usage: $0 [minutes] [seed]\n"
    unless $MINUTES =~ /^\d+(\.\d+)?$/ && $MINUTES > 0
           && $SEED =~ /^\d+$/ && !@ARGV;

my $DURATION = int($MINUTES * 60 + 0.5);
my $CLIENTS  = $ENV{CHAOS_CLIENTS} // 6;
my $SETTLE   = $ENV{CHAOS_SETTLE} // 120;
my $MODULE   = abs_path(module_path()) // module_path();
my $OUT      = $ENV{CHAOS_DIR} // dirname($MODULE) . '/chaos';
my $KEY      = 'chaos-service-key';
my $ADMIN    = 'chaos-admin-key';
my $FLASH_KEY = 'chaos-flash-key';
my $LEASE    = 3;                           # clockchain_job_lease, s
my $P        = 'clockchain:{cc}:v1:';
my $JSON     = JSON::PP->new->utf8->canonical;
my $T0       = time;
my $MAIN     = $$;

die "module not found: $MODULE (./build.sh builds it)\n" unless -f $MODULE;
die "the chaos harness runs as root (users, iptables)\n" unless $> == 0;

sub say_ { printf STDERR "[chaos %6.1fs] %s\n", time - $T0, join '', @_ }

remove_tree($OUT);
make_path("$OUT/history");

###########################################################################
# The schedule: drawn from the seed alone, before anything runs

# kind => [weight, shortest, longest seconds, what it targets]
my %KINDS = (
    worker_kill   => [ 3, 0,  0, 'nginx' ],   # kill -9 a worker
    runner_kill   => [ 3, 0,  0, 'nginx' ],   # kill -9 the runner worker
    reload        => [ 2, 0,  0, 'nginx' ],   # nginx -s reload
    nginx_stop    => [ 2, 3,  8, 'nginx' ],   # a whole nginx down, then up
    sigstop       => [ 2, $LEASE + 1, $LEASE + 4, 'nginx' ],  # past the lease
    partition     => [ 2, 2,  8, 'nginx' ],   # one nginx cut off from Redis
    redis_restart => [ 1, 0,  0, 'redis' ],   # the primary restarted
    failover      => [ 1, 0,  0, 'redis' ],   # the primary killed
    redis_oom     => [ 1, 2,  6, 'redis' ],   # maxmemory below what it holds
    # the subscribers cut off, as Redis does to a pub/sub client whose
    # output buffer passes client-output-buffer-limit: events are lost
    pubsub_drop   => [ 1, 2,  6, 'redis' ],
    flash_hang    => [ 1, 2,  8, 'flash' ],
    flash_fail    => [ 2, 2,  8, 'flash' ],   # 500s and 429s
    flash_garbage => [ 1, 2,  6, 'flash' ],
);

sub schedule {
    my ($seed, $duration) = @_;
    srand($seed);
    # CHAOS_KINDS (a comma list) narrows the kinds drawn: the proof runs
    # of the planted bugs take the faults that make each one show
    my %only = map { $_ => 1 } split /,/, $ENV{CHAOS_KINDS} // '';
    my @kinds = grep { !%only || $only{$_} } sort keys %KINDS;
    die "CHAOS_KINDS: no such kind in @{[ join ' ', sort keys %KINDS ]}\n"
        unless @kinds;
    my $total = sum map { $KINDS{$_}[0] } @kinds;
    my (@plan, %busy);
    my $t = 5;
    while (1) {
        $t += 1 + rand(5);
        last if $t > $duration - 5;
        my $r = rand($total);
        my $kind;
        for (@kinds) {
            $r -= $KINDS{$_}[0];
            if ($r < 0) { $kind = $_; last }
        }
        $kind //= $kinds[-1];
        my ($w, $lo, $hi, $on) = @{ $KINDS{$kind} };
        my $len = $lo + rand($hi - $lo);
        my $target = $on eq 'nginx' ? int(rand(3)) : 0;
        # one fault at a time on Redis and on Flash, and on each nginx
        # one that takes it down: the faults still overlap across parts
        my $res = $on eq 'nginx' ? "nginx$target" : $on;
        next if ($busy{$res} // 0) > $t;
        $busy{$res} = $t + $len + ($kind eq 'failover' ? 20 : 2);
        push @plan, { at => sprintf('%.2f', $t), kind => $kind,
                      target => $target, len => sprintf('%.2f', $len) };
    }
    return @plan;
}

my @PLAN = schedule($SEED, $DURATION);
open my $pf, '>', "$OUT/schedule.json" or die;
print {$pf} JSON::PP->new->canonical->pretty->encode(
    { seed => $SEED, minutes => $MINUTES, faults => \@PLAN });
close $pf;
say_("seed $SEED, $MINUTES min, ", scalar(@PLAN), " faults scheduled");

###########################################################################
# The fleet

for my $n (1 .. 3) {
    next if getpwnam("ccchaos$n");
    system('useradd', '--system', '--no-create-home', '--shell',
           '/usr/sbin/nologin', "ccchaos$n") == 0
        or die "useradd ccchaos$n failed\n";
}

my $IPTABLES = -x '/usr/sbin/iptables'
               && system('/usr/sbin/iptables -L OUTPUT -n >/dev/null 2>&1') == 0;
say_("iptables not usable: partitions are skipped") unless $IPTABLES;

# WAIT says a replica received a write, WAITAOF that it is on its disk:
# the fixed seed's hour lost 4 jobs with WAIT alone (docs/hardening.md)
my $SERVER = $ENV{CLOCKCHAIN_WAITAOF_SERVER};
my @SERVER = $SERVER ? (server => $SERVER) : ();
my $WAITAOF = $SERVER ? ' waitaof=on' : '';
say_($SERVER ? "Redis with WAITAOF: $SERVER, wait=1 waitaof=on"
             : "no Redis with WAITAOF: wait=1 alone (CLOCKCHAIN_WAITAOF_SERVER)");

my @redis = (start_redis(@SERVER, args => [ '--appendfsync', 'always' ]));
push @redis, start_redis(@SERVER, args => [ '--appendfsync', 'always',
                                   '--replicaof', '127.0.0.1', $redis[0]->port ]);
wait_for(15, sub {
    ($redis[1]->cmd('INFO', 'replication') // '') =~ /master_link_status:up/
}) or die "the replica does not follow the primary\n";

my @sentinels = map {
    Clockchain::Test::start_sentinel("sentinel monitor cc 127.0.0.1 " . $redis[0]->port . " 2\n"
                   . "sentinel down-after-milliseconds cc 1000\n"
                   . "sentinel failover-timeout cc 5000\n"
                   . "sentinel parallel-syncs cc 1\n", @SERVER)
} 1 .. 3;

sub sentinel_master {
    for my $s (@sentinels) {
        my $out = `redis-cli -h 127.0.0.1 -p $s->{port} SENTINEL get-master-addr-by-name cc 2>/dev/null`;
        return $1 if $out =~ /^\d+\.\d+\.\d+\.\d+\n(\d+)/;
    }
    return undef;
}

# the primary as the sentinels name it, as a handle that reconnects: the
# sentinels close every client connection when they fail over
sub primary {
    my $port = sentinel_master();
    my ($r) = defined $port ? grep { $_->port == $port } @redis : ();
    return ChaosCheck::Redis->new($r // $redis[0]);
}

wait_for(20, sub {
    my $ok = 0;
    for my $s (@sentinels) {
        my $o = `redis-cli -h 127.0.0.1 -p $s->{port} SENTINEL sentinels cc 2>/dev/null`;
        $ok++ if ($o =~ tr/\n//) >= 10;
    }
    return $ok == 3;
}) or die "the sentinels do not know each other\n";

my $flash = start_flash(delay => 0.3, key => $FLASH_KEY);
my $sentinel_list = join ',', map { "127.0.0.1:$_->{port}" } @sentinels;
my $redis_ports = join ',', (map { $_->port } @redis),
                            (map { $_->{port} } @sentinels);

my @nginx;
for my $n (0 .. 2) {
    push @nginx, start_nginx(user => "ccchaos" . ($n + 1), conf => <<"CONF");
    clockchain_zone cc:4m;
    clockchain_redis sentinel=$sentinel_list master=cc wait=1$WAITAOF timeout=2s;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key $FLASH_KEY;
    clockchain_flash_timeout 5s;
    clockchain_job_lease ${LEASE}s;
    clockchain_drain_timeout 1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        clockchain_service_key $KEY;
        clockchain_admin_key $ADMIN;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location /api/moments/        { clockchain_moments; }
        location = /metrics           { clockchain_metrics; }
    }
CONF
}
my @PORTS = map { $_->port } @nginx;
$T0 = time;     # the run (clients, the fault clock) starts now
say_("fleet up: nginx on ", join(' ', @PORTS), ", redis ",
     join(' ', map { $_->port } @redis), ", sentinels ",
     join(' ', map { $_->{port} } @sentinels));

###########################################################################
# Clients: each a process with its own seeded choices, writing one JSON
# line per request to history/<client>.jsonl

sub client {
    my ($c) = @_;
    srand($SEED * 101 + $c);
    my $ua = HTTP::Tiny->new(timeout => 8, keep_alive => 1);
    open my $h, '>', "$OUT/history/$c.jsonl" or die;
    select((select($h), $| = 1)[0]);
    my (@jobs, %done);
    my $seq = 0;
    my $end = $T0 + $DURATION;

    my $req = sub {
        my ($op, $n, $method, $path, $body, %hdr) = @_;
        my $t0 = time;
        my $res = $ua->request($method, "http://127.0.0.1:$PORTS[$n]$path", {
            headers => { 'X-Service-Key' => $KEY,
                         ($body ? ('Content-Type' => 'application/json') : ()),
                         %hdr },
            ($body ? (content => $JSON->encode($body)) : ()),
        });
        my $rec = { c => $c, i => ++$seq, op => $op, n => $n,
                    t0 => sprintf('%.4f', $t0), t1 => sprintf('%.4f', time),
                    st => $res->{status} + 0, path => $path };
        $rec->{key} = $hdr{'Idempotency-Key'} if $hdr{'Idempotency-Key'};
        $rec->{req} = $body if $body;
        my $b = eval { JSON::PP->new->utf8->decode($res->{content} // '') };
        $rec->{body} = $b if ref $b;
        # a moment's answer lists its edges, thousands after an hour (49 KB
        # a line, 95 % of the history, minutes of parsing for the checker,
        # which reads none of it): its path, visibility and how many edges
        $rec->{body} = { path => $b->{path}, visibility => $b->{visibility},
                         edges => scalar @{ $b->{edges} // [] } }
            if $op eq 'moment' && ref $b eq 'HASH' && ref $b->{edges} eq 'ARRAY';
        $rec->{raw} = substr($res->{content} // '', 0, 200)
            if !ref $b && $res->{status} >= 599;
        print {$h} $JSON->encode($rec), "\n";
        return ($res, $b);
    };

    my $create = sub {
        my ($bulk) = @_;
        my $key = rand() < 0.5 ? "c$c-" . ($seq + 1) . "-$SEED" : undef;
        my @q = map {
            my $mode = rand();
            my $tok = $mode < 0.08 ? ',500' : $mode < 0.14 ? ',429'
                    : $mode < 0.17 ? ',422' : $mode < 0.20 ? ',garbage' : '';
            { query => sprintf('chaos c%d q%d %s [flash:delay=%.1f%s]',
                               $c, $seq + 1, $_, rand(2), $tok),
              visibility => rand() < 0.5 ? 'public' : 'private' }
        } 1 .. ($bulk ? 2 + int(rand(3)) : 1);
        # a careful client: with a key it retries a lost or refused
        # answer with the same key, without one it does not
        for my $try (1 .. ($key ? 4 : 1)) {
            my $n = int(rand(3));
            my ($res, $b) = $bulk
                ? $req->('bulk', $n, 'POST', '/api/bulk-generate',
                         { queries => \@q }, 'X-Admin-Key' => $ADMIN,
                         ($key ? ('Idempotency-Key' => $key) : ()))
                : $req->('generate', $n, 'POST', '/api/generate', $q[0],
                         ($key ? ('Idempotency-Key' => $key) : ()));
            if ($res->{status} == 200) {
                push @jobs, map { $_->{job_id} } ref $b eq 'ARRAY' ? @$b : ($b);
                return;
            }
            last if $res->{status} >= 400 && $res->{status} < 500;
            sleep(0.2 * $try);
        }
    };

    while (time < $end) {
        my $r = rand();
        my @open = grep { !$done{$_} } @jobs;
        if ($r < 0.25 || !@jobs) {
            $create->(0);
        } elsif ($r < 0.30) {
            $create->(1);
        } elsif ($r < 0.60) {
            my $id = @open && rand() < 0.8 ? $open[rand @open] : $jobs[rand @jobs];
            my ($res, $b) = $req->('poll', int(rand(3)), 'GET', "/api/jobs/$id");
            $done{$id} = $b->{path} // 1
                if ref $b eq 'HASH' && ($b->{status} // '') =~ /^(completed|failed)$/;
        } elsif ($r < 0.75) {
            next unless @open;
            my $id = $open[rand @open];
            my ($res, $b) = $req->('longpoll', int(rand(3)), 'GET', "/api/jobs/$id?wait=3");
            $done{$id} = $b->{path} // 1
                if ref $b eq 'HASH' && ($b->{status} // '') =~ /^(completed|failed)$/;
        } else {
            my @paths = grep { length > 1 } values %done;
            next unless @paths;
            my $path = $paths[rand @paths];
            if ($r < 0.92) {
                $req->('moment', int(rand(3)), 'GET', "/api/moments$path");
            } else {
                $req->('publish', int(rand(3)), 'POST', "/api/moments$path/publish", {});
            }
        }
        sleep(0.02 + rand(0.1));
    }
    close $h;
}

my @kids;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = 'DEFAULT';
        eval { client($c) };
        warn "client $c: $@" if $@;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}

###########################################################################
# The faults, as scheduled; each one logged with when it began and ended

my (@log, @active);

sub iptables {
    my ($op, $n) = @_;
    my $uid = getpwnam("ccchaos" . ($n + 1));
    system('/usr/sbin/iptables', $op, 'OUTPUT', '-o', 'lo', '-p', 'tcp',
           '-m', 'multiport', '--dports', $redis_ports,
           '-m', 'owner', '--uid-owner', $uid, '-j', 'DROP') == 0;
}

# the port a server replicates, or undef for a primary
sub replica_of {
    my ($r) = @_;
    my $info = eval { ChaosCheck::Redis->new($r)->cmd('INFO', 'replication') } // '';
    return $info =~ /role:slave.*?master_port:(\d+)/s ? $1 : undef;
}

# a server started again as what it was: deployed, the sentinels write
# its role into its config file (CONFIG REWRITE); here its command line
# says it, or it would come back a replica of its own replica
sub restart_redis {
    my ($r, $master) = @_;
    $r->{opt}{args} = [ '--appendfsync', 'always',
                        ($master ? ('--replicaof', '127.0.0.1', $master) : ()) ];
    # a restart, as systemd's: SHUTDOWN, asked again while Redis refuses
    # ("Writing initial AOF, can't exit": a replica, or one just promoted,
    # whose first AOF after a full sync is not written yet), for a minute
    # before anything harder.  Killed in that window, such a Redis comes
    # back without the writes since the sync (a failover's kill -9 is the
    # other fault kind, failover)
    if ($r->running) {
        wait_for(60, sub {
            eval { $r->cmd('SHUTDOWN') };
            sleep(0.5);
            !$r->running;
        });
    }
    $r->stop if $r->running;
    $r->start;
}

sub runner_pid {
    my ($ng) = @_;
    my $res = HTTP::Tiny->new(timeout => 2)->get($ng->url('/metrics'),
                                                 { headers => { Accept => 'application/json' } });
    my $m = eval { decode_json($res->{content}) } // {};
    return $m->{runner_pid} || undef;
}

sub apply {
    my ($f) = @_;
    my $ng = $nginx[ $f->{target} ];
    my $k = $f->{kind};
    my $up = $ng->running;
    if ($k eq 'worker_kill' || $k eq 'runner_kill') {
        return 'nginx down' unless $up;
        my $runner = runner_pid($ng);
        my @w = $ng->worker_pids;
        my @pick = $k eq 'runner_kill' ? grep { $_ == ($runner // 0) } @w
                                       : grep { $_ != ($runner // 0) } @w;
        return 'no such worker' unless @pick;
        kill 'KILL', $pick[0];
        return "killed $pick[0]";
    }
    if ($k eq 'reload') {
        return 'nginx down' unless $up;
        kill 'HUP', $ng->master_pid;
        return 'HUP';
    }
    if ($k eq 'nginx_stop') {
        return 'nginx down' unless $up;
        $ng->stop(quick => 1);
        return 'stopped';
    }
    if ($k eq 'sigstop') {
        return 'nginx down' unless $up;
        my $pid = runner_pid($ng) // return 'no runner';
        kill 'STOP', $pid;
        $f->{pid} = $pid;
        return "stopped $pid";
    }
    if ($k eq 'partition') {
        return 'no iptables' unless $IPTABLES;
        iptables('-A', $f->{target}) or return 'iptables failed';
        $f->{rule} = 1;
        return 'DROP';
    }
    if ($k eq 'redis_restart') {
        my $r = primary()->{r};
        restart_redis($r, replica_of($r));
        return 'restarted ' . $r->port;
    }
    if ($k eq 'failover') {
        my $r = primary()->{r};
        kill 'KILL', $r->pid;
        waitpid($r->pid, 0);
        $f->{killed} = $r;
        return 'killed ' . $r->port;
    }
    if ($k eq 'redis_oom') {
        my $r = primary();
        my ($used) = ($r->cmd('INFO', 'memory') // '') =~ /used_memory:(\d+)/;
        $r->cmd('CONFIG', 'SET', 'maxmemory', int(($used // 1e6) * 0.9));
        $f->{redis} = $r;
        return 'maxmemory ' . int(($used // 1e6) * 0.9);
    }
    if ($k eq 'pubsub_drop') {
        my $r = primary();
        $r->cmd('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 1 1 0');
        cut_subscribers($r);
        $f->{redis} = $r;
        return 'pubsub limit 1 byte';
    }
    if ($k =~ /^flash_(\w+)$/) {
        my $mode = { hang => 'hang', fail => '500', garbage => 'garbage' }->{$1};
        $flash->mode(default => $mode);
        return "flash $mode";
    }
    return 'unknown';
}

# a fault that lasts by being repeated, every turn of the loop while it is on
sub tick {
    my ($f) = @_;
    if ($f->{kind} eq 'pubsub_drop' && $f->{redis}) {
        # a slow subscriber is cut off again each time it comes back and a
        # message finds it behind: here, each turn.  The limit alone cuts
        # nobody: small messages fit in the client's own 16 KB buffer, which
        # Redis does not count against client-output-buffer-limit
        eval { cut_subscribers($f->{redis}) };
    }
}

# the module's subscribers, not the Sentinels' own (their "hello" channel):
# a Sentinel cut off from the primary every turn calls it down and fails
# it over, a fault of another kind
sub cut_subscribers {
    my ($r) = @_;
    for (split /\n/, $r->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub') // '') {
        my ($id) = /\bid=(\d+)/ or next;
        next if /\bname=sentinel-/;
        $r->cmd('CLIENT', 'KILL', 'ID', $id);
    }
}

sub undo {
    my ($f) = @_;
    my $ng = $nginx[ $f->{target} ];
    my $k = $f->{kind};
    if ($k eq 'nginx_stop') {
        $ng->start unless $ng->running;
    } elsif ($k eq 'sigstop') {
        kill 'CONT', $f->{pid} if $f->{pid};
    } elsif ($k eq 'partition') {
        iptables('-D', $f->{target}) if $f->{rule};
    } elsif ($k eq 'failover') {
        my $r = $f->{killed} or return;
        # back only once the sentinels promoted the replica: back earlier,
        # it would be a primary again with the other's writes missing
        my $port = $r->port;
        wait_for(30, sub { (sentinel_master() // $port) != $port });
        my $now = sentinel_master();
        restart_redis($r, $now && $now != $port ? $now : undef);
    } elsif ($k eq 'pubsub_drop') {
        $f->{redis}->cmd('CONFIG', 'SET', 'client-output-buffer-limit',
                         'pubsub 33554432 8388608 60') if $f->{redis};
    } elsif ($k eq 'redis_oom') {
        $f->{redis}->cmd('CONFIG', 'SET', 'maxmemory', 0) if $f->{redis};
    } elsif ($k =~ /^flash_/) {
        $flash->mode(default => undef);
    }
}

my @queue = map { { %$_ } } @PLAN;
my $end = $T0 + $DURATION;
while (time < $end) {
    my $now = time - $T0;
    for my $f (grep { !$_->{undone} && $_->{began} && $now >= $_->{at} + $_->{len} } @active) {
        eval { undo($f) };
        $f->{undone} = sprintf '%.2f', time - $T0;
        $f->{undo_error} = "$@" if $@;
        say_("undo $f->{kind} #$f->{target}");
    }
    @active = grep { !$_->{undone} } @active;
    tick($_) for @active;
    while (@queue && $queue[0]{at} <= $now) {
        my $f = shift @queue;
        $f->{began} = sprintf '%.2f', time - $T0;
        $f->{result} = eval { apply($f) } // "error: $@";
        say_("$f->{kind} #$f->{target}: $f->{result}");
        push @log, $f;
        push @active, $f;
    }
    sleep(0.1);
}

# the faults stop: everything undone, now
for my $f (@active) {
    eval { undo($f) };
    $f->{undone} = sprintf '%.2f', time - $T0;
}
my $QUIET = time - $T0;
say_("faults stopped; waiting for the clients");
waitpid($_, 0) for @kids;

###########################################################################
# Settle: the acknowledged jobs finish (Flash well again), then the
# checker reads the history and Redis

$flash->mode(default => undef);
for my $ng (@nginx) {
    $ng->start unless $ng->running;
}

my $history = ChaosCheck::load_history("$OUT/history");
my @acked = ChaosCheck::acknowledged($history);
say_(scalar(@acked), " jobs acknowledged; waiting up to $SETTLE s for them to finish");
my $settled = wait_for($SETTLE, sub {
    my $r = primary();
    my $left = 0;
    for my $id (@acked) {
        my $st = $r->cmd('HGET', $P . "job:$id", 'status') // '';
        $left++ unless $st eq 'completed' || $st eq 'failed';
    }
    return $left == 0;
});
say_($settled ? 'every acknowledged job finished' : 'some jobs never finished');

# each nginx's answers after the faults: the zone must agree with Redis
my $agree = ChaosCheck::probe_fleet(\@nginx, \@acked, $KEY);

my $report = ChaosCheck::check(
    history => $history,
    redis   => primary(),
    flash   => $flash->calls,
    probes  => $agree,
    prefix  => $P,
    faults  => [ map { my %f = %$_; delete @f{qw(killed redis)}; \%f } @log ],
    quiet   => $QUIET,
    start   => $T0,
);
$report->{seed} = $SEED;
$report->{settled} = $settled ? JSON::PP::true : JSON::PP::false;
$report->{minutes} = $MINUTES;
# what the fleet ran on: the server's version line, and the module's setting
my $server_version = `${\ ($SERVER // '/usr/bin/redis-server') } --version` // '';
$report->{redis} = ($server_version =~ s/\s+sha=.*//sr) . ", wait=1$WAITAOF";

open my $rf, '>', "$OUT/report.json" or die;
print {$rf} JSON::PP->new->canonical->pretty->encode($report);
close $rf;
my $text = ChaosCheck::report_text($report);
open my $tf, '>', "$OUT/report.txt" or die;
print {$tf} $text;
close $tf;
print $text;

# what the servers said, for the breaches' post-mortem
for my $i (0 .. $#nginx) {
    ChaosCheck::spew("$OUT/nginx$i.error.log", $nginx[$i]->error_log);
}
for my $i (0 .. $#redis) {
    ChaosCheck::spew("$OUT/redis$i.log", ChaosCheck::slurp("$redis[$i]{dir}/redis.log"));
}
for my $i (0 .. $#sentinels) {
    ChaosCheck::spew("$OUT/sentinel$i.log", ChaosCheck::slurp("$sentinels[$i]{dir}/log"));
}

for my $ng (@nginx) {
    my @bad = grep { /\[(alert|emerg)\]/ } split /\n/, $ng->error_log;
    # a worker killed by the harness is an [alert] of its master: expected
    @bad = grep { !/exited on signal 9/ } @bad;
    print "nginx $ng->{n}: $_\n" for @bad[0 .. min(9, $#bad)];
}

exit(@{ $report->{breaches} } ? 1 : 0);
