# POST /api/generate: the job object, what lands in Redis, body validation,
# content types, body size limits, chunked bodies, methods.
use strict;
use warnings;
use utf8;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /small/generate {
            clockchain_max_body_size 1k;
            clockchain_generate;
        }
    }
EOF

my $KEY = { 'X-Service-Key' => 'test-key-1' };

sub redis_job { $redis->hash($JOB_PREFIX . $_[0]) }

# --- a job with defaults, and what Redis holds
{
    my $res = generate($ng, { query => 'The fall of the Berlin Wall' });
    my $job = created_ok($res, 'generate with only a query');
    my $id = $job ? $job->{job_id} : 'none';
    my $h = redis_job($id);
    is($h->{status}, 'pending', 'redis: status pending');
    ok(defined $h->{created_at} && length $h->{created_at},
       'redis: created_at set');
    is($h->{query}, 'The fall of the Berlin Wall', 'redis: query');
    is($h->{preset}, 'balanced', 'redis: preset defaults to balanced');
    is($h->{visibility}, 'private', 'redis: visibility defaults to private');
    is($h->{created_by}, 'system', 'redis: created_by defaults to system');
    ok(!exists $h->{$_}, "redis: no $_ while pending")
        for qw(completed_at path error);
    ok(defined $redis->cmd('ZSCORE', $QUEUE_KEY, $id),
       'redis: the job id is in the queue sorted set');
    is($redis->cmd('TYPE', $QUEUE_KEY), 'zset', 'redis: queue is a zset');
    is($redis->cmd('TYPE', $JOB_PREFIX . $id), 'hash', 'redis: job is a hash');
}

# --- every preset and visibility, X-User-Id
for my $preset (qw(balanced hd hyper gemini3)) {
    for my $vis (qw(private public)) {
        my $job = created_ok(generate($ng, { query => "Preset $preset $vis",
                                             preset => $preset,
                                             visibility => $vis }),
                             "preset $preset, visibility $vis");
        next unless $job;
        my $h = redis_job($job->{job_id});
        is($h->{preset}, $preset, "redis: preset $preset");
        is($h->{visibility}, $vis, "redis: visibility $vis");
    }
}
{
    my $job = created_ok(generate($ng, { query => 'Moon landing' },
                                  headers => { 'X-User-Id' => 'alice-42' }),
                         'generate with X-User-Id');
    is(redis_job($job ? $job->{job_id} : 'x')->{created_by}, 'alice-42',
       'redis: created_by from X-User-Id');
}

# --- ids are unique
{
    my %seen;
    for my $i (1 .. 40) {
        my $d = json_body(generate($ng, { query => "Uniqueness test $i" }));
        $seen{ $d->{job_id} }++ if ref $d eq 'HASH' && $d->{job_id};
    }
    is(scalar keys %seen, 40, '40 jobs, 40 distinct ids');
}

# --- query: JSON string escapes are decoded before storing
{
    my $raw = '{"query": "Caesar \"crosses\" the Rubicon \u00e9\u4e16 \\\\ / \ud83d\ude00"}';
    my $res = http(POST => $ng->url('/api/generate'), body => $raw,
                   headers => { %$KEY, 'Content-Type' => 'application/json' });
    my $job = created_ok($res, 'query with JSON escapes');
    my $want = "Caesar \"crosses\" the Rubicon é世 \\ / \x{1F600}";
    utf8::encode($want);
    is(redis_job($job ? $job->{job_id} : 'x')->{query}, $want,
       'redis: query stored decoded (UTF-8)');
}

# --- query length, counted in code points after trimming
my @ok_queries = (
    [ 'abc',                      '3 characters' ],
    [ "  \t\n abc \r\n ",         '3 characters after trimming' ],
    [ 'a' x 500,                  '500 characters' ],
    [ ' ' . ('b' x 500) . '  ',   '500 characters after trimming' ],
    [ 'é' x 500,                  '500 two-byte characters' ],
    [ "\x{4e16}" x 500,           '500 three-byte characters' ],
    [ "\x{1F600}" x 500,          '500 four-byte characters' ],
);
for my $q (@ok_queries) {
    created_ok(generate($ng, { query => $q->[0] }), "query of $q->[1]");
}
{
    # the same 500 emoji sent as \ud83d\ude00 surrogate pairs
    my $raw = JSON::PP->new->ascii->encode({ query => "\x{1F600}" x 500 });
    created_ok(http(POST => $ng->url('/api/generate'), body => $raw,
                    headers => { %$KEY, 'Content-Type' => 'application/json' }),
               'query of 500 characters as \\u surrogate pairs');
}

my @bad_bodies = (
    # [ name, body (perl data or raw string), detail regex ]
    [ 'query of 2 characters',        { query => 'ab' },            qr/query/ ],
    [ 'query of 2 after trimming',    { query => "   ab \n" },      qr/query/ ],
    [ 'empty query',                  { query => '' },              qr/query/ ],
    [ 'whitespace-only query',        { query => " \t\n  " },       qr/query/ ],
    [ 'query of 501 characters',      { query => 'a' x 501 },       qr/query/ ],
    [ 'query of 501 two-byte chars',  { query => 'é' x 501 },       qr/query/ ],
    [ 'query of 501 four-byte chars', { query => "\x{1F600}" x 501 }, qr/query/ ],
    [ 'missing query',                { preset => 'hd' },           qr/query/ ],
    [ 'query is a number',            '{"query": 12345}',           qr/query/ ],
    [ 'query is null',                '{"query": null}',            qr/query/ ],
    [ 'query is an array',            '{"query": ["abcdef"]}',      qr/query/ ],
    [ 'query is an object',           '{"query": {"q": "abcdef"}}', qr/query/ ],
    [ 'query is true',                '{"query": true}',            qr/query/ ],
    [ 'unknown preset',   { query => 'abcdef', preset => 'ultra' },  qr/preset/ ],
    [ 'empty preset',     { query => 'abcdef', preset => '' },       qr/preset/ ],
    [ 'preset is a number', '{"query": "abcdef", "preset": 3}',      qr/preset/ ],
    [ 'unknown visibility',
      { query => 'abcdef', visibility => 'secret' },                 qr/visibility/ ],
    [ 'visibility is a bool',
      '{"query": "abcdef", "visibility": true}',                     qr/visibility/ ],
    [ 'malformed JSON',         '{"query": "abcdef"',                qr/json/i ],
    [ 'trailing garbage',       '{"query": "abcdef"} x',             qr/json/i ],
    [ 'not JSON at all',        'query=abcdef',                      qr/json/i ],
    [ 'empty body',             '',                                  qr/json/i ],
    [ 'a JSON array',           '["abcdef"]',                        qr/json/i ],
    [ 'a JSON string',          '"abcdef"',                          qr/json/i ],
    [ 'a JSON number',          '42',                                qr/json/i ],
    [ 'JSON null',              'null',                              qr/json/i ],
);
for my $b (@bad_bodies) {
    my ($name, $body, $re) = @$b;
    my $raw = ref $body ? JSON::PP->new->utf8->encode($body) : $body;
    my $res = no_job_created($redis, $name, sub {
        http(POST => $ng->url('/api/generate'), body => $raw,
             headers => { %$KEY, 'Content-Type' => 'application/json' }) });
    is_error($res, 400, $re, "$name -> 400 naming the problem");
}

# --- Content-Type
for my $ct (undef, 'application/x-www-form-urlencoded', 'text/plain',
            'multipart/form-data; boundary=x') {
    my $name = 'Content-Type ' . ($ct // 'missing');
    my $res = no_job_created($redis, $name, sub {
        http(POST => $ng->url('/api/generate'),
             body => '{"query": "A valid query"}',
             headers => { %$KEY, 'Content-Type' => $ct }) });
    is_error($res, 415, qr{application/json}, "$name -> 415");
}
created_ok(http(POST => $ng->url('/api/generate'),
                body => '{"query": "A valid query"}',
                headers => { %$KEY,
                             'Content-Type' => 'application/json; charset=utf-8' }),
           'Content-Type application/json; charset=utf-8 is accepted');

# --- body size
{
    my $big = '{"query": "' . ('x' x (300 * 1024)) . '"}';
    my $res = no_job_created($redis, '300k body', sub {
        http(POST => $ng->url('/api/generate'), body => $big,
             headers => { %$KEY, 'Content-Type' => 'application/json' }) });
    is_error($res, 413, undef, 'a 300k body (default limit 256k) -> 413');

    my $two_k = '{"query": "' . ('y' x 2048) . '"}';
    $res = no_job_created($redis, '2k body, 1k limit', sub {
        http(POST => $ng->url('/small/generate'), body => $two_k,
             headers => { %$KEY, 'Content-Type' => 'application/json' }) });
    is_error($res, 413, undef, 'clockchain_max_body_size 1k: 2k body -> 413');

    my @chunks = ('{"query": "', ('z' x 512) x 4, '"}');
    $res = no_job_created($redis, '2k chunked body, 1k limit', sub {
        http(POST => $ng->url('/small/generate'), body => sub { shift @chunks },
             headers => { %$KEY, 'Content-Type' => 'application/json' }) });
    is_error($res, 413, undef,
             'clockchain_max_body_size 1k: 2k chunked body -> 413');

    created_ok(http(POST => $ng->url('/small/generate'),
                    body => '{"query": "' . ('w' x 400) . '"}',
                    headers => { %$KEY, 'Content-Type' => 'application/json' }),
               'clockchain_max_body_size 1k: a 400-byte body is fine');

    # a body between 16k (nginx's in-memory buffer) and 256k is fine when
    # the query itself is valid (padding with whitespace)
    my $padded = '{"query": "Padded body query", "preset": "hd"' . (' ' x 100_000) . '}';
    my $job = created_ok(http(POST => $ng->url('/api/generate'), body => $padded,
                              headers => { %$KEY,
                                           'Content-Type' => 'application/json' }),
                         'a 100k body (whitespace padding) under the limit');
    is(redis_job($job ? $job->{job_id} : 'x')->{preset}, 'hd',
       'redis: preset read from the padded body');
}

# --- chunked bodies
{
    my @chunks = ('{"que', 'ry": "Chunk', 'ed body quer', 'y", "visibility": "public"}');
    my $res = http(POST => $ng->url('/api/generate'), body => sub { shift @chunks },
                   headers => { %$KEY, 'Content-Type' => 'application/json' });
    my $job = created_ok($res, 'chunked body');
    my $h = redis_job($job ? $job->{job_id} : 'x');
    is($h->{query}, 'Chunked body query', 'redis: query from the chunked body');
    is($h->{visibility}, 'public', 'redis: visibility from the chunked body');

    # a chunked body larger than nginx's in-memory buffer (whitespace)
    my @big = ('{"query": "Large chunked body"', (' ' x 8192) x 5, '}');
    $res = http(POST => $ng->url('/api/generate'), body => sub { shift @big },
                headers => { %$KEY, 'Content-Type' => 'application/json' });
    created_ok($res, 'chunked body of 40k');
}

# --- methods
for my $m (qw(GET PUT DELETE PATCH)) {
    my $res = no_job_created($redis, "$m /api/generate", sub {
        http($m => $ng->url('/api/generate'), headers => $KEY) });
    is_error($res, 405, undef, "$m /api/generate -> 405");
    like($res->{headers}{allow} // '', qr/^\s*POST\s*$/,
         "$m /api/generate: Allow: POST");
}
{
    my $res = http(HEAD => $ng->url('/api/generate'), headers => $KEY);
    is($res->{status}, 405, 'HEAD /api/generate -> 405');
    like($res->{headers}{allow} // '', qr/^\s*POST\s*$/,
         'HEAD /api/generate: Allow: POST');
}

# --- every answer finishes the request: with "Connection: close" the
# server closes the connection right after the response
for my $case (
    [ 200, '{"query": "Raw request"}', 'application/json', 'test-key-1' ],
    [ 400, '{"query": 1}',             'application/json', 'test-key-1' ],
    [ 415, '{"query": "Raw request"}', 'text/plain',       'test-key-1' ],
    [ 401, '{"query": "Raw request"}', 'application/json', 'wrong-key' ],
) {
    my ($status, $body, $ct, $key) = @$case;
    my ($resp, $closed) = raw_request($ng->port,
        "POST /api/generate HTTP/1.1\r\nHost: localhost\r\n"
        . "X-Service-Key: $key\r\nContent-Type: $ct\r\n"
        . "Connection: close\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body", 3);
    like($resp, qr{^HTTP/1\.1 $status }, "raw POST -> $status");
    ok($closed, "raw POST -> $status: the server closes the connection");
}

# --- several requests on one keep-alive connection
{
    my $ua = http_ua(keep_alive => 1);
    my $ok = 0;
    for my $i (1 .. 5) {
        my $res = generate($ng, { query => "Keep-alive request $i" }, ua => $ua);
        $ok++ if $res->{status} == 200 && ref json_body($res) eq 'HASH';
    }
    # an error in the middle must not break the connection either
    my $res = http(POST => $ng->url('/api/generate'), ua => $ua,
                   body => '{"query": 1}',
                   headers => { %$KEY, 'Content-Type' => 'application/json' });
    is($res->{status}, 400, 'keep-alive: a bad request in between -> 400');
    $res = generate($ng, { query => 'Keep-alive request after error' }, ua => $ua);
    $ok++ if $res->{status} == 200;
    is($ok, 6, 'keep-alive: 6 jobs created on one connection');
}

done();
