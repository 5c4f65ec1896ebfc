# POST /api/bulk-generate: array of jobs in order, all-or-nothing validation,
# clockchain_bulk_max, content type and methods.
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
        location = /small/bulk-generate {
            clockchain_bulk_max 3;
            clockchain_bulk_generate;
        }
    }
EOF

my $HDR = { 'X-Service-Key' => 'test-key-1', 'X-Admin-Key' => 'admin-key' };

sub redis_job { $redis->hash($JOB_PREFIX . $_[0]) }

# bulk_ok($res, $n, $name) -> arrayref of jobs
sub bulk_ok {
    my ($res, $n, $name) = @_;
    my $jobs;
    subtest $name => sub {
        is($res->{status}, 200, 'status 200')
            or diag(substr($res->{content} // '', 0, 300));
        $jobs = json_ok($res, 'bulk body');
        is(ref $jobs, 'ARRAY', 'a JSON array') or return;
        is(scalar @$jobs, $n, "$n jobs");
        is_job($jobs->[$_], "job $_") for 0 .. $#$jobs;
        my %ids = map { (ref $_ eq 'HASH' ? $_->{job_id} // '' : '') => 1 } @$jobs;
        is(scalar keys %ids, scalar @$jobs, 'distinct ids');
    };
    return ref $jobs eq 'ARRAY' ? $jobs : [];
}

# --- order, per-entry options and defaults, Redis
{
    my @q = (
        { query => 'Bulk zero: the Battle of Hastings' },
        { query => 'Bulk one: the Treaty of Westphalia', preset => 'hd' },
        { query => 'Bulk two: Ödön von Horváth is born', visibility => 'public' },
        { query => 'Bulk three: the first Olympic Games', preset => 'gemini3',
          visibility => 'public' },
        { query => '   Bulk four: trimmed   ', preset => 'hyper' },
    );
    my $before = job_count($redis);
    my $jobs = bulk_ok(bulk($ng, { queries => \@q },
                            headers => { 'X-User-Id' => 'bob' }),
                       5, 'bulk of 5');
    is(job_count($redis), $before + 5, 'redis: 5 more job hashes');
    for my $i (0 .. $#$jobs) {
        my $id = $jobs->[$i]{job_id} // 'x';
        my $h = redis_job($id);
        my $want = $q[$i]{query};
        utf8::encode($want);
        if ($i == 4) {
            like($h->{query}, qr/^\s*Bulk four: trimmed\s*$/,
                 "redis: job $i holds query $i");
        } else {
            is($h->{query}, $want, "redis: job $i holds query $i (order kept)");
        }
        is($h->{preset}, $q[$i]{preset} // 'balanced', "redis: job $i preset");
        is($h->{visibility}, $q[$i]{visibility} // 'private',
           "redis: job $i visibility");
        is($h->{status}, 'pending', "redis: job $i pending");
        is($h->{created_by}, 'bob', "redis: job $i created_by from X-User-Id");
        ok(defined $redis->cmd('ZSCORE', $QUEUE_KEY, $id),
           "redis: job $i is queued");
        my $res = get_job($ng, $id);
        is($res->{status}, 200, "GET job $i -> 200");
        is_deeply(json_body($res), $jobs->[$i], "GET job $i: same object");
    }
}

# --- default limit 100
{
    my @q = map { { query => "Hundred entries $_" } } 1 .. 100;
    my $jobs = bulk_ok(bulk($ng, { queries => \@q }), 100, 'bulk of 100 (the default maximum)');
    is(redis_job($jobs->[99]{job_id} // 'x')->{query}, 'Hundred entries 100',
       'redis: the 100th job holds the 100th query');

    push @q, { query => 'One too many' };
    my $res = no_job_created($redis, 'bulk of 101', sub {
        bulk($ng, { queries => \@q }) });
    is_error($res, 400, qr/\S/, 'bulk of 101 -> 400');
}

# --- clockchain_bulk_max 3
{
    my @q = map { { query => "Small bulk $_" } } 1 .. 3;
    bulk_ok(bulk($ng, { queries => \@q }, path => '/small/bulk-generate'),
            3, 'clockchain_bulk_max 3: 3 entries');
    push @q, { query => 'Small bulk 4' };
    my $res = no_job_created($redis, 'clockchain_bulk_max 3: 4 entries', sub {
        bulk($ng, { queries => \@q }, path => '/small/bulk-generate') });
    is_error($res, 400, qr/\S/, 'clockchain_bulk_max 3: 4 entries -> 400');
}

# --- one bad entry (index 2): 400 naming the index, nothing created
my @good = map { { query => "Good entry $_" } } 0 .. 4;
for my $case (
    [ 'query too short',    { query => 'ab' },                       qr/query/ ],
    [ 'query too long',     { query => 'q' x 501 },                  qr/query/ ],
    [ 'query missing',      { preset => 'hd' },                      qr/query/ ],
    [ 'query not a string', { query => 123 },                        qr/query/ ],
    [ 'unknown preset',     { query => 'Fine query', preset => 'x' }, qr/preset/ ],
    [ 'unknown visibility', { query => 'Fine query', visibility => 'all' },
      qr/visibility/ ],
    [ 'entry is a string',  'Fine query',                            qr/\S/ ],
    [ 'entry is null',      undef,                                   qr/\S/ ],
) {
    my ($name, $entry, $re) = @$case;
    my @q = @good;
    $q[2] = $entry;
    my $res = no_job_created($redis, "bulk, entry 2 $name", sub {
        bulk($ng, { queries => \@q }) });
    is_error($res, 400, qr/(?<!\d)2(?!\d)/,
             "bulk, entry 2 $name -> 400 naming index 2");
    my $d = json_body($res);
    like(ref $d eq 'HASH' ? $d->{detail} // '' : '', $re,
         "bulk, entry 2 $name: detail names the problem");
}

# --- bad bodies
for my $case (
    [ 'empty queries array', '{"queries": []}' ],
    [ 'missing queries',     '{}' ],
    [ 'queries not an array', '{"queries": {"query": "abcdef"}}' ],
    [ 'queries a string',    '{"queries": "abcdef"}' ],
    [ 'queries null',        '{"queries": null}' ],
    [ 'a bare array',        '[{"query": "abcdef"}]' ],
    [ 'malformed JSON',      '{"queries": [{"query": "abcdef"}' ],
    [ 'empty body',          '' ],
) {
    my ($name, $raw) = @$case;
    my $res = no_job_created($redis, "bulk, $name", sub {
        http(POST => $ng->url('/api/bulk-generate'), body => $raw,
             headers => { %$HDR, 'Content-Type' => 'application/json' }) });
    is_error($res, 400, qr/\S/, "bulk, $name -> 400");
}
for my $case (['malformed JSON', '{"queries": [', qr/json/i],
              ['a bare array', '[{"query": "abcdef"}]', qr/json|object|queries/i]) {
    my ($name, $raw, $re) = @$case;
    my $res = http(POST => $ng->url('/api/bulk-generate'), body => $raw,
                   headers => { %$HDR, 'Content-Type' => 'application/json' });
    my $d = json_body($res);
    like(ref $d eq 'HASH' ? $d->{detail} // '' : '', $re,
         "bulk, $name: detail names the problem");
}

# --- Content-Type and size
{
    my $res = no_job_created($redis, 'bulk without Content-Type', sub {
        http(POST => $ng->url('/api/bulk-generate'),
             body => '{"queries": [{"query": "abcdef"}]}', headers => $HDR) });
    is_error($res, 415, qr{application/json}, 'bulk without Content-Type -> 415');

    my @q = map { { query => ('L' x 490) . " $_" } } 1 .. 99;
    my $big = JSON::PP->new->encode({ queries => \@q }) . (' ' x (240 * 1024));
    $res = no_job_created($redis, 'bulk body over 256k', sub {
        http(POST => $ng->url('/api/bulk-generate'), body => $big,
             headers => { %$HDR, 'Content-Type' => 'application/json' }) });
    is_error($res, 413, undef, 'bulk body over 256k -> 413');

    my @chunks = ('{"queries": [{"query": "Chunked bulk one"},',
                  ' {"query": "Chunked bulk two"}]}');
    $res = http(POST => $ng->url('/api/bulk-generate'),
                body => sub { shift @chunks },
                headers => { %$HDR, 'Content-Type' => 'application/json' });
    my $jobs = bulk_ok($res, 2, 'chunked bulk body');
    is(redis_job($jobs->[1]{job_id} // 'x')->{query}, 'Chunked bulk two',
       'redis: chunked bulk, second query');
}

# --- methods
for my $m (qw(GET PUT DELETE)) {
    my $res = no_job_created($redis, "$m /api/bulk-generate", sub {
        http($m => $ng->url('/api/bulk-generate'), headers => $HDR) });
    is_error($res, 405, undef, "$m /api/bulk-generate -> 405");
    like($res->{headers}{allow} // '', qr/^\s*POST\s*$/,
         "$m /api/bulk-generate: Allow: POST");
}

done();
