# GET /api/jobs/{id} and /api/v1/jobs/{id}: same object as the POST, 404s,
# malformed ids, HEAD, methods, a second nginx on the same Redis.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $redis = start_redis();
my $CONF = <<"EOF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF
my $ng = start_nginx(redis => $redis, conf => $CONF);
my $KEY = { 'X-Service-Key' => 'test-key-1' };

my @jobs;
for my $i (1 .. 3) {
    my $j = created_ok(generate($ng, { query => "Jobs test query $i" }),
                       "create job $i");
    push @jobs, $j if $j;
}
unless (is(scalar @jobs, 3, 'three jobs created')) {
    done();
    exit;
}
my $job = $jobs[0];
my $id = $job->{job_id};

# --- the same object, under both paths, from both workers
for my $path ('/api/jobs/', '/api/v1/jobs/') {
    for my $j (@jobs) {
        my $res = get_job($ng, $j->{job_id}, path => $path);
        is($res->{status}, 200, "GET $path<id> -> 200");
        my $d = json_ok($res, "GET $path<id>");
        is_deeply($d, $j, "GET $path<id>: the object the POST returned");
    }
}
{
    my $same = 0;
    for (1 .. 20) {
        my $res = get_job($ng, $id);
        $same++ if $res->{status} == 200 && eq_or_diff(json_body($res), $job);
    }
    is($same, 20, '20 GETs in a row (both workers) return the same object');
}
sub eq_or_diff { my ($a, $b) = @_; return JSON::PP->new->canonical->encode($a)
                     eq JSON::PP->new->canonical->encode($b) }

# GET does not change Redis
{
    my $before = redis_state($redis);
    my $h = $redis->hash($JOB_PREFIX . $id);
    get_job($ng, $id) for 1 .. 3;
    is(redis_state($redis), $before, 'GET creates no keys');
    is_deeply($redis->hash($JOB_PREFIX . $id), $h, 'GET leaves the job hash as it was');
}

# --- HEAD
{
    my $res = http(HEAD => $ng->url("/api/jobs/$id"), headers => $KEY);
    is($res->{status}, 200, 'HEAD job -> 200');
    like($res->{headers}{'content-type'} // '', qr{^application/json},
         'HEAD job: Content-Type application/json');
    is($res->{content} // '', '', 'HEAD job: no body');
}

# --- unknown and malformed ids -> 404
is_error(get_job($ng, '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b'), 404,
         'Job not found', 'unknown well-formed id -> 404');
is_error(get_job($ng, '00000000-0000-4000-8000-000000000000', path => '/api/v1/jobs/'),
         404, 'Job not found', 'unknown id under /api/v1/jobs/ -> 404');
for my $case (
    [ 'uppercase id',          uc $id ],
    [ 'id without last char',  substr($id, 0, 35) ],
    [ 'id plus one char',      $id . 'a' ],
    [ 'id plus a segment',     "$id/x" ],
    [ 'id with trailing slash', "$id/" ],
    [ 'id without dashes',     $id =~ s/-//gr ],
    [ 'non-hex id',            'zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz' ],
    [ 'empty id',              '' ],
    [ 'redis key as id',       "x:$id" ],
    [ 'glob as id',            '*' ],
) {
    my ($name, $bad) = @$case;
    is_error(get_job($ng, $bad), 404, undef, "$name -> 404");
}
{
    # nginx itself refuses a %00 in the URI (400) before any module runs;
    # either way it must not be a 200 or a 5xx.
    my $res = get_job($ng, "$id%00");
    ok($res->{status} == 404 || $res->{status} == 400, 'id%00 -> 404 (or 400)')
        or diag("got $res->{status}");
    $res = get_job($ng, '%00');
    ok($res->{status} == 404 || $res->{status} == 400, '%00 -> 404 (or 400)')
        or diag("got $res->{status}");
    # an escaped but otherwise valid id
    (my $esc = $id) =~ s/^(.)/sprintf('%%%02x', ord $1)/e;
    $res = get_job($ng, $esc);
    ok($res->{status} == 200 || $res->{status} == 404,
       'percent-encoded id -> 200 or 404') or diag("got $res->{status}");
}

# --- methods
for my $m (qw(POST PUT DELETE PATCH)) {
    my $res = no_job_created($redis, "$m /api/jobs/<id>", sub {
        http($m => $ng->url("/api/jobs/$id"), headers => $KEY,
             body => '{}') });
    is_error($res, 405, undef, "$m /api/jobs/<id> -> 405");
    like($res->{headers}{allow} // '', qr/^\s*GET,\s*HEAD\s*$/,
         "$m /api/jobs/<id>: Allow: GET, HEAD");
}
is($redis->cmd('EXISTS', $JOB_PREFIX . $id), 1, 'DELETE did not delete the job');

# --- a second nginx on the same Redis reads the jobs from Redis
{
    my $ng2 = start_nginx(redis => $redis, conf => $CONF);
    for my $j (@jobs) {
        my $res = get_job($ng2, $j->{job_id});
        is($res->{status}, 200, 'second nginx: GET job created on the first -> 200');
        is_deeply(json_body($res), $j, 'second nginx: same object');
    }
    is_error(get_job($ng2, '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b'), 404,
             'Job not found', 'second nginx: unknown id -> 404');
    my $j2 = created_ok(generate($ng2, { query => 'Created on the second nginx' }),
                        'second nginx: create a job');
    if ($j2) {
        my $res = get_job($ng, $j2->{job_id});
        is($res->{status}, 200, 'first nginx reads the job created on the second');
        is_deeply(json_body($res), $j2, 'first nginx: same object');
    }
}

done();
