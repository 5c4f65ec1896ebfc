# GET /health, GET / and GET /api/stats: their shapes; the counters
# complete.lua keeps, checked against the graph itself after Flash jobs and
# after direct writes (a node counted once however often its creator
# updates it, each edge once, by type); stats without a key; health 503
# while Redis is down; src/lua/ops/reindex.lua rebuilding the counters.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
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
        location = /              { clockchain_service_info; }
        location = /health        { clockchain_health; }
        location = /api/stats     { clockchain_stats; }
        location = /api/v1/stats  { clockchain_stats; }
    }
CONF

sub get {
    my ($uri, %h) = @_;
    return http(GET => $ng->url($uri), headers => \%h);
}

sub make { completed_moment($ng, @_) }

# what the counters should say, counted the slow way
sub truth {
    my %t = (nodes => 0, edges => 0, types => {}, layers => {});
    for my $k (@{ $redis->cmd('KEYS', "${P}node:*") }) {
        $t{nodes}++;
        $t{layers}{ $redis->cmd('HGET', $k, 'layer') }++;
    }
    for my $k (@{ $redis->cmd('KEYS', "${P}edges:*") }) {
        for my $f (@{ $redis->cmd('HKEYS', $k) }) {
            $t{edges}++;
            $t{types}{ (split /\|/, $f)[0] }++;
        }
    }
    return \%t;
}

sub stats_match {
    my ($what) = @_;
    my $t = truth();
    my $res = get('/api/stats');
    is($res->{status}, 200, "$what: stats 200");
    my $s = json_body($res) // {};
    is($s->{total_nodes}, $t->{nodes}, "$what: total_nodes $t->{nodes}");
    is($s->{total_edges}, $t->{edges}, "$what: total_edges $t->{edges}");
    is_deeply($s->{edge_type_counts}, $t->{types}, "$what: edges by type");
    is_deeply($s->{layer_counts}, $t->{layers}, "$what: nodes by layer");
    my $h = json_body(get('/health')) // {};
    is_deeply([ @$h{qw(nodes edges)} ], [ $t->{nodes}, $t->{edges} ],
              "$what: health counts the same");
    return $s;
}

# ---------------------------------------------------------------------------
# GET /: the service and the VERSION file

open my $vf, '<', 'VERSION' or die "VERSION: $!";
chomp(my $version = <$vf>);
my $res = get('/');
is($res->{status}, 200, 'GET /: 200 without a key');
like($res->{headers}{'content-type'}, qr{^application/json}, 'GET /: JSON');
is_deeply(json_body($res),
          { service => 'timepoint-clockchain', version => $version },
          "GET /: service and version $version");
is(http(POST => $ng->url('/'), json => {})->{status}, 405, 'POST /: 405');

# ---------------------------------------------------------------------------
# an empty graph

$res = get('/health');
is($res->{status}, 200, 'health: 200 without a key');
is_deeply(json_body($res), { status => 'healthy',
                             service => 'timepoint-clockchain',
                             nodes => 0, edges => 0 },
          'health: healthy, empty graph');

$res = get('/api/stats');
is($res->{status}, 200, 'stats: 200 without a key');
my $s = json_body($res);
is_deeply($s, { total_nodes => 0, total_edges => 0, layer_counts => {},
                edge_type_counts => {},
                date_range => { min_year => undef, max_year => undef },
                avg_confidence => undef, last_updated => undef },
          'stats: an empty graph');

is(get('/api/stats', 'X-Service-Key' => 'test-key-1')->{status}, 200,
   'stats: 200 with a good key');
is_error(get("/api/stats", "X-Service-Key" => "nope"), 401,
         "Missing or invalid service key",
         'stats: a wrong key is 401');
is(get('/api/v1/stats')->{status}, 200, 'stats: /api/v1/stats too');
for my $uri ('/', '/health', '/api/stats') {
    my $head = http(HEAD => $ng->url($uri));
    is($head->{status}, 200, "HEAD $uri: 200");
    is($head->{body} // '', '', "HEAD $uri: no body");
}
is(http(DELETE => $ng->url('/health'))->{status}, 405, 'DELETE /health: 405');

# ---------------------------------------------------------------------------
# Flash jobs: a system node and private nodes of alice that share a time
# or place with it

my $sys = make('edge probe 1');
my @alice = map { make("edge probe $_",
                        headers => { 'X-User-Id' => 'alice' }) } 2 .. 5;

$s = stats_match('after 5 jobs');
ok($s->{total_nodes} == 5, 'five nodes');
ok($s->{total_edges} > 0, "edges counted ($s->{total_edges})");
like($s->{last_updated}, $TS_RE, 'last_updated is a time');

my @years = map { (split m{/}, $_)[1] } $sys, @alice;
my ($lo, $hi) = (sort { $a <=> $b } @years)[0, -1];
is_deeply($s->{date_range}, { min_year => $lo + 0, max_year => $hi + 0 },
          "date_range $lo..$hi");

# the same creator's job again updates its node: nothing counted twice
my $again = make('edge probe 1');
is($again, $sys, 'the same query lands on the same node');
stats_match('after an update');
is(json_body(get('/api/stats'))->{total_nodes}, 5, 'still five nodes');

# another creator on the same path gets a node of its own: counted
make('edge probe 1', headers => { 'X-User-Id' => 'bob' });
is(stats_match('after another creator')->{total_nodes}, 6, 'six nodes');

# ---------------------------------------------------------------------------
# direct writes through complete.lua: years before the common era, an
# update, and a layer that moves

my $complete = lua_script('complete');
my $json = JSON::PP->new->canonical;
my $n = 0;

sub direct {
    my (%o) = @_;
    my $id = sprintf '00000000-0000-4000-8000-%012d', ++$n;
    $redis->cmd('HSET', "${P}job:$id", 'status', 'processing', 'token', '7',
                'created_at', '2026-01-01T00:00:00.000000Z');
    my ($y, $m, $d) = ($o{year}, 3, 15);
    my $path = "/$y/march/15/1200/$o{country}/r/c/$o{slug}";
    my %node = (path => $path, year => $y, month => 'march', month_num => $m,
                day => $d, time => '1200', country => $o{country},
                region => 'r', city => 'c', slug => $o{slug},
                figures => $o{figures} // [], tags => [], layer => $o{layer},
                type => 'event', visibility => 'private',
                created_by => 'system',
                created_at => $o{created_at} // '2026-01-01T00:00:00.000000Z',
                sort_key => $y * 100000000 + $m * 1000000 + $d * 10000 + 1200);
    my $r = $redis->cmd('EVAL', $complete, 2, "${P}job:$id",
                        "${P}processing", '7', $id,
                        '2026-01-01T00:01:00.000000Z', $path,
                        $json->encode(\%node), $P, 20, 1, "${P}events", 600);
    return ref $r eq 'ARRAY' ? $r->[1] : $r;
}

direct(year => -44, country => 'italy', slug => 'ides', layer => 2,
       figures => ['Julius Caesar']);
direct(year => -44, country => 'italy', slug => 'ides-2', layer => 2,
       figures => ['Julius Caesar'],
       created_at => '2099-01-01T00:00:00.000000Z');
$s = stats_match('after direct writes');
is($s->{date_range}{min_year}, -44, 'a year BC is the minimum');
is($s->{last_updated}, '2099-01-01T00:00:00.000000Z',
   'last_updated: the latest creation');
ok($s->{edge_type_counts}{same_figure} >= 2, 'same_figure edges counted');

direct(year => -44, country => 'italy', slug => 'ides', layer => 2,
       figures => ['Julius Caesar']);
is(stats_match('after a direct update')->{total_nodes}, 8,
   'a direct update counts nothing');

direct(year => -44, country => 'italy', slug => 'ides', layer => 1,
       figures => ['Julius Caesar']);
$s = stats_match('after a layer moved');
is($s->{layer_counts}{1}, 1, 'the moved node counts in layer 1');

# ---------------------------------------------------------------------------
# the rebuild: counters lost (or never written) come back from the graph

my $before = json_body(get('/api/stats'));
$redis->cmd('DEL', "${P}stats");
is(json_body(get('/api/stats'))->{total_nodes}, 0, 'stats hash gone: 0 nodes');

my $out = $redis->cli('--eval', 'src/lua/ops/reindex.lua', "${P}stats", ',',
                      $P);
like($out, qr/^8\n\d+$/,
     'reindex answers nodes and edges');
is_deeply(json_body(get('/api/stats')), $before,
          'reindex: the same stats as before the DEL');
stats_match('after reindex');

# reindex.lua runs from redis-cli --eval, which includes nothing, so it
# keeps its own copy of lib/index.lua's group(), count(), browse() and
# serial(): a change to one that the other misses would rebuild indexes
# the scripts do not read
{
    my %fn;
    for my $f ('src/lua/lib/index.lua', 'src/lua/ops/reindex.lua') {
        my $text = Clockchain::Test::_slurp($f);
        $fn{$f}{$1} = $& while $text =~ /^local function (\w+)\b.*?^end\n/gms;
    }
    for my $name (qw(group count browse serial)) {
        ok(defined $fn{'src/lua/lib/index.lua'}{$name}
           && ($fn{'src/lua/lib/index.lua'}{$name} // '')
              eq ($fn{'src/lua/ops/reindex.lua'}{$name} // ''),
           "reindex.lua's $name() is lib/index.lua's, line for line");
    }
}

# run twice: the same counters, not twice as many
$redis->cli('--eval', 'src/lua/ops/reindex.lua', "${P}stats", ',', $P);
is_deeply(json_body(get('/api/stats')), $before, 'reindex is repeatable');

# ---------------------------------------------------------------------------
# Redis down: health 503 for the load balancer, stats 503; GET / still 200

$redis->stop;
$res = get('/health');
is($res->{status}, 503, 'health: 503 with Redis down');
my $h = json_body($res) // {};
is($h->{status}, 'unhealthy', 'health: unhealthy');
is($h->{service}, 'timepoint-clockchain', 'health: service named');
is(get('/api/stats')->{status}, 503, 'stats: 503 with Redis down');
is(get('/')->{status}, 200, 'GET /: 200 with Redis down');

$redis->start;
ok(wait_for(10, sub { get('/health')->{status} == 200 }),
   'health: 200 again once Redis is back');

done_testing();
