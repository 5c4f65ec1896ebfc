# The retry reasons that t/40-operations.t does not see: a Flash that
# closes the connection counts a "connection" retry, a Flash out of credits
# (402) a "paused" one.  The runner counts them through
# ngx_http_clockchain_stats.h and /metrics reads the same counters.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0.1, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_attempts 2;
    clockchain_flash_retry_backoff 100ms 200ms;
    clockchain_flash_circuit_breaker failures=1000 pause=1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
        location = /metrics {
            clockchain_metrics;
        }
    }
CONF

sub metrics { json_body(http(GET => $ng->url('/metrics'))) // {} }

# ---------------------------------------------------------------------------
# Flash closes the connection: retried once, then failed

my $closed = created_ok(generate($ng, { query => 'closed probe [flash:close]' }),
                        'a job whose calls are closed on');
is(wait_job($ng, $closed->{job_id}, 20)->{status}, 'failed',
   'failed after its two attempts');

my $m = metrics();
is($m->{jobs_retried_connection}, 1, 'one retry for the connection');
is($m->{jobs_retried_paused}, 0, 'no pause yet');
is($m->{jobs_failed}, 1, 'jobs_failed 1');

# ---------------------------------------------------------------------------
# Flash answers 402: the runner pauses and counts it, the job stays queued

my $broke = created_ok(generate($ng, { query => 'credit probe [flash:402]' }),
                       'a job Flash has no credits for');
ok(wait_for(10, sub { (metrics()->{jobs_retried_paused} // 0) >= 1 }),
   'the pause is counted');
like($ng->error_log, qr/circuit breaker open/, 'error.log says the runner paused');

$m = metrics();
is($m->{jobs_retried_connection}, 1, 'still one connection retry');
is($m->{jobs_failed}, 1, 'the 402 failed no job');
isnt(json_body(get_job($ng, $broke->{job_id}))->{status}, 'failed',
     'the job is not failed');

my $res = http(GET => $ng->url('/metrics?format=prometheus'));
like($res->{content},
     qr/^clockchain_jobs_retried_total\{reason="connection"\} 1$/m,
     'prometheus: the connection reason');
like($res->{content},
     qr/^clockchain_jobs_retried_total\{reason="paused"\} [1-9]\d*$/m,
     'prometheus: the paused reason');

done();
