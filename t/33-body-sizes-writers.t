# The writers' routes at every size t/33-body-sizes.t sweeps for generate:
# POST /api/index, /api/ingest/subgraph, /api/ingest/tdf, /api/restore,
# /api/moments/propose, a moment's challenge, verify and reconcile, and
# POST /api/agents/register.  Bodies of exactly N bytes across nginx's
# pool, buffer and page boundaries up to each route's limit (200, and what
# was written reads back the same), the limit + 1 (a JSON 413); single
# string fields (a name, a one-liner, a tag, a figure, an edge's theme and
# description, a reason, an agent's name) across 127..129, 255..257 ... up
# to their limit (200, read back) and one byte past it (a JSON 400 naming
# the field, nothing written).  Each size goes to a location as nginx has
# it, one with client_body_buffer_size 1k and one with
# client_body_in_file_only on, with workers running as nobody in a 0700
# prefix (as t/33): a body spooled to a file there would be a 500.  At the
# end no worker was replaced and none exited on a signal.  Writer tokens
# are configured: each write carries a Bearer token, which makes the body
# wait for a token lookup in Redis before it is parsed.
#
# Chunked bodies too, in small chunks: nginx's buffer held their framing,
# so a legal body filled it and was spooled to client_body_temp_path, as
# was any body past the limit (a 500, HTML, where a 200 or a JSON 413 was
# due); the module now copies a chunked body out as it comes.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $LIMIT = 256 * 1024;    # clockchain_max_body_size's default
my $AGENTS_LIMIT = 4096;   # an agents body (NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX)
my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';
my $ADMIN = 'test-admin-token-sizes';
my $JSON = JSON::PP->new->canonical;

# each writer's location three times: as nginx has it (''), with a 1k body
# buffer (/tiny) and spooling every body to a file (/file)
my %SET = ('' => '', '/tiny' => 'client_body_buffer_size 1k;',
           '/file' => 'client_body_buffer_size 1k; '
                      . 'client_body_in_file_only on;');
my @LOCS = ('', '/tiny', '/file');
my $locations = '';
for my $l (@LOCS) {
    my $s = $SET{$l};
    $locations .= <<"LOC";
        location = $l/api/index           { $s clockchain_index; }
        location = $l/api/ingest/subgraph { $s clockchain_ingest_subgraph; }
        location = $l/api/ingest/tdf      { $s clockchain_ingest_tdf; }
        location = $l/api/restore         { $s clockchain_restore; }
        location $l/api/moments/          { $s clockchain_moments; }
        location $l/api/agents/           { $s clockchain_agents; }
LOC
}

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, private => 1,
                     files => { 'admin.token' => "$ADMIN\n" }, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% timeout=30s;
    clockchain_admin_token_file %%PREFIX%%/admin.token;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
$locations
        location = /api/agents             { clockchain_agents; }
        location /api/graph/neighbors/     { clockchain_graph_neighbors; }
        location = /api/export             { clockchain_export; }
    }
EOF

my @workers = $ng->worker_pids;
is(scalar @workers, 2, 'two workers');
is(Clockchain::Test::Nginx::user_of($workers[0]), 'nobody',
   'workers run as nobody, as a packaged nginx runs them');

sub post {
    my ($path, $body, $token) = @_;
    my %h = ('Content-Type' => 'application/json', 'X-Service-Key' => $SK,
             'X-Admin-Key' => 'admin-key');
    $h{Authorization} = "Bearer $token" if defined $token;
    return http(POST => $ng->url($path), body => $body, headers => \%h);
}

sub get {
    my ($path, $token) = @_;
    my $res = http(GET => $ng->url($path),
                   headers => { 'X-Service-Key' => $SK,
                                'X-Admin-Key' => 'admin-key',
                                Authorization => $token && "Bearer $token" });
    return $res->{status} == 200 ? json_body($res) : undef;
}

# $json with JSON whitespace before its last closing bracket, to $size bytes
sub pad_to {
    my ($json, $size) = @_;
    my $at = (sort { $b <=> $a } rindex($json, '}'), rindex($json, ']'))[0];
    my $pad = $size - length $json;
    die "size $size: the body alone is " . length($json) . " bytes\n"
        if $pad < 0;
    substr($json, $at, 0) = ' ' x $pad;
    return $json;
}

my $res = post('/api/agents/register',
               $JSON->encode({ agent_name => 'sizes-writer' }), $ADMIN);
is($res->{status}, 200, 'a writer registered');
my $WRITER = (json_body($res) // {})->{token};

# every moment written here gets a path of its own: a year each, so that
# the auto-edges of one do not pile up on a single day
my $seq = 0;
sub path_of { my ($n, $slug) = @_;
    "/@{[ 1000 + $n ]}/may/05/1200/france/ile-de-france/paris/$slug-$n" }

# a moment's fields, short unless given
sub fields {
    my ($n, %o) = @_;
    return (name => $o{name} // "Sizes moment $n",
            one_liner => $o{one_liner} // "written at size $n",
            tags => $o{tags} // [ "sizes", "tag$n" ],
            figures => $o{figures} // [ "Figure $n" ]);
}

# what was written, as GET /api/moments gives it back
sub moment_bad {
    my ($path, %f) = @_;
    my $m = get("/api/moments$path");
    return 'not found' unless $m;
    for my $k (sort keys %f) {
        my ($got, $want) = map { ref $_ ? $JSON->encode($_) : $_ // '(null)' }
                               $m->{$k}, $f{$k};
        return "$k: " . substr($got, 0, 60) . ' != ' . substr($want, 0, 60)
            if $got ne $want;
    }
    return '';
}

# --- bodies of N bytes, route by route -----------------------------------

my @SIZES = (1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8191,
             8192, 8193, 16383, 16384, 16385, 65535, 65536, 65537, 131072,
             $LIMIT - 1, $LIMIT);

# index: one moment, its metadata, whitespace to N bytes
sub index_body {
    my ($n, %o) = @_;
    my $path = path_of($n, 'index');
    my %f = fields($n, %o);
    return ($path, \%f, $JSON->encode({ path => $path, visibility => 'public',
                                        metadata => \%f }));
}

# subgraph: two moments and a named edge between them, whitespace to N
sub subgraph_body {
    my ($n, %o) = @_;
    my ($a, $b) = (path_of($n, 'sga'), path_of($n, 'sgb'));
    my %f = fields($n, %o);
    my $edge = { source => $a, target => $b, type => 'causes', weight => 0.5,
                 theme => $o{theme} // "theme $n",
                 description => $o{description} // "description $n" };
    return ($a, $b, \%f, $edge,
            $JSON->encode({ nodes => [ { id => $a, %f },
                                       { id => $b, name => "Other $n" } ],
                            edges => [ $edge ] }));
}

# tdf: one record
sub tdf_body {
    my ($n, %o) = @_;
    my $path = path_of($n, 'tdf');
    my %f = fields($n, %o);
    return ($path, \%f, $JSON->encode([ {
        id => $path, source => 'clockchain',
        timestamp => '2026-01-01T00:00:00Z',
        provenance => { generator => 'sizes', confidence => 0.5 },
        payload => { %f, visibility => 'public' } } ]));
}

my %bad;
sub check {
    my ($what, $res, $want, $readback) = @_;
    if ($res->{status} != $want) {
        $bad{$what} = "$res->{status} " . substr($res->{content} // '', 0, 160);
        return;
    }
    my $ct = $res->{headers}{'content-type'} // '';
    if ($ct !~ m{^application/json} || !defined json_body($res)) {
        $bad{$what} = "not a JSON answer ($ct)";
        return;
    }
    my $why = $readback ? $readback->() : '';
    $bad{$what} = "read back: $why" if $why;
}


# the edges named, as Redis holds them (the neighbours answer shows at
# most NGX_HTTP_CLOCKCHAIN_NEIGHBORS_SHOWN edges, in HSCAN's order: once the
# moments of the sweep have given a source more auto-edges than that, a
# named edge may not be among them)
sub edge_bad {
    my (@e) = @_;
    for my $e (@e) {
        my $raw = $redis->cmd('HGET', "${P}edges:$e->{source}",
                              "$e->{type}|$e->{target}");
        my $got = defined $raw ? eval { decode_json($raw) } : undef;
        return "no $e->{type} edge to $e->{target}" unless ref $got eq 'HASH';
        for my $k (qw(theme description weight)) {
            next unless exists $e->{$k};
            return "edge $k: " . substr($got->{$k} // '(null)', 0, 60)
                if ($got->{$k} // '') ne $e->{$k};
        }
    }
    return '';
}

# restore: lines of an export (the columns a record needs, a field the
# original had not, an edge to a moment already there)
my $ANCHOR = path_of(0, 'anchor');
is(post('/api/index', $JSON->encode({ path => $ANCHOR, visibility => 'public',
                                      metadata => { name => 'Anchor' } }),
        $WRITER)->{status}, 200, 'an anchor moment for the edges');

sub restore_line {
    my ($n, %o) = @_;
    my $path = path_of($n, 'rst');
    my %f = (fields($n, %o), note => $o{note} // "note $n");
    my $edge = { target => $ANCHOR, type => 'influences', weight => 0.25,
                 theme => $o{theme} // "theme $n",
                 description => $o{description} // "description $n",
                 created_by => 'sizes' };
    my %p = (%f, type => 'event', visibility => 'public', layer => 1,
             year => 1000 + $n, month => 'may', month_num => 5, day => 5,
             time => '1200', country => 'france', region => 'ile-de-france',
             city => 'paris', slug => "rst-$n", edges => [ $edge ]);
    return ($path, \%f, { %$edge, source => $path },
            $JSON->encode({ id => $path, version => '1.0.0',
                            source => 'clockchain',
                            timestamp => '2026-01-01T00:00:00Z',
                            provenance => { generator => 'sizes' },
                            payload => \%p, entity_ids => [] }) . "\n");
}

# propose: a moment and an edge of its own to the anchor
sub propose_body {
    my ($n, %o) = @_;
    my $path = path_of($n, $o{slug} // 'prop');
    my %f = fields($n, %o);
    my @edges = @{ $o{edges} // [ { target => $ANCHOR, type => 'influences',
                                    weight => 0.75,
                                    theme => $o{theme} // "theme $n",
                                    description => "description $n" } ] };
    $_->{source} = $path for @edges;
    return ($path, \%f, \@edges,
            { id => $path, %f, visibility => 'public', edges => \@edges });
}

sub propose_new {
    my ($n, $slug) = @_;
    my ($path, undef, undef, $b) = propose_body($n, slug => $slug);
    my $res = post('/api/moments/propose', $JSON->encode($b), $WRITER);
    die "propose $path: $res->{status} $res->{content}\n"
        unless $res->{status} == 200;
    return $path;
}

# a moment to challenge (each challenge adds a challenger), two to reconcile
my $ORIG = propose_new(++$seq, 'orig');
my @PAIR = (propose_new(++$seq, 'pair'), propose_new(++$seq, 'pair'));
my $rounds = 0;

sub challenge_body {
    my ($n, %o) = @_;
    my ($path, $f, undef, $b) = propose_body($n, %o, slug => 'chal');
    my $reason = $o{reason} // "reason $n";
    return ($path, $f, { source => $path, target => $ORIG,
                         type => 'challenges', description => $reason },
            $JSON->encode({ competing_moment => $b, reason => $reason }));
}

sub status_bad {
    my (%want) = @_;
    for my $p (sort keys %want) {
        my $s = (get("/api/moments$p") // {})->{status} // '(none)';
        return "$p: $s, not $want{$p}" if $s ne $want{$p};
    }
    return '';
}

sub agent_bad {
    my ($name) = @_;
    my $l = get('/api/agents', $ADMIN) // {};
    return (grep { $_->{agent_name} eq $name } @{ $l->{agents} // [] })
           ? '' : "$name is not listed";
}

# one size on one location, every route; $over: the limit + 1, a 413
sub sweep {
    my ($size, $loc) = @_;
    my $over = $size > $LIMIT;
    my $want = $over ? 413 : 200;
    my $tag = "$loc $size";
    my ($n, $path, $f, $body, $a, $b, $edge);

    $n = ++$seq;
    ($path, $f, $body) = index_body($n);
    check("index $tag", post("$loc/api/index", pad_to($body, $size), $WRITER),
          $want, sub { $over ? absent($path) : moment_bad($path, %$f) });

    $n = ++$seq;
    ($a, $b, $f, $edge, $body) = subgraph_body($n);
    check("subgraph $tag",
          post("$loc/api/ingest/subgraph", pad_to($body, $size), $WRITER),
          $want, sub { $over ? absent($a)
                             : moment_bad($a, %$f) || edge_bad($edge) });

    $n = ++$seq;
    ($path, $f, $body) = tdf_body($n);
    check("tdf $tag",
          post("$loc/api/ingest/tdf", pad_to($body, $size), $WRITER),
          $want, sub { $over ? absent($path) : moment_bad($path, %$f) });

    $n = ++$seq;
    ($path, $f, $edge, $body) = restore_line($n);
    check("restore $tag", post("$loc/api/restore", pad_to($body, $size)),
          $want, sub { $over ? absent($path)
                             : moment_bad($path, %$f) || edge_bad($edge) });

    $n = ++$seq;
    my ($edges, $pb);
    ($path, $f, $edges, $pb) = propose_body($n);
    check("propose $tag", post("$loc/api/moments/propose",
                               pad_to($JSON->encode($pb), $size), $WRITER),
          $want, sub { $over ? absent($path)
                             : moment_bad($path, %$f, status => 'proposed')
                               || edge_bad($edges->[0]) });

    $n = ++$seq;
    ($path, $f, $edge, $body) = challenge_body($n);
    check("challenge $tag", post("$loc/api/moments$ORIG/challenge",
                                 pad_to($body, $size), $WRITER),
          $want, sub { $over ? absent($path)
                             : moment_bad($path, %$f) || edge_bad($edge)
                               || status_bad($ORIG => 'challenged') });

    # verify takes no body, but is sent one: it is read, and its limit holds
    $path = propose_new(++$seq, 'verify');
    check("verify $tag", post("$loc/api/moments$path/verify",
                              pad_to('{}', $size), $ADMIN),
          $want, sub { status_bad($path => $over ? 'proposed' : 'verified') });

    my ($w, $l) = $rounds++ % 2 ? @PAIR : reverse @PAIR;
    my %was = map { $_ => (get("/api/moments$_") // {})->{status} } @PAIR;
    check("reconcile $tag", post("$loc/api/moments$w/reconcile",
                                 pad_to($JSON->encode({ winner_id => $w,
                                                        loser_id => $l,
                                                        reason => "$tag" }),
                                        $size), $ADMIN),
          $want, sub { status_bad($over ? %was : ($w => 'verified',
                                                  $l => 'alternative')) });
}

# nothing at the path: a refused body wrote nothing
sub absent {
    my ($path) = @_;
    return get("/api/moments$path") ? "$path was written" : '';
}

# every size on the plain location and on one of the other two in turn;
# the limit and one past it on all three
my $i = 0;
for my $size (@SIZES, $LIMIT + 1) {
    my @at = $size >= $LIMIT ? @LOCS : ('', $LOCS[1 + $i++ % 2]);
    sweep($size, $_) for @at;
}
is_deeply(\%bad, {}, "every writer, bodies of 1023 to $LIMIT bytes on the "
          . 'three locations: 200, read back the same; one more byte: 413');

# every size of a 32-byte stretch past the pool's largest small block, on
# the two routes that parse the most (as t/33 does for generate)
%bad = ();
for my $size (5000 .. 5031) {
    my $loc = $LOCS[$size % 3];
    my $n = ++$seq;
    my ($a, undef, $f, $edge, $body) = subgraph_body($n);
    check("subgraph $loc $size",
          post("$loc/api/ingest/subgraph", pad_to($body, $size), $WRITER),
          200, sub { moment_bad($a, %$f) || edge_bad($edge) });
    $n = ++$seq;
    my ($path, $pf, $edges, $pb) = propose_body($n);
    check("propose $loc $size", post("$loc/api/moments/propose",
                                     pad_to($JSON->encode($pb), $size),
                                     $WRITER),
          200, sub { moment_bad($path, %$pf) || edge_bad($edges->[0]) });
}
is_deeply(\%bad, {}, 'subgraph and propose, every size from 5000 to 5031 '
          . 'bytes: 200, read back the same');
# agents: bodies to their own limit, 4096 bytes (docs/api.md)
%bad = ();
for my $size (1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097) {
    for my $loc (@LOCS) {
        my $name = 'agent-' . ++$seq;
        my $body = $JSON->encode({ agent_name => $name,
                                   permissions => 'read' });
        check("agents $loc $size", post("$loc/api/agents/register",
                                        pad_to($body, $size), $ADMIN),
              $size > $AGENTS_LIMIT ? 413 : 200,
              sub { my $why = agent_bad($name);
                    $size > $AGENTS_LIMIT ? ($why ? '' : "$name written")
                                          : $why });
    }
}
is_deeply(\%bad, {}, 'agents: bodies of 1023 to 4096 bytes on the three '
          . 'locations: 200, listed; 4097: 413, nothing registered');

# bodies grown to the limit by what they carry, not by whitespace: as many
# moments, records or edges as fit, each with its longest one-liner
%bad = ();
my $LONG = 'l' x 1990;
for my $loc (@LOCS) {
    for my $size ($LIMIT, $LIMIT + 1) {
        my $over = $size > $LIMIT;
        my $want = $over ? 413 : 200;

        # subgraph: 100 moments (the most), edges between them to the limit
        my $n0 = $seq + 1;
        my @nodes = map { my $n = ++$seq;
                          { id => path_of($n, 'grown'), name => "Grown $n",
                            one_liner => "$n $LONG" } } 1 .. 100;
        # the edges' JSON added one at a time (encoding the whole body
        # again for each would take seconds)
        my $head = '{"nodes":' . $JSON->encode(\@nodes) . ',"edges":[';
        my (@edges, @ej);
        my $len = length($head) + 2;
        for my $i (0 .. 98) {
            my $e = { source => $nodes[$i]{id}, target => $nodes[$i + 1]{id},
                      type => 'causes', weight => 1,
                      theme => "grown $i", description => 'd' x 400 };
            my $j = $JSON->encode($e);
            last if $len + length($j) + 1 > $size;
            $len += length($j) + (@ej ? 1 : 0);
            push @edges, $e;
            push @ej, $j;
        }
        my $body = $head . join(',', @ej) . ']}';
        $body = pad_to($body, $size);
        check("subgraph of 100 moments, " . @edges . " edges, $loc $size",
              post("$loc/api/ingest/subgraph", $body, $WRITER), $want, sub {
                  return absent($nodes[0]{id}) if $over;
                  for my $m (@nodes[grep { $_ % 10 == 9 } 0 .. $#nodes]) {
                      my $why = moment_bad($m->{id}, %$m{qw(name one_liner)});
                      return $why if $why;
                  }
                  return edge_bad($edges[-1]);
              });

        # tdf: 100 records
        my @recs;
        for my $i (1 .. 100) {
            my ($path, $f, $one) = tdf_body(++$seq, one_liner => "$seq $LONG");
            push @recs, [ $path, $f, substr($one, 1, -1) ];
        }
        check("tdf of 100 records, $loc $size",
              post("$loc/api/ingest/tdf",
                   pad_to('[' . join(',', map { $_->[2] } @recs) . ']',
                          $size), $WRITER),
              $want, sub {
                  return absent($recs[0][0]) if $over;
                  for my $r (@recs[grep { $_ % 10 == 9 } 0 .. $#recs]) {
                      my $why = moment_bad($r->[0], %{ $r->[1] });
                      return $why if $why;
                  }
                  return '';
              });

        # restore: lines of 60000-byte notes (a field the original had not)
        my @lines;
        my $total = 0;
        while ($total < $size - 61000) {
            my ($path, $f, $edge, $line) = restore_line(++$seq,
                                                        note => 'n' x 60000);
            push @lines, [ $path, $f, $edge, $line ];
            $total += length $line;
        }
        check("restore of " . @lines . " lines, $loc $size",
              post("$loc/api/restore",
                   pad_to(join('', map { $_->[3] } @lines), $size)),
              $want, sub {
                  return absent($lines[0][0]) if $over;
                  for my $l (@lines) {
                      my $why = moment_bad($l->[0], %{ $l->[1] })
                                || edge_bad($l->[2]);
                      return $why if $why;
                  }
                  return '';
              });

        # propose: 64 edges (the most), each with a long description, to
        # the moments of the subgraph above
        my @pe = map { { target => $nodes[$_]{id}, type => 'influences',
                         weight => 0.5, theme => "pe $_",
                         description => 'p' x 1990 } } 0 .. 63;
        my ($path, $f, $pedges, $pb) = propose_body(++$seq, edges => \@pe,
                                                    one_liner => $LONG);
        # the subgraph's moments are not there past the limit: the anchor
        $_->{target} = $ANCHOR, $_->{type} = $over ? 'influences' : $_->{type}
            for $over ? @$pedges[0] : ();
        @$pedges = ($pedges->[0]) if $over;
        check("propose with " . @$pedges . " edges, $loc $size",
              post("$loc/api/moments/propose",
                   pad_to($JSON->encode($pb), $size), $WRITER),
              $want, sub {
                  return absent($path) if $over;
                  return edge_bad(@$pedges) || moment_bad($path, %$f);
              });
    }
}
is_deeply(\%bad, {}, 'bodies grown to the limit by their moments, records, '
          . 'lines and edges: 200, each read back; one byte more: 413');

# single fields across the boundaries, up to their limit and one past it:
# 200 and read back, then a 400 naming the field with nothing written
my @LENS = (127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025,
            4095, 4096, 4097, 16383, 16384, 16385, 65535, 65536, 65537);

sub lens {
    my ($max) = @_;
    my %l = map { $_ => 1 } grep { $_ < $max } @LENS;
    $l{$_} = 1 for $max - 1, $max, $max + 1;
    return sort { $a <=> $b } keys %l;
}

# a string of $len bytes, its start telling it from every other
sub text { my ($len) = @_; my $h = 's' . ++$seq . ' ';
           return substr($h . ('t' x $len), 0, $len) }

%bad = ();
my $k = 0;
my @fields = (
    # route, field, limit, the detail's pattern, a sub: ($n, $text) ->
    # (post args, read-back)
    [ index => 'name', 2000, qr/^metadata\.name: /, sub {
          my ($n, $t) = @_;
          my ($p, $f, $b) = index_body($n, name => $t);
          return ($p, '/api/index', $b, sub { moment_bad($p, %$f) }) } ],
    [ index => 'one_liner', 2000, qr/^metadata\.one_liner: /, sub {
          my ($n, $t) = @_;
          my ($p, $f, $b) = index_body($n, one_liner => $t);
          return ($p, '/api/index', $b, sub { moment_bad($p, %$f) }) } ],
    [ index => 'a tag', 100, qr/^metadata\.tags/, sub {
          my ($n, $t) = @_;
          my ($p, $f, $b) = index_body($n, tags => [ 'a', $t ]);
          return ($p, '/api/index', $b, sub { moment_bad($p, %$f) }) } ],
    [ index => 'a figure', 200, qr/^metadata\.figures/, sub {
          my ($n, $t) = @_;
          my ($p, $f, $b) = index_body($n, figures => [ $t ]);
          return ($p, '/api/index', $b, sub { moment_bad($p, %$f) }) } ],
    [ subgraph => 'name', 2000, qr/^nodes\[0\]\.name: /, sub {
          my ($n, $t) = @_;
          my ($a, undef, $f, undef, $b) = subgraph_body($n, name => $t);
          return ($a, '/api/ingest/subgraph', $b,
                  sub { moment_bad($a, %$f) }) } ],
    [ subgraph => 'an edge theme', 2000, qr/^edges\[0\]\.theme: /, sub {
          my ($n, $t) = @_;
          my ($a, undef, undef, $e, $b) = subgraph_body($n, theme => $t);
          return ($a, '/api/ingest/subgraph', $b, sub { edge_bad($e) }) } ],
    [ subgraph => 'an edge description', 2000,
      qr/^edges\[0\]\.description: /, sub {
          my ($n, $t) = @_;
          my ($a, undef, undef, $e, $b) = subgraph_body($n,
                                                        description => $t);
          return ($a, '/api/ingest/subgraph', $b, sub { edge_bad($e) }) } ],
    [ tdf => 'one_liner', 2000, qr/^\[0\]\.payload\.one_liner: /, sub {
          my ($n, $t) = @_;
          my ($p, $f, $b) = tdf_body($n, one_liner => $t);
          return ($p, '/api/ingest/tdf', $b, sub { moment_bad($p, %$f) }) } ],
    [ restore => 'name', 2000, qr/^line 1: .*payload\.name/, sub {
          my ($n, $t) = @_;
          my ($p, $f, undef, $b) = restore_line($n, name => $t);
          return ($p, '/api/restore', $b, sub { moment_bad($p, %$f) }) } ],
    [ restore => 'a field of its own', 65536,
      qr/^line 1: .*payload\.note/, sub {
          my ($n, $t) = @_;
          my ($p, $f, undef, $b) = restore_line($n, note => $t);
          return ($p, '/api/restore', $b, sub { moment_bad($p, %$f) }) } ],
    [ restore => 'an edge description', 2000,
      qr/^line 1: .*description/, sub {
          my ($n, $t) = @_;
          my ($p, undef, $e, $b) = restore_line($n, description => $t);
          return ($p, '/api/restore', $b, sub { edge_bad($e) }) } ],
    [ propose => 'name', 2000, qr/name/, sub {
          my ($n, $t) = @_;
          my ($p, $f, undef, $b) = propose_body($n, name => $t);
          return ($p, '/api/moments/propose', $JSON->encode($b),
                  sub { moment_bad($p, %$f) }) } ],
    [ propose => 'a tag', 100, qr/tags/, sub {
          my ($n, $t) = @_;
          my ($p, $f, undef, $b) = propose_body($n, tags => [ $t ]);
          return ($p, '/api/moments/propose', $JSON->encode($b),
                  sub { moment_bad($p, %$f) }) } ],
    [ propose => 'an edge theme', 2000, qr/theme/, sub {
          my ($n, $t) = @_;
          my ($p, undef, $e, $b) = propose_body($n, theme => $t);
          return ($p, '/api/moments/propose', $JSON->encode($b),
                  sub { edge_bad($e->[0]) }) } ],
    [ challenge => 'reason', 2000, qr/^reason: /, sub {
          my ($n, $t) = @_;
          my ($p, undef, $e, $b) = challenge_body($n, reason => $t);
          return ($p, "/api/moments$ORIG/challenge", $b,
                  sub { edge_bad($e) }) } ],
);
for my $fd (@fields) {
    my ($route, $field, $max, $detail, $make) = @$fd;
    for my $len (lens($max)) {
        my $loc = $LOCS[$k++ % 3];
        my ($path, $uri, $body, $readback) = $make->(++$seq, text($len));
        my $res = post("$loc$uri", $body, $WRITER);
        my $what = "$route, $field of $len bytes ($loc)";
        if ($len <= $max) {
            check($what, $res, 200, $readback);
            next;
        }
        check($what, $res, 400, sub {
            my $d = (json_body($res) // {})->{detail} // '';
            return $d =~ $detail ? absent($path) : "detail: $d";
        });
    }
}
for my $len (lens(128)) {
    my $name = text($len);
    my $res = post($LOCS[$k++ % 3] . '/api/agents/register',
                   $JSON->encode({ agent_name => $name }), $ADMIN);
    check("agents, a name of $len bytes", $res, $len <= 128 ? 200 : 400,
          sub { my $why = agent_bad($name);
                $len <= 128 ? $why
                : $why ? (json_body($res)->{detail} =~ /^agent_name: /
                          ? '' : 'the detail names no field')
                : "$len bytes: registered" });
}
is_deeply(\%bad, {}, 'single fields of 127 to 65537 bytes, up to their '
          . 'limit: 200, read back the same; one byte past it: a 400 '
          . 'naming the field, nothing written');

# chunked bodies (no Content-Length): nginx's buffer holds their framing
# too, so small chunks filled it before the body reached the limit, and a
# body past the limit filled it always; nginx spooled them to
# client_body_temp_path, out of the workers' reach here: 500s, HTML
sub chunked {
    my ($uri, $body, $chunk, $token) = @_;
    my $req = "POST $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nX-Service-Key: $SK\r\n"
        . "Authorization: Bearer $token\r\n"
        . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (my $o = 0; $o < length $body; $o += $chunk) {
        my $c = substr($body, $o, $chunk);
        $req .= sprintf("%x\r\n%s\r\n", length $c, $c);
    }
    $req .= "0\r\n\r\n";
    my ($out) = raw_request($ng->port, $req, 10);
    my ($status) = $out =~ m{^HTTP/1\.1 (\d+)};
    my ($content) = $out =~ /\r\n\r\n(.*)\z/s;
    my ($ct) = $out =~ /^Content-Type: *([^\r]*)/mi;
    return { status => $status // 0, content => $content,
             headers => { 'content-type' => $ct } };
}

%bad = ();
for my $chunk (200, 1000, 3000) {
    for my $size (200000, $LIMIT - 1, $LIMIT, $LIMIT + 1, $LIMIT + 5000,
                  2 * $LIMIT)
    {
        my $loc = $LOCS[$seq % 3];
        my ($a, undef, $f, $edge, $json) = subgraph_body(++$seq);
        check("subgraph $loc, $size bytes in chunks of $chunk",
              chunked("$loc/api/ingest/subgraph", pad_to($json, $size),
                      $chunk, $WRITER),
              $size > $LIMIT ? 413 : 200,
              sub { $size > $LIMIT ? absent($a)
                                   : moment_bad($a, %$f) || edge_bad($edge) });
    }
}
for my $size (4096, 4097, 10000) {
    my $name = 'agent-' . ++$seq;
    my $body = $JSON->encode({ agent_name => $name, permissions => 'read' });
    check("agents, $size bytes in chunks of 100",
          chunked('/file/api/agents/register', pad_to($body, $size), 100,
                  $ADMIN),
          $size > $AGENTS_LIMIT ? 413 : 200,
          sub { my $why = agent_bad($name);
                $size > $AGENTS_LIMIT ? ($why ? '' : "$name written")
                                      : $why });
}
is_deeply(\%bad, {}, 'chunked bodies in chunks of 100 to 3000 bytes: 200 '
          . 'up to the limit, read back the same; past it, a JSON 413');

is_deeply([ $ng->worker_pids ], \@workers, 'no worker was replaced');
my @died = grep { /exited on signal/ } split /\n/, $ng->error_log;
ok(!@died, 'no worker exited on a signal') or diag(join "\n", @died);

done();
