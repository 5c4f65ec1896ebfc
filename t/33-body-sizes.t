# Bodies of every size up to the documented limit, on generate and bulk
# (and the graph side: visibility bodies, search q, moment paths),
# with and without Idempotency-Key: each gets 200 or a JSON 4xx and no
# worker dies.  Sizes sweep nginx's pool, buffer and page boundaries, where
# the fingerprint buffer overflow (issue 13, item 1) and the 500 for bodies
# nginx spooled to an unreachable client_body_temp_path (item 2) hid.
#
# The nginx here is set up as `./build.sh run` sets up its own: the prefix
# is private to root (0700), so workers running as nobody cannot reach the
# temp paths, and client_body_buffer_size is left small.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Clockchain::Test;

my $LIMIT = 256 * 1024;    # clockchain_max_body_size's default

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, private => 1, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /tiny/generate {
            client_body_buffer_size 1k;
            clockchain_generate;
        }
        location = /tiny/bulk-generate {
            client_body_buffer_size 1k;
            client_body_in_file_only on;
            clockchain_bulk_generate;
        }
        location /api/moments/         { clockchain_moments; }
        location = /api/search         { clockchain_search; }
        location = /tiny/search {
            client_body_buffer_size 1k;
            clockchain_search;
        }
        location = /big/generate {
            client_max_body_size 512k;
            clockchain_max_body_size 1m;
            clockchain_generate;
        }
    }
EOF

my @workers = $ng->worker_pids;
is(scalar @workers, 2, 'two workers');
is(Clockchain::Test::Nginx::user_of($workers[0]), 'nobody',
   'workers run as nobody, as a packaged nginx runs them');

# a generate body of exactly $size bytes: the query, padded with JSON
# whitespace (legal anywhere between tokens)
sub generate_body {
    my ($size, $n) = @_;
    my $head = qq({"query": "body sweep $n");
    my $pad = $size - length($head) - 1;
    die "size $size too small" if $pad < 0;
    return $head . (' ' x $pad) . '}';
}

# a bulk body of exactly $size bytes: as many 400-character queries as fit
# (up to the 100 of clockchain_bulk_max), then whitespace
sub bulk_body {
    my ($size, $n) = @_;
    my @q;
    my $body;
    for my $i (1 .. 100) {
        my $try = encode_json({ queries => [ @q, { query => "bulk $n $i "
                                                   . ('x' x 390) } ] });
        last if length($try) > $size;
        push @q, { query => "bulk $n $i " . ('x' x 390) };
    }
    @q = ({ query => "bulk $n" }) unless @q;
    $body = encode_json({ queries => \@q });
    substr($body, -1, 0) = ' ' x ($size - length $body);
    return ($body, scalar @q);
}

sub post {
    my ($path, $body, %h) = @_;
    return http(POST => $ng->url($path), body => $body,
                headers => { 'Content-Type' => 'application/json',
                             'X-Service-Key' => 'test-key-1',
                             'X-Admin-Key' => 'admin-key', %h });
}

my @sizes = (1024, 2047, 2048, 2049, 4095, 4096, 4097, 8191, 8192, 8193,
             12000, 16383, 16384, 16385, 32768, 45000, 65535, 65536, 65537,
             131072, 200000, $LIMIT - 1, $LIMIT);

my $n = 0;
for my $size (@sizes) {
    for my $idem (0, 1) {
        $n++;
        my %h = $idem ? ('Idempotency-Key' => "sweep-g-$n") : ();
        my $res = post('/api/generate', generate_body($size, $n), %h);
        my $name = "generate, $size bytes" . ($idem ? ', Idempotency-Key' : '');
        is($res->{status}, 200, "$name: 200")
            or diag(substr($res->{content} // '', 0, 200));
        my $job = json_body($res);
        like(ref $job eq 'HASH' ? $job->{job_id} // '' : '', $UUID_RE,
             "$name: a job");

        my ($body, $q) = bulk_body($size, $n);
        $res = post('/api/bulk-generate', $body,
                    $idem ? ('Idempotency-Key' => "sweep-b-$n") : ());
        $name = "bulk of $q, $size bytes" . ($idem ? ', Idempotency-Key' : '');
        is($res->{status}, 200, "$name: 200")
            or diag(substr($res->{content} // '', 0, 200));
        my $jobs = json_body($res);
        is(ref $jobs eq 'ARRAY' ? scalar @$jobs : -1, $q, "$name: $q jobs");

        if ($idem) {
            # the replay goes through the same fingerprint
            $res = post('/api/bulk-generate', $body,
                        'Idempotency-Key' => "sweep-b-$n");
            is_deeply(json_body($res), $jobs, "$name: replayed");
        }
    }
}

# every size of a 32-byte stretch past the pool's largest small block: a
# write of a few bytes past a malloc()ed buffer corrupts the heap for one
# of them at least
for my $size (5000 .. 5031) {
    $n++;
    my $res = post('/api/generate', generate_body($size, $n),
                   'Idempotency-Key' => "dense-$n");
    is($res->{status}, 200, "generate, $size bytes, Idempotency-Key: 200");
}

# one past the limit: a JSON 413, nothing created
for my $idem (0, 1) {
    my %h = $idem ? ('Idempotency-Key' => "sweep-over-$idem") : ();
    my $res = no_job_created($redis, "over the limit ($idem)", sub {
        post('/api/generate', generate_body($LIMIT + 1, 0), %h)
    });
    is_error($res, 413, qr/too large.*262144/, "generate, limit + 1: 413");
    my ($body) = bulk_body($LIMIT + 1, 0);
    $res = no_job_created($redis, "bulk over the limit ($idem)", sub {
        post('/api/bulk-generate', $body, %h)
    });
    is_error($res, 413, qr/too large/, "bulk, limit + 1: 413");
}

# a chunked body (no Content-Length) at the limit and just past it
for my $size ($LIMIT - 10, $LIMIT + 10) {
    my $body = generate_body($size, "chunked $size");
    my $req = "POST /api/generate HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nX-Service-Key: test-key-1\r\n"
        . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (my $o = 0; $o < length $body; $o += 3000) {
        my $c = substr($body, $o, 3000);
        $req .= sprintf("%x\r\n%s\r\n", length $c, $c);
    }
    $req .= "0\r\n\r\n";
    my ($out) = raw_request($ng->port, $req, 5);
    my ($status) = $out =~ m{^HTTP/1\.1 (\d+)};
    is($status, $size <= $LIMIT ? 200 : 413, "chunked, $size bytes: status");
    like($out, qr{Content-Type: application/json}i,
         "chunked, $size bytes: a JSON answer");
}

# locations whose nginx buffers are smaller than the body, one set to spool
# every body to a file (which the workers could not write): still 200
for my $size (1500, 3000, 20000) {
    my $res = post('/tiny/generate', generate_body($size, "tiny $size"));
    is($res->{status}, 200, "client_body_buffer_size 1k, $size bytes: 200")
        or diag(substr($res->{content} // '', 0, 200));
    my ($body, $q) = bulk_body($size * 4, "tiny $size");
    $res = post('/tiny/bulk-generate', $body);
    is($res->{status}, 200, "client_body_in_file_only, bulk of "
       . length($body) . " bytes: 200")
        or diag(substr($res->{content} // '', 0, 200));
}

# a location whose limit is above nginx's client_max_body_size: nginx's is
# raised to it, so a body of exactly the limit is taken; one byte more is
# refused by nginx itself (its HTML page: client_max_body_size is checked
# before any handler runs)
{
    my $res = post('/big/generate', generate_body(1024 * 1024, 'big'));
    is($res->{status}, 200, 'clockchain_max_body_size 1m: a 1 MiB body, 200')
        or diag(substr($res->{content} // '', 0, 200));
    $res = post('/big/generate', generate_body(1024 * 1024 + 1, 'big'));
    is($res->{status}, 413, 'and 1 MiB + 1: 413');
}

# the graph side: a visibility body of every size around the pool and
# buffer boundaries up to its 4096-byte limit, then past it; q of every
# length around its 200-byte limit, escaped or not; moment paths around
# their 512-byte limit
my $P = 'clockchain:{cc}:v1:';
my $mpath = '/1776/july/04/1200/united-states/pennsylvania/philadelphia/sizes';
$redis->cmd('HSET', "${P}node:$mpath", 'path', $mpath, 'name', 'Sizes',
            'visibility', 'private', 'created_by', 'system', 'year', 1776);

sub visibility_body {
    my ($size, $vis) = @_;
    my $head = qq({"visibility": "$vis");
    return $head . (' ' x ($size - length($head) - 1)) . '}';
}

my %vis_bad;
my $i = 0;
for my $size (25, 26, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023,
              1024, 1025, 2047, 2048, 2049, 4095, 4096)
{
    my $vis = $i++ % 2 ? 'private' : 'public';
    my $res = http(PATCH => $ng->url("/api/moments$mpath/visibility"),
                   headers => { 'X-Service-Key' => 'test-key-1',
                                'Content-Type' => 'application/json' },
                   body => visibility_body($size, $vis));
    my $now = $redis->cmd('HGET', "${P}node:$mpath", 'visibility');
    $vis_bad{$size} = "$res->{status} $now"
        unless $res->{status} == 200 && $now eq $vis;
}
is_deeply(\%vis_bad, {}, 'PATCH visibility, bodies of 25 to 4096 bytes '
          . 'across the pool and buffer boundaries: each 200, each applied');
my $res = http(PATCH => $ng->url("/api/moments$mpath/visibility"),
               headers => { 'X-Service-Key' => 'test-key-1',
                            'Content-Type' => 'application/json' },
               body => visibility_body(4097, 'public'));
is_error($res, 413, qr/too large/i, 'and 4097 bytes: 413');

my %q_bad;
for my $n (1, 2, 127, 128, 199, 200, 201, 255, 256, 600, 2000) {
    for my $form ('plain', 'escaped') {
        # escaped: each character "é", two bytes and six in the URI
        my $q = $form eq 'plain' ? 'a' x $n : '%C3%A9' x int(($n + 1) / 2);
        my $bytes = $form eq 'plain' ? $n : 2 * int(($n + 1) / 2);
        my $want = $bytes <= 200 ? 200 : 400;
        for my $loc ('/api/search', '/tiny/search') {
            my $r = http(GET => $ng->url("$loc?q=$q"),
                         headers => { 'X-Service-Key' => 'test-key-1' });
            $q_bad{"$loc $form $n"} = $r->{status}
                unless $r->{status} == $want
                       && ($want == 200 || ($r->{content} // '') =~ /"detail":"q: /);
        }
    }
}
is_deeply(\%q_bad, {}, 'search q of 1 to 2000 bytes, plain and escaped: '
          . '200 up to 200 bytes, a 400 naming q past it');

my %path_bad;
for my $len (510, 511, 512, 513, 1024, 4000) {
    my $slug = 'x' x ($len - length($mpath) + length('sizes'));
    (my $p = $mpath) =~ s/sizes$/$slug/;
    my $r = http(GET => $ng->url("/api/moments$p"));
    $path_bad{$len} = $r->{status}
        unless $r->{status} == 404 || $r->{status} == 414;
}
is_deeply(\%path_bad, {}, 'moment paths of 510 to 4000 bytes: 404 (no such '
          . 'moment, whatever its form)');

is_deeply([ $ng->worker_pids ], \@workers, 'no worker was replaced');
my @died = grep { /exited on signal/ } split /\n/, $ng->error_log;
ok(!@died, 'no worker exited on a signal') or diag(join "\n", @died);

done();
