# Seeds (clockchain_seed_file, issue 16 item 2): the original service's
# data/seeds.jsonl (t/data/original-seeds.jsonl, byte for byte) seeded
# into Redis once, by seed.lua, with the indexes a Flash completion writes
# and no auto-edges.
#
# - the nodes and edges are what the original's _seed_from_jsonl() builds
#   (app/core/db.py), field by field, at canonical paths (AlphaGo's day 9
#   is "09", in its id and at the end of the microprocessor's edge);
# - browse, search, the list, the moment and neighbours find them;
# - two nginx started at once on one Redis seed once; a restart, even
#   after a seeded node was deleted, seeds nothing;
# - nginx -t names the line of a file it cannot seed, and what is wrong;
# - the original's tests that need its seed data (test_graph.py
#   test_load_seeds, the 5 nodes and 3 edges of test_public_api.py and
#   test_api_moments.py), as HTTP calls.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use FindBin;
use Time::HiRes qw(sleep);
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my $SEEDS = "$FindBin::Bin/data/original-seeds.jsonl";
my $JSON = JSON::PP->new->canonical;

open my $fh, '<', $SEEDS or die "$SEEDS: $!";
my @records = map { decode_json($_) } grep { /\S/ } <$fh>;
close $fh;
is(scalar @records, 5, 'the original seeds file: five records');

sub canonical { $_[0] =~ s{^(/-?\d+/[a-z]+/)(\d)/}{${1}0$2/}r }

my $CONF = <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_seed_file $SEEDS;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /api/v1/moments        { clockchain_moments_list; }
        location /api/v1/moments/         { clockchain_moments; }
        location = /api/v1/stats          { clockchain_stats; }
        location /api/v1/graph/neighbors/ { clockchain_graph_neighbors; }
        location = /api/v1/search         { clockchain_search; }
        location /api/v1/browse           { clockchain_browse; }
    }
CONF

my $redis = start_redis();

# --- two nginx of a fleet start at once on one Redis: one seeds ----------

my @ng = map { start_nginx(redis => $redis, conf => $CONF) } 1 .. 2;

sub seeded_lines {
    my @n = map { scalar(() = $_->error_log =~ /\[notice\].*clockchain: seeded 5 nodes and 3 edges from/g) } @_;
    my @a = map { scalar(() = $_->error_log =~ /\[info\].*clockchain: the graph was already seeded/g) } @_;
    my $s = 0;
    $s += $_ for @n;
    my $t = 0;
    $t += $_ for @a;
    return ($s, $t);
}

ok(wait_for(10, sub { my ($x, $y) = seeded_lines(@ng); $x + $y >= 2 }),
   'both nginx tried to seed');
my ($nseeded, $nalready) = seeded_lines(@ng);
is($nseeded, 1, 'exactly one of them seeded: "seeded 5 nodes and 3 edges" once');
is($nalready, 1, 'the other found the graph seeded: "already seeded" once');
like($redis->cmd('GET', "${P}seeded"), qr/^5 nodes 3 edges \d{4}-/,
     'the marker says what was seeded');

# --- the nodes, field by field, as the original's _seed_from_jsonl() -----

# its columns from the payload, with its defaults; provenance and record
my %dflt = (type => 'event', name => '', layer => 0, visibility => 'private',
            created_by => 'system', one_liner => '', schema_version => '0.2',
            text_model => '', image_model => '', model_provider => '',
            model_permissiveness => 'unknown');

my %path;
for my $rec (@records) {
    my $pl = $rec->{payload};
    my $path = canonical($rec->{id});
    $path{ $pl->{slug} } = $path;
    my %got = @{ $redis->cmd('HGETALL', "${P}node:$path") };
    ok(%got, "$pl->{slug}: a node at $path") or next;

    my %want = (
        path => $path,
        (map { $_ => $pl->{$_} // $dflt{$_} } keys %dflt),
        (map { $_ => $pl->{$_} } qw(year month_num day month time country
                                    region city slug)),
        tags => $JSON->encode($pl->{tags}),
        figures => $JSON->encode($pl->{figures}),
        confidence => $rec->{provenance}{confidence},
        created_at => $rec->{timestamp} =~ s/Z$/.000000Z/r,
        tdf_hash => $rec->{tdf_hash},
        sort_key => $pl->{year} * 100000000 + $pl->{month_num} * 1000000
                    + $pl->{day} * 10000 + $pl->{time},
    );
    $got{$_} = $JSON->encode(decode_json($got{$_})) for qw(tags figures);
    $want{confidence} += 0;
    $got{confidence} += 0 if defined $got{confidence};
    is_deeply(\%got, \%want, "$pl->{slug}: every field as the original's")
        or diag($JSON->encode(\%got));
}
is($path{'alphago-move-37'},
   '/2016/march/09/1530/south-korea/seoul/seoul/alphago-move-37',
   "AlphaGo's unpadded day is 09 in its path");

# the edges: the three of the payloads, from their record's node, as the
# original's edges table holds them (created_by its default, "auto")
my @edges;
for my $k (sort @{ $redis->cmd('KEYS', "${P}edges:*") }) {
    my %h = @{ $redis->cmd('HGETALL', $k) };
    push @edges, map { [ $_, decode_json($h{$_}) ] } sort keys %h;
}
my @want_edges;
for my $rec (@records) {
    for my $e (@{ $rec->{payload}{edges} // [] }) {
        push @want_edges, [
            "$e->{type}|" . canonical($e->{target}),
            { source => canonical($rec->{id}), target => canonical($e->{target}),
              type => $e->{type}, weight => $e->{weight}, theme => $e->{theme},
              description => $e->{description}, schema_version => '0.2',
              created_by => 'auto' } ];
    }
}
is_deeply([ sort { $a->[0] cmp $b->[0] } @edges ],
          [ sort { $a->[0] cmp $b->[0] } @want_edges ],
          'the three edges, and nothing else: no auto-edges');

# --- the original's tests that need its seed data --------------------------

sub get {
    my ($uri, $key, $ng) = @_;
    return http(GET => ($ng // $ng[0])->url($uri),
                headers => $key ? { 'X-Service-Key' => $key } : {});
}

# test_graph.py test_load_seeds; test_public_api.py test_stats_with_auth;
# test_api_moments.py test_stats
for my $n (0, 1) {
    my $d = json_ok(get('/api/v1/stats', $SK, $ng[$n]), "stats on nginx $n");
    is($d->{total_nodes}, 5, "test_load_seeds / test_stats: 5 nodes ($n)");
    is($d->{total_edges}, 3, "test_load_seeds / test_stats: 3 edges ($n)");
}
my $d = json_ok(get('/api/v1/stats', $SK), 'stats');
is_deeply($d->{edge_type_counts}, { influences => 1, same_era => 1,
                                    precedes => 1 },
          'test_stats: the edge types counted');
is_deeply($d->{layer_counts}, { 1 => 5 }, 'test_stats: five of layer 1');

# browse (test_api_moments.py test_browse_root, test_browse_year)
$d = json_ok(get('/api/v1/browse', $SK), 'test_browse_root');
my %seg = map { $_->{segment} => $_->{count} } @{ $d->{items} };
is_deeply(\%seg, { -44 => 1, 1969 => 2, 1971 => 1, 2016 => 1 },
          'test_browse_root: the four years, and their counts');
$d = json_ok(get('/api/v1/browse/1969', $SK), 'test_browse_year');
%seg = map { $_->{segment} => $_->{count} } @{ $d->{items} };
is_deeply(\%seg, { july => 1, november => 1 }, 'test_browse_year: july, november');
$d = json_ok(get('/api/v1/browse/2016/march', $SK), 'browse a seeded day');
%seg = map { $_->{segment} => $_->{count} } @{ $d->{items} };
is_deeply(\%seg, { '09' => 1 }, '... under its canonical day');

# search (test_api_moments.py test_search_caesar)
$d = json_ok(get('/api/v1/search?q=caesar', $SK), 'test_search_caesar');
my @r = @$d;
is($r[0]{name}, 'Assassination of Julius Caesar', 'test_search_caesar: first');
$d = json_ok(get('/api/v1/search?q=apollo', $SK), 'test_search_apollo');
@r = @$d;
is(scalar @r, 2, 'test_search_apollo: both Apollo missions');
$d = json_ok(get('/api/v1/search?q=hassabis', $SK), 'search a figure');
@r = @$d;
is($r[0]{name}, 'AlphaGo Move 37', '... finds AlphaGo by a figure');

# the list (test_public_api.py test_list_moments_no_auth, _with_query)
$d = json_ok(get('/api/v1/moments?limit=5'), 'test_list_moments_no_auth');
is($d->{total}, 5, 'test_list_moments_no_auth: the five public seeds');
is(scalar @{ $d->{items} }, 5, '... five items');
$d = json_ok(get('/api/v1/moments?q=caesar'), 'test_list_moments_with_query');
ok((grep { $_->{name} =~ /Caesar/ } @{ $d->{items} }),
   'test_list_moments_with_query: Caesar');

# the moment (test_public_api.py test_get_moment_no_auth), and by the
# original's unpadded path
$d = json_ok(get("/api/v1/moments$path{'assassination-of-julius-caesar'}"),
             'test_get_moment_no_auth');
is($d->{name}, 'Assassination of Julius Caesar', 'test_get_moment_no_auth: name');
is($d->{year}, -44, 'test_get_moment_no_auth: year');
is($d->{tdf_hash}, $records[0]{tdf_hash}, "... the record's tdf_hash");
$d = json_ok(get('/api/v1/moments/2016/march/9/1530/south-korea/seoul/seoul/alphago-move-37'),
             'AlphaGo by its unpadded path');
is($d->{name}, 'AlphaGo Move 37', '... found');

# neighbours (test_api_moments.py test_neighbors): the seed edges, the
# one out and the one in (the original's get_neighbors lists both)
my $res = get("/api/v1/graph/neighbors$path{'apollo-11-moon-landing'}", $SK);
is($res->{status}, 200, 'test_neighbors: 200');
my @nb = @{ json_body($res) // [] };
is_deeply([ sort map { "$_->{path} $_->{edge_type}" } @nb ],
          [ "$path{'apollo-12-lightning-launch'} precedes",
            "$path{'apollo-12-lightning-launch'} same_era" ],
          'test_neighbors: Apollo 12, by the seed edges, nothing automatic');
$d = json_ok(get("/api/v1/moments$path{'invention-of-the-microprocessor'}", $SK),
             'the microprocessor');
is_deeply([ map { "$_->{edge_type} $_->{target}" } @{ $d->{edges} // [] } ],
          [ "influences $path{'alphago-move-37'}" ],
          '... its edge ends at the canonical path')
    or diag($JSON->encode($d->{edges}));

# --- a restart seeds nothing, even with a seeded node gone ----------------

$redis->cmd('DEL', "${P}node:$path{'alphago-move-37'}");
ok($ng[1]->stop, 'the second nginx stops');
my $ng3 = start_nginx(redis => $redis, conf => $CONF);
ok(wait_for(10, sub { $ng3->error_log =~ /already seeded/ }),
   'a restarted nginx finds the graph seeded');
unlike($ng3->error_log, qr/clockchain: seeded/, '... and seeds nothing');
is($redis->cmd('EXISTS', "${P}node:$path{'alphago-move-37'}"), 0,
   '... the deleted node stays deleted');

# --- Redis down when nginx starts: seeded once it is reached --------------

my $late = start_redis();
$late->stop;
my $ng4 = start_nginx(redis => $late, conf => $CONF);
ok(wait_for(10, sub { $ng4->error_log =~ /could not connect to redis/ }),
   'an nginx whose Redis is down starts');
unlike($ng4->error_log, qr/clockchain: seeded/, '... and has not seeded');
$late->start;
ok(wait_for(15, sub { $ng4->error_log =~ /clockchain: seeded 5 nodes and 3 edges/ }),
   'Redis back: the graph is seeded');
is($late->cmd('HGET', "${P}stats", 'nodes'), 5, '... five nodes');

# --- nginx -t: a file it cannot seed, with its line and what is wrong -----

my ($caesar) = grep { /caesar/ } do { open my $f, '<', $SEEDS; <$f> };
chomp $caesar;
my $unpadded = $caesar =~ s{/-44/march/15/}{/-44/march/5/}gr =~ s/"day":15/"day":5/r;

my @bad = (
    [ 'bad JSON', "$caesar\n{\"id\": \n", qr/line 2: not JSON/ ],
    [ 'no id', "$caesar\n\n" . ($caesar =~ s/"id":"[^"]*",//r),
      qr/line 3: "id" is missing/ ],
    [ 'a path that cannot be canonical',
      $caesar =~ s{/-44/march/15/1030/}{/-44/marchy/15/1030/}r,
      qr{line 1: "id" "/-44/marchy/15/1030/italy/lazio/rome/assassination-of-julius-caesar" is not a moment's path} ],
    [ 'a day of 32', $caesar =~ s{/march/15/}{/march/32/}r,
      qr/line 1: "id" .* is not a moment's path/ ],
    [ 'a wrong type', $caesar =~ s/"layer":1/"layer":"one"/r,
      qr/line 1: "payload.layer" must be an integer/ ],
    [ 'tags not a list', $caesar =~ s/"tags":\[[^]]*\]/"tags":"politics"/r,
      qr/line 1: "payload.tags" must be a list/ ],
    [ 'a year that is not the path\'s', $caesar =~ s/"year":-44/"year":44/r,
      qr/line 1: "payload.year" must be the integer -44, as in the id/ ],
    [ 'an unknown edge type',
      "$caesar\n" . ($caesar =~ s/"figures"/"edges":[{"target":"\/-44\/march\/15\/1030\/italy\/lazio\/rome\/assassination-of-julius-caesar","type":"rivals"}],"figures"/r
                            =~ s/assassination-of-julius-caesar"/x"/r =~ s/"slug":"assassination-of-julius-caesar"/"slug":"x"/r),
      qr/line 2: edge 0: "type" must be one of the twelve/ ],
    [ 'an edge to no record',
      $caesar =~ s/"figures"/"edges":[{"target":"\/1969\/july\/20\/2056\/us\/fl\/cc\/nothing","type":"causes"}],"figures"/r,
      qr{line 1: edge to "/1969/july/20/2056/us/fl/cc/nothing": no record has that id} ],
    [ 'an id twice', "$caesar\n$caesar\n", qr/line 2: "id" .* is also on line 1/ ],
    [ 'a bad timestamp', $caesar =~ s/"timestamp":"[^"]*"/"timestamp":"yesterday"/r,
      qr/line 1: "timestamp" must be a UTC time/ ],
    [ 'an empty file', "\n\n", qr/: no records/ ],
);

for my $b (@bad) {
    my ($name, $text, $re) = @$b;
    my $out = nginx_t_fail(
        name => $name,
        files => { 'conf/seeds.jsonl' => $text },
        conf => $CONF =~ s{clockchain_seed_file \S+;}{clockchain_seed_file seeds.jsonl;}r);
    like($out, qr/\[emerg\].*invalid seeds file "[^"]*seeds.jsonl"/,
         "$name: an [emerg] naming the file");
    like($out, $re, "$name: says where and what") or diag($out);
}

# the unpadded day is made canonical, not refused
my ($rc, $out) = nginx_t(files => { 'conf/seeds.jsonl' => $unpadded },
                         conf => $CONF =~ s{clockchain_seed_file \S+;}{clockchain_seed_file seeds.jsonl;}r);
is($rc, 0, 'an unpadded day passes nginx -t') or diag($out);

done();
