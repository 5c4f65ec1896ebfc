# GET /api/moments/{path} in the original service's shape (issue 15): every
# column of the original's node, month as the number with month_name, edges
# as {source, target, edge_type, weight, theme, direction, name}; the
# original's unpadded day (/2016/march/9/...) naming the canonical node for
# reads, /publish and /visibility. Then the original's own tests of the
# moment read (tests/test_api_moments.py, tests/test_public_api.py) and of
# the auto-edges (tests/test_edges.py), as HTTP calls, the graph made by
# Flash jobs through the stand-in. The TDF export: t/46-tdf.t.
use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256 sha256_hex);
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

my $P = 'clockchain:{cc}:v1:';

sub moment {
    my ($path, %o) = @_;
    return http(GET => $ng->url(($o{prefix} // '/api/v1/moments') . $path),
                headers => { ($o{nokey} ? () : ('X-Service-Key' => 'test-key-1')),
                             %{ $o{headers} // {} } });
}

sub make { completed_moment($ng, @_) }

# the stand-in's choices for a query (t/flash/standin.py, class Hasher), so
# that a test can pick queries whose scenes share a place or tags
my @LOCATIONS = (
    'Independence Hall, Philadelphia, Pennsylvania, United States',
    'Philadelphia, Pennsylvania, United States',
    "Grossm\x{fc}nster, Z\x{fc}rich, Kanton Z\x{fc}rich, Schweiz",
    "Z\x{fc}rich, Kanton Z\x{fc}rich, Schweiz",
    "Pra\x{e7}a da S\x{e9}, S\x{e3}o Paulo, S\x{e3}o Paulo, Brasil",
    "S\x{e3}o Paulo, S\x{e3}o Paulo, Brasil",
    "Wawel Castle, Krak\x{f3}w, Lesser Poland, Polska",
    "Krak\x{f3}w, Lesser Poland, Polska",
    'Tower of London, London, England, United Kingdom',
    "\x{ce}le de la Cit\x{e9}, Paris, \x{ce}le-de-France, France",
    "Alhambra, Granada, Andaluc\x{ed}a, Espa\x{f1}a",
    "Hagia Sophia, \x{130}stanbul, Marmara, T\x{fc}rkiye",
    'Forbidden City, Beijing, China', 'Kyoto, Japan',
    "Reykjav\x{ed}k, \x{cd}sland", 'Antarctica', 'Atlantic Ocean',
);
my @TAGS = qw(politics war science art religion exploration trade
              revolution architecture music law medicine);

sub sd_num {
    my ($label, $text, $mod) = @_;
    my ($hi, $lo) = unpack 'NN', sha256("$label\0$text");
    return (($hi % $mod) * (4294967296 % $mod) + $lo % $mod) % $mod;
}
sub sd_day { 1 + sd_num('day', $_[0], 28) }
sub sd_location { $LOCATIONS[ sd_num('location', $_[0], scalar @LOCATIONS) ] }
sub sd_tags {
    my ($text) = @_;
    my $n = 2 + sd_num('tags#n', $text, 3);
    my @r = sort { sha256("tags\0$a\0$text") cmp sha256("tags\0$b\0$text") } @TAGS;
    return @r[0 .. $n - 1];
}

# ---------------------------------------------------------------------------
# the shape

my $sys = make('shape probe 1776 one', body => { visibility => 'public' });
my $near = make('shape probe 1776 two');
my $res = moment($sys);
is($res->{status}, 200, 'GET a moment: 200');
my $m = json_body($res) // {};

my @COLUMNS = qw(path type name year month month_num day time country region
    city slug layer visibility created_by tags one_liner figures
    flash_timepoint_id flash_slug flash_share_url era image_url created_at
    published_at source_type confidence source_run_id tdf_hash
    schema_version text_model image_model model_provider
    model_permissiveness generation_id graph_state_hash proposed_by
    challenged_by status);
is_deeply([ sort keys %$m ], [ sort @COLUMNS, 'month_name', 'edges' ],
          "exactly the original's columns, month_name and edges");

my $h = $redis->hash("${P}node:$sys");
my ($mname, $dd) = $sys =~ m{^/-?\d+/([a-z]+)/(\d\d)/};
is($m->{month}, $h->{month_num}, 'month is the number');
like($m->{month}, qr/^\d+$/, '... an integer');
is($m->{month_name}, $mname, 'month_name is the name in the path');
is($m->{month_num}, $m->{month}, 'month_num is kept, as in the original');
is($m->{day}, $dd + 0, 'day an integer');
is($m->{published_at}, '', 'published_at "" until published (public at creation)');
is_deeply([ @$m{qw(source_type schema_version status proposed_by
                   graph_state_hash)} ],
          [ 'historical', '0.2', 'proposed', '', '' ],
          "defaults of the original's generated node");
is_deeply($m->{challenged_by}, [], 'challenged_by []');
ok(!defined $m->{confidence} && !defined $m->{source_run_id},
   'confidence and source_run_id null');
like($m->{tdf_hash} // '', qr/^[0-9a-f]{64}$/, 'tdf_hash: a SHA-256');

# the node's tdf_hash is the original's compute_tdf_hash: ten fields,
# str(v or "").lower().strip(), json.dumps(sort_keys, compact), SHA-256
{
    my @f = qw(city country day month name one_liner region slug time year);
    my %src = (%$m, month => $m->{month_name});
    my $json = '{' . join(',', map {
        my $v = $src{$_};
        $v = '' if !defined $v || $v eq '0';
        $v = lc $v;
        $v =~ s/^\s+|\s+$//g;
        '"' . $_ . '":' . py_string($v)
    } @f) . '}';
    is($m->{tdf_hash}, sha256_hex($json),
       "tdf_hash is compute_tdf_hash's, computed here independently");
}

sub py_string {
    my ($s) = @_;
    my %e = ('"' => '\\"', '\\' => '\\\\', "\n" => '\\n', "\r" => '\\r',
             "\t" => '\\t', "\b" => '\\b', "\f" => '\\f');
    return '"' . join('', map {
        my $c = ord;
        exists $e{$_} ? $e{$_}
        : ($c >= 0x20 && $c <= 0x7e) ? $_
        : $c < 0x10000 ? sprintf('\\u%04x', $c)
        : sprintf('\\u%04x\\u%04x', 0xd800 | (($c - 0x10000) >> 10),
                  0xdc00 | (($c - 0x10000) & 0x3ff))
    } split //, $s) . '"';
}

# edges: each its own source and target; this moment at one end
my @e = @{ $m->{edges} // [] };
ok(@e >= 2, 'the moment has edges (' . scalar(@e) . ')');
my $bad = 0;
for my $e (@e) {
    my @k = sort keys %$e;
    $bad++ unless "@k" eq 'direction edge_type name source target theme weight';
    my $in = ($e->{direction} // '') eq 'incoming';
    $bad++ unless ($in ? $e->{target} : $e->{source}) eq $sys;
    $bad++ unless $e->{weight} =~ /^[\d.]+$/ && !ref $e->{theme};
}
is($bad, 0, 'every edge is {source, target, edge_type, weight, theme, '
            . 'direction, name}, this moment its source out, its target in');
my ($out) = grep { $_->{direction} eq 'outgoing' && $_->{target} eq $near } @e;
my ($in) = grep { $_->{direction} eq 'incoming' && $_->{source} eq $near } @e;
ok($out && $in, 'a moment joined both ways: its edge out and the one back');
is($out && $out->{name}, $redis->cmd('HGET', "${P}node:$near", 'name'),
   "name is the other moment's");
my $stored = $redis->cmd('HGET', "${P}edges:$sys",
                         (($out // {})->{edge_type} // '') . "|$near");
is(($out // {})->{weight}, $stored && JSON::PP::decode_json($stored)->{weight},
   'weight as stored');

# the same on /api/ and /api/v1/
is_deeply(json_body(moment($sys, prefix => '/api/moments')), $m,
          'the same shape under /api/');

# ---------------------------------------------------------------------------
# the unpadded day: a query whose scene falls on day 1-9

my ($q) = grep { sd_day($_) < 10 } map { "unpadded probe $_" } 1 .. 200;
my $pad = make($q, headers => { 'X-User-Id' => 'uma' });
my ($day) = ($pad // '') =~ m{^/-?\d+/[a-z]+/0(\d)/};
ok(defined $day, "'$q' falls on day 0$day");
(my $unpadded = $pad // '') =~ s{^(/-?\d+/[a-z]+/)0(\d)/}{$1$2/};
$res = moment($unpadded);
is($res->{status}, 200, "GET $unpadded: 200");
is((json_body($res) // {})->{path}, $pad,
   '... the node at the canonical path, which the answer shows');
is(moment($unpadded, prefix => '/api/moments')->{status}, 200, '... on /api/ too');
is_error(moment($unpadded, headers => { 'X-User-Id' => 'bob' }), 404,
         'Moment not found', "... its rules too: bob does not see uma's node");

(my $nothing = $unpadded) =~ s{/[^/]+$}{/no-such-moment};
is_error(moment($nothing), 404, 'Moment not found',
         'an unpadded day that names no node: 404');
is_error(moment($nothing, nokey => 1), 404, 'Moment not found', '... without a key');

$res = http(POST => $ng->url("/api/v1/moments$unpadded/publish"),
            json => { visibility => 'public' },
            headers => { 'X-Service-Key' => 'test-key-1', 'X-User-Id' => 'uma' });
is($res->{status}, 200, 'POST {unpadded}/publish: 200');
is_deeply(json_body($res), { path => $pad, visibility => 'public' },
          '... the canonical path published');
is($redis->cmd('HGET', "${P}node:$pad", 'visibility'), 'public', '... it is public');
is(moment($unpadded, nokey => 1)->{status}, 200, '... and read without a key');

$res = http(PATCH => $ng->url("/api/moments$unpadded/visibility"),
            json => { visibility => 'private', user_id => 'uma' },
            headers => { 'X-Service-Key' => 'test-key-1' });
is($res->{status}, 200, 'PATCH {unpadded}/visibility: 200');
is_deeply(json_body($res), { path => $pad, visibility => 'private' },
          '... the canonical path made private');
is(moment($unpadded, nokey => 1)->{status}, 404, '... no longer read without a key');
is_error(http(POST => $ng->url("/api/moments$nothing/publish"),
              headers => { 'X-Service-Key' => 'test-key-1' }),
         404, 'Moment not found', 'publish an unpadded path that names nothing: 404');
ok(!$redis->cmd('EXISTS', "${P}node:" . ($nothing =~ s{^(/-?\d+/[a-z]+/)(\d)/}{${1}0$2/}r)),
   '... and nothing is made there');

# ---------------------------------------------------------------------------
# the original's tests of the moment read, as HTTP calls. Its seed Caesar
# is a Flash job here: the stand-in's "bce" scene (-44 March 15, Rome).

my $caesar = make('[flash:bce] Assassination of Julius Caesar',
                  body => { visibility => 'public' });

# tests/test_api_moments.py::test_get_moment_caesar
$res = moment($caesar);
is($res->{status}, 200, 'test_get_moment_caesar: 200');
$m = json_body($res) // {};
# the stand-in title-cases every word ("Of")
is(lc($m->{name} // ''), 'assassination of julius caesar', 'test_get_moment_caesar: name');
is($m->{year}, -44, 'test_get_moment_caesar: year -44');

# tests/test_api_moments.py::test_get_moment_not_found (an unpadded day)
is(moment('/9999/january/1/0000/x/x/x/nonexistent')->{status}, 404,
   'test_get_moment_not_found: 404');

# tests/test_public_api.py::test_get_moment_no_auth
$res = moment($caesar, nokey => 1);
is($res->{status}, 200, 'test_get_moment_no_auth: 200');
$m = json_body($res) // {};
is(lc($m->{name} // ''), 'assassination of julius caesar', 'test_get_moment_no_auth: name');
is($m->{year}, -44, 'test_get_moment_no_auth: year');

# tests/test_public_api.py::test_get_moment_with_auth
$res = moment($caesar);
is($res->{status}, 200, 'test_get_moment_with_auth: 200');
is(lc((json_body($res) // {})->{name} // ''), 'assassination of julius caesar',
   'test_get_moment_with_auth: name');

# tests/test_public_api.py::test_get_moment_not_found
is(moment('/9999/january/1/0000/x/x/x/nonexistent', nokey => 1)->{status}, 404,
   'test_get_moment_not_found (public): 404');

# tests/test_public_api.py::test_get_moment_edges_included: a public moment
# with a neighbour (the Apollo 11 landing in the original)
my $landing = make('Apollo 11 moon landing 1969', body => { visibility => 'public' });
my $launch = make('Apollo 11 launch 1969', body => { visibility => 'public' });
$res = moment($landing, nokey => 1);
is($res->{status}, 200, 'test_get_moment_edges_included: 200');
ok(exists((json_body($res) // {})->{edges}), 'test_get_moment_edges_included: edges');

# ---------------------------------------------------------------------------
# tests/test_edges.py, checked through the moment's edges. Its graph is its
# seeds; here the nodes are made by jobs first.

sub others {
    my ($path) = @_;
    my $mm = json_body(moment($path)) // {};
    return map { $_->{direction} eq 'incoming' ? $_->{source} : $_->{target} }
           @{ $mm->{edges} // [] };
}

# test_auto_link_contemporaneous: a 1969 event links to the 1969 events
# already there (the landing, and Apollo 12's launch)
my $apollo12 = make('Apollo 12 lightning launch 1969', body => { visibility => 'public' });
my $launch2 = make('Apollo 11 launch day crowd 1969', body => { visibility => 'public' });
my %n = map { $_ => 1 } others($launch2);
ok($n{$landing}, 'test_auto_link_contemporaneous: linked to the moon landing');
ok($n{$apollo12}, 'test_auto_link_contemporaneous: linked to Apollo 12');

# test_auto_link_same_location: two scenes at one place, years apart
{
    my @q = map { "same place probe $_ 1850" } 1 .. 300;
    my ($a) = $q[0];
    my ($b) = grep { sd_location($_) eq sd_location($a) }
              map { "same place probe $_ 1620" } 1 .. 300;
    ok($b, 'a second query at the same place') or diag(sd_location($a));
    my $pa = make($a);
    my $pb = make($b);
    my ($e) = grep { $_->{edge_type} eq 'same_location'
                     && $_->{target} eq $pa && $_->{direction} eq 'outgoing' }
              @{ (json_body(moment($pb)) // {})->{edges} // [] };
    ok($e, 'test_auto_link_same_location: a same_location edge');
}

# test_auto_link_thematic: shared tags, a different year and place
{
    my $a = 'theme probe 1 1702';
    my %ta = map { $_ => 1 } sd_tags($a);
    my ($b) = grep { my $q = $_; grep({ $ta{$_} } sd_tags($q))
                     && sd_location($q) ne sd_location($a) }
              map { "theme probe $_ 1402" } 2 .. 300;
    my $pa = make($a);
    my $pb = make($b);
    my ($e) = grep { $_->{edge_type} eq 'thematic' && $_->{target} eq $pa }
              @{ (json_body(moment($pb)) // {})->{edges} // [] };
    ok($e, 'test_auto_link_thematic: a thematic edge');
    my @common = sort grep { $ta{$_} } sd_tags($b);
    is($e && $e->{theme}, join(', ', @common), '... its theme the shared tags');
}

# test_bidirectional_edges: the edge exists both ways
{
    my ($to) = grep { $_->{direction} eq 'outgoing' && $_->{target} eq $landing }
               @{ (json_body(moment($launch2)) // {})->{edges} // [] };
    ok($to, 'test_bidirectional_edges: new -> moon');
    my ($back) = grep { $_->{direction} eq 'outgoing' && $_->{target} eq $launch2 }
                 @{ (json_body(moment($landing)) // {})->{edges} // [] };
    ok($back, 'test_bidirectional_edges: moon -> new');
}

# as the original prints them (0.3, not jansson's %.17g 0.29999999999999999),
# to a key and to the public, in the answer read from Redis and in the one
# the zone keeps for the public
my @pub = map { make("weight probe 1776 $_", body => { visibility => 'public' }) }
           qw(one two);
for my $try ([ 'with the key', 0 ], [ 'public', 1 ], [ 'public, from the zone', 1 ]) {
    my $r = moment($pub[0], nokey => $try->[1]);
    my @w = ($r->{content} // '') =~ /"weight":([0-9.eE+-]+)/g;
    ok($r->{status} == 200 && @w && !grep({ length > 6 } @w),
       "weights as written, $try->[0] ($r->{status}: "
       . join(' ', sort keys %{{ map { $_ => 1 } @w }}) . ')');
}

# Not ported, with the seeds they need (issue 13): test_invalid_edge_type
# (add_edge), test_browse_only_public, test_search_only_public,
# test_today_only_public (add_node of a private node; browse/search/today
# are tested with their handlers).

done();
