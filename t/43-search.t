# GET /api/search?q=&limit= (issue 15): [{path, name, one_liner, score,
# image_url}], best first: score 1.0 when every word of q starts a word of
# the name, 0.7 of the name or the one-liner, else 0.4 (tags, figures);
# ties by group (public, "system", own) then path. Case- and
# accent-insensitive, word prefixes, limit 1-50 (default 20), as the
# requester may see them (a key alone: every node; with X-User-Id: public,
# "system"'s and their own). The graph comes from Flash jobs through the
# stand-in, so its words are normalised by the runner as in production;
# each answer is checked against what Redis holds, read here.
use strict;
use warnings;
use utf8;
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
        $JOBS_LOCATIONS
        location = /api/search    { clockchain_search; }
        location = /api/v1/search { clockchain_search; }
        location /api/moments/    { clockchain_moments; }
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

sub search {
    my ($query, $who, $prefix) = @_;
    return http(GET => $ng->url(($prefix // '/api/search') . "?$query"),
                headers => hdrs($who // 'service'));
}

sub results { json_body(search(@_)) // [] }

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

# q as a query string: UTF-8 bytes, percent-encoded
sub qs {
    my ($q) = @_;
    my $b = $q;
    utf8::encode($b);
    $b =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return "q=$b";
}

# ---------------------------------------------------------------------------
# the graph: the original's seed moments (tests/conftest.py) as stand-in
# queries (the stand-in takes the year from the query and the month from a
# hash), and private nodes of "system", alice and bob

my %path;
$path{caesar}  = make('Assassination of Julius Caesar 44 BC', 'public');
$path{apollo11} = make('Apollo 11 One Small Step 1969', 'public');
$path{apollo12} = make('Apollo 12 Launch Struck by Lightning 1969', 'public');
$path{trinity} = make('Trinity Test 1945', 'public');
$path{brexit}  = make('Brexit Referendum 2016', 'public');
$path{zurich}  = make('Zürich Café Opening 1920', 'public');
$path{archive} = make('Hidden Archive of Caesar 1850', 'private');
$path{plot}    = make('Secret Caesar Plot 1901', 'private', 'alice');
$path{secret}  = make('Secret Event 2000', 'private', 'bob');

# what search must answer, from the node hashes: the rule above, for query
# words of ASCII letters (Perl's regex then sees words as the module does)
sub expected {
    my ($q, $who) = @_;
    my @w = map { lc } grep { length > 1 } split /[^A-Za-z0-9]+/, $q;
    my @out;
    for my $path (@{ $redis->cmd('ZRANGE', "${P}idx:time", 0, -1) }) {
        my %n = @{ $redis->cmd('HGETALL', "${P}node:$path") };
        utf8::decode($_) for values %n;
        my $g = ($n{visibility} // '') eq 'public' ? 0
              : ($n{created_by} // '') eq 'system' ? 1 : 2;
        next if $who ne 'service' && $g == 2 && $n{created_by} ne $who;
        my @other = map { @{ decode_json(Encode::encode_utf8($n{$_} // '[]')) } }
                    qw(tags figures);
        my $class = 0;
        for my $w (@w) {
            my $re = qr/(?<![\p{L}\p{N}])\Q$w\E/i;
            my $c = ($n{name} // '') =~ $re ? 0
                  : ($n{one_liner} // '') =~ $re ? 1
                  : (grep { $_ =~ $re } @other) ? 2 : undef;
            $class = undef, last unless defined $c;
            $class = $c if $c > $class;
        }
        push @out, [ $path, $class, $g ] if defined $class;
    }
    @out = sort { $a->[1] <=> $b->[1] || $a->[2] <=> $b->[2]
                  || $a->[0] cmp $b->[0] } @out;
    return [ map { "$_->[0] " . (1.0, 0.7, 0.4)[ $_->[1] ] } @out ];
}

sub got {
    return [ map { "$_->{path} " . (0 + $_->{score}) } @{ $_[0] } ];
}

require Encode;

# ---------------------------------------------------------------------------
# the shape

my $res = search('q=caesar');
is($res->{status}, 200, 'search: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
my $r = json_body($res);
is(ref $r, 'ARRAY', 'a list');
is_deeply([ sort keys %{ $r->[0] // {} } ],
          [qw(image_url name one_liner path score)],
          'each result: path, name, one_liner, score, image_url');
like($r->[0]{image_url} // '', qr{^https://images\.example/}, 'image_url');
is(search('q=caesar', undef, '/api/v1/search')->{status}, 200,
   '/api/v1/search');

# the ranking, for each caller, against what Redis holds
for my $q ('caesar', 'apollo', 'julius caesar', 'secret', 'apo', 'music',
           'trinity', 'on', 'hypatia', 'apollo 12') {
    for my $who ('service', 'alice', 'bob', 'carol') {
        is_deeply(got(results(qs($q), $who)), expected($q, $who),
                  "q=$q as $who: the nodes, scores and order Redis implies");
    }
}

ok(scalar(@{ expected('caesar', 'service') }) >= 5,
   'caesar: name, one-liner and figure matches to rank');
my @s = map { $_->{score} } @{ results('q=caesar') };
is_deeply(\@s, [ sort { $b <=> $a } @s ], 'best first');
ok((grep { $_ == 1 } @s) && (grep { $_ < 1 } @s), 'several scores');

# who sees what
my %in = map { $_->{path} => 1 } @{ results('q=caesar', 'carol') };
ok($in{ $path{archive} }, 'a user sees a private node of "system"');
ok(!$in{ $path{plot} }, "carol does not see alice's private node");
%in = map { $_->{path} => 1 } @{ results('q=caesar', 'alice') };
ok($in{ $path{plot} }, 'alice sees her own');
%in = map { $_->{path} => 1 } @{ results('q=caesar') };
ok($in{ $path{plot} } && $in{ $path{archive} }, 'the service sees every node');

# case, accents, word prefixes
is_deeply(got(results(qs('ZÜRICH'))), got(results('q=zurich')),
          'ZÜRICH and zurich find the same');
is(results('q=zurich')->[0]{path}, $path{zurich}, 'zurich finds Zürich');
is(results(qs('CAFÉ'))->[0]{path}, $path{zurich}, 'CAFÉ finds Café');
is(results('q=caf')->[0]{path}, $path{zurich}, 'caf: a word prefix');
is(results('q=Ca%CC%81fe')->[0]{path}, $path{zurich},
   'a decomposed é (e + U+0301) finds Café');
is_deeply(results('q=ollo'), [], 'ollo: not the start of a word, nothing');
is_deeply(results('q=caesarx'), [], 'a word longer than any: nothing');
is_deeply(results('q=a'), [], 'words of one letter: nothing to look up');
is_deeply(got(results('q=caesar+caesar')), got(results('q=caesar')),
          'a word twice is the word once');
is_deeply(got(results('q=Caesar,%20JULIUS!')),
          got(results('q=julius%20caesar')),
          'punctuation separates words, their order does not matter');

# limit
is(scalar @{ results('q=caesar&limit=1') }, 1, 'limit=1: one result');
is(results('q=caesar&limit=1')->[0]{path}, results('q=caesar')->[0]{path},
   'limit=1: the best one');
my $all = scalar @{ expected('on', 'service') };
ok($all > 2, "q=on matches $all nodes");
is(scalar @{ results('q=on&limit=2') }, 2, 'limit=2: two');
is(scalar @{ results('q=on&limit=50') }, $all, 'limit=50: all of them');

# errors: 401, then 400 naming the parameter; nothing is looked up
is_error(http(GET => $ng->url('/api/search?q=caesar')), 401, undef,
         'no key: 401');
is_error(http(GET => $ng->url('/api/search?q=caesar'),
              headers => { 'X-Service-Key' => 'wrong' }), 401, undef,
         'a wrong key: 401');
is_error(search(''), 400, qr/^q: required/, 'q missing: 400');
is_error(search('q='), 400, qr/^q: required/, 'q empty: 400');
is_error(search('q=' . ('a' x 201)), 400,
         'q: must be UTF-8 text of at most 200 bytes, no control character', 'q of 201 bytes: 400');
is(search('q=' . ('a' x 200))->{status}, 200, 'q of 200 bytes: 200');
is_error(search('q=%FF%FE'), 400, qr/^q: must be UTF-8/, 'q not UTF-8: 400');
is_error(search('q=a%00b'), 400, qr/^q: must be/, 'q with a NUL: 400');
is_error(search('q=' . join('+', map { "w$_" } 1 .. 9)), 400,
         'q: must be at most 8 words', 'nine words: 400');
is(search('q=' . join('+', map { "w$_" } 1 .. 8))->{status}, 200,
   'eight words: 200');
for my $l ('0', '51', '-1', 'x', '', '1000000000000') {
    is_error(search("q=caesar&limit=$l"), 400,
             'limit: must be an integer from 1 to 50', "limit=$l: 400");
}
is_error(http(POST => $ng->url('/api/search?q=caesar'), headers => hdrs('service')),
         405, undef, 'POST: 405');
is_error(search('q=caesar', ''), 400, qr/X-User-Id/, 'an empty X-User-Id: 400');

# ---------------------------------------------------------------------------
# the original's tests of search, as HTTP calls

# tests/test_api_moments.py test_search_caesar
$r = results('q=caesar');
ok(@$r >= 1 && $r->[0]{name} =~ /Caesar/, 'test_api_moments search_caesar');
# tests/test_graph.py test_search_caesar (the stand-in title-cases the
# query: "Of", "BC")
is($r->[0]{name}, 'Assassination Of Julius Caesar 44 BC',
   'test_graph search_caesar: the assassination first');
# tests/test_api_moments.py test_search_trinity
ok(@{ results('q=trinity') } >= 1, 'test_api_moments search_trinity');
# tests/test_graph.py test_search_apollo
ok(@{ results('q=apollo') } >= 2, 'test_graph search_apollo');
# tests/test_edges.py test_search_only_public: a private node of another
# is not found (the original searches public nodes only; here who sees
# what decides, and bob sees his own)
is_deeply(results('q=secret+event', 'carol'), [],
          'test_edges search_only_public');
is(results('q=secret+event', 'bob')->[0]{path}, $path{secret},
   'bob finds his own private node');

# ---------------------------------------------------------------------------
# visibility changes move a node in the index at once

sub vis {
    my ($path, $v, $who) = @_;
    return http(PATCH => $ng->url("/api/moments$path/visibility"),
                headers => hdrs($who), json => { visibility => $v });
}

is(vis($path{plot}, 'public', 'alice')->{status}, 200, 'alice publishes');
%in = map { $_->{path} => 1 } @{ results('q=caesar', 'carol') };
ok($in{ $path{plot} }, 'carol finds it once public');
is_deeply(got(results('q=caesar', 'carol')), expected('caesar', 'carol'),
          'and in its place: public now');
is(vis($path{plot}, 'private', 'alice')->{status}, 200, 'alice hides it');
%in = map { $_->{path} => 1 } @{ results('q=caesar', 'carol') };
ok(!$in{ $path{plot} }, 'carol no longer finds it');
is_deeply(got(results('q=caesar', 'alice')), expected('caesar', 'alice'),
          'alice still does, in its place');
is(vis($path{archive}, 'public', undef)->{status}, 401, 'sanity: a key needed');
is(vis($path{archive}, 'public', 'service')->{status}, 200,
   'the service publishes the system node');
is_deeply(got(results('q=caesar', 'carol')), expected('caesar', 'carol'),
          'carol: the system node moved to the public group');

# ---------------------------------------------------------------------------
# the same moment generated again: its words replaced, not added

my $n = $redis->cmd('ZCARD', "${P}idx:w:assassi");
is(make('Assassination of Julius Caesar 44 BC', 'public'), $path{caesar},
   'the same query again: the same node');
is($redis->cmd('ZCARD', "${P}idx:w:assassi"), $n,
   'its words are indexed once');
is(scalar(grep { $_->{path} eq $path{caesar} } @{ results('q=caesar') }), 1,
   'and found once');

# HEAD
$res = http(HEAD => $ng->url('/api/search?q=caesar'), headers => hdrs('service'));
is($res->{status}, 200, 'HEAD: 200');

done_testing();
