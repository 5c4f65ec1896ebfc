#!/usr/bin/env perl
#
# t/bench/get-instructions.pl MODULE.so [MODULE.so ...]: the instructions
# nginx runs in user space for one GET of a finished job, and for one
# `return 200` of the same body, counted by valgrind's callgrind: a count,
# not a time, so the same on a busy machine as on a quiet one (issue 19).
# The kernel's part (the syscalls, the same for both answers) is not in it.
#
# For each module: one nginx process (master_process off) under callgrind
# on a Redis with one completed job; N1 GETs on one keep-alive connection,
# a dump (callgrind_control -d, which also zeroes the counts), N2 - N1 more
# GETs and a dump: its count / (N2 - N1) is the cost of one request,
# start-up and warm-up excluded.  The same for the reference location.  Per module: both costs,
# their ratio, and the functions of the module that the GET spends in
# (callgrind_annotate).
#
#   INSN_N1 (200), INSN_N2 (2200), INSN_OUT (build/getcpu): where the
#   callgrind files go

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Clockchain::Test;
use Cwd qw(abs_path);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

$| = 1;

my @MODULES = map { abs_path($_) // die "no module $_\n" } @ARGV
    or die "usage: $0 MODULE.so [MODULE.so ...]\n";
my $N1  = $ENV{INSN_N1} // 200;
my $N2  = $ENV{INSN_N2} // 2200;
my $OUT = abs_path($ENV{INSN_OUT} // "$FindBin::Bin/../../build/getcpu")
    // die "no output directory\n";
my $KEY = 'bench-service-key';
my $ID  = '3f2b8c1e-9a4d-4e5f-8a6b-7c8d9e0f1a2b';
my $PATH = '/1776/february/08/0900/france/ile-de-france/'
         . 'ile-de-la-cite/signing-of-the-declaration-of-independence-1776-2a09';

make_path($OUT);

sub nginx_quote {
    my ($s) = @_;
    $s =~ s/\$/\\u0024/g;
    $s =~ s/([\\'])/\\$1/g;
    return "'$s'";
}

# $n GETs of $path on one keep-alive connection; the last body
sub gets {
    my ($port, $path, $n) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 60)
        or die "connect: $!\n";
    my $body;
    for (1 .. $n) {
        print {$s} "GET $path HTTP/1.1\r\nHost: x\r\nX-Service-Key: $KEY\r\n\r\n";
        my ($head, $buf) = ('', '');
        while ($head !~ /\r\n\r\n/) {
            sysread($s, $head, 4096, length $head) or die "closed\n";
        }
        ($head, $buf) = split /\r\n\r\n/, $head, 2;
        die "GET $path: $head\n" unless $head =~ m{^HTTP/1\.1 200};
        my ($len) = $head =~ /^Content-Length: (\d+)/mi;
        while (length $buf < $len) {
            sysread($s, $buf, $len - length $buf, length $buf) or die "closed\n";
        }
        $body = $buf;
    }
    close $s;
    return $body;
}

# the instructions since the last dump of the process under callgrind:
# dumps it (and so zeroes the counts); (count, dump file)
sub count {
    my ($pid, $tag) = @_;
    my %old = map { $_ => 1 } glob("$OUT/callgrind.out.$pid*");
    system("callgrind_control -d $tag $pid >/dev/null 2>&1") == 0
        or die "callgrind_control -d failed\n";
    my $file;
    wait_for(30, sub { ($file) = grep { !$old{$_} } glob("$OUT/callgrind.out.$pid*"); $file })
        or die "no dump for $pid\n";
    sleep 0.5;
    open my $fh, '<', $file or die "$file: $!";
    while (<$fh>) {
        return ($1, $file) if /^(?:summary|totals):\s+(\d+)/;
    }
    die "no summary in $file\n";
}

my $redis = start_redis();
{
    my $iso = sub {
        strftime('%Y-%m-%dT%H:%M:%S', gmtime $_[0]) . '.123456Z';
    };
    $redis->cmd('HSET', $JOB_PREFIX . $ID, 'id', $ID, 'status', 'completed',
                'path', $PATH, 'created_at', $iso->(time - 20),
                'completed_at', $iso->(time - 5), 'version', 3);
}

my %res;
for my $i (0 .. $#MODULES) {
    my $prefix = tempdir("cc-getinsn-$i-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $prefix;
    mkdir "$prefix/$_" for qw(logs conf);
    my ($port) = Clockchain::Test::_free_ports(1);
    my $body;
    for my $pass (1, 2) {
        open my $fh, '>', "$prefix/conf/nginx.conf" or die $!;
        print $fh <<"EOF";
load_module $MODULES[$i];
daemon off;
master_process off;
worker_processes 1;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    clockchain_zone getinsn:16m;
    clockchain_redis 127.0.0.1:@{[ $redis->port ]};
    server {
        listen 127.0.0.1:$port;
        clockchain_service_key $KEY;
        location /api/jobs/ { clockchain_jobs; }
        location = /ref/job {
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 @{[ nginx_quote($body // '{}') ]};
        }
    }
}
EOF
        close $fh;
        my @cmd = (nginx_bin(), '-p', "$prefix/", '-c', 'conf/nginx.conf');
        unshift @cmd, 'valgrind', '--tool=callgrind', '--quiet',
                      "--callgrind-out-file=$OUT/callgrind.out.%p"
            if $pass == 2;
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDOUT, '>', "$prefix/logs/stdout";
            open STDERR, '>&', \*STDOUT;
            exec @cmd or POSIX::_exit(127);
        }
        wait_for(60, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") })
            or die "nginx did not come up\n";
        if ($pass == 1) {
            $body = gets($port, "/api/jobs/$ID", 1);
            kill 'QUIT', $pid;
            waitpid($pid, 0);
            next;
        }
        for my $what ([ mod => "/api/jobs/$ID" ], [ ref => '/ref/job' ]) {
            my ($name, $path) = @$what;
            my $b = gets($port, $path, $N1);
            die "$name answers differently\n" unless $b eq $body;
            count($pid, "$name-$N1");
            gets($port, $path, $N2 - $N1);
            my ($c, $file) = count($pid, "$name-$N2");
            $res{$i}{$name} = $c / ($N2 - $N1);
            $res{$i}{"$name-file"} = $file;
        }
        kill 'QUIT', $pid;
        waitpid($pid, 0);
    }
}

printf "instructions a request in user space, over %d requests after %d:\n",
    $N2 - $N1, $N1;
for my $i (0 .. $#MODULES) {
    printf "module %d (%s): GET %.0f, return 200 %.0f: ratio %.3f (+%.0f)\n"
         . "  callgrind_annotate %s\n",
        $i, $MODULES[$i], $res{$i}{mod}, $res{$i}{ref},
        $res{$i}{mod} / $res{$i}{ref}, $res{$i}{mod} - $res{$i}{ref},
        $res{$i}{'mod-file'};
}
$redis->stop;
