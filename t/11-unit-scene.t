#!/usr/bin/perl
# Builds and runs the C unit tests of the nginx-free scene code (Flash's
# scene -> canonical path and graph node); they print TAP.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);

my $root = "$FindBin::Bin/..";
my $dir = tempdir(CLEANUP => 1);
my $cc = $ENV{CC} // 'cc';

system($cc, '-std=c99', '-D_DEFAULT_SOURCE', '-Wall', '-Wextra', '-Werror',
       '-g', "-I$root/src", '-o', "$dir/scene_test",
       "$root/t/unit/scene_test.c", "$root/src/ngx_http_clockchain_scene.c",
       "$root/src/ngx_http_clockchain_job.c",
       '-ljansson', '-lutf8proc') == 0
    or do { print "1..1\nnot ok 1 - compile the unit tests\n"; exit 1 };

exec "$dir/scene_test" or die "exec: $!";
