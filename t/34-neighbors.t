# GET /api/graph/neighbors/{path}: a node's edges out and in, each as
# {path, name, edge_type, weight, theme, description, created_by}, as the
# requester may see them (issue 15, "Who sees what"); 404 Node not found
# for a path that names no node whatever its form (the original's unpadded
# day names the canonical node), 401 without a key, at most 1000.
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
        location /api/graph/neighbors/    { clockchain_graph_neighbors; }
        location /api/v1/graph/neighbors/ { clockchain_graph_neighbors; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';

sub neighbors {
    my ($path, %o) = @_;
    return http(($o{method} // 'GET')
                => $ng->url(($o{prefix} // '/api/graph/neighbors') . $path),
                headers => { 'X-Service-Key' => 'test-key-1',
                             %{ $o{headers} // {} } });
}

sub make { completed_moment($ng, @_) }

# a list of neighbours as sorted "path type" strings, to compare as sets
sub pairs { [ sort map { "$_->{path} $_->{edge_type}" } @{ $_[0] // [] } ] }

my @FIELDS = qw(path name edge_type weight theme description created_by);

# ---------------------------------------------------------------------------
# a graph from Flash jobs: a system node and private nodes of alice and bob
# within ten years of it (the stand-in takes the year from the query), so
# that same_era, precedes and follows edges join them

my $sys = make('edge probe in 1969');
my @alice = map { make("edge probe in $_", headers => { 'X-User-Id' => 'alice' }) }
            1965, 1967, 1971, 1973;
my @bob = map { make("edge probe in $_", headers => { 'X-User-Id' => 'bob' }) }
          1966, 1970, 1972;

my $res = neighbors($sys);
is($res->{status}, 200, 'neighbors of a system node: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
my $all = json_body($res);
is(ref $all, 'ARRAY', 'the answer is a list');
ok(@{ $all // [] } > 0, 'it has neighbours (' . scalar(@{ $all // [] }) . ')');

my $bad = 0;
for my $n (@{ $all // [] }) {
    $bad++ unless join(' ', sort keys %$n) eq join(' ', sort @FIELDS)
        && !grep { !defined $n->{$_} } @FIELDS;
    $bad++ unless $n->{weight} =~ /^[0-9.]+$/ && !ref $n->{weight};
}
is($bad, 0, 'every neighbour has exactly path, name, edge_type, weight, '
            . 'theme, description, created_by, none null');
# as the original prints them (0.3, not 0.29999999999999999: jansson's
# default is %.17g)
my @weights = $res->{content} =~ /"weight":([0-9.eE+-]+)/g;
ok(@weights && !grep({ length > 6 } @weights),
   'weights as written (' . join(' ', sort { $a <=> $b } keys %{{ map { $_ => 1 } @weights }}) . ')');

# what Redis holds: the edges out of $sys, and the edges into it (each
# neighbour holds one back, precedes <-> follows)
my %rev = (precedes => 'follows', follows => 'precedes');
my $out = $redis->hash("${P}edges:$sys");
my (@want_out, @want_in);
for my $f (keys %$out) {
    my ($type, $other) = split /\|/, $f, 2;
    push @want_out, "$other $type";
    my $back = $redis->cmd('HGET', "${P}edges:$other",
                           ($rev{$type} // $type) . "|$sys");
    push @want_in, "$other " . ($rev{$type} // $type) if defined $back;
}
ok(@want_in > 0, 'Redis holds edges into the node too');
is_deeply(pairs($all), [ sort @want_out, @want_in ],
          'the service key alone: every edge out and every edge in, '
          . 'private neighbours too');
my %types = map { $_->{edge_type} => 1 } @{ $all // [] };
ok($types{precedes} && $types{follows},
   'both directions: a precedes edge out, its follows edge in');

my %of_alice = map { $_ => 1 } grep { defined } @alice;
my %of_bob = map { $_ => 1 } grep { defined } @bob;
my $as_alice = json_body(neighbors($sys, headers => { 'X-User-Id' => 'alice' }));
my $as_bob = json_body(neighbors($sys, headers => { 'X-User-Id' => 'bob' }));
my $as_carol = json_body(neighbors($sys, headers => { 'X-User-Id' => 'carol' }));
ok((grep { $of_alice{ $_->{path} } } @{ $all // [] })
   && (grep { $of_bob{ $_->{path} } } @{ $all // [] }),
   'the system node has private neighbours of alice and of bob');
ok((grep { $of_alice{ $_->{path} } } @$as_alice), 'alice sees hers');
is(scalar(grep { $of_bob{ $_->{path} } } @$as_alice), 0,
   "alice does not see bob's");
ok((grep { $of_bob{ $_->{path} } } @$as_bob), 'bob sees his');
is(scalar(grep { $of_alice{ $_->{path} } } @$as_bob), 0,
   "bob does not see alice's");
is(scalar(grep { $of_alice{ $_->{path} } || $of_bob{ $_->{path} } } @$as_carol),
   0, 'carol sees neither');
is_deeply(pairs($as_alice),
          [ grep { !$of_bob{ (split / /)[0] } } @{ pairs($all) } ],
          "alice sees everything the service sees but bob's nodes");

# a private node of alice: hers to see, 404 to bob
my $pa = $alice[0];
is(neighbors($pa, headers => { 'X-User-Id' => 'alice' })->{status}, 200,
   "alice reads her private node's neighbours");
is_error(neighbors($pa, headers => { 'X-User-Id' => 'bob' }), 404,
         'Node not found', "bob: 404 for alice's private node");
is(neighbors($pa)->{status}, 200, 'the service key alone sees it');

# ---------------------------------------------------------------------------
# exact data: one node and five neighbours, each with an edge both ways

my $c = '/1914/june/28/1045/bosnia/sarajevo/sarajevo/center-0001';
my %n = (
    pub  => ['/1914/june/28/1100/bosnia/sarajevo/sarajevo/public-0001', 'public', 'carol'],
    sys  => ['/1914/june/29/1100/bosnia/sarajevo/sarajevo/system-0001', 'private', 'system'],
    ali  => ['/1914/june/30/1100/bosnia/sarajevo/sarajevo/alice-0001', 'private', 'alice'],
    bob  => ['/1914/july/01/1100/bosnia/sarajevo/sarajevo/bob-0001', 'private', 'bob'],
    next => ['/1914/july/28/1100/austria/vienna/vienna/next-0001', 'public', 'system'],
);
$redis->cmd('HSET', "${P}node:$c", 'name', 'Center', 'visibility', 'public',
            'created_by', 'system', 'path', $c);
for my $k (sort keys %n) {
    my ($path, $vis, $by) = @{ $n{$k} };
    $redis->cmd('HSET', "${P}node:$path", 'name', "Name $k",
                'visibility', $vis, 'created_by', $by, 'path', $path);
}
sub edge {
    my ($from, $to, $type, %f) = @_;
    my %e = (source => $from, target => $to, type => $type, %f);
    my $j = '{' . join(',', map { my $v = $e{$_};
                                  "\"$_\":" . ($v =~ /^[0-9.]+$/ ? $v : "\"$v\"") }
                            sort keys %e) . '}';
    $redis->cmd('HSET', "${P}edges:$from", "$type|$to", $j);
}
edge($c, $n{pub}[0], 'causes', weight => 0.9, theme => 'assassination',
     description => 'it led to it', created_by => 'editor');
edge($n{pub}[0], $c, 'causes', weight => 0.7, theme => 'back',
     description => 'the way back', created_by => 'editor2');
edge($c, $n{sys}[0], 'same_era', weight => 0.3);   # no theme, description,
edge($n{sys}[0], $c, 'same_era', weight => 0.3);   # created_by: defaults
edge($c, $n{ali}[0], 'contemporaneous', weight => 0.8, created_by => 'auto');
edge($n{ali}[0], $c, 'contemporaneous', weight => 0.8, created_by => 'auto');
edge($c, $n{bob}[0], 'contemporaneous', weight => 0.8, created_by => 'auto');
edge($n{bob}[0], $c, 'contemporaneous', weight => 0.8, created_by => 'auto');
edge($c, $n{next}[0], 'precedes', weight => 0.4, created_by => 'auto');
edge($n{next}[0], $c, 'follows', weight => 0.4, created_by => 'auto');

sub row {
    my ($k, $type, $w, $theme, $desc, $by) = @_;
    return { path => $n{$k}[0], name => "Name $k", edge_type => $type,
             weight => $w, theme => $theme, description => $desc,
             created_by => $by };
}
my @rows = (
    row(pub => 'causes', 0.9, 'assassination', 'it led to it', 'editor'),
    row(pub => 'causes', 0.7, 'back', 'the way back', 'editor2'),
    row(sys => 'same_era', 0.3, '', '', 'auto'),
    row(sys => 'same_era', 0.3, '', '', 'auto'),
    row(ali => 'contemporaneous', 0.8, '', '', 'auto'),
    row(ali => 'contemporaneous', 0.8, '', '', 'auto'),
    row(bob => 'contemporaneous', 0.8, '', '', 'auto'),
    row(bob => 'contemporaneous', 0.8, '', '', 'auto'),
    row(next => 'precedes', 0.4, '', '', 'auto'),
    row(next => 'follows', 0.4, '', '', 'auto'),
);
sub canon {
    [ sort { $a->{path} cmp $b->{path} || $a->{edge_type} cmp $b->{edge_type}
             || $a->{weight} <=> $b->{weight} }
      map { +{ %$_, weight => 0 + sprintf('%.6f', $_->{weight}) } } @{ $_[0] // [] } ]
}
sub rows_but { my %no = map { $_ => 1 } @_;
               [ grep { my $r = $_; !grep { $r->{path} eq $n{$_}[0] } keys %no } @rows ] }

$res = neighbors($c);
is($res->{status}, 200, 'exact graph: 200');
is_deeply(canon(json_body($res)), canon(\@rows),
          'the service key alone: all five neighbours, out and in, every '
          . 'field; description "" and created_by "auto" when absent')
    or diag($res->{content});
is_deeply(canon(json_body(neighbors($c, headers => { 'X-User-Id' => 'alice' }))),
          canon(rows_but('bob')),
          "alice: public, system and her own private neighbour, not bob's");
is_deeply(canon(json_body(neighbors($c, headers => { 'X-User-Id' => 'bob' }))),
          canon(rows_but('ali')),
          "bob: public, system and his own, not alice's");
is_deeply(canon(json_body(neighbors($c, headers => { 'X-User-Id' => 'carol' }))),
          canon(rows_but('ali', 'bob')),
          'carol: public and system neighbours only');
is_deeply(canon(json_body(neighbors($c, prefix => '/api/v1/graph/neighbors'))),
          canon(\@rows), 'the same under /api/v1/graph/neighbors/');

# a path that names no node: 404; a node without edges: an empty list
$res = neighbors('/1915/may/01/1200/a/b/c/lonely-0001');
is_error($res, 404, 'Node not found', 'a path that names no node: 404');
$redis->cmd('HSET', "${P}node:/1915/may/01/1200/a/b/c/lonely-0001",
            'name', 'lonely', 'visibility', 'public', 'created_by', 'system');
$res = neighbors('/1915/may/01/1200/a/b/c/lonely-0001');
is($res->{status}, 200, 'a node without edges: 200');
is($res->{content}, '[]', '... an empty list');

# the node's own visibility (changed by hand: the graph's version too, as
# publish.lua changes it, so that no nginx answers from what it kept)
$redis->cmd('HSET', "${P}node:$c", 'visibility', 'private',
            'created_by', 'alice');
$redis->cmd('SET', "${P}idx:version", 'changed by hand');
is(neighbors($c, headers => { 'X-User-Id' => 'alice' })->{status}, 200,
   'a private node of alice: alice 200');
is_error(neighbors($c, headers => { 'X-User-Id' => 'bob' }), 404,
         'Node not found', '... bob 404');
is(neighbors($c)->{status}, 200, '... the service key alone 200');

# ---------------------------------------------------------------------------
# keys, methods, paths

is_error(http(GET => $ng->url("/api/graph/neighbors$sys")), 401, undef,
         'no key: 401');
is_error(neighbors($sys, headers => { 'X-Service-Key' => 'wrong' }), 401,
         undef, 'a wrong key: 401');
$res = neighbors($sys, method => 'POST');
is($res->{status}, 405, 'POST: 405');
is($res->{headers}{allow}, 'GET, HEAD', 'Allow: GET, HEAD');
is_error(neighbors($sys, headers => { 'X-User-Id' => 'a b' }), 400,
         qr/X-User-Id/, 'a bad X-User-Id: 400');
$res = neighbors($sys, method => 'HEAD');
is($res->{status}, 200, 'HEAD: 200');
is($res->{content} // '', '', '... without a body');
is_error(neighbors('/1999/january/01/1200/nowhere/nowhere/nowhere/nothing-0000'),
         404, 'Node not found', 'absent path: 404');

my $before = $redis->cmd('DBSIZE');
for my $bad (
    '/1776/july/04/1200/a/b/c',                 # too short
    '/1776/july/04/1200/a/b/c/d/e',             # too long
    '/1776/July/04/1200/a/b/c/d',               # uppercase
    '/1776/july/04/1200/a/b/c/*',
    '/1776/july/04/1200/a/b/c/%2e%2e',
    '/1776/july/04/1200/a/b/c/d%00',
    '',
) {
    $res = neighbors($bad);
    ok($res->{status} == 404 || $res->{status} == 400,
       "not canonical '$bad': 404 (or nginx's own 400)")
        or diag("$res->{status} $res->{content}");
}
is_error(neighbors('/1776/july/04/1200/a/b/c/*'), 404, 'Node not found',
         'a * in the path: the module\'s 404');

is($redis->cmd('DBSIZE'), $before, 'no key was made from those paths');

# the original's unpadded day names the canonical node
my $july4 = make('edge probe of an early day 1969 [flash:date=7-4]');
like($july4, qr{^/1969/july/04/}, 'a moment of July 4');
(my $unpadded = $july4) =~ s{/july/04/}{/july/4/};
$res = neighbors($unpadded);
is($res->{status}, 200, 'neighbors of the unpadded day: 200');
is_deeply(pairs(json_body($res)), pairs(json_body(neighbors($july4))),
          '... the canonical node\'s neighbours');

# ---------------------------------------------------------------------------
# a popular node: 5000 edges; the answer stops at 1000 and reads no more of
# the hash than that takes

{
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
end
LUA
    $redis->cmd('CONFIG', 'RESETSTAT');
    my $r = neighbors($hub);
    is($r->{status}, 200, 'a node with 5000 edges: 200');
    my $e = json_body($r) // [];
    is(scalar @$e, 1000, '... listing 1000 neighbours');
    my ($scans) = $redis->cmd('INFO', 'commandstats') =~ /cmdstat_hscan:calls=(\d+)/;
    ok(defined $scans && $scans >= 10 && $scans <= 15,
       "... read a page at a time, about 1000 of 5000 fields (@{[ $scans // 'no' ]} HSCAN)");
}

done();
