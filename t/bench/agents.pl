#!/usr/bin/perl
# Revocation of a writer's token across a fleet (issue 16), measure 11 of
# ./build.sh bench: two nginx A and B on one Redis with writer tokens
# configured.  N times: an agent is registered on A; B is given its token
# on a write (POST .../publish of a moment that is not there: past the
# token it is a 404, and nothing is written) on new connections until
# both of its workers hold it in their caches (no HMGET reaches Redis);
# then A revokes it, and B is asked again on a keep-alive connection as
# fast as it answers.  The delay is from A's 200 to B's first 401.
# Prints one JSON line on stdout.  Not part of the test suite.
#
#   perl -I t/lib t/bench/agents.pl [revocations]
use strict;
use warnings;
use Time::HiRes qw(time);
use HTTP::Tiny;
use JSON::PP;
use List::Util qw(max);
use Test::More;
use Clockchain::Test;

my $N = shift // 200;
my $ADMIN = 'bench-admin-token';
my $redis = start_redis();

my $conf = <<'CONF';
    clockchain_zone cc:8m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_admin_token_file %%PREFIX%%/admin.token;
    access_log off;
    server {
        listen 127.0.0.1:%%PORT%%;
        clockchain_service_key bench-key;
        location = /api/agents { clockchain_agents; }
        location /api/agents/ { clockchain_agents; }
        location /api/moments/ { clockchain_moments; }
    }
CONF
my %files = ('admin.token' => "$ADMIN\n");
my $A = start_nginx(redis => $redis, conf => $conf, files => \%files);
my $B = start_nginx(redis => $redis, conf => $conf, files => \%files);

my $W = '/api/moments/1850/may/03/1600/island/reykjavik/reykjavik/absent-0000/publish';
my %KEY = ('X-Service-Key' => 'bench-key', 'Content-Type' => 'application/json');
# no body on B's requests (publish's is optional): a body written apart
# from the headers waits for the delayed ACK, 40 ms of the client's

sub hmgets {
    my ($n) = $redis->cmd('INFO', 'commandstats') =~ /cmdstat_hmget:calls=(\d+)/;
    return $n // 0;
}

my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my (@ms, @polls);
for my $i (1 .. $N) {
    my $reg = $ua->post($A->url('/api/agents/register'), {
        headers => { %KEY, Authorization => "Bearer $ADMIN" },
        content => encode_json({ agent_name => "bench-$i" }) });
    die "register: $reg->{status}\n" unless $reg->{status} == 200;
    my $a = decode_json($reg->{content});
    my %h = (%KEY, Authorization => "Bearer $a->{token}");
    # new connections until two in a row send no HMGET: both workers hold it
    my $quiet = 0;
    for (1 .. 50) {
        my $before = hmgets();
        my $r = HTTP::Tiny->new->post($B->url($W), { headers => \%h });
        die "warm: $r->{status}\n" unless $r->{status} == 404;
        $quiet = hmgets() == $before ? $quiet + 1 : 0;
        last if $quiet >= 4;
    }
    my $poll = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
    die "B\n" unless $poll->post($B->url($W), { headers => \%h })->{status} == 404;
    my $del = $ua->request('DELETE', $A->url("/api/agents/$a->{agent_id}"),
                           { headers => { %KEY, Authorization => "Bearer $ADMIN" } });
    die "revoke: $del->{status}\n" unless $del->{status} == 200;
    my $t0 = time;
    my $n = 0;
    while (1) {
        $n++;
        my $r = $poll->post($B->url($W), { headers => \%h });
        last if $r->{status} == 401;
        die "B: $r->{status}\n" unless $r->{status} == 404;
        die "B never refused the token\n" if time - $t0 > 10;
    }
    push @ms, (time - $t0) * 1000;
    push @polls, $n;
}

my @s = sort { $a <=> $b } @ms;
my @p = sort { $a <=> $b } @polls;
my %res = (n => $N, median_ms => $s[int(@s / 2)], p99_ms => $s[int(0.99 * (@s - 1))],
           max_ms => max(@s), polls_median => $p[int(@p / 2)]);
print encode_json(\%res), "\n";
done();
