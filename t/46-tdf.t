# GET /api/moments/{path}?format=tdf (issue 15): the moment as a record of
# the Timepoint Data Format, as the original service exports it
# (app/core/tdf_bridge.py export_node_as_tdf, timepoint_tdf from_clockchain):
# its fields, its payload (the node without provenance and internal
# fields, month as the stored name) and its tdf_hash, which this test
# computes on its own: SHA-256 of Python's json.dumps(payload,
# sort_keys=True), written here in Perl. Unknown formats are 400, a node
# the caller may not see is 404 here too.
use strict;
use warnings;
use Test::More;
use B ();
use Digest::SHA qw(sha256_hex);
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
    return http(GET => $ng->url(($o{prefix} // '/api/v1/moments') . $path
                                . ($o{query} // '')),
                headers => { ($o{nokey} ? () : ('X-Service-Key' => 'test-key-1')),
                             %{ $o{headers} // {} } });
}

sub make { completed_moment($ng, @_) }

# Python's json.dumps(v, sort_keys=True): ", " and ": " between items, keys
# sorted by code point, ensure_ascii (\uXXXX, lowercase, surrogate pairs)
sub py_dumps {
    my ($v) = @_;
    return 'null' unless defined $v;
    if (ref $v eq 'HASH') {
        return '{' . join(', ', map { py_string($_) . ': ' . py_dumps($v->{$_}) }
                                sort keys %$v) . '}';
    }
    if (ref $v eq 'ARRAY') {
        return '[' . join(', ', map { py_dumps($_) } @$v) . ']';
    }
    if (JSON::PP::is_bool($v)) {
        return $v ? 'true' : 'false';
    }
    my $flags = B::svref_2object(\$v)->FLAGS;
    if ($flags & (B::SVp_IOK | B::SVp_NOK) && !($flags & B::SVp_POK)) {
        return $v =~ /^-?\d+$/ && !($flags & B::SVp_NOK) ? "$v"
               : die "a float in a payload: not written by this test";
    }
    return py_string($v);
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

# the writer itself, on what Python writes for the same values
is(py_dumps({ b => [1, undef, "\x{e9}\"\n"], a => "\x{1f600}<\x7f" }),
   '{"a": "\ud83d\ude00<\u007f", "b": [1, null, "\u00e9\"\n"]}',
   "py_dumps writes as Python's json.dumps does");

# a moment made by a job; its name is made astral further down
my $path = make('TDF probe 1848 at the salon', body => { visibility => 'public' });
my $node = json_body(moment($path)) // {};
my $res = moment($path, query => '?format=tdf');
is($res->{status}, 200, 'GET ?format=tdf: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json}, '... JSON');
my $rec = json_body($res) // {};

is_deeply([ sort keys %$rec ],
          [ sort qw(id version source timestamp provenance payload entity_ids
                    tdf_hash) ],
          'the record: id, version, source, timestamp, provenance, payload, '
          . 'entity_ids, tdf_hash');
is($rec->{id}, $path, 'id: the path');
is($rec->{version}, '1.0.0', 'version 1.0.0');
is($rec->{source}, 'clockchain', 'source clockchain');
is($rec->{timestamp}, $node->{created_at}, 'timestamp: created_at');
is_deeply($rec->{entity_ids}, [], 'entity_ids []');

my $p = $rec->{provenance} // {};
is_deeply([ sort keys %$p ],
          [ sort qw(generator run_id confidence flash_id text_model image_model
                    model_provider model_permissiveness schema_version
                    generation_id grounding_model grounding_status grounded_at) ],
          "provenance: TDFProvenance's fields");
is($p->{generator}, 'timepoint-clockchain', 'generator');
is($p->{flash_id}, $node->{flash_timepoint_id}, 'flash_id: flash_timepoint_id');
is_deeply([ @$p{qw(text_model image_model model_provider model_permissiveness
                   schema_version generation_id)} ],
          [ @$node{qw(text_model image_model model_provider model_permissiveness
                      schema_version generation_id)} ],
          'the model provenance: the node\'s');
ok(!defined $p->{run_id} && !defined $p->{confidence}
   && !defined $p->{grounded_at}, 'run_id, confidence, grounded_at null');

# the payload: the node without its edges, provenance and internal fields,
# month as the stored name (the original exports before its month becomes
# a number)
my %want = %$node;
delete @want{qw(edges month_name path created_at flash_timepoint_id confidence
                text_model image_model model_provider model_permissiveness
                schema_version generation_id graph_state_hash tdf_hash
                source_run_id)};
$want{month} = $node->{month_name};
is_deeply($rec->{payload}, \%want, 'payload: the node as the original exports it');
my $text = py_dumps($rec->{payload});
ok($text !~ /[^\x20-\x7e]/, 'the hashed text is ASCII ('
   . length($text) . ' bytes)');
is($rec->{tdf_hash}, sha256_hex($text),
   "tdf_hash: SHA-256 of json.dumps(payload, sort_keys=True), computed here");
is($rec->{tdf_hash}, sha256_hex(py_dumps(\%want)),
   '... the same from the plain moment');
isnt($rec->{tdf_hash}, $node->{tdf_hash},
     "... not the node's own tdf_hash (another hash, of ten fields)");

# under /api/ as under /api/v1/, and the same record each time
is_deeply(json_body(moment($path, prefix => '/api/moments', query => '?format=tdf')),
          $rec, 'the same record under /api/');
is_deeply(json_body(moment($path, query => '?format=default')), $node,
          '?format=default: the node');

# a stored source_run_id moves to provenance.run_id, tdf_hash leaves the
# payload, a created_at whose fraction is zero is written without it
{
    my $k = "${P}node:$path";
    my $ca = $redis->cmd('HGET', $k, 'created_at');
    $redis->cmd('HSET', $k, 'source_run_id', 'run-7', 'created_at',
                '2026-03-06T14:32:18.000000Z');
    my $r = json_body(moment($path, query => '?format=tdf')) // {};
    is($r->{provenance}{run_id}, 'run-7', 'source_run_id: provenance.run_id');
    ok(!exists $r->{payload}{source_run_id}, '... not in the payload');
    ok(!exists $r->{payload}{tdf_hash}, 'tdf_hash not in the payload');
    is($r->{timestamp}, '2026-03-06T14:32:18Z', 'a zero fraction is left out');
    is($r->{tdf_hash}, sha256_hex(py_dumps($r->{payload})), '... hash still the payload\'s');
    is($r->{tdf_hash}, $rec->{tdf_hash}, '... and unchanged: neither is payload');
    $redis->cmd('HDEL', $k, 'source_run_id');
    $redis->cmd('HSET', $k, 'created_at', $ca);
}

# a name outside the BMP and with quotes: escaped as Python does
{
    my $k = "${P}node:$path";
    my $name = $redis->cmd('HGET', $k, 'name');
    $redis->cmd('HSET', $k, 'name', "Q \"\x{1f30d}\\ \x{130}");
    my $r = json_body(moment($path, query => '?format=tdf')) // {};
    is($r->{payload}{name}, "Q \"\x{1f30d}\\ \x{130}", 'an astral name');
    ok(index(py_dumps($r->{payload}),
             '"Q \\"\\ud83c\\udf0d\\\\ \\u0130"') >= 0,
       '... written with a surrogate pair');
    is($r->{tdf_hash}, sha256_hex(py_dumps($r->{payload})), '... and so hashed');
    $redis->cmd('HSET', $k, 'name', $name);
}

# who sees what: a private node is 404 in TDF for whoever may not see it
my $priv = make('TDF private probe 1910', headers => { 'X-User-Id' => 'tess' });
is_error(moment($priv, query => '?format=tdf', nokey => 1), 404,
         'Moment not found', 'a private node, no key: 404 in TDF');
is_error(moment($priv, query => '?format=tdf', headers => { 'X-User-Id' => 'bob' }),
         404, 'Moment not found', "... bob: 404");
is(moment($priv, query => '?format=tdf', headers => { 'X-User-Id' => 'tess' })->{status},
   200, '... its creator: 200');
is_error(moment('/1999/january/01/1200/a/b/c/nothing', query => '?format=tdf'),
         404, 'Moment not found', 'an absent node: 404');
(my $unpadded = $path) =~ s{^(/-?\d+/[a-z]+/)0(\d)/}{$1$2/};
is_deeply(json_body(moment($unpadded, query => '?format=tdf')), $rec,
          'an unpadded day: the same record') if $unpadded ne $path;

# unknown formats: 400 naming format, before anything is read
for my $f ('xml', 'TDF', '', 'tdf,default', 'json') {
    is_error(moment($path, query => "?format=$f"), 400, qr/^Invalid format/,
             "format=$f: 400");
}
is_error(moment($path, query => '?format=xml', nokey => 1), 400,
         qr/^Invalid format/, '... without a key too');

done();
