# GET /api/moments (a page of nodes, no key needed), /api/today and
# /api/random (issue 15), as the original's list_moments, today_in_history
# and random_public, with the module's rule of who sees what: no key,
# public nodes; a key alone, every node; a key and X-User-Id, public,
# "system" and the user's own. The graph is written as complete.lua writes
# it: the node hash, idx:time, idx:pub:time (the public nodes) and idx:fig.
use strict;
use warnings;
use Test::More;
use POSIX qw(strftime);
use Clockchain::Test;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        location = /api/moments    { clockchain_moments_list; }
        location = /api/v1/moments { clockchain_moments_list; }
        location /api/moments/     { clockchain_moments; }
        location = /api/today      { clockchain_today; }
        location = /api/random     { clockchain_random; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my @MONTHS = qw(january february march april may june july august september
                october november december);

# name => [year, month, day, visibility, created_by, figures...]
my ($tm, $td) = (gmtime)[4, 3];
$tm++;
my $om = $tm == 1 ? 2 : 1;   # a month that is not this one
my %node = (
    caesar  => [ -44, 3, 15, 'public',  'system', 'Julius Caesar' ],
    hastings=> [ 1066, 10, 14, 'public', 'alice' ],
    magna   => [ 1215, 6, 15, 'private', 'system' ],
    moon    => [ 1969, 7, 20, 'public', 'system', 'Neil Armstrong' ],
    wall    => [ 1989, 11, 9, 'private', 'alice' ],
    secret  => [ 1990, 1, 2, 'private', 'bob', 'Julius Caesar' ],
    today1  => [ 1901, $tm, $td, 'public', 'system' ],
    today2  => [ 2001, $tm, $td, 'private', 'bob' ],
    other   => [ 1950, $om, $td, 'public', 'system' ],
);

my %path;
for my $n (sort keys %node) {
    my ($y, $m, $d, $vis, $by, @fig) = @{ $node{$n} };
    my $path = sprintf('/%d/%s/%02d/1200/france/ile-de-france/paris/%s',
                       $y, $MONTHS[$m - 1], $d, $n);
    $path{$n} = $path;
    my $score = $y * 100000000 + $m * 1000000 + $d * 10000 + 1200;
    $redis->cmd('HSET', "${P}node:$path", 'path', $path, 'name', "The $n",
                'one_liner', "one liner of $n", 'year', $y,
                'month', $MONTHS[$m - 1], 'month_num', $m, 'day', $d,
                'country', 'france', 'region', 'ile-de-france',
                'city', 'paris', 'layer', 2, 'visibility', $vis,
                'created_by', $by, 'sort_key', $score);
    $redis->cmd('ZADD', "${P}idx:time", $score, $path);
    $redis->cmd('ZADD', "${P}idx:pub:time", $score, $path) if $vis eq 'public';
    $redis->cmd('ZADD', "${P}idx:fig:$_", $score, $path) for @fig;
}

sub hdrs {
    my ($who) = @_;
    return {} unless defined $who;
    return { 'X-Service-Key' => $SK } if $who eq 'service';
    return { 'X-Service-Key' => $SK, 'X-User-Id' => $who };
}

sub list {
    my ($query, $who, $prefix) = @_;
    return http(GET => $ng->url(($prefix // '/api/moments')
                                . (length $query ? "?$query" : '')),
                headers => hdrs($who));
}

sub names {
    my ($res) = @_;
    my $d = json_body($res) // {};
    return [ map { $_->{name} =~ s/^The //r } @{ $d->{items} // [] } ];
}

# the shape, public only without a key, by year ascending
my $res = list('');
is($res->{status}, 200, 'list without a key: 200');
my $d = json_ok($res, 'list body');
is_deeply([ sort keys %$d ], [qw(items limit offset total)], 'list shape');
is($d->{limit}, 20, 'default limit 20');
is($d->{offset}, 0, 'default offset 0');
is_deeply(names($res), [qw(caesar hastings today1 other moon)],
          'no key: public nodes only, oldest first');
is($d->{total}, 5, 'total counts the public nodes');
my ($c) = grep { $_->{path} eq $path{caesar} } @{ $d->{items} };
is_deeply($c, { path => $path{caesar}, name => 'The caesar',
                one_liner => 'one liner of caesar', year => -44, month => 3,
                month_name => 'march', day => 15, country => 'france',
                region => 'ile-de-france', city => 'paris', layer => 2,
                visibility => 'public', source_type => 'historical',
                image_url => undef, confidence => undef,
                status => 'proposed' }, 'an item has its fields');
is(list('', undef, '/api/v1/moments')->{status}, 200, '/api/v1/moments');

# who sees what
is(json_body(list('', 'service'))->{total}, 9, 'the service sees every node');
is_deeply(names(list('', 'alice')),
          [qw(caesar hastings magna today1 other moon wall)],
          'alice: public, system and her own');
is_deeply(names(list('', 'bob')),
          [qw(caesar hastings magna today1 other moon secret today2)],
          'bob: public, system and his own');
is(list('', 'nobody-key')->{status}, 200, 'a user with no nodes: 200');
is_error(http(GET => $ng->url('/api/moments'),
              headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
         'a wrong key is 401, not a public answer');

# paging
is_deeply(names(list('limit=2&offset=1')), [qw(hastings today1)],
          'limit and offset');
is(json_body(list('limit=2&offset=1'))->{total}, 5,
   'total is every match, not the page');
is_deeply(names(list('limit=2&offset=1', 'service')), [qw(hastings magna)],
          'limit and offset, as the service');
is_deeply(names(list('offset=50')), [], 'an offset past the end: no items');
is_deeply(names(list('sort=-year&limit=2')), [qw(moon other)],
          'sort=-year: newest first');
is_deeply(names(list('sort=-year&limit=2&offset=1&year_to=1969', 'service')),
          [qw(other today1)], 'sort=-year, a year range, an offset, as the service');
is(json_body(list('sort=-year&year_from=1066&year_to=1969', 'service'))->{total},
   5, '... total of the range');
is_deeply(names(list('sort=-year&year_from=2100', 'service')), [],
          'a range with nothing in it: no items');

# filters
is_deeply(names(list('year_from=1000&year_to=1950')),
          [qw(hastings today1 other)], 'year_from and year_to');
is_deeply(names(list('year_from=1950&year_to=1950')), [qw(other)],
          'one year');
is_deeply(names(list('year_to=0')), [qw(caesar)], 'BCE years');
is(json_body(list('year_from=1200&year_to=1999', 'service'))->{total}, 6,
   'year range as the service: ZCOUNT');
is_deeply(names(list('entity=caesar')), [qw(caesar)],
          'entity: in the name');
is_deeply(names(list('entity=Neil%20Armstrong')), [qw(moon)],
          'entity: a figure');
is_deeply(names(list('entity=Julius+Caesar', 'bob')), [qw(caesar secret)],
          'entity: a figure, and only nodes the caller may see');
is_deeply(names(list('entity=Julius+Caesar')), [qw(caesar)],
          '... not the private one without a key');
is_deeply(names(list('q=MOON')), [qw(moon)], 'q: the name, any case');
is_deeply(names(list('q=liner+of+hast')), [qw(hastings)], 'q: one_liner');
is(json_body(list('q=zzz'))->{total}, 0, 'q matching nothing: total 0');

# out of range: 400 naming the parameter, nothing read
for my $bad (['limit=0', 'limit'], ['limit=101', 'limit'],
             ['limit=abc', 'limit'], ['offset=-1', 'offset'],
             ['offset=1x', 'offset'], ['year_from=x', 'year_from'],
             ['year_to=99999999999', 'year_to'],
             ['year_from=2000&year_to=1000', 'year_to'],
             ['sort=name', 'sort'], ['q=' . ('a' x 201), 'q'],
             ['entity=%ff', 'entity'], ['q=a%09b', 'q'],
             ['limit=', 'limit'], ['sort=year%00', 'sort']) {
    my ($calls) = ($redis->cmd('INFO', 'commandstats')
                   =~ /cmdstat_evalsha:calls=(\d+)/) ? ($1) : (0);
    is_error(list($bad->[0]), 400, qr/^$bad->[1]: must be /,
             "$bad->[0]: 400 naming $bad->[1]");
    # the handler went on after its 400 (the helpers' rc was the send's
    # NGX_OK) and sent list.lua arguments it never set: under ASan the
    # worker aborted on a length of 2^46
    my ($after) = ($redis->cmd('INFO', 'commandstats')
                   =~ /cmdstat_evalsha:calls=(\d+)/) ? ($1) : (0);
    is($after, $calls, "$bad->[0]: ... and nothing is asked of Redis");
}
is_error(http(POST => $ng->url('/api/moments'), headers => hdrs('service'),
              json => {}), 405, undef, 'POST /api/moments: 405');

# today: this UTC month and day in every year, visibility applied
is_error(http(GET => $ng->url('/api/today')), 401, undef,
         'today without a key: 401');
$res = http(GET => $ng->url('/api/today'), headers => hdrs('service'));
is($res->{status}, 200, 'today: 200');
$d = json_ok($res, 'today body');
is($d->{month}, $tm, 'today: month');
is($d->{day}, $td, 'today: day');
is_deeply([ map { $_->{path} } @{ $d->{events} } ],
          [ $path{today1}, $path{today2} ],
          'today: the nodes of this day, not of another month');
$d = json_body(http(GET => $ng->url('/api/today'), headers => hdrs('alice')));
is_deeply([ map { $_->{path} } @{ $d->{events} } ], [ $path{today1} ],
          "today as alice: not bob's private node");

# random: a visible node, never an invisible one
is_error(http(GET => $ng->url('/api/random')), 401, undef,
         'random without a key: 401');
my %alice_sees = map { $path{$_} => 1 }
                 qw(caesar hastings magna today1 other moon wall);
my %got;
for (1 .. 60) {
    $res = http(GET => $ng->url('/api/random'), headers => hdrs('alice'));
    last unless $res->{status} == 200;
    $got{ json_body($res)->{path} // '' }++;
}
is($res->{status}, 200, 'random: 200');
is_deeply([ grep { !$alice_sees{$_} } keys %got ], [],
          'random as alice: never a node she may not see');
ok(keys %got > 1, 'random: more than one node over 60 calls ('
   . scalar(keys %got) . ')');

# one visible node among many invisible: the bounded walk finds it
# (made private as publish.lua would: out of the public's index too, and
# a new version of the graph, so that no nginx answers from what it kept)
$redis->cmd('HSET', "${P}node:$path{$_}", 'visibility', 'private',
            'created_by', 'bob') for grep { $_ ne 'wall' } keys %node;
$redis->cmd('ZREM', "${P}idx:pub:time", values %path);
$redis->cmd('SET', "${P}idx:version", 'changed by hand 1');
for (1 .. 10) {
    $res = http(GET => $ng->url('/api/random'), headers => hdrs('alice'));
    is(json_body($res)->{path}, $path{wall}, 'random finds the one node');
}

# nothing visible: 404 as the original
$redis->cmd('HSET', "${P}node:$path{wall}", 'created_by', 'bob');
is_error(http(GET => $ng->url('/api/random'), headers => hdrs('alice')),
         404, 'No public moments available', 'random with nothing seen: 404');
is(json_body(list(''))->{total}, 0, 'list: nothing public, total 0');

# the public's list past 2100 private nodes: exact (idx:pub:time), where
# the walk of 2000 entries found nothing and counted 0
$redis->cmd('EVAL', <<'LUA', 0, $P);
for i = 1, 2100 do
    local path = string.format('/-1000/january/01/1200/france/x/y/p%04d', i)
    redis.call('HSET', ARGV[1] .. 'node:' .. path, 'path', path,
               'name', 'p' .. i, 'visibility', 'private',
               'created_by', 'system', 'sort_key', -100000000000 + i)
    redis.call('ZADD', ARGV[1] .. 'idx:time', -100000000000 + i, path)
end
LUA
$redis->cmd('HSET', "${P}node:$path{caesar}", 'visibility', 'public',
            'created_by', 'system');
$redis->cmd('ZADD', "${P}idx:pub:time", -44 * 100000000 + 3151200,
            $path{caesar});
$redis->cmd('SET', "${P}idx:version", 'changed by hand 2');
my $pub = json_body(list(''));
is($pub->{total}, 1, 'the public list past 2100 private nodes: total exact');
is_deeply([ map { $_->{path} } @{ $pub->{items} } ], [ $path{caesar} ],
          'the public list past 2100 private nodes: the public node');
is(json_body(list('offset=1'))->{total}, 1, 'its total at an offset too');

done_testing();
