# Redis Sentinel: the events subscription follows a failover in which the
# old master stays up. SENTINEL FAILOVER on a healthy master promotes the
# replica and later demotes the old master to a replica of it, reachable
# all along. A subscription left there hears what is published on the new
# master only through replication, and nothing while that is not flowing
# (a resync, a link between the servers that is down; here: refused): the
# waiters of the node are then answered at their timeout, and its zone
# keeps states that changed.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

plan skip_all => 'redis-sentinel is not installed (build.sh installs it)'
    unless -x '/usr/bin/redis-sentinel';

my $primary = start_redis();
my $replica = start_redis(args => [ '--replicaof', '127.0.0.1', $primary->port ]);
ok(wait_for(10, sub { ($replica->cmd('INFO', 'replication') // '') =~ /master_link_status:up/ }),
   'the replica follows the primary');

my $sdir = tempdir('cc-sentinel-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sport = do {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0');
    my $p = $s->sockport; close $s; $p
};
{
    open my $fh, '>', "$sdir/sentinel.conf" or die;
    print {$fh} "port $sport\nbind 127.0.0.1\ndir $sdir\n"
        . "sentinel monitor cc 127.0.0.1 " . $primary->port . " 1\n"
        . "sentinel down-after-milliseconds cc 1000\n"
        . "sentinel failover-timeout cc 5000\n";
    close $fh;
}
my $spid = fork // die;
if ($spid == 0) {
    open STDOUT, '>', "$sdir/log";
    open STDERR, '>&', \*STDOUT;
    { exec '/usr/bin/redis-sentinel', "$sdir/sentinel.conf" }
    POSIX::_exit(127);
}
END { if ($spid) { kill 'TERM', $spid; waitpid($spid, 0) } }

sub sentinel_cmd {
    my $out = `redis-cli -h 127.0.0.1 -p $sport @_ 2>/dev/null`;
    chomp $out;
    return $out;
}

ok(wait_for(15, sub {
    sentinel_cmd('SENTINEL', 'replicas', 'cc') =~ /\b@{[ $replica->port ]}\b/
}), 'the sentinel knows the primary and its replica');

# nginx subscriptions (all three channels) on a server
sub subscriptions {
    my ($redis) = @_;
    my $list = eval { $redis->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub') } // '';
    return scalar grep { /sub=3 / } split /\n/, $list;
}

my $ng = start_nginx(redis => $primary, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis sentinel=127.0.0.1:$sport master=cc timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
my $workers = () = $ng->worker_pids;

ok(wait_for(10, sub { subscriptions($primary) == $workers }),
   "the $workers workers subscribe on the primary");
my $j0 = created_ok(generate($ng, { query => 'before the failover' }), 'a POST lands');
ok($j0 && $primary->cmd('EXISTS', $JOB_PREFIX . $j0->{job_id}), '... on the primary');

# ---------------------------------------------------------------------------
# the failover: the replica is promoted, the primary stays up and is demoted

# (refused with NOGOODSLAVE until the sentinel has heard from the replica)
my $answer;
ok(wait_for(20, sub {
    $answer = sentinel_cmd('SENTINEL', 'failover', 'cc');
    sleep 0.2 unless $answer eq 'OK';
    return $answer eq 'OK';
}), 'SENTINEL FAILOVER') or diag($answer);
my $t0 = time;
ok(wait_for(30, sub {
    sentinel_cmd('SENTINEL', 'get-master-addr-by-name', 'cc') =~ /\b@{[ $replica->port ]}\b/
}), 'the sentinel names the replica as master');
ok(wait_for(30, sub { (eval { $primary->cmd('ROLE')->[0] } // '') eq 'slave' }),
   sprintf 'the old primary is a replica now, and up (%.1f s)', time - $t0);

# the promotion closed our connections to both: the next command reconnects
eval { $replica->cmd('PING') };
eval { $primary->cmd('PING') };

# what the old primary hears from the new master comes by replication only:
# cut it, as a resync or a broken link between the two would
$replica->cmd('ACL', 'SETUSER', 'default', '-sync', '-psync');
$replica->cmd('CLIENT', 'KILL', 'TYPE', 'replica');

ok(wait_for(15, sub {
    subscriptions($replica) == $workers && subscriptions($primary) == 0
}), sprintf 'the subscriptions followed to the new master (%.1f s after the failover)',
            time - $t0)
    or diag('on the new master: ' . subscriptions($replica) . ', on the old one: '
            . subscriptions($primary));
like($ng->error_log, qr/the events subscription moves from 127\.0\.0\.1:@{[ $primary->port ]} to the master at 127\.0\.0\.1:@{[ $replica->port ]}|subscribed to "[^"]+" at 127\.0\.0\.1:@{[ $replica->port ]}/,
     'error.log says where the subscription went');

# POSTs land on the new master again (its command connection followed)
my $job;
wait_for(20, sub {
    my $res = generate($ng, { query => 'after the failover' },
                       headers => { 'Idempotency-Key' => 'after-failover' });
    $job = $res->{status} == 200 ? json_body($res) : undef;
    sleep 0.2 unless $job;
    return $job;
});
ok($job && $replica->cmd('EXISTS', $JOB_PREFIX . $job->{job_id}),
   'a POST lands on the new master');
my $id = $job ? $job->{job_id} : 'none';
my $EVENTS = 'clockchain:{cc}:v1:events';

# a change made and published on the new master
sub change {
    my ($jid, @fields) = @_;
    $replica->cmd('HSET', $JOB_PREFIX . $jid, @fields);
    my $v = $replica->cmd('HINCRBY', $JOB_PREFIX . $jid, 'version', 1);
    my %f = @fields;
    return $replica->cmd('PUBLISH', $EVENTS, "$jid $f{status} $v");
}

# a waiter is woken by an event published on the new master
# wait=60; the client gives up after 30 s: no timer can answer it
my $w = background_get($ng, "/api/jobs/$id?wait=60", timeout => 30);
# event: nginx has read the request (the waiter is in)
wait_for(10, sub { $w->sent && tcp_unread(local => $ng->port) == 0 });
my @t = gmtime;
my $done_at = sprintf '%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                      $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
my $path = '/1969/july/20/2017/united-states/florida/cape-canaveral/apollo-11-landing-3f4a';
cmp_ok(change($id, status => 'completed', path => $path, completed_at => $done_at),
       '>=', $workers, 'the change is published on the new master, to the workers');
my ($ta, $st, $body) = $w->result;
my $j = eval { decode_json($body) } // {};
is($st, 200, 'the waiter gets a 200');
is($j->{status}, 'completed', '... with the job completed');
# event: the change; structural: wait=60, twice the client's 30 s
ok($st == 200 && ($j->{status} // '') eq 'completed',
   '... by the change (wait=60: not at the timeout)');

# the zone hears it too: a cached pending job is not served once it changed
my $k = created_ok(generate($ng, { query => 'cached, then changed' }), 'another job');
my $kid = $k ? $k->{job_id} : 'none';
is((json_body(get_job($ng, $kid)) // {})->{status}, 'pending', 'GET: pending (cached)');
change($kid, status => 'processing');
ok(wait_for(3, sub { (json_body(get_job($ng, $kid)) // {})->{status} eq 'processing' }),
   'after the change on the new master, GET answers processing');

$ng->stop;
done();
