# X-Service-Key / X-Admin-Key checks, key files, unconfigured keys (503).
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $redis = start_redis();
my $ng = start_nginx(
    redis => $redis,
    ports => 3,
    files => {
        'conf/service.keys' =>
            "# service keys, one a line\n\nfile-key-1\n#commented-key\n\n"
            . "file-key-2\n",
        'conf/admin.keys' => "# admins\nadmin-file-key\n\n",
    },
    conf => <<'EOF');
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    # keys in the server block
    server {
        listen 127.0.0.1:%%PORT%%;
        clockchain_service_key test-key-1 test-key-2;
        clockchain_admin_key admin-key;
        clockchain_service_key test-key-3;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location /api/v1/jobs/        { clockchain_jobs; }
    }
    # keys from files only
    server {
        listen 127.0.0.1:%%PORT2%%;
        clockchain_service_key_file %%PREFIX%%/conf/service.keys;
        clockchain_admin_key_file %%PREFIX%%/conf/admin.keys;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
    }
    # no keys at all, except in one location
    server {
        listen 127.0.0.1:%%PORT3%%;
        location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location = /loc/generate {
            clockchain_service_key loc-key;
            clockchain_generate;
        }
    }
EOF

my $body = { query => 'The signing of the Magna Carta' };

sub gen_with {
    my ($hdrs, %o) = @_;
    return http(POST => $ng->url($o{path} // '/api/generate', $o{port_n}),
                json => $body, headers => $hdrs);
}

# --- generate: missing or wrong key -> 401, nothing created
for my $case (
    [ 'no X-Service-Key', {} ],
    [ 'wrong key', { 'X-Service-Key' => 'wrong-key-abc' } ],
    [ 'empty key', { 'X-Service-Key' => '' } ],
    [ 'key in other case', { 'X-Service-Key' => 'TEST-KEY-1' } ],
    [ 'prefix of a key', { 'X-Service-Key' => 'test-key-' } ],
    [ 'key plus a suffix', { 'X-Service-Key' => 'test-key-1x' } ],
    [ 'admin key as service key', { 'X-Service-Key' => 'admin-key' } ],
    [ 'key from another server', { 'X-Service-Key' => 'file-key-1' } ],
    [ 'key sent as X-Admin-Key only', { 'X-Admin-Key' => 'test-key-1' } ],
) {
    my ($name, $h) = @$case;
    my $res = no_job_created($redis, "generate, $name",
                             sub { gen_with($h) });
    is_error($res, 401, undef, "generate, $name -> 401");
}

# --- the header's name in any case (HTTP/2 sends it lowercase): the key is
# found all the same, and a twice-given one is told, whatever the cases
for my $case (
    [ 'x-service-key', 1, 404 ],
    [ 'X-SERVICE-KEY', 1, 404 ],
    [ 'x-Service-kEY', 1, 404 ],
    [ 'X-Service-Kez', 1, 401 ],
    [ 'X-Service-Key', 2, 400, 'x-service-key' ],
) {
    my ($name, $n, $want, $other) = @$case;
    my $h = "$name: test-key-1\r\n";
    $h .= ($other // $name) . ": test-key-1\r\n" if $n == 2;
    my ($raw) = raw_request($ng->port, "GET /api/jobs/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\n"
                            . "Host: x\r\n${h}Connection: close\r\n\r\n");
    my ($st) = $raw =~ m{^HTTP/1\.1 (\d+)};
    is($st, $want, "the key under \"$name\"" . ($n == 2 ? ' and "' . ($other // $name) . '"' : '')
                   . " -> $want");
}

# --- every configured key works
for my $key (qw(test-key-1 test-key-2 test-key-3)) {
    created_ok(gen_with({ 'X-Service-Key' => $key }), "generate with $key");
}

# --- X-Service-Key sent twice
for my $pair ([qw(test-key-1 test-key-1)], [qw(wrong-key-abc test-key-1)],
              [qw(test-key-1 wrong-key-abc)]) {
    my $name = "X-Service-Key twice (@$pair)";
    my $res = no_job_created($redis, $name,
        sub { gen_with({ 'X-Service-Key' => $pair }) });
    ok($res->{status} == 400 || $res->{status} == 401, "$name -> 400 or 401")
        or diag("got $res->{status}: $res->{content}");
    my $d = json_ok($res, $name);
    ok(ref $d eq 'HASH' && defined $d->{detail} && length $d->{detail},
       "$name: has a detail");
}

# --- key files: one a line, blank lines and #-comments ignored
for my $key (qw(file-key-1 file-key-2)) {
    created_ok(gen_with({ 'X-Service-Key' => $key }, port_n => 2),
               "generate with $key from clockchain_service_key_file");
}
for my $key ('#commented-key', 'commented-key', '# service keys, one a line',
             'test-key-1') {
    my $res = no_job_created($redis, "key file server, key '$key'",
        sub { gen_with({ 'X-Service-Key' => $key }, port_n => 2) });
    is_error($res, 401, undef, "key file server rejects '$key'");
}

# --- GET /api/jobs/{id} needs the key too
my $job = created_ok(gen_with({ 'X-Service-Key' => 'test-key-1' }), 'a job');
my $id = $job ? $job->{job_id} : '00000000-0000-4000-8000-000000000000';
is_error(http(GET => $ng->url("/api/jobs/$id")), 401, undef,
         'GET job without key -> 401');
is_error(http(GET => $ng->url("/api/jobs/$id"),
              headers => { 'X-Service-Key' => 'wrong-key-abc' }),
         401, undef, 'GET job with wrong key -> 401');
is_error(http(GET => $ng->url("/api/jobs/$id"),
              headers => { 'X-Service-Key' => 'TEST-KEY-2' }),
         401, undef, 'GET job with key in other case -> 401');
{
    my $res = http(GET => $ng->url("/api/jobs/$id"),
                   headers => { 'X-Service-Key' => 'test-key-2' });
    is($res->{status}, 200, 'GET job with test-key-2 -> 200');
    is_deeply(json_body($res), $job, 'GET returns the job');
    $res = http(GET => $ng->url("/api/jobs/$id", 2),
                headers => { 'X-Service-Key' => 'file-key-2' });
    is($res->{status}, 200, 'GET job with a file key on the file server -> 200');
    is_deeply(json_body($res), $job, 'GET (file key) returns the job');
}

# --- bulk: admin key
my $bulk = { queries => [ { query => 'Apollo 11 lands on the Moon' } ] };
sub bulk_with {
    my ($hdrs, %o) = @_;
    return http(POST => $ng->url('/api/bulk-generate', $o{port_n}),
                json => $bulk, headers => $hdrs);
}
for my $case (
    [ 'no X-Admin-Key', { 'X-Service-Key' => 'test-key-1' } ],
    [ 'wrong X-Admin-Key',
      { 'X-Service-Key' => 'test-key-1', 'X-Admin-Key' => 'wrong-admin' } ],
    [ 'service key as admin key',
      { 'X-Service-Key' => 'test-key-1', 'X-Admin-Key' => 'test-key-1' } ],
    [ 'empty X-Admin-Key',
      { 'X-Service-Key' => 'test-key-1', 'X-Admin-Key' => '' } ],
) {
    my ($name, $h) = @$case;
    my $res = no_job_created($redis, "bulk, $name", sub { bulk_with($h) });
    is_error($res, 403, 'Admin key required', "bulk, $name -> 403");
}
for my $case (
    [ 'admin key but no service key', { 'X-Admin-Key' => 'admin-key' } ],
    [ 'admin key, wrong service key',
      { 'X-Service-Key' => 'nope', 'X-Admin-Key' => 'admin-key' } ],
) {
    my ($name, $h) = @$case;
    my $res = no_job_created($redis, "bulk, $name", sub { bulk_with($h) });
    is_error($res, 401, undef, "bulk, $name -> 401");
}
{
    my $res = bulk_with({ 'X-Service-Key' => 'test-key-2',
                          'X-Admin-Key' => 'admin-key' });
    is($res->{status}, 200, 'bulk with service and admin key -> 200');
    my $d = json_ok($res, 'bulk');
    ok(ref $d eq 'ARRAY' && @$d == 1, 'bulk returns one job');
    is_job($d->[0], 'bulk job') if ref $d eq 'ARRAY';

    $res = bulk_with({ 'X-Service-Key' => 'file-key-1',
                       'X-Admin-Key' => 'admin-file-key' }, port_n => 2);
    is($res->{status}, 200, 'bulk with keys from key files -> 200')
        or diag($res->{content});
    $res = no_job_created($redis, 'bulk, commented-out admin key', sub {
        bulk_with({ 'X-Service-Key' => 'file-key-1',
                    'X-Admin-Key' => '# admins' }, port_n => 2) });
    is_error($res, 403, 'Admin key required',
             'bulk with a commented line as admin key -> 403');
}

# --- no service key configured -> 503 Job manager not available
for my $h ({}, { 'X-Service-Key' => 'test-key-1' }) {
    my $hn = %$h ? 'with a key' : 'without a key';
    my $res = no_job_created($redis, "no keys configured, generate $hn",
        sub { gen_with($h, port_n => 3) });
    is_error($res, 503, 'Job manager not available',
             "no keys configured: generate $hn -> 503");
    $res = no_job_created($redis, "no keys configured, bulk $hn", sub {
        http(POST => $ng->url('/api/bulk-generate', 3), json => $bulk,
             headers => { %$h, 'X-Admin-Key' => 'admin-key' }) });
    is_error($res, 503, 'Job manager not available',
             "no keys configured: bulk $hn -> 503");
    $res = http(GET => $ng->url("/api/jobs/$id", 3), headers => $h);
    is_error($res, 503, 'Job manager not available',
             "no keys configured: GET job $hn -> 503");
}

# --- a key configured at location level works there
created_ok(gen_with({ 'X-Service-Key' => 'loc-key' },
                    path => '/loc/generate', port_n => 3),
           'location-level key works');
is_error(gen_with({ 'X-Service-Key' => 'wrong' },
                  path => '/loc/generate', port_n => 3),
         401, undef, 'location-level key: wrong key -> 401');

# --- keys never appear in logs
{
    my $logs = $ng->error_log . $ng->access_log;
    for my $k (qw(test-key-1 test-key-2 file-key-1 admin-key admin-file-key
                  wrong-key-abc loc-key)) {
        unlike($logs, qr/\Q$k\E/, "key '$k' does not appear in the logs");
    }
}

done();
