# The writers' routes without Flash (issue 16 item 1): POST /api/index,
# /api/ingest/subgraph and /api/ingest/tdf, with the original's bodies and
# answers (app/api/ingest.py, POST /index in app/api/generate.py).
#
# - the original's tests that call them (test_generate.py
#   test_index_endpoint, test_tdf.py's three, test_tdf_integration.py
#   test_ingest_tdf_endpoint, test_multi_writer.py's index calls without
#   their tokens) as HTTP calls.  Their paths are the original's unpadded
#   ones (/2000/january/1/...): stored here at the canonical /01/, so the
#   reads use that (or the unpadded one, which the moment route takes);
# - a node written so has a completion's indexes (browse, search, the
#   list find it) and auto-edges (neighbours), and the edges named;
# - every bad input is a JSON 4xx naming the entry, and writes nothing
#   (DBSIZE and idx:version as before);
# - an existing node is updated as the original's ON CONFLICT DO UPDATE,
#   keeping created_at, created_by, visibility and status;
# - two nginx on one Redis ingesting overlapping subgraphs at once end
#   with the graph ingesting them one after the other gives.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my $JSON = JSON::PP->new->canonical;

my $CONF = <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_edges_max 50;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_max_body_size 65536;
        location = /api/v1/index              { clockchain_index; }
        location = /api/v1/ingest/subgraph    { clockchain_ingest_subgraph; }
        location = /api/v1/ingest/tdf         { clockchain_ingest_tdf; }
        location = /api/index                 { clockchain_index; }
        location = /api/ingest/subgraph       { clockchain_ingest_subgraph; }
        location = /api/ingest/tdf            { clockchain_ingest_tdf; }
        location = /api/v1/moments            { clockchain_moments_list; }
        location /api/v1/moments/             { clockchain_moments; }
        location = /api/v1/stats              { clockchain_stats; }
        location /api/v1/graph/neighbors/     { clockchain_graph_neighbors; }
        location = /api/v1/search             { clockchain_search; }
        location /api/v1/browse               { clockchain_browse; }
    }
CONF

my $redis = start_redis();
my @ng = map { start_nginx(redis => $redis, conf => $CONF) } 1 .. 2;

sub post {
    my ($uri, $body, %o) = @_;
    return http(POST => ($o{ng} // $ng[0])->url($uri),
                headers => { 'X-Service-Key' => $SK, %{ $o{headers} // {} } },
                ref $body ? (json => $body) : (body => $body,
                    headers => { 'X-Service-Key' => $SK,
                                 'Content-Type' => 'application/json',
                                 %{ $o{headers} // {} } }));
}

sub get {
    my ($uri, %o) = @_;
    return http(GET => ($o{ng} // $ng[0])->url($uri),
                headers => $o{anonymous} ? {} : { 'X-Service-Key' => $SK });
}

sub node { return { @{ $redis->cmd('HGETALL', "${P}node:$_[0]") } } }

sub canonical { $_[0] =~ s{^(/-?\d+/[a-z]+/)(\d)/}{${1}0$2/}r }

# --- the original's tests ------------------------------------------------

# test_generate.py test_index_endpoint
my $hastings = '/1066/october/14/0900/united-kingdom/east-sussex/hastings/battle-of-hastings';
my $res = post('/api/v1/index', {
    path => $hastings,
    flash_timepoint_id => 'flash-uuid-456',
    metadata => {
        # not a column of the original's add_node: ignored, as there
        edges => [ { target => 'nowhere', type => 'friends' } ],
        name => 'Battle of Hastings', year => 1066, month => 'october',
        day => 14, one_liner => 'William the Conqueror defeats Harold II',
        tags => [ 'battle', 'england' ],
        figures => [ 'William the Conqueror', 'Harold II' ],
    },
    visibility => 'public',
    created_by => 'system',
});
is($res->{status}, 200, 'test_index_endpoint: 200');
my $d = json_ok($res, 'test_index_endpoint');
is_deeply($d, { path => $hastings, status => 'indexed' },
          'test_index_endpoint: {path, status: indexed}');
$d = json_ok(get('/api/v1/search?q=hastings'), 'test_index_endpoint: search');
ok(@{ $d // [] } >= 1 && $d->[0]{path} eq $hastings,
   'test_index_endpoint: searchable');
my %n = %{ node($hastings) };
is($n{flash_timepoint_id}, 'flash-uuid-456', 'flash_timepoint_id kept');
is($n{layer}, 2, 'a moment Flash rendered is at least layer 2, as there');
is($n{proposed_by}, 'system', 'proposed_by: the writer (no token: system)');
is($n{status}, 'proposed', 'status: proposed');

# test_tdf.py test_add_node_stamps_tdf_hash: the name at the top level is
# not metadata, and the original drops it as here
my $decl = '/1776/july/4/1200/united-states/pennsylvania/philadelphia/declaration-of-independence';
$res = post('/api/v1/index', {
    path => $decl, name => 'Declaration of Independence',
    one_liner => 'Continental Congress adopts the Declaration',
    tags => ['independence'], visibility => 'public', layer => 1,
});
is($res->{status}, 200, 'test_add_node_stamps_tdf_hash: 200');
is(json_body($res)->{path}, canonical($decl),
   '... at the canonical path: the unpadded day is 04');
$d = json_ok(get("/api/v1/moments$decl"), '... read by the unpadded path');
like($d->{tdf_hash} // '', qr/^[0-9a-f]{64}$/,
     'test_add_node_stamps_tdf_hash: a 64-hex tdf_hash');
is($d->{visibility}, 'public', '... public as asked');

# test_tdf.py test_ingest_subgraph_stamps_tdf_hash
my $y2k = '/2000/january/1/0000/world/world/world/y2k-arrives';
$res = post('/api/v1/ingest/subgraph', {
    nodes => [ {
        id => $y2k, name => 'Y2K Arrives', year => 2000, month => 'january',
        month_num => 1, day => 1, time => '0000', country => 'world',
        region => 'world', city => 'world', slug => 'y2k-arrives',
        layer => 1, visibility => 'public',
        one_liner => 'The new millennium begins without catastrophic computer failures',
    } ],
    edges => [],
});
is($res->{status}, 200, 'test_ingest_subgraph_stamps_tdf_hash: 200');
is_deeply(json_body($res), { ingested_nodes => 1, ingested_edges => 0 },
          '... {ingested_nodes: 1, ingested_edges: 0}');
$d = json_ok(get('/api/v1/moments' . canonical($y2k)), '... the moment');
like($d->{tdf_hash} // '', qr/^[0-9a-f]{64}$/, '... its tdf_hash');

# test_tdf.py test_ingest_subgraph_preserves_explicit_tdf_hash
my $sept = '/2001/september/11/0846/united-states/new-york/new-york/sept-11';
$res = post('/api/v1/ingest/subgraph', {
    nodes => [ {
        id => $sept, name => 'September 11', year => 2001,
        month => 'september', month_num => 9, day => 11, time => '0846',
        country => 'united-states', region => 'new-york', city => 'new-york',
        slug => 'sept-11', layer => 1, visibility => 'public',
        one_liner => 'Terrorist attacks', tdf_hash => 'a' x 64,
    } ],
    edges => [],
});
is($res->{status}, 200, 'test_ingest_subgraph_preserves_explicit_tdf_hash: 200');
is(node($sept)->{tdf_hash}, 'a' x 64, '... the tdf_hash given is kept');

# test_tdf_integration.py test_ingest_tdf_endpoint
my $it = '/2000/january/1/0000/test/region/city/ingest-test';
$res = post('/api/v1/ingest/tdf', [ {
    id => $it, source => 'clockchain', timestamp => '2026-01-01T00:00:00Z',
    provenance => { generator => 'test-ingest', confidence => 0.8 },
    payload => {
        type => 'event', name => 'Ingest Test', year => 2000,
        month => 'january', month_num => 1, day => 1, time => '0000',
        country => 'test', region => 'region', city => 'city',
        slug => 'ingest-test', layer => 1, visibility => 'public',
        tags => ['test'], one_liner => 'A test node ingested via TDF',
    },
} ]);
is($res->{status}, 200, 'test_ingest_tdf_endpoint: 200');
is_deeply(json_body($res), { ingested_nodes => 1 },
          'test_ingest_tdf_endpoint: {ingested_nodes: 1}');
$d = json_ok(get("/api/v1/moments$it?format=tdf"), '... its TDF record');
like($d->{tdf_hash} // '', qr/^[0-9a-f]{64}$/, '... with a 64-hex tdf_hash');
%n = %{ node(canonical($it)) };
is($n{created_at}, '2026-01-01T00:00:00.000000Z', "... the record's timestamp");
is($n{confidence} + 0, 0.8, '... its provenance.confidence');

# test_multi_writer.py: TestLegacyMode test_write_works_without_auth_config
# and TestAgentIdentityOnMoments test_proposed_by_set_on_index, without
# tokens (writers' tokens are another route's; with none configured a
# write needs the service key only and its writer is "system")
$res = post('/api/v1/index', { path => '/2000/january/1/1200/us/ca/sf/legacy-test',
                               metadata => { name => 'Legacy' } });
is($res->{status}, 200, 'test_write_works_without_auth_config: 200');
$res = post('/api/v1/index', {
    path => '/1945/august/6/1200/japan/hiroshima/hiroshima/atomic-bombing-test',
    metadata => { name => 'Atomic Bombing Test', year => 1945 } });
is($res->{status}, 200, 'test_proposed_by_set_on_index: 200');
$d = json_ok(get('/api/v1/moments/1945/august/06/1200/japan/hiroshima/hiroshima/atomic-bombing-test'),
             'test_proposed_by_set_on_index: the moment');
is($d->{proposed_by}, 'system', '... proposed_by, the writer: system');
is($d->{visibility}, 'private', "... /index's default visibility: private");

# --- the indexes and auto-edges of a completion, and the edges named -----

my $a = '/1969/july/20/2056/united-states/florida/cape-canaveral/apollo-eleven-landing';
my $b = '/1969/july/20/2100/united-states/florida/cape-canaveral/first-steps-walked';
$res = post('/api/ingest/subgraph', {
    nodes => [
        { id => $a, name => 'Apollo Eleven Landing', figures => ['Neil Armstrong'],
          tags => ['space'] },
        { id => $b, name => 'First Steps Walked', figures => ['Neil Armstrong'],
          tags => ['space'], visibility => 'public' },
    ],
    edges => [ { source => $a, target => $b, type => 'causes', weight => 0.9,
                 description => 'landed, then walked' } ],
});
is($res->{status}, 200, 'a subgraph of two nodes and an edge: 200');
is_deeply(json_body($res), { ingested_nodes => 2, ingested_edges => 1 },
          '... both nodes and the edge counted');

$d = json_ok(get('/api/v1/browse/1969/july/20'), 'browse the day');
is_deeply({ map { $_->{segment} => $_->{count} } @{ $d->{items} } },
          { 2056 => 1, 2100 => 1 }, '... browse finds both');
$d = json_ok(get('/api/v1/search?q=walked'), 'search');
is($d->[0]{path}, $b, '... search finds one by its name');
$d = json_ok(get('/api/v1/search?q=armstrong'), 'search a figure');
is(scalar @$d, 2, '... and both by their figure');
$d = json_ok(get('/api/v1/moments?year_from=1969&year_to=1969', anonymous => 1),
             'the public list');
is_deeply([ map { $_->{path} } @{ $d->{items} } ], [$a, $b],
          '... lists both (a subgraph node is public by default)');

$d = json_ok(get("/api/v1/graph/neighbors$a"), 'neighbours');
my %types = map { ("$_->{path} $_->{edge_type}" => $_) } @$d;
ok($types{"$b contemporaneous"}, 'auto-edge: contemporaneous, the same day');
ok($types{"$b same_figure"}, 'auto-edge: same_figure, Neil Armstrong');
is($types{"$b same_figure"}{theme}, 'Neil Armstrong', '... its theme');
ok($types{"$b thematic"}, 'auto-edge: thematic, the tag space');
ok($types{"$b same_location"}, 'auto-edge: same_location');
ok($types{"$b causes"}, 'the edge named: causes');
is($types{"$b causes"}{weight}, 0.9, '... its weight');
is($types{"$b causes"}{description}, 'landed, then walked', '... its description');
is($types{"$b causes"}{created_by}, 'auto', "... created_by, the original's default");
$d = json_ok(get("/api/v1/graph/neighbors$b"), "the other's neighbours");
%types = map { ("$_->{path} $_->{edge_type}" => 1) } @$d;
ok($types{"$a contemporaneous"}, 'auto-edges are written both ways');

$d = json_ok(get('/api/v1/stats'), 'stats');
is($d->{total_nodes}, 9, 'stats: the nine nodes written so far');
is($d->{edge_type_counts}{causes}, 1, 'stats: the edge named counted');

# an edge alone, between nodes already there; the same again is kept once
$res = post('/api/ingest/subgraph', { edges => [
    { source => $b, target => $a, type => 'influences' },
    { source => $b, target => $a, type => 'influences' } ] });
is($res->{status}, 200, 'edges alone, between stored nodes: 200');
is_deeply(json_body($res), { ingested_nodes => 0, ingested_edges => 2 },
          "... counted as given, as the original's answer does");
is(json_ok(get('/api/v1/stats'))->{edge_type_counts}{influences},
   1, '... the edge stored once (ON CONFLICT DO NOTHING)');

# --- an existing node: updated, as ON CONFLICT DO UPDATE -----------------

my %before = %{ node($a) };
$redis->cmd('HSET', "${P}node:$a", 'status', 'verified');
$res = post('/api/ingest/subgraph', { nodes => [
    { id => $a, name => 'Eagle Has Landed', visibility => 'private',
      figures => ['Neil Armstrong'], tags => ['space'] } ] });
is($res->{status}, 200, 'the same node again: 200');
my %after = %{ node($a) };
is($after{name}, 'Eagle Has Landed', '... its name updated');
is($after{created_at}, $before{created_at}, '... its created_at kept');
is($after{visibility}, 'public', '... its visibility kept (publish changes it)');
is($after{status}, 'verified', '... its status kept, as the original');
$d = json_ok(get('/api/v1/search?q=eagle'), 'search the new name');
is($d->[0]{path}, $a, '... finds it');
$d = json_ok(get('/api/v1/search?q=apollo'), 'search the old name');
is(scalar @$d, 0, '... finds nothing: its old words are out');
is(json_ok(get('/api/v1/stats'))->{total_nodes}, 9, '... still nine nodes');

# --- bad input: a JSON 4xx naming the entry, nothing written -------------

my $good = { id => '/1500/may/05/1200/italy/tuscany/florence/good-node',
             name => 'Good' };

sub graph_state { join ' ', $redis->cmd('DBSIZE'), $redis->cmd('GET', "${P}idx:version") }

sub refused {
    my ($uri, $body, $status, $detail, $name, %o) = @_;
    my $s0 = graph_state();
    my $res = post($uri, $body, %o);
    is_error($res, $status, $detail, $name);
    is(graph_state(), $s0, "$name: nothing written (DBSIZE and idx:version)");
}

refused('/api/ingest/subgraph', '{"nodes": [', 400, qr/^body: not JSON/,
        'malformed JSON');
refused('/api/ingest/subgraph', '{"nodes": [], "nodes": []}', 400,
        qr/^body: not JSON: duplicate object key/, 'a key twice');
refused('/api/ingest/subgraph', [], 400, qr/^body: must be a JSON object/,
        'subgraph: a list');
refused('/api/ingest/subgraph', { nodes => {} }, 400,
        'nodes: must be a list of at most 100', 'nodes: an object');
refused('/api/ingest/subgraph', { nodes => [ ($good) x 101 ] }, 400,
        'nodes: must be a list of at most 100',
        'more nodes than one request may carry');
refused('/api/ingest/tdf', [ ({ id => $it }) x 101 ], 400,
        'body: more than 100 records', 'more records than one request may carry');
refused('/api/ingest/subgraph', { nodes => [ $good, 'x' ] }, 400,
        'nodes[1]: must be an object', 'a node that is a string');
refused('/api/ingest/subgraph', { nodes => [ $good, { %$good, id => '/a/b' } ] },
        400, qr{^nodes\[1\]\.id: "/a/b" is not a moment's path},
        'a path that cannot be made canonical');
refused('/api/ingest/subgraph', { nodes => [ $good, { name => 'x' } ] },
        400, 'nodes[1].id: is missing', 'a node without id');
refused('/api/ingest/subgraph', { nodes => [ { %$good, name => 5 } ] }, 400,
        'nodes[0].name: must be a string', 'a name that is a number');
refused('/api/ingest/subgraph', { nodes => [ { %$good, tags => 'x' } ] },
        400, qr/^nodes\[0\]\.tags: must be a list/, 'tags not a list');
refused('/api/ingest/subgraph', { nodes => [ { %$good, day => 6 } ] }, 400,
        'nodes[0].day: must be the integer 5, as in the id',
        'a day that is not the path\'s');
refused('/api/ingest/subgraph', { nodes => [ { %$good, visibility => 'x' } ] },
        400, 'nodes[0].visibility: must be "public" or "private"',
        'a visibility outside the two');
refused('/api/ingest/subgraph', { nodes => [ { %$good, name => 'x' x 2001 } ] },
        400, qr/^nodes\[0\]\.name: is longer than 2000 bytes/,
        "a name over scene.c's limit");
refused('/api/ingest/subgraph', { nodes => [ $good ], edges => [
        { source => $good->{id}, target => $a, type => 'friends' } ] }, 400,
        qr/^edges\[0\]\.type: "friends" is not one of the twelve edge types/,
        'an unknown edge type');
refused('/api/ingest/subgraph', { edges => [
        { source => $a, target => '/x', type => 'causes' } ] }, 400,
        qr{^edges\[0\]\.target: "/x" is not a moment's path},
        "an edge's end that cannot be made canonical");
refused('/api/ingest/subgraph', { edges => [
        { source => $a, target => $b, weight => 2 } ] }, 400,
        'edges[0].weight: must be a number from 0 to 1', 'a weight over 1');
refused('/api/ingest/subgraph', { nodes => [ $good ], edges => [
        { source => $a, target => $b, type => 'causes' },
        { source => $good->{id}, target => '/1500/may/5/1200/italy/tuscany/florence/nowhere' } ] },
        400, 'edges[1].target: "/1500/may/05/1200/italy/tuscany/florence/nowhere" '
             . 'names no moment, neither stored nor in this request',
        "an edge to a node that is nowhere (the original's foreign key)");
ok(!%{ node($good->{id}) }, '... and the good node of that request is not there');
refused('/api/ingest/subgraph', { nodes => [], edges => [] }, 400,
        'nodes, edges: both empty, nothing to ingest', 'empty lists');
refused('/api/ingest/subgraph', {}, 400,
        'nodes, edges: both empty, nothing to ingest', 'no lists at all');
refused('/api/ingest/tdf', [], 400, 'body: the list is empty, nothing to ingest',
        'tdf: an empty list');
refused('/api/ingest/tdf', { id => $it }, 400,
        'body: must be a JSON list of TDF records', 'tdf: one record, not a list');
refused('/api/ingest/tdf', [ { id => $it, payload => { name => [] } } ], 400,
        '[0].payload.name: must be a string', 'tdf: a name that is a list');
refused('/api/ingest/tdf', [ { id => $it, timestamp => 'yesterday' } ], 400,
        qr/^\[0\]\.timestamp: must be a UTC time/, 'tdf: a bad timestamp');
refused('/api/index', { metadata => {} }, 400, 'path: is required',
        'index: no path');
refused('/api/index', { path => 7 }, 400, 'path: must be a string',
        'index: a path that is a number');
refused('/api/index', { path => $good->{id}, metadata => [] }, 400,
        'metadata: must be an object', 'index: metadata a list');
refused('/api/index', { path => $good->{id}, metadata => { layer => 'x' } },
        400, qr/^metadata\.layer: must be an integer/, 'index: a bad layer');
refused('/api/index', { path => $good->{id}, created_by => 'a b' }, 400,
        qr/^created_by: must be printable ASCII/, 'index: a bad created_by');
refused('/api/index', { path => $good->{id}, flash_timepoint_id => 5 }, 400,
        qr/^flash_timepoint_id: must be a string/, 'index: a bad flash id');
refused('/api/ingest/subgraph',
        $JSON->encode({ nodes => [ { %$good, one_liner => 'x' x 1900 } ],
                        pad => 'y' x 65536 }),
        413, 'Request body too large: the limit is 65536 bytes',
        'a body over clockchain_max_body_size');
refused('/api/ingest/subgraph', { nodes => [ $good ] }, 401,
        'Missing or invalid service key', 'no service key',
        headers => { 'X-Service-Key' => undef });
refused('/api/ingest/subgraph', '{}', 415, qr/^Content-Type must be/,
        'a body that is not said to be JSON',
        headers => { 'Content-Type' => 'text/plain' });
$res = http(GET => $ng[0]->url('/api/ingest/tdf'),
            headers => { 'X-Service-Key' => $SK });
is($res->{status}, 405, 'GET: 405');
is($res->{headers}{allow}, 'POST', '... Allow: POST');

# --- two nginx at once, overlapping: as one after the other --------------

# 24 nodes: A writes 0..15, B 8..23, each in batches of 4 with an edge in
# each batch; edges_max (50) is more than any node's candidates, so the
# auto-edges do not depend on the order the nodes came in
my @cities = qw(rome paris berlin);
my @all = map {
    my $i = $_;
    my $day = sprintf '%02d', 1 + $i % 3;
    { id => "/1800/march/$day/12" . sprintf('%02d', $i) . "/europe/west/"
            . $cities[$i % 3] . "/event-$i",
      name => "Event $i", tags => [ 'tag' . ($i % 4) ],
      figures => [ 'figure' . ($i % 5) ], layer => 1 }
} 0 .. 23;

sub batches {
    my ($from, $to) = @_;
    my @b;
    for (my $i = $from; $i <= $to; $i += 4) {
        my @n = @all[$i .. $i + 3];
        push @b, { nodes => \@n,
                   edges => [ { source => $n[0]{id}, target => $n[3]{id},
                                type => 'influences', theme => "batch $i" } ] };
    }
    return @b;
}

sub dump_graph {
    my %g;
    for my $k (sort @{ $redis->cmd('KEYS', "${P}*") }) {
        next if $k eq "${P}idx:version";
        my $t = $redis->cmd('TYPE', $k);
        if ($t eq 'hash') {
            my %h = @{ $redis->cmd('HGETALL', $k) };
            delete $h{created_at} if $k =~ /:node:/;
            delete $h{last_updated} if $k eq "${P}stats";
            if ($k =~ /:edges:/) {
                $_ = $JSON->encode(decode_json($_)) for values %h;
            }
            $g{$k} = \%h;
        } elsif ($t eq 'zset') {
            $g{$k} = $redis->cmd('ZRANGE', $k, 0, -1, 'WITHSCORES');
        } else {
            $g{$k} = $redis->cmd('GET', $k);
        }
    }
    return $JSON->encode(\%g);
}

sub ingest_all {
    my ($ng, @b) = @_;
    my @st;
    push @st, post('/api/ingest/subgraph', $_, ng => $ng)->{status} for @b;
    return @st;
}

$redis->cmd('FLUSHALL');
my @A = batches(0, 12);
my @B = batches(8, 20);
my $bg = background(sub { $_[0]->(); ingest_all($ng[1], @B) });
my @sa = ingest_all($ng[0], @A);
my @sb = $bg->result;
is_deeply([ @sa, @sb ], [ (200) x 8 ], 'both nginx ingested at once: 8 x 200');
my $at_once = dump_graph();
like($at_once, qr/event-23/, 'the graph has the last node');

$redis->cmd('FLUSHALL');
ingest_all($ng[0], @A);
ingest_all($ng[0], @B);
my $one_after = dump_graph();
is($at_once, $one_after,
   'at once, the graph is the one A then B gives (every key, created_at aside)');

$redis->cmd('FLUSHALL');
ingest_all($ng[0], @B);
ingest_all($ng[0], @A);
is(dump_graph(), $one_after, '... and the one B then A gives');

done_testing();
