# clockchain_redis wait=N: a POST that finds all 8 of its worker's create
# connections busy waits in a queue "for at most timeout=" (docs/
# directives.md).  That bound is the POST's, not the queue's alone: a POST
# that waited most of timeout= for a connection must not then get a whole
# new timeout= on it.  Before the fix a queued POST was looked at only when
# a connection freed, and then sent with a fresh timeout=, so with Redis
# hanging it answered after nearly twice timeout=.
#
# Redis is stopped (SIGSTOP) so that nothing frees a connection but its
# timeout; 20 POSTs at once fill both workers' 8 connections, so at least
# 4 of them wait in a queue.  Each must answer 503, within timeout= (2 s)
# of its start plus scheduling slack, never near 2 x timeout=.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Clockchain::Test;

my $PW = 'queue-pw';

my $primary = start_redis(password => $PW);
my $replica = start_redis(password => $PW,
    args => [ '--replicaof', '127.0.0.1', $primary->port, '--masterauth', $PW ]);

ok(wait_for(10, sub {
    ($primary->cmd('INFO', 'replication') // '') =~ /^slave0:.*state=online/m
}), 'the replica follows the primary');

my $ng = start_nginx(redis => $primary,
                     files => { 'conf/redis.pass' => "$PW\n" },
                     conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% password_file=%%PREFIX%%/conf/redis.pass wait=1 timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF

created_ok(generate($ng, { query => 'Before Redis hangs' }),
           'Redis up: POST with wait=1 -> 200');

stop_processes($primary->pid);

my @posts = map {
    my $n = $_;
    background(sub {
        my $t = time;
        my $res = generate($ng, { query => "While Redis hangs $n" });
        return (time - $t, $res->{status}, $res->{content});
    });
} 1 .. 20;

my @res = map { [ $_->result ] } @posts;

kill 'CONT', $primary->pid;

is(scalar(grep { $_->[1] == 503 } @res), 20, 'every POST answers 503')
    or diag(explain [ map { "$_->[1] $_->[2]" } @res ]);
like($res[0][2], qr/"detail":"Job store unavailable: /,
     '... with the JSON detail of an unavailable job store');

my @slow = sort { $b <=> $a } map { $_->[0] } @res;
# a POST answers at timeout= (2 s) of its start: in flight, by its
# connection's timer; queued, by its own deadline.  2 x timeout= is 4 s.
ok($slow[0] < 3.2,
   sprintf 'the slowest POST answered in %.2f s: within timeout= (2 s) '
         . 'and its slack, not a second timeout= on a connection',
           $slow[0]);
like($ng->error_log, qr/did not answer a POST in 2000 ms/,
     'error.log names the timeout of the POSTs in flight');

# the worker goes on: Redis is back, so is the POST
ok(wait_for(15, sub { generate($ng, { query => 'After Redis is back' })->{status} == 200 }),
   'Redis back: POST with wait=1 -> 200 again');

done();
