# The original service's own tests (timepointai/timepoint-clockchain,
# tests/test_public_api.py, test_api_moments.py, test_graph.py,
# test_edges.py), turned into HTTP calls under /api/v1/ against the
# module.  Their graph (the original's five seeds) comes here from Flash
# jobs through the stand-in: the same kinds of moments (Caesar at -44, two
# Apollo missions in 1969, Trinity in 1945, 2016), public, plus the
# private ones the visibility tests add.  Each test names the original it
# ports; where it asserts a number that only the seed file gives (5 nodes,
# 3 edges), it asserts the number the graph here really holds, counted
# from Redis.
#
# Where each of the original's 43 tests of these four files lives:
#   here: every test below, by its original name (the original's 403 or
#     422 for a missing or wrong key is 401 here, as the status page says).
#   t/43-search.t, t/44-browse.t: browse_root, browse_year, search_caesar,
#     search_trinity, search_apollo, browse_only_public, search_only_public.
#   t/45-moment-shape.t: get_moment_caesar, get_moment_not_found,
#     get_moment_no_auth, get_moment_with_auth, get_moment_edges_included,
#     auto_link_contemporaneous, auto_link_same_location,
#     auto_link_thematic, bidirectional_edges.
#   t/71-seeds.t: test_graph.py test_load_seeds, and the 5 nodes and 3
#     edges of test_stats / test_stats_with_auth, on the original's own
#     seeds file.
#   t/72-seeded-graph.t: the tests above that need the seed data, again
#     on that data (seeded from data/seeds.jsonl, and data/seeds.json as
#     records), with the original's paths and numbers; test_edges.py
#     test_invalid_edge_type (a seeds file naming the type: nginx -t
#     refuses it).
#   Left out: test_graph.py test_get_frontier_nodes (an internal
#     helper of the original's expander worker, no HTTP route).
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';

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
        location = /api/v1/moments        { clockchain_moments_list; }
        location /api/v1/moments/         { clockchain_moments; }
        location = /api/v1/stats          { clockchain_stats; }
        location = /api/v1/today          { clockchain_today; }
        location = /api/v1/random         { clockchain_random; }
        location /api/v1/graph/neighbors/ { clockchain_graph_neighbors; }
        location = /api/v1/search         { clockchain_search; }
        location = /api/v1/browse         { clockchain_browse; }
    }
CONF

my ($tm, $td) = (gmtime)[4, 3];
$tm++;

# the graph: name => [query, visibility, X-User-Id]
my %seed = (
    caesar   => [ 'Assassination of Julius Caesar [flash:bce]', 'public' ],
    apollo11 => [ 'Apollo 11 moon landing 1969', 'public' ],
    apollo12 => [ 'Apollo 12 lightning launch 1969', 'public' ],
    trinity  => [ 'Trinity test 1945', 'public' ],
    brexit   => [ 'Brexit referendum 2016', 'public' ],
    # of this UTC date, as today_in_history(3, 15) finds Caesar there
    ides     => [ "Ides of this day 1801 [flash:date=$tm-$td]", 'public' ],
    hidden   => [ "Private March Event 2000 [flash:date=$tm-$td]", 'private',
                  'alice' ],
);

my (%path, %name);
for my $n (sort keys %seed) {
    my ($q, $vis, $user) = @{ $seed{$n} };
    my $j = created_ok(generate($ng, { query => $q, visibility => $vis },
                                headers => $user ? { 'X-User-Id' => $user }
                                                 : {}),
                       "create $n") or next;
    my $done = wait_job($ng, $j->{job_id}, 20) // {};
    is($done->{status}, 'completed', "$n completed") or next;
    $path{$n} = $done->{path};
    $name{$n} = $redis->cmd('HGET', "${P}node:$done->{path}", 'name');
}

sub get {
    my ($uri, $key) = @_;
    return http(GET => $ng->url($uri),
                headers => $key ? { 'X-Service-Key' => $key } : {});
}

# the graph as Redis holds it, counted the slow way
my ($nodes, $edges) = (0, 0);
for my $k (@{ $redis->cmd('KEYS', "${P}node:*") }) {
    $nodes++;
}
for my $k (@{ $redis->cmd('KEYS', "${P}edges:*") }) {
    $edges += $redis->cmd('HLEN', $k);
}
is($nodes, 7, 'the graph: seven nodes');
ok($edges > 0, "... joined by $edges edges");

# --- tests/test_public_api.py ----------------------------------------------

# test_stats_no_auth
my $res = get('/api/v1/stats');
is($res->{status}, 200, 'test_stats_no_auth: 200');
my $d = json_ok($res, 'test_stats_no_auth');
ok(exists $d->{$_}, "test_stats_no_auth: has $_")
    for qw(total_nodes total_edges date_range avg_confidence last_updated);

# test_stats_with_auth (the original's 5 and 3 are its seed file's)
$d = json_ok(get('/api/v1/stats', $SK), 'test_stats_with_auth');
is($d->{total_nodes}, $nodes, "test_stats_with_auth: total_nodes $nodes");
is($d->{total_edges}, $edges, "test_stats_with_auth: total_edges $edges");

# test_list_moments_no_auth
$res = get('/api/v1/moments?limit=5');
is($res->{status}, 200, 'test_list_moments_no_auth: 200');
$d = json_ok($res, 'test_list_moments_no_auth');
ok(exists $d->{$_}, "test_list_moments_no_auth: has $_")
    for qw(items total limit offset);
is($d->{limit}, 5, 'test_list_moments_no_auth: limit 5');
is($d->{offset}, 0, 'test_list_moments_no_auth: offset 0');
is(scalar @{ $d->{items} }, 5, 'test_list_moments_no_auth: 5 items (of 6 public)');
ok(!grep({ $_->{path} eq ($path{hidden} // '') } @{ $d->{items} }),
   'test_list_moments_no_auth: the private node is not among them');

# test_list_moments_with_query
$d = json_ok(get('/api/v1/moments?q=caesar'), 'test_list_moments_with_query');
ok($d->{total} >= 1, 'test_list_moments_with_query: total >= 1');
ok((grep { $_->{name} =~ /Caesar/ } @{ $d->{items} }),
   'test_list_moments_with_query: a name with Caesar');

# test_list_moments_year_filter
$d = json_ok(get('/api/v1/moments?year_from=1945&year_to=1970'),
             'test_list_moments_year_filter');
is_deeply([ sort map { $_->{name} } @{ $d->{items} } ],
          [ sort @name{qw(apollo11 apollo12 trinity)} ],
          'test_list_moments_year_filter: the three of 1945-1970');
ok(!grep({ $_->{year} < 1945 || $_->{year} > 1970 } @{ $d->{items} }),
   'test_list_moments_year_filter: every year in range');

# test_auth_still_required_for_browse, test_auth_still_required_for_search
# (the original's 403 or 422 is 401 here, as the status page says)
is_error(get('/api/v1/browse'), 401, undef,
         'test_auth_still_required_for_browse: 401');
is_error(get('/api/v1/search?q=test'), 401, undef,
         'test_auth_still_required_for_search: 401');
is(get('/api/v1/browse', $SK)->{status}, 200, '... and 200 with the key');

# test_invalid_service_key_returns_403 (401 here, as the status page says)
is_error(get('/api/v1/moments', 'wrong-key'), 401, undef,
         'test_invalid_service_key_returns_403: a wrong key is 401');

# --- tests/test_api_moments.py ---------------------------------------------

# test_403_without_service_key: browse without a key
is_error(get('/api/v1/browse'), 401, undef, 'test_403_without_service_key: 401');

# test_random: the original's random_public is public-only for everyone;
# here the service itself sees every node (issue 15's rule of who sees
# what), so the test asks as a user, who sees public nodes, the system's
# (all public here) and their own: never alice's private one
my %drawn;
for (1 .. 20) {
    $res = http(GET => $ng->url('/api/v1/random'),
                headers => { 'X-Service-Key' => $SK, 'X-User-Id' => 'bob' });
    $d = json_body($res) // {};
    $drawn{ ($res->{status} == 200 && defined $d->{name}) ? $d->{visibility}
                                                          : 'error' }++;
}
is_deeply(\%drawn, { public => 20 },
          'test_random: 20 draws, each 200 with a name, each public');

# test_today
$res = get('/api/v1/today', $SK);
is($res->{status}, 200, 'test_today: 200');
$d = json_ok($res, 'test_today');
ok(exists $d->{$_}, "test_today: has $_") for qw(month day events);

# test_stats (the original's 5 and 3 are its seed file's)
$d = json_ok(get('/api/v1/stats', $SK), 'test_stats');
is($d->{total_nodes}, $nodes, 'test_stats: total_nodes');
is($d->{total_edges}, $edges, 'test_stats: total_edges');

# test_neighbors
$res = get("/api/v1/graph/neighbors$path{apollo11}", $SK);
is($res->{status}, 200, 'test_neighbors: 200');
ok(@{ json_body($res) // [] } >= 1, 'test_neighbors: at least one');

# --- tests/test_graph.py ---------------------------------------------------

# test_get_node
$d = json_ok(get("/api/v1/moments$path{caesar}", $SK), 'test_get_node');
like($d->{name}, qr/^Assassination of Julius Caesar$/i, 'test_get_node: name');
is($d->{year}, -44, 'test_get_node: year -44');

# test_get_node_not_found
is_error(get('/api/v1/moments/nonexistent/path', $SK), 404, undef,
         'test_get_node_not_found: 404');

# test_today_in_history: the moment of this day is found, in any year
$d = json_ok(get('/api/v1/today', $SK), 'test_today_in_history');
is($d->{month}, $tm, 'test_today_in_history: month');
is($d->{day}, $td, 'test_today_in_history: day');
ok((grep { $_->{name} eq $name{ides} } @{ $d->{events} }),
   'test_today_in_history: the moment of this day is among the events');

# test_random_public: random needs a key (401 without), and the service
# with a user's id draws only what that user may see
is_error(get('/api/v1/random'), 401, undef, 'test_random_public: no key, 401');
$res = http(GET => $ng->url('/api/v1/random'),
            headers => { 'X-Service-Key' => $SK, 'X-User-Id' => 'carol' });
is((json_body($res) // {})->{visibility}, 'public',
   'test_random_public: public');

# test_stats
$d = json_ok(get('/api/v1/stats', $SK), 'test_graph test_stats');
is($d->{total_nodes}, $nodes, 'test_graph test_stats: total_nodes');
is($d->{total_edges}, $edges, 'test_graph test_stats: total_edges');
ok(ref $d->{layer_counts} eq 'HASH', 'test_graph test_stats: layer_counts');
ok(ref $d->{edge_type_counts} eq 'HASH', 'test_graph test_stats: edge_type_counts');
my $by_type = 0;
$by_type += $_ for values %{ $d->{edge_type_counts} // {} };
is($by_type, $edges, 'test_graph test_stats: edge_type_counts add up');

# test_get_neighbors: Apollo 11 and 12 share their year
my @types = map { $_->{edge_type} }
            @{ json_body(get("/api/v1/graph/neighbors$path{apollo11}", $SK)) // [] };
ok((grep { $_ eq 'contemporaneous' || $_ eq 'causes' || $_ eq 'same_era' } @types),
   "test_get_neighbors: an edge of time among (@types)");

# --- tests/test_edges.py ---------------------------------------------------

# test_today_only_public: the private moment of this day is not listed to
# the public (nor to the service's key on behalf of another user)
$d = json_ok(get('/api/v1/today', $SK), 'test_today_only_public');
my @names = map { $_->{name} } @{ $d->{events} };
ok((grep { $_ eq $name{hidden} } @names),
   'test_today_only_public: the service itself sees the private one');
$res = http(GET => $ng->url('/api/v1/today'),
            headers => { 'X-Service-Key' => $SK, 'X-User-Id' => 'bob' });
@names = map { $_->{name} } @{ (json_body($res) // {})->{events} // [] };
ok(!(grep { $_ eq $name{hidden} } @names),
   'test_today_only_public: another user does not see it');
ok((grep { $_ eq $name{ides} } @names), '... but sees the public one');

done();
