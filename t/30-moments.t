# GET /api/moments/{path} and POST /api/moments/{path}/publish: the node
# with its edges both ways, visibility rules for private nodes and their
# edges, publishing, 404, and paths that try to escape. Who sees what
# and who may change it, case by case: t/36-visibility.t.
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
        location /api/moments/    { clockchain_moments; }
        location /api/v1/moments/ { clockchain_moments; }
    }
CONF

sub moment {
    my ($path, %o) = @_;
    return http(GET => $ng->url(($o{prefix} // '/api/moments') . $path),
                headers => { ($o{nokey} ? () : ('X-Service-Key' => 'test-key-1')),
                             %{ $o{headers} // {} } });
}

sub publish {
    my ($path, $body, %o) = @_;
    return http(POST => $ng->url("/api/moments$path/publish"),
                (defined $body ? (json => $body) : ()),
                headers => { 'X-Service-Key' => 'test-key-1',
                             %{ $o{headers} // {} } });
}

sub make { completed_moment($ng, @_) }

# a system node, and two private nodes of alice sharing a time or place
# with it (the stand-in gives related scenes to these queries)
my $sys = make('edge probe 1');
my @alice = map { make("edge probe $_", headers => { 'X-User-Id' => 'alice' }) } 2 .. 8;

my $res = moment($sys);
is($res->{status}, 200, 'GET a system node: 200');
like($res->{headers}{'content-type'}, qr{^application/json}, 'JSON');
my $m = json_body($res);
is($m->{path}, $sys, 'path');
for my $k (qw(name year month month_num day time country region city slug
              visibility created_by tags figures one_liner layer type
              generation_id created_at edges)) {
    ok(exists $m->{$k}, "node has $k");
}
ok(!exists $m->{sort_key}, 'internal sort_key is not shown');
like($m->{year}, qr/^-?\d+$/, 'year is a number');
ok(ref $m->{tags} eq 'ARRAY' && ref $m->{figures} eq 'ARRAY',
   'tags and figures are lists');
is(ref $m->{edges}, 'ARRAY', 'edges is a list');
is($m->{created_by}, 'system', 'created_by system');

# the same path under /api/v1/moments/
is(moment($sys, prefix => '/api/v1/moments')->{status}, 200, 'v1 location');

# edges, seen by alice: every edge has its fields; both directions
my $as_alice = json_body(moment($sys, headers => { 'X-User-Id' => 'alice' }));
my $as_bob = json_body(moment($sys, headers => { 'X-User-Id' => 'bob' }));
my $anon = json_body(moment($sys, nokey => 1));
my @ea = @{ $as_alice->{edges} // [] };
ok(@ea > 0, 'alice sees edges of the system node (' . scalar(@ea) . ')');
# an edge is {source, target, edge_type, weight, theme, direction, name}:
# its own source and target, so an incoming one has the other moment as
# source (the original puts the moment as source of every edge)
my $bad = 0;
for my $e (@ea) {
    my $in = ($e->{direction} // '') eq 'incoming';
    $bad++ unless defined $e->{edge_type} && defined $e->{weight}
        && defined $e->{theme} && defined $e->{name}
        && ($e->{direction} // '') =~ /^(outgoing|incoming)$/
        && ($in ? $e->{target} : $e->{source}) eq $sys
        && ($in ? $e->{source} : $e->{target}) ne $sys;
}
is($bad, 0, 'every edge has source, target, edge_type, weight, theme, '
            . 'direction, name, this moment at its end');
my %dir = map { $_->{direction} => 1 } @ea;
ok($dir{outgoing} && $dir{incoming}, 'edges in both directions');
sub other_end { $_[0]{direction} eq 'incoming' ? $_[0]{source} : $_[0]{target} }

my %private = map { $_ => 1 } grep { defined } @alice;
my @leak = grep { $private{ other_end($_) } } @{ $as_bob->{edges} // [] }, @{ $anon->{edges} // [] };
is(scalar @leak, 0, "edges to alice's private nodes are hidden from others");
ok((grep { $private{ other_end($_) } } @ea), 'alice sees the edges to her nodes');

# private nodes: only their creator sees them
my $p = $alice[0];
is(moment($p, headers => { 'X-User-Id' => 'alice' })->{status}, 200,
   "alice sees her private node");
is_error(moment($p, headers => { 'X-User-Id' => 'bob' }), 404,
         'Moment not found', "bob gets 404 for alice's private node");
is_error(moment($p, nokey => 1), 404, 'Moment not found',
         'no key: 404 for a private node');
is(moment($p)->{status}, 200,
   'a key without X-User-Id (the service itself) sees it');

# publishing follows the same rule
is_error(publish($p, { visibility => 'public' }, headers => { 'X-User-Id' => 'bob' }),
         404, 'Moment not found', 'bob cannot publish it');
is($redis->hash("clockchain:{cc}:v1:node:$p")->{visibility}, 'private',
   'still private');
$res = publish($p, { visibility => 'public' }, headers => { 'X-User-Id' => 'alice' });
is($res->{status}, 200, 'alice publishes it');
is_deeply(json_body($res), { path => $p, visibility => 'public' },
          'answer {path, visibility}');
my $node = $redis->hash("clockchain:{cc}:v1:node:$p");
like($node->{published_at} // '', $TS_RE, 'published_at set');
is(moment($p, headers => { 'X-User-Id' => 'bob' })->{status}, 200,
   'now bob sees it');
is(json_body(moment($p, nokey => 1))->{published_at}, $node->{published_at},
   'published_at is shown');

$res = publish($p, undef, headers => { 'X-User-Id' => 'alice' });
is($res->{status}, 200, 'publish without a body');
is(json_body($res)->{visibility}, 'public', 'defaults to public');
is($redis->hash("clockchain:{cc}:v1:node:$p")->{published_at},
   $node->{published_at}, 'published_at kept when it was public already');

$res = publish($p, { visibility => 'private' }, headers => { 'X-User-Id' => 'alice' });
is_deeply(json_body($res), { path => $p, visibility => 'private' },
          'alice makes it private again');
is(moment($p, headers => { 'X-User-Id' => 'bob' })->{status}, 404,
   'bob no longer sees it');

is_error(publish($p, { visibility => 'secret' }, headers => { 'X-User-Id' => 'alice' }),
         400, qr/visibility/, 'bad visibility: 400 naming it');
is_error(publish($p, [1], headers => { 'X-User-Id' => 'alice' }),
         400, qr/object/, 'a non-object body: 400');
is_error(http(POST => $ng->url("/api/moments$p/publish"), body => 'x=1',
              headers => { 'X-Service-Key' => 'test-key-1',
                           'Content-Type' => 'application/x-www-form-urlencoded' }),
         415, qr{application/json}, 'form body: 415');
is_error(publish($sys, undef, headers => { 'X-Service-Key' => 'nope' }),
         401, undef, 'publish with a wrong key: 401');

# absent, wrong method, names no node
my $absent = '/1999/january/01/1200/nowhere/nowhere/nowhere/nothing-0000';
is_error(moment($absent), 404, 'Moment not found', 'absent path: 404');
is_error(publish($absent, {}), 404, 'Moment not found', 'publish absent: 404');
$res = http(DELETE => $ng->url("/api/moments$sys"),
            headers => { 'X-Service-Key' => 'test-key-1' });
is($res->{status}, 405, 'DELETE: 405');
is($res->{headers}{allow}, 'GET, HEAD', 'Allow: GET, HEAD');
$res = http(GET => $ng->url("/api/moments$sys/publish"),
            headers => { 'X-Service-Key' => 'test-key-1' });
is($res->{status}, 405, 'GET .../publish: 405');
is($res->{headers}{allow}, 'POST', 'Allow: POST');
is_error(moment($sys, headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
         'wrong key: 401');

# a path that names no node is 404 whatever its form (issue 15); the
# original's unpadded day is a form of the canonical path, so
# /1776/july/4/... is the absent /1776/july/04/...
my $before = $redis->cmd('DBSIZE');
for my $bad (
    '/1776/july/04/1200/a/b/c',                 # too short
    '/1776/july/04/1200/a/b/c/d/e',             # too long
    '/1776/July/04/1200/a/b/c/d',               # uppercase
    '/1776/july/4/1200/a/b/c/d',                # unpadded: absent
    '/1776/july/004/1200/a/b/c/d',
    '/1776/july/0/1200/a/b/c/d',
    '/1776/july/04/1200/a/b/c/*',
    '/1776/july/04/1200/a/b/c/' . ('x' x 101),
    '/1776/july/04/1200/a/b/c/%2e%2e',
    '/1776/july/04/1200/a/%2e%2e/c/d',
    '/1776/july/04/1200/a/b/c/d%20e',
    '/1776/july/04/1200/a/b/c/d%00',
    '/' . ('9' x 600),
) {
    $res = moment($bad);
    ok($res->{status} == 404 || $res->{status} == 400,
       "names no node '$bad': 404 (or nginx's own 400)")
        or diag("$res->{status} $res->{content}");
    if (($res->{headers}{'content-type'} // '') =~ /json/) {
        is($res->{status}, 404, '  from the module: 404');
        is(json_body($res)->{detail}, 'Moment not found', '  Moment not found');
    }
}
is_error(moment('/1776/july/04/1200/a/b/c/*'), 404, 'Moment not found',
         'a * in the path: 404 from the module');
is_error(moment('/1776/july/04/1200/a/b/c/*', prefix => '/api/v1/moments'),
         404, 'Moment not found', '... under /api/v1/ too');
is_error(moment('/1776/july/04/1200/a/b/c/*', nokey => 1), 404,
         'Moment not found', '... and without a key');
is($redis->cmd('DBSIZE'), $before, 'no key was made from those paths');
# nginx resolves .. before any module runs: it can never reach another key
$res = moment('/1776/july/04/1200/a/b/../../../../../../jobs/x');
isnt($res->{status}, 200, '.. segments never reach a node');

# one route rule (issue 13, item 8): eight segments name a moment, a ninth
# is an action on it, so a slug is never read as an action
{
    my $P = 'clockchain:{cc}:v1:';
    my $pub = '/1850/march/03/0900/united-kingdom/england/london/publish';
    $redis->cmd('HSET', "${P}node:$pub", 'name', 'A moment named publish',
                'visibility', 'private', 'created_by', 'alice', 'year', '1850',
                'path', $pub);
    my $r = moment($pub, headers => { 'X-User-Id' => 'alice' });
    is($r->{status}, 200, 'a moment whose slug is "publish": GET 200')
        or diag($r->{content});
    is((json_body($r) // {})->{name}, 'A moment named publish',
       '... and it is that moment');
    $r = publish($pub, { visibility => 'public' },
                 headers => { 'X-User-Id' => 'alice' });
    is($r->{status}, 200, '.../publish/publish publishes it');
    is($redis->cmd('HGET', "${P}node:$pub", 'visibility'), 'public',
       '... it is public');
    $r = http(POST => $ng->url("/api/moments$pub"),
              headers => { 'X-Service-Key' => 'test-key-1' });
    is($r->{status}, 405, 'POST to the moment itself: 405');
    is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
    $r = http(POST => $ng->url("/api/moments$pub/frobnicate"),
              headers => { 'X-Service-Key' => 'test-key-1' });
    is_error($r, 404, qr/Unknown action/, 'an unknown action: 404');
    $r = moment("$sys/publish/extra");
    is_error($r, 404, 'Moment not found', 'a tenth segment: not a moment, 404');
    $redis->cmd('DEL', "${P}node:$pub");
}

# a popular node: every later node links to it, so its edge hash grows with
# the graph; a GET shows at most 1000 edges and reads no more of the hash
# than that takes
{
    my $P = 'clockchain:{cc}:v1:';
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
    my $r = moment($hub);
    is($r->{status}, 200, 'a node with 5000 edges: 200');
    my $e = (json_body($r) // {})->{edges} // [];
    is(scalar @$e, 1000, '... showing 1000 of them');
    my ($scans) = $redis->cmd('INFO', 'commandstats') =~ /cmdstat_hscan:calls=(\d+)/;
    ok(defined $scans && $scans >= 10 && $scans <= 15,
       "... read a page at a time, about 1000 of 5000 fields (@{[ $scans // 'no' ]} HSCAN)");
    $redis->cmd('EVAL', "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                . "redis.call('DEL', k) end", 0, "${P}*spoke-*");
    $redis->cmd('DEL', "${P}node:$hub", "${P}edges:$hub");
}

# ---------------------------------------------------------------------------
# a path collision: two creators whose jobs land on one canonical path (the
# stand-in's scene depends on the query only). The first creator keeps the
# node and its contents; the later job gets a node of its own, the same
# path with the slug's hex suffix replaced by 4 hex digits of its job id,
# and each creator reads their own. The same creator again updates the one
# node.

{
    my $NODE = 'clockchain:{cc}:v1:node:';
    my $dora = { 'X-User-Id' => 'dora' };
    my $erin = { 'X-User-Id' => 'erin' };
    my $pd = make('collision probe', headers => $dora);
    my $before = $redis->hash("$NODE$pd");
    is($before->{created_by}, 'dora', 'collision: dora made the node');

    my $j = created_ok(generate($ng, { query => 'collision probe' }, headers => $erin),
                       "collision: erin's job");
    my $done = $j ? wait_job($ng, $j->{job_id}, 15) // {} : {};
    is($done->{status}, 'completed', "collision: erin's job completed");
    my $pe = $done->{path} // '';
    (my $digits = $j ? $j->{job_id} : '') =~ s/-//g;
    my ($want) = grep { $_ ne $pd }
                 map { (my $p = $pd) =~ s/[0-9a-f]{4}$/$_/; $p }
                 $digits =~ /(.{4})/g;
    is($pe, $want, "collision: erin's path has 4 hex digits of her job id "
                   . 'as its slug suffix');
    is_deeply($redis->hash("$NODE$pd"), $before,
              "collision: dora's node keeps its creator and contents");

    my $res = moment($pd, headers => $dora);
    is($res->{status}, 200, 'collision: dora reads her node');
    is((json_body($res) // {})->{created_by}, 'dora', '... created by dora');
    is(moment($pd, headers => $erin)->{status}, 404,
       "collision: erin does not get dora's private node");
    $res = moment($pe, headers => $erin);
    is($res->{status}, 200, "collision: erin reads the node her job's path names");
    my $m = json_body($res) // {};
    is($m->{created_by}, 'erin', '... created by erin');
    is($m->{path}, $pe, '... at that path');

    my $nodes = scalar @{ $redis->cmd('KEYS', "$NODE*") };
    is(make('collision probe', headers => $dora), $pd,
       'collision: dora again lands on her own path');
    is(scalar @{ $redis->cmd('KEYS', "$NODE*") }, $nodes,
       '... and updates the one node');
    is($redis->hash("$NODE$pd")->{created_by}, 'dora', '... still dora\'s');
}

done();
