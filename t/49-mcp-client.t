# The calls of the original's real client, the MCP server
# timepointai/timepoint-mcp (app/clients/clockchain.py), made as it makes
# them, under /api/v1/, against a graph made by Flash jobs (issue 15, "Done
# when").  What that client sends:
#
#   - its own base, CLOCKCHAIN_URL + "/api/v1", and X-Service-Key (its
#     CLOCKCHAIN_SERVICE_KEY); X-User-ID (that spelling) when it acts for a
#     user;
#   - paths with their slashes stripped at both ends (path.strip("/")),
#     joined to the route with one "/"; graph/path sends from and to the
#     same way, without their leading slash;
#   - query strings as httpx encodes a dict, in its order: "/" as %2F,
#     " " as "+", a float as Python prints it (0.5);
#   - its clamps: search limit 1..50; subgraph depth 1..3, cap 1..200;
#     traverse depth 1..4, limit 1..200 (direction, edge_types and
#     min_weight passed as given, min_weight only when not 0); path
#     max_hops 1..10;
#   - update_visibility: PATCH .../moments/{path}/visibility with
#     {"visibility": v, "user_id": u} and X-User-ID u (through Flash's
#     proxy, which forwards it to /api/v1/...).
#
# Its traverse_moments tool lets a user pick direction "past" or "future"
# (passed through as given): the module takes them besides out, in and
# both, each step towards earlier (later) moments.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS

        rewrite  ^/api/v1/(.*)\$  /api/\$1  last;

        location = /api/generate       { clockchain_generate; }
        location /api/jobs/            { clockchain_jobs; }
        location = /api/moments        { clockchain_moments_list; }
        location /api/moments/         { clockchain_moments; }
        location = /api/today          { clockchain_today; }
        location = /api/random         { clockchain_random; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
        location /api/graph/subgraph/  { clockchain_graph_subgraph; }
        location /api/graph/traverse/  { clockchain_graph_traverse; }
        location = /api/graph/path     { clockchain_graph_path; }
        location = /api/stats          { clockchain_stats; }
        location = /api/search         { clockchain_search; }
        location = /api/browse         { clockchain_browse; }
        location /api/browse/          { clockchain_browse; }
    }
CONF

my $BASE = $ng->url('/api/v1');
my $KEY = 'test-key-1';

# ---------------------------------------------------------------------------
# the client, as app/clients/clockchain.py makes its calls

# httpx's headers: its defaults, then the client's
sub headers {
    my ($user) = @_;
    return { 'Accept' => '*/*', 'Accept-Encoding' => 'gzip, deflate',
             'User-Agent' => 'python-httpx/0.27.0',
             'X-Service-Key' => $KEY,
             ($user ? ('X-User-ID' => $user) : ()) };
}

# urllib.parse.urlencode of a dict, as httpx encodes params (quote_plus)
sub urlencode {
    my @kv = @_;
    my @out;
    while (my ($k, $v) = splice @kv, 0, 2) {
        my $e = "$v";
        $e =~ s/([^A-Za-z0-9_.~ -])/sprintf '%%%02X', ord $1/ge;
        $e =~ tr/ /+/;
        push @out, "$k=$e";
    }
    return join '&', @out;
}

sub strip { my ($p) = @_; $p =~ s{^/+|/+$}{}g; return $p }
sub clamp { my ($v, $lo, $hi) = @_; $v < $lo ? $lo : $v > $hi ? $hi : $v }

sub get {
    my ($url, $params, $user) = @_;
    $url .= '?' . urlencode(@$params) if $params && @$params;
    return http(GET => $url, headers => headers($user));
}

sub search {
    my ($query, $limit, $user) = @_;
    get("$BASE/search", [ q => $query, limit => clamp($limit, 1, 50) ], $user);
}
sub get_moment {
    my ($path, $format) = @_;
    $format //= 'default';
    get("$BASE/moments/" . strip($path),
        $format ne 'default' ? [ format => $format ] : undef);
}
sub browse {
    my ($path) = @_;
    my $clean = strip($path // '');
    get($clean ? "$BASE/browse/$clean" : "$BASE/browse");
}
sub neighbors { get("$BASE/graph/neighbors/" . strip($_[0])) }
sub subgraph {
    my ($path, $depth, $cap) = @_;
    get("$BASE/graph/subgraph/" . strip($path),
        [ depth => clamp($depth // 1, 1, 3), cap => clamp($cap // 200, 1, 200) ]);
}
sub traverse {
    my ($path, %o) = @_;
    my @p = (direction => $o{direction} // 'both',
             depth => clamp($o{depth} // 2, 1, 4),
             limit => clamp($o{limit} // 50, 1, 200));
    push @p, edge_types => $o{edge_types} if $o{edge_types};
    push @p, min_weight => $o{min_weight} if $o{min_weight};
    get("$BASE/graph/traverse/" . strip($path), \@p);
}
sub path {
    my ($from, $to, %o) = @_;
    my @p = (from => strip($from), to => strip($to),
             max_hops => clamp($o{max_hops} // 6, 1, 10));
    push @p, edge_types => $o{edge_types} if $o{edge_types};
    get("$BASE/graph/path", \@p);
}
sub today  { get("$BASE/today") }
sub random { get("$BASE/random") }
sub stats  { get("$BASE/stats") }
sub update_visibility {
    my ($path, $visibility, $user) = @_;
    return http(PATCH => "$BASE/moments/" . strip($path) . '/visibility',
                headers => { %{ headers($user) },
                             'Content-Type' => 'application/json' },
                body => qq({"visibility": "$visibility", "user_id": "$user"}));
}

# ---------------------------------------------------------------------------
# a graph from Flash jobs: two moments of the service a year apart (an
# edge joins them) and a private one of the MCP's user

sub make { completed_moment($ng, @_) }

my $A = make('mcp probe in 1969', body => { visibility => 'public' });
my $B = make('mcp probe in 1970', body => { visibility => 'public' });
my $MINE = make('mcp probe in 1971', headers => { 'X-User-Id' => 'mcp-user' });
my $OLD = make('mcp probe in 1968', body => { visibility => 'public' });

sub answer {
    my ($res, $name, $type) = @_;
    is($res->{status}, 200, "$name: 200") or diag(substr($res->{content}, 0, 300));
    my $d = json_body($res);
    is(ref $d, $type, "$name: a JSON " . lc $type);
    return $d;
}

my @SUMMARY = qw(city country day month name one_liner path region year);
sub keys_of { join ' ', sort keys %{ $_[0] // {} } }

# ---------------------------------------------------------------------------
# the calls

my $m = answer(get_moment($A), 'get_moment', 'HASH');
is($m->{path}, $A, 'get_moment: the moment');
ok(ref $m->{edges} eq 'ARRAY' && @{ $m->{edges} }, 'get_moment: its edges');

my $n = answer(neighbors($A), 'neighbors', 'ARRAY');
ok((grep { $_->{path} eq $B } @$n), 'neighbors: B is one');
is(keys_of($n->[0]), 'created_by description edge_type name path theme weight',
   'neighbors: each as the original');

for my $c ([1, 200, 'the defaults'], [9, 1000, 'clamped high: depth 3, cap 200'],
           [0, 0, 'clamped low: depth 1, cap 1'])
{
    my $g = answer(subgraph($A, $c->[0], $c->[1]), "subgraph, $c->[2]", 'HASH');
    is($g->{root}, $A, "subgraph, $c->[2]: root");
    is(keys_of($g->{nodes}[0]), "@SUMMARY", "subgraph, $c->[2]: summaries");
    is(scalar @{ $g->{nodes} }, 1, "subgraph, $c->[2]: cap 1 keeps the root")
        if $c->[1] == 0;
}

# direction past / future: only the earlier / later moments, one hop
for my $c ([ 'past', [ $A, $OLD ] ], [ 'future', [ $A, $B, $MINE ] ],
           [ 'both', [ $A, $B, $MINE, $OLD ] ]) {
    my $t = answer(traverse($A, direction => $c->[0], depth => 1),
                   "traverse, direction $c->[0]", 'HASH');
    is_deeply([ sort map { $_->{path} } @{ $t->{nodes} // [] } ],
              [ sort @{ $c->[1] } ],
              "traverse, direction $c->[0]: "
              . ($c->[0] eq 'both' ? 'every neighbour' : "only the $c->[0]"));
}

for my $c ([ {}, 'the defaults' ],
           [ { depth => 9, limit => 1000 }, 'clamped high: depth 4, limit 200' ],
           [ { depth => 0, limit => 0 }, 'clamped low: depth 1, limit 1' ],
           [ { edge_types => 'causes,caused_by,precedes,follows,influences,same_era',
               min_weight => 0.1 }, 'edge_types and min_weight' ])
{
    my $t = answer(traverse($A, %{ $c->[0] }), "traverse, $c->[1]", 'HASH');
    is($t->{root}, $A, "traverse, $c->[1]: root");
    is($t->{nodes}[0]{depth}, 0, "traverse, $c->[1]: the root at depth 0");
}

for my $c ([ {}, 'the default 6 hops' ], [ { max_hops => 99 }, 'clamped: 10' ],
           [ { max_hops => 0 }, 'clamped: 1' ],
           [ { edge_types => 'same_era,precedes,follows' }, 'edge_types' ])
{
    my $p = answer(path($A, $B, %{ $c->[0] }), "path, $c->[1]", 'HASH');
    is($p->{from}, $A, "path, $c->[1]: from, canonical");
    is($p->{to}, $B, "path, $c->[1]: to, canonical");
    is($p->{hops}, 1, "path, $c->[1]: one hop");
    is_deeply([ map { $_->{path} } @{ $p->{nodes} // [] } ], [ $A, $B ],
              "path, $c->[1]: from A to B");
}

my $t = answer(today(), 'today', 'HASH');
is(keys_of($t), 'day events month', 'today: {month, day, events}');

my $r = answer(random(), 'random', 'HASH');
ok((grep { $r->{path} eq $_ } $A, $B, $MINE, $OLD), 'random: a moment of the graph');

my $s = answer(stats(), 'stats', 'HASH');
is($s->{total_nodes}, 4, 'stats: four nodes');

my $v = answer(update_visibility($MINE, 'public', 'mcp-user'),
               'update_visibility', 'HASH');
is_deeply($v, { path => $MINE, visibility => 'public' },
          'update_visibility: {path, visibility}');
is(http(GET => "$BASE/moments$MINE")->{status}, 200,
   'update_visibility: the moment reads without a key now');
is(update_visibility($A, 'private', 'mcp-user')->{status}, 403,
   'update_visibility of a moment the user did not create: 403');

for my $limit (20, 100) {
    my $l = answer(search('mcp probe', $limit), "search, limit $limit", 'ARRAY');
    ok(@$l && @$l <= clamp($limit, 1, 50),
       "search, limit $limit: found, within the clamp");
}

answer(get_moment($A, 'tdf'), 'get_moment, format tdf', 'HASH');

# browse_graph's own examples drill down with an unpadded day
# ('/1776/july/4'): it names the same day as the canonical '04'
my $JULY4 = make('mcp probe of an early day 1776 [flash:date=7-4]',
                 body => { visibility => 'public' });
like($JULY4, qr{^/1776/july/04/}, 'a moment of July 4, 1776');
for my $prefix ('/', '/1776', '/1776/july/', '/1776/july/04',
                '/1776/july/4') {
    my $b = answer(browse($prefix), "browse '$prefix'", 'HASH');
    ok(ref $b->{items} eq 'ARRAY' && @{ $b->{items} }, "browse '$prefix': items");
}

done();
