#!/usr/bin/perl
# check-logs.pl DIR: reads the ASan/LSan/UBSan log files that
# ./build.sh test asan collects in DIR, prints every report and exits 1 when
# there is one.
#
# One thing is left out, by design of nginx and not of the module: at worker
# exit nginx destroys the cycle's pool but never frees the connection and
# event arrays that ngx_event_process_init() allocated with ngx_alloc() at
# worker start, so LeakSanitizer reports them at every worker exit (three
# blocks, 442368 bytes with worker_connections 1024).  Debian's nginx is
# stripped, so an LSan suppressions file cannot name that static function,
# and "ngx_alloc" or "ngx_spawn_process" would hide the module's own leaks
# too.  Instead a leak block is nginx's own when no frame of its allocation
# stack (after the malloc interceptor) lies outside /usr/sbin/nginx and libc:
# an allocation the module made, directly or through ngx_alloc, has a frame
# in the module (built with frame pointers and -g) and is reported.
#
# A file that says only that LeakSanitizer's own tracer crashed ("Tracer
# caught signal 11 ... LeakSanitizer has encountered a fatal error", seen
# with gcc 12's runtime in about one full run in five, at a worker's exit;
# not seen with clang 14's) is printed as a warning and not counted: that
# process's exit-time leak scan did not run, while ASan and UBSan watched
# it to the end.  Every other process's scan ran.
use strict;
use warnings;

my $dir = shift // die "usage: $0 DIR\n";
my ($reports, $ignored, $tracer) = (0, 0, 0);

sub nginx_own {
    my (@frames) = @_;
    shift @frames;    # #0: the sanitizer's malloc interceptor
    return 0 unless @frames;
    for (@frames) {
        next if m{\(/usr/sbin/nginx\+0x[0-9a-f]+\)(\s*\(BuildId: \w+\))?\s*$};
        next if /\b__libc_start_(call_)?main\b/ || m{/libc\.so\.6\+};
        return 0;
    }
    return 1;
}

for my $file (sort glob "$dir/*") {
    open my $fh, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$fh> };
    close $fh;

    # a file that is nothing but LSan reports of nginx's own exit-time leaks
    if ($text =~ /ERROR: LeakSanitizer: detected memory leaks/
        && $text !~ /ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer)/
        && $text !~ /runtime error:/)
    {
        my @blocks = $text =~ /^((?:Direct|Indirect) leak of .*?)(?=^\s*$)/msg;
        my $own = grep { nginx_own(/^\s+(#\d+ .*)$/mg) } @blocks;
        if (@blocks && $own == @blocks) {
            $ignored++;
            next;
        }
    }

    if ($text =~ /^Tracer caught signal \d+/m
        && $text =~ /LeakSanitizer has encountered a fatal error/
        && $text !~ /leak of|ERROR: (AddressSanitizer|UndefinedBehavior)/
        && $text !~ /runtime error:/)
    {
        $tracer++;
        print "==== $file (warning: no leak scan in this process)\n$text\n";
        next;
    }

    $reports++;
    print "==== $file\n$text\n";
}

printf "sanitizers: %d report file(s); %d worker exit(s) with only nginx's "
    . "own exit-time leak (not counted)%s\n", $reports, $ignored,
    $tracer ? "; $tracer leak scan(s) lost to LSan's tracer crashing" : '';
exit($reports ? 1 : 0);
