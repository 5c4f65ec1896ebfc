# Public moments from the shared zone (issue 15): GET /api/moments/{path}
# without a key is answered from the zone once read, with an ETag and
# Cache-Control, If-None-Match is 304, and both need no Redis; what a fleet
# caches follows the events channel:
# 1. ETag present and stable, Cache-Control per clockchain_moments_max_age,
#    a keyed answer neither cached nor tagged;
# 2. hits and 304s send nothing to Redis (MONITOR);
# 3. two nginx on one Redis: a moment published on A is readable without a
#    key on B once B hears the event, though B cached its 404; unpublished,
#    404 on B again;
# 4. a completion that adds an edge to a cached public moment: B's next
#    answer shows it;
# 5. a change nobody heard (written straight into Redis) is served from the
#    zone until the subscription comes back, and not after;
# 6. a zone full of moments: moments take at most half of it, and jobs
#    keep theirs.
# Each step waits on the event (B's moments_events counter, its "subscribed"
# log line), never on a clock.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');

my $A = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location /api/moments/ { clockchain_moments; }
    }
CONF

my $B = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        location /api/moments/ { clockchain_moments; }
        location /api/v1/moments/ {
            clockchain_moments;
            clockchain_moments_max_age 5m;
        }
        location = /metrics { clockchain_metrics; }
    }
CONF

my $P = 'clockchain:{cc}:v1:';
my $SK = 'test-key-1';

sub pub {
    my ($ng, $path, %h) = @_;
    my $prefix = delete $h{prefix} // '/api/moments';
    return http(GET => $ng->url("$prefix$path"), headers => \%h);
}

sub metric {
    my ($ng, $name) = @_;
    return json_body(http(GET => $ng->url('/metrics')))->{$name};
}

# runs $do, then waits until both of B's workers heard one more message on
# the moments channel (each worker counts what it hears)
sub heard_on_b {
    my ($name, $do) = @_;
    my $before = metric($B, 'moments_events');
    my @r = $do->();
    ok(wait_for(10, sub { metric($B, 'moments_events') >= $before + 2 }),
       "$name: B hears it");
    return wantarray ? @r : $r[0];
}

sub make {
    my ($query, %body) = @_;
    return completed_moment($A, $query, body => \%body, secs => 20);
}

sub edges_to {
    my ($m, $path) = @_;
    # an edge names the other moment as its target (outgoing) or its
    # source (incoming)
    return scalar grep { ($_->{target} // '') eq $path
                         || ($_->{source} // '') eq $path }
                  @{ $m->{edges} // [] };
}

# ---------------------------------------------------------------------------
# 1. ETag, Cache-Control

my $x = heard_on_b('a public moment is made',
                   sub { make('cache probe 1850 harbour', visibility => 'public') });

my $r1 = pub($B, $x);
is($r1->{status}, 200, 'no key: a public moment, 200');
my $etag = $r1->{headers}{etag} // '';
like($etag, qr/^"[0-9a-f]{16}"$/, 'it carries an ETag');
is($r1->{headers}{'cache-control'}, 'public, max-age=0, must-revalidate',
   'Cache-Control: max-age 0 by default, revalidated');
# a cache outside nginx must not give this answer to a read with a key
is($r1->{headers}{vary}, 'X-Service-Key', 'Vary: X-Service-Key');
my $hits = metric($B, 'moments_cache_hits');
my $r2 = pub($B, $x);
is($r2->{headers}{etag}, $etag, 'the ETag is stable');
is($r2->{content}, $r1->{content}, 'and so is the body');
is(metric($B, 'moments_cache_hits'), $hits + 1, 'the second read is a zone hit');
is(pub($A, $x)->{headers}{etag}, $etag, 'the same ETag on another nginx');

is(pub($B, $x, prefix => '/api/v1/moments')->{headers}{'cache-control'},
   'public, max-age=300, must-revalidate', 'clockchain_moments_max_age 5m');

my $k = pub($B, $x, 'X-Service-Key' => $SK);
is($k->{status}, 200, 'with a key: 200');
is($k->{headers}{'cache-control'}, 'no-store', 'a keyed answer: no-store');
ok(!exists $k->{headers}{etag}, 'and no ETag');

my $h = http(HEAD => $B->url("/api/moments$x"));
is($h->{status}, 200, 'HEAD from the zone: 200');
is($h->{headers}{etag}, $etag, 'HEAD: the ETag');
is($h->{content} // '', '', 'HEAD: no body');

# ---------------------------------------------------------------------------
# 2. 304, and no Redis for hits and 304s

my $nm = pub($B, $x, 'If-None-Match' => $etag);
is($nm->{status}, 304, 'If-None-Match with the ETag: 304');
is($nm->{content} // '', '', '304: no body');
is($nm->{headers}{etag}, $etag, '304: the ETag');
is($nm->{headers}{vary}, 'X-Service-Key', '304: Vary: X-Service-Key');
is(pub($B, $x, 'If-None-Match' => qq{"0000000000000000", W/$etag})->{status},
   304, 'a weak ETag in a list: 304');
my $other = pub($B, $x, 'If-None-Match' => '"0000000000000000"');
is($other->{status}, 200, 'another ETag: 200');
is($other->{content}, $r1->{content}, '... with the body');

# every command Redis runs, while B answers from its zone; the private
# moment is made first, as its edges change the public one's answer
my $private = heard_on_b('a private moment is made',
                         sub { make('cache probe private 1300 monastery') });
my $xr = pub($B, $x);
$etag = $xr->{headers}{etag};
my $mon = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                PeerPort => $redis->port, Proto => 'tcp')
    or die "monitor: $!";
print {$mon} "MONITOR\r\n";
my $seen = '';
sub monitor_until {
    my ($marker) = @_;
    my $end = time + 10;
    while (time < $end && index($seen, $marker) < 0) {
        my $sel = '';
        vec($sel, fileno($mon), 1) = 1;
        next unless select($sel, undef, undef, 0.2);
        sysread($mon, $seen, 65536, length $seen) or last;
    }
    return index($seen, $marker) >= 0;
}
ok(monitor_until('+OK'), 'MONITOR is on');

my (@st, @nm);
push @st, pub($B, $x)->{status} for 1 .. 20;
push @nm, pub($B, $x, 'If-None-Match' => $etag)->{status} for 1 .. 20;
is(pub($B, $private)->{status}, 404, 'a private moment: 404 (read from Redis)');
$redis->cmd('ECHO', 'monitor-marker');
ok(monitor_until('monitor-marker'), 'MONITOR saw everything up to now');
is_deeply([ \@st, \@nm ], [ [ (200) x 20 ], [ (304) x 20 ] ],
          '20 hits and 20 304s');
ok(index($seen, $private) >= 0, 'the miss went to Redis (MONITOR sees it)');
ok(index($seen, $x) < 0, 'the hits and the 304s did not')
    or diag(join "\n", grep { index($_, $x) >= 0 } split /\n/, $seen);
close $mon;

# ---------------------------------------------------------------------------
# 3. publish on A, read on B

my $p = heard_on_b('a private moment is made',
                   sub { make('cache probe 1420 vineyard') });
is(pub($B, $p)->{status}, 404, 'private: 404 on B');
$hits = metric($B, 'moments_cache_hits');
is(pub($B, $p)->{status}, 404, 'still 404 on B');
is(metric($B, 'moments_cache_hits'), $hits + 1, '... from the zone');

my $pr = heard_on_b('publish on A', sub {
    http(POST => $A->url("/api/moments$p/publish"),
         headers => { 'X-Service-Key' => $SK })
});
is($pr->{status}, 200, 'published on A');
my $after = pub($B, $p);
is($after->{status}, 200, 'readable without a key on B once B heard it');
is(json_body($after)->{path}, $p, '... the moment');

my $ur = heard_on_b('unpublish on A', sub {
    http(PATCH => $A->url("/api/moments$p/visibility"),
         headers => { 'X-Service-Key' => $SK },
         json => { visibility => 'private' })
});
is($ur->{status}, 200, 'made private on A');
is(pub($B, $p)->{status}, 404, '404 on B from then on');
is(pub($B, $p)->{status}, 404, '... and on');

# read your own write: the nginx that changed a moment answers the change
# at once, without waiting for the event to come back to it (t/36 read a
# moment right after publishing it and, now and then, got the cached 404)
my %wrong;
for my $i (1 .. 60) {
    my $vis = $i % 2 ? 'public' : 'private';
    my $r = http(PATCH => $A->url("/api/moments$p/visibility"),
                 headers => { 'X-Service-Key' => $SK },
                 json => { visibility => $vis });
    my $st = pub($A, $p)->{status};
    $wrong{"$vis $r->{status} $st"}++
        if $r->{status} != 200 || $st != ($vis eq 'public' ? 200 : 404);
}
is_deeply(\%wrong, {}, '60 changes on A, each read at once on A: never the '
          . 'answer from before the change');

# ---------------------------------------------------------------------------
# 4. a new edge to a cached public moment

my $before = json_body(pub($B, $x));
my $y = heard_on_b('a public neighbour completes',
                   sub { make('cache probe 1852 harbour', visibility => 'public') });
is(edges_to($before, $y), 0, 'the cached answer had no edge to it');
my $now = pub($B, $x);
ok(edges_to(json_body($now), $y) > 0, "B's next answer shows the edge");
isnt($now->{headers}{etag}, $etag, 'and has another ETag');
is(pub($B, $x, 'If-None-Match' => $etag)->{status}, 200,
   'the old ETag is not 304 any more');

# ---------------------------------------------------------------------------
# 5. a change nobody heard, then the subscription comes back

sub subscribed_lines {
    return scalar(() = $B->error_log =~ /clockchain: subscribed to /g);
}

my $name = json_body(pub($B, $x))->{name};
$redis->cmd('HSET', "${P}node:$x", 'name', 'Renamed unheard');
is(json_body(pub($B, $x))->{name}, $name,
   'a change written straight into Redis is not heard: the zone answers');

my $subs = subscribed_lines();
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
ok(wait_for(10, sub { subscribed_lines() >= $subs + 2 }),
   "B's workers subscribe again");
is(json_body(pub($B, $x))->{name}, 'Renamed unheard',
   'after the subscription came back, the moment is read again');

# ---------------------------------------------------------------------------
# 6. a zone full of moments

my $C = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone small:256k;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location /api/moments/ { clockchain_moments; }
        location = /metrics { clockchain_metrics; }
    }
CONF
ok(wait_for(10, sub {
    2 <= scalar(() = $C->error_log =~ /clockchain: subscribed to /g)
}), "C's workers subscribe");

my $filler = 'x' x 1500;
sub fill {
    my ($from, $n) = @_;
    my @paths;
    for my $i ($from .. $from + $n - 1) {
        my $path = sprintf '/1700/may/01/1200/france/ile-de-france/paris/fill-%04d', $i;
        $redis->cmd('HSET', "${P}node:$path", 'path', $path, 'name', "Fill $i",
                    'one_liner', $filler, 'visibility', 'public',
                    'created_by', 'system', 'year', '1700');
        push @paths, $path;
    }
    my @bad = grep { $_ != 200 } map { pub($C, $_)->{status} } @paths;
    is(scalar @bad, 0, "$n moments read");
    return @paths;
}

my @m = fill(0, 150);
my $moments = metric($C, 'zone_moments');
my $bytes = metric($C, 'zone_moments_bytes');
ok($moments > 0 && $moments < 150, "the zone keeps some ($moments), not all")
    or diag("zone_moments $moments");
ok($bytes <= 128 * 1024, "in at most half the zone ($bytes bytes)");
ok(pub($C, $m[-1])->{status} == 200
   && metric($C, 'moments_cache_hits') >= 1, 'the last read is a hit');

my @jobs = map { created_ok(generate($C, { query => "zone job $_" }), "job $_")
               } 1 .. 40;
is(metric($C, 'zone_jobs'), 40, 'the jobs are cached beside the moments');
fill(150, 150);
is(metric($C, 'zone_jobs'), 40, 'more moments do not push jobs out');
is(get_job($C, $jobs[0]{job_id})->{status}, 200, 'a job reads');
ok(metric($C, 'zone_moments_bytes') <= 128 * 1024, 'moments are still bounded');

done();
