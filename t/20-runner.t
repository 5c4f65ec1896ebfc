# The runner: jobs go pending -> processing -> completed with a canonical
# path and a graph node with edges in Redis; every Flash failure becomes a
# failed job with the contract's message and no node (401/402 pause the
# runner instead: t/23-faults.t).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $PATH_RE = qr{^/-?\d+/[a-z]+/\d\d/\d{4}(/[a-z0-9_-]+){4}$};
my $NODE_PREFIX = 'clockchain:{cc}:v1:node:';

my $redis = start_redis();
my $flash = start_flash(delay => 1, key => 'flash-secret');

my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]}/;
    clockchain_flash_key flash-secret;
    clockchain_flash_timeout 3s;
    clockchain_job_lease 5s;
    # one attempt: this file checks each failure's message (t/23 retries)
    clockchain_flash_attempts 1;
    clockchain_flash_circuit_breaker failures=1000;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF

sub node_count { scalar @{ $redis->cmd('KEYS', "$NODE_PREFIX*") } }

# ---------------------------------------------------------------------------
# A. the happy path, with the intermediate states

my $job = created_ok(generate($ng, { query => 'moon landing',
                                     visibility => 'public' },
                              headers => { 'X-User-Id' => 'user-42' }),
                     'happy: create');
my %seen;
wait_for(15, sub {
    my $j = json_body(get_job($ng, $job->{job_id}));
    $seen{ $j->{status} } = 1 if $j;
    return $j && $j->{status} eq 'completed';
});
ok($seen{processing}, 'happy: the job was seen processing');
my $done = json_body(get_job($ng, $job->{job_id}));
is_deeply([sort keys %$done],
          [sort qw(job_id status path error created_at completed_at)],
          'happy: exactly the six job keys');
is($done->{status}, 'completed', 'happy: completed');
like($done->{path} // '', $PATH_RE, 'happy: path is canonical');
like($done->{path} // '', qr{/moon-landing-[0-9a-f]{4}$},
     "happy: the slug is Flash's, with its hex suffix");
is($done->{error}, undef, 'happy: error null');
like($done->{completed_at} // '', $TS_RE, 'happy: completed_at set');
is($done->{created_at}, $job->{created_at}, 'happy: created_at kept');

my $node = $redis->hash($NODE_PREFIX . ($done->{path} // ''));
for my $f (qw(path name year month month_num day time country region city
              slug visibility created_by tags figures one_liner
              flash_timepoint_id flash_slug flash_share_url era image_url
              text_model image_model model_provider model_permissiveness
              generation_id created_at layer type)) {
    ok(exists $node->{$f}, "happy: node has $f");
}
is($node->{layer}, 2, 'happy: layer 2');
is($node->{type}, 'event', 'happy: type event');
is($node->{visibility}, 'public', 'happy: visibility from the job');
is($node->{created_by}, 'user-42', 'happy: created_by from X-User-Id');
is($node->{model_permissiveness}, 'permissive', 'happy: permissive');
unlike($node->{image_url} // '', qr/^data:/i, 'happy: no data: image');
is($redis->hash($JOB_PREFIX . $job->{job_id})->{path}, $done->{path},
   'happy: the path is in Redis');

my $calls = $flash->calls_for($job->{job_id});
is(scalar @$calls, 1, 'happy: Flash was called once');
my $c = $calls->[0] // {};
is($c->{body}{query}, 'moon landing', 'request: query');
is($c->{body}{preset}, 'balanced', 'request: preset');
ok($c->{body}{generate_image}, 'request: generate_image true');
is($c->{body}{model_policy}, 'permissive', 'request: model_policy');
is_deeply($c->{body}{request_context},
          { source => 'clockchain', worker => 'renderer',
            job_id => $job->{job_id} }, 'request: request_context');
like($c->{headers}{'content-type'} // '', qr{^application/json},
     'request: Content-Type');
unlike($ng->error_log, qr/flash-secret/, 'the Flash key is not logged');

# the same query of the same creator again gives the same path (the
# stand-in's scene is deterministic), so the node is updated, not duplicated
# (another creator gets a node of its own: t/30-moments.t)
my $nodes = node_count();
my $again = created_ok(generate($ng, { query => 'moon landing' },
                                headers => { 'X-User-Id' => 'user-42' }),
                       'again');
my $j2 = wait_job($ng, $again->{job_id}, 15);
is($j2->{status}, 'completed', 'same path: completed');
is($j2->{path}, $done->{path}, 'same path: same canonical path');
is(node_count(), $nodes, 'same path: no second node');
is($redis->hash($NODE_PREFIX . $done->{path})->{visibility}, 'public',
   'same path: the update keeps the published visibility');

# ---------------------------------------------------------------------------
# B. edges: scenes sharing a time, place, figures or tags get edges both ways

my @ids = map {
    my $j = created_ok(generate($ng, { query => "edge probe $_" }),
                       "edges: create $_");
    $j ? $j->{job_id} : ()
} 1 .. 8;
my @paths = map { (wait_job($ng, $_, 20) // {})->{path} } @ids;
is(scalar(grep { defined && /$PATH_RE/ } @paths), 8, 'edges: 8 completed');

my %weight = (contemporaneous => 0.8, same_era => 0.3, precedes => 0.4,
              follows => 0.4, same_location => 0.5, same_figure => 0.6,
              thematic => 0.3);
my %reverse = (precedes => 'follows', follows => 'precedes');
my ($edges, $bad) = (0, 0);
my %types;
for my $p (grep { defined } @paths, $done->{path}) {
    my $e = $redis->hash("clockchain:{cc}:v1:edges:$p");
    for my $field (keys %$e) {
        $edges++;
        my ($type, $other) = split /\|/, $field, 2;
        my $edge = JSON::PP->new->decode($e->{$field});
        $types{$type}++;
        my $back = $reverse{$type} // $type;
        my @why;
        push @why, 'unknown type' unless exists $weight{$type};
        push @why, 'weight' unless ($edge->{weight} // -1) == ($weight{$type} // -2);
        push @why, 'created_by' unless ($edge->{created_by} // '') eq 'auto';
        push @why, 'source' unless ($edge->{source} // '') eq $p;
        push @why, 'target' unless ($edge->{target} // '') eq $other;
        push @why, 'no reverse'
            unless $redis->cmd('HEXISTS', "clockchain:{cc}:v1:edges:$other",
                               "$back|$p");
        push @why, 'no theme'
            if $type =~ /^(same_figure|thematic)$/ && !length($edge->{theme} // '');
        if (@why) {
            $bad++;
            diag("edge $p -> $field: @why");
        }
    }
}
ok($edges > 0, "edges: $edges edges written (" .
   join(', ', map { "$_ $types{$_}" } sort keys %types) . ')');
is($bad, 0, 'edges: every edge has its weight, source, target, theme and reverse');

# ---------------------------------------------------------------------------
# C. every failure Flash has

my @cases = (
    [ '422', qr/^Flash API error: 422 Unprocessable Entity \| response: \{"detail": "Year must be a valid integer"\}$/ ],
    [ '429', qr/^Flash API error: 429 Too Many Requests \| response: / ],
    [ '500', qr/^Flash API error: 500 Internal Server Error \| response: / ],
    [ '504', qr/^Flash API error: 504 Gateway Timeout \| response: / ],
    [ 'hang', qr/^Flash API timeout: / ],
    [ 'close', qr/^Flash API connection error: / ],
    [ 'garbage', qr/^Flash returned invalid JSON/ ],
    [ 'array', qr/^Flash returned a JSON array/ ],
    [ 'huge', qr/^Flash API error: the response is larger than 16777216 bytes$/ ],
    [ 'blocked', qr/google.*gemini-2\.5-flash/ ],
    [ 'noyear', qr/year/i ],
    [ 'stringyear', qr/year/i ],
);

my $before = node_count();
my %fail;
for my $case (@cases) {
    my $j = created_ok(generate($ng, { query => "failure probe [flash:$case->[0]]" }),
                       "fail $case->[0]: create");
    $fail{ $case->[0] } = $j->{job_id} if $j;
}
for my $case (@cases) {
    my $id = $fail{ $case->[0] } or next;
    my $j = wait_job($ng, $id, 20) // {};
    is($j->{status}, 'failed', "fail $case->[0]: failed");
    like($j->{error} // '', $case->[1], "fail $case->[0]: error message");
    is($j->{path}, undef, "fail $case->[0]: path null");
    like($j->{completed_at} // '', $TS_RE, "fail $case->[0]: completed_at");
    my $h = $redis->hash($JOB_PREFIX . $id);
    is($h->{status}, 'failed', "fail $case->[0]: failed in Redis");
    is($h->{error}, $j->{error}, "fail $case->[0]: same error in Redis");
}
is(node_count(), $before, 'failures: no node written');
is($redis->cmd('ZCARD', 'clockchain:{cc}:v1:processing'), 0,
   'failures: no job left processing');
is(scalar(my @w = $ng->worker_pids), 2, 'failures: both workers alive');

# a data: image completes, without the image
my $d = created_ok(generate($ng, { query => 'image probe [flash:datauri]' }),
                   'datauri: create');
my $dj = wait_job($ng, $d->{job_id}, 20) // {};
is($dj->{status}, 'completed', 'datauri: completed');
my $dn = $redis->hash($NODE_PREFIX . ($dj->{path} // ''));
ok(%$dn && !exists $dn->{image_url}, 'datauri: node without image_url');

# a BCE scene
my $b = created_ok(generate($ng, { query => 'ides of march [flash:bce]' }),
                   'bce: create');
my $bj = wait_job($ng, $b->{job_id}, 20) // {};
like($bj->{path} // '', qr{^/-44/march/15/}, 'bce: negative year path');

done();
