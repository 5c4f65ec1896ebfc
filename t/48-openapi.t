# GET /openapi.json (issue 15): the document is OpenAPI 3 in its structure
# (openapi, info, paths, responses in every operation, every $ref
# resolves), and it is true: for every path, method and status it
# documents, a real request that should produce that status gets it, with
# a JSON body that has the documented schema's required fields and types.
# And the reverse: every route this nginx.conf serves, and every handler
# directive the module has, is in the document.
#
# How a status is provoked: %PROVOKE names a request for one route and
# status; the rest come from %GENERIC, which builds a request from the
# document itself (its parameters, examples, request body, security).  A
# documented status neither can provoke fails the test: adding a route to
# the document (and its location to the conf below) is all it takes to
# test it, and what cannot be provoked is said, not skipped.
use strict;
use warnings;
use Test::More;
use B ();
use JSON::PP;
use Clockchain::Test;

my $REPO = Cwd::abs_path('.');

# every handler directive the module has, each at its usual path
my $SERVER = <<"CONF";
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        location = /api/generate       { clockchain_generate; }
        location = /api/bulk-generate  { clockchain_bulk_generate; }
        location /api/jobs/            { clockchain_jobs; }
        location = /api/moments        { clockchain_moments_list; }
        location /api/moments/         { clockchain_moments; }
        location = /api/today          { clockchain_today; }
        location = /api/random         { clockchain_random; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
        location /api/graph/subgraph/  { clockchain_graph_subgraph; }
        location /api/graph/traverse/  { clockchain_graph_traverse; }
        location = /api/graph/path     { clockchain_graph_path; }
        location = /api/search         { clockchain_search; }
        location = /api/browse         { clockchain_browse; }
        location /api/browse/          { clockchain_browse; }
        location = /api/stats          { clockchain_stats; }
        location = /health             { clockchain_health; }
        location = /                   { clockchain_service_info; }
        location = /openapi.json       { clockchain_openapi; }
        location = /api/index          { clockchain_index; }
        location = /api/ingest/subgraph { clockchain_ingest_subgraph; }
        location = /api/ingest/tdf     { clockchain_ingest_tdf; }
        location = /api/agents         { clockchain_agents; }
        location /api/agents/          { clockchain_agents; }
        location = /api/export         { clockchain_export; }
        location = /api/restore        { clockchain_restore; }
    }
CONF

# what the document leaves out, and why
my %UNDOCUMENTED = (
    clockchain_metrics => 'Prometheus text for the operator, allowed by '
                          . 'address (docs/metrics.md), not an API route',
    clockchain_status  => 'a page for the operator\'s browser, allowed by '
                          . 'address (docs/metrics.md), not an API route',
);

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
$SERVER
CONF

# an empty graph whose queue is full after one job, and no runner: 429s,
# and a random moment that is not there
my $redis2 = start_redis();
my $empty = start_nginx(redis => $redis2, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_max_pending 1;
$SERVER
CONF

# writers' tokens configured: what an admin's token may and a writer's not
my $writers = start_nginx(redis => $redis2, files => {
    'admin.token' => "openapi-admin\n", 'writer.tokens' => "openapi-writer:w\n",
}, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_admin_token_file %%PREFIX%%/admin.token;
    clockchain_writer_tokens_file %%PREFIX%%/writer.tokens;
$SERVER
CONF
my $reader = json_body(http(POST => $writers->url('/api/agents/register'),
    headers => { 'X-Service-Key' => 'test-key-1',
                 Authorization => 'Bearer openapi-admin' },
    json => { agent_name => 'openapi-reader', permissions => 'read' }))->{token};

# ---------------------------------------------------------------------------
# the document

my $res = http(GET => $ng->url('/openapi.json'));
is($res->{status}, 200, 'GET /openapi.json: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json$},
     'Content-Type: application/json');
is($res->{headers}{'content-length'}, length $res->{content},
   'Content-Length is the body\'s');
my $etag = $res->{headers}{etag} // '';
like($etag, qr/^"[0-9a-f]{8}-[0-9a-f]+"$/, 'an ETag');
my $doc = eval { JSON::PP->new->utf8->decode($res->{content}) };
ok(ref $doc eq 'HASH', 'the document is a JSON object') or BAIL_OUT($@);

{
    open my $fh, '<:raw', "$REPO/src/openapi.json" or die $!;
    local $/;
    is($res->{content}, scalar <$fh>, 'it is src/openapi.json, byte for byte');
}

$res = http(HEAD => $ng->url('/openapi.json'));
is($res->{status}, 200, 'HEAD: 200');
is($res->{headers}{'content-length'}, -s "$REPO/src/openapi.json",
   'HEAD: the document\'s Content-Length, no body');

# ---------------------------------------------------------------------------
# OpenAPI 3, structurally

like($doc->{openapi} // '', qr/^3\.0\.\d+$/, 'openapi: 3.0.x');
ok(ref $doc->{info} eq 'HASH' && length($doc->{info}{title} // '')
   && length($doc->{info}{version} // ''), 'info: title and version');
{
    open my $fh, '<', "$REPO/VERSION" or die $!;
    chomp(my $v = <$fh>);
    is($doc->{info}{version}, $v, 'info.version is the module\'s VERSION');
}
ok(ref $doc->{paths} eq 'HASH' && keys %{ $doc->{paths} }, 'paths');

my @METHODS = qw(get put post delete options head patch trace);
my (@ops, %opids);
for my $p (sort keys %{ $doc->{paths} }) {
    like($p, qr{^/}, "$p begins with /");
    my $item = $doc->{paths}{$p};
    for my $m (grep { $item->{$_} } @METHODS) {
        my $op = $item->{$m};
        my $name = uc($m) . " $p";
        ok(ref $op->{responses} eq 'HASH' && keys %{ $op->{responses} },
           "$name: responses");
        ok(length($op->{operationId} // '') && !$opids{ $op->{operationId} }++,
           "$name: a unique operationId");
        my %in_path = map { $_->{name} => 1 }
                      grep { $_->{in} eq 'path' }
                      map { deref($_) } @{ $op->{parameters} // [] };
        my @tpl = $p =~ /\{(\w+)\}/g;
        is_deeply([ sort keys %in_path ], [ sort @tpl ],
                  "$name: each {name} of the path is a path parameter");
        for my $st (sort keys %{ $op->{responses} }) {
            like($st, qr/^[1-5]\d\d$/, "$name: $st is a status");
            push @ops, [ $p, $m, $st, $op ];
        }
    }
}

# every $ref resolves
{
    my @bad;
    my $walk;
    $walk = sub {
        my ($v) = @_;
        if (ref $v eq 'HASH') {
            if (exists $v->{'$ref'}) {
                push @bad, $v->{'$ref'} unless eval { resolve($v->{'$ref'}) };
            }
            $walk->($_) for values %$v;
        } elsif (ref $v eq 'ARRAY') {
            $walk->($_) for @$v;
        }
    };
    $walk->($doc);
    is("@bad", '', 'every $ref resolves');
}

sub resolve {
    my ($ref) = @_;
    $ref =~ m{^#/(.+)$} or die "not a local \$ref: $ref\n";
    my $v = $doc;
    for my $k (split m{/}, $1) {
        $k =~ s/~1/\//g;
        $k =~ s/~0/~/g;
        ref $v eq 'HASH' && exists $v->{$k} or die "no $ref\n";
        $v = $v->{$k};
    }
    return $v;
}

sub deref {
    my ($v) = @_;
    $v = resolve($v->{'$ref'}) while ref $v eq 'HASH' && exists $v->{'$ref'};
    return $v;
}

# ---------------------------------------------------------------------------
# the reverse: every route served is documented

{
    my %handler;
    open my $fh, '<', "$REPO/ngx_clockchain_module.c" or die $!;
    local $/;
    my $c = <$fh>;
    $handler{$1} = 1 while $c =~ /ngx_string\("(clockchain_\w+)"\),\s*
                                  NGX_HTTP_LOC_CONF\|NGX_CONF_NOARGS,\s*
                                  ngx_http_clockchain_handler_set,/xg;
    ok(keys %handler > 10, 'the module\'s handler directives ('
       . scalar(keys %handler) . ')');

    my %served;
    my $conf = $ng->conf;
    while ($conf =~ /location\s+(=\s+)?(\S+)\s*\{\s*(clockchain_\w+);/g) {
        $served{$3} = [ $1 ? 'exact' : 'prefix', $2 ];
    }
    for my $d (sort keys %handler) {
        next if $UNDOCUMENTED{$d};
        ok($served{$d}, "$d is served in this test's nginx.conf");
    }
    for my $d (sort keys %served) {
        my ($kind, $loc) = @{ $served{$d} };
        my @in = grep {
            $kind eq 'exact' ? $_ eq $loc
                             : index($_, $loc) == 0
                               && substr($_, length $loc) =~ /^\{/
        } keys %{ $doc->{paths} };
        ok(@in, "$loc ($d) is in the document")
            or diag("an undocumented route: add it to src/openapi.json");
    }
}

# ---------------------------------------------------------------------------
# a graph from Flash jobs: two public moments of the service, a year apart
# (an edge joins them), and a job

sub make {
    my ($query) = @_;
    my $j = created_ok(generate($ng, { query => $query,
                                       visibility => 'public' }),
                       "create '$query'") or return;
    my $done = wait_job($ng, $j->{job_id}, 15) // {};
    is($done->{status}, 'completed', "'$query' completed");
    return ($done->{path}, $j->{job_id});
}

my ($A, $job) = make('openapi probe in 1969');
my ($B) = make('openapi probe in 1970');

my $agent = json_body(req('/api/agents/register', 'post',
                          body => encode_json({ agent_name => 'openapi-known' })))->{agent_id};
my %KNOWN = (path => $A, from => $A, to => $B, job_id => $job,
             agent_id => $agent);
my $NOWHERE = '/1999/january/01/0000/nowhere/nowhere/nowhere/absent-0000';
my %UNKNOWN = (path => $NOWHERE, from => $NOWHERE, to => $NOWHERE,
               job_id => '00000000-0000-4000-8000-000000000000',
               agent_id => 99999);

# ---------------------------------------------------------------------------
# a request from the document: req($route, $method, %how) where %how may
# say unknown => 1 (ids that name nothing), key => 'wrong', no_admin => 1,
# query => {...} (added or replacing), body => $text, ctype => $type,
# headers => {...}, ng => $nginx

sub req {
    my ($route, $m, %how) = @_;
    my $op = $doc->{paths}{$route}{$m};
    my $val = $how{unknown} ? \%UNKNOWN : \%KNOWN;
    my (%q, %h);
    my $uri = $route;
    for my $p (map { deref($_) } @{ $op->{parameters} // [] }) {
        my $v = exists $val->{ $p->{name} } ? $val->{ $p->{name} }
                                           : $p->{example};
        if ($p->{in} eq 'path') {
            die "no value for {$p->{name}} of $route\n" unless defined $v;
            # the route's slash is the path's first
            $v =~ s{^/}{} if $uri =~ m{/\{\Q$p->{name}\E\}};
            $uri =~ s/\{\Q$p->{name}\E\}/$v/;
        } elsif ($p->{in} eq 'query' && $p->{required}) {
            $q{ $p->{name} } = $v;
        }
    }
    %q = (%q, %{ $how{query} // {} });
    delete @q{ grep { !defined $q{$_} } keys %q };
    $uri .= '?' . join '&', map { "$_=" . esc($q{$_}) } sort keys %q if %q;

    my %schemes = map { %$_ } @{ $op->{security} // [] };
    $h{'X-Service-Key'} = $how{key} // 'test-key-1' if $schemes{serviceKey};
    $h{'X-Admin-Key'} = 'admin-key' if $schemes{adminKey} && !$how{no_admin};
    my $body = $how{body};
    if (!defined $body && $op->{requestBody}) {
        my $ex = $op->{requestBody}{content}{'application/json'}{example};
        $body = encode_json($ex) if $ex;
    }
    $h{'Content-Type'} = $how{ctype} // 'application/json' if defined $body;
    %h = (%h, %{ $how{headers} // {} });
    return http(uc $m => ($how{ng} // $ng)->url($uri), headers => \%h,
                (defined $body ? (body => $body) : ()),
                ua => http_ua(timeout => 30));
}

sub esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub params { map { deref($_) } @{ $_[0]{parameters} // [] } }

# how each status is provoked on any route, from the document; undef when
# the route gives no way
my %GENERIC = (
    200 => sub { req(@_[0, 1]) },
    401 => sub { req(@_[0, 1], key => 'wrong-key') },
    404 => sub {
        my ($route, $m, $op) = @_;
        return undef unless grep { exists $UNKNOWN{ $_->{name} } }
                            params($op);
        return req($route, $m, unknown => 1);
    },
    405 => sub { req($_[0], 'delete') },
    400 => sub {
        my ($route, $m, $op) = @_;
        # a body that is not JSON, a number that is not, a value outside
        # its enum, an X-User-Id with a space: the first that applies (a
        # path that names no moment, whatever its form, is a 404)
        return req($route, $m, body => '{"visibility": ')
            if $op->{requestBody};
        my ($n) = grep { $_->{in} eq 'query'
                         && ($_->{schema}{type} // '') eq 'integer' }
                  params($op);
        return req($route, $m, query => { $n->{name} => 'x' }) if $n;
        my ($e) = grep { $_->{in} eq 'query' && $_->{schema}{enum} }
                  params($op);
        return req($route, $m, query => { $e->{name} => 'not-one-of-them' })
            if $e;
        return req($route, $m, headers => { 'X-User-Id' => 'a b' })
            if grep { $_->{name} eq 'X-User-Id' } params($op);
        return undef;
    },
    413 => sub {
        my ($route, $m, $op) = @_;
        return undef unless $op->{requestBody};
        return req($route, $m, body => '{"a": "' . ('x' x 300000) . '"}');
    },
    415 => sub {
        my ($route, $m, $op) = @_;
        return undef unless $op->{requestBody};
        return req($route, $m, ctype => 'text/plain');
    },
    # last, once Redis is stopped (below): ids that are not cached
    503 => sub { req(@_[0, 1], unknown => 1) },
);

# what only one route does
my $RESTORE_LINE = '';
my %PROVOKE = (
    'GET /openapi.json 304' => sub {
        http(GET => $ng->url('/openapi.json'),
             headers => { 'If-None-Match' => $etag });
    },
    'GET /api/moments/{path} 304' => sub {
        # the public's answer: published, read once without a key for its
        # ETag, then asked again with it
        req('/api/moments/{path}/publish', 'post');
        my $url = $ng->url("/api/moments$A");
        my $tag = http(GET => $url)->{headers}{etag} // 'none';
        http(GET => $url, headers => { 'If-None-Match' => $tag });
    },
    'POST /api/generate 409' => sub {
        for my $q ('first query', 'second query') {
            my $r = req('/api/generate', 'post',
                        body => encode_json({ query => $q }),
                        headers => { 'Idempotency-Key' => 'openapi-409' });
            return $r if $r->{status} != 200;
        }
    },
    'POST /api/bulk-generate 409' => sub {
        for my $q ('first query', 'second query') {
            my $r = req('/api/bulk-generate', 'post',
                        body => encode_json({ queries => [{ query => $q }] }),
                        headers => { 'Idempotency-Key' => 'openapi-b409' });
            return $r if $r->{status} != 200;
        }
    },
    'POST /api/generate 429' => sub {
        my $r;
        $r = req('/api/generate', 'post', ng => $empty) for 1 .. 2;
        return $r;
    },
    'POST /api/bulk-generate 429' => sub {
        req('/api/bulk-generate', 'post', ng => $empty);
    },
    'POST /api/bulk-generate 403' => sub {
        req('/api/bulk-generate', 'post', no_admin => 1);
    },
    'POST /api/moments/{path}/publish 403' => sub {
        req('/api/moments/{path}/publish', 'post',
            headers => { 'X-User-Id' => 'alice' });
    },
    'PATCH /api/moments/{path}/visibility 403' => sub {
        req('/api/moments/{path}/visibility', 'patch',
            headers => { 'X-User-Id' => 'alice' });
    },
    'GET /api/random 404' => sub { req('/api/random', 'get', ng => $empty) },
    'POST /api/generate 403' => sub {
        req('/api/generate', 'post', ng => $writers,
            headers => { Authorization => "Bearer $reader" });
    },
    (map {
        my $route = $_;
        ("POST $route 403" => sub {
            req($route, 'post', ng => $writers,
                headers => { Authorization => "Bearer $reader" });
        })
    } qw(/api/index /api/ingest/subgraph /api/ingest/tdf)),
    'GET /api/agents 403' => sub {
        req('/api/agents', 'get', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    'POST /api/agents 403' => sub {
        req('/api/agents', 'post', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    'POST /api/agents/register 403' => sub {
        req('/api/agents/register', 'post', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    'DELETE /api/agents/{agent_id} 403' => sub {
        req('/api/agents/{agent_id}', 'delete', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    'POST /api/agents 409' => sub {
        my $r;
        $r = req('/api/agents', 'post',
                 body => encode_json({ agent_name => 'openapi-twice' })) for 1 .. 2;
        return $r;
    },
    'POST /api/agents/register 409' => sub {
        req('/api/agents/register', 'post',
            body => encode_json({ agent_name => 'openapi-twice' }));
    },
    'POST /api/moments/propose 403' => sub {
        req('/api/moments/propose', 'post', ng => $writers,
            headers => { Authorization => "Bearer $reader" });
    },
    'POST /api/moments/propose 409' => sub { req('/api/moments/propose', 'post') },
    'POST /api/moments/{path}/challenge 403' => sub {
        req('/api/moments/{path}/challenge', 'post', ng => $writers,
            headers => { Authorization => "Bearer $reader" });
    },
    'POST /api/moments/{path}/challenge 409' => sub {
        req('/api/moments/{path}/challenge', 'post');
    },
    'POST /api/moments/{path}/verify 400' => sub {
        req('/api/moments/{path}/verify', 'post');
    },
    'POST /api/moments/{path}/verify 403' => sub {
        req('/api/moments/{path}/verify', 'post', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    # two moments of their own: $A is verified by the verify route's 200
    'POST /api/moments/{path}/reconcile 200' => sub {
        my @id = map { "/1969/july/21/0000/united-states/florida/cape-canaveral/openapi-r$_" } 1, 2;
        req('/api/moments/propose', 'post', body => encode_json({ id => $_ })) for @id;
        http(POST => $ng->url("/api/moments$id[0]/reconcile"),
             headers => { 'X-Service-Key' => 'test-key-1', 'Content-Type' => 'application/json' },
             body => encode_json({ winner_id => $id[0], loser_id => $id[1] }));
    },
    'POST /api/moments/{path}/reconcile 403' => sub {
        req('/api/moments/{path}/reconcile', 'post', ng => $writers,
            headers => { Authorization => 'Bearer openapi-writer' });
    },
    'POST /api/moments/{path}/reconcile 404' => sub {
        req('/api/moments/{path}/reconcile', 'post', unknown => 1,
            body => encode_json({ winner_id => $NOWHERE, loser_id => $B }));
    },
    'POST /api/moments/{path}/reconcile 503' => sub {
        req('/api/moments/{path}/reconcile', 'post', unknown => 1,
            body => encode_json({ winner_id => $NOWHERE, loser_id => $B }));
    },
    'DELETE /api/agents/{agent_id} 400' => sub {
        http(DELETE => $ng->url('/api/agents/abc'),
             headers => { 'X-Service-Key' => 'test-key-1' });
    },
    'DELETE /api/agents/{agent_id} 405' => sub {
        http(GET => $ng->url("/api/agents/$agent"),
             headers => { 'X-Service-Key' => 'test-key-1' });
    },
    'GET /api/graph/path 404' => sub {
        req('/api/graph/path', 'get', query => { to => $NOWHERE });
    },
    'GET /api/jobs/{job_id} 404' => sub {
        req('/api/jobs/{job_id}', 'get', unknown => 1);
    },
    'GET /api/export 403' => sub {
        req('/api/export', 'get', no_admin => 1);
    },
    'POST /api/restore 403' => sub {
        req('/api/restore', 'post', no_admin => 1, body => "\n");
    },
    # a line of the export, sent back (it writes nothing new); kept for 503
    'POST /api/restore 200' => sub {
        ($RESTORE_LINE) = split /\n/, req('/api/export', 'get')->{content};
        req('/api/restore', 'post', body => "$RESTORE_LINE\n",
            ctype => 'application/x-ndjson');
    },
    'POST /api/restore 503' => sub {
        req('/api/restore', 'post', body => "$RESTORE_LINE\n",
            ctype => 'application/x-ndjson');
    },
);

# ---------------------------------------------------------------------------
# every documented route and status, 503 last

sub check {
    my ($route, $m, $st, $op) = @_;
    my $name = uc($m) . " $route $st";
    my $how = $PROVOKE{$name} // $GENERIC{$st};
    my $r = $how ? $how->($route, $m, $op) : undef;
    if (!$r) {
        fail("$name: no way to provoke it: add it to %PROVOKE in $0");
        return;
    }
    is($r->{status}, $st, "$name: status $st") or do {
        diag('body: ' . substr($r->{content} // '', 0, 300));
        return;
    };
    my $resp = deref($op->{responses}{$st});
    my $media = $resp->{content}{'application/json'};
    my ($other) = grep { $_ ne 'application/json' }
                  keys %{ $resp->{content} // {} };
    if (!$media && $other) {
        # a body that is not JSON (the export's JSONL): its type, and some
        like($r->{headers}{'content-type'} // '', qr{^\Q$other\E},
             "$name: $other");
        isnt($r->{content} // '', '', "$name: a body");
        return;
    }
    if (!$media) {
        is($r->{content} // '', '', "$name: no body");
        return;
    }
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON");
    my $data = eval { JSON::PP->new->utf8->allow_nonref->decode($r->{content}) };
    my @err;
    if ($@) {
        push @err, "not JSON: $@";
    } else {
        validate($media->{schema}, $data, '$', \@err);
    }
    is(join("\n", @err), '', "$name: the body has the documented schema")
        or diag('body: ' . substr($r->{content}, 0, 300));
}

# the validator itself tells a wrong body from a right one
{
    my $s = { type => 'object', required => ['a'],
              properties => { a => { type => 'integer' },
                              b => { type => 'string', enum => ['x'] },
                              c => { type => 'array',
                                     items => { type => 'number' } } } };
    my $ok = JSON::PP->new->decode('{"a": 1, "b": "x", "c": [0.5, 2]}');
    my @e;
    validate($s, $ok, '$', \@e);
    is("@e", '', 'validate: a right body passes');
    for my $bad ('{"b": "x"}', '{"a": "1"}', '{"a": 1.5}', '{"a": 1, "b": "y"}',
                 '{"a": 1, "c": ["0.5"]}', '{"a": null}', '[]') {
        @e = ();
        validate($s, JSON::PP->new->decode($bad), '$', \@e);
        ok(@e, "validate: $bad fails");
    }
}

check(@$_) for grep { $_->[2] ne '503' } @ops;

$redis->stop;
ok(wait_for(10, sub { http(GET => $ng->url('/health'))->{status} == 503 }),
   'Redis stopped: /health says so');
check(@$_) for grep { $_->[2] eq '503' } @ops;

# ---------------------------------------------------------------------------
# the subset of JSON Schema the document uses: type, nullable, required,
# properties, additionalProperties, items, enum, maxItems, $ref

sub validate {
    my ($s, $v, $at, $err) = @_;
    $s = deref($s);
    if (!defined $v) {
        push @$err, "$at: null" unless $s->{nullable};
        return;
    }
    my $t = $s->{type} // '';
    my $f = B::svref_2object(\$v)->FLAGS;
    my $num = !ref $v && ($f & (B::SVp_IOK | B::SVp_NOK))
              && !($f & B::SVp_POK);
    my $str = !ref $v && ($f & B::SVp_POK);
    if ($t eq 'object') {
        return push @$err, "$at: not an object" unless ref $v eq 'HASH';
        for my $k (@{ $s->{required} // [] }) {
            push @$err, "$at: no \"$k\"" unless exists $v->{$k};
        }
        my $props = $s->{properties} // {};
        for my $k (sort keys %$v) {
            if ($props->{$k}) {
                validate($props->{$k}, $v->{$k}, "$at.$k", $err);
            } elsif (ref $s->{additionalProperties} eq 'HASH') {
                validate($s->{additionalProperties}, $v->{$k}, "$at.$k",
                         $err);
            }
        }
    } elsif ($t eq 'array') {
        return push @$err, "$at: not an array" unless ref $v eq 'ARRAY';
        push @$err, "$at: more than $s->{maxItems} items"
            if defined $s->{maxItems} && @$v > $s->{maxItems};
        validate($s->{items}, $v->[$_], "$at\[$_]", $err)
            for $s->{items} ? 0 .. $#$v : ();
    } elsif ($t eq 'string') {
        push @$err, "$at: not a string" unless $str;
    } elsif ($t eq 'integer') {
        push @$err, "$at: not an integer" unless $num && $v == int $v;
    } elsif ($t eq 'number') {
        push @$err, "$at: not a number" unless $num;
    } elsif ($t eq 'boolean') {
        push @$err, "$at: not a boolean" unless JSON::PP::is_bool($v);
    }
    if ($s->{enum} && !ref $v) {
        push @$err, "$at: \"$v\" is not one of @{ $s->{enum} }"
            unless grep { $_ eq $v } @{ $s->{enum} };
    }
}

done();
