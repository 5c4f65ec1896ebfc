# CORS for browsers (issue 15), as the original's CORSMiddleware with
# CORS_ORIGINS: clockchain_cors_origins lists the origins (or "*"); an
# allowed Origin gets Access-Control-Allow-Origin and Vary: Origin on every
# answer, errors included; a preflight (OPTIONS with
# Access-Control-Request-Method) is answered 204 by the module before any
# key or method check, and is refused 400 for an origin not listed.
# Without the directive nothing changes: no CORS header, OPTIONS is 405.
use strict;
use warnings;
use Test::More;
use Clockchain::Test;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, ports => 3, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    # listed origins, for the whole server
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_cors_origins https://app.example.com http://localhost:3000;
        $JOBS_LOCATIONS
        location /api/moments/ { clockchain_moments; }
        location = /no-cors/generate {
            clockchain_cors_origins off;
            clockchain_generate;
        }
        # guarded by allow/deny alone: the server's list is not inherited
        location = /metrics {
            clockchain_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }
    # any origin
    server {
        listen 127.0.0.1:%%PORT2%%;
        $KEYS
        clockchain_cors_origins *;
        $JOBS_LOCATIONS
    }
    # no directive
    server {
        listen 127.0.0.1:%%PORT3%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF

my $APP = 'https://app.example.com';
my $SK  = 'test-key-1';
my @CORS = qw(access-control-allow-origin access-control-allow-methods
              access-control-allow-headers access-control-max-age vary);

sub req {
    my ($method, $path, %o) = @_;
    return http($method, $ng->url($path, $o{port_n}),
                headers => $o{headers} // {},
                exists $o{json} ? (json => $o{json}) : ());
}

# the answer names $origin as allowed, and says it varies with Origin
sub allows {
    my ($res, $origin, $name) = @_;
    is($res->{headers}{'access-control-allow-origin'}, $origin,
       "$name: Access-Control-Allow-Origin $origin");
    like($res->{headers}{vary} // '', qr/\bOrigin\b/, "$name: Vary: Origin");
}

sub no_cors {
    my ($res, $name) = @_;
    my @got = grep { defined $res->{headers}{$_} } @CORS;
    is("@got", '', "$name: no CORS header");
}

sub preflight {
    my ($path, $origin, %o) = @_;
    return req(OPTIONS => $path, port_n => $o{port_n}, headers => {
        Origin => $origin,
        'Access-Control-Request-Method' => $o{method} // 'POST',
        'Access-Control-Request-Headers' =>
            'content-type,x-service-key,x-user-id,idempotency-key',
        %{ $o{headers} // {} },
    });
}

# an allowed origin on a job's life: POST, GET, and errors
my $res = req(POST => '/api/generate', json => { query => 'Apollo 11' },
              headers => { 'X-Service-Key' => $SK, Origin => $APP });
my $job = created_ok($res, 'POST /api/generate from an allowed origin');
allows($res, $APP, 'POST /api/generate');

$res = req(GET => "/api/jobs/$job->{job_id}",
           headers => { 'X-Service-Key' => $SK, Origin => $APP });
is($res->{status}, 200, 'GET job: 200');
allows($res, $APP, 'GET job');

$res = req(GET => "/api/v1/jobs/$job->{job_id}",
           headers => { 'X-Service-Key' => $SK,
                        Origin => 'http://localhost:3000' });
allows($res, 'http://localhost:3000', 'the second origin listed');

$res = req(GET => "/api/jobs/$job->{job_id}", headers => { Origin => $APP });
is_error($res, 401, 'Missing or invalid service key', 'no key: 401');
allows($res, $APP, '401');

$res = req(GET => '/api/jobs/00000000-0000-4000-8000-000000000000',
           headers => { 'X-Service-Key' => $SK, Origin => $APP });
is($res->{status}, 404, 'unknown job: 404');
allows($res, $APP, '404');

$res = req(DELETE => "/api/jobs/$job->{job_id}",
           headers => { 'X-Service-Key' => $SK, Origin => $APP });
is($res->{status}, 405, 'DELETE job: 405');
allows($res, $APP, '405');

# moments: a public node, read without a key
my $path = '/1969/july/20/2017/united-states/florida/cape/cors-moment';
$redis->cmd('HSET', "clockchain:{cc}:v1:node:$path", 'path', $path,
            'name', 'Apollo 11', 'visibility', 'public',
            'created_by', 'system', 'year', '1969');
$res = req(GET => "/api/moments$path", headers => { Origin => $APP });
is($res->{status}, 200, 'GET moment: 200');
allows($res, $APP, 'GET moment');
# one Vary for both: the public moment's own field and CORS's
is($res->{headers}{vary}, 'X-Service-Key, Origin',
   'GET moment: one Vary, X-Service-Key and Origin');
(my $missing = $path) =~ s/cors-moment$/nowhere/;
$res = req(GET => "/api/moments$missing", headers => { Origin => $APP });
is($res->{status}, 404, 'GET missing moment: 404');
allows($res, $APP, 'missing moment');

# no Origin, or one not listed: no CORS header, the answer as before
$res = req(GET => "/api/jobs/$job->{job_id}",
           headers => { 'X-Service-Key' => $SK });
is($res->{status}, 200, 'no Origin: 200');
no_cors($res, 'no Origin');

for my $o ('https://evil.example.com', 'https://app.example.com/',
           'HTTPS://APP.EXAMPLE.COM', 'https://app.example.com.evil.com',
           'null')
{
    $res = req(GET => "/api/jobs/$job->{job_id}",
               headers => { 'X-Service-Key' => $SK, Origin => $o });
    is($res->{status}, 200, "Origin $o: 200");
    no_cors($res, "Origin $o");
}

# a preflight for POST /api/generate: no key, no body, no job
$res = no_job_created($redis, 'preflight', sub {
    preflight('/api/generate', $APP) });
is($res->{status}, 204, 'preflight: 204');
is($res->{content} // '', '', 'preflight: no body');
allows($res, $APP, 'preflight');
like($res->{headers}{'access-control-allow-methods'} // '',
     qr/^(?=.*\bPOST\b)(?=.*\bGET\b)(?=.*\bPATCH\b)/, 'preflight: methods');
my $allowed = lc($res->{headers}{'access-control-allow-headers'} // '');
for my $h (qw(content-type x-service-key x-admin-key x-user-id
              idempotency-key))
{
    like($allowed, qr/(^|[ ,])\Q$h\E([ ,]|$)/, "preflight: allows $h");
}
like($res->{headers}{'access-control-max-age'} // '', qr/^[1-9]\d*$/,
     'preflight: a max age');

# the same on every handler: jobs, bulk, moments
is(preflight("/api/jobs/$job->{job_id}", $APP, method => 'GET')->{status}, 204,
   'preflight GET job: 204');
is(preflight('/api/bulk-generate', $APP)->{status}, 204,
   'preflight bulk: 204');
is(preflight("/api/moments$path/visibility", $APP, method => 'PATCH')
       ->{status}, 204, 'preflight PATCH moment: 204');

# refused: an origin not listed, a method not served
$res = no_job_created($redis, 'refused preflight', sub {
    preflight('/api/generate', 'https://evil.example.com') });
is_error($res, 400, 'Disallowed CORS origin', 'preflight, origin not listed');
no_cors($res, 'refused preflight');
$res = preflight('/api/generate', $APP, method => 'DELETE');
is_error($res, 400, 'Disallowed CORS method', 'preflight, DELETE');

# OPTIONS that is no preflight is the handler's as before
$res = req(OPTIONS => '/api/generate', headers => { Origin => $APP });
is($res->{status}, 405, 'OPTIONS without Access-Control-Request-Method: 405');
allows($res, $APP, 'its 405');

# "off" in a location: no CORS there
$res = preflight('/no-cors/generate', $APP);
is($res->{status}, 405, 'off: preflight is 405');
no_cors($res, 'off');

# "*": any origin, named as "*"
$res = req(GET => "/api/jobs/$job->{job_id}", port_n => 2,
           headers => { 'X-Service-Key' => $SK,
                        Origin => 'https://anyone.example.org' });
is($res->{status}, 200, '*: GET job 200');
allows($res, '*', '*');
$res = preflight('/api/generate', 'https://anyone.example.org', port_n => 2);
is($res->{status}, 204, '*: preflight 204');
allows($res, '*', '*: preflight');
$res = req(GET => "/api/jobs/$job->{job_id}", port_n => 2,
           headers => { 'X-Service-Key' => $SK });
no_cors($res, '*: no Origin');

# no directive: no CORS header, and a preflight is the handler's 405
$res = req(GET => "/api/jobs/$job->{job_id}", port_n => 3,
           headers => { 'X-Service-Key' => $SK, Origin => $APP });
is($res->{status}, 200, 'no directive: 200');
no_cors($res, 'no directive');
$res = no_job_created($redis, 'no directive, preflight', sub {
    preflight('/api/generate', $APP, port_n => 3) });
is_error($res, 405, undef, 'no directive: preflight is 405');
no_cors($res, 'no directive, preflight');

# the metrics (as the status page, t/80): allow/deny is all that guards
# them, so a site the operator's browser visits must not read them from
# inside the allowed network; the server's list does not reach them
$res = req(GET => '/metrics', headers => { Origin => $APP });
is($res->{status}, 200, 'metrics under a server with a CORS list: 200');
like($res->{content} // '', qr/"jobs_created"|clockchain_/, '... the metrics');
no_cors($res, 'metrics, allowed Origin');
$res = req(GET => '/metrics?format=prometheus', headers => { Origin => $APP });
no_cors($res, 'metrics in Prometheus text, allowed Origin');
$res = preflight('/metrics', $APP);
is($res->{status}, 405, 'metrics: a CORS preflight is 405, not 204');
no_cors($res, 'metrics, preflight');
{
    my ($rc, $out) = nginx_t(conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /metrics {
            clockchain_metrics;
            clockchain_cors_origins *;
        }
    }
CONF
    isnt($rc, 0, 'clockchain_cors_origins in a metrics location: nginx -t fails');
    like($out, qr/"clockchain_cors_origins" cannot be used with "clockchain_metrics"/,
         '... and says why');
}

# bad values stop nginx -t, naming them
for my $bad ('* https://a.example.com', 'app.example.com',
             'https://app.example.com/', 'https://*.example.com',
             'https://', 'ftp://app.example.com')
{
    my ($rc, $out) = nginx_t(conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        clockchain_cors_origins $bad;
        $JOBS_LOCATIONS
    }
CONF
    isnt($rc, 0, "clockchain_cors_origins $bad: nginx -t fails");
    like($out, qr/clockchain_cors_origins|invalid origin/,
         "clockchain_cors_origins $bad: named");
}

done_testing();
