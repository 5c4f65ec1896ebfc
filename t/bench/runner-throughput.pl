#!/usr/bin/perl
# Runner throughput: N jobs created in bulk, time until all are completed,
# with the Flash stand-in answering at once. Prints jobs/s and the most
# Flash calls seen in flight. Not part of the test suite (no assertions).
#
#   perl -I t/lib t/bench/runner-throughput.pl [jobs] [max_calls]
use strict;
use warnings;
use Time::HiRes qw(time sleep);
use Test::More;
use Clockchain::Test;

my $jobs = shift // 2000;
my $max_calls = shift // 256;

my $redis = start_redis();
my $flash = start_flash(delay => 0, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_max_calls $max_calls;
    clockchain_max_pending 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_bulk_max 1000;
        $JOBS_LOCATIONS
    }
CONF

my $t0 = time;
my @ids;
while (@ids < $jobs) {
    my $n = $jobs - @ids > 1000 ? 1000 : $jobs - @ids;
    my $res = bulk($ng, { queries => [ map { { query => "bench job $_" } }
                                       1 .. $n ] });
    die "bulk: $res->{status} $res->{content}" unless $res->{status} == 200;
    push @ids, map { $_->{job_id} } @{ json_body($res) };
}
my $created = time;
wait_for(600, sub {
    $redis->cmd('ZCARD', $QUEUE_KEY) == 0
        && $redis->cmd('ZCARD', 'clockchain:{cc}:v1:processing') == 0
});
my $end = time;
my $done = grep { ($redis->hash($JOB_PREFIX . $_)->{status} // '') eq 'completed' } @ids;
my $calls = $flash->calls;
diag(sprintf "%d jobs: created in %.2f s, all finished %.2f s after the "
     . "first POST: %.0f jobs/s; %d completed; Flash calls %d, most in "
     . "flight %d (clockchain_flash_max_calls %d)",
     $jobs, $created - $t0, $end - $t0, $jobs / ($end - $t0), $done,
     $calls->{total}, $calls->{max_in_flight}, $max_calls);
ok(1);
done();
