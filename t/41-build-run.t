# `./build.sh run` as a newcomer uses it: it starts Redis, the Flash stand-in
# and nginx; a job completes; bodies of every size the documented limits
# allow get 200 or a JSON 4xx, with and without Idempotency-Key, and no
# worker dies (issue 13, item 2: its workers could not reach the body temp
# path); Ctrl-C stops everything it started, cleanly (item 15: "nginx_pid:
# unbound variable").
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX qw(setsid WNOHANG);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use Clockchain::Test;

my $REPO = Cwd::abs_path('.');

# the run builds the plain module into build/; an ASan suite tests another
plan skip_all => 'the suite runs another module than build.sh run builds'
    if module_path() ne "$REPO/build/ngx_http_clockchain_module.so";

my $dir = tempdir('cc-run-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $KEY = 'run-service-key';
my ($pid, $port, $log);

# start_run(): ./build.sh run in its own process group, as a terminal
# starts a foreground job; returns once nginx answers
sub start_run {
    my ($name) = @_;
    $log = "$dir/$name.log";
    $port = do {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0');
        my $p = $s->sockport;
        close $s;
        $p;
    };
    $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log;
        open STDERR, '>&', \*STDOUT;
        $ENV{CLOCKCHAIN_PORT} = $port;
        $ENV{CLOCKCHAIN_RUN_DIR} = "$dir/$name";
        $ENV{FLASH_DELAY} = 1;
        $ENV{SERVICE_API_KEY} = $KEY;
        $ENV{ADMIN_API_KEY} = 'run-admin-key';
        delete @ENV{qw(REDIS_URL FLASH_URL FLASH_SERVICE_KEY)};
        exec './build.sh', 'run' or POSIX::_exit(127);
    }
    my $up = wait_for(120, sub {
        die "build.sh run exited:\n" . Clockchain::Test::_slurp($log)
            if waitpid($pid, WNOHANG) == $pid;
        # an HTTP answer from nginx: a bare connect can succeed before
        # nginx is up (a connect to a free local port may pick that very
        # port as its source and reach itself)
        my $r = http(GET => "http://127.0.0.1:$port/",
                     ua => http_ua(timeout => 2));
        return (($r->{headers}{server} // '') =~ /^nginx/) ? 1 : 0;
    });
    ok($up, "$name: build.sh run: nginx answers") or do {
        diag(Clockchain::Test::_slurp($log));
        BAIL_OUT('build.sh run did not come up');
    };
}

# stopped_ok($how): build.sh run exits, says so, leaves nothing running
sub stopped_ok {
    my ($how) = @_;
    ok(wait_for(20, sub { waitpid($pid, WNOHANG) == $pid }),
       "$how: build.sh run exits");
    my $out = Clockchain::Test::_slurp($log);
    unlike($out, qr/unbound variable/, "$how: no \"unbound variable\"");
    like($out, qr/build\.sh: stopped/, "$how: it says it stopped");
    ok(wait_for(10, sub { !`ps -o pid= -g $pid` }),
       "$how: nothing it started is left running")
        or diag(`ps -o pid=,args= -g $pid`);
    $pid = 0;
}

END { kill 'KILL', -$pid if $pid && kill 0, $pid }

start_run('sweep');

# what it serves is examples/minimal.conf, this run's values put in
{
    my $conf = Clockchain::Test::_slurp("$dir/sweep/nginx/conf/nginx.conf");
    my @example = split /\n/,
        Clockchain::Test::_slurp("$REPO/examples/minimal.conf");
    like($conf, qr{\A# \./build\.sh run: \S*/examples/minimal\.conf },
         'nginx.conf: rendered from examples/minimal.conf');
    like($conf, qr/^ *listen  127\.0\.0\.1:$port;$/m, 'with its port');
    my $rest = $conf;
    my @lost = grep {
        my $at = index($rest, "$_\n");
        $rest = substr($rest, $at + length($_) + 1) if $at >= 0;
        $at < 0;
    } grep { !/load_module|worker_processes|^http \{|clockchain_redis
               |clockchain_flash_url|_key_file|listen|clockchain_seed_file/x }
      @example;
    is("@lost", '', 'every other line of the example, in order');
}

my $base = "http://127.0.0.1:$port";
my %H = ('Content-Type' => 'application/json', 'X-Service-Key' => $KEY,
         'X-Admin-Key' => 'run-admin-key');

sub post {
    my ($path, $body, %h) = @_;
    return http(POST => "$base$path", body => $body, headers => { %H, %h },
                ua => http_ua(timeout => 30));
}

sub workers {
    # the workers are nginx's, in build.sh's process group
    my $out = `ps -o pid=,args= -g $pid`;
    return sort map { /^\s*(\d+)/ ? $1 : () }
        grep { /nginx: worker process/ } split /\n/, $out;
}

my $res;
# a worker forked just now may not have taken its title yet (a loaded
# machine): wait for both
my @workers;
wait_for(10, sub { @workers = workers(); @workers == 2 });
is(scalar @workers, 2, 'two workers');

# a newcomer's first browse shows the seeds of examples/seeds.jsonl (the
# original's five), seeded once when Redis was reached (issue 16, item 2)
ok(wait_for(10, sub { Clockchain::Test::_slurp($log)
                      =~ /clockchain: seeded 5 nodes and 3 edges from "\S*examples\/seeds\.jsonl"/ }),
   'the run seeds examples/seeds.jsonl');
$res = http(GET => "$base/api/browse", headers => { %H });
is($res->{status}, 200, 'GET /api/browse: 200');
is_deeply({ map { $_->{segment} => $_->{count} }
            @{ (json_body($res) // {})->{items} // [] } },
          { -44 => 1, 1969 => 2, 1971 => 1, 2016 => 1 },
          '... the years of the five seeds')
    or diag($res->{content});

# generate -> completed with its canonical path
$res = post('/api/generate', '{"query": "signing of the declaration"}');
is($res->{status}, 200, 'generate: 200');
my $id = (json_body($res) // {})->{job_id} // '';
my $job;
wait_for(30, sub {
    my $r = http(GET => "$base/api/jobs/$id", headers => { %H });
    $job = json_body($r);
    return ref $job eq 'HASH' && ($job->{status} // '') =~ /^(completed|failed)$/;
});
is($job->{status}, 'completed', 'the job completes');
like($job->{path} // '', qr{^/\d{4}/[a-z]+/\d\d/\d{4}/}, 'with a canonical path');

# the status page's address is printed, answers from here, and shows the
# job done (issue 18)
like(Clockchain::Test::_slurp($log),
     qr{^Status page \(from this machine\): \Q$base/status\E$}m,
     'build.sh run prints the status page\'s URL');
$res = http(GET => "$base/status");
is($res->{status}, 200, 'GET /status: 200');
like($res->{headers}{'content-type'} // '', qr{^text/html}, '... text/html');
my $st = json_body(http(GET => "$base/status?format=json")) // {};
cmp_ok($st->{jobs}{completed} // 0, '>=', 1, '... its JSON counts the job completed');

# every route also under /api/v1/ (issue 15), the path read from the URI
# as under /api/, and the query string kept through the rewrite
$res = http(GET => "$base/api/v1/jobs/$id", headers => { %H });
is($res->{status}, 200, 'GET /api/v1/jobs/{id}: 200');
is((json_body($res) // {})->{job_id}, $id, '... the same job');
$res = http(GET => "$base/api/v1/moments$job->{path}", headers => { %H });
is($res->{status}, 200, 'GET /api/v1/moments/{path}: 200');
is((json_body($res) // {})->{path}, $job->{path}, '... the job\'s moment');
$res = http(GET => "$base/api/v1/moments?limit=1", headers => { %H });
is((json_body($res) // {})->{limit}, 1, 'GET /api/v1/moments?limit=1: the '
   . 'query string reaches the handler');
$res = http(GET => "$base/openapi.json");
is($res->{status}, 200, 'GET /openapi.json: 200');

# bodies of every size up to the 256k limit, generate and bulk
my $n = 0;
for my $size (1024, 8193, 16385, 45000, 100000, 200000, 262144) {
    for my $idem (0, 1) {
        $n++;
        my %h = $idem ? ('Idempotency-Key' => "run-g-$n") : ();
        my $head = qq({"query": "run sweep $n");
        my $body = $head . (' ' x ($size - length($head) - 1)) . '}';
        $res = post('/api/generate', $body, %h);
        is($res->{status}, 200, "generate, $size bytes"
           . ($idem ? ', Idempotency-Key' : '') . ': 200');

        my @q = map { { query => "run bulk $n $_ " . ('q' x 440) } } 1 .. 100;
        $body = encode_json({ queries => \@q });
        $body .= ' ' x ($size - length $body) if $size > length $body;
        %h = ('Idempotency-Key' => "run-b-$n") if $idem;
        $res = post('/api/bulk-generate', $body, %h);
        is($res->{status}, 200, 'bulk of 100 long queries, ' . length($body)
           . ' bytes' . ($idem ? ', Idempotency-Key' : '') . ': 200')
            or diag(substr($res->{content} // '', 0, 200));
    }
}

# more than clockchain_bulk_max: a JSON 400, not nginx's 500
$res = post('/api/bulk-generate',
            encode_json({ queries => [ map { { query => "short $_" } } 1 .. 300 ] }));
is_error($res, 400, qr/100/, 'a bulk of 300 short queries: JSON 400');

# past the limit: a JSON 413
$res = post('/api/generate', '{"query": "x' . ('x' x 262144) . '"}');
is_error($res, 413, qr/too large/, 'a body past the limit: JSON 413');

is_deeply([ workers() ], \@workers, 'no worker died or was replaced');
my $nginx_log = Clockchain::Test::_slurp($log);
unlike($nginx_log, qr/exited on signal/, 'no worker exited on a signal');

# nginx stopped on its own (nginx -s quit, a crash of the master): the
# script's wait ends, run() returns, and its EXIT trap cleans up
my ($master) = `ps -o pid=,args= -g $pid` =~ /^\s*(\d+)\s+nginx: master/m;
ok($master, 'the nginx master');
kill 'QUIT', $master;
stopped_ok('nginx quit on its own');

# Ctrl-C: SIGINT to the whole foreground process group
start_run('ctrl-c');
kill 'INT', -$pid;
stopped_ok('Ctrl-C');

done_testing();
