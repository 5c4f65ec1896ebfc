# The layers of src/ (docs/architecture.md, "Layers"): each knows the next
# one down only.
#
#   HTTP   handler, request, moments, graph, list, search, system,
#          metrics, status, wait, indexing            (may use all below)
#   store  shm, redis*, sentinel*, events, store      (never the HTTP layer)
#   pure   job, scene, create, query, tdf, seed,      (no nginx, no store)
#          ingest
#
# A store file that includes an HTTP header, or calls a function an HTTP
# file defines, fails this test; so does a pure file that includes an nginx
# or a store header, and a file table in docs/architecture.md that does not
# match src/.  No nginx or Redis is started.
use strict;
use warnings;
use Test::More;
use FindBin;

my $src = "$FindBin::Bin/../src";
opendir my $dh, $src or die "$src: $!";
my @files = sort grep { /^ngx_http_clockchain_\w+\.[ch]$/ } readdir $dh;
closedir $dh;

sub concern { $_[0] =~ /^ngx_http_clockchain_([a-z]+)/ ? $1 : '' }

my %HTTP  = map { $_ => 1 } qw(handler request moments graph list search system metrics status wait
                                   export agents propose indexing);
my %STORE = map { $_ => 1 } qw(shm redis sentinel events store);
my %PURE  = map { $_ => 1 } qw(job scene create query tdf seed ingest);

sub layer {
    my $c = concern($_[0]);
    return 'http' if $HTTP{$c};
    return 'store' if $STORE{$c};
    return 'pure' if $PURE{$c};
    return 'other';
}

sub slurp {
    open my $fh, '<', "$src/$_[0]" or die "$_[0]: $!";
    local $/;
    my $s = <$fh>;
    $s =~ s{/\*.*?\*/}{}gs;    # comments may name anything
    return $s;
}

# what each HTTP file defines: "name(" at the start of a line
my %http_fn;
for my $f (grep { layer($_) eq 'http' && /\.c$/ } @files) {
    my $s = slurp($f);
    $http_fn{$1} = $f while $s =~ /^(ngx_http_clockchain_\w+)\(/mg;
}
ok(scalar keys %http_fn > 10, 'the HTTP layer defines functions ('
   . scalar(keys %http_fn) . ')');

for my $f (grep { layer($_) eq 'store' } @files) {
    my $s = slurp($f);
    my @inc = grep { layer($_) eq 'http' } $s =~ /#include\s+"([^"]+)"/g;
    is_deeply(\@inc, [], "$f includes no header of the HTTP layer");
    my @calls = sort grep { $s =~ /\b\Q$_\E\s*\(/ } keys %http_fn;
    is_deeply(\@calls, [], "$f calls no function of the HTTP layer")
        or diag(join "\n", map { "$_ (in $http_fn{$_})" } @calls);
}

for my $f (grep { layer($_) eq 'pure' } @files) {
    my $s = slurp($f);
    my @bad = grep { /^ngx_/ && layer($_) ne 'pure' }
              $s =~ /#include\s+[<"]([^>"]+)[>"]/g;
    is_deeply(\@bad, [], "$f includes neither nginx nor a store header");
}

# docs/architecture.md's file table names every source file, and only those
{
    open my $fh, '<', "$FindBin::Bin/../docs/architecture.md" or die;
    local $/;
    my $doc = <$fh>;
    my %table = map { $_ => 1 } $doc =~ /^\| `src\/(ngx_http_clockchain_\w+\.[ch])` \|/mg;
    my @missing = grep { /\.c$/ && !$table{$_} } @files;
    is_deeply(\@missing, [], 'architecture.md lists every src/*.c');
    my @gone = grep { !-f "$src/$_" } sort keys %table;
    is_deeply(\@gone, [], 'architecture.md lists no file that is gone');
}

done_testing();
