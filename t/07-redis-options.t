# clockchain_redis options: prefix=, db=, password_file=, unix: addresses.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $redis = start_redis(unixsocket => 1);

# the usual server; $redis is the clockchain_redis line's value, $http
# more lines for the http block
sub conf {
    my ($redis, $http) = @_;
    $http //= '';
    return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis $redis;
$http
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
}

sub one_job {
    my ($ng, $name) = @_;
    return created_ok(generate($ng, { query => "Redis options: $name" }), $name);
}

# --- prefix=
{
    my $ng = start_nginx(redis => $redis,
                         conf => conf('127.0.0.1:%%REDIS_PORT%% prefix=myapp:'));
    my $before = job_count($redis);
    my $j = one_job($ng, 'prefix=myapp:');
    my $id = $j ? $j->{job_id} : 'x';
    is($redis->cmd('EXISTS', "myapp:{cc}:v1:job:$id"), 1,
       'prefix=myapp: job hash at myapp:{cc}:v1:job:<id>');
    ok(defined $redis->cmd('ZSCORE', 'myapp:{cc}:v1:queue', $id),
       'prefix=myapp: id in myapp:{cc}:v1:queue');
    is($redis->cmd('EXISTS', "$JOB_PREFIX$id"), 0,
       'prefix=myapp: nothing under the default prefix');
    is(job_count($redis), $before, 'prefix=myapp: no default-prefix job keys');
    my $res = get_job($ng, $id);
    is($res->{status}, 200, 'prefix=myapp: GET -> 200');
    is_deeply(json_body($res), $j, 'prefix=myapp: same object');

    # restart: read back from Redis under the prefix
    $ng->stop;
    $ng->start;
    $res = get_job($ng, $id);
    is($res->{status}, 200, 'prefix=myapp: GET after restart -> 200');
    is_deeply(json_body($res), $j, 'prefix=myapp: same object after restart');
}

# --- prefix= at its limit: every key the runner and the events subscriber
# build (in 256-byte buffers) holds it whole; one byte more fails nginx -t
# (it was cut silently at 256 bytes: issue 13, item 10)
{
    my $long = 'p' x 127 . ':';
    my $out = nginx_t_fail(name => 'a 129-byte prefix',
                           conf => conf("127.0.0.1:%%REDIS_PORT%% prefix=x$long"));
    like($out, qr/invalid parameter "prefix=x\Q$long\E": a prefix is at most 128 bytes/,
         'a 129-byte prefix: nginx -t says the limit');

    my $flash = start_flash(delay => 0, key => 'fk');
    my $ng = start_nginx(redis => $redis, conf => conf(
        "127.0.0.1:%%REDIS_PORT%% prefix=$long", <<"CONF"));
    clockchain_flash_url http://127.0.0.1:@{[ $flash->port ]}/;
    clockchain_flash_key fk;
CONF
    my $j = one_job($ng, 'a 128-byte prefix');
    my $id = $j ? $j->{job_id} : 'x';
    my $done = wait_job($ng, $id, 20) // {};
    is($done->{status}, 'completed', 'a 128-byte prefix: the runner completes the job');
    is($redis->cmd('HGET', "$long\{cc}:v1:job:$id", 'status'), 'completed',
       '... its hash is under the whole prefix');
    is($redis->cmd('EXISTS', "$long\{cc}:v1:node:" . ($done->{path} // '')), 1,
       '... and so is its node');
    my @cut = grep { !/^\Q$long\E\{cc\}/ }
              @{ $redis->cmd('KEYS', 'p*') };
    is_deeply(\@cut, [], '... no key under a cut prefix');
    $ng->stop;
    $flash->stop;
}

# --- db=
{
    my $ng = start_nginx(redis => $redis,
                         conf => conf('127.0.0.1:%%REDIS_PORT%% db=3'));
    my $j = one_job($ng, 'db=3');
    my $id = $j ? $j->{job_id} : 'x';
    is($redis->cli('-n', 3, 'EXISTS', "$JOB_PREFIX$id"), '1',
       'db=3: job hash in db 3');
    is($redis->cli('-n', 3, 'HGET', "$JOB_PREFIX$id", 'status'), 'pending',
       'db=3: status pending in db 3');
    is($redis->cmd('EXISTS', "$JOB_PREFIX$id"), 0, 'db=3: not in db 0');
    $ng->stop;
    $ng->start;
    my $res = get_job($ng, $id);
    is($res->{status}, 200, 'db=3: GET after restart -> 200');
    is_deeply(json_body($res), $j, 'db=3: same object after restart');
}

# --- unix socket
{
    my $ng = start_nginx(redis => $redis,
        conf => conf('unix:%%REDIS_SOCKET%%'));
    my $j = one_job($ng, 'unix socket');
    my $id = $j ? $j->{job_id} : 'x';
    is($redis->cmd('EXISTS', "$JOB_PREFIX$id"), 1, 'unix socket: job in Redis');
    $ng->stop;
    $ng->start;
    my $res = get_job($ng, $id);
    is($res->{status}, 200, 'unix socket: GET after restart -> 200');
    is_deeply(json_body($res), $j, 'unix socket: same object after restart');
}

# --- a unix socket's path longer than sun_path: hiredis cut it silently (a
# connection to another path), and the status page's address, cut without
# its end, was read past and made its JSON a 500
{
    my $path = '/tmp/' . 'p' x 97 . '.sock';
    is(length $path, 107, 'a 107-byte socket path (sun_path, less its NUL)');
    my ($rc, $out) = nginx_t(conf => conf("unix:$path"));
    is($rc, 0, '... nginx -t takes it') or diag($out);
    $path =~ s/\.sock$/x.sock/;
    $out = nginx_t_fail(name => 'a 108-byte socket path',
                        conf => conf("unix:$path"));
    like($out, qr/invalid redis address "unix:\Q$path\E": the socket's path is at most 107 bytes/,
         '... nginx -t says the limit');
}

# --- password_file=
{
    my $pw = start_redis(password => 's3cret-pw');
    my $ng = start_nginx(redis => $pw,
        files => { 'conf/redis.pass' => "s3cret-pw\n" },
        conf => conf('127.0.0.1:%%REDIS_PORT%% password_file=%%PREFIX%%/conf/redis.pass'));
    my $j = one_job($ng, 'password_file');
    my $id = $j ? $j->{job_id} : 'x';
    is($pw->cmd('EXISTS', "$JOB_PREFIX$id"), 1, 'password_file: job in Redis');

    # no password, or a wrong one: Redis refuses, the module answers 503
    my $nopw = start_nginx(redis => $pw, conf => conf('127.0.0.1:%%REDIS_PORT%%'));
    my $res = no_job_created($pw, 'no password', sub {
        generate($nopw, { query => 'Without the Redis password' }) });
    is_error($res, 503, undef, 'Redis needs a password, none given: POST -> 503');

    my $wrong = start_nginx(redis => $pw,
        files => { 'conf/redis.pass' => "wrong-pw\n" },
        conf => conf('127.0.0.1:%%REDIS_PORT%% password_file=%%PREFIX%%/conf/redis.pass'));
    $res = no_job_created($pw, 'wrong password', sub {
        generate($wrong, { query => 'With a wrong Redis password' }) });
    is_error($res, 503, undef, 'wrong Redis password: POST -> 503');
    unlike($ng->error_log . $wrong->error_log, qr/s3cret-pw|wrong-pw/,
           'the Redis password does not appear in the logs');
}

done();
