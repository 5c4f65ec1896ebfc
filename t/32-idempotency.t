# Idempotency-Key on POST /api/generate and /api/bulk-generate: the same key
# and body give the same job(s) for 24 h; the same key with another body is
# a 409; bad keys are a 400; nothing is created twice.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF

sub idem { return (headers => { 'Idempotency-Key' => $_[0], %{ $_[1] // {} } }) }

my $first = created_ok(generate($ng, { query => 'moon landing' }, idem('key-1')),
                       'first POST with a key');
my $jobs = job_count($redis);
my $res = generate($ng, { query => 'moon landing' }, idem('key-1'));
is($res->{status}, 200, 'the same key and body again: 200');
is_deeply(json_body($res), $first, 'the same job object');
is(job_count($redis), $jobs, 'no second job');

# the replay shows the job's current state
$redis->cmd('HSET', $JOB_PREFIX . $first->{job_id}, 'status', 'failed',
            'error', 'boom', 'completed_at', '2026-01-01T00:00:00.000000Z');
$res = generate($ng, { query => 'moon landing' }, idem('key-1'));
is(json_body($res)->{status}, 'failed', 'a replay shows the current state');
is(json_body($res)->{error}, 'boom', 'with its error');

$res = no_job_created($redis, 'conflict', sub {
    generate($ng, { query => 'another body' }, idem('key-1'))
});
is_error($res, 409, qr/Idempotency-Key/, 'the same key, another body: 409');
$res = no_job_created($redis, 'other user', sub {
    generate($ng, { query => 'moon landing' }, idem('key-1', { 'X-User-Id' => 'bob' }))
});
is_error($res, 409, qr/Idempotency-Key/, 'the same key from another creator: 409');

my $ttl = $redis->cmd('TTL', 'clockchain:{cc}:v1:idem:key-1');
ok($ttl > 86000 && $ttl <= 86400, "the key is kept for 24 h (TTL $ttl)");

# another key is another job; no key is always a new job
my $other = created_ok(generate($ng, { query => 'moon landing' }, idem('key-2')),
                       'another key');
isnt($other->{job_id}, $first->{job_id}, 'another key: another job');
my $a = created_ok(generate($ng, { query => 'moon landing' }), 'no key 1');
my $b = created_ok(generate($ng, { query => 'moon landing' }), 'no key 2');
isnt($a->{job_id}, $b->{job_id}, 'without a key: two jobs');

# bulk: one key for the batch
my $batch = { queries => [ { query => 'bulk one' }, { query => 'bulk two' } ] };
$res = bulk($ng, $batch, idem('batch-1'));
is($res->{status}, 200, 'bulk with a key');
my $arr = json_body($res);
$jobs = job_count($redis);
$res = bulk($ng, $batch, idem('batch-1'));
is_deeply(json_body($res), $arr, 'bulk replay: the same array');
is(job_count($redis), $jobs, 'bulk replay: no new jobs');
is_error(bulk($ng, { queries => [ { query => 'bulk one' } ] }, idem('batch-1')),
         409, qr/Idempotency-Key/, 'bulk with the key and another body: 409');
is_error(generate($ng, { queries => $batch->{queries} }, idem('batch-1')),
         400, qr/query/, 'the batch body on generate is a 400 first');
is_error(generate($ng, { query => 'bulk one' }, idem('batch-1')), 409,
         qr/Idempotency-Key/, 'a bulk key used on generate: 409');

# bad keys
for my $case ([ 'x' x 256, 'too long' ], [ "tab\there", 'a control character' ]) {
    $res = no_job_created($redis, $case->[1], sub {
        generate($ng, { query => 'moon landing' }, idem($case->[0]))
    });
    is_error($res, 400, qr/Idempotency-Key/, "key $case->[1]: 400");
}
my $body = '{"query":"moon landing"}';
($res) = no_job_created($redis, 'twice', sub {
    raw_request($ng->port, "POST /api/generate HTTP/1.1\r\nHost: x\r\n"
        . "X-Service-Key: test-key-1\r\nContent-Type: application/json\r\n"
        . "Idempotency-Key: a\r\nIdempotency-Key: b\r\nConnection: close\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body")
});
like($res // '', qr{^HTTP/1\.1 400}, 'the header twice: 400');
my $k255 = 'k' x 255;
created_ok(generate($ng, { query => 'moon landing' }, idem($k255)),
           'a key of 255 characters');

done();
