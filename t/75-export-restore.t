# Export and restore (issue 16 item 4): the whole graph out as JSONL, a TDF
# record a line (GET /api/export, ./build.sh export), and back in
# (POST /api/restore, ./build.sh import), writing exactly the nodes and
# edges exported, with no auto-edges.
#
# - round trip: a graph of seeds, Flash completions (with their auto-edges
#   both ways), a published node and a user's private one; export, FLUSHALL,
#   restore, export again: the same bytes; every node's hash and search
#   words, every edge, the counters, and what browse, search, the list,
#   neighbours and each moment answer are the same too;
# - the export pages (X-Clockchain-Next) whatever the page size, and two
#   exports of one graph are byte-identical;
# - a restore into a graph that has some of the nodes keeps those as they
#   are (as seeds do: a restore adds, never overwrites) and writes the rest;
# - a bad chunk is a 400 naming its line, and writes nothing; the keys, the
#   method, the body limit and a bad cursor are refused.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use FindBin;
use File::Temp qw(tempdir);
use Clockchain::Test;

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my $AK = 'admin-key';
my $SEEDS = "$FindBin::Bin/data/original-seeds.jsonl";
my $ROOT = "$FindBin::Bin/..";
my $JSON = JSON::PP->new->canonical;

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_seed_file $SEEDS;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /api/moments        { clockchain_moments_list; }
        location /api/moments/         { clockchain_moments; }
        location /api/graph/neighbors/ { clockchain_graph_neighbors; }
        location = /api/search         { clockchain_search; }
        location /api/browse           { clockchain_browse; }
        location = /api/stats          { clockchain_stats; }
        location = /api/export         { clockchain_export; }
        location = /api/restore {
            clockchain_restore;
            clockchain_max_body_size 64k;
        }
    }
CONF

my %ADMIN = ('X-Service-Key' => $SK, 'X-Admin-Key' => $AK);

ok(wait_for(10, sub { $redis->cmd('GET', "${P}seeded") }), 'seeded');

# --- a graph: seeds, Flash completions, a public and a private node ----

my $pub = completed_moment($ng, 'Export probe: the salon of 1848');
my $priv = completed_moment($ng, 'Export probe: a private letter of 1849',
                            headers => { 'X-User-Id' => 'tess' });
my $third = completed_moment($ng, 'Export probe: the fair of 1851');
ok($pub && $priv && $third, 'three Flash moments') or BAIL_OUT('no moments');

is(http(POST => $ng->url("/api/moments$pub/publish"),
        headers => { 'X-Service-Key' => $SK }, json => {})->{status},
   200, 'one published');

my $n_nodes = $redis->cmd('ZCARD', "${P}idx:time");
is($n_nodes, 8, 'five seeds and three moments');
ok(scalar @{ $redis->cmd('HKEYS', "${P}edges:$pub") } >= 2,
   'the Flash moments have auto-edges');

sub export_http {
    my (%o) = @_;
    my ($after, $all, $pages) = ('', '', 0);
    while (1) {
        my $q = "?limit=$o{limit}"
              . ($after ne '' ? '&after=' . uri_escape($after) : '');
        my $res = http(GET => $ng->url("/api/export$q"), headers => \%ADMIN);
        return (undef, "$res->{status} $res->{content}")
            unless $res->{status} == 200;
        $all .= $res->{content};
        $pages++;
        my $next = $res->{headers}{'x-clockchain-next'};
        last unless defined $next;
        $after = $next;
    }
    return ($all, $pages);
}

sub uri_escape { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~\/])/sprintf('%%%02X', ord $1)/ge; $s }

my $tmp = tempdir('cc-export-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub build_sh {
    my ($cmd, @args) = @_;
    local $ENV{CLOCKCHAIN_URL} = $ng->url('');
    local $ENV{SERVICE_API_KEY} = $SK;
    local $ENV{ADMIN_API_KEY} = $AK;
    my $out = `cd $ROOT && ./build.sh $cmd @args 2>&1`;
    return ($? >> 8, $out);
}

my ($one, $pages1) = export_http(limit => 1000);
my ($two, $pages3) = export_http(limit => 3);
ok(defined $one, 'the export answers') or diag($pages1);
is($pages1, 1, 'one page of 1000');
is($pages3, 3, 'three pages of 3');
is($two, $one, 'the same bytes, paged or not');

my @lines = split /\n/, $one;
is(scalar @lines, $n_nodes, 'a line a node');
my @recs = map { decode_json($_) } @lines;
is_deeply([ map { $_->{id} } @recs ], $redis->cmd('ZRANGE', "${P}idx:time", 0, -1),
          'nodes in idx:time order');
is_deeply([ sort keys %{ $recs[0] } ],
          [ qw(entity_ids id payload provenance source tdf_hash timestamp version) ],
          'TDF records');

my ($rec_pub) = grep { $_->{id} eq $pub } @recs;
my @types = map { "$_->{type}|$_->{target}" } @{ $rec_pub->{payload}{edges} };
is_deeply(\@types, [ sort @types ], 'edges sorted by type|target');
is(scalar @types, scalar @{ $redis->cmd('HKEYS', "${P}edges:$pub") },
   'every edge the node holds');
is($rec_pub->{payload}{visibility}, 'public', 'the published node is public');
my ($rec_priv) = grep { $_->{id} eq $priv } @recs;
is($rec_priv->{payload}{visibility}, 'private', 'the private node is private');
is($rec_priv->{payload}{created_by}, 'tess', 'and its creator');

my ($rc, $out) = build_sh('export', "$tmp/a.jsonl");
is($rc, 0, './build.sh export FILE') or diag($out);
is(slurp("$tmp/a.jsonl"), $one, 'the file is the export');

sub slurp { open my $fh, '<', $_[0] or return ''; local $/; <$fh> }

# --- what the graph answers, to compare after the restore -----------------

my @paths = @{ $redis->cmd('ZRANGE', "${P}idx:time", 0, -1) };

sub reads {
    my %r;
    my %who = (service => { 'X-Service-Key' => $SK },
               tess => { 'X-Service-Key' => $SK, 'X-User-Id' => 'tess' },
               public => {});
    for my $w (sort keys %who) {
        for my $u ('/api/browse', '/api/browse/1848', '/api/search?q=export',
                   '/api/search?q=caesar', '/api/moments?limit=50',
                   '/api/stats')
        {
            my $res = http(GET => $ng->url($u), headers => $who{$w});
            my $c = $res->{content};
            # stats' counters come in the order of the stats hash
            $c = $JSON->encode(decode_json($c)) if $u eq '/api/stats';
            $r{"$w $u"} = "$res->{status} $c";
        }
        for my $p (@paths) {
            for my $u ("/api/moments$p", "/api/moments$p?format=tdf",
                       "/api/graph/neighbors$p")
            {
                my $res = http(GET => $ng->url($u), headers => $who{$w});
                my $c = $res->{content};
                # a node's fields and its edges come in the order of its
                # hashes, which is the order they were written in: compare
                # what they say (the list, browse and search have an order)
                if ($res->{status} == 200) {
                    my $d = decode_json($c);
                    $d = [ sort map { $JSON->encode($_) } @$d ]
                        if ref $d eq 'ARRAY';
                    $d->{edges} = [ sort map { $JSON->encode($_) }
                                         @{ $d->{edges} } ]
                        if ref $d eq 'HASH' && $d->{edges};
                    $c = $JSON->encode($d);
                }
                $r{"$w $u"} = "$res->{status} $c";
            }
        }
    }
    # stats has last_updated, a node's created_at: restored as it was
    return \%r;
}

sub store {
    my %s;
    for my $p (@paths) {
        my %h = @{ $redis->cmd('HGETALL', "${P}node:$p") };
        for my $k (keys %h) {
            # lists are JSON: compare what they say, not how cjson spells it
            $h{$k} = $JSON->encode(decode_json($h{$k})) if $h{$k} =~ /^\[/;
        }
        $s{"node $p"} = $JSON->encode(\%h);
        $s{"words $p"} = $redis->cmd('GET', "${P}words:$p");
        my %e = @{ $redis->cmd('HGETALL', "${P}edges:$p") };
        $s{"edges $p"} = $JSON->encode({ map { $_ => decode_json($e{$_}) } keys %e });
    }
    my %st = @{ $redis->cmd('HGETALL', "${P}stats") };
    $s{stats} = $JSON->encode(\%st);
    $s{pub} = join ',', @{ $redis->cmd('ZRANGE', "${P}idx:pub:time", 0, -1) };
    return \%s;
}

my $reads = reads();
my $store = store();

# --- round trip: export, FLUSHALL, restore, export ------------------------

$redis->cmd('FLUSHALL');
is($redis->cmd('DBSIZE'), 0, 'flushed');

{
    local $ENV{CHUNK_BYTES} = 9000;
    ($rc, $out) = build_sh('import', "$tmp/a.jsonl");
}
is($rc, 0, './build.sh import FILE') or diag($out);
my $chunks = () = $out =~ /chunk \d+ \(from line/g;
ok($chunks >= 2, "in chunks within the limit ($chunks)") or diag($out);
like($out, qr/imported .* in $chunks chunks/, 'it says so');

my ($again) = export_http(limit => 1000);
is($again, $one, 'export -> flush -> restore -> export: byte-identical');

is_deeply(store(), $store,
          'every node hash, its words, its edges, the counters and the '
          . 'public list as before');
is_deeply(reads(), $reads,
          'browse, search, the list, stats, moments and neighbours answer '
          . 'as before');
is($redis->cmd('GET', "${P}seeded"), undef,
   'a restore sets no seeds marker');

# --- a restore into a graph that has some of the nodes --------------------

$redis->cmd('FLUSHALL');
my $changed = $lines[1] =~ s/"name":"[^"]*"/"name":"Kept as it was"/r;
my $res = http(POST => $ng->url('/api/restore'), headers => \%ADMIN,
               body => "$lines[0]\n$changed\n");
is($res->{status}, 200, 'two nodes restored first');
my $d = decode_json($res->{content});
is($d->{nodes_written}, 2, 'two nodes written');

($rc, $out) = build_sh('import', "$tmp/a.jsonl");
is($rc, 0, 'then the whole export') or diag($out);
is(decode_json(($out =~ /chunk 1 \(from line 1\): (\{.*\})/)[0])->{nodes_written},
   $n_nodes - 2, 'the nodes already there are not written again');
is($redis->cmd('HGET', "${P}node:$recs[1]{id}", 'name'), 'Kept as it was',
   'a node already there is kept as it is, not overwritten');
my ($mixed) = export_http(limit => 1000);
my @m = split /\n/, $mixed;
is(scalar @m, $n_nodes, 'every node is there');
is_deeply([ @m[0, 2 .. $#m] ], [ @lines[0, 2 .. $#lines] ],
          'and the others as exported');

# the same file again: nothing more
($rc, $out) = build_sh('import', "$tmp/a.jsonl");
like($out, qr/"nodes_written":0/, 'again: no node written');
like($out, qr/"edges_written":0/, 'and no edge');

# --- bad chunks write nothing ---------------------------------------------

$redis->cmd('FLUSHALL');

sub no_write {
    my ($name, $body, $status, $re) = @_;
    my $res = http(POST => $ng->url('/api/restore'),
                   headers => { %ADMIN, 'Content-Type' => 'application/x-ndjson' },
                   body => $body);
    is($res->{status}, $status, "$name: $status");
    like($res->{content}, $re, "$name: says why") if $re;
    is($redis->cmd('DBSIZE'), 0, "$name: nothing written");
}

my ($with_edge) = grep { /"type":"influences"/ } @lines;
my $bad_type = $with_edge =~ s/"type":"influences"/"type":"inspires"/r;
no_write('an unknown edge type on line 2', "$lines[0]\n$bad_type\n", 400,
         qr/line 2: edge \d+: \\"type\\" must be one of the twelve/);
no_write('not JSON on line 3', "$lines[0]\n$lines[1]\n{\"id\":\n", 400,
         qr/line 3: not JSON/);
my $bad_path = $lines[2] =~ s/"id":"[^"]*"/"id":"\/nowhere"/r;
no_write('a path that cannot be canonical on line 1', "$bad_path\n", 400,
         qr/line 1: \\"id\\" \\"\/nowhere\\" is not a moment's path/);
no_write('an id twice', "$lines[0]\n$lines[0]\n", 400,
         qr/line 2: \\"id\\" .* is also on line 1/);
my $bad_field = $lines[0] =~ s/"payload":\{/"payload":{"mood":{"a":1},/r;
no_write('a field that is not a string, number or list', "$bad_field\n", 400,
         qr/line 1: \\"payload.mood\\" must be a string, a number or a list/);
no_write('an empty chunk', "\n\n", 400, qr/no records/);
no_write('over the body limit', ("$lines[0]\n" x 200), 413,
         qr/clockchain_max_body_size/);

# a bad line in a file: the import names it in the file, and stops there
open my $fh, '>', "$tmp/bad.jsonl" or die;
print {$fh} join("\n", @lines[0 .. 2], $bad_type, @lines[3 .. $#lines]), "\n";
close $fh;
{
    local $ENV{CHUNK_BYTES} = 1000000;
    ($rc, $out) = build_sh('import', "$tmp/bad.jsonl");
}
isnt($rc, 0, 'import of a bad file fails');
like($out, qr/refused \(400\), at line 4:/, 'naming the line in the file');
is($redis->cmd('DBSIZE'), 0, 'its only chunk wrote nothing');

# --- an empty list stays a list (cjson writes an empty table as {}) -------

$redis->cmd('FLUSHALL');
my $no_tags = $lines[0] =~ s/"tags":\[[^\]]*\]/"tags":[]/r;
isnt($no_tags, $lines[0], 'a record without tags');
is(http(POST => $ng->url('/api/restore'), headers => \%ADMIN,
        body => "$no_tags\n")->{status}, 200, 'restored');
is($redis->cmd('HGET', "${P}node:$recs[0]{id}", 'tags'), '[]',
   'its tags are stored as an empty list');
is_deeply(decode_json(http(GET => $ng->url("/api/moments$recs[0]{id}"),
                           headers => { 'X-Service-Key' => $SK })->{content})->{tags},
          [], 'and read as one');
($one) = export_http(limit => 10);
# (the record's tdf_hash is the hash of the payload, which the edit changed)
s/,"tdf_hash":"[0-9a-f]{64}"(,"timestamp")/$1/ for $one, $no_tags;
is($one, "$no_tags\n", 'and exported as it was given');
$redis->cmd('FLUSHALL');

# --- a node that holds few fields comes back with those only --------------
# (written by hand, or by an older writer: no tags, figures, visibility,
# creator, layer; the export shows their defaults and lists them absent)

my $bare = '/1900/may/01/1200/france/ile-de-france/paris/a-bare-node';
$redis->cmd('HSET', "${P}node:$bare", path => $bare, name => 'A bare node',
            year => 1900, month => 'may', month_num => 5, day => 1,
            time => '1200', country => 'france', region => 'ile-de-france',
            city => 'paris', slug => 'a-bare-node', sort_key => 190005011200,
            created_at => '2026-01-01T00:00:00.000000Z');
$redis->cmd('ZADD', "${P}idx:time", 190005011200, $bare);
my ($bare1) = export_http(limit => 10);
like($bare1, qr/"absent":\[[^\]]*"figures"[^\]]*"layer"[^\]]*"tags"[^\]]*"visibility"/,
     'its absent columns are listed');
my %before = @{ $redis->cmd('HGETALL', "${P}node:$bare") };
$redis->cmd('FLUSHALL');
is(http(POST => $ng->url('/api/restore'), headers => \%ADMIN,
        body => $bare1)->{status}, 200, 'restored');
my ($bare2) = export_http(limit => 10);
is($bare2, $bare1, 'exported again: the same bytes');
my %after = @{ $redis->cmd('HGETALL', "${P}node:$bare") };
is_deeply([ sort keys %after ], [ sort keys %before ],
          'the node holds the same fields, no more');
$redis->cmd('FLUSHALL');

# --- the writers' workflow survives a round trip --------------------------
# A moment's challengers (GET .../challenges) and its history are derived
# from the "challenges" edges into it, which the export carries: after
# export -> FLUSHALL -> restore they answer as before (no writer tokens
# here: the service key writes, as "system").

my %SVC = ('X-Service-Key' => $SK);
my $orig = '/1215/june/15/1200/united-kingdom/surrey/runnymede/magna-carta';
sub moment_body { { id => $_[0], name => $_[1], one_liner => "$_[1]." } }
is(http(POST => $ng->url('/api/moments/propose'), headers => \%SVC,
        json => moment_body($orig, 'Magna Carta sealed'))->{status}, 200,
   'a moment proposed');
for my $i (1, 2) {
    my $comp = "/1215/june/15/1200/united-kingdom/surrey/runnymede/rival-$i";
    is(http(POST => $ng->url("/api/moments$orig/challenge"), headers => \%SVC,
            json => { competing_moment => moment_body($comp, "Rival account $i"),
                      reason => "sources $i" })->{status}, 200,
       "challenged by rival $i");
}
my %wf;
for my $what ('challenges', 'history') {
    my $res = http(GET => $ng->url("/api/moments$orig/$what"), headers => \%SVC);
    is($res->{status}, 200, "GET .../$what");
    # a node's fields come in the order of its hash: compare what they say
    $wf{$what} = $JSON->encode(decode_json($res->{content}));
}
is(decode_json($wf{challenges})->{count}, 2, 'two challengers listed');
is(scalar @{ decode_json($wf{history})->{history} }, 3,
   'the history: proposed, challenged twice');
my ($wf1) = export_http(limit => 10);
$redis->cmd('FLUSHALL');
is(http(POST => $ng->url('/api/restore'), headers => \%ADMIN,
        body => $wf1)->{status}, 200, 'exported, flushed, restored');
my ($wf2) = export_http(limit => 10);
is($wf2, $wf1, 'exported again: the same bytes');
for my $what ('challenges', 'history') {
    my $res = http(GET => $ng->url("/api/moments$orig/$what"), headers => \%SVC);
    is("$res->{status} " . ($res->{status} == 200
                            ? $JSON->encode(decode_json($res->{content})) : ''),
       "200 $wf{$what}",
       "GET .../$what answers as before the round trip");
}
$redis->cmd('FLUSHALL');

# --- keys, method, cursor -------------------------------------------------

is(http(POST => $ng->url('/api/restore'), headers => { 'X-Service-Key' => $SK },
        body => "$lines[0]\n")->{status}, 403, 'restore without the admin key: 403');
is(http(POST => $ng->url('/api/restore'), body => "$lines[0]\n")->{status},
   401, 'restore without keys: 401');
is(http(GET => $ng->url('/api/restore'), headers => \%ADMIN)->{status}, 405,
   'GET /api/restore: 405');
is(http(GET => $ng->url('/api/export'), headers => { 'X-Service-Key' => $SK })->{status},
   403, 'export without the admin key: 403');
is(http(GET => $ng->url('/api/export'))->{status}, 401, 'export without keys: 401');
is(http(POST => $ng->url('/api/export'), headers => \%ADMIN)->{status}, 405,
   'POST /api/export: 405');
$res = http(GET => $ng->url('/api/export?limit=0'), headers => \%ADMIN);
is($res->{status}, 400, 'limit=0: 400');
$res = http(GET => $ng->url('/api/export?after=/1848/no/where'), headers => \%ADMIN);
is($res->{status}, 400, 'after= a path not in the graph: 400');
like($res->{content}, qr/after: names no moment/, 'says so');
$res = http(GET => $ng->url('/api/export'), headers => \%ADMIN);
is($res->{status}, 200, 'an empty graph exports');
is($res->{content}, '', 'as nothing');
is($res->{headers}{'x-clockchain-next'}, undef, 'with no next page');

done_testing();
