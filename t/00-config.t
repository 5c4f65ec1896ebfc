# Directive parsing: nginx -t accepts valid configurations with the module
# loaded and rejects bad values, naming them.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

# The configuration most cases start from; each bad case below changes one
# of its lines (zone, redis) or adds one to its server block.
sub usual {
    my (%o) = @_;
    my $zone   = $o{zone} // 'cc:1m';
    my $redis  = $o{redis} // '127.0.0.1:%%REDIS_PORT%%';
    my $server = $o{server} // '';
    return <<"EOF";
    clockchain_zone $zone;
    clockchain_redis $redis;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $server
        $JOBS_LOCATIONS
    }
EOF
}

# valid: the usual block
{
    my ($rc, $out) = nginx_t(conf => usual());
    is($rc, 0, 'nginx -t passes on the usual config') or diag($out);
    like($out, qr/syntax is ok/, 'nginx -t: syntax is ok');
    like($out, qr/test is successful/, 'nginx -t: test is successful');
}

# valid: every option and directive
{
    my ($rc, $out) = nginx_t(
        files => {
            'conf/service.keys' => "# service keys\n\nfile-key-1\nfile-key-2\n",
            'conf/admin.keys'   => "admin-file-key\n",
            'conf/redis.pass'   => "s3cret\n",
        },
        conf => <<'EOF');
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% db=2 password_file=%%PREFIX%%/conf/redis.pass prefix=myapp: timeout=2s;
    clockchain_service_key http-key;
    clockchain_max_body_size 64k;
    clockchain_bulk_max 10;
    server {
        listen 127.0.0.1:%%PORT%%;
        clockchain_service_key k1 k2;
        clockchain_service_key k3;
        clockchain_service_key_file %%PREFIX%%/conf/service.keys;
        clockchain_admin_key a1;
        clockchain_admin_key_file %%PREFIX%%/conf/admin.keys;
        location = /api/generate {
            clockchain_service_key loc-key;
            clockchain_max_body_size 1k;
            clockchain_generate;
        }
        location = /api/bulk-generate {
            clockchain_bulk_max 3;
            clockchain_bulk_generate;
        }
        location /api/jobs/ { clockchain_jobs; }
    }
EOF
    is($rc, 0, 'nginx -t passes with every directive and option') or diag($out);
    like($out, qr/test is successful/, 'nginx -t: test is successful (all options)');
}

# valid: a unix socket address
{
    my ($rc, $out) = nginx_t(conf => usual(redis => 'unix:/tmp/clockchain-test.sock'));
    is($rc, 0, 'nginx -t passes with clockchain_redis unix:/path') or diag($out);
}

# invalid values: non-zero exit and the offending value named
my @bad = (
    [ 'clockchain_zone cc:abc',
      usual(zone => 'cc:abc'), qr/abc/ ],
    [ 'clockchain_zone nosize',
      usual(zone => 'nosize'), qr/nosize/ ],
    [ 'clockchain_redis 127.0.0.1:notaport',
      usual(redis => '127.0.0.1:notaport'),
      qr/notaport/ ],
    [ 'clockchain_redis ... bogus=1',
      usual(redis => '127.0.0.1:%%REDIS_PORT%% bogus=1'), qr/bogus=1|"bogus"|bogus/ ],
    [ 'clockchain_redis sentinel= without master=',
      usual(redis => 'sentinel=127.0.0.1:26379'),
      qr/master=/ ],
    [ 'clockchain_redis ... db=abc',
      usual(redis => '127.0.0.1:%%REDIS_PORT%% db=abc'), qr/abc/ ],
    [ 'clockchain_redis ... timeout=xyz',
      usual(redis => '127.0.0.1:%%REDIS_PORT%% timeout=xyz'), qr/xyz/ ],
    [ 'clockchain_service_key_file /nonexistent',
      usual(server => 'clockchain_service_key_file /nonexistent/cc-keys;'),
      qr{/nonexistent/cc-keys} ],
    [ 'clockchain_admin_key_file /nonexistent',
      usual(server => 'clockchain_admin_key_file /nonexistent/cc-admin;'),
      qr{/nonexistent/cc-admin} ],
    [ 'clockchain_max_body_size abc',
      usual(server => 'clockchain_max_body_size abc;'),
      qr/clockchain_max_body_size|abc/ ],
    [ 'clockchain_bulk_max abc',
      usual(server => 'clockchain_bulk_max abc;'),
      qr/clockchain_bulk_max|abc/ ],
);
for my $b (@bad) {
    my ($name, $conf, $re) = @$b;
    my $out = nginx_t_fail(conf => $conf, name => $name);
    like($out, $re, "$name: the error names the offending value");
    like($out, qr/\[emerg\]/, "$name: reported as [emerg]");
}

# directives outside their contexts
{
    my $out = nginx_t_fail(name => 'clockchain_zone in server',
        conf => usual(server => 'clockchain_zone other:1m;'));
    like($out, qr/"clockchain_zone" directive is not allowed here/,
         'clockchain_zone is http-only');

    $out = nginx_t_fail(name => 'clockchain_redis in server',
        conf => usual(server => 'clockchain_redis 127.0.0.1:6380;'));
    like($out, qr/"clockchain_redis" directive is not allowed here/,
         'clockchain_redis is http-only');

    $out = nginx_t_fail(name => 'clockchain_generate in server',
        conf => usual(server => 'clockchain_generate;'));
    like($out, qr/"clockchain_generate" directive is not allowed here/,
         'clockchain_generate is location-only');

}

# a running nginx with the module passes nginx -t on its own config
{
    my $redis = start_redis();
    my $ng = start_nginx(conf => usual(), redis => $redis);
    my ($rc, $out) = $ng->test_config;
    is($rc, 0, 'nginx -t on a running instance passes') or diag($out);
    like($ng->error_log, qr/start worker process/, 'workers started');
}

done();
