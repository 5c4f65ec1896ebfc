# Moving a graph from the original service (docs/migrating.md): its
# Postgres tables (t/data/original-schema.sql, its own DDL) exported with
# examples/original-export.sql and read in with ./build.sh import.  Every
# column arrives: the original's unpadded day made canonical in the id and
# at the end of each edge, the writers' columns (status, proposed_by,
# challenged_by), visibility and creator, created_at and published_at to
# the microsecond, its own tdf_hash, every edge with its own fields; no
# auto-edges.  Then the migrated graph round-trips as any other.
# Skipped without PostgreSQL (initdb, pg_ctl, psql).
use strict;
use warnings;
use Test::More;
use JSON::PP;
use FindBin;
use File::Temp qw(tempdir);
use Clockchain::Test;

my ($bin) = grep { -x "$_/initdb" && -x "$_/pg_ctl" }
            (split(/:/, $ENV{PATH}), glob('/usr/lib/postgresql/*/bin'));
my ($psql) = map { "$_/psql" } grep { -x "$_/psql" } split /:/, $ENV{PATH};
plan skip_all => 'PostgreSQL (initdb, pg_ctl, psql) is not installed'
    unless $bin && $psql;

my $ROOT = "$FindBin::Bin/..";
my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my $AK = 'admin-key';

# --- the original's database, with a graph in it -------------------------

my $dir = tempdir('cc-pg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
my @as = ();
if ($> == 0) {
    # PostgreSQL refuses to run as root
    system('chown', 'nobody', $dir) == 0 or die;
    @as = ('runuser', '-u', 'nobody', '--');
}
my $port = 20000 + $$ % 20000;
system("@as $bin/initdb -D $dir/data -A trust -U pg --no-sync "
       . ">$dir/initdb.log 2>&1") == 0
    && system("@as $bin/pg_ctl -D $dir/data -w -l $dir/log "
              . "-o \"-p $port -k $dir -c listen_addresses=''\" start "
              . ">/dev/null") == 0
    or BAIL_OUT('PostgreSQL did not start');
END { system("@as $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null")
          if $dir && -d "$dir/data" }

sub psql {
    my (@args) = @_;
    my $out = qx($psql -qAt -v ON_ERROR_STOP=1 -h $dir -p $port -U pg -d postgres @args 2>&1);
    return ($? >> 8, $out);
}

my ($rc, $out) = psql('-f', "$FindBin::Bin/data/original-schema.sql");
is($rc, 0, "the original's tables") or diag($out);

my $ALPHA = '/2016/march/9/1530/south-korea/seoul/seoul/alphago-move-37';
my $MICRO = '/1971/november/15/0900/united-states/california/santa-clara/'
          . 'invention-of-the-microprocessor';
(my $ALPHA_C = $ALPHA) =~ s{/9/}{/09/};

open my $fh, '>', "$dir/data.sql" or die;
print {$fh} <<"SQL";
INSERT INTO nodes (id, name, year, month, month_num, day, time, country,
    region, city, slug, layer, visibility, created_by, tags, one_liner,
    figures, tdf_hash, schema_version, created_at, confidence,
    model_provider, published_at, status, challenged_by, proposed_by,
    image_url, era)
VALUES
('$ALPHA', 'AlphaGo Move 37', 2016, 'march', 3, 9, '1530', 'south-korea',
 'seoul', 'seoul', 'alphago-move-37', 1, 'public', 'system', '{ai,go}',
 'AlphaGo plays move 37', '{"Lee Sedol"}', 'abc', '0.2',
 '2026-02-17 00:00:00+00', 1.0, 'system', '2026-02-18 10:00:00.5+00',
 'verified', '{}', '', 'https://img.example/a.png', 'Modern'),
('$MICRO', 'Invention of the Microprocessor', 1971, 'november', 11, 15,
 '0900', 'united-states', 'california', 'santa-clara',
 'invention-of-the-microprocessor', 2, 'private', 'agent-7', '{technology}',
 'Intel 4004', '{"Federico Faggin"}', 'def', '0.2',
 '2026-03-06 12:34:56.123456+00', NULL, '', NULL, 'challenged', '{agent-9}',
 'agent-7', NULL, '');
INSERT INTO edges (source, target, type, weight, theme, description,
    created_by, schema_version)
VALUES
('$MICRO', '$ALPHA', 'influences', 0.7, 'computing', 'hardware for AlphaGo',
 'seed', '0.2'),
('$ALPHA', '$MICRO', 'challenges', 1.0, '', '', 'agent-9', '0.1');
SQL
close $fh;
($rc, $out) = psql('-f', "$dir/data.sql");
is($rc, 0, 'two nodes and two edges') or diag($out);

# --- exported with the documented SQL, imported with ./build.sh import ---

($rc, $out) = psql('-f', "$ROOT/examples/original-export.sql");
is($rc, 0, 'examples/original-export.sql runs') or diag($out);
my @lines = grep { /^\{/ } split /\n/, $out;
is(scalar @lines, 2, 'a line a node');
open $fh, '>', "$dir/graph.jsonl" or die;
print {$fh} map { "$_\n" } @lines;
close $fh;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        location /api/moments/ { clockchain_moments; }
        location = /api/stats  { clockchain_stats; }
        location = /api/export { clockchain_export; }
        location = /api/restore { clockchain_restore; }
    }
CONF

sub build_sh {
    my ($cmd, @args) = @_;
    local $ENV{CLOCKCHAIN_URL} = $ng->url('');
    local $ENV{SERVICE_API_KEY} = $SK;
    local $ENV{ADMIN_API_KEY} = $AK;
    my $o = `cd $ROOT && ./build.sh $cmd @args 2>&1`;
    return ($? >> 8, $o);
}

($rc, $out) = build_sh('import', "$dir/graph.jsonl");
is($rc, 0, './build.sh import') or diag($out);

sub moment {
    my $res = http(GET => $ng->url("/api/moments$_[0]"),
                   headers => { 'X-Service-Key' => $SK });
    is($res->{status}, 200, "$_[0]: 200") or return {};
    return decode_json($res->{content});
}

my $a = moment($ALPHA_C);
is($a->{path}, $ALPHA_C, 'the unpadded day is made canonical');
is($a->{$_->[0]}, $_->[1], "AlphaGo: $_->[0]") for
    [ name => 'AlphaGo Move 37' ], [ visibility => 'public' ],
    [ created_by => 'system' ], [ status => 'verified' ],
    [ tdf_hash => 'abc' ], [ created_at => '2026-02-17T00:00:00.000000Z' ],
    [ published_at => '2026-02-18T10:00:00.500000Z' ],
    [ image_url => 'https://img.example/a.png' ], [ era => 'Modern' ],
    [ confidence => 1 ], [ model_provider => 'system' ], [ layer => 1 ];
is_deeply($a->{challenged_by}, [], 'AlphaGo: challenged_by');
is_deeply($a->{figures}, ['Lee Sedol'], 'AlphaGo: figures');

my $m = moment($MICRO);
is($m->{$_->[0]}, $_->[1], "the microprocessor: $_->[0]") for
    [ visibility => 'private' ], [ created_by => 'agent-7' ],
    [ status => 'challenged' ], [ proposed_by => 'agent-7' ],
    [ tdf_hash => 'def' ], [ created_at => '2026-03-06T12:34:56.123456Z' ],
    [ published_at => '' ], [ layer => 2 ];
is($m->{confidence}, undef, 'the microprocessor: confidence null');
is($m->{image_url}, undef, 'the microprocessor: image_url null');
is_deeply($m->{challenged_by}, ['agent-9'], 'the microprocessor: challenged_by');

is_deeply(decode_json($redis->cmd('HGET', "${P}edges:$MICRO",
                                  "influences|$ALPHA_C")),
          { source => $MICRO, target => $ALPHA_C, type => 'influences',
            weight => 0.7, theme => 'computing',
            description => 'hardware for AlphaGo', created_by => 'seed',
            schema_version => '0.2' },
          'an edge with its own fields, its target canonical');
is_deeply(decode_json($redis->cmd('HGET', "${P}edges:$ALPHA_C",
                                  "challenges|$MICRO"))->{created_by},
          'agent-9', 'a challenges edge');
is(scalar @{ $redis->cmd('HKEYS', "${P}edges:$ALPHA_C") }, 1,
   'and no auto-edges');
my $st = decode_json(http(GET => $ng->url('/api/stats'))->{content});
is($st->{total_nodes}, 2, 'stats: two nodes');
is($st->{total_edges}, 2, 'stats: two edges');

# --- and the migrated graph round-trips as any other ---------------------

($rc, $out) = build_sh('export', "$dir/one.jsonl");
is($rc, 0, 'exported') or diag($out);
$redis->cmd('FLUSHALL');
($rc, $out) = build_sh('import', "$dir/one.jsonl");
is($rc, 0, 'flushed and imported') or diag($out);
($rc, $out) = build_sh('export', "$dir/two.jsonl");
my $slurp = sub { open my $f, '<', $_[0] or die; local $/; <$f> };
is($slurp->("$dir/two.jsonl"), $slurp->("$dir/one.jsonl"),
   'byte-identical exports');

done_testing();
