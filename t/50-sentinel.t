# Redis Sentinel: a primary, a replica and three sentinels on local ports.
# nginx finds the master through the sentinels, answers POST only once a
# replica has the job (wait=1), and after the primary is killed it finds
# the new master by itself: every job created before and after completes,
# none is lost.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Clockchain::Test;

plan skip_all => 'redis-sentinel is not installed (build.sh installs it)'
    unless -x '/usr/bin/redis-sentinel';

my $primary = start_redis();
my $replica = start_redis(args => [ '--replicaof', '127.0.0.1', $primary->port ]);
ok(wait_for(10, sub { ($replica->cmd('INFO', 'replication') // '') =~ /master_link_status:up/ }),
   'the replica follows the primary');

# a sentinel on a free port with these lines of configuration; its port
my @sentinels;
sub start_sentinel {
    my ($conf) = @_;
    my $dir = tempdir('cc-sentinel-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port = do {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0');
        my $p = $s->sockport; close $s; $p
    };
    open my $fh, '>', "$dir/sentinel.conf" or die;
    print {$fh} "port $port\nbind 127.0.0.1\ndir $dir\n$conf";
    close $fh;
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', "$dir/log";
        open STDERR, '>&', \*STDOUT;
        { exec '/usr/bin/redis-sentinel', "$dir/sentinel.conf" }
        POSIX::_exit(127);
    }
    push @sentinels, { pid => $pid, port => $port, dir => $dir };
    return $port;
}

# three sentinels
start_sentinel("sentinel monitor cc 127.0.0.1 " . $primary->port . " 2\n"
               . "sentinel down-after-milliseconds cc 1000\n"
               . "sentinel failover-timeout cc 5000\n"
               . "sentinel parallel-syncs cc 1\n") for 1 .. 3;
END { kill 'TERM', map { $_->{pid} } @sentinels if @sentinels }

sub sentinel_cmd {
    my ($port, @cmd) = @_;
    my $out = `redis-cli -h 127.0.0.1 -p $port @cmd 2>/dev/null`;
    chomp $out;
    return $out;
}

ok(wait_for(15, sub {
    !grep { sentinel_cmd($_->{port}, 'SENTINEL', 'get-master-addr-by-name', 'cc') !~ /\d/ }
        @sentinels
}), 'the three sentinels know the master');
ok(wait_for(15, sub {
    (sentinel_cmd($sentinels[0]{port}, 'SENTINEL', 'sentinels', 'cc') =~ tr/\n//) >= 10
}), 'they know each other');

my $flash = start_flash(delay => 0.2, key => 'fk');
my $list = join ',', map { "127.0.0.1:$_->{port}" } @sentinels;
my $ng = start_nginx(redis => $primary, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis sentinel=$list master=cc wait=1 timeout=2s;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_job_lease 3s;
    clockchain_drain_timeout 1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF

my @ids;
for my $i (1 .. 20) {
    my $j = created_ok(generate($ng, { query => "before failover $i" },
                                headers => { 'Idempotency-Key' => "before-$i" }),
                       "before failover: job $i");
    push @ids, $j->{job_id} if $j;
}
is(scalar @ids, 20, '20 jobs acknowledged before the failover');
is(scalar(grep { $replica->cmd('EXISTS', $JOB_PREFIX . $_) } @ids), 20,
   'the replica had every acknowledged job (wait=1)');

# kill the primary
my $t0 = time;
kill 'KILL', $primary->pid;
waitpid($primary->pid, 0);

# the old primary comes back once the sentinels have promoted the replica
# (not after a fixed time: back before the promotion on a slow machine, it
# took writes that the promotion then threw away); the sentinels make it a
# replica of the new master, so that wait=1 can be satisfied again
ok(wait_for(30, sub {
    sentinel_cmd($sentinels[0]{port}, 'SENTINEL', 'get-master-addr-by-name', 'cc')
        =~ /\b@{[ $replica->port ]}\b/
}), sprintf 'the sentinels promoted the replica (%.1f s after the kill)', time - $t0);
$primary->start;

# keep posting until a POST is acknowledged again; each one retried with its
# Idempotency-Key so nothing is created twice
my ($unavailable, $n) = (0, 0);
my @after;
while (@after < 20 && time - $t0 < 40) {
    $n++;
    my $res = generate($ng, { query => "after failover $n" },
                       headers => { 'Idempotency-Key' => "after-$n" });
    if ($res->{status} == 200) {
        push @after, json_body($res)->{job_id};
        next;
    }
    $unavailable++;
    is($res->{status}, 503, "during the failover: 503, not an error") if $unavailable < 3;
    $n--;    # the same key again
    sleep 0.2;
}
my $recovered = time - $t0;
is(scalar @after, 20, sprintf '20 jobs acknowledged after the failover (%d 503s, %.1f s to recover)',
   $unavailable, $recovered);
note(sprintf 'failover: POST answered 200 again %.1f s after the primary was killed',
     $recovered);
diag(join "\n", grep { /clockchain/ && !/runs jobs/ } split /\n/, $ng->error_log)
    unless @after == 20;

eval { $replica->cmd('PING') };    # the promotion closed our connection
my $new = sentinel_cmd($sentinels[0]{port}, 'SENTINEL', 'get-master-addr-by-name', 'cc');
# the promoted replica, or (on a loaded machine, where the sentinels may
# fail over once more) the old primary back as master: never a third
like($new, qr/\b(?:@{[ $replica->port ]}|@{[ $primary->port ]})\b/,
     'the sentinels name one of the two servers as master');

# every job completes on the new master: none lost
my @all = (@ids, @after);
my @left;
wait_for(60, sub {
    # the promotion closes client connections: reconnect on the next call
    @left = eval {
        grep { ($replica->hash($JOB_PREFIX . $_)->{status} // '') ne 'completed' } @all
    };
    return !$@ && !@left;
});
is(scalar @left, 0, 'all 40 jobs completed; jobs lost: 0')
    or diag(join ' ', map { "$_=" . ($replica->hash($JOB_PREFIX . $_)->{status} // 'missing') } @left);
like($ng->error_log, qr/sentinel names 127\.0\.0\.1:@{[ $replica->port ]} as master/,
     'error.log names the new master');

$ng->stop;
kill 'TERM', map { $_->{pid} } @sentinels;
waitpid($_->{pid}, 0) for @sentinels;
@sentinels = ();

# ---------------------------------------------------------------------------
# a Sentinel with a password of its own (requirepass): sentinel_password_file=

{
    my $p2 = start_redis();
    my $port = start_sentinel("requirepass s3cret-sentinel\n"
        . "sentinel monitor cc2 127.0.0.1 " . $p2->port . " 1\n");
    ok(wait_for(10, sub {
        `redis-cli -h 127.0.0.1 -p $port --no-auth-warning -a s3cret-sentinel SENTINEL get-master-addr-by-name cc2 2>/dev/null` =~ /\d/
    }), 'a sentinel with requirepass knows master cc2');
    like(sentinel_cmd($port, 'SENTINEL', 'get-master-addr-by-name', 'cc2'),
         qr/NOAUTH/, '... and refuses to name it without the password');

    my $conf = sub {
        my ($pass) = @_;
        return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis sentinel=127.0.0.1:$port master=cc2 sentinel_password_file=%%PREFIX%%/conf/sentinel.pass timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
    };
    my $good = start_nginx(redis => $p2, conf => $conf->(),
                           files => { 'conf/sentinel.pass' => "s3cret-sentinel\n" });
    my $j = created_ok(generate($good, { query => 'through a sentinel with a password' }),
                       'sentinel_password_file: the master is found, a POST lands');
    ok($j && $p2->cmd('EXISTS', $JOB_PREFIX . $j->{job_id}), '... in the monitored master');

    my $bad = start_nginx(redis => $p2, conf => $conf->(),
                          files => { 'conf/sentinel.pass' => "wrong-password\n" });
    is(generate($bad, { query => 'wrong sentinel password' })->{status}, 503,
       'a wrong sentinel password: 503, nothing created');
    ok(wait_for(5, sub { $bad->error_log =~ /a sentinel refused to name master "cc2": (WRONGPASS|NOAUTH|ERR)/ }),
       '... and the refusal is logged');
    unlike($bad->error_log . $good->error_log, qr/wrong-password|s3cret-sentinel/,
           'no sentinel password in error.log');
    $good->stop;
    $bad->stop;
}

kill 'TERM', map { $_->{pid} } @sentinels;
waitpid($_->{pid}, 0) for @sentinels;
@sentinels = ();
done();
