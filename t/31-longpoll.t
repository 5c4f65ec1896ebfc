# GET /api/jobs/{id}?wait=N: answers when the job finishes, on any nginx of
# the fleet, or with its current state when N runs out; plain GETs on other
# nginx see changes at once; 1000 waiting clients; clients that leave;
# waiters during a reload.
#
# No assertion here measures how fast an answer came.  A job changes when
# the test releases its Flash call ([flash:hold]); a waiter is in once nginx
# has read its request (tcp_unread); a wait=N that must be answered by the
# change has its client give up long before N, so the timer cannot have
# answered it.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');

# A runs the jobs; B and C only answer (C caps a wait at 2 s)
my $a = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_drain_timeout 1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
my $b = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
my $c = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_wait_max 2s;
        $JOBS_LOCATIONS
    }
CONF

sub parse_ts {
    my ($ts) = @_;
    return unless $ts && $ts =~ /^(\d+)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d+)Z$/;
    require Time::Local;
    return Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) + "0.$7";
}

# event: every waiter given has written its request and nginx has read it
# (it is registered from then on)
sub waiting {
    my ($ng, @w) = @_;
    return wait_for(10, sub {
        !grep({ !$_->sent } @w) && tcp_unread(local => $ng->port) == 0
    });
}

# event: A's runner has the job's Flash call (held)
sub held_call {
    my ($id) = @_;
    return wait_for(10, sub { @{ $flash->calls_for($id) } && $flash->held });
}

# ---------------------------------------------------------------------------
# created on A, waited for on B and C, finished by A's runner

my $job = created_ok(generate($a, { query => 'wait probe [flash:hold]' }),
                     'create on A');
my $id = $job->{job_id};
held_call($id);
# every client gives up after 15 s, far below wait=60: a 200 from A or B is
# the change's answer, never the timer's.  C caps a wait at 2 s: its timer
# would answer with the job still processing, so "completed" from C is the
# change's answer too (it comes a few Redis round trips after the release)
my %w = map { $_->[0] => background_get($_->[1], "/api/jobs/$id?wait=60",
                                        timeout => 15) }
        [ A => $a ], [ B => $b ], [ C => $c ];
waiting($a, $w{A});
waiting($b, $w{B});
waiting($c, $w{C});
# the job has not changed yet: nobody may have an answer
my %in = map { $_ => !$w{$_}->answered } keys %w;
$flash->release;

for my $n (qw(A B C)) {
    my ($t, $status, $body) = $w{$n}->result;
    is($status, 200, "$n: 200");
    my $j = eval { JSON::PP->new->decode($body) } // {};
    is($j->{status}, 'completed', "$n: answered with the finished job");
    ok(parse_ts($j->{completed_at}), "$n: completed_at");
    # event: the job's change (see above for why no timer could answer)
    ok($status == 200 && ($j->{status} // '') eq 'completed',
       "$n: answered by the change, not by a timer");
    # event: nginx had read the request, and not answered it, when the
    # Flash call was released
    ok($in{$n}, "$n: it did wait for the job");
}

# ---------------------------------------------------------------------------
# plain GETs on B see A's changes without delay

my $j2 = created_ok(generate($a, { query => 'fresh probe [flash:hold]' }), 'create 2');
held_call($j2->{job_id});
my $seen_processing =
    (json_body(get_job($b, $j2->{job_id})) // {})->{status} eq 'processing';
$flash->release;
my $first_done = wait_for(10, sub {
    (json_body(get_job($b, $j2->{job_id})) // {})->{status} eq 'completed'
});
ok($seen_processing, 'B saw the job processing');
ok($first_done, 'B saw it completed');
# event: the change's PUBLISH.  B's zone holds the job as processing (read
# above) and serves it from there while B is subscribed: nothing but the
# event can have told B, and B never lost its subscription meanwhile
ok($first_done && $b->error_log !~ /lost the events subscription/,
   'B saw the completion through its event (its zone served the job until then)');

# ---------------------------------------------------------------------------
# N runs out: the current state; the cap; a finished job at once; errors

# the slow job is held until the end of this part: only a timer can answer.
# A timer fires no earlier than it is set for, so the lower bounds below
# hold on any machine; the upper bounds are the clients' timeouts, far
# above the timer that must answer and far below the one that must not
my $slow = created_ok(generate($a, { query => 'slow probe [flash:hold]' }), 'slow job');
held_call($slow->{job_id});
my $t = time;
my $res = get_job($b, "$slow->{job_id}?wait=1", ua => http_ua(timeout => 30));
my $took = time - $t;
is($res->{status}, 200, 'wait=1 on a slow job: 200');
like(json_body($res)->{status}, qr/^(pending|processing)$/, 'with the current state');
# event: the 1 s timer (the job cannot change); not at once
ok($took >= 0.9 && $res->{status} == 200,
   sprintf 'after its 1 s timer, not at once (%.2f s)', $took);

$t = time;
$res = get_job($c, "$slow->{job_id}?wait=60", ua => http_ua(timeout => 30));
$took = time - $t;
# event: C's 2 s cap; wait=60 cannot have answered before the client's
# 30 s timeout
ok($took >= 1.9 && $res->{status} == 200,
   sprintf 'wait=60 is capped by clockchain_wait_max 2s (%.2f s)', $took);

# a client that gives up after 5 s, below wait=60 and wait=30: an answer
# is nginx's at once, not a timer's
$res = get_job($b, "$id?wait=60", ua => http_ua(timeout => 5));
ok($res->{status} == 200, 'a finished job answers at once');
is(json_body($res)->{status}, 'completed', '... finished');

$res = get_job($b, '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b?wait=60',
               ua => http_ua(timeout => 5));
is_error($res, 404, 'Job not found', 'unknown id with wait: 404');
ok($res->{status} == 404, '... at once');
is_error(get_job($b, "$id?wait=abc"), 400, qr/wait/, 'wait=abc: 400');
is_error(get_job($b, "$id?wait=-1"), 400, qr/wait/, 'wait=-1: 400');
is(get_job($b, "$slow->{job_id}?wait=0")->{status}, 200, 'wait=0 is a plain GET');
$flash->release;

# ---------------------------------------------------------------------------
# 1000 waiting clients on one nginx: their memory, and all of them answered

sub rss_kb {
    my @pids = @_;
    my $kb = 0;
    for my $pid (@pids) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $kb += $1 if /^VmRSS:\s+(\d+)/ }
    }
    return $kb;
}

sub cpu_ticks {
    my $t = 0;
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my @f = split ' ', scalar <$fh>;
        $t += $f[13] + $f[14];
    }
    return $t;
}

my $many = created_ok(generate($a, { query => 'crowd probe [flash:hold]' }), 'crowd job');
held_call($many->{job_id});
my @workers = $b->worker_pids;
my $rss0 = rss_kb(@workers);
my $cpu0 = cpu_ticks(@workers);
my $sel = IO::Select->new;
my %buf;
for (1 .. 1000) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $b->port,
                                  Proto => 'tcp') or last;
    print {$s} "GET /api/jobs/$many->{job_id}?wait=20 HTTP/1.1\r\nHost: x\r\n"
        . "X-Service-Key: test-key-1\r\nConnection: close\r\n\r\n";
    $sel->add($s);
    $buf{$s} = '';
}
is($sel->count, 1000, '1000 clients wait');
# event: nginx has read the 1000 requests (each is a registered waiter) and
# its workers are done with them: their CPU time stops growing.  Then one
# second of nothing but waiting is measured (the job is held)
wait_for(30, sub { tcp_unread(local => $b->port) == 0 });
wait_for(30, sub {
    my $c0 = cpu_ticks(@workers);
    sleep 0.3;
    return cpu_ticks(@workers) - $c0 <= 1;
});
$cpu0 = cpu_ticks(@workers);
sleep 1;    # the window measured, not a wait for anything
my $rss1 = rss_kb(@workers);
my $cpu1 = cpu_ticks(@workers);
$flash->release;
note(sprintf 'workers of B: RSS %d kB -> %d kB with 1000 waiting (%.1f kB '
     . 'a client), CPU %d ticks in 1 s of waiting', $rss0, $rss1,
     ($rss1 - $rss0) / 1000, $cpu1 - $cpu0);
cmp_ok($cpu1 - $cpu0, '<', 50, 'waiting costs no CPU (no busy loop)');
my $answered = 0;
my $completed = 0;
my $end = time + 20;
while ($sel->count && time < $end) {
    for my $s ($sel->can_read(1)) {
        my $n = sysread($s, $buf{$s}, 65536, length $buf{$s});
        next if $n;
        $answered++;
        $completed++ if $buf{$s} =~ /"status":"completed"/;
        $sel->remove($s);
        close $s;
    }
}
is($answered, 1000, 'all 1000 were answered');
is($completed, 1000, 'all with the finished job');

# ---------------------------------------------------------------------------
# clients that leave while they wait are cleaned up

my $left = created_ok(generate($a, { query => 'leave probe [flash:hold]' }), 'leave job');
held_call($left->{job_id});
my @gone;
for (1 .. 50) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $b->port,
                                  Proto => 'tcp') or last;
    print {$s} "GET /api/jobs/$left->{job_id}?wait=20 HTTP/1.1\r\nHost: x\r\n"
        . "X-Service-Key: test-key-1\r\n\r\n";
    push @gone, $s;
}
# event: nginx has read the 50 requests: they are waiters that then leave
wait_for(10, sub { tcp_unread(local => $b->port) == 0 });
close $_ for @gone;
my $stay = background_get($b, "/api/jobs/$left->{job_id}?wait=20");
waiting($b, $stay);
$flash->release;
my (undef, $st, $body) = $stay->result;
is($st, 200, 'a client that stayed is answered');
like($body, qr/"status":"completed"/, '... with the finished job');
ok(wait_for(5, sub { $b->access_log =~ /" 499 / }),
   'the clients that left were finalized (499 in the access log)');

# ---------------------------------------------------------------------------
# the subscription drops: what changed meanwhile is not served from the zone

my $sd = created_ok(generate($a, { query => 'drop probe [flash:delay=30]' }), 'drop job');
ok(wait_for(5, sub { (json_body(get_job($b, $sd->{job_id})) // {})->{status} eq 'processing' }),
   'B has the job processing (cached)');
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
# a change that no subscriber hears
$redis->cmd('HSET', $JOB_PREFIX . $sd->{job_id}, 'status', 'failed',
            'error', 'changed unheard', 'completed_at', '2026-01-01T00:00:00.000000Z');
$redis->cmd('HINCRBY', $JOB_PREFIX . $sd->{job_id}, 'version', 1);
ok(wait_for(5, sub { (json_body(get_job($b, $sd->{job_id})) // {})->{status} eq 'failed' }),
   'after the resubscription B serves the change, not its cached state');
like($b->error_log, qr/lost the events subscription/, 'the drop was logged');

# ---------------------------------------------------------------------------
# a final state travels with its event: the waiter is answered from it, and
# Redis is not asked again (the hash here says otherwise on purpose)

{
    my $EVENTS = 'clockchain:{cc}:v1:events';
    my $id = '6f9d2c1e-4b7a-4c3d-9e8f-0a1b2c3d4e5f';
    # recent: a finished job older than clockchain_keep_completed is let go
    my @t = gmtime(time - 60);
    my $created = sprintf '%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                          $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
    (my $done_at = $created) =~ s/\.000000Z$/.500000Z/;
    my $path = '/1969/july/20/2017/united-states/florida/cape-canaveral/apollo-11-landing-3f4a';
    $redis->cmd('HSET', $JOB_PREFIX . $id, 'status', 'pending',
                'created_at', $created, 'version', 1);

    # event: every worker of A, B and C is subscribed to both channels
    # again (the drop above made them all subscribe anew)
    my $nw = 0;
    for my $ng ($a, $b, $c) { $nw += () = $ng->worker_pids }
    wait_for(10, sub {
        $nw == grep { /sub=3 / } split /\n/, $redis->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub')
    });
    my $w = background_get($b, "/api/jobs/$id?wait=10");
    waiting($b, $w);    # event: B has read the request, a waiter is in
    cmp_ok($redis->cmd('PUBLISH', "$EVENTS:final",
                       "$id completed 7 $created $done_at $path"), '>=', 3,
           'the final state reached the three nginx');
    my ($tw, $st, $body) = $w->result;
    is($st, 200, 'event with the state: the waiter gets a 200');
    my $j = eval { JSON::PP::decode_json($body) } // {};
    is($j->{status}, 'completed', '... completed, as the event said');
    is($j->{path}, $path, '... with the path from the event');
    is($j->{completed_at}, $done_at, '... and its completed_at');
    is($j->{created_at}, $created, '... and its created_at');
    is($redis->hash($JOB_PREFIX . $id)->{status}, 'pending',
       '(Redis still says pending: the answer did not come from there)');
    is((json_body(get_job($b, $id)) // {})->{path}, $path,
       'a plain GET on B is served the same state from the zone');

    # a failed state with an error of several words
    my $id2 = '7a0e3d2f-5c8b-4d4e-8f90-1b2c3d4e5f60';
    $redis->cmd('HSET', $JOB_PREFIX . $id2, 'status', 'pending',
                'created_at', $created, 'version', 1);
    $w = background_get($b, "/api/jobs/$id2?wait=10");
    waiting($b, $w);
    $redis->cmd('PUBLISH', "$EVENTS:final",
                "$id2 failed 4 $created $done_at Flash API error: 500 went wrong");
    ($tw, $st, $body) = $w->result;
    $j = eval { JSON::PP::decode_json($body) } // {};
    is($j->{status}, 'failed', 'a failed event: the waiter gets failed');
    is($j->{error}, 'Flash API error: 500 went wrong', '... with the whole error');
    ok(!defined $j->{path}, '... and no path');

    # a malformed final state is not cached: the job is read from Redis
    my $id3 = '8b1f4e30-6d9c-4e5f-9a01-2c3d4e5f6071';
    $redis->cmd('HSET', $JOB_PREFIX . $id3, 'status', 'pending',
                'created_at', $created, 'version', 1);
    for my $bad ("$id3 completed 9 $created $done_at ../../etc/passwd",
                 "$id3 completed 9 2026-13-01T00:00:00.000000Z $done_at $path",
                 "$id3 completed 9 $created",
                 "$id3 completed 9 ${created}x$done_at $path",
                 "$id3 completed 9x $created $done_at $path") {
        $redis->cmd('PUBLISH', "$EVENTS:final", $bad);
    }
    # event: both of B's workers logged the last of them (each hears every
    # event, in the order published)
    $nw = () = $b->worker_pids;
    wait_for(10, sub {
        my %pids = map { $_ => 1 } $b->error_log
            =~ /(\d+)#\d+: clockchain: ignored a malformed event "\Q$id3\E completed 9x /g;
        return keys %pids >= $nw;
    });
    my $g = json_body(get_job($b, $id3)) // {};
    is($g->{status}, 'pending', 'malformed final states are not served');
    like($b->error_log, qr/ignored the final state in a malformed event "\Q$id3\E completed 9 \Q$created $done_at\E \.\.\/\.\.\/etc\/passwd", job \Q$id3\E is read from redis/,
         '... and are logged');
    like($b->error_log, qr/ignored a malformed event "\Q$id3\E completed 9x /,
         '... a malformed version too');
    $redis->cmd('DEL', map { $JOB_PREFIX . $_ } $id, $id2, $id3);
}

# ---------------------------------------------------------------------------
# a Redis that takes the connection but does not answer: the subscription is
# not waited for forever, and comes up once Redis answers again

{
    my $subscribers = sub {
        # each worker on both channels: the changes and the final states
        scalar grep { /sub=3 / } split /\n/, $redis->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub');
    };
    my $before = $subscribers->();
    stop_processes($redis->pid);
    my $d = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% timeout=1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
    my $seen = wait_for(6, sub {
        $d->error_log =~ /redis did not confirm the events subscription in 1000 ms, connecting again/
    });
    kill 'CONT', $redis->pid;
    ok($seen, 'a silent Redis: the subscription attempt is given up and logged');
    my $workers = () = $d->worker_pids;
    ok(wait_for(10, sub { $subscribers->() == $before + $workers }),
       "once Redis answers, each of the $workers workers subscribes again");

    # every connection nginx holds to Redis has TCP keepalive on (timer 02
    # in /proc/net/tcp): a Redis gone without a FIN is noticed
    my $mine = sprintf '%04X', $redis->{sock}->sockport;
    my $rport = sprintf '%04X', $redis->port;
    my ($all, $kept) = (0, 0);
    open my $tcp, '<', '/proc/net/tcp' or die $!;
    while (<$tcp>) {
        my @f = split;
        next unless ($f[2] // '') =~ /^0100007F:$rport$/ && $f[3] eq '01';
        next if $f[1] =~ /:$mine$/;
        $all++;
        $kept++ if $f[5] =~ /^02:/;
    }
    cmp_ok($all, '>=', 2 * $workers, "nginx's connections to Redis ($all)");
    is($kept, $all, '... all with TCP keepalive');

    my $j = created_ok(generate($a, { query => 'after the silence [flash:hold]' }),
                       'a job after Redis answers again');
    held_call($j->{job_id});
    # event: the job's change; the client gives up at 15 s, wait=60
    my $w = background_get($d, "/api/jobs/$j->{job_id}?wait=60", timeout => 15);
    waiting($d, $w);
    $flash->release;
    my (undef, $st, $body) = $w->result;
    ok($st == 200 && $body =~ /"status":"completed"/,
       'the new subscription wakes a waiter on that nginx');
    $d->stop;
}

# ---------------------------------------------------------------------------
# waiters during a reload are answered, not dropped

# the job is held until the end: a 200 before the client's 15 s timeout
# (wait=60) is the leaving worker's answer, neither the job's nor a timer's
my $rl = created_ok(generate($a, { query => 'reload probe [flash:hold]' }), 'reload job');
held_call($rl->{job_id});
my $w1 = background_get($b, "/api/jobs/$rl->{job_id}?wait=60", timeout => 15);
waiting($b, $w1);
$b->reload;
my ($tw, $sw, $bw) = $w1->result;
is($sw, 200, 'a waiter during a reload gets a 200');
like($bw, qr/"status":"(pending|processing|completed)"/, '... with the job');
# event: the old worker's exit (the job was still held)
ok($sw == 200 && $bw !~ /"status":"completed"/, '... without waiting for the job');
$flash->release;

done();
