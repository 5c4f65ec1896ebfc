# Jobs survive an nginx restart and a reload; Redis going away (stopped or
# hung) gives 503 + Retry-After for writes while cached jobs are still
# served; the module reconnects when Redis comes back.
#
# "Answered, not hung" is structural here: the client waits 10 s, five to
# ten times Redis' timeout=; and what answered is an event in error.log
# (the lost connection, the timer that ran out).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $UNKNOWN = '8b0f2c1e-3a4d-4e5f-9a6b-7c8d9e0f1a2b';

# poll POST /api/generate until $n in a row answer 200 (at most $secs)
sub recovers {
    my ($ng, $secs, $n, $name) = @_;
    my ($streak, $last) = (0, undef);
    my $t0 = time;
    my $ok = wait_for($secs, sub {
        $last = generate($ng, { query => "Recovery probe $name" });
        $streak = $last->{status} == 200 ? $streak + 1 : 0;
        return $streak >= $n;
    });
    ok($ok, "$name: POST answers 200 again ($n in a row) within $secs s")
        or diag("last: $last->{status} $last->{content}");
    note(sprintf '%s: recovered after %.1f s', $name, time - $t0);
    return $ok;
}

# the nginx of each part: timeout= on the clockchain_redis line, if any
sub conf {
    my ($redis_args) = @_;
    $redis_args //= '';
    return <<"EOF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%$redis_args;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF
}

sub count_log { my ($ng, $re) = @_; return scalar(() = $ng->error_log =~ /$re/g) }

sub is_unavailable {
    my ($res, $name, %o) = @_;
    is_error($res, 503, undef, $name);
    if ($o{retry_after}) {
        like($res->{headers}{'retry-after'} // '', qr/^\s*\d+\s*$/,
             "$name: Retry-After header (seconds)");
    }
}

# ---------------------------------------------------------------------------
# A. nginx restart: every job comes back (from Redis)
{
    my $redis = start_redis();
    my $ng = start_nginx(redis => $redis, conf => conf());
    my @jobs = grep { $_ } map {
        created_ok(generate($ng, { query => "Restart survival $_" }),
                   "restart: create job $_")
    } 1 .. 5;
    my $b = json_body(bulk($ng, { queries => [ { query => 'Restart bulk a' },
                                               { query => 'Restart bulk b' } ] }));
    push @jobs, @$b if ref $b eq 'ARRAY';
    is(scalar @jobs, 7, 'restart: 7 jobs created');

    ok($ng->stop, 'restart: nginx stops gracefully');
    ok(!$ng->running, 'restart: nginx is down');
    $ng->start;
    for my $j (@jobs) {
        my $res = get_job($ng, $j->{job_id});
        is($res->{status}, 200, "restart: GET $j->{job_id} -> 200");
        is_deeply(json_body($res), $j, 'restart: same object as before');
    }
    is_error(get_job($ng, $UNKNOWN), 404, 'Job not found',
             'restart: unknown id still 404');
}

# ---------------------------------------------------------------------------
# B. Redis stopped, then started again (same port and dir, appendonly)
{
    my $redis = start_redis();
    my $ng = start_nginx(redis => $redis, conf => conf(' timeout=2s'));
    my $job = created_ok(generate($ng, { query => 'Created before Redis stops' }),
                         'redis down: job created while Redis is up');
    my $id = $job ? $job->{job_id} : $UNKNOWN;

    $redis->stop;
    ok(!$redis->running, 'redis down: redis-server stopped');
    # event: both workers lost their connection: they answer from that
    wait_for(10, sub { count_log($ng, qr/lost the connection to redis/) >= 2 });

    for my $i (1 .. 3) {
        my $res = generate($ng, { query => "Created while Redis is down $i" });
        is_unavailable($res, "redis down: POST $i -> 503", retry_after => 1);
        # structural: the client waits 10 s, five times timeout=2s
        ok($res->{status} == 503, "redis down: POST $i answered, not hung (client waits 10 s)");
    }
    is_unavailable(bulk($ng, { queries => [ { query => 'Bulk while down' } ] }),
                   'redis down: bulk POST -> 503', retry_after => 1);
    # the request is finished: with "Connection: close" the server closes
    # the connection after the 503 (a leaked request would keep it open)
    for my $case (['/api/generate', '{"query": "Raw request while down"}'],
                  ['/api/bulk-generate', '{"queries": [{"query": "Raw bulk"}]}']) {
        my ($path, $body) = @$case;
        my ($resp, $closed) = raw_request($ng->port,
            "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . "X-Service-Key: test-key-1\r\nX-Admin-Key: admin-key\r\n"
            . "Content-Type: application/json\r\nConnection: close\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body", 3);
        like($resp, qr{^HTTP/1\.1 503 }, "redis down: raw POST $path -> 503");
        ok($closed, "redis down: POST $path, Connection: close -> "
                    . 'the server closes the connection after the 503');
    }
    for my $i (1 .. 6) {   # several times: both workers
        my $res = get_job($ng, $id);
        is($res->{status}, 200, "redis down: GET cached job -> 200 ($i)");
        is_deeply(json_body($res), $job, "redis down: cached job unchanged ($i)");
    }
    for my $i (1 .. 2) {
        my $res = get_job($ng, $UNKNOWN);
        is_unavailable($res, "redis down: GET unknown id -> 503, not 404 ($i)");
        ok($res->{status} == 503, "redis down: GET unknown answered, not hung (client waits 10 s)");
    }
    # malformed ids need no Redis
    is_error(get_job($ng, 'not-a-uuid'), 404, undef,
             'redis down: GET malformed id -> 404');

    $redis->start;
    if (recovers($ng, 10, 6, 'redis back')) {
        my $j = created_ok(generate($ng, { query => 'Created after Redis is back' }),
                           'redis back: create a job');
        is($redis->cmd('EXISTS', $JOB_PREFIX . $j->{job_id}), 1,
           'redis back: the new job is in Redis') if $j;
    }
    is($redis->cmd('EXISTS', $JOB_PREFIX . $id), 1,
       'redis back: the job from before is still in Redis (AOF)');
    my $res = get_job($ng, $id);
    is($res->{status}, 200, 'redis back: GET job from before -> 200');
    is_deeply(json_body($res), $job, 'redis back: same object');
    is_error(get_job($ng, $UNKNOWN), 404, 'Job not found',
             'redis back: unknown id -> 404 again');

    # a second outage on the same nginx
    $redis->stop;
    is_unavailable(generate($ng, { query => 'Second outage' }),
                   'second outage: POST -> 503', retry_after => 1);
    $redis->start;
    recovers($ng, 10, 6, 'second outage over');
}

# ---------------------------------------------------------------------------
# C. reload (HUP) keeps the zone
{
    my $redis = start_redis();
    my $ng = start_nginx(redis => $redis, conf => conf(' timeout=2s'));
    my $job = created_ok(generate($ng, { query => 'Created before the reload' }),
                         'reload: job created');
    my $id = $job ? $job->{job_id} : $UNKNOWN;

    # a reload with Redis up: writes keep working
    my @w0 = $ng->worker_pids;
    $ng->reload;
    my @w1 = $ng->worker_pids;
    ok(!grep({ my $p = $_; grep { $_ == $p } @w0 } @w1),
       'reload: the workers are new');
    ok($ng->old_workers_gone(10), 'reload: old workers exit within 10 s');
    recovers($ng, 5, 4, 'reload with Redis up');
    my $res = get_job($ng, $id);
    is($res->{status}, 200, 'reload: GET job -> 200');
    is_deeply(json_body($res), $job, 'reload: same object');

    # now without Redis: only the zone can answer
    $redis->stop;
    $ng->reload;
    ok($ng->old_workers_gone(10),
       'reload with Redis down: old workers exit within 10 s');
    for my $i (1 .. 4) {
        $res = get_job($ng, $id);
        is($res->{status}, 200,
           "reload with Redis down: GET job from the zone -> 200 ($i)");
        is_deeply(json_body($res), $job,
                  "reload with Redis down: same object ($i)");
    }
    is_unavailable(get_job($ng, $UNKNOWN),
                   'reload with Redis down: GET unknown id -> 503');
    is_unavailable(generate($ng, { query => 'After reload, Redis down' }),
                   'reload with Redis down: POST -> 503', retry_after => 1);
    $redis->start;
    recovers($ng, 10, 4, 'reload, then Redis back');
}

# ---------------------------------------------------------------------------
# D. Redis hung (SIGSTOP): requests fail after the timeout instead of hanging
{
    my $redis = start_redis();
    my $ng = start_nginx(redis => $redis, conf => conf(' timeout=1s'));
    my $job = created_ok(generate($ng, { query => 'Created before Redis hangs' }),
                         'redis hung: job created');
    my $id = $job ? $job->{job_id} : $UNKNOWN;
    # a second nginx that waits 30 s for Redis has the job in its zone
    my $slow = start_nginx(redis => $redis, conf => conf(' timeout=30s'));
    get_job($slow, $id);

    stop_processes($redis->pid);
    my $timers = count_log($ng, qr/did not answer (a POST )?in 1000 ms/);
    my $res = generate($ng, { query => 'Created while Redis hangs' });
    is_unavailable($res, 'redis hung: POST -> 503', retry_after => 1);
    # event: the 1 s timer ran out and said so; the client waits 10 s
    ok($res->{status} == 503
       && count_log($ng, qr/did not answer (a POST )?in 1000 ms/) > $timers,
       'redis hung: POST answered by its timeout=1s, not hung');

    $res = get_job($ng, $id);
    is($res->{status}, 200, 'redis hung: GET cached job -> 200');
    is_deeply(json_body($res), $job, 'redis hung: same object');
    # structural: $slow waits 30 s for Redis; a client that gives up after
    # 10 s gets the job there only if no Redis reply was waited for
    $res = get_job($slow, $id, ua => http_ua(timeout => 10));
    ok($res->{status} == 200 && (json_body($res) // {})->{job_id} eq $id,
       'redis hung: cached GET does not wait for Redis');

    $res = get_job($ng, $UNKNOWN);
    is_unavailable($res, 'redis hung: GET unknown id -> 503');
    # event: the 1 s timer ran out on the hung connection (error.log); with
    # it gone the GET is answered at once
    ok($res->{status} == 503 && count_log($ng, qr/did not answer in 1000 ms/) >= 1,
       'redis hung: GET unknown answered, not hung (the 1 s timer closed the hung connection)');

    kill 'CONT', $redis->pid;
    recovers($ng, 10, 4, 'redis resumed');
    $slow->stop;
}

# ---------------------------------------------------------------------------
# E. nginx started while Redis is down
{
    my $redis = start_redis();
    $redis->stop;
    my $ng = start_nginx(redis => $redis, conf => conf(' timeout=2s'));
    ok($ng->running, 'redis down at start: nginx starts anyway');
    is_unavailable(generate($ng, { query => 'Nginx started without Redis' }),
                   'redis down at start: POST -> 503', retry_after => 1);
    is_unavailable(get_job($ng, $UNKNOWN), 'redis down at start: GET -> 503');
    like($ng->error_log, qr/\[error\] .*clockchain: could not connect to redis/,
         'redis down at start: error.log says so at [error]');
    $redis->start;
    recovers($ng, 10, 4, 'redis started after nginx');
}

# ---------------------------------------------------------------------------
# F. SCRIPT FLUSH: the scripts are sent again, then by their SHA1 again
{
    my $redis = start_redis();
    my $ng = start_nginx(redis => $redis, conf => conf());
    created_ok(generate($ng, { query => 'Before the flush' }), 'flush: a job before');
    $redis->cmd('SCRIPT', 'FLUSH');
    my %ok;
    for my $i (1 .. 6) {
        my $res = generate($ng, { query => "After the flush $i" });
        $ok{ $res->{status} }++;
    }
    is_deeply(\%ok, { 200 => 6 }, 'flush: every POST after it succeeds');
    my ($before) = $redis->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/;
    created_ok(generate($ng, { query => 'Later' }), 'flush: a later job');
    my ($after) = $redis->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/;
    is($after - $before, 1, 'flush: later calls use EVALSHA again (the script was loaded anew)');
    like($ng->error_log, qr/lost its script cache/, 'flush: logged');
}

done();
