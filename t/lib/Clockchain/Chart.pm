package Clockchain::Chart;

# Charts of ./build.sh bench and ./build.sh soak, drawn by gnuplot (Debian's
# gnuplot-nox, which build.sh installs) from a data file the caller has
# already written: a chart that fails to draw loses no number, it warns.
#
#   plot($script, $svg, name => value, ...)  gnuplot -e 'name="value"; ...'
#                                           $script, with outfile=$svg
#   to_docs(@files)                         copies them into docs/img/
#   gp_text($s)                             $s shown as is in a title
#                                           (gnuplot's enhanced text)
#
# Core Perl only.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Spec;
use POSIX ();

use Exporter 'import';
our @EXPORT_OK = qw(plot to_docs gp_string gp_text);

my $REPO = abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..', '..'));

# a Perl string as a gnuplot string literal (double quotes, escaped)
sub gp_string {
    my ($s) = @_;
    $s =~ s/([\\"])/\\$1/g;
    $s =~ s/\n/\\n/g;
    return qq("$s");
}

# "Intel(R) ... CPU @ 3.20GHz" would be markup in an enhanced title
sub gp_text {
    my ($s) = @_;
    $s =~ s/([_^{}\@&~])/\\$1/g;
    return $s;
}

sub plot {
    my ($script, $svg, %var) = @_;
    $var{outfile} = $svg;
    my $e = join '; ', map { "$_=" . gp_string($var{$_}) } sort keys %var;
    my $log = "$svg.log";
    my $pid = fork;
    if (!defined $pid) {
        warn "chart: fork: $!; no $svg (the data is kept)\n";
        return 0;
    }
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        { exec 'gnuplot', '-e', $e, $script }
        print STDERR "gnuplot: $!\n";
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $?;
    if ($rc != 0 || !-s $svg) {
        my $why = do { open my $fh, '<', $log; local $/; <$fh> } // '';
        $why =~ s/\s+\z//;
        warn "chart: gnuplot $script failed (exit " . ($rc >> 8) . "), no $svg;"
            . " the data is kept\n" . ($why ne '' ? "$why\n" : '');
        unlink $svg;
        return 0;
    }
    # drawn, but gnuplot had something to say (a data file it could not
    # read is a warning to it): say it too
    if (-s $log) {
        my $said = do { open my $fh, '<', $log; local $/; <$fh> } // '';
        warn "chart: gnuplot $script: $said";
    }
    unlink $log;
    return 1;
}

sub to_docs {
    my (@files) = @_;
    my $dir = "$REPO/docs/img";
    make_path($dir);
    my @done;
    for my $f (grep { -f } @files) {
        my $to = "$dir/" . basename($f);
        if (copy($f, $to)) { push @done, $to } else { warn "chart: $f -> $to: $!\n" }
    }
    return @done;
}

1;
