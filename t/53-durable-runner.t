# clockchain_redis wait=N and the runner (issue 17): the chaos campaign saw a
# job make more Flash calls than clockchain_flash_attempts, and than its hash
# accounts for, after a failover lost an outcome the primary alone had; and
# the same loss can make an nginx answer a job finished, then not.  With
# wait=N:
#   (a) no Flash call starts before its claim is on N replicas: with the
#       replica hung (SIGSTOP) the claimed job is handed back, uncalled, and
#       runs once the replica is back;
#   (b) a final state is announced only once N replicas have it: a ?wait=
#       long-poll on another nginx does not wake while the replica hangs;
#   (c) each claim counts its attempt, so a job whose hash says it made its
#       last attempt (whose outcome was lost) is failed by the next claim,
#       with no Flash call.
#   (d) the hour-long chaos runs saw 15 jobs answered completed, later
#       failed: an outcome WAIT did not confirm was shown all the same (by
#       the runner's announcement, and by the primary to any reader), then
#       lost in a failover, and the job ran again.  An outcome is now kept
#       beside its job until WAIT confirms it: no reader sees it before,
#       and a failover that loses it finds the runner writing it again, so
#       that it ends the same, with no second Flash call.
# A primary and a replica, wait= without Sentinel (it works the same).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $PROCESSING = 'clockchain:{cc}:v1:processing';

my $primary = start_redis();
my $replica = start_redis(args => [ '--replicaof', '127.0.0.1', $primary->port ]);

sub replicas_online {
    my $info = $primary->cmd('INFO', 'replication') // '';
    return scalar(() = $info =~ /^slave\d+:.*state=online/mg);
}

ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica follows the primary');

my $flash = start_flash(key => 'fk');

# WAIT waits for half of timeout=: 5 s, longer than any step below needs
sub conf {
    my ($runner) = @_;
    return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% wait=1 timeout=10s;
    $runner
    clockchain_job_lease 3s;
    clockchain_flash_attempts 3;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
}

# an nginx with no runner: it creates and answers, Flash is never its call
my $other = start_nginx(redis => $primary, conf => conf(''));

sub hash { $primary->hash($JOB_PREFIX . $_[0]) }
sub calls { scalar @{ $flash->calls_for($_[0]) // [] } }

# --- (a) no Flash call before the claim is on the replica --------------------

# created while the replica is up (a create needs it too), before any runner
my $a = created_ok(generate($other, { query => 'Claimed while the replica hangs' }),
                   '(a) replica up: job created');
is($replica->cmd('EXISTS', $JOB_PREFIX . $a->{job_id}), 1, '(a) the replica has it');

stop_processes($replica->pid);

my $ng = start_nginx(redis => $primary, conf => conf(
    'clockchain_flash_url http://127.0.0.1:' . $flash->port . ";\n"
    . "    clockchain_flash_key fk;"));

# event: the runner's WAIT after the claim ran out, and it handed the job back
ok(wait_for(20, sub { (hash($a->{job_id})->{handbacks} // 0) >= 1 }),
   '(a) replica hangs: the claimed job is handed back');
like($ng->error_log, qr/replica\(s\) did not confirm a claim in time .*handing 1 job\(s\) back without calling flash/,
     '(a) ... and error.log says why');
is(calls($a->{job_id}), 0, '(a) ... with no Flash call');
my $h = hash($a->{job_id});
is($h->{attempts} // 0, 0, '(a) ... and no attempt counted (the claim\'s was taken back)');

kill 'CONT', $replica->pid;

my $done = wait_job($ng, $a->{job_id}, 30);
is($done && $done->{status}, 'completed', '(a) replica back: the job completes');
is(calls($a->{job_id}), 1, '(a) ... with one Flash call');
$h = hash($a->{job_id});
is($h->{attempts}, 1, '(a) ... one attempt, counted by its claim');
cmp_ok($h->{attempts} + ($h->{stalls} // 0) + $h->{handbacks}, '>=', calls($a->{job_id}),
       '(a) ... and the hash accounts for every Flash call');

# --- (b) a final state is announced once the replica has it ------------------

ok(wait_for(10, sub { replicas_online() == 1 }), '(b) the replica is online');
my $b = created_ok(generate($ng, { query => 'Finished while the replica hangs [flash:hold]' }),
                   '(b) replica up: job created');
# event: its Flash call is held, so its claim was confirmed
ok(wait_for(10, sub { $flash->held >= 1 }), '(b) its Flash call is in progress');

stop_processes($replica->pid);

my $poll = background_get($other, "/api/jobs/$b->{job_id}?wait=30", timeout => 40);
ok(wait_for(5, sub { $poll->sent && tcp_unread(local => $other->port) == 0 }),
   '(b) a long-poll waits on the other nginx');

$flash->release;

# event: the outcome is on the primary, kept beside the job
ok(wait_for(10, sub { (hash($b->{job_id})->{kept} // '') eq 'completed' }),
   '(b) the outcome is kept on the primary');
is(hash($b->{job_id})->{status}, 'processing',
   '(b) ... beside the job, still processing for every reader of the primary');
ok(!wait_for(1, sub { $poll->answered }),
   '(b) ... and not announced while the replica hangs: the long-poll sleeps on');

my $cont = time;
kill 'CONT', $replica->pid;

my ($at, $st, $body) = $poll->result;
is($st, 200, '(b) replica back: the long-poll answers');
like($body, qr/"status":"completed"/, '(b) ... completed');
cmp_ok($at, '>=', $cont, '(b) ... once the replica had it, not before');
unlike($ng->error_log, qr/did not confirm the outcome of job $b->{job_id}/,
       '(b) the WAIT after the outcome was confirmed, not run out');

# --- (c) the claim counts attempts: none past the last -----------------------

ok(wait_for(10, sub { replicas_online() == 1 }), '(c) the replica is online');

# a job whose last attempt's outcome was lost: processing, attempts at
# clockchain_flash_attempts, its lease expired (its runner is gone)
my $c = sprintf '%08x-%04x-4%03x-%x%03x-%012x', int(rand(2**32)), int(rand(2**16)),
    int(rand(2**12)), 8 + int(rand(4)), int(rand(2**12)), int(rand(2**48));
$h = hash($a->{job_id});
$primary->cmd('HSET', $JOB_PREFIX . $c, id => $c, status => 'processing',
              created_at => $h->{created_at}, query => 'Its last outcome was lost',
              preset => $h->{preset}, visibility => $h->{visibility},
              created_by => $h->{created_by}, schema => $h->{schema} // '1',
              version => 7, claims => 3, attempts => 3, token => 'f' x 32,
              runner => 'gone:1');
$primary->cmd('ZADD', $PROCESSING, 0, $c);

$done = wait_job($ng, $c, 20);
is($done && $done->{status}, 'failed', '(c) the next claim fails it');
like($done && $done->{error}, qr/failed after 3 attempt\(s\); the last one's outcome was lost/,
     '(c) ... with an error that names the lost outcome');
is(calls($c), 0, '(c) ... and no Flash call');
$h = hash($c);
is($h->{attempts}, 3, '(c) ... attempts still 3');
is($h->{finishes}, 1, '(c) ... its outcome written once');

# --- (d) a failover loses an unconfirmed outcome: nobody saw it ---------------

ok(wait_for(10, sub { replicas_online() == 1 }), '(d) the replica is online');
$ng->stop;
# a lease longer than the failover below takes: the job stays the runner's
$ng = start_nginx(redis => $primary, conf => conf(
    'clockchain_flash_url http://127.0.0.1:' . $flash->port . ";\n"
    . "    clockchain_flash_key fk;") =~ s/clockchain_job_lease 3s/clockchain_job_lease 30s/r);

my $d = created_ok(generate($ng, { query => 'Finished as the primary is lost [flash:hold]' }),
                   '(d) replica up: job created');
ok(wait_for(10, sub { $flash->held >= 1 }), '(d) its Flash call is in progress');

# the replica stops following: it has everything but what comes next
my ($nowhere) = Clockchain::Test::_free_ports(1);
$replica->cmd('REPLICAOF', '127.0.0.1', $nowhere);
ok(wait_for(5, sub { replicas_online() == 0 }), '(d) the replica is cut off');

$flash->release;
ok(wait_for(10, sub { (hash($d->{job_id})->{kept} // '') eq 'completed' }),
   '(d) the outcome is kept on the primary alone');
# the other nginx never held this job: it reads the primary
my $seen = json_body(get_job($other, $d->{job_id}));
is($seen->{status}, 'processing',
   '(d) a reader of the primary sees the job processing, not the unconfirmed outcome');
ok(!wait_for(1, sub { (json_body(get_job($ng, $d->{job_id}))->{status} // '') ne 'processing' }),
   '(d) ... nor does the runner\'s own nginx show it');

# the failover, at the primary's address: it comes back with the replica's
# data, which never had the outcome
$replica->cmd('REPLICAOF', 'NO', 'ONE');
kill 'KILL', $primary->pid;
waitpid($primary->pid, 0);
system('rm', '-rf', $primary->dir . '/appendonlydir');
# as the replica's replica, answering nothing before its data is in
# (MASTERDOWN): a failover promotes a server with data, never an empty one
{
    local $primary->{opt}{args} = [ '--replicaof', '127.0.0.1', $replica->port,
                                    '--replica-serve-stale-data', 'no' ];
    $primary->start;
}
ok(wait_for(30, sub { ($primary->cmd('INFO', 'replication') // '') =~ /master_link_status:up/
                      && ($primary->cmd('INFO', 'replication') // '') =~ /master_sync_in_progress:0/ }),
   '(d) the primary comes back with the replica\'s data');
$primary->cmd('REPLICAOF', 'NO', 'ONE');
$replica->cmd('REPLICAOF', '127.0.0.1', $primary->port);
is(hash($d->{job_id})->{kept}, undef, '(d) ... in which the outcome is not');
ok(wait_for(10, sub { replicas_online() == 1 }), '(d) and the replica follows it again');

$done = wait_job($ng, $d->{job_id}, 30);
is($done && $done->{status}, 'completed', '(d) the job completes')
    or diag($ng->error_log);
is(calls($d->{job_id}), 1, '(d) ... its runner wrote its outcome again: no second Flash call');
$h = hash($d->{job_id});
is($h->{finishes}, 1, '(d) ... one outcome written, in the data that survived');
is($h->{status}, 'completed', '(d) ... and it is the job\'s');
my $o = json_body(get_job($other, $d->{job_id}));
is($o->{status}, 'completed', '(d) the other nginx answers it completed too');
is($o->{path}, $done->{path}, '(d) ... with the same path');

$ng->stop;
$other->stop;
done_testing();
