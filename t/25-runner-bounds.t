# The runner's bounds (issue 13, items 9 and 11): a result Redis refuses
# for what it is fails its job with the reason instead of keeping it
# processing and its call slot taken; an outcome Redis refuses for a whole
# lease is given up, so the job is claimed again; a Flash call that cannot
# even start is a counted attempt, not a hot loop of claims; the backoff
# after many attempts stays within clockchain_flash_backoff_max.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $NODE = 'clockchain:{cc}:v1:node:';

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');

# the runner's nginx with its lease, attempts and backoff; extra => more
# lines for the http block
sub runner_conf {
    my (%o) = @_;
    return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]}/;
    clockchain_flash_key fk;
    clockchain_flash_timeout 3s;
    clockchain_job_lease $o{lease};
    clockchain_flash_attempts $o{attempts};
    clockchain_flash_retry_backoff $o{backoff} $o{backoff_max};
    clockchain_flash_circuit_breaker failures=100000;
@{[ $o{extra} // '' ]}
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /metrics { clockchain_metrics; }
    }
CONF
}

sub metrics {
    my ($ng) = @_;
    return json_body(http(GET => $ng->url('/metrics?format=json'))) // {};
}

my $ng = start_nginx(redis => $redis,
    conf => runner_conf(lease => '2s', attempts => 40, backoff => '1ms',
                        backoff_max => '64ms'));

# ---------------------------------------------------------------------------
# A result Redis refuses for what it is: the node's key holds a string, so
# complete.lua fails on it every time

my $first = created_ok(generate($ng, { query => 'refused result probe' }),
                       'a first job finds the path');
my $done = wait_job($ng, $first->{job_id}, 20) // {};
is($done->{status}, 'completed', 'it completes');
my $path = $done->{path} // '';
$redis->cmd('DEL', "$NODE$path");
$redis->cmd('SET', "$NODE$path", 'not a hash');

my $job = created_ok(generate($ng, { query => 'refused result probe' }),
                     'the same query again');
$done = wait_job($ng, $job->{job_id}, 20) // {};
is($done->{status}, 'failed',
   'a result Redis refuses every time fails its job (not processing forever)');
like($done->{error} // '', qr/^Graph store error: the result could not be stored/,
     '... with the reason');
like($ng->error_log, qr/redis refused the result of job \Q$job->{job_id}\E \d+ times: failing the job/,
     '... and says so in the log');
ok(wait_for(5, sub { (metrics($ng)->{flash_calls_in_flight} // -1) == 0 }),
   '... and its call slot is free');
$redis->cmd('DEL', "$NODE$path");

# ---------------------------------------------------------------------------
# A Flash call that cannot start: each claim is one attempt, with backoff;
# after the last the job fails (it was handed back uncounted, in a loop)

{
    my $ng2 = start_nginx(redis => $redis,
        main => "env CLOCKCHAIN_FAULT_FLASH_START=1;",
        conf => runner_conf(lease => '5s', attempts => 3, backoff => '10ms',
                            backoff_max => '20ms'));
    $ng->stop;    # this one's runner alone takes the queue
    my $j = created_ok(generate($ng2, { query => 'unstartable call' }),
                       'a job whose call cannot start');
    my $d = wait_job($ng2, $j->{job_id}, 20) // {};
    is($d->{status}, 'failed', 'it fails after its attempts');
    like($d->{error} // '', qr/could not be started/, '... saying why');
    my $h = $redis->hash($JOB_PREFIX . $j->{job_id});
    is($h->{attempts}, 3, '... after exactly clockchain_flash_attempts (3)');
    my @starts = $ng2->error_log =~ /could not start the flash call of job \Q$j->{job_id}\E/g;
    is(scalar @starts, 3, '... three tries, no loop of claims');
    $ng2->stop;
    $ng->start;
}

# ---------------------------------------------------------------------------
# Backoff after 34 and more attempts: 1u << 33 was undefined; the delay is
# capped by clockchain_flash_retry_backoff's max, never shrunk

{
    my $j = created_ok(generate($ng, { query => 'many attempts [flash:500]' }),
                       'a job that fails 40 times');
    my $d = wait_job($ng, $j->{job_id}, 60) // {};
    is($d->{status}, 'failed', 'it fails after 40 attempts');
    my %delay = $ng->error_log
        =~ /job \Q$j->{job_id}\E attempt (\d+) of 40 failed: .*?; retrying in (\d+) ms/g;
    is(scalar keys %delay, 39, 'a retry after each of the first 39');
    my @bad = grep { $_ >= 8 && ($delay{$_} < 32 || $delay{$_} > 64) }
              sort { $a <=> $b } keys %delay;
    ok(!@bad, 'from attempt 8 on each delay is between half of the 64 ms '
       . 'cap and the cap') or diag(join ', ', map { "$_: $delay{$_} ms" } @bad);
}

# ---------------------------------------------------------------------------
# An outcome refused for a whole lease: the Redis became a replica of an
# unreachable master (READONLY to every write: no heartbeat, no claim, no
# commit).  The outcome is given up and its call slot freed; once Redis is
# a primary again the job's lease has expired and it is claimed again.

{
    my $j = created_ok(generate($ng, { query => 'read-only redis [flash:delay=1]' }),
                       'a job whose outcome meets a read-only Redis');
    wait_for(10, sub {
        (json_body(get_job($ng, $j->{job_id})) // {})->{status} eq 'processing'
    });
    $redis->cmd('REPLICAOF', '127.0.0.1', '1');
    ok(wait_for(20, sub {
        $ng->error_log =~ /gave up on the outcome of job \Q$j->{job_id}\E: redis refused it for \d+ ms \(READONLY/
    }), 'refused for a lease (2 s): given up, said in the log');
    ok(wait_for(5, sub { (metrics($ng)->{flash_calls_in_flight} // -1) == 0 }),
       '... and its call slot is free');
    $redis->cmd('REPLICAOF', 'NO', 'ONE');
    my $d = wait_job($ng, $j->{job_id}, 30) // {};
    is($d->{status}, 'completed', 'once Redis takes writes it is claimed '
       . 'again and completes');
}

# ---------------------------------------------------------------------------
# clockchain_flash_buffers bounds the answers in flight together, not only
# when a call starts (issue 13, item 12): four 3 MiB answers at once, with
# 5 MiB for all of them, cannot all be held; those without room run again
# later, with no attempt counted, and every job completes.

{
    my $out = nginx_t_fail(name => 'flash_buffers below flash_max_response',
        conf => runner_conf(lease => '5s', attempts => 3, backoff => '100ms',
                            backoff_max => '200ms', extra => <<'CONF'));
    clockchain_flash_max_response 4m;
    clockchain_flash_buffers 3m;
CONF
    like($out, qr/"clockchain_flash_buffers" must be at least "clockchain_flash_max_response"/,
         'nginx -t: flash_buffers must hold one whole answer');

    $ng->stop;
    my $ng3 = start_nginx(redis => $redis,
        conf => runner_conf(lease => '10s', attempts => 3, backoff => '200ms',
                            backoff_max => '400ms', extra => <<'CONF'));
    clockchain_flash_max_response 4m;
    clockchain_flash_buffers 5m;
    clockchain_flash_max_calls 4;
CONF
    # held until all four are in flight, then answered together: on a
    # loaded machine a delay alone let the claims, and so the answers,
    # come one after the other
    my $res = bulk($ng3, { queries => [ map { { query => "big answer $_ [flash:datauri,hold]" } } 1 .. 4 ] });
    is($res->{status}, 200, 'four jobs with 3 MiB answers');
    my @jobs = @{ json_body($res) // [] };
    ok(wait_for(30, sub { $flash->calls->{in_flight} >= 4 }),
       'the four calls in flight together');
    # released together; a call run again later is held again, and
    # released in its turn
    wait_for(60, sub {
        $flash->release;
        !grep { ($redis->cmd('HGET', $JOB_PREFIX . $_->{job_id}, 'status') // '')
                ne 'completed' } @jobs;
    });
    for my $j (@jobs) {
        my $d = wait_job($ng3, $j->{job_id}, 60) // {};
        is($d->{status}, 'completed', "job $j->{job_id}: completed");
        is($redis->cmd('HGET', $JOB_PREFIX . $j->{job_id}, 'attempts'), 1,
           '... on its one counted attempt');
    }
    my @deferred = $ng3->error_log
        =~ /the answers in flight hold all of clockchain_flash_buffers \(5242880 bytes\): job \S+ runs again/g;
    ok(@deferred >= 1, 'answers without room ran again later ('
       . scalar(@deferred) . ' times)');
    $ng3->stop;
}

done();
