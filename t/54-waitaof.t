# clockchain_redis waitaof=on (issue 17): the chaos campaign's fixed-seed
# hour lost 4 acknowledged jobs.  A replica that has just loaded a full
# sync has none of its data on disk until its first AOF rewrite ends, yet
# WAIT counts it: it was promoted, killed in that window, came back as the
# primary from an old AOF, and the other server resynchronised from it.
# WAITAOF counts a replica only once the write is in its AOF.
#
# The window is made long and certain here: the replica's
# rdb-key-save-delay slows its AOF rewrite to ~10 s (10 000 keys, 1 ms
# each).  Then the same sequence as the chaos run: a POST during the
# window, kill -9 of the replica, its restart as a primary, the old primary
# made its replica.
#   (1) nginx -t: waitaof=on needs wait=; only on and off.
#   (2) a Redis without WAITAOF (Debian 12's 7.0): every POST is a 503,
#       and error.log says what Redis answered.
#   (3) WAIT (waitaof=off): the POST is a 200 and the job is lost.  This is
#       the control: it shows the window is real, or (4) proves nothing.
#   (4) WAITAOF: the POST in the window is a 503; its retry with the same
#       Idempotency-Key, once the rewrite is done, a 200 with the same job;
#       and after the same sequence the job is there.
# WAITAOF needs Redis 7.2: build.sh finds one (CLOCKCHAIN_WAITAOF_SERVER),
# on Debian 12 Valkey 8 from bookworm-backports.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use Clockchain::Test;

my $SERVER = $ENV{CLOCKCHAIN_WAITAOF_SERVER}
    or BAIL_OUT('CLOCKCHAIN_WAITAOF_SERVER is not set: run this through '
                . './build.sh test, which installs a Redis with WAITAOF');

my @AOF = ('--appendonly', 'yes', '--appendfsync', 'always');

# --- (1) the directive ----------------------------------------------------

for my $bad ([ 'waitaof=on', '"waitaof=on" needs "wait="' ],
             [ 'wait=1 waitaof=yes', 'invalid' ])
{
    my $out = nginx_t_fail(name => "clockchain_redis ... $bad->[0]", conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:6379 $bad->[0];
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
    like($out, qr/\Q$bad->[1]\E/, "... nginx -t says: $bad->[1]");
}

my ($rc, $out) = nginx_t(conf => <<"CONF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:6379 wait=1 waitaof=on;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
is($rc, 0, 'wait=1 waitaof=on is accepted') or diag($out);

sub conf {
    my ($waitaof) = @_;
    return <<"CONF";
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%% wait=1 waitaof=$waitaof timeout=4s;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
CONF
}

sub replicas_online {
    my ($primary) = @_;
    my $info = $primary->cmd('INFO', 'replication') // '';
    return scalar(() = $info =~ /^slave\d+:.*state=online/mg);
}

sub info_field {
    my ($redis, $section, $field) = @_;
    my $info = eval { $redis->cmd('INFO', $section) } // '';
    return $info =~ /^\Q$field\E:(\S+)/m ? $1 : undef;
}

# --- (2) a Redis that does not know WAITAOF ---------------------------------

{
    my $p = start_redis(args => [@AOF]);
    my $r = start_redis(args => [@AOF, '--replicaof', '127.0.0.1', $p->port]);
    ok(wait_for(10, sub { replicas_online($p) == 1 }), '(2) Redis 7.0: the replica follows');

    my $ng = start_nginx(redis => $p, conf => conf('on'));
    my $res = generate($ng, { query => 'No WAITAOF here' });
    is_error($res, 503, qr/not confirmed by a replica/,
             '(2) WAITAOF unknown: the POST is a 503');
    like($ng->error_log,
         qr/1 replica\(s\) did not confirm job \S+ in time \(WAITAOF answered: ERR unknown command .WAITAOF/,
         '(2) ... and error.log says what Redis answered');
    $ng->stop;
    $r->stop;
    $p->stop;
}

# --- (3) and (4): the window -------------------------------------------------

# A primary with 10 000 keys, and a new replica whose first AOF takes ~10 s.
# Returns them once the replica is online and still writing that AOF.
sub window {
    my ($arm) = @_;
    my $p = start_redis(server => $SERVER,
                        args => [@AOF, '--repl-diskless-sync-delay', 0]);
    my $r = start_redis(server => $SERVER,
                        args => [@AOF, '--rdb-key-save-delay', 1000,
                                 '--repl-diskless-sync-delay', 0]);

    my $lua = "for i = 1, 10000 do redis.call('SET', 'fill:' .. i, 'x') end return 1";
    is($p->cmd('EVAL', $lua, 0), 1, "$arm the primary holds 10 000 keys");

    $r->cmd('REPLICAOF', '127.0.0.1', $p->port);
    ok(wait_for(20, sub { replicas_online($p) == 1
                          && (info_field($r, 'persistence', 'aof_rewrite_in_progress') // '') eq '1' }),
       "$arm the replica is online, writing its first AOF");
    return ($p, $r);
}

# kill -9 of the replica and of its AOF child, its restart from its own
# disk as a primary, and the old primary made its replica
sub crash_and_resync {
    my ($arm, $p, $r) = @_;
    my @children = split ' ', `pgrep -P ${\ $r->pid }` // '';
    kill 'KILL', $r->pid, @children;
    waitpid($r->pid, 0);
    sleep 0.2;
    $r->start;
    $p->cmd('REPLICAOF', '127.0.0.1', $r->port);
    ok(wait_for(30, sub { (info_field($p, 'replication', 'master_link_status') // '') eq 'up'
                          && (info_field($p, 'replication', 'master_sync_in_progress') // '') eq '0' }),
       "$arm the replica restarted as primary; the old primary resynchronised from it");
}

{
    my ($p, $r) = window('(3) WAIT:');
    my $ng = start_nginx(redis => $p, conf => conf('off'));

    my $job = created_ok(generate($ng, { query => 'Acknowledged in the window' },
                                  headers => { 'Idempotency-Key' => 'k3' }),
                         '(3) WAIT: the POST in the window is a 200');
    is(info_field($r, 'persistence', 'aof_rewrite_in_progress'), '1',
       '(3) ... while the replica still writes its first AOF');
    $ng->stop;

    crash_and_resync('(3) WAIT:', $p, $r);
    ok($job && !$p->cmd('EXISTS', $JOB_PREFIX . $job->{job_id})
       && !$r->cmd('EXISTS', $JOB_PREFIX . $job->{job_id}),
       '(3) WAIT: the acknowledged job is lost from both (the window is real)');
    $r->stop;
    $p->stop;
}

{
    my ($p, $r) = window('(4) WAITAOF:');
    my $ng = start_nginx(redis => $p, conf => conf('on'));
    my %idem = (headers => { 'Idempotency-Key' => 'k4' });

    my $res = generate($ng, { query => 'Acknowledged in the window' }, %idem);
    is_error($res, 503, qr/retry later \(with the same Idempotency-Key\)/,
             '(4) WAITAOF: the POST in the window is a 503 that says to retry with the same key');
    is(info_field($r, 'persistence', 'aof_rewrite_in_progress'), '1',
       '(4) ... given while the replica still wrote its first AOF');
    like($ng->error_log,
         qr/1 replica\(s\) did not confirm job \S+ in time \(WAITAOF answered: on too few replicas' disks\)/,
         '(4) ... and error.log says why');

    ok(wait_for(30, sub { (info_field($r, 'persistence', 'aof_rewrite_in_progress') // '') eq '0' }),
       '(4) the replica has written its first AOF');
    my $job = created_ok(generate($ng, { query => 'Acknowledged in the window' }, %idem),
                         '(4) the retry with the same key is a 200');
    my $ids = job_count($p);
    is($ids, 1, '(4) ... for the one job the first POST made');
    $ng->stop;

    crash_and_resync('(4) WAITAOF:', $p, $r);
    ok($job && $r->cmd('EXISTS', $JOB_PREFIX . $job->{job_id})
       && $p->cmd('EXISTS', $JOB_PREFIX . $job->{job_id}),
       '(4) WAITAOF: the acknowledged job survives, on both');
    $r->stop;
    $p->stop;
}

done();
