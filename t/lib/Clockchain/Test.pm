package Clockchain::Test;

# Integration-test harness for ngx_http_clockchain_module, core Perl only.
#
# Starts real redis-server and nginx processes on free 127.0.0.1 ports, each in
# its own temporary directory, and makes sure every process started is stopped
# again, even when a test dies.  Call done() at the end of each test file: it
# stops every nginx, checks each error.log for [alert]/[emerg]/[crit] (one test
# per nginx), stops every redis and calls done_testing().
#
# Each test writes the http block it runs as a heredoc (conf => ...), so the
# configuration under test reads in the test file.  What the harness adds
# around it is where files go and how processes run, never behaviour:
#
#     load_module <the module>;
#     daemon on; master_process on; worker_processes 2;
#     user nobody nogroup;                      (when the tests run as root)
#     error_log logs/error.log info; pid logs/nginx.pid;
#     <main => ...>
#     events { worker_connections 1024; }
#     http {
#         access_log logs/access.log;
#         client_body_temp_path client_body_temp; (and the other temp paths)
#         <conf => ...>
#     }
#
# %%PORT%% (%%PORT1%%, %%PORT2%%...), %%PREFIX%%, %%REDIS_PORT%% and
# %%REDIS_SOCKET%% in it are the harness's free ports and paths; $ng->conf
# is the nginx.conf as written.  $KEYS and $JOBS_LOCATIONS below are the
# pieces most servers share.
#
# Run from the repository root:  prove -I t/lib t/
# CLOCKCHAIN_MODULE (default build/ngx_http_clockchain_module.so) and
# NGINX_BIN (default /usr/sbin/nginx) select what is tested.

use strict;
use warnings;

use Exporter 'import';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);

our @EXPORT = qw(
    start_redis start_nginx nginx_t nginx_t_fail done
    http http_ua json_body json_ok is_job is_error no_job_created
    job_count redis_state
    $UUID_RE $TS_RE $JOB_PREFIX $QUEUE_KEY $KEYS $JOBS_LOCATIONS
    wait_for module_path nginx_bin
    generate bulk get_job created_ok completed_moment raw_request lua_script
    start_flash wait_job background background_get tcp_unread stop_processes
);

our $UUID_RE = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
our $TS_RE   = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
our $JOB_PREFIX = 'clockchain:{cc}:v1:job:';
our $QUEUE_KEY  = 'clockchain:{cc}:v1:queue';

# The keys generate(), bulk() and get_job() send, as a server's directives.
# Multi-line fragments begin at their first directive and indent the next
# lines for a server block, so that "        $KEYS" in a heredoc reads right.
our $KEYS = <<'EOF' =~ s/\n\z//r;
clockchain_service_key test-key-1 test-key-2;
        clockchain_admin_key admin-key;
EOF

# The jobs API at its usual paths (and /api/v1/jobs/, the versioned alias).
our $JOBS_LOCATIONS = <<'EOF' =~ s/\n\z//r;
location = /api/generate      { clockchain_generate; }
        location = /api/bulk-generate { clockchain_bulk_generate; }
        location /api/jobs/           { clockchain_jobs; }
        location /api/v1/jobs/        { clockchain_jobs; }
EOF

my $REPO = abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..', '..'));
my $PARENT_PID = $$;
my (@NGINX, @REDIS);

$SIG{PIPE} = 'IGNORE';

sub module_path {
    return $ENV{CLOCKCHAIN_MODULE}
        // "$REPO/build/ngx_http_clockchain_module.so";
}

sub nginx_bin { $ENV{NGINX_BIN} // '/usr/sbin/nginx' }

sub wait_for {
    my ($secs, $cb) = @_;
    my $end = time + $secs;
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return 0 if time > $end;
        sleep 0.05;
    }
}

sub _free_ports {
    my ($n) = @_;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
            Listen => 1, ReuseAddr => 1,
        ) or die "cannot bind a free port: $!";
        push @socks, $s;
    }
    my @ports = map { $_->sockport } @socks;
    close $_ for @socks;
    return @ports;
}

sub _port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
        Timeout => 1,
    );
    return 0 unless $s;
    close $s;
    return 1;
}

# a process that exists and is not a zombie (the daemonized nginx master is
# reparented to an init that may be slow to reap it)
sub _alive {
    my ($pid) = @_;
    return 0 unless $pid;
    # reap it if it is our child (redis)
    waitpid($pid, WNOHANG);
    return 0 unless kill 0, $pid;
    my $stat = _slurp("/proc/$pid/stat");
    return 0 if $stat =~ /^\d+ \(.*\) Z /s;
    return 1;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub _spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "cannot write $file: $!";
    print $fh $text;
    close $fh or die "cannot write $file: $!";
}

###########################################################################
# HTTP

my $JSON = JSON::PP->new->utf8->canonical;

sub http_ua {
    my (%o) = @_;
    return HTTP::Tiny->new(
        timeout => $o{timeout} // 10,
        keep_alive => $o{keep_alive} // 0,
        agent => 'clockchain-tests/1',
    );
}

# http($method, $url, headers => {...}, body => $string_or_coderef,
#      json => $perl_data, ua => $http_tiny)
sub http {
    my ($method, $url, %o) = @_;
    my $ua = $o{ua} // http_ua();
    my %args;
    my %h = %{ $o{headers} // {} };
    if (exists $o{json}) {
        $args{content} = $JSON->encode($o{json});
        my ($ct) = grep { lc $_ eq 'content-type' } keys %h;
        $h{'Content-Type'} = 'application/json' unless defined $ct;
    }
    # a header given as undef is not sent
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    $args{content} = $o{body} if exists $o{body};
    $args{headers} = \%h;
    return $ua->request($method, $url, \%args);
}

# raw_request($port, $request_text, $secs) -> ($response_text, $closed):
# writes the request as is, reads until the server closes the connection or
# $secs (default 3) pass; $closed tells whether the server closed it.
sub raw_request {
    my ($port, $req, $secs) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
        Timeout => 5,
    ) or die "connect: $!";
    print {$s} $req;
    my ($buf, $closed) = ('', 0);
    my $end = time + ($secs // 3);
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (time < $end) {
        my $r = $sel;
        my $n = select($r, undef, undef, $end - time);
        last if $n <= 0;
        my $got = sysread($s, $buf, 65536, length $buf);
        if (!$got) { $closed = 1; last }
    }
    close $s;
    return ($buf, $closed);
}

sub json_body {
    my ($res) = @_;
    my $d = eval { $JSON->decode($res->{content} // '') };
    return $d;
}

# Asserts the response carries a JSON body (Content-Type application/json and
# a body that parses); returns the decoded body or undef.
sub json_ok {
    my ($res, $name) = @_;
    $name //= 'JSON response';
    my $ct = $res->{headers}{'content-type'} // '';
    my $d  = json_body($res);
    my $ok = ok($ct =~ m{^application/json\s*(;|$)}i && defined $d,
                "$name: application/json body");
    diag("status $res->{status}; content-type '$ct'; body: "
         . substr($res->{content} // '', 0, 300)) unless $ok;
    return $d;
}

sub _parse_ts {
    my ($ts) = @_;
    return undef unless defined $ts && !ref $ts
        && $ts =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z$/;
    return eval { timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1e6 };
}

# is_job($job, $name, %expect): exactly six keys, uuid v4, pending, nulls,
# created_at format and near now (or equal to expect{created_at}).
sub is_job {
    my ($job, $name, %x) = @_;
    my $ok = 1;
    subtest $name => sub {
        if (ref $job ne 'HASH') {
            fail('job is a JSON object');
            $ok = 0;
            return;
        }
        is_deeply([sort keys %$job],
                  [sort qw(job_id status path error created_at completed_at)],
                  'exactly the six job keys') or $ok = 0;
        like($job->{job_id} // '', $UUID_RE, 'job_id is a lowercase uuid v4')
            or $ok = 0;
        is($job->{status}, $x{status} // 'pending', 'status') or $ok = 0;
        for my $k (qw(path error completed_at)) {
            ok(exists $job->{$k} && !defined $job->{$k}, "$k is null")
                or $ok = 0;
        }
        like($job->{created_at} // '', $TS_RE, 'created_at format') or $ok = 0;
        my $t = _parse_ts($job->{created_at});
        my $now = time;
        ok(defined $t && $t > $now - ($x{max_age} // 15) && $t < $now + 2,
           'created_at close to now')
            or do { $ok = 0; diag("created_at $job->{created_at}, now "
                                   . scalar gmtime($now)) };
    };
    return $ok;
}

# is_error($res, $status, $detail (string or regex), $name): status, JSON
# content type, body {"detail": ...} matching.
sub is_error {
    my ($res, $status, $detail, $name) = @_;
    my $ok = 1;
    subtest $name => sub {
        is($res->{status}, $status, "status $status") or do {
            $ok = 0;
            diag('body: ' . substr($res->{content} // '', 0, 300));
        };
        my $d = json_ok($res, 'error body');
        ok(ref $d eq 'HASH' && defined $d->{detail} && !ref $d->{detail}
           && length $d->{detail}, 'body has a string "detail"') or $ok = 0;
        if (defined $detail && ref $d eq 'HASH') {
            if (ref $detail eq 'Regexp') {
                like($d->{detail} // '', $detail, 'detail text') or $ok = 0;
            } else {
                is($d->{detail}, $detail, 'detail text') or $ok = 0;
            }
        }
    };
    return $ok;
}

# generate($ng, $body, headers => {...}, path => ..., port_n => N, ua => ...)
# POSTs $body (Perl data, JSON-encoded) with X-Service-Key test-key-1.
sub generate {
    my ($ng, $body, %o) = @_;
    return http(POST => $ng->url($o{path} // '/api/generate', $o{port_n}),
        json => $body, ua => $o{ua},
        headers => { 'X-Service-Key' => 'test-key-1', %{ $o{headers} // {} } });
}

# bulk($ng, $body, ...) with test-key-1 and admin-key
sub bulk {
    my ($ng, $body, %o) = @_;
    return http(POST => $ng->url($o{path} // '/api/bulk-generate', $o{port_n}),
        json => $body, ua => $o{ua},
        headers => { 'X-Service-Key' => 'test-key-1',
                     'X-Admin-Key' => 'admin-key', %{ $o{headers} // {} } });
}

sub get_job {
    my ($ng, $id, %o) = @_;
    return http(GET => $ng->url(($o{path} // '/api/jobs/') . $id, $o{port_n}),
        ua => $o{ua},
        headers => { 'X-Service-Key' => 'test-key-1', %{ $o{headers} // {} } });
}

# created_ok($res, $name): 200, JSON, a valid pending job; returns the job
sub created_ok {
    my ($res, $name) = @_;
    my $job;
    subtest $name => sub {
        is($res->{status}, 200, 'status 200')
            or diag('body: ' . substr($res->{content} // '', 0, 300));
        $job = json_ok($res, 'job');
        is_job($job, 'job object');
    };
    return ref $job eq 'HASH' ? $job : undef;
}

# lua_script($name) -> src/lua/$name.lua as config compiles it into the
# module: a line "-- #include lib/X.lua" is replaced by that file
sub lua_script {
    my ($name) = @_;
    open my $fh, '<', "src/lua/$name.lua" or die "src/lua/$name.lua: $!";
    local $/;
    my $text = <$fh>;
    $text =~ s{^-- #include (\S+)\.lua\n}{lua_script($1)}gme;
    return $text;
}

# completed_moment($ng, $query, body => {...}, headers => {...}, secs => S):
# a Flash job through the stand-in, waited for (S seconds, 15); its
# creation and its completion are tests.  Returns the moment's path, or
# undef when either failed.
sub completed_moment {
    my ($ng, $query, %o) = @_;
    my $j = created_ok(generate($ng, { query => $query, %{ $o{body} // {} } },
                                headers => $o{headers} // {}),
                       "create '$query'") or return;
    my $done = wait_job($ng, $j->{job_id}, $o{secs} // 15) // {};
    is($done->{status}, 'completed', "'$query' completed");
    return $done->{path};
}

###########################################################################
# Redis

sub start_redis {
    my (%o) = @_;
    my $self = bless {
        dir  => tempdir('cc-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        port => (_free_ports(1))[0],
        opt  => \%o,
    }, 'Clockchain::Test::Redis';
    chmod 0755, $self->{dir};
    $self->{password} = $o{password};
    $self->{unixsocket} = "$self->{dir}/redis.sock" if $o{unixsocket};
    push @REDIS, $self;
    $self->start;
    return $self;
}

# Clockchain::Test::start_sentinel($conf) -> { pid, port, dir }: a
# redis-sentinel on a free port with these lines of configuration
# ("sentinel monitor ..."); stopped with the other servers at the end.
# (Not exported: t/50 to t/52 keep their own, which return the port.)
my @SENTINELS;

sub start_sentinel {
    my ($conf, %o) = @_;
    my $dir = tempdir('cc-sentinel-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($port) = _free_ports(1);
    _spew("$dir/sentinel.conf", "port $port\nbind 127.0.0.1\ndir $dir\n$conf");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/log";
        open STDERR, '>&', \*STDOUT;
        # server => a redis-server binary, run as a sentinel (chaos.pl's
        # with WAITAOF)
        { exec $o{server} ? ($o{server}, "$dir/sentinel.conf", '--sentinel')
                          : ('/usr/bin/redis-sentinel', "$dir/sentinel.conf") }
        POSIX::_exit(127);
    }
    my $s = { pid => $pid, port => $port, dir => $dir };
    push @SENTINELS, $s;
    return $s;
}

END {
    if ($$ == $PARENT_PID && @SENTINELS) {
        local ($?, $!, $@);
        kill 'TERM', map { $_->{pid} } @SENTINELS;
        waitpid($_->{pid}, 0) for @SENTINELS;
    }
}

sub job_count {
    my ($redis, %o) = @_;
    my $p = $o{prefix} // 'clockchain:';
    my $keys = $redis->cmd('KEYS', "$p\{cc}:v1:job:*");
    return scalar @$keys;
}

# (job keys, queue length, dbsize)
sub redis_state {
    my ($redis, %o) = @_;
    my $p = $o{prefix} // 'clockchain:';
    return join ',', job_count($redis, %o),
        $redis->cmd('ZCARD', "$p\{cc}:v1:queue"), $redis->cmd('DBSIZE');
}

# Runs $cb and asserts it created no job in Redis.
sub no_job_created {
    my ($redis, $name, $cb) = @_;
    my $before = redis_state($redis);
    my @r = $cb->();
    # give a wrongly-created job a moment to land
    sleep 0.05;
    is(redis_state($redis), $before,
       "$name: no job created (job keys, queue length, dbsize unchanged)");
    return wantarray ? @r : $r[0];
}

# Polls GET /api/jobs/ID until the job is terminal (or $secs pass); returns
# the last job object (undef if it never answered 200).
sub wait_job {
    my ($ng, $id, $secs) = @_;
    my $job;
    wait_for($secs // 20, sub {
        my $res = get_job($ng, $id);
        return 0 unless $res->{status} == 200;
        $job = json_body($res);
        return $job->{status} eq 'completed' || $job->{status} eq 'failed';
    });
    return $job;
}

# stop_processes(@pids): SIGSTOP, and wait until each process is stopped
# (dies after 10 s): kill() returns before the signal is taken, and a
# process still running may yet read what is written to it next (an
# epoll_wait that returns on the first byte)
sub stop_processes {
    my (@pids) = @_;
    kill 'STOP', @pids;
    wait_for(10, sub {
        for my $pid (@pids) {
            open my $fh, '<', "/proc/$pid/stat" or return 0;
            my ($state) = (<$fh> // '') =~ /.*\) (\S)/s;
            return 0 unless ($state // '') eq 'T';
        }
        return 1;
    }) or die "SIGSTOP @pids: not stopped within 10 s\n";
}

# tcp_unread(local => $port): bytes that reached 127.0.0.1:$port (a
# server's side: nginx's) and that the process there has not read yet;
# tcp_unread(remote => $port): the same on connections to that port (nginx's
# side of its connections to Redis).  From /proc/net/tcp, ESTABLISHED only.
# 0 after a request was sent is the event "nginx has read it": a ?wait=
# request is a registered waiter from then on, as the jobs handler runs on
# the read.
sub tcp_unread {
    my (%o) = @_;
    my ($side, $port) = exists $o{local} ? (1, $o{local}) : (2, $o{remote});
    my $hex = sprintf '0100007F:%04X', $port;
    my ($n, $conns) = (0, 0);
    open my $tcp, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (my $l = <$tcp>) {
        my @f = split ' ', $l;
        next unless ($f[$side] // '') eq $hex && $f[3] eq '01';
        my $unread = hex((split /:/, $f[4])[1]);
        $n += $unread;
        $conns++ if $unread;
    }
    # in list context also the number of connections with bytes unread
    return wantarray ? ($n, $conns) : $n;
}

# background(sub { my ($sent) = @_; ...; return @result }) -> the code runs
# in a child process; it calls $sent->() once its request is written:
#   ->sent      true once it has (or once the code returned)
#   ->answered  true once the code returned
#   ->result    waits for it and returns @result (JSON-able scalars)
sub background {
    my ($code) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        $w->autoflush(1);
        my $said = 0;
        my @res = eval { $code->(sub { print {$w} "sent\n" unless $said++ }) };
        POSIX::_exit(1) if $@;
        print {$w} "sent\n" unless $said++;
        print {$w} JSON::PP->new->encode(\@res), "\n";
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return bless { pid => $pid, fh => $r, buf => '' },
                 'Clockchain::Test::Background';
}

# background_get($ng, $path, timeout => S) -> a background() GET
# (X-Service-Key test-key-1) on a connection of its own; ->sent once the
# request is written (then tcp_unread(local => $ng->port) == 0 says nginx
# has read it); ->result is (arrival time, status, body).  The client gives
# up after S seconds (30): status 599.  A timeout below a ?wait=N makes
# "answered by the wait timer" impossible.
sub background_get {
    my ($ng, $path, %o) = @_;
    my $secs = $o{timeout} // 30;
    my $port = $ng->port($o{port_n});
    return background(sub {
        my ($sent) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5) or return (time, 599, '');
        print {$s} "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            . "X-Service-Key: test-key-1\r\nConnection: close\r\n\r\n";
        $sent->();
        my ($buf, $closed) = ('', 0);
        my $end = time + $secs;
        my $sel = '';
        vec($sel, fileno($s), 1) = 1;
        while (time < $end) {
            my $rd = $sel;
            last if select($rd, undef, undef, $end - time) <= 0;
            my $got = sysread($s, $buf, 65536, length $buf);
            if (!$got) { $closed = 1; last }
        }
        return (time, $closed ? _parse_response($buf) : (599, ''));
    });
}

# (status, body) of a whole HTTP/1.1 response, chunked or not
sub _parse_response {
    my ($text) = @_;
    my ($head, $body) = split /\r\n\r\n/, $text, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.[01] (\d{3})};
    return (599, '') unless $status;
    $body //= '';
    if ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($body, 0, $n, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    return ($status, $body);
}

###########################################################################
# The Flash stand-in (t/flash/standin.py)

my @FLASH;

sub start_flash {
    my (%o) = @_;
    my $self = bless { opt => \%o }, 'Clockchain::Test::Flash';
    push @FLASH, $self;
    $self->start;
    return $self;
}

END {
    if ($$ == $PARENT_PID) {
        local ($?, $!, $@);
        eval { $_->stop } for @FLASH;
    }
}

package Clockchain::Test::Background;

use strict;
use warnings;
use JSON::PP;

# reads what the child wrote, waiting up to $secs
sub _pump {
    my ($self, $secs) = @_;
    return if $self->{eof};
    my $sel = '';
    vec($sel, fileno($self->{fh}), 1) = 1;
    while (select(my $rd = $sel, undef, undef, $secs) > 0) {
        my $got = sysread($self->{fh}, $self->{buf}, 65536, length $self->{buf});
        if (!$got) { $self->{eof} = 1; last }
        $secs = 0;
    }
}

sub sent { $_[0]->_pump(0); $_[0]{buf} =~ /^sent\n/ }
sub answered { $_[0]->_pump(0); $_[0]{buf} =~ /^sent\n.+\n/s }

sub result {
    my ($self) = @_;
    $self->_pump(1) until $self->{eof};
    waitpid($self->{pid}, 0);
    my ($line) = $self->{buf} =~ /^sent\n(.+)\n/s;
    die "a background child died without a result\n" unless $line;
    return @{ JSON::PP->new->decode($line) };
}

package Clockchain::Test::Flash;

use strict;
use warnings;
use JSON::PP;
use POSIX qw(WNOHANG);

sub port { $_[0]{port} }
sub url { "http://127.0.0.1:$_[0]{port}" }

sub start {
    my ($self) = @_;
    my %o = %{ $self->{opt} };
    my @cmd = ('python3', "$REPO/t/flash/standin.py",
               '--port', $self->{port} // 0,
               '--delay', $o{delay} // 0, '--key', $o{key} // 'flash-key');
    my $pid = open(my $out, '-|', @cmd) // die "standin: $!";
    my $line = <$out>;
    die "the flash stand-in did not start\n"
        unless defined $line && $line =~ /^READY (\d+)/;
    $self->{port} = $1;
    $self->{pid} = $pid;
    $self->{out} = $out;
    return $self;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;
    Clockchain::Test::wait_for(5, sub { waitpid($pid, WNOHANG) != 0 })
        or do { kill 'KILL', $pid; waitpid($pid, 0) };
    close delete $self->{out};
}

sub _get {
    my ($self, $path, $method, $body) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)->request($method // 'GET',
        $self->url . $path,
        $body ? { content => encode_json($body),
                  headers => { 'Content-Type' => 'application/json' } }
              : {});
    die "stand-in $path: $res->{status}\n" unless $res->{success};
    return decode_json($res->{content});
}

sub calls { $_[0]->_get('/_standin/calls') }
# calls held by [flash:hold], and their release: a job changes when the
# test says so
sub held { $_[0]->calls->{held} }
sub release { $_[0]->_get('/_standin/release', 'POST', {})->{released} }
sub calls_for { $_[0]->_get("/_standin/calls/$_[1]") }
sub reset { $_[0]->_get('/_standin/reset', 'POST', {}) }
sub mode { my ($s, %m) = @_; $s->_get('/_standin/mode', 'POST', \%m) }

package Clockchain::Test::Redis;

use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub pid  { $_[0]{pid} }
sub unixsocket { $_[0]{unixsocket} }

sub start {
    my ($self) = @_;
    # server => a redis-server of another version (t/54: one with WAITAOF)
    my @args = ($self->{opt}{server} // '/usr/bin/redis-server',
        '--port', $self->{port}, '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'yes', '--dir', $self->{dir},
        '--daemonize', 'no', '--logfile', '');
    push @args, '--requirepass', $self->{password} if defined $self->{password};
    push @args, @{ $self->{opt}{args} // [] };
    push @args, '--unixsocket', $self->{unixsocket}, '--unixsocketperm', '777'
        if $self->{unixsocket};
    my $log = "$self->{dir}/redis.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { exec @args }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    delete $self->{sock};
    my $up = Clockchain::Test::wait_for(10, sub {
        die "redis-server exited:\n" . Clockchain::Test::_slurp($log)
            unless Clockchain::Test::_alive($pid);
        my $r = eval { $self->cmd('PING') };
        delete $self->{sock} unless defined $r;
        return defined $r && $r eq 'PONG';
    });
    die "redis-server did not answer PING:\n" . Clockchain::Test::_slurp($log)
        unless $up;
    return $self;
}

sub running { Clockchain::Test::_alive($_[0]{pid}) }

sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    if (Clockchain::Test::_alive($pid)) {
        kill 'CONT', $pid;    # in case a test left it stopped
        eval { $self->_send('SHUTDOWN', 'NOSAVE') };
        delete $self->{sock};
        unless (Clockchain::Test::wait_for(5, sub { !Clockchain::Test::_alive($pid) })) {
            kill 'TERM', $pid;
            unless (Clockchain::Test::wait_for(5, sub { !Clockchain::Test::_alive($pid) })) {
                kill 'KILL', $pid;
                waitpid($pid, 0);
            }
        }
    }
    waitpid($pid, WNOHANG);
    delete $self->{pid};
    delete $self->{sock};
    return 1;
}

# redis-cli -p PORT @args, output chomped
sub cli {
    my ($self, @args) = @_;
    my @cmd = ('redis-cli', '-h', '127.0.0.1', '-p', $self->{port});
    push @cmd, '--no-auth-warning', '-a', $self->{password}
        if defined $self->{password};
    open my $fh, '-|', @cmd, @args or die "redis-cli: $!";
    local $/;
    my $out = <$fh>;
    close $fh;
    $out //= '';
    $out =~ s/\n+\z//;
    return $out;
}

sub _connect {
    my ($self) = @_;
    return $self->{sock} if $self->{sock};
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp',
        Timeout => 5,
    ) or die "redis connect: $!\n";
    $s->autoflush(1);
    $self->{sock} = $s;
    if (defined $self->{password}) {
        $self->_send('AUTH', $self->{password});
        _read_reply($s);
    }
    return $s;
}

sub _send {
    my ($self, @args) = @_;
    my $s = $self->_connect;
    my $buf = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        utf8::encode($a) if utf8::is_utf8($a);
        $buf .= '$' . length($a) . "\r\n$a\r\n";
    }
    print {$s} $buf or do { delete $self->{sock}; die "redis write: $!\n" };
}

# An error inside an array (a script's table with an err field) does not
# end the reply: it comes back as { err => "CODE message" }, blessed into
# Clockchain::Test::Redis::Error, and the rest of the array is read.
sub _read_reply {
    my ($s, $nested) = @_;
    my $line = <$s>;
    die "redis: connection closed\n" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+';
    return bless { err => $rest }, 'Clockchain::Test::Redis::Error'
        if $t eq '-' && $nested;
    die "redis error: $rest\n" if $t eq '-';
    return 0 + $rest if $t eq ':';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length($buf));
            die "redis: connection closed\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { _read_reply($s, 1) } 1 .. $rest ];
    }
    die "redis: bad reply '$line'\n";
}

# cmd(@args): one command over a raw RESP connection to db 0; dies on a Redis
# error reply.  Bulk strings come back as bytes.
sub cmd {
    my ($self, @args) = @_;
    my $r = eval {
        $self->_send(@args);
        [ _read_reply($self->{sock}) ];
    };
    if (!$r) {
        my $e = $@;
        delete $self->{sock} unless $e =~ /^redis error/;
        die $e;
    }
    return $r->[0];
}

# hgetall as a hash
sub hash {
    my ($self, $key) = @_;
    my $l = $self->cmd('HGETALL', $key);
    return { @$l };
}

package Clockchain::Test;

###########################################################################
# nginx

sub _render_conf {
    my (%o) = @_;
    my $module = exists $o{module} ? $o{module} : module_path();
    my $conf = '';
    if (defined $module) {
        die "module not found: $module (build it with ./build.sh, or set "
            . "CLOCKCHAIN_MODULE)\n" unless -f $module;
        $conf .= "load_module $module;\n";
    }
    $conf .= <<'EOF';
daemon on;
master_process on;
worker_processes 2;
EOF
    # as a packaged nginx does: workers never run as root
    # (user => NAME: another unprivileged user, so that a test can tell
    # one nginx's connections from another's, as the chaos harness does)
    $conf .= "user " . ($o{user} // 'nobody') . " nogroup;\n" if $> == 0;
    $conf .= <<'EOF';
error_log logs/error.log info;
pid logs/nginx.pid;
EOF
    $conf .= ($o{main} // '') . "\n";
    $conf .= <<'EOF';
events { worker_connections 1024; }
http {
    access_log logs/access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
EOF
    $conf .= $o{conf} // '';
    $conf .= "\n}\n";
    my %v = %{ $o{vars} // {} };
    $conf =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : die "no value for %%$1%%\n"/ge;
    return $conf;
}

# Workers run as nobody, as a packaged nginx runs them.  The prefix is 0711:
# they can reach the temp paths the master made for them, and list nothing.
# private => 1 makes it 0700, as a root-only directory a user might choose:
# then a body nginx spools to client_body_temp_path fails, as it fails for
# that user.
sub _new_prefix {
    my (%o) = @_;
    my $dir = tempdir('cc-nginx-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod $o{private} ? 0700 : 0711, $dir;
    mkdir "$dir/$_" for qw(logs conf);
    return $dir;
}

sub _vars {
    my ($prefix, $ports, %o) = @_;
    my %v = (PREFIX => $prefix, %{ $o{vars} // {} });
    if ($ports) {
        $v{PORT} = $ports->[0];
        $v{"PORT$_"} = $ports->[$_ - 1] for 1 .. @$ports;
    }
    if ($o{redis}) {
        $v{REDIS_PORT} = $o{redis}->port;
        $v{REDIS_SOCKET} = $o{redis}->unixsocket if $o{redis}->unixsocket;
    }
    $v{REDIS_PORT} //= $o{redis_port} if defined $o{redis_port};
    return \%v;
}

# start_nginx(conf => $http_block, redis => $redis, ports => N, main => ...,
#             vars => {...}, module => $path_or_undef, files => {name => text})
sub start_nginx {
    my (%o) = @_;
    my $prefix = _new_prefix(%o);
    my @ports = _free_ports($o{ports} // 1);
    my $self = bless {
        prefix => $prefix,
        ports  => \@ports,
        n      => scalar(@NGINX) + 1,
    }, 'Clockchain::Test::Nginx';
    for my $f (keys %{ $o{files} // {} }) {
        _spew("$prefix/$f", $o{files}{$f});
    }
    _spew("$prefix/conf/nginx.conf",
          _render_conf(%o, vars => _vars($prefix, \@ports, %o)));
    push @NGINX, $self;
    $self->start;
    return $self;
}

# nginx_t(conf => $http_block, %opt) -> (exit code, output): runs nginx -t on
# a config in a fresh prefix.
sub nginx_t {
    my (%o) = @_;
    my $prefix = _new_prefix(%o);
    for my $f (keys %{ $o{files} // {} }) {
        _spew("$prefix/$f", $o{files}{$f});
    }
    my @ports = _free_ports(1);
    _spew("$prefix/conf/nginx.conf",
          _render_conf(%o, vars => _vars($prefix, \@ports,
                                         redis_port => 6379, %o)));
    return _run_capture(nginx_bin(), '-t', '-p', "$prefix/",
                        '-c', 'conf/nginx.conf');
}

# nginx_t_fail(...) -> output of an nginx -t expected to fail (asserts it did)
sub nginx_t_fail {
    my (%o) = @_;
    my $name = delete $o{name} // 'nginx -t fails';
    my ($rc, $out) = nginx_t(%o);
    isnt($rc, 0, "$name: nginx -t exits non-zero") or diag($out);
    return $out;
}

sub _run_capture {
    my (@cmd) = @_;
    my $out = File::Temp->new(TMPDIR => 1);
    my $file = $out->filename;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file;
        open STDERR, '>&', \*STDOUT;
        { exec @cmd }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $? >> 8;
    return ($rc, _slurp($file));
}

# done(skip_log => [$ng, ...]): nginx whose error.log the test checked
# itself (one where it killed a worker, say)
sub done {
    my (%o) = @_;
    my %skip = map { $_ => 1 } @{ $o{skip_log} // [] };
    for my $ng (@NGINX) {
        next unless $ng->running;
        ok($ng->stop, "nginx #$ng->{n}: stops gracefully (QUIT) within 10 s");
    }
    for my $ng (@NGINX) {
        next if $skip{$ng};
        my @bad = grep { /\[(alert|emerg|crit)\]/ } split /\n/, $ng->error_log;
        ok(!@bad, "nginx #$ng->{n}: no [alert], [emerg] or [crit] in error.log")
            or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 19)]);
    }
    $_->stop for @REDIS;
    done_testing();
}

sub _cleanup {
    return unless $$ == $PARENT_PID;
    local ($?, $!, $@);
    for my $ng (@NGINX) {
        eval { $ng->stop(quick => 1) if $ng->running };
    }
    for my $r (@REDIS) {
        eval { $r->stop };
    }
}

END { _cleanup() }

for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { _cleanup(); POSIX::_exit(1) };
}

package Clockchain::Test::Nginx;

use strict;
use warnings;
use Time::HiRes qw(sleep time);

sub prefix { $_[0]{prefix} }
sub port { my ($s, $n) = @_; $s->{ports}[ ($n // 1) - 1 ] }
sub url {
    my ($s, $path, $n) = @_;
    return 'http://127.0.0.1:' . $s->port($n) . ($path // '/');
}
sub error_log { Clockchain::Test::_slurp("$_[0]{prefix}/logs/error.log") }
sub conf { Clockchain::Test::_slurp("$_[0]{prefix}/conf/nginx.conf") }
sub access_log { Clockchain::Test::_slurp("$_[0]{prefix}/logs/access.log") }

sub master_pid {
    my ($s) = @_;
    my $p = Clockchain::Test::_slurp("$s->{prefix}/logs/nginx.pid");
    return $p =~ /^(\d+)/ ? $1 : undef;
}

sub running {
    my ($s) = @_;
    return Clockchain::Test::_alive($s->{master});
}

sub _children {
    my ($s) = @_;
    return () unless $s->{master};
    open my $fh, '-|', 'ps', '-o', 'pid=,args=', '--ppid', $s->{master}
        or return ();
    my @c;
    while (<$fh>) {
        push @c, [$1, $2] if /^\s*(\d+)\s+(.*?)\s*$/;
    }
    close $fh;
    return @c;
}

# pids of the current workers (not the ones shutting down)
sub worker_pids {
    my ($s) = @_;
    return sort { $a <=> $b }
        map { $_->[0] } grep { $_->[1] =~ /worker process$/ } $s->_children;
}

# pids of all workers including old ones still shutting down
sub all_worker_pids {
    my ($s) = @_;
    return map { $_->[0] } grep { $_->[1] =~ /worker process/ } $s->_children;
}

sub start {
    my ($s) = @_;
    my $prefix = $s->{prefix};
    unlink "$prefix/logs/nginx.pid";
    my ($rc, $out) = Clockchain::Test::_run_capture(
        Clockchain::Test::nginx_bin(), '-p', "$prefix/", '-c', 'conf/nginx.conf');
    die "nginx failed to start (exit $rc):\n$out\n"
        . "--- error.log tail:\n" . _tail($s->error_log) if $rc != 0;
    my $ok = Clockchain::Test::wait_for(10, sub {
        my $m = $s->master_pid;
        return 0 unless $m;
        $s->{master} = $m;
        my @w = $s->worker_pids;
        return @w >= 2 && Clockchain::Test::_port_open($s->port);
    });
    die "nginx did not come up:\n$out\n--- error.log tail:\n"
        . _tail($s->error_log) unless $ok;
    $s->{workers} = [ $s->worker_pids ];
    return $s;
}

# the user a process runs as (by name)
sub user_of {
    my ($pid) = @_;
    my $st = Clockchain::Test::_slurp("/proc/$pid/status");
    my ($uid) = $st =~ /^Uid:\s+(\d+)/m;
    return defined $uid ? scalar getpwuid($uid) : undef;
}

sub _tail {
    my @l = split /\n/, $_[0];
    splice @l, 0, @l - 30 if @l > 30;
    return join("\n", @l) . "\n";
}

# HUP the master; wait (up to 10 s) until two new workers run.
sub reload {
    my ($s) = @_;
    my %old = map { $_ => 1 } $s->worker_pids;
    kill 'HUP', $s->{master} or die "cannot HUP nginx master: $!";
    my $ok = Clockchain::Test::wait_for(10, sub {
        my @new = grep { !$old{$_} } $s->worker_pids;
        return @new >= 2;
    });
    die "nginx reload: new workers did not start\n"
        . _tail($s->error_log) unless $ok;
    # the old workers retitle themselves "... is shutting down" once they
    # get the master's QUIT; wait for that so worker_pids lists new ones only
    Clockchain::Test::wait_for(10, sub { !grep { $old{$_} } $s->worker_pids });
    $s->{old_workers} = [ keys %old ];
    $s->{workers} = [ $s->worker_pids ];
    return $s;
}

# true when every worker from before the last reload has exited
sub old_workers_gone {
    my ($s, $secs) = @_;
    my @old = @{ $s->{old_workers} // [] };
    return Clockchain::Test::wait_for($secs // 10,
        sub { !grep { Clockchain::Test::_alive($_) } @old });
}

# QUIT, wait up to 10 s; then TERM/KILL.  Returns true if QUIT was enough.
sub stop {
    my ($s, %o) = @_;
    my $m = $s->{master} or return 1;
    my @workers = $s->all_worker_pids;
    my $graceful = 1;
    my $alive = \&Clockchain::Test::_alive;
    if ($alive->($m)) {
        kill 'QUIT', $m;
        my $gone = sub { !$alive->($m) && !grep { $alive->($_) } @workers };
        unless (Clockchain::Test::wait_for($o{quick} ? 3 : 10, $gone)) {
            $graceful = 0;
            kill 'TERM', $m, @workers;
            unless (Clockchain::Test::wait_for(3, $gone)) {
                kill 'KILL', $m, @workers;
                Clockchain::Test::wait_for(2, $gone);
            }
        }
    }
    delete $s->{master};
    return $graceful;
}

# nginx -t on this instance's config: (exit code, output)
sub test_config {
    my ($s) = @_;
    return Clockchain::Test::_run_capture(Clockchain::Test::nginx_bin(),
        '-t', '-p', "$s->{prefix}/", '-c', 'conf/nginx.conf');
}

1;
