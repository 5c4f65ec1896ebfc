# The zone's layout (issue 19): workers of two layouts never share a zone.
#
# On a reload nginx hands the zone of the cycle before to the new one when
# its name and size are unchanged; the old workers go on using it until
# they exit.  The zone records the layout of the build that laid it out
# (NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT), and a build of another layout refuses
# it: the reload fails with an [emerg] that says so, and the running
# workers go on as they were.
#
# A reload cannot bring two real builds onto one zone: dlopen() of the file
# name already loaded returns the module loaded (a package upgrade renames
# the new file over the old one: the old code runs on), and nginx loads
# modules RTLD_GLOBAL, so a build loaded from another file has its
# references to its own module bound to the module loaded first: the first
# build's code runs on, with its zone (a build with
# -DNGX_HTTP_CLOCKCHAIN_SHM_LAYOUT=99 reloaded in both ways logged layout
# 2 each time).  A new build runs only in a new master, with new zones.
# So the test takes the nearest deterministic equivalent, the module's
# test hook CLOCKCHAIN_DEBUG_ZONE_LAYOUT: a file, read by the master each
# time the zone is set up, whose number the build takes for its layout.
# The test reloads one nginx "onto" other layouts with it, and last onto a
# copy of the module in another file (the zone and the job in it are kept,
# as said).
use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);
use Clockchain::Test;

my $dir = tempdir('cc-layout-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
my $layout = "$dir/layout";

sub set_layout {
    open my $fh, '>', $layout or die "$layout: $!";
    print $fh "$_[0]\n";
    close $fh;
}

set_layout(1000);
$ENV{CLOCKCHAIN_DEBUG_ZONE_LAYOUT} = $layout;

my $redis = start_redis();
my $ng = start_nginx(redis => $redis, conf => <<"EOF");
    clockchain_zone cc:1m;
    clockchain_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        $KEYS
        $JOBS_LOCATIONS
    }
EOF
like($ng->error_log, qr/clockchain zone "cc": CLOCKCHAIN_DEBUG_ZONE_LAYOUT: layout 1000/,
     'the hook is read: layout 1000');

# a finished job in the zone, and in the zone only
my $id = '5b2e7c1a-0d4f-4a6b-9c8d-7e6f5a4b3c2d';
{
    my $t = time - 30;
    my $at = strftime('%Y-%m-%dT%H:%M:%S.000000Z', gmtime $t);
    $redis->cmd('HSET', $JOB_PREFIX . $id, 'id', $id, 'status', 'completed',
                'path', '/1969/july/20/2017/united-states/florida/cape-canaveral/apollo-11-3f4a',
                'created_at', $at, 'completed_at', $at, 'version', 4);
}
my $first = get_job($ng, $id);
is($first->{status}, 200, 'the job, read from Redis');
$redis->cmd('DEL', $JOB_PREFIX . $id);

sub from_zone {
    my ($name) = @_;
    # both workers: each GET on a connection of its own
    my %seen;
    for (1 .. 8) {
        my $r = get_job($ng, $id);
        $seen{ $r->{status} == 200 && $r->{content} eq $first->{content} ? 'zone' : $r->{status} }++;
    }
    is_deeply(\%seen, { zone => 8 }, $name);
}
from_zone('the job is answered from the zone (it is gone from Redis)');

# --- a reload with the layout unchanged keeps the zone

$ng->reload;
from_zone('reloaded with the same layout: the zone is kept, the job with it');

# --- a reload onto another layout is refused

sub reload_refused {
    my ($name, $want) = @_;
    my @before = sort $ng->worker_pids;
    my $log0 = length $ng->error_log;
    kill 'HUP', $ng->master_pid or die "HUP: $!";
    my $said = wait_for(10, sub { substr($ng->error_log, $log0) =~ $want });
    ok($said, "$name: the reload says why it failed")
        or diag(substr($ng->error_log, $log0));
    # the master has given up on the new cycle once it has logged it; a
    # cycle it took would have started its workers by now
    sleep 1;
    is_deeply([ sort $ng->worker_pids ], \@before,
              "$name: no new workers, the old ones go on");
    return substr($ng->error_log, $log0);
}

set_layout(1001);
my $said = reload_refused('layout 1000 -> 1001',
    qr/\[emerg\] .*clockchain zone "cc" is laid out by another build of the module \(layout 1000, this build's is 1001\)/);
from_zone('after the refused reload, the zone still answers');
unlike($said, qr/\[(alert|crit)\]/, 'nothing worse than the [emerg] was logged');

# --- back to the zone's own layout: the reload is taken

set_layout(1000);
$ng->reload;
from_zone('reloaded with the zone\'s layout again: the zone is kept');

# --- a build that predates recorded layouts (layout 1: no magic) and one
# of a later layout are refused alike

set_layout(1);
reload_refused('layout 1000 -> 1',
    qr/clockchain zone "cc" is laid out by another build of the module \(layout 1000, this build's is 1\)/);
set_layout(1000);

# --- a module from another file: the module loaded first runs on, zone
# and all

{
    my $copy = "$dir/ngx_http_clockchain_module_copy.so";
    copy(module_path(), $copy) or die "copy: $!";
    chmod 0755, $copy;
    my $conf = $ng->conf;
    my $module = module_path();
    $conf =~ s/^load_module \Q$module\E;/load_module $copy;/m or die "no load_module line\n";
    open my $fh, '>', $ng->prefix . '/conf/nginx.conf' or die $!;
    print $fh $conf;
    close $fh;
    $ng->reload;
    from_zone('reloaded onto a copy in another file: the loaded module and its zone run on');
}

my @bad = grep { /\[(alert|emerg|crit)\]/ && !/is laid out by another build/ }
          split /\n/, $ng->error_log;
ok(!@bad, 'no [alert], [emerg] or [crit] but the refused reloads\'')
    or diag(join "\n", @bad);

done(skip_log => [$ng]);
