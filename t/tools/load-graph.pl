#!/usr/bin/perl
#
# A graph of N synthetic nodes written into a Redis through complete.lua
# itself (the same indexes, edges and counters as the runner's), for
# measuring the read indexes: memory per node and Redis time per read.
# Not part of ./build.sh test; nothing it writes is committed.
#
#   perl t/tools/load-graph.pl PORT [NODES (100000)] [CAP (3)] [PREFIX]
#
# Each node: a year of about 2500 (-500..2025), a place of 60 countries x
# 5 regions x 5 cities, a name of 3-5 words, a one-liner of 12-18 (stop
# words among them), 3 tags and 2 two-word figures, from a vocabulary of
# 40000 words drawn with Zipf's law; half public, 30% private of
# "system", 20% private of one of 100 users.  Its search words are
# normalised here as ngx_http_clockchain_words() would (they are ASCII).
# CAP is clockchain_edges_max: small, so that loading is quick (the read
# indexes do not depend on it).  Jobs go through redis-cli --pipe, 500
# nodes a batch; a node takes about 1 ms of Redis.

use strict;
use warnings;
use JSON::PP;
use Digest::SHA qw(sha1_hex);

my ($port, $nodes, $cap, $P) = @ARGV;
die "usage: $0 PORT [NODES] [CAP] [PREFIX]\n" unless $port;
$nodes //= 100000;
$cap //= 3;
$P //= 'clockchain:{cc}:v1:';

srand(42);
my $json = JSON::PP->new->canonical;

my @syl = qw(ka to ri ne sa mu lo pe di ga ven tor mar cel an bri que dor
             lis tha ros gu fel ish om ber can hal zin);
my (%seen, @vocab);
while (@vocab < 40000) {
    my $w = join '', map { $syl[int rand @syl] } 1 .. 2 + int rand 3;
    push @vocab, $w unless $seen{$w}++;
}
my @stop = qw(the of and in to on at by for with from as after its his her);

# Zipf: weight 1/rank
my @cum;
my $sum = 0;
for my $i (1 .. @vocab) {
    $sum += 1 / $i;
    push @cum, $sum;
}
sub word {
    my $x = rand $sum;
    my ($lo, $hi) = (0, $#cum);
    while ($lo < $hi) {
        my $mid = int(($lo + $hi) / 2);
        if ($cum[$mid] < $x) { $lo = $mid + 1 } else { $hi = $mid }
    }
    return $vocab[$lo];
}
sub words { join ' ', map { word() } 1 .. $_[0] }

my @months = qw(january february march april may june july august
                september october november december);

sub node {
    my ($i) = @_;
    my $y = -500 + int rand 2526;
    my $m = 1 + int rand 12;
    my $d = 1 + int rand 28;
    my $hhmm = sprintf '%02d%02d', int rand 24, 15 * int rand 4;
    my $c = 'country-' . int rand 60;
    my $r = 'region-' . int rand 5;
    my $ci = 'city-' . int rand 5;
    my $name = ucfirst words(3 + int rand 3);
    my $slug = join('-', split / /, lc $name) . sprintf('-%04x', $i % 65536);
    my $one = join ' ', map { rand() < 0.3 ? $stop[int rand @stop] : word() }
                            1 .. 12 + int rand 7;
    my @tags = map { word() } 1 .. 3;
    my @figs = map { ucfirst(word()) . ' ' . ucfirst(word()) } 1 .. 2;
    my $u = rand;
    my ($vis, $by) = $u < 0.5 ? ('public', 'system')
                   : $u < 0.8 ? ('private', 'system')
                   : ('private', 'user' . int rand 100);
    my $path = "/$y/$months[$m - 1]/" . sprintf('%02d', $d)
               . "/$hhmm/$c/$r/$ci/$slug";
    my (@search, %at);
    my $add = sub {
        my ($text, $class) = @_;
        for my $w (split /[^a-z0-9]+/, lc $text) {
            next if length $w < 2;
            $w = substr $w, 0, 12;
            if (exists $at{$w}) {
                $search[$at{$w}][1] = $class if $class < $search[$at{$w}][1];
            } elsif (@search < 48) {
                push @search, [$w, $class];
                $at{$w} = $#search;
            }
        }
    };
    $add->($name, 0);
    $add->($_, 2) for @tags, @figs;
    $add->($one, 1);
    my %node = (
        path => $path, name => $name, one_liner => $one, year => $y,
        month => $months[$m - 1], month_num => $m, day => $d, time => $hhmm,
        country => $c, region => $r, city => $ci, slug => $slug,
        figures => \@figs, tags => \@tags, image_url => undef, layer => 2,
        type => 'event', visibility => $vis, created_by => $by,
        created_at => '2026-01-01T00:00:00.000000Z', source_type => 'flash',
        sort_key => $y * 100000000 + $m * 1000000 + $d * 10000 + $hhmm,
        search => \@search,
    );
    return ($path, $json->encode(\%node));
}

sub resp { join '', '*' . @_ . "\r\n", map { '$' . length($_) . "\r\n$_\r\n" } @_ }

# complete.lua as the module compiles it (its "-- #include lib/X.lua")
sub lua_script {
    my ($name) = @_;
    open my $fh, '<', "src/lua/$name.lua" or die "src/lua/$name.lua: $!";
    local $/;
    my $text = <$fh>;
    $text =~ s{^-- #include (\S+)\.lua\n}{lua_script($1)}gme;
    return $text;
}
my $lua = lua_script('complete');
my $sha = sha1_hex($lua);
system('redis-cli', '-p', $port, 'SCRIPT', 'LOAD', $lua) == 0
    or die "SCRIPT LOAD failed\n";

my $batch = 500;
for (my $i = 0; $i < $nodes; $i += $batch) {
    open my $pipe, '|-', "redis-cli -p $port --pipe >/dev/null"
        or die "redis-cli: $!";
    binmode $pipe;
    for my $j ($i .. ($i + $batch > $nodes ? $nodes : $i + $batch) - 1) {
        my $id = sprintf '00000000-0000-4000-8000-%012d', $j;
        my ($path, $node) = node($j);
        print {$pipe} resp('HSET', "${P}job:$id", 'status', 'processing',
                           'token', '7', 'created_at',
                           '2026-01-01T00:00:00.000000Z'),
                      resp('ZADD', "${P}processing", 1, $id),
                      resp('EVALSHA', $sha, 2, "${P}job:$id", "${P}processing",
                           '7', $id, '2026-01-01T00:01:00.000000Z', $path,
                           $node, $P, $cap, 1, "${P}events", 1);
    }
    close $pipe or die "redis-cli --pipe failed\n";
    printf STDERR "%d nodes\r", $i + $batch if ($i / $batch) % 20 == 0;
}
print STDERR "\n";
