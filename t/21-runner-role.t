# One runner per nginx, chosen by a lease in the shared zone: it moves to
# another worker when its holder is killed, hangs (SIGSTOP) or leaves on
# reload; a holder that wakes up after losing it stops claiming, and its
# late outcome is refused. Several nginx on one Redis call Flash once per
# job. Backpressure answers 429.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0.3, key => 'fk');

my $RUNNER = <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_timeout 10s;
    clockchain_job_lease 2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /metrics { clockchain_metrics; }
    }
CONF

# the pids that took the runner role, in order, from error.log
sub holders {
    my ($ng) = @_;
    return $ng->error_log =~ /(\d+)#\d+: clockchain: this worker runs jobs now/g;
}

sub new_holder {
    my ($ng, $old, $secs) = @_;
    my $pid;
    my $t0 = time;
    wait_for($secs, sub {
        my @h = holders($ng);
        $pid = $h[-1] if @h && $h[-1] != $old;
        return defined $pid;
    });
    return ($pid, time - $t0);
}

sub completes {
    my ($ng, $query, $name) = @_;
    my $j = created_ok(generate($ng, { query => $query }), "$name: create");
    my $done = $j ? wait_job($ng, $j->{job_id}, 15) : undef;
    is($done && $done->{status}, 'completed', "$name: completed");
    return $j;
}

my $ng = start_nginx(redis => $redis, conf => $RUNNER);

ok(wait_for(5, sub { holders($ng) >= 1 }), 'a worker takes the runner role');
my @h = holders($ng);
is(scalar @h, 1, 'exactly one worker took it');
my %workers = map { $_ => 1 } $ng->worker_pids;
ok($workers{ $h[0] }, 'the holder is a worker of this nginx');
completes($ng, 'role probe one', 'first holder');

# ---------------------------------------------------------------------------
# kill -9 the holder: another worker (or its respawned successor) takes over

kill 'KILL', $h[0];
my ($pid, $secs) = new_holder($ng, $h[0], 10);
ok($pid, sprintf 'after kill -9 a new holder took over (%.2f s)', $secs);
# event: the new holder's "this worker runs jobs now", with nothing done
# since the kill but waiting for it
ok($pid, 'the takeover needs no operator');
completes($ng, 'role probe two', 'after kill -9');
# the master reports the killed worker: that [alert] is expected, not a bug
my $log_before = $ng->error_log;

# ---------------------------------------------------------------------------
# SIGSTOP the holder with a job in flight: the lease moves, the job's lease
# expires and another runner completes it; the old holder, resumed, finds it
# lost the role and its late outcome is refused

$flash->reset;
my $holder = (holders($ng))[-1];
my $slow = created_ok(generate($ng, { query => 'stop probe [flash:delay=1]' }),
                      'sigstop: create a 1 s job');
ok(wait_for(5, sub {
    $redis->hash($JOB_PREFIX . $slow->{job_id})->{status} eq 'processing'
}), 'sigstop: the job is processing');
stop_processes($holder);
($pid, $secs) = new_holder($ng, $holder, 10);
ok($pid, sprintf 'sigstop: another worker took the role (%.2f s)', $secs);
ok(wait_for(15, sub {
    ($redis->hash($JOB_PREFIX . $slow->{job_id})->{status} // '') eq 'completed'
}), 'sigstop: the job completed on the new holder');
my $h1 = $redis->hash($JOB_PREFIX . $slow->{job_id});
is($h1->{stalls}, 1, 'sigstop: one stall recorded');
is((json_body(http(GET => $ng->url('/metrics'))) // {})->{jobs_stalled}, 1,
   'sigstop: /metrics counts the expired lease');
kill 'CONT', $holder;
ok(wait_for(5, sub {
    $ng->error_log =~ /$holder#\d+: clockchain: this worker lost the runner role/
}), 'sigcont: the old holder noticed it lost the role');
ok(wait_for(5, sub {
    $ng->error_log =~ /$holder#\d+: clockchain: the outcome of job \Q$slow->{job_id}\E was refused/
}), "sigcont: the old holder's late outcome was refused (fencing)");
my $h2 = $redis->hash($JOB_PREFIX . $slow->{job_id});
is($h2->{path}, $h1->{path}, 'sigcont: one outcome, unchanged');
is($h2->{completed_at}, $h1->{completed_at}, 'sigcont: completed_at unchanged');

# ---------------------------------------------------------------------------
# reload: the leaving holder releases the role, a new worker claims at once

$holder = (holders($ng))[-1];
$ng->reload;
($pid, $secs) = new_holder($ng, $holder, 10);
ok($pid, sprintf 'reload: a new worker holds the role (%.2f s)', $secs);
my %new = map { $_ => 1 } $ng->worker_pids;
ok($new{$pid}, 'reload: the holder is one of the new workers');
completes($ng, 'role probe three', 'after reload');

# ---------------------------------------------------------------------------
# two nginx on one Redis: every job runs once

$flash->reset;
my $ng2 = start_nginx(redis => $redis, conf => $RUNNER);
my @jobs;
for my $i (1 .. 40) {
    my $res = generate($i % 2 ? $ng : $ng2, { query => "fleet probe $i" });
    push @jobs, json_body($res)->{job_id} if $res->{status} == 200;
}
is(scalar @jobs, 40, 'fleet: 40 jobs created on two nginx');
ok(wait_for(30, sub {
    !grep { ($redis->hash($JOB_PREFIX . $_)->{status} // '') ne 'completed' }
        @jobs
}), 'fleet: all 40 completed');
my $calls = $flash->calls;
is_deeply([ map { $calls->{by_job}{$_} // 0 } @jobs ], [ (1) x 40 ],
          'fleet: Flash was called exactly once per job');
my @holders2 = holders($ng2);
ok(@holders2 >= 1, 'fleet: the second nginx has its own runner');

# ---------------------------------------------------------------------------
# backpressure: past clockchain_max_pending, 429 and nothing created

my $r2 = start_redis();
my $bp = start_nginx(redis => $r2, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_max_pending 3;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
for my $i (1 .. 3) {
    created_ok(generate($bp, { query => "pending $i" }), "backpressure: job $i");
}
my $res = no_job_created($r2, 'backpressure', sub {
    generate($bp, { query => 'one too many' })
});
is_error($res, 429, qr/pending/i, 'backpressure: 429 past the cap');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'backpressure: Retry-After');
$res = no_job_created($r2, 'backpressure bulk', sub {
    bulk($bp, { queries => [ { query => 'bulk one' } ] })
});
is($res->{status}, 429, 'backpressure: bulk 429 too');

# the master logs the worker killed above at [alert]; that one is expected
$ng->stop;
my @bad = grep { /\[(alert|emerg|crit)\]/ && !/exited on signal 9/ }
          split /\n/, $ng->error_log;
ok(!@bad, 'nginx #1: no unexpected [alert], [emerg] or [crit]')
    or diag(join "\n", @bad);
done(skip_log => [$ng]);
