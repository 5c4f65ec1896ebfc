# A POST replayed with the same Idempotency-Key under clockchain_redis
# wait=N is confirmed by the replicas like a new one. The 503 of a WAIT that
# timed out tells the client to retry with the same key; the retry found the
# key and answered 200 at once, with no replica asked, so a failover could
# still lose a job the client held a 200 for.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $primary = start_redis();
my $replica = start_redis(args => [ '--replicaof', '127.0.0.1', $primary->port ]);

sub replicas_online {
    my $info = $primary->cmd('INFO', 'replication') // '';
    return scalar(() = $info =~ /^slave\d+:.*state=online/mg);
}

ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica follows the primary');

# WAIT waits for half of timeout=: 1 s
my $ng = start_nginx(redis => $primary, conf => <<'EOF');
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% wait=1 timeout=2s;

    server {
        listen 127.0.0.1:%%PORT%%;
        clockchain_service_key test-key-1;

        location = /api/generate { clockchain_generate; }
    }
EOF

my %KEY = ('Idempotency-Key' => 'replayed-1');
my $body = { query => 'A job asked for twice' };

my $first = created_ok(generate($ng, $body, headers => \%KEY),
                       'the first POST, replica up: 200');

# the replica hangs: the replay must wait for it like the first POST
stop_processes($replica->pid);
my $res = generate($ng, $body, headers => \%KEY);
is_error($res, 503, qr/replica/, 'replayed while the replica hangs: 503, not 200');
kill 'CONT', $replica->pid;

ok(wait_for(10, sub { replicas_online() == 1 }), 'the replica is back');
$res = generate($ng, $body, headers => \%KEY);
is($res->{status}, 200, 'replayed with the replica back: 200');
is_deeply(json_body($res), $first, '... the same job');
is(job_count($primary), 1, '... and no second job');

# no replica at all: the replay is refused at once, as a new POST is
$replica->stop;
ok(wait_for(10, sub { replicas_online() == 0 }), 'the primary has no replica');
$res = generate($ng, $body, headers => \%KEY);
is_error($res, 503, qr/must confirm each job, Redis has 0/,
         'replayed with no replica: 503');
is(job_count($primary), 1, '... and still one job');

done();
