#!/usr/bin/perl
# Public moments from the zone (issue 15), measure 8 of ./build.sh bench:
#   8a. a hot public moment (a zone hit) against nginx's own `return 200`
#       of the same body, in the same nginx: wrk without a key, rounds
#       interleaved, the median of the rps ratios;
#   8b. publish propagation: N private moments, each read once without a
#       key on B (its 404 cached there), then published on A; the delay from
#       the publish's 200 on A to the first 200 without a key on B, which is
#       polled on a keep-alive connection as fast as it answers.
# Prints one JSON line on stdout.  Not part of the test suite.
#
#   perl -I t/lib t/bench/moments.pl [secs] [publishes]
use strict;
use warnings;
use Time::HiRes qw(time sleep);
use HTTP::Tiny;
use JSON::PP;
use List::Util qw(min max);
use Test::More;
use Clockchain::Test;

my $SECS = shift // 5;
my $N = shift // 200;
my $ROUNDS = 3;
my $P = 'clockchain:{cc}:v1:';

my $redis = start_redis();

my $HOT = '/1850/may/03/1600/island/reykjavik/reykjavik/hot-moment-0001';
my %node = (path => $HOT, name => 'A hot moment', visibility => 'public',
            created_by => 'system', year => '1850', month => 'may',
            month_num => '5', day => '3', time => '1600', country => 'island',
            region => 'reykjavik', city => 'reykjavik', slug => 'hot-moment-0001',
            one_liner => 'A moment that everybody reads at once', layer => '2',
            tags => '["science","law"]', figures => '["Someone Famous"]');
$redis->cmd('HSET', "${P}node:$HOT", %node);
# 8 neighbours, an edge each way: a body under the 4 KB of a conf
# parameter, for the reference
for my $i (1 .. 8) {
    my $o = sprintf '/1850/may/%02d/1200/island/reykjavik/reykjavik/neighbour-%04d',
                    1 + $i % 28, $i;
    $redis->cmd('HSET', "${P}node:$o", path => $o, name => "Neighbour $i",
                visibility => 'public', created_by => 'system', year => '1850');
    for my $pair ([$HOT, $o], [$o, $HOT]) {
        $redis->cmd('HSET', "${P}edges:$pair->[0]", "same_era|$pair->[1]",
                    encode_json({ source => $pair->[0], target => $pair->[1],
                                  type => 'same_era', weight => 0.3,
                                  created_by => 'auto' }));
    }
}

my $conf = sub {
    my ($extra) = @_;
    return <<"CONF";
    clockchain_zone cc:64m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    keepalive_requests 1000000;
    access_log off;
    server {
        listen 127.0.0.1:%%PORT%% backlog=4096;
        $KEYS
        location /api/moments/ { clockchain_moments; }
        location = /metrics { clockchain_metrics; }
        $extra
    }
CONF
};

my $A = start_nginx(redis => $redis, conf => $conf->(''));
my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my $body = $ua->get($A->url("/api/moments$HOT"))->{content};
die "no hot moment\n" unless $body =~ /^\{/;
# a conf parameter holds at most 4 KB: the body (3 KB before the
# moment's original shape, more since) is the concatenation of variables
# of 3000 bytes each, set by map blocks with a default only
die "a \$ in the body\n" if $body =~ /\$/;
my ($maps, $ref_text) = ('', '');
for (my ($i, $off) = (0, 0); $off < length $body; $i++, $off += 3000) {
    (my $part = substr($body, $off, 3000)) =~ s/([\\'])/\\$1/g;
    $maps .= "map \$host \$ref_moment_$i { default '$part'; }\n";
    $ref_text .= "\$ref_moment_$i";
}
my $B = start_nginx(redis => $redis, conf => $maps . $conf->(<<"REF"));
location = /ref/moment {
            default_type application/json;
            add_header ETag '"0123456789abcdef"';
            add_header Cache-Control 'public, max-age=0, must-revalidate';
            return 200 "$ref_text";
        }
REF

wait_for(10, sub { scalar(() = $B->error_log =~ /subscribed to /g) >= 2 });

sub wrk {
    my ($url, $secs) = @_;
    open my $fh, '-|', 'wrk', '-t2', '-c64', "-d${secs}s", '--latency', $url
        or die "wrk: $!\n";
    local $/;
    my $out = <$fh>;
    close $fh;
    my ($rps) = $out =~ /^Requests\/sec:\s+([\d.]+)/m or die "wrk:\n$out\n";
    die "wrk: non-2xx\n$out" if $out =~ /Non-2xx/;
    return $rps;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

sub pct {
    my ($p, @v) = @_;
    my @s = sort { $a <=> $b } @v;
    return $s[ max(0, min($#s, int($p / 100 * @s + 0.999999) - 1)) ];
}

# 8a
my $hot = $B->url("/api/moments$HOT");
my $ref = $B->url('/ref/moment');
die "not the same body\n" unless $ua->get($hot)->{content} eq $ua->get($ref)->{content};
wrk($hot, 1);
wrk($ref, 1);
my (@m, @r);
for (1 .. $ROUNDS) {
    push @m, wrk($hot, $SECS);
    push @r, wrk($ref, $SECS);
}
my $m = json_body(http(GET => $B->url('/metrics')));

# 8b
my @paths;
for my $i (1 .. $N) {
    my $p = sprintf '/1900/june/%02d/1200/france/ile-de-france/paris/published-%04d',
                    1 + $i % 28, $i;
    $redis->cmd('HSET', "${P}node:$p", path => $p, name => "Published $i",
                visibility => 'private', created_by => 'system', year => '1900');
    push @paths, $p;
}
my $ub = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my (@delay, @polls);
for my $p (@paths) {
    $ub->get($B->url("/api/moments$p")) for 1 .. 2;    # the 404, cached
    my $r = $ua->post($A->url("/api/moments$p/publish"),
                      { headers => { 'X-Service-Key' => 'test-key-1' } });
    my $t0 = time;
    die "publish: $r->{status}\n" unless $r->{status} == 200;
    my $n = 0;
    while (1) {
        $n++;
        last if $ub->get($B->url("/api/moments$p"))->{status} == 200;
        die "never published on B\n" if time - $t0 > 5;
    }
    push @delay, (time - $t0) * 1000;
    push @polls, $n;
}

print encode_json({
    hot_rps => median(@m), ref_rps => median(@r),
    ratio => median(map { $m[$_] / $r[$_] } 0 .. $#m),
    rounds => [ map { [ $m[$_], $r[$_] ] } 0 .. $#m ],
    hits => $m->{moments_cache_hits}, misses => $m->{moments_cache_misses},
    publishes => $N, median_ms => median(@delay), p99_ms => pct(99, @delay),
    max_ms => max(@delay), polls_median => median(@polls),
    body_bytes => length $body,
}), "\n";

done();
