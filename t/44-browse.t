# GET /api/browse and /api/browse/{prefix} (issue 15): {prefix, items:
# [{segment, count, label}]}, the segments one level below the prefix of
# the canonical path /year/month/DD/HHMM/country/region/city/slug, sorted,
# each counting the nodes under it the requester may see (a key alone:
# every node; with X-User-Id: public, "system"'s and their own). The counts
# are complete.lua's and publish.lua's; each answer is checked against the
# nodes Redis holds. A prefix that no canonical path starts with is a 400
# naming it; one with nothing under it is 200 with no items. Also
# src/lua/ops/reindex.lua rebuilding the indexes of a graph written before.
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
        location = /api/browse     { clockchain_browse; }
        location /api/browse/      { clockchain_browse; }
        location = /api/v1/browse  { clockchain_browse; }
        location /api/v1/browse/   { clockchain_browse; }
        location = /api/search     { clockchain_search; }
        location /api/moments/     { clockchain_moments; }
        location = /api/moments    { clockchain_moments_list; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
        location = /metrics        { clockchain_metrics; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';

sub hdrs {
    my ($who) = @_;
    return {} unless defined $who;
    return { 'X-Service-Key' => $SK } if $who eq 'service';
    return { 'X-Service-Key' => $SK, 'X-User-Id' => $who };
}

sub browse {
    my ($prefix, $who, $base) = @_;
    return http(GET => $ng->url(($base // '/api/browse') . $prefix),
                headers => hdrs($who // 'service'));
}

sub items { (json_body(browse(@_)) // {})->{items} // [] }
sub segs { [ map { $_->{segment} } @{ items(@_) } ] }

sub make {
    my ($query, $vis, $user) = @_;
    my $j = created_ok(generate($ng, { query => $query, visibility => $vis },
                                headers => $user ? { 'X-User-Id' => $user }
                                                 : {}),
                       "create '$query'") or return;
    my $done = wait_job($ng, $j->{job_id}, 15) // {};
    is($done->{status}, 'completed', "'$query' completed");
    return $done->{path};
}

# the original's seed years (tests/conftest.py: -44, 1945, 1969 july and
# november, 2016) as stand-in queries, whose month comes from a hash; and
# private nodes of "system", alice and bob
my %path;
$path{caesar} = make('Assassination of Julius Caesar 44 BC', 'public');
$path{july} = make('Apollo 11 One Small Step 1969', 'public');
$path{nov} = make('Apollo 12 Launch Struck by Lightning 1969', 'public');
$path{trinity} = make('Trinity Test 1945', 'public');
$path{brexit} = make('Brexit Referendum 2016', 'public');
$path{moon2} = make('Apollo 11 Moonwalk 1969', 'private');
$path{alice} = make('Apollo 11 Splashdown 1969', 'private', 'alice');
$path{bob} = make('Y2K Non-Event 2000', 'private', 'bob');

# what browse must answer, from the nodes Redis holds
sub expected {
    my ($prefix, $who) = @_;
    $prefix = '' if $prefix eq '/';
    my %count;
    for my $path (@{ $redis->cmd('ZRANGE', "${P}idx:time", 0, -1) }) {
        my ($vis, $by) = @{ $redis->cmd('HMGET', "${P}node:$path",
                                        'visibility', 'created_by') };
        next unless $who eq 'service' || $vis eq 'public' || $by eq 'system'
                    || $by eq $who;
        next unless index($path, "$prefix/") == 0;
        my ($seg) = substr($path, length($prefix) + 1) =~ m{^([^/]+)};
        $count{$seg}++ if defined $seg;
    }
    return [ map { { segment => $_, count => $count{$_}, label => $_ } }
             sort keys %count ];
}

# every level of each node's path, for each caller
my @prefixes = ('/');
for my $p (values %path) {
    my @s = split m{/}, substr($p, 1);
    push @prefixes, map { '/' . join('/', @s[0 .. $_]) } 0 .. 7;
}
my %seen;
@prefixes = grep { !$seen{$_}++ } @prefixes;
my $bad = 0;
for my $who ('service', 'alice', 'bob', 'carol') {
    for my $p (@prefixes) {
        my $got = items($p eq '/' ? '' : $p, $who);
        $bad++, diag("$who $p: " . explain($got, expected($p, $who)))
            unless Test::More::_deep_check($got, expected($p, $who));
    }
}
is($bad, 0, 'every level of every path (' . scalar(@prefixes) . '), for the '
            . 'service, alice, bob and carol: the segments and counts the '
            . 'nodes imply');

# the shape
my $res = browse('');
is($res->{status}, 200, 'browse: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
my $d = json_body($res);
is_deeply([ sort keys %$d ], [qw(items prefix)], '{prefix, items}');
is($d->{prefix}, '/', 'the root: prefix "/"');
is(json_body(browse('/'))->{prefix}, '/', '/api/browse/: the root too');
is(json_body(browse('/1969'))->{prefix}, '/1969', 'prefix "/1969"');
is(json_body(browse('/1969/'))->{prefix}, '/1969',
   'a trailing slash: the same prefix');
is_deeply(items('/1969/'), items('/1969'), 'and the same items');
is_deeply(items('', 'service', '/api/v1/browse'), items(''), '/api/v1/browse');
my @root = @{ segs('') };
is_deeply(\@root, [ sort @root ], 'items sorted by segment');
my ($y1969) = grep { $_->{segment} eq '1969' } @{ items('') };
is($y1969->{count}, 4, '1969 counts its four nodes for the service');
($y1969) = grep { $_->{segment} eq '1969' } @{ items('', 'carol') };
is($y1969->{count}, 3, 'and three for carol (not alice\'s)');
($y1969) = grep { $_->{segment} eq '1969' } @{ items('', 'alice') };
is($y1969->{count}, 4, 'four for alice (hers)');
is_deeply(items($path{caesar}), [], 'a whole path: nothing under a moment');
my $city = $path{july} =~ s{/[^/]+$}{}r;
is_deeply(segs($city), [ $path{july} =~ m{([^/]+)$} ],
          'a city: its moments by slug');

# the original's tests of browse, as HTTP calls
# tests/test_api_moments.py test_browse_root, tests/test_graph.py
# test_browse_root
my %root = map { $_ => 1 } @root;
ok($root{'-44'} && $root{1945} && $root{1969} && $root{2016},
   'test_browse_root: -44, 1945, 1969, 2016');
# tests/test_api_moments.py and tests/test_graph.py test_browse_year
my %y = map { $_ => 1 } @{ segs('/1969') };
ok($y{july} && $y{november}, 'test_browse_year: 1969 has july and november');
# tests/test_api_moments.py test_browse_no_auth (403/422 there, 401 here)
is_error(http(GET => $ng->url('/api/v1/browse')), 401, undef,
         'test_browse_no_auth: 401');
# tests/test_edges.py test_browse_only_public: another's private node is
# not counted (the original shows public nodes only; bob sees his own)
is_deeply(items('/2000', 'carol'), [], 'test_browse_only_public');
is(scalar @{ items('/2000', 'bob') }, 1, 'bob sees his own 2000 node');

# well formed, nothing under it: 200 and no items (as the original)
for my $p ('/1234', '/1969/march', '/1969/july/01/0000/x/y/z') {
    $res = browse($p);
    is($res->{status}, 200, "$p: 200");
    is_deeply(json_body($res), { prefix => $p, items => [] }, "$p: no items");
}

# a prefix no canonical path starts with: 400 naming it ("//" is "/" by
# then: nginx merges slashes before the module sees the URI)
for my $p ('/abc', '/1969/jully', '/1969/July', '/1969/july/32',
           '/1969/july/16/2400', '/1969/july/16/1260',
           '/01969', '/-0', '/1969/july/16/0000/Fr',
           '/1969/july/16/0000/a.b', '/1969/july/16/0000/' . ('a' x 101),
           '/1969/july/16/0000/x/y/z/s/t', $path{caesar} . '/more',
           '/1969/july/16/0000/x/y/z/' . ('a' x 101) . '/') {
    is_error(browse($p), 400, qr/^prefix: must be the start of a moment path/,
             'prefix ' . substr($p, 0, 40) . ': 400');
}
is_error(http(GET => $ng->url('/api/browse')), 401, undef, 'no key: 401');
is_error(http(GET => $ng->url('/api/browse/1969'),
              headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
         'a wrong key: 401');
is_error(http(POST => $ng->url('/api/browse'), headers => hdrs('service')),
         405, undef, 'POST: 405');

# ---------------------------------------------------------------------------
# publish and unpublish move the counts at once

sub vis {
    my ($path, $v, $who) = @_;
    return http(PATCH => $ng->url("/api/moments$path/visibility"),
                headers => hdrs($who), json => { visibility => $v });
}

my $y2000 = sub { (grep { $_->{segment} eq '2000' } @{ items('', $_[0]) })[0] };
ok(!$y2000->('carol'), 'carol: no 2000 before bob publishes');
is(vis($path{bob}, 'public', 'bob')->{status}, 200, 'bob publishes');
is(($y2000->('carol') // {})->{count}, 1, 'carol: 2000 counts it now');
is(($y2000->('bob') // {})->{count}, 1, 'bob: once, not twice');
is(($y2000->('service') // {})->{count}, 1, 'the service: once');
is(vis($path{bob}, 'private', 'bob')->{status}, 200, 'bob hides it again');
ok(!$y2000->('carol'), 'carol: 2000 gone again');
is(($y2000->('bob') // {})->{count}, 1, 'bob: still his');
is(vis($path{moon2}, 'public', 'service')->{status}, 200,
   'the service publishes its private node');
($y1969) = grep { $_->{segment} eq '1969' } @{ items('', 'carol') };
is($y1969->{count}, 3, 'carol: 1969 the same (she saw the system node)');
is(vis($path{moon2}, 'public', 'service')->{status}, 200,
   'publishing a public node again');
($y1969) = grep { $_->{segment} eq '1969' } @{ items('') };
is($y1969->{count}, 4, 'counts nothing twice');

# ---------------------------------------------------------------------------
# the zone keeps each answer with the version of the counts it was read at
# (idx:version, changed by complete.lua, publish.lua and reindex.lua): the
# same answer again costs Redis a GET of the version, not the counts, on
# either worker; a change of the counts is seen at once

sub calls {
    my ($cmd) = @_;
    my ($n) = $redis->cmd('INFO', 'commandstats')
              =~ /^cmdstat_\Q$cmd\E:calls=(\d+)/m;
    return $n // 0;
}

my $root = items('');
my ($hgetall, $get) = (calls('hgetall'), calls('get'));
is_deeply(items(''), $root, 'the root again: the same answer') for 1 .. 4;
is(calls('hgetall'), $hgetall, 'the root again: its counts not read');
is(calls('get'), $get + 4, 'the root again: only their version, each time');
my $carol = items('', 'carol');
$hgetall = calls('hgetall');   # browse.lua's two (the runner's scripts: none)
is_deeply(items('', 'carol'), $carol, "carol's root again: the same") for 1, 2;
is(calls('hgetall'), $hgetall, "carol's root again: her counts not read");
isnt(scalar @$carol, scalar @$root, "carol's answer is hers, not the service's");
# search, the list and neighbours go through the zone the same way
sub metric { json_body(http(GET => $ng->url('/metrics')))->{$_[0]} }
sub get_json {
    my ($uri, $who) = @_;
    return json_body(http(GET => $ng->url($uri), headers => hdrs($who)));
}
my $moon = $path{july};
my @reads = ([ '/api/search?q=cache+check', 'service' ],
             [ '/api/search?q=cache', 'carol' ],
             [ '/api/moments?limit=100', undef ],
             [ '/api/moments?limit=100', 'carol' ],
             [ "/api/graph/neighbors$moon", 'service' ]);
sub read_name { my ($uri, $who) = @{ $_[0] }; "$uri " . ($who // 'public') }
my %first = map { (read_name($_) => get_json(@$_)) } @reads;
my $hits = metric('graph_cache_hits');
for my $read (@reads) {
    my $name = read_name($read);
    is_deeply(get_json(@$read), $first{$name}, "again: $name, the same");
}
is(metric('graph_cache_hits'), $hits + @reads, 'again: each from the zone');
is_deeply($first{'/api/search?q=cache+check service'}, [],
          'no cache check node yet');

$path{cached} = make('Cache Check Event 1971', 'public');
ok((grep { $_ eq '1971' } @{ segs('') }), 'a new node: counted at once');
ok((grep { $_ eq '1971' } @{ segs('', 'carol') }),
   "a new node: in carol's answer at once");
is((get_json('/api/search?q=cache+check', 'service') // [])->[0]{path},
   $path{cached}, 'a new node: found at once');
is((get_json('/api/search?q=cache', 'carol') // [])->[0]{path},
   $path{cached}, "a new node: found at once by carol");
is(get_json('/api/moments?limit=100')->{total},
   $first{'/api/moments?limit=100 public'}{total} + 1,
   'a new public node: in the public list at once');
is(get_json('/api/moments?limit=100', 'carol')->{total},
   $first{'/api/moments?limit=100 carol'}{total} + 1,
   "a new public node: in carol's list at once");
ok((grep { $_->{path} eq $path{cached} }
         @{ get_json("/api/graph/neighbors$moon", 'service') // [] }),
   'a new node: a neighbour at once');
$hgetall = calls('hgetall');
$redis->cmd('SET', "${P}idx:version", 'another');
items('');
is(calls('hgetall'), $hgetall + 1, 'another version: the counts read again');

# ---------------------------------------------------------------------------
# src/lua/ops/reindex.lua: a graph written before the indexes

my %before;
for my $who ('service', 'alice', 'carol') {
    $before{$who} = [ map { items($_, $who) } @prefixes ];
}
my $search_before = json_body(http(GET => $ng->url('/api/search?q=apollo'),
                                   headers => hdrs('alice')));
ok(@$search_before >= 3, 'search finds the apollos');

my @idx = grep { /:(idx:b[asu]:|idx:version|idx:word:|idx:vocab|idx:pub:time|words:)/ }
          @{ $redis->cmd('KEYS', "${P}*") };
ok(@idx > 50, 'the indexes: ' . scalar(@idx) . ' keys');
$redis->cmd('DEL', @idx);
is_deeply(items(''), [], 'indexes gone: browse is empty');

my $out = $redis->cli('--eval', 'src/lua/ops/reindex.lua', "${P}stats", ',',
                      $P);
like($out, qr/^9\n\d+$/, 'reindex answers nodes and edges');
my $same = 1;
for my $who ('service', 'alice', 'carol') {
    $same &&= Test::More::_deep_check([ map { items($_, $who) } @prefixes ],
                                      $before{$who});
}
ok($same, 'reindex: every browse answer as before');
is_deeply(json_body(http(GET => $ng->url('/api/search?q=apollo'),
                         headers => hdrs('alice'))), $search_before,
          'reindex: search as before');
$redis->cli('--eval', 'src/lua/ops/reindex.lua', "${P}stats", ',', $P);
is_deeply([ map { items($_, 'alice') } @prefixes ], $before{alice},
          'reindex twice: the same counts, not twice as many');

done_testing();
