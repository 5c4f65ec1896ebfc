# A worker that is leaving (a reload) while it waits for a Sentinel's
# answer: the answer must not open a new connection to the master from a
# worker on its way out (issue 13, item 14). The Sentinel is held with
# SIGSTOP while the workers ask it, nginx is reloaded, then it answers.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Clockchain::Test;

plan skip_all => 'redis-sentinel is not installed (build.sh installs it)'
    unless -x '/usr/bin/redis-sentinel';

my $redis = start_redis();

my $dir = tempdir('cc-sentinel-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sport = do {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0');
    my $p = $s->sockport; close $s; $p
};
open my $fh, '>', "$dir/sentinel.conf" or die;
print {$fh} "port $sport\nbind 127.0.0.1\ndir $dir\n"
    . "sentinel monitor cc 127.0.0.1 " . $redis->port . " 1\n";
close $fh;
my $spid = fork // die;
if ($spid == 0) {
    open STDOUT, '>', "$dir/log";
    open STDERR, '>&', \*STDOUT;
    { exec '/usr/bin/redis-sentinel', "$dir/sentinel.conf" }
    POSIX::_exit(127);
}
END { if ($spid) { kill 'CONT', $spid; kill 'TERM', $spid } }

ok(wait_for(15, sub {
    `redis-cli -p $sport SENTINEL get-master-addr-by-name cc 2>/dev/null` =~ /\d/
}), 'the sentinel knows the master');

my $ng = start_nginx(redis => $redis, conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis sentinel=127.0.0.1:$sport master=cc timeout=10s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF

created_ok(generate($ng, { query => 'through the sentinel' }), 'a POST works');
my @old = $ng->worker_pids;

# the workers lose Redis and ask the (stopped) sentinel where it went
stop_processes($spid);
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'normal');
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
ok(wait_for(10, sub {
    my $n = () = $ng->error_log =~ /lost the connection to redis/g;
    $n >= 2;
}), 'both workers lost their connection');
# event: their reconnect timer sent both to the sentinel: two connections
# to it hold a question it has not read (it is stopped)
ok(wait_for(10, sub { (tcp_unread(local => $sport))[1] >= 2 }),
   'both workers asked the stopped sentinel');

# leaving while the question is out; then the sentinel answers
kill 'HUP', $ng->master_pid;
ok(wait_for(10, sub {
    my $log = $ng->error_log;
    !grep { $log !~ /$_#\d+: gracefully shutting down/ } @old
}), 'the old workers are leaving');
my $mark = length $ng->error_log;
kill 'CONT', $spid;

ok(wait_for(15, sub { !grep { kill 0, $_ } @old }), 'the old workers exit');
my $after = substr($ng->error_log, $mark);
my @opened = grep { my $p = $_; $after =~ /$p#\d+: clockchain: connected to redis/ } @old;
is_deeply(\@opened, [], 'no leaving worker connected to the master after '
          . "the sentinel's answer");

# the new workers found the master
ok(wait_for(15, sub { generate($ng, { query => 'after the reload' })->{status} == 200 }),
   'the new workers work');

done();
