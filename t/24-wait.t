# clockchain_redis wait=N (Redis WAIT) must not stall the worker's other
# Redis commands. Each POST's create and its WAIT go on a connection that
# carries nothing else, so a replica that does not confirm costs that POST
# one WAIT timeout (503, never 200) and nothing more: concurrent POSTs are
# not served one WAIT after another, a GET of an unknown job answers 404 at
# once, and the runner's heartbeats keep the lease of the job it runs. With
# no replica at all the POST answers 503 at once and creates nothing.
use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $PW = 'wait-pw';
my $PROCESSING = 'clockchain:{cc}:v1:processing';
my $UNKNOWN = '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b';

# both with a password: the POST's own connections authenticate too
my $primary = start_redis(password => $PW);
my $replica = start_redis(password => $PW,
    args => [ '--replicaof', '127.0.0.1', $primary->port, '--masterauth', $PW ]);

sub replicas_online {
    my $info = $primary->cmd('INFO', 'replication') // '';
    return scalar(() = $info =~ /^slave\d+:.*state=online/mg);
}

ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica follows the primary');

my $flash = start_flash(delay => 4, key => 'fk');

# reuseport: each connection goes to either worker, so that the POSTs below
# land on the runner's worker too
sub conf {
    my ($args) = @_;
    return base_http(
        redis_args => " password_file=%%PREFIX%%/conf/redis.pass$args",
        http => <<"CONF") =~ s{listen 127\.0\.0\.1:%%PORT%%;}{listen 127.0.0.1:%%PORT%% reuseport;}r;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_job_lease 1s;
    clockchain_job_max_stalls 0;
    clockchain_max_pending 0;
CONF
}

# WAIT waits for half of timeout=: 1 s
my $ng = start_nginx(redis => $primary, files => { 'conf/redis.pass' => "$PW\n" },
                     conf => conf(' wait=1 timeout=2s'));

sub status { $primary->hash($JOB_PREFIX . $_[0])->{status} // '' }

# a POST in a child process; returns a reader for its (seconds, status,
# Retry-After, body)
sub background_post {
    my ($query) = @_;
    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $r;
        my $t = time;
        my $res = generate($ng, { query => $query });
        print {$w} JSON::PP->new->encode([ time - $t, $res->{status},
            $res->{headers}{'retry-after'}, $res->{content} ]);
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return sub {
        local $/;
        my $out = <$r>;
        waitpid($pid, 0);
        return @{ JSON::PP->new->decode($out) };
    };
}

# --- a healthy replica: 200 --------------------------------------------------

my $t = time;
my $long = created_ok(generate($ng, { query => 'A job that runs while the replica hangs' }),
                      'replica up: POST with wait=1 -> 200');
ok(time - $t < 0.5, sprintf 'replica up: answered at once (%.3f s)', time - $t);
is($replica->cmd('EXISTS', $JOB_PREFIX . $long->{job_id}), 1,
   'replica up: the replica has the job when the POST answers');
ok(wait_for(5, sub { status($long->{job_id}) eq 'processing' }),
   'the runner runs it (Flash takes 4 s)');

# --- the replica hangs (SIGSTOP) ---------------------------------------------

kill 'STOP', $replica->pid;

# enough POSTs that both workers have several at once
my @posts = map { background_post("While the replica hangs $_") } 1 .. 8;
my $t0 = time;
my (@gets, $slowest_get, $min_lease);
$slowest_get = 0;
sleep 0.1;
while (time - $t0 < 1.3) {
    my $g = time;
    my $res = get_job($ng, $UNKNOWN);
    my $took = time - $g;
    push @gets, $res->{status};
    $slowest_get = $took if $took > $slowest_get;

    # the lease of the running job, against Redis' clock
    my $lease = $primary->cmd('ZSCORE', $PROCESSING, $long->{job_id});
    my $now = $primary->cmd('TIME');
    my $left = defined $lease ? $lease - ($now->[0] * 1000 + int($now->[1] / 1000))
                              : -1;
    $min_lease = $left if !defined $min_lease || $left < $min_lease;
    sleep 0.05;
}

my @res = map { [ $_->() ] } @posts;
my $slowest = 0;
for my $r (@res) {
    $slowest = $r->[0] if $r->[0] > $slowest;
}
is(scalar(grep { $_->[1] == 200 } @res), 0,
   'replica hangs: no POST with wait=1 answers 200');
is(scalar(grep { $_->[1] == 503 } @res), 8, 'replica hangs: every POST answers 503')
    or diag(explain [ map { "$_->[1] $_->[3]" } @res ]);
is(scalar(grep { ($_->[2] // '') eq '2' } @res), 8, '... each with Retry-After: 2');
is(scalar(grep { ($_->[3] // '') =~ /"detail":"Job store unavailable: .*replica/ } @res), 8,
   '... and a JSON detail that names the replica');
ok($slowest < 1.7,
   sprintf '8 concurrent POSTs each took about one WAIT timeout (1 s), not one '
         . 'after another: the slowest took %.2f s', $slowest);
ok(@gets >= 5 && !grep({ $_ != 404 } @gets),
   sprintf 'while the WAITs were pending, %d GETs of an unknown job answered 404',
           scalar @gets);
ok($slowest_get < 0.3,
   sprintf '... at their normal speed (slowest %.3f s)', $slowest_get);
ok(defined $min_lease && $min_lease > 0,
   sprintf "the runner's heartbeats kept its job's lease in the future "
         . "(at least %d ms left)", $min_lease // -1);

kill 'CONT', $replica->pid;

my $done = wait_job($ng, $long->{job_id}, 15);
is($done && $done->{status}, 'completed', 'the job run meanwhile completed');
my $h = $primary->hash($JOB_PREFIX . $long->{job_id});
is($h->{claims}, 1, '... claimed once');
ok(!$h->{stalls}, '... never failed over as stalled');
is(scalar @{ $flash->calls_for($long->{job_id}) // [] }, 1, '... one Flash call');

# --- the replica is back: 200 again, across a reload -------------------------

ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica is back');
created_ok(generate($ng, { query => 'Once the replica is back' }),
           'replica back: POST with wait=1 -> 200');
# more POSTs at once than a worker has connections for them: the rest wait
# for one, in order
@posts = map { background_post("A burst $_") } 1 .. 30;
@res = map { [ $_->() ] } @posts;
is(scalar(grep { $_->[1] == 200 } @res), 30,
   'replica up: 30 concurrent POSTs with wait=1 -> 200 each')
    or diag(explain [ map { "$_->[1] $_->[3]" } grep { $_->[1] != 200 } @res ]);
$ng->reload;
created_ok(generate($ng, { query => 'After a reload' }), 'after a reload: 200');
ok($ng->old_workers_gone, 'the old workers exit');

# --- no replica at all: 503 at once, nothing created -------------------------

# every job made so far finished: nothing else changes Redis below
ok(wait_for(20, sub { !$primary->cmd('ZCARD', $QUEUE_KEY)
                      && !$primary->cmd('ZCARD', $PROCESSING) }),
   'the jobs made so far have run');
$replica->stop;
ok(wait_for(10, sub { replicas_online() == 0 }), 'the primary has no replica');
my $took;
my $res = no_job_created($primary, 'no replica', sub {
    my $s = time;
    my $r = generate($ng, { query => 'Without any replica' },
                     headers => { 'Idempotency-Key' => 'no-replica' });
    $took = time - $s;
    return $r;
});
is_error($res, 503, qr/^Job store unavailable: 1 replica\(s\) must confirm each job, Redis has 0/,
         'no replica: POST with wait=1 -> 503');
is($res->{headers}{'retry-after'}, '2', '... with Retry-After: 2');
ok($took < 0.5, sprintf '... at once, without waiting for WAIT (%.3f s)', $took);
like($ng->error_log, qr/\[warn\].*clockchain: 1 replica\(s\) must confirm each job, redis has 0 online, not creating/,
     '... and says why in error.log');

# --- db=: the POST's connections select it too ------------------------------

$replica->start;
ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica is back again');
my $db = start_nginx(redis => $primary, files => { 'conf/redis.pass' => "$PW\n" },
                     conf => conf(' db=2 wait=1 timeout=2s'));
my $j = created_ok(generate($db, { query => 'In database 2' }), 'db=2, wait=1: 200');
is($primary->cli('-n', 2, 'EXISTS', $JOB_PREFIX . $j->{job_id}), '1',
   'db=2: the job is in database 2');
is($primary->cmd('EXISTS', $JOB_PREFIX . $j->{job_id}), 0, '... not in database 0');

done();
