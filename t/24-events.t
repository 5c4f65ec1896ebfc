# Changes nobody heard: what the events subscription cannot deliver while it
# is down must not be trusted or waited for after it comes back.
#
# 1. A read of a job sent before a subscription came back, answered after
#    it, is not trusted in the new epoch: the job's last change happened in
#    between, unheard, and no event will ever correct the zone.
# 2. A request that waits (?wait=N) for a job that finished while the
#    subscription was down is answered once the subscription is back, not
#    when N runs out.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $redis = start_redis();

# a job made in Redis as create.lua makes it, so that no zone has it yet
sub make_job {
    my ($id) = @_;
    my @t = gmtime(time - 10);
    my $created = sprintf '%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                          $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
    $redis->cmd('HSET', $JOB_PREFIX . $id, 'id', $id, 'status', 'pending',
                'created_at', $created, 'query', 'unheard', 'version', 1);
    return $created;
}

# the job completes in Redis and nobody hears it: no PUBLISH, as when it is
# published while no worker is subscribed
my $PATH = '/1969/july/20/2017/united-states/florida/cape-canaveral/apollo-11-landing-3f4a';
sub finish_unheard {
    my ($id) = @_;
    my @t = gmtime;
    my $done = sprintf '%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                       $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
    $redis->cmd('HSET', $JOB_PREFIX . $id, 'status', 'completed',
                'path', $PATH, 'completed_at', $done);
    $redis->cmd('HINCRBY', $JOB_PREFIX . $id, 'version', 1);
}

# Redis' clients as a list of { id, addr, cmd, sub, ... }
sub clients {
    my (@filter) = @_;
    return map { +{ map { split /=/, $_, 2 } split / / } }
           split /\n/, $redis->cmd('CLIENT', 'LIST', @filter);
}

# the pid, of those given, that holds the local end 127.0.0.1:port of a
# connection to Redis (the same local port may serve a connection elsewhere)
sub owner_of {
    my ($port, @pids) = @_;
    my $hex = sprintf ':%04X', $port;
    my $to = sprintf '0100007F:%04X', $redis->port;
    my $inode;
    open my $tcp, '<', '/proc/net/tcp' or die $!;
    while (my $l = <$tcp>) {
        my @f = split ' ', $l;
        $inode = $f[9], last
            if ($f[1] // '') =~ /\Q$hex\E$/ && ($f[2] // '') eq $to;
    }
    return unless $inode;
    for my $pid (@pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            return $pid if (readlink($fd) // '') eq "socket:[$inode]";
        }
    }
    return;
}

# bytes that Redis has not read yet, on the connections to it
sub redis_unread { tcp_unread(local => $redis->port) }

sub subscriptions { scalar grep { ($_->{sub} // 0) == 3 } clients('TYPE', 'pubsub') }

sub subscribed_lines {
    my ($ng, $pid) = @_;
    return scalar(() = $ng->error_log =~ /\b$pid#\d+: clockchain: subscribed to /g);
}

# the nginx of each part: Redis' timeout= is all that differs
sub conf {
    my ($timeout) = @_;
    return <<"EOF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% timeout=$timeout;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF
}

# ---------------------------------------------------------------------------
# 1. read before a resubscription, answered after it: not trusted

{
    my $ng = start_nginx(redis => $redis, conf => conf('10s'));
    my @workers = $ng->worker_pids;
    is(scalar @workers, 2, 'two workers');
    ok(wait_for(10, sub { subscriptions() == 2 }), 'both are subscribed');

    my $id = 'd4c3b2a1-0f9e-4d8c-9b7a-6e5f4d3c2b1a';
    make_job($id);

    # the read leaves the worker while Redis is stopped; both workers are
    # stopped before Redis answers it, so the answer waits in the socket of
    # the worker that asked
    stop_processes($redis->pid);
    my $first = background_get($ng, "/api/jobs/$id");
    my $sent = wait_for(5, sub { redis_unread() > 0 });
    stop_processes(@workers);
    kill 'CONT', $redis->pid;
    ok($sent, 'the GET sent its HMGET');

    my ($reader) = ();
    ok(wait_for(5, sub {
        ($reader) = grep { ($_->{cmd} // '') eq 'hmget' } clients('TYPE', 'normal');
        return $reader;
    }), 'Redis answered the HMGET (pending)');
    my $w1 = $reader && owner_of((split /:/, $reader->{addr})[1], @workers);
    my ($w2) = grep { $_ != ($w1 // 0) } @workers;
    ok($w1 && $w2, "the worker that asked is $w1; the other is $w2");

    # the job's last change, which no event will tell
    finish_unheard($id);

    # the other worker's subscription drops and comes back: a new epoch
    my ($sub2) = grep { (owner_of((split /:/, $_->{addr})[1], $w2) // 0) == $w2 }
                 clients('TYPE', 'pubsub');
    ok($sub2, "the subscription of $w2");
    my $before = subscribed_lines($ng, $w2);
    $redis->cmd('CLIENT', 'KILL', 'ID', $sub2->{id}) if $sub2;
    kill 'CONT', $w2;
    ok(wait_for(10, sub { subscribed_lines($ng, $w2) > $before }),
       "$w2 subscribed again (the zone's epoch moved on)");

    # now the answer of before the change is read, and cached
    kill 'CONT', $w1;
    my (undef, $st, $body) = $first->result;
    is($st, 200, 'the GET sent before the change: 200');
    like($body, qr/"status":"pending"/, '... with the state Redis had then');

    # both workers hear every change from here on, so what they trust must
    # be what Redis says; the job will never change again
    my %seen;
    my $done = wait_for(3, sub {
        my $j = json_body(get_job($ng, $id)) // {};
        $seen{ $j->{status} // 'none' }++;
        return ($j->{status} // '') eq 'completed';
    });
    ok($done, 'a GET after the job completed answers completed, not the '
              . 'pending read before it, trusted for ever')
        or diag(explain \%seen);
    my $j = json_body(get_job($ng, $id)) // {};
    is($j->{path}, $PATH, '... with its path');
    $ng->stop;
}

# ---------------------------------------------------------------------------
# 2. a waiter whose job finished while the subscription was down

{
    my $ng = start_nginx(redis => $redis, conf => conf('1s'));
    ok(wait_for(10, sub { subscriptions() == 2 }), 'both workers are subscribed');

    my $id = 'e5d4c3b2-1a0f-4e9d-8c7b-6a5f4e3d2c1b';
    make_job($id);
    # wait=60; the client gives up after 30 s: a timer cannot answer it
    my $w = background_get($ng, "/api/jobs/$id?wait=60", timeout => 30);
    # event: Redis got the waiter's HMGET, and nginx has read its answer
    # (nothing from Redis is left unread on nginx's side)
    ok(wait_for(5, sub {
        (grep { ($_->{cmd} // '') eq 'hmget' } clients('TYPE', 'normal'))
            && tcp_unread(remote => $redis->port) == 0
    }),
       'the waiter read its job (pending) and waits');

    # no subscription is allowed for a while: every worker loses its own
    $redis->cmd('ACL', 'SETUSER', 'default', 'resetchannels');
    ok(wait_for(5, sub { subscriptions() == 0 }), 'the subscriptions are down');

    finish_unheard($id);
    # event: a worker tried to subscribe again after the change and was
    # refused: the change fell in the time with no subscription
    my $refused = () = $ng->error_log =~ /SUBSCRIBE failed/g;
    wait_for(10, sub { (() = $ng->error_log =~ /SUBSCRIBE failed/g) > $refused });
    $redis->cmd('ACL', 'SETUSER', 'default', 'allchannels');

    my ($ta, $st, $body) = $w->result;
    my $j = eval { decode_json($body) } // {};
    is($st, 200, 'the waiter gets a 200');
    is($j->{status}, 'completed', '... with the job completed');
    is($j->{path}, $PATH, '... and its path');
    # event: the resubscription's re-read (the log line below); structural:
    # wait=60 is twice the client's 30 s, so no timer answered
    ok($st == 200 && ($j->{status} // '') eq 'completed',
       'answered once subscribed again (wait=60: not at the timeout)');
    like($ng->error_log, qr/1 waiting request\(s\) read their job again after the subscription/,
         'the waiter was read again when the subscription came back');
    $ng->stop;
}

done();
