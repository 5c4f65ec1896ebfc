# The graph walks (issue 15): GET /api/graph/subgraph/{path}?depth=&cap=,
# GET /api/graph/traverse/{path}?direction=&depth=&edge_types=&limit=
# &min_weight=, GET /api/graph/path?from=&to=&max_hops=&edge_types=, on an
# exact graph written into Redis: shapes and values, each parameter, the
# visibility rule ("Who sees what"), 400 naming the parameter, 401 without
# a key, 404 Node not found / No path found, and the bounds on a hub of
# 5000 edges (walk.lua: at most 200 fields read per node, 2000 in all).
use strict;
use warnings;
use Test::More;
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
        $JOBS_LOCATIONS
        location /api/graph/subgraph/    { clockchain_graph_subgraph; }
        location /api/graph/traverse/    { clockchain_graph_traverse; }
        location = /api/graph/path       { clockchain_graph_path; }
        location /api/v1/graph/subgraph/ { clockchain_graph_subgraph; }
        location /api/v1/graph/traverse/ { clockchain_graph_traverse; }
        location = /api/v1/graph/path    { clockchain_graph_path; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';

sub get {
    my ($uri, %o) = @_;
    return http(($o{method} // 'GET') => $ng->url($uri),
                headers => { 'X-Service-Key' => 'test-key-1',
                             %{ $o{headers} // {} } });
}
sub as { return (headers => { 'X-User-Id' => $_[0] }) }

# ---------------------------------------------------------------------------
# the graph: letters are nodes, "-" an edge written both ways
#
#   A -causes 0.9- B -thematic 0.6- D -precedes 0.5- E
#   A -same_era 0.3- C -contemporaneous 0.8- F (alice's) -thematic 0.7- G
#                      C -same_era 0.4- H (bob's) -thematic 0.7- G

my %N;
my %who = (F => ['private', 'alice'], H => ['private', 'bob']);
# A is on June 3: its unpadded form /1914/june/3/... is tried below
my $day = 3;
for my $k (qw(A B C D E F G H)) {
    my $path = sprintf('/1914/june/%02d/1200/bosnia/sarajevo/sarajevo/%s-0001',
                       $day++, lc $k);
    $N{$k} = $path;
    my ($vis, $by) = @{ $who{$k} // ['public', 'system'] };
    $redis->cmd('HSET', "${P}node:$path", 'path', $path, 'name', "Name $k",
                'one_liner', "One $k", 'year', 1914, 'month', 'june',
                'month_num', 6, 'day', $day - 1, 'country', 'bosnia',
                'region', 'sarajevo', 'city', 'sarajevo',
                'visibility', $vis, 'created_by', $by);
}
my %rev = (precedes => 'follows', follows => 'precedes');
sub half {
    my ($from, $to, $type, $w) = @_;
    $redis->cmd('HSET', "${P}edges:$N{$from}", "$type|$N{$to}",
                qq({"source":"$N{$from}","target":"$N{$to}","type":"$type",)
                . qq("weight":$w,"theme":"theme $from$to",)
                . qq("created_by":"auto"}));
}
sub join2 {
    my ($a, $b, $type, $w) = @_;
    half($a, $b, $type, $w);
    half($b, $a, $rev{$type} // $type, $w);
}
join2(qw(A B causes 0.9));
join2(qw(A C same_era 0.3));
join2(qw(B D thematic 0.6));
join2(qw(D E precedes 0.5));
join2(qw(C F contemporaneous 0.8));
join2(qw(F G thematic 0.7));
join2(qw(C H same_era 0.4));
join2(qw(H G thematic 0.7));

my %L = reverse %N;
sub names { [ map { $L{ $_->{path} } // '?' } @{ $_[0] // [] } ] }
sub set { [ sort @{ $_[0] } ] }
sub edges {
    [ sort map { "$L{ $_->{source} }>$L{ $_->{target} } $_->{edge_type}" }
      @{ $_[0] // [] } ]
}
sub both {
    my @e;
    for (@_) {
        my ($a, $b, $t) = @$_;
        push @e, "$a>$b $t", "$b>$a " . ($rev{$t} // $t);
    }
    return [ sort @e ];
}
my %T = (AB => [qw(A B causes)], AC => [qw(A C same_era)],
         BD => [qw(B D thematic)], DE => [qw(D E precedes)],
         CF => [qw(C F contemporaneous)], FG => [qw(F G thematic)],
         CH => [qw(C H same_era)], HG => [qw(H G thematic)]);
sub T { both(map { $T{$_} } @_) }

# ---------------------------------------------------------------------------
# subgraph

my $res = get("/api/graph/subgraph$N{A}");
is($res->{status}, 200, 'subgraph: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
my $g = json_body($res);
is(join(' ', sort keys %$g), 'edges nodes root', '{root, nodes, edges}');
is($g->{root}, $N{A}, 'root is the path');
is_deeply($g->{nodes}[0], { path => $N{A}, name => 'Name A',
                            one_liner => 'One A', year => 1914,
                            month => 6, day => 3, country => 'bosnia',
                            region => 'sarajevo', city => 'sarajevo' },
          'the root first, a summary of exactly the nine fields');
is_deeply(set(names($g->{nodes})), [qw(A B C)], 'depth 1 (default): A B C');
is_deeply(edges($g->{edges}), T(qw(AB AC)),
          'the induced edges, each way, each once');
is_deeply([ map { join ' ', sort keys %$_ } @{ $g->{edges} } ],
          [ ('edge_type source target theme weight') x 4 ],
          'an edge is {source, target, edge_type, weight, theme}');
my ($ab) = grep { $_->{source} eq $N{A} && $_->{target} eq $N{B} }
               @{ $g->{edges} };
is($ab->{weight}, 0.9, 'weight a number');
is($ab->{theme}, 'theme AB', 'theme');

$g = json_body(get("/api/graph/subgraph$N{A}?depth=2"));
is_deeply(set(names($g->{nodes})), [qw(A B C D F H)],
          'depth 2: the service sees all');
is_deeply([ @{ names($g->{nodes}) }[0] ], ['A'], '... root first');
is_deeply(set([ @{ names($g->{nodes}) }[1, 2] ]), [qw(B C)],
          '... nearest first');
is_deeply(edges($g->{edges}), T(qw(AB AC BD CF CH)),
          '... with every edge among them');

$g = json_body(get("/api/graph/subgraph$N{A}?depth=3"));
is_deeply(set(names($g->{nodes})), [qw(A B C D E F G H)], 'depth 3: all eight');
is_deeply(edges($g->{edges}), T(keys %T), '... every edge');

$g = json_body(get("/api/graph/subgraph$N{A}?depth=2", as('alice')));
is_deeply(set(names($g->{nodes})), [qw(A B C D F)],
          "alice: her F, not bob's H");
is_deeply(edges($g->{edges}), T(qw(AB AC BD CF)), '... no edge to H');
$g = json_body(get("/api/graph/subgraph$N{A}?depth=3", as('carol')));
is_deeply(set(names($g->{nodes})), [qw(A B C D E)],
          'carol: neither F nor H; G is only behind them');

$g = json_body(get("/api/graph/subgraph$N{A}?depth=2&cap=2"));
is(scalar @{ $g->{nodes} }, 2, 'cap=2: two nodes');
is(names($g->{nodes})->[0], 'A', '... the root and a nearest one');
ok(grep({ $_ eq names($g->{nodes})->[1] } qw(B C)), '... at depth 1');
is(scalar @{ $g->{edges} }, 2, '... and the edge between them, each way');

is(get("/api/graph/subgraph$N{F}", as('alice'))->{status}, 200,
   "alice: her private node's subgraph");
is_error(get("/api/graph/subgraph$N{F}", as('bob')), 404, 'Node not found',
         "bob: 404 for alice's private node");
is_error(get('/api/graph/subgraph/1915/may/01/1200/a/b/c/none-0001'), 404,
         'Node not found', 'an absent node: 404');
is(get("/api/v1/graph/subgraph$N{A}")->{status}, 200, 'under /api/v1/ too');

# ---------------------------------------------------------------------------
# traverse

sub tv { json_body(get("/api/graph/traverse$N{$_[0]}?$_[1]", @_[2 .. $#_])) }

$g = json_body(get("/api/graph/traverse$N{A}"));
is(join(' ', sort keys %$g), 'edges nodes root',
   'traverse: {root, nodes, edges}');
is_deeply({ map { $L{ $_->{path} } => $_->{depth} } @{ $g->{nodes} } },
          { A => 0, B => 1, C => 1, D => 2, F => 2, H => 2 },
          'both ways, depth 2 (defaults): each node with its depth');
my @d = map { $_->{depth} } @{ $g->{nodes} };
is_deeply(\@d, [ sort { $a <=> $b } @d ], '... nearest first');
is_deeply([ sort keys %{ $g->{nodes}[1] } ],
          [ sort qw(path name one_liner year month day country region city
                    depth) ],
          '... a summary and depth');
is_deeply(edges($g->{edges}), T(qw(AB AC BD CF CH)),
          '... the edges it crossed');

$g = json_body(get("/api/graph/traverse$N{A}?depth=1"));
is_deeply(set(names($g->{nodes})), [qw(A B C)], 'depth=1');
$g = json_body(get("/api/graph/traverse$N{A}?depth=4"));
is_deeply(set(names($g->{nodes})), [qw(A B C D E F G H)], 'depth=4');
$g = json_body(get("/api/graph/traverse$N{A}?limit=3"));
is(scalar @{ $g->{nodes} }, 3, 'limit=3: three nodes, the root among them');
$g = json_body(get("/api/graph/traverse$N{A}?min_weight=0.5"));
is_deeply(set(names($g->{nodes})), [qw(A B D)],
          'min_weight=0.5: not across A-C (0.3)');
is_deeply(edges($g->{edges}), T(qw(AB BD)), '... nor its edges');
$g = tv('A', 'depth=3&edge_types=causes,thematic');
is_deeply(set(names($g->{nodes})), [qw(A B D)], 'edge_types=causes,thematic');
$g = tv('A', 'depth=3&edge_types=causes%2Cthematic');
is_deeply(set(names($g->{nodes})), [qw(A B D)], '... the comma escaped too');

$g = tv('D', 'direction=out&edge_types=precedes');
is_deeply(names($g->{nodes}), [qw(D E)], 'direction=out: D precedes E');
is_deeply(edges($g->{edges}), ['D>E precedes'], '... the edge out');
$g = tv('D', 'direction=in&edge_types=follows');
is_deeply(names($g->{nodes}), [qw(D E)], 'direction=in: E follows D, into D');
is_deeply(edges($g->{edges}), ['E>D follows'], '... the edge in');
$g = tv('D', 'direction=out&edge_types=follows');
is_deeply(names($g->{nodes}), [qw(D)],
          'direction=out, follows: nothing goes out');
$g = tv('D', 'direction=both&edge_types=follows');
is_deeply(names($g->{nodes}), [qw(D E)], 'direction=both: the edge in counts');

$g = json_body(get("/api/graph/traverse$N{A}?depth=4", as('bob')));
is_deeply(set(names($g->{nodes})), [qw(A B C D E G H)],
          "bob: his H, not alice's F");
ok(!grep({ /F/ } @{ edges($g->{edges}) }), '... no edge to F');
is_error(get("/api/graph/traverse$N{H}", as('alice')), 404, 'Node not found',
         "alice: 404 for bob's node");
is(get("/api/v1/graph/traverse$N{A}")->{status}, 200, 'under /api/v1/ too');

# ---------------------------------------------------------------------------
# path

sub path { get("/api/graph/path?from=$N{$_[0]}&to=$N{$_[1]}" . ($_[2] // ''),
               @_[3 .. $#_]) }

$res = path('A', 'E');
is($res->{status}, 200, 'path A to E: 200');
$g = json_body($res);
is(join(' ', sort keys %$g), 'edges from hops nodes to',
   '{from, to, hops, nodes, edges}');
is($g->{from}, $N{A}, 'from');
is($g->{to}, $N{E}, 'to');
is($g->{hops}, 3, 'hops 3');
is_deeply(names($g->{nodes}), [qw(A B D E)], 'the chain, in order');
is_deeply(join(' ', sort keys %{ $g->{nodes}[0] }),
          join(' ', sort qw(path name one_liner year month day country
                            region city)),
          '... summaries');
my $ok = @{ $g->{edges} } == 3;
for my $i (0 .. 2) {
    my $e = $g->{edges}[$i] // {};
    my %ends = map { $_ => 1 } grep { defined } $e->{source}, $e->{target};
    $ok &&= $ends{ $g->{nodes}[$i]{path} }
            && $ends{ $g->{nodes}[$i + 1]{path} };
}
ok($ok, '... each edge joins the next two nodes');
is(json_body(path('E', 'A'))->{hops}, 3, 'either direction: E to A');
is_error(path('A', 'E', '&max_hops=2'), 404, 'No path found',
         'max_hops=2: none');
is(json_body(path('A', 'E', '&max_hops=3'))->{hops}, 3, 'max_hops=3: found');
is_error(path('A', 'E', '&edge_types=same_era'), 404, 'No path found',
         'edge_types=same_era: none');
is(json_body(path('A', 'E',
                 '&edge_types=causes,thematic,precedes,follows'))->{hops}, 3,
   'edge_types along it: found');
$g = json_body(path('A', 'A'));
is($g->{hops}, 0, 'a node to itself: 0 hops');
is_deeply(names($g->{nodes}), ['A'], '... itself');

is(json_body(path('A', 'G'))->{hops}, 3, 'A to G: the service, 3 hops');
is_deeply(names(json_body(path('A', 'G', '', as('alice')))->{nodes}),
          [qw(A C F G)], 'alice: through her F');
is_deeply(names(json_body(path('A', 'G', '', as('bob')))->{nodes}),
          [qw(A C H G)], 'bob: through his H');
is_error(path('A', 'G', '', as('carol')), 404, 'No path found',
         'carol: none, G is only behind private nodes');
is_error(path('A', 'H', '', as('alice')), 404, 'Node not found',
         "alice: bob's node is not found");
is_error(get("/api/graph/path?from=$N{A}&to=/1915/may/01/1200/a/b/c/none-0001"),
         404, 'Node not found', 'an absent end: 404');
(my $esc = $N{E}) =~ s{/}{%2F}g;
is(json_body(get("/api/graph/path?from=$N{A}&to=$esc"))->{hops}, 3,
   'a path with its slashes escaped');
is(get("/api/v1/graph/path?from=$N{A}&to=$N{E}")->{status}, 200,
   'under /api/v1/ too');

# ---------------------------------------------------------------------------
# bad parameters: 400 naming it; no key: 401

my $before = $redis->cmd('DBSIZE');
for my $t (
    [ "/api/graph/subgraph$N{A}?depth=0", 'depth' ],
    [ "/api/graph/subgraph$N{A}?depth=4", 'depth' ],
    [ "/api/graph/subgraph$N{A}?depth=x", 'depth' ],
    [ "/api/graph/subgraph$N{A}?depth=", 'depth' ],
    [ "/api/graph/subgraph$N{A}?cap=0", 'cap' ],
    [ "/api/graph/subgraph$N{A}?cap=501", 'cap' ],
    [ "/api/graph/subgraph$N{A}?cap=99999999999999999999999", 'cap' ],
    [ "/api/graph/traverse$N{A}?depth=5", 'depth' ],
    [ "/api/graph/traverse$N{A}?limit=0", 'limit' ],
    [ "/api/graph/traverse$N{A}?limit=501", 'limit' ],
    [ "/api/graph/traverse$N{A}?direction=up", 'direction' ],
    [ "/api/graph/traverse$N{A}?direction=", 'direction' ],
    [ "/api/graph/traverse$N{A}?edge_types=bogus", 'edge_types' ],
    [ "/api/graph/traverse$N{A}?edge_types=causes,,same_era", 'edge_types' ],
    [ "/api/graph/traverse$N{A}?edge_types=", 'edge_types' ],
    [ "/api/graph/traverse$N{A}?min_weight=2", 'min_weight' ],
    [ "/api/graph/traverse$N{A}?min_weight=-1", 'min_weight' ],
    [ "/api/graph/traverse$N{A}?min_weight=abc", 'min_weight' ],
    [ "/api/graph/traverse$N{A}?min_weight=nan", 'min_weight' ],
    [ "/api/graph/traverse$N{A}?min_weight=1.5", 'min_weight' ],
    [ "/api/graph/path?to=$N{A}", 'from' ],
    [ "/api/graph/path?from=$N{A}", 'to' ],
    [ "/api/graph/path?from=$N{A}&to=/1914/June/x", 'to' ],
    [ "/api/graph/path?from=$N{A}&to=$N{E}&max_hops=0", 'max_hops' ],
    [ "/api/graph/path?from=$N{A}&to=$N{E}&max_hops=11", 'max_hops' ],
    [ "/api/graph/path?from=$N{A}&to=$N{E}&edge_types=nope", 'edge_types' ],
) {
    is_error(get($t->[0]), 400, qr/^\Q$t->[1]\E: /, "400 for $t->[0]");
}
# a path that names no node, whatever its form, is 404 (400 is for the
# query's parameters)
for my $w (qw(subgraph traverse)) {
    is_error(get("/api/graph/$w/1914/june/x"), 404, 'Node not found',
             "$w: a path that is no moment's: 404");
    is_error(get("/api/graph/$w/1914/june/03/1200/bosnia/sarajevo/sarajevo/nobody"),
             404, 'Node not found', "$w: a moment's path that names no node: 404");
}

# the original's unpadded day names the canonical node
(my $A1 = $N{A}) =~ s{/june/03/}{/june/3/};
for my $w (qw(subgraph traverse)) {
    my $g = json_body(get("/api/graph/$w$A1"));
    is($g->{root}, $N{A}, "$w of the unpadded day: the canonical root");
    is_deeply($g, json_body(get("/api/graph/$w$N{A}")),
              "$w of the unpadded day: the same answer");
}
my $pth = json_body(get("/api/graph/path?from=$A1&to=$N{E}"));
is($pth->{from}, $N{A}, 'path from the unpadded day: from is canonical');
is($pth->{hops}, 3, '... and the chain is found');
is(get("/api/graph/traverse$N{A}?min_weight=1")->{status}, 200,
   'min_weight=1: 200');
is(get("/api/graph/traverse$N{A}?min_weight=0")->{status}, 200,
   'min_weight=0: 200');
is($redis->cmd('DBSIZE'), $before, 'no key was made by a bad request');

for my $u ("/api/graph/subgraph$N{A}", "/api/graph/traverse$N{A}",
           "/api/graph/path?from=$N{A}&to=$N{E}") {
    is_error(http(GET => $ng->url($u)), 401, undef, "no key: 401 for $u");
    is_error(get($u, headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
             "a wrong key: 401 for $u");
    $res = get($u, method => 'POST');
    is($res->{status}, 405, "POST: 405 for $u");
    is($res->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
    $res = get($u, method => 'HEAD');
    is($res->{status}, 200, "HEAD: 200 for $u");
    is($res->{content} // '', '', '... without a body');
}

# ---------------------------------------------------------------------------
# a hub of 5000 edges (each written both ways): a walk reads at most 200 of
# its fields, and 2000 in all

my $hub = '/1969/july/20/2017/united-states/florida/cape-canaveral/hub-0001';
$redis->cmd('EVAL', <<'LUA', 0, $P, $hub, 5000);
local p, hub, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('HSET', p .. 'node:' .. hub, 'name', 'hub', 'visibility', 'public',
           'created_by', 'system', 'year', '1969', 'path', hub)
for i = 1, n do
    local other = '/1970/may/01/1200/a/b/c/spoke-' .. i
    redis.call('HSET', p .. 'node:' .. other, 'name', 'spoke ' .. i,
               'visibility', 'public', 'created_by', 'system')
    redis.call('HSET', p .. 'edges:' .. hub, 'same_era|' .. other,
               cjson.encode({ source = hub, target = other, type = 'same_era',
                              weight = 0.3, created_by = 'auto' }))
    redis.call('HSET', p .. 'edges:' .. other, 'same_era|' .. hub,
               cjson.encode({ source = other, target = hub, type = 'same_era',
                              weight = 0.3, created_by = 'auto' }))
end
LUA

sub calls {
    my $s = $redis->cmd('INFO', 'commandstats');
    return { map { $_ => ($s =~ /cmdstat_\Q$_\E:calls=(\d+)/ ? $1 : 0) }
             qw(hscan hget hmget) };
}

$redis->cmd('CONFIG', 'RESETSTAT');
$res = get("/api/graph/traverse$hub?depth=1&limit=500");
is($res->{status}, 200, 'hub traverse: 200');
$g = json_body($res) // {};
is(scalar @{ $g->{nodes} // [] }, 201,
   '... the hub and the first 200 of its spokes');
my $c = calls();
ok($c->{hscan} <= 4,
   "... the hub's hash read a page at a time, 200 fields ($c->{hscan} HSCAN)");
ok($c->{hget} <= 200 && $c->{hmget} <= 201,
   '... one node and one back edge per field read '
   . "($c->{hmget} HMGET, $c->{hget} HGET)");

$redis->cmd('CONFIG', 'RESETSTAT');
$res = get("/api/graph/subgraph$hub?depth=3&cap=500");
is($res->{status}, 200, 'hub subgraph depth 3, cap 500: 200');
$g = json_body($res) // {};
is(scalar @{ $g->{nodes} // [] }, 201, '... 201 nodes: 200 fields of the hub');
$c = calls();
# each spoke's two hashes: its edges and the named edges into it
ok($c->{hscan} <= 4 + 2 * 200,
   "... each node's hashes paged once ($c->{hscan} HSCAN)");

$redis->cmd('HSET', "${P}node:/1915/may/01/1200/a/b/c/lonely-0001",
            'name', 'lonely', 'visibility', 'public', 'created_by', 'system');
$redis->cmd('CONFIG', 'RESETSTAT');
$res = get("/api/graph/path?from=$hub"
           . '&to=/1915/may/01/1200/a/b/c/lonely-0001&max_hops=10');
is_error($res, 404, 'No path found', 'hub to an unconnected node: 404');
$c = calls();
ok($c->{hscan} <= 1000 + 4 && $c->{hget} <= 2000,
   "... within the bounds ($c->{hscan} HSCAN, $c->{hget} HGET)");

# every spoke joined to the next 30: a walk past the hub would read 31
# fields at each of 500 nodes (15500) but stops at 2000 in all
$redis->cmd('EVAL', <<'LUA', 0, $P, 5000, 30);
local p, n, k = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function s(i) return '/1970/may/01/1200/a/b/c/spoke-' .. i end
for i = 1, n do
    for j = i + 1, math.min(i + k, n) do
        redis.call('HSET', p .. 'edges:' .. s(i), 'thematic|' .. s(j),
                   cjson.encode({ source = s(i), target = s(j),
                                  type = 'thematic', weight = 0.5 }))
    end
end
LUA
$res = get("/api/graph/subgraph$hub?depth=3&cap=500");
is($res->{status}, 200, 'a dense graph past the hub: subgraph 200');
$g = json_body($res) // {};
is(scalar @{ $g->{nodes} // [] }, 500, '... cap=500 nodes');
$redis->cmd('CONFIG', 'RESETSTAT');
$res = get("/api/graph/traverse$hub?depth=4&limit=500");
is($res->{status}, 200, '... traverse 200');
$g = json_body($res) // {};
is(scalar @{ $g->{nodes} // [] }, 500, '... limit=500 nodes');
$c = calls();
ok($c->{hget} <= 2000,
   "... at most 2000 edge fields read in all ($c->{hget} HGET)");
ok($c->{hget} >= 1500, '... and it did read that far');

done();
