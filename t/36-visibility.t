# Who sees what, and who may change it (issue 15), for GET /api/moments/{path},
# POST .../publish and PATCH .../visibility:
# - no service key: public nodes only (a wrong key is still 401);
# - a key without X-User-Id, the calling service: every node;
# - a key with X-User-Id: public nodes, "system" ones, and the user's own;
# a node the caller may not see is 404 and an edge to it is left out.
# Visibility: with X-User-Id only the creator (404 when the node is not
# seen, 403 when it is), without it the service, any node.
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
        location /api/moments/    { clockchain_moments; }
        location /api/v1/moments/ { clockchain_moments; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';

# a small graph written as complete.lua writes it: a public hub with an
# edge both ways to each of the others
my %node = (
    hub   => [ public  => 'carol'  ],
    sys   => [ private => 'system' ],
    a1    => [ private => 'alice'  ],
    a2    => [ public  => 'alice'  ],
    b1    => [ private => 'bob'    ],
);
my %path = map { $_ => "/1900/may/01/1200/france/ile-de-france/paris/vis-$_" }
           keys %node;

sub reset_graph {
    for my $n (keys %node) {
        my ($vis, $by) = @{ $node{$n} };
        $redis->cmd('DEL', "${P}node:$path{$n}", "${P}edges:$path{$n}");
        $redis->cmd('HSET', "${P}node:$path{$n}", 'path', $path{$n},
                    'name', "node $n", 'visibility', $vis, 'created_by', $by,
                    'year', '1900');
    }
    for my $n (grep { $_ ne 'hub' } keys %node) {
        $redis->cmd('HSET', "${P}edges:$path{hub}", "same_era|$path{$n}",
                    qq({"source":"$path{hub}","target":"$path{$n}",)
                    . qq("type":"same_era","weight":0.5}));
        $redis->cmd('HSET', "${P}edges:$path{$n}", "same_era|$path{hub}",
                    qq({"source":"$path{$n}","target":"$path{hub}",)
                    . qq("type":"same_era","weight":0.5}));
    }
}
reset_graph();

# $who: undef (no key), 'service' (key alone), or a user id (key + user)
sub hdrs {
    my ($who) = @_;
    return {} unless defined $who;
    return { 'X-Service-Key' => $SK } if $who eq 'service';
    return { 'X-Service-Key' => $SK, 'X-User-Id' => $who };
}

sub get {
    my ($n, $who, %o) = @_;
    return http($o{method} // 'GET',
                $ng->url(($o{prefix} // '/api/moments') . ($path{$n} // $n)),
                headers => { %{ hdrs($who) }, %{ $o{headers} // {} } });
}

sub seen {
    my ($n, $who) = @_;
    return get($n, $who)->{status};
}

sub edges_to {
    my ($who) = @_;
    my %back = reverse %path;
    my $m = json_body(get('hub', $who)) // {};
    return join ',', sort map { $back{ $_->{target} } // '?' }
                          grep { $_->{direction} eq 'outgoing' }
                          @{ $m->{edges} // [] };
}

sub vis {
    my ($n) = @_;
    return $redis->cmd('HGET', "${P}node:$path{$n}", 'visibility');
}

# ---------------------------------------------------------------------------
# who sees what

# no key: public nodes only
is(seen('hub', undef), 200, 'no key: a public node, 200');
is(seen('a2', undef), 200, "no key: alice's public node, 200");
is_error(get($_, undef), 404, 'Moment not found', "no key: $_ is 404")
    for qw(sys a1 b1);
is(edges_to(undef), 'a2', 'no key: only edges to public nodes');
is(get('hub', undef, method => 'HEAD')->{status}, 200, 'no key: HEAD 200');

# X-User-Id without a key names nobody
is(get('a1', undef, headers => { 'X-User-Id' => 'alice' })->{status}, 404,
   'X-User-Id without a key: still public only');

# a wrong key is 401 even where no key would do
is_error(get('hub', undef, headers => { 'X-Service-Key' => 'wrong' }), 401,
         undef, 'a wrong key on a public node: 401');
is_error(get('hub', undef, headers => { 'X-Service-Key' => '' }), 401,
         undef, 'an empty key: 401');

# a key without X-User-Id: the calling service sees every node
is(seen($_, 'service'), 200, "key alone: $_ is 200")
    for qw(hub sys a1 a2 b1);
is(edges_to('service'), 'a1,a2,b1,sys', 'key alone: every edge');
is(get('b1', 'service', prefix => '/api/v1/moments')->{status}, 200,
   'key alone, /api/v1/: 200');

# a key with X-User-Id: public, system, and their own
is(seen($_, 'alice'), 200, "alice: $_ is 200") for qw(hub sys a1 a2);
is_error(get('b1', 'alice'), 404, 'Moment not found',
         "alice: bob's private node is 404");
is(edges_to('alice'), 'a1,a2,sys', "alice: no edge to bob's private node");
is(edges_to('bob'), 'a2,b1,sys', "bob: no edge to alice's private node");
my $m = json_body(get('a1', 'alice')) // {};
is($m->{created_by}, 'alice', 'alice reads her node as it is');

# ---------------------------------------------------------------------------
# who may change visibility: POST .../publish

sub publish {
    my ($n, $who, $body) = @_;
    return http(POST => $ng->url("/api/moments$path{$n}/publish"),
                (defined $body ? (json => $body) : ()),
                headers => hdrs($who));
}

my $res = publish('a1', 'bob', { visibility => 'public' });
is_error($res, 404, 'Moment not found',
         "publish: bob, alice's private node he cannot see: 404");
is(vis('a1'), 'private', '... unchanged');
is_error(publish('a2', 'bob', { visibility => 'private' }), 403,
         qr/creator/, "publish: bob, alice's public node he sees: 403");
is(vis('a2'), 'public', '... unchanged');
is_error(publish('sys', 'alice', { visibility => 'public' }), 403,
         qr/creator/, 'publish: alice, a system node: 403');
is(vis('sys'), 'private', '... unchanged');
$res = publish('a1', 'alice', { visibility => 'public' });
is($res->{status}, 200, 'publish: alice, her node: 200');
is_deeply(json_body($res), { path => $path{a1}, visibility => 'public' },
          '... {path, visibility}');
is(seen('a1', undef), 200, '... and now it is public');
$res = publish('b1', 'service', undef);
is($res->{status}, 200, "publish: the service, bob's private node: 200");
is(vis('b1'), 'public', '... it is public');
$res = publish('sys', 'service', { visibility => 'public' });
is($res->{status}, 200, 'publish: the service, a system node: 200');
is_error(publish('a1', undef, { visibility => 'private' }), 401, undef,
         'publish without a key: 401');
reset_graph();

# ---------------------------------------------------------------------------
# PATCH .../visibility

sub patch {
    my ($n, $who, %o) = @_;
    return http(PATCH => $ng->url(($o{prefix} // '/api/moments')
                                  . ($path{$n} // $n) . '/visibility'),
                (exists $o{json} ? (json => $o{json}) : ()),
                (exists $o{body} ? (body => $o{body}) : ()),
                headers => { %{ hdrs($who) }, %{ $o{headers} // {} } });
}

$res = patch('a1', 'alice', json => { visibility => 'public', user_id => 'alice' });
is($res->{status}, 200, 'PATCH: alice, her node: 200');
is_deeply(json_body($res), { path => $path{a1}, visibility => 'public' },
          '... {path, visibility}');
is(vis('a1'), 'public', '... it is public');
like($redis->cmd('HGET', "${P}node:$path{a1}", 'published_at') // '', $TS_RE,
     '... published_at set');
$res = patch('a1', 'alice', json => { visibility => 'private' });
is_deeply(json_body($res), { path => $path{a1}, visibility => 'private' },
          'PATCH: alice makes it private again (user_id may be left out)');
is(seen('a1', undef), 404, '... no key no longer sees it');

is_error(patch('a1', 'bob', json => { visibility => 'public' }), 404,
         'Moment not found', "PATCH: bob, alice's private node: 404");
is_error(patch('a2', 'bob', json => { visibility => 'private' }), 403,
         qr/creator/, "PATCH: bob, alice's public node: 403");
is_error(patch('sys', 'bob', json => { visibility => 'public' }), 403,
         qr/creator/, 'PATCH: bob, a system node: 403');
is(vis('a1') . vis('a2') . vis('sys'), 'privatepublicprivate',
   '... nothing changed');

$res = patch('b1', 'service', json => { visibility => 'public' });
is($res->{status}, 200, "PATCH: the service, bob's private node: 200");
is(vis('b1'), 'public', '... it is public');
$res = patch('b1', 'service', json => { visibility => 'private', user_id => undef },
             prefix => '/api/v1/moments');
is($res->{status}, 200, 'PATCH on /api/v1/, user_id null: 200');
is(vis('b1'), 'private', '... private again');

# the body's user_id stands for X-User-Id when the header is absent
is_error(patch('b1', 'service', json => { visibility => 'public', user_id => 'alice' }),
         404, 'Moment not found',
         "PATCH: user_id alice in the body, bob's private node: 404");
is(vis('b1'), 'private', '... unchanged');
$res = patch('a1', 'service', json => { visibility => 'public', user_id => 'alice' });
is($res->{status}, 200, 'PATCH: user_id alice in the body, her node: 200');
is_error(patch('a1', 'alice', json => { visibility => 'private', user_id => 'bob' }),
         400, qr/user_id/, 'PATCH: user_id differs from X-User-Id: 400');
is(vis('a1'), 'public', '... unchanged');

# bad bodies, methods, keys: a clear 4xx, and nothing changes
my $before = $redis->hash("${P}node:$path{a1}");
is_error(patch('a1', 'alice', body => '{"visibility":',
               headers => { 'Content-Type' => 'application/json' }),
         400, qr/Invalid JSON/, 'PATCH: broken JSON: 400');
is_error(patch('a1', 'alice', json => [1]), 400, qr/object/,
         'PATCH: not an object: 400');
is_error(patch('a1', 'alice', json => {}), 400, qr/visibility/,
         'PATCH: no visibility: 400 naming it');
is_error(patch('a1', 'alice', json => { visibility => 'secret' }), 400,
         qr/visibility/, 'PATCH: unknown visibility: 400 naming it');
is_error(patch('a1', 'alice', json => { visibility => 1 }), 400,
         qr/visibility/, 'PATCH: visibility not a string: 400');
is_error(patch('a1', 'alice', json => { visibility => 'private', user_id => 7 }),
         400, qr/user_id/, 'PATCH: user_id not a string: 400');
is_error(patch('a1', 'alice', json => { visibility => 'private', user_id => 'a b' }),
         400, qr/user_id/, 'PATCH: user_id with a space: 400');
is_error(patch('a1', 'alice', json => { visibility => 'private',
                                        user_id => 'x' x 256 }),
         400, qr/user_id/, 'PATCH: user_id too long: 400');
is_error(patch('a1', 'alice'), 400, qr/body required/,
         'PATCH: no body: 400');
is_error(patch('a1', 'alice', body => 'visibility=private',
               headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
         415, qr{application/json}, 'PATCH: a form body: 415');
is_error(patch('a1', undef, json => { visibility => 'private' }), 401, undef,
         'PATCH without a key: 401');
is_error(patch('a1', undef, json => { visibility => 'private' },
               headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
         'PATCH with a wrong key: 401');
is_deeply($redis->hash("${P}node:$path{a1}"), $before,
          'none of those changed the node');

is_error(patch('/1999/january/01/1200/nowhere/nowhere/nowhere/absent',
               'service', json => { visibility => 'public' }),
         404, 'Moment not found', 'PATCH: an absent node: 404');

for my $method (qw(GET POST PUT DELETE)) {
    $res = http($method => $ng->url("/api/moments$path{a1}/visibility"),
                headers => hdrs('alice'));
    is($res->{status}, 405, "$method .../visibility: 405");
    is($res->{headers}{allow}, 'PATCH', '... Allow: PATCH');
}
$res = http(PATCH => $ng->url("/api/moments$path{a1}"),
            headers => hdrs('alice'));
is($res->{status}, 405, 'PATCH on the moment itself: 405');
is($res->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
$res = http(PATCH => $ng->url("/api/moments$path{a1}/publish"),
            headers => hdrs('alice'));
is($res->{status}, 405, 'PATCH .../publish: 405');

# a moment whose slug is "visibility" is a moment, not an action
{
    my $v = '/1850/march/03/0900/united-kingdom/england/london/visibility';
    $redis->cmd('HSET', "${P}node:$v", 'path', $v, 'name', 'named visibility',
                'visibility', 'public', 'created_by', 'system');
    is(get($v, undef)->{status}, 200, 'a moment whose slug is "visibility": GET 200');
    $res = patch($v, 'service', json => { visibility => 'private' });
    is($res->{status}, 200, '.../visibility/visibility changes it');
    is($redis->cmd('HGET', "${P}node:$v", 'visibility'), 'private', '... private');
}

done();
