# Operations: the metrics location (JSON, and Prometheus' text format
# checked line by line as promtool would), the access-log variables, and
# retention: finished jobs expire from Redis and from the zone, nodes stay.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $redis = start_redis();
my $flash = start_flash(delay => 0.2, key => 'fk');
my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]};
    clockchain_flash_key fk;
    clockchain_flash_attempts 2;
    clockchain_flash_retry_backoff 100ms 200ms;
    clockchain_job_retention completed=3s failed=4s;
    log_format jobs '\$request_method \$uri \$status job=\$clockchain_job_id '
                    'state=\$clockchain_job_status user=\$clockchain_user';
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        access_log logs/jobs.log jobs;
        $JOBS_LOCATIONS
        location = /metrics {
            clockchain_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }
CONF

# some work: completed, failed after a retry, a 500 that is retried
my @ok = map { created_ok(generate($ng, { query => "metric probe $_" },
                                   headers => { 'X-User-Id' => 'carol' }),
                         "job $_") } 1 .. 3;
my $bad = created_ok(generate($ng, { query => 'metric probe [flash:500]' }), 'failing job');
for my $j (@ok, $bad) {
    wait_job($ng, $j->{job_id}, 20);
}
my $done = json_body(get_job($ng, $ok[0]{job_id}));
is($done->{status}, 'completed', 'completed');
is(json_body(get_job($ng, $bad->{job_id}))->{status}, 'failed', 'failed');
# event: the queue gauges, which the runner refreshes from Redis once a
# second, show the queue as Redis now holds it (empty)
wait_for(10, sub {
    my $g = json_body(http(GET => $ng->url('/metrics'))) // {};
    return ($g->{jobs_pending} // -1) == 0 && ($g->{jobs_processing} // -1) == 0;
});

# ---------------------------------------------------------------------------
# JSON

my $res = http(GET => $ng->url('/metrics'));
is($res->{status}, 200, 'metrics: 200');
like($res->{headers}{'content-type'}, qr{^application/json}, 'JSON by default');
my $m = json_body($res) // {};
is($m->{jobs_created}, 4, 'jobs_created 4');
is($m->{jobs_completed}, 3, 'jobs_completed 3');
is($m->{jobs_failed}, 1, 'jobs_failed 1');
is($m->{jobs_stalled}, 0, 'jobs_stalled 0: no lease ran out');
is($m->{jobs_retried_status}, 1, 'one retry for a status');
is($m->{jobs_retried_timeout}, 0, 'no retry for a timeout');
is($m->{jobs_pending}, 0, 'jobs_pending 0');
is($m->{jobs_processing}, 0, 'jobs_processing 0');
is($m->{flash_calls_in_flight}, 0, 'no call in flight');
is($m->{flash_call_duration_seconds}{count}, 5, 'five Flash calls timed');
cmp_ok($m->{flash_call_duration_seconds}{sum}, '>=', 0.8, 'their sum in seconds');
is($m->{flash_call_duration_seconds}{buckets}{'1.000000'}, 5, 'all under 1 s');
cmp_ok($m->{redis_command_duration_seconds}{count}, '>', 10, 'Redis round trips timed');
cmp_ok($m->{zone_jobs}, '>=', 4, 'zone_jobs');
cmp_ok($m->{zone_pages}, '>', $m->{zone_pages_free}, 'zone pages in use');
my %workers = map { $_ => 1 } $ng->worker_pids;
ok($workers{ $m->{runner_pid} }, 'runner_pid is a worker');

# ---------------------------------------------------------------------------
# Prometheus

sub check_exposition {
    my ($text) = @_;
    my @err;
    my (%family, %type, %seen, @order);
    my $current = '';
    push @err, 'no trailing newline' unless $text =~ /\n\z/;
    for my $line (split /\n/, $text) {
        if ($line =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/) {
            push @err, "HELP twice for $1" if $family{$1}{help}++;
            next;
        }
        if ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/) {
            push @err, "TYPE twice for $1" if $type{$1};
            push @err, "samples of $1 before its TYPE" if $family{$1}{samples};
            $type{$1} = $2;
            $current = $1;
            push @order, $1;
            next;
        }
        if ($line =~ /^#/) { push @err, "bad comment: $line"; next }
        unless ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$/) {
            push @err, "bad sample: $line";
            next;
        }
        my ($name, $labels, $value) = ($1, $3 // '', $4);
        my $base = $name;
        $base =~ s/_(bucket|sum|count)$// if ($type{$current} // '') eq 'histogram';
        push @err, "$name is not in the family $current" unless $base eq $current;
        push @err, "duplicate series $name\{$labels}" if $seen{"$name\{$labels}"}++;
        $family{$base}{samples}++;
        push @{ $family{$base}{series} }, [ $name, $labels, $value ];
    }
    for my $f (@order) {
        push @err, "$f has no HELP" unless $family{$f}{help};
        push @err, "$f has no samples" unless $family{$f}{samples};
        push @err, "counter $f does not end in _total"
            if $type{$f} eq 'counter' && $f !~ /_total$/;
        if ($type{$f} eq 'histogram') {
            my @b = grep { $_->[0] eq "${f}_bucket" } @{ $family{$f}{series} };
            my ($sum) = grep { $_->[0] eq "${f}_sum" } @{ $family{$f}{series} };
            my ($count) = grep { $_->[0] eq "${f}_count" } @{ $family{$f}{series} };
            push @err, "$f lacks _sum or _count" unless $sum && $count;
            push @err, "$f lacks buckets" unless @b;
            my ($prev_le, $prev) = (-1, -1);
            for my $bk (@b) {
                my ($le) = $bk->[1] =~ /le="([^"]+)"/;
                push @err, "$f bucket without le" unless defined $le;
                next unless defined $le;
                my $num = $le eq '+Inf' ? 9**9**9 : $le;
                push @err, "$f buckets not ascending at $le" if $num <= $prev_le;
                push @err, "$f buckets not cumulative at $le" if $bk->[2] < $prev;
                ($prev_le, $prev) = ($num, $bk->[2]);
            }
            push @err, "$f last bucket is not +Inf" unless @b && $b[-1][1] =~ /le="\+Inf"/;
            push @err, "$f _count differs from the +Inf bucket"
                if $count && @b && $count->[2] != $b[-1][2];
        }
    }
    return @err;
}

$res = http(GET => $ng->url('/metrics?format=prometheus'));
is($res->{status}, 200, 'prometheus: 200');
is($res->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'the exposition content type');
my @err = check_exposition($res->{content});
is_deeply(\@err, [], 'the exposition format is valid') or diag($res->{content});
like($res->{content}, qr/^clockchain_jobs_created_total 4$/m, 'a counter');
like($res->{content}, qr/^clockchain_jobs_retried_total\{reason="status"\} 1$/m,
     'retries by reason');
like($res->{content}, qr/^clockchain_flash_call_duration_seconds_count 5$/m, 'a histogram');
like($res->{content}, qr/^# TYPE clockchain_jobs_pending gauge$/m, 'a gauge');

$res = http(GET => $ng->url('/metrics'),
            headers => { Accept => 'text/plain; version=0.0.4' });
like($res->{headers}{'content-type'}, qr{^text/plain}, 'Accept: text/plain gives the text format');
is_deeply([ check_exposition($res->{content}) ], [], '... valid too');

# our own test of the checker: a broken exposition is caught
ok(scalar check_exposition("# TYPE x counter\nx 1\n"), 'the checker catches a bad counter');
ok(scalar check_exposition("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
   'the checker catches a non-cumulative histogram');

# metrics never touch Redis: they answer with Redis away
$redis->stop;
is(http(GET => $ng->url('/metrics'))->{status}, 200, 'metrics answer while Redis is down');
$redis->start;
ok(wait_for(10, sub { generate($ng, { query => 'redis is back' })->{status} == 200 }),
   'Redis back');

# ---------------------------------------------------------------------------
# variables

ok(wait_for(5, sub { _log() =~ /GET \S+ 200 job=\Q$ok[0]{job_id}\E state=completed/ }),
   'the access log shows the job and its state')
    or diag(_log());
like(_log(), qr/POST \/api\/generate 200 job=\Q$ok[1]{job_id}\E state=pending user=carol/,
     '... the job a POST created, and its user');
is(http(POST => $ng->url('/api/generate'), json => { query => 'no key' })->{status},
   401, 'a request without a key');
ok(wait_for(3, sub { _log() =~ m{POST /api/generate 401 job=- state=- user=-} }),
   '... "-" where a request touched no job');

sub _log { Clockchain::Test::_slurp($ng->prefix . '/logs/jobs.log') }

# ---------------------------------------------------------------------------
# retention: completed jobs go after 3 s, failed after 4 s, nodes stay

my $ttl = $redis->cmd('PTTL', $JOB_PREFIX . $ok[2]{job_id});
ok($ttl > 0 && $ttl <= 3000, "a completed job has a TTL ($ttl ms)");
$ttl = $redis->cmd('PTTL', $JOB_PREFIX . $bad->{job_id});
ok($ttl > 0 && $ttl <= 4000, "a failed job has a TTL ($ttl ms)");
my $path = $done->{path};
is($redis->cmd('PTTL', "clockchain:{cc}:v1:node:$path"), -1, 'the node has no TTL');

ok(wait_for(6, sub { get_job($ng, $ok[0]{job_id})->{status} == 404 }),
   'an expired completed job: 404 (the zone honours the expiry)');
is(get_job($ng, $bad->{job_id})->{status}, 200, 'the failed job is still kept');
ok(wait_for(4, sub { get_job($ng, $bad->{job_id})->{status} == 404 }),
   'then it expires too');
ok($redis->cmd('EXISTS', "clockchain:{cc}:v1:node:$path"), 'the node is still there');

done();
