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
# land on the runner's worker too.  $redis is the end of the
# clockchain_redis line (wait=, timeout=, db=)
sub conf {
    my ($redis) = @_;
    return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% password_file=%%PREFIX%%/conf/redis.pass $redis;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_job_lease 1s;
    clockchain_job_max_stalls 0;
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
}

# WAIT waits for half of timeout=: 1 s
my $ng = start_nginx(redis => $primary, files => { 'conf/redis.pass' => "$PW\n" },
                     conf => conf('wait=1 timeout=2s'));

sub status { $primary->hash($JOB_PREFIX . $_[0])->{status} // '' }

# a POST in a child process (background()): ->result is its (seconds,
# status, Retry-After, body)
sub background_post {
    my ($query) = @_;
    return background(sub {
        my $t = time;
        my $res = generate($ng, { query => $query });
        return (time - $t, $res->{status}, $res->{headers}{'retry-after'},
                $res->{content});
    });
}

# Redis' count of the given command's calls (INFO commandstats)
sub calls_of {
    my ($cmd) = @_;
    my ($n) = $primary->cmd('INFO', 'commandstats') =~ /^cmdstat_$cmd:calls=(\d+)/m;
    return $n // 0;
}

# clients Redis holds blocked (here: in WAIT)
sub blocked {
    my ($n) = $primary->cmd('INFO', 'clients') =~ /^blocked_clients:(\d+)/m;
    return $n // 0;
}

# --- a healthy replica: 200 --------------------------------------------------

# its Flash call is held until the replica is back
my $long = created_ok(generate($ng, { query => 'A job that runs while the replica hangs [flash:hold,delay=0]' }),
                      'replica up: POST with wait=1 -> 200');
# event: the replica's confirmation.  A WAIT that runs out answers 503 and
# logs that the replica did not confirm; this one answered 200, logged nothing
ok($long && $ng->error_log !~ /did not confirm job/,
   'replica up: answered at once (the replica confirmed, no WAIT ran out)');
is($replica->cmd('EXISTS', $JOB_PREFIX . $long->{job_id}), 1,
   'replica up: the replica has the job when the POST answers');
# event: the stand-in holds its Flash call.  'processing' alone says that
# claim.lua ran; with wait= the call starts only once the replica has the
# claim too (runner_confirmed).  A replica stopped in between makes the
# runner hand the job back (it leaves the processing set, is claimed
# again, and that later call is held with no release to come)
ok(wait_for(5, sub { status($long->{job_id}) eq 'processing'
                     && $flash->held == 1 }),
   'the runner runs it (its Flash call is held)');

# --- the replica hangs (SIGSTOP) ---------------------------------------------

stop_processes($replica->pid);

my $jobs0 = job_count($primary);

# enough POSTs that both workers have several at once
my @posts = map { background_post("While the replica hangs $_") } 1 .. 8;
# event: the 8 POSTs' jobs are all in Redis before any POST has its answer,
# so no create waited for another's WAIT (served one after another, the
# second would be made only once the first's WAIT ran out).  A worker sends
# the POSTs ready in one turn of its event loop as one call with one WAIT;
# the calls' WAITs are held at once
my $created = sub { job_count($primary) - $jobs0 };
my $all_blocked = wait_for(10, sub { $created->() == 8 || grep { $_->answered } @posts })
    && $created->() == 8 && !grep({ $_->answered } @posts) && blocked() >= 1;

# while the WAITs are pending (no POST has its answer yet): GETs, and the
# lease of the running job, against Redis' clock
my (@gets, $min_lease, $first_lease, $renewed);
while (!grep { $_->answered } @posts) {
    my $res = get_job($ng, $UNKNOWN);
    last if grep { $_->answered } @posts;
    push @gets, $res->{status};

    my $lease = $primary->cmd('ZSCORE', $PROCESSING, $long->{job_id});
    my $now = $primary->cmd('TIME');
    my $left = defined $lease ? $lease - ($now->[0] * 1000 + int($now->[1] / 1000))
                              : -1;
    $min_lease = $left if !defined $min_lease || $left < $min_lease;
    $first_lease //= $lease;
    # event: a heartbeat, the lease's score in Redis moves forward
    $renewed = 1 if defined $lease && defined $first_lease && $lease > $first_lease;
}
my @res = map { [ $_->result ] } @posts;
is(scalar(grep { $_->[1] == 200 } @res), 0,
   'replica hangs: no POST with wait=1 answers 200');
is(scalar(grep { $_->[1] == 503 } @res), 8, 'replica hangs: every POST answers 503')
    or diag(explain [ map { "$_->[1] $_->[3]" } @res ]);
is(scalar(grep { ($_->[2] // '') eq '2' } @res), 8, '... each with Retry-After: 2');
is(scalar(grep { ($_->[3] // '') =~ /"detail":"Job store unavailable: .*replica/ } @res), 8,
   '... and a JSON detail that names the replica');
ok($all_blocked,
   '8 concurrent POSTs each took about one WAIT timeout (1 s), not one '
   . 'after another: all created while Redis held their WAITs');
ok(@gets >= 5 && !grep({ $_ != 404 } @gets),
   sprintf 'while the WAITs were pending, %d GETs of an unknown job answered 404',
           scalar @gets);
# event: each GET answered before any POST had its answer, i.e. within one
# WAIT's second; a GET behind a WAIT would have come after it
ok(@gets >= 5,
   sprintf '... at their normal speed (%d of them before any POST had its answer)', scalar @gets);
ok(defined $min_lease && $min_lease > 0 && $renewed,
   sprintf "the runner's heartbeats kept its job's lease in the future "
         . "(at least %d ms left)", $min_lease // -1);

kill 'CONT', $replica->pid;
$flash->release;

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
@res = map { [ $_->result ] } @posts;
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
my $waits = calls_of('wait');
my $res = no_job_created($primary, 'no replica', sub {
    generate($ng, { query => 'Without any replica' },
             headers => { 'Idempotency-Key' => 'no-replica' });
});
is_error($res, 503, qr/^Job store unavailable: 1 replica\(s\) must confirm each job, Redis has 0/,
         'no replica: POST with wait=1 -> 503');
is($res->{headers}{'retry-after'}, '2', '... with Retry-After: 2');
# event: Redis counted no WAIT for it
is(calls_of('wait'), $waits, '... at once, without waiting for WAIT (Redis ran none)');
like($ng->error_log, qr/\[warn\].*clockchain: 1 replica\(s\) must confirm each job, redis has 0 online, not creating/,
     '... and says why in error.log');

# --- db=: the POST's connections select it too ------------------------------

$replica->start;
ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica is back again');
my $db = start_nginx(redis => $primary, files => { 'conf/redis.pass' => "$PW\n" },
                     conf => conf('db=2 wait=1 timeout=2s'));
my $j = created_ok(generate($db, { query => 'In database 2' }), 'db=2, wait=1: 200');
is($primary->cli('-n', 2, 'EXISTS', $JOB_PREFIX . $j->{job_id}), '1',
   'db=2: the job is in database 2');
is($primary->cmd('EXISTS', $JOB_PREFIX . $j->{job_id}), 0, '... not in database 0');

done();
