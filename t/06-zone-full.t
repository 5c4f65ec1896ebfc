# A small zone fills up: every POST still succeeds and every job can still be
# read (evicted ones come back from Redis).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Clockchain::Test;

my $N = 2000;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:64k;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF
my $ua = http_ua(keep_alive => 1);

my $t0 = time;
my (@jobs, @fail);
for my $i (1 .. $N) {
    # a fresh connection each: HTTP::Tiny writes the header and the body
    # separately, and on a kept-alive connection Nagle + delayed ACK cost
    # 40 ms a request
    my $res = generate($ng, { query => "Zone full query number $i" });
    my $d = json_body($res);
    if ($res->{status} == 200 && ref $d eq 'HASH' && $d->{job_id}) {
        push @jobs, $d;
    } else {
        push @fail, "POST $i: $res->{status} " . substr($res->{content} // '', 0, 200);
    }
}
is(scalar @jobs, $N, "$N POSTs into a 64k zone: all 200") or diag(join "\n", @fail[0 .. ($#fail < 9 ? $#fail : 9)]);
note(sprintf '%d POSTs in %.1f s', $N, time - $t0);
my %ids = map { $_->{job_id} => 1 } @jobs;
is(scalar keys %ids, scalar @jobs, 'all ids distinct');
is(job_count($redis), $N, "redis holds $N job hashes");
is($redis->cmd('ZCARD', $QUEUE_KEY), $N, "the queue holds $N ids");

# read every job back, oldest first (the ones evicted from the zone first)
$t0 = time;
my @bad;
for my $j (@jobs) {
    my $res = get_job($ng, $j->{job_id}, ua => $ua);
    my $d = json_body($res);
    push @bad, "GET $j->{job_id}: $res->{status} " . substr($res->{content} // '', 0, 200)
        unless $res->{status} == 200 && ref $d eq 'HASH'
            && join("\0", map { $_ // '' } @$d{qw(job_id status path error created_at completed_at)})
            eq join("\0", map { $_ // '' } @$j{qw(job_id status path error created_at completed_at)})
            && keys %$d == 6;
}
is(scalar @bad, 0, "all $N jobs read back with the object the POST returned")
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
note(sprintf '%d GETs in %.1f s', scalar @jobs, time - $t0);

# the zone is bounded: with Redis stopped, the most recently read job is
# still served from the zone, the least recently read one is not (503)
$redis->stop;
{
    my $res = get_job($ng, $jobs[-1]{job_id});
    is($res->{status}, 200, 'Redis down: the most recently used job is in the zone');
    is_deeply(json_body($res), $jobs[-1], 'Redis down: same object');
    $res = get_job($ng, $jobs[0]{job_id});
    is_error($res, 503, undef,
             'Redis down: the least recently used job was evicted -> 503');
}
$redis->start;
ok(wait_for(10, sub { get_job($ng, $jobs[0]{job_id})->{status} == 200 }),
   'Redis back: the evicted job is read from Redis again');

# and once more in the other order, on fresh connections
@bad = ();
for my $j (reverse @jobs[-50 .. -1], @jobs[0 .. 49]) {
    my $res = get_job($ng, $j->{job_id});
    push @bad, $j->{job_id} unless $res->{status} == 200;
}
is(scalar @bad, 0, 'newest and oldest jobs read back again on new connections')
    or diag("@bad[0 .. ($#bad < 9 ? $#bad : 9)]");

# the zone still works after all that: a new job, read back at once
my $j = created_ok(generate($ng, { query => 'After the zone filled up' }),
                   'create one more job');
if ($j) {
    my $res = get_job($ng, $j->{job_id});
    is($res->{status}, 200, 'GET the newest job -> 200');
    is_deeply(json_body($res), $j, 'newest job: same object');
}

# A GET moves its job to the head of the LRU, unless it is there already
# (then nothing in the zone is written).  Finished jobs seeded in Redis,
# read once into a zone of their own, then deleted from Redis: a GET
# answers 200 only from the zone.  X is read again after Y: the first
# eviction takes Y, the least recently used, and not X.
{
    my $z = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone lru:64k;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /metrics { clockchain_metrics; }
    }
EOF
    my @t = gmtime(time - 30);
    my $at = sprintf '%04d-%02d-%02dT%02d:%02d:%02d.000000Z',
                     $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
    my $n = 0;
    my $seed = sub {
        my $id = sprintf '%08x-0000-4000-8000-%012x', ++$n, $n;
        $redis->cmd('HSET', $JOB_PREFIX . $id, 'id', $id, 'status', 'failed',
                    'error', 'e', 'created_at', $at, 'completed_at', $at,
                    'version', 4);
        my $st = get_job($z, $id)->{status};
        is($st, 200, "LRU: job $n read into the zone") if $n <= 2;
        return $id;
    };
    my $evictions = sub {
        my $r = http(GET => $z->url('/metrics'), headers => { Accept => 'application/json' });
        return (json_body($r) // {})->{zone_evictions} // -1;
    };
    my $x = $seed->();
    my $y = $seed->();
    $redis->cmd('DEL', $JOB_PREFIX . $_) for $x, $y;
    # X to the head (from behind Y), then at the head: read again
    is(get_job($z, $x)->{status}, 200, "LRU: X from the zone, $_")
        for 'moved to the head', 'at the head already', 'and again';
    is($evictions->(), 0, 'LRU: nothing evicted yet');
    my $more = 0;
    while ($evictions->() == 0 && $more++ < 2000) {
        $seed->();
    }
    is($evictions->(), 1, "LRU: the zone full after $more more jobs, one evicted");
    is(get_job($z, $y)->{status}, 404, 'LRU: Y, the least recently used, was evicted');
    is(get_job($z, $x)->{status}, 200, 'LRU: X, read after Y, is still in the zone');
}

done();
